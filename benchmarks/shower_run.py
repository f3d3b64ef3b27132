"""
A DigiCam raw run with shower images, in the file format of the real files.

The real DigiCam files available (``../shared/docs/test-data.md`` §1.3) hold no
shower: the 2018 science file is NSB-dominated PATCH7 triggers, the 2017 files
are commissioning data with four modules of garbage. A benchmark of the image
stage on them measures empty images only. This module writes a run whose
shower events carry images:

* **the noise is real**: every event starts from one of the 32 events of the
  real 2018 on-sky file (tel 22, high NSB, baselines x 16, trigger traces), the
  one shipped inside protozfits. All 32 are noise (2 internal triggers and 30
  PATCH7 triggers on NSB fluctuations), so the pedestal events and the noise
  under the showers come from the same sky. The 2017 100-event file is not
  used: its garbage modules would pass the cleaning as spurious images and its
  baselines are not x 16, unlike every science run;
* **the showers are simulated**: the true images (photo-electrons per pixel) of
  the 129 SST-1M telescope events of the prod4 gamma run
  (``../shared/data/simtel/gamma_20deg_0deg_run102___cta-prod4-sst-1m...``),
  with their arrival times: the time the simulated waveform gives in pixels of
  10 p.e. or more, a plane fitted to those times elsewhere. Shapes, sizes,
  intensity spectrum (35-1900 p.e.) and time gradients are those of real
  triggered gamma showers, which toy Gaussians are not. The simulated
  waveforms themselves are not used: their noise is the simulation's, which
  the real pedestal events of the run would not describe;
* **the injection inverts the calibration the source applies**: each p.e. is
  the camera's reference pulse (placed to the sub-sample), of the ADC
  amplitude that `~ctapipe_sst1m.calib.SST1MR1Calibrator` turns back into one
  p.e. for that pixel (gains, window, NSB voltage drop of the noise, module
  swaps at the run date), in the hardware row the pixel is read out in
  (``pixelsIndices``); values are rounded and clipped to the 12-bit ADC range.

The file is what the source reads as real data: the current layout (a
``DigicamConfig`` table, from the real 2018 dark run, then ``Events``),
``DataModel.CameraEvent`` messages with the DigiCam columns, a ``TARGET`` header
(a Crab wobble run), ``RUNTYPE = 'science'``, header times and trigger counts,
camera-clock times in TAI (White Rabbit era), no SWAT array event number (the
run is dated before 2024-01-30), valid DATASUM and CHECKSUM cards. Shower
events are PATCH7 triggers (``event_type`` 0x1) at Poisson times, 150 Hz;
internal (pedestal, 0x8) triggers come at a fixed 12 Hz between them: 7 % of
the events, as in the real files (2 of 32, 8 of 100).

protozfits 2.13 cannot write ``DataModel`` messages: the events are written as
``R1v1.Event`` carrier messages and the header cards are rewritten afterwards
(``../shared/docs/test-data.md`` §2). The trigger traces are those of the noise
event (the source only reads them on request).

Usage::

    python benchmarks/shower_run.py OUTPUT [--events 2000] [--seed 0] [--tel 22]

OUTPUT is a file, or a directory in which the run is named
``SST1M2_20240101_0001.fits.fz`` (``SST1M1_...`` for tel 21).
"""

import argparse
import time
import warnings
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import astropy.units as u
import numpy as np
import protozfits
from astropy.io import fits
from astropy.time import Time
from protozfits.anyarray import numpy_to_any_array
from protozfits.R1v1_pb2 import Event as CarrierEvent

from ctapipe_sst1m.calib import SST1MR1Calibrator
from ctapipe_sst1m.instrument import load_sst1m_subarray

