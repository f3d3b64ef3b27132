"""
The night report: what one night of ``ctapipe-sst1m-nightly`` produced, and
whether the data look good, from the products alone.

`make_night_report` reads the night's products one file at a time
(`~ctapipe_sst1m.report.measures`), judges each run
(`~ctapipe_sst1m.report.quality`) and writes the page and the PDF
(`~ctapipe_sst1m.report.page`): a night overview (runs, states of their steps
with links to the logs, runs that look bad), then per target its rates, NSB,
pointing and Moon, and per mode (cs1, cs2, stereo) the image distributions,
centre-of-gravity maps, DL2 distributions, stereo pairing, theta^2 with the Li
& Ma significance from the DL3 files, the brightest camera images and the
pointing check with the field's bright stars. A missing product gives a
section marked missing, never a failure.
"""

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import astropy.units as u
import numpy as np
import tables
from astropy.coordinates import AltAz, SkyCoord
from astropy.time import Time
from ctapipe.coordinates import CameraFrame
from ctapipe.instrument import SubarrayDescription
from ctapipe.utils import get_bright_stars
from gammapy.data import DataStore

from ..core.products import ProductError, one_line, verify_hdf5_product
from ..dl3.analysis import theta2_counts
from ..instrument.subarray import load_sst1m_subarray
from ..nightly.plan import MODES, tel_id_of
from ..version import __version__
from . import figures
from .measures import Histograms, moon_track, read_dl1_run, read_dl2_run, read_images
from .page import Link, ReportWriter
from .products import LEVELS, NightProducts, find_night, target_position
from .quality import Thresholds, telescope_problems

__all__ = ["ReportOptions", "ReportSummary", "make_night_report"]

#: errors of reading a damaged or unexpected product (a missing table is a
#: tables.NoSuchNodeError, a missing column a KeyError): reported, never raised
READ_ERRORS = (
    OSError,
    KeyError,
    ValueError,
    IndexError,
    tables.NodeError,
    tables.HDF5ExtError,
)
#: angular radius of the DigiCam field of view (deg), for the star search
FIELD_RADIUS = 4.8


@dataclass
class ReportOptions:
    """What the report shows, and how."""

    catalogue: str | None = None
    #: mode -> a simulation DL1 file to compare the image distributions with
    simulations: dict = field(default_factory=dict)
    gammaness_cut: float = 0.5
    theta2_cut: float = 0.04
    n_off: int = 3
    rate_bin: float = 10.0
    n_brightest: int = 3
    star_magnitude: float = 6.0
    thresholds: Thresholds = field(default_factory=Thresholds)
    dpi: int = 80


@dataclass
class ReportSummary:
    """What the report found, for the tool's summary and the tests."""

    n_runs: int = 0
    n_figures: int = 0
    #: (mode, run label) -> events of the run's DL1 (stereo: stereo events)
    events: dict = field(default_factory=dict)
    #: (target, mode) -> Theta2Counts
    theta2: dict = field(default_factory=dict)
    #: run label -> problem lines
    problems: dict = field(default_factory=dict)
    #: section -> reason it is missing
    missing: list = field(default_factory=list)
    sizes: dict = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class _RunData:
    run: object
    dl1: object = None
    dl2: object = None
    errors: list = field(default_factory=list)


def _clock(unix):
    if unix is None or not np.isfinite(unix):
        return ""
    return datetime.fromtimestamp(float(unix), UTC).strftime("%H:%M:%S")


def _anchor(*parts):
    return "-".join(str(p) for p in parts).replace("/", "-").replace(" ", "_")


def _read_mode(mode, options, progress):
    data = []
    for run in mode.runs:
        item = _RunData(run)
        for level, reader in (
            ("dl1", lambda p: read_dl1_run(p, options.rate_bin, options.n_brightest)),
            ("dl2", lambda p: read_dl2_run(p, options.gammaness_cut, options.rate_bin)),
        ):
            path = run.products.get(level)
            if path is None:
                continue
            try:
                # a damaged file is named with its fault, not read half-way
                verify_hdf5_product(path, require_mark=False)
                setattr(item, level, reader(path))
            except READ_ERRORS as err:
                item.errors.append(
                    one_line(err)
                    if isinstance(err, ProductError)
                    else f"{path}: unreadable ({one_line(err)})"
                )
        progress(run.label)
        data.append(item)
    return data


