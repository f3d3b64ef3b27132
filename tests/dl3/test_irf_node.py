"""The IRF node: header round trip and pointing differences."""

import numpy as np
from astropy.io import fits

from ctapipe_sst1m.dl3.irf_node import IrfNode, pointing_differences


def test_header_round_trip():
    node = IrfNode(alt=70.0, az=180.0, nsb="dark", fov_max=1.0)
    header = fits.Header()
    header.update(node.header_cards())
    assert header["ZEN_PNT"] == 20.0
    assert IrfNode.from_header(header) == node
    # stock ctapipe-compute-irf files record no node
    assert IrfNode.from_header(fits.Header()) is None


def test_azimuth_differences_wrap():
    zenith, azimuth = pointing_differences(
        np.array([70.0, 65.0, 70.0]), np.array([359.0, 10.0, 180.0]), 70.0, 5.0
    )
    np.testing.assert_allclose(zenith, [0.0, 5.0, 0.0])
    np.testing.assert_allclose(azimuth, [6.0, 5.0, 175.0])
