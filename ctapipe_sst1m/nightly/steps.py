"""
One function per stage: the stock command lines of a step, run on a worker.

A step writes, next to its product, the exact configuration it used
(``{label}.{stage}.yaml``), the command lines (``{label}.{stage}.sh``, with the
final output names: running it by hand redoes the step) and the log of every
attempt (``{label}.{stage}.log``). The commands write under a hidden temporary
name; the product is checked (completeness mark, consistency of the tables,
FITS checksums) and only then renamed to its final name. `run_step` never
raises for a failed command: it returns a small status record, so that one
run's failure never stops the night.
"""

import contextlib
import ctypes
import hashlib
import os
import re
import resource
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tables
import yaml
from ctapipe.io.hdf5dataformat import DL1_SUBARRAY_TRIGGER_TABLE

from ..core.products import (
    DL1,
    DL1_STEREO,
    DL3,
    DL3_INDEX,
    ProductError,
    verify_fits_product,
    verify_hdf5_product,
)
from ..core.resources import RESOURCES
from .library import (
    LibraryError,
    closest_calibration,
    library_nodes,
    nearest_node,
    run_conditions,
)

__all__ = [
    "NightSettings",
    "StepFailed",
    "die_with_parent",
    "product_complete",
    "run_step",
]

#: states of a step in the status table
COMPLETE, FAILED, SKIPPED, KEPT = "complete", "failed", "skipped", "kept"
#: prctl option: the child gets this signal when the worker thread that started it dies
_PR_SET_PDEATHSIG = 1
_COLOUR = re.compile(r"\x1b\[[0-9;]*m")


class StepFailed(RuntimeError):
    """A command of a step failed or its product is incomplete."""


@dataclass(frozen=True)
class NightSettings:
    """Everything a worker needs to run a step (picklable, paths only)."""

    #: directory of the stage configurations (sst1m.yaml...), None: shipped ones
    config_dir: Path | None = None
    #: model/cuts/IRF library (``ze*_az*_nsb*`` nodes)
    library: Path | None = None
    #: dated gain files; None: the shipped gains
    calibration_dir: Path | None = None
    calibration_pattern: str = "*.h5"
    #: per camera server, SST1MEventSource.telescope_id_map
    telescope_id_map: dict = field(default_factory=dict, hash=False)
    #: extra attempts after a failure
    retries: int = 1
    #: seconds a command may run before it is stopped (0: no limit)
    timeout: float = 0.0
    angle_scale: float = 5.0
    nsb_scale: float = 0.5
    #: extra configuration of every DL3 step (DL3Tool traits)
    dl3_config: dict = field(default_factory=dict, hash=False)
    #: bin directory of the tools (the workers' environment)
    bin_dir: Path | None = None


def _config_file(settings, name):
    if settings.config_dir is not None and (Path(settings.config_dir) / name).is_file():
        return Path(settings.config_dir) / name
    return RESOURCES / name


def _merge(base, extra):
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _write_config(step, settings, base_name, overrides):
    """Write the step's exact configuration: a base file plus the run's choices."""
    lines = []
    config = {}
    if base_name is not None:
        base = _config_file(settings, base_name)
        text = base.read_text()
        config = yaml.safe_load(text) or {}
        digest = hashlib.sha256(text.encode()).hexdigest()
        lines.append(f"# {base} (sha256 {digest})")
    lines.append("# with this run's settings (ctapipe-sst1m-nightly)")
    config = _merge(config, overrides)
    path = step.sidecar("yaml")
    path.write_text("\n".join(lines) + "\n" + yaml.safe_dump(config, sort_keys=False))
    return path


def _tool(settings, name):
    if settings.bin_dir is not None and (Path(settings.bin_dir) / name).exists():
        return str(Path(settings.bin_dir) / name)
    return str(Path(sys.executable).parent / name)


