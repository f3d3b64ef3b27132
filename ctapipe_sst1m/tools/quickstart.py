"""Copy the configuration files shipped with ctapipe-sst1m into a working directory."""

from pathlib import Path

from ctapipe.core import Provenance, Tool, traits

from ..core.resources import config_file
from ..core.run_summary import print_summary, short_path
from ..version import __version__

__all__ = ["SHIPPED_CONFIGS", "QuickStartTool"]

#: configuration files shipped in ctapipe_sst1m/resources, with what they are for
SHIPPED_CONFIGS = {
    "sst1m.yaml": "ctapipe-process: SST-1M raw data (R0) -> DL1",
    "sst1m_mc.yaml": "ctapipe-process: SST-1M sim_telarray simulations -> DL1",
    "sst1m_pedestals.yaml": "ctapipe-process, recleaning pass 1: pedestal images",
    "sst1m_pedestal_statistics.yaml": "ctapipe-sst1m-pixel-statistics: their stats",
    "sst1m_reclean.yaml": "ctapipe-process, recleaning pass 2: clean with them",
    "sst1m_pixel_charges.yaml": "ctapipe-sst1m-pixel-statistics: charge histograms",
    "sst1m_stereo.yaml": "ctapipe-process: stereo DL1 (merge-stereo) -> DL2 geometry",
    "sst1m_mc_stereo.yaml": "ctapipe-process, with sst1m_mc.yaml: stereo simulations",
    "sst1m_train_energy.yaml": "ctapipe-train-energy-regressor, stereo",
    "sst1m_train_classifier.yaml": "ctapipe-train-particle-classifier, stereo",
    "sst1m_train_energy_mono.yaml": "ctapipe-train-energy-regressor, mono",
    "sst1m_train_classifier_mono.yaml": "ctapipe-train-particle-classifier, mono",
    "sst1m_train_disp_mono.yaml": "ctapipe-train-disp-reconstructor, mono",
    "sst1m_optimize_cuts.yaml": "ctapipe-optimize-event-selection: efficiency cuts",
    "sst1m_irf.yaml": "ctapipe-compute-irf: IRFs and benchmarks",
    "sst1m_irf_point_source.yaml": (
        "ctapipe-compute-irf, with sst1m_irf.yaml: gammas from one point"
    ),
    "sst1m_irf_point_like.yaml": (
        "ctapipe-compute-irf, with sst1m_irf.yaml: point-like IRFs (RAD_MAX)"
    ),
    "sst1m_mono.yaml": "cuts and IRFs, added to the above: mono (disp direction)",
    "sst1m_nightly.yaml": "ctapipe-sst1m-nightly: a night of both telescopes to DL3",
}


class QuickStartTool(Tool):
    """
    Write the SST-1M configuration files for the stock ctapipe tools.

    The files are copies of those shipped in the package, with the contact
    information filled in; edit them, then run e.g.
    ``ctapipe-process --config sst1m.yaml --input RUN.fits.fz --output RUN.dl1.h5``.
    """

    name = "ctapipe-sst1m-quickstart"
    description = __doc__
    examples = """
    ctapipe-sst1m-quickstart --workdir my_analysis --name "A. Astronomer" \\
        --email a.astronomer@example.org
    """

    workdir = traits.Path(
        default_value=Path("."),
        directory_ok=True,
        file_ok=False,
        help="Directory to write the configuration files to (created if needed)",
    ).tag(config=True)
    contact_name = traits.Unicode(
        "YOUR-NAME-HERE", help="Your name, stored as provenance in output files"
    ).tag(config=True)
    contact_email = traits.Unicode(
        "YOUREMAIL@EXAMPLE.ORG", help="Your e-mail, stored as provenance"
    ).tag(config=True)
    overwrite = traits.Bool(False, help="Replace existing files").tag(config=True)

    aliases = {
        ("d", "workdir"): "QuickStartTool.workdir",
        "name": "QuickStartTool.contact_name",
        "email": "QuickStartTool.contact_email",
    }
    flags = {
        "overwrite": ({"QuickStartTool": {"overwrite": True}}, "Replace existing files")
    }

    def setup(self):
        self.workdir = Path(self.workdir)
        existing = [n for n in SHIPPED_CONFIGS if (self.workdir / n).exists()]
        if existing and not self.overwrite:
            self.log.critical(
                "%s exist in %s; use --overwrite to replace them",
                ", ".join(existing),
                self.workdir,
            )
            self.exit(1)
        self.workdir.mkdir(parents=True, exist_ok=True)

    def start(self):
        for name, purpose in SHIPPED_CONFIGS.items():
            text = config_file(name).read_text()
            text = text.replace("YOUR-NAME-HERE", self.contact_name)
            text = text.replace("YOUREMAIL@EXAMPLE.ORG", self.contact_email)
            if name == "sst1m_nightly.yaml":
                # the nightly runs each stage with the files written here
                text = text.replace(
                    "config_dir: null", f"config_dir: {self.workdir.resolve()}"
                )
            header = f"# written by {self.name} {__version__}\n"
            destination = self.workdir / name
            destination.write_text(header + text)
            # YAML has no CTAO reference metadata to read back: without
            # add_meta=False ctapipe warns (MissingReferenceMetadata) per file
            Provenance().add_output_file(destination, role="config", add_meta=False)
            self.log.info("wrote %s (%s)", destination, purpose)

    def finish(self):
        if self.quiet:
            return
        contact = f"contact {self.contact_name} <{self.contact_email}>"
        if self.contact_name == "YOUR-NAME-HERE":
            contact = "contact not set (--name, --email): edit DataWriter.Contact"
        workdir = short_path(self.workdir)
        configs = {name: f"{workdir}/{name}" for name in ("sst1m.yaml", "sst1m_mc.yaml")}
        print_summary(
            f"{self.name}: {len(SHIPPED_CONFIGS)} configuration files written to "
            f"{workdir} ({contact})",
            [
                ("files", ", ".join(SHIPPED_CONFIGS)),
                (
                    "raw data",
                    f"ctapipe-process --config {configs['sst1m.yaml']} "
                    "-i RUN.fits.fz -o RUN.dl1.h5",
                ),
                (
                    "simulations",
                    f"ctapipe-process --config {configs['sst1m_mc.yaml']} "
                    "-i RUN.simtel.zst -o RUN.dl1.h5",
                ),
                (
                    "a night",
                    f"ctapipe-sst1m-nightly --config {workdir}/sst1m_nightly.yaml",
                ),
                ("the others", "each file's header says which tool reads it, and how"),
                ("tools", "ctapipe-sst1m-info lists the package's tools and plugins"),
            ],
        )


def main():
    """Run the quickstart tool."""
    QuickStartTool().run()
