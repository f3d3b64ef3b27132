"""
SST-1M image cleaning: tailcuts with picture thresholds that follow the NSB.

Each pixel's picture threshold is ``max(picture_threshold_pe, mean + stdev_scaling
x std)`` of the charges of pedestal events in that pixel, so that pixels under
bright stars or high NSB need more light to seed an image. Then ctapipe's
tailcuts, and a time cleaning that keeps pixels with a selected neighbour
arriving within ``time_limit_ns``. This is sst1mpipe's ``ImageCleanerSST``.

The pedestal statistics come, as for ctapipe's NSBImageCleaner, from the
camera monitoring of the event
(``monitoring.pixel_statistics.pedestal_image``): `~ctapipe_sst1m.io.SST1MEventSource`
fills it while streaming, and ``ctapipe-process --monitoring-source`` can fill it
from a file of per-interval statistics.
"""

import numpy as np
from ctapipe.core.traits import (
    BoolTelescopeParameter,
    FloatTelescopeParameter,
    IntTelescopeParameter,
)
from ctapipe.image.cleaning import (
    ImageCleaner,
    apply_time_delta_cleaning,
    tailcuts_clean,
)
from ctapipe.image.morphology import number_of_islands

__all__ = ["SST1MImageCleaner", "picture_thresholds"]


def picture_thresholds(minimum, stdev_scaling, pedestal_mean, pedestal_std):
    """
    Per-pixel picture thresholds from the charges of pedestal events.

    Parameters
    ----------
    minimum : float
        Lowest picture threshold, p.e.
    stdev_scaling : float
    pedestal_mean, pedestal_std : numpy.ndarray or None
        Mean and standard deviation of each pixel's pedestal charge, p.e.

    Returns
    -------
    float or numpy.ndarray
        ``minimum`` without statistics; else
        ``max(minimum, mean + stdev_scaling * std)`` per pixel, ``minimum`` where
        the statistics are not finite.
    """
    if pedestal_mean is None or pedestal_std is None:
        return minimum
    raised = pedestal_mean + stdev_scaling * pedestal_std
    return np.where(np.isfinite(raised), np.maximum(minimum, raised), minimum)


def _single_gain(values):
    """Statistics of DigiCam's one gain channel: (n_channels, n_pixels) -> (n_pixels,)."""
    if values is None:
        return None
    values = np.asarray(values)
    return values[0] if values.ndim == 2 else values


class SST1MImageCleaner(ImageCleaner):
    """
    Tailcuts cleaning with per-pixel picture thresholds raised by the NSB.

    Without pedestal statistics in the event's monitoring (simulations; data
    before the first pedestal event, or runs without any, which the source warns
    about) the picture threshold is ``picture_threshold_pe`` everywhere: for
    simulations this is sst1mpipe's ``ImageCleanerSST_MC``.
    """

    picture_threshold_pe = FloatTelescopeParameter(
        default_value=8.0, help="Lowest picture threshold, p.e."
    ).tag(config=True)

    stdev_scaling = FloatTelescopeParameter(
        default_value=2.5,
        help=(
            "A pixel's picture threshold is at least its mean pedestal charge plus "
            "this many standard deviations of it."
        ),
    ).tag(config=True)

    boundary_threshold_pe = FloatTelescopeParameter(
        default_value=4.0, help="Boundary threshold, p.e."
    ).tag(config=True)

    min_picture_neighbors = IntTelescopeParameter(
        default_value=2,
        help="Picture pixels need at least this many neighbours above the threshold.",
    ).tag(config=True)

    keep_isolated_pixels = BoolTelescopeParameter(
        default_value=False,
        help="Keep picture pixels without neighbours above the boundary threshold.",
    ).tag(config=True)

    time_limit_ns = FloatTelescopeParameter(
        default_value=8.0,
        help=(
            "Time cleaning: a pixel survives if enough selected neighbours arrive "
            "within this time of it, ns. 0 disables the time cleaning."
        ),
    ).tag(config=True)

    min_time_neighbors = IntTelescopeParameter(
        default_value=1,
        help="Time cleaning: number of selected neighbours needed within the limit.",
    ).tag(config=True)

    only_main_island = BoolTelescopeParameter(
        default_value=False, help="Keep only the largest island of the image."
    ).tag(config=True)

    def __init__(self, subarray, config=None, parent=None, **kwargs):
        super().__init__(subarray=subarray, config=config, parent=parent, **kwargs)
        self._warned = set()

    def __call__(self, tel_id, image, arrival_times=None, *, monitoring=None):
        """
        Clean ``image``; see `ctapipe.image.ImageCleaner.__call__`.

        Returns
        -------
        numpy.ndarray
            Boolean mask of the pixels kept.
        """
        geometry = self.subarray.tel[tel_id].camera.geometry
        mean, std = None, None
        if monitoring is not None:
            statistics = monitoring.pixel_statistics.pedestal_image
            mean, std = _single_gain(statistics.mean), _single_gain(statistics.std)
        if (mean is None or std is None) and tel_id not in self._warned:
            self._warned.add(tel_id)
            self.log.info(
                "tel %d: no pedestal charge statistics, picture threshold fixed at "
                "%.1f p.e. until there are",
                tel_id,
                self.picture_threshold_pe.tel[tel_id],
            )
        thresholds = picture_thresholds(
            self.picture_threshold_pe.tel[tel_id],
            self.stdev_scaling.tel[tel_id],
            mean,
            std,
        )
        mask = tailcuts_clean(
            geometry,
            image,
            picture_thresh=thresholds,
            boundary_thresh=self.boundary_threshold_pe.tel[tel_id],
            keep_isolated_pixels=self.keep_isolated_pixels.tel[tel_id],
            min_number_picture_neighbors=self.min_picture_neighbors.tel[tel_id],
        )
        time_limit = self.time_limit_ns.tel[tel_id]
        if arrival_times is not None and time_limit > 0 and mask.any():
            mask = apply_time_delta_cleaning(
                geometry,
                mask,
                arrival_times,
                min_number_neighbors=self.min_time_neighbors.tel[tel_id],
                time_limit=time_limit,
            )
        if self.only_main_island.tel[tel_id] and mask.any():
            _, labels = number_of_islands(geometry, mask)
            largest = np.argmax(np.bincount(labels[mask]))
            mask = labels == largest
        return mask
