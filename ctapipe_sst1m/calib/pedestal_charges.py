"""
Charge statistics of the pedestal events of a run, for the SST-1M cleaning.

The pedestal (internally triggered) events are extracted like shower events, and
the mean and standard deviation of each pixel's charge over the latest of them
tell how much NSB light a pixel sees. `~ctapipe_sst1m.io.SST1MEventSource` puts
them into ``monitoring.pixel_statistics.pedestal_image`` of every event, where
`~ctapipe_sst1m.image.SST1MImageCleaner` reads them.

Statistics of a few events are not used: from n events, a standard deviation
is known to about ``1 / sqrt(2 (n - 1))`` of itself, and the picture threshold
``mean + 2.5 std`` to ``sqrt(1/n + 2.5**2 / (2 (n - 1)))`` std. From 8 events
(the 2017 test run) that is 27 % and 0.71 std, and the threshold is 0.24 std
low on average (a standard deviation of few samples is biased low); from
`MIN_PEDESTAL_IMAGES` = 50, 10 % and 0.29 std (less than a third of the
pixel's own noise), 0.04 std low (Gaussian charges, 200000 trials).
"""

import numpy as np
from ctapipe.containers import StatisticsContainer
from ctapipe.core import TelescopeComponent

from ..instrument.constants import DIGICAM_N_SAMPLES
from .config_check import ConfigurationError, RangedInt
from .extractor_check import camera_calibrator, check_extractor_window
from .pedestals import SlidingPixelWindow

__all__ = [
    "MIN_PEDESTAL_IMAGES",
    "PedestalChargeMonitor",
    "invalidate_small_chunks",
]

#: fewest pedestal events whose charge statistics raise the picture thresholds
MIN_PEDESTAL_IMAGES = 50


def invalidate_small_chunks(statistics, min_events):
    """
    Mark the statistics taken over too few events as outliers, in place.

    Parameters
    ----------
    statistics : astropy.table.Table
        Chunk statistics as ctapipe's aggregators write them: ``n_events``
        and ``outlier_mask`` per chunk and pixel (n_chunks, n_channels,
        n_pixels), ``is_valid`` per chunk.
    min_events : int
        Fewest events of a pixel's statistics.

    Returns
    -------
    numpy.ndarray
        Boolean mask of the chunks all of whose pixels have too few events,
        which are marked not valid. ctapipe's HDF5MonitoringSource gives NaN
        for outliers, and SST1MImageCleaner the fixed thresholds for NaN.

    Raises
    ------
    KeyError
        If ``statistics`` lacks one of the columns.
    """
    few = np.asarray(statistics["n_events"]) < min_events
    statistics["outlier_mask"] = np.asarray(statistics["outlier_mask"]) | few
    all_few = few.reshape(len(few), -1).all(axis=1)
    statistics["is_valid"][all_few] = False
    return all_few


