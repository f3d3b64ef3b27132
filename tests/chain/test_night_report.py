"""
The night report of the test night (written by ctapipe-sst1m-nightly at the end
of the resumed invocation), opened in a real headless Chromium, its numbers
checked against the products; a night with a product missing; and the theta^2
of a night whose DL3 holds a real (toy) source.

Set ``SST1M_REPORT_SCREENSHOT`` to a path to keep the screenshot of the test
night's report there.
"""

import os
import shutil

import numpy as np
import pytest
import tables
from astropy.coordinates import SkyCoord
from ctapipe.core import run_tool
from ctapipe.io.hdf5dataformat import (
    DL1_SUBARRAY_TRIGGER_TABLE,
    DL1_TEL_PARAMETERS_GROUP,
    DL1_TEL_TRIGGER_TABLE,
)
from gammapy.data import DataStore

from ctapipe_sst1m.dl3.analysis import theta2_counts
from ctapipe_sst1m.tools.dl3 import DL3Tool
from ctapipe_sst1m.tools.night_report import NightReportTool

from ..browser import inspect_page
from . import night
from .conftest import TARGET

#: runs tools and a browser on the test night (seconds to minutes)
pytestmark = pytest.mark.slow


def dl1_events(path, tel_id=None):
    """Events of a DL1 file: one telescope's triggers, or the subarray's."""
    with tables.open_file(path) as h5file:
        if tel_id is None:
            return h5file.get_node(DL1_SUBARRAY_TRIGGER_TABLE).nrows
        table = h5file.get_node(DL1_TEL_TRIGGER_TABLE).read()
        return int(np.count_nonzero(table["tel_id"] == tel_id))


def run_table(page):
    """The run table of the page as {(run, mode): row dict}."""
    for table in page.tables:
        if table and table[0][:2] == ["run", "mode"] and "events" in table[0]:
            header = table[0]
            return {(r[0], r[1]): dict(zip(header, r, strict=True)) for r in table[1:]}
    raise AssertionError("no run table in the page")


def theta2_tables(page):
    """The theta^2 tables, in page order, as dicts."""
    return [
        dict(zip(t[0], t[1], strict=True))
        for t in page.tables
        if t and t[0][:3] == ["runs", "ON", "OFF"]
    ]


@pytest.fixture(scope="module")
def night_page(processed_night, browser, tmp_path_factory):
    """The test night's report as the browser shows it."""
    report = processed_night["dir"] / "night_report.html"
    assert report.is_file(), "the nightly wrote no report"
    screenshot = tmp_path_factory.mktemp("report") / "night_report.png"
    page = inspect_page(browser, report, screenshot)
    keep = os.environ.get("SST1M_REPORT_SCREENSHOT")
    if keep:
        shutil.copyfile(screenshot, keep)
    return page


def test_report_renders_in_browser(night_page, processed_night):
    page = night_page
    assert page.title == f"SST-1M night {night.NIGHT}"
    assert page.scripts == 0, "the report needs no JavaScript"
    # figures: rates, NSB, pointing, Moon; per mode images, CoG, DL2, theta2;
    # cameras and pointing check per telescope; stereo pairing
    assert len(page.images) >= 20
    assert page.broken_images == []
    assert all(i.natural_width > 300 for i in page.images)
    assert page.broken_links == []
    logs = [link for link in page.links if link.target.endswith(".log")]
    assert len(logs) >= 18, "every step's log is linked"
    assert page.console_errors in (None, [])
    assert page.screenshot_size[1] > 5000
    assert page.screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pdf = processed_night["dir"] / "night_report.pdf"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert not list(processed_night["dir"].glob(".night_report*"))


def test_run_table_lists_every_run(night_page, processed_night):
    rows = run_table(night_page)
    target = processed_night["dir"] / night.SOURCE
    expected = {
        (f"SST1M{cs}_{night.NIGHT}_{run:04d}", f"cs{cs}")
        for cs in (1, 2)
        for run in (1, 2)
    }
    expected |= {(f"SST1M_stereo_{night.NIGHT}_{run:04d}", "stereo") for run in (1, 2)}
    expected.add((f"SST1M2_{night.NIGHT}_0003", "cs2"))
    assert set(rows) == expected
    for (label, mode), row in rows.items():
        if label.endswith("0003"):
            # the damaged run: its failure, with the log linked
            assert row["DL1"] == "failed (exit 2)" and row["DL2"] == "skipped"
            continue
        path = target / mode / "dl1" / f"{label}.dl1.h5"
        tel_id = None if mode == "stereo" else 20 + int(mode[2])
        assert int(row["events"]) == dl1_events(path, tel_id), (label, mode)
        assert row["DL1"] == row["DL2"] == row["DL3"] == "complete"
    bad = night_page.text.split("Runs that look bad", 1)[1].split("Runs\n", 1)[0]
    assert f"SST1M2_{night.NIGHT}_0003 (cs2): dl1 failed" in bad
    assert "corrupted data" in bad
    # 2 pedestal events per run: too few for the cleaning's NSB statistics
    assert "few pedestal events (2, fewer than 50)" in bad


