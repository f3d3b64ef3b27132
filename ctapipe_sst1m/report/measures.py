"""
The numbers of the night report, read from one product at a time.

Every function reads one file and returns small, fixed-size summaries
(binned rates, histograms on fixed bins, a few images), never the events
themselves: a report of a long night needs no more memory than one of a short
one. Images are read row by row (the pedestal events, the brightest events),
never a whole image table.
"""

from dataclasses import dataclass, field

import astropy.units as u
import numpy as np
import tables
from astropy.coordinates import AltAz, get_body
from astropy.time import Time
from ctapipe.containers import EventType
from ctapipe.io.hdf5dataformat import (
    DL0_TEL_POINTING_GROUP,
    DL1_SUBARRAY_TRIGGER_TABLE,
    DL1_TEL_IMAGES_GROUP,
    DL1_TEL_PARAMETERS_GROUP,
    DL1_TEL_POINTING_GROUP,
    DL1_TEL_TRIGGER_TABLE,
    DL2_SUBARRAY_ENERGY_GROUP,
    DL2_SUBARRAY_PARTICLETYPE_GROUP,
)
from ctapipe.time import ctao_high_res_to_time

from ..stereo.merge import COUNTS_TABLE, ORIGIN_TABLE

__all__ = [
    "BINS",
    "PEDESTAL_TYPES",
    "DL1Run",
    "DL2Run",
    "Histograms",
    "MoonTrack",
    "StereoRun",
    "TelescopeRun",
    "moon_track",
    "read_dl1_run",
    "read_dl2_run",
    "read_images",
]

#: internally triggered events: their images measure the NSB
PEDESTAL_TYPES = (EventType.SKY_PEDESTAL.value, EventType.PEDESTAL.value)
#: events that are not showers
CALIBRATION_TYPES = (
    *PEDESTAL_TYPES,
    EventType.FLATFIELD.value,
    EventType.SINGLE_PE.value,
    EventType.DARK_PEDESTAL.value,
    EventType.ELECTRONIC_PEDESTAL.value,
    EventType.OTHER_CALIBRATION.value,
)
#: fixed bins of the distributions, so that runs add up
BINS = {
    "log10_intensity": np.linspace(1.0, 5.0, 41),
    "width": np.linspace(0.0, 0.4, 41),
    "length": np.linspace(0.0, 1.0, 41),
    "cog": np.linspace(-4.5, 4.5, 46),
    "gammaness": np.linspace(0.0, 1.0, 21),
    "log10_energy": np.linspace(-1.5, 2.5, 33),
}


class Histograms:
    """Histograms on the fixed `BINS`, added up over runs."""

    def __init__(self):
        self.counts = {}

    def fill(self, name, values, edges=None):
        """Add the values (NaN ignored) to histogram ``name``."""
        edges = BINS[name] if edges is None else edges
        values = np.asarray(values, dtype=float)
        counts = np.histogram(values[np.isfinite(values)], edges)[0]
        self.add(name, counts)

    def fill2d(self, name, x, y):
        """Add (x, y) pairs to the 2D histogram ``name`` (both on ``BINS[name]``)."""
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        good = np.isfinite(x) & np.isfinite(y)
        counts = np.histogram2d(x[good], y[good], [BINS[name], BINS[name]])[0]
        self.add(name, counts)

    def add(self, name, counts):
        """Add counts to histogram ``name``."""
        if name in self.counts:
            self.counts[name] = self.counts[name] + counts
        else:
            self.counts[name] = np.asarray(counts, dtype=float)

    def merge(self, other):
        """Add all histograms of ``other``."""
        for name, counts in other.counts.items():
            self.add(name, counts)


def _binned_rate(times, start, stop, width):
    """Events per second in bins of ``width`` s over [start, stop]; (centres, rates)."""
    n = max(1, int(np.ceil((stop - start) / width)))
    edges = start + np.arange(n + 1) * width
    counts = np.histogram(times, edges)[0]
    # the last bin is partial: its rate over the time it covers
    exposure = np.diff(np.minimum(edges, max(stop, start + 1e-9)))
    exposure[exposure <= 0] = np.nan
    return 0.5 * (edges[1:] + edges[:-1]), counts / exposure


