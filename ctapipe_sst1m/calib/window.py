"""
Entrance window transmittance and mis-cabled camera modules.

* Window: each SST-1M camera has an entrance window whose transmittance varies
  from pixel to pixel by a few percent. sst1mpipe's lab measurements
  (``corr_factor_1st_wdw.txt``, ``corr_factor_2nd_wdw.txt``) give it relative to
  the camera mean; a pixel charge is divided by it. Window 1 is on tel 21 and
  window 2 on tel 22, shipped as ``window_1.ecsv`` and ``window_2.ecsv``.
* Modules: DigiCam has 108 modules of 12 pixels (``pixel_modules.ecsv``, from
  ``digicam_pixels_mapping_V5T.txt``). During some periods the cables of two
  modules were swapped (``swapped_modules.ecsv``, from sst1mpipe's
  ``inverted_module_list.json``): the signal of one module was recorded in the
  pixels of the other. `module_swap_permutation` undoes this, pairing the pixels
  at the same position in the two modules.

The shipped tables are written by ``scripts/make_calibration_resources.py``.
Only they record which window they describe (``window`` and ``default_tel_id``
metadata); sst1mpipe's text files record nothing but pixel ids and factors, see
`telescope_of_window`.
"""

import functools
import hashlib
import logging
from dataclasses import dataclass

import numpy as np
from astropy.time import Time

from ..instrument.constants import DIGICAM_N_PIXELS
from .tables import (
    as_path,
    calibration_resource,
    check_columns,
    check_tel_id,
    is_ecsv,
    order_by_pixel_id,
    read_bytes,
    read_calibration_resource,
    read_ecsv,
    recorded_integer,
    table_columns,
)

__all__ = [
    "default_window_factors",
    "default_window_file",
    "module_swap_permutation",
    "pixel_modules",
    "read_window_file",
    "swapped_modules",
    "telescope_of_window",
]

log = logging.getLogger(__name__)

#: window mounted by default on each telescope
DEFAULT_WINDOWS = {21: 1, 22: 2}
#: largest difference of factors (relative transmittance) of a file that holds
#: a shipped window's measurement, e.g. rounded: the two windows differ by up to
#: 0.09 and by 0.017 rms
SAME_WINDOW_TOLERANCE = 1e-4
PIXEL_MODULES_FILE = "pixel_modules.ecsv"
SWAPPED_MODULES_FILE = "swapped_modules.ecsv"
#: DigiCam modules are numbered 1 to N_MODULES
N_MODULES = 108
#: pixels of a module, numbered 1 to PIXELS_PER_MODULE (hardware position)
PIXELS_PER_MODULE = 12
_MODULE_IDS = frozenset(range(1, N_MODULES + 1))
SWAP_COLUMNS = ("tel_id", "start", "stop", "module_1", "module_2")


def window_resource_name(window):
    """Name of the shipped table of window number ``window``."""
    return f"window_{window}.ecsv"


def read_window_file(path, n_pixels=DIGICAM_N_PIXELS) -> tuple[np.ndarray, str]:
    """
    Read the relative window transmittance of each pixel.

    Parameters
    ----------
    path : str, os.PathLike or importlib.resources.abc.Traversable
        sst1mpipe's text format (one header line, then rows of pixel id and
        factor, whitespace separated, in any order) or an ECSV table with columns
        ``pixel_id`` and ``transmittance``.
    n_pixels : int
        Number of pixels of the camera.

    Returns
    -------
    factors : numpy.ndarray
        float64 (n_pixels,), indexed by pixel id.
    sha256 : str
        Hex SHA-256 of the file bytes.

    Raises
    ------
    FileNotFoundError, OSError
        If the file does not exist or cannot be read.
    ValueError
        If the file cannot be parsed, has not ``n_pixels`` rows, pixel ids other
        than a permutation of 0 to n_pixels - 1, or a factor that is not finite
        and positive.
    """
    path = as_path(path)
    data = read_bytes(path, "window file")
    if is_ecsv(data):
        columns = table_columns(
            read_ecsv(data, path), path, ("pixel_id", "transmittance")
        )
        pixel_id, factors = columns["pixel_id"], columns["transmittance"]
    else:
        pixel_id, factors = _read_window_text(data, path)

    factors = factors[order_by_pixel_id(pixel_id, n_pixels, path)].astype(np.float64)
    invalid = np.flatnonzero(~(np.isfinite(factors) & (factors > 0)))
    if len(invalid) > 0:
        raise ValueError(
            f"{path}: window factors must be finite and positive, they are not for "
            f"{len(invalid)} pixels: {invalid[:10].tolist()}"
        )
    return factors, hashlib.sha256(data).hexdigest()


