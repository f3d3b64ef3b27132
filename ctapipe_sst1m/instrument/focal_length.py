"""
The focal length of SST-1M camera frames, in data and in simulations.

Telescope-frame image parameters (``hillas_fov_lon``, ``hillas_length``, ...)
are pixel positions divided by the focal length of the camera frame, so data
and the simulations models and IRFs come from must use the same one:
`~ctapipe_sst1m.instrument.SST1M_FOCAL_LENGTH_CHOICE`, the equivalent focal
length. SST1MEventSource builds its camera frames with it and ``sst1m_mc.yaml``
sets ``SimTelEventSource.focal_length_choice`` to it.

ctapipe's readers (``TableLoader``, ``HDF5EventSource``) ask for the effective
focal length by default and refuse a file that lacks it, as older SST-1M
sim_telarray files do (NaN): `fill_effective_focal_length` gives such
telescopes the effective focal length of the SST-1M optics before their
description is written.
"""

import astropy.units as u
import numpy as np
from ctapipe.instrument import OpticsDescription

from .constants import SST1M_FOCAL_LENGTH_CHOICE
from .subarray import sst1m_optics

__all__ = [
    "fill_effective_focal_length",
    "focal_length_mismatches",
    "is_sst1m_optics",
    "sst1m_focal_length",
]


def sst1m_focal_length() -> u.Quantity:
    """
    Focal length of the camera frames of SST-1M images.

    Returns
    -------
    astropy.units.Quantity
        The `~ctapipe_sst1m.instrument.SST1M_FOCAL_LENGTH_CHOICE` focal length of
        the SST-1M optics (the equivalent one, 5.600 m).

    Raises
    ------
    FileNotFoundError, OSError
        If the instrument resource is missing or invalid.
    """
    return sst1m_optics().get_focal_length(SST1M_FOCAL_LENGTH_CHOICE)


def is_sst1m_optics(optics) -> bool:
    """
    Whether ``optics`` are the SST-1M optics, a missing effective focal length
    apart.

    Parameters
    ----------
    optics : ctapipe.instrument.OpticsDescription

    Returns
    -------
    bool
        True if ``optics`` equal those of the instrument resource (ctapipe's
        equality: focal lengths to 0.1 mm, mirror area to 1 m², size type,
        reflector shape, numbers of mirrors and tiles), the effective focal
        length not compared if it is NaN.

    Raises
    ------
    FileNotFoundError, OSError
        If the instrument resource is missing or invalid.
    """
    reference = sst1m_optics()
    effective = optics.effective_focal_length
    if np.isnan(effective.to_value(u.m)):
        effective = reference.effective_focal_length
    return (
        optics.name == reference.name
        and OpticsDescription(
            name=optics.name,
            size_type=optics.size_type,
            n_mirrors=optics.n_mirrors,
            equivalent_focal_length=optics.equivalent_focal_length,
            effective_focal_length=effective,
            mirror_area=optics.mirror_area,
            n_mirror_tiles=optics.n_mirror_tiles,
            reflector_shape=optics.reflector_shape,
        )
        == reference
    )


def fill_effective_focal_length(subarray):
    """
    Give SST-1M optics without an effective focal length the SST-1M one.

    The optics are modified in place, not replaced: the subarray may already
    have cached its unique optics and telescope types, which then stay right.
    The camera frames are not changed.

    Parameters
    ----------
    subarray : ctapipe.instrument.SubarrayDescription
        Modified in place.

    Returns
    -------
    filled : list[int]
        Telescopes whose effective focal length was set.
    unknown : list[int]
        Telescopes without an effective focal length whose optics are not the
        SST-1M ones: left without.

    Raises
    ------
    FileNotFoundError, OSError
        If the instrument resource is missing or invalid.
    """
    missing = {
        tel_id: telescope.optics
        for tel_id, telescope in subarray.tel.items()
        if np.isnan(telescope.optics.effective_focal_length.to_value(u.m))
    }
    # decided before any change: telescopes may share one optics object
    filled = [tel_id for tel_id, optics in missing.items() if is_sst1m_optics(optics)]
    unknown = [tel_id for tel_id in missing if tel_id not in filled]
    effective = sst1m_optics().effective_focal_length
    for tel_id in filled:
        missing[tel_id].effective_focal_length = effective.copy()
    return filled, unknown


def focal_length_mismatches(subarray):
    """
    SST-1M telescopes whose camera frame does not use the SST-1M focal length.

    Parameters
    ----------
    subarray : ctapipe.instrument.SubarrayDescription

    Returns
    -------
    dict[int, astropy.units.Quantity]
        tel_id -> focal length of its camera frame, for the telescopes with
        SST-1M optics (`is_sst1m_optics`) whose camera frame's focal length
        differs from `sst1m_focal_length` by more than 0.1 mm.

    Raises
    ------
    FileNotFoundError, OSError
        If the instrument resource is missing or invalid.
    """
    expected = sst1m_focal_length()
    mismatches = {}
    for tel_id, telescope in subarray.tel.items():
        frame = telescope.camera.geometry.frame
        if frame is None or not is_sst1m_optics(telescope.optics):
            continue
        if not u.isclose(frame.focal_length, expected, atol=0.1 * u.mm):
            mismatches[tel_id] = frame.focal_length.to(u.m)
    return mismatches
