"""ctapipe-sst1m-compute-irf and ctapipe-sst1m-dl3 end with a summary at the
default log level, whose numbers are those of the files written."""

import re
import warnings

import pytest
from astropy.io import fits
from astropy.table import Table
from ctapipe.core import run_tool
from ctapipe.core.provenance import MissingReferenceMetadata

from ctapipe_sst1m.tools.compute_irf import SST1MIrfTool
from ctapipe_sst1m.tools.dl3 import DL3Tool

from ..helpers import parse_summary
from .conftest import config

pytestmark = pytest.mark.slow


def _run(tool, argv, cwd):
    """Run ``tool``; the MissingReferenceMetadata warnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert run_tool(tool, argv=argv, cwd=cwd) == 0
    return [str(w.message) for w in caught if w.category is MissingReferenceMetadata]


def test_compute_irfparse_summary(tmp_path, chain, capsys):
    dl2 = chain["dl2"]
    argv = [
        config("sst1m_irf.yaml"),
        config("sst1m_irf_point_source.yaml"),
        f"--cuts={chain['cuts']}",
        f"--gamma-file={dl2['gamma_test']}",
        f"--proton-file={dl2['proton_test']}",
        "--output=irf.fits.gz",
    ]
    capsys.readouterr()
    missing = _run(SST1MIrfTool(), argv, tmp_path)
    stderr = capsys.readouterr().err
    # the files written carry reference metadata (the cuts file of ctapipe's
    # ctapipe-optimize-event-selection does not: ctapipe's warning, not ours)
    assert [m for m in missing if ".fits.gz" in m] == []
    rows = parse_summary(stderr, "ctapipe-sst1m-compute-irf: IRFs written to irf.fits.gz")
    with fits.open(tmp_path / "irf.fits.gz") as hdus:
        names = [hdu.name for hdu in hdus[1:]]
        header = hdus[0].header
    assert rows["IRFs"] == "full-enclosure: " + ", ".join(names)
    for particle in ("gammas", "protons"):
        selected, loaded = map(
            int,
            re.fullmatch(
                r"(\d+) of (\d+) events pass the cuts.*", rows[particle]
            ).groups(),
        )
        assert 0 < selected < loaded
    assert rows["node"] == (
        f"alt {header['ALT_PNT']:.1f} deg, az {header['AZ_PNT']:.1f} deg, "
        f"NSB {header['NSBNODE']}, field of view {header['FOVMAX']:g} deg"
    )


def test_dl3parse_summary(tmp_path, observed_dl2, chain, capsys):
    argv = [*map(str, observed_dl2.values()), f"--irf={chain['irf']}"]
    argv += [f"--cuts={chain['cuts']}", "--output-dir=dl3"]
    capsys.readouterr()
    missing = _run(DL3Tool(), argv, tmp_path)
    stderr = capsys.readouterr().err
    assert [m for m in missing if "dl3" in m or "irf" in m] == []
    n_events = {}
    for obs_id in observed_dl2:
        with fits.open(tmp_path / f"dl3/SST1M_obs_{obs_id}.dl3.fits.gz") as hdus:
            n_events[obs_id] = len(Table.read(hdus["EVENTS"]))
    title = (
        f"ctapipe-sst1m-dl3: {len(observed_dl2)} runs, {sum(n_events.values())} events, "
        "written to dl3"
    )
    rows = parse_summary(stderr, title)
    for obs_id, n in n_events.items():
        assert re.fullmatch(
            rf"SST1M_obs_{obs_id}\.dl3\.fits\.gz: {n} of \d+ events pass the cuts",
            rows[f"obs_id {obs_id}"],
        )
    assert rows["indexes"].startswith("hdu-index.fits.gz, obs-index.fits.gz")
