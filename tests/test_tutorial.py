"""The tutorial (docs/tutorial.rst) runs verbatim and gammapy finds the injected
spectrum in its DL3."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from gammapy.data import DataStore

from ctapipe_sst1m.tools.check import check_file

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "docs" / "tutorial" / "tutorial.sh"

RESULT = re.compile(
    r"index (?P<index>[\d.]+) \+- (?P<index_error>[\d.]+) .* = (?P<ratio>[\d.]+) "
    r"\+- (?P<ratio_error>[\d.]+) x injected"
)


@pytest.mark.slow
def test_tutorial_runs_to_a_gammapy_analysis(tmp_path):
    workdir = tmp_path / "tutorial"
    # as a user runs it: the package's scripts on the PATH (an activated venv)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    process = subprocess.run(
        ["bash", str(SCRIPT), str(workdir)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=900,
    )
    log = process.stdout + process.stderr
    assert process.returncode == 0, log[-4000:]
    assert "data store problems: none" in process.stdout

    # the products the docs and the gallery show are there and complete
    assert check_file(workdir / "real.dl1.h5").verdict == "OK"
    assert check_file(workdir / "irf" / "full_enclosure.fits.gz").verdict == "OK"
    store = DataStore.from_dir(workdir / "dl3")
    assert sorted(store.obs_table["OBS_ID"]) == [202403130001, 202403130002]

    # the injected E^-2 spectrum of the toy source comes back: within 3 sigma
    # and the IRFs' own statistical error (10000 simulated gammas: ~5 %)
    match = RESULT.search(process.stdout)
    assert match, process.stdout[-2000:]
    index, index_error, ratio, ratio_error = map(float, match.groups())
    assert abs(index - 2.0) < 3 * index_error + 0.1
    assert abs(ratio - 1.0) < 3 * ratio_error + 0.1
    # the progress bars of a terminal are not the only output: the steps show
    for step in range(1, 9):
        assert f"== {step}." in process.stdout
