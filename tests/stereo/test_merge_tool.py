"""ctapipe-sst1m-merge-stereo on real DL1 files, read back by stock ctapipe."""

import shutil
import subprocess
import sys
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
import tables
from ctapipe.core import run_tool
from ctapipe.instrument import SubarrayDescription
from ctapipe.io import HDF5EventSource, TableLoader, read_table

from ctapipe_sst1m.core.products import verify_hdf5_product
from ctapipe_sst1m.instrument import load_sst1m_subarray
from ctapipe_sst1m.stereo import SST1MArrayPointing
from ctapipe_sst1m.stereo.dl1_files import time_ns
from ctapipe_sst1m.tools.merge_stereo import MergeStereoTool

from ..helpers import edit_dl1_events
from .conftest import RESOURCES, process

#: runs ctapipe tools on real or toy files (seconds to minutes each)
pytestmark = pytest.mark.slow

MERGE_COMMAND = Path(sys.executable).parent / "ctapipe-sst1m-merge-stereo"
OFFSET_NS = 3_217_000
JITTER_NS = 200


def merge(tmp_path, *inputs, output="stereo.dl1.h5", extra=()):
    """Run the tool; return its exit code and output path."""
    code, output, _ = merge_logged(tmp_path, *inputs, output=output, extra=extra)
    return code, output


def merge_logged(tmp_path, *inputs, output="stereo.dl1.h5", extra=()):
    """Run the tool; return its exit code, output path and CRITICAL log lines."""
    output = tmp_path / output
    log_file = tmp_path / f"{output.name}.log"
    code = run_tool(
        MergeStereoTool(),
        argv=[*map(str, inputs), f"--output={output}", f"--log-file={log_file}", *extra],
        cwd=tmp_path,
        raises=False,
    )
    critical = [line for line in log_file.read_text().splitlines() if "CRITICAL" in line]
    return code, output, "\n".join(critical)


def _shifted_tel22(tmp_path, data_dl1, keep22=None, keep21=None, shift=None):
    """Copies of the two telescopes' DL1, tel 22 shifted by an offset + jitter."""
    tel21 = shutil.copy(data_dl1[21], tmp_path / data_dl1[21].name)
    tel22 = shutil.copy(data_dl1[22], tmp_path / data_dl1[22].name)
    n = len(read_table(tel22, "/dl1/event/subarray/trigger"))
    rng = np.random.default_rng(5)
    if shift is None:
        shift = OFFSET_NS + rng.integers(-JITTER_NS, JITTER_NS + 1, n)
    edit_dl1_events(tel22, keep=keep22, time_shift_ns=shift)
    if keep21 is not None:
        edit_dl1_events(tel21, keep=keep21)
    return tel21, tel22


