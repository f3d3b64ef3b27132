"""
Which runs look bad, and why: the checks a shifter makes first, on the
summaries of `~ctapipe_sst1m.report.measures`, each one line of text.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from ..calib.pedestal_charges import MIN_PEDESTAL_IMAGES

__all__ = ["Thresholds", "telescope_problems"]


@dataclass(frozen=True)
class Thresholds:
    """Limits beyond which a run is listed as looking bad."""

    #: pedestal events below which the cleaning's NSB statistics are not used
    min_pedestals: int = MIN_PEDESTAL_IMAGES
    #: a rate bin below this fraction of the run's median rate is a drop
    rate_drop: float = 0.5
    #: change of the NSB level (p.e.) between consecutive minutes
    nsb_jump: float = 0.5
    #: median distance of the pointing from the target (deg)
    max_pointing_offset: float = 1.0


def _clock(unix):
    return datetime.fromtimestamp(float(unix), UTC).strftime("%H:%M:%S")


def _minute_medians(times, values):
    times, values = np.asarray(times, dtype=float), np.asarray(values, dtype=float)
    good = np.isfinite(times) & np.isfinite(values)
    times, values = times[good], values[good]
    if len(times) == 0:
        return np.array([]), np.array([])
    minute = np.floor((times - times.min()) / 60.0)
    keys = np.unique(minute)
    medians = np.array([np.median(values[minute == k]) for k in keys])
    starts = np.array([times[minute == k].min() for k in keys])
    return starts, medians


def telescope_problems(tel, offset=None, thresholds=Thresholds()):
    """
    The problems of one telescope's run.

    Parameters
    ----------
    tel : TelescopeRun
    offset : numpy.ndarray, optional
        Distance of the pointing from the target (deg), per pointing entry.
    thresholds : Thresholds

    Returns
    -------
    list of str
        One line per problem; empty when the run looks good.
    """
    problems = []
    if tel.n_events == 0:
        return [f"tel {tel.tel_id}: no events"]
    if tel.n_pedestals < thresholds.min_pedestals:
        problems.append(
            f"tel {tel.tel_id}: few pedestal events ({tel.n_pedestals}, fewer than "
            f"{thresholds.min_pedestals}): NSB level and cleaning thresholds uncertain"
        )
    # the last bin is partial and the first may be: judge the full ones
    rates = np.asarray(tel.dl1_rate, dtype=float)[:-1]
    if len(rates) >= 3:
        median = np.nanmedian(rates)
        low = np.flatnonzero(rates < thresholds.rate_drop * median)
        if median > 0 and len(low):
            worst = low[np.nanargmin(rates[low])]
            problems.append(
                f"tel {tel.tel_id}: DL1 rate drops to {rates[worst]:.1f} Hz at "
                f"{_clock(tel.rate_times[worst])} (run median {median:.1f} Hz; "
                f"{len(low)} of {len(rates)} bins below {thresholds.rate_drop:.0%})"
            )
    starts, medians = _minute_medians(tel.nsb_times, tel.nsb_level)
    if len(medians) >= 2:
        jumps = np.abs(np.diff(medians))
        worst = int(np.argmax(jumps))
        if jumps[worst] > thresholds.nsb_jump:
            problems.append(
                f"tel {tel.tel_id}: NSB level jumps by {jumps[worst]:.2f} p.e. at "
                f"{_clock(starts[worst + 1])} ({medians[worst]:.2f} -> "
                f"{medians[worst + 1]:.2f} p.e.; limit {thresholds.nsb_jump} p.e.)"
            )
    if offset is not None and np.isfinite(offset).any():
        distance = float(np.nanmedian(offset))
        if distance > thresholds.max_pointing_offset:
            problems.append(
                f"tel {tel.tel_id}: pointing {distance:.2f} deg from the target "
                f"(limit {thresholds.max_pointing_offset} deg)"
            )
    return problems
