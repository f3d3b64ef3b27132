"""
SST-1M image cleaning: tailcuts with picture thresholds that follow the NSB.

Each pixel's picture threshold is ``max(picture_threshold_pe, mean + stdev_scaling
x std)`` of the charges of pedestal events in that pixel, so that pixels under
bright stars or high NSB need more light to seed an image. Then ctapipe's
tailcuts, and a time cleaning that keeps pixels with a selected neighbour
arriving within ``time_limit_ns``. This is sst1mpipe's ``ImageCleanerSST``,
including its NSB-level bins of settings.

The pedestal statistics come, as for ctapipe's NSBImageCleaner, from the
camera monitoring of the event
(``monitoring.pixel_statistics.pedestal_image``): `~ctapipe_sst1m.io.SST1MEventSource`
fills it while streaming, and ``ctapipe-process --monitoring-source`` can fill it
from a file of per-interval statistics.
"""

import numbers

import numpy as np
from ctapipe.core.traits import (
    BoolTelescopeParameter,
    Dict,
    FloatTelescopeParameter,
    IntTelescopeParameter,
    List,
)
from ctapipe.image.cleaning import (
    ImageCleaner,
    apply_time_delta_cleaning,
    tailcuts_clean,
)
from ctapipe.image.morphology import number_of_islands

from ..calib.config_check import (
    ConfigurationError,
    check_telescope_parameter,
    in_range,
    out_of_range_message,
)

__all__ = ["BIN_SETTINGS", "SST1MImageCleaner", "picture_thresholds"]

#: the settings an NSB bin can override
BIN_SETTINGS = (
    "picture_threshold_pe",
    "stdev_scaling",
    "boundary_threshold_pe",
    "min_picture_neighbors",
    "keep_isolated_pixels",
    "time_limit_ns",
    "min_time_neighbors",
    "only_main_island",
)
#: numeric settings that cannot be negative: a negative threshold, scaling or
#: time limit keeps every pixel, a negative number of neighbours means nothing
NON_NEGATIVE_SETTINGS = (
    "picture_threshold_pe",
    "stdev_scaling",
    "boundary_threshold_pe",
    "time_limit_ns",
    "min_picture_neighbors",
    "min_time_neighbors",
)
#: settings that count neighbours: above the most neighbours a pixel has, no
#: pixel would survive
NEIGHBOR_SETTINGS = ("min_picture_neighbors", "min_time_neighbors")


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


