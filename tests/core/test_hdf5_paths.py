"""The package's HDF5 paths are built from ctapipe's hdf5dataformat constants."""

import ast
import re
from pathlib import Path

from ctapipe.io.hdf5dataformat import CONFIG_GROUP

from ctapipe_sst1m.core import MARK_TABLE, SST1M_CONFIG_GROUP
from ctapipe_sst1m.io.source import R1_CALIBRATION_GROUP
from ctapipe_sst1m.stereo.merge import (
    COUNTS_TABLE,
    OBSERVATION_GROUP,
    SIMULATION_CONFIG_GROUP,
)

PACKAGE = Path(__file__).resolve().parents[2] / "ctapipe_sst1m"
#: a string that is (a part of) an HDF5 path under one of ctapipe's top groups
H5_PATH = re.compile(r"/?\w+(/\w*)+|/\w+")
CTAPIPE_GROUP = re.compile(r"(^|/)(dl[0-3]|r[01]|simulation|configuration)(/|$)")


def test_package_groups():
    """The paths other files and tests read keep their values."""
    assert SST1M_CONFIG_GROUP == f"{CONFIG_GROUP}/sst1m" == "/configuration/sst1m"
    assert MARK_TABLE == "/configuration/sst1m/product"
    assert R1_CALIBRATION_GROUP == "/configuration/sst1m/r1_calibration"
    assert COUNTS_TABLE == "/configuration/sst1m/stereo/event_counts"
    assert OBSERVATION_GROUP == "/configuration/observation/"
    assert SIMULATION_CONFIG_GROUP == "/configuration/simulation/"


def docstrings(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr):
                yield body[0].value


def test_no_literal_hdf5_paths():
    """Code (not docstrings) names no HDF5 path of ctapipe's layout literally."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        skip = {id(node) for node in docstrings(tree)}
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in skip
                and H5_PATH.fullmatch(node.value)
                and CTAPIPE_GROUP.search(node.value)
            ):
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {node.value}")
    assert found == []
