"""Toy-simulated SST-1M gammas and protons processed by stock ctapipe-process."""

import subprocess
import sys
from pathlib import Path

import pytest
from ctapipe.core import run_tool
from ctapipe.tools.apply_models import ApplyModels
from ctapipe.tools.optimize_event_selection import EventSelectionOptimizer
from ctapipe.tools.train_disp_reconstructor import TrainDispReconstructor
from ctapipe.tools.train_energy_regressor import TrainEnergyRegressor
from ctapipe.tools.train_particle_classifier import TrainParticleClassifier

from ctapipe_sst1m.core.resources import RESOURCES
from ctapipe_sst1m.io.toy import write_toy_config
from ctapipe_sst1m.tools.compute_irf import SST1MIrfTool

REPO = Path(__file__).resolve().parents[2]

#: the toy gamma-ray source: it culminates at alt 70 deg (az 180 deg), the
#: pointing of the toy simulations, at 2024-03-13T01:00:00 TAI over Ondrejov
TARGET = (200.4987, 30.0422)
#: Mrk 501 at 03:00 TAI that night: alt 71 deg, but az 114 deg
OFF_NODE_TARGET = (253.4676, 39.7602)
#: wobble offset of the observed runs (deg)
WOBBLE = 0.4
#: name -> (particle, simulated showers, seed, ring); a few thousand events
#: each, more for the IRFs (statistical errors of about 3 % on the effective
#: area). The IRF gammas come from a ring at the wobble offset (0.4 deg): the
#: toy's acceptance at 0.4 deg is about 8 % below that at the centre (IRFs of
#: gammas from the pointing gave a flux ratio of 0.90 +- 0.04 on the wobble
#: runs, of the ring 1.02 and 0.96 +- 0.045 for two sets of 20000)
TOY_SETS = {
    "gamma_energy": ("gamma", 5000, 1, None),
    "gamma_classifier": ("gamma", 5000, 2, None),
    "gamma_test": ("gamma", 40000, 3, WOBBLE),
    "proton_classifier": ("proton", 14000, 4, None),
    "proton_test": ("proton", 20000, 5, None),
}
#: the mono chain checks the tools, not fluxes: fewer test gammas, from the
#: pointing
MONO_TOY_SETS = {**TOY_SETS, "gamma_test": ("gamma", 8000, 3, None)}
#: observed-like toy runs: obs_id -> (start (TAI), wobble position angle, gamma
#: showers, proton showers). Gammas from the source at one shower every 0.02 s
#: (400 s per run), wobbles 0.4 deg north and south of it, diffuse protons as
#: background; the two runs span the culmination: pointing alt 69.6-70.4 deg,
#: az 176-184 deg.
OBSERVED_RUNS = {
    202403130001: ("2024-03-13T00:53:20", 0, 20000, 10000),
    202403130002: ("2024-03-13T01:00:00", 180, 20000, 10000),
}
#: a run with the same zenith angle as the IRFs but 66 deg away in azimuth
OFF_NODE_RUN = (202403130003, "2024-03-13T03:00:00", 0, 3000, 1500)

