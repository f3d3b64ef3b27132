"""
The stereo chain with the shipped configurations and stock ctapipe tools:
toy DL1 -> energy and gamma/hadron models -> DL2 -> cuts -> IRFs.
"""

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from ctapipe.io import TableLoader

#: runs ctapipe tools on real or toy files (seconds to minutes each)
pytestmark = pytest.mark.slow


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
        # no background HDU rather than an all-zero one
        if "BACKGROUND" in names:
            assert np.max(hdus["BACKGROUND"].data["BKG"]) > 0
    for name in ("EFFECTIVE AREA", "ENERGY DISPERSION", "PSF"):
        assert name in names
    with fits.open(chain["cuts"]) as hdus:
        assert {"GH_CUTS", "RAD_MAX"} <= {hdu.name for hdu in hdus}

    resolution = Table.read(chain["benchmarks"], hdu="ENERGY BIAS RESOLUTION")[0]
    energy = np.sqrt(resolution["ENERG_LO"] * resolution["ENERG_HI"])
    core = (energy > 0.6) & (energy < 10) & (resolution["N_EVENTS"].ravel() >= 20)
    assert np.count_nonzero(core) >= 5
    # measured (after cuts, 83-218 events per bin): bias 0.00 - 0.18, median 0.07;
    # resolution 0.24 - 0.39, median 0.29 (toy energies fluctuate by 25 %)
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
    # measured: 68 % containment 0.12 - 0.19 deg, median 0.16 deg
    containment = np.ma.getdata(angular["ANGULAR_RESOLUTION_68"]).ravel()[core]
    assert np.median(containment) < 0.3
    assert np.max(containment) < 0.6
