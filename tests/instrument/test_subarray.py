"""
Tests of the SST-1M instrument description built from the shipped resource files.

The first tests need only the package; the comparisons with sst1mpipe's
``sst1m_array.h5`` and with a prod4 sim_telarray file skip when ``../shared/data``
is absent.
"""

import hashlib
import re
import shutil
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.table import Table
from ctapipe.instrument import (
    FocalLengthKind,
    SubarrayDescription,
    UnknownTelescopeID,
    guess_telescope,
)
from ctapipe.io import SimTelEventSource

from ctapipe_sst1m.core import resources as resources_module
from ctapipe_sst1m.instrument import (
    DIGICAM_N_CHANNELS,
    DIGICAM_N_PIXELS,
    DIGICAM_N_SAMPLES,
    DIGICAM_SAMPLING_RATE,
    SST1M_SUBARRAY_NAME,
    SST1M_TEL_IDS,
    SST1M_TELESCOPE_TYPE,
    add_telescope,
    load_sst1m_subarray,
    sst1m_telescope_description,
)
from ctapipe_sst1m.instrument import subarray as subarray_module

from ..helpers import assert_resources_generated

REPO = Path(__file__).resolve().parents[2]
GENERATOR = REPO / "scripts/make_instrument_resources.py"
RESOURCES = Path(str(resources_module.resource(resources_module.INSTRUMENT_DIR)))
RESOURCE_FILES = (
    "SST1M_layout.ecsv",
    "DigiCam.camgeom.ecsv",
    "DigiCam_tel021.readout.ecsv",
    "DigiCam_tel022.readout.ecsv",
)
H5 = "instrument/sst1m_array.h5"
PROD4 = (
    "simtel/gamma_20deg_0deg_run102___cta-prod4-sst-1m_desert-2150m-Paranal-sst-1m"
    ".simtel.zst"
)


def _input(shared_data, relative):
    path = shared_data / relative
    if not path.is_file():
        pytest.skip(f"{path} not found: reference input not available")
    return path


@pytest.fixture(scope="module")
def sst1mpipe_h5(shared_data):
    return _input(shared_data, H5)


@pytest.fixture(scope="module")
def sst1mpipe_subarray(sst1mpipe_h5):
    return SubarrayDescription.from_hdf(sst1mpipe_h5, focal_length_choice="EQUIVALENT")


@pytest.fixture(scope="module")
def prod4_subarray(shared_data):
    path = _input(shared_data, PROD4)
    with SimTelEventSource(path, focal_length_choice="EQUIVALENT") as source:
        return source.subarray


@pytest.fixture
def resource_dir(tmp_path, monkeypatch):
    """Make the loader read its resources from an empty directory."""

    def clear_caches():
        for cached in (
            subarray_module._layout,
            subarray_module._geometry,
            subarray_module._readout,
        ):
            cached.cache_clear()

    clear_caches()
    monkeypatch.setattr(resources_module, "RESOURCES", tmp_path)
    instrument = tmp_path / resources_module.INSTRUMENT_DIR
    instrument.mkdir()
    yield instrument
    clear_caches()


def assert_same_geometry(geometry, expected, atol=0 * u.m):
    """Pixel by pixel comparison, positions within ``atol``; returns max |diff|."""
    assert geometry.name == expected.name
    assert geometry.pix_type == expected.pix_type
    assert geometry.pix_rotation == expected.pix_rotation
    assert geometry.cam_rotation == expected.cam_rotation
    np.testing.assert_array_equal(geometry.pix_id, expected.pix_id)
    max_diff = max(
        np.max(np.abs(geometry.pix_x - expected.pix_x)),
        np.max(np.abs(geometry.pix_y - expected.pix_y)),
    )
    assert max_diff <= atol
    assert geometry.neighbors == expected.neighbors
    return max_diff


def assert_same_readout(readout, expected):
    """Exact comparison, pulse shape included."""
    assert readout.name == expected.name
    assert readout.sampling_rate == expected.sampling_rate
    assert readout.reference_pulse_sample_width == expected.reference_pulse_sample_width
    assert readout.n_channels == expected.n_channels
    assert readout.n_pixels == expected.n_pixels
    assert readout.n_samples == expected.n_samples
    assert readout.n_samples_long == expected.n_samples_long
    np.testing.assert_array_equal(
        readout.reference_pulse_shape, expected.reference_pulse_shape
    )


