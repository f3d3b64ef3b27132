"""
Raw files that pass every check of the file and crash protozfits: what makes
them (`decoder_cases` in corpus.py), that they are what they claim, and the
machinery that runs them (time limit, memory limit, processes left behind).

Their refusal by ``ctapipe-process`` is checked with the rest of the raw corpus
(``raw_results``, shared with test_bad_inputs.py).
"""

import io
import re
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
from astropy.io import fits

from ctapipe_sst1m.io.zfits import check_file_integrity, inspect_digicam_file

from .conftest import SST1M_YAML
from .corpus import (
    CASE_MARK,
    DECODER_CASE_MEMORY,
    DECODER_CASE_TIMEOUT,
    SAMPLES,
    Case,
    assert_refused,
    column_block,
    decoder_cases,
    flip,
    run_case,
    set_checksums,
)

#: a bare protozfits decode loop: every event, every array touched
BARE_LOOP = """
import sys
import protozfits
with protozfits.File(sys.argv[1]) as zfile:
    for event in zfile.Events:
        waveforms = event.hiGain.waveforms
        waveforms.samples.sum(), waveforms.baselines.sum(), event.pixels_flags.sum()
print("decoded to the end")
"""
#: address space of the bare loop, as the decoder process has by default
BARE_MEMORY = 2 * 2**30
#: the start of a line of ctapipe's log
LOG_RECORD = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


@pytest.fixture(scope="module")
def cases(tmp_path_factory, raw_dir):
    return decoder_cases(tmp_path_factory.mktemp("decoder_cases"), raw_dir, SST1M_YAML)


def _input(case):
    return Path(case.command[1].removeprefix("--input="))


def test_decoder_cases_pass_every_check_of_the_file(cases):
    """Headers, sizes and every DATASUM the file carries are right: only
    decoding can find the damage. Each kind of damage is there."""
    assert len(cases) >= 8
    for case in cases:
        path = _input(case)
        header = inspect_digicam_file(path)
        check_file_integrity(header, verify_checksums=True)
        events = next(h for h in header.hdus if h[0] == "EVENTS")
        assert header.n_events in (1, 32, 100), case.name
        if "no DATASUM" in case.name:
            assert events[3] is None
        else:
            assert events[3] is not None, case.name
        # never in the test process, never with the machine's memory
        assert case.subprocess and case.memory_limit == DECODER_CASE_MEMORY
        assert case.timeout == DECODER_CASE_TIMEOUT and case.no_output
        assert case.message == "decod" and case.names == path.name
    failures = {case.decoder_failure for case in cases}
    assert failures == {"SIGSEGV", "MemoryError", "RuntimeError"}


def test_decoder_case_never_runs_in_the_test_process(cases):
    # a case protozfits only raises on: were the guard missing, no crash
    case = next(c for c in cases if c.decoder_failure == "RuntimeError")
    with pytest.raises(ValueError, match="only as a subprocess"):
        run_case(Case(**{**case.__dict__, "subprocess": False}))


