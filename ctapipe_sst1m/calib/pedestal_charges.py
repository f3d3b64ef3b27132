"""
Charge statistics of the pedestal events of a run, for the SST-1M cleaning.

The pedestal (internally triggered) events are extracted like shower events, and
the mean and standard deviation of each pixel's charge over the latest of them
tell how much NSB light a pixel sees. `~ctapipe_sst1m.io.SST1MEventSource` puts
them into ``monitoring.pixel_statistics.pedestal_image`` of every event, where
`~ctapipe_sst1m.image.SST1MImageCleaner` reads them.
"""

import numpy as np
from ctapipe.containers import StatisticsContainer
from ctapipe.core import TelescopeComponent
from ctapipe.core.traits import ComponentName
from ctapipe.image.extractor import ImageExtractor
from ctapipe.image.invalid_pixels import NeighborAverage

from ..instrument.constants import DIGICAM_N_SAMPLES
from .config_check import RangedInt
from .extractor_check import check_extractor_window

__all__ = ["PedestalChargeMonitor", "RunningPixelStatistics"]


class RunningPixelStatistics:
    """
    Mean and standard deviation per pixel over the latest ``max_images`` images.

    Fixed memory: a ring buffer of images and running sums.
    """

    def __init__(self, n_pixels, max_images):
        self._images = np.zeros((max_images, n_pixels))
        self._sum = np.zeros(n_pixels)
        self._sum2 = np.zeros(n_pixels)
        self.n_images = 0
        self._next = 0
        self._statistics = None

    def add(self, image):
        """Add one image (n_pixels,)."""
        if self.n_images == len(self._images):
            old = self._images[self._next]
            self._sum -= old
            self._sum2 -= old**2
        else:
            self.n_images += 1
        self._images[self._next] = image
        self._sum += image
        self._sum2 += image**2
        self._next = (self._next + 1) % len(self._images)
        self._statistics = None

    def statistics(self):
        """
        Mean and std of the images, None if empty.

        Returns
        -------
        ctapipe.containers.StatisticsContainer or None
            ``mean`` and ``std`` shaped (1, n_pixels), ctapipe's (n_channels,
            n_pixels) for a single-gain camera.
        """
        if self.n_images == 0:
            return None
        if self._statistics is None:
            mean = self._sum / self.n_images
            variance = np.maximum(self._sum2 / self.n_images - mean**2, 0.0)
            self._statistics = StatisticsContainer(
                mean=mean[np.newaxis], std=np.sqrt(variance)[np.newaxis]
            )
        return self._statistics


class PedestalChargeMonitor(TelescopeComponent):
    """
    Extracts pedestal events and keeps their per-pixel charge statistics.

    Raises
    ------
    ConfigurationError
        At construction, if ``max_pedestal_images`` is below 1 or the window of
        the extractor does not fit the waveforms of a telescope of the subarray
        (`~ctapipe_sst1m.calib.check_extractor_window`).
    """

    image_extractor_type = ComponentName(
        ImageExtractor,
        default_value="LocalPeakWindowSum",
        help=(
            "Extractor of the pedestal charges: the one of the shower images "
            "(configure it at top level, e.g. LocalPeakWindowSum, to share it)."
        ),
    ).tag(config=True)

    max_pedestal_images = RangedInt(
        1000,
        min=1,
        help="Number of latest pedestal events the statistics are taken over.",
    ).tag(config=True)

    def __init__(self, subarray, config=None, parent=None, **kwargs):
        super().__init__(subarray=subarray, config=config, parent=parent, **kwargs)
        self.extractor = ImageExtractor.from_name(
            self.image_extractor_type, subarray=subarray, parent=self
        )
        # its settings may differ from the images' (nested under this class)
        for tel_id, telescope in subarray.tel.items():
            check_extractor_window(
                self.extractor,
                tel_id,
                telescope.camera.readout.n_samples or DIGICAM_N_SAMPLES,
                camera=telescope.camera.name,
            )
        self.interpolator = NeighborAverage(subarray, parent=self)
        self._statistics = {}

    def add(self, tel_id, r1_waveform, invalid):
        """
        Add a pedestal event of ``tel_id``.

        Parameters
        ----------
        tel_id : int
        r1_waveform : numpy.ndarray
            Calibrated waveforms (n_pixels, n_samples).
        invalid : numpy.ndarray
            Pixels whose charge is interpolated from their neighbours.
        """
        n_pixels = len(r1_waveform)
        dl1 = self.extractor(
            r1_waveform[np.newaxis],
            tel_id=tel_id,
            selected_gain_channel=np.zeros(n_pixels, dtype=np.int8),
            broken_pixels=invalid[np.newaxis],
        )
        image, _ = self.interpolator(
            tel_id, dl1.image, dl1.peak_time, invalid[np.newaxis]
        )
        if tel_id not in self._statistics:
            self._statistics[tel_id] = RunningPixelStatistics(
                n_pixels, self.max_pedestal_images
            )
        self._statistics[tel_id].add(image)

    def statistics(self, tel_id):
        """Current statistics of ``tel_id``, None before the first pedestal event."""
        running = self._statistics.get(tel_id)
        return None if running is None else running.statistics()

    def n_images(self, tel_id):
        """Number of pedestal images in the statistics of ``tel_id``."""
        running = self._statistics.get(tel_id)
        return 0 if running is None else running.n_images
