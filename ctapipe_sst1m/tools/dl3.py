"""Write GADF DL3 files of observed SST-1M runs, with their IRFs, for gammapy."""

from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits
from ctapipe.core import Provenance, Tool, traits

from ..core.products import (
    DL2,
    DL3,
    IRF,
    ProductError,
    nan_columns,
    one_line,
    remove_stale_partials,
    verify_fits_product,
    verify_hdf5_product,
    write_fits_product,
)
from ..core.run_summary import plural, print_summary, short_path
from ..dl3.events import DL3InputError, read_cuts, read_run_events
from ..dl3.gadf import (
    DL3_FILE_GLOB,
    HDU_INDEX_FILE,
    IRF_HDUS,
    OBS_INDEX_FILE,
    SKIPPED_IRF_HDUS,
    dl3_file_name,
    observation_hdus,
    read_index_entry,
    write_indexes,
)
from ..dl3.irf_node import IrfNode, pointing_differences

__all__ = ["DL3Tool", "main"]

#: runs listed one per line in the summary; the others are counted together
RUNS_LISTED = 10


class DL3Tool(Tool):
    """
    DL2 of observed runs + cuts + IRFs -> one GADF DL3 file per run.

    Each run's file holds the gamma-ray candidates (EVENTS: time, sky position,
    energy, gammaness; events passing the quality criteria and the gammaness cut
    of their energy bin), its good time interval (GTI, first to last event), its
    pointing (POINTING) and the IRFs (copied from the ``ctapipe-compute-irf``
    file). ``hdu-index.fits.gz`` and ``obs-index.fits.gz`` list the runs for
    gammapy's ``DataStore``. Times are TAI, in seconds since midnight TAI of the
    day the run starts (``MJDREFI``).

    Runs processed separately (in parallel, into one directory) are written
    with ``--no-index``; ``ctapipe-sst1m-dl3-index`` then indexes every DL3
    file of the directory, with the same tables one call with all the runs
    writes.

    The IRFs must be valid for each run: the run's mean pointing must be within
    ``max_zenith_difference`` and ``max_azimuth_difference`` of the pointing
    their simulations were made at (recorded by ``ctapipe-sst1m-compute-irf``),
    and events reconstructed farther from the pointing than the IRFs' field of
    view (``FOVMAX``) are cut, as they were from the simulations.
    """

    name = "ctapipe-sst1m-dl3"
    description = __doc__
    examples = """
    ctapipe-sst1m-dl3 run1.dl2.h5 run2.dl2.h5 --irf irf.fits.gz --cuts cuts.fits \\
        --output-dir dl3/

    runs one by one (in parallel), then the indexes of every file:
    ctapipe-sst1m-dl3 run1.dl2.h5 --irf irf.fits.gz --cuts cuts.fits \\
        --output-dir dl3/ --no-index
    ctapipe-sst1m-dl3-index dl3/
    """

    input_files = traits.List(
        traits.Path(exists=True, directory_ok=False),
        default_value=[],
        help="DL2 files of observed runs, one run each (also positional)",
    ).tag(config=True)
    irf_file = traits.Path(
        exists=True, directory_ok=False, help="IRF file of ctapipe-compute-irf"
    ).tag(config=True)
    cuts_file = traits.Path(
        exists=True,
        directory_ok=False,
        help="Cuts file of ctapipe-optimize-event-selection (gammaness cuts)",
    ).tag(config=True)
    output_dir = traits.Path(
        directory_ok=True, file_ok=False, help="Directory for the DL3 and index files"
    ).tag(config=True)
    energy_reconstructor = traits.Unicode(
        "RandomForestRegressor", help="Prefix of the reconstructed energy"
    ).tag(config=True)
    geometry_reconstructor = traits.Unicode(
        "HillasReconstructor",
        help="Prefix of the reconstructed direction (disp for mono)",
    ).tag(config=True)
    gammaness_classifier = traits.Unicode(
        "RandomForestClassifier", help="Prefix of the gammaness"
    ).tag(config=True)
    overwrite = traits.Bool(False, help="Replace existing DL3 files").tag(config=True)
    write_index = traits.Bool(
        True,
        help="Write hdu-index.fits.gz and obs-index.fits.gz of the runs given. "
        "Off for runs written one by one into one directory (several calls at "
        "once would replace each other's indexes): ctapipe-sst1m-dl3-index "
        "then indexes every DL3 file of the directory",
    ).tag(config=True)
    allow_empty_runs = traits.Bool(
        False,
        help="Write the DL3 file of a run no event of which passes the selection. "
        "By default such a run is refused: a run without a single gamma-ray "
        "candidate almost always means DL2 and cuts of different models or "
        "reconstructions, and gammapy cannot print such an observation",
    ).tag(config=True)
    max_zenith_difference = traits.AstroQuantity(
        default_value=5 * u.deg,
        physical_type=u.physical.angle,
        help="Largest difference between a run's mean zenith angle and the IRFs' "
        "(their simulations')",
    ).tag(config=True)
    max_azimuth_difference = traits.AstroQuantity(
        default_value=10 * u.deg,
        physical_type=u.physical.angle,
        help="Largest difference between a run's mean azimuth and the IRFs': the "
        "stereo acceptance depends on the azimuth relative to the baseline",
    ).tag(config=True)
    pointing_mismatch = traits.CaselessStrEnum(
        ["refuse", "warn"],
        default_value="refuse",
        help="What to do with a run pointing outside the IRFs' validity (see "
        "max_zenith_difference): refuse it, or warn and use the IRFs (biased flux)",
    ).tag(config=True)

    aliases = {
        ("i", "input"): "DL3Tool.input_files",
        "irf": "DL3Tool.irf_file",
        "cuts": "DL3Tool.cuts_file",
        ("o", "output-dir"): "DL3Tool.output_dir",
    }
    flags = {
        "overwrite": ({"DL3Tool": {"overwrite": True}}, "Replace existing DL3 files"),
        "no-index": (
            {"DL3Tool": {"write_index": False}},
            "Write no index (ctapipe-sst1m-dl3-index DIR writes them)",
        ),
    }

    def setup(self):
        self.files = [*self.input_files, *(Path(p) for p in self.extra_args)]
        for name, value in (("irf", self.irf_file), ("cuts", self.cuts_file)):
            if value is None:
                self._fail(f"no {name} file given (--{name})")
        if self.output_dir is None:
            self._fail("no output directory given (--output-dir)")
        if not self.files:
            self._fail("no DL2 input files given")
        try:
            verify_fits_product(self.cuts_file, require_mark=False)
            self.cuts = read_cuts(self.cuts_file)
            self._check_cuts()
            self.irf_hdus = self._read_irf()
        except (DL3InputError, ProductError) as err:
            self._fail(str(err))
        except Exception as err:
            self.log.debug("reading the cuts and IRFs", exc_info=True)
            self._fail(
                f"{self.cuts_file} or {self.irf_file}: not readable as cuts and IRFs "
                f"({type(err).__name__}: {one_line(err)})"
            )
        self.output_dir = Path(self.output_dir)
        if self.output_dir.exists() and not self.output_dir.is_dir():
            self._fail(f"{self.output_dir}: exists and is not a directory")

    @property
    def prefixes(self):
        return (
            self.energy_reconstructor,
            self.geometry_reconstructor,
            self.gammaness_classifier,
        )

    def _fail(self, message):
        self.log.critical(message)
        self.exit(1)

    def _check_cuts(self):
        """The cuts must have been made for the same reconstructions (mode)."""
        criteria = " ".join(self.cuts[2])
        for prefix in self.prefixes:
            if f"{prefix}_is_valid" not in criteria:
                raise DL3InputError(
                    f"{self.cuts_file}: cuts made without {prefix} (their criteria: "
                    f"{self.cuts[2]}); the IRFs are for another mode or reconstruction"
                )

    def _read_irf(self):
        header = verify_fits_product(self.irf_file, kinds=(IRF,), require_mark=False)
        if not header.get("SSTCOMPL", False):
            self.log.warning(
                "%s has no completeness mark or checksums (not written by "
                "ctapipe-sst1m-compute-irf): read to its end, not verified",
                self.irf_file,
            )
        with fits.open(self.irf_file) as hdus:
            self.irf_header = hdus[0].header.copy()
            irf = [h.copy() for h in hdus[1:] if h.name not in SKIPPED_IRF_HDUS]
        if nan := nan_columns(irf):
            name, column, n_nan, size = nan[0]
            raise DL3InputError(
                f"{self.irf_file}: {n_nan} of {size} values of {name} {column} are "
                "NaN, not valid IRFs; recompute them with ctapipe-sst1m-compute-irf"
            )
        recorded = [self.irf_header.get(k) for k in ("ENERGREC", "GEOMREC", "GHCLASS")]
        if None in recorded:
            self.log.warning(
                "%s records no telescopes and reconstructions (made by "
                "ctapipe-compute-irf): they cannot be checked; "
                "ctapipe-sst1m-compute-irf records them",
                self.irf_file,
            )
        elif tuple(recorded) != self.prefixes:
            raise DL3InputError(
                f"{self.irf_file}: IRFs for reconstructions {recorded}, not "
                f"{list(self.prefixes)}; the IRFs are for another mode"
            )
        classes = {h.header.get("HDUCLAS4") for h in irf}
        unknown = classes - set(IRF_HDUS)
        if unknown or not {"AEFF_2D", "EDISP_2D"} <= classes:
            raise DL3InputError(
                f"{self.irf_file}: expected GADF IRFs with an effective area and an "
                f"energy dispersion, found {sorted(map(str, classes))}"
            )
        if not {"PSF_TABLE", "RAD_MAX_2D"} & classes:
            raise DL3InputError(f"{self.irf_file}: neither a PSF nor RAD_MAX")
        self.node = IrfNode.from_header(self.irf_header)
        if self.node is None:
            aeff = next(h for h in irf if h.header.get("HDUCLAS4") == "AEFF_2D")
            self.fov_max = float(np.max(aeff.data["THETA_HI"]))
            self.log.warning(
                "%s records no pointing node or field-of-view cut (made by "
                "ctapipe-compute-irf): the runs' pointing cannot be checked; events "
                "cut at the effective area's offset range, %.2f deg",
                self.irf_file,
                self.fov_max,
            )
        else:
            self.fov_max = self.node.fov_max
        kept = []
        for hdu in irf:
            if hdu.header.get("HDUCLAS4") == "BKG_2D" and not np.any(hdu.data["BKG"]):
                self.log.warning(
                    "%s: the background model is zero everywhere; not written",
                    self.irf_file,
                )
                continue
            kept.append(hdu)
        if not any(h.header.get("HDUCLAS4") == "BKG_2D" for h in kept):
            self.log.warning(
                "%s has no background model: gammapy's DataStore.obs() and check() "
                "require one for full-enclosure IRFs (use "
                "required_irf=['aeff', 'edisp', 'psf'])",
                self.irf_file,
            )
        return kept

    def _irf_cards(self):
        """EVENTS header cards naming the IRFs' node and the field-of-view cut."""
        cards = {"FOVMAX": (self.fov_max, "[deg] events farther from RA/DEC_PNT cut")}
        if self.node is not None:
            cards["IRF_ALT"] = (self.node.alt, "[deg] pointing altitude of the IRFs")
            cards["IRF_AZ"] = (self.node.az, "[deg] pointing azimuth of the IRFs")
            cards["IRF_NSB"] = (self.node.nsb, "night-sky background of the IRFs")
        return cards

    def _check_pointing(self, path, run):
        """Refuse (or warn about) a run pointing outside the IRFs' validity."""
        if self.node is None:
            return
        alt, az = run.mean_pointing
        zenith, azimuth = pointing_differences(alt, az, self.node.alt, self.node.az)
        max_zenith = self.max_zenith_difference.to_value(u.deg)
        max_azimuth = self.max_azimuth_difference.to_value(u.deg)
        if zenith <= max_zenith and azimuth <= max_azimuth:
            return
        message = (
            f"{path}: mean pointing alt {alt:.1f} az {az:.1f} deg, {zenith:.1f} deg in "
            f"zenith and {azimuth:.1f} deg in azimuth from the IRFs' (alt "
            f"{self.node.alt:.1f} az {self.node.az:.1f} deg, {self.irf_file}); allowed "
            f"{max_zenith:g} and {max_azimuth:g} deg (DL3Tool.max_zenith_difference, "
            "max_azimuth_difference)"
        )
        if self.pointing_mismatch == "refuse":
            self._fail(
                message + "; use IRFs of a nearer pointing or set "
                "DL3Tool.pointing_mismatch=warn"
            )
        self.log.warning("%s; IRFs used anyway: the flux is biased", message)

    def start(self):
        runs = []
        for path in self.files:
            try:
                verify_hdf5_product(path, kinds=(DL2,), require_mark=False)
                run = read_run_events(
                    path, self.cuts, self.prefixes, fov_max=self.fov_max * u.deg
                )
            except (DL3InputError, ProductError) as err:
                self._fail(str(err))
            except Exception as err:
                # whatever ctapipe's readers raise on a file that is not a DL2
                # product of an observed run: one line, the traceback at DEBUG
                self.log.debug("reading %s", path, exc_info=True)
                self._fail(
                    f"{path}: not a readable DL2 file of an observed run "
                    f"({type(err).__name__}: {one_line(err)})"
                )
            if len(run.events) == 0:
                message = (
                    f"{path}: no event passes the selection ({run.selection_summary()})"
                )
                if not self.allow_empty_runs:
                    self._fail(
                        f"{message}; are the DL2 file and the cuts of the same models? "
                        "set DL3Tool.allow_empty_runs=True to write it anyway"
                    )
                self.log.warning("%s; its DL3 file has no events", message)
            self._check_mode(path, run)
            self._check_pointing(path, run)
            runs.append((path, run))
        modes = {run.pointing_mode for _, run in runs}
        if len(modes) > 1:
            listing = ", ".join(f"{p.name}: {r.pointing_mode}" for p, r in runs)
            self._fail(f"runs with different pointing modes ({listing})")
        obs_ids = [run.obs_id for _, run in runs]
        if len(set(obs_ids)) != len(obs_ids):
            self._fail(f"obs_id repeated among the inputs: {obs_ids}")

        run_names = [dl3_file_name(run.obs_id) for _, run in runs]
        # with --no-index the indexes are not this call's: other calls writing
        # into the same directory at the same time must not meet them here
        index_names = [HDU_INDEX_FILE, OBS_INDEX_FILE] if self.write_index else []
        names = run_names + index_names
        existing = [n for n in names if (self.output_dir / n).exists()]
        if existing and not self.overwrite:
            self._fail(f"{existing} exist in {self.output_dir}; use --overwrite")

        self.output_dir.mkdir(parents=True, exist_ok=True)
        for name in names:
            remove_stale_partials(self.output_dir / name, self.log)
        # each file is written under a temporary name and renamed when complete;
        # the indexes last, so they only list complete files
        self.written = []
        for (path, run), name in zip(runs, run_names, strict=True):
            hdus = observation_hdus(run, self.irf_hdus, self._irf_cards())
            write_fits_product(
                hdus,
                self.output_dir / name,
                DL3,
                events_in=run.n_triggers,
                events_out=len(run.events),
            )
            self.written.append((name, run))
            self.log.info(
                "%s: obs_id %d, %d of %d events (%d more beyond the %.2f deg "
                "field-of-view cut)",
                path.name,
                run.obs_id,
                len(run.events),
                run.n_triggers,
                run.n_outside_fov,
                self.fov_max,
            )
        if self.write_index:
            # read back from the files, as ctapipe-sst1m-dl3-index does: the
            # indexes of one call and of the index tool are the same tables
            entries = [read_index_entry(self.output_dir / n) for n in run_names]
            write_indexes(entries, self.output_dir)
            self._warn_unindexed(run_names)
        for name in names:
            Provenance().add_output_file(self.output_dir / name, role="DL3")
        for path in self.files:
            Provenance().add_input_file(path, role="DL2/Event")

    def finish(self):
        if self.quiet:
            return
        rows = [
            (
                f"obs_id {run.obs_id}",
                f"{name}: {len(run.events)} of {run.n_triggers} events pass the cuts",
            )
            for name, run in self.written[:RUNS_LISTED]
        ]
        if len(self.written) > RUNS_LISTED:
            rest = [run for _, run in self.written[RUNS_LISTED:]]
            rows.append(
                (
                    "...",
                    f"{plural(len(rest), 'more run')}: "
                    f"{sum(len(run.events) for run in rest)} events",
                )
            )
        rows += [
            ("indexes", self._index_text()),
            (
                "IRFs",
                f"{short_path(self.irf_file)}; events cut at {self.fov_max:.2f} deg "
                "from the pointing",
            ),
        ]
        n_events = sum(len(run.events) for _, run in self.written)
        print_summary(
            f"{self.name}: {plural(len(self.written), 'run')}, {n_events} events, "
            f"written to {short_path(self.output_dir)}",
            rows,
        )

    def _index_text(self):
        if self.write_index:
            return f"{HDU_INDEX_FILE}, {OBS_INDEX_FILE} (gammapy's DataStore)"
        command = f"ctapipe-sst1m-dl3-index {short_path(self.output_dir)}"
        older = [
            n for n in (HDU_INDEX_FILE, OBS_INDEX_FILE) if (self.output_dir / n).exists()
        ]
        if older:
            return (
                f"none written (--no-index); {' and '.join(older)} there are older "
                f"than this call's files: {command} indexes every DL3 file there"
            )
        return f"none written (--no-index): {command} indexes every DL3 file there"

    def _warn_unindexed(self, run_names):
        """Other runs' DL3 files in the directory are not in this call's indexes."""
        others = sorted(
            p.name for p in self.output_dir.glob(DL3_FILE_GLOB) if p.name not in run_names
        )
        if others:
            self.log.warning(
                "%s: the indexes list the %s given, not the %s also there (%s); "
                "ctapipe-sst1m-dl3-index %s indexes every DL3 file of the directory",
                self.output_dir,
                plural(len(run_names), "run"),
                plural(len(others), "other DL3 file"),
                ", ".join(others[:3]) + (", ..." if len(others) > 3 else ""),
                self.output_dir,
            )

    def _check_mode(self, path, run):
        irf_tels = self.irf_header.get("TELLIST")
        run_tels = ",".join(str(t) for t in sorted(run.tel_ids))
        if irf_tels is not None and irf_tels != run_tels:
            self._fail(
                f"{path}: telescopes {run_tels}, but {self.irf_file} holds IRFs of "
                f"telescopes {irf_tels}"
            )
        stereo = self.geometry_reconstructor == "HillasReconstructor"
        if stereo and len(run.tel_ids) < 2:
            self._fail(
                f"{path}: telescope {run.tel_ids[0]} alone, but the IRFs and cuts are "
                "stereo (HillasReconstructor); use the mono ones (--geometry disp)"
            )
        if not stereo and len(run.tel_ids) > 1:
            self._fail(
                f"{path}: stereo run (tels {run.tel_ids}) with mono IRFs and cuts "
                f"({self.geometry_reconstructor})"
            )


def main():
    """Run the DL3 tool."""
    DL3Tool().run()
