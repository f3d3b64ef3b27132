"""
Events per second of the SST-1M processing, against the raw protozfits read rate.

All ratios are measured in one benchmark run, on the same inputs, so they are
comparable across machines even when the absolute rates are not. Parts
(``--parts``, all by default):

``stages``
    Per-stage rates on ``--input`` copied ``--copies`` times, the source's
    per-file setup excluded (reported apart):

    * ``protozfits``: the bare decode loop (open, iterate, touch every array used);
    * ``source (R1 in ADC)``: SST1MEventSource iteration without the R1
      calibration (checks, pixel order, R0, baseline-subtracted R1, trigger,
      pointing);
    * ``source``: the same with R1 calibrated to photo-electrons (the default);
    * ``source+calib``: plus ctapipe's CameraCalibrator (LocalPeakWindowSum 7/3);
    * ``source+calib+image``: plus ImageProcessor (cleaning and Hillas parameters).

``whole``
    Whole runs, setup included: 60 chunks of the real 100-event file and 20 of
    the real 32-event one (both shipped inside protozfits). Each measurement is
    a fresh process that imports the package, then times the source from its
    construction to its exhaustion and closing (file checks, pedestal
    look-ahead...) as the first source of the process (with the process's
    one-time costs, such as tables read once and modules imported lazily), the
    bare protozfits loop over the same chunks, and the source again in the
    same process (without them). The issue asks source / raw >= 0.8.

``process``
    ``ctapipe-process`` R0 -> DL1 with the shipped ``sst1m.yaml`` on the same
    runs: wall time of the subprocess from launch to exit.

``shower``
    A run with shower images (`benchmarks/shower_run.py`: prod4 SST-1M true
    images injected into the real noise of the 2018 file, written in the
    format of the real files; cached under the temporary directory): the stage
    table, the whole-run rates of the source alone and with calibration and
    image processing (with the fraction of shower images surviving the
    cleaning and their mean Hillas intensity), and ``ctapipe-process``.

``memory``
    RSS of the measuring process and of all its descendants (the source's
    decoder processes), sampled from /proc every 0.2 s over a 10 000-event run
    (100 chunks of the 100-event file, source+calib+image), at 10 %, 50 % and
    100 % of the events (the last event, before the source closes) and at its
    peak: it should be flat; and the child processes left once it closed.

With ``--before REV`` every part but ``stages`` also runs on a git worktree
of REV (``PYTHONPATH`` pointing at it), interleaved with the current tree in
each repetition, and the tables give the after/before ratios; ``--after REV``
measures a worktree of REV instead of the working tree (e.g. ``--after HEAD``
for the committed state while files are being edited). Worktrees are removed
at the end. Runs made of copies of one file set
``SST1MEventSource.allow_copied_chunks``.

Usage::

    python benchmarks/throughput.py [--parts stages,whole,process,shower,memory]
        [--before REV] [--after REV] [--repeat 3] [--quick]

``--quick`` makes every size small (a check that the benchmark works).
"""

import argparse
import hashlib
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

log = logging.getLogger("throughput")

REPO = Path(__file__).resolve().parents[1]
RESOURCES = Path(str(files("protozfits") / "tests/resources"))
#: real 2018 on-sky file, tel 22, 32 events
EMBEDDED = RESOURCES / "example_SST1M_20180822.fits.fz"
#: real 2017 commissioning file, tel 1, 100 events
EMBEDDED_100 = RESOURCES / "example_100evts.fits.fz"
CTAPIPE_PROCESS = str(Path(sys.executable).parent / "ctapipe-process")
CONFIG_RESOURCE = "ctapipe_sst1m/resources/sst1m.yaml"
PARTS = ("stages", "whole", "process", "shower", "memory")
SAMPLE_PERIOD = 0.2
MB = 2**20

DEFAULTS = {
    "copies": (20, 2),
    "chunks_100": (60, 4),
    "chunks_32": (20, 4),
    "shower_events": (2000, 300),
    "memory_chunks": (100, 5),
    "repeat": (3, 1),
}


# ---------------------------------------------------------------- measuring
# (run inside worker processes, which import the package of their tree)


