"""
One observing night's raw runs, from file names and FITS headers only.

A night is named by the date of the evening it starts (the site's convention:
the night of 2024-03-12 to 13 is ``20240312``); its raw files are found by a
path pattern (today's Ondřejov layout by default), grouped into runs (one run
may be split into chunks ``RUN.000.fits.fz``, ``RUN.001.fits.fz``...), and each
run is classified by the ``TARGET`` (and ``RUNTYPE``) header of its Events
table. Nothing is decoded: discovery costs a few header reads per file, so a
cron job can repeat it every few minutes.
"""

import datetime
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.table import Table
from astropy.time import Time

from ..io.pointing import NON_POINTING_TARGETS, Target, parse_target, parse_target_name
from ..io.zfits import DigiCamFileError, inspect_digicam_file, parse_run_name

__all__ = [
    "DEFAULT_FILE_PATTERN",
    "DEFAULT_RAW_PATTERN",
    "RUN_KINDS",
    "CatalogueError",
    "DiscoveryError",
    "RawRun",
    "classify_target",
    "discover_night",
    "night_of",
    "overlapping_runs",
    "read_catalogue",
    "run_intervals",
    "safe_name",
]

#: directory of one camera server's raw files of one night (``{cs}`` 1 or 2)
DEFAULT_RAW_PATTERN = "{root}/cs{cs}/data/raw/{yyyy}/{mm}/{dd}/SST1M{cs}"
#: raw file names inside it
DEFAULT_FILE_PATTERN = "SST1M{cs}_{date}_*.fits.fz"
#: what a run is, from its headers: only science and wobble runs are processed
RUN_KINDS = ("science", "wobble", "dark", "transition", "unknown")
#: the local hour before which a time belongs to the previous evening's night
NIGHT_CHANGE_HOUR = 12
_UNSAFE = re.compile(r"[^A-Za-z0-9+.-]+")


class DiscoveryError(ValueError):
    """A night's raw data cannot be listed (bad pattern, bad date)."""


class CatalogueError(ValueError):
    """A source catalogue file is unreadable or lacks its columns."""


@dataclass(frozen=True)
class RawRun:
    """One run of one telescope, as discovery sees it."""

    #: camera server (1 or 2); SST1M-1 is tel 21, SST1M-2 tel 22
    cs: int
    #: the night, ``YYYYMMDD``, from the file names
    date: str
    run: int
    files: tuple
    kind: str
    target: Target | None
    #: why the run is of its kind (header value, catalogue entry...)
    reason: str
    #: True when the run's files are final (see `discover_night`)
    closed: bool
    #: first and last event times (unix seconds, UTC) from the headers, NaN if unknown
    start: float = np.nan
    end: float = np.nan
    #: where the position came from: "header", "catalogue" or ""
    position_source: str = ""
    n_events: int = 0
    problems: tuple = field(default=())

    @property
    def obs_id(self):
        """``int(YYYYMMDD + NNNN)``, as the event source numbers runs."""
        return int(f"{self.date}{self.run:04d}")

    @property
    def label(self):
        """``SST1M1_20240312_0001``: the file-name stem of the run's products."""
        return f"SST1M{self.cs}_{self.date}_{self.run:04d}"

    @property
    def processable(self):
        """Science and wobble runs with a sky position are processed."""
        return self.kind in ("science", "wobble") and not self.problems

    @property
    def target_dir(self):
        """The target's directory name in the product tree."""
        if self.target is None:
            return self.kind
        return safe_name(self.target.name)


def safe_name(name):
    """A target name usable as a directory name (``Mrk 421`` -> ``Mrk_421``)."""
    cleaned = _UNSAFE.sub("_", str(name).strip()).strip("_.")
    return cleaned or "unnamed"


def night_of(when, utc_offset_hours=0.0):
    """
    The night (``YYYYMMDD``) a time belongs to.

    Parameters
    ----------
    when : datetime.datetime
        An aware or UTC time.
    utc_offset_hours : float
        Local time minus UTC at the site: a night runs from local noon to local
        noon and is named by the date of its evening.

    Returns
    -------
    str
    """
    local = when + datetime.timedelta(hours=utc_offset_hours)
    if local.hour < NIGHT_CHANGE_HOUR:
        local -= datetime.timedelta(days=1)
    return local.strftime("%Y%m%d")