__all__ = [
    "NOISE_FILE",
    "SIMTEL_FILE",
    "ShowerRun",
    "read_noise_events",
    "read_simulated_images",
    "run_file_name",
    "write_shower_run",
]

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
#: the real 2018 on-sky file (tel 22, 32 events), shipped inside protozfits
NOISE_FILE = Path(
    str(files("protozfits") / "tests/resources/example_SST1M_20180822.fits.fz")
)
SIMTEL_FILE = (
    SHARED_DATA
    / "simtel/gamma_20deg_0deg_run102___cta-prod4-sst-1m_desert-2150m-Paranal-sst-1m"
    ".simtel.zst"
)
#: the real 2018 dark run whose DigicamConfig table the run gets
CONFIG_FILE = SHARED_DATA / "raw/SST1M_01_20180822_001.fits.fz"

RUN_DATE = "20240101"
#: first event (UTC), evening of the run's night
RUN_START = Time("2024-01-01T21:00:00", scale="utc")
#: a Crab wobble run, in the "target_wobble_ra_dec" form of current files
TARGET = "Crab_W1_83.633_22.0145"
#: Poisson rate of the shower (PATCH7) triggers, Hz (the 2018 file: ~160 Hz)
SHOWER_RATE = 150.0
#: fixed rate of the internal (pedestal) triggers, Hz
PEDESTAL_RATE = 12.0
PATCH7 = 0x1
INTERNAL = 0x8
#: largest DigiCam ADC value (12 bits)
ADC_MAX = 4095
#: pixels at least this bright keep the arrival time of the simulated waveform
TIMED_PE = 10.0
#: pixels at least this bright enter the fit of the time plane
PLANE_PE = 3.0
#: whole-shower time jitter (ns, uniform +-): the trigger's phase to the samples
TRIGGER_JITTER_NS = 4.0
#: ZFITS compression of every column: diffman16 comes closest to the real 2018
#: file (60 vs 54 kB and 0.70 vs 0.65 ms of protozfits decoding per event;
#: zstd3 40 kB and 0.22 ms, raw 176 kB and 0.13 ms)
COMPRESSION = "diffman16"

#: Events table: carrier field -> (DigiCam column, protobuf id), test-data.md §2
EVENTS_COLUMNS = {
    "tel_id": ("telescopeID", "1"),
    "event_time_s": ("eventNumber", "4"),
    "num_channels": ("arrayEvtNum", "5"),
    "waveform": ("hiGain_waveforms_samples", "6.1.1"),
    "pixel_status": ("hiGain_waveforms_pixelsIndices", "6.1.2"),
    "first_cell_id": ("hiGain_waveforms_baselines", "6.1.5"),
    "calibration_monitoring_id": ("local_time_nanosec", "30"),
    "local_run_id": ("local_time_sec", "31"),
    "module_hires_local_clock_counter": ("pixels_flags", "32"),
    "event_type": ("event_type", "34"),
    "pedestal_intensity": ("trigger_input_traces", "35"),
    "pixel_time_shift": ("trigger_output_patch7", "36"),
    "debug_module_status": ("trigger_output_patch19", "37"),
    "debug_tib_data": ("trigger_output_muon", "38"),
}
#: DigicamConfig table: carrier field -> (DigiCam column, protobuf id)
CONFIG_COLUMNS = {
    "waveform": ("protocol_vers", "1"),
    "pixel_status": ("sn", "2"),
    "first_cell_id": ("hv", "3"),
    "module_hires_local_clock_counter": ("gateware_rev", "4"),
    "pedestal_intensity": ("gateware_vers", "5"),
    "pixel_time_shift": ("gateware_code", "6"),
    "debug_module_status": ("gateware_card_type", "7"),
    "debug_tib_data": ("firmware_rev", "8"),
    "debug_cdts_data": ("firmware_vers", "9"),
    "debug_swat_data": ("firmware_code", "10"),
    "debug_counters": ("firmware_card_type", "11"),
    "event_type": ("digicam_time_nanosec", "14"),
    "event_time_s": ("digicam_time_sec", "15"),
}
#: columns that are signed in DigiCam messages but unsigned in the carrier
SIGNED_COLUMNS = {"telescopeID"}
TRACE_FIELDS = (
    "trigger_input_traces",
    "trigger_output_patch7",
    "trigger_output_patch19",
    "trigger_output_muon",
)
FITS_BLOCK = 2880
CARD = 80


