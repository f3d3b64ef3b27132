"""
Pedestal statistics of a run and the NSB-induced voltage drop of the SiPMs.

Night-sky background photons draw current through the bias resistors of the
SiPMs, which lowers their bias voltage, and with it their gain and photo-detection
efficiency. The NSB shows as the baseline variance of pedestal (internally
triggered) events: the variance gives the baseline shift, and the shift gives the
relative drop of gain x PDE (measured in the lab, arXiv:1910.00348, Fig. 11.1).
Charges are divided by this factor.
"""

from collections import deque

import numpy as np
from scipy.interpolate import splev

__all__ = [
    "PedestalStatistics",
    "baseline_shift",
    "voltage_drop_factor",
]

#: B-splines (knots, coefficients, degree) from raw-baseline variance (ADC^2) to
#: baseline shift (ADC), per telescope; extrapolated outside the knots
BASELINE_SHIFT_SPLINES = {
    21: (
        [0, 0, 0, 46.9697, 60.9091, 67.5758, 74.2424, 74.2424, 74.2424],
        [-0.43679, 9.08788, 39.66927, 54.18390, 69.24518, 104.29418, 0, 0, 0],
        2,
    ),
    22: (
        [0, 0, 93.7474, 126.4623, 181.5441, 256.8040, 266.6229, 292.9881, 294.7140,
         295.6707, 298.0405, 339.9103, 339.9103],
        [-1.74764, 48.41280, 68.36843, 104.62272, 168.14318, 179.34290, 212.07401,
         214.10474, 215.17018, 217.78281, 268.19129, 0, 0],
        1,
    ),
}  # fmt: skip
#: relative change of gain and of PDE per ADC of baseline shift, per telescope
GAIN_DROP_PER_ADC = {21: -0.00487, 22: -0.00118}
PDE_DROP_PER_ADC = {21: -0.00317, 22: -0.000663}


def _model_tel(tel_id):
    if tel_id not in BASELINE_SHIFT_SPLINES:
        raise ValueError(
            f"No voltage-drop model for tel {tel_id} (known: "
            f"{sorted(BASELINE_SHIFT_SPLINES)})"
        )
    return tel_id


def baseline_shift(variance, tel_id):
    """
    Baseline shift in ADC caused by the NSB, from the raw-baseline variance.

    Parameters
    ----------
    variance : float or array
        Variance of the raw ADC samples of pedestal events, ADC^2.
    tel_id : int

    Returns
    -------
    float or array
    """
    return splev(variance, BASELINE_SHIFT_SPLINES[_model_tel(tel_id)])


def voltage_drop_factor(variance, tel_id):
    """
    Relative gain x PDE of the SiPMs at a given NSB, 1 without NSB.

    Parameters
    ----------
    variance : float or array
        Raw-baseline variance, ADC^2.
    tel_id : int

    Returns
    -------
    float or array
        ``1 + shift * (gain slope + PDE slope)``; charges are divided by it.
    """
    shift = baseline_shift(variance, tel_id)
    return 1 + shift * (GAIN_DROP_PER_ADC[tel_id] + PDE_DROP_PER_ADC[tel_id])


class PedestalStatistics:
    """
    Per-pixel baseline noise of the latest pedestal events of a run.

    Keeps, for each of the last ``max_events`` pedestal events, the standard
    deviation over the samples of each pixel's raw ADC waveform; memory is fixed.

    Parameters
    ----------
    max_events : int
        Size of the sliding window.

    Raises
    ------
    ValueError
        If ``max_events`` is below 1: no event would be kept.
    """

    def __init__(self, max_events=100):
        if max_events < 1:
            raise ValueError(f"max_events = {max_events}: must be at least 1")
        self._std = deque(maxlen=max_events)
        self._mean = None

    def __len__(self):
        return len(self._std)

    def add(self, samples):
        """
        Add a pedestal event.

        Parameters
        ----------
        samples : numpy.ndarray
            Raw ADC samples, shape (n_pixels, n_samples).
        """
        self._std.append(samples.std(axis=1, dtype=np.float64))
        self._mean = None

    @property
    def pixel_std(self):
        """Mean over the window of the per-event sample std of each pixel, ADC."""
        if not self._std:
            return None
        if self._mean is None:
            self._mean = np.mean(self._std, axis=0)
        return self._mean
