"""
Write the indexes gammapy's DataStore reads (hdu-index.fits.gz, obs-index.fits.gz)
of every DL3 file of a directory.

``ctapipe-sst1m-dl3`` writes the indexes of the runs of one call. Runs written
one by one into one directory (``--no-index``, in parallel on a cluster) are
indexed afterwards by this tool, once: the tables are those one call with all
the runs would have written, read back from the files' headers.
"""

import os
from pathlib import Path

from ctapipe.core import Provenance, Tool, traits

from ..core.products import (
    DL3,
    PARTIAL_PREFIX,
    ProductError,
    remove_stale_partials,
    verify_fits_product,
)
from ..core.run_summary import plural, print_summary, short_path
from ..dl3.gadf import (
    DL3_FILE_GLOB,
    HDU_INDEX_FILE,
    OBS_INDEX_FILE,
    read_index_entry,
    write_indexes,
)
from .dl3 import RUNS_LISTED

__all__ = ["DL3IndexTool", "main"]


class DL3IndexTool(Tool):
    """
    Index every DL3 file of a directory for gammapy's ``DataStore``.

    The files are those ``ctapipe-sst1m-dl3`` names ``SST1M_obs_<obs_id>.dl3.fits.gz``.
    Each is verified (checksums, gzip stream, completeness mark) before it is
    listed: an incomplete or damaged file is refused with its name, and
    nothing is written, unless ``skip_incomplete`` is set. Runs of different
    pointing modes, or two files of one obs_id, are refused, as one call of
    ``ctapipe-sst1m-dl3`` refuses them. ``hdu-index.fits.gz`` and
    ``obs-index.fits.gz`` replace those of an earlier run of the tool; each is
    written under a hidden name and renamed when complete.
    """

    name = "ctapipe-sst1m-dl3-index"
    description = __doc__
    examples = """
    ctapipe-sst1m-dl3-index dl3/

    indexes kept apart from the DL3 files (FILE_DIR points back to them):
    ctapipe-sst1m-dl3-index dl3/ --output-dir analysis/
    """

    input_dir = traits.Path(
        directory_ok=True,
        file_ok=False,
        help="Directory of the DL3 files (also positional)",
    ).tag(config=True)
    output_dir = traits.Path(
        directory_ok=True,
        file_ok=False,
        help="Directory of the indexes; default: that of the DL3 files",
    ).tag(config=True)
    skip_incomplete = traits.Bool(
        False,
        help="Leave incomplete or damaged DL3 files out of the indexes, with a "
        "warning naming each. By default such a file is refused and nothing is "
        "written: an index that silently lacks a run makes an analysis of less "
        "livetime that looks complete",
    ).tag(config=True)

    aliases = {
        ("i", "input-dir"): "DL3IndexTool.input_dir",
        ("o", "output-dir"): "DL3IndexTool.output_dir",
    }
    flags = {
        "skip-incomplete": (
            {"DL3IndexTool": {"skip_incomplete": True}},
            "Index the complete DL3 files, warn about the others",
        ),
    }

    def setup(self):
        given = [*([self.input_dir] if self.input_dir else []), *self.extra_args]
        if not given:
            self._fail("no directory of DL3 files given")
        if len(given) > 1:
            self._fail(
                f"one directory of DL3 files, not {len(given)} "
                f"({', '.join(map(str, given))})"
            )
        self.input_dir = Path(given[0])
        if not self.input_dir.is_dir():
            what = "not a directory" if self.input_dir.exists() else "no such directory"
            self._fail(f"{self.input_dir}: {what}; give the directory of the DL3 files")
        self.output_dir = Path(self.output_dir or self.input_dir)
        if self.output_dir.exists() and not self.output_dir.is_dir():
            self._fail(f"{self.output_dir}: exists and is not a directory")

    def _fail(self, message):
        self.log.critical(message)
        self.exit(1)

    def start(self):
        self._warn_partials()
        files = sorted(self.input_dir.glob(DL3_FILE_GLOB))
        if not files:
            self._fail(
                f"{self.input_dir}: no DL3 files ({DL3_FILE_GLOB}); write them with "
                "ctapipe-sst1m-dl3"
            )
        self.entries, self.skipped = [], []
        for path in files:
            try:
                verify_fits_product(path, kinds=(DL3,))
                self.entries.append(read_index_entry(path))
            except ProductError as err:
                if not self.skip_incomplete:
                    self._fail(
                        f"{err}; write it again (ctapipe-sst1m-dl3 --overwrite), or "
                        "set DL3IndexTool.skip_incomplete=True (--skip-incomplete) to "
                        "index the other files"
                    )
                self.log.warning("%s; not indexed (skip_incomplete)", err)
                self.skipped.append(path)
        if not self.entries:
            self._fail(
                f"{self.input_dir}: none of the {len(files)} DL3 files is complete"
            )
        self.entries.sort(key=lambda entry: entry.obs_id)
        self._check_runs()

        self.output_dir.mkdir(parents=True, exist_ok=True)
        names = (HDU_INDEX_FILE, OBS_INDEX_FILE)
        for name in names:
            remove_stale_partials(self.output_dir / name, self.log)
        self.replaced = any((self.output_dir / n).exists() for n in names)
        # gammapy finds the files at the index's directory / FILE_DIR / FILE_NAME
        self.file_dir = os.path.relpath(
            self.input_dir.resolve(), self.output_dir.resolve()
        )
        self.hdu_table, _ = write_indexes(self.entries, self.output_dir, self.file_dir)
        for entry in self.entries:
            Provenance().add_input_file(entry.path, role="DL3")
        for name in names:
            Provenance().add_output_file(self.output_dir / name, role="DL3")

    def _warn_partials(self):
        """Runs being written (or killed while written) are not indexed: say so."""
        # ".SST1M_obs_<obs_id>.dl3.fits.partial.gz" (write_fits_product's name)
        hidden = PARTIAL_PREFIX + DL3_FILE_GLOB.partition("*")[0] + "*"
        for partial in sorted(self.input_dir.glob(hidden)):
            self.log.warning(
                "%s: a DL3 file being written by ctapipe-sst1m-dl3, or left by one "
                "that was killed; its run is indexed only if it is complete under "
                "its final name",
                partial,
            )

    def _check_runs(self):
        modes = {entry.pointing_mode for entry in self.entries}
        if len(modes) > 1:
            listing = ", ".join(f"{e.path.name}: {e.pointing_mode}" for e in self.entries)
            self._fail(
                f"{self.input_dir}: runs of different pointing modes ({listing}); "
                "index each mode's directory"
            )
        seen = {}
        for entry in self.entries:
            if entry.obs_id in seen:
                self._fail(
                    f"{entry.path}: obs_id {entry.obs_id}, as {seen[entry.obs_id].name}; "
                    "remove one of them"
                )
            seen[entry.obs_id] = entry.path

    def finish(self):
        if self.quiet:
            return
        rows = [
            (
                f"obs_id {entry.obs_id}",
                f"{entry.path.name}: {entry.obs_row['EVENT_COUNT']} events, "
                f"{entry.obs_row['LIVETIME']:.0f} s",
            )
            for entry in self.entries[:RUNS_LISTED]
        ]
        if len(self.entries) > RUNS_LISTED:
            rest = self.entries[RUNS_LISTED:]
            rows.append(
                (
                    "...",
                    f"{plural(len(rest), 'more run')}: "
                    f"{sum(e.obs_row['EVENT_COUNT'] for e in rest)} events",
                )
            )
        if self.skipped:
            rows.append(
                (
                    "skipped",
                    f"{plural(len(self.skipped), 'incomplete file')}: "
                    f"{', '.join(p.name for p in self.skipped)} (see the warnings)",
                )
            )
        replaced = "; replaced the previous ones" if self.replaced else ""
        rows.append(
            (
                "indexes",
                f"{HDU_INDEX_FILE} ({len(self.hdu_table)} HDUs), {OBS_INDEX_FILE} "
                f"(gammapy's DataStore){replaced}",
            )
        )
        if self.file_dir != ".":
            rows.append(("DL3 files", f"{self.file_dir} (FILE_DIR, from the indexes)"))
        n_events = sum(e.obs_row["EVENT_COUNT"] for e in self.entries)
        livetime = sum(e.obs_row["LIVETIME"] for e in self.entries)
        print_summary(
            f"{self.name}: {plural(len(self.entries), 'run')}, {n_events} events, "
            f"{livetime:.0f} s, indexed in {short_path(self.output_dir)}",
            rows,
        )


def main():
    """Run the DL3 index tool."""
    DL3IndexTool().run()
