"""Sphinx configuration of the ctapipe-sst1m documentation."""

import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from config_reference import write_config_reference  # noqa: E402

import ctapipe_sst1m  # noqa: E402

project = "ctapipe-sst1m"
author = "ctapipe-sst1m developers"
copyright = "2026, ctapipe-sst1m developers"
version = release = ctapipe_sst1m.__version__

extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon"]
exclude_patterns = ["_build"]
html_theme = "alabaster"
nitpicky = False
autodoc_typehints = "none"


def setup(app):
    """Generate the configuration reference from the traits before reading."""
    app.connect("builder-inited", lambda app: write_config_reference(HERE / "generated"))
