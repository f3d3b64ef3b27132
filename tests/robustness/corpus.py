"""
A corpus of bad inputs, built at test time from the real files, and the commands
that must refuse them.

Each case is the command line a user types. Most run in the test process
through ctapipe's ``run_tool`` (0.2 s instead of 4 s of imports per case); the
cases marked ``subprocess`` run the installed console script. Each must end
with exit code != 0, one line naming the file and the fault, and no product
that a package tool accepts; none may leave a process behind.

The ``decoder`` cases are files that pass every check of the file (headers,
sizes, checksums) and make protozfits crash, abort or allocate without bound
when it decodes them: they run only as console scripts with limited memory,
never in the test process.
"""

import bz2
import contextlib
import csv
import gzip
import io
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits

from ctapipe_sst1m.core.products import ProductError, verify_hdf5_product

BIN = Path(sys.executable).parent
PROCESS = str(BIN / "ctapipe-process")
MERGE = str(BIN / "ctapipe-sst1m-merge-stereo")
DL3 = str(BIN / "ctapipe-sst1m-dl3")
CHECK = str(BIN / "ctapipe-sst1m-check")
TOOL_NAMES = {
    PROCESS: "ctapipe-process",
    MERGE: "ctapipe-sst1m-merge-stereo",
    DL3: "ctapipe-sst1m-dl3",
    CHECK: "ctapipe-sst1m-check",
}
#: seconds one case may take before it counts as hanging
TIMEOUT = 120
#: environment variable marking the processes a case started (and theirs)
CASE_MARK = "SST1M_CORPUS_CASE"
#: seconds the processes a case started may take to end after the tool
LEFTOVER_GRACE = 3.0


@dataclass
class Case:
    """One bad input and what must be said about it."""

    name: str
    command: list
    #: text the error line must contain (besides the file name)
    message: str
    #: the file the error line must name (None: the message is enough)
    names: str | None
    #: outputs that must not exist, or not be accepted, afterwards
    outputs: list = field(default_factory=list)
    #: run the console script in a subprocess
    subprocess: bool = False
    #: a well-formed file of another camera: no SST-1M source claims it, and
    #: ctapipe's own refusal ("Could not find compatible EventSource", with its
    #: traceback) is the message
    foreign: bool = False
    #: seconds the case may take; longer counts as hanging
    timeout: float = TIMEOUT
    #: address-space limit (bytes, RLIMIT_AS) of the console script's process
    memory_limit: int | None = None
    #: how a bare protozfits decode loop fails on the input ("SIGSEGV",
    #: "MemoryError", "RuntimeError"...): set for files that pass every check
    #: of the file, which only the decoder process can refuse
    decoder_failure: str | None = None
    #: the outputs must not exist at all (not even refused)
    no_output: bool = False


@dataclass
class Result:
    case: Case
    returncode: int
    stderr: str
    seconds: float
    #: processes the case started that were still there after it (killed since)
    leftovers: list = field(default_factory=list)

    @property
    def fault_lines(self):
        """The lines of the log that state an error."""
        return [
            line
            for line in self.stderr.splitlines()
            if ("ERROR" in line or "CRITICAL" in line)
            and "Use --help" not in line
            and "Caught SystemExit" not in line
        ]

    @property
    def message(self):
        """The first error line, without the log prefix."""
        lines = self.fault_lines
        if not lines:
            return ""
        return lines[0].split("): ", 1)[-1].strip()


def _tool(command):
    from ctapipe.tools.process import ProcessorTool

    from ctapipe_sst1m.tools.dl3 import DL3Tool
    from ctapipe_sst1m.tools.merge_stereo import MergeStereoTool

    return {PROCESS: ProcessorTool, MERGE: MergeStereoTool, DL3: DL3Tool}[command]()


def run_in_process(case):
    from ctapipe.core import run_tool

    if case.decoder_failure:
        # protozfits would crash the test run, or take its memory
        raise ValueError(f"{case.name}: a decoder case runs only as a subprocess")
    start = time.monotonic()
    stderr = io.StringIO()
    cwd = Path(case.outputs[0]).parent if case.outputs else Path.cwd()
    mark = uuid.uuid4().hex
    # the children the tool starts (the decoder process) inherit the mark
    os.environ[CASE_MARK] = mark
    # the tool's log handler is made when it starts: it writes to this stderr
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(stderr):
        try:
            code = run_tool(
                _tool(case.command[0]), case.command[1:], cwd=cwd, raises=False
            )
        except Exception:
            stderr.write("Traceback (escaped the tool)\n" + traceback.format_exc())
            code = -998
        finally:
            del os.environ[CASE_MARK]
    seconds = time.monotonic() - start
    return Result(case, code, stderr.getvalue(), seconds, _leftovers(mark, case))


#: runs a command with an address-space limit, by exec: no preexec_fn in the
#: threads of `run_cases`
_LIMITED = (
    "import os, resource, sys; limit = int(sys.argv[1]); "
    "resource.setrlimit(resource.RLIMIT_AS, (limit, limit)); "
    "os.execv(sys.argv[2], sys.argv[2:])"
)


