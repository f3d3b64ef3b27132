"""
Writing paired single-telescope DL1 events as one stereo DL1 file.

The output is what ctapipe's DataWriter would write for a two-telescope
subarray, so HDF5EventSource, TableLoader and ``ctapipe-process`` read it
like any other DL1 file:

* the subarray of both telescopes (`union_subarray`);
* ``/dl1/event/subarray/trigger`` with one row per output event and both
  telescopes flagged for pairs; telescope tables (trigger, images, parameters,
  simulation, per-telescope DL2) with one row per (event, telescope), in event
  order, ids rewritten to the stereo event's (obs_id, event_id);
* per-telescope monitoring and configuration (``/dl0`` pointing,
  ``/configuration/sst1m/...``) of each telescope, concatenated over its files;
* observation blocks, simulation configuration and reference metadata of the
  first telescope;
* ``/dl1/event/subarray/sst1m_stereo``: for every output event, the original
  ids of each telescope's event and the time difference of a pair.

Tables are copied in chunks of rows, with their PyTables description,
filters and attributes (the ``CTAFIELD_*`` metadata ctapipe's readers use).
"""

import logging
import posixpath
import uuid
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import astropy.units as u
import numpy as np
import tables
from astropy.table import Table
from astropy.time import Time
from ctapipe.instrument import SubarrayDescription
from ctapipe.io import write_table
from ctapipe.io.hdf5dataformat import (
    DL0_TEL_POINTING_GROUP,
    DL1_SUBARRAY_GROUP,
    DL2_SUBARRAY_GROUP,
    OBSERVATION_BLOCK_TABLE,
    SIMULATION_GROUP,
    SIMULATION_RUN_TABLE,
    SIMULATION_SHOWER_TABLE,
)
from tqdm.auto import tqdm

from ..core.products import SST1M_CONFIG_GROUP, one_line
from .dl1_files import INSTRUMENT_GROUP, TRIGGER, StereoInputError, time_ns
from .matching import event_keys

__all__ = [
    "COUNTS_TABLE",
    "ORIGIN_TABLE",
    "StereoEvents",
    "plan_stereo_events",
    "union_subarray",
    "write_origin_table",
    "write_stereo_file",
]

log = logging.getLogger(__name__)

ORIGIN_TABLE = f"{DL1_SUBARRAY_GROUP}/sst1m_stereo"
#: events paired and left alone per telescope, with the pairing's settings
COUNTS_TABLE = f"{SST1M_CONFIG_GROUP}/stereo/event_counts"
SHOWER = SIMULATION_SHOWER_TABLE
POINTING = DL0_TEL_POINTING_GROUP
# hdf5dataformat names the tables of these two groups, not the groups
OBSERVATION_GROUP = posixpath.dirname(OBSERVATION_BLOCK_TABLE) + "/"
SIMULATION_CONFIG_GROUP = posixpath.dirname(SIMULATION_RUN_TABLE) + "/"
CHUNK_ROWS = 10_000

#: non-event tables written once, from the first telescope's files
_FIRST_TELESCOPE_ONLY = (
    OBSERVATION_GROUP,
    SIMULATION_CONFIG_GROUP,
    f"{SIMULATION_GROUP}/service/",
)


def union_subarray(subarray1, subarray2):
    """
    The subarray of two single-telescope subarrays.

    Telescope descriptions and positions are kept unchanged, so models
    trained on either telescope still apply.

    Raises
    ------
    StereoInputError
        If the reference locations differ.
    """
    location1 = subarray1.reference_location.geocentric
    location2 = subarray2.reference_location.geocentric
    if not all(
        u.isclose(a, b, atol=1 * u.mm) for a, b in zip(location1, location2, strict=True)
    ):
        raise StereoInputError(
            f"the subarrays {subarray1.name!r} and {subarray2.name!r} have different "
            "reference locations"
        )
    name = subarray1.name
    if subarray2.name != name:
        name = f"{subarray1.name}+{subarray2.name}"
    positions = {**subarray1.positions, **subarray2.positions}
    descriptions = {**subarray1.tel, **subarray2.tel}
    return SubarrayDescription(
        name=name,
        tel_positions=positions,
        tel_descriptions=descriptions,
        reference_location=subarray1.reference_location,
    )


