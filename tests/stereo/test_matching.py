"""Pairing tel 21 and tel 22 events: real DigiCam clock patterns, disturbed."""

from collections import Counter

import numpy as np
import protozfits
import pytest

from ctapipe_sst1m.stereo import find_time_offset, match_closest, match_ids
from ctapipe_sst1m.stereo.matching import DUPLICATE, NO_CANDIDATE

US = 1_000  # ns


@pytest.fixture(scope="module")
def real_intervals(digicam_files):
    """Intervals between consecutive events of the real DigiCam files, ns."""
    intervals = []
    for key in ("science_2018", "proto_100"):
        with protozfits.File(str(digicam_files[key])) as zfile:
            clock = np.array(
                [
                    e.local_time_sec * 1_000_000_000 + e.local_time_nanosec
                    for e in zfile.Events
                ],
                dtype=np.int64,
            )
        intervals.append(np.diff(clock))
    intervals = np.concatenate(intervals)
    assert np.all(intervals > 0)
    return intervals


def _streams(intervals, n, rng, offset=2_345_678, jitter=200, drop=0.1):
    """tel 1 times drawn from the real intervals; tel 2 = tel 1 + offset + jitter;
    each side loses ``drop`` of its events; tel 2 shuffled. Returns the times and
    the true partner (index into tel 2, -1 if none) of each tel 1 event."""
    t1 = 1_700_000_000 * 10**9 + np.cumsum(rng.choice(intervals, n))
    t2 = t1 + offset + rng.normal(0, jitter, n).astype(np.int64)
    keep1, keep2 = rng.random(n) > drop, rng.random(n) > drop
    order = rng.permutation(np.count_nonzero(keep2))
    position = np.full(n, -1)
    position[keep2] = np.argsort(order)  # where each kept tel 2 event lands
    return t1[keep1], t2[keep2][order], position[keep1]


def _check(result, truth):
    wrong = np.count_nonzero(truth[result.index1] != result.index2)
    possible = np.count_nonzero(truth >= 0)
    return wrong, result.n_pairs / possible


def test_right_pairs_on_real_clock_patterns(real_intervals):
    rng = np.random.default_rng(0)
    t1, t2, truth = _streams(real_intervals, 50_000, rng)
    result = match_closest(t1, t2, tolerance=10 * US, offset=2_345_678)
    wrong, recall = _check(result, truth)
    assert wrong == 0
    assert recall > 0.999
    # every event is paired or counted with a reason
    assert result.n_pairs + sum(result.unmatched1.values()) == len(t1)
    assert result.n_pairs + sum(result.unmatched2.values()) == len(t2)
    assert np.all(np.diff(result.index1) > 0)
    assert len(set(result.index2)) == result.n_pairs


def test_false_matches_need_a_wide_tolerance(real_intervals):
    """Measured false-match rates with 30 % of each telescope's events lost: none
    at 10 us, 0.16 % at 100 us, 2.4 % at 1 ms. The wide tolerance does pair wrong
    events here, so the scenario is hard enough for the 10 us result to count."""
    rng = np.random.default_rng(1)
    t1, t2, truth = _streams(real_intervals, 50_000, rng, drop=0.3)
    narrow = match_closest(t1, t2, 10 * US, offset=2_345_678)
    wide = match_closest(t1, t2, 1_000 * US, offset=2_345_678)
    wrong_narrow, _ = _check(narrow, truth)
    wrong_wide, _ = _check(wide, truth)
    assert wrong_narrow == 0
    assert 0.005 < wrong_wide / wide.n_pairs < 0.05


def test_duplicated_timestamps_refused(real_intervals):
    rng = np.random.default_rng(2)
    t1, t2, truth = _streams(real_intervals, 5_000, rng)
    t2 = np.concatenate([t2, t2[:10]])  # ten time stamps written twice
    result = match_closest(t1, t2, tolerance=10 * US, offset=2_345_678)
    wrong, _ = _check(result, truth)
    assert wrong == 0
    # the tel 1 partners of the duplicated events (if not dropped) stay unpaired
    assert result.unmatched1[DUPLICATE] == np.count_nonzero(np.isin(truth, range(10)))
    assert result.unmatched2[DUPLICATE] == 20


def test_unknown_offset_found(real_intervals):
    rng = np.random.default_rng(3)
    t1, t2, truth = _streams(real_intervals, 20_000, rng, offset=-7_654_321, jitter=2_000)
    offset, counts = find_time_offset(t1, t2)
    assert abs(offset - (-7_654_321)) < 1 * US
    assert counts.max() > 0.7 * len(t1)
    result = match_closest(t1, t2, tolerance=20 * US, offset=offset)
    wrong, recall = _check(result, truth)
    assert wrong == 0
    assert recall > 0.999


def test_no_common_events():
    with pytest.raises(ValueError, match="No events of the two telescopes"):
        find_time_offset([0, 10**9], [5 * 10**10])
    result = match_closest([], [1, 2, 3], tolerance=10)
    assert result.n_pairs == 0
    assert result.unmatched2 == Counter({NO_CANDIDATE: 3})


def test_match_ids():
    result = match_ids([7, 3, 9, 9, 12], [12, 3, 5, 9])
    assert result.index1.tolist() == [1, 4]
    assert result.index2.tolist() == [1, 0]
    assert result.unmatched1 == Counter({DUPLICATE: 2, NO_CANDIDATE: 1})
    assert result.unmatched2 == Counter({NO_CANDIDATE: 2})