class PedestalChargeMonitor(TelescopeComponent):
    """
    Extracts pedestal events and keeps their per-pixel charge statistics.

    The charges are extracted with the image extractor and the invalid-pixel
    handler of the CameraCalibrator the hosting tool builds from the same
    configuration (`~ctapipe_sst1m.calib.camera_calibrator`): the pedestal
    charges are those of the pedestal images, whatever extractor the
    configuration chooses.

    Raises
    ------
    ConfigurationError
        At construction, if ``max_pedestal_images`` is below 1,
        ``min_pedestal_images`` below 2 or above ``max_pedestal_images``, or the
        window of the extractor does not fit the waveforms of a telescope of the
        subarray (`~ctapipe_sst1m.calib.check_extractor_window`).
    traitlets.TraitError
        If the configuration of the CameraCalibrator is invalid.
    """

    max_pedestal_images = RangedInt(
        1000,
        min=1,
        help="Number of latest pedestal events the statistics are taken over.",
    ).tag(config=True)

    min_pedestal_images = RangedInt(
        MIN_PEDESTAL_IMAGES,
        min=2,
        help=(
            "Fewest pedestal events the statistics are used from; with fewer, none "
            "are given and the cleaning keeps its fixed picture thresholds. From n "
            "events a standard deviation is known to about 1/sqrt(2(n-1)) of itself "
            "and the threshold mean + 2.5 std to about sqrt(1/n + 2.5^2/(2(n-1))) "
            "std; for Gaussian charges 27 % and 0.71 std from 8 events, 10 % and "
            "0.29 std (a third of the pixel's own noise) from 50."
        ),
    ).tag(config=True)

    def __init__(self, subarray, config=None, parent=None, **kwargs):
        super().__init__(subarray=subarray, config=config, parent=parent, **kwargs)
        if self.min_pedestal_images > self.max_pedestal_images:
            raise ConfigurationError(
                f"PedestalChargeMonitor.min_pedestal_images = "
                f"{self.min_pedestal_images}: above max_pedestal_images = "
                f"{self.max_pedestal_images}, the statistics would never be used; "
                "set PedestalChargeMonitor.min_pedestal_images to at most "
                f"{self.max_pedestal_images}"
            )
        calibrator = camera_calibrator(self, subarray)
        #: the image extractor of each telescope, the CameraCalibrator's
        self.extractors = {}
        for tel_id, telescope in subarray.tel.items():
            name = calibrator.image_extractor_type.tel[tel_id]
            self.extractors[tel_id] = calibrator.image_extractors[name]
            check_extractor_window(
                self.extractors[tel_id],
                tel_id,
                telescope.camera.readout.n_samples or DIGICAM_N_SAMPLES,
                camera=telescope.camera.name,
            )
        #: the CameraCalibrator's handler of invalid pixels, None for none
        self.invalid_pixel_handler = calibrator.invalid_pixel_handler
        self._windows = {}
        self._statistics = {}
        self._used = set()

    def add(self, tel_id, r1_waveform, invalid):
        """
        Add a pedestal event of ``tel_id``.

        Parameters
        ----------
        tel_id : int
        r1_waveform : numpy.ndarray
            Calibrated waveforms (n_pixels, n_samples).
        invalid : numpy.ndarray
            Pixels the CameraCalibrator treats as outliers.
        """
        n_pixels = len(r1_waveform)
        dl1 = self.extractors[tel_id](
            r1_waveform[np.newaxis],
            tel_id=tel_id,
            selected_gain_channel=np.zeros(n_pixels, dtype=np.int8),
            broken_pixels=invalid[np.newaxis],
        )
        image = dl1.image
        if self.invalid_pixel_handler is not None:
            image, _ = self.invalid_pixel_handler(
                tel_id, dl1.image, dl1.peak_time, invalid[np.newaxis]
            )
        if tel_id not in self._windows:
            self._windows[tel_id] = SlidingPixelWindow(n_pixels, self.max_pedestal_images)
        window = self._windows[tel_id]
        window.add(np.ravel(image))
        self._statistics.pop(tel_id, None)
        if len(window) == self.min_pedestal_images and tel_id not in self._used:
            self._used.add(tel_id)
            self.log.info(
                "tel %d: pedestal charge statistics from %d pedestal events on",
                tel_id,
                len(window),
            )

    def statistics(self, tel_id):
        """
        Current statistics of ``tel_id``.

        Returns
        -------
        ctapipe.containers.StatisticsContainer or None
            None before ``min_pedestal_images`` pedestal events.
        """
        if self.n_images(tel_id) < self.min_pedestal_images:
            return None
        # one container per pedestal event, shared by the events until the next
        if tel_id not in self._statistics:
            window = self._windows[tel_id]
            self._statistics[tel_id] = StatisticsContainer(
                mean=window.mean[np.newaxis], std=window.std[np.newaxis]
            )
        return self._statistics[tel_id]

    def n_images(self, tel_id):
        """Number of pedestal images in the statistics of ``tel_id``."""
        window = self._windows.get(tel_id)
        return 0 if window is None else len(window)
