"""
The pedestal events of a run, from its first event to its last.

Pedestal (internally triggered) events feed two sliding windows: their
baseline noise gives the NSB voltage drop and the dead pixels
(`~ctapipe_sst1m.calib.SST1MR1Calibrator`), their charges the picture
thresholds of the cleaning (`~ctapipe_sst1m.calib.PedestalChargeMonitor`).
So that the first events of a run are treated like the later ones, the
pedestal events among its first events are read ahead: the voltage drop is
computed from all of them, then their charges are extracted with it. Later
pedestal events update both windows as they stream by.
"""

import numpy as np

from .containers import DigiCamEventType

__all__ = ["PedestalTracker", "is_pedestal"]


def is_pedestal(decoded):
    """True for an internally triggered (pedestal) DigiCam event."""
    return bool(decoded.event_type & DigiCamEventType.INTERNAL)


class PedestalTracker:
    """
    Feeds a run's pedestal events to the calibrator and the charge statistics.

    Parameters
    ----------
    tel_id : int
    calibrator : ctapipe_sst1m.calib.SST1MR1Calibrator
        Prepared for ``tel_id``.
    charges : ctapipe_sst1m.calib.PedestalChargeMonitor or None
        None: no charge statistics.
    pixel_order : ctapipe_sst1m.io.pixel_order.PixelOrder
    run_name : str
        Named in the warnings.
    log : logging.Logger
    """

    def __init__(self, tel_id, calibrator, charges, pixel_order, run_name, log):
        self.tel_id = tel_id
        self.calibrator = calibrator
        self.charges = charges
        self.pixel_order = pixel_order
        self.run_name = run_name
        self.log = log
        #: events of the run's start whose pedestals were used by `prime`
        self.n_primed = 0

    @property
    def look_ahead(self):
        """Events read ahead at the start of the run."""
        return self.calibrator.pedestal_priming_events

    def prime(self, events):
        """
        Use the pedestal events among the first events of the run.

        Parameters
        ----------
        events : list[DecodedEvent]
            The first `look_ahead` events of the run (fewer if the run is
            shorter); they are streamed afterwards, and their pedestal events
            are then not counted again.
        """
        self.n_primed = len(events)
        pedestals = [decoded for decoded in events if is_pedestal(decoded)]
        for decoded in pedestals:
            samples, _, _ = self.pixel_order(decoded)
            self.calibrator.add_pedestal(self.tel_id, samples)
        n = len(pedestals)
        if n == 0:
            self.log.warning(
                "%s: no pedestal events among the first %d events: no voltage-drop "
                "correction, no dead-pixel detection and no pedestal charge "
                "statistics (fixed picture thresholds) until there are some",
                self.run_name,
                self.n_primed,
            )
            return
        self.log.info(
            "Voltage drop %.4f from %d pedestal events among the first %d events",
            np.median(self.calibrator.voltage_drop(self.tel_id)),
            n,
            self.n_primed,
        )
        if self.charges is None:
            return
        for decoded in pedestals:
            samples, baseline, flags = self.pixel_order(decoded)
            r1, invalid, _ = self.calibrator(self.tel_id, samples, baseline, flags == 0)
            self.charges.add(self.tel_id, r1, invalid)
        minimum = self.charges.min_pedestal_images
        if n < minimum:
            # one warning per run: a standard deviation of a few samples would
            # make the thresholds depend on the length of the file
            self.log.warning(
                "%s: %d pedestal event%s among the first %d events, fewer than "
                "the %d the charge statistics need: fixed picture thresholds "
                "until there are %d; set PedestalChargeMonitor.min_pedestal_images "
                "to use fewer",
                self.run_name,
                n,
                "" if n == 1 else "s",
                self.n_primed,
                minimum,
                minimum,
            )

    def calibrate(self, index, decoded, samples, baseline, disabled):
        """
        R1 of an event; a pedestal event after the look-ahead updates the
        windows first (its own voltage drop applies to it).

        Parameters
        ----------
        index : int
            Position of the event in the run (from 0).
        decoded : DecodedEvent
        samples, baseline, disabled : numpy.ndarray
            In physical pixel order (`PixelOrder`).

        Returns
        -------
        r1, invalid, saturated : numpy.ndarray
            As `~ctapipe_sst1m.calib.SST1MR1Calibrator.__call__`.
        """
        new_pedestal = index >= self.n_primed and is_pedestal(decoded)
        if new_pedestal:
            self.calibrator.add_pedestal(self.tel_id, samples)
        r1, invalid, saturated = self.calibrator(self.tel_id, samples, baseline, disabled)
        if new_pedestal and self.charges is not None:
            self.charges.add(self.tel_id, r1, invalid)
        return r1, invalid, saturated

    def statistics(self):
        """Charge statistics for the cleaning, None before there are enough."""
        return None if self.charges is None else self.charges.statistics(self.tel_id)

    def voltage_drop(self):
        """Current voltage-drop factor (scalar or per pixel)."""
        return self.calibrator.voltage_drop(self.tel_id)
