"""ctapipe-compute-irf that records which telescopes and mode the IRFs are for,
and writes complete, checksummed IRF files or none."""

import numpy as np
from astropy.io import fits
from ctapipe.core import Provenance, ToolConfigurationError
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

__all__ = ["SST1MIrfTool", "main"]

#: IRF HDUs (by name prefix: gammas, protons, electrons) whose NaN (pyirf's 0/0
#: where nothing was simulated) mean "no area"
ZERO_WHERE_NAN = "EFFECTIVE AREA"


class SST1MIrfTool(IrfTool):
    """
    ctapipe's ``ctapipe-compute-irf``, with the IRF file's primary header also
    saying which telescopes the IRFs are for (``TELLIST``, from the gamma file's
    subarray) and with which reconstructions (``ENERGREC``, ``GEOMREC``,
    ``GHCLASS``), so that ``ctapipe-sst1m-dl3`` refuses IRFs of other telescopes
    or of the other mode. Files are written under a temporary name, with FITS
    checksums and the package's completeness mark, and renamed when complete.
    Effective areas where nothing was simulated are 0, not NaN. Configured like
    ``IrfTool`` (``sst1m_irf.yaml``).
    """

    name = "ctapipe-sst1m-compute-irf"
    description = __doc__

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
        for hdu in hdus[1:]:
            if hdu.name.startswith(ZERO_WHERE_NAN):
                self._zero_nan(hdu)
        self._write(hdus, self.output_path, role="IRF")
        if self.benchmarks_output_path is not None:
            self._write(
                fits.HDUList(self.b_hdus),
                self.benchmarks_output_path,
                "Benchmark",
                IRF_BENCHMARK,
            )

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

    def _write(self, hdus, path, role, kind=IRF):
        self.log.info("Writing %s", path)
        write_fits_product(hdus, path, kind)
        Provenance().add_output_file(path, role=role)


def main():
    """Run the IRF tool."""
    SST1MIrfTool().run()
