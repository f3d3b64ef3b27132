"""
The stereo chain with the shipped configurations and stock ctapipe tools:
toy DL1 -> energy and gamma/hadron models -> DL2 -> cuts -> IRFs.
"""

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from ctapipe.core import run_tool
from ctapipe.io import TableLoader
from ctapipe.tools.apply_models import ApplyModels
from ctapipe.tools.compute_irf import IrfTool
from ctapipe.tools.optimize_event_selection import EventSelectionOptimizer
from ctapipe.tools.train_energy_regressor import TrainEnergyRegressor
from ctapipe.tools.train_particle_classifier import TrainParticleClassifier

from .conftest import RESOURCES


def _run(tool, tmp_path, *argv):
    assert run_tool(tool, argv=[str(a) for a in argv], cwd=tmp_path, raises=True) == 0


@pytest.fixture(scope="module")
def chain(tmp_path_factory, toy_dl2):
    """Train, apply, optimise cuts and compute IRFs; return the outputs."""
    tmp = tmp_path_factory.mktemp("chain")
    config = lambda name: f"--config={RESOURCES / name}"  # noqa: E731
    energy = tmp / "energy.pkl"
    _run(
        TrainEnergyRegressor(),
        tmp,
        config("sst1m_train_energy.yaml"),
        f"--input={toy_dl2['gamma_energy']}",
        f"--output={energy}",
    )
    with_energy = {}
    for name in ("gamma_classifier", "proton_classifier", "gamma_test", "proton_test"):
        with_energy[name] = tmp / f"{name}.energy.h5"
        _run(
            ApplyModels(),
            tmp,
            f"--input={toy_dl2[name]}",
            f"--reconstructor={energy}",
            f"--output={with_energy[name]}",
        )
    classifier = tmp / "classifier.pkl"
    _run(
        TrainParticleClassifier(),
        tmp,
        config("sst1m_train_classifier.yaml"),
        f"--signal={with_energy['gamma_classifier']}",
        f"--background={with_energy['proton_classifier']}",
        f"--output={classifier}",
    )
    dl2 = {}
    for name in ("gamma_test", "proton_test"):
        dl2[name] = tmp / f"{name}.dl2.h5"
        _run(
            ApplyModels(),
            tmp,
            f"--input={with_energy[name]}",
            f"--reconstructor={classifier}",
            f"--output={dl2[name]}",
        )
    cuts = tmp / "cuts.fits"
    _run(
        EventSelectionOptimizer(),
        tmp,
        config("sst1m_optimize_cuts.yaml"),
        f"--gamma-file={dl2['gamma_test']}",
        f"--proton-file={dl2['proton_test']}",
        f"--output={cuts}",
    )
    irf, benchmarks = tmp / "irf.fits.gz", tmp / "benchmarks.fits.gz"
    _run(
        IrfTool(),
        tmp,
        config("sst1m_irf.yaml"),
        config("sst1m_irf_point_like.yaml"),
        f"--cuts={cuts}",
        f"--gamma-file={dl2['gamma_test']}",
        f"--proton-file={dl2['proton_test']}",
        f"--output={irf}",
        f"--benchmark-output={benchmarks}",
    )
    return dict(dl2=dl2, cuts=cuts, irf=irf, benchmarks=benchmarks)


def test_models_are_applied(chain):
    """Both models predict for every telescope type (tel 21 and 22 differ)."""
    with TableLoader(chain["dl2"]["gamma_test"]) as loader:
        events = loader.read_subarray_events(dl2=True, simulated=True)
        tel_events = loader.read_telescope_events(dl2=True)
    stereo = events["HillasReconstructor_is_valid"]
    assert np.count_nonzero(stereo) > 300
    for prefix in ("RandomForestRegressor", "RandomForestClassifier"):
        # valid wherever the stereo geometry is (but for the quality cuts)
        valid = events[f"{prefix}_is_valid"]
        assert np.count_nonzero(valid & stereo) > 0.8 * np.count_nonzero(stereo)
        assert not np.any(valid & ~stereo)
        for tel_id in (21, 22):
            mine = tel_events[tel_events["tel_id"] == tel_id]
            assert np.count_nonzero(mine[f"{prefix}_tel_is_valid"]) > 100
    valid = events["RandomForestClassifier_is_valid"]
    with TableLoader(chain["dl2"]["proton_test"]) as loader:
        protons = loader.read_subarray_events(dl2=True)
    proton_valid = protons["RandomForestClassifier_is_valid"]
    # the classifier separates the toy gammas from the toy protons
    gammaness = np.median(events["RandomForestClassifier_prediction"][valid])
    protonness = np.median(protons["RandomForestClassifier_prediction"][proton_valid])
    assert gammaness > 0.7
    assert protonness < 0.3


def test_irf_and_benchmarks(chain):
    """The IRF file has every HDU, and the toy's resolutions are as expected."""
    with fits.open(chain["irf"]) as hdus:
        names = [hdu.name for hdu in hdus]
    for name in ("EFFECTIVE AREA", "ENERGY DISPERSION", "PSF", "BACKGROUND"):
        assert name in names
    with fits.open(chain["cuts"]) as hdus:
        assert {"GH_CUTS", "RAD_MAX"} <= {hdu.name for hdu in hdus}

    resolution = Table.read(chain["benchmarks"], hdu="ENERGY BIAS RESOLUTION")[0]
    energy = np.sqrt(resolution["ENERG_LO"] * resolution["ENERG_HI"])
    core = (energy > 0.6) & (energy < 10) & (resolution["N_EVENTS"].ravel() >= 20)
    assert np.count_nonzero(core) >= 5
    # measured (after cuts, 20-51 events per bin): bias 0.05 - 0.36, median 0.06;
    # resolution 0.22 - 0.36, median 0.28 (toy energies fluctuate by 25 %)
    bias = np.abs(np.ma.getdata(resolution["BIAS"]).ravel()[core])
    spread = np.ma.getdata(resolution["RESOLUTION"]).ravel()[core]
    assert np.median(bias) < 0.2
    assert np.max(bias) < 0.5
    assert np.median(spread) < 0.4
    assert np.max(spread) < 0.5

    angular = Table.read(chain["benchmarks"], hdu="ANGULAR RESOLUTION")[0]
    energy = np.sqrt(angular["ENERG_LO"] * angular["ENERG_HI"])
    core = (energy > 0.3) & (energy < 3) & (angular["N_EVENTS"].ravel() >= 20)
    assert np.count_nonzero(core) >= 3
    # measured: 68 % containment 0.17 - 0.40 deg, median 0.18 deg
    containment = np.ma.getdata(angular["ANGULAR_RESOLUTION_68"]).ravel()[core]
    assert np.median(containment) < 0.3
    assert np.max(containment) < 0.6