def telescope_of_window(path, factors) -> tuple[int | None, str]:
    """
    Telescope whose window a transmittance file describes, told from its content.

    The file name is not trusted: a renamed file keeps its factors.

    * The ECSV tables of this package record their window (``window``
      metadata, the telescope being the one it is mounted on, `DEFAULT_WINDOWS`)
      or else the telescope (``default_tel_id``).
    * sst1mpipe's text files (``corr_factor_1st_wdw.txt``...) record nothing but
      pixel ids and factors. A file whose factors are those of a shipped window
      (within `SAME_WINDOW_TOLERANCE`, 1e-4) is that window; any other (a new
      measurement) is not recognised.

    Parameters
    ----------
    path : str, os.PathLike or importlib.resources.abc.Traversable
        The file `read_window_file` read.
    factors : numpy.ndarray
        What `read_window_file` returned for it.

    Returns
    -------
    tel_id : int or None
        Telescope the window is mounted on, None if the content does not tell.
    evidence : str
        How it was told, to complete "from ...", e.g. ``"its window metadata:
        window 1, mounted on tel 21"``; if None, why not.

    Raises
    ------
    FileNotFoundError, OSError
        If the file or a shipped window table cannot be read.
    ValueError
        If the ECSV metadata names no window or telescope properly.
    """
    path = as_path(path)
    data = read_bytes(path, "window file")
    if is_ecsv(data):
        meta = read_ecsv(data, path).meta
        window = recorded_integer(meta, "window", path)
        if window is not None:
            mounted = [tel for tel, number in DEFAULT_WINDOWS.items() if number == window]
            if not mounted:
                return None, (
                    f"its window metadata names window {window}, mounted on no "
                    "SST-1M telescope"
                )
            return mounted[0], (
                f"its window metadata: window {window}, mounted on tel {mounted[0]}"
            )
        tel_id = recorded_integer(meta, "default_tel_id", path)
        if tel_id is not None:
            return tel_id, "its default_tel_id metadata"

    for tel_id, window in DEFAULT_WINDOWS.items():
        shipped = default_window_factors(tel_id)
        if shipped.shape == factors.shape and (
            np.max(np.abs(factors - shipped)) <= SAME_WINDOW_TOLERANCE
        ):
            return tel_id, (
                f"its factors, those of window {window}, mounted on tel {tel_id}"
            )
    return None, (
        "records no window or telescope, and its factors are those of no shipped window"
    )


def _read_window_text(data, path):
    """Pixel ids and factors of sst1mpipe's text format."""
    try:
        rows = data.decode("utf-8").splitlines()[1:]
        values = np.loadtxt(rows, ndmin=2, dtype=np.float64)
    except (UnicodeDecodeError, ValueError) as err:
        raise ValueError(
            f"{path} is neither ECSV nor a text table of pixel_id, factor: {err}"
        ) from err
    if values.shape[1] != 2:
        raise ValueError(
            f"{path}: expected 2 columns (pixel_id, factor), found {values.shape[1]}"
        )
    return values[:, 0], values[:, 1]


def default_window_file(tel_id: int):
    """
    The shipped window table of a telescope.

    Parameters
    ----------
    tel_id : int
        21 (window 1) or 22 (window 2).

    Returns
    -------
    importlib.resources.abc.Traversable
        ``window_1.ecsv`` or ``window_2.ecsv`` in the package resources.

    Raises
    ------
    ValueError
        If ``tel_id`` is not an SST-1M telescope.
    """
    check_tel_id(tel_id)
    return calibration_resource(window_resource_name(DEFAULT_WINDOWS[tel_id]))


@functools.cache
def default_window_factors(tel_id: int) -> np.ndarray:
    """
    The relative window transmittance of the pixels of a telescope.

    Parameters
    ----------
    tel_id : int
        21 or 22.

    Returns
    -------
    numpy.ndarray
        float64 (1296,), indexed by pixel id, read-only (read once).

    Raises
    ------
    ValueError
        If ``tel_id`` is not an SST-1M telescope.
    FileNotFoundError, OSError
        If the resource file is missing or invalid.
    """
    name = default_window_file(tel_id).name
    factors, _ = read_calibration_resource(name, read_window_file)
    factors.flags.writeable = False
    return factors


@functools.cache
def pixel_modules() -> tuple[np.ndarray, np.ndarray]:
    """
    Module of each DigiCam pixel and its position in the module.

    Returns
    -------
    module : numpy.ndarray
        int64 (1296,): module (1 to 108) of each pixel, indexed by pixel id.
    pixel_in_module : numpy.ndarray
        int64 (1296,): hardware position of the pixel in its module (1 to 12).

    Both arrays are read-only (read once).

    Raises
    ------
    FileNotFoundError, OSError
        If the resource file is missing or invalid.
    """
    return read_calibration_resource(PIXEL_MODULES_FILE, _read_pixel_modules)


