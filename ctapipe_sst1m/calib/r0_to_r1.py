"""
R0 -> R1 calibration of DigiCam waveforms into photo-electrons per sample.

For every pixel::

    r1 = (adc - baseline) * pulse_fraction / (dc_to_pe * window * voltage_drop)

* ``baseline``: the DigiCam on-board baseline of the event;
* ``dc_to_pe``: ADC per photo-electron from the dark-run calibration, defined as
  the maximal 5-sample sum of a single-p.e. pulse;
* ``pulse_fraction``: the fraction of the reference pulse in its best 5
  consecutive samples (0.91), so that the *whole* pulse of one p.e. integrates to
  1, the convention of ctapipe's R1 and of the simulations (extractors scale the
  charge in their window up to the whole pulse). sst1mpipe omits it, which puts
  its data charges about 10 % above its simulated ones; ``gain_pulse_fraction = 1``
  reproduces sst1mpipe;
* ``window``: the relative transmittance of the camera window at the pixel;
* ``voltage_drop``: the NSB-induced drop of gain x PDE, from the baseline noise
  of the pedestal events of the run (`~ctapipe_sst1m.calib.pedestals`).

Saturated pulses are recovered as sst1mpipe does (`~ctapipe_sst1m.calib.saturation`).

Pixels with a bad dark-run calibration, dead pixels (baseline noise below
``dead_pixel_std_threshold``) and disabled pixels are set to zero and flagged as
outliers, for ctapipe's invalid-pixel interpolation.

Mis-cabled modules (``swapped_modules.ecsv``) are undone by reading the pixels in
their physical order, decided once per run from its start time: the signal and
its baseline move to the pixels the light fell on. Gains belong to the sensors:
a gain table is put in physical order with the cabling in force when it was
measured (the tel 22 averages were measured while modules 59 and 88 were swapped,
the tel 21 ones before its swap). Window factors belong to the physical pixels.
"""

import astropy.units as u
import numpy as np
from astropy.time import Time
from ctapipe.core import Provenance, TelescopeComponent
from ctapipe.core.traits import (
    Bool,
    BoolTelescopeParameter,
    CaselessStrEnum,
    Path,
    TelescopeParameter,
)

from ..instrument.constants import DIGICAM_N_SAMPLES
from ..version import __version__
from .config_check import ConfigurationError, RangedFloat, RangedInt
from .gains import (
    default_gain_table,
    read_gain_file,
    telescope_of_file,
    telescope_of_gains,
)
from .pedestals import PedestalStatistics, voltage_drop_factor
from .saturation import SaturationRecovery
from .window import (
    default_window_file,
    module_swap_permutation,
    read_window_file,
    telescope_of_window,
)

__all__ = ["SST1MR1Calibrator", "pulse_fraction"]

#: largest DigiCam ADC value (12 bits): no pulse rises higher above its baseline
ADC_MAX = 4095


def pulse_fraction(readout, n_samples=5):
    """
    Largest fraction of the reference pulse in ``n_samples`` consecutive samples.

    Parameters
    ----------
    readout : ctapipe.instrument.CameraReadout
    n_samples : int

    Returns
    -------
    float
        Over all phases of the sampling grid relative to the pulse.
    """
    pulse = readout.reference_pulse_shape[0]
    samples_per_step = 1 / (readout.sampling_rate * readout.reference_pulse_sample_width)
    step = int(np.rint(samples_per_step.to_value(u.dimensionless_unscaled)))
    best = 0.0
    for phase in range(step):
        sampled = pulse[phase::step]
        window = np.convolve(sampled, np.ones(n_samples), "valid").max()
        best = max(best, window / sampled.sum())
    return float(best)


class _TelescopeCalibration:
    """Everything needed to calibrate the events of one telescope in one run."""

    def __init__(
        self,
        scale,
        bad_calibration,
        permutation,
        provenance,
        pedestals,
        find_dead_pixels,
        saturation,
    ):
        #: (n_pixels,) float32: pulse_fraction / (dc_to_pe * window), 0 for bad pixels
        self.scale = scale
        self.bad_calibration = bad_calibration
        self.permutation = permutation
        self.provenance = provenance
        self.pedestals = pedestals
        self.find_dead_pixels = find_dead_pixels
        #: SaturationRecovery, or None
        self.saturation = saturation
        self.voltage_drop = np.float32(1.0)
        self.dead = np.zeros_like(bad_calibration)


