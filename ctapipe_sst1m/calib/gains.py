"""
Gain calibration of the DigiCam pixels: ADC counts per photo-electron.

The gains come from fits of the multi-photo-electron spectrum of dark runs
(sst1mpipe's ``dark_run_mes_fitter``). For each pixel, ``dc_to_pe`` is the
baseline-subtracted ADC sum over a 5-sample window per photo-electron, optical
cross talk included (``gain / (1 - cross talk)``), so that
``r1 = (adc - baseline) / dc_to_pe``; ``calib_flag`` is 1 where the fit passed
all its quality cuts (0, or 0.5 in some files, where it did not).

Two formats are read:

* sst1mpipe's files: pandas HDF5 "fixed" frames (``*_fitted_parameters.h5`` per
  night, key ``df_param``; ``averaged_calib_param_v2_*.h5``, key ``param``), read
  with PyTables;
* the ECSV tables shipped in ``ctapipe_sst1m/resources/calibration``
  (``gains_tel0XX.ecsv``, written by ``scripts/make_calibration_resources.py``
  from the averaged files sst1mpipe uses by default).

Only the ECSV tables record their telescope (``tel_id`` metadata): sst1mpipe's
frames hold pixel columns only, no telescope, camera or serial number, in no
attribute. `telescope_of_gains` recognises those by their pixel gain pattern.

The file and resource reading they share with `ctapipe_sst1m.calib.window` is
in `ctapipe_sst1m.calib.tables`.
"""

import functools
import hashlib
import logging
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import tables
from astropy.table import Table
from scipy.stats import spearmanr

from ..instrument.constants import DIGICAM_N_PIXELS, SST1M_TEL_IDS
from .tables import (
    as_path,
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
    "GainTable",
    "default_gain_table",
    "read_gain_columns",
    "read_gain_file",
    "telescope_of_file",
    "telescope_of_gains",
]

log = logging.getLogger(__name__)

#: columns a gain file must have
GAIN_COLUMNS = ("pixel_id", "dc_to_pe", "calib_flag")
#: first bytes of an HDF5 file (superblock at offset 0, as pandas writes them)
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
#: telescope in a file name (``_Tel1_``, ``_tel2.``, ``tel_01``, ``tel022``) -> tel_id
FILE_TELESCOPES = {"1": 21, "2": 22, "21": 21, "22": 22}
_TELESCOPE_TOKEN = re.compile(r"(?<![A-Za-z0-9])[Tt]el_?0?(1|2|21|22)(?![A-Za-z0-9])")
#: an observation date in a file name: 20230917_0528_0529_Tel1_fitted_parameters.h5
_DATE_TOKEN = re.compile(r"(?<!\d)(20\d{2})(\d{2})(\d{2})(?!\d)")
#: a gain table is a telescope's by its gain pattern when its rank correlation
#: with that telescope's shipped gains is at least GAIN_PATTERN_SAME and with the
#: other's below GAIN_PATTERN_OTHER (measured: 0.67 or more against 0.10 at
#: most, see `telescope_of_gains`)
GAIN_PATTERN_SAME = 0.5
GAIN_PATTERN_OTHER = 0.25
#: fewest pixels good in both tables for the pattern to be compared (1000 or
#: more in sst1mpipe's files)
GAIN_PATTERN_MIN_PIXELS = 500


@dataclass(frozen=True)
class GainTable:
    """
    Gains of the pixels of one camera, indexed by pixel id.

    Attributes
    ----------
    dc_to_pe : numpy.ndarray
        float64 (n_pixels,): baseline-subtracted ADC counts summed over 5 samples
        per photo-electron; NaN where the source has no value.
    bad : numpy.ndarray
        bool (n_pixels,): ``calib_flag != 1`` or ``dc_to_pe`` not finite or not
        positive. ``dc_to_pe`` of these pixels must not be used.
    source : str
        The file read, or ``"ctapipe_sst1m default <resource name>"``.
    sha256 : str
        Hex SHA-256 of the bytes of the file read.
    measured : str or None
        ISO date at which the gains were measured (the ``measured`` metadata of
        an ECSV, or the ``YYYYMMDD`` in the file name), None if unknown. The
        cabling of the camera at that date tells in which pixel order they are.
    tel_id : int or None
        Telescope the file records (``tel_id`` metadata of an ECSV), None if it
        records none (sst1mpipe's HDF5 files).
    """

    dc_to_pe: np.ndarray
    bad: np.ndarray
    source: str
    sha256: str
    measured: str | None = None
    tel_id: int | None = None