@dataclass
class StereoEvents:
    """
    The output events: ids, time, and the input event of each telescope.

    ``source[k]`` indexes the concatenated events of telescope ``k`` (0, 1),
    -1 where that telescope has no event.
    """

    obs_id: np.ndarray
    event_id: np.ndarray
    time: np.ndarray
    source: tuple

    def __len__(self):
        return len(self.obs_id)


def plan_stereo_events(events1, events2, result, include_unmatched, keep_ids):
    """
    The output events, in time order.

    Pairs and first-telescope events keep the first telescope's
    (obs_id, event_id), as sst1mpipe does. With ``include_unmatched``, events
    of the second telescope alone join the first telescope's run they fall in
    (by time); they keep their event_id unless it is taken in that run
    (``keep_ids``: simulations share the ids of both telescopes).

    Parameters
    ----------
    events1, events2 : dict of numpy.ndarray
        ``obs_id``, ``event_id`` and ``time`` of each telescope's events, over
        all its files (`~ctapipe_sst1m.stereo.dl1_files.concatenate_events`).
    result : MatchResult
        Indices into ``events1`` and ``events2``.
    include_unmatched : bool
    keep_ids : bool

    Returns
    -------
    StereoEvents
    """
    obs1, id1, time1 = (events1[k] for k in ("obs_id", "event_id", "time"))
    obs2, id2, time2 = (events2[k] for k in ("obs_id", "event_id", "time"))

    if include_unmatched:
        rows1 = np.arange(len(obs1))
        partner = np.full(len(obs1), -1)
        partner[result.index1] = result.index2
        alone2 = np.setdiff1d(np.arange(len(obs2)), result.index2)
    else:
        rows1, partner = result.index1, result.index2
        alone2 = np.zeros(0, dtype=np.int64)

    obs_id = np.concatenate([obs1[rows1], np.zeros(len(alone2), np.int64)])
    event_id = np.concatenate([id1[rows1], id2[alone2]])
    if keep_ids:
        obs_id[len(rows1) :] = obs2[alone2]
    elif len(alone2):
        obs_id[len(rows1) :] = _run_containing(time2[alone2], obs1, time1)
        event_id[len(rows1) :] = _free_ids(obs_id, event_id, len(rows1))

    time = np.concatenate([time1[rows1], time2[alone2]])
    source1 = np.concatenate([rows1, np.full(len(alone2), -1)])
    source2 = np.concatenate([partner, alone2])
    order = np.lexsort((event_id, obs_id, time))
    return StereoEvents(
        obs_id=obs_id[order],
        event_id=event_id[order],
        time=time[order],
        source=(source1[order], source2[order]),
    )


def _run_containing(times, obs_ids, run_times):
    """The obs_id of the run (of the first telescope) each time falls in."""
    runs = np.unique(obs_ids)
    starts = np.array([run_times[obs_ids == run].min() for run in runs])
    order = np.argsort(starts)
    index = np.clip(np.searchsorted(starts[order], times, side="right") - 1, 0, None)
    return runs[order][index]


def _free_ids(obs_id, event_id, n_first):
    """Event ids of the events from ``n_first`` on, renumbered where already taken."""
    ids = event_id.copy()
    late = np.arange(len(ids)) >= n_first
    for run in np.unique(obs_id[late]):
        in_run = obs_id == run
        mine = np.flatnonzero(in_run & late)
        _, first = np.unique(ids[mine], return_index=True)
        clash = np.isin(ids[mine], ids[in_run & ~late])
        clash[np.setdiff1d(np.arange(len(mine)), first)] = True
        if clash.any():
            start = max(ids[in_run].max(), 0) + 1
            ids[mine[clash]] = start + np.arange(np.count_nonzero(clash))
            log.warning(
                "obs_id %d: %d events of the second telescope alone got new event_ids "
                "(theirs are used by the first telescope); %s has the originals",
                run,
                np.count_nonzero(clash),
                ORIGIN_TABLE,
            )
    return ids[n_first:]