@pytest.mark.slow
def test_bare_protozfits_fails_on_every_decoder_case(cases):
    """What each case's comment says a bare protozfits decode loop does with
    its file (in a child process, with 2 GiB): the cases are relevant as long
    as protozfits fails on them."""
    wrong = []
    for case in cases:
        run = subprocess.run(
            [
                sys.executable,
                "-c",
                "import resource, sys; limit = int(sys.argv.pop(1)); "
                "resource.setrlimit(resource.RLIMIT_AS, (limit, limit)); "
                "exec(sys.argv.pop(1))",
                str(BARE_MEMORY),
                BARE_LOOP,
                str(_input(case)),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if case.decoder_failure == "SIGSEGV":
            failed = run.returncode == -11
        else:
            # the exception's message may take several lines
            raised = f"\n{case.decoder_failure}: " in run.stderr
            failed = run.returncode == 1 and raised
        if not failed:
            tail = (run.stdout + run.stderr).strip()[-300:]
            wrong.append(f"{case.name}: exit {run.returncode}\n    {tail}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.slow
def test_decoder_cases_refused(raw_results, cases):
    """Each decoder case, run in the raw corpus: refused in one line naming the
    file and the decoder, within 60 s, no output, no process left behind."""
    results = {name: raw_results[name] for name in (c.name for c in cases)}
    failures = assert_refused(results)
    for name, result in results.items():
        if not result.fault_lines:
            continue
        # one line: what protozfits says (several lines, at times) is not
        # carried over as it is
        lines = result.stderr.splitlines()
        after = lines[lines.index(result.fault_lines[0]) + 1 :][:1]
        if after and not LOG_RECORD.match(after[0]):
            failures.append(f"{name}: the message goes on: {after[0]!r}")
    assert not failures, "\n".join(failures)
    for result in results.values():
        assert result.seconds < DECODER_CASE_TIMEOUT
        assert not result.leftovers


def test_set_checksums_gives_the_cards_of_the_real_files(raw_dir):
    """Recomputed on the undamaged real files, DATASUM and CHECKSUM are the
    cards ACTL wrote, byte for byte; on damaged data, astropy verifies them."""
    dark = (raw_dir / "SST1M_01_20180822_001.fits.fz").read_bytes()
    science = (raw_dir / "example_SST1M_20180822.fits.fz").read_bytes()
    assert set_checksums(set_checksums(dark, "DIGICAMCONFIG"), "EVENTS") == dark
    assert set_checksums(science, "EVENTS") == science

    block, size = column_block(dark, SAMPLES)
    damaged = flip(dark, block + size // 2)
    assert _checksum_warnings(set_checksums(damaged, "EVENTS")) == []
    assert any("Checksum" in w for w in _checksum_warnings(damaged))


def _checksum_warnings(data):
    """astropy's warnings on reading every HDU of ``data`` with checksums."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with fits.open(io.BytesIO(data), checksum=True) as hdus:
            hdus.readall()
    return [str(w.message) for w in caught]


def _starts_a_child(pid_file):
    """Python statements that start a child sleeping 60 s and write its pid."""
    sleeper = "import time; time.sleep(60)"
    return (
        "import subprocess, sys, time; "
        f"child = subprocess.Popen([sys.executable, '-c', {sleeper!r}]); "
        f"open({str(pid_file)!r}, 'w').write(str(child.pid)); "
    )


def _alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_a_process_left_behind_is_found_and_killed(tmp_path):
    """A tool that exits and leaves a child running: the child is reported and
    does not outlive the check."""
    pid_file = tmp_path / "child.pid"
    script = _starts_a_child(pid_file) + "sys.exit(3)"
    case = Case(
        "leaves a child",
        [sys.executable, "-c", script],
        "",
        None,
        [tmp_path / "out.dl1.h5"],
        subprocess=True,
        timeout=30,
    )
    result = run_case(case)
    child = int(pid_file.read_text())
    assert result.returncode == 3
    assert len(result.leftovers) == 1
    assert result.leftovers[0].startswith(f"{child} ")
    time.sleep(0.2)
    assert not _alive(child)
    failures = assert_refused({case.name: result})
    assert "left processes" in failures[0]


def test_a_hanging_tool_is_stopped_with_its_children(tmp_path):
    """Past its time limit the tool and its children are killed: the case
    fails as hanging, and nothing is left."""
    pid_file = tmp_path / "child.pid"
    script = _starts_a_child(pid_file) + "time.sleep(60)"
    case = Case(
        "hangs",
        [sys.executable, "-c", script],
        "",
        None,
        [tmp_path / "out.dl1.h5"],
        subprocess=True,
        timeout=3,
    )
    start = time.monotonic()
    result = run_case(case)
    assert time.monotonic() - start < 10
    assert result.returncode == -999
    assert result.leftovers == []
    assert not _alive(int(pid_file.read_text()))
    failures = assert_refused({case.name: result})
    assert "no end within 3 s" in failures[0]


def test_memory_limit_reaches_the_tool(tmp_path):
    """The console script runs with the case's address-space limit, and the
    processes it starts carry the case's mark."""
    script = (
        "import os, resource; "
        "print('limit', resource.getrlimit(resource.RLIMIT_AS)[0]); "
        f"print('mark', bool(os.environ.get({CASE_MARK!r}))); "
        "raise SystemExit(2)"
    )
    case = Case(
        "limited",
        [sys.executable, "-c", script],
        "",
        None,
        [tmp_path / "out.dl1.h5"],
        subprocess=True,
        memory_limit=DECODER_CASE_MEMORY,
    )
    result = run_case(case)
    assert result.returncode == 2
    assert f"limit {DECODER_CASE_MEMORY}" in result.stderr
    assert "mark True" in result.stderr