_PROCESS = """
import sys
sys.path.insert(0, {repo!r})
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


def process_toy_files(workdir, jobs, configs, extra=()):
    """ctapipe-process each (name, toy file) with ``configs``; name -> output."""
    outputs, commands = {}, []
    for name, toy_file in jobs:
        outputs[name] = workdir / f"{name}.dl1.h5"
        argv = [f"--input={toy_file}", f"--output={outputs[name]}", "--no-progress"]
        argv += [f"--config={RESOURCES / c}" for c in configs]
        argv += list(extra)
        if "sst1m_mc.yaml" in configs:
            argv.append("--SST1MSimulationCorrections.pde_correction=1.0")
        commands.append((str(name), _PROCESS.format(repo=str(REPO), argv=argv)))
    run_processes(commands, workdir)
    return outputs


@pytest.fixture(scope="session")
def toy_dl2(tmp_path_factory):
    """DL1 parameters and stereo geometry of the toy sets (sst1m_mc + sst1m_mc_stereo)."""
    workdir = tmp_path_factory.mktemp("toy_dl2")
    jobs = [
        (
            name,
            write_toy_config(
                workdir / f"{name}.sst1mtoy", particle, n, seed, seed, ring=ring
            ),
        )
        for name, (particle, n, seed, ring) in TOY_SETS.items()
    ]
    return process_toy_files(workdir, jobs, ["sst1m_mc.yaml", "sst1m_mc_stereo.yaml"])


@pytest.fixture(scope="session")
def toy_mono_dl1(tmp_path_factory):
    """The same toy showers seen by tel 21 alone (sst1m_mc.yaml, parameters)."""
    workdir = tmp_path_factory.mktemp("toy_mono_dl1")
    jobs = [
        (
            name,
            write_toy_config(
                workdir / f"{name}.sst1mtoy", particle, n, seed, seed, ring=ring
            ),
        )
        for name, (particle, n, seed, ring) in MONO_TOY_SETS.items()
    ]
    extra = ["--EventSource.allowed_tels=21", "--DataWriter.write_dl1_images=False"]
    return process_toy_files(workdir, jobs, ["sst1m_mc.yaml"], extra)


def observed_toy_file(workdir, obs_id, start, angle, gammas, protons, seed, target):
    """The ``*.sst1mtoy`` file of one observed-like wobble run."""
    observed = dict(
        ra=target[0],
        dec=target[1],
        start=start,
        wobble=WOBBLE,
        wobble_angle=angle,
        protons=protons,
    )
    toy_file = workdir / f"{obs_id}.sst1mtoy"
    return write_toy_config(toy_file, "gamma", gammas, seed, obs_id, observed)


@pytest.fixture(scope="session")
def observed_dl1(tmp_path_factory):
    """Observed-like toy wobble runs, processed as data to DL2 geometry."""
    workdir = tmp_path_factory.mktemp("observed_dl1")
    jobs = []
    for seed, (obs_id, run) in enumerate(OBSERVED_RUNS.items(), start=11):
        jobs.append((obs_id, observed_toy_file(workdir, obs_id, *run, seed, TARGET)))
    return process_toy_files(workdir, jobs, ["sst1m.yaml", "sst1m_mc_stereo.yaml"])


@pytest.fixture(scope="session")
def off_node_dl2(tmp_path_factory, chain):
    """A run far in azimuth from the IRFs' pointing, to DL2 with the models."""
    workdir = tmp_path_factory.mktemp("off_node")
    obs_id, *run = OFF_NODE_RUN
    job = (obs_id, observed_toy_file(workdir, obs_id, *run, 21, OFF_NODE_TARGET))
    dl1 = process_toy_files(workdir, [job], ["sst1m.yaml", "sst1m_mc_stereo.yaml"])
    return apply_models(workdir, dl1, chain["models"], "dl2")[obs_id]


def run_ok(tool, tmp_path, *argv):
    """Run a Tool in-process, asserting success."""
    assert run_tool(tool, argv=[str(a) for a in argv], cwd=tmp_path, raises=True) == 0


def config(name):
    """``--config`` of a shipped configuration file."""
    return f"--config={RESOURCES / name}"


def apply_models(workdir, inputs, models, suffix):
    """ctapipe-apply-models of ``models`` to each input; name -> output."""
    outputs = {}
    for name, path in inputs.items():
        outputs[name] = workdir / f"{name}.{suffix}.h5"
        reconstructors = [f"--reconstructor={model}" for model in models]
        run_ok(
            ApplyModels(),
            workdir,
            f"--input={path}",
            *reconstructors,
            f"--output={outputs[name]}",
        )
    return outputs


def cuts_and_irfs(workdir, dl2, *configs, irf_config="sst1m_irf_point_source.yaml"):
    """
    ctapipe-optimize-event-selection and ctapipe-sst1m-compute-irf.

    Full-enclosure IRFs of the gammas from the pointing by default
    (``sst1m_irf_point_source.yaml``); ``irf_config`` chooses another.
    """
    files = [f"--gamma-file={dl2['gamma_test']}", f"--proton-file={dl2['proton_test']}"]
    configs = [config(name) for name in configs]
    cuts = workdir / "cuts.fits"
    run_ok(
        EventSelectionOptimizer(),
        workdir,
        config("sst1m_optimize_cuts.yaml"),
        *configs,
        *files,
        f"--output={cuts}",
    )
    irf, benchmarks = workdir / "irf.fits.gz", workdir / "benchmarks.fits.gz"
    run_ok(
        SST1MIrfTool(),
        workdir,
        config("sst1m_irf.yaml"),
        config(irf_config),
        *configs,
        f"--cuts={cuts}",
        *files,
        f"--output={irf}",
        f"--benchmark-output={benchmarks}",
    )
    return cuts, irf, benchmarks