def _config():
    """
    What users run: the shipped ctapipe-process configuration, plus a pointing
    so that the AltAz computation is part of the measurement, and copied chunks
    allowed (benchmark runs are copies of one file).
    """
    import yaml
    from traitlets.config import Config

    config = Config(
        yaml.safe_load((files("ctapipe_sst1m") / "resources/sst1m.yaml").read_text())
    )
    config.SST1MEventSource.pointing_ra = 83.633
    config.SST1MEventSource.pointing_dec = 22.0145
    config.SST1MEventSource.allow_copied_chunks = True
    return config


def raw_loop(chunks):
    """The bare protozfits decode loop; returns the number of events."""
    import protozfits

    n = 0
    for chunk in chunks:
        with protozfits.File(str(chunk)) as zfile:
            for event in zfile.Events:
                waveforms = event.hiGain.waveforms
                _ = (
                    waveforms.samples,
                    waveforms.pixelsIndices,
                    waveforms.baselines,
                    event.pixels_flags,
                )
                n += 1
    return n


def source_loop(
    chunks,
    config,
    calibrate=False,
    image=False,
    calibrate_r1=True,
    progress=None,
    at_end=None,
):
    """
    Iterate SST1MEventSource, optionally with ctapipe's stages.

    Parameters
    ----------
    chunks : list[Path]
    config : traitlets.config.Config
    calibrate, image : bool
        Add CameraCalibrator, and ImageProcessor.
    calibrate_r1 : bool
    progress : list or None
        ``progress[0]`` is set to the events done after each event.
    at_end : callable or None
        Called once the source is exhausted, before it is closed.

    Returns
    -------
    dict
        ``n`` events, ``setup`` seconds spent constructing the source (headers,
        size and checksum checks, first events, pedestal look-ahead), and with
        ``image``: ``showers`` (SUBARRAY events), ``survived`` (with a Hillas
        intensity after cleaning) and ``intensity`` (their mean Hillas
        intensity).
    """
    import numpy as np
    from ctapipe.calib import CameraCalibrator
    from ctapipe.containers import EventType
    from ctapipe.image import ImageProcessor

    from ctapipe_sst1m.io import SST1MEventSource

    n, showers, intensities = 0, 0, []
    start = time.perf_counter()
    with SST1MEventSource(chunks[0], config=config, calibrate_r1=calibrate_r1) as source:
        setup = time.perf_counter() - start
        calibrator = (
            CameraCalibrator(source.subarray, config=config) if calibrate else None
        )
        processor = ImageProcessor(source.subarray, config=config) if image else None
        for event in source:
            if calibrator is not None:
                calibrator(event)
            if processor is not None:
                processor(event)
                if event.trigger.event_type == EventType.SUBARRAY:
                    showers += 1
                    for dl1 in event.dl1.tel.values():
                        intensity = dl1.parameters.hillas.intensity
                        if np.isfinite(intensity):
                            intensities.append(intensity)
            n += 1
            if progress is not None:
                progress[0] = n
        if at_end is not None:
            at_end()
    result = {"n": n, "setup": setup}
    if image:
        result.update(
            showers=showers,
            survived=len(intensities),
            intensity=float(np.mean(intensities)) if intensities else float("nan"),
        )
    return result


def _stage_loops(config):
    return {
        "protozfits": lambda c: {"n": raw_loop(c), "setup": 0.0},
        "source (R1 in ADC)": lambda c: source_loop(c, config, calibrate_r1=False),
        "source": lambda c: source_loop(c, config),
        "source+calib": lambda c: source_loop(c, config, calibrate=True),
        "source+calib+image": lambda c: source_loop(
            c, config, calibrate=True, image=True
        ),
    }


