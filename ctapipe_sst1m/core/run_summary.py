"""
One-screen summaries of what a run did, shown at the end of a tool.

ctapipe's tools log at WARNING by default, so what a run read, wrote and
measured (all logged at INFO) is invisible to a user who did not ask for it.
The package's components and tools print a short summary instead: a title and
a few aligned ``label  text`` lines on stderr, which is where ctapipe's log and
progress bar go. It is printed, not logged: a summary is not a warning, and a
log line would carry a time stamp and a level on every line.
"""

import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tables
from ctapipe.containers import EventType
from ctapipe.core import Tool
from ctapipe.io.hdf5dataformat import (
    DL1_SUBARRAY_TRIGGER_TABLE,
    DL1_TEL_PARAMETERS_GROUP,
)

__all__ = [
    "CALIBRATION_EVENT_TYPES",
    "DL1Counts",
    "describe_cleaning",
    "describe_event_types",
    "describe_ids",
    "format_summary",
    "hosting_tool",
    "plural",
    "print_lines",
    "print_summary",
    "read_dl1_counts",
    "short_path",
    "summary_wanted",
]

#: events that are not shower triggers: their images are not cleaned for showers
CALIBRATION_EVENT_TYPES = frozenset(
    {
        EventType.FLATFIELD,
        EventType.SINGLE_PE,
        EventType.PEDESTAL,
        EventType.DARK_PEDESTAL,
        EventType.ELECTRONIC_PEDESTAL,
        EventType.SKY_PEDESTAL,
        EventType.OTHER_CALIBRATION,
    }
)


@dataclass(frozen=True)
class DL1Counts:
    """What a ctapipe DL1 file holds, counted for a summary."""

    #: rows of the subarray trigger table: the events written
    n_events: int
    #: events per ctapipe event type
    event_types: dict
    #: telescope images of shower triggers (not calibration events) with a
    #: parameters row; None if the file has no DL1 parameters
    n_images: int | None
    #: of those, the images that kept pixels through the cleaning and ctapipe's
    #: image quality query (their parameters were computed)
    n_survived: int | None


def read_dl1_counts(path):
    """
    Count the events, their types and the images surviving the cleaning in a
    DL1 file written by ``ctapipe-process``.

    An image survives when its parameters were computed: ctapipe leaves them at
    their defaults (``morphology_n_pixels`` = -1) when the cleaning keeps no
    pixel, or fewer than its image quality query needs.

    Parameters
    ----------
    path : str or pathlib.Path

    Returns
    -------
    DL1Counts

    Raises
    ------
    OSError
        If the file cannot be read as HDF5 (``tables.HDF5ExtError`` is one).
    """
    with tables.open_file(path, mode="r") as h5file:
        if DL1_SUBARRAY_TRIGGER_TABLE not in h5file:
            return DL1Counts(0, {}, None, None)
        trigger = h5file.get_node(DL1_SUBARRAY_TRIGGER_TABLE).read()
        types, counts = np.unique(trigger["event_type"], return_counts=True)
        event_types = {
            EventType(int(t)): int(n) for t, n in zip(types, counts, strict=True)
        }
        calibration = np.isin(
            trigger["event_type"], [t.value for t in CALIBRATION_EVENT_TYPES]
        )
        n_images = n_survived = None
        if DL1_TEL_PARAMETERS_GROUP in h5file:
            n_images = n_survived = 0
            for table in h5file.iter_nodes(DL1_TEL_PARAMETERS_GROUP, classname="Table"):
                columns = table.read(field="obs_id"), table.read(field="event_id")
                n_pixels = table.read(field="morphology_n_pixels")
                calibration_keys = (trigger["obs_id"], trigger["event_id"])
                shower = ~_is_listed(columns, *(k[calibration] for k in calibration_keys))
                n_images += int(np.count_nonzero(shower))
                n_survived += int(np.count_nonzero(shower & (n_pixels > 0)))
    return DL1Counts(len(trigger), event_types, n_images, n_survived)


def _is_listed(keys, obs_ids, event_ids):
    """Which (obs_id, event_id) of ``keys`` are among the pairs given."""
    obs, event = keys
    listed = np.zeros(len(event), dtype=bool)
    # files hold one or a few observations: compare event ids per observation
    for obs_id in np.unique(obs_ids):
        rows = obs == obs_id
        listed[rows] = np.isin(event[rows], event_ids[obs_ids == obs_id])
    return listed


def describe_event_types(event_types):
    """``"30 SUBARRAY, 2 SKY_PEDESTAL"``, the most frequent first."""
    ordered = sorted(event_types.items(), key=lambda item: (-item[1], item[0].value))
    return ", ".join(f"{n} {event_type.name}" for event_type, n in ordered) or "none"


def describe_cleaning(counts):
    """
    ``"17 of 30 shower images survive (57 %)"``, or None if the file has no
    parameters (``DataWriter.write_dl1_parameters`` off) or no shower image.
    """
    if not counts.n_images:
        return None
    percent = 100 * counts.n_survived / counts.n_images
    return (
        f"{counts.n_survived} of {counts.n_images} shower images survive "
        f"({percent:.0f} %)"
    )


def describe_ids(ids):
    """Telescope ids as ranges: ``[1, 2, 3, 5]`` -> ``"1-3, 5"``."""
    ranges = []
    for tel_id in sorted(ids):
        if ranges and tel_id == ranges[-1][1] + 1:
            ranges[-1][1] = tel_id
        else:
            ranges.append([tel_id, tel_id])
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in ranges)


def plural(n, word):
    """``"1 event"``, ``"2 events"``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def hosting_tool(component):
    """
    The ctapipe Tool ``component`` runs in (its first Tool parent), or None.

    Parameters
    ----------
    component : ctapipe.core.Component

    Returns
    -------
    ctapipe.core.Tool or None
    """
    parent = component
    while parent is not None:
        if isinstance(parent, Tool):
            return parent
        parent = parent.parent
    return None


def summary_wanted(component, enabled):
    """
    Whether ``component`` prints its summary: if ``enabled`` (its trait), it
    runs inside a Tool, and the tool is not ``--quiet``.

    Used as a library (no Tool), components print nothing: a script or a
    notebook decides what goes to its stderr.
    """
    tool = hosting_tool(component)
    return bool(enabled) and tool is not None and not tool.quiet


def format_summary(title, rows, width=100):
    """
    A title and aligned ``label  text`` lines, long texts wrapped under
    themselves (paths are not broken).

    Parameters
    ----------
    title : str
    rows : list[tuple[str, str]]
        Rows whose text is None or empty are left out.
    width : int
        Wrap texts at this many characters.

    Returns
    -------
    list[str]
    """
    rows = [(label, text) for label, text in rows if text]
    label_width = max((len(label) for label, _ in rows), default=0)
    lines = [title]
    for label, text in rows:
        wrapped = textwrap.wrap(
            text,
            width=max(width, label_width + 40),
            initial_indent=f"  {label:<{label_width}}  ",
            subsequent_indent=" " * (label_width + 4),
            break_long_words=False,
            break_on_hyphens=False,
        )
        lines += wrapped
    return lines


def print_summary(title, rows, file=None):
    """Print `format_summary` of ``title`` and ``rows`` to ``file`` (stderr)."""
    print_lines(format_summary(title, rows), file)


def print_lines(lines, file=None):
    """Print ``lines`` to ``file`` (stderr), flushed: before the tool's last log."""
    stream = sys.stderr if file is None else file
    print("\n".join(lines), file=stream, flush=True)


def short_path(path):
    """``path`` relative to the working directory when it is below it."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