def telescope_of_file(path) -> int | None:
    """
    Telescope a calibration file belongs to, from its name.

    sst1mpipe names the files of SST1M-1 and SST1M-2 with ``Tel1``/``tel1`` and
    ``Tel2``/``tel2`` (e.g. ``20230302_0194_0195_Tel2_fitted_parameters.h5``,
    ``averaged_calib_param_v2_2023_2024_tel1.h5``); ``tel_1``, ``Tel01`` and the
    tel ids themselves (``gains_tel021.ecsv``) are understood too. The token must
    stand alone: ``hotel1`` or ``tel12`` say nothing.

    Parameters
    ----------
    path : str or os.PathLike
        The file; only its name is looked at.

    Returns
    -------
    int or None
        21 or 22, None if the name names no telescope or both.
    """
    numbers = set(_TELESCOPE_TOKEN.findall(Path(path).name))
    if len(numbers) != 1:
        return None
    return FILE_TELESCOPES[numbers.pop()]


def read_gain_columns(path, n_pixels=DIGICAM_N_PIXELS) -> tuple[Table, str]:
    """
    Read the gain columns of a calibration file.

    Parameters
    ----------
    path : str, os.PathLike or importlib.resources.abc.Traversable
        A pandas HDF5 "fixed" frame (any single frame, e.g. sst1mpipe's
        ``/df_param`` or ``/param``; its blocks may split the columns in any way)
        or an ECSV table, with columns ``pixel_id``, ``dc_to_pe`` and
        ``calib_flag``. In the frames, a NaN ``pixel_id`` (as in sst1mpipe's
        averaged files) is taken from the frame index, provided the index equals
        ``pixel_id`` in every other row.
    n_pixels : int
        Number of pixels of the camera.

    Returns
    -------
    table : astropy.table.Table
        ``pixel_id`` (int64, 0 to n_pixels - 1), ``dc_to_pe`` and ``calib_flag``
        (float64, values as in the file), ordered by pixel id; its ``meta`` has
        ``measured`` (ISO date) if known and ``tel_id`` if the file records it.
    sha256 : str
        Hex SHA-256 of the file bytes.

    Raises
    ------
    FileNotFoundError, OSError
        If the file does not exist or cannot be read.
    ValueError
        If the file is neither HDF5 nor ECSV, holds no (or several) frames, lacks
        a column, has not ``n_pixels`` rows, pixel ids other than a permutation
        of 0 to n_pixels - 1, or ``tel_id`` metadata that is not an integer.
    """
    path = as_path(path)
    data = read_bytes(path, "gain file")
    measured, tel_id = None, None
    if data.startswith(HDF5_SIGNATURE):
        columns, index = _read_hdf5_frame(data, path, GAIN_COLUMNS)
        columns["pixel_id"] = _fill_pixel_ids(columns["pixel_id"], index, path)
    elif is_ecsv(data):
        source_table = read_ecsv(data, path)
        columns = table_columns(source_table, path, GAIN_COLUMNS)
        measured = source_table.meta.get("measured")
        tel_id = recorded_integer(source_table.meta, "tel_id", path)
    else:
        raise ValueError(f"{path} is neither an HDF5 nor an ECSV file")

    order = order_by_pixel_id(columns["pixel_id"], n_pixels, path)
    table = Table(
        {
            "pixel_id": np.arange(n_pixels, dtype=np.int64),
            "dc_to_pe": columns["dc_to_pe"][order].astype(np.float64),
            "calib_flag": columns["calib_flag"][order].astype(np.float64),
        }
    )
    measured = measured or _date_in_name(path)
    if measured is not None:
        table.meta["measured"] = measured
    if tel_id is not None:
        table.meta["tel_id"] = tel_id
    return table, hashlib.sha256(data).hexdigest()


def _date_in_name(path):
    """``YYYY-MM-DD`` from a ``YYYYMMDD`` token of the file name, or None."""
    match = _DATE_TOKEN.search(getattr(path, "name", str(path)))
    return None if match is None else "-".join(match.groups())


