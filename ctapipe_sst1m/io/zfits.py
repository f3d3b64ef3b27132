"""
DigiCam protobuf-zfits files: header inspection, integrity checks and run naming.

Everything here reads FITS headers (with astropy) and raw bytes, never protozfits:
protozfits 2.13 crashes the interpreter (segmentation fault) on truncated or
corrupted files, so a file must pass :func:`check_file_integrity` before it is
handed to protozfits.
"""

import bz2
import gzip
import hashlib
import logging
import lzma
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from ctapipe.core import ToolConfigurationError

__all__ = [
    "DIGICAM_EVENT_COLUMNS",
    "DigiCamFileError",
    "NotDigiCamFileError",
    "RunName",
    "ZFitsHeaderInfo",
    "check_file_integrity",
    "check_run_files",
    "find_run_chunks",
    "inspect_digicam_file",
    "parse_run_name",
]

log = logging.getLogger(__name__)

#: The protobuf message stored in the Events table of DigiCam files (and NectarCAM's).
CAMERA_EVENT_MESSAGE = "DataModel.CameraEvent"
#: Columns that only DigiCam's CameraEvent tables carry (NectarCAM's lack them).
DIGICAM_EVENT_COLUMNS = (
    "telescopeID",
    "eventNumber",
    "hiGain_waveforms_samples",
    "hiGain_waveforms_pixelsIndices",
    "hiGain_waveforms_baselines",
    "local_time_sec",
    "local_time_nanosec",
    "event_type",
)
#: Events header keys kept by `inspect_digicam_file` (reading every card is slow)
EVENTS_HEADER_KEYS = ("TARGET", "RUNTYPE", "TIMESYS", "DATE", "DATEEND", "PBFHEAD")
FITS_BLOCK = 2880
CARD = 80
#: Bytes summed at once when verifying checksums (keeps memory flat for GB files).
CHECKSUM_CHUNK = 64 * 2**20
#: Bytes hashed at the start and at the end of each HDU's data to tell copies apart
#: (with the size and the DATASUMs, without reading whole files).
CONTENT_SAMPLE = 64 * 2**10
#: Leading bytes of compressed files, with the tool that decompresses them and the
#: module that reads them (None: not in the standard library, zstd before 3.14).
COMPRESSION_MAGIC = (
    (b"\x1f\x8b", "gzip", "gunzip", gzip.open),
    (b"BZh", "bzip2", "bunzip2", bz2.open),
    (b"\xfd7zXZ\x00", "xz", "unxz", lzma.open),
    (b"\x28\xb5\x2f\xfd", "zstd", "unzstd", None),
)
FITS_START = b"SIMPLE  ="


class DigiCamFileError(OSError, ToolConfigurationError):
    """
    A file that cannot be read as an SST-1M DigiCam raw file; the message says why.

    Also a ctapipe ToolConfigurationError: ctapipe's Tool reports those in one
    line (exit code 2), any other exception with a traceback.
    """


class NotDigiCamFileError(DigiCamFileError):
    """A readable FITS file of another kind or camera (LST, NectarCAM...): not
    damaged, just not for this source."""


@dataclass(frozen=True)
class ZFitsHeaderInfo:
    """What the FITS headers of a DigiCam file tell before any event is decoded."""

    path: Path
    #: number of events announced by the Events table header (ZNAXIS2)
    n_events: int
    #: True for the current layout (a DigicamConfig table before Events)
    has_digicam_config: bool
    #: the Events header keys the source uses (see EVENTS_HEADER_KEYS), absent ones None
    events_header: dict
    #: every HDU as (name, data offset, data size in bytes, DATASUM or None)
    hdus: tuple


@dataclass(frozen=True)
class RunName:
    """Date and run number parsed from an SST-1M raw file name."""

    date: str | None
    run: int | None
    chunk: int | None

    @property
    def obs_id(self):
        """``int(YYYYMMDD + NNNN)`` as SST-1M numbers runs, or None if unknown."""
        if self.date is None or self.run is None:
            return None
        return int(f"{self.date}{self.run:04d}")


# SST1M1_20240101_0001.fits.fz, SST1M_01_20180822_001.fits.fz, optional .NNN chunk
_RUN_NAME = re.compile(
    r"(?P<date>(?:19|20)\d{6})(?:_(?P<run>\d{1,6}))?(?:\.(?P<chunk>\d{3}))?\.fits\.fz$"
)
_CHUNK_NAME = re.compile(r"^(?P<stem>.+)\.(?P<chunk>\d{3})\.fits\.fz$")


