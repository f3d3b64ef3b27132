"""ctapipe-compute-irf that records which telescopes and mode the IRFs are for."""

from ctapipe.instrument import SubarrayDescription
from ctapipe.tools.compute_irf import IrfTool

__all__ = ["SST1MIrfTool", "main"]


class SST1MIrfTool(IrfTool):
    """
    ctapipe's ``ctapipe-compute-irf``, unchanged, but the IRF file's primary
    header also says which telescopes the IRFs are for (``TELLIST``, from the
    gamma file's subarray) and with which reconstructions (``ENERGREC``,
    ``GEOMREC``, ``GHCLASS``), so that ``ctapipe-sst1m-dl3`` refuses IRFs of
    other telescopes or of the other mode. Configured like ``IrfTool``
    (``sst1m_irf.yaml``).
    """

    name = "ctapipe-sst1m-compute-irf"
    description = __doc__

    def finish(self):
        subarray = SubarrayDescription.from_hdf(self.gamma_file)
        header = self.hdus[0].header
        header["TELLIST"] = (
            ",".join(str(t) for t in sorted(subarray.tel_ids)),
            "telescopes of the simulations",
        )
        preprocessor = self.event_loaders["gammas"].epp
        header["ENERGREC"] = preprocessor.energy_reconstructor
        header["GEOMREC"] = preprocessor.geometry_reconstructor
        header["GHCLASS"] = preprocessor.gammaness_classifier
        super().finish()


def main():
    """Run the IRF tool."""
    SST1MIrfTool().run()
