"""
Completeness marks of the products the package writes or finishes.

A product is complete only once its mark is in it. The mark is written last,
after every other byte, so a product cut short by an error, Ctrl-C, SIGTERM or
SIGKILL has none, and every package tool that reads a product refuses it.

* HDF5 products (DL1 of the source's runs, stereo DL1, DL2 of the package's
  configurations): the table ``/configuration/sst1m/product``, one row per
  counted reason (events read, written, skipped and why), and in its metadata
  the product kind, the events that went in and came out, the software, the
  inputs and the number of rows of every other table of the file at the time of
  marking. A table that later loses rows, or the trigger table disagreeing with
  the mark, makes the product inconsistent.
* FITS products (IRFs, DL3): primary-header cards ``SSTPROD`` (kind),
  ``SSTCOMPL`` (True), ``SSTEVIN``/``SSTEVOUT`` where events are counted, and the
  FITS ``CHECKSUM``/``DATASUM`` of every HDU, verified when read. Files are
  written under a hidden temporary name and renamed when complete.

Products written by stock ctapipe tools alone (``ctapipe-apply-models``) carry
no mark; `verify_hdf5_product` with ``require_mark=False`` checks that their
event tables agree with each other instead.
"""

import datetime
import gzip
import json
import os
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tables
from astropy.io import fits
from astropy.table import Table
from ctapipe.core import Provenance
from ctapipe.io.hdf5dataformat import (
    CONFIG_GROUP,
    DL1_SUBARRAY_TRIGGER_TABLE,
    DL1_TEL_PARAMETERS_GROUP,
    DL1_TEL_TRIGGER_TABLE,
    DL2_SUBARRAY_GROUP,
    DL2_TEL_GROUP,
)

from ..version import __version__

__all__ = [
    "MARK_TABLE",
    "PARTIAL_PREFIX",
    "SST1M_CONFIG_GROUP",
    "ProductError",
    "ProductMark",
    "atomic_output",
    "nan_columns",
    "one_line",
    "read_hdf5_mark",
    "registered_files",
    "remove_stale_partials",
    "verify_fits_product",
    "verify_hdf5_product",
    "write_fits_product",
    "write_hdf5_mark",
]

#: the package's own group in the HDF5 files it writes or completes
SST1M_CONFIG_GROUP = f"{CONFIG_GROUP}/sst1m"
MARK_TABLE = f"{SST1M_CONFIG_GROUP}/product"
#: hidden temporary names of products being written: ``.<name>.partial``
PARTIAL_PREFIX = "."
PARTIAL_SUFFIX = ".partial"
#: rows read at once when every table is read through (keeps memory flat)
CHUNK_ROWS = 100_000

#: product kinds
DL1 = "DL1"
DL1_STEREO = "DL1-stereo"
DL2 = "DL2"
IRF = "IRF"
IRF_BENCHMARK = "IRF-benchmark"
DL3 = "DL3"
DL3_INDEX = "DL3-index"


class ProductError(OSError):
    """A product that is missing, incomplete, inconsistent or damaged; the message
    names the file and says what is wrong."""


@dataclass
class ProductMark:
    """What the completeness mark of a product records."""

    path: Path
    kind: str
    events_in: int | None
    events_out: int | None
    creator: str
    date: str
    #: reason -> number of events (read, written, skipped because ...)
    counts: dict = field(default_factory=dict)
    inputs: list = field(default_factory=list)
    #: HDF5 table path -> rows when the product was marked
    table_rows: dict = field(default_factory=dict)
    #: anomalies the user allowed (e.g. missing chunks of a run)
    notes: list = field(default_factory=list)

    def summary(self):
        """One line: kind, events in and out."""
        events = ""
        if self.events_out is not None:
            events = f", {self.events_out} events"
            if self.events_in is not None and self.events_in != self.events_out:
                events += f" of {self.events_in}"
        return f"complete {self.kind}{events} ({self.creator}, {self.date})"


