"""gc.freeze at the end of ctapipe-process run as a command, and never in a
process that goes on (here: pytest)."""

import gc
import subprocess
import sys

import pytest
from ctapipe.core import run_tool
from ctapipe.tools.process import ProcessorTool

from ctapipe_sst1m.core.resources import config_file

CONFIG = config_file("sst1m.yaml")

#: four ctapipe-process runs
pytestmark = pytest.mark.slow

SCRIPT = """
import gc, sys
from ctapipe.tools.process import main
sys.argv[0] = {name!r}
try:
    main()
except SystemExit:
    pass
print(gc.get_freeze_count())
"""


def _command(tmp_path, name, *options):
    argv = [
        f"--input={tmp_path / 'in.fits.fz'}",
        f"--output={tmp_path / (name + '.dl1.h5')}",
        f"--config={CONFIG}",
        *options,
    ]
    script = SCRIPT.format(name=name)
    result = subprocess.run(
        [sys.executable, "-c", script, *argv],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        cwd=tmp_path,
    )
    return int(result.stdout.split()[-1])


def test_frozen_only_at_the_end_of_the_command(tmp_path, embedded_raw_file):
    (tmp_path / "in.fits.fz").symlink_to(embedded_raw_file)
    assert _command(tmp_path, "ctapipe-process") > 100_000
    assert _command(tmp_path, "another-program") == 0
    switched_off = "--SST1MEventSource.freeze_gc_at_exit=False"
    assert _command(tmp_path, "ctapipe-process", switched_off) == 0
    before = gc.get_freeze_count()
    code = run_tool(
        ProcessorTool(),
        argv=[
            f"--input={tmp_path / 'in.fits.fz'}",
            f"--output={tmp_path / 'in_pytest.dl1.h5'}",
            f"--config={CONFIG}",
        ],
        cwd=tmp_path,
    )
    assert code == 0
    assert gc.get_freeze_count() == before