def read_gain_file(path, n_pixels=DIGICAM_N_PIXELS) -> GainTable:
    """
    Read the gains of a calibration file.

    Parameters
    ----------
    path : str, os.PathLike or importlib.resources.abc.Traversable
        A file `read_gain_columns` reads.
    n_pixels : int
        Number of pixels of the camera.

    Returns
    -------
    GainTable
        With read-only arrays; ``source`` is ``str(path)``; ``tel_id`` as the
        file records it, see `telescope_of_gains` to tell it from the content.

    Raises
    ------
    FileNotFoundError, OSError, ValueError
        As `read_gain_columns`.
    """
    table, sha256 = read_gain_columns(path, n_pixels)
    dc_to_pe = table["dc_to_pe"].data
    bad = (table["calib_flag"].data != 1) | ~np.isfinite(dc_to_pe) | (dc_to_pe <= 0)
    for array in (dc_to_pe, bad):
        array.flags.writeable = False
    log.debug("read gains of %d pixels from %s, %d bad", n_pixels, path, bad.sum())
    return GainTable(
        dc_to_pe=dc_to_pe,
        bad=bad,
        source=str(path),
        sha256=sha256,
        measured=table.meta.get("measured"),
        tel_id=table.meta.get("tel_id"),
    )


def telescope_of_gains(gains: GainTable) -> tuple[int | None, str]:
    """
    Telescope whose pixels a gain table describes, told from its content.

    The file name is not trusted: a renamed file keeps its gains.

    * The ECSV tables of this package record it: their ``tel_id`` metadata.
    * sst1mpipe's HDF5 files record no telescope, camera or serial number (their
      frames hold pixel columns only: pixel_id, dcr, X_talk, gain, dc_to_pe,
      calib_flag...). Their gains tell it: each sensor has its own gain, so the
      pattern of ``dc_to_pe`` over the pixels is a fingerprint of the camera. It
      is compared with the gains shipped for each telescope by the Spearman rank
      correlation over the pixels good in both. On sst1mpipe's per-night files
      it is 0.67 to 0.78 for every tel 21 file (2023) with the tel 21 gains,
      0.81 for the tel 22 file of 2023-09-21 with the tel 22 gains, and at most
      0.10 with the other telescope's. A table is a telescope's from `GAIN_PATTERN_SAME`
      (0.5) with it and below `GAIN_PATTERN_OTHER` (0.25) with the other.
    * Otherwise the content says nothing: e.g. the tel 22 files of 2022 and
      March 2023 correlate with neither shipped table (0.05 to 0.10; with each
      other 0.64 to 0.86).

    Parameters
    ----------
    gains : GainTable

    Returns
    -------
    tel_id : int or None
        21 or 22 (any id for recorded metadata), None if the content does not
        tell.
    evidence : str
        How it was told, to complete "from ...", e.g. ``"its tel_id metadata"``
        or ``"its pixel gain pattern: rank correlation 0.76 with the tel 21
        reference gains, 0.04 with tel 22's"``; if None, why not.

    Raises
    ------
    FileNotFoundError, OSError
        If a shipped reference table is missing or invalid.
    """
    if gains.tel_id is not None:
        return gains.tel_id, "its tel_id metadata"
    correlations = {}
    for tel_id in SST1M_TEL_IDS:
        reference = default_gain_table(tel_id)
        if len(reference.dc_to_pe) != len(gains.dc_to_pe):
            return None, (
                f"records no telescope and has {len(gains.dc_to_pe)} pixels, the "
                f"reference gains {len(reference.dc_to_pe)}"
            )
        good = ~(gains.bad | reference.bad)
        if np.count_nonzero(good) < GAIN_PATTERN_MIN_PIXELS:
            return None, (
                f"records no telescope and has only {np.count_nonzero(good)} "
                f"pixels with good gains in common with the reference gains of "
                f"tel {tel_id}"
            )
        correlations[tel_id] = spearmanr(
            gains.dc_to_pe[good], reference.dc_to_pe[good]
        ).statistic
    first, second = SST1M_TEL_IDS
    pattern = (
        f"rank correlation {correlations[first]:.2f} with the tel {first} "
        f"reference gains, {correlations[second]:.2f} with tel {second}'s"
    )
    for tel_id, other in ((first, second), (second, first)):
        if (
            correlations[tel_id] >= GAIN_PATTERN_SAME
            and correlations[other] < GAIN_PATTERN_OTHER
        ):
            return tel_id, f"its pixel gain pattern: {pattern}"
    return None, (
        f"records no telescope, and its pixel gain pattern matches neither "
        f"telescope ({pattern})"
    )