def test_merge_real_events_sliding_window(tmp_path, data_dl1):
    """An unknown clock offset, jitter and events missing on both sides."""
    n = len(read_table(data_dl1[22], "/dl1/event/subarray/trigger"))
    keep22 = np.arange(n) % 7 != 3
    keep21 = np.arange(n) % 5 != 1
    tel21, tel22 = _shifted_tel22(tmp_path, data_dl1, keep22, keep21)
    code, output = merge(tmp_path, tel21, tel22, extra=["--method=SlidingWindow"])
    assert code == 0

    origin = read_table(output, "/dl1/event/subarray/sst1m_stereo")
    # the same raw event is every pair's two halves: no wrong pair
    np.testing.assert_array_equal(origin["tel1_event_id"], origin["tel2_event_id"])
    assert len(origin) == np.count_nonzero(keep21 & keep22)
    # relative to the offset found, within the jitter (+- the error of the offset)
    assert np.all(
        np.abs(origin["time_difference"].quantity.to_value(u.ns)) <= 2 * JITTER_NS
    )
    np.testing.assert_array_equal(origin["event_id"], origin["tel1_event_id"])

    counts = read_table(output, "/configuration/sst1m/stereo/event_counts")
    assert counts.meta["METHOD"] == "SlidingWindow"
    assert abs(counts.meta["CLOCK_OFFSET_NS"] - OFFSET_NS) <= JITTER_NS
    for tel_id, kept in ((21, keep21), (22, keep22)):
        mine = counts[counts["tel_id"] == tel_id]
        assert mine["n_events"].sum() == np.count_nonzero(kept)
        assert mine["n_events"][mine["status"] == "paired"] == len(origin)

    inputs = {
        tel_id: read_table(path, f"/dl1/event/telescope/parameters/tel_{tel_id:03d}")
        for tel_id, path in ((21, tel21), (22, tel22))
    }
    with HDF5EventSource(output) as source:
        assert source.subarray == load_sst1m_subarray()
        n_read = 0
        for event in source:
            n_read += 1
            assert sorted(event.trigger.tels_with_trigger) == [21, 22]
            assert set(event.dl1.tel) == {21, 22}
            for tel_id in (21, 22):
                pointing = event.monitoring.tel[tel_id].pointing
                assert np.isfinite(pointing.altitude.to_value(u.deg))
                row = inputs[tel_id][inputs[tel_id]["event_id"] == event.index.event_id]
                assert event.dl1.tel[tel_id].parameters.hillas.intensity == pytest.approx(
                    row["hillas_intensity"][0], nan_ok=True
                )
        assert n_read == len(origin)

    with TableLoader(output, pointing=True) as loader:
        events = loader.read_telescope_events()
    assert len(events) == 2 * len(origin)
    assert np.all(np.isfinite(events["telescope_pointing_altitude"]))


#: 2018-08-22 -> 2024-03-12, a night with White Rabbit clocks
YEARS_NS = 2029 * 86_400 * 1_000_000_000


def test_white_rabbit_closest(tmp_path, data_dl1):
    """The default method on White Rabbit times: 200 ns jitter, 10 us tolerance."""
    n = len(read_table(data_dl1[22], "/dl1/event/subarray/trigger"))
    rng = np.random.default_rng(11)
    jitter = rng.integers(-JITTER_NS, JITTER_NS + 1, n)
    # 3 tel 22 events 20 us late: beyond the tolerance, never paired
    late = np.isin(np.arange(n), [4, 9, 17])
    jitter[late] = 20_000
    keep22 = np.arange(n) % 6 != 2
    tel21, tel22 = _shifted_tel22(
        tmp_path, data_dl1, keep22=keep22, shift=YEARS_NS + jitter
    )
    edit_dl1_events(tel21, time_shift_ns=np.full(n, YEARS_NS))
    code, output = merge(tmp_path, tel21, tel22)
    assert code == 0
    origin = read_table(output, "/dl1/event/subarray/sst1m_stereo")
    np.testing.assert_array_equal(origin["tel1_event_id"], origin["tel2_event_id"])
    assert len(origin) == np.count_nonzero(keep22 & ~late)
    counts = read_table(output, "/configuration/sst1m/stereo/event_counts")
    assert counts.meta["METHOD"] == "WhiteRabbitClosest"
    unpaired21 = counts[(counts["tel_id"] == 21) & (counts["status"] == "not written")]
    assert unpaired21["n_events"].sum() == n - len(origin)


def test_swat_event_ids(tmp_path, data_dl1):
    """Equal event ids: the same pairs as the time methods find."""
    n = len(read_table(data_dl1[22], "/dl1/event/subarray/trigger"))
    keep22 = np.arange(n) % 3 != 0
    tel21, tel22 = _shifted_tel22(tmp_path, data_dl1, keep22=keep22)
    pairs = {}
    for method in ("SWATEventIDs", "SlidingWindow"):
        code, output = merge(
            tmp_path, tel21, tel22, output=f"{method}.h5", extra=[f"--method={method}"]
        )
        assert code == 0
        pairs[method] = read_table(output, "/dl1/event/subarray/sst1m_stereo")
    assert len(pairs["SWATEventIDs"]) == np.count_nonzero(keep22)
    _assert_tables_equal(
        pairs["SWATEventIDs"]["obs_id", "event_id", "tel2_event_id"],
        pairs["SlidingWindow"]["obs_id", "event_id", "tel2_event_id"],
        "ids",
    )


