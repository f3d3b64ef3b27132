"""
Charge-extraction windows checked against the samples of the camera.

ctapipe's extractors clip their window to the waveform without a word: a window
of width 0, or one that ends before the peak it is placed around, gives images
of zeros, and a window wider than the waveform sums everything. The valid
ranges follow how ``ctapipe.image.extractor`` uses the settings:

* ``window_width``: the window holds ``window_width`` samples, so it must be
  between 1 and the number of samples (times ``upsampling`` for extractors that
  upsample the waveforms first, as ``FlashCamExtractor``);
* ``window_shift`` of the extractors that place the window around a peak they
  find (``LocalPeakWindowSum``, ``NeighborPeakWindowSum``,
  ``GlobalPeakWindowSum``, ``FlashCamExtractor``...): the window runs from
  ``peak - window_shift`` to ``peak - window_shift + window_width`` (excluded),
  so it holds the peak, and fits in the waveform for some peak positions, only
  if ``0 <= window_shift <= window_width - 1``;
* ``FixedWindowSum``, whose window is always from ``peak_index - window_shift``
  over ``window_width`` samples: that window must lie within the waveform,
  ``0 <= peak_index - window_shift <= n_samples - window_width``.

``SlidingWindowMaxSum`` has a width only; ``TwoPassWindowSum``,
``FullWaveformSum`` and ``VarianceExtractor`` have no window settings.
"""

from copy import deepcopy

from ctapipe.calib import CameraCalibrator
from ctapipe.core import Tool
from traitlets.config import Config

from .config_check import ConfigurationError, out_of_range_message

__all__ = ["camera_calibrator", "check_extractor_window", "check_image_extractor"]


def _value(extractor, name, tel_id):
    """A setting of ``extractor`` for ``tel_id``, per-telescope or not."""
    value = getattr(extractor, name)
    return value.tel[tel_id] if hasattr(value, "tel") else value


def check_extractor_window(extractor, tel_id, n_samples, camera="the camera"):
    """
    Check the window settings of an image extractor for one telescope.

    The valid ranges are those of the module docstring; extractors without
    ``window_width`` pass.

    Parameters
    ----------
    extractor : ctapipe.image.extractor.ImageExtractor
        A configured extractor.
    tel_id : int
        Telescope whose settings are checked.
    n_samples : int
        Waveform samples of the telescope's camera (50 for DigiCam).
    camera : str
        Name of the camera, for the message.

    Raises
    ------
    ConfigurationError
        For the first setting out of its range, e.g. ``LocalPeakWindowSum.
        window_width = 60 for tel 22: must be between 1 and 50 (the 50 samples
        of DigiCam); set LocalPeakWindowSum.window_width to a value between 1
        and 50``.
    KeyError
        If ``tel_id`` is not in the extractor's subarray.
    """
    if not hasattr(extractor, "window_width"):
        return
    name = type(extractor).__name__
    where = f" for tel {tel_id}"
    samples = n_samples
    samples_text = f"the {n_samples} samples of {camera}"
    if hasattr(extractor, "upsampling"):
        upsampling = _value(extractor, "upsampling", tel_id)
        if upsampling < 1:
            raise ConfigurationError(
                out_of_range_message(
                    f"{name}.upsampling", upsampling, 1, None, where=where
                )
            )
        samples = n_samples * upsampling
        samples_text = f"the {n_samples} samples of {camera} upsampled {upsampling} times"

    width = _value(extractor, "window_width", tel_id)
    if not 1 <= width <= samples:
        raise ConfigurationError(
            out_of_range_message(
                f"{name}.window_width",
                width,
                1,
                samples,
                where=where,
                why=f" ({samples_text})",
            )
        )
    if not hasattr(extractor, "window_shift"):
        return

    shift = _value(extractor, "window_shift", tel_id)
    if hasattr(extractor, "peak_index"):
        start = _value(extractor, "peak_index", tel_id) - shift
        if not 0 <= start <= samples - width:
            raise ConfigurationError(
                f"{name}.peak_index - {name}.window_shift = {start}{where}: must be "
                f"between 0 and {samples - width} so that the window of "
                f"{name}.window_width = {width} samples lies within {samples_text}; "
                f"set {name}.peak_index and {name}.window_shift so that "
                f"peak_index - window_shift is between 0 and {samples - width}"
            )
    elif not 0 <= shift <= width - 1:
        raise ConfigurationError(
            out_of_range_message(
                f"{name}.window_shift",
                shift,
                0,
                width - 1,
                where=where,
                why=(
                    f" (the window of {name}.window_width = {width} samples starts "
                    "window_shift samples before the peak and must hold it)"
                ),
            )
        )


def camera_calibrator(component, subarray):
    """
    A new CameraCalibrator configured as the one of the tool hosting ``component``.

    ctapipe-process builds its `ctapipe.calib.CameraCalibrator` with the tool as
    parent, which reads the ``CameraCalibrator`` sections at top level and under
    the tool's own section, and the extractor sections at top level and under
    those. This one is built from ``component.config`` with the tool's
    ``CameraCalibrator`` section merged over the top-level one, which resolves
    ``image_extractor_type``, the extractor settings and
    ``invalid_pixel_handler_type`` the same way: its extractors are those of the
    images.

    Parameters
    ----------
    component : ctapipe.core.Component
        A component of the hosting tool, e.g. the event source; or a component
        without one, configured as the CameraCalibrator used with it.
    subarray : ctapipe.instrument.SubarrayDescription

    Returns
    -------
    ctapipe.calib.CameraCalibrator

    Raises
    ------
    traitlets.TraitError
        If the configuration of the calibrator or of its extractors is invalid,
        e.g. an unknown ``image_extractor_type``.
    """
    config = deepcopy(component.config)
    top = component
    while top.parent is not None:
        top = top.parent
    # parents are weak proxies: their class is asked for, not their type
    if isinstance(top, Tool):
        tool_section = component.config.get(top.__class__.__name__) or {}
        nested = tool_section.get("CameraCalibrator")
        if nested:
            config.merge(Config({"CameraCalibrator": nested}))
    return CameraCalibrator(subarray, config=config)


def check_image_extractor(config, subarray, tel_id, n_samples):
    """
    Check the window of the image extractor ctapipe's CameraCalibrator would use.

    Builds a `ctapipe.calib.CameraCalibrator` from the configuration, as
    ctapipe-process does, so that its ``image_extractor_type`` (default
    ``NeighborPeakWindowSum``, per telescope) and the extractor settings are
    resolved as they will be, at top level (``LocalPeakWindowSum``) or nested
    (``CameraCalibrator.LocalPeakWindowSum``). Then `check_extractor_window`.

    Parameters
    ----------
    config : traitlets.config.Config
        The configuration, e.g. ``self.config`` of the event source.
    subarray : ctapipe.instrument.SubarrayDescription
    tel_id : int
        Telescope of the run.
    n_samples : int
        Waveform samples of its camera (50 for DigiCam).

    Raises
    ------
    ConfigurationError
        If a window setting is out of its range, naming it (see
        `check_extractor_window`).
    traitlets.TraitError
        If the configuration of the calibrator or of the extractor is invalid,
        e.g. an unknown ``image_extractor_type``.
    """
    calibrator = CameraCalibrator(subarray, config=config)
    name = calibrator.image_extractor_type.tel[tel_id]
    check_extractor_window(
        calibrator.image_extractors[name],
        tel_id,
        n_samples,
        camera=subarray.tel[tel_id].camera.name,
    )
