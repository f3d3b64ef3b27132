"""SST-1M image cleaning, as ctapipe ImageCleaners."""

from .cleaning import SST1MImageCleaner, picture_thresholds

__all__ = ["SST1MImageCleaner", "picture_thresholds"]
