"""
From DigiCam readout rows to the camera's physical pixels.

DigiCam sends each event's pixels in readout order, with the software id of
each row (``pixelsIndices``); sorting by it gives the software order of the
camera geometry. Some modules were mounted in each other's place: their pixels
are read out under the other module's ids. The calibrator finds these swaps in
its gain tables (`~ctapipe_sst1m.calib.SST1MR1Calibrator.prepare`) and hands
back the permutation from software to physical positions; composing both
orders once per run puts every event's pixels where the geometry has them.
"""

import numpy as np

__all__ = ["PixelOrder", "detect_baseline_scale"]


class PixelOrder:
    """
    Puts the rows of a decoded DigiCam event into physical pixel order.

    Parameters
    ----------
    baseline_scale : int
        DigiCam sends baselines times this factor (16, 1 in 2017 data).
    physical_order : numpy.ndarray or None
        Software -> physical permutation (swapped modules); None: identity.
    """

    def __init__(self, baseline_scale, physical_order=None):
        self.baseline_scale = baseline_scale
        self.physical_order = physical_order
        self._pixel_index = None
        self._order = None

    def order(self, pixel_index):
        """
        Row order that sorts readout rows to physical pixels.

        Computed again only when the readout order changes (never seen within
        a run, but the files of a run could come from reconfigured cameras).

        Parameters
        ----------
        pixel_index : numpy.ndarray
            Software pixel id of each readout row.

        Returns
        -------
        numpy.ndarray
        """
        if self._pixel_index is None or not np.array_equal(
            pixel_index, self._pixel_index
        ):
            self._pixel_index = pixel_index.copy()
            order = np.argsort(pixel_index)
            if self.physical_order is not None:
                order = order[self.physical_order]
            self._order = order
        return self._order

    def __call__(self, decoded):
        """
        Samples, baselines (ADC) and flags of an event in physical pixel order.

        Parameters
        ----------
        decoded : DecodedEvent

        Returns
        -------
        samples : numpy.ndarray
            int16 (n_pixels, n_samples).
        baseline : numpy.ndarray
            float32 (n_pixels,), ADC.
        flags : numpy.ndarray
            Pixel flags, 0 for a pixel not read out.
        """
        order = self.order(decoded.pixel_index)
        # np.take: the same rows as fancy indexing, 3 times faster on 2D arrays
        samples = np.take(decoded.samples.reshape(len(order), -1), order, axis=0)
        baseline = np.take(decoded.baselines, order).astype(np.float32)
        baseline /= self.baseline_scale
        return samples, baseline, np.take(decoded.pixel_flags, order)


def detect_baseline_scale(decoded):
    """
    The factor DigiCam multiplied the baselines of ``decoded`` with: 16 when
    the baselines are 16 times the level of the first samples, else 1.

    Parameters
    ----------
    decoded : DecodedEvent
        An event of the run (its enabled pixels' first 10 samples are noise
        before any pulse in DigiCam's readout window).

    Returns
    -------
    int
        16 or 1.
    """
    samples = decoded.samples.reshape(len(decoded.pixel_flags), -1)
    enabled = decoded.pixel_flags != 0
    sample_median = np.median(samples[enabled, :10])
    baseline_median = np.median(decoded.baselines[enabled])
    return (
        16
        if abs(baseline_median / 16 - sample_median)
        < abs(baseline_median - sample_median)
        else 1
    )
