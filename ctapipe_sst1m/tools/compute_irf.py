"""
ctapipe-compute-irf for SST-1M: IRFs that say which telescopes, mode and pointing
they are for, in complete, checksummed files or none.

Full-enclosure IRFs are made consistent (the same field-of-view cut for the
effective area, the PSF and the DL3 events).
"""

import logging

import astropy.units as u
import numpy as np
from astropy.io import fits
from ctapipe.core import Provenance, ToolConfigurationError
from ctapipe.core.traits import Unicode
from ctapipe.instrument import SubarrayDescription
from ctapipe.io import DL2EventPreprocessor
from ctapipe.tools.compute_irf import IrfTool

from ..core.products import (
    IRF,
    IRF_BENCHMARK,
    ProductError,
    remove_stale_partials,
    verify_hdf5_product,
    write_fits_product,
)
from ..core.run_summary import print_summary, short_path
from ..dl3.irf_node import (
    SAME_NODE,
    IrfNode,
    IrfNodeError,
    pointing_differences,
    simulated_pointing,
)

__all__ = ["SST1MIrfTool", "main"]

#: IRF HDUs (by name prefix: gammas, protons, electrons) whose NaN (pyirf's 0/0
#: where nothing was simulated) mean "no area"
ZERO_WHERE_NAN = "EFFECTIVE AREA"
#: fraction of the gammas beyond the PSF's range above which that is a warning
MAX_PSF_LOSS = 0.01
#: particles of ctapipe's IRF tool whose events the field-of-view cut applies to
PARTICLES = ("gammas", "protons", "electrons")