def read_catalogue(path):
    """
    Read a source catalogue: ``name``, ``ra``, ``dec`` (deg, ICRS), optional
    ``aliases`` (names separated by ``|``).

    Parameters
    ----------
    path : str or Path
        Any table astropy reads (ECSV, CSV with a header line, FITS).

    Returns
    -------
    dict
        Lower-case name or alias -> (name, ra, dec).

    Raises
    ------
    CatalogueError
        Unreadable file, missing columns, positions out of range.
    """
    path = Path(path)
    try:
        table = Table.read(path, format="ascii.ecsv" if path.suffix == ".ecsv" else None)
    except Exception as err:
        raise CatalogueError(f"{path}: not a readable source catalogue ({err})") from err
    missing = [c for c in ("name", "ra", "dec") if c not in table.colnames]
    if missing:
        raise CatalogueError(
            f"{path}: source catalogue lacks the columns {missing}; it needs name, ra, "
            "dec (deg, ICRS) and optionally aliases"
        )
    entries = {}
    for row in table:
        name, ra, dec = str(row["name"]).strip(), float(row["ra"]), float(row["dec"])
        if not (0 <= ra <= 360 and -90 <= dec <= 90):
            raise CatalogueError(f"{path}: {name}: RA/Dec ({ra}, {dec}) out of range")
        aliases = str(row["aliases"]) if "aliases" in table.colnames else ""
        for key in (name, *aliases.split("|")):
            if key.strip() and key.strip() != "--":
                entries[key.strip().lower()] = (name, ra, dec)
    return entries


def classify_target(value, runtype=None, catalogue=None):
    """
    What a run is, from its ``TARGET`` and ``RUNTYPE`` headers.

    Parameters
    ----------
    value : str or None
        The ``TARGET`` header: ``"Crab,83.633,22.0145"``, ``"Crab_W1_83.633_22.0145"``
        (position in the header), ``"Crab_W1"`` or ``"Crab"`` (position from the
        catalogue), ``"Dark"``, ``"Transition"``.
    runtype : str or None
        The ``RUNTYPE`` header (``darkrun`` for dark runs).
    catalogue : dict, optional
        `read_catalogue`'s result.

    Returns
    -------
    tuple
        (kind, Target or None, position source, reason). The kind is one of
        `RUN_KINDS`; a wobble run has a ``W<n>`` label.
    """
    catalogue = catalogue or {}
    if (runtype or "").strip().lower() == "darkrun":
        return "dark", None, "", "RUNTYPE darkrun"
    if value is None or not str(value).strip():
        return "unknown", None, "", "no TARGET header"
    text = str(value).strip()
    if text.lower() in NON_POINTING_TARGETS:
        return text.lower(), Target(name=text), "", f"TARGET {text!r}"
    try:
        target = parse_target(text)
        source = "header"
    except ValueError:
        # a name, optionally with a wobble label, without coordinates
        named = parse_target_name(text)
        entry = catalogue.get(named.name.lower())
        if entry is None:
            return (
                "unknown",
                named,
                "",
                f"TARGET {text!r} has no position and {named.name!r} is not in the "
                "source catalogue (NightlyTool.catalogue)",
            )
        target = Target(name=entry[0], ra=entry[1], dec=entry[2], wobble=named.wobble)
        source = "catalogue"
    kind = "wobble" if target.wobble != "UNDEF" else "science"
    return kind, target, source, f"TARGET {text!r}"


def _header_time(value):
    try:
        seconds = Time(str(value), format="isot", scale="utc").unix
    except (ValueError, TypeError):
        return np.nan
    # DigiCam writes DATEEND = 1970-01-01T00:00:00 when it does not know it
    return seconds if seconds > 0 else np.nan


def _find_files(raw_pattern, file_pattern, root, night, cs):
    day = datetime.datetime.strptime(night, "%Y%m%d")
    values = dict(
        root=root,
        cs=cs,
        yyyy=f"{day:%Y}",
        mm=f"{day:%m}",
        dd=f"{day:%d}",
        date=night,
    )
    try:
        directory = Path(raw_pattern.format(**values))
        names = file_pattern.format(**values)
    except (KeyError, IndexError) as err:
        raise DiscoveryError(
            f"raw file pattern {raw_pattern!r}/{file_pattern!r}: unknown field {err}; "
            "use {root}, {cs}, {yyyy}, {mm}, {dd}, {date}"
        ) from None
    if not directory.is_dir():
        return []
    return sorted(directory.glob(names))