def one_line(err):
    """
    An exception's message on one line; for HDF5's multi-line error back trace,
    its innermost cause (e.g. ``truncated file: eof = 60000, ...``).
    """
    text = str(err)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if "End of HDF5 error back trace" in lines:
        end = lines.index("End of HDF5 error back trace")
        causes = [line for line in lines[:end] if not line.startswith("File ")]
        if causes and causes[-1] != "HDF5 error back trace":
            return causes[-1]
    return " ".join(lines) or type(err).__name__


def _regular_file(path):
    """``path`` as a Path, if it is a non-empty regular file."""
    path = Path(path)
    if path.is_dir():
        raise ProductError(f"{path}: is a directory, not a product file")
    if not path.is_file():
        raise ProductError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ProductError(f"{path}: empty file (0 bytes)")
    return path


def nan_columns(hdus):
    """
    The float columns of FITS tables that hold NaN (not valid in GADF IRFs).

    Parameters
    ----------
    hdus : iterable of astropy.io.fits.BinTableHDU

    Returns
    -------
    list of (str, str, int, int)
        HDU name, column, NaN values, all values.
    """
    found = []
    for hdu in hdus:
        if not isinstance(hdu, fits.BinTableHDU):
            continue
        for column in hdu.columns.names:
            values = np.asarray(hdu.data[column])
            if values.dtype.kind == "f" and np.isnan(values).any():
                found.append((hdu.name, column, int(np.isnan(values).sum()), values.size))
    return found


def _now():
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _tables(h5file):
    """Path -> node of every table of an open file but the mark."""
    return {
        node._v_pathname: node
        for node in h5file.walk_nodes("/", classname="Table")
        if node._v_pathname != MARK_TABLE
    }


def write_hdf5_mark(path, kind, events_in, events_out, counts=None, inputs=(), notes=()):
    """
    Mark an HDF5 product complete; call it after the last byte is written.

    Parameters
    ----------
    path : str or pathlib.Path
        The closed product file.
    kind : str
        ``DL1``, ``DL1-stereo``, ``DL2``.
    events_in, events_out : int or None
        Events that went in (read) and came out (written).
    counts : dict, optional
        Reason -> events; every event read is written or counted with a reason.
    inputs : sequence of str
        Names of the input files.
    notes : sequence of str
        Anomalies the user allowed, e.g. missing chunks of a run.

    Returns
    -------
    ProductMark

    Raises
    ------
    ProductError
        If the file cannot be opened for writing.
    """
    path = Path(path)
    counts = dict(counts or {})
    try:
        h5file = tables.open_file(path, mode="a")
    except (OSError, tables.HDF5ExtError) as err:
        raise ProductError(
            f"{path}: cannot open to mark it complete ({one_line(err)})"
        ) from err
    with h5file:
        if MARK_TABLE in h5file:
            h5file.remove_node(MARK_TABLE)
        table_rows = {name: int(node.nrows) for name, node in _tables(h5file).items()}
        mark = ProductMark(
            path=path,
            kind=kind,
            events_in=None if events_in is None else int(events_in),
            events_out=None if events_out is None else int(events_out),
            creator=f"ctapipe-sst1m {__version__}",
            date=_now(),
            counts={str(k): int(v) for k, v in counts.items()},
            inputs=[str(i) for i in inputs],
            table_rows=table_rows,
            notes=[str(n) for n in notes],
        )
        table = Table(
            {
                "reason": np.array(list(mark.counts) or [""], dtype="S64"),
                "n_events": np.array(list(mark.counts.values()) or [0], dtype=np.int64),
            }
        )
        group, name = MARK_TABLE.rsplit("/", 1)
        node = h5file.create_table(
            group, name, table.as_array(), createparents=True, title="product mark"
        )
        attrs = node.attrs
        attrs["PRODUCT"] = kind
        attrs["EVENTS_IN"] = -1 if mark.events_in is None else mark.events_in
        attrs["EVENTS_OUT"] = -1 if mark.events_out is None else mark.events_out
        attrs["CREATOR"] = mark.creator
        attrs["DATE"] = mark.date
        attrs["INPUTS"] = json.dumps(mark.inputs)
        attrs["TABLE_ROWS"] = json.dumps(table_rows)
        attrs["NOTES"] = json.dumps(mark.notes)
        h5file.flush()
        # last: a mark cut short by an interrupt is no mark
        attrs["COMPLETE"] = True
        h5file.flush()
    return mark


