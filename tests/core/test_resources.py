"""Tests of the one root of the shipped resource files."""

import ast
from pathlib import Path

import pytest

from ctapipe_sst1m.calib import default_gain_table, pixel_modules
from ctapipe_sst1m.calib import gains as gains_module
from ctapipe_sst1m.calib import window as window_module
from ctapipe_sst1m.core import resources as resources_module
from ctapipe_sst1m.core.resources import (
    CALIBRATION_DIR,
    INSTRUMENT_DIR,
    config_file,
    read_resource,
    resource,
    shipped_configs,
)
from ctapipe_sst1m.instrument import load_sst1m_subarray
from ctapipe_sst1m.instrument import subarray as subarray_module

PACKAGE = Path(__file__).resolve().parents[2] / "ctapipe_sst1m"
CACHES = (
    gains_module.default_gain_table,
    window_module.default_window_factors,
    window_module.pixel_modules,
    window_module._swaps,
    subarray_module._layout,
    subarray_module._geometry,
    subarray_module._readout,
)


@pytest.fixture
def empty_root(tmp_path, monkeypatch):
    """The resource root moved to an empty directory, caches cleared."""
    for cached in CACHES:
        cached.cache_clear()
    monkeypatch.setattr(resources_module, "RESOURCES", tmp_path)
    yield tmp_path
    for cached in CACHES:
        cached.cache_clear()


def test_shipped_files_found():
    configs = shipped_configs()
    assert {"sst1m.yaml", "sst1m_mc.yaml", "sst1m_stereo.yaml"} <= set(configs)
    assert configs == sorted(p.name for p in (PACKAGE / "resources").glob("*.yaml"))
    assert "DataWriter" in config_file("sst1m.yaml").read_text()
    assert resource(f"{INSTRUMENT_DIR}/SST1M_layout.ecsv").is_file()
    assert resource(f"{CALIBRATION_DIR}/gains_tel021.ecsv").is_file()
    assert resource("") == resources_module.RESOURCES


@pytest.mark.parametrize("name", ["sst1m_typo.yaml", "calibration/window_1.ecsv"])
def test_unknown_config_file(name):
    with pytest.raises(FileNotFoundError, match=rf"{name}: no such configuration.*"):
        config_file(name)
    with pytest.raises(FileNotFoundError, match=r"shipped: .*\bsst1m\.yaml\b"):
        config_file(name)


def test_one_root_redirects_every_loader(empty_root):
    """Gains, window tables, instrument and configurations all move with it."""
    for load, name in [
        (lambda: default_gain_table(21), "calibration/gains_tel021.ecsv"),
        (pixel_modules, "calibration/pixel_modules.ecsv"),
        (load_sst1m_subarray, "instrument/SST1M_layout.ecsv"),
    ]:
        with pytest.raises(FileNotFoundError) as err:
            load()
        assert str(err.value) == (
            f"SST-1M resource {name} not found in {empty_root}: the ctapipe-sst1m "
            "installation is incomplete"
        )
    with pytest.raises(FileNotFoundError, match="none, the installation is incomplete"):
        config_file("sst1m.yaml")


def test_read_resource_errors(empty_root):
    (empty_root / "calibration").mkdir()
    path = empty_root / "calibration/table.ecsv"
    path.write_text("content")

    def missing_key(_):
        return {}["tel_id"]

    with pytest.raises(OSError, match=r"table\.ecsv is invalid: KeyError\('tel_id'\)"):
        read_resource("calibration/table.ecsv", missing_key)
    with pytest.raises(OSError, match=r"table\.ecsv is invalid: invalid literal"):
        read_resource("calibration/table.ecsv", lambda r: int(r.read_text()))
    # errors not declared parse errors are the reader's own
    with pytest.raises(ValueError, match=r"^invalid literal"):
        read_resource("calibration/table.ecsv", lambda r: int(r.read_text()), ())
    assert read_resource("calibration/table.ecsv", lambda r: r.read_text()) == "content"


def test_only_core_names_the_resource_directory():
    """No module finds the resource files itself."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "core/resources.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "files":
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert found == []
