"""R0 -> R1 -> DL1 calibration against sst1mpipe's arrays and injected signals."""

import numpy as np
import pytest
from astropy.time import Time
from ctapipe.calib import CameraCalibrator
from traitlets.config import Config

from ctapipe_sst1m.calib import SST1MR1Calibrator, default_gain_table
from ctapipe_sst1m.calib.r0_to_r1 import pulse_fraction
from ctapipe_sst1m.calib.window import default_window_factors, module_swap_permutation
from ctapipe_sst1m.instrument import load_sst1m_subarray
from ctapipe_sst1m.io import SST1MEventSource

EXTRACTION = {
    "CameraCalibrator": {
        "image_extractor_type": "LocalPeakWindowSum",
        "invalid_pixel_handler_type": "NeighborAverage",
    },
    "LocalPeakWindowSum": {
        "window_width": 7,
        "window_shift": 3,
        "apply_integration_correction": True,
    },
}


def _events(path, max_events=None, **calibrator):
    config = Config({**EXTRACTION, "SST1MR1Calibrator": calibrator})
    with SST1MEventSource(path, config=config, max_events=max_events) as source:
        calibrate = CameraCalibrator(source.subarray, config=config)
        events = []
        for event in source:
            calibrate(event)
            events.append(event)
        return source, events


@pytest.fixture(scope="module")
def reference(shared_reference):
    return np.load(shared_reference / "sst1mpipe_dl1_images_first3.npz")


@pytest.fixture(scope="module")
def gain_swap():
    """Deliberate difference: the tel 22 gains were measured while modules 59 and
    88 were swapped, so they are un-swapped for 2018 data; sst1mpipe uses them as
    they are. Returns the permutation and our gain / sst1mpipe's gain per pixel."""
    permutation = module_swap_permutation(22, Time("2024-02-15"))
    gains = default_gain_table(22)
    with np.errstate(invalid="ignore"):
        ratio = gains.dc_to_pe[permutation] / gains.dc_to_pe
    return permutation, np.where(np.isfinite(ratio), ratio, 1.0)


@pytest.fixture(scope="module")
def sst1mpipe_convention(embedded_raw_file):
    """The first three events calibrated with sst1mpipe's gain convention."""
    return _events(embedded_raw_file, max_events=3, gain_pulse_fraction=1.0)


def test_gains_and_voltage_drop(reference, sst1mpipe_convention):
    source, _ = sst1mpipe_convention
    good = ~reference["calib_flag_bad"]
    gains = default_gain_table(22)
    np.testing.assert_array_equal(gains.bad, reference["calib_flag_bad"])
    np.testing.assert_array_equal(gains.dc_to_pe[good], reference["dc_to_pe"][good])
    # sst1mpipe's spline coefficients have more digits than its documentation,
    # which this package uses: 3e-8 relative, below float32 resolution
    vi = source.r1_calibrator.voltage_drop(22)
    assert vi == pytest.approx(float(reference["voltage_drop_factor"]), rel=1e-7)


def test_bad_pixels(reference, sst1mpipe_convention, gain_swap):
    _, events = sst1mpipe_convention
    permutation, _ = gain_swap
    calib_bad = reference["calib_flag_bad"]
    for i, event in enumerate(events):
        outliers = event.monitoring.tel[22].camera.coefficients.outlier_mask[0]
        dead = reference["bad_pixel_mask"][i] & ~calib_bad
        # bad calibrations move with the un-swapped gains, dead pixels do not
        np.testing.assert_array_equal(outliers, calib_bad[permutation] | dead)
        assert outliers.sum() == 22  # 21 bad calibrations + 1 dead pixel
        np.testing.assert_array_equal(event.r1.tel[22].waveform[0][outliers], 0)


def _good(reference, events, i):
    outliers = events[i].monitoring.tel[22].camera.coefficients.outlier_mask[0]
    return ~(reference["bad_pixel_mask"][i] | outliers)


def test_r1_waveforms(reference, sst1mpipe_convention, gain_swap):
    """sst1mpipe divides the image by the window after extraction; here R1 is
    divided by it already (the extraction is linear per pixel): deliberate."""
    _, events = sst1mpipe_convention
    _, gain_ratio = gain_swap
    assert np.count_nonzero(gain_ratio != 1) == 24  # modules 59 and 88
    factor = (default_window_factors(22) * gain_ratio).astype(np.float32)
    for i, event in enumerate(events):
        good = _good(reference, events, i)
        ours = event.r1.tel[22].waveform[0] * factor[:, np.newaxis]
        np.testing.assert_allclose(
            ours[good], reference["r1_waveform"][i][good], rtol=2e-6, atol=2e-6
        )