@dataclass
class TelescopeRun:
    """One telescope's events of one DL1 file, summarised."""

    tel_id: int
    n_events: int
    n_pedestals: int
    n_showers: int
    #: shower events with a valid Hillas intensity (survived the cleaning)
    n_surviving: int
    start: float
    stop: float
    rate_times: np.ndarray
    trigger_rate: np.ndarray
    dl1_rate: np.ndarray
    #: unix times and NSB level (mean pixel charge, p.e.) of pedestal events
    nsb_times: np.ndarray
    nsb_level: np.ndarray
    #: per pixel: mean and standard deviation of the pedestal charge
    pedestal_mean: np.ndarray | None
    pedestal_std: np.ndarray | None
    #: pointing: unix times, alt and az (deg)
    pointing_times: np.ndarray
    pointing_alt: np.ndarray
    pointing_az: np.ndarray
    histograms: Histograms
    #: (intensity, event_id, image row) of the brightest shower events
    brightest: list = field(default_factory=list)

    @property
    def duration(self):
        """Seconds between the first and the last event."""
        return max(0.0, self.stop - self.start)


@dataclass
class DL1Run:
    """A DL1 file: its telescopes, and the stereo events for stereo files."""

    path: object
    telescopes: dict
    #: stereo files: their event times and pairing numbers
    stereo: "StereoRun | None" = None


@dataclass
class StereoRun:
    """The pairing of a stereo DL1 file."""

    n_events: int
    rate_times: np.ndarray
    rate: np.ndarray
    #: paired events per telescope, and the mono events each input had
    paired: dict
    #: tel2 - tel1 time differences (ns) of the pairs, histogram
    time_difference_edges: np.ndarray
    time_difference_counts: np.ndarray
    inputs: list
    tolerance_ns: float


def _unix(column):
    """Unix times (UTC, s) of a time column of ctapipe's tables."""
    column = np.asarray(column)
    if column.ndim == 2:
        # ctao_high_res: TAI seconds and quarter nanoseconds
        return ctao_high_res_to_time(column[:, 0], column[:, 1]).unix
    return Time(column, format="mjd", scale="tai").unix


#: the image parameters the report shows (a parameter table has ~45 columns)
PARAMETERS = (
    "event_id",
    "hillas_intensity",
    "hillas_width",
    "hillas_length",
    "hillas_fov_lon",
    "hillas_fov_lat",
)


def _columns(table, names):
    """Only these columns of an HDF5 table: memory of a long run stays small."""
    return {name: table.col(name) for name in names}


def _tel_ids(h5file, group):
    if group not in h5file:
        return []
    return sorted(
        int(name.split("_")[1])
        for name in h5file.get_node(group)._v_children
        if name.startswith("tel_")
    )


def _pointing(h5file, tel_id):
    for group in (DL1_TEL_POINTING_GROUP, DL0_TEL_POINTING_GROUP):
        key = f"{group}/tel_{tel_id:03d}"
        if key in h5file:
            table = h5file.get_node(key).read()
            return (
                _unix(table["time"]),
                np.degrees(np.asarray(table["altitude"], dtype=float)),
                np.degrees(np.asarray(table["azimuth"], dtype=float)) % 360,
            )
    empty = np.array([])
    return empty, empty, empty


def _pedestal_images(images, rows, chunk=500):
    """Per-pixel mean and std, and per-event mean, of the images at ``rows``."""
    total = total2 = None
    level = []
    for start in range(0, len(rows), chunk):
        block = images.read_coordinates(rows[start : start + chunk], field="image")
        block = np.asarray(block, dtype=float)
        level.append(np.nanmean(block, axis=1))
        total = block.sum(axis=0) if total is None else total + block.sum(axis=0)
        squares = (block**2).sum(axis=0)
        total2 = squares if total2 is None else total2 + squares
    if total is None:
        return None, None, np.array([])
    n = len(rows)
    mean = total / n
    std = (
        np.sqrt(np.maximum(total2 / n - mean**2, 0))
        if n > 1
        else np.full_like(mean, np.nan)
    )
    return mean, std, np.concatenate(level)