def test_include_unmatched(tmp_path, data_dl1):
    """Unpaired events of both telescopes are written alone and counted."""
    n = len(read_table(data_dl1[22], "/dl1/event/subarray/trigger"))
    keep22 = np.arange(n) % 4 != 0
    keep21 = np.arange(n) % 3 != 0
    tel21, tel22 = _shifted_tel22(tmp_path, data_dl1, keep22, keep21)
    code, output = merge(
        tmp_path, tel21, tel22, extra=["--method=SlidingWindow", "--include-unmatched"]
    )
    assert code == 0
    trigger = read_table(output, "/dl1/event/subarray/trigger")
    assert len(trigger) == np.count_nonzero(keep21 | keep22)
    n_tels = trigger["tels_with_trigger"].sum(axis=1)
    assert np.count_nonzero(n_tels == 2) == np.count_nonzero(keep21 & keep22)
    # unique ids, time ordered: what HDF5EventSource and TableLoader rely on
    keys = set(zip(trigger["obs_id"], trigger["event_id"], strict=True))
    assert len(keys) == len(trigger)
    assert np.all(np.diff(trigger["time"].mjd) >= 0)

    counts = read_table(output, "/configuration/sst1m/stereo/event_counts")
    assert set(counts["status"]) == {"paired", "written alone"}
    with TableLoader(output) as loader:
        events = loader.read_telescope_events()
    for tel_id, kept in ((21, keep21), (22, keep22)):
        assert np.count_nonzero(events["tel_id"] == tel_id) == np.count_nonzero(kept)


def test_array_pointing_for_the_stereo_reconstruction(tmp_path, data_dl1):
    """HDF5EventSource gives no array pointing for data; SST1MArrayPointing does."""
    tel21, tel22 = _shifted_tel22(tmp_path, data_dl1)
    code, output = merge(tmp_path, tel21, tel22, extra=["--method=SlidingWindow"])
    assert code == 0
    with HDF5EventSource(output, max_events=5) as source:
        mon = SST1MArrayPointing(subarray=source.subarray)
        for event in source:
            assert np.isnan(event.monitoring.pointing.array_altitude.to_value(u.deg))
            mon.fill_monitoring_container(event)
            tel = event.monitoring.tel[21].pointing
            array = event.monitoring.pointing
            assert u.isclose(array.array_altitude, tel.altitude, atol=1 * u.arcsec)
            assert u.isclose(array.array_azimuth, tel.azimuth, atol=1 * u.arcsec)

    dl2 = process(
        tmp_path,
        output,
        tmp_path / "stereo.dl2.h5",
        f"--config={RESOURCES / 'sst1m_stereo.yaml'}",
        "--no-progress",
    )
    geometry = read_table(dl2, "/dl2/event/subarray/geometry/HillasReconstructor")
    assert len(geometry) == len(read_table(output, "/dl1/event/subarray/trigger"))
    # both products complete: the merge's and the DL2 marked by SST1MArrayPointing
    merged_mark = verify_hdf5_product(output, kinds=("DL1-stereo",), deep=True)
    dl2_mark = verify_hdf5_product(dl2, kinds=("DL2",), deep=True)
    assert dl2_mark.events_in == dl2_mark.events_out == merged_mark.events_out
    assert dl2_mark.inputs == [output.name]