def _read_pixel_modules(path):
    data = read_bytes(path, "pixel module table")
    columns = table_columns(
        read_ecsv(data, path), path, ("pixel_id", "module", "pixel_in_module")
    )
    order = order_by_pixel_id(columns["pixel_id"], DIGICAM_N_PIXELS, path)
    module = columns["module"][order].astype(np.int64)
    position = columns["pixel_in_module"][order].astype(np.int64)
    slots = (module - 1) * PIXELS_PER_MODULE + position - 1
    if not np.array_equal(np.sort(slots), np.arange(N_MODULES * PIXELS_PER_MODULE)):
        raise ValueError(
            f"{path}: (module, pixel_in_module) must give each of the "
            f"{N_MODULES} modules one pixel in each of its {PIXELS_PER_MODULE} positions"
        )
    for array in (module, position):
        array.flags.writeable = False
    return module, position


@dataclass(frozen=True)
class _Swap:
    """Two modules of a telescope whose cables were swapped from start to stop."""

    tel_id: int
    start: Time
    stop: Time
    modules: tuple[int, int]


@functools.cache
def _swaps():
    return read_calibration_resource(SWAPPED_MODULES_FILE, _read_swaps)


def _read_swaps(path):
    table = read_ecsv(read_bytes(path, "swapped module table"), path)
    check_columns(SWAP_COLUMNS, table.colnames, path)
    swaps = tuple(
        _Swap(
            tel_id=int(row["tel_id"]),
            start=Time(row["start"], format="isot", scale="utc"),
            stop=Time(row["stop"], format="isot", scale="utc"),
            modules=(int(row["module_1"]), int(row["module_2"])),
        )
        for row in table
    )
    for swap in swaps:
        if not swap.start < swap.stop:
            raise ValueError(f"{path}: swap {swap} stops before it starts")
        module_1, module_2 = swap.modules
        if module_1 == module_2 or not {module_1, module_2} <= _MODULE_IDS:
            raise ValueError(f"{path}: swap {swap} does not name two DigiCam modules")
    return swaps


def swapped_modules(tel_id: int, time: Time) -> list[tuple[int, int]]:
    """
    The pairs of modules of a telescope whose cables were swapped at a time.

    Parameters
    ----------
    tel_id : int
        21 or 22.
    time : astropy.time.Time
        A scalar time, any scale; a swap is active from its start (included) to
        its stop (excluded), both UTC.

    Returns
    -------
    list of tuple of int
        The (module_1, module_2) pairs active at ``time``, possibly none.

    Raises
    ------
    ValueError
        If ``tel_id`` is not an SST-1M telescope or ``time`` is not a scalar
        `~astropy.time.Time`.
    FileNotFoundError, OSError
        If the resource file is missing or invalid.
    """
    check_tel_id(tel_id)
    if not isinstance(time, Time) or not time.isscalar:
        raise ValueError(f"time must be a scalar astropy Time, got {time!r}")
    return [
        swap.modules
        for swap in _swaps()
        if swap.tel_id == tel_id and swap.start <= time < swap.stop
    ]


def module_swap_permutation(tel_id: int, time: Time) -> np.ndarray | None:
    """
    Pixel permutation that undoes the module swaps of a telescope at a time.

    ``data_physical = data_recorded[perm]`` moves what was recorded in the pixels
    of ``module_1`` to the pixels of ``module_2`` and the reverse. The pixels of
    the two modules are paired by their hardware position in the module
    (``pixel_in_module``), not by the order of their pixel ids.

    Parameters
    ----------
    tel_id : int
        21 or 22.
    time : astropy.time.Time
        A scalar time, see `swapped_modules`.

    Returns
    -------
    numpy.ndarray or None
        int64 (1296,) read-only permutation of the pixel ids, an involution; None
        if no swap is active.

    Raises
    ------
    ValueError
        If the arguments are invalid (see `swapped_modules`) or two active swaps
        share a module.
    FileNotFoundError, OSError
        If a resource file is missing or invalid.
    """
    pairs = swapped_modules(tel_id, time)
    if not pairs:
        return None
    return _swap_permutation(tuple(pairs))


@functools.cache
def _swap_permutation(pairs):
    """The permutation exchanging the pixels of each pair of modules in ``pairs``."""
    modules = [module for pair in pairs for module in pair]
    if len(set(modules)) != len(modules):
        raise ValueError(f"module swaps {pairs} share a module")

    perm = np.arange(DIGICAM_N_PIXELS)
    for module_1, module_2 in pairs:
        pixels_1, pixels_2 = _module_pixels(module_1), _module_pixels(module_2)
        perm[pixels_1], perm[pixels_2] = pixels_2, pixels_1
    log.debug("pixel permutation of the module swaps %s", pairs)
    perm.flags.writeable = False
    return perm


def _module_pixels(module):
    """Pixel ids of a module, ordered by their position in the module."""
    module_of_pixel, position = pixel_modules()
    pixels = np.flatnonzero(module_of_pixel == module)
    return pixels[np.argsort(position[pixels])]