def parse_run_name(path):
    """
    Parse the observation date, run number and chunk number from a file name.

    Parameters
    ----------
    path : str or Path
        ``SST1M{T}_{YYYYMMDD}_{NNNN}[.{CCC}].fits.fz``; other names give None fields.

    Returns
    -------
    RunName
    """
    match = _RUN_NAME.search(Path(path).name)
    if match is None:
        return RunName(None, None, None)
    run = match["run"]
    chunk = match["chunk"]
    return RunName(
        match["date"], int(run) if run else None, int(chunk) if chunk else None
    )


def find_run_chunks(path):
    """
    All chunks of the run that ``path`` belongs to, in chunk order.

    A run written in several files is named ``<run>.000.fits.fz``,
    ``<run>.001.fits.fz``, ...; a file without a chunk number is a run by itself.

    Parameters
    ----------
    path : Path

    Returns
    -------
    list[Path]
    """
    path = Path(path)
    match = _CHUNK_NAME.match(path.name)
    if match is None:
        return [path]
    pattern = re.compile(re.escape(match["stem"]) + r"\.(\d{3})\.fits\.fz$")
    chunks = sorted(
        (int(m[1]), p)
        for p in path.parent.iterdir()
        if (m := pattern.match(p.name)) is not None
    )
    return [p for _, p in chunks]


def _content_key(info):
    """
    Size and DATASUMs of a file: equal for copies, almost never for other files.

    Parameters
    ----------
    info : ZFitsHeaderInfo

    Returns
    -------
    tuple
    """
    return info.path.stat().st_size, tuple(hdu[3] for hdu in info.hdus)


def _content_sample_digest(info):
    """
    Hash of the first and last `CONTENT_SAMPLE` bytes of each HDU's data.

    The DATASUM is a ones' complement sum, blind to words swapped or moved: the
    first and last events' bytes settle the files that the size and the DATASUMs
    cannot tell apart, reading 128 KiB per HDU instead of the whole file.

    Parameters
    ----------
    info : ZFitsHeaderInfo

    Returns
    -------
    bytes
    """
    digest = hashlib.blake2b(digest_size=16)
    with info.path.open("rb") as stream:
        for _, offset, size, _ in info.hdus:
            if size <= 2 * CONTENT_SAMPLE:
                stream.seek(offset)
                digest.update(stream.read(size))
                continue
            stream.seek(offset)
            digest.update(stream.read(CONTENT_SAMPLE))
            stream.seek(offset + size - CONTENT_SAMPLE)
            digest.update(stream.read(CONTENT_SAMPLE))
    return digest.digest()


def _chunk_ranges(numbers):
    """``[2, 5, 6, 7]`` as ``"002, 005-007"``."""
    ranges = []
    for number in sorted(numbers):
        if ranges and number == ranges[-1][1] + 1:
            ranges[-1][1] = number
        else:
            ranges.append([number, number])
    return ", ".join(
        f"{low:03d}" if low == high else f"{low:03d}-{high:03d}" for low, high in ranges
    )


def _describe_gaps(chunks):
    """Where chunks are missing in the sorted ``chunks``, e.g. ``002 missing
    between 001 and 003``; an empty string if none is."""
    gaps = []
    previous = -1
    for number in chunks:
        if number > previous + 1:
            missing = _chunk_ranges(range(previous + 1, number))
            where = (
                f"before {number:03d}"
                if previous < 0
                else f"between {previous:03d} and {number:03d}"
            )
            gaps.append(f"{missing} missing {where}")
        previous = number
    return ", ".join(gaps)


def _describe_run(label, paths, shown=3):
    """``label (path, path, ... and N more)`` for the message on mixed runs."""
    listed = ", ".join(str(p) for p in paths[:shown])
    if len(paths) > shown:
        listed += f" and {len(paths) - shown} more"
    return f"{label} ({listed})"


