"""
Event time stamps from the DigiCam camera clock.

Every DigiCam event carries ``local_time_sec`` and ``local_time_nanosec``: the
camera clock, disciplined by White Rabbit since 2023-09-25. The clock counts
seconds since 1970-01-01, but on which time scale depends on the epoch of the data:

* **TAI** (White Rabbit, from 2023-09-25): WR distributes PTP time, TAI seconds
  since 1970-01-01T00:00:00 TAI, which is exactly astropy's ``unix_tai`` and
  ctapipe's own time epoch. sst1mpipe assumes this scale too.
* **UTC** (before White Rabbit): the 2017/2018 files were stamped by the camera
  server's system clock in Unix (UTC) seconds: their Events header says
  ``TIMESYS = 'UTC'`` and the first event of ``example_SST1M_20180822.fits.fz``
  (1534982401.67 s) read as Unix UTC is 2018-08-23T00:00:01.67, 0.3 s before
  the file's ``DATE = '2018-08-23T00:00:02'``; read as TAI it would be 37 s earlier.

ctapipe stores times as TAI, so a UTC clock is shifted by the TAI-UTC offset of
the run (constant within a run: leap seconds are added at UTC midnight of
30 June or 31 December, when no SST-1M run is taken). The nanoseconds are kept
exactly: the integer seconds go to the first and the nanoseconds to the second
double of the astropy Time.
"""

import logging

import numpy as np
from astropy.time import Time

__all__ = [
    "WHITE_RABBIT_START",
    "CameraClock",
    "clock_scale_for",
]

log = logging.getLogger(__name__)

#: First night with the White-Rabbit-disciplined (TAI) camera clock.
WHITE_RABBIT_START = Time("2023-09-25T00:00:00", scale="utc")
_WHITE_RABBIT_START_S = int(WHITE_RABBIT_START.unix)


def clock_scale_for(seconds):
    """
    Time scale of the camera clock for data whose clock reads ``seconds``.

    Parameters
    ----------
    seconds : int
        ``local_time_sec`` of an event.

    Returns
    -------
    str
        ``"tai"`` from the White Rabbit deployment on, ``"utc"`` before.
    """
    return "tai" if seconds >= _WHITE_RABBIT_START_S else "utc"


class CameraClock:
    """
    Converts camera clock readings of one run to TAI astropy Times.

    Parameters
    ----------
    scale : {"tai", "utc"}
        Time scale of the clock.
    first_second : int
        ``local_time_sec`` of the first event, used to fix the TAI-UTC offset.
    """

    def __init__(self, scale, first_second):
        if scale not in {"tai", "utc"}:
            raise ValueError(f"Unknown camera clock scale {scale!r}")
        self.scale = scale
        if scale == "utc":
            t0 = Time(first_second, format="unix", scale="utc")
            self.tai_minus_clock = int(np.rint(t0.unix_tai - first_second))
        else:
            self.tai_minus_clock = 0

    def to_time(self, seconds, nanoseconds):
        """
        The clock reading as a TAI `~astropy.time.Time`, to the nanosecond.

        Parameters
        ----------
        seconds, nanoseconds : int or array of int

        Returns
        -------
        astropy.time.Time
        """
        return Time(
            np.asarray(seconds, dtype=np.float64) + self.tai_minus_clock,
            np.asarray(nanoseconds, dtype=np.float64) * 1e-9,
            format="unix_tai",
            scale="tai",
        )

    def to_unix_tai(self, seconds, nanoseconds):
        """The clock reading as float ``unix_tai`` seconds (about 0.2 us precision)."""
        return seconds + self.tai_minus_clock + nanoseconds * 1e-9
