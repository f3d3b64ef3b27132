"""
The figures of the night report, in matplotlib, from the summaries of
`~ctapipe_sst1m.report.measures`.

Each function returns a `matplotlib.figure.Figure` made without pyplot (no
global figure registry: a night of many figures does not pile them up), with
units on the axes, a title and a legend where there is more than one curve.
"""

from datetime import UTC, datetime

import matplotlib.dates as mdates
import numpy as np
from ctapipe.visualization import CameraDisplay
from matplotlib.figure import Figure

from .measures import BINS

__all__ = [
    "camera_figure",
    "cog_figure",
    "distributions_figure",
    "dl2_figure",
    "moon_figure",
    "nsb_figure",
    "pointing_figure",
    "rates_figure",
    "stereo_figure",
    "theta2_figure",
]

#: one colour per telescope or mode, the same in every figure
COLOURS = {21: "tab:blue", 22: "tab:orange", "stereo": "tab:green"}
WIDE = (10, 3.6)


def _dates(unix):
    return [datetime.fromtimestamp(t, UTC) for t in np.asarray(unix, dtype=float)]


def _time_axis(ax):
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
    ax.set_xlabel("time (UTC)")


def _no_data(ax, text="no data"):
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center")


def rates_figure(curves, title):
    """
    Rates against time, on one axis.

    Parameters
    ----------
    curves : list of tuple
        (label, unix times, rates in Hz, colour, line style); NaN rates break
        the line between runs.
    title : str
    """
    figure = Figure(figsize=WIDE, layout="constrained")
    ax = figure.add_subplot()
    for label, times, rates, colour, style in curves:
        ax.plot(
            _dates(times), rates, style, color=colour, label=label, drawstyle="steps-mid"
        )
    if curves:
        ax.legend(fontsize="small", ncols=2)
        _time_axis(ax)
    else:
        _no_data(ax)
    ax.set_ylabel("rate (Hz)")
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_title(title)
    return figure


def nsb_figure(levels, title):
    """
    NSB level (mean pedestal charge over pixels) against time, per telescope.

    Parameters
    ----------
    levels : dict
        tel_id -> (unix times, levels in p.e.).
    """
    figure = Figure(figsize=WIDE, layout="constrained")
    ax = figure.add_subplot()
    shown = False
    for tel_id, (times, level) in sorted(levels.items()):
        if len(times):
            ax.plot(
                _dates(times),
                level,
                ".",
                ms=3,
                color=COLOURS.get(tel_id),
                label=f"tel {tel_id}",
            )
            shown = True
    if shown:
        ax.legend(fontsize="small")
        _time_axis(ax)
    else:
        _no_data(ax, "no pedestal events with images")
    ax.set_ylabel("mean pedestal charge (p.e.)")
    ax.set_title(title)
    return figure


def pointing_figure(tracks, title):
    """
    Telescope pointing against time and its distance from the target.

    Parameters
    ----------
    tracks : dict
        tel_id -> (unix times, alt deg, az deg, distance from target deg).
    """
    figure = Figure(figsize=(10, 3.6), layout="constrained")
    alt_ax, az_ax, off_ax = figure.subplots(1, 3)
    for tel_id, (times, alt, az, offset) in sorted(tracks.items()):
        dates = _dates(times)
        colour = COLOURS.get(tel_id)
        alt_ax.plot(dates, alt, ".", ms=2, color=colour, label=f"tel {tel_id}")
        az_ax.plot(dates, az, ".", ms=2, color=colour, label=f"tel {tel_id}")
        off_ax.plot(dates, offset, ".", ms=2, color=colour, label=f"tel {tel_id}")
    for ax, label in (
        (alt_ax, "altitude (deg)"),
        (az_ax, "azimuth (deg)"),
        (off_ax, "distance from target (deg)"),
    ):
        ax.set_ylabel(label)
        if tracks:
            _time_axis(ax)
            ax.legend(fontsize="small")
        else:
            _no_data(ax)
    figure.suptitle(title)
    return figure


