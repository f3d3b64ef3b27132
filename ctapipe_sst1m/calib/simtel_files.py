"""
Reading sim_telarray files to their end, without decoding events.

`scan_simtel_file` walks the top-level eventio objects of a file, decompressing
gzip and zstd streams, and parses only the history (to find the QE files of the
simulation) and the end-of-run histograms. A file is complete when it ends at
the end of an object, its compressed stream decompresses without error and the
shower distribution follows its last run header: sim_telarray writes it last,
so a file cut short, even at an object boundary, lacks it.
"""

import gzip
import io
import zlib
from dataclasses import dataclass
from pathlib import Path

import zstandard
from ctapipe.core import ToolConfigurationError
from eventio.base import parse_extension_field
from eventio.constants import (
    EXTENSION_SIZE,
    OBJECT_HEADER_SIZE,
    SYNC_MARKER_LITTLE_ENDIAN,
    SYNC_MARKER_SIZE,
)
from eventio.file_types import is_eventio
from eventio.header import parse_header_bytes
from eventio.histograms import Histograms
from eventio.simtel.objects import History

__all__ = [
    "OVERRIDE",
    "SimTelFileError",
    "SimTelScan",
    "is_simtel_file",
    "scan_simtel_file",
]

#: eventio object types and the histogram sim_telarray writes at the end of a run
HISTORY_TYPE = 70
RUN_HEADER_TYPE = 2000
HISTOGRAMS_TYPE = Histograms.eventio_type
SHOWER_HISTOGRAM_ID = 6
#: the history and histogram objects are read into memory to be parsed; larger
#: ones are damaged sizes (real ones are < 1 MB) and are skipped instead
MAX_PARSED_PAYLOAD = 64 * 2**20
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
#: zstd skippable frames (pzstd starts with one): 0x184D2A50 to 0x184D2A5F
ZSTD_SKIPPABLE_MAGIC = b"\x2a\x4d\x18"
#: decompressed bytes read at once when skipping payloads
SKIP_CHUNK = 2**20
#: compressed bytes fed to the zstd decompressor at once
ZSTD_INPUT_CHUNK = 2**18

#: what to set to process a file the check refuses
OVERRIDE = (
    "reproduce or copy the file again, or set "
    "SST1MSimulationCorrections.check_input_complete=False to process it anyway "
    "(the output is then not marked complete)"
)


def is_simtel_file(path):
    """True for a readable eventio file (eventio's test, also SimTelEventSource's)."""
    try:
        return is_eventio(path)
    except (OSError, EOFError, zlib.error, zstandard.ZstdError):
        return False


class SimTelFileError(OSError, ToolConfigurationError):
    """
    A sim_telarray file that is truncated, damaged or not a sim_telarray file;
    the message names the file, says what is wrong and what to set.

    Also a ctapipe ToolConfigurationError: ctapipe's Tool reports those in one
    line (exit code 2) before processing anything, any other exception with a
    traceback.
    """


@dataclass(frozen=True)
class SimTelScan:
    """What `scan_simtel_file` found in a sim_telarray file."""

    path: Path
    #: "gzip", "zstd" or None
    compression: str | None
    #: (timestamp, line) pairs of the history objects, as eventio.SimTelFile.history
    history: list
    #: top-level objects read
    n_objects: int
    #: decompressed bytes read (to the end if ``complete``)
    n_bytes: int
    #: ids of the histograms written after the last run header
    histogram_ids: tuple
    #: True when the whole file was read and ends with its end-of-run histograms
    complete: bool


class _ZstdFrames:
    """
    Decompressed bytes of a zstd file, frame after frame.

    zstandard's stream_reader ends silently where a cut file ends, in the middle
    of a frame; this reader raises EOFError there instead.
    """

    def __init__(self, raw):
        self._raw = raw
        self._decompressor = zstandard.ZstdDecompressor()
        self._frame = None
        self._input = b""
        self._buffer = bytearray()

    def _decode_more(self):
        """Decode more bytes into the buffer; False at a clean end of the file."""
        if not self._input:
            self._input = self._raw.read(ZSTD_INPUT_CHUNK)
            if not self._input:
                if self._frame is not None:
                    raise EOFError("its last frame is incomplete")
                return False
        if self._frame is None:
            self._frame = self._decompressor.decompressobj()
        data, self._input = self._input, b""
        self._buffer += self._frame.decompress(data)
        if self._frame.eof:
            # the bytes after a frame are the next frame
            self._input = self._frame.unused_data
            self._frame = None
        return True

    def read(self, size):
        """Up to ``size`` bytes; fewer only at the end of the file."""
        while len(self._buffer) < size and self._decode_more():
            pass
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def skip(self, size):
        """Skip up to ``size`` bytes; returns the bytes skipped."""
        skipped = 0
        while skipped < size and (self._buffer or self._decode_more()):
            n = min(size - skipped, len(self._buffer))
            del self._buffer[:n]
            skipped += n
        return skipped


