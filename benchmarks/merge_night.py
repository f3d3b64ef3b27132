"""
Time and peak memory of ``ctapipe-sst1m-merge-stereo`` on a night of DL1 files.

The real DigiCam file shipped with protozfits is processed once to DL1 by
``ctapipe-process`` (``sst1m.yaml``) as tel 21 and as tel 22; its rows are then
repeated into runs that fill a night: events at ``--rate`` Hz per telescope,
runs of ``--run-minutes``, 10 % of the events of each telescope lost, tel 22
stamped 200 ns (rms) from tel 21 by White Rabbit. The merge runs as its own
process, whose wall time and peak resident memory are reported.

Usage::

    python benchmarks/merge_night.py [--hours 8] [--rate 40] [--images]
"""

import argparse
import logging
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from importlib.resources import files
from pathlib import Path

import numpy as np
import tables
from ctapipe.core import run_tool
from ctapipe.tools.process import ProcessorTool

log = logging.getLogger("merge_night")

#: 2024-03-12T00:00:00 TAI, a night with White Rabbit clocks
NIGHT_START_NS = 1_710_201_600 * 1_000_000_000
#: Mrk 501
TARGET = (
    "--SST1MEventSource.pointing_ra=253.4676",
    "--SST1MEventSource.pointing_dec=39.7602",
)


def template_dl1(workdir, images):
    """The protozfits example file as DL1 of tel 21 and tel 22."""
    raw = Path(
        str(files("protozfits") / "tests/resources/example_SST1M_20180822.fits.fz")
    )
    config = files("ctapipe_sst1m") / "resources/sst1m.yaml"
    as_tel21 = workdir / "tel21.yaml"
    as_tel21.write_text("SST1MEventSource:\n  telescope_id_map: {22: 21}\n")
    templates = {}
    for tel_id, extra in ((21, [f"--config={as_tel21}"]), (22, [])):
        output = workdir / f"template_{tel_id}.h5"
        argv = [f"--input={raw}", f"--output={output}", f"--config={config}", *TARGET]
        argv += ["--no-progress", "--overwrite", *extra]
        if not images:
            argv.append("--DataWriter.write_dl1_images=False")
        if run_tool(ProcessorTool(), argv=argv, cwd=workdir, raises=False) != 0:
            raise RuntimeError("ctapipe-process failed on the template file")
        templates[tel_id] = output
    return templates


def write_run(template, output, obs_id, times_ns, event_ids):
    """A copy of ``template`` whose events are the template rows repeated."""
    shutil.copyfile(template, output)
    n = len(times_ns)
    seconds = times_ns // 1_000_000_000
    quarter_ns = (times_ns % 1_000_000_000) * 4
    high_res = np.stack([seconds, quarter_ns], axis=1).astype(np.uint32)
    with tables.open_file(output, mode="a") as h5file:
        n_template = h5file.root.dl1.event.subarray.trigger.nrows
        for node in list(h5file.walk_nodes("/", classname="Table")):
            path = node._v_pathname
            if "/event/" in path and node.nrows == n_template:
                rows = node.read()[np.arange(n) % n_template]
                rows["obs_id"] = obs_id
                rows["event_id"] = event_ids
                if "time" in rows.dtype.names:
                    rows["time"] = high_res
                node.remove_rows(0, node.nrows)
                node.append(rows)
            elif path.startswith("/configuration/observation/"):
                rows = node.read()
                for key in ("obs_id", "sb_id"):
                    if key in rows.dtype.names:
                        rows[key] = obs_id
                node.modify_rows(0, len(rows), rows=rows)
            elif path.startswith("/dl0/monitoring/telescope/pointing/"):
                rows = node.read()
                step = (times_ns[-1] - times_ns[0]) // max(len(rows) - 1, 1)
                node_times = times_ns[0] + step * np.arange(len(rows))
                rows["time"] = np.stack(
                    [node_times // 1_000_000_000, (node_times % 1_000_000_000) * 4],
                    axis=1,
                ).astype(np.uint32)
                node.modify_rows(0, len(rows), rows=rows)


def make_night(workdir, templates, hours, rate, run_minutes, rng):
    """DL1 files of a night for both telescopes; returns their paths and sizes."""
    n_runs = int(np.ceil(hours * 60 / run_minutes))
    per_run = int(rate * run_minutes * 60)
    paths = []
    for run in range(n_runs):
        start = NIGHT_START_NS + run * run_minutes * 60 * 1_000_000_000
        t = start + np.cumsum(rng.exponential(1e9 / rate, per_run)).astype(np.int64)
        t22 = t + np.rint(rng.normal(0, 200, per_run)).astype(np.int64)
        for tel_id, times in ((21, t), (22, t22)):
            kept = rng.random(per_run) > 0.1
            obs_id = 202403120000 + run + 1
            path = workdir / f"SST1M{tel_id - 20}_20240312_{run + 1:04d}.dl1.h5"
            write_run(
                templates[tel_id], path, obs_id, times[kept], np.flatnonzero(kept) + 1
            )
            paths.append(path)
        log.info("run %d/%d written", run + 1, n_runs)
    return paths, n_runs * per_run


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=8.0)
    parser.add_argument("--rate", type=float, default=40.0, help="events/s per telescope")
    parser.add_argument("--run-minutes", type=float, default=20.0)
    parser.add_argument("--images", action="store_true", help="keep DL1 images")
    parser.add_argument("--workdir", type=Path, help="default: a temporary directory")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        templates = template_dl1(workdir, args.images)
        start = time.perf_counter()
        rng = np.random.default_rng(1)
        paths, n_events = make_night(
            workdir, templates, args.hours, args.rate, args.run_minutes, rng
        )
        size = sum(p.stat().st_size for p in paths) / 2**20
        log.info(
            "night: %d runs per telescope, %d events per telescope before losses, "
            "%.0f MB of DL1 (written in %.0f s)",
            len(paths) // 2,
            n_events,
            size,
            time.perf_counter() - start,
        )

        output = workdir / "SST1M_stereo_20240312.dl1.h5"
        command = Path(sys.executable).parent / "ctapipe-sst1m-merge-stereo"
        start = time.perf_counter()
        subprocess.run(
            [command, *paths, "--output", output, "--no-progress", "--overwrite"],
            check=True,
            cwd=workdir,
        )
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        with tables.open_file(output) as h5file:
            n_stereo = h5file.root.dl1.event.subarray.trigger.nrows
        log.info(
            "merge: %.1f s wall (imports included), peak RSS %.0f MB; %d stereo "
            "events (%.0f per s), output %.0f MB",
            seconds,
            peak,
            n_stereo,
            n_stereo / seconds,
            output.stat().st_size / 2**20,
        )


if __name__ == "__main__":
    main()