def _is_number(value):
    """A real number, not a bool (YAML reads ``yes`` as True)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


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
    with fewer pedestal events than the source needs for them, which it warns
    about; a chunk of statistics marked invalid, whose values are all NaN) the
    picture threshold is ``picture_threshold_pe`` everywhere: for simulations
    this is sst1mpipe's ``ImageCleanerSST_MC``. Pixels whose statistics are NaN
    keep it as well.

    Raises
    ------
    ConfigurationError
        At construction, for a threshold, scaling or time limit below 0, a number
        of neighbours below 0 or above the most neighbours a pixel of the
        subarray's cameras has (6 for DigiCam), or an invalid ``nsb_bins`` entry;
        the settings of the NSB bins have the same ranges.
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

    nsb_bins = List(
        Dict(),
        default_value=[],
        help=(
            "NSB-level bins with their own settings: a list of "
            "{min_nsb_level: <p.e.>, tel_id: <optional>, <setting>: <value>, ...}. "
            "The NSB level is the mean pedestal charge over the pixels; the bin with "
            "the highest min_nsb_level not above it overrides the settings above, "
            "e.g. [{tel_id: 22, min_nsb_level: 2.4287, picture_threshold_pe: 9}]."
        ),
    ).tag(config=True)

    def __init__(self, subarray, config=None, parent=None, **kwargs):
        super().__init__(subarray=subarray, config=config, parent=parent, **kwargs)
        self._warned = set()
        # neighbours per pixel: row lengths of the sparse neighbour matrix
        max_neighbors = max(
            int(np.diff(camera.geometry.neighbor_matrix_sparse.indptr).max())
            for camera in subarray.camera_types
        )
        self._ranges = {name: (0, None, "") for name in NON_NEGATIVE_SETTINGS}
        for name in NEIGHBOR_SETTINGS:
            self._ranges[name] = (0, max_neighbors, " (the most neighbours a pixel has)")
        for name, (low, high, why) in self._ranges.items():
            check_telescope_parameter(self, name, low, high, why=why)
        for i, nsb_bin in enumerate(self.nsb_bins):
            unknown = set(nsb_bin) - set(BIN_SETTINGS) - {"min_nsb_level", "tel_id"}
            if unknown or "min_nsb_level" not in nsb_bin:
                raise ConfigurationError(
                    f"SST1MImageCleaner.nsb_bins: {nsb_bin} needs min_nsb_level and "
                    f"may set tel_id and {BIN_SETTINGS}; unknown: {sorted(unknown)}; "
                    "set each entry of SST1MImageCleaner.nsb_bins to "
                    "{min_nsb_level: <p.e.>, <setting>: <value>, ...}"
                )
            self._check_bin(f"SST1MImageCleaner.nsb_bins[{i}]", nsb_bin)

    def _check_bin(self, key, nsb_bin):
        """An NSB bin's settings, in the ranges of the traits they override."""
        level = nsb_bin["min_nsb_level"]
        if not _is_number(level):
            raise ConfigurationError(
                f"{key}.min_nsb_level = {level!r}: must be a number (p.e.); set "
                f"{key}.min_nsb_level to the mean pedestal charge from which the bin "
                "applies"
            )
        for name, (low, high, why) in self._ranges.items():
            value = nsb_bin.get(name, low)
            if not (_is_number(value) and in_range(value, low, high)):
                raise ConfigurationError(
                    out_of_range_message(f"{key}.{name}", value, low, high, why=why)
                )

    def settings(self, tel_id, nsb_level=None):
        """
        The cleaning settings of ``tel_id`` at ``nsb_level``.

        Parameters
        ----------
        tel_id : int
        nsb_level : float or None
            Mean pedestal charge over the pixels, p.e.; None: no NSB bin applies.

        Returns
        -------
        dict
        """
        settings = {name: getattr(self, name).tel[tel_id] for name in BIN_SETTINGS}
        if nsb_level is None:
            return settings
        bins = [
            b
            for b in self.nsb_bins
            if b.get("tel_id", tel_id) == tel_id and b["min_nsb_level"] <= nsb_level
        ]
        if bins:
            chosen = max(bins, key=lambda b: b["min_nsb_level"])
            settings.update({k: v for k, v in chosen.items() if k in BIN_SETTINGS})
        return settings

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
        # ctapipe's HDF5MonitoringSource gives NaN for the outliers of a chunk:
        # all of them in a chunk of too few pedestal events
        if mean is not None and not np.isfinite(mean).any():
            mean, std = None, None
        if (mean is None or std is None) and tel_id not in self._warned:
            self._warned.add(tel_id)
            self.log.info(
                "tel %d: no pedestal charge statistics, picture threshold fixed at "
                "%.1f p.e. until there are",
                tel_id,
                self.picture_threshold_pe.tel[tel_id],
            )
        nsb_level = None if mean is None else float(np.nanmean(mean))
        settings = self.settings(tel_id, nsb_level)
        thresholds = picture_thresholds(
            settings["picture_threshold_pe"], settings["stdev_scaling"], mean, std
        )
        mask = tailcuts_clean(
            geometry,
            image,
            picture_thresh=thresholds,
            boundary_thresh=settings["boundary_threshold_pe"],
            keep_isolated_pixels=settings["keep_isolated_pixels"],
            min_number_picture_neighbors=settings["min_picture_neighbors"],
        )
        time_limit = settings["time_limit_ns"]
        if arrival_times is not None and time_limit > 0 and mask.any():
            mask = apply_time_delta_cleaning(
                geometry,
                mask,
                arrival_times,
                min_number_neighbors=settings["min_time_neighbors"],
                time_limit=time_limit,
            )
        if settings["only_main_island"] and mask.any():
            _, labels = number_of_islands(geometry, mask)
            largest = np.argmax(np.bincount(labels[mask]))
            mask = labels == largest
        return mask