def assert_same_optics(optics, expected):
    assert optics == expected
    for name in optics.__slots__:
        assert getattr(optics, name) == getattr(expected, name), name


def test_subarray_from_resources_alone():
    """The package describes Ondřejov's two telescopes without any input file."""
    subarray = load_sst1m_subarray()

    assert subarray.name == SST1M_SUBARRAY_NAME
    assert tuple(subarray.tel_ids) == SST1M_TEL_IDS
    assert u.allclose(subarray.positions[21], [-71.38, -30.43, -1.43] * u.m, atol=0 * u.m)
    assert u.allclose(subarray.positions[22], [71.38, 30.43, 1.42] * u.m, atol=0 * u.m)
    location = subarray.reference_location.geodetic
    assert u.isclose(location.lon, 14.7825014 * u.deg, atol=1e-7 * u.deg)
    assert u.isclose(location.lat, 49.9124417 * u.deg, atol=1e-7 * u.deg)
    assert u.isclose(location.height, 511.195 * u.m, atol=1 * u.mm)

    for tel in subarray.tel.values():
        assert str(tel) == SST1M_TELESCOPE_TYPE
        assert tel.name == "1M"
        optics = tel.optics
        assert (optics.name, optics.size_type.value) == ("1M", "SST")
        assert optics.reflector_shape.value == "DAVIES_COTTON"
        assert (optics.n_mirrors, optics.n_mirror_tiles) == (1, 18)
        assert u.isclose(optics.mirror_area, 9.418 * u.m**2, atol=1e-3 * u.m**2)
        assert u.isclose(optics.equivalent_focal_length, 5.6 * u.m)
        assert u.isclose(optics.effective_focal_length, 5.697 * u.m, atol=1 * u.mm)

        geometry = tel.camera.geometry
        assert geometry.name == "DigiCam"
        assert geometry.n_pixels == DIGICAM_N_PIXELS
        assert geometry.pix_type.value == "hexagon"
        assert geometry.pix_rotation == 30 * u.deg
        assert geometry.cam_rotation == 0 * u.deg
        assert geometry.frame.focal_length == optics.equivalent_focal_length

        readout = tel.camera.readout
        assert readout.name == "DigiCam"
        assert readout.n_pixels == DIGICAM_N_PIXELS
        assert readout.n_samples == DIGICAM_N_SAMPLES
        assert readout.n_channels == DIGICAM_N_CHANNELS
        assert readout.sampling_rate == DIGICAM_SAMPLING_RATE
        assert readout.reference_pulse_shape.shape == (DIGICAM_N_CHANNELS, 1520)
        assert u.isclose(readout.reference_pulse_sample_width, 0.1 * u.ns)


def test_matches_sst1mpipe_h5(sst1mpipe_subarray):
    subarray = load_sst1m_subarray()

    assert subarray == sst1mpipe_subarray
    assert subarray.reference_location == sst1mpipe_subarray.reference_location
    for tel_id in SST1M_TEL_IDS:
        tel, expected = subarray.tel[tel_id], sst1mpipe_subarray.tel[tel_id]
        np.testing.assert_array_equal(
            subarray.positions[tel_id], sst1mpipe_subarray.positions[tel_id]
        )
        assert tel.name == expected.name
        assert_same_optics(tel.optics, expected.optics)
        assert_same_readout(tel.camera.readout, expected.camera.readout)
        assert_same_geometry(tel.camera.geometry, expected.camera.geometry)
        np.testing.assert_array_equal(
            tel.camera.geometry.pix_area, expected.camera.geometry.pix_area
        )
        assert tel.camera.geometry.frame.focal_length == (
            expected.camera.geometry.frame.focal_length
        )

    # sst1mpipe's figures are float32 numbers (from sim_telarray) stored as
    # float64: kept bit for bit, not rounded to 5.6 m
    optics = subarray.tel[21].optics
    assert optics.equivalent_focal_length.to_value(u.m) == np.float32(5.6)
    assert optics.equivalent_focal_length != 5.6 * u.m