def test_prod4_merged_equals_two_telescope_stream(tmp_path, prod4_dl1):
    """(a) tel 19 and tel 33 merged == (b) one stream of both, event by event."""
    code, merged = merge(
        tmp_path, prod4_dl1["19"], prod4_dl1["33"], extra=["--include-unmatched"]
    )
    assert code == 0
    stream = prod4_dl1["19_33"]

    # the same telescopes per event (the two subarrays order their tel_ids differently)
    triggered = []
    for path in (merged, stream):
        subarray = SubarrayDescription.from_hdf(path)
        masks = read_table(path, "/dl1/event/subarray/trigger")["tels_with_trigger"]
        triggered.append([set(subarray.tel_mask_to_tel_ids(m)) for m in masks])
    assert triggered[0] == triggered[1]
    for path in (
        "/dl1/event/subarray/trigger",
        "/dl1/event/telescope/trigger",
        "/dl1/event/telescope/parameters/tel_019",
        "/dl1/event/telescope/parameters/tel_033",
        "/dl1/event/telescope/images/tel_033",
        "/simulation/event/subarray/shower",
        "/simulation/event/telescope/impact/tel_019",
    ):
        _assert_tables_equal(read_table(merged, path), read_table(stream, path), path)

    config = f"--config={RESOURCES / 'sst1m_stereo.yaml'}"
    dl2 = {
        name: process(
            tmp_path, path, tmp_path / f"{name}.dl2.h5", config, "--no-progress"
        )
        for name, path in (("merged", merged), ("stream", stream))
    }
    geometry = "/dl2/event/subarray/geometry/HillasReconstructor"
    a, b = (read_table(dl2[k], geometry) for k in ("merged", "stream"))
    assert len(a) == len(b) == 5
    assert np.count_nonzero(a["HillasReconstructor_is_valid"]) >= 1
    _assert_tables_equal(a, b, geometry)
    for tel in ("tel_019", "tel_033"):
        path = f"/dl2/event/telescope/impact/HillasReconstructor/{tel}"
        _assert_tables_equal(
            read_table(dl2["merged"], path), read_table(dl2["stream"], path), path
        )

    with TableLoader(dl2["merged"]) as loader:
        events = loader.read_subarray_events(dl2=True, simulated=True)
    valid = events["HillasReconstructor_is_valid"]
    separation = np.hypot(
        events["HillasReconstructor_alt"][valid] - events["true_alt"][valid],
        events["HillasReconstructor_az"][valid] - events["true_az"][valid],
    )
    assert np.all(separation < 1 * u.deg)


def _assert_tables_equal(a, b, name):
    assert a.colnames == b.colnames, name
    assert len(a) == len(b), name
    for column in a.colnames:
        # timing_* come from ctapipe's least-trimmed-squares fit on random
        # subsamples drawn from one global generator (ctapipe.fitting.FIT_RNG):
        # they depend on the images processed before, not only on this one
        if column == "tels_with_trigger" or column.startswith("timing_"):
            continue
        if hasattr(a[column], "mjd"):
            np.testing.assert_array_equal(a[column].mjd, b[column].mjd, err_msg=name)
            continue
        np.testing.assert_array_equal(
            np.asarray(a[column]), np.asarray(b[column]), err_msg=f"{name} {column}"
        )


def test_bad_inputs(tmp_path, data_dl1):
    """Clear errors, non-zero exit, no output file."""
    cases = {}
    tel21, tel22 = data_dl1[21], data_dl1[22]
    same = shutil.copy(tel21, tmp_path / "SST1M1_20180822_0002.dl1.h5")
    cases["same telescope"] = (tel21, same), "two telescopes, got 1"
    cases["one file"] = (tel21,), "two telescopes, got 1"
    cases["same file twice"] = (tel21, tel21), "more than once"

    next_night = tmp_path / "next_night"
    next_night.mkdir()
    _, shifted = _shifted_tel22(next_night, data_dl1, shift=86_400 * 1_000_000_000)
    cases["different nights"] = (tel21, shifted), "different nights"

    no_times = tmp_path / "no_times"
    no_times.mkdir()
    n = len(read_table(tel22, "/dl1/event/subarray/trigger"))
    with tables.open_file(tel22) as h5file:
        ns = time_ns(h5file.root.dl1.event.telescope.trigger.col("time"))
    _, zeroed = _shifted_tel22(no_times, data_dl1, shift=-ns)
    cases["no trigger times"] = (tel21, zeroed), "without a trigger time"

    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    _, empty = _shifted_tel22(empty_dir, data_dl1, keep22=np.zeros(n, bool), shift=0)
    cases["empty file"] = (tel21, empty), "contains no events"

    truncated = tmp_path / "truncated.dl1.h5"
    truncated.write_bytes(tel22.read_bytes()[:20_000])
    cases["truncated file"] = (tel21, truncated), "unreadable HDF5 (truncated or damaged"
    cases["missing file"] = (tel21, tmp_path / "nope.h5"), "does not exist"
    # White Rabbit times are only there since 2023-09-25
    cases["no White Rabbit"] = (
        (tel21, tel22),
        "use StereoEventMatcher.method=SlidingWindow",
    )

    for name, (inputs, message) in cases.items():
        code, output, critical = merge_logged(
            tmp_path, *inputs, output=f"{name.replace(' ', '_')}.h5"
        )
        assert code == 1, name
        assert message in critical, (name, critical)
        assert not output.exists(), name
        assert not list(tmp_path.glob(f".{output.name}*")), name
    # the file is named
    assert truncated.name in merge_logged(tmp_path, tel21, truncated)[2]
    assert empty.name in merge_logged(tmp_path, tel21, empty)[2]