def discover_night(
    root,
    night,
    raw_pattern=DEFAULT_RAW_PATTERN,
    file_pattern=DEFAULT_FILE_PATTERN,
    catalogue=None,
    closed_after=300.0,
    now=None,
    camera_servers=(1, 2),
):
    """
    The runs of one night of both telescopes.

    A run is *closed* (its files final) when a later run of the same telescope
    exists, or when none of its files changed for ``closed_after`` seconds: the
    camera server writes one run at a time, so a run still growing is the last
    one, and its newest file is recent. Only closed runs are processed, so that
    the nightly can be started again and again during the night.

    Parameters
    ----------
    root : str or Path
        Fills ``{root}`` in the patterns.
    night : str
        ``YYYYMMDD``.
    raw_pattern, file_pattern : str
        Directory of a camera server's files and the file names in it; fields
        ``{root}``, ``{cs}``, ``{yyyy}``, ``{mm}``, ``{dd}``, ``{date}``.
    catalogue : dict, optional
        `read_catalogue`'s result, for targets without a position in the header.
    closed_after : float
        Seconds without a change after which the last run is closed.
    now : float, optional
        The current time (unix seconds), default ``time.time()``.
    camera_servers : sequence of int

    Returns
    -------
    list[RawRun]
        Sorted by camera server and run number. Runs whose files cannot be
        read have ``problems`` and kind ``unknown``.

    Raises
    ------
    DiscoveryError
        If ``night`` is not a date or the pattern has an unknown field.
    """
    if not re.fullmatch(r"\d{8}", str(night)):
        raise DiscoveryError(f"night {night!r}: not a date YYYYMMDD")
    now = time.time() if now is None else now
    runs = []
    for cs in camera_servers:
        by_run = {}
        for path in _find_files(raw_pattern, file_pattern, root, night, cs):
            name = parse_run_name(path)
            if name.run is None or name.date != night:
                continue
            by_run.setdefault(name.run, []).append((name.chunk or 0, path))
        numbers = sorted(by_run)
        for number in numbers:
            files = tuple(p for _, p in sorted(by_run[number]))
            latest = max(p.stat().st_mtime for p in files)
            closed = number != numbers[-1] or now - latest >= closed_after
            runs.append(_inspect_run(cs, night, number, files, closed, catalogue))
    return runs


def _inspect_run(cs, night, number, files, closed, catalogue):
    problems, infos = [], []
    for path in files:
        try:
            infos.append(inspect_digicam_file(path))
        except DigiCamFileError as err:
            problems.append(str(err))
    if not infos:
        return RawRun(
            cs, night, number, files, "unknown", None, problems[0], closed,
            problems=tuple(problems),
        )  # fmt: skip
    header = infos[0].events_header
    kind, target, source, reason = classify_target(
        header.get("TARGET"), header.get("RUNTYPE"), catalogue
    )
    start = _header_time(header.get("DATE"))
    end = _header_time(infos[-1].events_header.get("DATEEND"))
    return RawRun(
        cs=cs,
        date=night,
        run=number,
        files=files,
        kind=kind,
        target=target,
        reason=reason,
        closed=closed,
        start=start,
        end=end if end >= start else np.nan,
        position_source=source,
        n_events=sum(info.n_events for info in infos),
        problems=tuple(problems),
    )


def run_intervals(runs):
    """
    (start, end) of each run of one telescope, unix seconds.

    A run without an end time in its headers lasts until the next run of its
    telescope starts (the last one, until the end of the night).

    Parameters
    ----------
    runs : list[RawRun]
        Runs of one telescope.

    Returns
    -------
    dict
        Run number -> (start, end); NaN start when the headers have no time.
    """
    ordered = sorted(runs, key=lambda r: r.run)
    intervals = {}
    for i, run in enumerate(ordered):
        end = run.end
        if not np.isfinite(end):
            end = ordered[i + 1].start if i + 1 < len(ordered) else np.inf
        intervals[run.run] = (run.start, end)
    return intervals


def overlapping_runs(run, own_runs, other_runs):
    """
    The runs of the other telescope that overlap ``run`` in time.

    Parameters
    ----------
    run : RawRun
    own_runs : list[RawRun]
        All runs of ``run``'s telescope that night (for unknown end times).
    other_runs : list[RawRun]
        All runs of the other telescope that night.

    Returns
    -------
    list[RawRun]
    """
    start, end = run_intervals(own_runs)[run.run]
    found = []
    others = run_intervals(other_runs)
    for other in sorted(other_runs, key=lambda r: r.run):
        o_start, o_end = others[other.run]
        if (
            np.isfinite(start)
            and np.isfinite(o_start)
            and o_start <= end
            and start <= o_end
        ):
            found.append(other)
    return found
