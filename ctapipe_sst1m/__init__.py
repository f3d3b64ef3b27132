"""
ctapipe plugins for the SST-1M telescopes.

ctapipe discovers EventSources through the ``ctapipe_io`` entry point, which
imports this package first; cleaners, extractors and calibrators are found by
ctapipe only once their modules are imported, so they are imported here.
"""

from . import image, io
from .version import __version__

__all__ = ["__version__", "image", "io"]