def read_dl1_run(path, rate_bin=10.0, n_brightest=3):
    """
    Summarise a DL1 file (one telescope's run, or a stereo file).

    Parameters
    ----------
    path : Path
        A DL1 file of ``ctapipe-process`` or ``ctapipe-sst1m-merge-stereo``.
    rate_bin : float
        Width of the rate bins (s).
    n_brightest : int
        Brightest shower events kept per telescope.

    Returns
    -------
    DL1Run

    Raises
    ------
    OSError
        If the file cannot be read.
    """
    telescopes = {}
    with tables.open_file(path) as h5file:
        trigger = (
            h5file.get_node(DL1_TEL_TRIGGER_TABLE).read()
            if DL1_TEL_TRIGGER_TABLE in h5file
            else None
        )
        for tel_id in _tel_ids(h5file, DL1_TEL_PARAMETERS_GROUP):
            telescopes[tel_id] = _telescope_run(
                h5file, trigger, tel_id, rate_bin, n_brightest
            )
        stereo = None
        if ORIGIN_TABLE in h5file:
            stereo = _stereo_run(h5file, rate_bin)
    return DL1Run(path=path, telescopes=telescopes, stereo=stereo)


def _telescope_run(h5file, trigger, tel_id, rate_bin, n_brightest):
    own = trigger[trigger["tel_id"] == tel_id]
    times = _unix(own["time"])
    pedestal = np.isin(own["event_type"], PEDESTAL_TYPES)
    # showers: every event that is not a calibration event (simulated events
    # may carry UNKNOWN)
    shower = ~np.isin(own["event_type"], CALIBRATION_TYPES)
    parameters = _columns(
        h5file.get_node(f"{DL1_TEL_PARAMETERS_GROUP}/tel_{tel_id:03d}"), PARAMETERS
    )
    # parameters and trigger rows of a telescope are in the same event order,
    # but a stereo file may hold triggers of events without parameters: join
    order = np.argsort(own["event_id"], kind="stable")
    where = np.searchsorted(own["event_id"], parameters["event_id"], sorter=order)
    where = order[np.clip(where, 0, len(order) - 1)]
    matched = own["event_id"][where] == parameters["event_id"]
    is_shower = np.zeros(len(parameters["event_id"]), dtype=bool)
    is_shower[matched] = shower[where[matched]]
    intensity = np.asarray(parameters["hillas_intensity"], dtype=float)
    valid = is_shower & np.isfinite(intensity) & (intensity > 0)
    start = float(times.min()) if len(times) else np.nan
    stop = float(times.max()) if len(times) else np.nan
    event_times = np.full(len(parameters["event_id"]), np.nan)
    event_times[matched] = times[where[matched]]
    if len(times):
        centres, trigger_rate = _binned_rate(times, start, stop, rate_bin)
        _, dl1_rate = _binned_rate(event_times[valid], start, stop, rate_bin)
    else:
        centres = trigger_rate = dl1_rate = np.array([])

    histograms = Histograms()
    with np.errstate(divide="ignore", invalid="ignore"):
        histograms.fill("log10_intensity", np.log10(intensity[valid]))
    histograms.fill("width", parameters["hillas_width"][valid])
    histograms.fill("length", parameters["hillas_length"][valid])
    histograms.fill2d(
        "cog", parameters["hillas_fov_lon"][valid], parameters["hillas_fov_lat"][valid]
    )

    images_key = f"{DL1_TEL_IMAGES_GROUP}/tel_{tel_id:03d}"
    mean = std = None
    nsb_times, nsb_level = np.array([]), np.array([])
    brightest = []
    if images_key in h5file:
        images = h5file.get_node(images_key)
        image_ids = images.col("event_id")
        pedestal_ids = own["event_id"][pedestal]
        rows = np.flatnonzero(np.isin(image_ids, pedestal_ids))
        mean, std, nsb_level = _pedestal_images(images, rows)
        id_to_time = dict(zip(own["event_id"].tolist(), times.tolist(), strict=True))
        nsb_times = np.array([id_to_time.get(int(i), np.nan) for i in image_ids[rows]])
        top = np.flatnonzero(valid)
        top = top[np.argsort(intensity[top])[::-1][:n_brightest]]
        row_of = {int(e): r for r, e in enumerate(image_ids)}
        for index in top:
            event_id = int(parameters["event_id"][index])
            if event_id in row_of:
                brightest.append((float(intensity[index]), event_id, row_of[event_id]))
    pointing_times, alt, az = _pointing(h5file, tel_id)
    return TelescopeRun(
        tel_id=tel_id,
        n_events=len(own),
        n_pedestals=int(np.count_nonzero(pedestal)),
        n_showers=int(np.count_nonzero(shower)),
        n_surviving=int(np.count_nonzero(valid)),
        start=start,
        stop=stop,
        rate_times=centres,
        trigger_rate=trigger_rate,
        dl1_rate=dl1_rate,
        nsb_times=nsb_times,
        nsb_level=nsb_level,
        pedestal_mean=mean,
        pedestal_std=std,
        pointing_times=pointing_times,
        pointing_alt=alt,
        pointing_az=az,
        histograms=histograms,
        brightest=brightest,
    )