def check_run_files(infos, allow_missing_chunks=False, allow_copied_chunks=False):
    """
    Check that the files of an input list are the distinct chunks of one run.

    A run written in several files names them ``<run>.NNN.fits.fz``, the chunk
    numbers counting from 000; a file without a chunk number (the current site
    convention, ``SST1M{T}_{YYYYMMDD}_{NNNN}.fits.fz``, where ``_NNNN`` is the run
    number) is a run by itself. The chunked names come from the DigiCam/digicampipe
    writer (``example_100_evts.000.fits.fz``): a run whose first chunk is 001
    misses chunk 000.

    Checked, in this order:

    * no file is given twice (same inode: also under another path or a link);
    * no two files have the same content: same size, same DATASUM in every HDU
      and same first and last 64 KiB of each HDU's data (a copied chunk); the
      files are not read whole;
    * all files belong to one run (same ``<run>`` stem, or a single unchunked file);
    * no chunk number appears twice (same name in two directories);
    * no chunk is missing between 000 and the last one given.

    Parameters
    ----------
    infos : list[ZFitsHeaderInfo]
        The files in reading order, as returned by `inspect_digicam_file`.
    allow_missing_chunks : bool
        Return the missing chunk numbers instead of raising, so that the caller
        can warn and record them in the provenance.
    allow_copied_chunks : bool
        Accept chunks with identical content (benchmarks build long runs from
        copies of one real file).

    Returns
    -------
    list[int]
        The missing chunk numbers, in increasing order (empty if none is missing).

    Raises
    ------
    DigiCamFileError
        With one line naming the files: the same file given twice, files with
        identical content, files of different runs, a chunk number given twice,
        or (without ``allow_missing_chunks``) chunks missing.
    """
    seen = {}
    for info in infos:
        stat = info.path.stat()
        identity = (stat.st_dev, stat.st_ino)
        if identity in seen:
            raise DigiCamFileError(f"{seen[identity]} and {info.path} are the same file")
        seen[identity] = info.path

    # the cheap key first: the first and last bytes of each HDU are only read for
    # files whose size and DATASUMs are equal to another's
    by_key = defaultdict(list)
    for info in infos:
        by_key[_content_key(info)].append(info)
    for group in by_key.values():
        if len(group) < 2 or allow_copied_chunks:
            continue
        digests = {}
        for info in group:
            digest = _content_sample_digest(info)
            if digest in digests:
                raise DigiCamFileError(
                    f"{digests[digest]} and {info.path} have identical content "
                    "(same size and checksums): a copied chunk?"
                )
            digests[digest] = info.path

    runs = defaultdict(dict)
    labels = {}
    for info in infos:
        match = _CHUNK_NAME.match(info.path.name)
        if match is None:
            # a file without a chunk number is a whole run: its own key
            key = ("file", info.path)
            labels[key] = info.path.name.removesuffix(".fits.fz")
            runs[key][None] = info.path
            continue
        key = ("chunks", match["stem"])
        labels[key] = match["stem"]
        chunk = int(match["chunk"])
        if chunk in runs[key]:
            raise DigiCamFileError(
                f"run {match['stem']}: chunk {chunk:03d} given twice: "
                f"{runs[key][chunk]} and {info.path}"
            )
        runs[key][chunk] = info.path
    if len(runs) > 1:
        described = ", ".join(
            _describe_run(labels[key], list(paths.values()))
            for key, paths in runs.items()
        )
        raise DigiCamFileError(
            f"files of different runs in one input list: {described}; "
            "give the files of one run"
        )
    if not runs:
        return []

    ((key, files),) = runs.items()
    if key[0] == "file":
        return []
    chunks = sorted(files)
    missing = sorted(set(range(chunks[-1] + 1)) - set(chunks))
    if missing and not allow_missing_chunks:
        raise DigiCamFileError(
            f"run {labels[key]}: chunk(s) {_describe_gaps(chunks)}; set "
            "SST1MEventSource.allow_missing_chunks to read the run without them"
        )
    return missing


