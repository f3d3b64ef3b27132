"""
Per-run choices from libraries: calibration file, models, cuts and IRFs.

Calibration
    The dark-run gain files of a directory (sst1mpipe's
    ``YYYYMMDD_RRRR_RRRR_Tel{1,2}_fitted_parameters.h5``, or any gain file with a
    date and a telescope in its name); a run takes its telescope's file closest
    in date (the earlier one on a tie), or the package's shipped gains when the
    directory has none for the telescope.

Models, cuts and IRFs
    A library of nodes laid out as sst1mpipe's, one directory per simulated
    pointing and NSB level, ``ze{zenith}_az{azimuth}_nsb{level}`` (deg, deg, and
    the mean pedestal charge in p.e. the simulations were tuned to, the quantity
    the cleaning's NSB bins use), each with one directory per mode::

        ze20_az180_nsb2.4/
            stereo/   energy.pkl classifier.pkl cuts.fits irf.fits.gz
            tel_021/  energy.pkl disp.pkl classifier.pkl cuts.fits irf.fits.gz
            tel_022/  ...

    The models are applied in the order energy, disp, classifier (the
    classifier uses the reconstructed energy). A run takes the node nearest to
    its conditions (`nearest_node`): unlike sst1mpipe, which compares zenith
    angles only, the distance counts the angle between the run's mean pointing
    and the node's, and the NSB level.
"""

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tables
from ctapipe.containers import EventType
from ctapipe.io.hdf5dataformat import (
    DL0_TEL_POINTING_GROUP,
    DL1_SUBARRAY_POINTING_GROUP,
    DL1_TEL_IMAGES_GROUP,
    DL1_TEL_POINTING_GROUP,
    DL1_TEL_TRIGGER_TABLE,
)

__all__ = [
    "MODEL_NAMES",
    "LibraryError",
    "LibraryNode",
    "RunConditions",
    "closest_calibration",
    "library_nodes",
    "nearest_node",
    "node_distance",
    "run_conditions",
]

#: model files of a mode directory, in the order they are applied
MODEL_NAMES = ("energy.pkl", "disp.pkl", "classifier.pkl")
_NODE = re.compile(
    r"^ze(?P<zenith>\d+(?:\.\d+)?)_az(?P<azimuth>-?\d+(?:\.\d+)?)"
    r"_nsb(?P<nsb>\d+(?:\.\d+)?)$"
)
_DATE = re.compile(r"(?<!\d)(20\d{2})(\d{2})(\d{2})(?!\d)")
_TELESCOPE = re.compile(r"(?<![A-Za-z0-9])[Tt]el_?0?(1|2|21|22)(?![A-Za-z0-9])")
_TELESCOPES = {"1": 21, "2": 22, "21": 21, "22": 22}
_PEDESTAL_TYPES = (EventType.SKY_PEDESTAL.value, EventType.PEDESTAL.value)


class LibraryError(ValueError):
    """A library has no usable node, or a node lacks a file."""


@dataclass(frozen=True)
class LibraryNode:
    """One node of a model/IRF library."""

    path: Path
    zenith: float
    azimuth: float
    nsb: float

    def mode_dir(self, mode):
        """The directory of ``mode`` (``stereo``, ``tel_021``, ``tel_022``)."""
        return self.path / mode

    def models(self, mode):
        """The model files of ``mode``, in the order they are applied."""
        found = [self.mode_dir(mode) / n for n in MODEL_NAMES]
        return [p for p in found if p.is_file()]

    def file(self, mode, name):
        """
        A file of ``mode`` (``cuts.fits``, ``irf.fits.gz``).

        Raises
        ------
        LibraryError
            If the node has no such file.
        """
        path = self.mode_dir(mode) / name
        if not path.is_file():
            raise LibraryError(f"{path}: missing in the library node {self.path.name}")
        return path


@dataclass(frozen=True)
class RunConditions:
    """What a run's DL1 tells about its observing conditions."""

    #: mean zenith and azimuth of the pointing (deg), NaN if unknown
    zenith: float
    azimuth: float
    #: mean charge of the pedestal events' pixels (p.e.), NaN without pedestals
    nsb: float
    n_pedestals: int


