"""Saturated pulses: recovered as sst1mpipe defines it, through stock extraction."""

import numpy as np
import pytest
from ctapipe.calib import CameraCalibrator
from ctapipe.containers import PixelStatus
from traitlets.config import Config

from ctapipe_sst1m.calib import default_gain_table
from ctapipe_sst1m.calib.r0_to_r1 import pulse_fraction
from ctapipe_sst1m.calib.saturation import sampled_reference_pulse
from ctapipe_sst1m.calib.window import default_window_factors
from ctapipe_sst1m.io import SST1MEventSource

from .test_r1_calibration import EXTRACTION

ADC_MAX = 4095  # DigiCam's 12-bit ADC


def sst1mpipe_rule(adc, r1, sample_ns=4.0):
    """Straightforward transcription of the rule (sst1mpipe-reference.md 3.6)."""
    maximum = adc.max()
    if maximum <= 3000:
        return None
    above = np.flatnonzero(adc > 2500)
    if len(above) <= 5:
        return None
    level = 0.2 * maximum
    start = next(i for i, a in enumerate(adc) if a >= level)
    peak = int(np.argmax(adc))
    stop = next((i for i in range(peak, len(adc)) if adc[i] < level), len(adc) - 1)
    return r1[start : stop + 1].sum(), (len(above) / 2 + above[0]) * sample_ns


@pytest.fixture(scope="module")
def saturated_event(embedded_raw_file):
    """A real NSB event with huge pulses injected and clipped at the ADC range."""
    config = Config(EXTRACTION)
    with SST1MEventSource(embedded_raw_file, config=config) as source:
        events = list(source)
        event = events[10]
        calibrator = source.r1_calibrator
        readout = source.subarray.tel[22].camera.readout
        scale_adc = (
            default_gain_table(22).dc_to_pe
            / pulse_fraction(readout)
            * default_window_factors(22)
            * calibrator.voltage_drop(22)
        )
        outliers = event.monitoring.tel[22].camera.coefficients.outlier_mask[0]
        rng = np.random.default_rng(3)
        pixels = rng.choice(np.flatnonzero(~outliers), 60, replace=False)
        charges = rng.choice([150.0, 400.0, 2000.0, 8000.0], len(pixels))
        pulse = sampled_reference_pulse(readout)
        start = 20 - int(np.argmax(pulse))
        trace = np.zeros(50)
        trace[max(start, 0) : start + len(pulse)] = pulse[max(-start, 0) : 50 - start]
        samples = event.r0.tel[22].waveform[0].astype(np.float64)
        samples[pixels] += (charges * scale_adc[pixels])[:, np.newaxis] * trace
        samples = np.minimum(np.rint(samples), ADC_MAX).astype(np.int16)

        baseline = event.sst1m.tel[22].digicam_baseline
        disabled = event.sst1m.tel[22].pixel_flags == 0
        r1, _, saturated = calibrator(22, samples, baseline, disabled)
        # the reference: the same calibration (same voltage drop) without recovery
        calibrator._telescopes[22].saturation = None
        plain, _, _ = calibrator(22, samples, baseline, disabled)
        event.r1.tel[22].waveform = r1[np.newaxis]
        CameraCalibrator(source.subarray, config=config)(event)
    adc = samples - baseline[:, np.newaxis]
    return event, pixels, charges, adc, plain, saturated


def test_recovered_like_sst1mpipe(saturated_event):
    event, pixels, charges, adc, plain, saturated = saturated_event
    image, peak_time = event.dl1.tel[22].image, event.dl1.tel[22].peak_time
    recovered = 0
    for pixel in pixels:
        expected = sst1mpipe_rule(adc[pixel], plain[pixel])
        if expected is None:
            assert not saturated[pixel]
            continue
        recovered += 1
        assert saturated[pixel]
        charge, time = expected
        assert image[pixel] == pytest.approx(charge, rel=1e-5)
        assert abs(peak_time[pixel] - time) <= 2.0  # ns, half a sample
    # all 8000 p.e. pulses stay above 2500 ADC for more than 5 samples
    assert recovered >= np.count_nonzero(charges == 8000) > 0
    assert np.count_nonzero(saturated) == recovered


def test_recovery_sums_the_whole_pulse(saturated_event):
    """The recovery sums the clipped pulse from 20 % to 20 % of its maximum, more
    than the 7 samples around the flat top that the extraction would take; it
    does not restore the charge lost above the ADC range."""
    event, pixels, charges, _, plain, _ = saturated_event
    image = event.dl1.tel[22].image
    big = pixels[charges == 8000]
    window = np.array([np.sort(plain[p])[-7:].sum() for p in big])
    assert np.all(image[big] > window)
    assert np.all(image[big] < 8000)


def test_saturated_pixel_status(embedded_raw_file, saturated_event):
    _, pixels, charges, _, _, saturated = saturated_event
    assert np.all(saturated[pixels[charges == 8000]])
    assert not np.any(saturated[pixels[charges <= 400]])
    # real 2018 data have no saturated pulse: nothing recovered, no status bit
    with SST1MEventSource(embedded_raw_file) as source:
        for event in source:
            status = event.r1.tel[22].pixel_status
            assert not np.any(status & PixelStatus.SATURATED)
