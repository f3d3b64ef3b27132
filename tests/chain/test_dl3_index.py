"""
ctapipe-sst1m-dl3-index: DL3 of runs written one by one (``--no-index``, at the
same time) into one directory, indexed afterwards as one call of
ctapipe-sst1m-dl3 indexes its runs.
"""

import contextlib
import io
import shutil
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from ctapipe.core import run_tool
from gammapy.data import DataStore

from ctapipe_sst1m.core.products import (
    DL3,
    DL3_INDEX,
    ProductError,
    verify_fits_product,
    write_fits_product,
)
from ctapipe_sst1m.dl3.gadf import HDU_INDEX_FILE, OBS_INDEX_FILE, dl3_file_name
from ctapipe_sst1m.tools.dl3 import DL3Tool
from ctapipe_sst1m.tools.dl3_index import DL3IndexTool

from ..helpers import corrupted_copy, parse_summary, truncated_copy
from ..robustness.corpus import BIN
from ..robustness.corpus import DL3 as DL3_SCRIPT

INDEX_SCRIPT = str(BIN / "ctapipe-sst1m-dl3-index")
INDEXES = (HDU_INDEX_FILE, OBS_INDEX_FILE)
TITLE = "ctapipe-sst1m-dl3-index:"


def run_in_process(tool, argv, cwd):
    """Run a Tool in the test process; return the exit code and its stderr (log
    and summary: ctapipe's log handler is made when the tool starts)."""
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        code = run_tool(tool, argv=[str(a) for a in argv], cwd=cwd, raises=False)
    return code, stderr.getvalue()


def index(directory, *extra, cwd=None):
    """ctapipe-sst1m-dl3-index in the test process."""
    cwd = cwd or directory.parent
    return run_in_process(DL3IndexTool(), [directory, *extra], cwd)


def critical_lines(stderr):
    return [
        line.split("): ", 1)[-1]
        for line in stderr.splitlines()
        if "CRITICAL" in line and "Caught SystemExit" not in line
    ]


def warning_lines(stderr):
    return [line.split("): ", 1)[-1] for line in stderr.splitlines() if "WARNING" in line]


def assert_same_table(path_a, path_b):
    """The index tables of two files are equal: columns, units, values, cards
    (but the checksums)."""
    a, b = Table.read(path_a), Table.read(path_b)
    assert a.colnames == b.colnames
    assert len(a) == len(b) > 0
    for column in a.colnames:
        assert a[column].unit == b[column].unit, column
        np.testing.assert_array_equal(a[column], b[column], err_msg=column)
    ignored = {"CHECKSUM", "DATASUM"}
    meta_a = {k: v for k, v in a.meta.items() if k not in ignored}
    meta_b = {k: v for k, v in b.meta.items() if k not in ignored}
    assert meta_a == meta_b


def dl3_files(directory):
    return sorted(p.name for p in directory.iterdir())


# ----------------------------------------------------- without DL3 files (fast)


