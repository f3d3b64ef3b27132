"""
Tests of the gain tables: sst1mpipe's pandas HDF5 files and the shipped ECSV.

The expected values are sst1mpipe-reference.md §3.3 and §12. The comparisons read
sst1mpipe's files with a minimal PyTables reader of their own, so that a bug of
``read_gain_file`` cannot hide itself.
"""

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
import tables
from astropy.table import Table

from ctapipe_sst1m.calib import (
    GainTable,
    default_gain_table,
    read_gain_columns,
    read_gain_file,
    telescope_of_file,
)
from ctapipe_sst1m.calib import gains as gains_module
from ctapipe_sst1m.calib import window as window_module
from ctapipe_sst1m.core import resources as resources_module

from ..helpers import assert_resources_generated

REPO = Path(__file__).resolve().parents[2]
GENERATOR = REPO / "scripts/make_calibration_resources.py"
RESOURCES = Path(str(resources_module.resource(resources_module.CALIBRATION_DIR)))
RESOURCE_FILES = (
    "gains_tel021.ecsv",
    "gains_tel022.ecsv",
    "mc_pde_correction_factors.ecsv",
    "pixel_modules.ecsv",
    "swapped_modules.ecsv",
    "window_1.ecsv",
    "window_2.ecsv",
)
AVERAGED = {
    21: "averaged_calib_param_v2_2023_2024_tel1.h5",
    22: "averaged_calib_param_v2_2023_2024_tel2.h5",
}
#: per-night dark-run fits: telescope, pixels with calib_flag != 1
PER_NIGHT = {
    "20220324_0008_0009_Tel2_fitted_parameters.h5": (22, 324),
    "20230228_0112_0115_Tel1_fitted_parameters.h5": (21, 2),
    "20230302_0136_0137_Tel1_fitted_parameters.h5": (21, 42),
    "20230302_0194_0195_Tel2_fitted_parameters.h5": (22, 219),
    "20230322_0248_0249_Tel1_fitted_parameters.h5": (21, 38),
    "20230322_0285_0286_Tel2_fitted_parameters.h5": (22, 260),
    "20230708_0316_0317_Tel1_fitted_parameters.h5": (21, 36),
    "20230917_0528_0529_Tel1_fitted_parameters.h5": (21, 37),
    "20230921_0149_0150_Tel2_fitted_parameters.h5": (22, 191),
}


@pytest.fixture(scope="module")
def calibration_dir(shared_data):
    path = shared_data / "calibration"
    if not path.is_dir():
        pytest.skip(f"{path} not found: reference inputs not available")
    return path


def read_frame(path):
    """All the columns of the single frame of a pandas fixed HDF5 file, by name."""
    with tables.open_file(path) as h5file:
        (frame,) = h5file.root
        columns = {}
        for block in range(frame._v_attrs.nblocks):
            items = frame[f"block{block}_items"].read().astype(str)
            values = frame[f"block{block}_values"].read()
            columns.update(zip(items, values.T, strict=True))
        return columns


def write_frame(path, columns, key="df_param", blocks=None, transposed=True):
    """
    Write ``columns`` (name -> 1-D array) as pandas writes a fixed frame.

    ``blocks`` lists the column names of each block (default: one per column).
    """
    blocks = blocks or [[name] for name in columns]
    n_rows = len(next(iter(columns.values())))
    with tables.open_file(path, "w") as h5file:
        group = h5file.create_group("/", key)
        for name, value in {
            "pandas_type": "frame",
            "pandas_version": "0.15.2",
            "ndim": 2,
            "nblocks": len(blocks),
        }.items():
            group._v_attrs[name] = value
        h5file.create_array(group, "axis0", np.array(list(columns), dtype="S"))
        h5file.create_array(group, "axis1", np.arange(n_rows))
        for i, items in enumerate(blocks):
            h5file.create_array(group, f"block{i}_items", np.array(items, dtype="S"))
            values = np.stack([columns[name] for name in items], axis=1)
            array = h5file.create_array(
                group, f"block{i}_values", values if transposed else values.T
            )
            array.attrs.transposed = transposed
    return path


def write_ecsv(path, **columns):
    Table(columns).write(path, format="ascii.ecsv")
    return path


def assert_same_floats(actual, expected):
    """Equal float64 values bit for bit, NaN at the same places."""
    assert actual.dtype == expected.dtype == np.float64
    nan = np.isnan(expected)
    np.testing.assert_array_equal(np.isnan(actual), nan)
    np.testing.assert_array_equal(
        actual[~nan].view(np.uint64), expected[~nan].view(np.uint64)
    )


