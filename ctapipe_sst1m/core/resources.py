"""
The resource files shipped with ctapipe-sst1m, found from one root.

``ctapipe_sst1m/resources`` holds the configuration files of the tools
(``sst1m*.yaml``) and two directories of tables:

* ``instrument``: the SST-1M layout, camera geometry and readouts, written by
  ``scripts/make_instrument_resources.py``;
* ``calibration``: gains, window transmittance, pixel modules, module swaps and
  the PDE corrections of the simulations, written by
  ``scripts/make_calibration_resources.py``.

Every module finds its resources through `resource`, relative to `RESOURCES`,
at the time it reads them: replacing `RESOURCES` (e.g. by a test) redirects all
of them at once.
"""

import logging
from importlib.resources import files
from importlib.resources.abc import Traversable

__all__ = [
    "CALIBRATION_DIR",
    "INSTRUMENT_DIR",
    "RESOURCES",
    "config_file",
    "read_resource",
    "resource",
    "shipped_configs",
]

log = logging.getLogger(__name__)

#: the root of the resource files
RESOURCES = files("ctapipe_sst1m") / "resources"
#: directory of the instrument tables, relative to `RESOURCES`
INSTRUMENT_DIR = "instrument"
#: directory of the calibration tables, relative to `RESOURCES`
CALIBRATION_DIR = "calibration"
#: suffix of the shipped configuration files
CONFIG_SUFFIX = ".yaml"
#: errors of a resource whose content is invalid (a reader's own check or a
#: parser's complaint), as opposed to one that cannot be read
PARSE_ERRORS = (KeyError, TypeError, ValueError)


def resource(path: str) -> Traversable:
    """
    A resource file or directory of the package.

    Parameters
    ----------
    path : str
        Relative to `RESOURCES`, ``/``-separated, e.g.
        ``"calibration/gains_tel021.ecsv"``; ``""`` is the root itself.

    Returns
    -------
    importlib.resources.abc.Traversable
        Under the current `RESOURCES`; it may not exist.
    """
    # joinpath with one part at a time: not every Traversable (e.g. a zip
    # archive's) accepts "a/b" as one name
    return RESOURCES.joinpath(*[part for part in path.split("/") if part])


def read_resource(path: str, read, parse_errors=PARSE_ERRORS):
    """
    Read a resource file of the package.

    Parameters
    ----------
    path : str
        Relative to `RESOURCES`, see `resource`.
    read : callable
        Called with the `~importlib.resources.abc.Traversable` of the file;
        what it returns is returned.
    parse_errors : tuple of type
        Exceptions of ``read`` meaning that the content is invalid.

    Returns
    -------
    object
        ``read(resource(path))``.

    Raises
    ------
    FileNotFoundError
        If the file does not exist: the installation is incomplete.
    OSError
        If ``read`` raises one of ``parse_errors`` (the resource is invalid),
        or the file cannot be read.
    """
    file = resource(path)
    if not file.is_file():
        raise FileNotFoundError(
            f"SST-1M resource {path} not found in {RESOURCES}: "
            "the ctapipe-sst1m installation is incomplete"
        )
    log.debug("reading %s", file)
    try:
        return read(file)
    except parse_errors as err:
        raise OSError(f"SST-1M resource {file} is invalid: {_reason(err)}") from err


def _reason(err):
    """The message of ``err``; the str of a KeyError is only the quoted key."""
    return repr(err) if isinstance(err, KeyError) else str(err)


def shipped_configs() -> list[str]:
    """
    Names of the configuration files shipped with the package.

    Returns
    -------
    list of str
        Sorted file names (``sst1m.yaml``, ``sst1m_mc.yaml``...) in `RESOURCES`.
    """
    return sorted(
        entry.name
        for entry in RESOURCES.iterdir()
        if entry.is_file() and entry.name.endswith(CONFIG_SUFFIX)
    )


def config_file(name: str) -> Traversable:
    """
    A configuration file shipped with the package.

    Parameters
    ----------
    name : str
        File name, e.g. ``"sst1m.yaml"``, one of `shipped_configs`.

    Returns
    -------
    importlib.resources.abc.Traversable
        The file, in `RESOURCES`.

    Raises
    ------
    FileNotFoundError
        If the package ships no such file.
    """
    file = resource(name)
    if not name.endswith(CONFIG_SUFFIX) or "/" in name or not file.is_file():
        raise FileNotFoundError(
            f"{name}: no such configuration file in {RESOURCES}; shipped: "
            f"{', '.join(shipped_configs()) or 'none, the installation is incomplete'}"
        )
    return file