def test_dl1_images(reference, sst1mpipe_convention, gain_swap):
    source, events = sst1mpipe_convention
    geometry = source.subarray.tel[22].camera.geometry
    _, gain_ratio = gain_swap
    for i, event in enumerate(events):
        good = _good(reference, events, i)
        bad = ~good
        dl1 = event.dl1.tel[22]
        np.testing.assert_allclose(
            (dl1.image * gain_ratio)[good],
            reference["image"][i][good],
            rtol=2e-6,
            atol=2e-6,
        )
        np.testing.assert_allclose(
            dl1.peak_time[good], reference["peak_time"][i][good], rtol=1e-6
        )
        # interpolated pixels: neighbours' charges are window-corrected before the
        # average here, after it in sst1mpipe: a few per cent apart. Pixels next to
        # the un-swapped modules average different neighbours' gains: left out.
        near_swap = geometry.neighbor_matrix[:, gain_ratio != 1].any(axis=1)
        compare = bad & ~near_swap
        # 1168 (module 88) has a bad calibration, which moves to its partner 1101
        assert np.flatnonzero(bad & near_swap).tolist() == [1101, 1168]
        np.testing.assert_allclose(
            dl1.image[compare], reference["image"][i][compare], rtol=0.08, atol=0.05
        )


def test_default_convention_scales_by_pulse_fraction(
    embedded_raw_file, reference, sst1mpipe_convention
):
    """The fixed unit mismatch: a whole p.e. pulse integrates to 1."""
    source, events = _events(embedded_raw_file, max_events=3)
    fraction = pulse_fraction(source.subarray.tel[22].camera.readout)
    assert 0.88 < fraction < 0.93
    bad = reference["bad_pixel_mask"][0]
    for event, theirs in zip(events, sst1mpipe_convention[1], strict=True):
        np.testing.assert_allclose(
            event.dl1.tel[22].image[~bad],
            fraction * theirs.dl1.tel[22].image[~bad],
            rtol=2e-6,
            atol=2e-6,
        )


def _sampled_pulse(readout, peak_sample, n_samples):
    """The reference pulse sampled every 4 ns with its maximum at ``peak_sample``,
    normalised so that the samples sum to 1."""
    pulse = readout.reference_pulse_shape[0]
    width = readout.reference_pulse_sample_width.to_value("ns")
    step = round(4.0 / width)
    peak = int(np.argmax(pulse))
    start = peak - peak_sample * step
    indices = start + step * np.arange(n_samples)
    valid = (indices >= 0) & (indices < len(pulse))
    sampled = np.zeros(n_samples)
    sampled[valid] = pulse[indices[valid]]
    return sampled / sampled.sum()


def test_injected_signal_recovered(digicam_files):
    """Known p.e. put into a real dark-run event of tel 22 through gain, window and
    voltage drop come back out of calibration and extraction."""
    config = Config(EXTRACTION)
    with SST1MEventSource(digicam_files["dark_2018"], config=config) as source:
        (event,) = list(source)
        calibrator = source.r1_calibrator
        readout = source.subarray.tel[22].camera.readout
        extract = CameraCalibrator(source.subarray, config=config)
        raw = event.r0.tel[22].waveform[0]
        vi = calibrator.voltage_drop(22)
        fraction = pulse_fraction(readout)
        gains = default_gain_table(22)
        window = default_window_factors(22)
        outliers = event.monitoring.tel[22].camera.coefficients.outlier_mask[0]

        rng = np.random.default_rng(42)
        pixels = rng.choice(np.flatnonzero(~outliers), 300, replace=False)
        charges = rng.choice([5.0, 20.0, 100.0, 1000.0], len(pixels))
        pulse = _sampled_pulse(readout, peak_sample=22, n_samples=raw.shape[1])
        adc_per_pe = gains.dc_to_pe / fraction * window * vi
        samples = raw.astype(np.float64)
        samples[pixels] += (charges * adc_per_pe[pixels])[:, np.newaxis] * pulse
        injected = np.rint(samples).astype(np.int16)

        baseline = event.sst1m.tel[22].digicam_baseline
        disabled = event.sst1m.tel[22].pixel_flags == 0
        images = []
        for waveform in (raw, injected):
            r1, _, _ = calibrator(22, waveform, baseline, disabled)
            event.r1.tel[22].waveform = r1[np.newaxis]
            extract(event)
            images.append(event.dl1.tel[22].image.copy())
    recovered = images[1][pixels] - images[0][pixels]
    # the 7-sample window holds 98 % of the pulse and the integration correction,
    # averaged over the sampling phase, restores the rest; dark noise ~1 p.e.
    np.testing.assert_allclose(recovered, charges, rtol=0.03, atol=1.5)
    for charge in (100.0, 1000.0):
        ratio = np.median(recovered[charges == charge] / charge)
        assert ratio == pytest.approx(1, abs=0.015)


