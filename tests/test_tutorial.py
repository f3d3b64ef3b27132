"""The tutorial (docs/tutorial.rst) runs verbatim and gammapy finds the injected
spectrum in its DL3."""

import importlib.util
import re
from pathlib import Path

import pytest
from gammapy.data import DataStore

from ctapipe_sst1m.tools.check import check_file

REPO = Path(__file__).resolve().parents[1]
RUNNER = REPO / "docs" / "examples" / "tutorial_outputs.py"

RESULT = re.compile(
    r"index (?P<index>[\d.]+) \+- (?P<index_error>[\d.]+) .* = (?P<ratio>[\d.]+) "
    r"\+- (?P<ratio_error>[\d.]+) x injected"
)


def _tutorial_runner():
    """``docs/examples/tutorial_outputs.py``: runs the script once for the docs
    gallery and this test (it is not a package module)."""
    spec = importlib.util.spec_from_file_location("tutorial_outputs", RUNNER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.tutorial_outputs


@pytest.mark.slow
def test_tutorial_runs_to_a_gammapy_analysis():
    # ``bash docs/tutorial/tutorial.sh DIR`` with the package's scripts on the
    # PATH, as a user runs it; the docs build (run before the tests by the test
    # command) has usually run it already with the same script and package
    # sources, and its run is checked instead of repeating 3.5 minutes
    workdir = _tutorial_runner()()
    log = (workdir / "tutorial.log").read_text()
    assert "data store problems: none" in log, log[-4000:]

    # the products the docs and the gallery show are there and complete
    assert check_file(workdir / "real.dl1.h5").verdict == "OK"
    assert check_file(workdir / "irf" / "full_enclosure.fits.gz").verdict == "OK"
    store = DataStore.from_dir(workdir / "dl3")
    assert sorted(store.obs_table["OBS_ID"]) == [202403130001, 202403130002]

    # the injected E^-2 spectrum of the toy source comes back: within 3 sigma
    # and the IRFs' own statistical error (10000 simulated gammas: ~5 %)
    match = RESULT.search(log)
    assert match, log[-2000:]
    index, index_error, ratio, ratio_error = map(float, match.groups())
    assert abs(index - 2.0) < 3 * index_error + 0.1
    assert abs(ratio - 1.0) < 3 * ratio_error + 0.1
    # the progress bars of a terminal are not the only output: the steps show
    for step in range(1, 9):
        assert f"== {step}." in log
