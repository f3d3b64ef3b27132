"""Discovery, classification, plan and library choices of the nightly (no Dask)."""

import datetime
import fcntl
import os
import time

import numpy as np
import pytest
import yaml
from ctapipe.core import run_tool

from ctapipe_sst1m.io.pointing import Target
from ctapipe_sst1m.nightly.discover import (
    CatalogueError,
    DiscoveryError,
    classify_target,
    discover_night,
    night_of,
    read_catalogue,
)
from ctapipe_sst1m.nightly.library import (
    LibraryError,
    LibraryNode,
    RunConditions,
    closest_calibration,
    library_nodes,
    nearest_node,
)
from ctapipe_sst1m.nightly.plan import Step, merge_method, plan_night
from ctapipe_sst1m.nightly.steps import NightSettings, run_step
from ctapipe_sst1m.tools.nightly import NightlyTool
from ctapipe_sst1m.tools.quickstart import QuickStartTool

from ..chain import night


@pytest.fixture
def raw_night(tmp_path, raw_dir):
    runs = night.build_raw_night(
        tmp_path / "raw",
        raw_dir / "example_SST1M_20180822.fits.fz",
        raw_dir / "SST1M_01_20180822_001.fits.fz",
    )
    catalogue = read_catalogue(night.write_catalogue(tmp_path / "catalogue.ecsv"))
    return tmp_path / "raw", runs, catalogue


@pytest.mark.parametrize(
    ("value", "runtype", "kind", "name", "wobble", "source"),
    [
        ("Crab,83.633,22.0145", None, "science", "Crab", "UNDEF", "header"),
        ("Crab_W1_83.633_22.0145", None, "wobble", "Crab", "W1", "header"),
        ("crab nebula_W2", None, "wobble", "Crab", "W2", "catalogue"),
        ("Crab", None, "science", "Crab", "UNDEF", "catalogue"),
        ("Mrk999_W1", None, "unknown", "Mrk999", "W1", ""),
        ("Transition", None, "transition", "Transition", "UNDEF", ""),
        ("DARK", None, "dark", "DARK", "UNDEF", ""),
        ("Crab,83.633,22.0145", "darkrun", "dark", None, None, ""),
        (None, None, "unknown", None, None, ""),
    ],
)
def test_classify_target(tmp_path, value, runtype, kind, name, wobble, source):
    catalogue = read_catalogue(night.write_catalogue(tmp_path / "c.ecsv"))
    got_kind, target, got_source, reason = classify_target(value, runtype, catalogue)
    assert (got_kind, got_source) == (kind, source), reason
    if name is not None:
        assert (target.name, target.wobble) == (name, wobble)
    if source == "catalogue":
        assert target.ra == pytest.approx(83.6329)


def test_catalogue_refusals(tmp_path):
    path = tmp_path / "bad.ecsv"
    path.write_text(
        "# %ECSV 1.0\n# ---\n# datatype:\n"
        "# - {name: name, datatype: string}\nname\nCrab\n"
    )
    with pytest.raises(CatalogueError, match="lacks the columns"):
        read_catalogue(path)
    with pytest.raises(CatalogueError, match="not a readable"):
        read_catalogue(tmp_path / "missing.ecsv")


def test_night_of():
    utc = datetime.datetime(2024, 3, 13, 1, 30)
    assert night_of(utc, 1) == "20240312"
    assert night_of(datetime.datetime(2024, 3, 12, 21, 0), 1) == "20240312"
    assert night_of(datetime.datetime(2024, 3, 13, 12, 30), 1) == "20240313"


def test_discover_night(raw_night):
    root, _, catalogue = raw_night
    runs = discover_night(root, night.NIGHT, catalogue=catalogue, closed_after=0)
    labels = [r.label for r in runs]
    assert labels == [
        "SST1M1_20180822_0001",
        "SST1M1_20180822_0002",
        "SST1M2_20180822_0001",
        "SST1M2_20180822_0002",
        "SST1M2_20180822_0003",
        "SST1M2_20180822_0004",
    ]
    by_label = {r.label: r for r in runs}
    first = by_label["SST1M1_20180822_0001"]
    assert (first.kind, first.target.wobble, first.position_source) == (
        "wobble",
        "W1",
        "catalogue",
    )
    assert first.obs_id == 201808220001 and first.n_events == 32
    assert first.end - first.start == pytest.approx(43)
    assert by_label["SST1M2_20180822_0004"].kind == "dark"
    # the damaged run's headers are fine: it fails when read (DATASUM)
    assert by_label["SST1M2_20180822_0003"].processable
    with pytest.raises(DiscoveryError, match="not a date"):
        discover_night(root, "2018-08-22")