@dataclass
class NoiseEvent:
    """A real event used as noise: its raw arrays, hardware pixel order."""

    samples: np.ndarray
    pixel_index: np.ndarray
    baselines: np.ndarray
    pixel_flags: np.ndarray
    traces: dict
    event_type: int


@dataclass
class ShowerRun:
    """What `write_shower_run` wrote."""

    path: Path
    tel_id: int
    #: DigiCam event_type of every event (0x1 shower, 0x8 pedestal)
    event_types: np.ndarray
    #: for every event, the row of ``true_images`` injected, -1 for pedestals
    image_index: np.ndarray
    #: the simulated true images, p.e. per pixel (pixel id = ctapipe pixel id)
    true_images: np.ndarray
    #: the noise event of the real file under every event
    noise_index: np.ndarray
    #: ADC per p.e. (whole pulse) of every pixel, as injected
    adc_per_pe: np.ndarray
    seconds: float

    @property
    def n_events(self):
        """Events in the file."""
        return len(self.event_types)

    @property
    def n_pedestals(self):
        """Internal-trigger (pedestal) events in the file."""
        return int(np.count_nonzero(self.event_types & INTERNAL))

    def true_image(self, index):
        """True p.e. per pixel of event ``index`` (zeros for a pedestal)."""
        row = self.image_index[index]
        if row < 0:
            return np.zeros(self.true_images.shape[1], dtype=np.float32)
        return self.true_images[row]


def run_file_name(tel_id, run=1):
    """``SST1M{1|2}_20240101_{run:04d}.fits.fz``: the site name of the run."""
    return f"SST1M{tel_id - 20}_{RUN_DATE}_{run:04d}.fits.fz"


def read_noise_events(path=NOISE_FILE):
    """
    The events of a real DigiCam file, as noise to inject showers into.

    Parameters
    ----------
    path : Path

    Returns
    -------
    list[NoiseEvent]

    Raises
    ------
    ValueError
        If the file's events lack the trigger trace columns or their baselines
        are not 16 x the baseline (commissioning data).
    """
    events = []
    with protozfits.File(str(path)) as zfile:
        for event in zfile.Events:
            waveforms = event.hiGain.waveforms
            traces = {name: getattr(event, name, None) for name in TRACE_FIELDS}
            missing = [name for name, value in traces.items() if value is None]
            if missing:
                raise ValueError(f"{path}: events lack {missing}; use a science file")
            events.append(
                NoiseEvent(
                    samples=waveforms.samples.reshape(len(event.pixels_flags), -1),
                    pixel_index=waveforms.pixelsIndices.copy(),
                    baselines=waveforms.baselines.copy(),
                    pixel_flags=event.pixels_flags.copy(),
                    traces={k: v.copy() for k, v in traces.items()},
                    event_type=int(event.event_type),
                )
            )
    first = events[0]
    ratio = np.median(first.baselines) / np.median(first.samples[:, :10])
    if not 12 < ratio < 20:
        raise ValueError(
            f"{path}: baselines are {ratio:.1f} x the samples, not 16 x "
            "(commissioning data); use a science file"
        )
    return events


def read_simulated_images(path=SIMTEL_FILE, geometry=None):
    """
    True images and arrival times of the SST-1M telescope events of a simtel file.

    Parameters
    ----------
    path : Path
        A sim_telarray file with DigiCam telescopes.
    geometry : ctapipe.instrument.CameraGeometry, optional
        The geometry the images are used with: the simulation's must have the
        same pixel positions.

    Returns
    -------
    images : numpy.ndarray
        float32 (n, n_pixels), true p.e. per pixel.
    times : numpy.ndarray
        float32 (n, n_pixels), ns from the start of the readout window, for the
        pixels with light (NaN elsewhere).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file has no DigiCam image, or its pixels are not at the positions
        of ``geometry``.
    """
    # imported here: reading the simtel file is the only use of these
    from ctapipe.calib import CameraCalibrator
    from ctapipe.io import SimTelEventSource

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such simtel file")
    images, times = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        source = SimTelEventSource(path, focal_length_choice="EQUIVALENT")
        calibrator = CameraCalibrator(source.subarray)
        for event in source:
            calibrator(event)
            for tel_id, simulated in event.simulation.tel.items():
                camera = source.subarray.tel[tel_id].camera
                if camera.name != "DigiCam" or simulated.true_image is None:
                    continue
                if simulated.true_image.sum() == 0:
                    continue
                if geometry is not None and not (
                    np.allclose(camera.geometry.pix_x, geometry.pix_x)
                    and np.allclose(camera.geometry.pix_y, geometry.pix_y)
                ):
                    raise ValueError(
                        f"{path}: tel {tel_id}'s pixels are not at the positions "
                        "of the SST-1M DigiCam geometry"
                    )
                image = simulated.true_image.astype(np.float32)
                peak_time = event.dl1.tel[tel_id].peak_time
                times.append(_arrival_times(image, peak_time, camera.geometry))
                images.append(image)
    if not images:
        raise ValueError(f"{path}: no DigiCam telescope event with a true image")
    return np.array(images), np.array(times, dtype=np.float32)


