"""The parts of the source, each on its own: the run, the pixel order, the
pedestal tracker (and that nothing is decoded twice)."""

import numpy as np
import pytest
from traitlets.config import Config

from ctapipe_sst1m.io import SST1MEventSource
from ctapipe_sst1m.io.decoding import DecodedEvent, InProcessDecoder
from ctapipe_sst1m.io.pedestal_tracker import is_pedestal
from ctapipe_sst1m.io.pixel_order import PixelOrder, detect_baseline_scale
from ctapipe_sst1m.io.run import DigiCamRun

from ..helpers import linked_copy


def _event(samples, pixel_index, baselines, flags):
    return DecodedEvent(22, 1, 0, 1, 0, 0, samples.ravel(), pixel_index, baselines, flags)


def test_pixel_order_readout_software_physical():
    rng = np.random.default_rng(1)
    n_pixels, n_samples = 12, 4
    pixel_index = rng.permutation(n_pixels).astype(np.uint16)
    # row r of the readout carries software pixel pixel_index[r]
    software = rng.integers(0, 4000, (n_pixels, n_samples)).astype(np.int16)
    readout = np.empty_like(software)
    readout[np.arange(n_pixels)] = software[pixel_index]
    baselines = (software[:, 0].astype(np.int32) * 16)[pixel_index]
    flags = np.ones(n_pixels, dtype=np.uint16)
    flags[pixel_index == 3] = 0
    # two modules of 2 pixels swapped: physical pixels 0,1 are read as 4,5
    physical_order = np.arange(n_pixels)
    physical_order[[0, 1, 4, 5]] = [4, 5, 0, 1]
    order = PixelOrder(16, physical_order)
    samples, baseline, pixel_flags = order(_event(readout, pixel_index, baselines, flags))
    np.testing.assert_array_equal(samples, software[physical_order])
    np.testing.assert_array_equal(baseline, software[physical_order, 0])
    assert baseline.dtype == np.float32
    assert pixel_flags[physical_order == 3] == 0
    assert pixel_flags.sum() == n_pixels - 1
    # the order is cached, and recomputed when the readout order changes
    assert order.order(pixel_index) is order.order(pixel_index.copy())
    np.testing.assert_array_equal(
        order.order(np.arange(n_pixels, dtype=np.uint16)), physical_order
    )


@pytest.mark.parametrize(
    ("key", "scale"), [("science_2018", 16), ("dark_2018", 16), ("proto_10", 1)]
)
def test_baseline_scale_of_real_files(digicam_files, key, scale):
    _, first = next(InProcessDecoder([digicam_files[key]]).events())
    assert detect_baseline_scale(first) == scale


def test_run_of_real_files(tmp_path, digicam_files):
    dark = DigiCamRun([digicam_files["dark_2018"]])
    assert dark.is_dark_run
    assert dark.n_events == 1
    assert dark.obs_id("20180822") == 201808220001
    assert dark.has_digicam_config

    science = DigiCamRun([digicam_files["science_2018"]])
    assert not science.is_dark_run
    assert science.n_events == 32
    assert science.obs_id("20180822") == 201808220000
    assert science.obs_id("20180822", configured=5) == 5

    chunks = [
        linked_copy(
            digicam_files["proto_10"], tmp_path / f"SST1M1_20171030_0002.{i:03d}.fits.fz"
        )
        for i in (0, 2)
    ]
    run = DigiCamRun(chunks, allow_missing_chunks=True, allow_copied_chunks=True)
    assert run.missing_chunks == [1]
    assert run.n_events == 20
    assert run.obs_id("19700101") == 201710300002


@pytest.mark.parametrize("look_ahead", [1000, 3])
def test_every_event_decoded_once(embedded_raw_file, look_ahead):
    """The first event, the look-ahead and the stream share one decode; the
    file's two pedestal events are counted once each."""
    config = Config({"SST1MR1Calibrator": {"pedestal_priming_events": look_ahead}})
    with SST1MEventSource(embedded_raw_file, config=config) as source:
        assert source.n_decoded == 1
        events = list(source)
        assert source.n_decoded == len(events) == 32
        provenance = source.r1_calibrator.provenance(22)
    assert provenance["n_pedestal_events"] == 2


def test_look_ahead_gives_the_first_events_the_run_voltage_drop(embedded_raw_file):
    """Oracle: the calibrator fed the file's pedestal events by hand."""
    with SST1MEventSource(embedded_raw_file) as source:
        events = list(source)
        tracker = source.pedestals
        assert tracker.n_primed == 32
    decoded = [e for _, e in InProcessDecoder([embedded_raw_file]).events()]
    pedestals = [e for e in decoded if is_pedestal(e)]
    assert len(pedestals) == 2
    with SST1MEventSource(embedded_raw_file) as fresh:
        calibrator = fresh.r1_calibrator
        for e in pedestals:
            calibrator.add_pedestal(22, fresh.pixel_order(e)[0])
        expected = calibrator.voltage_drop(22)
    assert expected != 1.0
    for event in events:
        assert event.sst1m.tel[22].voltage_drop_factor == expected
