"""
Tests of the window transmittance, the pixel modules and the module swaps.

Expected values: sst1mpipe-reference.md §2.2, §3.7, §3.8 and §12.
"""

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
from astropy.io import ascii
from astropy.table import Table
from astropy.time import Time

from ctapipe_sst1m.calib import (
    default_window_factors,
    default_window_file,
    module_swap_permutation,
    pixel_modules,
    read_window_file,
    swapped_modules,
)
from ctapipe_sst1m.calib import window as window_module

from .test_gains import clear_resource_caches, redirect_resources

WINDOW_FILES = {21: "corr_factor_1st_wdw.txt", 22: "corr_factor_2nd_wdw.txt"}
#: documented (min, max) of the factors, to 3 decimals
WINDOW_RANGES = {21: (0.917, 1.020), 22: (0.950, 1.052)}
MODULE_59 = {1029, 1064, 1065, 1066, 1067, 1098, 1099, 1100, 1101, 1102, 1133, 1134}
MODULE_88 = {1103, 1135, 1136, 1137, 1138, 1165, 1166, 1167, 1168, 1169, 1194, 1195}


@pytest.fixture(scope="module")
def calibration_dir(shared_data):
    path = shared_data / "calibration"
    if not path.is_dir():
        pytest.skip(f"{path} not found: reference inputs not available")
    return path


@pytest.fixture
def resource_dir(tmp_path, monkeypatch):
    """Make the loaders read their resources from an empty directory."""
    yield redirect_resources(tmp_path, monkeypatch)
    clear_resource_caches()


@pytest.fixture(scope="module")
def pixel_map(shared_data):
    """sst1mpipe's DigiCam pixel map, read as sst1mpipe reads it."""
    path = shared_data / "instrument/digicam_pixels_mapping_V5T.txt"
    if not path.is_file():
        pytest.skip(f"{path} not found: reference inputs not available")
    return ascii.read(path)


