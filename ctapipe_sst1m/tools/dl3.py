"""Write GADF DL3 files of observed SST-1M runs, with their IRFs, for gammapy."""

from pathlib import Path

from astropy.io import fits
from ctapipe.core import Provenance, Tool, traits

from ..core.products import (
    DL2,
    DL3,
    DL3_INDEX,
    IRF,
    ProductError,
    nan_columns,
    one_line,
    remove_stale_partials,
    verify_fits_product,
    verify_hdf5_product,
    write_fits_product,
)
from ..dl3.events import DL3InputError, read_cuts, read_run_events
from ..dl3.gadf import (
    IRF_HDUS,
    SKIPPED_IRF_HDUS,
    hdu_index_table,
    obs_index_row,
    obs_index_table,
    observation_hdus,
)

__all__ = ["DL3Tool", "main"]


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
    """

    name = "ctapipe-sst1m-dl3"
    description = __doc__
    examples = """
    ctapipe-sst1m-dl3 run1.dl2.h5 run2.dl2.h5 --irf irf.fits.gz --cuts cuts.fits \\
        --output-dir dl3/
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

    aliases = {
        ("i", "input"): "DL3Tool.input_files",
        "irf": "DL3Tool.irf_file",
        "cuts": "DL3Tool.cuts_file",
        ("o", "output-dir"): "DL3Tool.output_dir",
    }
    flags = {
        "overwrite": ({"DL3Tool": {"overwrite": True}}, "Replace existing DL3 files"),
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
        return irf

    def start(self):
        runs = []
        for path in self.files:
            try:
                verify_hdf5_product(path, kinds=(DL2,), require_mark=False)
                run = read_run_events(path, self.cuts, self.prefixes)
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
                self.log.warning(
                    "%s: no event passes the cuts (of %d); its DL3 file has no events",
                    path,
                    run.n_triggers,
                )
            self._check_mode(path, run)
            runs.append((path, run))
        modes = {run.pointing_mode for _, run in runs}
        if len(modes) > 1:
            listing = ", ".join(f"{p.name}: {r.pointing_mode}" for p, r in runs)
            self._fail(f"runs with different pointing modes ({listing})")
        obs_ids = [run.obs_id for _, run in runs]
        if len(set(obs_ids)) != len(obs_ids):
            self._fail(f"obs_id repeated among the inputs: {obs_ids}")

        names = [f"SST1M_obs_{run.obs_id}.dl3.fits.gz" for _, run in runs]
        names += ["hdu-index.fits.gz", "obs-index.fits.gz"]
        existing = [n for n in names if (self.output_dir / n).exists()]
        if existing and not self.overwrite:
            self._fail(f"{existing} exist in {self.output_dir}; use --overwrite")

        self.output_dir.mkdir(parents=True, exist_ok=True)
        for name in names:
            remove_stale_partials(self.output_dir / name, self.log)
        # each file is written under a temporary name and renamed when complete;
        # the indexes last, so they only list complete files
        index_rows, obs_rows = [], []
        for (path, run), name in zip(runs, names, strict=False):
            hdus = observation_hdus(run, self.irf_hdus)
            write_fits_product(
                hdus,
                self.output_dir / name,
                DL3,
                events_in=run.n_triggers,
                events_out=len(run.events),
            )
            index_rows.append((run.obs_id, name, hdus))
            obs_rows.append(obs_index_row(run, hdus))
            self.log.info(
                "%s: obs_id %d, %d of %d events",
                path.name,
                run.obs_id,
                len(run.events),
                run.n_triggers,
            )
        for name, table in (
            ("hdu-index.fits.gz", hdu_index_table(index_rows)),
            ("obs-index.fits.gz", obs_index_table(obs_rows)),
        ):
            index = fits.HDUList([fits.PrimaryHDU(), fits.table_to_hdu(table)])
            write_fits_product(index, self.output_dir / name, DL3_INDEX)
        for name in names:
            Provenance().add_output_file(self.output_dir / name, role="DL3")
        for path in self.files:
            Provenance().add_input_file(path, role="DL2/Event")

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
