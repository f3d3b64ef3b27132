"""The IERS table cached once per machine: the same AltAz, 30x faster."""

import os
import subprocess
import sys

SCRIPT = """
import time, sys
import astropy.units as u
from astropy.coordinates import EarthLocation
from astropy.utils import iers
from ctapipe_sst1m.io.earth_orientation import cache_path
from ctapipe_sst1m.io.pointing import AltAzTracker, Target
location = EarthLocation(lat=49.9 * u.deg, lon=14.8 * u.deg, height=500 * u.m)
tracker = AltAzTracker(Target(name="crab", ra=83.633, dec=22.0145), location)
start = time.perf_counter()
alt, az = tracker(1.7e9 + 12.5)
seconds = time.perf_counter() - start
# astropy's own state is left alone: its table is loaded only now, by astropy
plain = iers.earth_orientation_table._value is None
print(repr(float(alt)), repr(float(az)), seconds, cache_path().is_file(), plain)
"""


def _run(cache_home):
    env = dict(os.environ, XDG_CACHE_HOME=str(cache_home))
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    alt, az, seconds, cached, plain = result.stdout.split()
    return (alt, az), float(seconds), cached == "True", plain == "True"


def test_cached_table_gives_the_same_altaz(tmp_path):
    (tmp_path / "astropy").mkdir()
    first, first_seconds, cached, plain = _run(tmp_path)
    assert cached and plain
    files = list((tmp_path / "astropy" / "ctapipe_sst1m").glob("iers-*.pickle"))
    assert len(files) == 1
    second, second_seconds, _, plain = _run(tmp_path)
    assert second == first
    assert plain
    assert second_seconds < first_seconds / 3

    # a damaged cache is parsed again and replaced
    files[0].write_bytes(b"not a pickle")
    third, _, cached, _ = _run(tmp_path)
    assert third == first
    assert cached and files[0].stat().st_size > 1_000_000
