"""DL3: SST-1M event lists and IRFs in the GADF format, for gammapy."""

from .events import DL3InputError, read_run_events
from .gadf import hdu_index_table, obs_index_row, obs_index_table, observation_hdus

__all__ = [
    "DL3InputError",
    "hdu_index_table",
    "obs_index_row",
    "obs_index_table",
    "observation_hdus",
    "read_run_events",
]