def good_columns(n_pixels=1296):
    rng = np.random.default_rng(0)
    return {
        "pixel_id": np.arange(n_pixels),
        "dc_to_pe": rng.uniform(20, 28, n_pixels),
        "calib_flag": np.ones(n_pixels),
    }


def clear_resource_caches():
    for cached in (
        gains_module.default_gain_table,
        window_module.default_window_factors,
        window_module.pixel_modules,
        window_module._swaps,
        window_module._swap_permutation,
    ):
        cached.cache_clear()


def redirect_resources(tmp_path, monkeypatch):
    """
    Make the loaders read their resources under an empty ``tmp_path``; return
    the directory of the calibration tables there.
    """
    clear_resource_caches()
    monkeypatch.setattr(resources_module, "RESOURCES", tmp_path)
    calibration = tmp_path / resources_module.CALIBRATION_DIR
    calibration.mkdir()
    return calibration


@pytest.fixture
def resource_dir(tmp_path, monkeypatch):
    """Make the loaders read their resources from an empty directory."""
    yield redirect_resources(tmp_path, monkeypatch)
    clear_resource_caches()


@pytest.mark.parametrize("tel_id", [21, 22])
def test_default_gains_equal_averaged_files(calibration_dir, tel_id):
    """The shipped gains are sst1mpipe's default file, bit for bit."""
    source = read_frame(calibration_dir / AVERAGED[tel_id])
    gains = default_gain_table(tel_id)

    # the averaged files are ordered by pixel id (their pixel_id is NaN where
    # dc_to_pe is: the frame index gives it)
    nan_ids = np.isnan(source["pixel_id"])
    np.testing.assert_array_equal(nan_ids, np.isnan(source["dc_to_pe"]))
    np.testing.assert_array_equal(source["pixel_id"][~nan_ids], np.arange(1296)[~nan_ids])

    assert_same_floats(gains.dc_to_pe, source["dc_to_pe"])
    np.testing.assert_array_equal(gains.bad, source["calib_flag"] != 1)
    shipped = Table.read(RESOURCES / f"gains_tel0{tel_id}.ecsv", format="ascii.ecsv")
    np.testing.assert_array_equal(shipped["pixel_id"], np.arange(1296))
    assert_same_floats(shipped["calib_flag"].data, source["calib_flag"].astype(float))
    assert shipped.meta["tel_id"] == tel_id

    assert gains.source == f"ctapipe_sst1m default gains_tel0{tel_id}.ecsv"
    resource_bytes = (RESOURCES / f"gains_tel0{tel_id}.ecsv").read_bytes()
    assert gains.sha256 == hashlib.sha256(resource_bytes).hexdigest()

    from_h5 = read_gain_file(calibration_dir / AVERAGED[tel_id])
    assert_same_floats(from_h5.dc_to_pe, gains.dc_to_pe)
    np.testing.assert_array_equal(from_h5.bad, gains.bad)
    assert from_h5.source == str(calibration_dir / AVERAGED[tel_id])


def test_default_gain_numbers():
    """sst1mpipe-reference.md §3.3: bad pixels and dc_to_pe medians."""
    tel_21, tel_22 = default_gain_table(21), default_gain_table(22)

    assert set(np.flatnonzero(tel_21.bad)) == {162, 320, 332, 489, 958}
    assert tel_22.bad.sum() == 21
    assert np.flatnonzero(np.isnan(tel_21.dc_to_pe)).tolist() == [489]
    assert np.isnan(tel_22.dc_to_pe).sum() == 8
    assert round(np.nanmedian(tel_21.dc_to_pe), 2) == 23.61
    assert round(np.nanmedian(tel_22.dc_to_pe), 2) == 26.80
    for gains in (tel_21, tel_22):
        assert isinstance(gains, GainTable)
        assert gains.dc_to_pe.shape == gains.bad.shape == (1296,)
        assert np.all(gains.dc_to_pe[~gains.bad] > 15)


