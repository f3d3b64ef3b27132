"""
Array pointing of SST-1M stereo events, for the stereo reconstruction.

HDF5EventSource fills the array pointing of an event only from an
observation block in AltAz; the observation blocks of SST-1M data are in ICRS
(the tracked target), so ``event.monitoring.pointing.array_altitude`` and
``array_azimuth`` stay NaN and HillasReconstructor cannot use them.
`SST1MArrayPointing`, a MonitoringSource named in
``ProcessorTool.monitoring_source_list`` (``sst1m_stereo.yaml``), sets them to
the mean direction of the telescopes of the event, whose pointing
HDF5EventSource interpolates from ``/dl0/monitoring/telescope/pointing``.
An array pointing already given (simulations: AltAz observation blocks) is kept.

Events whose telescopes have no pointing (DL1 of a raw file without a
``TARGET`` and without ``SST1MEventSource.pointing_ra/dec``) cannot be
reconstructed: HillasReconstructor still calls them valid, with every geometry
column NaN. The source warns once per run and, when the tool has written its
output, marks such geometries invalid (`invalidate_undefined_geometry`).

Hosted by ``ctapipe-process``, it also marks the tool's DL2 output complete
(`ctapipe_sst1m.core.products`) once every event of its input went through it.
"""

import astropy.units as u
import numpy as np
import tables
from astropy.table import Table
from ctapipe.io import MonitoringSource, MonitoringType
from ctapipe.io.hdf5dataformat import (
    DL1_SUBARRAY_TRIGGER_TABLE,
    DL2_SUBARRAY_GEOMETRY_GROUP,
)

from ..core.products import (
    DL2,
    ProductError,
    registered_files,
    verify_hdf5_product,
    write_hdf5_mark,
)

__all__ = ["SST1MArrayPointing", "invalidate_undefined_geometry", "mean_direction"]


def mean_direction(altitude, azimuth):
    """
    Direction of the sum of unit vectors.

    Parameters
    ----------
    altitude, azimuth : numpy.ndarray
        rad.

    Returns
    -------
    altitude, azimuth : float
        rad; NaN if no direction is finite.
    """
    altitude, azimuth = np.asarray(altitude, float), np.asarray(azimuth, float)
    finite = np.isfinite(altitude) & np.isfinite(azimuth)
    if not finite.any():
        return np.nan, np.nan
    altitude, azimuth = altitude[finite], azimuth[finite]
    x = np.sum(np.cos(altitude) * np.cos(azimuth))
    y = np.sum(np.cos(altitude) * np.sin(azimuth))
    z = np.sum(np.sin(altitude))
    return np.arctan2(z, np.hypot(x, y)), np.arctan2(y, x) % (2 * np.pi)


def invalidate_undefined_geometry(path):
    """
    Mark invalid the stereo geometries that are valid without a direction.

    A reconstructor given no pointing returns NaN for every geometry column,
    but HillasReconstructor still sets its ``is_valid`` flag; downstream tools
    select on that flag alone.

    Parameters
    ----------
    path : str or pathlib.Path
        A closed DL2 file written by ctapipe's DataWriter; modified in place.

    Returns
    -------
    dict[str, int]
        Reconstructor (table of ``/dl2/event/subarray/geometry``) -> geometries
        marked invalid, for those that had any.

    Raises
    ------
    OSError, tables.HDF5ExtError
        If the file cannot be opened for writing.
    """
    marked = {}
    with tables.open_file(path, mode="a") as h5file:
        if DL2_SUBARRAY_GEOMETRY_GROUP not in h5file:
            return marked
        for table in h5file.iter_nodes(DL2_SUBARRAY_GEOMETRY_GROUP, classname="Table"):
            prefix = table.name
            names = [f"{prefix}_{column}" for column in ("is_valid", "alt", "az")]
            if not set(names) <= set(table.colnames):
                continue
            valid, alt, az = (table.col(name) for name in names)
            undefined = valid & ~(np.isfinite(alt) & np.isfinite(az))
            if undefined.any():
                table.modify_column(colname=names[0], column=valid & ~undefined)
                marked[prefix] = int(np.count_nonzero(undefined))
    return marked


