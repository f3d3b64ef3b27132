"""
ctapipe-sst1m-interpolate-irf: the IRFs at a zenith angle from a library of IRF
nodes, interpolated in cos(zenith) between the two nodes bracketing it.

The rule and the file written: `ctapipe_sst1m.dl3.irf_interpolation`.
"""

from pathlib import Path

from ctapipe.core import Provenance, Tool, traits

from ..core.products import ProductError, remove_stale_partials
from ..core.run_summary import print_summary, short_path
from ..dl3.irf_interpolation import (
    ZENITH_TOLERANCE,
    IrfInterpolationError,
    write_irf_at_zenith,
)

__all__ = ["InterpolateIrfTool", "main"]


class InterpolateIrfTool(Tool):
    """
    The IRFs at a zenith angle from the IRF files of ``ctapipe-sst1m-compute-irf``
    at several simulated pointings (a library of nodes).

    The two nodes of one azimuth and NSB whose zenith angles bracket the target
    are interpolated linearly in cos(zenith) with pyirf's estimators (effective
    area in log, energy dispersion by moment morphing, PSF by quantiles,
    RAD_MAX and background linearly). A node within ``tolerance`` of the target
    is taken as it is; a target outside the nodes' zenith range is given the
    nearest node, not extrapolated, with a warning. The file written has the
    nodes' HDUs and header cards, the pointing of the interpolated node, and
    its sources (``SRCIRF1``, ``SRCWGT1``, ...; ``NODERULE`` says why these
    nodes).
    """

    name = "ctapipe-sst1m-interpolate-irf"
    description = __doc__
    examples = """
    ctapipe-sst1m-interpolate-irf --irf ze10/irf.fits.gz --irf ze30/irf.fits.gz \\
        --zenith 20 --output irf_ze20.fits.gz
    ctapipe-sst1m-interpolate-irf library/*/irf.fits.gz --zenith 25 --azimuth 180 \\
        --nsb dark --output irf_ze25.fits.gz
    """

    irf_files = traits.List(
        traits.Path(exists=True, directory_ok=False),
        default_value=[],
        help="IRF files of ctapipe-sst1m-compute-irf, one per node (also positional)",
    ).tag(config=True)
    zenith = traits.Float(
        None, allow_none=True, help="Zenith angle (deg) of the IRFs to make"
    ).tag(config=True)
    azimuth = traits.Float(
        None,
        allow_none=True,
        help="Azimuth (deg) of the run: the nodes' azimuth nearest to it is used "
        "(needed if the nodes are at several azimuths; not interpolated)",
    ).tag(config=True)
    nsb = traits.Unicode(
        None,
        allow_none=True,
        help="NSB label (NSBNODE) of the nodes to use (needed if they have several)",
    ).tag(config=True)
    tolerance = traits.Float(
        ZENITH_TOLERANCE,
        help="A node closer than this to the zenith angle (deg) is taken as it is",
    ).tag(config=True)
    output_path = traits.Path(
        directory_ok=False, help="IRF file to write (.fits.gz)"
    ).tag(config=True)

    aliases = {
        "irf": "InterpolateIrfTool.irf_files",
        "zenith": "InterpolateIrfTool.zenith",
        "azimuth": "InterpolateIrfTool.azimuth",
        "nsb": "InterpolateIrfTool.nsb",
        ("o", "output"): "InterpolateIrfTool.output_path",
    }

    def setup(self):
        self.files = [*self.irf_files, *(Path(p) for p in self.extra_args)]
        if not self.files:
            self._fail("no IRF files given (--irf, or positional)")
        for path in self.files:
            if not path.is_file():
                self._fail(f"{path}: no such file")
        if self.zenith is None:
            self._fail("no zenith angle given; set --zenith (deg)")
        if self.output_path is None:
            self._fail("no output file given; set --output")
        if any(path.resolve() == self.output_path.resolve() for path in self.files):
            self._fail(
                f"{self.output_path}: the output is one of the IRF files given; set "
                "--output to another file"
            )
        remove_stale_partials(self.output_path, self.log)
        self.check_output(self.output_path)

    def _fail(self, message):
        self.log.critical(message)
        self.exit(1)

    def start(self):
        try:
            hdus, self.choice, self.nodes = write_irf_at_zenith(
                self.files,
                self.output_path,
                self.zenith,
                azimuth=self.azimuth,
                nsb=self.nsb,
                tolerance=self.tolerance,
            )
        except (IrfInterpolationError, ProductError) as err:
            self._fail(str(err))
        self.names = [hdu.name for hdu in hdus[1:]]
        if self.choice.off_target:
            self.log.warning("zenith %g deg: %s", self.zenith, self.choice.reason)
        elif not self.choice.interpolated:
            self.log.info("zenith %g deg: %s", self.zenith, self.choice.reason)
        for index in self.choice.indices:
            Provenance().add_input_file(self.files[index], role="IRF")
        Provenance().add_output_file(self.output_path, role="IRF")

    def finish(self):
        if self.quiet:
            return
        choice = self.choice
        node = self.nodes[choice.indices[0]]
        kind = "point-like" if "RAD_MAX" in self.names else "full-enclosure"
        sources = ", ".join(
            f"{short_path(self.files[i])} (zenith {self.nodes[i].zenith:g} deg, "
            f"weight {weight:.3f})"
            for i, weight in zip(choice.indices, choice.weights, strict=True)
        )
        rows = [
            ("IRFs", f"{kind}: {', '.join(self.names)}"),
            (
                "node",
                f"zenith {choice.zenith:g} deg (alt {90 - choice.zenith:g} deg), "
                f"az {node.az:g} deg, NSB {node.nsb}, field of view {node.fov_max:g} "
                "deg",
            ),
            ("from", sources),
            ("rule", choice.reason),
        ]
        how = "interpolated" if choice.interpolated else "NOT interpolated"
        print_summary(
            f"{self.name}: IRFs at zenith {self.zenith:g} deg, {how}, written to "
            f"{short_path(self.output_path)}",
            rows,
        )


def main():
    """Run the IRF interpolation tool."""
    InterpolateIrfTool().run()
