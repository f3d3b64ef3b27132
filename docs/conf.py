"""Sphinx configuration of the ctapipe-sst1m documentation."""

import os
import sys
from pathlib import Path

from astropy.utils import iers
from astropy.utils.data import conf as astropy_data_conf

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from config_reference import write_config_reference  # noqa: E402

import ctapipe_sst1m  # noqa: E402

project = "ctapipe-sst1m"
author = "ctapipe-sst1m developers"
copyright = "2026, ctapipe-sst1m developers"
version = release = ctapipe_sst1m.__version__

extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx_gallery.gen_gallery"]
# examples/ holds the gallery's sources, auto_examples/ the pages made of them
exclude_patterns = ["_build", "examples"]
html_theme = "alabaster"
nitpicky = False
autodoc_typehints = "none"

# The examples run in this process when the docs are built (the tutorial's
# tools in subprocesses): no display, and nothing downloaded, so that the build
# works offline and a missing file fails it instead of being fetched.
os.environ["MPLBACKEND"] = "agg"
iers.conf.auto_download = False
astropy_data_conf.allow_internet = False

sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    # every example runs at each build, not only plot_*.py files, and not only
    # the changed ones: the build checks that they still work with the package
    "filename_pattern": r".*\.py",
    "ignore_pattern": r"tutorial_outputs\.py",
    "run_stale_examples": True,
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    # no sg_execution_times.rst among the sources
    "write_computation_times": False,
}


def setup(app):
    """Generate the configuration reference from the traits before reading."""
    app.connect("builder-inited", lambda app: write_config_reference(HERE / "generated"))