def _expected_scale(calibrator, tel_id, gain_permutation):
    fraction = calibrator.provenance(tel_id)["gain_pulse_fraction"]
    gains = default_gain_table(tel_id)
    order = (
        np.arange(len(gains.dc_to_pe)) if gain_permutation is None else gain_permutation
    )
    good = ~gains.bad[order]
    expected = fraction / (gains.dc_to_pe[order] * default_window_factors(tel_id))
    return good, expected


@pytest.mark.parametrize(
    ("tel_id", "run_start", "data_swapped", "gains_swapped"),
    [
        # tel 22 gains were averaged while modules 59 and 88 were swapped:
        # they are in recorded order whenever the run is
        (22, "2024-01-01", True, True),
        (22, "2024-08-01", False, True),
        (22, "2018-08-23", False, True),
        # tel 21 gains predate its 8 <-> 9 swap: physical order
        (21, "2026-01-01", True, False),
        (21, "2024-01-01", False, False),
    ],
)
def test_module_swap(tel_id, run_start, data_swapped, gains_swapped):
    calibrator = SST1MR1Calibrator(load_sst1m_subarray())
    permutation = calibrator.prepare(tel_id, Time(run_start))
    assert (permutation is not None) == data_swapped
    if data_swapped:
        assert np.count_nonzero(permutation != np.arange(len(permutation))) == 24
    provenance = calibrator.provenance(tel_id)
    assert provenance["module_swap"] == data_swapped
    assert provenance["gain_module_swap"] == gains_swapped

    swap = 22 if tel_id == 22 else 21
    gain_permutation = (
        module_swap_permutation(swap, Time("2024-01-01" if swap == 22 else "2026-01-01"))
        if gains_swapped
        else None
    )
    good, expected = _expected_scale(calibrator, tel_id, gain_permutation)
    # window factors stay with the physical pixels in every case
    np.testing.assert_allclose(
        calibrator._telescopes[tel_id].scale[good], expected[good], rtol=1e-6
    )


def test_bad_calibration_input(tmp_path, embedded_raw_file, shared_data):
    calibration = shared_data / "calibration"
    other_tel = calibration / "averaged_calib_param_v2_2023_2024_tel1.h5"
    with pytest.raises(ValueError, match="gain calibration of tel 21 given for tel 22"):
        SST1MEventSource(
            embedded_raw_file,
            config=Config({"SST1MR1Calibrator": {"gain_file": str(other_tel)}}),
        )
    garbage = tmp_path / "gains_tel2.h5"
    garbage.write_bytes(b"not an hdf5 file" * 100)
    with pytest.raises((OSError, ValueError), match=r"gains_tel2\.h5"):
        SST1MEventSource(
            embedded_raw_file,
            config=Config({"SST1MR1Calibrator": {"gain_file": str(garbage)}}),
        )
    with pytest.raises(Exception, match="does not exist"):
        SST1MEventSource(
            embedded_raw_file,
            config=Config({"SST1MR1Calibrator": {"gain_file": str(tmp_path / "no.h5")}}),
        )


@pytest.mark.parametrize(("tel_id", "expected"), [(21, 0.9087), (22, 0.9068)])
def test_pulse_fraction_values(tel_id, expected):
    """The fraction of the reference pulse in its best 5 samples (docs figure)."""
    readout = load_sst1m_subarray().tel[tel_id].camera.readout
    assert pulse_fraction(readout) == pytest.approx(expected, abs=5e-4)