def test_default_gains_cached_and_read_only():
    gains = default_gain_table(21)

    assert default_gain_table(21) is gains
    with pytest.raises(ValueError, match="read-only"):
        gains.dc_to_pe[0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        gains.bad[0] = True
    with pytest.raises(ValueError, match="23 is not an SST-1M telescope"):
        default_gain_table(23)
    with pytest.raises(ValueError, match="1 is not an SST-1M telescope"):
        default_gain_table(1)


def test_all_per_night_files_listed(calibration_dir):
    found = {path.name for path in calibration_dir.glob("*_fitted_parameters.h5")}
    assert found == set(PER_NIGHT)


@pytest.mark.parametrize(("name", "expected"), PER_NIGHT.items())
def test_per_night_files(calibration_dir, name, expected):
    tel_id, n_bad = expected
    path = calibration_dir / name
    source = read_frame(path)

    gains = read_gain_file(path)

    assert telescope_of_file(path) == tel_id
    np.testing.assert_array_equal(source["pixel_id"], np.arange(1296))
    assert gains.bad.sum() == n_bad
    np.testing.assert_array_equal(gains.bad, source["calib_flag"] != 1)
    assert_same_floats(gains.dc_to_pe, source["dc_to_pe"])
    assert gains.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    # calib_flag is kept as written: int in the two oldest files, 0 / 0.5 / 1
    table, _ = read_gain_columns(path)
    np.testing.assert_array_equal(table["calib_flag"], source["calib_flag"])
    assert set(np.unique(table["calib_flag"])) <= {0.0, 0.5, 1.0}


def test_per_night_block_layouts_differ(calibration_dir):
    """The files split their columns into blocks differently; all are read."""
    layouts = set()
    for name in PER_NIGHT:
        with tables.open_file(calibration_dir / name) as h5file:
            frame = h5file.root.df_param
            layouts.add(
                tuple(
                    tuple(frame[f"block{i}_items"].read().astype(str))
                    for i in range(frame._v_attrs.nblocks)
                )
            )
    assert len(layouts) == 2


@pytest.mark.parametrize(
    ("name", "tel_id"),
    [
        ("20230302_0194_0195_Tel2_fitted_parameters.h5", 22),
        ("averaged_calib_param_v2_2023_2024_tel1.h5", 21),
        ("/data/tel2/gains_Tel_01.h5", 21),
        ("gains_tel02.ecsv", 22),
        ("tel1.h5", 21),
        ("gains_tel021.ecsv", 21),
        ("gains_tel_22.ecsv", 22),
        ("gains_tel012.ecsv", None),
        ("hotel1.h5", None),
        ("tel12_gains.h5", None),
        ("Tel3_gains.h5", None),
        ("gains_tel1_tel2.h5", None),
        ("gains.h5", None),
    ],
)
def test_telescope_of_file(name, tel_id):
    assert telescope_of_file(name) == tel_id
    assert telescope_of_file(Path(name)) == tel_id


def test_read_frame_any_block_split(tmp_path):
    """Columns in any blocks, rows in any order, stored either way round."""
    columns = good_columns()
    columns["dc_to_pe"][7] = np.nan
    columns["calib_flag"][[3, 7]] = [0.5, 1.0]
    order = np.random.default_rng(1).permutation(1296)
    shuffled = {name: values[order] for name, values in columns.items()}
    shuffled["gain"] = shuffled["dc_to_pe"] * 0.9

    for i, (blocks, transposed) in enumerate(
        [
            ([["gain", "dc_to_pe"], ["calib_flag", "pixel_id"]], True),
            ([["calib_flag"], ["pixel_id", "gain", "dc_to_pe"]], False),
        ]
    ):
        path = write_frame(
            tmp_path / f"frame{i}.h5", shuffled, blocks=blocks, transposed=transposed
        )
        gains = read_gain_file(path)
        assert_same_floats(gains.dc_to_pe, columns["dc_to_pe"])
        assert np.flatnonzero(gains.bad).tolist() == [3, 7]


def test_ecsv_round_trip_and_bad_definition(tmp_path):
    columns = good_columns()
    columns["dc_to_pe"][[10, 11, 12]] = [np.nan, 0.0, -3.0]
    columns["calib_flag"][20] = 0.0
    path = write_ecsv(tmp_path / "gains.ecsv", **columns)

    gains = read_gain_file(path)

    assert np.flatnonzero(gains.bad).tolist() == [10, 11, 12, 20]
    assert_same_floats(gains.dc_to_pe, columns["dc_to_pe"])
    assert gains.source == str(path)
    assert gains.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_error_missing_file(tmp_path):
    path = tmp_path / "missing_tel1.h5"
    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        read_gain_file(path)


def test_error_random_bytes(tmp_path):
    path = tmp_path / "random.h5"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(
        ValueError, match=rf"{re.escape(str(path))} is neither an HDF5 nor an ECSV"
    ):
        read_gain_file(path)


def test_error_truncated_hdf5(calibration_dir, tmp_path):
    path = tmp_path / "truncated.h5"
    path.write_bytes((calibration_dir / AVERAGED[21]).read_bytes()[:5000])
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))} is not a readable"):
        read_gain_file(path)


