"""The SST-1M cleaner on real images, against a straightforward implementation."""

import numpy as np
import pytest
from ctapipe.calib import CameraCalibrator
from ctapipe.image import ImageProcessor
from ctapipe.image.cleaning import ImageCleaner
from ctapipe.tools.process import ProcessorTool
from traitlets.config import Config

from ctapipe_sst1m.calib.pedestals import SlidingPixelWindow
from ctapipe_sst1m.image import SST1MImageCleaner
from ctapipe_sst1m.io import SST1MEventSource

SST1MPIPE = {
    "picture_threshold_pe": 8.0,
    "stdev_scaling": 2.5,
    "boundary_threshold_pe": 4.0,
    "min_picture_neighbors": 2,
    "keep_isolated_pixels": False,
    "time_limit_ns": 8.0,
    "min_time_neighbors": 1,
}
LOW = dict(
    SST1MPIPE, picture_threshold_pe=3.0, stdev_scaling=0.5, boundary_threshold_pe=1.5
)


def _config(cleaner, min_pedestal_images=2, **calibrator):
    """The SST-1M settings; the statistics of the file's 2 pedestal events used
    (as sst1mpipe does), so that the raised thresholds are tested."""
    return Config(
        {
            "CameraCalibrator": {"image_extractor_type": "LocalPeakWindowSum"},
            "LocalPeakWindowSum": {
                "window_width": 7,
                "window_shift": 3,
                "apply_integration_correction": True,
            },
            "ImageProcessor": {"image_cleaner_type": "SST1MImageCleaner"},
            "SST1MImageCleaner": cleaner,
            "SST1MR1Calibrator": calibrator,
            "PedestalChargeMonitor": {"min_pedestal_images": min_pedestal_images},
        }
    )


def _process(path, config, max_events=None):
    with SST1MEventSource(path, config=config, max_events=max_events) as source:
        calibrate = CameraCalibrator(source.subarray, config=config)
        process = ImageProcessor(source.subarray, config=config)
        events = []
        for event in source:
            calibrate(event)
            process(event)
            events.append(event)
    return source, events


def straightforward_cleaning(neighbors, image, times, statistics, settings):
    """The rule of sst1mpipe-reference.md 4.2, pixel by pixel."""
    n = len(image)
    threshold = [settings["picture_threshold_pe"]] * n
    if statistics is not None:
        for i in range(n):
            mean, std = statistics.mean[0][i], statistics.std[0][i]
            raised = mean + settings["stdev_scaling"] * std
            threshold[i] = max(threshold[i], raised)
    above_picture = [image[i] >= threshold[i] for i in range(n)]
    picture = [
        above_picture[i]
        and sum(above_picture[j] for j in neighbors[i])
        >= settings["min_picture_neighbors"]
        for i in range(n)
    ]
    above_boundary = [image[i] >= settings["boundary_threshold_pe"] for i in range(n)]
    mask = []
    for i in range(n):
        has_picture_neighbor = any(picture[j] for j in neighbors[i])
        has_boundary_neighbor = any(above_boundary[j] for j in neighbors[i])
        mask.append(
            (above_boundary[i] and has_picture_neighbor)
            or (picture[i] and has_boundary_neighbor)
        )
    # time cleaning: enough selected neighbours within the time limit
    kept = []
    for i in range(n):
        close = sum(
            1
            for j in neighbors[i]
            if mask[j] and abs(times[i] - times[j]) < settings["time_limit_ns"]
        )
        kept.append(mask[i] and close >= settings["min_time_neighbors"])
    return np.array(kept)


def test_found_by_ctapipe_process(capsys):
    assert "SST1MImageCleaner" in ImageCleaner.non_abstract_subclasses()
    ProcessorTool().print_help(classes=True)
    assert "SST1MImageCleaner.stdev_scaling" in capsys.readouterr().out


def test_reference_masks(embedded_raw_file, shared_reference):
    """sst1mpipe's settings and gain unit: its masks of the first 3 events."""
    reference = np.load(shared_reference / "sst1mpipe_dl1_images_first3.npz")
    _, events = _process(
        embedded_raw_file, _config(SST1MPIPE, gain_pulse_fraction=1.0), max_events=3
    )
    for i, event in enumerate(events):
        np.testing.assert_array_equal(
            event.dl1.tel[22].image_mask, reference["image_mask"][i]
        )


@pytest.mark.slow
@pytest.mark.parametrize("settings", [SST1MPIPE, LOW], ids=["sst1mpipe", "low"])
def test_against_straightforward_rule(embedded_raw_file, settings):
    source, events = _process(embedded_raw_file, _config(settings))
    geometry = source.subarray.tel[22].camera.geometry
    neighbors = [np.flatnonzero(row) for row in geometry.neighbor_matrix]
    n_kept = []
    for event in events:
        dl1 = event.dl1.tel[22]
        statistics = event.monitoring.tel[22].camera.pixel_statistics.pedestal_image
        expected = straightforward_cleaning(
            neighbors, dl1.image, dl1.peak_time, statistics, settings
        )
        np.testing.assert_array_equal(dl1.image_mask, expected)
        n_kept.append(expected.sum())
    assert len(events) == 32
    if settings is LOW:
        # the low thresholds keep NSB clusters: every branch of the rule is used
        assert np.count_nonzero(n_kept) > 20


@pytest.mark.slow
def test_raised_thresholds_matter(embedded_raw_file):
    """Without the pedestal statistics the same low settings keep more pixels."""
    _, with_statistics = _process(embedded_raw_file, _config(LOW))
    config = _config(LOW)
    config.SST1MEventSource.pedestal_charge_statistics = False
    _, without = _process(embedded_raw_file, config)
    kept = [e.dl1.tel[22].image_mask.sum() for e in with_statistics]
    kept_fixed = [e.dl1.tel[22].image_mask.sum() for e in without]
    assert all(a <= b for a, b in zip(kept, kept_fixed, strict=True))
    assert sum(kept) < sum(kept_fixed)


