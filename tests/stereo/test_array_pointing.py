"""
Stereo reconstruction with and without a pointing (SST1MArrayPointing), and the
docs' recipe for stereo with one camera's file, run as written.
"""

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tables
from ctapipe.core import run_tool
from ctapipe.io import TableLoader, read_table

from ctapipe_sst1m.core.products import verify_hdf5_product
from ctapipe_sst1m.stereo.array_pointing import invalidate_undefined_geometry
from ctapipe_sst1m.tools.merge_stereo import MergeStereoTool

from .conftest import RESOURCES, process

DOCS = Path(__file__).resolve().parents[2] / "docs"
GEOMETRY = "/dl2/event/subarray/geometry/HillasReconstructor"


def _stereo_dl2(tmp_path, dl1):
    """Merge the two telescopes' DL1 and run sst1m_stereo.yaml; the DL2 path."""
    merged = tmp_path / "SST1M_stereo_20180822_0001.dl1.h5"
    code = run_tool(
        MergeStereoTool(),
        argv=[str(dl1[21]), str(dl1[22]), "--method=SlidingWindow", f"--output={merged}"],
        cwd=tmp_path,
        raises=False,
    )
    assert code == 0
    return merged, process(
        tmp_path,
        merged,
        tmp_path / "SST1M_stereo_20180822_0001.dl2.h5",
        f"--config={RESOURCES / 'sst1m_stereo.yaml'}",
        "--no-progress",
    )


def _n_reconstructable(merged):
    """Events whose two images pass sst1m_stereo.yaml's stereo quality criteria."""
    with TableLoader(merged) as loader:
        events = loader.read_telescope_events()
    passing = (
        (events["hillas_intensity"] > 0)
        & (events["hillas_width"].value > 0)
        & (events["morphology_n_pixels"] > 0)
        & (events["leakage_intensity_width_2"] < 1.0)
    )
    _, counts = np.unique(events["event_id"][passing], return_counts=True)
    return int(np.count_nonzero(counts == 2))


@pytest.mark.slow
def test_without_pointing_warned_and_invalid(tmp_path, data_dl1_without_pointing, capsys):
    """No pointing: one warning for the run naming what to set, and no geometry
    left valid with NaN columns."""
    merged, dl2 = _stereo_dl2(tmp_path, data_dl1_without_pointing)
    stderr = capsys.readouterr().err

    # HillasReconstructor would have called these valid
    n_reconstructable = _n_reconstructable(merged)
    assert n_reconstructable >= 1
    warning = (
        f"{merged.name}: obs_id 201808220001: no pointing for tel 21, 22: no stereo "
        "geometry can be reconstructed, it is marked invalid; set "
        "SST1MEventSource.pointing_ra and pointing_dec (deg, ICRS) when making the "
        "DL1 of each telescope, then merge again"
    )
    assert stderr.count(warning) == 1
    assert (
        f"{dl2.name}: HillasReconstructor_is_valid set to False in "
        f"{n_reconstructable} event{'' if n_reconstructable == 1 else 's'} "
        "reconstructed without pointing (32 of 32 events had a telescope without "
        "pointing)"
    ) in stderr

    # the lines docs/stereo.rst quotes (its file names are those used here)
    text = (DOCS / "stereo.rst").read_text()
    quoted = _literal_block(text, "step says, and no geometry is valid::")
    assert len(quoted.splitlines()) == 2
    for line in quoted.splitlines():
        # without the time stamp and colours of the log line
        assert line.removeprefix("WARNING ") in stderr, line

    geometry = read_table(dl2, GEOMETRY)
    assert len(geometry) == 32
    assert not np.any(geometry["HillasReconstructor_is_valid"])
    assert np.all(np.isnan(geometry["HillasReconstructor_alt"]))
    # invalidated before the mark: the product is complete and consistent
    mark = verify_hdf5_product(dl2, kinds=("DL2",), deep=True)
    assert mark.events_out == 32


@pytest.mark.slow
def test_with_pointing_not_warned(tmp_path, data_dl1, capsys):
    merged, dl2 = _stereo_dl2(tmp_path, data_dl1)
    stderr = capsys.readouterr().err
    assert "no pointing" not in stderr
    assert "without pointing" not in stderr

    geometry = read_table(dl2, GEOMETRY)
    valid = geometry["HillasReconstructor_is_valid"]
    assert np.count_nonzero(valid) == _n_reconstructable(merged) >= 1
    assert np.all(np.isfinite(geometry["HillasReconstructor_alt"][valid]))
    assert np.all(np.isfinite(geometry["HillasReconstructor_az"][valid]))


@pytest.mark.slow
def test_invalidate_undefined_geometry(tmp_path, data_dl1):
    """Only valid rows without a direction change."""
    _, dl2 = _stereo_dl2(tmp_path, data_dl1)
    edited = shutil.copy(dl2, tmp_path / "edited.dl2.h5")
    before = read_table(dl2, GEOMETRY)
    valid = np.flatnonzero(before["HillasReconstructor_is_valid"])
    assert len(valid) >= 1
    with tables.open_file(edited, mode="a") as h5file:
        table = h5file.get_node(GEOMETRY)
        alt = table.col("HillasReconstructor_alt")
        alt[valid[0]] = np.nan
        table.modify_column(colname="HillasReconstructor_alt", column=alt)

    assert invalidate_undefined_geometry(dl2) == {}
    assert invalidate_undefined_geometry(edited) == {"HillasReconstructor": 1}

    after = read_table(edited, GEOMETRY)
    expected = np.array(before["HillasReconstructor_is_valid"])
    expected[valid[0]] = False
    np.testing.assert_array_equal(after["HillasReconstructor_is_valid"], expected)
    # a DL1 file has no geometry to mark
    assert invalidate_undefined_geometry(data_dl1[21]) == {}


def _literal_block(text, after):
    """The literal block that follows the paragraph ending in ``after``."""
    start = text.index(after) + len(after)
    block = re.match(r"\n\n((?:(?: {4}.*)?\n)+)", text[start:])
    assert block is not None, f"no literal block after {after!r}"
    return textwrap.dedent(block[1]).rstrip("\n") + "\n"


@pytest.mark.slow
def test_one_camera_recipe_as_documented(tmp_path):
    """The commands of docs/stereo.rst, run verbatim in an empty directory,
    give what the page says."""
    text = (DOCS / "stereo.rst").read_text()
    commands = _literal_block(text, "Run in an empty directory::")
    read_back = _literal_block(text, "meaningless, as said)::")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}

    def run(script, cwd):
        cwd.mkdir()
        result = subprocess.run(
            ["bash", "-e", "-c", script],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return result

    with_pointing = tmp_path / "with_pointing"
    result = run(commands, with_pointing)
    assert "cleaning   30 of 30 shower images survive" in result.stderr
    assert "cleaning   1 of 30 shower images survive" in result.stderr
    counts = read_table(
        with_pointing / "SST1M_stereo_20180822_0001.dl1.h5",
        "/configuration/sst1m/stereo/event_counts",
    )
    assert counts.meta["CLOCK_OFFSET_NS"] == 0
    assert list(counts["n_events"]) == [32, 32]
    assert "no pointing" not in result.stderr
    printed = subprocess.run(
        ["bash", "-e", "-c", read_back],
        cwd=with_pointing,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert printed.stdout == "1 of 32 events valid\n"