def run_case(case):
    if not case.subprocess:
        return run_in_process(case)
    command = list(case.command)
    if case.memory_limit is not None:
        command = [sys.executable, "-c", _LIMITED, str(case.memory_limit), *command]
    mark = uuid.uuid4().hex
    start = time.monotonic()
    # the log goes to a file, not a pipe: a child left behind would hold a
    # pipe open, and reading it to its end would wait for that child
    with tempfile.TemporaryFile("w+", errors="replace") as log:
        # its own session: on a timeout the tool and its children are killed
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=Path(case.outputs[0]).parent if case.outputs else None,
            env={**os.environ, "NO_COLOR": "1", CASE_MARK: mark},
            start_new_session=True,
        )
        try:
            returncode = process.wait(timeout=case.timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            returncode = -999
            log.write(f"\nTIMEOUT after {case.timeout} s\n")
        seconds = time.monotonic() - start
        log.seek(0)
        stderr = log.read()
    return Result(case, returncode, stderr, seconds, _leftovers(mark, case))


def _proc_read(pid, name):
    try:
        return (Path("/proc") / pid / name).read_bytes()
    except OSError:  # ended meanwhile, or not ours to read
        return b""


def _case_processes(mark, case):
    """
    Live processes the case started: those that carry its mark in their
    environment (inherited by every child), and those whose command line runs
    protozfits or the decoder process on an input the case wrote (a child that
    cleared its environment).
    """
    own = str(os.getpid())
    marked = f"{CASE_MARK}={mark}".encode()
    written = str(Path(case.outputs[0]).parent) if case.outputs else None
    inputs = [
        path.encode()
        for a in case.command[1:]
        if written and (path := a.split("=", 1)[-1]).startswith(written)
    ]
    found = []
    for entry in Path("/proc").iterdir():
        pid = entry.name
        if not pid.isdigit() or pid == own:
            continue
        stat = _proc_read(pid, "stat")
        # a zombie has ended: only its parent has not collected it yet
        if not stat or stat.rpartition(b")")[2].split()[0] in (b"Z", b"X"):
            continue
        cmdline = _proc_read(pid, "cmdline")
        decoding = b"decoder_process" in cmdline or b"protozfits" in cmdline
        if marked in _proc_read(pid, "environ").split(b"\0") or (
            decoding and any(i in cmdline for i in inputs)
        ):
            found.append(int(pid))
    return found


def _leftovers(mark, case):
    """The processes the case started that outlive it by `LEFTOVER_GRACE` s
    (killed, so that one case's leftover does not outlive the test run)."""
    deadline = time.monotonic() + LEFTOVER_GRACE
    while (pids := _case_processes(mark, case)) and time.monotonic() < deadline:
        time.sleep(0.05)
    leftovers = []
    for pid in pids:
        cmdline = _proc_read(str(pid), "cmdline").replace(b"\0", b" ")
        leftovers.append(f"{pid} {cmdline.decode(errors='replace')[:200]}")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return leftovers


def run_cases(cases, parallel=2):
    """Run the in-process cases one after the other, the subprocess ones
    ``parallel`` at a time; case name -> Result."""
    in_process = [run_in_process(c) for c in cases if not c.subprocess]
    with ThreadPoolExecutor(parallel) as pool:
        spawned = list(pool.map(run_case, [c for c in cases if c.subprocess]))
    return {r.case.name: r for r in in_process + spawned}


def assert_refused(results):
    """Every case: exit != 0, one error line naming the file and the fault, no
    traceback, no accepted product; returns the failures as text."""
    failures = []
    for name, result in results.items():
        case = result.case
        problems = []
        if result.returncode == -999:
            problems.append(f"no end within {case.timeout} s")
        elif result.returncode == 0 or result.returncode < 0:
            problems.append(f"exit code {result.returncode}")
        if result.seconds > case.timeout:
            problems.append(f"took {result.seconds:.0f} s (at most {case.timeout})")
        if result.leftovers:
            problems.append(f"left processes {result.leftovers}")
        if not result.message:
            problems.append("no error line")
        if case.message and case.message.lower() not in result.message.lower():
            problems.append(f"message lacks {case.message!r}")
        if case.names and case.names not in result.message:
            problems.append(f"message does not name {case.names!r}")
        if "Traceback" in result.stderr and not case.foreign:
            problems.append("traceback")
        for output in case.outputs:
            if case.no_output and Path(output).exists():
                problems.append(f"{Path(output).name} exists")
            if Path(output).is_dir():
                if any(Path(output).iterdir()):
                    problems.append(f"{Path(output).name} not empty")
                continue
            if Path(output).exists():
                try:
                    verify_hdf5_product(output)
                    problems.append(f"{Path(output).name} accepted")
                except ProductError:
                    pass
            partials = list(Path(output).parent.glob(f".{Path(output).name}*"))
            if partials:
                problems.append(f"left {partials}")
        if problems:
            failures.append(f"{name}: {'; '.join(problems)}\n    {result.message!r}")
    return failures


def write_table(results):
    path = os.environ.get("SST1M_CORPUS_TABLE")
    if not path:
        return
    new = not Path(path).exists()
    with open(path, "a", newline="") as f:
        writer = csv.writer(f)
        if new:
            writer.writerow(["case", "tool", "exit code", "message"])
        for name, result in results.items():
            tool = TOOL_NAMES[result.case.command[0]]
            # file names without the directories of this machine
            message = re.sub(_LOCAL_DIRS, "", result.message)
            writer.writerow([name, tool, result.returncode, message])


#: directories of this machine (temporary files, the shared inputs), dropped from
#: the file names in the documentation's table
_LOCAL_DIRS = re.compile(
    "(?:"
    + "|".join(
        re.escape(str(d))
        for d in (Path(tempfile.gettempdir()), Path(__file__).resolve().parents[3])
    )
    + r")(?:/[\w.\-]+)*/"
)
DOCUMENTED = Path(__file__).resolve().parents[2] / "docs" / "bad_inputs.csv"


def undocumented(results):
    """Cases missing from the documentation's table (docs/bad_inputs.csv)."""
    if os.environ.get("SST1M_CORPUS_TABLE"):
        return []
    with DOCUMENTED.open() as f:
        names = {row["case"] for row in csv.DictReader(f)}
    return sorted(set(results) - names)


def _ctrl_c_as_in_a_terminal():
    # a test run started in the background (``cmd &`` in a script, as the test
    # command starts the chain's tests) ignores SIGINT, and so would the tool,
    # Python installing its KeyboardInterrupt handler only where SIGINT is not
    # ignored: give the tool the SIGINT of a user's terminal
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt(command, output, sig, delay, cwd):
    """Start ``command``, send ``sig`` ``delay`` s after ``output`` (or its hidden
    temporary file) appears, or after the start if ``output`` is None; return
    the exit code and the log."""
    mark = f"interrupt-{os.getpid()}-{time.monotonic_ns()}"
    process = subprocess.Popen(
        command,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=_ctrl_c_as_in_a_terminal,
        env={**os.environ, CASE_MARK: mark},
    )
    start = time.monotonic()
    while output is not None and process.poll() is None:
        visible = output.exists() or any(cwd.glob(f".{output.name}*"))
        if visible or time.monotonic() - start > 60:
            break
        time.sleep(0.005)
    time.sleep(delay)
    if process.poll() is None:
        process.send_signal(sig)
    _, stderr = process.communicate(timeout=120)
    # no child of the tool (the decoder process) outlives it, whatever the signal
    leftovers = _leftovers(mark, Case("interrupt", command, "", None))
    assert not leftovers, f"{sig!r} after {delay} s left {leftovers}"
    return process.returncode, stderr.decode()


# ---------------------------------------------------------------- raw files


def write(path, data):
    path.write_bytes(data)
    return path


def flip(data, offset, length=64):
    data = bytearray(data)
    for i in range(offset, offset + length):
        data[i] ^= 0x5A
    return bytes(data)


def replace_card(data, key, value, after=0):
    """Rewrite the value of the first header card ``key`` from byte ``after``
    on (same length)."""
    data = bytearray(data)
    start = data.find(f"{key:<8}=".encode(), after)
    card = f"{key:<8}= {value:>20}".ljust(80).encode()
    data[start : start + 80] = card
    return bytes(data)


def remove_card(data, key, after=0):
    """Blank a header card, the first ``key`` from byte ``after`` on (the data
    and its DATASUM do not change)."""
    data = bytearray(data)
    start = data.find(f"{key:<8}=".encode(), after)
    data[start : start + 80] = b" " * 80
    return bytes(data)


def delete_card(data, key, after=0):
    """
    Delete a header card, the first ``key`` from byte ``after`` on: the cards
    after it move up, a blank card after END keeps the header's size.

    protozfits refuses a blank card before END ("END keyword missing in FITS
    header"), which `remove_card` leaves.
    """
    data = bytearray(data)
    start = data.find(f"{key:<8}=".encode(), after)
    end = data.find(b"END" + b" " * 77, start)
    data[start:end] = data[start + 80 : end + 80]
    data[end : end + 80] = b" " * 80
    return bytes(data)


def swap_words(data, a, b):
    """
    Swap the 32-bit words at byte offsets ``a`` and ``b``.

    Offsets that are multiples of 4 are aligned in the data of every HDU (which
    starts on a 2880-byte block), so the ones' complement sum of the data, its
    DATASUM, does not change.

    Raises
    ------
    ValueError
        If an offset is not a multiple of 4.
    """
    if a % 4 or b % 4:
        raise ValueError(f"offsets {a}, {b}: not multiples of 4")
    data = bytearray(data)
    data[a : a + 4], data[b : b + 4] = data[b : b + 4], data[a : a + 4]
    return bytes(data)


def ones_complement_sum(data):
    """FITS checksum arithmetic: 32-bit ones' complement sum of the big-endian
    words of ``data`` (a multiple of 4 bytes)."""
    total = int(np.frombuffer(data, dtype=">u4").sum(dtype=np.uint64))
    while total >> 32:
        total = (total & 0xFFFFFFFF) + (total >> 32)
    return total


def hdu_layout(data, name):
    """Header offset, data offset, data size (unpadded) and header of the HDU
    ``name`` of the FITS file ``data``."""
    with fits.open(io.BytesIO(data), memmap=False) as hdus:
        hdu = hdus[name]
        return hdu._header_offset, hdu._data_offset, hdu._data_size, hdu.header


def column_block(data, column, hdu="EVENTS"):
    """
    Where the compressed block of ``column`` in the first tile of a zfits table
    starts in the file, and its size.

    The catalog at the start of the table's data gives each column's block as
    (size, offset from the tile's start), int64 big-endian; the tile (``TILE``,
    row count, size) is ``ZHEAPPTR`` bytes after the start of the data. A
    block is its size (int64 little-endian), ``C``, the number of
    processings, the processings (uint16 each), then the compressed bytes.

    Raises
    ------
    ValueError
        If no tile starts at ``ZHEAPPTR``.
    """
    _, data_offset, _, header = hdu_layout(data, hdu)
    columns = [header[f"TTYPE{i}"] for i in range(1, header["TFIELDS"] + 1)]
    catalog = np.frombuffer(data, ">i8", 2 * len(columns), data_offset)
    size, offset = catalog.reshape(-1, 2)[columns.index(column)]
    return first_tile(data, hdu) + int(offset), int(size)


def first_tile(data, hdu="EVENTS"):
    """
    Where the first tile of a zfits table starts in the file: ``ZHEAPPTR``
    bytes after the start of the table's data.

    Raises
    ------
    ValueError
        If no tile (``TILE``) starts there.
    """
    _, data_offset, _, header = hdu_layout(data, hdu)
    tile = data_offset + header["ZHEAPPTR"]
    if data[tile : tile + 4] != b"TILE":
        raise ValueError(f"no tile at ZHEAPPTR {header['ZHEAPPTR']} in {hdu}")
    return tile


def _string_card(data, key, value, after):
    """Set the string value of the first card ``key`` from byte ``after`` on,
    its comment kept (fixed format: the value in columns 11-30)."""
    data = bytearray(data)
    start = data.find(f"{key:<8}=".encode(), after)
    old = data[start + 10 : start + 80].decode("ascii")
    comment = old[old.index("'", 1) + 1 :].strip() if old.startswith("'") else ""
    quoted = f"'{value}'"
    card = f"{key:<8}= {quoted:<20} {comment}".ljust(80)[:80]
    data[start : start + 80] = card.encode("ascii")
    return bytes(data)


#: characters a CHECKSUM value avoids (the punctuation between digits and
#: letters)
_CHECKSUM_EXCLUDED = frozenset(range(0x3A, 0x41)) | frozenset(range(0x5B, 0x61))


def _encode_checksum(value):
    """The 16 characters of the FITS checksum convention for the 32-bit
    ``value``: each byte spread over 4 characters from '0' on, punctuation
    avoided, the whole rotated one to the right."""
    chars = [0] * 16
    for i in range(4):
        quotient, remainder = divmod((value >> (24 - 8 * i)) & 0xFF, 4)
        ch = [quotient + 0x30] * 4
        ch[0] += remainder
        for j in (0, 2):
            while ch[j] in _CHECKSUM_EXCLUDED or ch[j + 1] in _CHECKSUM_EXCLUDED:
                ch[j] += 1
                ch[j + 1] -= 1
        for j in range(4):
            chars[4 * j + i] = ch[j]
    text = bytes(chars).decode("ascii")
    return text[-1] + text[:-1]


def set_checksums(data, hdu):
    """
    ``data`` with the DATASUM and CHECKSUM cards of the HDU ``hdu``
    recomputed (FITS checksum convention): a damage that no checksum sees.
    """
    header_offset, data_offset, data_size, _ = hdu_layout(data, hdu)
    padded = -(-data_size // 2880) * 2880
    datasum = ones_complement_sum(data[data_offset : data_offset + padded])
    data = _string_card(data, "DATASUM", str(datasum), header_offset)
    data = _string_card(data, "CHECKSUM", "0" * 16, header_offset)
    total = ones_complement_sum(data[header_offset:data_offset]) + datasum
    while total >> 32:
        total = (total & 0xFFFFFFFF) + (total >> 32)
    checksum = _encode_checksum(~total & 0xFFFFFFFF)
    return _string_card(data, "CHECKSUM", checksum, header_offset)


def raw_cases(tmp, raw_dir, sst1m_yaml):
    """ctapipe-process on damaged or wrong raw inputs."""
    science = (raw_dir / "example_SST1M_20180822.fits.fz").read_bytes()
    dark = (raw_dir / "SST1M_01_20180822_001.fits.fz").read_bytes()
    cases = []

    def case(
        name,
        path,
        message,
        *extra,
        names=None,
        input_option=None,
        spawn=False,
        foreign=False,
    ):
        output = tmp / f"{name.replace(' ', '_')}.dl1.h5"
        input_args = [f"--input={path}", *(input_option or [])]
        command = [
            PROCESS,
            *input_args,
            f"--output={output}",
            f"--config={sst1m_yaml}",
            "--no-progress",
            *extra,
        ]
        cases.append(
            Case(
                name,
                command,
                message,
                Path(path).name if names is None else names,
                [output],
                subprocess=spawn,
                foreign=foreign,
            )
        )

    for label, data, header_end, events_data in (
        ("science", science, 14400, 14400),
        ("dark", dark, 201600, 201600),
    ):
        size = len(data)
        for fraction in (0.1, 0.3, 0.5, 0.7, 0.9, 0.999):
            cut = int(events_data + fraction * (size - events_data))
            path = write(tmp / f"{label}_cut{int(fraction * 1000)}.fits.fz", data[:cut])
            case(
                f"raw {label} truncated at {fraction:.1%} of the data", path, "truncated"
            )
        for offset in (1000, 2000 + 2880, header_end - 200):
            path = write(tmp / f"{label}_hcut{offset}.fits.fz", data[:offset])
            case(f"raw {label} truncated at byte {offset} (header)", path, "truncated")
        for fraction in (0.05, 0.25, 0.5, 0.75, 0.98):
            offset = int(events_data + fraction * (size - events_data - 100))
            path = write(
                tmp / f"{label}_flip{int(fraction * 100)}.fits.fz", flip(data, offset)
            )
            case(
                f"raw {label} bytes changed at {fraction:.0%} of the data",
                path,
                "corrupted",
            )
        path = write(
            tmp / f"{label}_naxis2.fits.fz",
            replace_card(data[: header_end + 0] + data[header_end:], "NAXIS2", 100000),
        )
        case(f"raw {label} NAXIS2 enlarged", path, "truncated")

    path = write(tmp / "gzipped.fits.fz", gzip.compress(science))
    case("raw gzip-compressed under the raw name", path, "gzip", spawn=True)
    path = write(tmp / "bzipped.fits.fz", bz2.compress(science))
    case("raw bzip2-compressed under the raw name", path, "")
    path = write(tmp / "empty.fits.fz", b"")
    case("raw empty file", path, "empty")
    path = write(tmp / "text.fits.fz", b"this is not a FITS file\n" * 200)
    case("raw text file", path, "not a readable FITS file")
    directory = tmp / "a_directory.fits.fz"
    directory.mkdir()
    case("raw directory as input", directory, "directory")
    case(
        "raw missing file",
        tmp / "SST1M1_20240101_0099.fits.fz",
        "",
        names="SST1M1_20240101_0099.fits.fz",
    )
    case(
        "raw LST R1 file",
        raw_dir / "example_LST_R1_10_evts.fits.fz",
        "Could not find compatible EventSource",
        names="example_LST_R1_10_evts.fits.fz",
        foreign=True,
    )
    case(
        "raw NectarCAM file",
        raw_dir / "example_9evts_NectarCAM.fits.fz",
        "Could not find compatible EventSource",
        names="example_9evts_NectarCAM.fits.fz",
        foreign=True,
    )

    # runs
    run = tmp / "runs"
    run.mkdir()
    chunk0 = write(run / "SST1M2_20180822_0007.000.fits.fz", science)
    case(
        "run same file twice in input_filelist",
        chunk0,
        "same file",
        names=chunk0.name,
        input_option=[
            f"--SST1MEventSource.input_filelist={chunk0}",
            f"--SST1MEventSource.input_filelist={chunk0}",
        ],
    )
    for i in (1, 2):
        write(run / f"SST1M2_20180822_0007.{i:03d}.fits.fz", science)
    case("run identical chunks", chunk0, "identical", names="SST1M2_20180822_0007")
    gap = tmp / "gap"
    gap.mkdir()
    write(gap / "SST1M2_20180822_0008.000.fits.fz", science)
    write(gap / "SST1M2_20180822_0008.002.fits.fz", dark)
    case(
        "run chunk missing in the middle",
        gap / "SST1M2_20180822_0008.000.fits.fz",
        "missing",
        names="SST1M2_20180822_0008",
    )
    same = write(tmp / "SST1M2_20180822_0009.fits.fz", science)
    cases.append(
        Case(
            "run output is the input (--overwrite)",
            [
                PROCESS,
                f"--input={same}",
                f"--output={same}",
                f"--config={sst1m_yaml}",
                "--overwrite",
            ],
            "is this input raw file",
            same.name,
            [],
            subprocess=True,
        )
    )

    # configuration
    for name, option, trait in (
        ("window_width 0", "--LocalPeakWindowSum.window_width=0", "window_width"),
        ("window_width 60", "--LocalPeakWindowSum.window_width=60", "window_width"),
        ("window_shift 100", "--LocalPeakWindowSum.window_shift=100", "window_shift"),
        ("obs_id -1", "--SST1MEventSource.obs_id=-1", "obs_id"),
        (
            "pedestal_window 0",
            "--SST1MR1Calibrator.pedestal_window=0",
            "pedestal_window",
        ),
        (
            "event_id_source unknown",
            "--SST1MEventSource.event_id_source=nonsense",
            "event_id_source",
        ),
        (
            "camera_clock_scale unknown",
            "--SST1MEventSource.camera_clock_scale=gps",
            "camera_clock_scale",
        ),
        (
            "pointing_ra without pointing_dec",
            "--SST1MEventSource.pointing_ra=83.6",
            "pointing_dec",
        ),
        ("window_shift 7 of 7", "--LocalPeakWindowSum.window_shift=7", "window_shift"),
        (
            "pedestal_priming_events -1",
            "--SST1MR1Calibrator.pedestal_priming_events=-1",
            "pedestal_priming_events",
        ),
        (
            "dead_pixel_std_threshold -1",
            "--SST1MR1Calibrator.dead_pixel_std_threshold=-1",
            "dead_pixel_std_threshold",
        ),
        (
            "gain_pulse_fraction 2",
            "--SST1MR1Calibrator.gain_pulse_fraction=2",
            "gain_pulse_fraction",
        ),
        (
            "saturation_threshold 5000 ADC",
            "--SST1MR1Calibrator.saturation_threshold=5000",
            "saturation_threshold",
        ),
        (
            "saturation_width_samples 60",
            "--SST1MR1Calibrator.saturation_width_samples=60",
            "saturation_width_samples",
        ),
        (
            "max_pedestal_images 0",
            "--PedestalChargeMonitor.max_pedestal_images=0",
            "max_pedestal_images",
        ),
    ):
        case(
            f"config {name}",
            raw_dir / "example_SST1M_20180822.fits.fz",
            trait,
            option,
            names="",
        )
    # sst1m.yaml sets the cleaner under ImageProcessor, which wins over a
    # top-level section or option: a second file sets it there too
    for name, setting, trait in (
        ("picture threshold negative", "picture_threshold_pe: -5", "picture_threshold"),
        ("min_picture_neighbors 7", "min_picture_neighbors: 7", "min_picture_neigh"),
    ):
        override = tmp / f"{trait}.yaml"
        override.write_text(f"ImageProcessor:\n  SST1MImageCleaner:\n    {setting}\n")
        case(
            f"config {name}",
            raw_dir / "example_SST1M_20180822.fits.fz",
            trait,
            f"--config={override}",
            names="",
        )
    calibration = raw_dir.parent / "calibration"
    for option, source_name, message in (
        (
            "gain_file",
            "averaged_calib_param_v2_2023_2024_tel1.h5",
            "gain calibration of tel 21 given for tel 22",
        ),
        (
            "window_file",
            "corr_factor_1st_wdw.txt",
            "window transmittance of tel 21 given for tel 22",
        ),
    ):
        # a tel-21 file renamed as if it were tel 22's
        renamed = tmp / source_name.replace("tel1", "tel2").replace("1st", "2nd")
        renamed.write_bytes((calibration / source_name).read_bytes())
        case(
            f"config {option} of the other telescope, renamed",
            raw_dir / "example_SST1M_20180822.fits.fz",
            message,
            f"--SST1MR1Calibrator.{option}={renamed}",
            names=renamed.name,
        )
    typo = tmp / "typo.yaml"
    typo.write_text("SST1MEventSourse:\n  obs_id: 5\n")
    case(
        "config misspelled section",
        raw_dir / "example_SST1M_20180822.fits.fz",
        "did you mean 'SST1MEventSource'",
        f"--config={typo}",
        names="",
    )
    return cases + decoder_cases(tmp, raw_dir, sst1m_yaml)


# ------------------------------------------------------------ decoder crashes

#: address space (bytes) of ctapipe-process in the decoder cases. Without a
#: decoder process protozfits runs in the tool's process, and some of these
#: files make it allocate until the machine has no memory left; the decoder
#: process lowers its own limit further (SST1MEventSource.decoder_memory_gib,
#: 2 GiB). ctapipe-process itself maps about 1.1 GB.
DECODER_CASE_MEMORY = 4 * 2**30
#: seconds a decoder case may take: the decoder dies or is refused well before
DECODER_CASE_TIMEOUT = 60
SAMPLES = "hiGain_waveforms_samples"


def decoder_cases(tmp, raw_dir, sst1m_yaml):
    """
    ctapipe-process on damaged raw files that pass every check of the file
    (headers, sizes, DATASUM): only decoding them finds the damage, and
    protozfits then crashes, aborts or allocates without bound.

    Each case notes what a bare protozfits 2.13.1 decode loop (``for event in
    File(path).Events``, under ``ulimit -v 2000000``) does with its file. The
    files hold one tile (ZTILELEN 100 rows), decoded whole when the first
    event is read: every failure is at event 0. The cases run as console
    scripts with `DECODER_CASE_MEMORY`, never in the test process.
    """
    proto100 = (raw_dir / "example_100evts.fits.fz").read_bytes()
    science = (raw_dir / "example_SST1M_20180822.fits.fz").read_bytes()
    dark = (raw_dir / "SST1M_01_20180822_001.fits.fz").read_bytes()
    cases = []

    def case(name, filename, data, failure, original):
        path = write(tmp / filename, data)
        # the damage is one the checks of the file cannot see
        if original is not None:
            _, offset, size, _ = hdu_layout(data, "EVENTS")
            padded = -(-size // 2880) * 2880
            before = ones_complement_sum(original[offset : offset + padded])
            if ones_complement_sum(data[offset : offset + padded]) != before:
                raise AssertionError(f"{name}: the DATASUM no longer matches")
        output = tmp / f"{path.name.removesuffix('.fits.fz')}.dl1.h5"
        command = [PROCESS, f"--input={path}", f"--output={output}"]
        command += [f"--config={sst1m_yaml}", "--no-progress"]
        cases.append(
            Case(
                name,
                command,
                # "the raw-data decoder ... died (SIGSEGV) at event 0 ..."
                "decod",
                path.name,
                [output],
                subprocess=True,
                timeout=DECODER_CASE_TIMEOUT,
                memory_limit=DECODER_CASE_MEMORY,
                decoder_failure=failure,
                no_output=True,
            )
        )

    # 1. two aligned words swapped: the DATASUM is blind to it.
    # The samples are Huffman-coded without a checksum of their own (processings
    # 3, 2; the other columns end with zlib). At 1/8 of the block, bare
    # protozfits dies with SIGSEGV (exit 139) decoding the tile, every time; so
    # it does at 5 %...90 % ("Number of bytes for a single symbol exceeds
    # maximum", a RuntimeError, at 0.1 % and 1 %). It writes out of bounds:
    # with another heap layout (numpy imported first, as in the decoder
    # process) the same decode survives and gives wrong samples from event 11
    # on and no samples at all in events 98 and 99.
    block, size = column_block(proto100, SAMPLES)
    at = (block + 8 + size // 8) // 4 * 4
    case(
        "raw decoder: samples words swapped, DATASUM unchanged",
        "decoder_swapped_samples.fits.fz",
        swap_words(proto100, at, at + 4),
        "SIGSEGV",
        proto100,
    )
    # The tile header is TILE, row count (uint32), size (int64): with the row
    # count and the size swapped, bare protozfits allocates until its memory
    # is gone: MemoryError (std::bad_alloc) after 2.6 s at 2 GB.
    tile = first_tile(proto100)
    case(
        "raw decoder: tile row count and size swapped, DATASUM unchanged",
        "decoder_swapped_tile_header.fits.fz",
        swap_words(proto100, tile + 4, tile + 8),
        "MemoryError",
        proto100,
    )

    # 2. header cards outside the DATASUM (the CHECKSUM covers them, but the
    # source does not verify it: an edited header is rewritten with one).
    # ZHEAPPTR tells where the tile is: beyond the end of the file, bare
    # protozfits dies with SIGSEGV.
    case(
        "raw decoder: ZHEAPPTR beyond the end of the file",
        "decoder_zheapptr_far.fits.fz",
        replace_card(proto100, "ZHEAPPTR", 10**9),
        "SIGSEGV",
        proto100,
    )
    # 4 bytes off (208 -> 212), it reads the tile's size from the wrong bytes
    # and allocates until its memory is gone: MemoryError (std::bad_alloc)
    # after 5.3 s at 2 GB. (0 reads the file fine; 1e9 dies with SIGSEGV.)
    case(
        "raw decoder: ZHEAPPTR 4 bytes off",
        "decoder_zheapptr_off.fits.fz",
        replace_card(science, "ZHEAPPTR", 212),
        "MemoryError",
        science,
    )

    # 3. no DATASUM card: the checksum is not verified. 64 bytes changed in
    # the middle of the samples: bare protozfits dies with SIGSEGV.
    events = hdu_layout(proto100, "EVENTS")[0]
    case(
        "raw decoder: no DATASUM, samples changed",
        "decoder_no_datasum.fits.fz",
        delete_card(flip(proto100, block + size // 2), "DATASUM", events),
        "SIGSEGV",
        None,
    )
    # The DATASUM card blanked instead (legal FITS, astropy reads it): bare
    # protozfits cannot open the table, RuntimeError "END keyword missing in
    # FITS header", whatever the data.
    case(
        "raw decoder: no DATASUM, its card blanked",
        "decoder_blank_card.fits.fz",
        remove_card(proto100, "DATASUM", events),
        "RuntimeError",
        proto100,
    )

    # 4. damaged under recomputed (correct) DATASUM and CHECKSUM, in the current
    # layout (DigicamConfig, then Events, whose columns are zlib-compressed).
    block, size = column_block(dark, SAMPLES)
    # 64 bytes changed in the zlib stream of the samples: bare protozfits
    # raises RuntimeError ("zlibDecompress did not work")
    case(
        "raw decoder: dark samples changed, checksums recomputed",
        "decoder_dark_samples.fits.fz",
        set_checksums(flip(dark, block + size // 2), "EVENTS"),
        "RuntimeError",
        None,
    )
    # the samples block's size (int64 little-endian) set to 1e9: bare
    # protozfits dies with SIGSEGV
    bigger = bytearray(dark)
    bigger[block : block + 8] = (10**9).to_bytes(8, "little")
    case(
        "raw decoder: dark block size changed, checksums recomputed",
        "decoder_dark_block_size.fits.fz",
        set_checksums(bytes(bigger), "EVENTS"),
        "SIGSEGV",
        None,
    )

    # 5. NAXIS2 (catalog rows, i.e. tiles) 1 -> 2: 208 bytes more, within the
    # padding of the data, so the sizes are right. The second catalog row is
    # read from the tile itself: bare protozfits allocates until its memory is
    # gone: MemoryError (std::bad_alloc) after 3.6 s at 2 GB, 10.8 s at 4 GB
    # (unlimited, it takes the machine's memory). The 2017 and dark files have
    # zeros there and read fine.
    case(
        "raw decoder: NAXIS2 2, within the padding",
        "decoder_naxis2.fits.fz",
        replace_card(science, "NAXIS2", 2),
        "MemoryError",
        science,
    )
    return cases


# ---------------------------------------------------------------- simulations


def simulation_cases(tmp, simtel_dir, mc_yaml):
    """ctapipe-process with sst1m_mc.yaml on truncated or damaged sim_telarray files."""
    cases = []
    prod4 = next(simtel_dir.glob("gamma_20deg_0deg_run102*.simtel.zst")).read_bytes()
    small = (simtel_dir / "simtel_test_file.simtel.gz").read_bytes()

    def case(name, path, message):
        output = tmp / f"{name.replace(' ', '_')}.dl1.h5"
        command = [PROCESS, f"--input={path}", f"--output={output}"]
        command += [f"--config={mc_yaml}", "--no-progress"]
        command.append("--SST1MSimulationCorrections.pde_correction=1.0")
        cases.append(Case(name, command, message, Path(path).name, [output]))

    for fraction in (0.3, 0.5, 0.7):
        path = write(
            tmp / f"prod4_cut{int(fraction * 10)}.simtel.zst",
            prod4[: int(fraction * len(prod4))],
        )
        case(
            f"simulation zstd file cut at {fraction:.0%}", path, "truncated sim_telarray"
        )
        path = write(
            tmp / f"small_cut{int(fraction * 10)}.simtel.gz",
            small[: int(fraction * len(small))],
        )
        case(
            f"simulation gzip file cut at {fraction:.0%}", path, "truncated sim_telarray"
        )
    path = write(tmp / "small_flip.simtel.gz", flip(small, len(small) // 2, 8))
    case("simulation gzip file with changed bytes", path, "damaged sim_telarray")
    path = write(tmp / "prod4_flip.simtel.zst", flip(prod4, len(prod4) // 2, 8))
    case("simulation zstd file with changed bytes", path, "sim_telarray")
    return cases


# -------------------------------------------------------------- merge inputs


def merge_cases(tmp, tel21, tel22, raw_file):
    """ctapipe-sst1m-merge-stereo on damaged or wrong DL1 inputs."""
    import tables

    from ctapipe_sst1m.core.products import MARK_TABLE

    good = tel22.read_bytes()
    cases = []

    def case(name, bad, message, *extra, names=None, spawn=False):
        output = tmp / f"{name.replace(' ', '_')}.stereo.h5"
        command = [MERGE, str(tel21), str(bad), f"--output={output}", "--no-progress"]
        command += ["--method=SlidingWindow", *extra]
        names = Path(bad).name if names is None else names
        cases.append(Case(name, command, message, names, [output], subprocess=spawn))

    for fraction in (0.2, 0.5, 0.8, 0.99):
        path = write(
            tmp / f"cut{int(fraction * 100)}.dl1.h5", good[: int(fraction * len(good))]
        )
        case(f"merge DL1 truncated at {fraction:.0%}", path, "")
    path = write(tmp / "zeroed.dl1.h5", good[:20000] + bytes(4096) + good[24096:])
    case("merge DL1 with zeroed bytes", path, "")
    unmarked = write(tmp / "unmarked.dl1.h5", good)
    with tables.open_file(unmarked, mode="a") as h5file:
        h5file.remove_node(MARK_TABLE)
    case(
        "merge DL1 without completeness mark",
        unmarked,
        "no completeness mark",
        spawn=True,
    )
    short = write(tmp / "short_images.dl1.h5", good)
    with tables.open_file(short, mode="a") as h5file:
        h5file.get_node("/dl1/event/telescope/images/tel_022").remove_rows(20, 32)
    case("merge DL1 images cut to 20 of 32", short, "has 20 rows")
    case("merge empty file", write(tmp / "empty.dl1.h5", b""), "empty")
    case("merge raw file given as DL1", raw_file, "not an HDF5 file")
    case("merge text file", write(tmp / "notes.dl1.h5", b"hello\n" * 100), "not an HDF5")
    directory = tmp / "dir.dl1.h5"
    directory.mkdir()
    case("merge directory as input", directory, "")
    case("merge missing input", tmp / "nope.dl1.h5", "", names="nope.dl1.h5")
    case("merge same file twice", tel21, "more than once", names="")
    cases.append(
        Case(
            "merge output is an input",
            [MERGE, str(tel21), str(tel22), f"--output={tel22}", "--overwrite"],
            "is also an input",
            tel22.name,
            [],
        )
    )
    return cases
