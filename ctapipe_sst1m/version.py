"""Version of the installed ctapipe-sst1m distribution."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ctapipe-sst1m")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