def moon_figure(moon, title):
    """Moon altitude, illuminated fraction and separation from the target."""
    figure = Figure(figsize=WIDE, layout="constrained")
    ax = figure.add_subplot()
    dates = _dates(moon.times.unix)
    ax.plot(dates, moon.altitude, color="k", label="Moon altitude")
    if np.isfinite(moon.separation).any():
        ax.plot(dates, moon.separation, color="tab:red", label="separation from target")
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_ylabel("angle (deg)")
    _time_axis(ax)
    ax.legend(fontsize="small", loc="upper left")
    twin = ax.twinx()
    twin.plot(
        dates, 100 * moon.illumination, "--", color="tab:purple", label="illumination"
    )
    twin.set_ylabel("illuminated fraction (%)")
    twin.set_ylim(0, 100)
    twin.legend(fontsize="small", loc="upper right")
    ax.set_title(title)
    return figure


def _step(ax, edges, counts, label, colour=None, style="-"):
    ax.stairs(
        np.asarray(counts, dtype=float), edges, label=label, color=colour, linestyle=style
    )


def distributions_figure(histograms, title, simulation=None):
    """
    Intensity, width and length of the surviving images.

    Parameters
    ----------
    histograms : dict
        tel_id -> Histograms.
    simulation : dict, optional
        tel_id -> Histograms of the simulation compared with (drawn dashed,
        each normalised to the data's number of events).
    """
    figure = Figure(figsize=(10, 3.4), layout="constrained")
    axes = figure.subplots(1, 3)
    names = (
        ("log10_intensity", "log10(intensity / p.e.)"),
        ("width", "width (deg)"),
        ("length", "length (deg)"),
    )
    for ax, (name, label) in zip(axes, names, strict=True):
        for tel_id, hist in sorted(histograms.items()):
            counts = hist.counts.get(name)
            if counts is None:
                continue
            colour = COLOURS.get(tel_id)
            _step(ax, BINS[name], counts, f"tel {tel_id}", colour)
            sim = simulation.get(tel_id) if simulation else None
            if sim is not None and name in sim.counts and sim.counts[name].sum() > 0:
                scale = counts.sum() / sim.counts[name].sum()
                _step(
                    ax,
                    BINS[name],
                    sim.counts[name] * scale,
                    f"tel {tel_id} simulation",
                    colour,
                    style="--",
                )
        ax.set_xlabel(label)
        ax.set_ylabel("events")
        ax.legend(fontsize="x-small")
    axes[0].set_yscale("log")
    figure.suptitle(title)
    return figure


def cog_figure(maps, title):
    """
    Image centre-of-gravity maps in the field of view.

    Parameters
    ----------
    maps : list of tuple
        (panel title, 2D counts on ``BINS["cog"]``).
    """
    figure = Figure(figsize=(4.2 * max(1, len(maps)), 3.8), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, max(1, len(maps))))
    edges = BINS["cog"]
    for ax, (label, counts) in zip(axes, maps, strict=False):
        mesh = ax.pcolormesh(edges, edges, np.asarray(counts).T, cmap="viridis")
        figure.colorbar(mesh, ax=ax, label="events")
        ax.set_aspect("equal")
        ax.set_xlabel("fov lon (deg)")
        ax.set_ylabel("fov lat (deg)")
        ax.set_title(f"{label}: {int(np.sum(counts))} events", fontsize="medium")
    if not maps:
        _no_data(axes[0])
    figure.suptitle(title)
    return figure


def dl2_figure(histograms, gammaness_cut, title):
    """Gammaness and reconstructed-energy distributions."""
    figure = Figure(figsize=(10, 3.4), layout="constrained")
    g_ax, e_ax = figure.subplots(1, 2)
    _step(
        g_ax,
        BINS["gammaness"],
        histograms.counts.get("gammaness", np.zeros(len(BINS["gammaness"]) - 1)),
        "all events",
    )
    g_ax.axvline(
        gammaness_cut, color="tab:red", ls=":", label=f"gamma-like > {gammaness_cut}"
    )
    g_ax.set_xlabel("gammaness")
    g_ax.set_ylabel("events")
    g_ax.legend(fontsize="small")
    _step(
        e_ax,
        BINS["log10_energy"],
        histograms.counts.get("log10_energy", np.zeros(len(BINS["log10_energy"]) - 1)),
        "all events",
    )
    e_ax.set_xlabel("log10(reconstructed energy / TeV)")
    e_ax.set_ylabel("events")
    e_ax.set_yscale("symlog", linthresh=1.0)
    e_ax.legend(fontsize="small")
    figure.suptitle(title)
    return figure


