"""
Shared fixtures.

Reference inputs (real DigiCam and sim_telarray files, sst1mpipe's outputs) live in
``../shared`` beside the repository and are never copied into it; tests that need
them skip with the reason when they are absent. The real DigiCam file shipped
inside protozfits is always available.
"""

from importlib.resources import files
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def _shared(relative):
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"{path} not found: reference inputs in ../shared are not available")
    return path


@pytest.fixture(scope="session")
def shared_data():
    """``../shared/data``: real input files."""
    return _shared("data")


@pytest.fixture(scope="session")
def shared_reference():
    """``../shared/reference``: sst1mpipe's outputs for real events."""
    return _shared("reference")


@pytest.fixture(scope="session")
def raw_dir(shared_data):
    """Directory of the real DigiCam (and negative-case) raw files."""
    return shared_data / "raw"


@pytest.fixture(scope="session")
def embedded_raw_file():
    """The real 2018 DigiCam file shipped inside every protozfits install (tel 22)."""
    path = files("protozfits") / "tests/resources/example_SST1M_20180822.fits.fz"
    path = Path(str(path))
    if not path.is_file():
        pytest.skip(f"{path} missing from the protozfits install")
    return path


@pytest.fixture(scope="session")
def digicam_files(raw_dir):
    """The four real DigiCam files: modern layout (Z4) and legacy ones (Z1-Z3)."""
    return {
        "science_2018": raw_dir / "example_SST1M_20180822.fits.fz",
        "dark_2018": raw_dir / "SST1M_01_20180822_001.fits.fz",
        "proto_10": raw_dir / "example_10evts.fits.fz",
        "proto_100": raw_dir / "example_100evts.fits.fz",
    }


@pytest.fixture(scope="session", autouse=True)
def _work_in_tmp_dir(tmp_path_factory):
    """Run the tests in a temporary directory: ctapipe Tools write their
    provenance logs into the directory they are created in."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path_factory.mktemp("cwd"))
        yield


@pytest.fixture(scope="session")
def browser():
    """A headless Chromium driven by Selenium (``tests/browser.py``), shared by the
    session; installed with apt-get when missing and run as root, else skipped."""
    # imported here: only the tests of HTML pages need selenium
    from .browser import start_browser

    driver = start_browser()
    yield driver
    driver.quit()