@pytest.fixture(scope="session")
def chain(tmp_path_factory, toy_dl2):
    """Train, apply, optimise cuts and compute IRFs; return the outputs."""
    tmp = tmp_path_factory.mktemp("chain")
    energy = tmp / "energy.pkl"
    run_ok(
        TrainEnergyRegressor(),
        tmp,
        config("sst1m_train_energy.yaml"),
        f"--input={toy_dl2['gamma_energy']}",
        f"--output={energy}",
    )
    names = ("gamma_classifier", "proton_classifier", "gamma_test", "proton_test")
    with_energy = apply_models(tmp, {n: toy_dl2[n] for n in names}, [energy], "energy")
    classifier = tmp / "classifier.pkl"
    run_ok(
        TrainParticleClassifier(),
        tmp,
        config("sst1m_train_classifier.yaml"),
        f"--signal={with_energy['gamma_classifier']}",
        f"--background={with_energy['proton_classifier']}",
        f"--output={classifier}",
    )
    tests = {n: with_energy[n] for n in ("gamma_test", "proton_test")}
    dl2 = apply_models(tmp, tests, [classifier], "dl2")
    cuts, irf, benchmarks = cuts_and_irfs(tmp, dl2)
    point_like = tmp / "point_like"
    point_like.mkdir()
    _, irf_point_like, _ = cuts_and_irfs(
        point_like, dl2, irf_config="sst1m_irf_point_like.yaml"
    )
    return dict(
        dl2=dl2,
        cuts=cuts,
        irf=irf,
        irf_point_like=irf_point_like,
        benchmarks=benchmarks,
        models=(energy, classifier),
    )


@pytest.fixture(scope="session")
def mono_chain(tmp_path_factory, toy_mono_dl1):
    """The mono chain of tel 21: energy, disp and gammaness models, cuts, IRFs."""
    tmp = tmp_path_factory.mktemp("mono_chain")
    data = toy_mono_dl1
    energy, disp, classifier = (tmp / f"{n}.pkl" for n in ("energy", "disp", "gh"))
    for tool, name, model in (
        (TrainEnergyRegressor(), "sst1m_train_energy_mono.yaml", energy),
        (TrainDispReconstructor(), "sst1m_train_disp_mono.yaml", disp),
    ):
        run_ok(
            tool,
            tmp,
            config(name),
            f"--input={data['gamma_energy']}",
            f"--output={model}",
        )
    names = ("gamma_classifier", "proton_classifier", "gamma_test", "proton_test")
    applied = apply_models(tmp, {n: data[n] for n in names}, [energy, disp], "geometry")
    run_ok(
        TrainParticleClassifier(),
        tmp,
        config("sst1m_train_classifier_mono.yaml"),
        f"--signal={applied['gamma_classifier']}",
        f"--background={applied['proton_classifier']}",
        f"--output={classifier}",
    )
    tests = {n: applied[n] for n in ("gamma_test", "proton_test")}
    dl2 = apply_models(tmp, tests, [classifier], "dl2")
    cuts, irf, benchmarks = cuts_and_irfs(tmp, dl2, "sst1m_mono.yaml")
    return dict(
        irf=irf, benchmarks=benchmarks, cuts=cuts, models=(energy, disp, classifier)
    )


@pytest.fixture(scope="session")
def observed_dl2(tmp_path_factory, observed_dl1, chain):
    """The observed runs with the energy and gammaness of the trained models."""
    tmp = tmp_path_factory.mktemp("observed_dl2")
    return apply_models(tmp, observed_dl1, chain["models"], "dl2")


# the test night of ctapipe-sst1m-nightly, processed once per session, for the
# nightly's and the night report's tests (imported last: it uses the helpers above)
from .night_run import night_inputs, processed_night, tel22_mono  # noqa: E402, F401