def read_hdf5_mark(h5file, path):
    """
    The mark of an open HDF5 product.

    Raises
    ------
    ProductError
        If the product has no mark (it was cut short, or not written by a package
        tool).
    """
    if MARK_TABLE not in h5file:
        raise ProductError(
            f"{path}: no completeness mark ({MARK_TABLE}): the tool that wrote it "
            "did not finish (error, interrupt, kill) or it was not written by a "
            "ctapipe-sst1m run; process the input again"
        )
    node = h5file.get_node(MARK_TABLE)
    attrs = node.attrs
    if "COMPLETE" not in attrs or not attrs["COMPLETE"]:
        raise ProductError(
            f"{path}: completeness mark cut short (the tool was stopped while "
            "marking it); process the input again"
        )
    rows = node.read()
    counts = {r["reason"].decode(): int(r["n_events"]) for r in rows if r["reason"]}

    def optional(value):
        return None if int(value) < 0 else int(value)

    return ProductMark(
        path=Path(path),
        kind=str(attrs["PRODUCT"]),
        events_in=optional(attrs["EVENTS_IN"]),
        events_out=optional(attrs["EVENTS_OUT"]),
        creator=str(attrs["CREATOR"]),
        date=str(attrs["DATE"]),
        counts=counts,
        inputs=json.loads(str(attrs["INPUTS"])),
        table_rows=json.loads(str(attrs["TABLE_ROWS"])),
        notes=json.loads(str(attrs["NOTES"])) if "NOTES" in attrs else [],
    )


def _read_through(path, name, node):
    """Read every row; HDF5's fletcher32 chunk checksums catch damaged bytes."""
    try:
        for start in range(0, node.nrows, CHUNK_ROWS):
            node.read(start, min(start + CHUNK_ROWS, node.nrows))
    except (tables.HDF5ExtError, OSError, ValueError) as err:
        raise ProductError(
            f"{path}: damaged data in table {name} ({one_line(err)})"
        ) from err


def _check_event_tables(path, all_tables):
    """The event tables of a ctapipe DL1/DL2 file agree with its trigger tables."""
    if DL1_SUBARRAY_TRIGGER_TABLE not in all_tables:
        raise ProductError(f"{path}: no {DL1_SUBARRAY_TRIGGER_TABLE}; not a ctapipe file")
    n_events = all_tables[DL1_SUBARRAY_TRIGGER_TABLE].nrows
    tel_rows = {}
    if DL1_TEL_TRIGGER_TABLE in all_tables:
        tel_ids = all_tables[DL1_TEL_TRIGGER_TABLE].col("tel_id")
        ids, n = np.unique(tel_ids, return_counts=True)
        tel_rows = dict(zip(ids.tolist(), n.tolist(), strict=True))
    for name, node in all_tables.items():
        if name.startswith(DL2_SUBARRAY_GROUP + "/") and node.nrows != n_events:
            raise ProductError(
                f"{path}: {name} has {node.nrows} rows for {n_events} events "
                f"({DL1_SUBARRAY_TRIGGER_TABLE}); the tool writing it did not finish"
            )
        telescope_group = name.startswith(
            (DL1_TEL_PARAMETERS_GROUP + "/", DL2_TEL_GROUP + "/")
        )
        tel = name.rsplit("/", 1)[-1]
        if telescope_group and tel.startswith("tel_") and tel[4:].isdigit():
            expected = tel_rows.get(int(tel[4:]), 0)
            if node.nrows != expected:
                raise ProductError(
                    f"{path}: {name} has {node.nrows} rows for {expected} events of "
                    f"tel {int(tel[4:])} ({DL1_TEL_TRIGGER_TABLE}); the tool writing "
                    "it did not finish"
                )
    return n_events


