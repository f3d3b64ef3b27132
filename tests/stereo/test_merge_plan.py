"""Output events of a stereo merge, and the array pointing of stereo events."""

from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from ctapipe.containers import ArrayEventContainer

from ctapipe_sst1m.instrument import load_sst1m_subarray
from ctapipe_sst1m.stereo import SST1MArrayPointing, match_closest
from ctapipe_sst1m.stereo.array_pointing import mean_direction
from ctapipe_sst1m.stereo.dl1_files import TelescopeEvents, concatenate_events, time_ns
from ctapipe_sst1m.stereo.merge import plan_stereo_events

S = 1_000_000_000


def _events(tel_id, obs_id, event_id, time):
    n = len(event_id)
    return TelescopeEvents(
        path=Path(f"tel{tel_id}.h5"),
        tel_id=tel_id,
        subarray=None,
        is_simulation=False,
        obs_id=np.broadcast_to(np.asarray(obs_id, np.int64), (n,)).copy(),
        event_id=np.asarray(event_id, np.int64),
        time=np.asarray(time, np.int64),
        event_type=np.full(n, 32),
    )


def _events_of(telescope_events):
    return concatenate_events([telescope_events])


def test_unpaired_second_telescope_events_get_free_ids():
    """Camera counters of both telescopes start at 1: clashing ids are renumbered."""
    run1 = _events(21, 202401010001, [1, 2, 3, 4], [10 * S, 20 * S, 30 * S, 40 * S])
    run2 = _events(21, 202401010002, [1, 2], [100 * S, 110 * S])
    # tel 22: pairs with tel 21 events 2 and (run 2) 1, plus three events alone
    tel22 = _events(
        22,
        202401010001,
        [7, 1, 2, 3, 3],
        [20 * S + 5, 25 * S, 105 * S, 100 * S + 3, 35 * S],
    )
    times1 = np.concatenate([run1.time, run2.time])
    result = match_closest(times1, tel22.time, tolerance=10)
    assert result.n_pairs == 2
    events = plan_stereo_events(
        concatenate_events([run1, run2]), concatenate_events([tel22]), result, True, False
    )

    assert len(events) == 4 + 2 + 3
    assert np.all(np.diff(events.time) >= 0)
    keys = list(zip(events.obs_id.tolist(), events.event_id.tolist(), strict=True))
    assert len(set(keys)) == len(keys)
    alone = events.source[0] < 0
    # each alone event joins the tel 21 run its time falls in
    np.testing.assert_array_equal(
        events.obs_id[alone], [202401010001, 202401010001, 202401010002]
    )
    # 1 and 3 are taken in run 1 -> 5, 6; 2 is taken in run 2 -> 3
    np.testing.assert_array_equal(events.event_id[alone], [5, 6, 3])
    paired = (events.source[0] >= 0) & (events.source[1] >= 0)
    np.testing.assert_array_equal(events.event_id[paired], [2, 1])


def test_simulation_ids_kept():
    tel1 = _events(1, 102, [5, 8, 9], [1, 2, 3])
    tel2 = _events(2, 102, [8, 11], [2, 4])
    result = match_closest(tel1.time, tel2.time, tolerance=0)
    events = plan_stereo_events(_events_of(tel1), _events_of(tel2), result, True, True)
    np.testing.assert_array_equal(events.event_id, [5, 8, 9, 11])
    np.testing.assert_array_equal(events.source[0], [0, 1, 2, -1])
    np.testing.assert_array_equal(events.source[1], [-1, 0, -1, 1])


def test_without_unmatched_only_pairs():
    tel1 = _events(21, 1, [1, 2, 3], [10, 20, 30])
    tel2 = _events(22, 1, [1, 2], [21, 31])
    result = match_closest(tel1.time, tel2.time, tolerance=2)
    events = plan_stereo_events(_events_of(tel1), _events_of(tel2), result, False, False)
    np.testing.assert_array_equal(events.event_id, [2, 3])
    assert np.all(events.source[1] >= 0)


def test_time_ns_is_exact():
    high_res = np.array([[1_700_000_000, 4 * 999_999_999 + 3], [1, 4]], dtype=np.uint32)
    np.testing.assert_array_equal(
        time_ns(high_res), [1_700_000_000_999_999_999, 1_000_000_001]
    )


def test_mean_direction():
    alt, az = mean_direction(np.radians([60, 60]), np.radians([359, 1]))
    # the great-circle midpoint of two points 1 deg of arc apart at alt 60 deg
    assert np.degrees(alt) == pytest.approx(60.0038, abs=1e-4)
    assert min(np.degrees(az), 360 - np.degrees(az)) == pytest.approx(0, abs=1e-9)
    assert np.all(np.isnan(mean_direction([np.nan], [0.1])))


def test_array_pointing_kept_when_given():
    subarray = load_sst1m_subarray()
    mon = SST1MArrayPointing(subarray=subarray)
    event = ArrayEventContainer()
    for tel_id, alt in ((21, 70.0), (22, 70.02)):
        event.dl1.tel[tel_id].image = np.zeros(1296)
        event.monitoring.tel[tel_id].pointing.altitude = alt * u.deg
        event.monitoring.tel[tel_id].pointing.azimuth = 180 * u.deg
    mon.fill_monitoring_container(event)
    assert event.monitoring.pointing.array_altitude.to_value(u.deg) == pytest.approx(
        70.01
    )
    event.monitoring.pointing.array_altitude = 20 * u.deg
    event.monitoring.pointing.array_azimuth = 10 * u.deg
    mon.fill_monitoring_container(event)
    assert event.monitoring.pointing.array_altitude == 20 * u.deg
