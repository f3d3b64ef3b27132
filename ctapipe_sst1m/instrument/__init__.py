"""SST-1M instrument description: telescopes, DigiCam camera, subarray."""

from .constants import (
    DIGICAM_N_CHANNELS,
    DIGICAM_N_PIXELS,
    DIGICAM_N_SAMPLES,
    DIGICAM_SAMPLING_RATE,
    SST1M_SUBARRAY_NAME,
    SST1M_TEL_IDS,
    SST1M_TELESCOPE_TYPE,
)
from .subarray import add_telescope, load_sst1m_subarray, sst1m_telescope_description

__all__ = [
    "DIGICAM_N_CHANNELS",
    "DIGICAM_N_PIXELS",
    "DIGICAM_N_SAMPLES",
    "DIGICAM_SAMPLING_RATE",
    "SST1M_SUBARRAY_NAME",
    "SST1M_TELESCOPE_TYPE",
    "SST1M_TEL_IDS",
    "add_telescope",
    "load_sst1m_subarray",
    "sst1m_telescope_description",
]
