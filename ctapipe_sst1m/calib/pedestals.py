"""
Pedestal statistics of a run and the NSB-induced voltage drop of the SiPMs.

Night-sky background photons draw current through the bias resistors of the
SiPMs, which lowers their bias voltage, and with it their gain and photo-detection
efficiency. The NSB shows as the baseline variance of pedestal (internally
triggered) events: the variance gives the baseline shift, and the shift gives the
relative drop of gain x PDE (measured in the lab, arXiv:1910.00348, Fig. 11.1).
Charges are divided by this factor.
"""

import numpy as np
from scipy.interpolate import splev

__all__ = [
    "PedestalStatistics",
    "SlidingPixelWindow",
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


class SlidingPixelWindow:
    """
    Mean and standard deviation per pixel of the latest ``size`` vectors added.

    The one sliding window of the pedestal statistics: of the baseline noise
    (`PedestalStatistics`, the voltage drop) and of the pedestal charges
    (`~ctapipe_sst1m.calib.PedestalChargeMonitor`, the cleaning). Fixed memory:
    a ring buffer and running sums, recomputed from the buffer each time it
    wraps so that rounding errors of the subtractions do not build up over a
    night.

    Parameters
    ----------
    n_pixels : int
    size : int
        Vectors kept.

    Raises
    ------
    ValueError
        If ``size`` is below 1: nothing would be kept.
    """

    def __init__(self, n_pixels, size):
        if size < 1:
            raise ValueError(f"max_events = {size}: must be at least 1")
        self._values = np.zeros((size, n_pixels))
        self._sum = np.zeros(n_pixels)
        self._sum2 = np.zeros(n_pixels)
        self._n = 0
        self._next = 0

    def __len__(self):
        return self._n

    def add(self, values):
        """
        Add one vector.

        Parameters
        ----------
        values : numpy.ndarray
            (n_pixels,)
        """
        values = np.asarray(values, dtype=np.float64)
        if self._n == len(self._values):
            old = self._values[self._next]
            self._sum -= old
            self._sum2 -= old**2
        else:
            self._n += 1
        self._values[self._next] = values
        self._sum += values
        self._sum2 += values**2
        self._next = (self._next + 1) % len(self._values)
        if self._next == 0:
            self._sum = self._values.sum(axis=0)
            self._sum2 = (self._values**2).sum(axis=0)

    @property
    def mean(self):
        """Mean per pixel over the window, None if empty."""
        if self._n == 0:
            return None
        return self._sum / self._n

    @property
    def std(self):
        """Standard deviation per pixel over the window, None if empty."""
        if self._n == 0:
            return None
        mean = self._sum / self._n
        return np.sqrt(np.maximum(self._sum2 / self._n - mean**2, 0.0))


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
        self.max_events = max_events
        self._window = None

    def __len__(self):
        return 0 if self._window is None else len(self._window)

    def add(self, samples):
        """
        Add a pedestal event.

        Parameters
        ----------
        samples : numpy.ndarray
            Raw ADC samples, shape (n_pixels, n_samples).
        """
        if self._window is None:
            self._window = SlidingPixelWindow(len(samples), self.max_events)
        self._window.add(samples.std(axis=1, dtype=np.float64))

    @property
    def pixel_std(self):
        """Mean over the window of the per-event sample std of each pixel, ADC."""
        return None if self._window is None else self._window.mean
