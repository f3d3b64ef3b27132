"""
ctapipe-sst1m-nightly on a test night of real DigiCam files (tests/chain/night.py),
with a model library from the toy chain, on a local Dask cluster of 2 workers.

The night is processed once, the way it goes wrong at a site: killed (the
whole process group, SIGKILL) after its first products, started again to the
end, then started again with nothing new. The tests read what that left.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tables
import yaml
from astropy.table import Table
from ctapipe.tools.train_disp_reconstructor import TrainDispReconstructor
from ctapipe.tools.train_energy_regressor import TrainEnergyRegressor
from ctapipe.tools.train_particle_classifier import TrainParticleClassifier

from ctapipe_sst1m.core.products import verify_fits_product, verify_hdf5_product

from . import night
from .conftest import apply_models, config, cuts_and_irfs, process_toy_files, run_ok

#: runs the nightly on real files (minutes)
pytestmark = pytest.mark.slow

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
    for pattern in ("*/*/dl?/*.h5", "*/*/dl3/*.fits.gz"):
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


def test_killed_night_leaves_only_complete_products(processed_night):
    """Everything under a final name after the kill is complete, and kept."""
    assert processed_night["after_kill"], "no product before the kill"
    for path, stamp in processed_night["after_kill"].items():
        if path.suffix == ".h5":
            verify_hdf5_product(path, require_mark=path.name.endswith(".dl1.h5"))
        else:
            verify_fits_product(path)
        # kept as they were: not rewritten by the resumed night
        assert processed_night["after_resume"][path] == stamp, path
    assert "steps complete from earlier invocations" in processed_night["resumed"].stderr


def test_product_tree(processed_night):
    night_dir = processed_night["dir"]
    target = night_dir / night.SOURCE
    for mode in MODES:
        for level in ("dl1", "dl2", "dl3"):
            assert (target / mode / level).is_dir(), f"{mode}/{level}"
    for cs in (1, 2):
        for run in (1, 2):
            label = f"SST1M{cs}_{night.NIGHT}_{run:04d}"
            for level in ("dl1", "dl2"):
                directory = target / f"cs{cs}" / level
                assert (directory / f"{label}.{level}.h5").is_file()
                for suffix in ("yaml", "log", "sh"):
                    assert (directory / f"{label}.{level}.{suffix}").is_file()
            obs_id = f"{night.NIGHT}{run:04d}"
            assert (target / f"cs{cs}/dl3/SST1M_obs_{obs_id}.dl3.fits.gz").is_file()
    for run in (1, 2):
        label = f"SST1M_stereo_{night.NIGHT}_{run:04d}"
        assert (target / "stereo/dl1" / f"{label}.dl1.h5").is_file()
        assert (target / "stereo/dl2" / f"{label}.dl2.h5").is_file()
    # the command lines name the final products: replaying them redoes the step
    script = (target / "cs1/dl1" / f"SST1M1_{night.NIGHT}_0001.dl1.sh").read_text()
    assert f"--output={target}/cs1/dl1/SST1M1_{night.NIGHT}_0001.dl1.h5" in script
    # the exact configuration: the calibration closest in date and the catalogue position
    used = yaml.safe_load(
        (target / "cs1/dl1" / f"SST1M1_{night.NIGHT}_0001.dl1.yaml").read_text()
    )
    assert used["SST1MR1Calibrator"]["gain_file"][0][1] == 21
    assert "20230228_0112_0115_Tel1" in used["SST1MR1Calibrator"]["gain_file"][0][2]
    ra, dec = night.source_position()
    assert used["SST1MEventSource"]["pointing_ra"] == pytest.approx(ra)
    assert used["SST1MEventSource"]["pointing_dec"] == pytest.approx(dec)
    assert used["SST1MEventSource"]["telescope_id_map"] == {22: 21}
    merge = yaml.safe_load(
        (target / "stereo/dl1" / f"SST1M_stereo_{night.NIGHT}_0001.dl1.yaml").read_text()
    )
    # 2018: before White Rabbit
    assert merge["StereoEventMatcher"]["method"] == "SlidingWindow"


def test_status_table(processed_night):
    rows = status(processed_night["dir"])
    complete = [r for r in rows.values() if r["state"] in ("complete", "kept")]
    # 4 runs x (dl1, dl2, dl3) + 2 stereo x 3 + 3 indexes
    assert len(complete) == 4 * 3 + 2 * 3 + 3
    dl1 = rows[f"dl1/cs1/SST1M1_{night.NIGHT}_0001"]
    assert (dl1["events_in"], dl1["events_out"]) == (32, 32)
    merged = rows[f"dl1/stereo/SST1M_stereo_{night.NIGHT}_0001"]
    assert merged["events_out"] == 32  # every event pairs with its copy
    dl2 = rows[f"dl2/cs2/SST1M2_{night.NIGHT}_0001"]
    assert '"node": "ze20_az180_nsb2.4"' in dl2["choices"]
    assert Path(dl2["log"]).is_file()
    dark = rows[f"raw/cs2/SST1M2_{night.NIGHT}_0004"]
    assert dark["state"] == "waiting" and "dark run" in dark["reason"]


def test_damaged_run_fails_alone(processed_night):
    rows = status(processed_night["dir"])
    label = f"SST1M2_{night.NIGHT}_0003"
    failed = rows[f"dl1/cs2/{label}"]
    assert failed["state"] == "failed"
    assert failed["attempts"] == 2  # retried once
    assert failed["exit_code"] == 2
    assert f"{label}.fits.fz: corrupted data" in failed["reason"]
    for stage in ("dl2", "dl3"):
        skipped = rows[f"{stage}/cs2/{label}"]
        assert skipped["state"] == "skipped"
    for stage in ("dl2", "dl3"):
        assert rows[f"{stage}/cs2/{label}"]["reason"] == f"dl1/cs2/{label} failed"
    # the index of cs2 lists the runs that made it
    index = rows[f"index/cs2/{night.SOURCE}"]
    assert (
        index["state"] == "complete"
        and index["reason"] == f"without {label} (not at DL3)"
    )
    # reported in the summary with its log, and the exit code says so
    resumed = processed_night["resumed"]
    assert resumed.returncode == 1, resumed.stderr[-2000:]
    assert f"FAILED          dl1/cs2/{label}" in resumed.stderr
    assert f"{label}.dl1.log" in resumed.stderr.replace("\n", "").replace(" ", "")


def test_second_invocation_does_nothing(processed_night):
    again = processed_night["again"]
    assert "this run        nothing to do" in again.stderr, again.stderr[-2000:]
    assert processed_night["after_again"] == processed_night["after_resume"]
    # the damaged run is reported, not redone (its file did not change)
    assert again.returncode == 1
    log = processed_night["dir"] / night.SOURCE / "cs2/dl1"
    assert (log / f"SST1M2_{night.NIGHT}_0003.dl1.log").read_text().count("== dl1/") == 2


def test_dl3_read_by_gammapy(processed_night):
    from gammapy.data import DataStore

    for mode in MODES:
        directory = processed_night["dir"] / night.SOURCE / mode / "dl3"
        store = DataStore.from_dir(directory)
        obs_ids = sorted(int(o) for o in store.obs_table["OBS_ID"])
        assert obs_ids == [int(f"{night.NIGHT}0001"), int(f"{night.NIGHT}0002")], mode
        for observation in store.get_observations(obs_ids, required_irf="all-optional"):
            assert observation.aeff is not None
            assert len(observation.events.table) >= 0


def test_open_run_waits(processed_night):
    """A run still being written is left for a later invocation (cron)."""
    row = processed_night["open_row"]
    assert row["state"] == "waiting" and "not closed" in row["reason"]
    assert "7 runs found" in processed_night["again"].stderr


def dl3_events(night_dir):
    """The EVENTS table of every DL3 file, by relative path."""
    events = {}
    for path in sorted(night_dir.glob("*/*/dl3/SST1M_obs_*.dl3.fits.gz")):
        events[str(path.relative_to(night_dir))] = Table.read(path, hdu="EVENTS")
    return events


def dl2_tables(path):
    """Every DL2 table of an HDF5 file as arrays."""
    with tables.open_file(path) as h5file:
        return {
            node._v_pathname: node.read() for node in h5file.walk_nodes("/dl2", "Table")
        }


def test_slurm_night_identical(processed_night, night_inputs, tmp_path):
    """
    The same night through dask-jobqueue's SLURMCluster: the same products. The
    SLURM night makes the cs1 products only (each step costs seconds of imports
    on this 2-core machine; the local night makes all three modes).
    """
    from ..slurm import single_node_slurm

    with single_node_slurm(tmp_path) as slurm:
        options = slurm.cluster_options(sys.executable, tmp_path)
        config_file = write_config(
            tmp_path / "slurm.yaml",
            night_inputs["settings"],
            analysis_dir=str(tmp_path / "analysis"),
            cluster="dask_jobqueue.SLURMCluster",
            cluster_options=options,
            modes=["cs1"],
        )
        result = run_nightly(config_file, env={**os.environ, **slurm.env})
    assert result.returncode == 0, result.stderr[-3000:]
    slurm_dir = tmp_path / "analysis" / night.NIGHT
    local_dir = processed_night["dir"]
    local, batch = dl3_events(local_dir), dl3_events(slurm_dir)
    local = {name: table for name, table in local.items() if "/cs1/" in name}
    assert sorted(local) == sorted(batch) and len(local) == 2
    for name in local:
        for column in ("EVENT_ID", "TIME", "ENERGY", "RA", "DEC"):
            np.testing.assert_array_equal(local[name][column], batch[name][column])
    for path in local_dir.glob("*/cs1/dl2/*.dl2.h5"):
        ours, theirs = (
            dl2_tables(path),
            dl2_tables(slurm_dir / path.relative_to(local_dir)),
        )
        assert ours.keys() == theirs.keys()
        for key in ours:
            # field by field: NaN equals NaN there, not in a structured array
            for field in ours[key].dtype.names:
                np.testing.assert_array_equal(
                    ours[key][field], theirs[key][field], err_msg=f"{key} {field}"
                )
    rows = status(slurm_dir)
    assert rows[f"dl1/cs1/SST1M1_{night.NIGHT}_0001"]["state"] == "complete"
    assert rows[f"index/cs1/{night.SOURCE}"]["state"] == "complete"