def _pointing_offsets(tel, target, location):
    """Distance (deg) of each pointing entry from the target."""
    if target is None or len(tel.pointing_times) == 0:
        return None
    frame = AltAz(obstime=Time(tel.pointing_times, format="unix"), location=location)
    pointing = SkyCoord(
        alt=tel.pointing_alt * u.deg, az=tel.pointing_az * u.deg, frame=frame
    )
    return pointing.separation(target.transform_to(frame)).deg


class _Report:
    """One report being made (state shared by the sections)."""

    def __init__(self, night, writer, options):
        self.night = night
        self.writer = writer
        self.options = options
        self.summary = ReportSummary()
        self.location = load_sst1m_subarray().reference_location
        self.data = {}
        self.positions = {}
        self.offsets = {}
        self._star_catalogue = None

    # -- reading
    def read(self, progress):
        for mode in self.night.modes():
            self.data[(mode.target, mode.mode)] = _read_mode(mode, self.options, progress)
        for target, modes in self.night.targets.items():
            found = (None, None, "no run")
            for mode in modes.values():
                found = target_position(mode, self.options.catalogue)
                if found[0] is not None:
                    break
            ra, dec, source = found
            coord = SkyCoord(ra=ra * u.deg, dec=dec * u.deg) if ra is not None else None
            self.positions[target] = (coord, source)
        for (target, _), items in self.data.items():
            coord = self.positions[target][0]
            for item in items:
                if item.dl1 is None:
                    continue
                for tel_id, tel in item.dl1.telescopes.items():
                    self.offsets[(item.run.mode, item.run.label, tel_id)] = (
                        _pointing_offsets(tel, coord, self.location)
                    )

    # -- overview
    def overview(self):
        w = self.writer
        night = self.night
        date = f"{night.night[:4]}-{night.night[4:6]}-{night.night[6:]}"
        w.heading(1, f"SST-1M night of {date}")
        w.paragraph(
            f"Made {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by ctapipe-sst1m {__version__} "
            f"from the products in {night.directory}.",
            css="small",
        )
        entries = [Link(t, f"#{_anchor('target', t)}") for t in sorted(night.targets)]
        if night.status_file is not None:
            entries.append(Link("status table", night.status_file))
        w.links(entries)
        w.heading(2, "Night overview", anchor="overview")
        header = [
            "run",
            "mode",
            "telescopes",
            "target",
            "start",
            "end",
            "duration (min)",
            "events",
            "trigger rate (Hz)",
            "DL1 rate (Hz)",
            "stereo fraction",
            *[f"{level.upper()}" for level in LEVELS],
        ]
        rows, classes = [], []
        fractions = self._stereo_fractions()
        shifter = []
        for (_target, mode_name), items in self.data.items():
            for item in items:
                row, css = self._run_row(item, mode_name, fractions)
                rows.append(row)
                classes.append(css)
                problems = self._problems(item)
                if problems:
                    self.summary.problems[item.run.label + f" ({mode_name})"] = problems
                    shifter += [f"{item.run.label} ({mode_name}): {p}" for p in problems]
        self.summary.n_runs = len(rows)
        numbers = self._quality_numbers()
        w.table(["", *numbers[0]], [["night", *numbers[1]]], caption="quality numbers")
        w.heading(3, "Runs that look bad")
        if shifter:
            w.items(shifter, "problem")
        else:
            w.note("every run looks good", "ok")
        w.heading(3, "Runs")
        w.table(header, rows, css=classes, caption="one row per run and mode")
        others = night.other_records
        if others:
            w.heading(3, "Runs not processed")
            w.table(
                ["run", "mode", "target", "state", "reason"],
                [
                    [r["run"], r["mode"], r["target"], r["state"], r["reason"]]
                    for r in others
                ],
                css=[[None, None, None, str(r["state"]), None] for r in others],
            )

    def _stereo_fractions(self):
        """DL1 file name -> fraction of its events paired, from the stereo files."""
        fractions = {}
        for (_, mode_name), items in self.data.items():
            if mode_name != "stereo":
                continue
            for item in items:
                stereo = item.dl1.stereo if item.dl1 else None
                if stereo is None:
                    continue
                for tel_id, counts in stereo.paired.items():
                    total = sum(counts.values())
                    for name in stereo.inputs:
                        # the nightly's inputs are named by camera server
                        # (SST1M1_: tel 21, SST1M2_: tel 22)
                        if f"SST1M{1 if tel_id == 21 else 2}_" in name and total:
                            fractions[name] = counts.get("paired", 0) / total
        return fractions

    def _run_row(self, item, mode_name, fractions):
        run = item.run
        tels = item.dl1.telescopes if item.dl1 else {}
        if mode_name == "stereo":
            stereo = item.dl1.stereo if item.dl1 else None
            events = stereo.n_events if stereo else None
            starts = [t.start for t in tels.values()]
            stops = [t.stop for t in tels.values()]
            rate = None
            paired = (
                ", ".join(
                    f"tel {tel}: {c.get('paired', 0) / max(1, sum(c.values())):.0%}"
                    for tel, c in sorted(stereo.paired.items())
                )
                if stereo
                else ""
            )
            dl1_rate = ""
        else:
            tel = tels.get(tel_id_of(int(mode_name[2])))
            events = tel.n_events if tel else None
            starts, stops = ([tel.start], [tel.stop]) if tel else ([], [])
            rate = tel.n_events / tel.duration if tel and tel.duration > 0 else None
            dl1_rate = (
                f"{tel.n_surviving / tel.duration:.1f}"
                if tel and tel.duration > 0
                else ""
            )
            name = run.products["dl1"].name if run.products.get("dl1") else None
            fraction = fractions.get(name)
            paired = f"{fraction:.0%}" if fraction is not None else ""
        if events is not None:
            self.summary.events[(mode_name, run.label)] = events
        start = min(starts) if starts else None
        stop = max(stops) if stops else None
        duration = (stop - start) / 60 if start is not None else None
        row = [
            Link(run.label, f"#{_anchor('mode', run.target, mode_name)}"),
            mode_name,
            ", ".join(str(t) for t in sorted(tels)) or "",
            run.target,
            _clock(start),
            _clock(stop),
            f"{duration:.2f}" if duration is not None else "",
            "" if events is None else str(events),
            f"{rate:.1f}" if rate else "",
            dl1_rate,
            paired,
        ]
        css = [None] * len(row)
        for level in LEVELS:
            state = str(run.state(level))
            record = run.steps.get(level)
            log = record.get("log") if record else run.sidecar(level, "log")
            text = state
            if state == "failed" and record and record.get("exit_code") not in (None, ""):
                # the reason is in the list of runs that look bad, the rest in the log
                text = f"failed (exit {record['exit_code']})"
            if log is not None and log.is_file():
                row.append(Link(text, log))
            else:
                row.append(text)
            css.append(state)
        return row, css

    def _problems(self, item):
        problems = list(item.errors)
        for level in LEVELS:
            record = item.run.steps.get(level)
            if record and record["state"] == "failed":
                problems.append(f"{level} failed: {record['reason']}")
        if item.dl1 is not None:
            mode = item.run.mode
            wanted = (
                item.dl1.telescopes
                if mode == "stereo"
                else {
                    k: v
                    for k, v in item.dl1.telescopes.items()
                    if k == tel_id_of(int(mode[2]))
                }
            )
            for tel_id, tel in sorted(wanted.items()):
                offset = self.offsets.get((mode, item.run.label, tel_id))
                problems += telescope_problems(tel, offset, self.options.thresholds)
        return problems

    def _quality_numbers(self):
        """The night's numbers a shifter reads first, per telescope."""
        header, values = [], []
        for tel_id, mode_name in ((21, "cs1"), (22, "cs2")):
            tels = [
                item.dl1.telescopes[tel_id]
                for (_, m), items in self.data.items()
                if m == mode_name
                for item in items
                if item.dl1 and tel_id in item.dl1.telescopes
            ]
            if not tels:
                continue
            duration = sum(t.duration for t in tels)
            events = sum(t.n_events for t in tels)
            surviving = sum(t.n_surviving for t in tels)
            levels = np.concatenate([t.nsb_level for t in tels])
            header += [
                f"tel {tel_id} time (h)",
                f"tel {tel_id} mean rate (Hz)",
                f"tel {tel_id} DL1 fraction",
                f"tel {tel_id} NSB (p.e.)",
            ]
            values += [
                f"{duration / 3600:.2f}",
                f"{events / duration:.1f}" if duration else "",
                f"{surviving / max(1, sum(t.n_showers for t in tels)):.0%}",
                f"{np.median(levels):.2f}" if len(levels) else "",
            ]
        header.append("runs with problems")
        values.append(str(len(self.summary.problems)))
        return header, values

    # -- per target
    def targets(self, progress):
        for target in sorted(self.night.targets):
            self.target_section(target)
            for mode_name in MODES:
                mode = self.night.targets[target].get(mode_name)
                self.mode_section(target, mode_name, mode)
                progress(f"{target} {mode_name}")

    def target_section(self, target):
        w = self.writer
        w.heading(2, f"Target {target}", anchor=_anchor("target", target))
        coord, source = self.positions[target]
        if coord is not None:
            w.paragraph(
                f"RA {coord.ra.deg:.4f} deg, Dec {coord.dec.deg:.4f} deg ({source})."
            )
        else:
            w.note(
                f"target position unknown ({source}): no pointing distance, "
                "Moon separation or theta²"
            )
        curves, levels, tracks, times = [], {}, {}, []
        for mode_name in MODES:
            for item in self.data.get((target, mode_name), []):
                if item.dl1 is None:
                    continue
                if mode_name == "stereo":
                    stereo = item.dl1.stereo
                    if stereo is not None:
                        curves.append(
                            (
                                "stereo events",
                                stereo.rate_times,
                                stereo.rate,
                                figures.COLOURS["stereo"],
                                "-",
                            )
                        )
                else:
                    tel_id = tel_id_of(int(mode_name[2]))
                    tel = item.dl1.telescopes.get(tel_id)
                    if tel is None:
                        continue
                    colour = figures.COLOURS[tel_id]
                    curves.append(
                        (
                            f"tel {tel_id} trigger",
                            tel.rate_times,
                            tel.trigger_rate,
                            colour,
                            ":",
                        )
                    )
                    curves.append(
                        (f"tel {tel_id} DL1", tel.rate_times, tel.dl1_rate, colour, "-")
                    )
                    _extend(levels, tel_id, tel.nsb_times, tel.nsb_level)
                    offset = self.offsets.get((mode_name, item.run.label, tel_id))
                    if offset is None:
                        offset = np.full(len(tel.pointing_times), np.nan)
                    _extend(
                        tracks,
                        tel_id,
                        tel.pointing_times,
                        tel.pointing_alt,
                        tel.pointing_az,
                        offset,
                    )
                    times += [tel.start, tel.stop]
                if item.dl2 is not None:
                    colour = figures.COLOURS.get(
                        "stereo"
                        if mode_name == "stereo"
                        else tel_id_of(int(mode_name[2]))
                    )
                    curves.append(
                        (
                            f"{mode_name} DL2 gamma-like",
                            item.dl2.rate_times,
                            item.dl2.gamma_rate,
                            colour,
                            "--",
                        )
                    )
        curves = _merge_curves(curves)
        w.figure(
            figures.rates_figure(
                curves, f"{target}: trigger, DL1, stereo and gamma-like rates"
            ),
            "Rates against time: trigger (dotted), DL1 events surviving the cleaning "
            "(solid), stereo events, and DL2 events of gammaness > "
            f"{self.options.gammaness_cut} (dashed).",
        )
        w.figure(
            figures.nsb_figure(levels, f"{target}: NSB level from the pedestal events"),
            "Mean charge of the pixels of each pedestal event (p.e.): the NSB level the "
            "cleaning and the library nodes use.",
        )
        w.figure(
            figures.pointing_figure(tracks, f"{target}: telescope pointing"),
            "Pointing of each telescope and its distance from the target "
            "(wobble offset).",
        )
        times = [t for t in times if np.isfinite(t)]
        if times:
            span = Time(
                np.linspace(min(times) - 600, max(times) + 600, 40), format="unix"
            )
            moon = moon_track(span, self.location, coord)
            w.figure(
                figures.moon_figure(moon, f"{target}: the Moon"),
                f"Moon altitude, separation from the target and illuminated fraction "
                f"({100 * np.mean(moon.illumination):.0f} % on average).",
            )
        else:
            w.note("no DL1 events: no Moon, pointing or rate plots")

    def mode_section(self, target, mode_name, mode):
        w = self.writer
        w.heading(3, f"{target}: {mode_name}", anchor=_anchor("mode", target, mode_name))
        if mode is None:
            self._missing(f"{target} {mode_name}: no run of this mode in the night")
            return
        items = self.data.get((target, mode_name), [])
        dl1 = [i for i in items if i.dl1 is not None]
        dl2 = [i for i in items if i.dl2 is not None]
        if dl1:
            self._images(target, mode_name, dl1, dl2)
        else:
            states = ", ".join(f"{i.run.label}: {i.run.state('dl1')}" for i in items)
            self._missing(
                f"{target} {mode_name}: no DL1 product"
                + (f" ({states})" if states else "")
            )
        if dl2:
            dl2_hist = Histograms()
            for item in dl2:
                dl2_hist.merge(item.dl2.histograms)
            w.figure(
                figures.dl2_figure(
                    dl2_hist, self.options.gammaness_cut, f"{target} {mode_name}: DL2"
                ),
                "Gammaness and reconstructed energy of the DL2 events.",
            )
        else:
            self._missing(f"{target} {mode_name}: no DL2 product")
        if mode_name == "stereo" and dl1:
            self._stereo(target, dl1)
        self._theta2(target, mode_name, mode)
        if mode_name != "stereo" and dl1:
            self._cameras(target, mode_name, dl1)

    def _images(self, target, mode_name, dl1, dl2):
        """Image distributions (with the simulation's) and CoG maps."""
        histograms = {}
        for item in dl1:
            for tel_id, tel in item.dl1.telescopes.items():
                histograms.setdefault(tel_id, Histograms()).merge(tel.histograms)
        simulation = self._simulation(mode_name)
        caption = (
            "Intensity, width and length of the shower images that survive the cleaning"
        )
        if simulation:
            drawn = " and ".join(
                f"{run.n_surviving} of tel {tel_id}"
                for tel_id, run in sorted(simulation.items())
                if tel_id in histograms
            )
            caption += f" (dashed: simulated images, {drawn}, scaled to the data's)"
        self.writer.figure(
            figures.distributions_figure(
                histograms,
                f"{target} {mode_name}: images surviving the cleaning",
                {t: run.histograms for t, run in (simulation or {}).items()},
            ),
            caption + ".",
        )
        maps = [
            (f"tel {t}: all", h.counts["cog"])
            for t, h in sorted(histograms.items())
            if "cog" in h.counts
        ]
        gamma_like = Histograms()
        for item in dl2:
            gamma_like.merge(item.dl2.histograms)
        if "cog" in gamma_like.counts:
            label = f"gamma-like (> {self.options.gammaness_cut})"
            maps.append((label, gamma_like.counts["cog"]))
        self.writer.figure(
            figures.cog_figure(maps, f"{target} {mode_name}: image centres of gravity"),
            "Centres of gravity of the images after cleaning, and of the "
            "gamma-like events.",
        )

    def _missing(self, text):
        self.summary.missing.append(text)
        self.writer.note(f"missing: {text}", "missing")

    def _simulation(self, mode_name):
        path = self.options.simulations.get(mode_name)
        if not path:
            return None
        try:
            run = read_dl1_run(path, self.options.rate_bin, 0)
        except READ_ERRORS as err:
            self.writer.note(
                f"simulation {path}: unreadable ({one_line(err)})", "problem"
            )
            return None
        return run.telescopes

    def _stereo(self, target, dl1):
        edges = counts = None
        fractions = {}
        for item in dl1:
            stereo = item.dl1.stereo
            if stereo is None:
                continue
            if counts is None:
                edges, counts = (
                    stereo.time_difference_edges,
                    stereo.time_difference_counts.copy(),
                )
            elif len(stereo.time_difference_counts) == len(counts) and np.allclose(
                edges, stereo.time_difference_edges
            ):
                counts = counts + stereo.time_difference_counts
            for tel_id, c in stereo.paired.items():
                labels, values = fractions.setdefault(tel_id, ([], []))
                labels.append(item.run.label)
                values.append(c.get("paired", 0) / max(1, sum(c.values())))
        self.writer.figure(
            figures.stereo_figure(edges, counts, fractions, f"{target} stereo: pairing"),
            "Time differences of the paired events (after the clock offset) and the "
            "fraction of each telescope's events that found a partner.",
        )

    def _theta2(self, target, mode_name, mode):
        coord = self.positions[target][0]
        if mode.dl3_index is None:
            self._missing(
                f"{target} {mode_name}: no DL3 index in "
                f"{mode.directory / 'dl3'}: no theta²"
            )
            return
        if coord is None:
            self._missing(f"{target} {mode_name}: target position unknown: no theta²")
            return
        try:
            store = DataStore.from_dir(mode.dl3_index)
            observations = store.get_observations(required_irf="all-optional")
            theta2 = theta2_counts(
                observations,
                coord,
                n_off=self.options.n_off,
                theta2_cut=self.options.theta2_cut,
            )
        except READ_ERRORS as err:
            self._missing(f"{target} {mode_name}: DL3 unreadable ({one_line(err)})")
            return
        self.summary.theta2[(target, mode_name)] = theta2
        w = self.writer
        w.table(
            [
                "runs",
                "ON",
                "OFF",
                "alpha",
                "excess",
                "significance (sigma)",
                "theta² cut (deg²)",
            ],
            [
                [
                    str(len(observations)),
                    str(theta2.n_on),
                    str(theta2.n_off),
                    f"{theta2.alpha:.4f}",
                    f"{theta2.excess:.2f}",
                    f"{theta2.significance:.2f}",
                    f"{theta2.theta2_cut}",
                ]
            ],
            caption=f"{target} {mode_name}: theta² counts (Li & Ma, gammapy WStat)",
        )
        w.figure(
            figures.theta2_figure(theta2, f"{target} {mode_name}: theta²"),
            f"ON counts around the target and OFF counts around its {self.options.n_off} "
            "reflections about each run's pointing (wobble), from the DL3 files.",
        )

    def _cameras(self, target, mode_name, dl1):
        tel_id = tel_id_of(int(mode_name[2]))
        candidates = []
        for item in dl1:
            tel = item.dl1.telescopes.get(tel_id)
            if tel is None:
                continue
            for intensity, event_id, row in tel.brightest:
                candidates.append((intensity, event_id, row, item.run))
        candidates.sort(key=lambda c: -c[0])
        candidates = candidates[: self.options.n_brightest]
        first = dl1[0].run.products["dl1"]
        try:
            tel_description = SubarrayDescription.from_hdf(first).tel[tel_id]
        except READ_ERRORS as err:
            self._missing(f"{first}: no telescope description ({one_line(err)})")
            return
        geometry = tel_description.camera.geometry
        if candidates:
            panels = []
            for intensity, event_id, row, run in candidates:
                image = read_images(run.products["dl1"], tel_id, [row])[0]
                panels.append(
                    (
                        f"{run.label} event {event_id}\n{intensity:.0f} p.e.",
                        image,
                        "charge (p.e.)",
                    )
                )
            self.writer.figure(
                figures.camera_figure(
                    geometry,
                    panels,
                    f"{target} {mode_name}: brightest events of tel {tel_id}",
                ),
                "The brightest shower images of the mode's runs (DigiCam, "
                "calibrated charges).",
            )
        else:
            self._missing(f"{target} {mode_name}: no shower images in the DL1 files")
        self._pointing_check(target, mode_name, tel_id, dl1, geometry, tel_description)

    def _pointing_check(self, target, mode_name, tel_id, dl1, geometry, description):
        panels, stars = [], []
        focal = description.optics.equivalent_focal_length
        radius = np.max(np.hypot(geometry.pix_x, geometry.pix_y)).to_value(u.m)
        for item in dl1:
            tel = item.dl1.telescopes.get(tel_id)
            if tel is None or tel.pedestal_std is None or len(tel.pointing_times) == 0:
                continue
            middle = len(tel.pointing_times) // 2
            when = Time(tel.pointing_times[middle], format="unix")
            pointing = SkyCoord(
                alt=tel.pointing_alt[middle] * u.deg,
                az=tel.pointing_az[middle] * u.deg,
                frame=AltAz(obstime=when, location=self.location),
            )
            stars.append(self._stars(pointing, when, focal, radius))
            panels.append(
                (
                    f"{item.run.label}: {tel.n_pedestals} pedestal events",
                    tel.pedestal_std,
                    "pedestal charge std (p.e.)",
                )
            )
        if not panels:
            self._missing(f"{target} {mode_name}: no pedestal images: no pointing check")
            return
        for start in range(0, len(panels), 3):
            self.writer.figure(
                figures.camera_figure(
                    geometry,
                    panels[start : start + 3],
                    f"{target} {mode_name}: pointing check, tel {tel_id}",
                    stars=stars[start : start + 3],
                    cmap="viridis",
                ),
                "Spread of the pedestal charge per pixel; circles: stars brighter "
                f"than V = {self.options.star_magnitude} where the pointing puts "
                "them. A star's light raises the noise of its pixels: a star away "
                "from its circle is a mis-pointing.",
            )

    def _stars(self, pointing, when, focal, radius):
        """Bright stars of the field in camera coordinates: (x, y, labels) or None."""
        if self._star_catalogue is None:
            # parsed once: ctapipe parses the whole catalogue on every call
            self._star_catalogue = get_bright_stars(
                time=when, magnitude_cut=self.options.star_magnitude
            )
        catalogue = self._star_catalogue
        # positions at the night's epoch, without their proper motions (the
        # camera frame's transformations do not carry velocities)
        positions = SkyCoord(ra=catalogue["ra_dec"].ra, dec=catalogue["ra_dec"].dec)
        near = positions.separation(pointing.icrs).deg < FIELD_RADIUS
        if not near.any():
            return None
        positions = positions[near]
        camera = CameraFrame(
            telescope_pointing=pointing,
            focal_length=focal,
            obstime=when,
            location=self.location,
        )
        in_camera = positions.transform_to(camera)
        x, y = in_camera.x.to_value(u.m), in_camera.y.to_value(u.m)
        inside = np.hypot(x, y) < radius
        labels = [f"V {m:.1f}" for m in np.asarray(catalogue["Vmag"])[near][inside]]
        return x[inside], y[inside], labels