def _stereo_run(h5file, rate_bin):
    trigger = h5file.get_node(DL1_SUBARRAY_TRIGGER_TABLE).read()
    times = _unix(trigger["time"])
    if len(times):
        centres, rate = _binned_rate(times, times.min(), times.max(), rate_bin)
    else:
        centres = rate = np.array([])
    origin = h5file.get_node(ORIGIN_TABLE)
    tolerance = 0.0
    paired, inputs = {}, []
    if COUNTS_TABLE in h5file:
        counts = h5file.get_node(COUNTS_TABLE)
        attrs = counts.attrs
        tolerance = (
            float(attrs["TIME_TOLERANCE_NS"]) if "TIME_TOLERANCE_NS" in attrs else 0.0
        )
        inputs = str(attrs["INPUTS"]).split(",") if "INPUTS" in attrs else []
        for row in counts.read():
            tel_id = int(row["tel_id"])
            entry = paired.setdefault(tel_id, {})
            status = (
                row["status"].decode()
                if isinstance(row["status"], bytes)
                else str(row["status"])
            )
            entry[status] = entry.get(status, 0) + int(row["n_events"])
    differences = np.asarray(origin.col("time_difference"), dtype=float)
    differences = differences[np.isfinite(differences)]
    half = tolerance or (np.max(np.abs(differences)) if len(differences) else 1.0) or 1.0
    edges = np.linspace(-half, half, 41)
    return StereoRun(
        n_events=len(times),
        rate_times=centres,
        rate=rate,
        paired=paired,
        time_difference_edges=edges,
        time_difference_counts=np.histogram(np.clip(differences, -half, half), edges)[0],
        inputs=inputs,
        tolerance_ns=tolerance,
    )


def read_images(path, tel_id, rows):
    """The images at ``rows`` of a telescope's image table."""
    with tables.open_file(path) as h5file:
        images = h5file.get_node(f"{DL1_TEL_IMAGES_GROUP}/tel_{tel_id:03d}")
        return np.asarray(images.read_coordinates(np.asarray(rows), field="image"))


@dataclass
class DL2Run:
    """Gammaness, energy and gamma-like rate of a DL2 file."""

    n_events: int
    n_gamma_like: int
    rate_times: np.ndarray
    gamma_rate: np.ndarray
    histograms: Histograms


def _first_table(h5file, group):
    if group not in h5file:
        return None
    for node in h5file.get_node(group)._f_iter_nodes():
        if isinstance(node, tables.Table):
            return node.read(), node._v_name
    return None