def verify_hdf5_product(path, kinds=None, require_mark=True, deep=False):
    """
    Check that an HDF5 product is complete and consistent.

    Parameters
    ----------
    path : str or pathlib.Path
    kinds : sequence of str, optional
        Accepted product kinds (mark ``PRODUCT``).
    require_mark : bool
        False for products of stock ctapipe tools: then only the consistency of
        the event tables is checked.
    deep : bool
        Also read every table through (HDF5 chunk checksums).

    Returns
    -------
    ProductMark or None
        None for an unmarked product accepted with ``require_mark=False``.

    Raises
    ------
    ProductError
        Naming the file and what is missing, inconsistent or damaged.
    """
    path = _regular_file(path)
    if not tables.is_hdf5_file(str(path)):
        raise ProductError(f"{path}: not an HDF5 file")
    try:
        h5file = tables.open_file(path, mode="r")
    except (OSError, tables.HDF5ExtError, ValueError) as err:
        raise ProductError(
            f"{path}: unreadable HDF5 (truncated or damaged: {one_line(err)})"
        ) from err
    with h5file:
        try:
            all_tables = _tables(h5file)
        except (tables.HDF5ExtError, OSError, ValueError) as err:
            raise ProductError(
                f"{path}: damaged HDF5 structure ({one_line(err)})"
            ) from err
        mark = None
        if require_mark or MARK_TABLE in h5file:
            mark = read_hdf5_mark(h5file, path)
            if kinds is not None and mark.kind not in kinds:
                raise ProductError(
                    f"{path}: a {mark.kind} product, expected {' or '.join(kinds)}"
                )
            for name, rows in mark.table_rows.items():
                if name not in all_tables:
                    raise ProductError(f"{path}: table {name} of the mark is missing")
                if all_tables[name].nrows != rows:
                    raise ProductError(
                        f"{path}: table {name} has {all_tables[name].nrows} rows, "
                        f"{rows} when the product was marked complete"
                    )
        if DL1_SUBARRAY_TRIGGER_TABLE in all_tables or mark is None:
            n_events = _check_event_tables(path, all_tables)
            marked = None if mark is None else mark.events_out
            if marked is not None and n_events != marked:
                raise ProductError(
                    f"{path}: {n_events} events in {DL1_SUBARRAY_TRIGGER_TABLE}, "
                    f"the mark says {mark.events_out} were written"
                )
        if deep:
            for name, node in all_tables.items():
                _read_through(path, name, node)
    return mark


def registered_files(what, role=None):
    """
    Files the running ctapipe Tool registered with ctapipe's `Provenance`.

    Components hosted by a tool they do not know (the event source and the
    monitoring sources inside ``ctapipe-process``) find the tool's products
    here: ctapipe's DataWriter registers its output (role ``DL1/Event``) when it
    has closed it, and event sources register their input. This is ctapipe's
    public provenance record, not the host tool's attributes.

    Parameters
    ----------
    what : {"input", "output"}
    role : str, optional
        Only files registered with this role.

    Returns
    -------
    list[pathlib.Path]
        In the order registered, without repetitions.
    """
    activity = Provenance().current_activity
    if activity is None:
        return []
    entries = activity.output if what == "output" else activity.input
    paths = []
    for entry in entries:
        if role is not None and entry.get("role") != role:
            continue
        path = Path(entry["url"])
        if path not in paths:
            paths.append(path)
    return paths


def partial_path(path):
    """The hidden name a product is written under until complete."""
    path = Path(path)
    return path.with_name(f"{PARTIAL_PREFIX}{path.name}{PARTIAL_SUFFIX}")


@contextmanager
def atomic_output(path):
    """
    Write a product under its hidden temporary name, renamed when the block ends
    without an exception; removed otherwise.

    Yields
    ------
    pathlib.Path
        The temporary path to write to.
    """
    path = Path(path)
    partial = partial_path(path)
    partial.unlink(missing_ok=True)
    try:
        yield partial
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _fits_partial_path(path):
    # the temporary name keeps the final suffix: astropy compresses by suffix
    return path.with_name(f"{PARTIAL_PREFIX}{path.stem}{PARTIAL_SUFFIX}{path.suffix}")


