"""Camera clock to TAI times, to the nanosecond."""

import numpy as np
import pytest
from astropy.io import fits
from astropy.time import Time
from ctapipe.time import time_to_ctao_high_res

from ctapipe_sst1m.io.event_time import CameraClock, clock_scale_for


def test_scale_by_epoch():
    assert clock_scale_for(1534982401) == "utc"  # 2018
    assert clock_scale_for(1769015262) == "tai"  # 2026, White Rabbit
    with pytest.raises(ValueError, match="Unknown camera clock scale"):
        CameraClock("gps", 0)


def test_tai_clock_keeps_nanoseconds():
    rng = np.random.default_rng(1)
    seconds = 1769015262 + rng.integers(0, 3600, 1000)
    nanoseconds = rng.integers(0, 1_000_000_000, 1000)
    clock = CameraClock("tai", int(seconds[0]))
    time = clock.to_time(seconds, nanoseconds)
    s, qns = time_to_ctao_high_res(time).T
    np.testing.assert_array_equal(s, seconds)
    # ctapipe stores quarter nanoseconds: the clock's ns survive exactly
    np.testing.assert_array_equal(qns, nanoseconds * 4)


def test_utc_clock_shifted_by_leap_seconds():
    # first event of example_SST1M_20180822.fits.fz
    clock = CameraClock("utc", 1534982401)
    assert clock.tai_minus_clock == 37
    time = clock.to_time(1534982401, 673508228)
    time.precision = 9
    assert time.utc.isot == "2018-08-23T00:00:01.673508228"
    s, qns = time_to_ctao_high_res(time).T
    assert (int(s), int(qns)) == (1534982401 + 37, 673508228 * 4)


def test_2018_clock_is_utc(embedded_raw_file):
    """The header DATE (file creation, UTC) follows the first event by < 1 s
    only if the 2018 camera clock is read as UTC; as TAI it would be 37 s earlier."""
    header = fits.getheader(embedded_raw_file, "Events")
    created = Time(header["DATE"], scale="utc")
    first = header["TSTARTS"], header["TSTARTNS"]
    scale = clock_scale_for(first[0])
    event = CameraClock(scale, first[0]).to_time(*first)
    assert scale == "utc"
    assert 0 < (created - event).to_value("s") < 1
    assert header["TIMESYS"] == "UTC"
