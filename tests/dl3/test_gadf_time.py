"""DL3 TIME of real DigiCam events: the camera clock to the ns, on the TAI scale."""

import astropy.units as u
import numpy as np
import protozfits
from astropy.time import Time

from ctapipe_sst1m.dl3.gadf import seconds_since, time_reference
from ctapipe_sst1m.io import SST1MEventSource


def test_dl3_time_is_the_camera_clock(embedded_raw_file):
    with protozfits.File(str(embedded_raw_file)) as zfile:
        clock = [(e.local_time_sec, e.local_time_nanosec) for e in zfile.Events]
    with SST1MEventSource(embedded_raw_file) as source:
        times = Time([event.trigger.time for event in source])
    mjdref = time_reference(times[0])
    dl3_time = seconds_since(times, mjdref)
    # TIME stays small, where float64 resolves far below a ns
    assert dl3_time.max() < 86_400 * 2
    assert np.spacing(dl3_time.max()) < 1e-10

    # what gammapy computes back from TIME and MJDREF (TAI)
    read_back = Time(mjdref, format="mjd", scale="tai") + dl3_time * u.s
    # the 2018 camera clock counts Unix UTC seconds (before White Rabbit)
    seconds = np.array([s for s, _ in clock])
    nanoseconds = np.array([ns for _, ns in clock])
    camera = Time(seconds, format="unix", scale="utc") + nanoseconds * u.ns
    difference = (read_back - camera).to_value(u.ns)
    assert np.max(np.abs(difference)) < 1
    # reading the clock as TAI (sst1mpipe's DL3) would be 37 s off
    as_tai = Time(seconds, format="unix_tai") + nanoseconds * u.ns
    assert abs((read_back - as_tai).to_value(u.s).mean() - 37) < 1e-6