@pytest.mark.slow
def test_matches_prod4_simtel(prod4_subarray):
    """
    The prod4 SST-1M telescopes have our DigiCam geometry and optics.

    Measured: identical pixel positions (max |diff| 0 m). What differs is the
    readout reference pulse: prod4 has 490 samples of 0.4 ns peaking at 14.8 ns,
    sst1mpipe's (per telescope) 1520 samples of 0.1 ns peaking at 28 ns.
    """
    ours = sst1m_telescope_description(22)

    assert prod4_subarray.n_tels == 70
    for tel_id, tel in prod4_subarray.tel.items():
        assert str(tel) == SST1M_TELESCOPE_TYPE, tel_id
        max_diff = assert_same_geometry(
            tel.camera.geometry, ours.camera.geometry, atol=1e-9 * u.m
        )
        assert max_diff == 0 * u.m, tel_id
        np.testing.assert_array_equal(
            tel.camera.geometry.pix_area, ours.camera.geometry.pix_area
        )
        assert tel.optics.equivalent_focal_length == ours.optics.equivalent_focal_length
        assert tel.optics.effective_focal_length == ours.optics.effective_focal_length
        assert tel.optics == ours.optics

        readout = tel.camera.readout
        assert readout != ours.camera.readout
        assert readout.reference_pulse_shape.shape == (1, 490)
        assert u.isclose(readout.reference_pulse_sample_width, 0.4 * u.ns)
        assert readout.sampling_rate == ours.camera.readout.sampling_rate
        assert readout.n_samples == ours.camera.readout.n_samples
        assert readout.n_channels == ours.camera.readout.n_channels


def test_telescopes_differ_only_in_readout():
    tel_21 = sst1m_telescope_description(21)
    tel_22 = sst1m_telescope_description(22)

    assert tel_21 != tel_22
    assert str(tel_21) == str(tel_22) == SST1M_TELESCOPE_TYPE
    assert tel_21.optics == tel_22.optics
    assert_same_geometry(tel_21.camera.geometry, tel_22.camera.geometry)
    assert tel_21.camera.readout != tel_22.camera.readout
    assert not np.array_equal(
        tel_21.camera.readout.reference_pulse_shape,
        tel_22.camera.readout.reference_pulse_shape,
    )
    for name in ("name", "sampling_rate", "n_channels", "n_pixels", "n_samples"):
        assert getattr(tel_21.camera.readout, name) == getattr(
            tel_22.camera.readout, name
        )

    guess = guess_telescope(DIGICAM_N_PIXELS, 5.6 * u.m)
    assert guess == guess_telescope(
        tel_21.camera.geometry.n_pixels,
        tel_21.optics.equivalent_focal_length,
        tel_21.optics.n_mirror_tiles,
    )
    assert guess.type == tel_21.optics.size_type.value
    assert guess.name == tel_21.optics.name
    assert guess.camera_name == tel_21.camera.name
    assert guess.n_mirrors == tel_21.optics.n_mirrors
    assert guess.reflector_shape == tel_21.optics.reflector_shape


def test_hdf_round_trip_effective_focal_length(tmp_path):
    subarray = load_sst1m_subarray()
    path = tmp_path / "subarray.h5"
    subarray.to_hdf(path)

    read = SubarrayDescription.from_hdf(
        path, focal_length_choice=FocalLengthKind.EFFECTIVE
    )

    assert read == subarray
    for tel_id in SST1M_TEL_IDS:
        tel, ours = read.tel[tel_id], subarray.tel[tel_id]
        focal_length = tel.camera.geometry.frame.focal_length
        assert not np.isnan(focal_length)
        assert focal_length == ours.optics.effective_focal_length
        assert (
            ours.camera.geometry.frame.focal_length == ours.optics.equivalent_focal_length
        )
        assert_same_optics(tel.optics, ours.optics)
        assert_same_readout(tel.camera.readout, ours.camera.readout)
        assert_same_geometry(tel.camera.geometry, ours.camera.geometry)


