"""
Containers for the SST-1M data that ctapipe's data model has no place for.

ctapipe's DataWriter ignores fields it does not know, so these travel with the
event for SST-1M code (calibration, monitoring) and for users of the source.
"""

import enum

import numpy as np
from ctapipe.containers import ArrayEventContainer, EventType
from ctapipe.core import Container, Field, Map

__all__ = [
    "DigiCamConfigContainer",
    "DigiCamEventType",
    "SST1MArrayEventContainer",
    "SST1MCameraContainer",
    "SST1MContainer",
    "ctapipe_event_type",
]


class DigiCamEventType(enum.IntFlag):
    """Bits of the DigiCam ``event_type`` field (trigger algorithms and tags)."""

    UNKNOWN = 0x0
    PATCH7 = 0x1
    PATCH19 = 0x2
    MUON_TRIGGER = 0x4
    #: internal (random, pedestal) or external trigger
    INTERNAL = 0x8
    EXTMSTR = 0x10
    BIT5 = 0x20
    BIT6 = 0x40
    CONTINUOUS = 0x80
    #: tags added by the camera server, not triggers
    MUON_DETECT = 0x10000
    HILLAS = 0x20000


_SHOWER_TRIGGERS = DigiCamEventType.PATCH7 | DigiCamEventType.PATCH19
_SHOWER_TRIGGERS |= DigiCamEventType.EXTMSTR


def ctapipe_event_type(flags, dark_run=False):
    """
    The ctapipe `~ctapipe.containers.EventType` of a DigiCam event.

    Bits are tested, not the whole value (sst1mpipe's ``event_type == 8`` misses
    pedestal events that carry a camera-server tag such as ``HILLAS``).

    Parameters
    ----------
    flags : int
        DigiCam ``event_type``.
    dark_run : bool
        Whether the run is a dark run (lid closed): its internal triggers are
        dark pedestals rather than sky pedestals.

    Returns
    -------
    EventType
        INTERNAL -> SKY_PEDESTAL (DARK_PEDESTAL in dark runs); PATCH7, PATCH19,
        EXTMSTR -> SUBARRAY (a shower trigger); MUON_TRIGGER alone -> MUON;
        anything else -> UNKNOWN.
    """
    if flags & DigiCamEventType.INTERNAL:
        return EventType.DARK_PEDESTAL if dark_run else EventType.SKY_PEDESTAL
    if flags & _SHOWER_TRIGGERS:
        return EventType.SUBARRAY
    if flags & DigiCamEventType.MUON_TRIGGER:
        return EventType.MUON
    return EventType.UNKNOWN


class SST1MCameraContainer(Container):
    """DigiCam event data beyond ctapipe's R0/R1 containers, in software pixel order."""

    default_prefix = "sst1m"

    camera_event_number = Field(-1, "DigiCam event counter (eventNumber)", type=np.int64)
    array_event_number = Field(
        -1, "SWAT array event number (arrayEvtNum), -1 if absent", type=np.int64
    )
    event_type_flags = Field(
        0, "DigiCam event_type bits, see DigiCamEventType", type=np.uint32
    )
    local_camera_clock = Field(
        -1, "Camera clock (local_time_sec * 1e9 + local_time_nanosec)", unit="ns"
    )
    pixel_flags = Field(None, "DigiCam pixel flags (0: pixel disabled)", dtype=np.uint16)
    digicam_baseline = Field(
        None, "On-board baseline per pixel (DigiCam sends 16 x baseline)", unit="adu"
    )
    voltage_drop_factor = Field(
        None, "NSB voltage-drop factor the charges were divided by (scalar or per pixel)"
    )
    trigger_input_traces = Field(
        None, "Trigger input per patch and sample, shape (432, n_samples)"
    )
    trigger_output_patch7 = Field(
        None, "Patch-7 trigger output bits, shape (432, n_samples)"
    )
    trigger_output_patch19 = Field(
        None, "Patch-19 trigger output bits, shape (432, n_samples)"
    )


class SST1MContainer(Container):
    """SST-1M specific data of an array event."""

    tel = Field(
        default_factory=lambda: Map(SST1MCameraContainer),
        description="SST-1M data per telescope",
    )


class SST1MArrayEventContainer(ArrayEventContainer):
    """ctapipe's ArrayEventContainer with SST-1M specific data."""

    sst1m = Field(default_factory=SST1MContainer, description="SST-1M specific data")


class DigiCamConfigContainer(Container):
    """
    The DigicamConfig table of current-layout raw files (one row per run).

    Arrays hold one entry per DigiCam board (39).
    """

    default_prefix = "digicam"

    protocol_vers = Field(None, "Protocol version per board")
    sn = Field(None, "Serial number per board")
    hv = Field(None, "HV state per board")
    gateware_rev = Field(None, "Gateware revision per board")
    gateware_vers = Field(None, "Gateware version per board")
    gateware_code = Field(None, "Gateware code per board")
    gateware_card_type = Field(None, "Gateware card type per board")
    firmware_rev = Field(None, "Firmware revision per board")
    firmware_vers = Field(None, "Firmware version per board")
    firmware_code = Field(None, "Firmware code per board")
    firmware_card_type = Field(None, "Firmware card type per board")
    digicam_time_sec = Field(None, "DigiCam time of the configuration, s part")
    digicam_time_nanosec = Field(None, "DigiCam time of the configuration, ns part")