def test_last_run_closes_after_quiet_time(raw_night):
    root, paths, catalogue = raw_night
    now = time.time()
    for path in paths.values():
        os.utime(path, (now - 10, now - 10))
    runs = discover_night(
        root, night.NIGHT, catalogue=catalogue, closed_after=60, now=now
    )
    closed = {r.label: r.closed for r in runs}
    # an earlier run is closed by the next one, the last after 60 s of quiet
    assert closed["SST1M1_20180822_0001"] and not closed["SST1M1_20180822_0002"]
    runs = discover_night(root, night.NIGHT, catalogue=catalogue, closed_after=5, now=now)
    assert all(r.closed for r in runs)


def test_plan_night(raw_night, tmp_path):
    root, _, catalogue = raw_night
    runs = discover_night(root, night.NIGHT, catalogue=catalogue, closed_after=0)
    steps, waiting = plan_night(runs, tmp_path / "ana", night.NIGHT)
    keys = {s.key: s for s in steps}
    # per-run dependencies, never per stage
    assert keys["dl2/cs1/SST1M1_20180822_0001"].deps == ("dl1/cs1/SST1M1_20180822_0001",)
    merge = keys["dl1/stereo/SST1M_stereo_20180822_0001"]
    # run 1 of SST1M-1 overlaps run 1 of SST1M-2 only (header times)
    assert merge.deps == ("dl1/cs1/SST1M1_20180822_0001", "dl1/cs2/SST1M2_20180822_0001")
    assert merge.params["method"] == "SlidingWindow"
    index = keys["index/stereo/TestSrc"]
    assert set(index.deps) == {
        "dl3/stereo/SST1M_stereo_20180822_0001",
        "dl3/stereo/SST1M_stereo_20180822_0002",
    }
    assert merge.product == (
        tmp_path / "ana/20180822/TestSrc/stereo/dl1/SST1M_stereo_20180822_0001.dl1.h5"
    )
    # every step after its dependencies
    seen = set()
    for step in steps:
        assert set(step.deps) <= seen, step.key
        seen.add(step.key)
    assert [(r.label, why) for r, why in waiting] == [
        ("SST1M2_20180822_0004", "dark run (RUNTYPE darkrun)")
    ]
    assert merge_method("20230925") == "WhiteRabbitClosest"


def test_nearest_node():
    nodes = [
        LibraryNode(None, 20, 180, 2.4),
        LibraryNode(None, 40, 180, 2.4),
        LibraryNode(None, 20, 0, 2.4),
        LibraryNode(None, 20, 180, 4.0),
    ]
    # sst1mpipe would take the first zenith match; azimuth and NSB count here
    assert nearest_node(RunConditions(22, 170, 2.5, 10), nodes)[0] is nodes[0]
    assert nearest_node(RunConditions(22, 10, 2.5, 10), nodes)[0] is nodes[2]
    assert nearest_node(RunConditions(22, 180, 3.9, 10), nodes)[0] is nodes[3]
    assert nearest_node(RunConditions(35, 180, np.nan, 0), nodes)[0] is nodes[1]
    with pytest.raises(LibraryError, match="pointing is unknown"):
        nearest_node(RunConditions(np.nan, np.nan, 2.0, 3), nodes)


def test_library_nodes(tmp_path):
    for name in ("ze20_az180_nsb2.4", "ze40_az0_nsb3", "notanode"):
        (tmp_path / name).mkdir()
    nodes = library_nodes(tmp_path)
    assert [(n.zenith, n.azimuth, n.nsb) for n in nodes] == [(20, 180, 2.4), (40, 0, 3)]
    with pytest.raises(LibraryError, match="no library node"):
        library_nodes(tmp_path / "notanode")


def test_closest_calibration(shared_data):
    directory = shared_data / "calibration"
    pattern = "*_fitted_parameters.h5"
    path, days = closest_calibration(directory, 21, "20230301", pattern)
    # tel 1 files of 2023-02-28 and 2023-03-02: one day each, the earlier wins
    assert path.name.startswith("20230228_0112_0115_Tel1") and days == -1
    path, days = closest_calibration(directory, 22, "20230920", pattern)
    assert path.name.startswith("20230921_0149_0150_Tel2") and days == 1
    assert closest_calibration(None, 21, "20230301") == (None, None)


