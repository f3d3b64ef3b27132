"""Write the report of one night of ctapipe-sst1m-nightly: a static page and a PDF."""

from pathlib import Path

from ctapipe.core import Tool, traits

from ..core.run_summary import plural, print_summary, short_path
from ..nightly.discover import CatalogueError
from ..nightly.plan import MODES
from ..report.night_report import ReportOptions, make_night_report
from ..report.products import ReportError, find_night
from ..report.quality import Thresholds

__all__ = ["NightReportTool", "main"]

#: names of the report's files in the night's directory
HTML_NAME = "night_report.html"
PDF_NAME = "night_report.pdf"


class NightReportTool(Tool):
    """
    Make the report of one observing night from its products: a self-contained
    static HTML page (figures embedded, no JavaScript; open it from the file or
    any web server) and a PDF of the same content.

    It reads the directory ``ctapipe-sst1m-nightly`` writes for the night
    (DL1, DL2, DL3 and the status table) and nothing else, so it can be made
    again at any time. A missing product gives a section marked missing.
    """

    name = "ctapipe-sst1m-night-report"
    description = __doc__
    examples = """
    ctapipe-sst1m-night-report analysis/20240312

    with the source catalogue of the nightly and the simulations to compare with:
    ctapipe-sst1m-night-report analysis/20240312 --catalogue sources.ecsv \\
        --simulation cs1=library/ze20_az180_nsb2.4/gamma_tel_021.dl1.h5
    """

    night_dir = traits.Path(
        directory_ok=True,
        file_ok=False,
        help="The night's directory {analysis_dir}/{YYYYMMDD} (also positional)",
    ).tag(config=True)
    output = traits.Path(
        directory_ok=False,
        help=f"The page; default: {HTML_NAME} in the night's directory",
    ).tag(config=True)
    pdf = traits.Path(
        directory_ok=False,
        help=f"The PDF; default: {PDF_NAME} next to the page",
    ).tag(config=True)
    write_pdf = traits.Bool(True, help="Write the PDF too").tag(config=True)
    catalogue = traits.Path(
        exists=True,
        directory_ok=False,
        help="Source catalogue (name, ra, dec): target positions; default: the "
        "positions the nightly wrote into the DL1 configurations",
    ).tag(config=True)
    simulations = traits.Dict(
        key_trait=traits.Unicode(),
        value_trait=traits.Unicode(),
        help="Mode (cs1, cs2, stereo) -> a simulation DL1 file (e.g. the models' "
        "training gammas) whose image distributions are drawn with the data's",
    ).tag(config=True)
    gammaness_cut = traits.Float(
        0.5, help="Gammaness above which an event is gamma-like"
    ).tag(config=True)
    theta2_cut = traits.Float(0.04, help="theta^2 signal cut (deg^2)").tag(config=True)
    n_off = traits.Int(
        3, help="OFF positions per run (reflected about the pointing)"
    ).tag(config=True)
    rate_bin = traits.Float(10.0, help="Width of the rate bins (s)").tag(config=True)
    n_brightest = traits.Int(3, help="Brightest events shown per telescope").tag(
        config=True
    )
    star_magnitude = traits.Float(
        6.0, help="Faintest stars (V) of the pointing check"
    ).tag(config=True)
    min_pedestals = traits.Int(
        Thresholds.min_pedestals, help="Fewer pedestal events than this: a problem"
    ).tag(config=True)
    rate_drop = traits.Float(
        Thresholds.rate_drop,
        help="A DL1 rate bin below this fraction of the run median: a problem",
    ).tag(config=True)
    nsb_jump = traits.Float(
        Thresholds.nsb_jump,
        help="An NSB change (p.e.) between consecutive minutes above this: a problem",
    ).tag(config=True)
    max_pointing_offset = traits.Float(
        Thresholds.max_pointing_offset,
        help="Pointing further from the target (deg): a problem",
    ).tag(config=True)
    dpi = traits.Int(80, help="Resolution of the figures in the page").tag(config=True)
    progress_bar = traits.Bool(True, help="Show a progress bar").tag(config=True)

    aliases = {
        ("i", "night-dir"): "NightReportTool.night_dir",
        ("o", "output"): "NightReportTool.output",
        "pdf": "NightReportTool.pdf",
        "catalogue": "NightReportTool.catalogue",
        "simulation": "NightReportTool.simulations",
        "gammaness-cut": "NightReportTool.gammaness_cut",
        "theta2-cut": "NightReportTool.theta2_cut",
    }
    flags = {
        "no-pdf": ({"NightReportTool": {"write_pdf": False}}, "Write the page only"),
        "progress": ({"NightReportTool": {"progress_bar": True}}, "Show a progress bar"),
        "no-progress": ({"NightReportTool": {"progress_bar": False}}, "No progress bar"),
    }

    def setup(self):
        given = [*([self.night_dir] if self.night_dir else []), *self.extra_args]
        if len(given) != 1:
            self._fail(
                "give one night's directory ({analysis_dir}/{YYYYMMDD}), not "
                f"{len(given)}" + (f" ({', '.join(map(str, given))})" if given else "")
            )
        self.night_dir = Path(given[0])
        if not self.night_dir.is_dir():
            self._fail(
                f"{self.night_dir}: no such directory; give the night's directory "
                "of ctapipe-sst1m-nightly ({analysis_dir}/{YYYYMMDD})"
            )
        self.output = Path(self.output or self.night_dir / HTML_NAME)
        if self.write_pdf:
            self.pdf = Path(self.pdf or self.output.with_name(PDF_NAME))
        else:
            self.pdf = None
        for mode, path in self.simulations.items():
            if mode not in ("cs1", "cs2", "stereo"):
                self._fail(
                    f"NightReportTool.simulations: unknown mode {mode!r}; "
                    "use cs1, cs2 or stereo"
                )
            if not Path(path).is_file():
                self._fail(
                    f"{path}: no such simulation DL1 file "
                    f"(NightReportTool.simulations[{mode!r}])"
                )

    def _fail(self, message):
        self.log.critical(message)
        self.exit(1)

    def start(self):
        options = ReportOptions(
            catalogue=str(self.catalogue) if self.catalogue else None,
            simulations=dict(self.simulations),
            gammaness_cut=self.gammaness_cut,
            theta2_cut=self.theta2_cut,
            n_off=self.n_off,
            rate_bin=self.rate_bin,
            n_brightest=self.n_brightest,
            star_magnitude=self.star_magnitude,
            thresholds=Thresholds(
                min_pedestals=self.min_pedestals,
                rate_drop=self.rate_drop,
                nsb_jump=self.nsb_jump,
                max_pointing_offset=self.max_pointing_offset,
            ),
            dpi=self.dpi,
        )
        bar = None
        try:
            night = find_night(self.night_dir)
            if self.progress_bar and not self.quiet:
                from tqdm.auto import tqdm

                # each run is read once, then one section per target and mode
                n_runs = sum(len(mode.runs) for mode in night.modes())
                total = n_runs + len(MODES) * len(night.targets)
                bar = tqdm(total=total, desc="night report", unit="step")
            self.summary = make_night_report(
                night,
                self.output,
                self.pdf,
                options,
                progress=(lambda text: bar.update(1)) if bar else None,
            )
        except (ReportError, CatalogueError) as err:
            self._fail(str(err))
        finally:
            if bar is not None:
                bar.close()

    def finish(self):
        if self.quiet:
            return
        s = self.summary
        rows = [
            (
                "runs",
                f"{plural(s.n_runs, 'run')} (one per run and mode), "
                f"{len(s.problems)} with problems",
            ),
            ("figures", str(s.n_figures)),
        ]
        for (target, mode), theta2 in sorted(s.theta2.items()):
            rows.append(
                (
                    f"{target} {mode}",
                    f"ON {theta2.n_on}, OFF {theta2.n_off} x {theta2.alpha:.2f}, "
                    f"excess {theta2.excess:.1f}, {theta2.significance:.1f} sigma",
                )
            )
        for text in s.missing[:5]:
            rows.append(("missing", text))
        if len(s.missing) > 5:
            rows.append(("missing", f"... {len(s.missing) - 5} more (see the page)"))
        rows.append(
            ("page", f"{short_path(self.output)} ({s.sizes['html'] / 1e6:.1f} MB)")
        )
        if self.pdf:
            rows.append(
                ("PDF", f"{short_path(self.pdf)} ({s.sizes['pdf'] / 1e6:.1f} MB)")
            )
        print_summary(
            f"{self.name}: night {self.night_dir.name} in {s.seconds:.1f} s", rows
        )


def main():
    """Run the night report tool."""
    NightReportTool().run()
