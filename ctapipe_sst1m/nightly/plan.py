"""
A night's task graph as data: steps, their dependencies and their products.

Pure and Dask-free: `plan_night` turns discovered runs into `Step` records
(what to run, for which run, writing what, after which other steps); the tool
submits them. Dependencies are per run, never per stage: a run's DL2 waits for
its own DL1 only, a stereo merge for the DL1 of the two telescopes' runs it
pairs, a DL3 index for the DL3 files of its target and mode.

The product tree::

    {analysis_dir}/{YYYYMMDD}/{target}/{cs1,cs2,stereo}/{dl1,dl2,dl3}/
"""

from dataclasses import dataclass, field
from pathlib import Path

from .discover import overlapping_runs

__all__ = [
    "MODES",
    "STAGES",
    "WHITE_RABBIT_NIGHT",
    "Step",
    "merge_method",
    "plan_night",
    "step_key",
    "tel_id_of",
]

#: processing modes: each telescope alone and the coincident events
MODES = ("cs1", "cs2", "stereo")
#: stages in the order of a run's processing
STAGES = ("dl1", "dl2", "dl3", "index")
#: first night whose camera clocks are synchronised by White Rabbit
WHITE_RABBIT_NIGHT = "20230925"
_TEL_IDS = {1: 21, 2: 22}


def step_key(stage, mode, label):
    """A step's key in the plan and the status table: ``dl2/cs1/SST1M1_20240312_0001``."""
    return "/".join((stage, mode, label))


def tel_id_of(cs):
    """The telescope id of camera server ``cs`` (1 -> 21, 2 -> 22)."""
    return _TEL_IDS[cs]


def merge_method(night):
    """
    How the stereo events of a night are paired.

    White Rabbit times from 2023-09-25; before, the camera clocks have an
    unknown offset that ``SlidingWindow`` finds from the time differences.
    """
    return "WhiteRabbitClosest" if night >= WHITE_RABBIT_NIGHT else "SlidingWindow"


@dataclass(frozen=True)
class Step:
    """One task of the night: one stage of one run (or one index)."""

    #: unique, e.g. ``dl2/cs1/SST1M1_20240312_0001``
    key: str
    stage: str
    mode: str
    target: str
    #: file-name stem of the run's products (the tel 21 run's for stereo)
    label: str
    #: the final product; complete products are kept on a new invocation
    product: Path
    #: keys of the steps whose products this one reads
    deps: tuple = ()
    #: stage-specific inputs: raw files, tel ids, target position, ...
    params: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def directory(self):
        """Where the step writes its product, config, log and command lines."""
        return self.product.parent

    def sidecar(self, suffix):
        """``{label}.{stage}.{suffix}`` next to the product (log, yaml, sh)."""
        return self.directory / f"{self.label}.{self.stage}.{suffix}"


def _run_steps(run, base, modes):
    mode = f"cs{run.cs}"
    target = run.target_dir
    params = dict(
        files=[str(p) for p in run.files],
        tel_id=tel_id_of(run.cs),
        cs=run.cs,
        obs_id=run.obs_id,
        night=run.date,
        target_name=run.target.name if run.target else "",
        ra=run.target.ra if run.target else None,
        dec=run.target.dec if run.target else None,
        position_source=run.position_source,
    )
    root = base / target / mode
    dl1 = Step(
        step_key("dl1", mode, run.label),
        "dl1",
        mode,
        target,
        run.label,
        root / "dl1" / f"{run.label}.dl1.h5",
        params=params,
    )
    steps = [dl1]
    if mode in modes:
        dl2 = Step(
            step_key("dl2", mode, run.label),
            "dl2",
            mode,
            target,
            run.label,
            root / "dl2" / f"{run.label}.dl2.h5",
            deps=(dl1.key,),
            params=dict(params, dl1=str(dl1.product), tel_ids=[params["tel_id"]]),
        )
        dl3 = Step(
            step_key("dl3", mode, run.label),
            "dl3",
            mode,
            target,
            run.label,
            root / "dl3" / f"SST1M_obs_{run.obs_id}.dl3.fits.gz",
            deps=(dl2.key,),
            params=dict(
                params,
                dl1=str(dl1.product),
                dl2=str(dl2.product),
                tel_ids=[params["tel_id"]],
            ),
        )
        steps += [dl2, dl3]
    return steps


