"""Impossible settings of the SST-1M cleaner, refused when ctapipe builds it."""

import numpy as np
import pytest
from ctapipe.image import ImageProcessor
from traitlets import TraitError
from traitlets.config import Config

from ctapipe_sst1m.calib import ConfigurationError
from ctapipe_sst1m.image import SST1MImageCleaner
from ctapipe_sst1m.io import SST1MEventSource


@pytest.fixture(scope="module")
def subarray(embedded_raw_file):
    """The subarray of the real tel 22 file."""
    with SST1MEventSource(embedded_raw_file, max_events=1) as source:
        return source.subarray


def image_processor(subarray, **cleaner):
    config = Config(
        {
            "ImageProcessor": {"image_cleaner_type": "SST1MImageCleaner"},
            "SST1MImageCleaner": cleaner,
        }
    )
    return ImageProcessor(subarray, config=config)


def test_digicam_pixels_have_at_most_6_neighbours(subarray):
    geometry = subarray.tel[22].camera.geometry
    assert geometry.neighbor_matrix.sum(axis=1).max() == 6


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"min_picture_neighbors": 7},
            "SST1MImageCleaner.min_picture_neighbors = 7: must be between 0 and 6 "
            "(the most neighbours a pixel has); set "
            "SST1MImageCleaner.min_picture_neighbors to a value between 0 and 6",
        ),
        ({"min_picture_neighbors": -1}, "must be between 0 and 6"),
        ({"min_time_neighbors": 7}, "SST1MImageCleaner.min_time_neighbors = 7"),
        (
            {"picture_threshold_pe": -1.0},
            "SST1MImageCleaner.picture_threshold_pe = -1.0: must be at least 0; set "
            "SST1MImageCleaner.picture_threshold_pe to a value at least 0",
        ),
        ({"boundary_threshold_pe": float("nan")}, "boundary_threshold_pe = nan"),
        ({"stdev_scaling": -2.5}, "SST1MImageCleaner.stdev_scaling = -2.5"),
        (
            {"time_limit_ns": [["type", "*", 8.0], ["id", 22, -1.0]]},
            "SST1MImageCleaner.time_limit_ns = -1.0 for tel 22: must be at least 0",
        ),
        (
            {"nsb_bins": [{"min_nsb_level": 2.4, "picture_threshold_pe": -9.0}]},
            "SST1MImageCleaner.nsb_bins[0].picture_threshold_pe = -9.0: must be at "
            "least 0",
        ),
        (
            {
                "nsb_bins": [
                    {"min_nsb_level": 0.0},
                    {"min_nsb_level": 2.4, "min_picture_neighbors": 9},
                ]
            },
            "SST1MImageCleaner.nsb_bins[1].min_picture_neighbors = 9: must be between "
            "0 and 6",
        ),
        (
            {"nsb_bins": [{"min_nsb_level": "high"}]},
            "SST1MImageCleaner.nsb_bins[0].min_nsb_level = 'high': must be a number",
        ),
    ],
)
def test_impossible_settings_refused(subarray, settings, message):
    with pytest.raises(ConfigurationError) as err:
        image_processor(subarray, **settings)
    assert message in str(err.value)
    assert "\n" not in str(err.value)
    assert isinstance(err.value, TraitError)


@pytest.mark.parametrize(
    "settings",
    [
        {"min_picture_neighbors": 6, "min_time_neighbors": 0},
        {"min_picture_neighbors": 0, "min_time_neighbors": 6},
        {"picture_threshold_pe": 0.0, "boundary_threshold_pe": 0.0},
        {"time_limit_ns": 0.0, "stdev_scaling": 0.0},
        {"nsb_bins": [{"min_nsb_level": 2.4, "tel_id": 22, "picture_threshold_pe": 9}]},
    ],
)
def test_limits_accepted(subarray, settings):
    cleaner = image_processor(subarray, **settings).clean
    assert isinstance(cleaner, SST1MImageCleaner)
    # below every accepted threshold
    image = np.full(subarray.tel[22].camera.geometry.n_pixels, -1.0)
    mask = cleaner(22, image)
    assert mask.shape == image.shape
    assert not mask.any()
