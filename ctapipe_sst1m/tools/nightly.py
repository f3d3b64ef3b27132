"""Process one observing night of both SST-1M telescopes to DL3, on Dask."""

import datetime
import fcntl
import importlib
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

from ctapipe.core import Tool, traits
from ctapipe.core.tool import ToolConfigurationError

from ..core.run_summary import print_summary, short_path
from ..nightly.discover import (
    DEFAULT_FILE_PATTERN,
    DEFAULT_RAW_PATTERN,
    CatalogueError,
    DiscoveryError,
    discover_night,
    night_of,
    read_catalogue,
)
from ..nightly.plan import MODES, plan_night
from ..nightly.status import StatusTable, summary_lines
from ..nightly.steps import (
    FAILED,
    KEPT,
    NightSettings,
    die_with_parent,
    product_complete,
    run_step,
)
from .night_report import HTML_NAME as REPORT_HTML

__all__ = ["NightlyTool", "main"]

#: stages in the order of the progress bars
_BAR_STAGES = ("dl1", "dl2", "dl3", "index")


class NightlyTool(Tool):
    """
    Turn one observing night of raw data of both telescopes into DL1, DL2 and
    DL3, sorted by target and by mode (each telescope alone, ``cs1`` and
    ``cs2``, and the coincident events, ``stereo``).

    Every step is the stock or package command a user would run by hand
    (``ctapipe-process``, ``ctapipe-sst1m-merge-stereo``,
    ``ctapipe-apply-models``, ``ctapipe-sst1m-dl3``, ``ctapipe-sst1m-dl3-index``),
    run as a Dask task: a local cluster by default, or any dask-jobqueue
    cluster, or an existing scheduler. A run's next step starts as soon as its
    previous one is done. One failed run never stops the night: it is retried,
    then reported with its log, and the steps depending on it are skipped.
    Complete products are kept: starting the tool again (e.g. from cron every
    few minutes during the night) processes only closed runs not yet done.
    """

    name = "ctapipe-sst1m-nightly"
    description = __doc__
    examples = """
    # last night, with the settings of sst1m_nightly.yaml (ctapipe-sst1m-quickstart)
    ctapipe-sst1m-nightly --config analysis/sst1m_nightly.yaml

    # a given night, 2 local workers
    ctapipe-sst1m-nightly --config analysis/sst1m_nightly.yaml --night 20240312 \\
        --workers 2
    """

    raw_root = traits.Path(
        directory_ok=True, file_ok=False, help="Fills {root} of raw_pattern"
    ).tag(config=True)
    raw_pattern = traits.Unicode(
        DEFAULT_RAW_PATTERN,
        help="Directory of one camera server's raw files of a night; fields {root}, "
        "{cs} (1, 2), {yyyy}, {mm}, {dd}, {date} (YYYYMMDD)",
    ).tag(config=True)
    file_pattern = traits.Unicode(
        DEFAULT_FILE_PATTERN, help="Glob of the raw files in that directory (same fields)"
    ).tag(config=True)
    analysis_dir = traits.Path(
        directory_ok=True,
        file_ok=False,
        help="Root of the product tree {analysis_dir}/{YYYYMMDD}/{target}/{mode}/{level}",
    ).tag(config=True)
    night = traits.Unicode(
        "",
        help="The night to process, YYYYMMDD (the date of its evening); empty: the "
        "current or last night in site_timezone (before local noon: the night that "
        "began the evening before)",
    ).tag(config=True)
    site_timezone = traits.Unicode(
        "Europe/Prague", help="Time zone of the site, for the date of a night"
    ).tag(config=True)
    catalogue = traits.Path(
        None,
        allow_none=True,
        exists=True,
        directory_ok=False,
        help="Source catalogue (name, ra, dec in deg, ICRS; optional aliases) for "
        "runs whose TARGET header gives a name without a position. Positions never "
        "come from a name resolver",
    ).tag(config=True)
    closed_after = traits.Float(
        300.0,
        min=0,
        help="Seconds without a change after which a night's last run of a "
        "telescope counts as closed (earlier runs are closed by the next one)",
    ).tag(config=True)
    modes = traits.List(
        traits.CaselessStrEnum(MODES),
        default_value=list(MODES),
        help="Products to make: cs1, cs2 (each telescope alone), stereo",
    ).tag(config=True)
    until = traits.CaselessStrEnum(
        ["dl1", "dl2", "dl3"],
        default_value="dl3",
        help="The last data level to make (dl1: no library needed)",
    ).tag(config=True)
    config_dir = traits.Path(
        None,
        allow_none=True,
        exists=True,
        file_ok=False,
        help="Directory of the stage configurations (sst1m.yaml, sst1m_stereo.yaml) "
        "as ctapipe-sst1m-quickstart writes them; none: the shipped ones",
    ).tag(config=True)
    library = traits.Path(
        None,
        allow_none=True,
        exists=True,
        file_ok=False,
        help="Model library: ze<zenith>_az<azimuth>_nsb<level>/{stereo,tel_021,tel_022}/ "
        "with energy.pkl, disp.pkl (mono), classifier.pkl, cuts.fits, irf.fits.gz",
    ).tag(config=True)
    calibration_dir = traits.Path(
        None,
        allow_none=True,
        exists=True,
        file_ok=False,
        help="Dated gain files (e.g. 20230917_0528_0529_Tel1_fitted_parameters.h5): "
        "each run takes its telescope's file closest in date; none: the shipped gains",
    ).tag(config=True)
    calibration_pattern = traits.Unicode("*.h5", help="Glob of the gain files").tag(
        config=True
    )
    telescope_id_map = traits.Dict(
        default_value={},
        help="Per camera server (1, 2), SST1MEventSource.telescope_id_map, e.g. "
        "{1: {1: 21}} for files that say telescopeID 1",
    ).tag(config=True)
    node_angle_scale = traits.Float(
        5.0,
        min=0.01,
        help="Degrees of pointing difference worth one unit of node distance",
    ).tag(config=True)
    node_nsb_scale = traits.Float(
        0.5,
        min=0.001,
        help="p.e. of NSB-level difference worth one unit of node distance",
    ).tag(config=True)
    dl3 = traits.Dict(
        default_value={"allow_empty_runs": True},
        help="DL3Tool settings of every DL3 step. allow_empty_runs: a short or "
        "cloudy run without a gamma-ray candidate is written (and counted) rather "
        "than failed",
    ).tag(config=True)
    retries = traits.Int(1, min=0, help="Extra attempts of a failed step").tag(
        config=True
    )
    step_timeout = traits.Float(
        0.0, min=0, help="Seconds a command may run before it is stopped (0: no limit)"
    ).tag(config=True)
    cluster = traits.Unicode(
        "local",
        help="local: distributed.LocalCluster (processes, one thread each); or the "
        "import path of a dask-jobqueue class, e.g. dask_jobqueue.SLURMCluster",
    ).tag(config=True)
    cluster_options = traits.Dict(
        default_value={}, help="Keyword arguments of the cluster class"
    ).tag(config=True)
    n_workers = traits.Int(
        0, min=0, help="Workers (jobs for a batch cluster); 0: one per core (local)"
    ).tag(config=True)
    scheduler_address = traits.Unicode(
        "", help="An existing Dask scheduler (tcp://host:8786); overrides cluster"
    ).tag(config=True)
    progress_bar = traits.Bool(True, help="Progress bars per stage").tag(config=True)
    retry_failed = traits.Bool(
        False,
        help="Redo steps that failed in an earlier invocation although their inputs "
        "did not change (by default they are reported, not redone)",
    ).tag(config=True)
    dry_run = traits.Bool(
        False, help="Discover and plan only: list the steps, run nothing"
    ).tag(config=True)
    report = traits.Bool(
        True,
        help="End with ctapipe-sst1m-night-report (night_report.html and .pdf in "
        "the night's directory), when a step ran or the report is missing",
    ).tag(config=True)

    aliases = {
        "night": "NightlyTool.night",
        "raw-root": "NightlyTool.raw_root",
        ("o", "analysis-dir"): "NightlyTool.analysis_dir",
        "library": "NightlyTool.library",
        "catalogue": "NightlyTool.catalogue",
        "workers": "NightlyTool.n_workers",
        "scheduler": "NightlyTool.scheduler_address",
        "retries": "NightlyTool.retries",
    }
    flags = {
        "progress": ({"NightlyTool": {"progress_bar": True}}, "Show progress bars"),
        "no-progress": ({"NightlyTool": {"progress_bar": False}}, "No progress bars"),
        "dry-run": ({"NightlyTool": {"dry_run": True}}, "Plan only, run nothing"),
        "no-report": (
            {"NightlyTool": {"report": False}},
            "Do not write the night report",
        ),
        "retry-failed": (
            {"NightlyTool": {"retry_failed": True}},
            "Redo the steps that failed before, even with unchanged inputs",
        ),
    }

    def _fail(self, message):
        raise ToolConfigurationError(message)

    def setup(self):
        if self.analysis_dir is None:
            self._fail("no analysis directory given (--analysis-dir)")
        if self.raw_root is None:
            self._fail("no raw data root given (--raw-root)")
        self.night_name = self.night or night_of(
            datetime.datetime.now(ZoneInfo(self.site_timezone)).replace(tzinfo=None)
        )
        try:
            self.catalogue_entries = (
                read_catalogue(self.catalogue) if self.catalogue else {}
            )
        except CatalogueError as err:
            self._fail(str(err))
        self.night_dir = Path(self.analysis_dir) / self.night_name
        self.invocation = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
        self.settings = NightSettings(
            config_dir=self.config_dir,
            library=self.library,
            calibration_dir=self.calibration_dir,
            calibration_pattern=self.calibration_pattern,
            telescope_id_map={int(k): v for k, v in self.telescope_id_map.items()},
            retries=self.retries,
            timeout=self.step_timeout,
            angle_scale=self.node_angle_scale,
            nsb_scale=self.node_nsb_scale,
            dl3_config=dict(self.dl3),
            bin_dir=Path(sys.executable).parent,
        )
        self.failed = []
        self.records = {}
        self.report_result = None

    # -- discovery and plan ----------------------------------------------------

    def _plan(self):
        try:
            runs = discover_night(
                self.raw_root,
                self.night_name,
                self.raw_pattern,
                self.file_pattern,
                self.catalogue_entries,
                self.closed_after,
            )
        except DiscoveryError as err:
            self._fail(str(err))
        steps, waiting = plan_night(
            runs, self.analysis_dir, self.night_name, self.modes, self.until
        )
        return runs, steps, waiting

    def _lock(self):
        self.night_dir.mkdir(parents=True, exist_ok=True)
        self.lock_file = (self.night_dir / ".nightly.lock").open("a+")
        try:
            fcntl.flock(self.lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.lock_file.seek(0)
            owner = self.lock_file.read().strip() or "unknown"
            self.log.warning(
                "%s: another ctapipe-sst1m-nightly is processing this night (%s); "
                "nothing to do",
                self.night_dir,
                owner,
            )
            return False
        self.lock_file.seek(0)
        self.lock_file.truncate()
        self.lock_file.write(f"pid {os.getpid()} since {time.strftime('%H:%M:%S')}\n")
        self.lock_file.flush()
        return True

    # -- the cluster ----------------------------------------------------------

    def _client(self):
        from distributed import Client, LocalCluster

        if self.scheduler_address:
            return Client(self.scheduler_address), None
        if self.cluster == "local":
            n = self.n_workers or os.cpu_count() or 1
            options = dict(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
            )
            options.update(self.cluster_options)
            cluster = LocalCluster(**options)
        else:
            module_name, _, class_name = self.cluster.rpartition(".")
            try:
                cls = getattr(importlib.import_module(module_name), class_name)
            except (ImportError, AttributeError, ValueError) as err:
                self._fail(
                    f"NightlyTool.cluster {self.cluster!r}: cannot import it ({err})"
                )
            cluster = cls(**self.cluster_options)
            cluster.scale(self.n_workers or 1)
        return Client(cluster), cluster

    # -- the night --------------------------------------------------------------

    def start(self):
        if not self._lock():
            self.steps, self.waiting = [], []
            self.status = None
            return
        runs, self.steps, self.waiting = self._plan()
        self.status = StatusTable(
            self.night_dir / "nightly_status.ecsv", read_only=self.dry_run
        )
        self.n_runs = len(runs)
        # runs waiting earlier and processed now are no longer listed as waiting
        current = {f"raw/cs{run.cs}/{run.label}" for run, _ in self.waiting}
        for key in [k for k in self.status.records if k.startswith("raw/")]:
            if key not in current:
                del self.status.records[key]
        for run, reason in self.waiting:
            record = dict(
                key=f"raw/cs{run.cs}/{run.label}",
                stage="raw",
                mode=f"cs{run.cs}",
                target=run.target_dir,
                run=run.label,
                state="failed" if run.problems and run.closed else "waiting",
                reason=reason,
                log="",
                product=str(run.files[0]),
                events_in=run.n_events,
            )
            self.status.update(record, self.invocation)
        todo = self._keep_complete()
        if self.dry_run:
            for step in todo:
                print(f"{step.key} -> {short_path(step.product)}")
            return
        if not todo:
            self.status.write()
        else:
            self._run(todo)
        if self.report and (todo or not (self.night_dir / REPORT_HTML).exists()):
            self.report_result = self._night_report()

    def _night_report(self):
        """
        Run ctapipe-sst1m-night-report on the night, as a user would; its
        output goes to night_report.log. Returns (ok, seconds, last line).
        """
        command = [
            str(self.settings.bin_dir / "ctapipe-sst1m-night-report"),
            str(self.night_dir),
            "--no-progress",
        ]
        if self.catalogue:
            command.append(f"--catalogue={self.catalogue}")
        log = self.night_dir / "night_report.log"
        start = time.monotonic()
        with log.open("w") as output:
            output.write(" ".join(command) + "\n")
            output.flush()
            code = subprocess.call(
                command,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # a killed nightly leaves no report being written behind it
                preexec_fn=die_with_parent,
            )
        lines = [line for line in log.read_text().splitlines() if line.strip()]
        return code == 0, time.monotonic() - start, lines[-1] if lines else "", log

    def _keep_complete(self):
        """Records for complete products; returns the steps to run."""
        todo, redone = [], set()
        self._not_retried = set()
        for step in self.steps:
            # a step after one that is redone is redone too (its input changes)
            counts = None
            if not any(d in redone for d in step.deps):
                counts = product_complete(step)
            if counts is None:
                # a step that failed before (and what follows it) is held, not
                # redone: its dependants' products stay valid
                if not self._failed_before(step, redone):
                    todo.append(step)
                    redone.add(step.key)
                continue
            old = self.status.records.get(step.key, {})
            record = dict(old) if old.get("state") in ("complete", KEPT) else {}
            record.update(
                key=step.key,
                stage=step.stage,
                mode=step.mode,
                target=step.target,
                run=step.label,
                product=str(step.product),
                log=record.get("log") or str(step.sidecar("log")),
                events_in=record.get("events_in", counts[0]),
                events_out=counts[1],
                state=record.get("state", KEPT),
            )
            self.records[step.key] = record
            if self.status.records.get(step.key, {}).get("state") not in (
                "complete",
                KEPT,
            ):
                self.status.update(dict(record, state=KEPT), self.invocation)
        return todo

    def _failed_before(self, step, redone):
        """
        True for a step that failed in an earlier invocation, after all its
        attempts, whose inputs did not change since: cron would otherwise redo
        a damaged run every few minutes. ``--retry-failed`` redoes them.
        """
        old = self.status.records.get(step.key)
        held = [d for d in step.deps if d in self._not_retried]
        # an index waits only if none of its runs can come
        if (
            old is not None
            and held
            and (step.stage != "index" or held == list(step.deps))
        ):
            # skipped after that failure: still skipped, for the same reason
            self._not_retried.add(step.key)
            self.records[step.key] = old
            return True
        if self.retry_failed or any(d in redone for d in step.deps):
            return False
        if old is None or old["state"] != FAILED or not old.get("finished"):
            return False
        inputs = [Path(p) for p in step.params.get("files", [])]
        inputs += [Path(step.params[k]) for k in ("dl1", "dl2") if k in step.params]
        changed = any(
            p.exists() and p.stat().st_mtime > float(old["finished"]) for p in inputs
        )
        if changed:
            return False
        self._not_retried.add(step.key)
        self.records[step.key] = old
        return True

    def _run(self, todo):
        from distributed import as_completed

        client, cluster = self._client()
        try:
            if client.dashboard_link:
                print(f"Dask dashboard: {client.dashboard_link}", file=sys.stderr)
            futures = {}
            for step in todo:
                upstream = [
                    futures[d] if d in futures else self.records[d] for d in step.deps
                ]
                futures[step.key] = client.submit(
                    run_step,
                    step,
                    self.settings,
                    *upstream,
                    key=f"{step.stage}-{step.mode}-{step.label}-{self.invocation}",
                    pure=False,
                )
            bars = self._bars(todo)
            by_future = {f: key for key, f in futures.items()}
            steps = {s.key: s for s in todo}
            for future in as_completed(list(futures.values())):
                key = by_future[future]
                try:
                    record = future.result()
                except Exception as err:
                    record = dict(
                        key=key,
                        stage=steps[key].stage,
                        mode=steps[key].mode,
                        target=steps[key].target,
                        run=steps[key].label,
                        state=FAILED,
                        reason=f"task lost: {type(err).__name__}: {err}"[:300],
                        log=str(steps[key].sidecar("log")),
                        product=str(steps[key].product),
                    )
                self.records[key] = record
                self.status.update(record, self.invocation)
                if record["state"] == FAILED:
                    self.failed.append(record)
                    if bars:
                        bars[record["stage"]].write(
                            f"FAILED {key}: {record['reason']}", file=sys.stderr
                        )
                if bars:
                    bars[record["stage"]].update(1)
            for bar in (bars or {}).values():
                bar.close()
        finally:
            client.close()
            if cluster is not None:
                cluster.close()

    def _bars(self, todo):
        if not self.progress_bar:
            return None
        from tqdm.auto import tqdm

        totals = {s: sum(1 for t in todo if t.stage == s) for s in _BAR_STAGES}
        return {
            stage: tqdm(
                total=totals[stage], desc=f"{stage:5s}", position=i, file=sys.stderr
            )
            for i, stage in enumerate(_BAR_STAGES)
        }

    def finish(self):
        if self.status is None:
            return
        records = [
            r for r in self.status.records.values() if not r["key"].startswith("raw/")
        ]
        waiting = [r for r in self.status.records.values() if r["key"].startswith("raw/")]
        rows = [
            ("night", f"{self.night_name}: {self.n_runs} runs found"),
            *summary_lines(records, self.invocation),
        ]
        bad_raw = [r for r in waiting if r["state"] == "failed"]
        for record in bad_raw[:5]:
            rows.append(("FAILED", f"{record['run']}: {record['reason']}"))
        not_now = [r for r in waiting if r["state"] != "failed"]
        if not_now:
            rows.append(
                (
                    "not processed",
                    f"{len(not_now)} runs (dark, transition, unknown, open)",
                )
            )
        rows.append(("status", short_path(self.status.path)))
        report_failed = False
        if self.report_result is not None:
            ok, seconds, last, log = self.report_result
            report_failed = not ok
            if ok:
                rows.append(
                    (
                        "report",
                        f"{short_path(self.night_dir / REPORT_HTML)} ({seconds:.0f} s)",
                    )
                )
            else:
                rows.append(("FAILED", f"night report: {last} (see {short_path(log)})"))
        print_summary("ctapipe-sst1m-nightly", rows)
        # the exit code tells the state of the night, failures of earlier
        # invocations included (they are reported, not redone)
        self.failed = [r for r in records if r["state"] == FAILED] + bad_raw
        if report_failed:
            self.failed.append({"key": "night report"})


def main():
    """Run the nightly; exit code 1 if any step failed."""
    tool = NightlyTool()
    tool.failed = []
    try:
        tool.run()
    except SystemExit as done:
        if done.code == 0 and tool.failed:
            sys.exit(1)
        raise
