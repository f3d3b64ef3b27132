"""
The documented two-pass recleaning and pixel-charge commands, run as written on a
real short run, and ctapipe-sst1m-pixel-statistics' refusals.
"""

import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ctapipe.io import TableLoader, read_table

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
STATISTICS = (
    "/dl1/monitoring/telescope/calibration/camera/pixel_statistics/"
    "sky_pedestal_image/tel_001"
)
HISTOGRAMS = STATISTICS.replace("pixel_statistics", "pixel_histograms")

pytestmark = pytest.mark.slow


def literal_commands(path, start, end=None):
    """The commands (argv) of the literal blocks of ``path`` between two titles."""
    text = path.read_text()
    text = text[text.index(start) : text.index(end) if end else None]
    lines = text.splitlines()
    commands = []
    i = 0
    while i < len(lines):
        if lines[i].startswith("    ctapipe-"):
            command = lines[i].strip()
            while command.endswith("\\"):
                i += 1
                command = command[:-1] + " " + lines[i].strip()
            commands.append(shlex.split(command))
        i += 1
    return commands


RECLEANING = literal_commands(
    REPO / "docs/cleaning.rst", "Two-pass recleaning\n", "Pixel-charge distributions\n"
)
PIXEL_CHARGES = literal_commands(
    REPO / "docs/cleaning.rst", "Pixel-charge distributions\n"
)


