"""Two-pass recleaning with stock tools and the shipped configs, on a real file."""

import numpy as np
import pytest
from ctapipe.containers import EventType
from ctapipe.core import run_tool
from ctapipe.io import HDF5MonitoringSource, TableLoader, read_table
from ctapipe.tools.calculate_pixel_stats import PixelStatisticsCalculatorTool
from ctapipe.tools.process import ProcessorTool

from ctapipe_sst1m.core.resources import RESOURCES
from ctapipe_sst1m.image import SST1MImageCleaner
from ctapipe_sst1m.io import SST1MEventSource

#: runs ctapipe tools on real or toy files (seconds to minutes each)
pytestmark = pytest.mark.slow

STATS_TABLE = (
    "/dl1/monitoring/telescope/calibration/camera/pixel_statistics/"
    "sky_pedestal_image/tel_001"
)


@pytest.fixture(scope="module")
def two_passes(digicam_files, tmp_path_factory):
    """The 2017 run (100 events, 8 pedestals) through the three stock commands;
    chunks of 3 pedestal events instead of 100, for a short file."""
    tmp = tmp_path_factory.mktemp("reclean")
    raw = digicam_files["proto_100"]
    pedestals, stats, recleaned = (
        tmp / "pedestals.dl1.h5",
        tmp / "stats.h5",
        tmp / "recleaned.dl1.h5",
    )
    data_config = f"--config={RESOURCES / 'sst1m.yaml'}"
    # low thresholds, so that the short file's images keep pixels to compare
    low_thresholds = tmp / "low.yaml"
    low_thresholds.write_text(
        "ImageProcessor:\n  SST1MImageCleaner:\n"
        "    picture_threshold_pe: 3.0\n    boundary_threshold_pe: 1.5\n"
    )
    assert (
        run_tool(
            ProcessorTool(),
            [
                f"--input={raw}",
                data_config,
                f"--config={RESOURCES / 'sst1m_pedestals.yaml'}",
                f"--output={pedestals}",
            ],
            cwd=tmp,
        )
        == 0
    )
    assert (
        run_tool(
            PixelStatisticsCalculatorTool(),
            [
                f"--input_url={pedestals}",
                f"--config={RESOURCES / 'sst1m_pedestal_statistics.yaml'}",
                "--SizeChunking.chunk_size=3",
                "--SizeChunking.chunk_shift=3",
                f"--output_path={stats}",
            ],
            cwd=tmp,
        )
        == 0
    )
    assert (
        run_tool(
            ProcessorTool(),
            [
                f"--input={raw}",
                data_config,
                f"--config={RESOURCES / 'sst1m_reclean.yaml'}",
                f"--HDF5MonitoringSource.input_files={stats}",
                f"--config={low_thresholds}",
                f"--output={recleaned}",
            ],
            cwd=tmp,
        )
        == 0
    )
    return raw, pedestals, stats, recleaned


def test_pass_one_keeps_pedestal_images(two_passes):
    _, pedestals, _, _ = two_passes
    with TableLoader(pedestals) as loader:
        events = loader.read_telescope_events(dl1_images=True)
    assert len(events) == 8
    assert set(events["event_type"]) == {EventType.SKY_PEDESTAL.value}


def test_statistics_per_interval(two_passes):
    _, _, stats, _ = two_passes
    table = read_table(stats, STATS_TABLE)
    # 8 pedestals in chunks of 3: the last chunk ends with the last pedestal
    assert len(table) == 3
    assert np.all(table["n_events"] == 3)
    means = np.median(table["mean"][:, 0], axis=1)
    assert len(set(means)) == 3


def test_recleaned_with_the_interval_statistics(two_passes):
    """Each event's mask is the SST-1M cleaning of its image with the statistics
    of its time interval, and the thresholds differ between intervals."""
    raw, _, stats, recleaned = two_passes
    with TableLoader(recleaned) as loader:
        events = loader.read_telescope_events(dl1_images=True)
    assert len(events) == 100
    with SST1MEventSource(raw) as source:
        subarray = source.subarray
        monitoring = HDF5MonitoringSource(subarray=subarray, input_files=[stats])
        cleaner = SST1MImageCleaner(
            subarray, picture_threshold_pe=3.0, boundary_threshold_pe=1.5
        )
        thresholds = set()
        n_kept = 0
        for event, row in zip(source, events, strict=True):
            assert event.index.event_id == row["event_id"]
            monitoring.fill_monitoring_container(event)
            camera = event.monitoring.tel[1].camera
            thresholds.add(float(np.median(camera.pixel_statistics.pedestal_image.mean)))
            mask = cleaner(1, row["image"], row["peak_time"], monitoring=camera)
            np.testing.assert_array_equal(row["image_mask"], mask)
            n_kept += mask.sum()
    assert len(thresholds) == 3
    assert n_kept > 100


def test_pixel_charge_distributions(two_passes, tmp_path):
    """sst1mpipe's --px-charges: per-pixel histograms of the pedestal charges."""
    _, pedestals, _, _ = two_passes
    output = tmp_path / "pixel_charges.h5"
    argv = [
        f"--input_url={pedestals}",
        f"--config={RESOURCES / 'sst1m_pixel_charges.yaml'}",
        "--SizeChunking.chunk_size=4",
        "--SizeChunking.chunk_shift=4",
        f"--output_path={output}",
    ]
    assert run_tool(PixelStatisticsCalculatorTool(), argv, cwd=tmp_path) == 0
    table = read_table(
        output, STATS_TABLE.replace("pixel_statistics", "pixel_histograms")
    )
    assert len(table) == 2
    edges = table.meta["bin_edges"]
    assert len(edges) == 1001 and edges[0] == -10 and edges[-1] == 40
    with TableLoader(pedestals) as loader:
        images = loader.read_telescope_events(dl1_images=True)["image"]
    for chunk, rows in zip(table, (slice(0, 4), slice(4, 8)), strict=True):
        histogram = chunk["histogram"][:, 0, :]  # (bins, pixels)
        for pixel in (0, 500, 1295):
            expected, _ = np.histogram(images[rows, pixel], bins=edges)
            np.testing.assert_array_equal(histogram[:, pixel], expected)
