"""The same events are cleaned the same way whatever the length of their file."""

from importlib.resources import files

import numpy as np
import pytest
import yaml
from ctapipe.calib import CameraCalibrator
from ctapipe.containers import CameraMonitoringContainer, StatisticsContainer
from ctapipe.core import run_tool
from ctapipe.image import ImageProcessor
from ctapipe.tools.process import ProcessorTool
from traitlets.config import Config

from ctapipe_sst1m.image import SST1MImageCleaner
from ctapipe_sst1m.io import SST1MEventSource

SST1M_YAML = files("ctapipe_sst1m") / "resources/sst1m.yaml"


def _first_ten(path, **monitor):
    """Kept pixels and images of the first 10 events of ``path`` with sst1m.yaml."""
    config = Config(yaml.safe_load(SST1M_YAML.read_text()))
    config.PedestalChargeMonitor = Config(monitor)
    with SST1MEventSource(path, config=config, max_events=10) as source:
        calibrate = CameraCalibrator(source.subarray, config=config)
        process = ImageProcessor(source.subarray, config=config)
        kept, images = [], []
        for event in source:
            calibrate(event)
            process(event)
            kept.append(int(event.dl1.tel[1].image_mask.sum()))
            images.append(event.dl1.tel[1].image)
    return kept, np.array(images)


@pytest.mark.slow
def test_kept_pixels_do_not_depend_on_the_file_length(digicam_files, caplog):
    """The first 10 events of the 2017 run, alone (1 pedestal event) or in the
    100-event file (8): with fewer pedestal events than the minimum both are
    cleaned with the fixed thresholds, and each file says so once."""
    with caplog.at_level("WARNING"):
        kept_10, images_10 = _first_ten(digicam_files["proto_10"])
        kept_100, images_100 = _first_ten(digicam_files["proto_100"])
    # the same events: the voltage drop from 1 or 8 pedestal events differs
    assert np.abs(images_10 - images_100).max() < 0.2
    assert kept_10 == kept_100
    assert sum(kept_10) > 50
    for name, found in (
        ("example_10evts", "1 pedestal event "),
        ("example_100evts", "8 pedestal events "),
    ):
        warnings = [
            r.getMessage()
            for r in caplog.records
            if r.getMessage().startswith(f"{name}.fits.fz: {found}")
        ]
        assert len(warnings) == 1, warnings
        assert "fewer than the 50 the charge statistics need" in warnings[0]
        assert "set PedestalChargeMonitor.min_pedestal_images" in warnings[0]


@pytest.mark.slow
def test_lowered_minimum_uses_the_statistics(digicam_files):
    """With the minimum at 8 the longer file's statistics raise its thresholds:
    the difference the minimum removes."""
    kept_10, _ = _first_ten(digicam_files["proto_10"], min_pedestal_images=8)
    kept_100, _ = _first_ten(digicam_files["proto_100"], min_pedestal_images=8)
    fixed, _ = _first_ten(digicam_files["proto_100"])
    assert kept_10 == fixed
    assert sum(kept_100) < sum(fixed) / 2


@pytest.mark.slow
def test_warning_of_ctapipe_process(digicam_files, tmp_path, capfd):
    """What ctapipe-process prints: one line naming the file, the pedestal
    events found and the setting."""
    argv = [
        f"--input={digicam_files['proto_10']}",
        f"--config={SST1M_YAML}",
        f"--output={tmp_path / 'out.dl1.h5'}",
    ]
    assert run_tool(ProcessorTool(), argv, cwd=tmp_path) == 0
    err = capfd.readouterr().err
    line = (
        "example_10evts.fits.fz: 1 pedestal event among the first 10 events, fewer "
        "than the 50 the charge statistics need: fixed picture thresholds until "
        "there are 50; set PedestalChargeMonitor.min_pedestal_images to use fewer"
    )
    assert err.count(line) == 1


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_nan_statistics_are_fixed_thresholds(embedded_raw_file):
    """A chunk of statistics marked invalid reads as NaN everywhere: the fixed
    thresholds, as without statistics, and no NSB bin."""
    with SST1MEventSource(embedded_raw_file, max_events=1) as source:
        subarray = source.subarray
    rng = np.random.default_rng(3)
    image = rng.exponential(4.0, 1296)
    times = rng.normal(80, 2, 1296)
    cleaner = SST1MImageCleaner(
        subarray, nsb_bins=[{"min_nsb_level": 0.0, "picture_threshold_pe": 20.0}]
    )
    nan = CameraMonitoringContainer()
    nan.pixel_statistics.pedestal_image = StatisticsContainer(
        mean=np.full((1, 1296), np.nan), std=np.full((1, 1296), np.nan)
    )
    with_nan = cleaner(22, image, times, monitoring=nan)
    without = cleaner(22, image, times, monitoring=CameraMonitoringContainer())
    np.testing.assert_array_equal(with_nan, without)
    assert without.sum() > 5