def write_text(path, pixel_id, factors):
    lines = ["pixel_id\t correction_factor"]
    lines += [f"{i}\t {float(f)!r}" for i, f in zip(pixel_id, factors, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


def module_pixels(module):
    """Pixel ids of ``module`` ordered by their position in the module."""
    module_of_pixel, position = pixel_modules()
    pixels = np.flatnonzero(module_of_pixel == module)
    return pixels[np.argsort(position[pixels])]


@pytest.mark.parametrize("tel_id", [21, 22])
def test_default_windows_equal_sst1mpipe_files(calibration_dir, tel_id):
    path = calibration_dir / WINDOW_FILES[tel_id]
    pixel_id, expected = np.loadtxt(path, skiprows=1, unpack=True)
    np.testing.assert_array_equal(pixel_id, np.arange(1296))

    factors = default_window_factors(tel_id)
    read, sha256 = read_window_file(path)

    for values in (factors, read):
        assert values.dtype == np.float64
        np.testing.assert_array_equal(values.view(np.uint64), expected.view(np.uint64))
    assert sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("tel_id", [21, 22])
def test_window_ranges(tel_id):
    factors = default_window_factors(tel_id)

    low, high = WINDOW_RANGES[tel_id]
    assert round(factors.min(), 3) == low
    assert round(factors.max(), 3) == high
    assert abs(factors.mean() - 1) < 1e-3
    assert round(factors.std(), 3) == 0.020


def test_default_window_files():
    assert Path(str(default_window_file(21))).name == "window_1.ecsv"
    assert Path(str(default_window_file(22))).name == "window_2.ecsv"
    for tel_id, window in ((21, 1), (22, 2)):
        path = default_window_file(tel_id)
        meta = Table.read(path.read_text().splitlines(), format="ascii.ecsv").meta
        assert (meta["window"], meta["default_tel_id"]) == (window, tel_id)
        factors, sha256 = read_window_file(path)
        np.testing.assert_array_equal(factors, default_window_factors(tel_id))
        assert sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert not np.array_equal(default_window_factors(21), default_window_factors(22))
    with pytest.raises(ValueError, match="23 is not an SST-1M telescope"):
        default_window_file(23)


def test_default_window_cached_and_read_only():
    factors = default_window_factors(22)
    assert default_window_factors(22) is factors
    with pytest.raises(ValueError, match="read-only"):
        factors[0] = 1.0


def test_text_rows_in_any_order(tmp_path):
    factors = np.linspace(0.9, 1.1, 1296)
    order = np.random.default_rng(2).permutation(1296)
    path = write_text(tmp_path / "window.txt", order, factors[order])

    read, _ = read_window_file(path)

    np.testing.assert_array_equal(read, factors)


def test_ecsv_window(tmp_path):
    factors = np.linspace(0.9, 1.1, 1296)
    path = tmp_path / "window.ecsv"
    Table({"pixel_id": np.arange(1296)[::-1], "transmittance": factors[::-1]}).write(path)

    read, sha256 = read_window_file(str(path))

    np.testing.assert_array_equal(read, factors)
    assert sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_error_missing_window_file(tmp_path):
    path = tmp_path / "missing.txt"
    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        read_window_file(path)


def test_error_window_pixel_count(tmp_path):
    path = write_text(tmp_path / "short.txt", np.arange(1000), np.ones(1000))
    with pytest.raises(ValueError, match=r"short\.txt has 1000 pixels, DigiCam has 1296"):
        read_window_file(path)


@pytest.mark.parametrize("value", [0.0, -1.0, np.nan, np.inf])
def test_error_window_invalid_factor(tmp_path, value):
    factors = np.ones(1296)
    factors[[17, 400]] = value
    path = write_text(tmp_path / "invalid.txt", np.arange(1296), factors)
    with pytest.raises(
        ValueError, match=r"invalid\.txt: window factors must be finite.*\[17, 400\]"
    ):
        read_window_file(path)


@pytest.mark.parametrize(
    "content",
    [
        np.random.default_rng(0).bytes(2000),
        b"pixel_id factor\n0 1.0 2.0\n1 1.0 2.0\n",
        b"pixel_id factor\n0 one\n",
    ],
)
def test_error_window_not_a_table(tmp_path, content):
    path = tmp_path / "garbage.txt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"garbage\.txt"):
        read_window_file(path)


def test_error_window_ecsv_without_column(tmp_path):
    path = tmp_path / "window.ecsv"
    Table({"pixel_id": np.arange(1296), "factor": np.ones(1296)}).write(path)
    with pytest.raises(ValueError, match=r"window\.ecsv has no column transmittance"):
        read_window_file(path)


def test_pixel_modules(pixel_map):
    module, position = pixel_modules()

    assert module.shape == position.shape == (1296,)
    np.testing.assert_array_equal(np.bincount(module), [0] + [12] * 108)
    for m in range(1, 109):
        assert sorted(position[module == m]) == list(range(1, 13))
    pixel_map.sort("pixel_sw_id")
    np.testing.assert_array_equal(module, pixel_map["module"])
    np.testing.assert_array_equal(position, pixel_map["pixel_hw_id"])
    assert set(np.flatnonzero(module == 59)) == MODULE_59
    assert set(np.flatnonzero(module == 88)) == MODULE_88
    assert pixel_modules() is pixel_modules()
    with pytest.raises(ValueError, match="read-only"):
        module[0] = 1


def test_pixel_map_header(pixel_map):
    """The commented header line (tabs and spaces) parses to the 40 names."""
    assert len(pixel_map.colnames) == 40
    assert pixel_map.colnames[:9] == [
        "can_master",
        "can_node",
        "module",
        "micro_crate",
        "fadc_board",
        "fadc_quad",
        "fadc_chan",
        "pixel_hw_id",
        "pixel_sw_id",
    ]


@pytest.mark.parametrize(
    ("tel_id", "time", "expected"),
    [
        (22, "2024-01-01", [(59, 88)]),
        (22, "2024-08-01", []),
        (22, "2023-08-31T23:59:59.999", []),
        (22, "2023-09-01T00:00:00", [(59, 88)]),
        (22, "2024-07-17T23:59:59.999", [(59, 88)]),
        (22, "2024-07-18T00:00:00", []),
        (22, "2026-01-01", []),
        (21, "2026-01-01", [(8, 9)]),
        (21, "2025-12-17T11:59:59", []),
        (21, "2026-01-15T12:00:00", []),
        (21, "2024-01-01", []),
    ],
)
def test_swapped_modules(tel_id, time, expected):
    assert swapped_modules(tel_id, Time(time, scale="utc")) == expected


def test_swapped_modules_time_scale():
    """The interval is UTC: a TAI time is compared as the same instant."""
    start = Time("2023-09-01T00:00:00", scale="utc")
    assert swapped_modules(22, start.tai) == [(59, 88)]
    assert swapped_modules(22, Time("2023-09-01T00:00:30", scale="tai")) == []


def test_swapped_modules_errors():
    with pytest.raises(ValueError, match="scalar astropy Time"):
        swapped_modules(22, "2024-01-01")
    with pytest.raises(ValueError, match="scalar astropy Time"):
        swapped_modules(22, Time(["2024-01-01", "2024-01-02"]))
    with pytest.raises(ValueError, match="2 is not an SST-1M telescope"):
        swapped_modules(2, Time("2024-01-01"))


def test_no_permutation_without_swap():
    assert module_swap_permutation(22, Time("2024-08-01")) is None
    assert module_swap_permutation(21, Time("2024-01-01")) is None


@pytest.mark.parametrize(
    ("tel_id", "time", "modules"),
    [(22, "2024-01-01", (59, 88)), (21, "2026-01-01", (8, 9))],
)
def test_permutation(tel_id, time, modules):
    module_1, module_2 = modules
    module, position = pixel_modules()
    perm = module_swap_permutation(tel_id, Time(time))

    assert perm.dtype.kind == "i"
    np.testing.assert_array_equal(np.sort(perm), np.arange(1296))
    np.testing.assert_array_equal(perm[perm], np.arange(1296))
    moved = np.flatnonzero(perm != np.arange(1296))
    assert set(moved) == set(np.flatnonzero(np.isin(module, modules)))
    pixels_1 = np.flatnonzero(module == module_1)
    np.testing.assert_array_equal(module[perm[pixels_1]], module_2)
    np.testing.assert_array_equal(position[perm[pixels_1]], position[pixels_1])

    # what was recorded in module_1 is, physically, in module_2 at the same place
    recorded = np.arange(1296) * 10.0
    physical = recorded[perm]
    for k in range(12):
        pixel_1 = module_pixels(module_1)[k]
        pixel_2 = module_pixels(module_2)[k]
        assert physical[pixel_2] == recorded[pixel_1]
        assert physical[pixel_1] == recorded[pixel_2]


def test_permutation_cached_and_read_only():
    perm = module_swap_permutation(22, Time("2024-01-01"))
    assert module_swap_permutation(22, Time("2024-02-01")) is perm
    with pytest.raises(ValueError, match="read-only"):
        perm[0] = 1


@pytest.mark.parametrize(("module_1", "module_2"), [(59, 88), (8, 9)])
def test_real_swaps_pair_like_ascending_ids(module_1, module_2):
    """
    For the two real swaps, pairing by position equals sst1mpipe's pairing.

    sst1mpipe pairs the pixels of the two modules by ascending pixel id. The
    camera has three sectors whose modules are rotated by 120 degrees from each
    other, so ascending ids pair pixels at different positions when the modules
    are in different sectors. 59 and 88, and 8 and 9, are in the same sector:
    0 of their 24 pixels are paired differently and sst1mpipe's result is right.
    """
    module, _ = pixel_modules()
    ascending = np.arange(1296)
    pixels_1 = np.flatnonzero(module == module_1)
    pixels_2 = np.flatnonzero(module == module_2)
    ascending[pixels_1], ascending[pixels_2] = pixels_2, pixels_1

    perm = window_module._swap_permutation(((module_1, module_2),))

    assert np.count_nonzero(perm != ascending) == 0
    np.testing.assert_array_equal(perm, ascending)


def test_ascending_ids_pair_wrongly_across_sectors(pixel_map):
    """Where ascending-id pairing differs: modules of different sectors."""
    module, position = pixel_modules()
    sector = dict(zip(pixel_map["module"], pixel_map["micro_crate"], strict=True))
    assert sector[59] == sector[88] == sector[8] == sector[9]
    other = next(m for m in range(1, 109) if sector[m] != sector[59])

    pixels_1 = np.flatnonzero(module == 59)
    pixels_2 = np.flatnonzero(module == other)
    perm = window_module._swap_permutation(((59, other),))

    paired_by_id = dict(zip(pixels_1, pixels_2, strict=True))
    differ = sum(perm[pixel] != paired_by_id[pixel] for pixel in pixels_1)
    assert differ > 0
    np.testing.assert_array_equal(position[perm[pixels_1]], position[pixels_1])


def test_overlapping_swaps_rejected():
    with pytest.raises(ValueError, match="share a module"):
        window_module._swap_permutation(((59, 88), (88, 3)))


def test_missing_swap_resources(resource_dir):
    with pytest.raises(FileNotFoundError, match=r"swapped_modules\.ecsv not found"):
        swapped_modules(22, Time("2024-01-01"))
    with pytest.raises(FileNotFoundError, match=r"pixel_modules\.ecsv not found"):
        pixel_modules()
    with pytest.raises(FileNotFoundError, match=r"window_2\.ecsv not found"):
        default_window_factors(22)


def test_invalid_swap_resource(resource_dir):
    Table(
        {
            "tel_id": [22],
            "start": ["2024-07-18T00:00:00"],
            "stop": ["2023-09-01T00:00:00"],
            "module_1": [59],
            "module_2": [88],
        }
    ).write(resource_dir / "swapped_modules.ecsv")
    with pytest.raises(OSError, match=r"swapped_modules\.ecsv is invalid.*stops before"):
        swapped_modules(22, Time("2024-01-01"))
