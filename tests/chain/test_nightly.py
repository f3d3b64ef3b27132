"""
ctapipe-sst1m-nightly on a test night of real DigiCam files (tests/chain/night.py),
with a model library from the toy chain, on a local Dask cluster of 2 workers.

The night is processed once (``processed_night``, tests/chain/night_run.py),
the way it goes wrong at a site: killed after its first products, started
again to the end, then started again with nothing new. The tests read what
that left.
"""

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import tables
import yaml
from astropy.table import Table

from ctapipe_sst1m.core.products import verify_fits_product, verify_hdf5_product

from . import night
from .night_run import MODES, run_nightly, status, write_config

#: runs the nightly on real files (minutes)
pytestmark = pytest.mark.slow


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
    # the report of the resumed invocation is kept: nothing changed since
    assert "report" not in again.stderr.split("status", 1)[1]
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
            # the report is tested on the local night
            report=False,
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