def test_theta2_numbers_are_the_products(night_page, processed_night):
    """ON, OFF and the significance in the page are gammapy's on the DL3 files."""
    source = SkyCoord(*night.source_position(), unit="deg")
    shown = theta2_tables(night_page)
    assert len(shown) == 3
    for row, mode in zip(shown, ("cs1", "cs2", "stereo"), strict=True):
        store = DataStore.from_dir(processed_night["dir"] / night.SOURCE / mode / "dl3")
        counts = theta2_counts(
            store.get_observations(required_irf="all-optional"), source
        )
        assert int(row["ON"]) == counts.n_on and int(row["OFF"]) == counts.n_off
        assert float(row["significance (sigma)"]) == pytest.approx(
            counts.significance, abs=0.005
        )


def test_missing_products_marked_not_fatal(processed_night, toy_dl2, tmp_path, capsys):
    """
    No DL3 index for cs2, no DL2 for stereo, a damaged DL1: sections marked
    missing, the damaged file named among the runs that look bad.
    """
    night_dir = tmp_path / night.NIGHT
    shutil.copytree(
        processed_night["dir"], night_dir, ignore=shutil.ignore_patterns("*.pdf")
    )
    for name in ("hdu-index.fits.gz", "obs-index.fits.gz"):
        (night_dir / night.SOURCE / "cs2/dl3" / name).unlink()
    shutil.rmtree(night_dir / night.SOURCE / "stereo/dl2")
    # and a DL1 file damaged after the night (cut in half)
    damaged = night_dir / night.SOURCE / "cs1/dl1" / f"SST1M1_{night.NIGHT}_0002.dl1.h5"
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    output = tmp_path / "report.html"
    code = run_tool(
        NightReportTool(),
        [
            str(night_dir),
            f"--output={output}",
            "--no-pdf",
            "--no-progress",
            # the stereo models' training gammas, drawn with the data
            f"--simulation=stereo={toy_dl2['gamma_energy']}",
        ],
        raises=False,
    )
    assert code == 0
    text = output.read_text()
    assert f"missing: {night.SOURCE} cs2: no DL3 index in" in text
    assert f"missing: {night.SOURCE} stereo: no DL2 product" in text
    assert f"{damaged}: unreadable HDF5 (truncated" in text
    # as many simulated images drawn as the file has surviving the cleaning
    with tables.open_file(toy_dl2["gamma_energy"]) as h5file:
        drawn = []
        for tel_id in (21, 22):
            table = h5file.get_node(f"{DL1_TEL_PARAMETERS_GROUP}/tel_{tel_id:03d}")
            intensity = table.col("hillas_intensity")
            n_images = np.count_nonzero(np.isfinite(intensity) & (intensity > 0))
            drawn.append(f"{n_images} of tel {tel_id}")
    assert f"(dashed: simulated images, {' and '.join(drawn)}, scaled" in text
    # the other sections are there
    assert text.count("theta² counts") == 2
    assert not (tmp_path / "night_report.pdf").exists()
    assert "missing         TestSrc cs2: no DL3 index" in capsys.readouterr().err


def test_bad_night_directory_one_line(tmp_path, capsys):
    code = run_tool(NightReportTool(), [str(tmp_path / "nowhere")], raises=False)
    assert code == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'nowhere'}: no such directory" in err
    empty = tmp_path / "20240101"
    empty.mkdir()
    assert run_tool(NightReportTool(), [str(empty)], raises=False) == 1
    assert "neither products nor nightly_status.ecsv" in capsys.readouterr().err
    assert not list(tmp_path.rglob("*.html"))


def test_theta2_of_a_real_source(tmp_path, observed_dl2, chain, capsys):
    """
    The toy chain's two wobble runs on a toy source, as DL3 of a night: the
    page's significance is that of theta2_counts on the same files, and the
    source is seen.
    """
    dl3 = tmp_path / "20200101" / "ToySrc" / "stereo" / "dl3"
    argv = [*map(str, observed_dl2.values()), f"--irf={chain['irf']}"]
    argv += [f"--cuts={chain['cuts']}", f"--output-dir={dl3}"]
    assert run_tool(DL3Tool(), argv=argv, cwd=tmp_path, raises=False) == 0
    catalogue = tmp_path / "catalogue.ecsv"
    catalogue.write_text(
        "# %ECSV 1.0\n# ---\n# datatype:\n# - {name: name, datatype: string}\n"
        "# - {name: ra, datatype: float64}\n# - {name: dec, datatype: float64}\n"
        f"name ra dec\nToySrc {TARGET[0]} {TARGET[1]}\n"
    )
    output = tmp_path / "report.html"
    argv = [str(tmp_path / "20200101"), f"--output={output}", f"--catalogue={catalogue}"]
    code = run_tool(NightReportTool(), [*argv, "--no-progress", "--no-pdf"], raises=False)
    assert code == 0
    summary = capsys.readouterr().err
    source = SkyCoord(*TARGET, unit="deg")
    counts = theta2_counts(
        DataStore.from_dir(dl3).get_observations(required_irf="all-optional"), source
    )
    assert counts.significance > 5
    line = f"ON {counts.n_on}, OFF {counts.n_off} x {counts.alpha:.2f}"
    assert f"ToySrc stereo  {line}, excess {counts.excess:.1f}, " in summary
    assert f"{counts.significance:.1f} sigma" in summary
    text = output.read_text()
    assert f"<td>{counts.significance:.2f}</td>" in text
    assert "missing: ToySrc stereo: no DL1 product" in text