def test_no_statistics_means_fixed_thresholds(embedded_raw_file):
    source, events = _process(embedded_raw_file, _config(LOW), max_events=1)
    cleaner = SST1MImageCleaner(source.subarray, **LOW)
    dl1 = events[0].dl1.tel[22]
    geometry = source.subarray.tel[22].camera.geometry
    neighbors = [np.flatnonzero(row) for row in geometry.neighbor_matrix]
    mask = cleaner(22, dl1.image, dl1.peak_time, monitoring=None)
    expected = straightforward_cleaning(neighbors, dl1.image, dl1.peak_time, None, LOW)
    np.testing.assert_array_equal(mask, expected)


def test_pedestal_statistics_of_the_run(embedded_raw_file):
    """The statistics are those of the run's 2 pedestal images, from event 0 on
    (primed), computed as the cleaner's input."""
    source, events = _process(embedded_raw_file, _config(SST1MPIPE))
    pedestals = [e for e in events if e.trigger.event_type.name == "SKY_PEDESTAL"]
    assert len(pedestals) == 2
    images = np.array([e.dl1.tel[22].image for e in pedestals])
    for event in events:
        statistics = event.monitoring.tel[22].camera.pixel_statistics.pedestal_image
        np.testing.assert_allclose(statistics.mean[0], images.mean(axis=0), atol=1e-4)
        np.testing.assert_allclose(statistics.std[0], images.std(axis=0), atol=1e-3)
    assert source.pedestal_charges.n_images(22) == 2


def test_running_statistics_window():
    rng = np.random.default_rng(0)
    images = rng.normal(3, 1, (50, 10))
    window = SlidingPixelWindow(10, size=20)
    for n, image in enumerate(images, start=1):
        window.add(image)
        latest = images[max(n - 20, 0) : n]
        assert len(window) == len(latest)
        np.testing.assert_allclose(window.mean, latest.mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(window.std, latest.std(axis=0), rtol=1e-9)


@pytest.mark.parametrize(
    ("bins", "picture"),
    [
        # the run's NSB level is about 2.8 p.e.: a bin from 2.0 p.e. applies ...
        ([{"tel_id": 22, "min_nsb_level": 2.0, "picture_threshold_pe": 3.0}], 3.0),
        # ... the highest bin below the level wins ...
        (
            [
                {"min_nsb_level": 0.0, "picture_threshold_pe": 6.0},
                {"min_nsb_level": 2.0, "picture_threshold_pe": 3.0},
                {"min_nsb_level": 5.0, "picture_threshold_pe": 20.0},
            ],
            3.0,
        ),
        # ... bins above the level or of another telescope do not
        ([{"min_nsb_level": 5.0, "picture_threshold_pe": 3.0}], 8.0),
        ([{"tel_id": 21, "min_nsb_level": 0.0, "picture_threshold_pe": 3.0}], 8.0),
    ],
)
@pytest.mark.slow
def test_nsb_bins(embedded_raw_file, bins, picture):
    settings = dict(LOW, picture_threshold_pe=8.0)
    source, events = _process(embedded_raw_file, _config(dict(settings, nsb_bins=bins)))
    geometry = source.subarray.tel[22].camera.geometry
    neighbors = [np.flatnonzero(row) for row in geometry.neighbor_matrix]
    expected_settings = dict(settings, picture_threshold_pe=picture)
    for event in events[:8]:
        dl1 = event.dl1.tel[22]
        statistics = event.monitoring.tel[22].camera.pixel_statistics.pedestal_image
        assert 2.0 < np.mean(statistics.mean) < 5.0
        expected = straightforward_cleaning(
            neighbors, dl1.image, dl1.peak_time, statistics, expected_settings
        )
        np.testing.assert_array_equal(dl1.image_mask, expected)


def test_nsb_bins_validated(embedded_raw_file):
    source, _ = _process(embedded_raw_file, _config(SST1MPIPE), max_events=1)
    with pytest.raises(ValueError, match="needs min_nsb_level"):
        SST1MImageCleaner(source.subarray, nsb_bins=[{"picture_threshold_pe": 3.0}])
    with pytest.raises(ValueError, match="unknown: \\['picture'\\]"):
        SST1MImageCleaner(source.subarray, nsb_bins=[{"min_nsb_level": 1, "picture": 3}])


@pytest.mark.slow
def test_fallback_before_the_first_pedestal(embedded_raw_file, caplog):
    """Without pedestal events to start from, events are cleaned with the fixed
    threshold (with a warning) until enough pedestal events have arrived."""
    config = _config(LOW, min_pedestal_images=2)
    config.SST1MR1Calibrator.pedestal_priming_events = 1
    with caplog.at_level("WARNING"):
        source, events = _process(embedded_raw_file, config, max_events=24)
    assert (
        "example_SST1M_20180822.fits.fz: no pedestal events among the first 1 events"
        in caplog.text
    )
    geometry = source.subarray.tel[22].camera.geometry
    neighbors = [np.flatnonzero(row) for row in geometry.neighbor_matrix]
    for event in events:
        statistics = event.monitoring.tel[22].camera.pixel_statistics.pedestal_image
        dl1 = event.dl1.tel[22]
        if event.count < 21:  # the pedestal events are events 4 and 21
            assert statistics.mean is None
            statistics = None
        else:
            assert statistics.mean is not None
        expected = straightforward_cleaning(
            neighbors, dl1.image, dl1.peak_time, statistics, LOW
        )
        np.testing.assert_array_equal(dl1.image_mask, expected)