def inspect_digicam_file(path):
    """
    Read the FITS headers of ``path`` and check that it is a DigiCam raw file.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    ZFitsHeaderInfo

    Raises
    ------
    DigiCamFileError
        With the reason: missing, a directory, empty, compressed (gzip, bzip2, xz,
        zstd), truncated inside a header, not FITS, another camera's file, ...
    """
    path = Path(path)
    if path.is_dir():
        raise DigiCamFileError(f"{path}: is a directory, not a DigiCam raw file")
    if not path.exists():
        raise DigiCamFileError(f"{path}: no such file")
    if not path.is_file():
        raise DigiCamFileError(f"{path}: not a regular file")
    size = path.stat().st_size
    if size == 0:
        raise DigiCamFileError(f"{path}: file is empty (0 bytes)")
    try:
        with path.open("rb") as stream:
            start = stream.read(len(FITS_START))
    except OSError as err:
        raise DigiCamFileError(f"{path}: cannot be read ({err.strerror})") from err
    _check_not_compressed(path, start)
    # astropy drops an HDU whose header is cut short (with a warning) and a
    # truncated primary header makes it "corrupt": walk the headers first so
    # that truncation is reported as such
    data_cut = _walk_headers(path, size) if start == FITS_START else None
    try:
        with fits.open(path, lazy_load_hdus=True, memmap=False) as hdul:
            headers = {hdu.name.upper(): hdu.header for hdu in hdul}
            hdus = tuple(
                (
                    hdu.name.upper(),
                    hdu._data_offset,
                    hdu._data_size,
                    int(str(hdu.header["DATASUM"]).strip() or 0)
                    if "DATASUM" in hdu.header
                    else None,
                )
                for hdu in hdul
            )
    except Exception as err:
        raise DigiCamFileError(f"{path}: not a readable FITS file ({err})") from err

    events = headers.get("EVENTS")
    if events is None and data_cut is not None:
        # the file ends in the data of an HDU before any Events table: in the
        # current layout, the end of DigicamConfig and the whole Events table lost
        index, name = data_cut
        raise DigiCamFileError(
            f"{path}: truncated file: ends inside the data of HDU {index} {name!r} "
            f"(size {size} bytes), before any 'Events' table"
        )
    if events is None and "DIGICAMCONFIG" in headers:
        # a DigiCam file cut exactly after its DigicamConfig table is valid FITS
        raise DigiCamFileError(
            f"{path}: no 'Events' table (tables: {', '.join(headers)}); the file "
            f"ends after the DigicamConfig table (size {size} bytes): truncated file?"
        )
    if events is None:
        raise NotDigiCamFileError(
            f"{path}: no 'Events' table (tables: {', '.join(headers)}); "
            "not a DigiCam raw file"
        )
    message = events.get("PBFHEAD")
    if not events.get("ZTABLE", False) or message != CAMERA_EVENT_MESSAGE:
        raise NotDigiCamFileError(
            f"{path}: Events table holds {message!r}, "
            f"DigiCam files hold {CAMERA_EVENT_MESSAGE!r}"
            + (" (this looks like an LST/CTA R1 file)" if message else "")
        )
    columns = {events.get(f"TTYPE{i}") for i in range(1, events.get("TFIELDS", 0) + 1)}
    missing = [c for c in DIGICAM_EVENT_COLUMNS if c not in columns]
    if missing:
        raise NotDigiCamFileError(
            f"{path}: CameraEvent table lacks the DigiCam columns {missing} "
            "(another camera's file, e.g. NectarCAM)"
        )
    return ZFitsHeaderInfo(
        path=path,
        n_events=int(events.get("ZNAXIS2", 0)),
        has_digicam_config="DIGICAMCONFIG" in headers,
        events_header={key: events.get(key) for key in EVENTS_HEADER_KEYS},
        hdus=hdus,
    )


def _check_not_compressed(path, start):
    """
    Refuse a compressed file with the way to decompress it.

    Parameters
    ----------
    path : Path
    start : bytes
        The first bytes of the file.

    Raises
    ------
    DigiCamFileError
        If ``start`` is the magic number of gzip, bzip2, xz or zstd.
    """
    for magic, kind, tool, opener in COMPRESSION_MAGIC:
        if not start.startswith(magic):
            continue
        if opener is not None:
            # a .simtel.gz is gzip too: only a compressed FITS file is worth
            # decompressing, anything else is simply not FITS
            try:
                with opener(path, "rb") as stream:
                    inner = stream.read(len(FITS_START))
            except (OSError, EOFError, lzma.LZMAError):
                inner = b""
            if inner != FITS_START:
                raise DigiCamFileError(
                    f"{path}: not a readable FITS file ({kind}-compressed, and not "
                    "FITS once decompressed)"
                )
        raise DigiCamFileError(
            f"{path}: {kind}-compressed file; decompress it first (e.g. with {tool})"
        )


def _header_int(cards, key, default):
    """The integer value of ``key`` among ``cards`` (a dict of raw card values)."""
    value = cards.get(key)
    return default if value is None else int(value.split(b"/")[0].strip())


