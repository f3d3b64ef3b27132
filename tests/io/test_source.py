"""SST1MEventSource on the real DigiCam files."""

import logging

import astropy.units as u
import numpy as np
import protozfits
import pytest
from astropy.coordinates import AltAz, SkyCoord
from ctapipe.containers import EventType, PixelStatus
from ctapipe.core import ToolConfigurationError
from ctapipe.io import EventSource
from ctapipe.time import time_to_ctao_high_res

from ctapipe_sst1m.io import DigiCamFileError, SST1MEventSource

from ..helpers import add_events_header_card, linked_copy


def _raw_events(path):
    """The raw protozfits events, read independently of the source."""
    with protozfits.File(str(path)) as zfile:
        return [
            (
                e.telescopeID,
                e.eventNumber,
                e.event_type,
                e.local_time_sec,
                e.local_time_nanosec,
                e.hiGain.waveforms.pixelsIndices.copy(),
                e.hiGain.waveforms.samples.copy(),
                e.hiGain.waveforms.baselines.copy(),
            )
            for e in zfile.Events
        ]


def test_found_by_ctapipe(embedded_raw_file):
    with EventSource(embedded_raw_file) as source:
        assert isinstance(source, SST1MEventSource)


def test_embedded_file(embedded_raw_file):
    raw = _raw_events(embedded_raw_file)
    with SST1MEventSource(embedded_raw_file, calibrate_r1=False) as source:
        assert source.tel_id == 22
        assert source.subarray.tel_ids.tolist() == [22]
        assert source.subarray.name == "SST1M_miniarray"
        assert source.obs_id == 201808220000  # no run number in the name
        events = list(source)

    assert len(events) == len(raw) == 32
    assert [e.count for e in events] == list(range(32))
    assert [e.index.event_id for e in events] == list(range(1027888, 1027920))
    types = [e.trigger.event_type for e in events]
    assert types.count(EventType.SUBARRAY) == 30
    assert types.count(EventType.SKY_PEDESTAL) == 2
    assert [e.trigger.event_type for e in events] == [
        EventType.SKY_PEDESTAL if r[2] == 8 else EventType.SUBARRAY for r in raw
    ]
    for event, (tel, number, flags, sec, nsec, index, samples, baselines) in zip(
        events, raw, strict=True
    ):
        assert event.trigger.tels_with_trigger.tolist() == [tel]
        r0 = event.r0.tel[22].waveform
        r1 = event.r1.tel[22]
        assert r0.shape == (1, 1296, 50)
        assert r1.waveform.shape == (1, 1296, 50)
        assert r1.waveform.dtype == np.float32
        np.testing.assert_array_equal(r1.selected_gain_channel, 0)
        assert np.all(r1.pixel_status & PixelStatus.HIGH_GAIN_STORED)
        # software pixel id p was read out in the row where pixelsIndices == p
        rows = samples.reshape(1296, 50)
        pixel = 700
        np.testing.assert_array_equal(r0[0, pixel], rows[index == pixel][0])
        expected_r1 = rows[index == pixel][0] - baselines[index == pixel][0] / 16
        np.testing.assert_allclose(r1.waveform[0, pixel], expected_r1, rtol=1e-6)
        sst1m = event.sst1m.tel[22]
        assert sst1m.camera_event_number == number
        assert sst1m.event_type_flags == flags
        assert sst1m.local_camera_clock == sec * 1_000_000_000 + nsec
        # 2018 clock: UTC, stored by ctapipe as TAI (37 s ahead)
        assert event.trigger.time.scale == "tai"
        stored = time_to_ctao_high_res(event.trigger.time)
        assert stored.tolist() == [sec + 37, nsec * 4]
        assert event.trigger.tel[22].time == event.trigger.time


def test_matches_sst1mpipe_ordering_and_baseline(embedded_raw_file, shared_reference):
    """sst1mpipe's DigiCam baseline and R1 (ADC / dc_to_pe / VI) for the first three
    events: our baseline-subtracted R1 equals theirs times dc_to_pe * VI."""
    ref = np.load(shared_reference / "sst1mpipe_dl1_images_first3.npz")
    with SST1MEventSource(embedded_raw_file, max_events=3, calibrate_r1=False) as source:
        events = list(source)
    good = ~ref["bad_pixel_mask"][0]
    scale = ref["dc_to_pe"] * ref["voltage_drop_factor"]
    for i, event in enumerate(events):
        assert event.index.event_id == ref["event_id"][i]
        np.testing.assert_array_equal(
            event.sst1m.tel[22].digicam_baseline, ref["digicam_baseline"][i]
        )
        ours = event.r1.tel[22].waveform[0]
        theirs = ref["r1_waveform"][i] * scale[:, np.newaxis]
        np.testing.assert_allclose(ours[good], theirs[good], rtol=1e-5, atol=1e-3)


