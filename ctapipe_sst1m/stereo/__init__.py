"""Stereo SST-1M: pairing the events of tel 21 and tel 22."""

from .matching import MatchResult, find_time_offset, match_closest, match_ids

__all__ = ["MatchResult", "find_time_offset", "match_closest", "match_ids"]
