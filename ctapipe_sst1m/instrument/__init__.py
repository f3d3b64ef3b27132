"""SST-1M instrument description: telescopes, DigiCam camera, subarray."""

from .constants import (
    DIGICAM_N_CHANNELS,
    DIGICAM_N_PIXELS,
    DIGICAM_N_SAMPLES,
    DIGICAM_SAMPLING_RATE,
    SST1M_FOCAL_LENGTH_CHOICE,
    SST1M_SUBARRAY_NAME,
    SST1M_TEL_IDS,
    SST1M_TELESCOPE_TYPE,
)
from .focal_length import (
    fill_effective_focal_length,
    focal_length_mismatches,
    is_sst1m_optics,
    sst1m_focal_length,
)
from .subarray import (
    add_telescope,
    load_sst1m_subarray,
    sst1m_optics,
    sst1m_telescope_description,
)

__all__ = [
    "DIGICAM_N_CHANNELS",
    "DIGICAM_N_PIXELS",
    "DIGICAM_N_SAMPLES",
    "DIGICAM_SAMPLING_RATE",
    "SST1M_FOCAL_LENGTH_CHOICE",
    "SST1M_SUBARRAY_NAME",
    "SST1M_TELESCOPE_TYPE",
    "SST1M_TEL_IDS",
    "add_telescope",
    "fill_effective_focal_length",
    "focal_length_mismatches",
    "is_sst1m_optics",
    "load_sst1m_subarray",
    "sst1m_focal_length",
    "sst1m_optics",
    "sst1m_telescope_description",
]