def plan_night(runs, analysis_dir, night, modes=MODES, until="dl3"):
    """
    The steps of a night, in an order where every step follows its dependencies.

    Parameters
    ----------
    runs : list[RawRun]
        The night's runs (`discover_night`).
    analysis_dir : Path
        Root of the product tree.
    night : str
        ``YYYYMMDD``.
    modes : sequence of str
        Among ``cs1``, ``cs2``, ``stereo``; the DL1 of each telescope is always
        made when stereo is asked.
    until : str
        The last data level made: ``dl1``, ``dl2`` or ``dl3`` (with the indexes).

    Returns
    -------
    tuple
        (list[Step], list of (RawRun, reason) of runs not processed now:
        dark, transition, unknown, unreadable, still being written, or stereo
        runs waiting for the other telescope's run to close).
    """
    base = Path(analysis_dir) / night
    steps, waiting = [], []
    by_cs = {1: [], 2: []}
    for run in runs:
        by_cs.setdefault(run.cs, []).append(run)
    wanted = {m for m in modes}
    dl1_keys = {}
    for run in runs:
        if not run.closed:
            waiting.append((run, "still being written (not closed)"))
            continue
        if not run.processable:
            reason = run.problems[0] if run.problems else f"{run.kind} run ({run.reason})"
            waiting.append((run, reason))
            continue
        needed = f"cs{run.cs}" in wanted or "stereo" in wanted
        if not needed:
            continue
        run_steps = _run_steps(run, base, wanted)
        dl1_keys[(run.cs, run.run)] = run_steps[0]
        steps += run_steps
    if "stereo" in wanted:
        for run in by_cs.get(1, []):
            if (1, run.run) not in dl1_keys:
                continue
            partners = overlapping_runs(run, by_cs[1], by_cs.get(2, []))
            usable = [p for p in partners if (2, p.run) in dl1_keys]
            open_runs = [p for p in partners if not p.closed]
            if open_runs:
                waiting.append((run, f"stereo: tel 22 run {open_runs[0].run} not closed"))
                continue
            if not usable:
                reason = "stereo: no tel 22 run overlaps it in time"
                if partners:
                    reason = (
                        "stereo: the overlapping tel 22 runs are not processed "
                        f"({partners[0].reason})"
                    )
                waiting.append((run, reason))
                continue
            steps += _stereo_steps(
                run, [dl1_keys[(1, run.run)]], usable, dl1_keys, base, night
            )
    steps += _index_steps(steps, base)
    last = STAGES.index(until) if until != "dl3" else len(STAGES) - 1
    return [s for s in steps if STAGES.index(s.stage) <= last], waiting


def _stereo_steps(run, own, partners, dl1_keys, base, night):
    label = f"SST1M_stereo_{run.date}_{run.run:04d}"
    root = base / run.target_dir / "stereo"
    inputs = [own[0]] + [dl1_keys[(2, p.run)] for p in partners]
    params = dict(
        inputs=[str(s.product) for s in inputs],
        tel_ids=[21, 22],
        obs_id=run.obs_id,
        night=run.date,
        method=merge_method(night),
        partners=[p.label for p in partners],
    )
    merge = Step(
        step_key("dl1", "stereo", label),
        "dl1",
        "stereo",
        run.target_dir,
        label,
        root / "dl1" / f"{label}.dl1.h5",
        deps=tuple(s.key for s in inputs),
        params=params,
    )
    dl2 = Step(
        step_key("dl2", "stereo", label),
        "dl2",
        "stereo",
        run.target_dir,
        label,
        root / "dl2" / f"{label}.dl2.h5",
        deps=(merge.key,),
        params=dict(params, dl1=str(merge.product)),
    )
    dl3 = Step(
        step_key("dl3", "stereo", label),
        "dl3",
        "stereo",
        run.target_dir,
        label,
        root / "dl3" / f"SST1M_obs_{run.obs_id}.dl3.fits.gz",
        deps=(dl2.key,),
        params=dict(params, dl1=str(merge.product), dl2=str(dl2.product)),
    )
    return [merge, dl2, dl3]


def _index_steps(steps, base):
    groups = {}
    for step in steps:
        if step.stage == "dl3":
            groups.setdefault((step.target, step.mode), []).append(step)
    index = []
    for (target, mode), dl3 in sorted(groups.items()):
        directory = base / target / mode / "dl3"
        index.append(
            Step(
                step_key("index", mode, target),
                "index",
                mode,
                target,
                f"{target}_{mode}",
                directory / "hdu-index.fits.gz",
                deps=tuple(s.key for s in dl3),
                params=dict(
                    directory=str(directory),
                    runs=[s.label for s in dl3],
                    products=[str(s.product) for s in dl3],
                ),
            )
        )
    return index