class SST1MIrfTool(IrfTool):
    """
    ctapipe's ``ctapipe-compute-irf``, with the IRF file's primary header also
    saying which telescopes the IRFs are for (``TELLIST``, from the gamma file's
    subarray) and with which reconstructions (``ENERGREC``, ``GEOMREC``,
    ``GHCLASS``), so that ``ctapipe-sst1m-dl3`` refuses IRFs of other telescopes
    or of the other mode. Files are written under a temporary name, with FITS
    checksums and the package's completeness mark, and renamed when complete.
    Configured like ``IrfTool`` (``sst1m_irf.yaml``). In addition:

    * the node: the pointing of the simulations (``ALT_PNT``, ``AZ_PNT``,
      ``ZEN_PNT``, from the gamma file; the other particles must have the
      same) and ``nsb_node`` (``NSBNODE``), which ``ctapipe-sst1m-dl3`` compares
      with each run's pointing;
    * a field-of-view cut: events reconstructed farther from the pointing than
      the effective area's offset axis (``DefaultFoVOffsetBins.fov_offset_max``,
      recorded as ``FOVMAX``) are not used, so that the effective area, the PSF
      (which must extend that far) and the DL3 events, which are cut the same
      way, count the same gammas;
    * effective areas where nothing was simulated are 0, not NaN, and the
      energy range where they are not 0 is stated (``LO_THRES``, ``HI_THRES``);
    * an all-zero background (no background event passes the cuts) is not
      written; point-like ``RAD_MAX_2D`` tables cover ``0 - FOVMAX``, not the
      cuts' unbounded offset range.
    """

    name = "ctapipe-sst1m-compute-irf"
    description = __doc__

    nsb_node = Unicode(
        "unspecified",
        help="Night-sky background the simulations were made for (e.g. 'dark'), "
        "recorded in the IRF file (NSBNODE)",
    ).tag(config=True)

    def setup(self):
        outputs = [p for p in (self.output_path, self.benchmarks_output_path) if p]
        for path in outputs:
            remove_stale_partials(path, self.log)
        # before hours of work, not when writing
        self.check_output(*outputs)
        # DL2 of ctapipe-apply-models carry no mark: their tables must agree
        for path in (self.gamma_file, self.proton_file, self.electron_file):
            if path is None:
                continue
            try:
                verify_hdf5_product(path, require_mark=False)
            except ProductError as err:
                raise ToolConfigurationError(str(err)) from err
        super().setup()
        self.node = self._node()

    def _node(self):
        """The pointing of the simulations and the field-of-view cut."""
        try:
            alt, az = simulated_pointing(self.gamma_file)
            for path in (self.proton_file, self.electron_file):
                if path is None or not self.do_background:
                    continue
                other = simulated_pointing(path)
                zenith, azimuth = pointing_differences(*other, alt, az)
                if zenith > SAME_NODE or azimuth > SAME_NODE:
                    raise IrfNodeError(
                        f"{path}: simulated at alt {other[0]:.2f} az {other[1]:.2f} deg,"
                        f" the gammas ({self.gamma_file}) at alt {alt:.2f} az {az:.2f}"
                        " deg; use simulations of one pointing node"
                    )
        except IrfNodeError as err:
            raise ToolConfigurationError(str(err)) from err
        fov_max = self.effective_area_maker.fov_offset_bins[-1]
        psf_max = self.psf_maker.source_offset_bins[-1]
        if psf_max < fov_max:
            raise ToolConfigurationError(
                f"PSF3DMaker.source_offset_max {psf_max} is below the field-of-view "
                f"cut {fov_max} (DefaultFoVOffsetBins.fov_offset_max): the PSF would be"
                " normalised over fewer gammas than the effective area counts; set "
                f"PSF3DMaker.source_offset_max to at least {fov_max}"
            )
        if self.do_background:
            background_max = self.background_maker.fov_offset_bins[-1]
            if background_max > fov_max:
                raise ToolConfigurationError(
                    f"BackgroundRate2dMaker.fov_offset_max {background_max} is beyond "
                    f"the field-of-view cut {fov_max}, where no event is kept; set it "
                    f"to at most {fov_max}"
                )
        return IrfNode(
            alt=alt, az=az, nsb=self.nsb_node, fov_max=float(fov_max.to_value(u.deg))
        )

    def start(self):
        # pyirf divides 0 by 0 where nothing was simulated; finish sets those to 0
        with np.errstate(invalid="ignore", divide="ignore"):
            super().start()

    def calculate_selections(self, reduced_events):
        """ctapipe's selections, and the field-of-view cut."""
        reduced_events = super().calculate_selections(reduced_events)
        fov_max = u.Quantity(self.node.fov_max, u.deg)
        #: particle -> (events after the quality selection, events selected)
        self.selected = {}
        for particle in PARTICLES:
            if particle not in reduced_events:
                continue
            events = reduced_events[particle]
            inside = events["reco_source_fov_offset"] < fov_max
            for column in ("selected", "selected_gh", "selected_gh_multiplicity"):
                if column in events.colnames:
                    events[column] &= inside
            self.selected[particle] = (
                len(events),
                int(np.count_nonzero(events["selected"])),
            )
            self.log.info(
                "%s: %d of %d events reconstructed %s or more from the pointing, "
                "not used",
                particle,
                np.count_nonzero(~inside),
                len(events),
                fov_max,
            )
        self._report_psf_range(reduced_events["gammas"])
        return reduced_events

    def _report_psf_range(self, gammas):
        """How many gammas the PSF, normalised over its range, leaves out."""
        psf_max = self.psf_maker.source_offset_bins[-1]
        theta = gammas["theta"][gammas["selected_gh_multiplicity"]]
        if len(theta) == 0:
            return
        fraction = np.count_nonzero(theta >= psf_max) / len(theta)
        level = logging.WARNING if fraction > MAX_PSF_LOSS else logging.INFO
        self.log.log(
            level,
            "%.2f %% of the gammas are reconstructed %s or more from their true "
            "direction, beyond the PSF's range (PSF3DMaker.source_offset_max), "
            "but counted in the effective area",
            100 * fraction,
            psf_max,
        )

    def finish(self):
        # IrfTool.start leaves the IRF HDUs in self.hdus (and the benchmarks in
        # self.b_hdus); a test pins this (tests/chain/test_toy_chain.py)
        hdus = fits.HDUList(self.hdus)
        header = hdus[0].header
        subarray = SubarrayDescription.from_hdf(self.gamma_file)
        header["TELLIST"] = (
            ",".join(str(t) for t in sorted(subarray.tel_ids)),
            "telescopes of the simulations",
        )
        # the preprocessor configured for this tool, built from its config
        preprocessor = DL2EventPreprocessor(parent=self)
        header["ENERGREC"] = preprocessor.energy_reconstructor
        header["GEOMREC"] = preprocessor.geometry_reconstructor
        header["GHCLASS"] = preprocessor.gammaness_classifier
        header.update(self.node.header_cards())
        for hdu in hdus[1:]:
            if hdu.name.startswith(ZERO_WHERE_NAN):
                self._zero_nan(hdu)
        self._state_threshold(hdus["EFFECTIVE AREA"])
        if "RAD_MAX" in hdus:
            self._bound_rad_max(hdus["RAD_MAX"])
        if "BACKGROUND" in hdus and not np.any(hdus["BACKGROUND"].data["BKG"]):
            self.log.warning(
                "%s: the background rate is zero everywhere (no background event "
                "passes the cuts); no background written",
                self.output_path,
            )
            del hdus["BACKGROUND"]
        self._write(hdus, self.output_path, role="IRF")
        if self.benchmarks_output_path is not None:
            self._write(
                fits.HDUList(self.b_hdus),
                self.benchmarks_output_path,
                "Benchmark",
                IRF_BENCHMARK,
            )
        if not self.quiet:
            self._print_summary([hdu.name for hdu in hdus[1:]])

    def _print_summary(self, names):
        """What was written, from how many events, for which node."""
        kind = "point-like" if "RAD_MAX" in names else "full-enclosure"
        rows = [("IRFs", f"{kind}: {', '.join(names)}")]
        for particle, (n_events, n_selected) in self.selected.items():
            rows.append(
                (
                    particle,
                    f"{n_selected} of {n_events} events pass the cuts (after the "
                    "quality selection)",
                )
            )
        node = self.node
        rows.append(
            (
                "node",
                f"alt {node.alt:.1f} deg, az {node.az:.1f} deg, NSB {node.nsb}, "
                f"field of view {node.fov_max:g} deg",
            )
        )
        if self.benchmarks_output_path is not None:
            rows.append(("benchmarks", short_path(self.benchmarks_output_path)))
        title = f"{self.name}: IRFs written to {short_path(self.output_path)}"
        print_summary(title, rows)

    def _zero_nan(self, hdu):
        for column in hdu.columns.names:
            values = hdu.data[column]
            if values.dtype.kind == "f" and np.isnan(values).any():
                self.log.info(
                    "%s %s: %d of %d values NaN (nothing simulated there), set to 0",
                    hdu.name,
                    column,
                    np.count_nonzero(np.isnan(values)),
                    values.size,
                )
                values[np.isnan(values)] = 0.0

    def _state_threshold(self, hdu):
        """GADF ``LO_THRES``/``HI_THRES``: the true energies with some area."""
        area = np.asarray(hdu.data["EFFAREA"][0])
        # the last axis of the GADF array is true energy
        with_area = np.flatnonzero(area.reshape(-1, area.shape[-1]).max(axis=0) > 0)
        if len(with_area) == 0:
            raise ToolConfigurationError(
                f"{self.gamma_file}: no gamma passes the cuts; no effective area"
            )
        hdu.header["LO_THRES"] = (
            float(hdu.data["ENERG_LO"][0][with_area[0]]),
            "[TeV] lowest true energy with effective area",
        )
        hdu.header["HI_THRES"] = (
            float(hdu.data["ENERG_HI"][0][with_area[-1]]),
            "[TeV] highest true energy with effective area",
        )

    def _bound_rad_max(self, hdu):
        # the percentile cuts are valid for offsets 0 - inf; the IRFs for 0 - FOVMAX
        theta_hi = hdu.data["THETA_HI"]
        theta_hi[~np.isfinite(theta_hi)] = self.node.fov_max

    def _write(self, hdus, path, role, kind=IRF):
        self.log.info("Writing %s", path)
        write_fits_product(hdus, path, kind)
        Provenance().add_output_file(path, role=role)


def main():
    """Run the IRF tool."""
    SST1MIrfTool().run()