def test_shipped_config_dry_run(raw_night, tmp_path, capsys):
    """sst1m_nightly.yaml as the quickstart writes it, with a dry run."""
    root, _, _ = raw_night
    run_tool(QuickStartTool(), argv=["--workdir=analysis", "--quiet"], cwd=tmp_path)
    shipped = yaml.safe_load((tmp_path / "analysis/sst1m_nightly.yaml").read_text())
    assert shipped["NightlyTool"]["config_dir"] == str((tmp_path / "analysis").resolve())
    argv = [
        "--config=analysis/sst1m_nightly.yaml",
        f"--raw-root={root}",
        f"--analysis-dir={tmp_path / 'out'}",
        f"--night={night.NIGHT}",
        f"--catalogue={tmp_path / 'catalogue.ecsv'}",
        "--NightlyTool.closed_after=0",
        "--dry-run",
    ]
    capsys.readouterr()
    assert run_tool(NightlyTool(), argv=argv, cwd=tmp_path) == 0
    out = capsys.readouterr().out.splitlines()
    assert "dl1/cs1/SST1M1_20180822_0001 -> " in out[0]
    assert len(out) == 5 * 3 + 2 * 3 + 3


def test_unknown_target_is_not_processed():
    kind, target, _, reason = classify_target("Mrk999", None, {})
    assert kind == "unknown" and isinstance(target, Target)
    assert "not in the source catalogue" in reason


def test_dl3_step_interpolates_between_bracketing_nodes(tmp_path):
    """With nodes at zenith 10 and 30 deg, a run at 20 deg gets interpolated IRFs."""
    library = tmp_path / "library"
    for zenith in (10, 30, 50):
        mode = library / f"ze{zenith}_az180_nsb2.4" / "tel_021"
        mode.mkdir(parents=True)
        for name in ("irf.fits.gz", "cuts.fits"):
            (mode / name).write_bytes(b"not a FITS file")
    (library / "ze20_az0_nsb2.4" / "tel_021").mkdir(parents=True)
    dl2 = tmp_path / "run.dl2.h5"
    step = Step(
        "dl3/cs1/SST1M1_20240312_0001",
        "dl3",
        "cs1",
        "Crab",
        "SST1M1_20240312_0001",
        tmp_path / "dl3" / "SST1M_obs_202403120001.dl3.fits.gz",
        deps=("dl2/cs1/SST1M1_20240312_0001",),
        params=dict(dl2=str(dl2), tel_id=21, tel_ids=[21]),
    )
    upstream = dict(
        key="dl2/cs1/SST1M1_20240312_0001",
        state="complete",
        events_out=10,
        choices=dict(node="ze10_az180_nsb2.4", zenith=20.0, azimuth=178.0, nsb=2.4),
    )
    record = run_step(step, NightSettings(library=library, retries=0), upstream)
    # the dummy IRFs make the interpolation fail: one failure, recorded
    assert record["state"] == "failed" and record["attempts"] == 1
    script = step.sidecar("sh").read_text().splitlines()
    interpolate = next(line for line in script if "ctapipe-sst1m-interpolate-irf" in line)
    # the nodes of the chosen node's azimuth and NSB, not the az 0 node
    for zenith in (10, 30, 50):
        assert f"ze{zenith}_az180_nsb2.4/tel_021/irf.fits.gz" in interpolate
    assert "ze20_az0" not in interpolate and "--zenith=20.0" in interpolate
    assert record["choices"]["irf"].startswith("interpolated at zenith 20.0 deg")
    # DL3 with the interpolated IRFs, the chosen node's cuts, and no index
    dl3 = next(line for line in script if "ctapipe-sst1m-dl3 " in line)
    assert "ze10_az180_nsb2.4/tel_021/cuts.fits" in dl3 and "--no-index" in dl3
    assert ".SST1M1_20240312_0001.tmp-irf.fits.gz" in dl3
    assert "geometry_reconstructor: disp" in step.sidecar("yaml").read_text()


def test_second_invocation_during_a_night_exits(raw_night, tmp_path, capsys):
    """A nightly started while another one holds the night's lock does nothing."""
    root, _, _ = raw_night
    night_dir = tmp_path / "out" / night.NIGHT
    night_dir.mkdir(parents=True)
    with (night_dir / ".nightly.lock").open("a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("pid 12345 since 01:00:00\n")
        held.flush()
        argv = [
            f"--raw-root={root}",
            f"--analysis-dir={tmp_path / 'out'}",
            f"--night={night.NIGHT}",
            "--NightlyTool.closed_after=0",
        ]
        assert run_tool(NightlyTool(), argv=argv, cwd=tmp_path) == 0
    err = capsys.readouterr().err
    assert "another ctapipe-sst1m-nightly is processing this night (pid 12345" in err
    assert not (night_dir / "nightly_status.ecsv").exists()
