"""
A corpus of bad inputs, built at test time from the real files, and the commands
that must refuse them.

Each case is the command line a user types. Most run in the test process
through ctapipe's ``run_tool`` (0.2 s instead of 4 s of imports per case); the
cases marked ``subprocess`` run the installed console script. Each must end
with exit code != 0, one line naming the file and the fault, and no product
that a package tool accepts.
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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

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


@dataclass
class Result:
    case: Case
    returncode: int
    stderr: str
    seconds: float

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

    start = time.monotonic()
    stderr = io.StringIO()
    cwd = Path(case.outputs[0]).parent if case.outputs else Path.cwd()
    # the tool's log handler is made when it starts: it writes to this stderr
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(stderr):
        try:
            code = run_tool(
                _tool(case.command[0]), case.command[1:], cwd=cwd, raises=False
            )
        except Exception:
            stderr.write("Traceback (escaped the tool)\n" + traceback.format_exc())
            code = -998
    return Result(case, code, stderr.getvalue(), time.monotonic() - start)


def run_case(case):
    if not case.subprocess:
        return run_in_process(case)
    start = time.monotonic()
    try:
        run = subprocess.run(
            case.command,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            cwd=Path(case.outputs[0]).parent if case.outputs else None,
            env={**os.environ, "NO_COLOR": "1"},
        )
        returncode, stderr = run.returncode, run.stdout + run.stderr
    except subprocess.TimeoutExpired as err:
        returncode, stderr = -999, f"TIMEOUT {err}"
    return Result(case, returncode, stderr, time.monotonic() - start)


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
        if result.returncode in (0, -999) or result.returncode < 0:
            problems.append(f"exit code {result.returncode}")
        if not result.message:
            problems.append("no error line")
        if case.message and case.message.lower() not in result.message.lower():
            problems.append(f"message lacks {case.message!r}")
        if case.names and case.names not in result.message:
            problems.append(f"message does not name {case.names!r}")
        if "Traceback" in result.stderr and not case.foreign:
            problems.append("traceback")
        for output in case.outputs:
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
    process = subprocess.Popen(
        command,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=_ctrl_c_as_in_a_terminal,
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


def replace_card(data, key, value):
    """Rewrite the value of the first header card ``key`` (same length)."""
    data = bytearray(data)
    start = data.find(f"{key:<8}=".encode())
    card = f"{key:<8}= {value:>20}".ljust(80).encode()
    data[start : start + 80] = card
    return bytes(data)


def remove_card(data, key):
    """Blank a header card (the data and its DATASUM do not change)."""
    data = bytearray(data)
    start = data.find(f"{key:<8}=".encode())
    data[start : start + 80] = b" " * 80
    return bytes(data)


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