def measure_stages(chunks, repeat):
    """
    Median events/s of every stage (stages interleaved in each repetition),
    setup excluded, and the median setup time per file of the source.
    """
    config = _config()
    loops = _stage_loops(config)
    source_loop(chunks[:1], config)  # warm up imports, numba and file caches
    rates = {name: [] for name in loops}
    setups = []
    n = 0
    for _ in range(repeat):
        for name, loop in loops.items():
            start = time.perf_counter()
            result = loop(chunks)
            n = result["n"]
            rates[name].append(n / (time.perf_counter() - start - result["setup"]))
            if name == "source":
                setups.append(result["setup"] / len(chunks))
    return {
        "rates": {name: statistics.median(r) for name, r in rates.items()},
        "setup": statistics.median(setups),
        "n": n,
    }


def measure_whole(chunks, image=False):
    """
    Seconds of the source over the whole run, setup included, and of the raw
    decode loop over the same chunks, in this (fresh) process.

    The source runs twice: first as the first source of the process (with the
    process's one-time costs: lazy imports, tables read once), then again
    (``again_seconds``: only what every run costs).
    """
    config = _config()
    raw_loop(chunks[:1])  # file caches and protozfits' code, for both loops
    start = time.perf_counter()
    result = source_loop(chunks, config, calibrate=image, image=image)
    result["source_seconds"] = time.perf_counter() - start
    start = time.perf_counter()
    n_raw = raw_loop(chunks)
    result["raw_seconds"] = time.perf_counter() - start
    if n_raw != result["n"]:
        raise RuntimeError(f"the source yielded {result['n']} events, protozfits {n_raw}")
    start = time.perf_counter()
    source_loop(chunks, config, calibrate=image, image=image)
    result["again_seconds"] = time.perf_counter() - start
    return result


def _descendants(pid):
    """Process ids of every descendant of ``pid``, from /proc."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stream:
                stat = stream.read()
        except OSError:  # ended meanwhile
            continue
        # the command name may hold spaces and parentheses: fields follow the last ')'
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _rss(pid):
    """Resident memory of ``pid`` in bytes, 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/statm") as stream:
            return int(stream.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


class RssSampler(threading.Thread):
    """
    Samples the RSS of this process and of its descendants every ``period`` s,
    with the events done at that time (``progress[0]``).
    """

    def __init__(self, progress, period=SAMPLE_PERIOD):
        super().__init__(daemon=True)
        self.progress = progress
        self.period = period
        self.samples = []
        self._halt = threading.Event()

    def sample(self):
        pid = os.getpid()
        children = _descendants(pid)
        self.samples.append(
            (
                self.progress[0],
                _rss(pid),
                sum(_rss(child) for child in children),
                len(children),
            )
        )

    def run(self):
        while not self._halt.wait(self.period):
            self.sample()

    def stop(self):
        self._halt.set()
        self.join()
        self.sample()


def measure_memory(chunks):
    """RSS samples over a source+calib+image run (see `RssSampler`)."""
    config = _config()
    progress = [0]
    sampler = RssSampler(progress)
    sampler.sample()
    sampler.start()
    start = time.perf_counter()
    end = []
    try:
        result = source_loop(
            chunks,
            config,
            calibrate=True,
            image=True,
            progress=progress,
            at_end=lambda: (sampler.sample(), end.append(sampler.samples[-1])),
        )
    finally:
        sampler.stop()
    result["seconds"] = time.perf_counter() - start
    result["samples"] = sampler.samples
    #: the last event done, before the source closed (children still running)
    result["at_end"] = end[0] if end else sampler.samples[-1]
    #: after the source closed
    result["closed"] = sampler.samples[-1]
    return result


def worker(kind, chunks, result_file, repeat):
    """Measure ``kind`` in this process and write the result as JSON."""
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("ctapipe_sst1m").setLevel(logging.ERROR)
    logging.getLogger("ctapipe").setLevel(logging.ERROR)
    # imported before anything is timed: imports are not part of the measurement
    import ctapipe_sst1m
    from ctapipe_sst1m.io import SST1MEventSource  # noqa: F401

    if kind == "stages":
        result = measure_stages(chunks, repeat)
    elif kind == "whole":
        result = measure_whole(chunks)
    elif kind == "whole-image":
        result = measure_whole(chunks, image=True)
    elif kind == "memory":
        result = measure_memory(chunks)
    else:
        raise ValueError(f"unknown worker kind {kind!r}")
    result["package"] = str(Path(ctapipe_sst1m.__file__).parents[1])
    Path(result_file).write_text(json.dumps(result))


# ------------------------------------------------------------- orchestrating


@dataclass
class Tree:
    """A source tree of the package that measurements run against."""

    label: str
    path: Path
    description: str


def _git(*args):
    return subprocess.run(
        ["git", "-C", str(REPO), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def working_tree():
    """The checkout this benchmark belongs to, as it is on disk."""
    commit = _git("rev-parse", "--short", "HEAD")
    dirty = _git("status", "--porcelain", "--", "ctapipe_sst1m")
    state = " + uncommitted changes in ctapipe_sst1m" if dirty else ""
    return Tree("after", REPO, f"working tree at {commit}{state}")


def add_worktree(label, revision, directory):
    """
    A detached git worktree of ``revision`` under ``directory``.

    Raises
    ------
    subprocess.CalledProcessError
        If git cannot resolve ``revision`` or add the worktree.
    """
    commit = _git("rev-parse", "--short", f"{revision}^{{commit}}")
    path = Path(directory) / f"wt_{label}"
    _git("worktree", "add", "--detach", str(path), commit)
    subject = _git("log", "-1", "--format=%s", commit)
    return Tree(label, path, f"{revision} = {commit} ({subject[:60]})")


def remove_worktree(tree):
    """Remove a worktree made by `add_worktree`."""
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree.path)],
        check=False,
        capture_output=True,
    )