def stereo_figure(edges, counts, fractions, title):
    """
    Time differences of the stereo pairs, and the fraction of each
    telescope's events that found a partner, per run.

    Parameters
    ----------
    edges, counts : numpy.ndarray
        Histogram of tel 22 - tel 21 time differences (ns), after the clock offset.
    fractions : dict
        tel_id -> (run labels, paired fractions).
    """
    figure = Figure(figsize=(10, 3.4), layout="constrained")
    dt_ax, f_ax = figure.subplots(1, 2)
    if counts is not None:
        dt_ax.stairs(counts, np.asarray(edges) / 1000.0, color=COLOURS["stereo"])
    else:
        _no_data(dt_ax)
    dt_ax.set_xlabel("time difference tel 22 - tel 21 (us)")
    dt_ax.set_ylabel("pairs")
    width = 0.4
    for i, (tel_id, (labels, values)) in enumerate(sorted(fractions.items())):
        x = np.arange(len(labels)) + (i - 0.5) * width
        f_ax.bar(
            x,
            100 * np.asarray(values),
            width,
            color=COLOURS.get(tel_id),
            label=f"tel {tel_id}",
        )
        f_ax.set_xticks(np.arange(len(labels)), [label[-4:] for label in labels])
    f_ax.set_ylim(0, 105)
    f_ax.set_xlabel("run")
    f_ax.set_ylabel("events paired (%)")
    if fractions:
        f_ax.legend(fontsize="small")
    figure.suptitle(title)
    return figure


def theta2_figure(theta2, title):
    """ON and normalised OFF counts against theta^2, with the cut."""
    figure = Figure(figsize=(6.5, 4), layout="constrained")
    ax = figure.add_subplot()
    ax.stairs(theta2.on, theta2.edges, color="k", label=f"ON ({theta2.n_on} in cut)")
    ax.stairs(
        theta2.alpha * theta2.off,
        theta2.edges,
        color="tab:red",
        label=f"OFF x {theta2.alpha:.2f} ({theta2.n_off} in cut)",
    )
    ax.axvline(
        theta2.theta2_cut, color="grey", ls=":", label=f"cut {theta2.theta2_cut} deg²"
    )
    ax.set_xlabel("theta² (deg²)")
    ax.set_ylabel("events")
    ax.legend(fontsize="small")
    ax.set_title(
        f"{title}\nexcess {theta2.excess:.1f}, "
        f"Li & Ma significance {theta2.significance:.1f} sigma",
        fontsize="medium",
    )
    return figure


def camera_figure(geometry, panels, title, stars=None, cmap="inferno"):
    """
    DigiCam images with ctapipe's CameraDisplay.

    Parameters
    ----------
    geometry : ctapipe.instrument.CameraGeometry
    panels : list of tuple
        (panel title, image, colour-bar label).
    stars : list, optional
        One per panel: (x, y, labels) of stars in camera coordinates (m), or None.
    """
    n = max(1, len(panels))
    figure = Figure(figsize=(4.0 * n, 3.8), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, n))
    for i, (label, image, unit) in enumerate(panels):
        ax = axes[i]
        display = CameraDisplay(
            geometry, image=np.nan_to_num(image), ax=ax, cmap=cmap, title=label
        )
        display.add_colorbar(ax=ax, label=unit)
        ax.title.set_fontsize("small")
        if stars and stars[i] is not None:
            x, y, names = stars[i]
            ax.scatter(
                x, y, s=80, facecolors="none", edgecolors="cyan", lw=1.2, label="stars"
            )
            for xi, yi, name in zip(x, y, names, strict=True):
                ax.annotate(
                    name,
                    (xi, yi),
                    color="cyan",
                    fontsize="x-small",
                    xytext=(4, 4),
                    textcoords="offset points",
                )
    if not panels:
        _no_data(axes[0])
    figure.suptitle(title)
    return figure
