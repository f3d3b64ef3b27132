"""
Where a set of IRFs is valid: the pointing and night-sky background of the
simulations they were computed from, and the field-of-view radius they cover.

With two telescopes the stereo acceptance depends on the azimuth relative to
the baseline as well as on the zenith angle: IRFs of gammas simulated at
alt 70 deg / az 180 deg applied to runs at az 104-114 deg give fluxes about
20 % low (measured on the toy chain). ``ctapipe-sst1m-compute-irf`` records the
node in the IRF file's primary header, ``ctapipe-sst1m-dl3`` compares it with
each run's mean pointing.
"""

from dataclasses import dataclass

import astropy.units as u
import numpy as np
from ctapipe.io import read_table
from ctapipe.io.hdf5dataformat import SIMULATION_RUN_TABLE

__all__ = [
    "IrfNode",
    "IrfNodeError",
    "pointing_differences",
    "simulated_pointing",
]

#: simulation runs of one file whose pointings differ by more than this (deg)
#: are not one node
SAME_NODE = 0.1


class IrfNodeError(ValueError):
    """Simulations or IRFs without one well-defined node."""


@dataclass(frozen=True)
class IrfNode:
    """Pointing (deg), NSB label and field-of-view radius (deg) of a set of IRFs."""

    alt: float
    az: float
    nsb: str
    fov_max: float

    @property
    def zenith(self):
        """Zenith angle of the node (deg)."""
        return 90.0 - self.alt

    def header_cards(self):
        """FITS cards (key -> (value, comment)) recording the node."""
        return {
            "ALT_PNT": (self.alt, "[deg] pointing altitude of the simulations"),
            "AZ_PNT": (self.az, "[deg] pointing azimuth of the simulations"),
            "ZEN_PNT": (self.zenith, "[deg] pointing zenith angle of the simulations"),
            "NSBNODE": (self.nsb, "night-sky background of the simulations"),
            "FOVMAX": (self.fov_max, "[deg] events farther from the pointing cut"),
        }

    @classmethod
    def from_header(cls, header):
        """The node recorded in an IRF primary header, or None if not recorded."""
        if not all(key in header for key in ("ALT_PNT", "AZ_PNT", "FOVMAX")):
            return None
        return cls(
            alt=float(header["ALT_PNT"]),
            az=float(header["AZ_PNT"]),
            nsb=str(header.get("NSBNODE", "unspecified")),
            fov_max=float(header["FOVMAX"]),
        )


def simulated_pointing(path):
    """
    The pointing of the simulations of a DL1/DL2 file.

    Parameters
    ----------
    path : pathlib.Path
        File written by ``ctapipe-process`` from simulations.

    Returns
    -------
    alt, az : float
        deg.

    Raises
    ------
    IrfNodeError
        If the file records no simulation runs, or runs at different pointings
        or at a range of pointings wider than `SAME_NODE`.
    """
    try:
        runs = read_table(path, SIMULATION_RUN_TABLE)
    except (OSError, KeyError, LookupError) as err:
        raise IrfNodeError(
            f"{path}: no simulation configuration ({SIMULATION_RUN_TABLE}): "
            "not a simulation file"
        ) from err
    values = {}
    for name in ("min_alt", "max_alt", "min_az", "max_az"):
        values[name] = u.Quantity(runs[name], u.rad).to_value(u.deg)
    alt = np.concatenate([values["min_alt"], values["max_alt"]])
    az = np.concatenate([values["min_az"], values["max_az"]])
    spread_az = np.abs(_wrap(az - az[0]))
    if np.ptp(alt) > SAME_NODE or spread_az.max() > SAME_NODE:
        raise IrfNodeError(
            f"{path}: simulations at altitudes {np.unique(alt.round(2))} and "
            f"azimuths {np.unique(az.round(2))} deg, not one pointing; compute IRFs "
            "per pointing node"
        )
    return float(alt[0]), float(az[0] % 360)


def _wrap(angle):
    """Angles (deg) wrapped to [-180, 180)."""
    return (np.asarray(angle) + 180.0) % 360.0 - 180.0


def pointing_differences(alt, az, reference_alt, reference_az):
    """
    Zenith and azimuth differences between pointings and a reference pointing.

    Parameters
    ----------
    alt, az : float or numpy.ndarray
        Pointing (deg).
    reference_alt, reference_az : float
        The reference, e.g. an IRF node (deg).

    Returns
    -------
    zenith, azimuth : numpy.ndarray
        Absolute differences (deg); azimuth wrapped, at most 180.
    """
    zenith = np.abs(np.asarray(alt) - reference_alt)
    azimuth = np.abs(_wrap(np.asarray(az) - reference_az))
    return zenith, azimuth