@dataclass
class _RowSource:
    """Rows of one input table, with the output event of each row (-1: not written)."""

    file: Path
    node: str
    nrows: int
    dtype: np.dtype
    out_event: np.ndarray | None
    tel_index: int


class _InputFiles:
    """
    The input files, opened on demand, at most ``max_open`` at a time.

    PyTables keeps an I/O buffer per table read (a few MB): with all the files
    of a night open, memory would grow with the number of runs.
    """

    def __init__(self, max_open=4):
        self.max_open = max_open
        self.handles = {}

    def node(self, source):
        """The input table of ``source``, its file opened if needed."""
        handle, nodes = self.handles.pop(source.file, (None, {}))
        if handle is None:
            handle = tables.open_file(source.file, mode="r")
        self.handles[source.file] = handle, nodes  # most recently used last
        while len(self.handles) > self.max_open:
            self.handles.pop(next(iter(self.handles)))[0].close()
        if source.node not in nodes:
            nodes[source.node] = handle.get_node(source.node)
        return nodes[source.node]

    def close(self):
        """Close all files."""
        for handle, _ in self.handles.values():
            handle.close()
        self.handles.clear()


@contextmanager
def _reading(source):
    """HDF5 errors while reading an input table, as an error naming the file:
    the input check reads the structure, not every byte (that is the copy)."""
    try:
        yield
    except (tables.HDF5ExtError, OSError) as err:
        raise StereoInputError(
            f"{source.file}: damaged data in {source.node} ({one_line(err)})"
        ) from err


def _event_lookup(events):
    """Sorted (obs_id, event_id) keys of a file's events, their row order, runs."""
    keys = event_keys(events.obs_id, events.event_id)
    order = np.argsort(keys)
    return keys[order], order, np.unique(events.obs_id)


def _rows_to_events(node, lookup):
    """Row of each table row's event in its file's trigger table (-1: none)."""
    sorted_keys, order, runs = lookup
    keys = event_keys(node.col("obs_id"), node.col("event_id"), runs)
    position = np.clip(np.searchsorted(sorted_keys, keys), 0, len(sorted_keys) - 1)
    return np.where(sorted_keys[position] == keys, order[position], -1)


