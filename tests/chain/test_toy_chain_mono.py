"""
The mono chain (tel 21 alone) with the shipped mono configurations: energy,
disp direction and gammaness models -> cuts -> IRFs.
"""

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

#: runs ctapipe tools on real or toy files (seconds to minutes each)
pytestmark = pytest.mark.slow


def test_mono_irf(mono_chain):
    with fits.open(mono_chain["irf"]) as hdus:
        assert hdus[0].header["TELLIST"] == "21"
        assert hdus[0].header["GEOMREC"] == "disp"
        assert {"EFFECTIVE AREA", "ENERGY DISPERSION", "PSF"} <= {h.name for h in hdus}
    resolution = Table.read(mono_chain["benchmarks"], hdu="ENERGY BIAS RESOLUTION")[0]
    energy = np.sqrt(resolution["ENERG_LO"] * resolution["ENERG_HI"])
    core = (energy > 0.6) & (energy < 10) & (resolution["N_EVENTS"].ravel() >= 20)
    assert np.count_nonzero(core) >= 4
    spread = np.ma.getdata(resolution["RESOLUTION"]).ravel()[core]
    # measured: 0.22 - 0.47, median 0.38 (stereo: 0.28)
    assert np.median(spread) < 0.5
    angular = Table.read(mono_chain["benchmarks"], hdu="ANGULAR RESOLUTION")[0]
    energy = np.sqrt(angular["ENERG_LO"] * angular["ENERG_HI"])
    core = (energy > 0.3) & (energy < 3) & (angular["N_EVENTS"].ravel() >= 20)
    assert np.count_nonzero(core) >= 2
    containment = np.ma.getdata(angular["ANGULAR_RESOLUTION_68"]).ravel()[core]
    # measured: 68 % containment 0.23 - 0.34 deg (disp), median 0.30 deg
    assert np.median(containment) < 0.5