def test_error_wrong_pixel_count(tmp_path):
    path = write_frame(tmp_path / "small.h5", good_columns(1000))
    with pytest.raises(ValueError, match=r"small\.h5 has 1000 pixels, DigiCam has 1296"):
        read_gain_file(path)
    # a smaller camera can be asked for
    assert read_gain_file(path, n_pixels=1000).dc_to_pe.shape == (1000,)


def test_error_no_frame(tmp_path):
    path = tmp_path / "no_frame.h5"
    with tables.open_file(path, "w") as h5file:
        h5file.create_array("/", "dc_to_pe", np.ones(1296))
    with pytest.raises(ValueError, match=r"no_frame\.h5 must hold one pandas.*none"):
        read_gain_file(path)


def test_error_two_frames(tmp_path):
    path = write_frame(tmp_path / "two.h5", good_columns(), key="a")
    with tables.open_file(path, "a") as h5file:
        h5file.copy_node("/a", "/", "b", recursive=True)
    with pytest.raises(ValueError, match=r"two\.h5 must hold one pandas.*/a, /b"):
        read_gain_file(path)


@pytest.mark.parametrize("column", ["pixel_id", "dc_to_pe", "calib_flag"])
def test_error_missing_column(tmp_path, column):
    columns = good_columns()
    del columns[column]

    hdf5 = write_frame(tmp_path / "frame.h5", columns)
    with pytest.raises(ValueError, match=rf"frame\.h5 has no column {column}"):
        read_gain_file(hdf5)
    ecsv = write_ecsv(tmp_path / "table.ecsv", **columns)
    with pytest.raises(ValueError, match=rf"table\.ecsv has no column {column}"):
        read_gain_file(ecsv)


def test_error_pixel_ids_not_a_permutation(tmp_path):
    columns = good_columns()
    columns["pixel_id"][5] = 4
    path = write_ecsv(tmp_path / "duplicate.ecsv", **columns)
    with pytest.raises(ValueError, match=r"duplicate\.ecsv: pixel ids are not a perm"):
        read_gain_file(path)

    columns["pixel_id"] = columns["pixel_id"].astype(float)
    columns["pixel_id"][5] = np.nan
    columns["pixel_id"][6] = 5
    path = write_frame(tmp_path / "nan_id.h5", columns)
    with pytest.raises(ValueError, match=r"nan_id\.h5: pixel_id is NaN in 1 rows"):
        read_gain_file(path)


def test_error_invalid_ecsv(tmp_path):
    path = write_ecsv(tmp_path / "bad.ecsv", **good_columns())
    path.write_text(path.read_text().replace("datatype: float64", "datatype: [x"))
    with pytest.raises(ValueError, match=r"bad\.ecsv is not a valid ECSV table"):
        read_gain_file(path)


def test_missing_resource(resource_dir):
    with pytest.raises(FileNotFoundError, match=r"gains_tel022\.ecsv not found"):
        default_gain_table(22)


def test_invalid_resource(resource_dir):
    columns = good_columns(1000)
    write_ecsv(resource_dir / "gains_tel021.ecsv", **columns)
    with pytest.raises(OSError, match=r"gains_tel021\.ecsv is invalid.*1000 pixels"):
        default_gain_table(21)


def test_resources_state_provenance(shared_data):
    expected_sources = {
        "gains_tel021.ecsv": "calibration/" + AVERAGED[21],
        "gains_tel022.ecsv": "calibration/" + AVERAGED[22],
        "window_1.ecsv": "calibration/corr_factor_1st_wdw.txt",
        "window_2.ecsv": "calibration/corr_factor_2nd_wdw.txt",
        "pixel_modules.ecsv": "instrument/digicam_pixels_mapping_V5T.txt",
        "swapped_modules.ecsv": "calibration/inverted_module_list.json",
        "mc_pde_correction_factors.ecsv": "calibration/mc_pde_correction_factors.json",
    }
    assert sorted(expected_sources) == sorted(RESOURCE_FILES)
    for name, source in expected_sources.items():
        source = shared_data / source
        provenance = Table.read(RESOURCES / name, format="ascii.ecsv").meta["provenance"]
        assert provenance["source"] == source.name, name
        sha256 = hashlib.sha256(source.read_bytes()).hexdigest()
        assert provenance["source_sha256"] == sha256, name
        assert provenance["source_origin"].endswith(f"sst1mpipe/data/{source.name}")
        assert provenance["generator"] == "scripts/make_calibration_resources.py"
        assert provenance["date"], name


@pytest.mark.slow
def test_resources_are_generated(shared_data, tmp_path):
    """The shipped files are what the generator writes (but for the date)."""
    assert_resources_generated(
        GENERATOR, shared_data, tmp_path, RESOURCES, RESOURCE_FILES
    )