def _partial(path):
    # hidden, and keeping the final suffixes (the tools choose formats by suffix)
    path = Path(path)
    return path.with_name(
        f".{path.name.split('.')[0]}.partial.{'.'.join(path.name.split('.')[1:])}"
    )


def die_with_parent():
    """
    ``preexec_fn`` of the commands: they get SIGTERM when the thread that
    started them dies (Linux; elsewhere nothing).
    """
    # a killed worker must not leave its command running (it would write a
    # product behind the back of the next invocation)
    with contextlib.suppress(AttributeError, OSError):
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _first_error(log_path, since=0):
    """The first error line of the last attempt in a log (colours removed)."""
    try:
        text = Path(log_path).read_text(errors="replace")[since:]
    except OSError:
        return "no log"
    lines = [_COLOUR.sub("", line) for line in text.splitlines()]
    for marker in ("CRITICAL", "ERROR", "Error", "error"):
        for line in lines:
            if marker in line and not line.startswith("=="):
                # ctapipe's prefix (time, level, logger) says nothing the record does not
                return line.split(") : ")[-1].split("): ", 1)[-1].strip()[:300]
    tail = [line for line in lines if line.strip() and not line.startswith("==")]
    return tail[-1].strip()[:300] if tail else "no output"


def _run_commands(commands, log, timeout):
    """Run argv lists in order; raise StepFailed with the first failure's exit code."""
    for argv in commands:
        log.write(f"$ {shlex.join(argv)}\n")
        log.flush()
        try:
            result = subprocess.run(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,
                timeout=timeout or None,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise StepFailed(f"timed out after {timeout} s", -1) from None
        if result.returncode != 0:
            raise StepFailed(
                f"{Path(argv[0]).name} exited with {result.returncode}", result.returncode
            )


def _hdf5_events(path):
    with tables.open_file(path) as h5file:
        return h5file.get_node(DL1_SUBARRAY_TRIGGER_TABLE).nrows


def product_complete(step):
    """
    (events_in, events_out) of a step's product if it is complete, else None.

    Parameters
    ----------
    step : Step

    Returns
    -------
    tuple or None
    """
    path = step.product
    if not path.is_file():
        return None
    try:
        if step.stage == "dl1":
            kind = DL1_STEREO if step.mode == "stereo" else DL1
            mark = verify_hdf5_product(path, kinds=[kind])
            return mark.events_in, mark.events_out
        if step.stage == "dl2":
            # ctapipe-apply-models writes no mark of its own: the file is
            # renamed into place only after it was checked, so a consistent
            # file under the final name is complete
            verify_hdf5_product(path, require_mark=False)
            n = _hdf5_events(path)
            return n, n
        if step.stage == "dl3":
            header = verify_fits_product(path, kinds=[DL3])
            return header.get("SSTEVIN"), header.get("SSTEVOUT")
        if step.stage == "index":
            verify_fits_product(path, kinds=[DL3_INDEX])
            obs = path.with_name("obs-index.fits.gz")
            verify_fits_product(obs, kinds=[DL3_INDEX])
            return None, None
    except (ProductError, OSError, tables.HDF5ExtError, ValueError):
        return None
    return None


# -- the stages: each returns (config path, command lines, choices) -------------


def _dl1_commands(step, settings, upstream):
    p = step.params
    tel_id = p["tel_id"]
    source = {}
    id_map = settings.telescope_id_map.get(p["cs"]) or settings.telescope_id_map.get(
        str(p["cs"])
    )
    if id_map:
        source["telescope_id_map"] = {int(k): int(v) for k, v in id_map.items()}
    choices = {"target": p["target_name"], "position": p["position_source"]}
    if p["position_source"] == "catalogue":
        source["pointing_ra"] = float(p["ra"])
        source["pointing_dec"] = float(p["dec"])
    overrides = {"ProcessorTool": {"progress_bar": False}}
    if source:
        overrides["SST1MEventSource"] = source
    gain, days = closest_calibration(
        settings.calibration_dir, tel_id, p["night"], settings.calibration_pattern
    )
    if gain is not None:
        overrides["SST1MR1Calibrator"] = {"gain_file": [["id", tel_id, str(gain)]]}
        choices["calibration"] = f"{gain} ({days:+d} days)"
    else:
        choices["calibration"] = "shipped gains (no dated gain file for the telescope)"
    config = _write_config(step, settings, "sst1m.yaml", overrides)
    argv = [
        _tool(settings, "ctapipe-process"),
        f"--input={p['files'][0]}",
        f"--config={config}",
        f"--output={step.product}",
        "--overwrite",
    ]
    return config, [argv], choices


def _merge_commands(step, settings, upstream):
    p = step.params
    overrides = {
        "MergeStereoTool": {"progress_bar": False},
        "StereoEventMatcher": {"method": p["method"]},
    }
    config = _write_config(step, settings, None, overrides)
    argv = [
        _tool(settings, "ctapipe-sst1m-merge-stereo"),
        *p["inputs"],
        f"--config={config}",
        f"--output={step.product}",
        "--overwrite",
    ]
    choices = {"method": p["method"], "tel 22 runs": ", ".join(p["partners"])}
    return config, [argv], choices


def _node_for(step, settings, dl1):
    if settings.library is None:
        raise StepFailed("no model library (set NightlyTool.library)", -1)
    conditions = run_conditions(dl1, step.params["tel_ids"])
    try:
        node, distance = nearest_node(
            conditions,
            library_nodes(settings.library),
            settings.angle_scale,
            settings.nsb_scale,
        )
    except LibraryError as err:
        raise StepFailed(str(err), -1) from None
    choices = {
        "node": node.path.name,
        "distance": round(distance, 3),
        "zenith": round(conditions.zenith, 2),
        "azimuth": round(conditions.azimuth, 2),
        "nsb": None if not np.isfinite(conditions.nsb) else round(conditions.nsb, 3),
    }
    return node, choices


def _mode_dir(step):
    return "stereo" if step.mode == "stereo" else f"tel_{step.params['tel_id']:03d}"


def _dl2_commands(step, settings, upstream):
    p = step.params
    node, choices = _node_for(step, settings, p["dl1"])
    models = node.models(_mode_dir(step))
    if not models:
        raise StepFailed(f"{node.mode_dir(_mode_dir(step))}: no model files", -1)
    choices["models"] = [str(m) for m in models]
    commands = []
    dl1 = p["dl1"]
    if step.mode == "stereo":
        geometry = step.directory / f".{step.label}.tmp-geometry.dl1.h5"
        config = _write_config(
            step,
            settings,
            "sst1m_stereo.yaml",
            {"ProcessorTool": {"progress_bar": False}},
        )
        commands.append(
            [
                _tool(settings, "ctapipe-process"),
                f"--input={dl1}",
                f"--config={config}",
                f"--output={geometry}",
                "--overwrite",
            ]
        )
        dl1 = str(geometry)
    else:
        config = _write_config(
            step, settings, None, {"ApplyModels": {"progress_bar": False}}
        )
    # the classifier reads the tel-level energy (and disp) columns, which
    # ctapipe-apply-models writes only at the end of a call: two calls
    groups = [[m for m in models if m.name != "classifier.pkl"]]
    groups.append([m for m in models if m.name == "classifier.pkl"])
    groups = [g for g in groups if g]
    for i, group in enumerate(groups):
        last = i == len(groups) - 1
        output = (
            step.product if last else step.directory / f".{step.label}.tmp-{i}.dl2.h5"
        )
        commands.append(
            [
                _tool(settings, "ctapipe-apply-models"),
                f"--input={dl1}",
                *[f"--reconstructor={m}" for m in group],
                f"--config={config}",
                f"--output={output}",
                "--overwrite",
            ]
        )
        dl1 = str(output)
    return config, commands, choices


def _dl3_commands(step, settings, upstream):
    p = step.params
    dl2 = Path(p["dl2"])
    # the node the DL2 step chose (recorded in its status): DL2 and IRFs of one node
    chosen = upstream[0].get("choices", {}).get("node") if upstream else None
    if chosen is not None and settings.library is not None:
        node = next(
            (n for n in library_nodes(settings.library) if n.path.name == chosen), None
        )
        choices = {k: v for k, v in upstream[0]["choices"].items() if k != "models"}
    if chosen is None or node is None:
        # the DL2 step's record is gone (e.g. a product kept from a killed
        # night): the same choice again, from the DL1 (stereo DL2 has no pointing)
        node, choices = _node_for(step, settings, p["dl1"])
    mode = _mode_dir(step)
    overrides = {"DL3Tool": dict(settings.dl3_config)}
    if step.mode != "stereo":
        overrides["DL3Tool"].setdefault("geometry_reconstructor", "disp")
    try:
        irf, cuts = node.file(mode, "irf.fits.gz"), node.file(mode, "cuts.fits")
    except LibraryError as err:
        raise StepFailed(str(err), -1) from None
    choices.update(irf=str(irf), cuts=str(cuts))
    commands = []
    # IRFs interpolated in cos(zenith) between the nodes of the chosen node's
    # azimuth and NSB level that bracket the run (ctapipe-sst1m-interpolate-irf
    # takes the nearest node, and says so, where they do not)
    group = [
        n.mode_dir(mode) / "irf.fits.gz"
        for n in library_nodes(settings.library)
        if n.azimuth == node.azimuth
        and n.nsb == node.nsb
        and (n.mode_dir(mode) / "irf.fits.gz").is_file()
    ]
    zenith = choices.get("zenith")
    if len(group) >= 2 and zenith is not None and np.isfinite(zenith):
        interpolated = step.directory / f".{step.label}.tmp-irf.fits.gz"
        commands.append(
            [
                _tool(settings, "ctapipe-sst1m-interpolate-irf"),
                *[f"--irf={path}" for path in group],
                f"--zenith={zenith}",
                f"--output={interpolated}",
            ]
        )
        choices["irf"] = f"interpolated at zenith {zenith} deg from " + ", ".join(
            str(p) for p in group
        )
        irf = interpolated
    config = _write_config(step, settings, None, overrides)
    argv = [
        _tool(settings, "ctapipe-sst1m-dl3"),
        str(dl2),
        f"--irf={irf}",
        f"--cuts={cuts}",
        f"--config={config}",
        f"--output-dir={step.directory}",
        "--no-index",
        "--overwrite",
    ]
    return config, [*commands, argv], choices


def _index_commands(step, settings, upstream):
    argv = [
        _tool(settings, "ctapipe-sst1m-dl3-index"),
        step.params["directory"],
        "--overwrite",
    ]
    return None, [argv], {"runs": ", ".join(step.params["runs"])}


_STAGES = {
    ("dl1", False): _dl1_commands,
    ("dl1", True): _merge_commands,
    ("dl2", False): _dl2_commands,
    ("dl2", True): _dl2_commands,
    ("dl3", False): _dl3_commands,
    ("dl3", True): _dl3_commands,
    ("index", False): _index_commands,
    ("index", True): _index_commands,
}


def _record(step, state, **values):
    record = dict(
        key=step.key,
        stage=step.stage,
        mode=step.mode,
        target=step.target,
        run=step.label,
        state=state,
        exit_code=None,
        attempts=0,
        events_in=None,
        events_out=None,
        duration=0.0,
        log=str(step.sidecar("log")),
        product=str(step.product),
        reason="",
        choices={},
        host=socket.gethostname(),
    )
    record.update(values)
    # the largest command this worker ran so far, and the worker itself (MB)
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    record["peak_rss_mb"] = round(children, 1)
    record["worker_rss_mb"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
    )
    return record


def _write_script(step, commands):
    script = step.sidecar("sh")
    lines = ["#!/bin/sh", f"# {step.key}: redo this step by hand", "set -e"]
    lines += [shlex.join(argv) for argv in commands]
    script.write_text("\n".join(lines) + "\n")


def run_step(step, settings, *upstream):
    """
    Run one step on a worker and return its status record.

    Parameters
    ----------
    step : Step
    settings : NightSettings
    *upstream : dict
        Status records of the steps it depends on: if one of them did not end
        complete (or kept), the step is skipped with the reason.

    Returns
    -------
    dict
        ``state`` complete, failed or skipped; exit code, attempts, events in
        and out, duration, log, product, reason, choices.
    """
    bad = [r for r in upstream if r["state"] not in (COMPLETE, KEPT)]
    # an index lists the runs that made it to DL3: one failed run does not
    # keep the others out of it
    if bad and (step.stage != "index" or len(bad) == len(upstream)):
        first = bad[0]
        # name the failure at the root, not the chain of skipped steps after it
        reason = (
            first["reason"]
            if first["state"] == SKIPPED
            else (f"{first['key']} {first['state']}")
        )
        return _record(step, SKIPPED, reason=reason, log="")
    step.directory.mkdir(parents=True, exist_ok=True)
    log_path = step.sidecar("log")
    builder = _STAGES[(step.stage, step.mode == "stereo")]
    start = time.monotonic()
    attempts = 0
    error = None
    choices = {}
    with log_path.open("a") as log:
        while attempts <= settings.retries:
            attempts += 1
            log.write(
                f"== {step.key}: attempt {attempts} of {settings.retries + 1} on "
                f"{socket.gethostname()} pid {os.getpid()}, "
                f"{time.strftime('%Y-%m-%dT%H:%M:%S')}\n"
            )
            log.flush()
            partial = _partial(step.product)
            attempt_start = log.tell()
            try:
                _, commands, choices = builder(step, settings, upstream)
                _write_script(step, commands)
                final = str(step.product)
                if step.stage == "index":
                    runnable = commands
                else:
                    runnable = [
                        [a.replace(final, str(partial)) for a in argv]
                        for argv in commands
                    ]
                _run_commands(runnable, log, settings.timeout)
                if step.stage not in ("index",) and partial.exists():
                    os.replace(partial, step.product)
                counts = product_complete(step)
                if counts is None:
                    raise StepFailed(
                        f"{step.product}: not complete after the command succeeded", 0
                    )
                error = None
                break
            except StepFailed as err:
                error = err
                log.write(f"== failed: {err.args[0]}\n")
                log.flush()
            except Exception as err:
                error = StepFailed(f"{type(err).__name__}: {err}", -1)
                log.write(f"== failed: {error.args[0]}\n")
            finally:
                partial.unlink(missing_ok=True)
                for leftover in step.directory.glob(f".{step.label}.tmp-*"):
                    leftover.unlink(missing_ok=True)
    duration = time.monotonic() - start
    if error is not None:
        code = error.args[1] if len(error.args) > 1 else -1
        reason = error.args[0]
        if code not in (0, -1):
            reason = f"{reason}: {_first_error(log_path, attempt_start)}"
        return _record(
            step, FAILED, exit_code=code, attempts=attempts, duration=duration,
            reason=reason, choices=choices,
        )  # fmt: skip
    events_in, events_out = counts
    if events_in is None and upstream:
        events_in = upstream[0].get("events_out")
    if bad:
        # an index without the runs that failed upstream
        return _record(
            step, COMPLETE, exit_code=0, attempts=attempts, duration=duration,
            events_in=events_in, events_out=events_out, choices=choices,
            reason="without " + ", ".join(r["run"] for r in bad) + " (not at DL3)",
        )  # fmt: skip
    return _record(
        step, COMPLETE, exit_code=0, attempts=attempts, duration=duration,
        events_in=events_in, events_out=events_out, choices=choices,
    )  # fmt: skip
