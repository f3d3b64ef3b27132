"""
Time and peak memory of pairing 1,000,000 x 1,000,000 event times.

Synthetic tel 1 events at about 1 kHz, tel 2 = tel 1 + a clock offset + 200 ns
jitter, 10 % of each side lost. Measures `find_time_offset` and
`match_closest` (the White Rabbit and the sliding-window methods) and
`match_ids`.

Usage::

    python benchmarks/matching.py [--events 1000000]
"""

import argparse
import time
import tracemalloc

import numpy as np

from ctapipe_sst1m.stereo import find_time_offset, match_closest, match_ids


def timed(function, *args, **kwargs):
    """Result, seconds and peak traced memory (MB) of one call."""
    tracemalloc.start()
    start = time.perf_counter()
    result = function(*args, **kwargs)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return result, seconds, peak


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n = args.events
    t1 = np.cumsum(rng.exponential(1e6, n)).astype(np.int64)
    t2 = t1 + 2_345_678 + rng.normal(0, 200, n).astype(np.int64)
    t1, t2 = t1[rng.random(n) > 0.1], t2[rng.random(n) > 0.1]
    ids = np.arange(n)
    ids1, ids2 = ids[rng.random(n) > 0.1], ids[rng.random(n) > 0.1]

    (offset, _), s_offset, m_offset = timed(find_time_offset, t1, t2)
    pairs, s_match, m_match = timed(match_closest, t1, t2, 10_000, offset=offset)
    by_id, s_ids, m_ids = timed(match_ids, ids1, ids2)
    input_mb = (t1.nbytes + t2.nbytes) / 2**20
    print(f"{len(t1)} x {len(t2)} event times ({input_mb:.0f} MB of input)")
    rows = [
        ("find_time_offset", s_offset, m_offset, f"offset {offset} ns"),
        ("match_closest", s_match, m_match, f"{pairs.n_pairs} pairs"),
        ("match_ids", s_ids, m_ids, f"{by_id.n_pairs} pairs"),
    ]
    for name, seconds, peak, what in rows:
        print(f"{name:<17} {seconds:6.2f} s, peak {peak:6.0f} MB, {what}")


if __name__ == "__main__":
    main()