def test_command_exit_status(tmp_path, data_dl1):
    """The console script: message on stderr, exit status 1, no output."""
    output = tmp_path / "x.h5"
    run = subprocess.run(
        [MERGE_COMMAND, data_dl1[21], data_dl1[22], "--output", output],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert run.returncode == 1
    assert "WhiteRabbitClosest needs White Rabbit times" in run.stderr
    assert not output.exists()


def test_simulation_and_data_refused(tmp_path, data_dl1, prod4_dl1):
    code, output, critical = merge_logged(tmp_path, data_dl1[21], prod4_dl1["19"])
    assert code == 1
    assert "mix simulated and observed events" in critical
    assert not output.exists()


def test_different_targets_refused(tmp_path, data_dl1, embedded_raw_file):
    """Runs overlapping in time but on targets > 0.2 deg apart are no stereo pair."""
    other = process(
        tmp_path,
        embedded_raw_file,
        tmp_path / "SST1M2_20180822_0001.dl1.h5",
        f"--config={RESOURCES / 'sst1m.yaml'}",
        "--SST1MEventSource.pointing_ra=253.4676",
        "--SST1MEventSource.pointing_dec=40.0",
        "--no-progress",
    )
    code, output, critical = merge_logged(
        tmp_path, data_dl1[21], other, extra=["--method=SlidingWindow"]
    )
    assert code == 1
    assert "targets are 0.24 deg apart" in critical
    assert not output.exists()


def test_existing_output_kept(tmp_path, data_dl1):
    output = tmp_path / "stereo.dl1.h5"
    output.write_text("keep me")
    code, _, critical = merge_logged(
        tmp_path, data_dl1[21], data_dl1[22], extra=["--method=SlidingWindow"]
    )
    assert code == 1
    assert "use --overwrite" in critical
    assert output.read_text() == "keep me"


def test_output_is_a_valid_ctapipe_file(tmp_path, data_dl1):
    """Reference metadata, data levels and column metadata survive the merge."""
    tel21, tel22 = _shifted_tel22(tmp_path, data_dl1)
    code, output = merge(tmp_path, tel21, tel22, extra=["--method=SlidingWindow"])
    assert code == 0
    assert HDF5EventSource.is_compatible(output)
    with tables.open_file(output) as merged, tables.open_file(tel22) as single:
        for key in ("CTA PRODUCT DATA MODEL VERSION", "CTA PROCESS TYPE"):
            assert merged.root._v_attrs[key] == single.root._v_attrs[key]
        assert (
            merged.root._v_attrs["CTA PRODUCT ID"]
            != single.root._v_attrs["CTA PRODUCT ID"]
        )
        path = "/dl1/event/telescope/parameters/tel_022"
        attrs = [_user_attrs(f.get_node(path)) for f in (merged, single)]
        assert attrs[0] == attrs[1]
        assert any(k.endswith("_UNIT") for k in attrs[0])
    pointing = read_table(output, "/dl0/monitoring/telescope/pointing/tel_021")
    assert len(pointing) == len(
        read_table(tel21, "/dl0/monitoring/telescope/pointing/tel_021")
    )


def _user_attrs(node):
    return {k: str(node.attrs[k]) for k in node.attrs._f_list("user")}
