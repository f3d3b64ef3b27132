"""ctapipe-sst1m-quickstart writes configs that ctapipe-process accepts."""

import warnings

import pytest
import yaml
from ctapipe.core import run_tool
from ctapipe.core.provenance import MissingReferenceMetadata

from ctapipe_sst1m.core.resources import shipped_configs
from ctapipe_sst1m.tools.quickstart import SHIPPED_CONFIGS, QuickStartTool


@pytest.mark.slow
def test_quickstart_writes_configs(tmp_path):
    workdir = tmp_path / "analysis"
    argv = [f"--workdir={workdir}", "--name=A. Astronomer", "--email=a@example.org"]
    assert run_tool(QuickStartTool(), argv=argv, cwd=tmp_path) == 0
    for name in SHIPPED_CONFIGS:
        config = yaml.safe_load((workdir / name).read_text())
        contact = config.get("DataWriter", {}).get("Contact")
        if name in ("sst1m.yaml", "sst1m_mc.yaml"):
            assert contact == {
                "name": "A. Astronomer",
                "email": "a@example.org",
                "organization": "SST-1M",
            }

    # existing files are not replaced without --overwrite
    assert run_tool(QuickStartTool(), argv=argv, cwd=tmp_path, raises=False) == 1
    assert run_tool(QuickStartTool(), argv=[*argv, "--overwrite"], cwd=tmp_path) == 0


def test_every_shipped_config_is_listed():
    assert set(shipped_configs()) == set(SHIPPED_CONFIGS)


def test_quickstart_says_what_it_wrote(tmp_path, capsys):
    """At the default log level: a summary of the files and the next command, and
    no warning about the files it writes (ctapipe's MissingReferenceMetadata)."""
    argv = ["--workdir=analysis", "--name=A. Astronomer"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert run_tool(QuickStartTool(), argv=argv, cwd=tmp_path) == 0
    assert [w for w in caught if issubclass(w.category, MissingReferenceMetadata)] == []
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == (
        f"ctapipe-sst1m-quickstart: {len(SHIPPED_CONFIGS)} configuration files "
        "written to analysis (contact A. Astronomer <YOUREMAIL@EXAMPLE.ORG>)"
    )
    listed = " ".join(lines).replace(",", " ").split()
    assert set(SHIPPED_CONFIGS) <= set(listed)
    assert any(
        "ctapipe-process --config analysis/sst1m.yaml -i RUN.fits.fz" in line
        for line in lines
    )
    assert any("ctapipe-sst1m-info" in line for line in lines)
    assert len(lines) <= 15
    assert sorted(p.name for p in (tmp_path / "analysis").iterdir()) == sorted(
        SHIPPED_CONFIGS
    )
