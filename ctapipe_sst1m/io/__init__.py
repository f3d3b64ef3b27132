"""Reading SST-1M data: the DigiCam raw-data event source and its helpers."""

from ..version import __version__
from .containers import (
    DigiCamConfigContainer,
    DigiCamEventType,
    SST1MArrayEventContainer,
    SST1MCameraContainer,
)
from .source import SST1MEventSource
from .zfits import DigiCamFileError

__all__ = [
    "DigiCamConfigContainer",
    "DigiCamEventType",
    "DigiCamFileError",
    "SST1MArrayEventContainer",
    "SST1MCameraContainer",
    "SST1MEventSource",
    "__version__",
]
