"""
Pairing the events of tel 21 and tel 22 into stereo events.

The two SST-1M telescopes record separate runs; a stereo event is a tel 21
event and the tel 22 event of the same shower. Three ways to find them, as in
sst1mpipe, all vectorised (sort, ``searchsorted``) and strictly one-to-one:

* `match_closest`: White Rabbit camera clocks, the closest tel 22 event within a
  tolerance (10 us by default);
* `find_time_offset` then `match_closest`: clocks with an unknown constant offset
  (data before White Rabbit), found in the differences of the events' times
  within +-10 ms, in 20 us bins;
* `match_ids`: equal event ids (SWAT array event numbers, or simulated events).

A pair is accepted only if each event is the other's closest (mutual nearest
neighbours), within the tolerance, and no other event is exactly as close: an
event is never used twice, and ties are refused rather than guessed. Every
unpaired event is counted with the reason.
"""

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from ctapipe.core import Component, traits

from ..io.event_time import WHITE_RABBIT_START

__all__ = [
    "MATCHING_METHODS",
    "MatchResult",
    "StereoEventMatcher",
    "event_keys",
    "find_time_offset",
    "match_closest",
    "match_ids",
]

#: reasons an event of one telescope has no partner
NO_CANDIDATE = "no event of the other telescope within the tolerance"
TIE = "two events of the other telescope equally close"
NOT_MUTUAL = "its closest event is closer to another event"
DUPLICATE = "its id or time stamp appears more than once"


@dataclass
class MatchResult:
    """Pairs of event indices of the two inputs, and why the others have none."""

    #: indices into the first input, in increasing order
    index1: np.ndarray
    #: indices into the second input, paired with ``index1``
    index2: np.ndarray
    #: reason -> number of events of the first input without a partner
    unmatched1: Counter = field(default_factory=Counter)
    #: reason -> number of events of the second input without a partner
    unmatched2: Counter = field(default_factory=Counter)

    @property
    def n_pairs(self):
        """Number of pairs."""
        return len(self.index1)


def _nearest(sorted_values, values):
    """Index (into ``sorted_values``) of the nearest element, distance, and a tie flag."""
    right = np.searchsorted(sorted_values, values)
    left = np.clip(right - 1, 0, len(sorted_values) - 1)
    right = np.clip(right, 0, len(sorted_values) - 1)
    d_left = np.abs(values - sorted_values[left])
    d_right = np.abs(sorted_values[right] - values)
    nearest = np.where(d_right < d_left, right, left)
    distance = np.minimum(d_left, d_right)
    tie = (d_left == d_right) & (left != right)
    return nearest, distance, tie


def _duplicates(sorted_values):
    """Mask of the elements of a sorted array that occur more than once."""
    same = sorted_values[1:] == sorted_values[:-1]
    duplicated = np.zeros(len(sorted_values), dtype=bool)
    duplicated[1:] |= same
    duplicated[:-1] |= same
    return duplicated


def match_closest(times1, times2, tolerance, offset=0):
    """
    Pair events whose times are closest to each other, within ``tolerance``.

    Parameters
    ----------
    times1, times2 : array of int
        Event times of the two telescopes, in any order (e.g. int64 ns).
    tolerance : int
        Largest accepted ``|times2 - (times1 + offset)|``.
    offset : int
        Added to ``times1`` (the clock offset of telescope 2 relative to 1).

    Returns
    -------
    MatchResult
    """
    times1 = np.asarray(times1, dtype=np.int64) + np.int64(offset)
    times2 = np.asarray(times2, dtype=np.int64)
    result = MatchResult(np.zeros(0, np.int64), np.zeros(0, np.int64))
    if len(times1) == 0 or len(times2) == 0:
        result.unmatched1[NO_CANDIDATE] = len(times1)
        result.unmatched2[NO_CANDIDATE] = len(times2)
        return result

    order1, order2 = np.argsort(times1, kind="stable"), np.argsort(times2, kind="stable")
    sorted1, sorted2 = times1[order1], times2[order2]
    dup1, dup2 = _duplicates(sorted1), _duplicates(sorted2)

    near2, dist12, tie12 = _nearest(sorted2, sorted1)  # for each tel 1 event
    near1, dist21, tie21 = _nearest(sorted1, sorted2)  # for each tel 2 event
    reason1 = _reasons(dist12, dup1, dup2, tie12, tie21, near1, near2, tolerance)
    reason2 = _reasons(dist21, dup2, dup1, tie21, tie12, near2, near1, tolerance)
    ok = reason1 == ""
    result.unmatched1.update(reason1[~ok])
    result.unmatched2.update(reason2[reason2 != ""])

    index1 = order1[ok]
    index2 = order2[near2[ok]]
    keep = np.argsort(index1)
    result.index1, result.index2 = index1[keep], index2[keep]
    return result


