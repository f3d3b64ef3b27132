"""
The SST-1M instrument description, built from the resource files of the package.

The tables in ``ctapipe_sst1m/resources/instrument`` are written by
``scripts/make_instrument_resources.py`` from sst1mpipe's ``sst1m_array.h5``:

* ``SST1M_layout.ecsv``: one row per telescope (position, readout file), with the
  subarray name, the reference location, the optics and the geometry file name
  in its metadata;
* ``DigiCam.camgeom.ecsv``: the camera geometry, the same for all telescopes;
* ``DigiCam_tel0XX.readout.ecsv``: the readout of each telescope (the telescopes
  differ only in their reference pulse shape).

The tables are read once; the descriptions returned share the geometry, optics
and readout objects, as the descriptions of an ``EventSource`` do: do not modify
them.
"""

import functools
from collections.abc import Iterable
from dataclasses import dataclass

import astropy.units as u
from astropy.coordinates import EarthLocation
from astropy.table import Table
from ctapipe.coordinates import CameraFrame
from ctapipe.instrument import (
    CameraDescription,
    CameraGeometry,
    CameraReadout,
    OpticsDescription,
    SubarrayDescription,
    TelescopeDescription,
    UnknownTelescopeID,
)

from ..core.resources import INSTRUMENT_DIR, read_resource
from .constants import SST1M_FOCAL_LENGTH_CHOICE

__all__ = [
    "add_telescope",
    "load_sst1m_subarray",
    "sst1m_optics",
    "sst1m_telescope_description",
]

#: the table every other resource file is found from
LAYOUT_FILE = "SST1M_layout.ecsv"
#: errors raised while turning a table into a description
_PARSE_ERRORS = (KeyError, TypeError, ValueError, u.UnitsError)


def _read_resource(name, parse):
    """``parse(table)`` of the ECSV instrument resource ``name``."""

    def read(resource):
        try:
            lines = resource.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as err:
            raise OSError(f"Cannot read {resource}: {err}") from err
        return parse(Table.read(lines, format="ascii.ecsv"))

    return read_resource(f"{INSTRUMENT_DIR}/{name}", read, _PARSE_ERRORS)


@dataclass(frozen=True)
class _Layout:
    """The content of the layout table."""

    name: str
    reference_location: EarthLocation
    telescope_name: str
    optics: OpticsDescription
    geometry_file: str
    #: tel_id -> position (x, y, z) in the ground frame
    positions: dict
    #: tel_id -> readout file name
    readout_files: dict


def _parse_layout(table):
    meta = table.meta
    location = meta["reference_location"]
    optics = meta["optics"]
    tel_ids = [int(tel_id) for tel_id in table["tel_id"]]
    positions = u.Quantity([table[f"pos_{c}"].quantity for c in "xyz"]).T
    return _Layout(
        name=meta["name"],
        reference_location=EarthLocation.from_geocentric(
            location["x_m"], location["y_m"], location["z_m"], unit=u.m
        ),
        telescope_name=meta["telescope_name"],
        optics=OpticsDescription(
            name=optics["name"],
            size_type=optics["size_type"],
            reflector_shape=optics["reflector_shape"],
            n_mirrors=optics["n_mirrors"],
            n_mirror_tiles=optics["n_mirror_tiles"],
            mirror_area=u.Quantity(optics["mirror_area_m2"], u.m**2),
            equivalent_focal_length=u.Quantity(optics["equivalent_focal_length_m"], u.m),
            effective_focal_length=u.Quantity(optics["effective_focal_length_m"], u.m),
        ),
        geometry_file=meta["camera_geometry"],
        positions=dict(zip(tel_ids, positions, strict=True)),
        readout_files={t: str(f) for t, f in zip(tel_ids, table["readout"], strict=True)},
    )


@functools.cache
def _layout():
    return _read_resource(LAYOUT_FILE, _parse_layout)


@functools.cache
def _geometry():
    """The camera geometry, in a camera frame of the SST-1M focal length choice."""
    layout = _layout()
    geometry = _read_resource(layout.geometry_file, CameraGeometry.from_table)
    geometry.frame = CameraFrame(
        focal_length=layout.optics.get_focal_length(SST1M_FOCAL_LENGTH_CHOICE)
    )
    return geometry


@functools.cache
def _readout(name):
    return _read_resource(name, CameraReadout.from_table)


