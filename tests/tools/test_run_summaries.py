"""
What a user sees at the default log level: a progress bar with a total, and a
summary at the end of ctapipe-process and of the package's tools.
"""

import re
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest
from ctapipe.containers import EventType
from ctapipe.core import run_tool
from ctapipe.io import TableLoader
from ctapipe.tools.process import ProcessorTool

from ctapipe_sst1m.tools.merge_stereo import MergeStereoTool

from ..helpers import parse_summary

RESOURCES = files("ctapipe_sst1m") / "resources"
CONFIG = RESOURCES / "sst1m.yaml"
SUMMARY_TITLE = "SST1MEventSource summary"
#: Mrk 501, above the horizon of Ondrejov at the time of the 2018 file
TARGET = (
    "--SST1MEventSource.pointing_ra=253.4676",
    "--SST1MEventSource.pointing_dec=39.7602",
)


def _ctapipe_process(cwd, *args):
    """The installed ctapipe-process, as a user runs it; (exit code, stderr)."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ctapipe-process"), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return result.returncode, result.stderr


def _summary(stderr, title=SUMMARY_TITLE):
    return parse_summary(stderr, title)


def _survivors(path):
    """Images of shower events with parameters, counted with ctapipe's reader."""
    with TableLoader(path) as loader:
        events = loader.read_telescope_events(dl1_parameters=True)
    shower = events["event_type"] == EventType.SUBARRAY.value
    survived = np.asarray(events["morphology_n_pixels"]) > 0
    return int(np.count_nonzero(shower & survived)), int(np.count_nonzero(shower))


@pytest.mark.slow
def test_progress_total_and_summary(tmp_path, embedded_raw_file):
    output = tmp_path / "run.dl1.h5"
    code, stderr = _ctapipe_process(
        tmp_path,
        f"--input={embedded_raw_file}",
        f"--output={output}",
        f"--config={CONFIG}",
        "--progress",
        *TARGET,
    )
    assert code == 0, stderr
    # the progress bar knows the events of the file: a total and an ETA
    assert "32/32 [" in stderr
    assert re.search(r"\d+/32 \[\d\d:\d\d<\d\d:\d\d", stderr)
    rows = _summary(stderr)
    assert rows["input"] == (
        f"{embedded_raw_file.name}: tel 22, obs_id 201808220000, 32 events"
    )
    assert rows["output"] == "run.dl1.h5: 32 events written, marked complete"
    assert rows["events"] == "30 SUBARRAY, 2 SKY_PEDESTAL"
    survived, showers = _survivors(output)
    assert showers == 30
    assert rows["cleaning"] == (
        f"{survived} of 30 shower images survive ({100 * survived / 30:.0f} %)"
    )
    assert re.fullmatch(
        r"2 events; NSB voltage drop 0\.9\d\d \(global\)", rows["pedestals"]
    )
    assert rows["pointing"] == "RA 253.468 deg, Dec 39.760 deg (ICRS)"
    # the summary is no log line: no level, no time stamp
    assert "WARNING" not in "\n".join(rows.values())


@pytest.mark.slow
def test_progress_total_with_max_events(tmp_path, embedded_raw_file):
    code, stderr = _ctapipe_process(
        tmp_path,
        f"--input={embedded_raw_file}",
        f"--output={tmp_path / 'run.dl1.h5'}",
        "--progress",
        "--max-events=5",
    )
    assert code == 0, stderr
    assert "5/5 [" in stderr
    assert "/32 [" not in stderr
    rows = _summary(stderr)
    assert rows["output"] == "run.dl1.h5: 5 events written, marked complete"
    assert rows["left out"] == "27 not processed (max_events)"


@pytest.mark.slow
def test_summary_switched_off(tmp_path, embedded_raw_file, capsys):
    argv = [f"--input={embedded_raw_file}", "--max-events=2"]
    for n, extra in enumerate(("--SST1MEventSource.print_summary=False", "--quiet")):
        output = tmp_path / f"run{n}.dl1.h5"
        assert run_tool(ProcessorTool(), [*argv, f"--output={output}", extra]) == 0
        assert output.is_file()
        assert SUMMARY_TITLE not in capsys.readouterr().err
    # and on by default
    argv.append(f"--output={tmp_path / 'run.dl1.h5'}")
    assert run_tool(ProcessorTool(), argv) == 0
    assert SUMMARY_TITLE in capsys.readouterr().err


@pytest.mark.slow
def test_simulation_summary(tmp_path, shared_data):
    simtel = shared_data / "simtel/simtel_test_file.simtel.gz"
    output = tmp_path / "gamma.dl1.h5"
    code, stderr = _ctapipe_process(
        tmp_path,
        f"--input={simtel}",
        f"--output={output}",
        f"--config={RESOURCES / 'sst1m_mc.yaml'}",
        "--SST1MSimulationCorrections.pde_correction=0.9",
    )
    assert code == 0, stderr
    rows = _summary(stderr, "SST1MSimulationCorrections summary")
    assert re.fullmatch(
        r"simtel_test_file\.simtel\.gz: read to its end, complete \(\d+ objects\)",
        rows["input"],
    )
    assert rows["corrected"] == "9 events; charges divided by 0.9 (pde_correction): tel 1"
    assert rows["output"] == "gamma.dl1.h5: 9 events written, marked complete"
    survived, showers = _survivors(output)
    assert rows["cleaning"].startswith(f"{survived} of {showers} shower images survive")


@pytest.mark.slow
def test_merge_summary(tmp_path, embedded_raw_file, capsys):
    as_tel21 = tmp_path / "tel21.yaml"
    as_tel21.write_text("SST1MEventSource:\n  telescope_id_map: {22: 21}\n")
    common = [f"--input={embedded_raw_file}", f"--config={CONFIG}", *TARGET]
    dl1 = {
        tel_id: tmp_path / f"SST1M{tel_id - 20}_20180822_0001.dl1.h5"
        for tel_id in (21, 22)
    }
    assert (
        run_tool(
            ProcessorTool(), [*common, f"--config={as_tel21}", f"--output={dl1[21]}"]
        )
        == 0
    )
    assert run_tool(ProcessorTool(), [*common, f"--output={dl1[22]}"]) == 0
    capsys.readouterr()

    argv = [*map(str, dl1.values()), "--output=stereo.dl1.h5", "--method=SlidingWindow"]
    assert run_tool(MergeStereoTool(), argv, cwd=tmp_path) == 0
    rows = _summary(
        capsys.readouterr().err,
        "ctapipe-sst1m-merge-stereo: 32 events written to stereo.dl1.h5",
    )
    assert rows["paired"] == "32 events of both telescopes (SlidingWindow)"
    assert rows["tel 21"] == "32 events in 1 file, 32 paired; unpaired: none"
    assert rows["tel 22"] == "32 events in 1 file, 32 paired; unpaired: none"
