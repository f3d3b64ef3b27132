"""
The decoder process: the same events as the in-process decode, its failures as
one-line refusals, no child left behind.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tables

from ctapipe_sst1m.core.resources import config_file
from ctapipe_sst1m.io import DigiCamFileError, SST1MEventSource
from ctapipe_sst1m.io.decoder_process import DecoderError, DecoderProcess
from ctapipe_sst1m.io.decoding import InProcessDecoder

from ..helpers import linked_copy

CONFIG = config_file("sst1m.yaml")
PROCESS = str(Path(sys.executable).parent / "ctapipe-process")


@pytest.fixture
def long_run(tmp_path, embedded_raw_file):
    """40 chunks of the real 32-event file: the child cannot finish it before
    the test acts on it (it runs at most 96 events ahead of the source)."""
    return [
        linked_copy(embedded_raw_file, tmp_path / f"SST1M2_20180822_0001.{i:03d}.fits.fz")
        for i in range(40)
    ]


def _alive(pid):
    """True if ``pid`` runs (a zombie, dead but not reaped, counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[-1][0] != "Z"
    except FileNotFoundError:
        return False


def _wait_dead(pid, seconds=5.0):
    deadline = time.monotonic() + seconds
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return not _alive(pid)


def _same(a, b):
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    return a == b


@pytest.mark.parametrize("with_trigger", [False, True])
def test_same_events_as_in_process(digicam_files, with_trigger):
    """Every field of every event of every real file, bit for bit."""
    paths = list(digicam_files.values())
    expected = list(InProcessDecoder(paths, with_trigger).events())
    decoder = DecoderProcess(paths, with_trigger=with_trigger, n_slots=4)
    got = list(decoder.events())
    assert len(got) == len(expected) == 143
    for (index, event), (expected_index, expected_event) in zip(
        got, expected, strict=True
    ):
        assert index == expected_index
        assert all(_same(a, b) for a, b in zip(event, expected_event, strict=True))
    assert not _alive(decoder.pid)


def test_digicam_config_through_the_child(digicam_files):
    fields = ["protocol_vers", "sn", "hv", "firmware_rev", "does_not_exist"]
    path = [digicam_files["dark_2018"]]
    expected = InProcessDecoder(path, config_fields=fields).digicam_config()
    decoder = DecoderProcess(path, config_fields=fields)
    try:
        got = decoder.digicam_config()
    finally:
        decoder.close()
    assert got.keys() == expected.keys() == set(fields) - {"does_not_exist"}
    assert all(_same(got[k], expected[k]) for k in got)


def test_killed_decoder_is_a_refusal_naming_file_and_event(long_run):
    with SST1MEventSource(long_run[0], allow_copied_chunks=True) as source:
        events = iter(source)
        next(events)
        pid = source._decoder.pid
        os.kill(pid, signal.SIGSEGV)
        with pytest.raises(DigiCamFileError) as err:
            list(events)
    message = str(err.value)
    assert message.split(": ")[0] in map(str, long_run)
    assert ": the raw-data decoder" in message
    assert "died (SIGSEGV" in message
    assert "at event" in message
    assert "\n" not in message


def test_memory_limit(embedded_raw_file):
    start = time.monotonic()
    with pytest.raises(DigiCamFileError, match=r"ran out of its 0\.25 GiB of memory"):
        SST1MEventSource(embedded_raw_file, decoder_memory_gib=0.25)
    assert time.monotonic() - start < 10


def test_stuck_decoder(long_run):
    with SST1MEventSource(
        long_run[0], decoder_timeout=1, allow_copied_chunks=True
    ) as source:
        pid = source._decoder.pid
        os.kill(pid, signal.SIGSTOP)
        with pytest.raises(DigiCamFileError, match="sent nothing for 1 s"):
            list(source)
    assert _wait_dead(pid)


def test_no_child_left(embedded_raw_file):
    """max_events, an exception in the consumer, closing: the child is gone."""
    with SST1MEventSource(embedded_raw_file, max_events=3) as source:
        pid = source._decoder.pid
        assert len(list(source)) == 3
    assert _wait_dead(pid)

    with SST1MEventSource(embedded_raw_file) as source:
        pid = source._decoder.pid
        with pytest.raises(RuntimeError, match="consumer"):
            for _ in source:
                raise RuntimeError("consumer failed")
    assert _wait_dead(pid)

    source = SST1MEventSource(embedded_raw_file)
    pid = source._decoder.pid
    source.close()
    assert _wait_dead(pid)


def test_child_dies_with_the_parent(embedded_raw_file):
    """A parent killed with SIGKILL (no cleanup at all) takes the child along,
    and a parent's process never imports protozfits."""
    script = (
        "import os, signal, sys\n"
        "from ctapipe_sst1m.io import SST1MEventSource\n"
        f"source = SST1MEventSource({str(embedded_raw_file)!r})\n"
        "next(iter(source))\n"
        "print(source._decoder.pid, 'protozfits' in sys.modules, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == -signal.SIGKILL, result.stderr
    pid, imported = result.stdout.split()
    assert imported == "False"
    assert _wait_dead(int(pid))


def test_ctrl_c_stops_the_tool_and_the_child(tmp_path, long_run):
    """SIGINT to the process group, as a terminal's Ctrl-C: the tool exits 130,
    the child (which ignores SIGINT) is killed by it."""
    process = subprocess.Popen(
        [
            PROCESS,
            f"--input={long_run[0]}",
            f"--output={tmp_path / 'run.dl1.h5'}",
            f"--config={CONFIG}",
            "--SST1MEventSource.allow_copied_chunks=True",
        ],
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        cwd=tmp_path,
    )
    children = []
    deadline = time.monotonic() + 60
    while not children and time.monotonic() < deadline:
        time.sleep(0.1)
        children = _children(process.pid)
    assert children, "no decoder process seen"
    time.sleep(1)
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr[-2000:]
    assert all(_wait_dead(pid) for pid in children)


def _children(pid):
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().split(") ")[-1].split()
        except FileNotFoundError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def test_python_error_in_the_child(tmp_path):
    missing = tmp_path / "missing.fits.fz"
    decoder = DecoderProcess([missing], n_slots=1)
    with pytest.raises(DecoderError) as err:
        list(decoder.events())
    assert str(err.value).startswith(f"{missing}: the raw-data decoder")
    assert "failed (" in str(err.value)
    assert "opening it" in str(err.value)


def _tables(path):
    """Every table of an HDF5 file, by path, as numpy structured arrays."""
    with tables.open_file(path) as h5:
        return {
            node._v_pathname: node.read()
            for node in h5.walk_nodes("/", classname="Table")
        }


@pytest.mark.slow
@pytest.mark.parametrize("key", ["science_2018", "dark_2018", "proto_10", "proto_100"])
def test_dl1_equal_to_in_process(tmp_path, digicam_files, key):
    """ctapipe-process with the decoder process and in-process: the same DL1,
    table by table, row by row (both runs in their own interpreter)."""
    outputs = {}
    for decoder in ("process", "in-process"):
        outputs[decoder] = tmp_path / f"{decoder}.dl1.h5"
        subprocess.run(
            [
                PROCESS,
                f"--input={digicam_files[key]}",
                f"--output={outputs[decoder]}",
                f"--config={CONFIG}",
                f"--SST1MEventSource.decoder={decoder}",
                "--DataWriter.write_dl1_images=True",
                "--DataWriter.write_r1_waveforms=True",
            ],
            check=True,
            capture_output=True,
            cwd=tmp_path,
            timeout=300,
        )
    process, in_process = (_tables(outputs[d]) for d in ("process", "in-process"))
    assert process.keys() == in_process.keys()
    assert any("images" in k for k in process)
    for key_, table in process.items():
        expected = in_process[key_]
        assert table.dtype == expected.dtype, key_
        for name in table.dtype.names:
            a, b = table[name], expected[name]
            if np.issubdtype(a.dtype, np.floating):
                assert np.array_equal(a, b, equal_nan=True), f"{key_}:{name}"
            else:
                assert np.array_equal(a, b), f"{key_}:{name}"
