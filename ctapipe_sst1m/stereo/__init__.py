"""Stereo SST-1M: pairing the events of tel 21 and tel 22, stereo DL1 files."""

from .array_pointing import SST1MArrayPointing
from .matching import (
    MatchResult,
    StereoEventMatcher,
    find_time_offset,
    match_closest,
    match_ids,
)

__all__ = [
    "MatchResult",
    "SST1MArrayPointing",
    "StereoEventMatcher",
    "find_time_offset",
    "match_closest",
    "match_ids",
]