def test_modern_layout_dark_run(digicam_files):
    with SST1MEventSource(digicam_files["dark_2018"]) as source:
        assert source.obs_id == 201808220001
        assert source.digicam_config is not None
        assert len(source.digicam_config.sn) == 39
        events = list(source)
    assert len(events) == 1
    assert events[0].index.event_id == 60636
    # type 8 in a dark run is a dark pedestal
    assert events[0].trigger.event_type == EventType.DARK_PEDESTAL


def test_prototype_camera(digicam_files, caplog):
    path = digicam_files["proto_10"]
    with caplog.at_level(logging.WARNING), SST1MEventSource(path) as source:
        events = list(source)
    assert "telescopeID 1 is not in the SST-1M layout" in caplog.text
    assert "baselines are not 16 x baseline" in caplog.text
    assert source.tel_id == 1
    assert source.subarray.tel_ids.tolist() == [1]
    assert len(events) == 10
    # unscaled baselines: R1 is centred near 0 in the good pixels
    r1 = events[0].r1.tel[1].waveform[0]
    assert abs(np.median(r1[:1000, :10])) < 5

    with SST1MEventSource(path, telescope_id_map={1: 21}) as source:
        assert source.tel_id == 21
        assert next(iter(source)).r1.tel[21].waveform.shape == (1, 1296, 50)

    with pytest.raises(DigiCamFileError, match="telescopeID 1 is not an SST-1M"):
        SST1MEventSource(path, unknown_telescope_template=None)


@pytest.mark.slow
def test_run_in_chunks(tmp_path, digicam_files):
    # two different files of tel 22 as the chunks of one run (identical chunks
    # are refused as copies)
    for chunk, name in (("000", "science_2018"), ("001", "dark_2018")):
        linked_copy(
            digicam_files[name], tmp_path / f"SST1M2_20180822_0007.{chunk}.fits.fz"
        )
    with SST1MEventSource(tmp_path / "SST1M2_20180822_0007.000.fits.fz") as source:
        assert len(source.files) == 2
        assert source.obs_id == 201808220007
        events = list(source)
    assert len(events) == 33
    assert [e.count for e in events] == list(range(33))
    with SST1MEventSource(
        tmp_path / "SST1M2_20180822_0007.000.fits.fz", multi_file=False
    ) as source:
        assert len(list(source)) == 32


def test_copied_chunks(tmp_path, embedded_raw_file):
    for chunk in ("000", "001"):
        linked_copy(embedded_raw_file, tmp_path / f"SST1M2_20180822_0007.{chunk}.fits.fz")
    first = tmp_path / "SST1M2_20180822_0007.000.fits.fz"
    with pytest.raises(DigiCamFileError, match="identical content"):
        SST1MEventSource(first)
    # benchmarks build long runs from copies of one file
    with SST1MEventSource(first, allow_copied_chunks=True) as source:
        assert len(list(source)) == 64


def test_file_list_order_and_mixed_telescopes(tmp_path, digicam_files):
    files = [
        linked_copy(
            digicam_files["dark_2018"], tmp_path / "SST1M2_20180822_0001.000.fits.fz"
        ),
        linked_copy(
            digicam_files["science_2018"], tmp_path / "SST1M2_20180822_0001.001.fits.fz"
        ),
    ]
    with SST1MEventSource(input_filelist=files) as source:
        ids = [e.index.event_id for e in source]
    assert ids[0] == 60636
    assert ids[1:] == list(range(1027888, 1027920))

    mixed = [
        linked_copy(
            digicam_files["science_2018"], tmp_path / "SST1M2_20180822_0002.000.fits.fz"
        ),
        linked_copy(digicam_files["proto_10"], tmp_path / "example_10evts.fits.fz"),
    ]
    with pytest.raises(DigiCamFileError, match="different runs"):
        SST1MEventSource(input_filelist=mixed)
    mixed[1] = linked_copy(
        digicam_files["proto_10"], tmp_path / "SST1M2_20180822_0002.001.fits.fz"
    )
    # the telescope of a file is checked when the file is reached: its first
    # event is not decoded just to open the run
    with SST1MEventSource(input_filelist=mixed) as source:
        read = []
        with pytest.raises(DigiCamFileError, match="must come from one telescope") as err:
            read.extend(source)
    assert len(read) == 32
    assert "SST1M2_20180822_0002.001.fits.fz: event" in str(err.value)
    assert "comes from telescope 1" in str(err.value)