class SST1MR1Calibrator(TelescopeComponent):
    """
    Calibrates DigiCam waveforms to photo-electrons per sample (R1).

    Used by `~ctapipe_sst1m.io.SST1MEventSource`; configure it under
    ``SST1MR1Calibrator`` (or nested under ``SST1MEventSource``).

    Raises
    ------
    ConfigurationError
        At construction, for a setting out of its range, e.g.
        ``SST1MR1Calibrator.pedestal_window = 0: must be at least 1; ...``.
    """

    gain_file = TelescopeParameter(
        Path(exists=True, directory_ok=False, allow_none=True, default_value=None),
        default_value=None,
        allow_none=True,
        help=(
            "Dark-run gain calibration per telescope: sst1mpipe's "
            "*_fitted_parameters.h5 or averaged_calib_param_*.h5 files, or a gains "
            "ECSV of this package. None: the default shipped for the telescope "
            "(2023-2024 averages)."
        ),
    ).tag(config=True)

    window_file = TelescopeParameter(
        Path(exists=True, directory_ok=False, allow_none=True, default_value=None),
        default_value=None,
        allow_none=True,
        help=(
            "Camera-window transmittance per pixel (sst1mpipe's corr_factor_*_wdw.txt "
            "or a window ECSV of this package). None: window 1 for tel 21, window 2 "
            "for tel 22."
        ),
    ).tag(config=True)

    apply_window_correction = BoolTelescopeParameter(
        default_value=True,
        help="Divide the charges by the window transmittance of each pixel.",
    ).tag(config=True)

    voltage_drop_correction = CaselessStrEnum(
        ["global", "pixelwise", "none"],
        default_value="global",
        help=(
            "NSB voltage-drop correction: 'global' from the median baseline variance "
            "of the camera, 'pixelwise' from each pixel's variance, 'none'."
        ),
    ).tag(config=True)

    pedestal_window = RangedInt(
        100,
        min=1,
        help="Number of latest pedestal events whose baseline noise is averaged.",
    ).tag(config=True)

    pedestal_priming_events = RangedInt(
        1000,
        min=0,
        help=(
            "At the start of a run, the pedestal events among its first N events are "
            "read ahead, so that the first events already have a voltage-drop "
            "correction; later pedestal events update it as they stream by."
        ),
    ).tag(config=True)

    dead_pixel_std_threshold = RangedFloat(
        2.5,
        min=0.0,
        help=(
            "Pixels whose pedestal sample std is below this (ADC) are dead; not "
            "applied in dark runs, where the noise of every pixel is below it."
        ),
    ).tag(config=True)

    gain_pulse_fraction = RangedFloat(
        None,
        allow_none=True,
        min=0.0,
        max=1.0,
        low_exclusive=True,
        help=(
            "Fraction of a p.e. pulse in the 5-sample sum that defines dc_to_pe. "
            "None: computed from the telescope's reference pulse (about 0.91), so "
            "that a whole pulse integrates to 1 p.e. as in ctapipe and the "
            "simulations; 1: sst1mpipe's convention (charges about 10 % higher)."
        ),
    ).tag(config=True)

    recover_saturated_pixels = Bool(
        True,
        help=(
            "Recover saturated pulses as sst1mpipe does (plain sum of the pulse); "
            "their R1 waveform becomes the reference pulse carrying that charge."
        ),
    ).tag(config=True)

    # above the 12-bit ADC range or wider than the waveform, no pulse would ever
    # be recovered
    saturation_threshold = RangedFloat(
        3000.0,
        min=0.0,
        max=float(ADC_MAX),
        help="ADC above baseline from which a pulse is saturated.",
    ).tag(config=True)

    saturation_width_level = RangedFloat(
        2500.0,
        min=0.0,
        max=float(ADC_MAX),
        help="ADC above baseline counted for the width of a saturated pulse.",
    ).tag(config=True)

    saturation_width_samples = RangedInt(
        5,
        min=0,
        max=DIGICAM_N_SAMPLES - 1,
        help="Saturated pulses wider than this (samples) are recovered.",
    ).tag(config=True)

    saturation_integration_level = RangedFloat(
        0.2,
        min=0.0,
        max=1.0,
        help="Fraction of the maximum delimiting the summed samples of recovered pulses.",
    ).tag(config=True)

    apply_module_swap = BoolTelescopeParameter(
        default_value=True,
        help="Undo the dated module swaps of swapped_modules.ecsv.",
    ).tag(config=True)

    def __init__(self, subarray, config=None, parent=None, **kwargs):
        super().__init__(subarray=subarray, config=config, parent=parent, **kwargs)
        self._telescopes = {}

    # ------------------------------------------------------------------ setup

    def prepare(self, tel_id, start_time, model_tel_id=None, dark_run=False):
        """
        Load the calibration of ``tel_id`` for a run starting at ``start_time``.

        Parameters
        ----------
        tel_id : int
        start_time : astropy.time.Time
        model_tel_id : int or None
            SST-1M telescope whose default files, module swaps and voltage-drop
            model serve ``tel_id`` (for prototype cameras); ``tel_id`` if None.
        dark_run : bool
            Lid closed: without NSB every pixel's noise is below the dead-pixel
            threshold, so dead pixels are not searched for.

        Returns
        -------
        numpy.ndarray or None
            The permutation that puts recorded pixels at their physical positions
            (compose it with the readout-to-software order), None without a swap.

        Raises
        ------
        ConfigurationError
            If the content of a configured gain or window file says it belongs to
            another telescope (`telescope_of_gains`, `telescope_of_window`).
        OSError, ValueError
            For missing, unreadable or wrong calibration files, naming the file.
        """
        model = tel_id if model_tel_id is None else model_tel_id
        gains = self._gains(tel_id, model)
        window, window_source, window_sha256 = self._window(tel_id, model)
        permutation, gain_permutation = None, None
        if self.apply_module_swap.tel[tel_id]:
            permutation = module_swap_permutation(model, start_time)
            gain_permutation = self._gain_permutation(gains, model, start_time)
        if permutation is not None:
            self.log.info("tel %d: mis-cabled modules swapped back", tel_id)
        dc_to_pe, bad = gains.dc_to_pe, gains.bad
        if gain_permutation is not None:
            dc_to_pe, bad = dc_to_pe[gain_permutation], bad[gain_permutation]

        fraction = self.gain_pulse_fraction
        if fraction is None:
            fraction = pulse_fraction(self.subarray.tel[tel_id].camera.readout)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(bad, 0.0, fraction / (dc_to_pe * window))
        provenance = {
            "tel_id": tel_id,
            "model_tel_id": model,
            "gain_file": gains.source,
            "gain_sha256": gains.sha256,
            "window_file": window_source,
            "window_sha256": window_sha256,
            "gain_pulse_fraction": fraction,
            "voltage_drop_correction": self.voltage_drop_correction,
            "module_swap": permutation is not None,
            "gains_measured": gains.measured or "unknown",
            "gain_module_swap": gain_permutation is not None,
            "ctapipe_sst1m_version": __version__,
        }
        self._telescopes[tel_id] = _TelescopeCalibration(
            scale=scale.astype(np.float32),
            bad_calibration=bad.copy(),
            permutation=permutation,
            provenance=provenance,
            pedestals=PedestalStatistics(self.pedestal_window),
            find_dead_pixels=not dark_run,
            saturation=self._saturation_recovery(tel_id),
        )
        self.log.info(
            "tel %d: gains %s (%d bad pixels), window %s, pulse fraction %.4f",
            tel_id,
            gains.source,
            np.count_nonzero(bad),
            window_source,
            fraction,
        )
        return permutation

    def _saturation_recovery(self, tel_id):
        if not self.recover_saturated_pixels:
            return None
        return SaturationRecovery(
            self.subarray.tel[tel_id].camera.readout,
            threshold=self.saturation_threshold,
            width_level=self.saturation_width_level,
            width_samples=self.saturation_width_samples,
            integration_level=self.saturation_integration_level,
        )

    def _gain_permutation(self, gains, model, start_time):
        """The swap in force when the gains were measured: it puts them in
        physical pixel order (gains belong to the sensors)."""
        if gains.measured is None:
            self.log.info(
                "%s has no measurement date: assumed measured with the cabling of "
                "the run",
                gains.source,
            )
            return module_swap_permutation(model, start_time)
        return module_swap_permutation(model, Time(gains.measured))

    def _gains(self, tel_id, model):
        path = self.gain_file.tel[tel_id]
        if path is None:
            return default_gain_table(model)
        n_pixels = self.subarray.tel[tel_id].camera.geometry.n_pixels
        gains = read_gain_file(path, n_pixels=n_pixels)
        Provenance().add_input_file(str(path), role="calibration/gains", add_meta=False)
        # a renamed file keeps its content: the name is only a fallback
        file_tel, evidence = telescope_of_gains(gains)
        name_tel = telescope_of_file(path)
        if file_tel is None:
            checked = "by its file name only" if name_tel is not None else "not"
            self.log.warning(
                "%s %s: checked against tel %d %s", path, evidence, model, checked
            )
            file_tel, evidence = name_tel, "its file name"
        if file_tel is not None and file_tel != model:
            raise ConfigurationError(
                f"{path}: gain calibration of tel {file_tel} given for tel "
                f"{self._run_telescope(tel_id, model)} (from {evidence}); set "
                f"SST1MR1Calibrator.gain_file to a gain file of tel {model}, or unset "
                "it for the shipped gains"
            )
        if name_tel is not None and name_tel != file_tel:
            self.log.warning(
                "%s is named for tel %d but holds gains of tel %d (from %s)",
                path,
                name_tel,
                file_tel,
                evidence,
            )
        return gains

    @staticmethod
    def _run_telescope(tel_id, model):
        if tel_id == model:
            return str(tel_id)
        return f"{tel_id}, calibrated as tel {model}"

    def _window(self, tel_id, model):
        n_pixels = self.subarray.tel[tel_id].camera.geometry.n_pixels
        if not self.apply_window_correction.tel[tel_id]:
            return np.ones(n_pixels), "none", ""
        path = self.window_file.tel[tel_id]
        if path is None:
            path = default_window_file(model)
            factors, sha256 = read_window_file(path, n_pixels=n_pixels)
            return factors, f"ctapipe_sst1m default {path.name}", sha256
        factors, sha256 = read_window_file(path, n_pixels=n_pixels)
        Provenance().add_input_file(str(path), role="calibration/window", add_meta=False)
        window_tel, evidence = telescope_of_window(path, factors)
        if window_tel is None:
            self.log.warning("%s %s: not checked against tel %d", path, evidence, model)
        elif window_tel != model:
            raise ConfigurationError(
                f"{path}: window transmittance of tel {window_tel} given for tel "
                f"{self._run_telescope(tel_id, model)} (from {evidence}); set "
                f"SST1MR1Calibrator.window_file to the window of tel {model}, or "
                "unset it for the shipped one"
            )
        return factors, str(path), sha256

    def provenance(self, tel_id):
        """What calibrated ``tel_id``: files, checksums, factors, version."""
        calibration = self._telescopes[tel_id]
        return dict(
            calibration.provenance,
            n_pedestal_events=len(calibration.pedestals),
            voltage_drop_factor=float(np.median(calibration.voltage_drop)),
        )

    # --------------------------------------------------------------- pedestals

    def add_pedestal(self, tel_id, samples):
        """
        Update the voltage drop and dead pixels with a pedestal event.

        Parameters
        ----------
        tel_id : int
        samples : numpy.ndarray
            Raw ADC samples in physical pixel order, (n_pixels, n_samples).
        """
        calibration = self._telescopes[tel_id]
        calibration.pedestals.add(samples)
        std = calibration.pedestals.pixel_std
        if calibration.find_dead_pixels:
            calibration.dead = std < self.dead_pixel_std_threshold
        if self.voltage_drop_correction == "none":
            return
        variance = std**2
        if self.voltage_drop_correction == "global":
            variance = np.median(variance)
        model = calibration.provenance["model_tel_id"]
        calibration.voltage_drop = np.asarray(
            voltage_drop_factor(variance, model), dtype=np.float32
        )

    def voltage_drop(self, tel_id):
        """Current voltage-drop factor of ``tel_id`` (scalar or per pixel)."""
        return self._telescopes[tel_id].voltage_drop

    # ------------------------------------------------------------ calibration

    def __call__(self, tel_id, samples, baseline, disabled):
        """
        Calibrate one event.

        Parameters
        ----------
        tel_id : int
        samples : numpy.ndarray
            Raw ADC samples in physical pixel order, (n_pixels, n_samples).
        baseline : numpy.ndarray
            DigiCam baseline per pixel, ADC.
        disabled : numpy.ndarray
            Pixels not read out.

        Returns
        -------
        r1 : numpy.ndarray
            float32 (n_pixels, n_samples), photo-electrons per sample.
        invalid : numpy.ndarray
            Pixels zeroed in ``r1``: bad calibration, dead or disabled.
        saturated : numpy.ndarray
            Pixels whose saturated pulse was recovered.
        """
        calibration = self._telescopes[tel_id]
        scale = calibration.scale / calibration.voltage_drop
        r1 = np.subtract(samples, baseline[:, np.newaxis], dtype=np.float32)
        saturated = np.zeros(len(r1), dtype=bool)
        candidates = None
        if calibration.saturation is not None:
            candidates = np.flatnonzero(calibration.saturation.saturated(r1))
            adc = r1[candidates]
        r1 *= scale[:, np.newaxis]
        if candidates is not None and len(candidates):
            charge, _ = calibration.saturation.recover(r1, adc, candidates)
            saturated[candidates[np.isfinite(charge)]] = True
        invalid = calibration.bad_calibration | calibration.dead | disabled
        r1[invalid] = 0.0
        saturated &= ~invalid
        return r1, invalid, saturated