def read_dl2_run(path, gammaness_cut=0.5, rate_bin=10.0):
    """
    Summarise a DL2 file (subarray predictions: mono or stereo).

    Parameters
    ----------
    path : Path
    gammaness_cut : float
        Events above it are "gamma-like".
    rate_bin : float
        Rate bins (s).

    Returns
    -------
    DL2Run
    """
    histograms = Histograms()
    with tables.open_file(path) as h5file:
        trigger = h5file.get_node(DL1_SUBARRAY_TRIGGER_TABLE).read()
        found = _first_table(h5file, DL2_SUBARRAY_PARTICLETYPE_GROUP)
        energy = _first_table(h5file, DL2_SUBARRAY_ENERGY_GROUP)
        times = _unix(trigger["time"])
        gammaness = np.full(len(trigger), np.nan)
        if found is not None:
            table, name = found
            index = np.searchsorted(trigger["event_id"], table["event_id"])
            index = np.clip(index, 0, len(trigger) - 1)
            ok = trigger["event_id"][index] == table["event_id"]
            gammaness[index[ok]] = table[f"{name}_prediction"][ok]
        histograms.fill("gammaness", gammaness)
        if energy is not None:
            table, name = energy
            values = np.asarray(table[f"{name}_energy"], dtype=float)
            with np.errstate(divide="ignore", invalid="ignore"):
                histograms.fill("log10_energy", np.log10(values[values > 0]))
        gamma_like = gammaness > gammaness_cut
        for tel_id in _tel_ids(h5file, DL1_TEL_PARAMETERS_GROUP):
            parameters = _columns(
                h5file.get_node(f"{DL1_TEL_PARAMETERS_GROUP}/tel_{tel_id:03d}"),
                ("event_id", "hillas_fov_lon", "hillas_fov_lat"),
            )
            chosen = np.isin(parameters["event_id"], trigger["event_id"][gamma_like])
            histograms.fill2d(
                "cog",
                parameters["hillas_fov_lon"][chosen],
                parameters["hillas_fov_lat"][chosen],
            )
    if len(times):
        centres, rate = _binned_rate(
            times[gamma_like], times.min(), times.max(), rate_bin
        )
    else:
        centres = rate = np.array([])
    return DL2Run(
        n_events=len(times),
        n_gamma_like=int(np.count_nonzero(gamma_like)),
        rate_times=centres,
        gamma_rate=rate,
        histograms=histograms,
    )


@dataclass
class MoonTrack:
    """The Moon seen from the site over some times."""

    times: Time
    altitude: np.ndarray
    #: illuminated fraction of the disc
    illumination: np.ndarray
    #: separation from the target (deg), NaN when the target is unknown
    separation: np.ndarray


def moon_track(times, location, target=None):
    """
    Moon altitude, illuminated fraction and separation from the target.

    Parameters
    ----------
    times : astropy.time.Time
    location : astropy.coordinates.EarthLocation
    target : astropy.coordinates.SkyCoord, optional

    Returns
    -------
    MoonTrack
    """
    moon = get_body("moon", times, location)
    sun = get_body("sun", times, location)
    frame = AltAz(obstime=times, location=location)
    moon_altaz = moon.transform_to(frame)
    # phase angle from the Sun-Moon elongation and the distances
    elongation = sun.separation(moon)
    sun_distance, moon_distance = sun.distance, moon.distance
    phase = np.arctan2(
        sun_distance * np.sin(elongation),
        moon_distance - sun_distance * np.cos(elongation),
    )
    illumination = (1 + np.cos(phase)) / 2
    if target is not None:
        # both seen from the site: the Moon's parallax is about 1 deg
        separation = moon_altaz.separation(target.transform_to(frame)).deg
    else:
        separation = np.full(len(times), np.nan)
    return MoonTrack(
        times=times,
        altitude=np.asarray(moon_altaz.alt.deg),
        illumination=np.asarray(u.Quantity(illumination).value),
        separation=separation,
    )