def _walk_headers(path, size):
    """
    Follow the FITS headers of ``path`` and find where the file ends.

    Each header is read block by block up to its END card; the data that follows
    it is skipped with the size given by the header, padded to 2880 bytes. Stops
    at the end of the file or at bytes that do not start an extension.

    Parameters
    ----------
    path : Path
        A file that starts with ``SIMPLE  =``.
    size : int
        Its size in bytes.

    Returns
    -------
    tuple[int, str] or None
        Index (0 for the primary HDU, as in astropy) and EXTNAME of the HDU whose
        data the file ends in, or None if the
        file ends between HDUs (the headers are not checked further when a value
        cannot be parsed: astropy then tells what is wrong).

    Raises
    ------
    DigiCamFileError
        If the file ends inside a header (before the block holding END is complete).
    """
    offset = 0
    index = 0
    with path.open("rb") as stream:
        while offset < size:
            stream.seek(offset)
            cards = {}
            header_end = None
            while header_end is None:
                block = stream.read(FITS_BLOCK)
                if len(block) < FITS_BLOCK:
                    raise DigiCamFileError(
                        f"{path}: truncated file: ends inside the header of HDU "
                        f"{index} (size {size} bytes)"
                    )
                for start in range(0, FITS_BLOCK, CARD):
                    key = block[start : start + 8].rstrip()
                    if key == b"END":
                        header_end = stream.tell()
                        break
                    cards.setdefault(key, block[start + 10 : start + CARD])
            try:
                naxis = _header_int(cards, b"NAXIS", 0)
                n_values = 0
                if naxis > 0:
                    n_values = _header_int(cards, b"PCOUNT", 0)
                    product = 1
                    for axis in range(1, naxis + 1):
                        product *= _header_int(cards, f"NAXIS{axis}".encode(), 0)
                    n_values = _header_int(cards, b"GCOUNT", 1) * (n_values + product)
                data_size = abs(_header_int(cards, b"BITPIX", 8)) // 8 * n_values
            except ValueError:
                return None
            padded = -(-data_size // FITS_BLOCK) * FITS_BLOCK
            if header_end + padded > size:
                name = cards.get(b"EXTNAME", b"'PRIMARY'" if index == 0 else b"''")
                name = name.split(b"/")[0].strip().strip(b"'").rstrip()
                return index, name.decode("ascii", "replace")
            offset = header_end + padded
            index += 1
            stream.seek(offset)
            # a short prefix of XTENSION is a header cut short: the next turn
            # reports it; anything else is trailing bytes, left to astropy
            if not b"XTENSION".startswith(stream.read(8)):
                return None
    return None


def _ones_complement_sum(path, offset, size):
    """FITS checksum arithmetic: 32-bit ones' complement sum of big-endian words."""
    total = 0
    data = np.memmap(path, dtype=">u4", mode="r", offset=offset, shape=(size // 4,))
    step = CHECKSUM_CHUNK // 4
    for start in range(0, len(data), step):
        total += int(data[start : start + step].sum(dtype=np.uint64))
    del data
    while total >> 32:
        total = (total & 0xFFFFFFFF) + (total >> 32)
    return total


def check_file_integrity(info, verify_checksums=True):
    """
    Check that every HDU of a file is complete and, optionally, undamaged.

    The size of each HDU follows from its header (NAXIS1 * NAXIS2 + PCOUNT, padded
    to 2880 bytes); a shorter file is truncated. With ``verify_checksums``, the
    data of each HDU that carries a ``DATASUM`` card is summed and compared.

    Parameters
    ----------
    info : ZFitsHeaderInfo
        The file, as inspected by `inspect_digicam_file`.
    verify_checksums : bool

    Raises
    ------
    DigiCamFileError
        Naming the HDU and what is wrong with it.
    """
    path = info.path
    file_size = path.stat().st_size
    for name, offset, size, datasum in info.hdus:
        padded = -(-size // FITS_BLOCK) * FITS_BLOCK
        if offset + padded > file_size:
            raise DigiCamFileError(
                f"{path}: truncated file: HDU {name!r} needs {offset + padded} bytes, "
                f"the file has {file_size}"
            )
        if not verify_checksums or datasum is None or padded == 0:
            continue
        computed = _ones_complement_sum(path, offset, padded)
        if computed != datasum:
            raise DigiCamFileError(
                f"{path}: corrupted data in HDU {name!r}: checksum {computed} "
                f"!= DATASUM {datasum}"
            )