def test_refuses_a_directory_without_dl3_files(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, stderr = index(empty)
    assert code == 1
    (line,) = critical_lines(stderr)
    assert line == (
        f"{empty}: no DL3 files (SST1M_obs_*.dl3.fits.gz); write them with "
        "ctapipe-sst1m-dl3"
    )
    code, stderr = index(tmp_path / "missing")
    assert code == 1
    assert critical_lines(stderr) == [
        f"{tmp_path / 'missing'}: no such directory; give the directory of the DL3 files"
    ]
    assert list(empty.iterdir()) == []


def test_refuses_a_file_that_is_not_dl3(tmp_path):
    """A file named like a run's DL3 file: refused in one line naming it."""
    directory = tmp_path / "dl3"
    directory.mkdir()
    bogus = directory / dl3_file_name(7)
    bogus.write_bytes(b"not a FITS file at all")
    code, stderr = index(directory)
    assert code == 1
    (line,) = critical_lines(stderr)
    assert line.startswith(f"{bogus}: ")
    assert line.endswith(
        "set DL3IndexTool.skip_incomplete=True (--skip-incomplete) "
        "to index the other files"
    )
    assert "Traceback" not in stderr
    assert dl3_files(directory) == [bogus.name]


# ------------------------------------------- runs written apart, then indexed
# (slow: ctapipe-sst1m-dl3 on the toy chain's observed runs)


@pytest.fixture(scope="module")
def one_call(tmp_path_factory, observed_dl2, chain):
    """The DL3 files and indexes of one call with both runs."""
    tmp = tmp_path_factory.mktemp("dl3_one_call")
    argv = [*observed_dl2.values(), f"--irf={chain['irf']}", f"--cuts={chain['cuts']}"]
    code, stderr = run_in_process(DL3Tool(), [*argv, "--output-dir=dl3"], tmp)
    assert code == 0, stderr[-3000:]
    return tmp / "dl3"


@pytest.fixture(scope="module")
def runs_apart(tmp_path_factory, observed_dl2, chain):
    """Each run's DL3 written by its own ctapipe-sst1m-dl3 --no-index, both
    calls at the same time into one directory; then the directory indexed."""
    tmp = tmp_path_factory.mktemp("dl3_apart")
    processes = [
        subprocess.Popen(
            [
                DL3_SCRIPT,
                str(path),
                f"--irf={chain['irf']}",
                f"--cuts={chain['cuts']}",
                "--output-dir=dl3",
                "--no-index",
            ],
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for path in observed_dl2.values()
    ]
    stderrs = [p.communicate(timeout=600)[1] for p in processes]
    for process, stderr in zip(processes, stderrs, strict=True):
        assert process.returncode == 0, stderr[-3000:]
    directory = tmp / "dl3"
    before = dl3_files(directory)
    code, index_stderr = index(directory, cwd=tmp)
    assert code == 0, index_stderr[-3000:]
    return dict(
        dir=directory,
        before=before,
        dl3_stderrs=stderrs,
        index_stderr=index_stderr,
    )


@pytest.mark.slow
def test_no_index_writes_only_the_run(runs_apart, observed_dl2):
    names = [dl3_file_name(obs_id) for obs_id in observed_dl2]
    assert runs_apart["before"] == sorted(names)
    for stderr in runs_apart["dl3_stderrs"]:
        rows = parse_summary(stderr, "ctapipe-sst1m-dl3:")
        assert rows["indexes"] == (
            "none written (--no-index): ctapipe-sst1m-dl3-index dl3 indexes every "
            "DL3 file there"
        )
        assert "WARNING" not in stderr


@pytest.mark.slow
def test_indexes_equal_those_of_one_call(runs_apart, one_call):
    for name in INDEXES:
        assert_same_table(one_call / name, runs_apart["dir"] / name)
        header = verify_fits_product(runs_apart["dir"] / name, kinds=(DL3_INDEX,))
        assert header["SSTCOMPL"]
    assert dl3_files(runs_apart["dir"]) == dl3_files(one_call)


@pytest.mark.slow
def test_index_summary(runs_apart, observed_dl2):
    stderr = runs_apart["index_stderr"]
    assert "WARNING" not in stderr
    hdus = Table.read(runs_apart["dir"] / HDU_INDEX_FILE)
    observations = Table.read(runs_apart["dir"] / OBS_INDEX_FILE)
    n_events = int(np.sum(observations["EVENT_COUNT"]))
    livetime = float(np.sum(observations["LIVETIME"]))
    title = next(
        line
        for line in stderr.splitlines()
        if line.startswith("ctapipe-sst1m-dl3-index:")
    )
    assert title == (
        f"ctapipe-sst1m-dl3-index: 2 runs, {n_events} events, {livetime:.0f} s, "
        "indexed in dl3"
    )
    rows = parse_summary(stderr, TITLE)
    for row in observations:
        assert rows[f"obs_id {row['OBS_ID']}"] == (
            f"{dl3_file_name(row['OBS_ID'])}: {row['EVENT_COUNT']} events, "
            f"{row['LIVETIME']:.0f} s"
        )
    assert rows["indexes"] == (
        f"hdu-index.fits.gz ({len(hdus)} HDUs), obs-index.fits.gz (gammapy's DataStore)"
    )
    assert sorted(observations["OBS_ID"]) == sorted(observed_dl2)


@pytest.mark.slow
def test_gammapy_loads_both_observations(runs_apart, observed_dl2):
    datastore = DataStore.from_dir(runs_apart["dir"])
    assert sorted(datastore.obs_table["OBS_ID"]) == sorted(observed_dl2)
    observations = datastore.get_observations(required_irf=["aeff", "edisp", "psf"])
    assert len(observations) == 2
    for observation in observations:
        row = datastore.obs_table.select_obs_id(observation.obs_id)[0]
        assert len(observation.events.table) == row["EVENT_COUNT"] > 50
        assert observation.aeff is not None


@pytest.mark.slow
def test_indexes_in_another_directory(runs_apart, observed_dl2, tmp_path):
    elsewhere = tmp_path / "analysis" / "indexes"
    code, stderr = index(runs_apart["dir"], f"--output-dir={elsewhere}", cwd=tmp_path)
    assert code == 0, stderr[-3000:]
    file_dir = Table.read(elsewhere / HDU_INDEX_FILE)["FILE_DIR"]
    # from <tmp>/analysis/indexes up to the directory the test directories share
    expected = str(
        Path("..", "..", "..") / runs_apart["dir"].relative_to(tmp_path.parent)
    )
    assert set(file_dir) == {expected}
    rows = parse_summary(stderr, TITLE)
    assert rows["DL3 files"] == f"{expected} (FILE_DIR, from the indexes)"
    datastore = DataStore.from_dir(elsewhere)
    assert sorted(datastore.obs_table["OBS_ID"]) == sorted(observed_dl2)
    for obs_id in observed_dl2:
        assert len(datastore.obs(obs_id, required_irf=["aeff"]).events.table) > 50
    assert_same_table(runs_apart["dir"] / OBS_INDEX_FILE, elsewhere / OBS_INDEX_FILE)


def _copy_runs(runs_apart, destination):
    destination.mkdir()
    for path in sorted(runs_apart["dir"].glob("SST1M_obs_*")):
        shutil.copy(path, destination / path.name)
    return sorted(destination.glob("SST1M_obs_*"))


@pytest.mark.slow
def test_damaged_file_refused_or_skipped(runs_apart, observed_dl2, tmp_path):
    first_id, _ = observed_dl2
    cases = {
        "truncated": (
            lambda source, dest: truncated_copy(source, dest, source.stat().st_size // 2),
            "damaged or truncated gzip stream",
        ),
        "bytes flipped": (
            lambda source, dest: corrupted_copy(source, dest, source.stat().st_size // 2),
            "damaged or truncated gzip stream",
        ),
    }
    for i, (case, (damage, fault)) in enumerate(cases.items()):
        directory = tmp_path / f"d{i}"
        first, second = _copy_runs(runs_apart, directory)
        # indexes of an earlier run of the tool: left as they were by a refusal
        assert index(directory)[0] == 0
        old = {name: (directory / name).read_bytes() for name in INDEXES}
        damaged = damage(runs_apart["dir"] / second.name, second)
        code, stderr = index(directory)
        assert code == 1, case
        (line,) = critical_lines(stderr)
        assert line.startswith(f"{damaged}: {fault}"), (case, line)
        assert line.endswith("(--skip-incomplete) to index the other files")
        assert "Traceback" not in stderr
        assert {name: (directory / name).read_bytes() for name in INDEXES} == old

        code, stderr = index(directory, "--skip-incomplete")
        assert code == 0, (case, stderr[-3000:])
        (warning,) = warning_lines(stderr)
        assert warning.startswith(f"{damaged}: {fault}")
        assert warning.endswith("; not indexed (skip_incomplete)")
        rows = parse_summary(stderr, TITLE)
        assert rows["skipped"] == (
            f"1 incomplete file: {damaged.name} (see the warnings)"
        )
        assert rows["indexes"].endswith("; replaced the previous ones")
        assert list(Table.read(directory / OBS_INDEX_FILE)["OBS_ID"]) == [first_id]
        assert set(Table.read(directory / HDU_INDEX_FILE)["FILE_NAME"]) == {first.name}
        assert DataStore.from_dir(directory).obs(first_id).events is not None


@pytest.mark.slow
def test_run_being_written_is_not_indexed(runs_apart, observed_dl2, tmp_path):
    """The hidden file of a ctapipe-sst1m-dl3 still writing (or killed): not
    indexed, with a warning naming it."""
    directory = tmp_path / "dl3"
    _, second = _copy_runs(runs_apart, directory)
    partial = directory / ".SST1M_obs_3.dl3.fits.partial.gz"
    partial.write_bytes(second.read_bytes()[:5000])
    code, stderr = index(directory)
    assert code == 0, stderr[-3000:]
    assert warning_lines(stderr) == [
        f"{partial}: a DL3 file being written by ctapipe-sst1m-dl3, or left by one "
        "that was killed; its run is indexed only if it is complete under its final "
        "name"
    ]
    assert sorted(Table.read(directory / OBS_INDEX_FILE)["OBS_ID"]) == sorted(
        observed_dl2
    )
    # not the index tool's to remove: its writer may still be running
    assert partial.exists()


@pytest.mark.slow
def test_runs_one_call_refuses(runs_apart, observed_dl2, tmp_path):
    """Two files of one obs_id, and runs of different pointing modes."""
    first_id, _ = observed_dl2
    directory = tmp_path / "twice"
    first, _ = _copy_runs(runs_apart, directory)
    copy = shutil.copy(first, directory / dl3_file_name(1))
    code, stderr = index(directory)
    assert code == 1
    assert critical_lines(stderr) == [
        f"{first}: obs_id {first_id}, as {copy.name}; remove one of them"
    ]

    directory = tmp_path / "modes"
    first, second = _copy_runs(runs_apart, directory)
    with fits.open(second) as hdus:
        hdus = fits.HDUList([h.copy() for h in hdus])
    hdus["EVENTS"].header["OBS_MODE"] = "DRIFT"
    write_fits_product(hdus, second, DL3)
    code, stderr = index(directory)
    assert code == 1
    (line,) = critical_lines(stderr)
    assert line.startswith(f"{directory}: runs of different pointing modes (")
    assert f"{second.name}: DRIFT" in line
    assert not (directory / HDU_INDEX_FILE).exists()


@pytest.mark.slow
def test_one_call_warns_about_other_runs(runs_apart, observed_dl2, chain, tmp_path):
    """A call writing indexes into a directory holding other runs says which runs
    its indexes leave out; a call without says that the indexes there are
    older."""
    directory = tmp_path / "dl3"
    _copy_runs(runs_apart, directory)
    first_path = next(iter(observed_dl2.values()))
    argv = [first_path, f"--irf={chain['irf']}", f"--cuts={chain['cuts']}"]
    argv += [f"--output-dir={directory}", "--overwrite"]
    code, stderr = run_in_process(DL3Tool(), argv, tmp_path)
    assert code == 0, stderr[-3000:]
    other = dl3_file_name(list(observed_dl2)[1])
    assert warning_lines(stderr) == [
        f"{directory}: the indexes list the 1 run given, not the 1 other DL3 file also "
        f"there ({other}); ctapipe-sst1m-dl3-index {directory} indexes every DL3 "
        "file of the directory"
    ]
    assert len(Table.read(directory / OBS_INDEX_FILE)) == 1

    # a run written again without its index: the summary says the indexes there
    # are older than the file
    code, stderr = run_in_process(DL3Tool(), [*argv, "--no-index"], tmp_path)
    assert code == 0, stderr[-3000:]
    rows = parse_summary(stderr, "ctapipe-sst1m-dl3:")
    assert rows["indexes"] == (
        "none written (--no-index); hdu-index.fits.gz and obs-index.fits.gz there are "
        f"older than this call's files: ctapipe-sst1m-dl3-index {directory.name} "
        "indexes every DL3 file there"
    )


def _partials(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


@pytest.mark.slow
def test_replacing_the_indexes_is_atomic(runs_apart, observed_dl2, tmp_path):
    """SIGKILL while the indexes are written leaves the earlier indexes or the new
    ones under the final names, complete, never a part of one."""
    first_id, second_id = observed_dl2
    first, second = sorted(runs_apart["dir"].glob("SST1M_obs_*"))
    caught = 0
    attempts = 3
    for attempt in range(attempts):
        directory = tmp_path / f"a{attempt}"
        directory.mkdir()
        shutil.copy(first, directory / first.name)
        assert index(directory)[0] == 0
        shutil.copy(second, directory / second.name)
        process = subprocess.Popen(
            [INDEX_SCRIPT, str(directory)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=tmp_path,
        )
        # kill as soon as an index is being written (its hidden file exists)
        while process.poll() is None and not _partials(directory):
            pass
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
        left = _partials(directory)
        caught += bool(left)
        for name in INDEXES:
            try:
                verify_fits_product(directory / name, kinds=(DL3_INDEX,))
            except ProductError as err:
                pytest.fail(f"attempt {attempt}: {err}")
        obs_ids = list(Table.read(directory / OBS_INDEX_FILE)["OBS_ID"])
        assert obs_ids in ([first_id], [first_id, second_id])
        # the HDU index is written first: every run listed has its HDUs
        assert set(obs_ids) <= set(Table.read(directory / HDU_INDEX_FILE)["OBS_ID"])
        DataStore.from_dir(directory).get_observations(required_irf=["aeff"])

        # the next run removes what the killed one left, and indexes both runs
        code, stderr = index(directory)
        assert code == 0, stderr[-3000:]
        removing = [w for w in warning_lines(stderr) if "removing" in w]
        assert len(removing) == len(left)
        assert _partials(directory) == []
        obs_ids = list(Table.read(directory / OBS_INDEX_FILE)["OBS_ID"])
        assert obs_ids == [first_id, second_id]
    # the kill came while an index was being written at least once: the
    # assertions above were put to the test
    assert caught >= 1, f"no kill during the writing in {attempts} attempts"
