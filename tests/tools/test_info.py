"""ctapipe-sst1m-info lists every tool and plugin of the installed package."""

import tomllib
from importlib.metadata import distribution
from pathlib import Path

from ctapipe.core import run_tool

from ctapipe_sst1m.tools.info import InfoTool, first_sentence

REPO = Path(__file__).resolve().parents[2]
PLUGIN_GROUPS = ("ctapipe_io", "ctapipe_monitoring")


def _entries(text):
    """name -> description of the listing's entries (lines indented by two)."""
    entries = {}
    for line in text.splitlines():
        if line.startswith("  ") and not line.startswith("   "):
            name, _, description = line.strip().partition(" ")
            entries[name] = description.strip()
    return entries


def test_lists_every_console_script_and_plugin(tmp_path, capsys):
    assert run_tool(InfoTool(), argv=[], cwd=tmp_path) == 0
    captured = capsys.readouterr()
    entries = _entries(captured.out)

    entry_points = distribution("ctapipe-sst1m").entry_points
    scripts = {ep.name for ep in entry_points.select(group="console_scripts")}
    # the installed metadata is the pyproject's: a tool added there is installed
    # (pip install -e .) before it can be listed
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert scripts == set(pyproject["project"]["scripts"])
    assert "ctapipe-sst1m-info" in scripts
    plugins = {
        ep.name for group in PLUGIN_GROUPS for ep in entry_points.select(group=group)
    }
    assert {"SST1MEventSource", "SST1MSimulationCorrections"} <= plugins

    expected = scripts | plugins | {"SST1MImageCleaner"}
    assert expected <= set(entries), expected - set(entries)
    for name in expected:
        assert entries[name], f"{name} has no description"
        assert "(no description)" not in entries[name]
    # a listing writes nothing, not even a provenance log
    assert list(tmp_path.iterdir()) == []
    assert "WARNING" not in captured.err


def test_first_sentence():
    text = """
    Pair the events of two telescopes. Unpaired events
    are counted.

    More.
    """
    assert first_sentence(text) == "Pair the events of two telescopes."
    assert first_sentence("Is ``it`` complete? One line per file.") == "Is it complete?"
    assert first_sentence(None) == "(no description)"