def remove_stale_partials(path, log=None):
    """
    Remove the hidden temporary files a killed earlier run left for ``path``.

    Returns
    -------
    list[pathlib.Path]
        The removed files.
    """
    path = Path(path)
    removed = []
    for partial in (partial_path(path), _fits_partial_path(path)):
        if not partial.exists():
            continue
        if log is not None:
            log.warning(
                "%s: removing %s left by an earlier run that did not finish (%d bytes)",
                path,
                partial.name,
                partial.stat().st_size,
            )
        partial.unlink()
        removed.append(partial)
    return removed


def write_fits_product(hdus, path, kind, events_in=None, events_out=None):
    """
    Write a FITS product with its mark and checksums, under a temporary name
    renamed when complete.

    Parameters
    ----------
    hdus : astropy.io.fits.HDUList
    path : str or pathlib.Path
        Final name (``.gz`` compresses).
    kind : str
        ``IRF``, ``DL3``, ``DL3-index``.
    events_in, events_out : int, optional

    Returns
    -------
    pathlib.Path
    """
    path = Path(path)
    header = hdus[0].header
    header["SSTPROD"] = (kind, "ctapipe-sst1m product kind")
    header["SSTCOMPL"] = (True, "product complete (written last)")
    if events_in is not None:
        header["SSTEVIN"] = (int(events_in), "events that went in")
    if events_out is not None:
        header["SSTEVOUT"] = (int(events_out), "events written")
    header["SSTSOFT"] = (f"ctapipe-sst1m {__version__}", "software")
    partial = _fits_partial_path(path)
    try:
        hdus.writeto(partial, checksum=True, overwrite=True)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return path


def _check_gzip_stream(path):
    """A gzip file must decompress to its end with a right CRC; astropy reads
    only the bytes it needs and would accept a truncated one."""
    with path.open("rb") as f:
        if f.read(2) != b"\x1f\x8b":
            return
    try:
        with gzip.open(path, "rb") as stream:
            while stream.read(16 * 2**20):
                pass
    except (OSError, EOFError, zlib.error) as err:
        raise ProductError(
            f"{path}: damaged or truncated gzip stream ({one_line(err)})"
        ) from err


def verify_fits_product(path, kinds=None, require_mark=True):
    """
    Check that a FITS product is complete: readable to the end (gzip CRC), every
    HDU's CHECKSUM/DATASUM right, and marked.

    Parameters
    ----------
    path : str or pathlib.Path
    kinds : sequence of str, optional
        Accepted kinds (``SSTPROD``).
    require_mark : bool
        False for products of stock tools (ctapipe-optimize-event-selection's
        cuts): then the file is only checked to be readable to the end.

    Returns
    -------
    astropy.io.fits.Header
        The primary header.

    Raises
    ------
    ProductError
        Naming the file and the fault.
    """
    import warnings

    path = _regular_file(path)
    _check_gzip_stream(path)
    try:
        with warnings.catch_warnings():
            # astropy reports checksum failures as warnings: make them errors
            warnings.simplefilter("error", fits.verify.VerifyWarning)
            warnings.filterwarnings("error", message=".*[Cc]hecksum.*")
            warnings.filterwarnings("error", message=".*DATASUM.*")
            with fits.open(path, checksum=True, memmap=False) as hdus:
                for hdu in hdus:
                    if hdu.data is not None:
                        np.asarray(hdu.data)
                header = hdus[0].header.copy()
                names = [h.name for h in hdus]
                has_checksums = all("CHECKSUM" in h.header for h in hdus)
    except Exception as err:
        text = (str(err) or type(err).__name__).strip()
        if "checksum" in text.lower() or "datasum" in text.lower():
            raise ProductError(f"{path}: damaged FITS data ({text})") from err
        raise ProductError(
            f"{path}: unreadable FITS file (truncated or damaged: {text})"
        ) from err
    if not require_mark:
        return header
    if not header.get("SSTCOMPL", False):
        raise ProductError(
            f"{path}: no completeness mark (SSTCOMPL): not written by a finished "
            "ctapipe-sst1m tool"
        )
    if not has_checksums:
        raise ProductError(f"{path}: HDUs without CHECKSUM ({names})")
    if kinds is not None and header.get("SSTPROD") not in kinds:
        raise ProductError(
            f"{path}: a {header.get('SSTPROD')} product, expected {' or '.join(kinds)}"
        )
    return header
