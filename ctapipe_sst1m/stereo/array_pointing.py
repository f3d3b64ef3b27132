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
"""

import astropy.units as u
import numpy as np
from astropy.table import Table
from ctapipe.io import MonitoringSource, MonitoringType

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