def _environment(tree):
    """The environment that makes a subprocess import ``tree``'s package."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree.path)
    return env


def run_worker(tree, kind, chunks, workdir, repeat=1):
    """
    Run a measurement in a fresh process on ``tree``'s package.

    Raises
    ------
    RuntimeError
        If the worker fails (with the end of its output), or imported the
        package from another tree.
    """
    result_file = Path(workdir) / f"result_{tree.label}_{kind}.json"
    result_file.unlink(missing_ok=True)
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        kind,
        "--result",
        str(result_file),
        "--repeat",
        str(repeat),
        *map(str, chunks),
    ]
    done = subprocess.run(
        command,
        env=_environment(tree),
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0 or not result_file.is_file():
        raise RuntimeError(
            f"{kind} worker on {tree.description} failed (exit {done.returncode}):\n"
            + done.stderr[-3000:]
        )
    result = json.loads(result_file.read_text())
    if Path(result["package"]).resolve() != tree.path.resolve():
        raise RuntimeError(
            f"{kind} worker imported ctapipe_sst1m from {result['package']}, "
            f"not from {tree.path}"
        )
    return result


def run_process(tree, first_chunk, workdir, copied):
    """
    Wall seconds of ``ctapipe-process`` R0 -> DL1 with ``tree``'s sst1m.yaml.

    Raises
    ------
    RuntimeError
        If ctapipe-process fails, with the end of its log.
    """
    work = Path(tempfile.mkdtemp(prefix=f"process_{tree.label}_", dir=workdir))
    command = [
        CTAPIPE_PROCESS,
        "--input",
        str(first_chunk),
        "--config",
        str(tree.path / CONFIG_RESOURCE),
        "--output",
        str(work / "out.dl1.h5"),
        "--overwrite",
    ]
    if copied:
        command.append("--SST1MEventSource.allow_copied_chunks=True")
    log_path = work / "process.log"
    try:
        with log_path.open("w") as log_file:
            start = time.perf_counter()
            code = subprocess.call(
                command,
                env=_environment(tree),
                cwd=work,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
            seconds = time.perf_counter() - start
        if code != 0:
            raise RuntimeError(
                f"ctapipe-process on {tree.description} failed (exit {code}):\n"
                + log_path.read_text()[-3000:]
            )
        return seconds
    finally:
        shutil.rmtree(work, ignore_errors=True)


def make_run(source_file, copies, directory, stem="SST1M2_20180822_0001"):
    """Copy ``source_file`` as the chunks of one run; return the chunks."""
    directory.mkdir(parents=True, exist_ok=True)
    chunks = []
    for i in range(copies):
        chunk = directory / f"{stem}.{i:03d}.fits.fz"
        shutil.copyfile(source_file, chunk)
        chunks.append(chunk)
    return chunks


def count_events(chunks):
    """Events announced by the chunks' Events headers (ZNAXIS2)."""
    from astropy.io import fits

    total = 0
    for chunk in chunks:
        total += int(fits.getval(chunk, "ZNAXIS2", extname="Events"))
    return total