def run(argv, cwd):
    """A console script of the venv, as a user runs it."""
    return subprocess.run(
        [str(BIN / argv[0]), *argv[1:]], cwd=cwd, capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def documented_run(digicam_files, tmp_path_factory):
    """The documented commands, verbatim, in a directory holding the shipped
    configurations (ctapipe-sst1m-quickstart) and the 2017 run as RUN.fits.fz
    (100 events, 8 pedestal events); and a single pass to compare with."""
    cwd = tmp_path_factory.mktemp("documented")
    (cwd / "RUN.fits.fz").symlink_to(digicam_files["proto_100"])
    quickstart = run(["ctapipe-sst1m-quickstart", "--workdir", "."], cwd)
    assert quickstart.returncode == 0, quickstart.stderr
    results = [run(argv, cwd) for argv in RECLEANING + PIXEL_CHARGES]
    single = run(
        [
            "ctapipe-process",
            "--input=RUN.fits.fz",
            "--config=sst1m.yaml",
            "--output=RUN.dl1.h5",
        ],
        cwd,
    )
    assert single.returncode == 0, single.stderr
    return cwd, results


def test_documented_commands_are_the_readme_ones():
    """README shows the same commands, with the configurations in analysis/."""
    readme = literal_commands(
        REPO / "README.md", "Two-pass recleaning", "Stereo, models, cuts"
    )
    unprefixed = [[a.replace("analysis/", "") for a in argv] for argv in readme]
    assert unprefixed == RECLEANING + PIXEL_CHARGES
    assert [argv[0] for argv in unprefixed] == [
        "ctapipe-process",
        "ctapipe-sst1m-pixel-statistics",
        "ctapipe-process",
        "ctapipe-sst1m-pixel-statistics",
    ]


def test_every_command_succeeds(documented_run):
    cwd, results = documented_run
    for result in results:
        assert result.returncode == 0, [*result.args, result.stderr[-2000:]]
    assert sorted(p.name for p in cwd.glob("RUN.*.h5")) == [
        "RUN.dl1.h5",
        "RUN.pedestal_stats.h5",
        "RUN.pedestals.dl1.h5",
        "RUN.pixel_charges.h5",
        "RUN.recleaned.dl1.h5",
    ]
    assert not list(cwd.glob(".*.partial"))


def test_the_short_run_is_one_invalid_chunk(documented_run):
    """8 pedestal events: one chunk, fewer than 50, marked invalid, one warning."""
    cwd, results = documented_run
    pass_one, statistics_run = results[:2]
    assert pass_one.stderr.count("8 pedestal events among the first 100 events") == 1
    warning = (
        f"{cwd / 'RUN.pedestals.dl1.h5'}: tel 1: 1 of 1 chunks hold fewer than 50 "
        "images (8): marked invalid, the cleaning keeps its fixed picture thresholds "
        "there; set PixelStatisticsTool.min_events to use fewer"
    )
    assert statistics_run.stderr.count(warning) == 1
    table = read_table(cwd / "RUN.pedestal_stats.h5", STATISTICS)
    assert len(table) == 1
    assert np.all(table["n_events"] == 8)
    assert np.all(table["outlier_mask"])
    assert not np.any(table["is_valid"])


def test_recleaned_as_a_single_pass(documented_run):
    """Pass 2 with an invalid chunk cleans with the fixed thresholds and keeps
    the source's invalid-pixel interpolation: images and masks of a single pass
    (which has too few pedestal events as well)."""
    cwd, _ = documented_run
    with TableLoader(cwd / "RUN.dl1.h5", dl1_images=True) as loader:
        single = loader.read_telescope_events()
    with TableLoader(cwd / "RUN.recleaned.dl1.h5", dl1_images=True) as loader:
        recleaned = loader.read_telescope_events()
    assert len(recleaned) == 100
    np.testing.assert_array_equal(recleaned["image"], single["image"])
    np.testing.assert_array_equal(recleaned["image_mask"], single["image_mask"])
    assert recleaned["image_mask"].sum() > 500


def test_pixel_charge_histograms(documented_run):
    """One chunk of the 8 pedestal events: each pixel's histogram of its charges."""
    cwd, _ = documented_run
    table = read_table(cwd / "RUN.pixel_charges.h5", HISTOGRAMS)
    assert len(table) == 1
    edges = table.meta["bin_edges"]
    assert len(edges) == 1001 and edges[0] == -10 and edges[-1] == 40
    with TableLoader(cwd / "RUN.pedestals.dl1.h5", dl1_images=True) as loader:
        images = loader.read_telescope_events()["image"]
    assert len(images) == 8
    histogram = table["histogram"][0, :, 0, :]  # (bins, pixels)
    for pixel in (0, 500, 1295):
        expected, _ = np.histogram(images[:, pixel], bins=edges)
        np.testing.assert_array_equal(histogram[:, pixel], expected)


def test_lowered_minimum_reproduces_a_single_pass(documented_run):
    """With both minima at 8 the single chunk is what a single pass streams."""
    cwd, _ = documented_run
    commands = [
        [
            "ctapipe-sst1m-pixel-statistics",
            "-i",
            "RUN.pedestals.dl1.h5",
            "--config",
            "sst1m_pedestal_statistics.yaml",
            "-o",
            "stats8.h5",
            "--PixelStatisticsTool.min_events=8",
        ],
        [
            "ctapipe-process",
            "--input=RUN.fits.fz",
            "--config=sst1m.yaml",
            "--config=sst1m_reclean.yaml",
            "--HDF5MonitoringSource.input_files=stats8.h5",
            "--output=recleaned8.dl1.h5",
        ],
        [
            "ctapipe-process",
            "--input=RUN.fits.fz",
            "--config=sst1m.yaml",
            "--PedestalChargeMonitor.min_pedestal_images=8",
            "--output=single8.dl1.h5",
        ],
    ]
    for argv in commands:
        result = run(argv, cwd)
        assert result.returncode == 0, result.stderr[-2000:]
    masks = {}
    for name in ("recleaned8", "single8", "RUN"):
        with TableLoader(cwd / f"{name}.dl1.h5", dl1_images=True) as loader:
            masks[name] = loader.read_telescope_events()["image_mask"]
    np.testing.assert_array_equal(masks["recleaned8"], masks["single8"])
    # the raised thresholds keep fewer pixels than the fixed ones
    assert masks["single8"].sum() < masks["RUN"].sum() / 2


def test_refusals_leave_no_output(documented_run):
    """A refused run writes nothing under the output name; the retry works."""
    cwd, _ = documented_run
    base = [
        "ctapipe-sst1m-pixel-statistics",
        "--config",
        "sst1m_pedestal_statistics.yaml",
    ]
    mixed = run([*base, "-i", "RUN.dl1.h5", "-o", "mixed.h5"], cwd)
    assert mixed.returncode == 2
    assert (
        "RUN.dl1.h5: tel 1 has images of several event types (SKY_PEDESTAL, "
        "SUBARRAY), whose statistics would mix; select one with "
        "EventTypeFilter.allowed_types in ctapipe-process" in mixed.stderr
    )
    assert "Traceback" not in mixed.stderr
    assert not (cwd / "mixed.h5").exists()

    strict = [*base, "-i", "RUN.pedestals.dl1.h5", "-o", "strict.h5"]
    refused = run([*strict, "--SizeChunking.allow_undersized_tables=False"], cwd)
    assert refused.returncode == 2
    assert (
        "tel 1 has 8 images, fewer than SizeChunking.chunk_size = 100; set "
        "SizeChunking.allow_undersized_tables to true (the run as one chunk) or "
        "SizeChunking.chunk_size to at most 8" in refused.stderr
    )
    assert not list(cwd.glob("*strict.h5*"))
    assert run(strict, cwd).returncode == 0


def test_ctapipe_tool_refuses_short_runs(documented_run):
    """Why the package has its own tool: ctapipe 0.32's refuses the short run
    with the same configuration and leaves a file that blocks the retry. If this
    fails, ctapipe has changed and the docs' paragraph on it is out of date."""
    cwd, _ = documented_run
    argv = [
        "ctapipe-calculate-pixel-statistics",
        "-i",
        "RUN.pedestals.dl1.h5",
        "--config",
        "sst1m_pedestal_statistics.yaml",
        "-o",
        "stock.h5",
    ]
    first = run(argv, cwd)
    assert first.returncode == 2
    assert "to a maximum of '8'" in first.stderr
    assert (cwd / "stock.h5").exists()
    retry = run(argv, cwd)
    assert retry.returncode == 2
    assert "exists but neither append nor overwrite allowed" in retry.stderr