def _reasons(distance, dup, dup_other, tie, tie_other, near_other, near, tolerance):
    """
    Why each event of one telescope has no partner ("" if it has one).

    ``near`` is the nearest other-telescope event of each event, ``near_other``
    the nearest event of this telescope for each other-telescope event, and so on.
    """
    reason = np.full(len(distance), "", dtype=object)
    reason[dup] = DUPLICATE
    reason[(reason == "") & (distance > tolerance)] = NO_CANDIDATE
    rules = [
        (dup_other[near], DUPLICATE),
        (tie | tie_other[near], TIE),
        (near_other[near] != np.arange(len(distance)), NOT_MUTUAL),
    ]
    for refused, why in rules:
        reason[(reason == "") & refused] = why
    return reason


def find_time_offset(times1, times2, search=10_000_000, step=20_000, max_events=20_000):
    """
    The clock offset of telescope 2 relative to 1, from the events' times.

    The differences ``times2 - times1`` of all event pairs within ``search`` of
    each other pile up at the offset for the events seen by both telescopes,
    and spread evenly for the others: the offset is the peak of their histogram
    in bins of ``step`` (scanned from ``-search`` to ``+search``, as sst1mpipe
    scans), refined by the median of the differences within a bin of the peak.
    sst1mpipe counts pairs within +-1 ms of each offset instead, which cannot
    tell offsets apart when events are less than a few ms apart.

    Parameters
    ----------
    times1, times2 : array of int
        Event times, ns.
    search, step : int
        ns.
    max_events : int
        The offset is constant: only the first ``max_events`` events of
        telescope 1 are used, which bounds time and memory.

    Returns
    -------
    offset : int
        ns.
    counts : numpy.ndarray
        Differences per bin, bins starting at ``-search + step * i``.

    Raises
    ------
    ValueError
        If no events of the two telescopes are within ``search`` of each other.
    """
    times1 = np.sort(np.asarray(times1, dtype=np.int64))[:max_events]
    times2 = np.sort(np.asarray(times2, dtype=np.int64))
    lo = np.searchsorted(times2, times1 - search, side="left")
    hi = np.searchsorted(times2, times1 + search, side="right")
    # every difference t2 - t1 within the search range, without a python loop
    n_per_event = hi - lo
    if n_per_event.sum() == 0:
        raise ValueError(
            f"No events of the two telescopes within {search} ns of each other"
        )
    first = np.repeat(lo, n_per_event)
    rank = np.arange(n_per_event.sum()) - np.repeat(
        np.cumsum(n_per_event) - n_per_event, n_per_event
    )
    differences = times2[first + rank] - np.repeat(times1, n_per_event)
    edges = np.arange(-search, search + step, step, dtype=np.int64)
    counts, _ = np.histogram(differences, edges)
    peak = int(np.argmax(counts))
    near = differences[
        (differences >= edges[max(peak - 1, 0)])
        & (differences < edges[min(peak + 2, len(edges) - 1)])
    ]
    return int(np.rint(np.median(near))), counts


def match_ids(ids1, ids2):
    """
    Pair events with equal ids; ids that repeat within an input are refused.

    Parameters
    ----------
    ids1, ids2 : array of int
        E.g. SWAT array event numbers, or simulated event ids.

    Returns
    -------
    MatchResult
    """
    ids1, ids2 = np.asarray(ids1), np.asarray(ids2)
    unique1, first1, count1 = np.unique(ids1, return_index=True, return_counts=True)
    unique2, first2, count2 = np.unique(ids2, return_index=True, return_counts=True)
    _, in1, in2 = np.intersect1d(unique1, unique2, return_indices=True)
    single = (count1[in1] == 1) & (count2[in2] == 1)
    index1, index2 = first1[in1[single]], first2[in2[single]]
    keep = np.argsort(index1)
    result = MatchResult(index1[keep], index2[keep])
    n_dup1 = int(count1[count1 > 1].sum())
    n_dup2 = int(count2[count2 > 1].sum())
    if n_dup1:
        result.unmatched1[DUPLICATE] = n_dup1
    if n_dup2:
        result.unmatched2[DUPLICATE] = n_dup2
    if (n := len(ids1) - len(index1) - n_dup1) > 0:
        result.unmatched1[NO_CANDIDATE] = n
    if (n := len(ids2) - len(index2) - n_dup2) > 0:
        result.unmatched2[NO_CANDIDATE] = n
    return result


#: matching methods, named as in sst1mpipe's ``event_matching_method``
MATCHING_METHODS = {
    "WhiteRabbitClosest": "closest White Rabbit times within time_tolerance",
    "SlidingWindow": "clock offset from the time differences, then closest times",
    "SWATEventIDs": "equal SWAT array event numbers (event_id)",
    "SimulationEventIDs": "equal (obs_id, event_id) of simulated events",
}

