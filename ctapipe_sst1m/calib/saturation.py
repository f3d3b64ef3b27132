"""
Recovery of saturated DigiCam pulses.

Large pulses saturate the DigiCam pre-amplifiers and clip at the ADC range, so
the usual 7-sample extraction around the maximum misses most of their charge.
sst1mpipe recovers them as follows, in ADC above the baseline: a pixel whose
maximum exceeds ``threshold`` and which stays above ``width_level`` for more than
``width_samples`` samples gets the plain sum of its calibrated waveform from the
first sample above ``integration_level`` x maximum to the first sample after the
maximum below it (or the end), and a peak time in the middle of its samples
above ``width_level``.

ctapipe's extractors see neither ADC values nor pixel status, so the recovery is
done in R1: the calibrated waveform of a recovered pixel is replaced by the
reference pulse carrying the recovered charge, placed at the recovered peak
time. The stock extraction (``LocalPeakWindowSum`` with integration correction)
then returns that charge exactly, and a peak time within a sample of it.
"""

import numpy as np

__all__ = ["SaturationRecovery", "sampled_reference_pulse"]


def sampled_reference_pulse(readout):
    """
    The reference pulse in waveform samples, with unit sum.

    Binned as ctapipe's ``integration_correction`` bins it, so that extracting a
    multiple of it with integration correction returns the multiple.

    Parameters
    ----------
    readout : ctapipe.instrument.CameraReadout

    Returns
    -------
    numpy.ndarray
    """
    pulse = readout.reference_pulse_shape[0]
    width = readout.reference_pulse_sample_width.to_value("ns")
    sample = (1 / readout.sampling_rate).to_value("ns")
    times = np.arange(0, pulse.size * width, width)
    edges = np.arange(0, pulse.size * width, sample)
    sampled, _ = np.histogram(times, edges, weights=pulse, density=True)
    return sampled * sample


class SaturationRecovery:
    """
    sst1mpipe's saturated-pulse recovery for one telescope.

    Parameters
    ----------
    readout : ctapipe.instrument.CameraReadout
    threshold : float
        ADC above baseline from which a pulse is saturated.
    width_level : float
        ADC above baseline counted for the width of a saturated pulse.
    width_samples : int
        Pulses wider than this are recovered.
    integration_level : float
        Fraction of the maximum delimiting the summed samples.
    window_width, window_shift : int
        The extraction window the replacement pulse is placed for.

    Raises
    ------
    ValueError
        If the window does not hold the peak of the reference pulse
        (``0 <= window_shift < window_width``, shift at most the samples before
        the pulse maximum).
    """

    def __init__(
        self,
        readout,
        threshold=3000.0,
        width_level=2500.0,
        width_samples=5,
        integration_level=0.2,
        window_width=7,
        window_shift=3,
    ):
        self.threshold = threshold
        self.width_level = width_level
        self.width_samples = width_samples
        self.integration_level = integration_level
        self.sample_ns = (1 / readout.sampling_rate).to_value("ns")
        self.template = sampled_reference_pulse(readout)
        self.template_peak = int(np.argmax(self.template))
        # the centroid below is taken over the window around the pulse maximum
        if not 0 <= window_shift < window_width or window_shift > self.template_peak:
            raise ValueError(
                f"window_shift = {window_shift}, window_width = {window_width}: the "
                "window must hold the pulse maximum, 0 <= window_shift < window_width "
                f"and window_shift <= {self.template_peak}"
            )
        window = slice(
            self.template_peak - window_shift,
            self.template_peak - window_shift + window_width,
        )
        weights = self.template[window]
        positions = np.arange(window.start, window.stop)
        # charge-weighted time of the extraction window relative to the maximum
        self.centroid = (
            float(np.sum(positions * weights) / weights.sum()) - self.template_peak
        )
        self.window_shift = window_shift
        self.window_width = window_width

    def saturated(self, adc_above_baseline):
        """Pixels whose pulse exceeds the threshold (ADC above baseline, per pixel)."""
        # most events saturate nothing: one maximum over the whole event (3 us)
        # spares the maxima of the 1296 rows (60 us)
        if adc_above_baseline.max() <= self.threshold:
            return np.zeros(len(adc_above_baseline), dtype=bool)
        return adc_above_baseline.max(axis=1) > self.threshold

    def recover(self, r1, adc_above_baseline, candidates):
        """
        Replace the R1 waveforms of recovered pixels, in place.

        Parameters
        ----------
        r1 : numpy.ndarray
            Calibrated waveforms (n_pixels, n_samples), p.e. per sample.
        adc_above_baseline : numpy.ndarray
            The same waveforms in ADC above baseline, rows of ``candidates`` only.
        candidates : numpy.ndarray
            Indices of the saturated pixels.

        Returns
        -------
        charge, peak_time : numpy.ndarray
            Recovered charge (p.e.) and peak time (ns), NaN for pixels too narrow
            to be recovered.
        """
        n_samples = r1.shape[1]
        charge = np.full(len(candidates), np.nan)
        peak_time = np.full(len(candidates), np.nan)
        for i, (pixel, adc) in enumerate(
            zip(candidates, adc_above_baseline, strict=True)
        ):
            above = np.flatnonzero(adc > self.width_level)
            if len(above) <= self.width_samples:
                continue
            maximum = adc.max()
            level = self.integration_level * maximum
            start = int(np.argmax(adc >= level))
            after = np.flatnonzero(adc[np.argmax(adc) :] < level)
            stop = int(np.argmax(adc)) + int(after[0]) if len(after) else n_samples - 1
            charge[i] = r1[pixel, start : stop + 1].sum()
            peak_time[i] = (len(above) / 2 + above[0]) * self.sample_ns
            r1[pixel] = self._pulse(charge[i], peak_time[i], n_samples)
        return charge, peak_time

    def _pulse(self, charge, peak_time, n_samples):
        """``charge`` in the reference pulse, extracted at ``peak_time``."""
        peak = round(peak_time / self.sample_ns - self.centroid)
        # keep the extraction window inside the trace
        peak = min(
            max(peak, self.window_shift),
            n_samples - self.window_width + self.window_shift,
        )
        waveform = np.zeros(n_samples, dtype=np.float32)
        first = peak - self.template_peak
        source = slice(max(0, -first), min(len(self.template), n_samples - first))
        waveform[first + source.start : first + source.stop] = self.template[source]
        return charge * waveform
