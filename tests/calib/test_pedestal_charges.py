"""Pedestal charges of the cleaning: the CameraCalibrator's extraction, a minimum."""

import numpy as np
import pytest
from astropy.table import Table
from ctapipe.calib import CameraCalibrator
from ctapipe.image import ImageProcessor
from ctapipe.tools.process import ProcessorTool
from traitlets.config import Config

from ctapipe_sst1m.calib import ConfigurationError
from ctapipe_sst1m.calib.pedestal_charges import (
    MIN_PEDESTAL_IMAGES,
    PedestalChargeMonitor,
    invalidate_small_chunks,
)
from ctapipe_sst1m.instrument import load_sst1m_subarray
from ctapipe_sst1m.io import SST1MEventSource

#: the 2 pedestal events of the embedded 2018 file are enough here
TWO = {"PedestalChargeMonitor": {"min_pedestal_images": 2}}


def _run(path, config):
    """Events of ``path`` calibrated and cleaned as ctapipe-process does."""
    with SST1MEventSource(path, config=config) as source:
        calibrate = CameraCalibrator(source.subarray, config=config)
        process = ImageProcessor(source.subarray, config=config)
        events = []
        for event in source:
            calibrate(event)
            process(event)
            events.append(event)
    return source, events


@pytest.mark.parametrize(
    "extractor", ["LocalPeakWindowSum", "GlobalPeakWindowSum", "NeighborPeakWindowSum"]
)
def test_statistics_are_those_of_the_pedestal_images(embedded_raw_file, extractor):
    """Whatever extractor the CameraCalibrator is given, the statistics the
    cleaner receives are the mean and std of the pedestal events' DL1 images."""
    config = Config({"CameraCalibrator": {"image_extractor_type": extractor}, **TWO})
    source, events = _run(embedded_raw_file, config)
    assert type(source.pedestal_charges.extractors[22]).__name__ == extractor
    images = np.array(
        [
            e.dl1.tel[22].image
            for e in events
            if e.trigger.event_type.name == "SKY_PEDESTAL"
        ]
    )
    assert len(images) == 2
    for event in events:
        statistics = event.monitoring.tel[22].camera.pixel_statistics.pedestal_image
        np.testing.assert_allclose(statistics.mean[0], images.mean(axis=0), atol=1e-4)
        np.testing.assert_allclose(statistics.std[0], images.std(axis=0), atol=1e-3)


def test_extractors_give_other_statistics(embedded_raw_file):
    """The comparison above can fail: the extractors' pedestal charges differ."""
    means = {}
    for extractor in ("LocalPeakWindowSum", "GlobalPeakWindowSum"):
        config = Config({"CameraCalibrator": {"image_extractor_type": extractor}, **TWO})
        with SST1MEventSource(embedded_raw_file, config=config, max_events=1) as source:
            next(iter(source))
            means[extractor] = source.pedestal_charges.statistics(22).mean[0]
    difference = np.abs(means["LocalPeakWindowSum"] - means["GlobalPeakWindowSum"])
    assert np.median(difference) > 0.1


def test_nested_configuration_as_in_ctapipe_process(embedded_raw_file):
    """Inside ctapipe-process the extractor is the tool's CameraCalibrator's,
    also when configured under the tool's section; a section nested under the
    monitor is not the images' and changes nothing."""
    tool = ProcessorTool()
    tool.update_config(
        Config(
            {
                "ProcessorTool": {
                    "CameraCalibrator": {
                        "image_extractor_type": "GlobalPeakWindowSum",
                        "GlobalPeakWindowSum": {"window_width": 5},
                    }
                },
                "PedestalChargeMonitor": {"GlobalPeakWindowSum": {"window_width": 9}},
                **TWO,
            }
        )
    )
    with SST1MEventSource(embedded_raw_file, parent=tool) as source:
        extractor = source.pedestal_charges.extractors[22]
        images = CameraCalibrator(source.subarray, parent=tool).image_extractors
    assert type(extractor).__name__ == "GlobalPeakWindowSum"
    assert extractor.window_width.tel[22] == 5
    assert images["GlobalPeakWindowSum"].window_width.tel[22] == 5


def test_no_statistics_below_the_minimum(embedded_raw_file):
    """The file's 2 pedestal events are fewer than the default minimum."""
    assert MIN_PEDESTAL_IMAGES == 50
    with SST1MEventSource(embedded_raw_file, max_events=1) as source:
        # the look-ahead runs when the first event is asked for
        assert source.pedestal_charges.n_images(22) == 0
        event = next(iter(source))
        assert source.pedestal_charges.n_images(22) == 2
        assert source.pedestal_charges.statistics(22) is None
    assert event.monitoring.tel[22].camera.pixel_statistics.pedestal_image.mean is None


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"min_pedestal_images": 1},
            "PedestalChargeMonitor.min_pedestal_images = 1: must be at least 2",
        ),
        (
            {"min_pedestal_images": 60, "max_pedestal_images": 40},
            "PedestalChargeMonitor.min_pedestal_images = 60: above "
            "max_pedestal_images = 40, the statistics would never be used; set "
            "PedestalChargeMonitor.min_pedestal_images to at most 40",
        ),
    ],
)
def test_minimum_refused(settings, message):
    config = Config({"PedestalChargeMonitor": settings})
    with pytest.raises(ConfigurationError) as err:
        PedestalChargeMonitor(load_sst1m_subarray(), config=config)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_invalidate_small_chunks():
    n_events = np.array([8, 100, 50, 49])[:, np.newaxis, np.newaxis] * np.ones((1, 1, 3))
    n_events[2, 0, 1] = 10  # one pixel of a chunk was masked in 40 of its events
    table = Table(
        {
            "n_events": n_events.astype(int),
            "outlier_mask": np.zeros((4, 1, 3), dtype=bool),
            "is_valid": np.ones((4, 1), dtype=bool),
        }
    )
    table["outlier_mask"][1, 0, 2] = True  # an outlier found by a detector
    small = invalidate_small_chunks(table, 50)
    np.testing.assert_array_equal(small, [True, False, False, True])
    np.testing.assert_array_equal(table["is_valid"][:, 0], [False, True, True, False])
    np.testing.assert_array_equal(
        table["outlier_mask"][:, 0],
        [[1, 1, 1], [0, 0, 1], [0, 1, 0], [1, 1, 1]],
    )
