"""
SST-1M corrections of simulated charges, as a ctapipe MonitoringSource.

The data are divided by the NSB voltage drop of gain x PDE
(`~ctapipe_sst1m.calib.pedestals`). Simulations made with a quantum-efficiency
file for a given NSB level (``qe_SST1M_5477_ave_TEL1_NSB136.0``...) get the
matching PDE drop, measured for that file, as a division of their charges. The
factor goes into ``event.monitoring.tel[tel_id].camera.coefficients.factor``,
which ctapipe's CameraCalibrator multiplies into the extracted charges, so that
``ctapipe-process`` applies it when ``ProcessorTool.monitoring_source_list``
names this source (``sst1m_mc.yaml``).

The source also guards the DL1 product of ``ctapipe-process``: the sim_telarray
input is checked complete before any event is processed (`scan_simtel_file`:
a file cut short or with damaged compressed data is refused), and the DL1
output is marked complete (`ctapipe_sst1m.io.products`) once the tool has
written it to the end.
"""

import gzip
import io
import re
import zlib
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path, PurePath

import numpy as np
import tables
import zstandard
from astropy.table import Table
from ctapipe.core import ToolConfigurationError
from ctapipe.core.traits import Bool, FloatTelescopeParameter
from ctapipe.core.traits import Path as PathTrait
from ctapipe.io import MonitoringSource, MonitoringType
from ctapipe.io.hdf5dataformat import (
    DL1_SUBARRAY_TRIGGER_TABLE,
    SHOWER_DISTRIBUTION_TABLE,
)
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

from ..io.products import DL1, ProductError, registered_files, write_hdf5_mark

__all__ = [
    "SST1MSimulationCorrections",
    "SimTelFileError",
    "SimTelScan",
    "pde_correction_table",
    "qe_files_in_history",
    "scan_simtel_file",
]

PDE_FACTORS = (
    files("ctapipe_sst1m") / "resources/calibration/mc_pde_correction_factors.ecsv"
)
_QE_LINE = re.compile(rb"^\s*QUANTUM_EFF\w*\s+(\S+)", re.IGNORECASE)

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
_OVERRIDE = (
    "reproduce or copy the file again, or set "
    "SST1MSimulationCorrections.check_input_complete=False to process it anyway "
    "(the output is then not marked complete)"
)


def _pde_option(tel_id=1):
    """How to set the PDE correction, as ctapipe's Tool prints it in one line."""
    return (
        "set SST1MSimulationCorrections.pde_correction, e.g. "
        "--SST1MSimulationCorrections.pde_correction=1.0 (all telescopes) or in YAML "
        f"SST1MSimulationCorrections: {{pde_correction: [[id, {tel_id}, 1.0]]}} "
        f"(tel {tel_id})"
    )


def _is_eventio(path):
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


@cache
def pde_correction_table():
    """PDE correction factors of the SST-1M simulations: mc_tel_id, qe_file, factor."""
    return Table.read(PDE_FACTORS.read_text(), format="ascii.ecsv")


def qe_files_in_history(history):
    """
    QE files named in a sim_telarray history, without their extension, in order.

    Parameters
    ----------
    history : iterable of (int, bytes)
        ``eventio.SimTelFile.history`` or `SimTelScan.history`: (timestamp,
        line) pairs.

    Returns
    -------
    list[str]
    """
    stems = []
    for _, line in history:
        match = _QE_LINE.match(line)
        if match is not None:
            name = PurePath(match[1].decode()).name
            stem = name.removesuffix(".dat").removesuffix(".txt")
            if stem not in stems:
                stems.append(stem)
    return stems


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
                    f"{start}, where object {n_objects + 1} should start); {_OVERRIDE}"
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
                        f"{_OVERRIDE}"
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
            f"byte {stream.position}: the {kind} is cut, {err}); {_OVERRIDE}"
        ) from err
    except SimTelFileError:
        raise
    except (OSError, zlib.error, zstandard.ZstdError) as err:
        where = "inside" if stream.position > start else "after"
        raise SimTelFileError(
            f"{path}: damaged sim_telarray file ({kind}: {err}; {where} object "
            f"{n_objects} at byte {stream.position}); {_OVERRIDE}"
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
            f"{stream.position} bytes); {_OVERRIDE}"
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
        f"{stream.position}; the object starts at byte {start}); {_OVERRIDE}"
    )