def gain_resource_name(tel_id):
    """Name of the shipped gain table of ``tel_id``."""
    return f"gains_tel{tel_id:03d}.ecsv"


@functools.cache
def default_gain_table(tel_id: int) -> GainTable:
    """
    The default gains of a telescope, shipped with ctapipe-sst1m.

    They are sst1mpipe's defaults: the fits averaged over the dark runs of
    March 2023 - June 2024 (tel 21) and September 2023 - June 2024 (tel 22).

    Parameters
    ----------
    tel_id : int
        21 or 22.

    Returns
    -------
    GainTable
        ``source`` is ``"ctapipe_sst1m default gains_tel0XX.ecsv"``. The table is
        read once; its arrays are read-only.

    Raises
    ------
    ValueError
        If ``tel_id`` is not an SST-1M telescope.
    FileNotFoundError, OSError
        If the resource file is missing or invalid.
    """
    check_tel_id(tel_id)
    name = gain_resource_name(tel_id)
    return replace(
        read_calibration_resource(name, read_gain_file),
        source=f"ctapipe_sst1m default {name}",
    )


def _read_hdf5_frame(data, path, names):
    """
    Read the single pandas fixed frame in the HDF5 bytes ``data``.

    Returns the columns ``names`` (name -> array) and the frame index.
    """
    try:
        # HDF5 refuses an image whose label is an existing file
        with tables.open_file(
            f"in-memory copy of {path}",
            mode="r",
            driver="H5FD_CORE",
            driver_core_image=data,
            driver_core_backing_store=0,
        ) as h5file:
            return _frame_columns(_single_frame(h5file, path), path, names)
    except (tables.HDF5ExtError, tables.NoSuchNodeError) as err:
        reason = str(err).strip().splitlines()[-1]
        raise ValueError(f"{path} is not a readable pandas HDF5 frame: {reason}") from err


def _single_frame(h5file, path):
    frames = [
        group
        for group in h5file.walk_groups()
        if _text(getattr(group._v_attrs, "pandas_type", "")) == "frame"
    ]
    if len(frames) != 1:
        found = ", ".join(group._v_pathname for group in frames) or "none"
        raise ValueError(
            f"{path} must hold one pandas fixed-format frame, found: {found}"
        )
    return frames[0]


def _frame_columns(frame, path, names):
    """
    Read the columns ``names`` of a pandas fixed frame, and its index.

    pandas stores the columns of one dtype together: ``blockN_items`` names the
    columns of ``blockN_values``, stored rows x columns when its ``transposed``
    attribute is set.
    """
    index = frame.axis1.read()
    present, columns = [], {}
    for block in range(int(getattr(frame._v_attrs, "nblocks", 0))):
        items = [_text(item) for item in frame._f_get_child(f"block{block}_items")]
        present += items
        wanted = [name for name in names if name in items]
        if not wanted:
            continue
        node = frame._f_get_child(f"block{block}_values")
        if not isinstance(node, tables.Array) or node.dtype.kind not in "biuf":
            raise ValueError(f"{path}: column {', '.join(wanted)} is not numeric")
        values = node.read()
        if not getattr(node.attrs, "transposed", False):
            values = values.T
        if values.shape != (len(index), len(items)):
            raise ValueError(
                f"{path}: {node._v_pathname} has shape {values.shape}, expected "
                f"{(len(index), len(items))} (rows, columns)"
            )
        columns.update({name: values[:, items.index(name)] for name in wanted})
    check_columns(names, present, path)
    return columns, index


def _fill_pixel_ids(pixel_id, index, path):
    """Replace NaN pixel ids by the frame index, if it agrees with the others."""
    if pixel_id.dtype.kind != "f" or np.isfinite(pixel_id).all():
        return pixel_id
    missing = ~np.isfinite(pixel_id)
    if index.dtype.kind not in "iu" or not np.array_equal(
        pixel_id[~missing], index[~missing]
    ):
        raise ValueError(
            f"{path}: pixel_id is NaN in {missing.sum()} rows and the frame index "
            "is not the pixel id in the others"
        )
    log.debug("%s: pixel_id NaN in %d rows, taken from the index", path, missing.sum())
    return np.where(missing, index, pixel_id)


def _text(value):
    """A string stored by pandas (bytes or numpy string)."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