class _Decompressed:
    """The decompressed bytes of a file, read forward; damaged compressed data
    raise (EOFError for a cut stream, OSError, zlib.error or ZstdError)."""

    def __init__(self, path):
        self.position = 0
        self._file = open(path, "rb")  # noqa: SIM115 (closed by close())
        magic = self._file.read(4)
        self._file.seek(0)
        self._size = Path(path).stat().st_size
        if magic.startswith(GZIP_MAGIC):
            self.compression = "gzip"
            self._stream = gzip.GzipFile(fileobj=self._file, mode="rb")
        elif magic == ZSTD_MAGIC or (
            magic[1:] == ZSTD_SKIPPABLE_MAGIC and magic[0] & 0xF0 == 0x50
        ):
            self.compression = "zstd"
            self._stream = _ZstdFrames(self._file)
        else:
            self.compression = None
            self._stream = self._file

    def read(self, size):
        """Up to ``size`` bytes; fewer only at the end of the stream."""
        # the position follows every chunk: an error reports where it happened
        parts, remaining = [], size
        while remaining > 0:
            chunk = self._stream.read(remaining)
            if not chunk:
                break
            parts.append(chunk)
            remaining -= len(chunk)
            self.position += len(chunk)
        return b"".join(parts)

    def skip(self, size):
        """Skip up to ``size`` bytes; returns the bytes skipped."""
        if self.compression is None:
            # uncompressed: the payload is not read at all
            skipped = max(0, min(size, self._size - self.position))
            self._file.seek(self.position + skipped)
            self.position += skipped
            return skipped
        # compressed: decompress and discard (GzipFile.seek does the same, in 8 kB
        # steps); the position follows every chunk, as in read
        skipped = 0
        while skipped < size:
            n = min(size - skipped, SKIP_CHUNK)
            if self.compression == "zstd":
                n = self._stream.skip(n)
            else:
                n = len(self._stream.read(n))
            if not n:
                break
            skipped += n
            self.position += n
        return skipped

    def close(self):
        if self._stream is not self._file and hasattr(self._stream, "close"):
            self._stream.close()
        self._file.close()


def _parse_object(raw, parser):
    """Parse one in-memory top-level object (sync marker to payload end) with an
    eventio object class; its header is read as eventio reads it from a file."""
    buffer = io.BytesIO(raw)
    header = parse_header_bytes(
        raw[SYNC_MARKER_SIZE : SYNC_MARKER_SIZE + OBJECT_HEADER_SIZE], toplevel=True
    )
    if header.extended:
        start = SYNC_MARKER_SIZE + OBJECT_HEADER_SIZE
        header.content_size += parse_extension_field(raw[start : start + EXTENSION_SIZE])
    header.content_address = header.header_size
    buffer.seek(header.header_size)
    return parser(header, buffer)


def _history_lines(raw):
    return [sub.parse() for sub in _parse_object(raw, History)]


def _histogram_ids(raw):
    return [hist["id"] for hist in _parse_object(raw, Histograms).parse()]