class _StereoWriter:
    """Writes the output file (see the module docstring)."""

    def __init__(self, groups, events, subarray):
        self.groups = groups
        self.events = events
        self.subarray = subarray
        self.tel_ids = list(groups)
        #: output event of each concatenated input event, per telescope
        self.out_event = []
        for k, files in enumerate(groups.values()):
            n = sum(len(f) for f in files)
            index = np.full(n, -1)
            written = events.source[k] >= 0
            index[events.source[k][written]] = np.flatnonzero(written)
            self.out_event.append(index)
        self.n_dropped_rows = 0
        self.inputs = _InputFiles()

    def _alone(self, out_event):
        """Only the output events without a first-telescope event (-1 for others)."""
        paired = self.events.source[0][np.maximum(out_event, 0)] >= 0
        return np.where(paired, -1, out_event)

    def write(self, h5out, progress):
        try:
            self._write_reference_metadata(h5out)
            self.subarray.to_hdf(h5out)
            collected = self._collect()
            for path in tqdm(
                collected, desc="tables", unit="table", disable=not progress
            ):
                self._write_table(h5out, path, collected[path])
        finally:
            self.inputs.close()

    def _write_reference_metadata(self, h5out):
        first = self.groups[self.tel_ids[0]][0].path
        with tables.open_file(first, mode="r") as h5file, warnings.catch_warnings():
            # the CTA reference attribute names contain spaces
            warnings.simplefilter("ignore", tables.NaturalNameWarning)
            h5file.root._v_attrs._f_copy(h5out.root)
            h5out.root._v_attrs["CTA PRODUCT ID"] = str(uuid.uuid4())
            h5out.root._v_attrs["CTA PRODUCT CREATION TIME"] = Time.now().iso

    def _collect(self):
        """Output table path -> list of input tables with their row mapping."""
        collected = {}
        for k, files in enumerate(self.groups.values()):
            offset = 0
            for f in files:
                lookup = _event_lookup(f)
                with tables.open_file(f.path, mode="r") as h5file:
                    for node in h5file.walk_nodes("/", classname="Table"):
                        source = self._source(node, f, k, offset, lookup)
                        if source is not None:
                            collected.setdefault(node._v_pathname, []).append(source)
                offset += len(f)
        return collected

    def _source(self, node, telescope_events, k, offset, lookup):
        """How the input table ``node`` of telescope ``k`` is written, or None."""
        path = node._v_pathname
        if path.startswith((f"{INSTRUMENT_GROUP}/", ORIGIN_TABLE)):
            return None
        if path.startswith(f"{DL2_SUBARRAY_GROUP}/"):
            if k == 0:
                log.warning("%s: single-telescope reconstruction, not copied", path)
            return None
        out_event = None
        if "/event/" in path:
            rows = _rows_to_events(node, lookup)
            out_event = np.where(rows >= 0, self.out_event[k][offset + rows], -1)
            self.n_dropped_rows += np.count_nonzero(out_event < 0)
            if k == 1 and path in (SHOWER, TRIGGER):
                # a pair's shower and subarray trigger are the first telescope's
                out_event = self._alone(out_event)
        elif k == 1 and path.startswith(_FIRST_TELESCOPE_ONLY):
            return None
        return _RowSource(
            telescope_events.path, path, node.nrows, node.dtype, out_event, k
        )

    def _write_table(self, h5out, path, sources):
        if len({s.dtype for s in sources}) > 1:
            files = sorted({str(s.file) for s in sources})
            raise StereoInputError(f"{path} has different columns in {files}")
        first = self.inputs.node(sources[0])
        description = first.description._v_colobjects.copy()
        replace = {}
        if path == TRIGGER:
            n_tels = len(self.subarray.tel_ids)
            column = description["tels_with_trigger"]
            description["tels_with_trigger"] = tables.BoolCol(
                shape=(n_tels,), pos=column._v_pos
            )
            replace["tels_with_trigger"] = self._trigger_masks()
        group, name = path.rsplit("/", 1)
        out = h5out.create_table(
            group or "/",
            name,
            description=description,
            title=first.title,
            filters=first.filters,
            createparents=True,
            expectedrows=max(sum(s.nrows for s in sources), 1),
        )
        first.attrs._f_copy(out)
        if sources[0].out_event is None:
            self._copy_rows(out, path, sources)
        else:
            self._copy_event_rows(out, sources, replace)

    def _trigger_masks(self):
        masks = np.zeros((len(self.events), len(self.subarray.tel_ids)), dtype=bool)
        for k, tel_id in enumerate(self.tel_ids):
            index = self.subarray.tel_index_array[tel_id]
            masks[self.events.source[k] >= 0, index] = True
        return masks

    def _copy_rows(self, out, path, sources):
        if path.startswith((POINTING, OBSERVATION_GROUP)):
            parts = []
            for source in sources:
                with _reading(source):
                    parts.append(self.inputs.node(source).read())
            out.append(self._select(path, np.concatenate(parts)))
            return
        for source in sources:
            with _reading(source):
                node = self.inputs.node(source)
                for start in range(0, source.nrows, CHUNK_ROWS):
                    out.append(node.read(start, start + CHUNK_ROWS))

    def _select(self, path, rows):
        """Pointing in time order; observation blocks of the output's obs_ids."""
        if path.startswith(POINTING):
            return rows[np.argsort(time_ns(rows["time"]), kind="stable")]
        key = "obs_id" if "obs_id" in rows.dtype.names else "sb_id"
        if key == "obs_id":
            rows = rows[np.isin(rows["obs_id"], self.events.obs_id)]
        _, first = np.unique(rows[key], return_index=True)
        return rows[np.sort(first)]

    def _copy_event_rows(self, out, sources, replace):
        """
        Rows of event tables, in (output event, telescope) order, ids rewritten.

        ``replace``: column -> values per output event, written instead of the
        input's.
        """
        copied = [name for name in out.dtype.names if name not in replace]
        which = np.concatenate([np.full(s.nrows, i) for i, s in enumerate(sources)])
        row = np.concatenate([np.arange(s.nrows) for s in sources])
        out_event = np.concatenate([s.out_event for s in sources])
        tel = np.array([s.tel_index for s in sources])[which]
        keep = out_event >= 0
        which, row, out_event, tel = which[keep], row[keep], out_event[keep], tel[keep]
        order = np.lexsort((tel, out_event))
        which, row, out_event = which[order], row[order], out_event[order]
        for start in range(0, len(row), CHUNK_ROWS):
            stop = start + CHUNK_ROWS
            chunk = np.empty(len(row[start:stop]), dtype=out.dtype)
            for i in np.unique(which[start:stop]):
                here = np.flatnonzero(which[start:stop] == i)
                coordinates = row[start:stop][here]
                by_row = np.argsort(coordinates)
                with _reading(sources[i]):
                    node = self.inputs.node(sources[i])
                    values = node.read_coordinates(coordinates[by_row])
                for name in copied:
                    chunk[name][here[by_row]] = values[name]
            events = out_event[start:stop]
            chunk["obs_id"] = self.events.obs_id[events]
            chunk["event_id"] = self.events.event_id[events]
            for name, values in replace.items():
                chunk[name] = values[events]
            out.append(chunk)


