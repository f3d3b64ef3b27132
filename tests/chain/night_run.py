"""
The test night of ctapipe-sst1m-nightly (tests/chain/night.py), processed once
per session the way it goes wrong at a site: killed (the whole process group,
SIGKILL) after its first products, started again to the end, then started
again with nothing new. The nightly's and the night report's tests read what
that left (fixtures registered in conftest.py).
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from astropy.table import Table
from ctapipe.tools.train_disp_reconstructor import TrainDispReconstructor
from ctapipe.tools.train_energy_regressor import TrainEnergyRegressor
from ctapipe.tools.train_particle_classifier import TrainParticleClassifier

from . import night
from .conftest import apply_models, config, cuts_and_irfs, process_toy_files, run_ok

NIGHTLY = str(Path(sys.executable).parent / "ctapipe-sst1m-nightly")
MODES = ("cs1", "cs2", "stereo")


#: the tel 22 mono sets: small, and used for training and IRFs alike (the
#: nightly needs a library entry that works, not good IRFs)
TEL22_SETS = {"gamma": ("gamma", 2000, 31), "proton": ("proton", 4000, 33)}


@pytest.fixture(scope="session")
def tel22_mono(tmp_path_factory):
    """
    Mono models, cuts and IRFs of tel 22. Models are per telescope type, and
    the two telescopes' readouts differ: tel 21's models do not apply to tel 22.
    """
    from ctapipe_sst1m.io.toy import write_toy_config

    tmp = tmp_path_factory.mktemp("tel22_mono")
    jobs = [
        (n, write_toy_config(tmp / f"{n}.sst1mtoy", particle, showers, seed, seed))
        for n, (particle, showers, seed) in TEL22_SETS.items()
    ]
    extra = ["--EventSource.allowed_tels=22", "--DataWriter.write_dl1_images=False"]
    dl1 = process_toy_files(tmp, jobs, ["sst1m_mc.yaml"], extra)
    energy, disp, classifier = (tmp / f"{n}.pkl" for n in ("energy", "disp", "gh"))
    for tool, name, model in (
        (TrainEnergyRegressor(), "sst1m_train_energy_mono.yaml", energy),
        (TrainDispReconstructor(), "sst1m_train_disp_mono.yaml", disp),
    ):
        run_ok(tool, tmp, config(name), f"--input={dl1['gamma']}", f"--output={model}")
    geometry = apply_models(tmp, dl1, [energy, disp], "geometry")
    run_ok(
        TrainParticleClassifier(),
        tmp,
        config("sst1m_train_classifier_mono.yaml"),
        f"--signal={geometry['gamma']}",
        f"--background={geometry['proton']}",
        f"--output={classifier}",
    )
    dl2 = apply_models(tmp, geometry, [classifier], "dl2")
    dl2 = {"gamma_test": dl2["gamma"], "proton_test": dl2["proton"]}
    cuts, irf, _ = cuts_and_irfs(tmp, dl2, "sst1m_mono.yaml")
    return dict(models=(energy, disp, classifier), cuts=cuts, irf=irf)


@pytest.fixture(scope="session")
def night_inputs(tmp_path_factory, raw_dir, shared_data, chain, mono_chain, tel22_mono):
    """Raw night, catalogue, library and the nightly configuration."""
    tmp = tmp_path_factory.mktemp("night_inputs")
    runs = night.build_raw_night(
        tmp / "raw",
        raw_dir / "example_SST1M_20180822.fits.fz",
        raw_dir / "SST1M_01_20180822_001.fits.fz",
    )
    catalogue = night.write_catalogue(tmp / "catalogue.ecsv")
    library = night.build_library(tmp / "library", chain, mono_chain, tel22_mono)
    settings = dict(
        raw_root=str(tmp / "raw"),
        night=night.NIGHT,
        catalogue=str(catalogue),
        library=str(library),
        calibration_dir=str(shared_data / "calibration"),
        calibration_pattern="*_fitted_parameters.h5",
        closed_after=0,
        # the copies of the tel 22 file stand for SST1M-1 runs too
        telescope_id_map={1: {22: 21}},
        n_workers=2,
        progress_bar=False,
    )
    return dict(tmp=tmp, runs=runs, settings=settings)


def write_config(path, settings, **more):
    """A nightly configuration file with ``settings`` (and ``more``)."""
    path.write_text(yaml.safe_dump({"NightlyTool": {**settings, **more}}))
    return path


def run_nightly(config_file, **kwargs):
    """Run the nightly to its end; return the CompletedProcess."""
    return subprocess.run(
        [NIGHTLY, f"--config={config_file}"],
        capture_output=True,
        text=True,
        timeout=900,
        **kwargs,
    )


def products(night_dir):
    """Final products under a night's directory -> (mtime_ns, inode)."""
    found = {}
    for pattern in ("*/*/dl?/*.h5", "*/*/dl3/*.fits.gz", "night_report.*"):
        for path in night_dir.glob(pattern):
            if not path.name.startswith("."):
                stat = path.stat()
                found[path] = (stat.st_mtime_ns, stat.st_ino)
    return found


def status(night_dir):
    """The status table as {key: row}."""
    table = Table.read(night_dir / "nightly_status.ecsv", format="ascii.ecsv")
    return {row["key"]: row for row in table}


def wait_for_complete(status_path, n, timeout=300):
    """Until ``n`` steps are complete in the status table."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if status_path.exists():
            try:
                table = Table.read(status_path, format="ascii.ecsv")
            except (OSError, ValueError):
                table = None
            if table is not None and np.count_nonzero(table["state"] == "complete") >= n:
                return
        time.sleep(0.2)
    raise AssertionError(f"{status_path}: fewer than {n} complete steps in {timeout} s")


@pytest.fixture(scope="session")
def processed_night(night_inputs):
    """The night killed after its first products, resumed, then run once more."""
    tmp = night_inputs["tmp"]
    analysis = tmp / "analysis"
    config_file = write_config(
        tmp / "nightly.yaml", night_inputs["settings"], analysis_dir=str(analysis)
    )
    night_dir = analysis / night.NIGHT
    killed = subprocess.Popen(
        [NIGHTLY, f"--config={config_file}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_complete(night_dir / "nightly_status.ecsv", 3)
    finally:
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait()
    time.sleep(1.0)
    after_kill = products(night_dir)
    resumed = run_nightly(config_file)
    after_resume = products(night_dir)
    # the third invocation finds nothing new: a run still being written (cron)
    # is left for later
    settings = night_inputs["settings"]
    # the night's other runs ended an hour ago
    hour_ago = time.time() - 3600
    for path in night_inputs["runs"].values():
        os.utime(path, (hour_ago, hour_ago))
    open_run = night.write_run(
        settings["raw_root"], 1, 3, f"{night.SOURCE}_W1", night_inputs["runs"][(1, 1)], 23
    )
    cron = write_config(
        tmp / "cron.yaml", settings, analysis_dir=str(analysis), closed_after=600
    )
    try:
        again = run_nightly(cron)
        open_row = status(night_dir)[f"raw/cs1/SST1M1_{night.NIGHT}_0003"]
    finally:
        open_run.unlink()
    return dict(
        dir=night_dir,
        config=config_file,
        after_kill=after_kill,
        resumed=resumed,
        after_resume=after_resume,
        again=again,
        after_again=products(night_dir),
        open_row=open_row,
    )