def scan_simtel_file(path, to_end=True):
    """
    Read the top-level eventio objects of a sim_telarray file: their headers
    only (payloads are skipped; compressed streams are decompressed), but the
    history and the histograms, which are parsed.

    A file is complete when it ends at the end of an object, its compressed
    stream decompresses to its end without error (gzip CRC, zstd frames and
    checksums) and the end-of-run histograms (type 100, with the shower
    distribution, histogram 6) follow its last run header: sim_telarray writes
    them last.

    Parameters
    ----------
    path : str or pathlib.Path
    to_end : bool
        False: read only the first object, the history, without checking the
        rest of the file.

    Returns
    -------
    SimTelScan

    Raises
    ------
    SimTelFileError
        If the file is not an eventio file, or (``to_end``) it is truncated or
        damaged; the message names the file and the object (counted from 1) and
        decompressed byte where it ends or is damaged.
    """
    path = Path(path)
    history, histogram_ids = [], []
    n_objects, start = 0, 0
    try:
        stream = _Decompressed(path)
    except OSError as err:
        raise SimTelFileError(f"{path}: cannot be read ({err})") from err
    compression = stream.compression
    kind = f"{compression} stream" if compression else "file"
    try:
        while True:
            start = stream.position
            sync = stream.read(SYNC_MARKER_SIZE)
            if not sync:
                break
            if len(sync) == SYNC_MARKER_SIZE and sync != SYNC_MARKER_LITTLE_ENDIAN:
                if n_objects == 0:
                    raise SimTelFileError(
                        f"{path}: not a sim_telarray file (no eventio sync marker at "
                        "its start)"
                    )
                raise SimTelFileError(
                    f"{path}: damaged sim_telarray file (no eventio sync marker at byte "
                    f"{start}, where object {n_objects + 1} should start); {OVERRIDE}"
                )
            n_objects += 1
            head = stream.read(OBJECT_HEADER_SIZE)
            if len(sync) < SYNC_MARKER_SIZE or len(head) < OBJECT_HEADER_SIZE:
                raise SimTelFileError(_ends_inside(path, n_objects, start, stream))
            header = parse_header_bytes(head, toplevel=True)
            extension = b""
            if header.extended:
                extension = stream.read(EXTENSION_SIZE)
                if len(extension) < EXTENSION_SIZE:
                    raise SimTelFileError(_ends_inside(path, n_objects, start, stream))
                header.content_size += parse_extension_field(extension)
            size = header.content_size
            parsed = header.type in (HISTORY_TYPE, HISTOGRAMS_TYPE)
            if parsed and size <= MAX_PARSED_PAYLOAD:
                payload = stream.read(size)
                if len(payload) < size:
                    raise SimTelFileError(_ends_inside(path, n_objects, start, stream))
                raw = sync + head + extension + payload
                parse = _history_lines if header.type == HISTORY_TYPE else _histogram_ids
                try:
                    lines_or_ids = parse(raw)
                except Exception as err:
                    # eventio raises whatever a damaged payload makes it raise
                    raise SimTelFileError(
                        f"{path}: damaged sim_telarray file (object {n_objects}, type "
                        f"{header.type} at byte {start}, cannot be parsed: {err!r}); "
                        f"{OVERRIDE}"
                    ) from err
                if header.type == HISTORY_TYPE:
                    history.extend(lines_or_ids)
                else:
                    histogram_ids.extend(lines_or_ids)
            elif stream.skip(size) < size:
                raise SimTelFileError(_ends_inside(path, n_objects, start, stream))
            if header.type == RUN_HEADER_TYPE:
                # only the histograms of the last run count
                histogram_ids = []
            if not to_end:
                # sim_telarray writes the history first
                break
    except EOFError as err:
        where = "inside" if stream.position > start else "after"
        raise SimTelFileError(
            f"{path}: truncated sim_telarray file (ends {where} object {n_objects} at "
            f"byte {stream.position}: the {kind} is cut, {err}); {OVERRIDE}"
        ) from err
    except SimTelFileError:
        raise
    except (OSError, zlib.error, zstandard.ZstdError) as err:
        where = "inside" if stream.position > start else "after"
        raise SimTelFileError(
            f"{path}: damaged sim_telarray file ({kind}: {err}; {where} object "
            f"{n_objects} at byte {stream.position}); {OVERRIDE}"
        ) from err
    finally:
        stream.close()
    if n_objects == 0:
        raise SimTelFileError(f"{path}: empty file, not a sim_telarray file")
    complete = to_end and SHOWER_HISTOGRAM_ID in histogram_ids
    if to_end and not complete:
        raise SimTelFileError(
            f"{path}: truncated sim_telarray file (no end-of-run histograms: no type "
            f"{HISTOGRAMS_TYPE} object with the shower distribution, histogram "
            f"{SHOWER_HISTOGRAM_ID}, after the last run header; {n_objects} objects, "
            f"{stream.position} bytes); {OVERRIDE}"
        )
    return SimTelScan(
        path=path,
        compression=compression,
        history=history,
        n_objects=n_objects,
        n_bytes=stream.position,
        histogram_ids=tuple(histogram_ids),
        complete=complete,
    )


def _ends_inside(path, n_object, start, stream):
    return (
        f"{path}: truncated sim_telarray file (ends inside object {n_object} at byte "
        f"{stream.position}; the object starts at byte {start}); {OVERRIDE}"
    )
