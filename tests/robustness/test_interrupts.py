"""
Interrupting a tool (SIGINT, SIGTERM, SIGKILL) at any moment never leaves a
product that a package tool accepts: either the tool finished and its product
is complete, or what it left is refused.
"""

import signal
import subprocess
from pathlib import Path

import pytest
import tables

from ctapipe_sst1m.core.products import ProductError, verify_hdf5_product
from ctapipe_sst1m.core.resources import config_file

from .corpus import MERGE, PROCESS, interrupt

#: runs ctapipe tools on real or toy files (seconds to minutes each)
pytestmark = pytest.mark.slow

SST1M_YAML = config_file("sst1m.yaml")
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)


def written_events(path):
    """Events in a readable DL1 file (0 if unreadable or absent)."""
    try:
        with tables.open_file(path) as h5file:
            return h5file.root.dl1.event.subarray.trigger.nrows
    except Exception:
        return 0


def accepted(path):
    try:
        verify_hdf5_product(path)
    except ProductError:
        return False
    return True


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_ctapipe_process_interrupted(tmp_path, raw_dir, sig):
    """The 100-event real run, interrupted at several moments of its event loop."""
    raw = raw_dir / "example_100evts.fits.fz"
    outcomes = []
    for delay in (0.0, 0.3, 1.0):
        output = tmp_path / f"run_{delay}.dl1.h5"
        command = [
            PROCESS,
            f"--input={raw}",
            f"--output={output}",
            f"--config={SST1M_YAML}",
            "--no-progress",
        ]
        code, stderr = interrupt(command, output, sig, delay, tmp_path)
        if code == 0:
            assert accepted(output), stderr[-2000:]
            outcomes.append("finished")
            continue
        outcomes.append("interrupted")
        if output.exists() and accepted(output):
            # the signal came after the last event was written (the tool's last
            # milliseconds): the product is whole, every event in it
            mark = verify_hdf5_product(output, deep=True)
            assert mark.counts == {"written": 100}, (delay, stderr[-2000:])
            continue
        if sig == signal.SIGINT and written_events(output):
            # the tool went on to close the file: the log says it is not whole
            assert "INCOMPLETE" in stderr
    # at least one moment fell inside the run: the test tests something
    assert "interrupted" in outcomes, outcomes


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_merge_interrupted(tmp_path, dl1_pair, sig):
    outcomes = []
    for delay in (0.0, 0.1):
        output = tmp_path / f"stereo_{delay}.dl1.h5"
        command = [
            MERGE,
            str(dl1_pair[21]),
            str(dl1_pair[22]),
            f"--output={output}",
            "--method=SlidingWindow",
        ]
        code, stderr = interrupt(command, output, sig, delay, tmp_path)
        if code == 0:
            assert accepted(output)
            outcomes.append("finished")
        else:
            outcomes.append("interrupted")
            assert not output.exists(), stderr[-2000:]
        # a killed merge may leave its hidden file: the next run removes it
        leftovers = list(tmp_path.glob(f".{output.name}*"))
        if leftovers:
            assert sig == signal.SIGKILL or sig == signal.SIGTERM
            rerun = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
            assert rerun.returncode == 0, rerun.stderr[-2000:]
            assert "left by an earlier run that did not finish" in rerun.stderr
            assert not list(tmp_path.glob(f".{output.name}*"))
            assert accepted(output)
    assert Path(tmp_path).exists()
    assert outcomes