def _extend(store, key, *arrays):
    if key not in store:
        store[key] = tuple(np.asarray(a, dtype=float) for a in arrays)
    else:
        store[key] = tuple(
            np.concatenate([old, np.asarray(a, dtype=float)])
            for old, a in zip(store[key], arrays, strict=True)
        )


def _merge_curves(curves):
    """One curve per label, runs joined with a NaN between them (a gap in the line)."""
    merged = {}
    for label, times, rates, colour, style in curves:
        if len(times) == 0:
            continue
        if label in merged:
            old = merged[label]
            merged[label] = (
                label,
                np.concatenate([old[1], [old[1][-1] + 1e-3], times]),
                np.concatenate([old[2], [np.nan], rates]),
                colour,
                style,
            )
        else:
            merged[label] = (label, np.asarray(times), np.asarray(rates), colour, style)
    return [merged[label] for label in merged]


def make_night_report(night, html_path, pdf_path=None, options=None, progress=None):
    """
    Write the report of one night.

    Parameters
    ----------
    night : NightProducts or Path
        The night (`find_night`), or its directory ``{analysis_dir}/{YYYYMMDD}``.
    html_path : Path
        The page to write.
    pdf_path : Path, optional
        The PDF to write.
    options : ReportOptions, optional
    progress : callable, optional
        Called with a short text after each run read and each section written.

    Returns
    -------
    ReportSummary

    Raises
    ------
    ReportError
        If ``night_dir`` is not a night's directory.
    """
    start = time.perf_counter()
    options = options or ReportOptions()
    progress = progress or (lambda text: None)
    if not isinstance(night, NightProducts):
        night = find_night(night)
    writer = ReportWriter(
        html_path, pdf_path, f"SST-1M night {night.night}", dpi=options.dpi
    )
    try:
        report = _Report(night, writer, options)
        report.read(progress)
        report.overview()
        report.targets(progress)
        report.summary.n_figures = writer.n_figures
        report.summary.sizes = writer.close()
    except BaseException:
        writer.abort()
        raise
    report.summary.seconds = time.perf_counter() - start
    return report.summary
