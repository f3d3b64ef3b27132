"""
The single-telescope DL1 files a stereo merge starts from.

`read_telescope_events` opens a file written by ctapipe's DataWriter, checks
that it can be merged (readable, one telescope, events with trigger times) and
returns its event index; `group_by_telescope` sorts a night's files into the
two telescopes. Errors name the file and the problem.
"""

from dataclasses import dataclass
from pathlib import Path

import astropy.units as u
import numpy as np
import tables
from astropy.coordinates import SkyCoord
from ctapipe.containers import CoordinateFrameType
from ctapipe.instrument import SubarrayDescription
from ctapipe.io.hdf5dataformat import (
    CONFIG_GROUP,
    DL1_SUBARRAY_TRIGGER_TABLE,
    DL1_TEL_TRIGGER_TABLE,
    OBSERVATION_BLOCK_TABLE,
    SIMULATION_GROUP,
)

from ..core.products import (
    DL1,
    ProductError,
    ProductMark,
    one_line,
    verify_hdf5_product,
)

__all__ = [
    "StereoInputError",
    "TelescopeEvents",
    "concatenate_events",
    "group_by_telescope",
    "read_telescope_events",
    "time_ns",
]

TRIGGER = DL1_SUBARRAY_TRIGGER_TABLE
TEL_TRIGGER = DL1_TEL_TRIGGER_TABLE
OBSERVATION_BLOCK = OBSERVATION_BLOCK_TABLE
#: where ctapipe writes the subarray description (no constant in hdf5dataformat)
INSTRUMENT_GROUP = f"{CONFIG_GROUP}/instrument"


class StereoInputError(ValueError):
    """An input file that cannot be merged into stereo events."""


@dataclass
class TelescopeEvents:
    """The events of one single-telescope DL1 file."""

    path: Path
    tel_id: int
    subarray: SubarrayDescription
    is_simulation: bool
    obs_id: np.ndarray
    event_id: np.ndarray
    #: telescope trigger time, int64 ns since 1970-01-01 TAI (CTAO high-res)
    time: np.ndarray
    event_type: np.ndarray
    #: ICRS target of the first observation block, None if not tracking one
    target: SkyCoord | None = None
    #: the file's completeness mark
    mark: ProductMark | None = None

    def __len__(self):
        return len(self.event_id)


def time_ns(high_res):
    """
    CTAO high-resolution times, (s, quarter ns) uint32 pairs, as int64 ns.

    Parameters
    ----------
    high_res : numpy.ndarray
        Shape (..., 2).

    Returns
    -------
    numpy.ndarray
        int64 ns (rounded down to the ns).
    """
    high_res = np.asarray(high_res)
    return high_res[..., 0].astype(np.int64) * 1_000_000_000 + (
        high_res[..., 1].astype(np.int64) // 4
    )


def read_telescope_events(path):
    """
    The event index of a single-telescope DL1 file.

    Parameters
    ----------
    path : str or pathlib.Path

    Returns
    -------
    TelescopeEvents

    Raises
    ------
    StereoInputError
        If the file is not a complete (marked) and consistent DL1 product of
        one telescope with events, or its telescope trigger table does not have
        one row per event.
    """
    path = Path(path)
    if not path.exists():
        raise StereoInputError(f"{path}: does not exist")
    try:
        mark = verify_hdf5_product(path, kinds=(DL1,))
    except ProductError as err:
        raise StereoInputError(str(err)) from err
    # verify_hdf5_product opened it: it is a readable HDF5 file
    with tables.open_file(path, mode="r") as h5file:
        for node in (TRIGGER, TEL_TRIGGER, INSTRUMENT_GROUP):
            if node not in h5file:
                raise StereoInputError(f"{path}: no {node}; not a ctapipe DL1 file")
        try:
            subarray = SubarrayDescription.from_hdf(h5file)
        except Exception as err:
            raise StereoInputError(
                f"{path}: cannot read the subarray ({one_line(err)})"
            ) from err
        if len(subarray.tel_ids) != 1:
            raise StereoInputError(
                f"{path}: holds telescopes {list(subarray.tel_ids)}; the stereo merge "
                "takes files of one telescope each"
            )
        tel_id = int(subarray.tel_ids[0])
        trigger = h5file.get_node(TRIGGER).read()
        if len(trigger) == 0:
            raise StereoInputError(f"{path}: contains no events")
        keys = np.rec.fromarrays([trigger["obs_id"], trigger["event_id"]])
        if len(np.unique(keys)) != len(keys):
            raise StereoInputError(f"{path}: (obs_id, event_id) repeated in {TRIGGER}")
        tel_trigger = h5file.get_node(TEL_TRIGGER).read()
        same = len(tel_trigger) == len(trigger) and (
            np.array_equal(tel_trigger["obs_id"], trigger["obs_id"])
            and np.array_equal(tel_trigger["event_id"], trigger["event_id"])
        )
        if not same:
            raise StereoInputError(
                f"{path}: {TEL_TRIGGER} does not have one row per event of {TRIGGER}"
            )
        return TelescopeEvents(
            mark=mark,
            target=_target(h5file),
            path=path,
            tel_id=tel_id,
            subarray=subarray,
            is_simulation=SIMULATION_GROUP in h5file,
            obs_id=trigger["obs_id"].astype(np.int64),
            event_id=trigger["event_id"].astype(np.int64),
            time=time_ns(tel_trigger["time"]),
            event_type=tel_trigger["event_type"].astype(np.int64),
        )


def _target(h5file):
    """ICRS target of the first observation block, or None."""
    if OBSERVATION_BLOCK not in h5file:
        return None
    blocks = h5file.get_node(OBSERVATION_BLOCK).read()
    if len(blocks) == 0:
        return None
    block = blocks[0]
    frame = CoordinateFrameType(int(block["subarray_pointing_frame"]))
    # stored in the unit of the ObservationBlockContainer fields: deg
    lon, lat = block["subarray_pointing_lon"], block["subarray_pointing_lat"]
    if frame is not CoordinateFrameType.ICRS or not np.isfinite(lon * lat):
        return None
    return SkyCoord(lon * u.deg, lat * u.deg, frame="icrs")


def concatenate_events(files):
    """``obs_id``, ``event_id`` and ``time`` of the events of several files."""
    return {
        name: np.concatenate([getattr(f, name) for f in files])
        for name in ("obs_id", "event_id", "time")
    }


def group_by_telescope(inputs):
    """
    The inputs of the two telescopes, each sorted by the time of its first event.

    Parameters
    ----------
    inputs : list of TelescopeEvents

    Returns
    -------
    dict
        tel_id -> list of TelescopeEvents, for the two telescopes in
        increasing tel_id order.

    Raises
    ------
    StereoInputError
        Unless the files hold exactly two telescopes, or if the same file is
        given twice.
    """
    groups = {}
    for telescope_events in inputs:
        groups.setdefault(telescope_events.tel_id, []).append(telescope_events)
    names = [str(t.path.resolve()) for t in inputs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise StereoInputError(f"file(s) given more than once: {repeated}")
    if len(groups) != 2:
        listing = ", ".join(f"{t.path.name} (tel {t.tel_id})" for t in inputs)
        raise StereoInputError(
            f"stereo merge needs the files of two telescopes, got {len(groups)} "
            f"telescope(s): {listing}"
        )
    return {
        tel_id: sorted(groups[tel_id], key=lambda t: int(t.time.min()))
        for tel_id in sorted(groups)
    }
