"""
Reading per-pixel calibration tables: files, shipped resources, columns.

What `ctapipe_sst1m.calib.gains` and `ctapipe_sst1m.calib.window` share: the
bytes of a file (sst1mpipe's files or the package's ECSV tables) are read once,
so that their SHA-256 is that of the content parsed; the ECSV tables are checked
for their columns, metadata and pixel ids with the same messages, each naming
the file.
"""

import os
from importlib.resources.abc import Traversable
from pathlib import Path

import numpy as np
from astropy.table import Table

from ..core.resources import CALIBRATION_DIR, PARSE_ERRORS, read_resource, resource
from ..instrument.constants import SST1M_TEL_IDS

__all__ = [
    "ECSV_SIGNATURE",
    "as_path",
    "calibration_resource",
    "check_columns",
    "check_tel_id",
    "is_ecsv",
    "order_by_pixel_id",
    "read_bytes",
    "read_calibration_resource",
    "read_ecsv",
    "recorded_integer",
    "table_columns",
]

#: first characters of an ECSV file
ECSV_SIGNATURE = "# %ECSV"


def calibration_resource(name):
    """
    A shipped calibration table.

    Parameters
    ----------
    name : str
        File name in the calibration resources, e.g. ``"gains_tel021.ecsv"``.

    Returns
    -------
    importlib.resources.abc.Traversable
        The file; it may not exist.
    """
    return resource(f"{CALIBRATION_DIR}/{name}")


def read_calibration_resource(name, read):
    """
    Read a shipped calibration table.

    Parameters
    ----------
    name : str
        File name in the calibration resources.
    read : callable
        Called with the `~importlib.resources.abc.Traversable` of the file.

    Returns
    -------
    object
        What ``read`` returns.

    Raises
    ------
    FileNotFoundError
        If the file is missing.
    OSError
        If ``read`` finds it invalid (KeyError, TypeError, ValueError) or it
        cannot be read.
    """
    return read_resource(f"{CALIBRATION_DIR}/{name}", read)


def check_tel_id(tel_id):
    """
    Check that ``tel_id`` is an SST-1M telescope.

    Parameters
    ----------
    tel_id : int

    Raises
    ------
    ValueError
        If it is not one of `~ctapipe_sst1m.instrument.SST1M_TEL_IDS`.
    """
    if tel_id not in SST1M_TEL_IDS:
        raise ValueError(f"{tel_id} is not an SST-1M telescope, known: {SST1M_TEL_IDS}")


def as_path(path):
    """
    A path to read.

    Parameters
    ----------
    path : str, os.PathLike or importlib.resources.abc.Traversable

    Returns
    -------
    pathlib.Path or importlib.resources.abc.Traversable
        ``path`` itself if a Traversable (a resource), else a `~pathlib.Path`.
    """
    if isinstance(path, Traversable):
        return path
    return Path(os.fspath(path))


def read_bytes(path, kind):
    """
    The bytes of a file.

    Parameters
    ----------
    path : pathlib.Path or importlib.resources.abc.Traversable
        See `as_path`.
    kind : str
        What the file is, for the messages, e.g. ``"gain file"``.

    Returns
    -------
    bytes

    Raises
    ------
    FileNotFoundError
        ``"<kind> <path> not found"``.
    OSError
        If it cannot be read.
    """
    try:
        return path.read_bytes()
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{kind} {path} not found") from err
    except OSError as err:
        raise OSError(f"Cannot read {kind} {path}: {err}") from err


def is_ecsv(data):
    """
    Whether the bytes ``data`` are an ECSV table (by its first characters).

    Parameters
    ----------
    data : bytes

    Returns
    -------
    bool
    """
    return data.startswith(ECSV_SIGNATURE.encode())


def read_ecsv(data, path):
    """
    The ECSV table in the bytes of a file.

    Parameters
    ----------
    data : bytes
        The content of ``path``.
    path : pathlib.Path or importlib.resources.abc.Traversable
        The file, for the messages.

    Returns
    -------
    astropy.table.Table

    Raises
    ------
    ValueError
        If ``data`` is not UTF-8 or not a valid ECSV table.
    """
    try:
        return Table.read(data.decode("utf-8").splitlines(), format="ascii.ecsv")
    except (UnicodeDecodeError, *PARSE_ERRORS) as err:
        raise ValueError(f"{path} is not a valid ECSV table: {err}") from err


def table_columns(table, path, names):
    """
    The numeric columns of an astropy table, as arrays.

    Parameters
    ----------
    table : astropy.table.Table
    path : pathlib.Path or importlib.resources.abc.Traversable
        The file read, for the messages.
    names : sequence of str
        The columns wanted.

    Returns
    -------
    dict
        Name -> 1-D `numpy.ndarray`.

    Raises
    ------
    ValueError
        If a column is missing or is not a 1-D numeric column.
    """
    check_columns(names, table.colnames, path)
    columns = {name: np.asarray(table[name]) for name in names}
    _check_numeric(columns, path)
    return columns


def check_columns(names, present, path):
    """
    Check that a file has the columns it must have.

    Parameters
    ----------
    names : sequence of str
        The columns it must have.
    present : sequence of str
        The columns it has.
    path : pathlib.Path or importlib.resources.abc.Traversable
        The file, for the messages.

    Raises
    ------
    ValueError
        Naming the missing columns and those present.
    """
    missing = [name for name in names if name not in present]
    if missing:
        raise ValueError(
            f"{path} has no column {', '.join(missing)} (columns: {', '.join(present)})"
        )


def _check_numeric(columns, path):
    for name, values in columns.items():
        if values.dtype.kind not in "biuf" or values.ndim != 1:
            raise ValueError(
                f"{path}: column {name} is not a numeric column ({values.dtype})"
            )


def recorded_integer(meta, key, path):
    """
    An integer a table records in its metadata (a telescope or window number).

    Parameters
    ----------
    meta : dict
        The table metadata.
    key : str
    path : pathlib.Path or importlib.resources.abc.Traversable
        The file, for the messages.

    Returns
    -------
    int or None
        ``meta[key]``, None if absent.

    Raises
    ------
    ValueError
        If ``meta[key]`` is not an integer (a bool is not).
    """
    value = meta.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{path}: {key} metadata {value!r} is not an integer")
    return int(value)


def order_by_pixel_id(pixel_id, n_pixels, path):
    """
    Row order that sorts a table by pixel id.

    Parameters
    ----------
    pixel_id : array-like
        The pixel id of each row.
    n_pixels : int
        Number of pixels of the camera.
    path : pathlib.Path or importlib.resources.abc.Traversable
        The file, for the messages.

    Returns
    -------
    numpy.ndarray
        ``order`` such that ``pixel_id[order]`` is 0 to n_pixels - 1.

    Raises
    ------
    ValueError
        If there are not ``n_pixels`` rows or the pixel ids are not a
        permutation of 0 to n_pixels - 1.
    """
    pixel_id = np.asarray(pixel_id)
    if len(pixel_id) != n_pixels:
        raise ValueError(f"{path} has {len(pixel_id)} pixels, DigiCam has {n_pixels}")
    order = np.argsort(pixel_id, kind="stable")
    if not np.array_equal(pixel_id[order], np.arange(n_pixels)):
        raise ValueError(
            f"{path}: pixel ids are not a permutation of 0..{n_pixels - 1} "
            f"(missing: {np.setdiff1d(np.arange(n_pixels), pixel_id)[:10].tolist()})"
        )
    return order