def _arrival_times(image, peak_time, geometry):
    """
    Arrival time of the light in each pixel with light.

    Bright pixels keep the peak time of their simulated waveform; in faint ones
    that time is mostly noise, so they get a plane fitted (weighted by the
    p.e.) to the times of the pixels of ``PLANE_PE`` or more, or the weighted
    mean time when too few pixels are that bright.
    """
    lit = image > 0
    used = image >= PLANE_PE
    x = geometry.pix_x.to_value("m")
    y = geometry.pix_y.to_value("m")
    if np.count_nonzero(used) >= 4:
        design = np.column_stack([np.ones(used.sum()), x[used], y[used]])
        weight = np.sqrt(image[used])
        coeffs, *_ = np.linalg.lstsq(
            design * weight[:, None], peak_time[used] * weight, rcond=None
        )
        model = coeffs[0] + coeffs[1] * x + coeffs[2] * y
    else:
        model = np.full(len(image), np.average(peak_time[lit], weights=image[lit]))
    times = np.where(image >= TIMED_PE, peak_time, model)
    return np.where(lit, times, np.nan)


class PulseShaper:
    """
    The camera's reference pulse integrated over the samples, at any arrival time.

    Parameters
    ----------
    readout : ctapipe.instrument.CameraReadout
    """

    def __init__(self, readout):
        pulse = readout.reference_pulse_shape[0].astype(np.float64)
        width = readout.reference_pulse_sample_width.to_value("ns")
        self.sample = (1 / readout.sampling_rate).to_value("ns")
        self.n_samples = readout.n_samples
        # cumulative integral at the fine steps' edges, 1 at the end
        self._edges = np.arange(len(pulse) + 1) * width
        self._cumulative = np.concatenate([[0.0], np.cumsum(pulse)]) / pulse.sum()
        #: time of the pulse maximum from the start of the pulse
        self.peak = (np.argmax(pulse) + 0.5) * width

    def __call__(self, times):
        """
        Fraction of a unit pulse peaking at ``times`` (ns) in every sample.

        Parameters
        ----------
        times : numpy.ndarray
            (n,) peak times, ns from the start of the readout window.

        Returns
        -------
        numpy.ndarray
            (n, n_samples); rows sum to 1 for pulses inside the window.
        """
        edges = np.arange(self.n_samples + 1) * self.sample
        start = np.asarray(times, dtype=np.float64) - self.peak
        cumulative = np.interp(
            edges[np.newaxis, :] - start[:, np.newaxis],
            self._edges,
            self._cumulative,
            left=0.0,
            right=1.0,
        )
        return np.diff(cumulative, axis=1)


