"""
ctapipe-sst1m-nightly on a synthetic night, with 1 and with 2 local workers.

The night: ``--runs`` runs per telescope, each a copy of the real DigiCam file
shipped inside protozfits (32 events, tel 22; the SST1M-1 copies are mapped to
tel 21), with a TARGET header and header times one hour apart, processed to
DL1 and stereo DL1 (``until: dl1``: the stage whose cost grows with the data;
DL2 and DL3 need a model library). Both worker counts process the same night
in the same benchmark run, each into its own product tree.

Reported:

* wall time and speed-up (1 worker / 2 workers);
* orchestration overhead per step: wall time with 1 worker minus the time the
  steps' commands took (from the status table), divided by the steps;
* peak memory: the largest command a worker ran (max RSS of its children) and
  the largest worker process itself.

Usage::

    python benchmarks/nightly.py [--runs 12] [--workers 1 2]
"""

import argparse
import subprocess
import sys
import tempfile
import time
from importlib.resources import files
from pathlib import Path

import numpy as np
import yaml
from astropy.table import Table

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.chain import night  # noqa: E402 - the test night's builders

NIGHTLY = str(Path(sys.executable).parent / "ctapipe-sst1m-nightly")


def build_night(root, n_runs):
    """``n_runs`` runs per telescope under ``root`` (site layout)."""
    raw = files("protozfits") / "tests/resources/example_SST1M_20180822.fits.fz"
    raw = Path(str(raw))
    for cs in (1, 2):
        for run in range(1, n_runs + 1):
            # header times: one run per hour from 00:00 of the night's date
            hour = (run - 1) % 24
            night.write_run(root, cs, run, f"{night.SOURCE}_W{1 + run % 2}", raw, hour)
    return root


def run_night(workdir, raw_root, catalogue, n_workers):
    """Process the night with ``n_workers``; return wall time and the status."""
    config = workdir / f"nightly_{n_workers}.yaml"
    analysis = workdir / f"analysis_{n_workers}"
    settings = dict(
        raw_root=str(raw_root),
        analysis_dir=str(analysis),
        night=night.NIGHT,
        catalogue=str(catalogue),
        closed_after=0,
        telescope_id_map={1: {22: 21}},
        n_workers=n_workers,
        until="dl1",
        progress_bar=False,
    )
    config.write_text(yaml.safe_dump({"NightlyTool": settings}))
    start = time.perf_counter()
    result = subprocess.run(
        [NIGHTLY, f"--config={config}"], capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"nightly with {n_workers} workers failed:\n{result.stderr[-3000:]}")
    status = Table.read(analysis / night.NIGHT / "nightly_status.ecsv")
    return wall, status[status["state"] == "complete"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=12, help="runs per telescope")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nightly_bench_") as tmp:
        tmp = Path(tmp)
        raw_root = build_night(tmp / "raw", args.runs)
        catalogue = night.write_catalogue(tmp / "catalogue.ecsv")
        results = {}
        for n in args.workers:
            results[n] = run_night(tmp, raw_root, catalogue, n)
        print(
            f"synthetic night: {2 * args.runs} runs of 32 real events "
            f"({args.runs} per telescope), R0 -> DL1 and stereo DL1"
        )
        print(
            f"{'workers':>8} {'steps':>6} {'wall s':>8} {'steps s':>8} "
            f"{'overhead s/step':>16} {'command peak MB':>16} {'worker peak MB':>15}"
        )
        for n, (wall, status) in results.items():
            busy = float(np.sum(status["duration"]))
            overhead = (wall - busy / n) / len(status)
            print(
                f"{n:>8d} {len(status):>6d} {wall:>8.1f} {busy:>8.1f} {overhead:>16.2f} "
                f"{np.nanmax(status['peak_rss_mb']):>16.0f} "
                f"{np.nanmax(status['worker_rss_mb']):>15.0f}"
            )
        if 1 in results and 2 in results:
            print(f"speed-up 2 workers / 1 worker: {results[1][0] / results[2][0]:.2f}x")


if __name__ == "__main__":
    main()
