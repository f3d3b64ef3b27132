"""
DigiCam protobuf-zfits files: header inspection, integrity checks and run naming.

Everything here reads FITS headers (with astropy) and raw bytes, never protozfits:
protozfits 2.13 crashes the interpreter (segmentation fault) on truncated or
corrupted files, so a file must pass :func:`check_file_integrity` before it is
handed to protozfits.
"""

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

__all__ = [
    "DIGICAM_EVENT_COLUMNS",
    "DigiCamFileError",
    "RunName",
    "ZFitsHeaderInfo",
    "check_file_integrity",
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
EVENTS_HEADER_KEYS = ("TARGET", "RUNTYPE", "TIMESYS", "DATE", "PBFHEAD")
FITS_BLOCK = 2880
#: Bytes summed at once when verifying checksums (keeps memory flat for GB files).
CHECKSUM_CHUNK = 64 * 2**20


class DigiCamFileError(OSError):
    """A file that cannot be read as an SST-1M DigiCam raw file; the message says why."""


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
        With the reason (empty, not FITS, another camera's file, ...).
    """
    path = Path(path)
    if not path.is_file():
        raise DigiCamFileError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise DigiCamFileError(f"{path}: file is empty (0 bytes)")
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
    if events is None:
        raise DigiCamFileError(
            f"{path}: no 'Events' table (tables: {', '.join(headers)}); "
            "not a DigiCam raw file"
        )
    message = events.get("PBFHEAD")
    if not events.get("ZTABLE", False) or message != CAMERA_EVENT_MESSAGE:
        raise DigiCamFileError(
            f"{path}: Events table holds {message!r}, "
            f"DigiCam files hold {CAMERA_EVENT_MESSAGE!r}"
            + (" (this looks like an LST/CTA R1 file)" if message else "")
        )
    columns = {events.get(f"TTYPE{i}") for i in range(1, events.get("TFIELDS", 0) + 1)}
    missing = [c for c in DIGICAM_EVENT_COLUMNS if c not in columns]
    if missing:
        raise DigiCamFileError(
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