def write_origin_table(h5out, events, events1, events2, tel_ids, offset):
    """``/dl1/event/subarray/sst1m_stereo``: the original ids of each output event."""
    columns = {"obs_id": events.obs_id, "event_id": events.event_id}
    times = []
    for k, inputs in enumerate((events1, events2)):
        source = events.source[k]
        has = source >= 0
        obs, ids, time = (inputs[c] for c in ("obs_id", "event_id", "time"))
        columns[f"tel{k + 1}_obs_id"] = np.where(has, obs[np.maximum(source, 0)], -1)
        columns[f"tel{k + 1}_event_id"] = np.where(has, ids[np.maximum(source, 0)], -1)
        times.append(np.where(has, time[np.maximum(source, 0)], 0))
    paired = (events.source[0] >= 0) & (events.source[1] >= 0)
    difference = np.where(paired, (times[1] - times[0] - offset).astype(float), np.nan)
    columns["time_difference"] = difference * u.ns
    table = Table(columns)
    table.meta["TEL1_ID"] = tel_ids[0]
    table.meta["TEL2_ID"] = tel_ids[1]
    table.meta["DESCRIPTION"] = (
        "Original (obs_id, event_id) of each telescope's event (-1: none) and the "
        "time difference tel2 - tel1 - clock offset of pairs"
    )
    write_table(table, h5out, ORIGIN_TABLE)


def write_stereo_file(h5out, groups, events, subarray, progress=False):
    """
    Write the stereo events into the open PyTables file ``h5out``.

    Returns
    -------
    int
        Rows of input event tables whose event is not written.
    """
    writer = _StereoWriter(groups, events, subarray)
    writer.write(h5out, progress)
    return writer.n_dropped_rows