class SST1MArrayPointing(MonitoringSource):
    """
    Sets a missing array pointing to the mean pointing of the event's telescopes.

    The two SST-1M telescopes track the same target, so their pointing
    directions agree to well below the angular resolution; their mean is the
    reference direction HillasReconstructor needs. Events whose array pointing
    is already set are left alone.

    Events with a telescope without pointing are counted and warned about, once
    per run; when the source exits, the geometries of the tool's output that are
    valid without a direction are marked invalid (`invalidate_undefined_geometry`).
    """

    def __init__(self, subarray=None, config=None, parent=None, **kwargs):
        super().__init__(subarray=subarray, config=config, parent=parent, **kwargs)
        self.n_events = 0
        #: events with at least one telescope without pointing
        self.n_without_pointing = 0
        self._runs_warned = set()
        inputs = registered_files("input", role="Event")
        self._input_name = inputs[-1].name if inputs else "input"

    def __exit__(self, exc_type, exc_value, traceback):
        # ctapipe-process exits its monitoring sources after its DataWriter
        # closed (and registered) the output
        if self.n_without_pointing:
            self._invalidate_outputs()
        self._mark_output()
        super().__exit__(exc_type, exc_value, traceback)

    def _invalidate_outputs(self):
        """Mark invalid the geometries without direction of the tool's outputs;
        errors are logged, not raised (see `_mark_output`)."""
        for output in registered_files("output", role="DL1/Event"):
            if not output.is_file():
                continue
            try:
                marked = invalidate_undefined_geometry(output)
            except (OSError, tables.HDF5ExtError) as err:
                self.log.error(
                    "%s: geometries without pointing not marked invalid: %s", output, err
                )
                continue
            for prefix, n_marked in marked.items():
                self.log.warning(
                    "%s: %s_is_valid set to False in %d event%s reconstructed "
                    "without pointing (%d of %d events had a telescope without "
                    "pointing)",
                    output.name,
                    prefix,
                    n_marked,
                    "" if n_marked == 1 else "s",
                    self.n_without_pointing,
                    self.n_events,
                )

    def _mark_output(self):
        """Mark the DL2 output of the hosting tool complete if every input event
        reached this source."""
        inputs = [p for p in registered_files("input", role="Event") if p.is_file()]
        outputs = [p for p in registered_files("output", role="DL1/Event") if p.is_file()]
        if len(inputs) != 1 or not outputs:
            self.log.debug("no single input and output registered: nothing marked")
            return
        try:
            verify_hdf5_product(inputs[0], require_mark=False)
        except ProductError as err:
            self.log.error("%s; output not marked complete", err)
            return
        with tables.open_file(inputs[0]) as h5file:
            n_input = h5file.get_node(DL1_SUBARRAY_TRIGGER_TABLE).nrows
        for output in outputs:
            if self.n_events != n_input:
                self.log.error(
                    "%s: INCOMPLETE, %d of the %d events of %s processed; not marked "
                    "complete, package tools will refuse it",
                    output,
                    self.n_events,
                    n_input,
                    inputs[0].name,
                )
                continue
            with tables.open_file(output) as h5file:
                n_written = h5file.get_node(DL1_SUBARRAY_TRIGGER_TABLE).nrows
            counts = {"written": n_written}
            if n_input > n_written:
                counts["not written by the tool (its event filters)"] = (
                    n_input - n_written
                )
            write_hdf5_mark(
                output,
                DL2,
                events_in=n_input,
                events_out=n_written,
                counts=counts,
                inputs=[inputs[0].name],
            )

    @property
    def monitoring_types(self):
        return (MonitoringType.TELESCOPE_POINTINGS,)

    def get_table(self, monitoring_type, tel_id=None, **kwargs):
        """An empty table: the pointing comes from each event's telescopes."""
        self._check(monitoring_type)
        return Table({"time": [], "altitude": [] * u.rad, "azimuth": [] * u.rad})

    def get_values(self, monitoring_type, time, tel_id=None, **kwargs):
        """Not available without an event; use `fill_monitoring_container`."""
        self._check(monitoring_type)
        raise NotImplementedError(
            f"{self.__class__.__name__} derives the array pointing per event"
        )

    def _check(self, monitoring_type):
        if monitoring_type not in self.monitoring_types:
            raise KeyError(f"{self.__class__.__name__} provides no {monitoring_type}")

    def fill_monitoring_container(self, event):
        """Set ``event.monitoring.pointing.array_altitude/azimuth`` if missing."""
        self.n_events += 1
        self._check_tel_pointing(event)
        pointing = event.monitoring.pointing
        given = u.Quantity([pointing.array_altitude, pointing.array_azimuth], u.rad)
        if np.all(np.isfinite(given)):
            return
        tel_pointings = [
            event.monitoring.tel[tel_id].pointing for tel_id in event.dl1.tel
        ]
        altitude, azimuth = mean_direction(
            [p.altitude.to_value(u.rad) for p in tel_pointings],
            [p.azimuth.to_value(u.rad) for p in tel_pointings],
        )
        pointing.array_altitude = u.Quantity(altitude, u.rad)
        pointing.array_azimuth = u.Quantity(azimuth, u.rad)

    def _check_tel_pointing(self, event):
        """Count the event if a telescope has no pointing; warn once per run."""
        missing = [
            tel_id
            for tel_id in event.dl1.tel
            if not (
                np.isfinite(event.monitoring.tel[tel_id].pointing.altitude)
                and np.isfinite(event.monitoring.tel[tel_id].pointing.azimuth)
            )
        ]
        if not missing:
            return
        self.n_without_pointing += 1
        obs_id = event.index.obs_id
        if obs_id in self._runs_warned:
            return
        self._runs_warned.add(obs_id)
        self.log.warning(
            "%s: obs_id %s: no pointing for tel %s: no stereo geometry can be "
            "reconstructed, it is marked invalid; set SST1MEventSource.pointing_ra "
            "and pointing_dec (deg, ICRS) when making the DL1 of each telescope, "
            "then merge again",
            self._input_name,
            obs_id,
            ", ".join(map(str, sorted(missing))),
        )