def _calibration(tel_id, noise, start):
    """
    ADC per p.e. of every pixel and the rows the pixels are read out in.

    The source's own calibrator, set up for the run's date and fed the noise
    events as pedestals (NSB voltage drop), calibrates a waveform of one ADC
    count: the inverse of what it gives is what one p.e. must weigh.

    Returns
    -------
    adc_per_pe : numpy.ndarray
        (n_pixels,) ADC of the whole pulse of one p.e., physical pixel order.
    rows : numpy.ndarray
        (n_pixels,) readout row of each physical pixel.
    """
    subarray = load_sst1m_subarray([tel_id])
    calibrator = SST1MR1Calibrator(subarray)
    physical = calibrator.prepare(tel_id, start)
    rows = np.argsort(noise[0].pixel_index)
    if physical is not None:
        rows = rows[physical]
    for event in noise:
        calibrator.add_pedestal(tel_id, event.samples[rows])
    n_pixels, n_samples = noise[0].samples.shape
    unit = np.ones((n_pixels, n_samples), dtype=np.float32)
    zero = np.zeros(n_pixels, dtype=np.float32)
    r1, invalid, _ = calibrator(tel_id, unit, zero, np.zeros(n_pixels, dtype=bool))
    per_adc = r1[:, 0].astype(np.float64)
    # pixels the source will flag as invalid still see their light
    per_adc[invalid | (per_adc <= 0)] = np.median(per_adc[~invalid])
    return 1.0 / per_adc, rows


def _schedule(n_events, rng):
    """
    Event types and camera-clock offsets (ns from the run start), in time order.

    Shower triggers at Poisson times, internal triggers at a fixed rate.
    """
    n_pedestal = max(1, round(n_events * PEDESTAL_RATE / (SHOWER_RATE + PEDESTAL_RATE)))
    n_shower = n_events - n_pedestal
    shower = np.cumsum(rng.exponential(1e9 / SHOWER_RATE, n_shower))
    pedestal = (np.arange(n_pedestal) + 0.5) * 1e9 / PEDESTAL_RATE
    offsets = np.concatenate([shower, pedestal]).astype(np.int64)
    types = np.concatenate(
        [np.full(n_shower, PATCH7), np.full(n_pedestal, INTERNAL)]
    ).astype(np.uint32)
    order = np.argsort(offsets, kind="stable")
    return types[order], offsets[order]


def _any(array):
    return numpy_to_any_array(np.ascontiguousarray(array))


def _config_message(config_file, seconds, nanoseconds):
    """The DigicamConfig row of ``config_file`` as a carrier message."""
    with protozfits.File(str(config_file)) as zfile:
        row = next(iter(zfile.DigicamConfig))
    message = CarrierEvent(event_time_s=int(seconds), event_type=int(nanoseconds))
    for carrier, (column, _) in CONFIG_COLUMNS.items():
        value = getattr(row, column, None)
        if not isinstance(value, np.ndarray):
            continue
        target = message
        if carrier.startswith("debug_"):
            target, carrier = message.debug, carrier.removeprefix("debug_")
        getattr(target, carrier).CopyFrom(_any(value))
    return message


def _event_message(tel_id, number, event_type, seconds, nanoseconds, noise, samples):
    """One DigiCam event as an ``R1v1.Event`` carrier message."""
    message = CarrierEvent(
        tel_id=tel_id,
        event_time_s=number,
        event_type=int(event_type),
        local_run_id=int(seconds),
        calibration_monitoring_id=int(nanoseconds),
    )
    message.waveform.CopyFrom(_any(samples.reshape(-1)))
    message.pixel_status.CopyFrom(_any(noise.pixel_index))
    message.first_cell_id.CopyFrom(_any(noise.baselines))
    message.module_hires_local_clock_counter.CopyFrom(_any(noise.pixel_flags))
    traces = noise.traces
    message.pedestal_intensity.CopyFrom(_any(traces["trigger_input_traces"]))
    message.pixel_time_shift.CopyFrom(_any(traces["trigger_output_patch7"]))
    message.debug.module_status.CopyFrom(_any(traces["trigger_output_patch19"]))
    message.debug.tib_data.CopyFrom(_any(traces["trigger_output_muon"]))
    return message


