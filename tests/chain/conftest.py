"""Toy-simulated SST-1M gammas and protons processed by stock ctapipe-process."""

import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import pytest

from ..toysim import write_toy_config

REPO = Path(__file__).resolve().parents[2]
RESOURCES = files("ctapipe_sst1m") / "resources"

#: name -> (particle, simulated showers, seed); a few thousand events each
TOY_SETS = {
    "gamma_energy": ("gamma", 5000, 1),
    "gamma_classifier": ("gamma", 5000, 2),
    "gamma_test": ("gamma", 8000, 3),
    "proton_classifier": ("proton", 14000, 4),
    "proton_test": ("proton", 14000, 5),
}

_PROCESS = """
import sys
sys.path.insert(0, {repo!r})
import tests.toysim  # registers ToySST1MEventSource with ctapipe
from ctapipe.tools.process import main
sys.argv = ["ctapipe-process", *{argv!r}]
main()
"""


def run_processes(commands, workdir, parallel=2):
    """Run ``python -c`` scripts, ``parallel`` at a time; assert they succeed."""
    pending = list(commands)
    running = []
    while pending or running:
        while pending and len(running) < parallel:
            name, code = pending.pop(0)
            log = open(workdir / f"{name}.log", "w")  # noqa: SIM115
            process = subprocess.Popen(
                [sys.executable, "-c", code], stdout=log, stderr=log, cwd=workdir
            )
            running.append((name, process, log))
        name, process, log = running.pop(0)
        process.wait()
        log.close()
        assert process.returncode == 0, (workdir / f"{name}.log").read_text()[-3000:]


@pytest.fixture(scope="session")
def toy_dl2(tmp_path_factory):
    """DL1 parameters and stereo geometry of the toy sets (sst1m_mc + sst1m_mc_stereo)."""
    workdir = tmp_path_factory.mktemp("toy_dl2")
    outputs, commands = {}, []
    for name, (particle, n_showers, seed) in TOY_SETS.items():
        config = write_toy_config(
            workdir / f"{name}.sst1mtoy", particle, n_showers, seed, seed
        )
        outputs[name] = workdir / f"{name}.dl2.h5"
        argv = [
            f"--input={config}",
            f"--output={outputs[name]}",
            f"--config={RESOURCES / 'sst1m_mc.yaml'}",
            f"--config={RESOURCES / 'sst1m_mc_stereo.yaml'}",
            "--SST1MSimulationCorrections.pde_correction=1.0",
            "--no-progress",
        ]
        commands.append((name, _PROCESS.format(repo=str(REPO), argv=argv)))
    run_processes(commands, workdir)
    return outputs