_WHITE_RABBIT_START_NS = int(WHITE_RABBIT_START.unix_tai) * 1_000_000_000


def event_keys(obs_ids, event_ids, runs=None):
    """
    One int64 per (obs_id, event_id), for sorting and matching.

    Parameters
    ----------
    obs_ids, event_ids : array of int
    runs : array of int, optional
        The known obs_ids (default: those of ``obs_ids``); events of other
        runs get negative keys, which match no event of a known run.

    Returns
    -------
    numpy.ndarray
        int64: the rank of the obs_id among ``runs`` in the high bits, the
        event_id in the low 41 bits.
    """
    obs_ids = np.asarray(obs_ids, dtype=np.int64)
    event_ids = np.asarray(event_ids, dtype=np.int64)
    runs = np.unique(obs_ids if runs is None else runs)
    if len(runs) >= 2**21 or np.any((event_ids < 0) | (event_ids >= 2**41)):
        raise ValueError("event ids outside 0 .. 2**41 cannot be matched")
    rank = np.searchsorted(runs, obs_ids)
    known = runs[np.minimum(rank, len(runs) - 1)] == obs_ids
    return np.where(known, (rank.astype(np.int64) << 41) | event_ids, -1 - event_ids)


class StereoEventMatcher(Component):
    """
    Pairs the events of two telescopes, with one of sst1mpipe's methods.

    ``auto`` takes ``SimulationEventIDs`` for simulations and
    ``WhiteRabbitClosest`` for data. The time methods need trigger times;
    ``WhiteRabbitClosest`` also refuses data taken before White Rabbit
    (2023-09-25), whose camera clocks are not synchronised: use
    ``SlidingWindow`` there.
    """

    method = traits.CaselessStrEnum(
        ["auto", *MATCHING_METHODS],
        default_value="auto",
        help="How events are paired: "
        + "; ".join(f"{k}: {v}" for k, v in MATCHING_METHODS.items())
        + "; auto: SimulationEventIDs for simulations, WhiteRabbitClosest for data",
    ).tag(config=True)
    time_tolerance = traits.Int(
        10_000,
        min=0,
        help="Largest time difference of a pair (ns), after the offset of SlidingWindow",
    ).tag(config=True)
    offset_search_range = traits.Int(
        10_000_000,
        min=1,
        help="SlidingWindow: the offset is searched within +- this (ns)",
    ).tag(config=True)
    offset_step = traits.Int(
        20_000,
        min=1,
        help="SlidingWindow: bin width of the time-difference histogram (ns)",
    ).tag(config=True)

    def resolve_method(self, is_simulation):
        """The method used for inputs that are (or not) simulations."""
        if self.method == "auto":
            return "SimulationEventIDs" if is_simulation else "WhiteRabbitClosest"
        return self.method

    def __call__(self, events1, events2, is_simulation=False):
        """
        Pair the events of two telescopes.

        Parameters
        ----------
        events1, events2 : dict of numpy.ndarray
            ``obs_id``, ``event_id`` and ``time`` (int64 ns) of each event.
        is_simulation : bool

        Returns
        -------
        result : MatchResult
        info : dict
            ``method``, and ``offset`` (ns, telescope 2 minus 1) for the
            time methods.

        Raises
        ------
        ValueError
            If the inputs cannot be matched with the method.
        """
        method = self.resolve_method(is_simulation)
        if method == "SimulationEventIDs":
            if not is_simulation:
                raise ValueError("SimulationEventIDs is for simulated events only")
            obs_ids = np.concatenate([events1["obs_id"], events2["obs_id"]])
            keys = event_keys(
                obs_ids, np.concatenate([events1["event_id"], events2["event_id"]])
            )
            n1 = len(events1["obs_id"])
            return match_ids(keys[:n1], keys[n1:]), {"method": method}
        if method == "SWATEventIDs":
            return match_ids(events1["event_id"], events2["event_id"]), {"method": method}

        times1, times2 = events1["time"], events2["time"]
        if method == "WhiteRabbitClosest" and not is_simulation:
            first = min(times1.min(), times2.min())
            if first < _WHITE_RABBIT_START_NS:
                raise ValueError(
                    "WhiteRabbitClosest needs White Rabbit times, recorded since "
                    f"{WHITE_RABBIT_START.iso[:10]}; these data are older: use "
                    "StereoEventMatcher.method=SlidingWindow"
                )
        offset = 0
        if method == "SlidingWindow":
            offset, _ = find_time_offset(
                times1, times2, self.offset_search_range, self.offset_step
            )
            self.log.info("clock offset of the second telescope: %d ns", offset)
        result = match_closest(times1, times2, self.time_tolerance, offset)
        return result, {"method": method, "offset": offset}
