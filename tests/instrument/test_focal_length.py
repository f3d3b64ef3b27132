"""The focal length of SST-1M camera frames and the missing effective focal length
of older sim_telarray files."""

import astropy.units as u
import numpy as np
import pytest
from ctapipe.instrument import (
    FocalLengthKind,
    OpticsDescription,
    SubarrayDescription,
)
from ctapipe.io import SimTelEventSource

from ctapipe_sst1m.instrument import (
    SST1M_FOCAL_LENGTH_CHOICE,
    fill_effective_focal_length,
    focal_length_mismatches,
    is_sst1m_optics,
    load_sst1m_subarray,
    sst1m_focal_length,
    sst1m_optics,
)

OLD_SIMTEL = "simtel/simtel_test_file.simtel.gz"


def _old_simtel_subarray(shared_data):
    path = shared_data / OLD_SIMTEL
    if not path.is_file():
        pytest.skip(f"{path} not found")
    with SimTelEventSource(path, focal_length_choice="EQUIVALENT") as source:
        return source.subarray


def test_sst1m_focal_length_is_the_equivalent_one():
    optics = sst1m_optics()
    assert SST1M_FOCAL_LENGTH_CHOICE is FocalLengthKind.EQUIVALENT
    assert sst1m_focal_length() == optics.equivalent_focal_length
    assert sst1m_focal_length().to_value(u.m) == pytest.approx(5.600, abs=1e-6)
    assert optics.effective_focal_length.to_value(u.m) == pytest.approx(5.69705, abs=1e-5)
    for tel in load_sst1m_subarray().tel.values():
        assert tel.camera.geometry.frame.focal_length == sst1m_focal_length()


def test_mismatches():
    assert focal_length_mismatches(load_sst1m_subarray()) == {}


def test_mismatches_of_frames_with_the_effective_focal_length(tmp_path):
    path = tmp_path / "subarray.h5"
    load_sst1m_subarray().to_hdf(path)
    effective = SubarrayDescription.from_hdf(
        path, focal_length_choice=FocalLengthKind.EFFECTIVE
    )
    mismatches = focal_length_mismatches(effective)
    assert set(mismatches) == {21, 22}
    assert mismatches[21] == sst1m_optics().effective_focal_length


def test_fill_effective_focal_length_of_an_old_simulation(shared_data):
    subarray = _old_simtel_subarray(shared_data)
    optics = subarray.tel[1].optics
    assert np.isnan(optics.effective_focal_length)
    assert optics != sst1m_optics()
    assert is_sst1m_optics(optics)

    assert fill_effective_focal_length(subarray) == ([1], [])

    assert optics.effective_focal_length == sst1m_optics().effective_focal_length
    # now equal to the data's optics, as ctapipe compares them (model keys)
    assert optics == sst1m_optics()
    # the camera frame keeps the equivalent focal length
    assert subarray.tel[1].camera.geometry.frame.focal_length == sst1m_focal_length()
    # filled once
    assert fill_effective_focal_length(subarray) == ([], [])


def test_other_optics_left_alone(shared_data):
    subarray = _old_simtel_subarray(shared_data)
    reference = sst1m_optics()
    other = OpticsDescription(
        name=reference.name,
        size_type=reference.size_type,
        n_mirrors=reference.n_mirrors,
        equivalent_focal_length=5.0 * u.m,
        effective_focal_length=np.nan * u.m,
        mirror_area=reference.mirror_area,
        n_mirror_tiles=reference.n_mirror_tiles,
        reflector_shape=reference.reflector_shape,
    )
    assert not is_sst1m_optics(other)
    subarray.tel[1].optics = other

    assert fill_effective_focal_length(subarray) == ([], [1])
    assert np.isnan(other.effective_focal_length)
    # not SST-1M optics: their camera frame is none of this package's business
    assert focal_length_mismatches(subarray) == {}
