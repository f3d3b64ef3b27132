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

Hosted by ``ctapipe-process``, it also marks the tool's DL2 output complete
(`ctapipe_sst1m.core.products`) once every event of its input went through it.
"""

import astropy.units as u
import numpy as np
import tables
from astropy.table import Table
from ctapipe.io import MonitoringSource, MonitoringType
from ctapipe.io.hdf5dataformat import DL1_SUBARRAY_TRIGGER_TABLE

from ..core.products import (
    DL2,
    ProductError,
    registered_files,
    verify_hdf5_product,
    write_hdf5_mark,
)

__all__ = ["SST1MArrayPointing", "mean_direction"]


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


class SST1MArrayPointing(MonitoringSource):
    """
    Sets a missing array pointing to the mean pointing of the event's telescopes.

    The two SST-1M telescopes track the same target, so their pointing
    directions agree to well below the angular resolution; their mean is the
    reference direction HillasReconstructor needs. Events whose array pointing
    is already set are left alone.
    """

    def __init__(self, subarray=None, config=None, parent=None, **kwargs):
        super().__init__(subarray=subarray, config=config, parent=parent, **kwargs)
        self.n_events = 0

    def __exit__(self, exc_type, exc_value, traceback):
        # ctapipe-process exits its monitoring sources after its DataWriter
        # closed (and registered) the output
        self._mark_output()
        super().__exit__(exc_type, exc_value, traceback)

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
