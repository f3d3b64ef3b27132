"""
Telescope pointing of SST-1M runs.

SST-1M raw files record the observed target, not the drive position: the header
key ``TARGET`` of the Events table holds ``"<target>,<ra>,<dec>"`` or
``"<target>_<wobble>_<ra>_<dec>"`` (degrees, ICRS). ctapipe's reconstruction and
IRF tools need the pointing in horizontal coordinates, so the tracked position
is converted to AltAz. The conversion (an astropy sky-to-horizon transform costs
milliseconds) is done on a grid of time nodes, a block of nodes at a time, and
interpolated linearly in between: with the default 10 s node spacing the
interpolation error is far below an arcsecond.
"""

import logging
import re
from dataclasses import dataclass

import astropy.units as u
import numpy as np
from astropy.coordinates import AltAz, SkyCoord
from astropy.table import Table
from astropy.time import Time

from .earth_orientation import using_cached_table

__all__ = [
    "NON_POINTING_TARGETS",
    "AltAzTracker",
    "Target",
    "parse_target",
]

log = logging.getLogger(__name__)

#: TARGET values of runs without a sky position (slewing, closed lid).
NON_POINTING_TARGETS = {"transition", "dark"}
_WOBBLE = re.compile(r"W\d+")


@dataclass(frozen=True)
class Target:
    """The observed target of a run."""

    name: str
    #: ICRS right ascension in deg, NaN if the run has no sky position
    ra: float = np.nan
    #: ICRS declination in deg
    dec: float = np.nan
    #: wobble label such as ``W1``, or ``UNDEF``
    wobble: str = "UNDEF"

    @property
    def has_position(self):
        """True if the target has sky coordinates."""
        return bool(np.isfinite(self.ra) and np.isfinite(self.dec))


def parse_target(value):
    """
    Parse the ``TARGET`` header value of an SST-1M raw file.

    Parameters
    ----------
    value : str
        ``"Crab,83.633,22.0145"``, ``"Crab_W1_83.633_22.0145"``, ``"Transition"``...

    Returns
    -------
    Target
        Without coordinates for Transition and Dark runs.

    Raises
    ------
    ValueError
        If the value is none of the known forms.
    """
    text = value.strip()
    if text.lower() in NON_POINTING_TARGETS:
        return Target(name=text)
    delimiter = "_" if text.count("_") > 1 else "," if text.count(",") > 1 else None
    fields = text.split(delimiter) if delimiter else [text]
    if len(fields) not in (3, 4):
        raise ValueError(
            f"TARGET {value!r} is not 'target,ra,dec' or 'target_wobble_ra_dec'"
        )
    try:
        ra, dec = float(fields[-2]), float(fields[-1])
    except ValueError:
        raise ValueError(f"TARGET {value!r}: RA/Dec are not numbers") from None
    if not (0 <= ra <= 360 and -90 <= dec <= 90):
        raise ValueError(f"TARGET {value!r}: RA/Dec out of range")
    wobble = _WOBBLE.search(fields[1]) if len(fields) == 4 else None
    return Target(name=fields[0], ra=ra, dec=dec, wobble=wobble[0] if wobble else "UNDEF")


def parse_target_name(value):
    """
    The target name and wobble label of a ``TARGET`` value without a position.

    ``"Crab_W1"``, ``"Crab,W2"``, ``"Crab"``: the position must come from
    elsewhere (a source catalogue, ``SST1MEventSource.pointing_ra``/``_dec``).

    Parameters
    ----------
    value : str

    Returns
    -------
    Target
        Without coordinates; wobble ``UNDEF`` unless a field is ``W<n>``.
    """
    fields = [f for f in re.split(r"[,_]", value.strip()) if f]
    if not fields:
        return Target(name=value.strip())
    wobble = next((f for f in fields[1:] if _WOBBLE.fullmatch(f)), "UNDEF")
    return Target(name=fields[0], wobble=wobble)


class AltAzTracker:
    """
    Horizontal coordinates of a tracked sky position, interpolated between nodes.

    Parameters
    ----------
    target : Target
        The tracked position (must have coordinates).
    location : astropy.coordinates.EarthLocation
        The telescope.
    node_spacing : float
        Seconds between interpolation nodes.
    nodes_per_block : int
        Nodes computed by one astropy transform.
    """

    def __init__(self, target, location, node_spacing=10.0, nodes_per_block=64):
        self.coord = SkyCoord(ra=target.ra * u.deg, dec=target.dec * u.deg)
        self.location = location
        self.node_spacing = float(node_spacing)
        self.nodes_per_block = int(nodes_per_block)
        # computed blocks: first node index -> (alt, az) arrays in rad
        self._blocks = {}

    def _block(self, first_node):
        block = self._blocks.get(first_node)
        if block is None:
            nodes = first_node + np.arange(self.nodes_per_block + 1)
            times = Time(nodes * self.node_spacing, format="unix_tai", scale="tai")
            with using_cached_table():
                altaz = self.coord.transform_to(
                    AltAz(obstime=times, location=self.location)
                )
            block = (
                altaz.alt.to_value(u.rad),
                np.unwrap(altaz.az.to_value(u.rad)),
            )
            self._blocks[first_node] = block
        return block

    def __call__(self, unix_tai):
        """
        Altitude and azimuth at ``unix_tai`` seconds.

        Parameters
        ----------
        unix_tai : float or array of float

        Returns
        -------
        tuple[numpy.ndarray, numpy.ndarray]
            Altitude and azimuth in rad, azimuth in [0, 2 pi), shaped like
            ``unix_tai``.
        """
        position = np.asarray(unix_tai, dtype=np.float64) / self.node_spacing
        node = np.floor(position).astype(np.int64)
        first = node - node % self.nodes_per_block
        altitude = np.empty(position.shape)
        azimuth = np.empty(position.shape)
        for block_start in np.unique(first):
            alt, az = self._block(int(block_start))
            mask = first == block_start
            i = node[mask] - block_start
            frac = position[mask] - node[mask]
            altitude[mask] = alt[i] + frac * (alt[i + 1] - alt[i])
            azimuth[mask] = az[i] + frac * (az[i + 1] - az[i])
        return altitude, azimuth % (2 * np.pi)

    def node_table(self):
        """
        All computed nodes as a table for ctapipe's ``PointingInterpolator``.

        Returns
        -------
        astropy.table.Table
            Columns ``time`` (TAI), ``altitude`` and ``azimuth`` (rad), time-sorted.
        """
        firsts = sorted(self._blocks)
        nodes = np.concatenate(
            [[0]] + [f + np.arange(self.nodes_per_block + 1) for f in firsts]
        )[1:]
        alt = np.concatenate([[0.0]] + [self._blocks[f][0] for f in firsts])[1:]
        az = np.concatenate([[0.0]] + [self._blocks[f][1] for f in firsts])[1:]
        nodes, unique = np.unique(nodes, return_index=True)
        return Table(
            {
                "time": Time(nodes * self.node_spacing, format="unix_tai", scale="tai"),
                "altitude": alt[unique] * u.rad,
                "azimuth": (az[unique] % (2 * np.pi)) * u.rad,
            }
        )