def test_select_telescopes():
    full = load_sst1m_subarray()
    subarray = load_sst1m_subarray([22])

    assert subarray.name == SST1M_SUBARRAY_NAME
    assert tuple(subarray.tel_ids) == (22,)
    assert subarray.tel[22] == full.tel[22]
    assert subarray.reference_location == full.reference_location
    with pytest.raises(UnknownTelescopeID, match="23"):
        load_sst1m_subarray([21, 23])
    with pytest.raises(UnknownTelescopeID, match="1 is not an SST-1M"):
        sst1m_telescope_description(1)


def test_tables_are_read_once():
    first, second = load_sst1m_subarray(), load_sst1m_subarray()

    assert first.tel[21].camera.geometry is second.tel[22].camera.geometry
    assert first.tel[21].camera.readout is second.tel[21].camera.readout
    # positions are copies: changing one subarray does not change the next
    first.positions[21][0] = 0 * u.m
    assert load_sst1m_subarray().positions[21][0] == -71.38 * u.m


def test_add_telescope():
    subarray = load_sst1m_subarray()

    extended = add_telescope(subarray, 1)

    assert tuple(extended.tel_ids) == (1, 21, 22)
    assert extended.name == subarray.name
    assert extended.reference_location == subarray.reference_location
    np.testing.assert_array_equal(extended.positions[1], [0, 0, 0] * u.m)
    assert extended.tel[1] == subarray.tel[22]
    assert_same_readout(extended.tel[1].camera.readout, subarray.tel[22].camera.readout)
    assert extended.tel[21] == subarray.tel[21]
    assert tuple(subarray.tel_ids) == SST1M_TEL_IDS

    like_21 = add_telescope(load_sst1m_subarray([22]), 2, template_tel_id=21)
    assert tuple(like_21.tel_ids) == (2, 22)
    assert_same_readout(like_21.tel[2].camera.readout, subarray.tel[21].camera.readout)

    with pytest.raises(ValueError, match="tel 21 is already in"):
        add_telescope(subarray, 21)
    with pytest.raises(UnknownTelescopeID):
        add_telescope(subarray, 1, template_tel_id=3)


def test_missing_resources(resource_dir):
    with pytest.raises(FileNotFoundError, match=r"SST1M_layout\.ecsv"):
        load_sst1m_subarray()

    shutil.copy(RESOURCES / "SST1M_layout.ecsv", resource_dir)
    with pytest.raises(FileNotFoundError, match=r"DigiCam\.camgeom\.ecsv"):
        load_sst1m_subarray()


@pytest.mark.parametrize(
    ("name", "damage", "match"),
    [
        ("DigiCam.camgeom.ecsv", lambda t: t.replace("PIX_TYPE", "PIXTYPE"), "PIX_TYPE"),
        ("DigiCam_tel022.readout.ecsv", lambda t: t.replace("0.25", "fast"), "fast"),
        ("SST1M_layout.ecsv", lambda t: t[:200], "yaml"),
    ],
)
def test_invalid_resources(resource_dir, name, damage, match):
    for resource in RESOURCE_FILES:
        shutil.copy(RESOURCES / resource, resource_dir)
    path = resource_dir / name
    path.write_text(damage(path.read_text()))

    with pytest.raises(OSError, match=rf"{re.escape(name)} is invalid.*{match}"):
        load_sst1m_subarray()


def test_resources_state_provenance(sst1mpipe_h5):
    sha256 = hashlib.sha256(sst1mpipe_h5.read_bytes()).hexdigest()
    for name in RESOURCE_FILES:
        provenance = Table.read(RESOURCES / name, format="ascii.ecsv").meta["provenance"]
        assert provenance["source"] == "sst1m_array.h5", name
        assert provenance["source_sha256"] == sha256, name
        assert provenance["generator"] == "scripts/make_instrument_resources.py", name
        assert provenance["date"], name


@pytest.mark.slow
def test_resources_are_generated(shared_data, sst1mpipe_h5, tmp_path):
    """The shipped files are what the generator writes (but for the date)."""
    assert_resources_generated(
        GENERATOR, shared_data, tmp_path, RESOURCES, RESOURCE_FILES
    )