def write_shower_run(
    path,
    n_events,
    seed=0,
    *,
    tel_id=22,
    noise_file=NOISE_FILE,
    simtel_file=SIMTEL_FILE,
    config_file=CONFIG_FILE,
    compression=COMPRESSION,
):
    """
    Write a DigiCam raw run of shower and pedestal events (see the module doc).

    Parameters
    ----------
    path : str or Path
        Output file, best named as a site run (`run_file_name`): the source
        takes the obs_id from the name. Overwritten if it exists.
    n_events : int
        Events in the run, pedestals included.
    seed : int
        Seed of the event times, images and noise drawn.
    tel_id : int
        21 or 22 (the calibration inverted is that telescope's; the noise is
        tel 22's in either case).
    noise_file : Path
        A real science DigiCam file whose events are the noise.
    simtel_file : Path
        The sim_telarray file whose true images are injected.
    config_file : Path or None
        A real file with a DigicamConfig table, copied into the run; None: the
        legacy layout without it.
    compression : str
        ZFITS compression of the columns (protozfits' names, e.g. raw, zstd3).

    Returns
    -------
    ShowerRun

    Raises
    ------
    ValueError
        If ``n_events`` is below 2, ``tel_id`` is not 21 or 22, or an input is
        not what it should be (see `read_noise_events`, `read_simulated_images`).
    FileNotFoundError
        If an input file is missing.
    """
    if n_events < 2:
        raise ValueError(f"n_events = {n_events}: a run needs at least 2 events")
    if tel_id not in (21, 22):
        raise ValueError(f"tel_id = {tel_id}: SST-1M telescopes are 21 and 22")
    inputs = [("noise_file", noise_file), ("simtel_file", simtel_file)]
    if config_file is not None:
        inputs.append(("config_file", config_file))
    for name, given in inputs:
        if not Path(given).is_file():
            raise FileNotFoundError(f"{given}: no such file; set {name}")
    path = Path(path)
    start_clock = time.perf_counter()
    rng = np.random.default_rng(seed)

    readout = load_sst1m_subarray([tel_id]).tel[tel_id].camera
    noise = read_noise_events(noise_file)
    images, arrival = read_simulated_images(simtel_file, readout.geometry)
    shaper = PulseShaper(readout.readout)
    adc_per_pe, rows = _calibration(tel_id, noise, RUN_START)

    event_types, offsets = _schedule(n_events, rng)
    shower = (event_types & PATCH7) != 0
    # every simulated image as often as the others, in a random order
    n_shower = int(shower.sum())
    image_order = np.concatenate(
        [rng.permutation(len(images)) for _ in range(-(-n_shower // len(images)))]
    )[:n_shower]
    image_index = np.full(n_events, -1)
    image_index[shower] = image_order
    noise_index = rng.integers(len(noise), size=n_events)
    jitter = rng.uniform(-TRIGGER_JITTER_NS, TRIGGER_JITTER_NS, n_events)

    start = int(RUN_START.unix_tai)  # the White Rabbit clock counts TAI
    seconds = start + offsets // 1_000_000_000
    nanoseconds = offsets % 1_000_000_000

    writer = protozfits.FlatProtobufZOFits(
        compression_block_size_kb=100 * 1024, default_compression=compression
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    writer.open(str(path))
    if config_file is not None:
        writer.move_to_new_table("DigicamConfig")
        # the camera's configuration time: before the run, as DigiCam sets it up
        writer.write_message(
            _config_message(config_file, start - 30, int(nanoseconds[0]) or 1)
        )
    writer.move_to_new_table("Events")
    header = {
        "RUNTYPE": "science",
        "TARGET": TARGET,
        "TSTARTS": int(seconds[0]),
        "TSTARTNS": int(nanoseconds[0]),
        "TSTOPS": int(seconds[-1]),
        "TSTOPNS": int(nanoseconds[-1]),
        "NTRIGINT": int(np.count_nonzero(shower)),
        "NTRIGEXT": int(np.count_nonzero(~shower)),
        "NOTHERTG": 0,
    }
    for key, value in header.items():
        if isinstance(value, str):
            writer.set_string(key, value, "")
        else:
            writer.set_int(key, value, "")
    for i in range(n_events):
        base = noise[noise_index[i]]
        samples = base.samples
        if image_index[i] >= 0:
            samples = _inject(
                base.samples,
                images[image_index[i]],
                arrival[image_index[i]] + jitter[i],
                adc_per_pe,
                rows,
                shaper,
            )
        writer.write_message(
            _event_message(
                tel_id, i + 1, event_types[i], seconds[i], nanoseconds[i], base, samples
            )
        )
    writer.close()

    # the ACTL writer's DATE and DATEEND: the run's first and last event (UTC)
    date_end = (RUN_START + offsets[-1] * 1e-9 * u.s).isot[:19]
    dates = {"DATE": RUN_START.isot[:19], "DATEEND": date_end}
    if config_file is not None:
        _rewrite_header(
            path, "DigicamConfig", "DataModel.DigicamConfig", CONFIG_COLUMNS, dates
        )
    _rewrite_header(path, "Events", "DataModel.CameraEvent", EVENTS_COLUMNS, dates)
    return ShowerRun(
        path=path,
        tel_id=tel_id,
        event_types=event_types,
        image_index=image_index,
        true_images=images,
        noise_index=noise_index,
        adc_per_pe=adc_per_pe,
        seconds=time.perf_counter() - start_clock,
    )


def _inject(samples, image, times, adc_per_pe, rows, shaper):
    """
    Raw samples with a true image added.

    Parameters
    ----------
    samples : numpy.ndarray
        int16 (n_pixels, n_samples), hardware order.
    image, times : numpy.ndarray
        True p.e. and arrival times (ns) per physical pixel.
    adc_per_pe : numpy.ndarray
        ADC of the whole pulse of one p.e., per physical pixel.
    rows : numpy.ndarray
        Readout row of each physical pixel.
    """
    lit = np.flatnonzero(image > 0)
    signal = shaper(times[lit]) * (image[lit] * adc_per_pe[lit])[:, np.newaxis]
    out = samples.copy()
    target = rows[lit]
    summed = samples[target] + signal
    out[target] = np.clip(np.rint(summed), 0, ADC_MAX).astype(samples.dtype)
    return out


# ------------------------------------------------------------ header cards


def _read_cards(data, table):
    """Start offset, header blocks and cards (80-char strings) of ``table``."""
    marker = f"EXTNAME = '{table}'".encode()
    position = data.find(marker)
    if position < 0:
        raise ValueError(f"no {table!r} table")
    start = position - position % FITS_BLOCK
    cards = []
    offset = start
    while True:
        card = data[offset : offset + CARD].decode("ascii")
        offset += CARD
        if card.startswith("END") and not card[3:].strip():
            break
        cards.append(card)
    n_blocks = -(-(offset - start) // FITS_BLOCK)
    return start, n_blocks, cards


def _card(key, value, comment=""):
    """An 80-character card; strings unpadded in their quotes, as ACTL writes them."""
    if not isinstance(value, str) or key == "COMMENT":
        return fits.Card(key, value, comment).image
    text = f"{key:<8}= {"'" + value.replace("'", "''") + "'":<20}"
    if comment:
        text += f" / {comment}"
    if len(text) > CARD:
        raise ValueError(f"card {key} = {value!r} / {comment!r} is too long")
    return text.ljust(CARD)


def _rewrite_header(path, table, message, columns, values):
    """
    Turn a carrier table's header into a DigiCam one, in place.

    The header keeps its size (data do not move): the message name, ORIGIN,
    column names and protobuf ids are replaced, the TZERO of signed columns
    dropped (as in the real files), ``DATE-END`` renamed ``DATEEND`` (the
    ACTL writer's key), the values of ``values`` set, and CHECKSUM recomputed
    over the new header (the data, and so DATASUM, are unchanged).
    """
    data = bytearray(path.read_bytes())
    start, n_blocks, cards = _read_cards(data, table)
    parsed = [fits.Card.fromstring(card) for card in cards]
    names = {c.keyword[5:]: c.value for c in parsed if c.keyword.startswith("TTYPE")}
    new = []
    for image, card in zip(cards, parsed, strict=True):
        key = card.keyword
        for prefix in ("TTYPE", "TPBID", "TZERO"):
            number = key[len(prefix) :]
            if key.startswith(prefix) and number in names:
                column, pbid = columns[names[number]]
                if prefix == "TTYPE":
                    image = _card(key, column, card.comment)
                elif prefix == "TPBID":
                    image = _card(key, pbid, card.comment)
                elif column in SIGNED_COLUMNS:
                    image = None
                break
        else:
            if key == "PBFHEAD":
                image = _card(key, message, card.comment)
            elif key == "ORIGIN":
                image = _card(key, "CTA", card.comment)
            elif key == "DATE-END":
                image = _card("DATEEND", values["DATEEND"], card.comment)
            elif key in values:
                image = _card(key, values[key], card.comment)
        if image is not None:
            new.append(image)
    new.append(
        _card("COMMENT", "ctapipe_sst1m benchmarks/shower_run.py: simulated showers")
    )
    new.append(_card("COMMENT", "in the real noise of example_SST1M_20180822"))
    checksum_at = next(i for i, c in enumerate(new) if c.startswith("CHECKSUM"))
    datasum = int(
        fits.Card.fromstring(next(c for c in new if c.startswith("DATASUM"))).value
    )
    if len(new) + 1 > n_blocks * FITS_BLOCK // CARD:
        raise ValueError(f"{path}: the {table} header would grow")
    new[checksum_at] = _card("CHECKSUM", "0" * 16, "HDU checksum updated")
    header = _pack(new, n_blocks)
    total = _ones_complement_add(_ones_complement_sum(header), datasum)
    new[checksum_at] = _card(
        "CHECKSUM", _encode_checksum(~total & 0xFFFFFFFF), "HDU checksum updated"
    )
    data[start : start + n_blocks * FITS_BLOCK] = _pack(new, n_blocks)
    path.write_bytes(bytes(data))


def _pack(cards, n_blocks):
    text = "".join(cards) + "END".ljust(CARD)
    return text.ljust(n_blocks * FITS_BLOCK).encode("ascii")


def _ones_complement_add(a, b):
    total = a + b
    while total >> 32:
        total = (total & 0xFFFFFFFF) + (total >> 32)
    return total


def _ones_complement_sum(block):
    total = int(np.frombuffer(block, dtype=">u4").sum(dtype=np.uint64))
    return _ones_complement_add(total, 0)


def _encode_checksum(value):
    """The 16-character ASCII encoding of a FITS checksum (Seaman et al. 2002)."""
    excluded = set(b":;<=>?@[\\]^_`")
    encoded = bytearray(16)
    for i in range(4):
        byte = (value >> (24 - 8 * i)) & 0xFF
        quotient, remainder = divmod(byte, 4)
        chars = [quotient + 0x30] * 4
        chars[0] += remainder
        changed = True
        while changed:
            changed = False
            for j in (0, 2):
                if chars[j] in excluded or chars[j + 1] in excluded:
                    chars[j] += 1
                    chars[j + 1] -= 1
                    changed = True
        for j in range(4):
            encoded[4 * j + i] = chars[j]
    # rotated right by one character
    return bytes(encoded[(i - 1) % 16] for i in range(16)).decode("ascii")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path, help="file, or directory for the run")
    parser.add_argument("--events", type=int, default=2000, help="events in the run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tel", type=int, default=22, choices=(21, 22))
    parser.add_argument("--compression", default=COMPRESSION)
    args = parser.parse_args()
    output = args.output
    if output.is_dir() or not output.name.endswith(".fits.fz"):
        output = output / run_file_name(args.tel)
    run = write_shower_run(
        output, args.events, args.seed, tel_id=args.tel, compression=args.compression
    )
    shower = run.image_index >= 0
    intensity = run.true_images[run.image_index[shower]].sum(axis=1)
    print(
        f"{run.path}: {run.n_events} events ({run.n_pedestals} pedestals), tel "
        f"{run.tel_id}, true intensity median {np.median(intensity):.0f} p.e. "
        f"(from {len(run.true_images)} simulated images), "
        f"{run.path.stat().st_size / 2**20:.1f} MiB, written in {run.seconds:.1f} s"
    )


if __name__ == "__main__":
    main()
