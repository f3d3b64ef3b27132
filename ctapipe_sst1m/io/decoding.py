"""
Decoding DigiCam events into plain numpy records.

The source fills ctapipe containers from `DecodedEvent` records rather than from
protozfits messages: one place knows the DigiCam message layout.
"""

from itertools import batched
from typing import NamedTuple

import numpy as np

__all__ = ["DecodedEvent", "InProcessDecoder", "check_decoded", "decode", "decode_files"]


class DecodedEvent(NamedTuple):
    """The fields of a DigiCam CameraEvent that the source uses, as numpy."""

    telescope_id: int
    event_number: int
    #: SWAT array event number, 0 if absent
    array_event_number: int
    event_type: int
    seconds: int
    nanoseconds: int
    #: int16, hardware pixel order, flattened (n_pixels * n_samples)
    samples: np.ndarray
    pixel_index: np.ndarray
    baselines: np.ndarray
    pixel_flags: np.ndarray
    trigger_input: np.ndarray | None = None
    trigger_patch7: np.ndarray | None = None
    trigger_patch19: np.ndarray | None = None


def decode(zevent, with_trigger=False):
    """
    A protozfits CameraEvent as a `DecodedEvent`.

    Parameters
    ----------
    zevent : protozfits CameraEvent
    with_trigger : bool
        Also keep the packed trigger traces.

    Returns
    -------
    DecodedEvent
    """
    waveforms = zevent.hiGain.waveforms
    trigger = (
        (
            zevent.trigger_input_traces,
            zevent.trigger_output_patch7,
            zevent.trigger_output_patch19,
        )
        if with_trigger
        else ()
    )
    return DecodedEvent(
        zevent.telescopeID,
        zevent.eventNumber,
        zevent.arrayEvtNum or 0,
        zevent.event_type,
        zevent.local_time_sec,
        zevent.local_time_nanosec,
        waveforms.samples,
        waveforms.pixelsIndices,
        waveforms.baselines,
        zevent.pixels_flags,
        *trigger,
    )


def decode_files(paths, with_trigger=False, block_size=64):
    """
    Decode the events of ``paths`` in this process.

    Yields
    ------
    tuple[Path, list[DecodedEvent]]
        Blocks of up to ``block_size`` events of one file.
    """
    # imported here: the parent of a decoder process never loads protozfits
    import protozfits

    for path in paths:
        with protozfits.File(str(path)) as zfile:
            for block in batched(zfile.Events, block_size):
                yield path, [decode(e, with_trigger) for e in block]


class InProcessDecoder:
    """
    The interface of `~ctapipe_sst1m.io.decoder_process.DecoderProcess`,
    decoding in this process: for debugging, profiling and platforms without
    Linux's memfd. A damaged file may crash the interpreter.

    Parameters
    ----------
    paths : list[pathlib.Path]
    with_trigger : bool
    config_fields : list[str] or None
        Fields of the first file's DigicamConfig row; None: no such table.
    """

    pid = None

    def __init__(self, paths, with_trigger=False, config_fields=None):
        self.paths = list(paths)
        self.with_trigger = with_trigger
        self._config_fields = config_fields

    def start(self):
        """Nothing to start."""

    def ready(self):
        """False: decoding here blocks."""
        return False

    def digicam_config(self):
        """The first file's DigicamConfig row as a dict (None without one)."""
        if self._config_fields is None:
            return None
        import protozfits

        with protozfits.File(str(self.paths[0])) as zfile:
            row = next(iter(zfile.DigicamConfig))
            return {k: getattr(row, k) for k in self._config_fields if hasattr(row, k)}

    def events(self):
        """
        Yield the decoded events of all files, in order.

        Yields
        ------
        tuple[int, DecodedEvent]
            Index of the event's file in ``paths``, and the event.
        """
        for index, path in enumerate(self.paths):
            for _, block in decode_files([path], self.with_trigger):
                for event in block:
                    yield index, event

    def close(self):
        """Nothing to stop."""


def check_decoded(decoded, n_pixels, n_samples):
    """
    What is wrong with the arrays of a decoded event, '' if nothing.

    protozfits may decode a damaged file without an error, into events with
    too few samples, or none (two swapped words of the data, a wrong heap
    pointer): such an event must be refused, not calibrated.

    Parameters
    ----------
    decoded : DecodedEvent
    n_pixels, n_samples : int
        The camera's.

    Returns
    -------
    str
    """
    for name in ("pixel_flags", "pixel_index", "baselines"):
        size = len(getattr(decoded, name))
        if size != n_pixels:
            return f"{size} {name.replace('_', ' ')}, not {n_pixels}"
    size = decoded.samples.size
    if size != n_pixels * n_samples:
        return f"{size} samples, not {n_pixels} pixels x {n_samples}"
    if decoded.pixel_index.max() >= n_pixels:
        return f"pixel ids up to {decoded.pixel_index.max()}, not below {n_pixels}"
    return ""