def library_nodes(directory):
    """
    The nodes of a library directory.

    Parameters
    ----------
    directory : str or Path

    Returns
    -------
    list[LibraryNode]

    Raises
    ------
    LibraryError
        If the directory does not exist or holds no ``ze*_az*_nsb*`` node.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise LibraryError(f"{directory}: no such library directory")
    nodes = []
    for path in sorted(directory.iterdir()):
        match = _NODE.match(path.name)
        if match and path.is_dir():
            nodes.append(
                LibraryNode(
                    path,
                    float(match["zenith"]),
                    float(match["azimuth"]),
                    float(match["nsb"]),
                )
            )
    if not nodes:
        raise LibraryError(
            f"{directory}: no library node "
            "(directories ze<zenith>_az<azimuth>_nsb<level>)"
        )
    return nodes


def node_distance(conditions, nodes, angle_scale=5.0, nsb_scale=0.5):
    """
    Distance of a run's conditions to each node (vectorised).

    ``d**2 = (angle / angle_scale)**2 + (delta_nsb / nsb_scale)**2``, with the
    angle between the run's mean pointing and the node's (deg) and the
    difference of NSB levels (p.e.); the NSB term is left out when the run's
    level is unknown.

    Parameters
    ----------
    conditions : RunConditions
    nodes : list[LibraryNode]
    angle_scale : float
        Degrees of pointing difference worth one unit.
    nsb_scale : float
        p.e. of NSB-level difference worth one unit.

    Returns
    -------
    numpy.ndarray
        One distance per node; inf for all when the run's pointing is unknown.
    """
    zenith = np.radians([n.zenith for n in nodes])
    azimuth = np.radians([n.azimuth for n in nodes])
    if not (np.isfinite(conditions.zenith) and np.isfinite(conditions.azimuth)):
        return np.full(len(nodes), np.inf)
    z0, a0 = np.radians(conditions.zenith), np.radians(conditions.azimuth)
    cos_angle = np.cos(zenith) * np.cos(z0) + np.sin(zenith) * np.sin(z0) * np.cos(
        azimuth - a0
    )
    angle = np.degrees(np.arccos(np.clip(cos_angle, -1, 1)))
    distance2 = (angle / angle_scale) ** 2
    if np.isfinite(conditions.nsb):
        nsb = np.array([n.nsb for n in nodes])
        distance2 = distance2 + ((nsb - conditions.nsb) / nsb_scale) ** 2
    return np.sqrt(distance2)


def nearest_node(conditions, nodes, angle_scale=5.0, nsb_scale=0.5):
    """
    The node nearest to a run's conditions (`node_distance`).

    Returns
    -------
    tuple
        (LibraryNode, distance).

    Raises
    ------
    LibraryError
        If the run's pointing is unknown.
    """
    distance = node_distance(conditions, nodes, angle_scale, nsb_scale)
    if not np.isfinite(distance).any():
        raise LibraryError(
            "the run's pointing is unknown (no TARGET position): no library node "
            "can be chosen; give the target's position in the source catalogue"
        )
    best = int(np.argmin(distance))
    return nodes[best], float(distance[best])


def _file_date(path):
    match = _DATE.search(Path(path).name)
    return "".join(match.groups()) if match else None


def closest_calibration(directory, tel_id, night, pattern="*.h5"):
    """
    The gain file of ``tel_id`` closest in date to ``night``.

    Parameters
    ----------
    directory : str or Path or None
        Directory of dated gain files; None: no choice (shipped gains).
    tel_id : int
    night : str
        ``YYYYMMDD``.
    pattern : str
        Glob of the gain files in ``directory``.

    Returns
    -------
    tuple
        (Path or None, days between the file's date and the night, or None).
    """
    if directory is None or not Path(directory).is_dir():
        return None, None
    night_day = np.datetime64(f"{night[:4]}-{night[4:6]}-{night[6:]}")
    best = None
    for path in sorted(Path(directory).glob(pattern)):
        tel = _TELESCOPE.search(path.name)
        date = _file_date(path)
        if tel is None or date is None or _TELESCOPES[tel[1]] != tel_id:
            continue
        day = np.datetime64(f"{date[:4]}-{date[4:6]}-{date[6:]}")
        days = int((day - night_day) / np.timedelta64(1, "D"))
        # the earlier file wins a tie: it was measured before the night
        key = (abs(days), days > 0)
        if best is None or key < best[0]:
            best = (key, path, days)
    if best is None:
        return None, None
    return best[1], best[2]


def _mean_pointing(h5file, tel_ids):
    alt, az = [], []
    groups = [DL1_TEL_POINTING_GROUP, DL0_TEL_POINTING_GROUP]
    for tel_id in tel_ids:
        for group in groups:
            key = f"{group}/tel_{tel_id:03d}"
            if key in h5file:
                table = h5file.get_node(key)
                alt.append(np.asarray(table.col("altitude"), dtype=float))
                az.append(np.asarray(table.col("azimuth"), dtype=float))
                break
    if not alt and DL1_SUBARRAY_POINTING_GROUP in h5file:
        table = h5file.get_node(DL1_SUBARRAY_POINTING_GROUP)
        alt.append(np.asarray(table.col("array_altitude"), dtype=float))
        az.append(np.asarray(table.col("array_azimuth"), dtype=float))
    if not alt:
        return np.nan, np.nan
    alt, az = np.concatenate(alt), np.concatenate(az)
    good = np.isfinite(alt) & np.isfinite(az)
    if not good.any():
        return np.nan, np.nan
    # the tables store radians (ctapipe's pointing containers)
    mean_az = np.angle(np.mean(np.exp(1j * az[good])))
    return 90 - np.degrees(np.mean(alt[good])), np.degrees(mean_az) % 360


def run_conditions(path, tel_ids):
    """
    Mean pointing and NSB level of a run, from its DL1 file.

    The NSB level is the mean charge of the pixels of the run's pedestal
    events (the images ``ctapipe-process`` writes for them), the quantity the
    cleaning's NSB bins and the library nodes use.

    Parameters
    ----------
    path : str or Path
        A DL1 file written with images (``sst1m.yaml``).
    tel_ids : sequence of int

    Returns
    -------
    RunConditions
    """
    with tables.open_file(path) as h5file:
        zenith, azimuth = _mean_pointing(h5file, tel_ids)
        charges = []
        if DL1_TEL_TRIGGER_TABLE in h5file:
            trigger = h5file.get_node(DL1_TEL_TRIGGER_TABLE).read()
            for tel_id in tel_ids:
                key = f"{DL1_TEL_IMAGES_GROUP}/tel_{tel_id:03d}"
                if key not in h5file:
                    continue
                own = trigger[trigger["tel_id"] == tel_id]
                pedestal = own["event_id"][np.isin(own["event_type"], _PEDESTAL_TYPES)]
                images = h5file.get_node(key)
                rows = np.flatnonzero(np.isin(images.col("event_id"), pedestal))
                if len(rows):
                    charges.append(images.read_coordinates(rows, field="image"))
    if not charges:
        return RunConditions(zenith, azimuth, np.nan, 0)
    charges = np.concatenate(charges)
    return RunConditions(zenith, azimuth, float(np.nanmean(charges)), len(charges))