class SST1MSimulationCorrections(MonitoringSource):
    """
    Divides simulated charges by the PDE drop of their QE file.

    For each telescope the factor is ``pde_correction`` if set, else the one of
    the QE file named in the sim_telarray history of the input file
    (``mc_pde_correction_factors.ecsv``). A telescope for which neither gives a
    factor is an error, raised before any event is processed.

    The input file is ``input_url`` or else the one file the running ctapipe
    Tool's event source registered with ctapipe's Provenance (role
    ``DL0/Event``; SimTelEventSource registers its input when it is created,
    before the tool creates its monitoring sources). With
    ``check_input_complete`` it is read to its end when the source is created,
    and refused if truncated or damaged (`scan_simtel_file`).

    Entered as a context manager (``ctapipe-process`` does), the source marks
    the DL1 output of the tool complete when it exits, after the tool's
    DataWriter has closed and registered it (role ``DL1/Event``): only if the
    input was checked complete and the output holds the simulated shower
    distribution, which ctapipe writes after the last event of the input.

    Raises
    ------
    SimTelFileError
        At creation, if the input is truncated, damaged or not a sim_telarray
        file.
    ctapipe.core.ToolConfigurationError
        At creation, if a telescope has no PDE correction, a factor is not
        positive or the input is ambiguous.
    """

    pde_correction = FloatTelescopeParameter(
        default_value=None,
        allow_none=True,
        help=(
            "PDE drop factor per telescope the simulated charges are divided by; "
            "None: from the QE file in the history of the sim_telarray file."
        ),
    ).tag(config=True)

    input_url = PathTrait(
        default_value=None,
        allow_none=True,
        exists=True,
        directory_ok=False,
        help=(
            "The sim_telarray file processed, whose history names the QE files and "
            "which is checked complete; None: the input registered by the event "
            "source of the running tool (ctapipe Provenance, role DL0/Event)."
        ),
    ).tag(config=True)

    check_input_complete = Bool(
        default_value=True,
        help=(
            "Read the whole sim_telarray input (object headers) before processing "
            "and refuse it if it is truncated or damaged; the DL1 output is marked "
            "complete only if this check was made."
        ),
    ).tag(config=True)

    def __init__(self, subarray=None, config=None, parent=None, **kwargs):
        super().__init__(subarray=subarray, config=config, parent=parent, **kwargs)
        self.metadata["is_simulation"] = True
        # outputs registered before this source existed are not its tool's
        self._outputs_before = registered_files("output", role="DL1/Event")
        self._n_events = 0
        self.input_path, self.scan = self._read_input()
        self.factors = self._factors()
        self._coefficients = {
            tel_id: np.full(
                (1, subarray.tel[tel_id].camera.geometry.n_pixels),
                1 / factor,
                dtype=np.float32,
            )
            for tel_id, factor in self.factors.items()
        }
        self.log.info("PDE corrections: %s", self.factors)

    @property
    def _needs_history(self):
        return any(self.pde_correction.tel[t] is None for t in self.subarray.tel_ids)

    def _input_file(self):
        """
        The sim_telarray input: ``input_url``, else the one input the tool's event
        source registered; None if there is none.

        Raises
        ------
        SimTelFileError
            If ``input_url`` is not an eventio file.
        ctapipe.core.ToolConfigurationError
            If several inputs were registered.
        """
        if self.input_url is not None:
            path = Path(self.input_url)
            if not _is_eventio(path):
                raise SimTelFileError(
                    f"{path}: not a sim_telarray (eventio) file; set "
                    "SST1MSimulationCorrections.input_url"
                )
            return path
        inputs = registered_files("input", role="DL0/Event")
        if len(inputs) > 1:
            raise ToolConfigurationError(
                f"SST1MSimulationCorrections: {len(inputs)} event inputs registered "
                f"({', '.join(str(p) for p in inputs)}), which one is processed is "
                "unknown; set SST1MSimulationCorrections.input_url"
            )
        if not inputs:
            return None
        if not _is_eventio(inputs[0]):
            # an event source of simulations not made by sim_telarray
            self.log.warning(
                "%s: not a sim_telarray file: not checked complete, the output will "
                "not be marked complete",
                inputs[0],
            )
            return None
        return inputs[0]

    def _read_input(self):
        """
        Find the input, read its history if needed and check it complete.

        Returns
        -------
        tuple[pathlib.Path or None, SimTelScan or None]

        Raises
        ------
        SimTelFileError
            If the input is truncated, damaged or not an eventio file.
        ctapipe.core.ToolConfigurationError
            If the history is needed and there is no input, or the input is
            ambiguous.
        """
        path = self._input_file()
        if path is None:
            if self._needs_history:
                raise ToolConfigurationError(
                    "SST1MSimulationCorrections: no sim_telarray input to read the QE "
                    "files from (no sim_telarray file registered by the tool's event "
                    "source); set SST1MSimulationCorrections.input_url or "
                    f"{_pde_option()}"
                )
            if self.check_input_complete and not registered_files("input", "DL0/Event"):
                self.log.warning(
                    "No sim_telarray input registered by the tool's event source: not "
                    "checked complete, the output will not be marked complete; set "
                    "SST1MSimulationCorrections.input_url to check it"
                )
            return None, None
        if self.check_input_complete:
            scan = scan_simtel_file(path, to_end=True)
            self.log.info(
                "%s: complete, %d objects, %d bytes", path, scan.n_objects, scan.n_bytes
            )
            return path, scan
        if self._needs_history:
            return path, scan_simtel_file(path, to_end=False)
        return path, None

    def _factors(self):
        """
        PDE correction of every telescope.

        Raises
        ------
        ctapipe.core.ToolConfigurationError
            If a telescope has no factor, or a factor is not positive.
        """
        stems = qe_files_in_history(self.scan.history) if self._needs_history else []
        table = pde_correction_table()
        factors = {}
        for tel_id in self.subarray.tel_ids:
            factor = self.pde_correction.tel[tel_id]
            if factor is None:
                known = table[table["mc_tel_id"] == tel_id]
                matches = [row["factor"] for row in known if row["qe_file"] in stems]
                if not matches:
                    corrected = ", ".join(str(name) for name in known["qe_file"])
                    corrected = (
                        f"those of tel {tel_id} are for {corrected}"
                        if corrected
                        else f"there are none for tel {tel_id}"
                    )
                    raise ToolConfigurationError(
                        f"{self.input_path}: tel {tel_id} uses QE files {stems}, none "
                        f"of which has an SST-1M PDE correction ({corrected}); "
                        f"{_pde_option(tel_id)}"
                    )
                factor = matches[0]
            if not factor > 0:
                raise ToolConfigurationError(
                    f"PDE correction of tel {tel_id} must be > 0, not {factor}; "
                    f"{_pde_option(tel_id)}"
                )
            factors[tel_id] = float(factor)
        return factors

    @property
    def monitoring_types(self):
        return (MonitoringType.CAMERA_COEFFICIENTS,)

    def get_table(self, monitoring_type, tel_id=None, **kwargs):
        """The constant charge factor of ``tel_id`` as a one-row table."""
        self._check(monitoring_type)
        return Table({"factor": self._coefficients[tel_id][np.newaxis]})

    def get_values(self, monitoring_type, time, tel_id=None, **kwargs):
        """The charge factor of ``tel_id`` (the same at all times)."""
        self._check(monitoring_type)
        return {"factor": self._coefficients[tel_id]}

    def _check(self, monitoring_type):
        if monitoring_type not in self.monitoring_types:
            raise KeyError(f"{self.__class__.__name__} provides no {monitoring_type}")

    def fill_monitoring_container(self, event):
        """Set the charge factor of every telescope of ``event``."""
        self._n_events += 1
        for tel_id in event.r1.tel:
            coefficients = event.monitoring.tel[tel_id].camera.coefficients
            coefficients.factor = self._coefficients[tel_id].copy()

    def __exit__(self, exc_type, exc_value, traceback):
        try:
            self._mark_outputs(failed=exc_type is not None)
        finally:
            super().__exit__(exc_type, exc_value, traceback)

    def _mark_outputs(self, failed=False):
        """
        Mark complete the DL1 outputs the running tool registered since this
        source was created, if they are.

        Called when the source exits, after the tool's DataWriter closed its
        output. Outputs that are not complete (the tool stopped before the end of
        the input: ``max_events``, an error, an interrupt) are reported at ERROR
        level and left unmarked, so that the package's tools refuse them; errors
        are logged, not raised: an exception here would escape ctapipe's Tool
        with a traceback, and an unmarked output is already refused.

        Parameters
        ----------
        failed : bool
            The tool raised (its event loop did not finish).

        Returns
        -------
        list[pathlib.Path]
            The outputs marked complete.
        """
        outputs = [
            path
            for path in registered_files("output", role="DL1/Event")
            if path not in self._outputs_before
        ]
        if not outputs:
            self.log.debug("No DL1 output registered by a ctapipe tool: none marked")
            return []
        if self.scan is None or not self.scan.complete:
            self.log.warning(
                "%s: not marked complete, package tools will refuse it: no sim_telarray "
                "input was checked complete (no input, or "
                "SST1MSimulationCorrections.check_input_complete=False)",
                ", ".join(str(p) for p in outputs),
            )
            return []
        marked = []
        for output in outputs:
            try:
                if self._mark(output, failed):
                    marked.append(output)
            except (ProductError, OSError, tables.HDF5ExtError) as err:
                self.log.error("%s: not marked complete (%s)", output, err)
        return marked

    def _mark(self, output, failed):
        """Mark ``output`` complete if it holds the whole input; True if marked."""
        with tables.open_file(output, mode="r") as h5file:
            has_showers = SHOWER_DISTRIBUTION_TABLE in h5file
            n_written = 0
            if DL1_SUBARRAY_TRIGGER_TABLE in h5file:
                n_written = h5file.get_node(DL1_SUBARRAY_TRIGGER_TABLE).nrows
        if failed or not has_showers:
            self.log.error(
                "%s: INCOMPLETE, no %s: the processing of %s stopped before its end "
                "(max_events, an error or an interrupt) after %d events; not marked "
                "complete, package tools will refuse it",
                output,
                SHOWER_DISTRIBUTION_TABLE,
                self.input_path.name,
                self._n_events,
            )
            return False
        mark = write_hdf5_mark(
            output,
            DL1,
            events_in=self._n_events,
            events_out=n_written,
            counts={"processed": self._n_events},
            inputs=[self.input_path.name],
        )
        self.log.info("%s: %s", output, mark.summary())
        return True