def test_max_events_and_allowed_tels(embedded_raw_file):
    with SST1MEventSource(embedded_raw_file, max_events=5) as source:
        assert len(list(source)) == 5
        assert source.completed
    with SST1MEventSource(embedded_raw_file, allowed_tels={21}) as source:
        assert list(source) == []
        assert source.skipped["tel 22 not in allowed_tels"] == 32


def test_swat_ids_required_but_absent(embedded_raw_file):
    with pytest.raises(DigiCamFileError, match="carry no SWAT array event number"):
        SST1MEventSource(embedded_raw_file, event_id_source="swat")


def _expected_altaz(source, event, ra, dec):
    location = source.subarray.tel_earth_locations[22]
    coord = SkyCoord(ra=ra * u.deg, dec=dec * u.deg)
    return coord.transform_to(AltAz(obstime=event.trigger.time, location=location))


def test_pointing_from_target_header(tmp_path, embedded_raw_file):
    path = add_events_header_card(
        embedded_raw_file,
        tmp_path / "SST1M2_20180822_0001.fits.fz",
        "TARGET",
        "Crab_W1_83.633_22.0145",
    )
    with SST1MEventSource(path) as source:
        assert source.target.wobble == "W1"
        ob = source.observation_blocks[source.obs_id]
        assert ob.subarray_pointing_frame.name == "ICRS"
        assert u.isclose(ob.subarray_pointing_lon, 83.633 * u.deg)
        events = list(source)
    for event in events[::7]:
        pointing = event.monitoring.tel[22].pointing
        expected = _expected_altaz(source, event, 83.633, 22.0145)
        assert u.isclose(pointing.altitude, expected.alt, atol=1 * u.arcsec)
        assert u.isclose(pointing.azimuth, expected.az, atol=1 * u.arcsec)
        assert event.monitoring.pointing.array_altitude == pointing.altitude


def test_pointing_override_and_special_targets(tmp_path, embedded_raw_file, caplog):
    path = add_events_header_card(
        embedded_raw_file,
        tmp_path / "SST1M2_20180822_0002.fits.fz",
        "TARGET",
        "Transition",
    )
    with caplog.at_level(logging.WARNING), SST1MEventSource(path) as source:
        event = next(iter(source))
    assert "TARGET is 'Transition' (no sky position)" in caplog.text
    assert np.isnan(event.monitoring.tel[22].pointing.altitude)
    assert source.pointing_table() is None

    with SST1MEventSource(path, pointing_ra=83.633, pointing_dec=22.0145) as source:
        event = next(iter(source))
    expected = _expected_altaz(source, event, 83.633, 22.0145)
    assert u.isclose(
        event.monitoring.tel[22].pointing.altitude, expected.alt, atol=1 * u.arcsec
    )

    with pytest.raises(ToolConfigurationError, match="set both"):
        SST1MEventSource(path, pointing_ra=83.633)

    garbled = add_events_header_card(
        embedded_raw_file,
        tmp_path / "SST1M2_20180822_0003.fits.fz",
        "TARGET",
        "Crab,83.6",
    )
    with pytest.raises(DigiCamFileError, match=r"SST1M2_20180822_0003.*TARGET"):
        SST1MEventSource(garbled)


def test_trigger_traces(embedded_raw_file):
    with SST1MEventSource(
        embedded_raw_file, read_trigger_traces=True, max_events=1
    ) as source:
        event = next(iter(source))
    data = event.sst1m.tel[22]
    assert data.trigger_input_traces.shape == (432, 50)
    assert data.trigger_output_patch7.shape == (432, 50)
    assert data.trigger_output_patch7.dtype == bool
    # the first event triggered on patch7: two bits set (test-data.md 1.1)
    assert data.trigger_output_patch7.sum() == 2
    assert not data.trigger_output_patch19.any()
    # the trigger input follows the pixel signal: 144 ... values, not all zero
    assert data.trigger_input_traces.max() > 0


def test_plugin_version_reported():
    """ctapipe-info --plugins reads __version__ from the source's module."""
    import importlib

    import ctapipe_sst1m

    module = importlib.import_module(SST1MEventSource.__module__)
    assert module.__version__ == ctapipe_sst1m.__version__ != "0.0.0+unknown"
