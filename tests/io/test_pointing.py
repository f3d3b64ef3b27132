"""TARGET parsing and the interpolated AltAz tracking."""

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import AltAz, EarthLocation, SkyCoord
from astropy.time import Time

from ctapipe_sst1m.io.pointing import AltAzTracker, Target, parse_target

ONDREJOV = EarthLocation(lon=14.7825 * u.deg, lat=49.9124 * u.deg, height=511 * u.m)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Crab,83.633,22.0145", Target("Crab", 83.633, 22.0145, "UNDEF")),
        ("Crab_W1_83.633_22.0145", Target("Crab", 83.633, 22.0145, "W1")),
        ("Mrk421,W2,166.1138,38.2088", Target("Mrk421", 166.1138, 38.2088, "W2")),
        ("1ES_1959_W3_300.0_65.1", None),  # 5 fields: a "_" in the target name
    ],
)
def test_parse_target(value, expected):
    if expected is None:
        with pytest.raises(ValueError, match="is not 'target,ra,dec'"):
            parse_target(value)
    else:
        assert parse_target(value) == expected


@pytest.mark.parametrize("value", ["Transition", "TRANSITION", "dark", "Dark"])
def test_targets_without_position(value):
    target = parse_target(value)
    assert not target.has_position
    assert target.name == value


@pytest.mark.parametrize("value", ["Crab,abc,22", "Crab,400,22", "Crab"])
def test_bad_targets(value):
    with pytest.raises(ValueError, match="TARGET"):
        parse_target(value)


def _direct(target, times):
    coord = SkyCoord(ra=target.ra * u.deg, dec=target.dec * u.deg)
    altaz = coord.transform_to(AltAz(obstime=times, location=ONDREJOV))
    return altaz.alt.rad, altaz.az.rad


@pytest.mark.parametrize(
    ("target", "start"),
    [
        # the Crab around culmination
        (Target("Crab", 83.633, 22.0145), "2024-01-01T23:00:00"),
        # a circumpolar source crossing north (azimuth wraps through 0/360 deg)
        (Target("Polar", 10.0, 80.0), "2024-01-01T10:30:00"),
    ],
)
@pytest.mark.slow
def test_tracker_matches_direct_transform(target, start):
    rng = np.random.default_rng(0)
    t0 = Time(start, scale="utc").unix_tai
    times = np.sort(t0 + rng.uniform(0, 3 * 3600, 300))
    tracker = AltAzTracker(target, ONDREJOV)
    alt, az = np.array([tracker(t) for t in times]).T
    ref_alt, ref_az = _direct(target, Time(times, format="unix_tai"))
    d_az = np.angle(np.exp(1j * (az - ref_az)))
    assert np.max(np.abs(alt - ref_alt)) < np.deg2rad(1 / 3600)
    assert np.max(np.abs(d_az * np.cos(ref_alt))) < np.deg2rad(1 / 3600)
    assert np.all((az >= 0) & (az < 2 * np.pi))

    table = tracker.node_table()
    # the nodes bracket every event time, as ctapipe's interpolator requires
    assert table["time"][0].unix_tai <= times[0]
    assert table["time"][-1].unix_tai >= times[-1]
    assert np.all(np.diff(table["time"].unix_tai) > 0)
    # 3 h at 10 s spacing: blocks of 64 nodes, far fewer transforms than events
    assert len(tracker._blocks) <= 3 * 3600 / 640 + 2
