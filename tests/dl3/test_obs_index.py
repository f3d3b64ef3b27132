"""The observation index of runs on both sides of midnight."""

import astropy.units as u
import numpy as np
from astropy.coordinates import EarthLocation

from ctapipe_sst1m.dl3.gadf import obs_index_table


def _row(obs_id, mjdref, tstart, tstop):
    return {
        "OBS_ID": obs_id,
        "RA_PNT": 1.0,
        "DEC_PNT": 2.0,
        "ALT_PNT": 70.0,
        "AZ_PNT": 180.0,
        "ZEN_PNT": 20.0,
        "ONTIME": tstop - tstart,
        "LIVETIME": tstop - tstart,
        "DEADC": 1.0,
        "TSTART": tstart,
        "TSTOP": tstop,
        "MJDREFI": mjdref,
        "MJDREFF": 0.0,
        "N_TELS": 2,
        "TELLIST": "21,22",
        "OBJECT": "x",
        "EVENT_COUNT": 1,
    }


def test_times_count_from_the_earliest_midnight():
    """Each DL3 file counts from its own midnight, the index from the first."""
    site = EarthLocation(lon=14.78 * u.deg, lat=49.91 * u.deg, height=511 * u.m)
    before = _row(1, 60381, 86000.0, 86300.0)
    after = _row(2, 60382, 100.0, 400.0)
    table = obs_index_table([before, after], site)
    assert table.meta["MJDREFI"] == 60381
    np.testing.assert_allclose(table["TSTART"], [86000.0, 86400.0 + 100.0])
    np.testing.assert_allclose(table["TSTOP"], [86300.0, 86400.0 + 400.0])
    for key in ("HDUDOC", "HDUVERS", "GEOLON", "GEOLAT", "ALTITUDE", "TIMESYS"):
        assert key in table.meta