def sst1m_optics() -> OpticsDescription:
    """
    The optics of the SST-1M telescopes, from the instrument resource.

    Returns
    -------
    ctapipe.instrument.OpticsDescription
        Shared with every description of the package: do not modify it.

    Raises
    ------
    FileNotFoundError, OSError
        If the layout resource is missing or invalid.
    """
    return _layout().optics


def _check_tel_id(tel_id):
    known = _layout().readout_files
    if tel_id not in known:
        raise UnknownTelescopeID(
            f"{tel_id} is not an SST-1M telescope, known: {list(known)}"
        )


def sst1m_telescope_description(tel_id: int) -> TelescopeDescription:
    """
    Describe one SST-1M telescope.

    Parameters
    ----------
    tel_id : int
        Telescope id, one of `~ctapipe_sst1m.instrument.SST1M_TEL_IDS`.

    Returns
    -------
    ctapipe.instrument.TelescopeDescription
        Optics, DigiCam geometry (in a `~ctapipe.coordinates.CameraFrame` with the
        focal length `~ctapipe_sst1m.instrument.SST1M_FOCAL_LENGTH_CHOICE`, the
        equivalent one) and the readout of ``tel_id``.

    Raises
    ------
    ctapipe.instrument.UnknownTelescopeID
        If ``tel_id`` is not an SST-1M telescope.
    FileNotFoundError, OSError
        If a resource file is missing or invalid.
    """
    _check_tel_id(tel_id)
    layout = _layout()
    geometry = _geometry()
    camera = CameraDescription(
        name=geometry.name,
        geometry=geometry,
        readout=_readout(layout.readout_files[tel_id]),
    )
    return TelescopeDescription(
        name=layout.telescope_name, optics=layout.optics, camera=camera
    )


def load_sst1m_subarray(tel_ids: Iterable[int] | None = None) -> SubarrayDescription:
    """
    Describe the SST-1M telescopes.

    Parameters
    ----------
    tel_ids : iterable of int or None
        The telescopes to include; all of them (`~ctapipe_sst1m.instrument.SST1M_TEL_IDS`)
        if None.

    Returns
    -------
    ctapipe.instrument.SubarrayDescription
        ``SST1M_miniarray``: positions relative to the Ondřejov reference location
        and the description of each telescope.

    Raises
    ------
    ctapipe.instrument.UnknownTelescopeID
        If one of ``tel_ids`` is not an SST-1M telescope.
    FileNotFoundError, OSError
        If a resource file is missing or invalid.
    """
    layout = _layout()
    tel_ids = list(layout.positions if tel_ids is None else map(int, tel_ids))
    descriptions = {tel_id: sst1m_telescope_description(tel_id) for tel_id in tel_ids}
    return SubarrayDescription(
        name=layout.name,
        tel_positions={tel_id: layout.positions[tel_id].copy() for tel_id in tel_ids},
        tel_descriptions=descriptions,
        reference_location=layout.reference_location,
    )


def add_telescope(
    subarray: SubarrayDescription, tel_id: int, template_tel_id: int = 22
) -> SubarrayDescription:
    """
    Add a telescope described like an SST-1M telescope, at the reference point.

    Used for files of the prototype camera, whose telescope id is not an SST-1M
    one; the caller should warn that the description is borrowed.

    Parameters
    ----------
    subarray : ctapipe.instrument.SubarrayDescription
        The subarray to extend; it is not modified.
    tel_id : int
        Id of the added telescope; must not be in ``subarray``.
    template_tel_id : int
        SST-1M telescope whose description the added telescope gets.

    Returns
    -------
    ctapipe.instrument.SubarrayDescription
        A subarray with the same name and reference location, holding the
        telescopes of ``subarray`` and ``tel_id`` at (0, 0, 0) m, sorted by id.

    Raises
    ------
    ValueError
        If ``tel_id`` is already in ``subarray``.
    ctapipe.instrument.UnknownTelescopeID
        If ``template_tel_id`` is not an SST-1M telescope.
    """
    tel_id = int(tel_id)
    if tel_id in subarray.tel:
        raise ValueError(f"tel {tel_id} is already in subarray {subarray.name}")

    positions = {**subarray.positions, tel_id: u.Quantity([0.0, 0.0, 0.0], u.m)}
    descriptions = {**subarray.tel, tel_id: sst1m_telescope_description(template_tel_id)}
    tel_ids = sorted(positions)
    return SubarrayDescription(
        name=subarray.name,
        tel_positions={t: positions[t] for t in tel_ids},
        tel_descriptions={t: descriptions[t] for t in tel_ids},
        reference_location=subarray.reference_location,
    )