def shower_run(n_events, seed, cache_dir):
    """
    The shower run of `benchmarks/shower_run.py`, written once per content of
    that module, size and seed, and kept in ``cache_dir``.

    Raises
    ------
    RuntimeError
        If writing it fails, with the end of the writer's output.
    """
    script = Path(__file__).with_name("shower_run.py")
    code = hashlib.sha256(script.read_bytes()).hexdigest()[:12]
    directory = Path(cache_dir) / f"shower_{n_events}_{seed}_{code}"
    path = directory / "SST1M2_20240101_0001.fits.fz"
    if path.is_file():
        return [path]
    # written aside and renamed: an interrupted benchmark leaves no partial run
    partial = directory.with_name(f"{directory.name}.partial{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    command = [sys.executable, str(script), str(partial / path.name)]
    command += ["--events", str(n_events), "--seed", str(seed), "--tel", "22"]
    # in a subprocess: protozfits' writer prints to the standard output
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        raise RuntimeError(
            f"writing the shower run failed (exit {done.returncode}):\n"
            + done.stderr[-3000:]
        )
    shutil.rmtree(directory, ignore_errors=True)
    partial.rename(directory)
    print(done.stdout.strip().splitlines()[-1], file=sys.stderr)
    return [path]


def _interleaved(trees, repeat, measure):
    """``measure(tree)`` ``repeat`` times per tree, the trees' order alternating."""
    results = {tree.label: [] for tree in trees}
    for i in range(repeat):
        for tree in trees if i % 2 == 0 else trees[::-1]:
            results[tree.label].append(measure(tree))
    return results


def _median(values):
    return statistics.median(values) if values else float("nan")


# ------------------------------------------------------------------ the parts


def part_stages(after, args, workdir):
    chunks = make_run(args.input, args.copies, workdir / "stages")
    result = run_worker(after, "stages", chunks, workdir, repeat=args.repeat)
    print_stages(
        f"stages: {args.input.name} x {args.copies} = {result['n']} events, "
        f"median of {args.repeat}, setup excluded ({after.description})",
        result,
    )


def print_stages(title, result):
    rates = result["rates"]
    raw = rates["protozfits"]
    print(title)
    print(f"  {'stage':<22} {'events/s':>10} {'ratio to raw':>13}")
    for name, rate in rates.items():
        print(f"  {name:<22} {rate:>10.0f} {rate / raw:>13.2f}")
    print(
        f"  source setup: {result['setup'] * 1e3:.1f} ms per file (header, size and "
        "checksum checks, first event, pedestal look-ahead; not in the rates)"
    )


def _runs(args, workdir):
    """The whole-run inputs: (label, chunks, copied)."""
    return [
        (
            f"100-event file x {args.chunks_100}",
            make_run(EMBEDDED_100, args.chunks_100, workdir / "run100"),
            True,
        ),
        (
            f"32-event file x {args.chunks_32}",
            make_run(EMBEDDED, args.chunks_32, workdir / "run32"),
            True,
        ),
    ]


def part_whole(trees, runs, args, workdir):
    print(
        f"\nwhole run, setup included (construction to exhaustion and closing), "
        f"median of {args.repeat} fresh processes; 'first': the first source of "
        "the process (its one-time costs included), 'again': a second run in the "
        "same process; the issue asks source/raw >= 0.8"
    )
    header = f"  {'run':<24} {'events':>6} {'tree':<7} {'raw ev/s':>9} "
    header += f"{'first ev/s':>10} {'/raw':>5} {'again ev/s':>10} {'/raw':>5}"
    print(header)
    for label, chunks, _ in runs:
        results = _interleaved(
            trees, args.repeat, lambda t, c=chunks: run_worker(t, "whole", c, workdir)
        )
        first_rates, again_rates = {}, {}
        for tree in trees:
            rows = results[tree.label]
            n = rows[0]["n"]
            raw = _median([n / r["raw_seconds"] for r in rows])
            first = _median([n / r["source_seconds"] for r in rows])
            again = _median([n / r["again_seconds"] for r in rows])
            first_ratio = _median([r["raw_seconds"] / r["source_seconds"] for r in rows])
            again_ratio = _median([r["raw_seconds"] / r["again_seconds"] for r in rows])
            first_rates[tree.label] = first
            again_rates[tree.label] = again
            print(
                f"  {label:<24} {n:>6} {tree.label:<7} {raw:>9.0f} {first:>10.0f} "
                f"{first_ratio:>5.2f} {again:>10.0f} {again_ratio:>5.2f}"
            )
        _print_speedup(first_rates, "source, first")
        _print_speedup(again_rates, "source, again")


def _print_speedup(rates, what):
    if "before" in rates:
        print(f"  after/before ({what}): {rates['after'] / rates['before']:.2f}")


def part_process(trees, runs, args, workdir):
    print(
        f"\nctapipe-process R0->DL1 (each tree's sst1m.yaml), wall time from launch "
        f"to exit, median of {args.repeat}"
    )
    print(f"  {'run':<24} {'events':>6} {'tree':<7} {'wall s':>8} {'events/s':>9}")
    for label, chunks, copied in runs:
        n = count_events(chunks)
        results = _interleaved(
            trees,
            args.repeat,
            lambda t, c=chunks, k=copied: run_process(t, c[0], workdir, k),
        )
        rates = {}
        for tree in trees:
            wall = _median(results[tree.label])
            rates[tree.label] = n / wall
            print(f"  {label:<24} {n:>6} {tree.label:<7} {wall:>8.2f} {n / wall:>9.0f}")
        _print_speedup(rates, "ctapipe-process")


def part_shower(trees, args, workdir):
    chunks = shower_run(args.shower_events, args.shower_seed, args.cache_dir)
    after = next(tree for tree in trees if tree.label == "after")
    stages = run_worker(after, "stages", chunks, workdir, repeat=args.repeat)
    print()
    print_stages(
        f"shower run: {chunks[0].name}, {stages['n']} events, median of "
        f"{args.repeat}, setup excluded ({after.description})",
        stages,
    )
    whole = _interleaved(
        trees, args.repeat, lambda t: run_worker(t, "whole-image", chunks, workdir)
    )
    process = _interleaved(
        trees, args.repeat, lambda t: run_process(t, chunks[0], workdir, False)
    )
    print(
        f"\nshower run, whole run (setup included, fresh process), median of "
        f"{args.repeat}"
    )
    print(
        f"  {'tree':<7} {'raw ev/s':>9} {'source+calib+image ev/s first':>30} "
        f"{'again':>6} {'ctapipe-process ev/s':>21} {'images kept':>12} "
        f"{'mean intensity':>15}"
    )
    rates = {}
    for tree in trees:
        rows = whole[tree.label]
        n = rows[0]["n"]
        raw = _median([n / r["raw_seconds"] for r in rows])
        first = _median([n / r["source_seconds"] for r in rows])
        again = _median([n / r["again_seconds"] for r in rows])
        wall = _median(process[tree.label])
        rates[tree.label] = n / wall
        kept = rows[0]["survived"] / rows[0]["showers"]
        print(
            f"  {tree.label:<7} {raw:>9.0f} {first:>30.0f} {again:>6.0f} "
            f"{n / wall:>21.0f} {kept:>11.0%} {rows[0]['intensity']:>11.0f} p.e."
        )
    print(
        "  images kept: shower events with a Hillas intensity after the cleaning; "
        "mean intensity: theirs"
    )
    _print_speedup(rates, "ctapipe-process")


def part_memory(trees, args, workdir):
    chunks = make_run(EMBEDDED_100, args.memory_chunks, workdir / "memory")
    n = count_events(chunks)
    print(
        f"\nRSS over a {n}-event run (100-event file x {args.memory_chunks}, "
        f"source+calib+image), sampled every {SAMPLE_PERIOD} s; 100 %: the last "
        "event, before the source closes; children: all descendants (decoder "
        "processes), summed"
    )
    print(
        f"  {'tree':<7} {'process':<9} {'10 %':>8} {'50 %':>8} {'100 %':>8} "
        f"{'peak':>8}  processes"
    )
    for tree in trees:
        result = run_worker(tree, "memory", chunks, workdir)
        samples = result["samples"]
        total = result["n"]
        at = []
        for fraction in (0.1, 0.5):
            at.append(next(s for s in samples if s[0] >= fraction * total))
        at.append(result["at_end"])
        for name, column in (("parent", 1), ("children", 2)):
            values = [s[column] / MB for s in at]
            peak = max(s[column] for s in samples) / MB
            counts = "" if column == 1 else "/".join(str(s[3]) for s in at)
            print(
                f"  {tree.label:<7} {name:<9} "
                + " ".join(f"{v:>6.0f}MB" for v in values)
                + f" {peak:>6.0f}MB  {counts}"
            )
        print(
            f"  {tree.label:<7} {total} events in {result['seconds']:.1f} s, "
            f"{len(samples)} samples; after closing the source: "
            f"{result['closed'][3]} child processes"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])

    def sized(name, text):
        full, quick = DEFAULTS[name]
        return f"{text} (default {full}; {quick} with --quick)"

    parser.add_argument(
        "--parts",
        default=",".join(PARTS),
        help=f"comma-separated, of {','.join(PARTS)} (default: all)",
    )
    parser.add_argument(
        "--input", type=Path, default=EMBEDDED, help="stages: the file copied"
    )
    parser.add_argument("--copies", type=int, help=sized("copies", "stages: chunks"))
    parser.add_argument(
        "--chunks-100",
        type=int,
        help=sized("chunks_100", "whole, process: chunks of the 100-event run"),
    )
    parser.add_argument(
        "--chunks-32",
        type=int,
        help=sized("chunks_32", "whole, process: chunks of the 32-event run"),
    )
    parser.add_argument(
        "--shower-events",
        type=int,
        help=sized("shower_events", "shower: events of the shower run"),
    )
    parser.add_argument("--shower-seed", type=int, default=0, help="shower: seed")
    parser.add_argument(
        "--memory-chunks",
        type=int,
        help=sized("memory_chunks", "memory: chunks of the 100-event run"),
    )
    parser.add_argument(
        "--repeat", type=int, help=sized("repeat", "repetitions (median)")
    )
    parser.add_argument("--before", help="git revision to compare with")
    parser.add_argument("--after", help="git revision to measure instead of the tree")
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "ctapipe_sst1m_benchmark",
        help="where the shower run is kept between benchmark runs",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("chunks", nargs="*", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    for name, (full, quick) in DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    if args.worker:
        worker(args.worker, args.chunks, args.result, args.repeat)
        return
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; choose from {', '.join(PARTS)}")

    args.cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="throughput_") as tmp:
        workdir = Path(tmp)
        made = []
        try:
            after = working_tree()
            if args.after:
                after = add_worktree("after", args.after, workdir)
                made.append(after)
            trees = [after]
            if args.before:
                before = add_worktree("before", args.before, workdir)
                made.append(before)
                trees = [before, after]
            print(f"machine: {os.cpu_count()} cores; Python {sys.version.split()[0]}")
            for tree in trees:
                print(f"{tree.label}: {tree.description}")
            if "stages" in parts:
                print()
                part_stages(after, args, workdir)
            runs = None
            if "whole" in parts or "process" in parts:
                runs = _runs(args, workdir)
            if "whole" in parts:
                part_whole(trees, runs, args, workdir)
            if "process" in parts:
                part_process(trees, runs, args, workdir)
            if "shower" in parts:
                part_shower(trees, args, workdir)
            if "memory" in parts:
                part_memory(trees, args, workdir)
        finally:
            for tree in made:
                remove_worktree(tree)


if __name__ == "__main__":
    main()
