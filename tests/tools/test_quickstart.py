"""ctapipe-sst1m-quickstart writes configs that ctapipe-process accepts."""

from importlib.resources import files

import yaml
from ctapipe.core import run_tool

from ctapipe_sst1m.tools.quickstart import SHIPPED_CONFIGS, QuickStartTool


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
    shipped = {p.name for p in (files("ctapipe_sst1m") / "resources").iterdir()}
    assert {n for n in shipped if n.endswith(".yaml")} == set(SHIPPED_CONFIGS)
