"""Merge the DL1 files of SST-1M tel 21 and tel 22 into one file of stereo events."""

from pathlib import Path

import numpy as np
import tables
from astropy.table import Table
from ctapipe.core import Provenance, Tool, traits
from ctapipe.io import write_table

from ..core.products import (
    DL1_STEREO,
    atomic_output,
    remove_stale_partials,
    write_hdf5_mark,
)
from ..core.run_summary import plural, print_summary, short_path
from ..stereo.dl1_files import (
    StereoInputError,
    concatenate_events,
    group_by_telescope,
    read_telescope_events,
)
from ..stereo.matching import StereoEventMatcher
from ..stereo.merge import (
    COUNTS_TABLE,
    plan_stereo_events,
    union_subarray,
    write_origin_table,
    write_stereo_file,
)
from ..version import __version__

__all__ = ["MergeStereoTool", "main"]

#: largest angle between the targets of overlapping runs of the two telescopes
MAX_TARGET_SEPARATION_DEG = 0.2
_NIGHT_NS = 86400 * 1_000_000_000
_NOON_NS = 43200 * 1_000_000_000


class MergeStereoTool(Tool):
    """
    Pair the events of two SST-1M telescopes into stereo DL1 events.

    The inputs are single-telescope DL1 files written by ``ctapipe-process``
    (one run each, or all runs of a night of both telescopes); the output is
    one DL1 file of two-telescope events that ``ctapipe-process`` (with
    ``sst1m_stereo.yaml``), ``ctapipe-apply-models`` and the IRF tools read
    like any ctapipe file. Events are paired one-to-one (see
    StereoEventMatcher.method); pairs keep the first telescope's
    (obs_id, event_id), the original ids of both are in
    ``/dl1/event/subarray/sst1m_stereo``. Unpaired events are counted by
    reason (``/configuration/sst1m/stereo/event_counts``) and, with
    ``--include-unmatched``, written as single-telescope events.
    """

    name = "ctapipe-sst1m-merge-stereo"
    description = __doc__
    examples = """
    ctapipe-sst1m-merge-stereo SST1M1_20240101_0001.dl1.h5 \\
        SST1M2_20240101_0001.dl1.h5 --output SST1M_stereo_20240101_0001.dl1.h5

    # a night, data from before White Rabbit
    ctapipe-sst1m-merge-stereo dl1/SST1M?_20180822_*.dl1.h5 \\
        --method SlidingWindow --output stereo_20180822.dl1.h5
    """

    input_files = traits.List(
        traits.Path(exists=True, directory_ok=False),
        default_value=[],
        help="Single-telescope DL1 files of the two telescopes (also positional)",
    ).tag(config=True)
    output_path = traits.Path(
        directory_ok=False, help="Output file of stereo DL1 events"
    ).tag(config=True)
    include_unmatched = traits.Bool(
        False, help="Also write unpaired events, as single-telescope events"
    ).tag(config=True)
    overwrite = traits.Bool(False, help="Replace an existing output file").tag(
        config=True
    )
    progress_bar = traits.Bool(True, help="Show a progress bar over the tables").tag(
        config=True
    )

    aliases = {
        ("i", "input"): "MergeStereoTool.input_files",
        ("o", "output"): "MergeStereoTool.output_path",
        "method": "StereoEventMatcher.method",
        "time-tolerance": "StereoEventMatcher.time_tolerance",
    }
    flags = {
        "include-unmatched": (
            {"MergeStereoTool": {"include_unmatched": True}},
            "Also write unpaired events, as single-telescope events",
        ),
        "overwrite": (
            {"MergeStereoTool": {"overwrite": True}},
            "Replace an existing output file",
        ),
        "progress": (
            {"MergeStereoTool": {"progress_bar": True}},
            "Show a progress bar over the tables",
        ),
        "no-progress": (
            {"MergeStereoTool": {"progress_bar": False}},
            "Do not show a progress bar",
        ),
    }
    classes = [StereoEventMatcher]

    def setup(self):
        self.matcher = StereoEventMatcher(parent=self)
        files = [*self.input_files, *(Path(p) for p in self.extra_args)]
        if self.output_path is None:
            self._fail("no output file given (--output)")
        self.output_path = Path(self.output_path)
        remove_stale_partials(self.output_path, self.log)
        if self.output_path.exists() and not self.overwrite:
            self._fail(f"{self.output_path} exists; use --overwrite to replace it")
        if self.output_path.resolve() in {Path(f).resolve() for f in files}:
            self._fail(f"{self.output_path} is also an input")
        try:
            inputs = [read_telescope_events(path) for path in files]
            self.groups = group_by_telescope(inputs)
            self._check_compatible()
        except StereoInputError as err:
            self._fail(str(err))
        for telescope_events in inputs:
            Provenance().add_input_file(telescope_events.path, role="DL1/Event")

    def _fail(self, message):
        self.log.critical(message)
        self.exit(1)

    def _check_compatible(self):
        all_files = [f for files in self.groups.values() for f in files]
        simulated = {f.is_simulation for f in all_files}
        if len(simulated) > 1:
            raise StereoInputError("inputs mix simulated and observed events")
        self.is_simulation = simulated.pop()
        files1, files2 = self.groups.values()
        if self.is_simulation:
            runs1 = set(np.concatenate([f.obs_id for f in files1]).tolist())
            runs2 = set(np.concatenate([f.obs_id for f in files2]).tolist())
            if not runs1 & runs2:
                raise StereoInputError(
                    f"no simulation run in common: obs_ids {sorted(runs1)} and "
                    f"{sorted(runs2)}"
                )
            return
        for f in all_files:
            if np.any(f.time <= 0):
                raise StereoInputError(
                    f"{f.path}: {np.count_nonzero(f.time <= 0)} events without a "
                    "trigger time; events cannot be paired by time"
                )
        nights = {f.path: np.unique((f.time - _NOON_NS) // _NIGHT_NS) for f in all_files}
        all_nights = np.unique(np.concatenate(list(nights.values())))
        if len(all_nights) > 1:
            listing = ", ".join(
                f"{path.name}: {_night_names(n)}" for path, n in nights.items()
            )
            raise StereoInputError(f"files from different nights ({listing})")
        self._check_targets(files1, files2)

    def _check_targets(self, files1, files2):
        """Overlapping runs of the two telescopes must have the same target."""
        for f2 in files2:
            for f1 in files1:
                overlap = min(f1.time.max(), f2.time.max()) >= max(
                    f1.time.min(), f2.time.min()
                )
                if not overlap:
                    continue
                target1, target2 = f1.target, f2.target
                if target1 is None or target2 is None:
                    self.log.warning(
                        "no target in the observation block of %s or %s; not checked",
                        f1.path.name,
                        f2.path.name,
                    )
                    continue
                separation = target1.separation(target2).deg
                if separation > MAX_TARGET_SEPARATION_DEG:
                    raise StereoInputError(
                        f"{f1.path.name} and {f2.path.name} overlap in time but "
                        f"their targets are {separation:.2f} deg apart"
                    )

    def start(self):
        files1, files2 = self.groups.values()
        tel_ids = list(self.groups)
        events1, events2 = concatenate_events(files1), concatenate_events(files2)
        self.n_inputs = {
            tel_ids[0]: len(events1["event_id"]),
            tel_ids[1]: len(events2["event_id"]),
        }
        try:
            self.result, self.info = self.matcher(
                events1, events2, is_simulation=self.is_simulation
            )
            subarray = union_subarray(files1[0].subarray, files2[0].subarray)
        except (ValueError, StereoInputError) as err:
            self._fail(str(err))
        self.events = plan_stereo_events(
            events1,
            events2,
            self.result,
            include_unmatched=self.include_unmatched,
            keep_ids=self.is_simulation,
        )
        if len(self.events) == 0:
            self._fail(f"no stereo events: {self._describe_counts()}; nothing written")
        try:
            with atomic_output(self.output_path) as partial:
                with tables.open_file(partial, mode="w") as h5out:
                    n_dropped = write_stereo_file(
                        h5out, self.groups, self.events, subarray, self.progress_bar
                    )
                    write_origin_table(
                        h5out,
                        self.events,
                        events1,
                        events2,
                        tel_ids,
                        self.info.get("offset", 0),
                    )
                    write_table(self._counts_table(), h5out, COUNTS_TABLE)
                write_hdf5_mark(
                    partial,
                    DL1_STEREO,
                    events_in=len(events1["event_id"]) + len(events2["event_id"]),
                    events_out=len(self.events),
                    counts=self._mark_counts(),
                    inputs=[f.path.name for files in self.groups.values() for f in files],
                )
        except StereoInputError as err:
            self._fail(str(err))
        if n_dropped:
            self.log.info("%d rows of unpaired events' tables not written", n_dropped)
        Provenance().add_output_file(self.output_path, role="DL1/Event")

    def _counts_table(self):
        """Events of each telescope: paired, written alone, or not written and why."""
        rows = []
        status = "written alone" if self.include_unmatched else "not written"
        for tel_id, unmatched in self._unmatched().items():
            rows.append((tel_id, "paired", "", self.result.n_pairs))
            rows.extend((tel_id, status, r, n) for r, n in sorted(unmatched.items()))
        table = Table(rows=rows, names=["tel_id", "status", "reason", "n_events"])
        table.meta["METHOD"] = self.info["method"]
        table.meta["TIME_TOLERANCE_NS"] = self.matcher.time_tolerance
        table.meta["CLOCK_OFFSET_NS"] = self.info.get("offset", 0)
        table.meta["INPUTS"] = ",".join(
            f.path.name for files in self.groups.values() for f in files
        )
        table.meta["SOFTWARE"] = f"ctapipe-sst1m {__version__}"
        return table

    def _mark_counts(self):
        """Every input event: paired (counted once per telescope), or why not."""
        counts = {}
        status = "written alone" if self.include_unmatched else "not written"
        for tel_id, unmatched in self._unmatched().items():
            counts[f"tel {tel_id}: paired"] = self.result.n_pairs
            for reason, n in unmatched.items():
                counts[f"tel {tel_id}: {status}: {reason}"] = n
        return counts

    def _unmatched(self):
        """tel_id -> reason -> number of unpaired events."""
        unmatched = (self.result.unmatched1, self.result.unmatched2)
        return dict(zip(self.groups, unmatched, strict=True))

    def _describe_counts(self):
        parts = [f"{self.result.n_pairs} pairs"]
        for tel_id, unmatched in self._unmatched().items():
            detail = ", ".join(f"{n} {reason}" for reason, n in unmatched.items())
            parts.append(f"tel {tel_id} unpaired: {detail or 'none'}")
        return "; ".join(parts)

    def finish(self):
        self.log.info(
            "%s, method %s: %s",
            self.output_path,
            self.info["method"],
            self._describe_counts(),
        )
        self.log.info("%d events written", len(self.events))
        if not self.quiet:
            self._print_summary()

    def _print_summary(self):
        """What was paired and written, at the default log level."""
        n_pairs = self.result.n_pairs
        method = self.info["method"]
        if self.info.get("offset"):
            method += f", clock offset {self.info['offset'] / 1e6:.3f} ms"
        rows = [("paired", f"{n_pairs} events of both telescopes ({method})")]
        for tel_id, unmatched in self._unmatched().items():
            n_files = len(self.groups[tel_id])
            detail = ", ".join(f"{n} {reason}" for reason, n in unmatched.items())
            rows.append(
                (
                    f"tel {tel_id}",
                    f"{self.n_inputs[tel_id]} events in {plural(n_files, 'file')}, "
                    f"{n_pairs} paired; unpaired: {detail or 'none'}",
                )
            )
        if self.include_unmatched:
            n_alone = len(self.events) - n_pairs
            rows.append(("unpaired", f"{n_alone} written as single-telescope events"))
        print_summary(
            f"{self.name}: {len(self.events)} events written to "
            f"{short_path(self.output_path)}",
            rows,
        )


def _night_names(nights):
    return ",".join(
        np.datetime_as_string(np.datetime64(int(n) * _NIGHT_NS, "ns"), unit="D")
        for n in nights
    )


def main():
    """Run the stereo merge tool."""
    MergeStereoTool().run()
