"""The SST-1M DigiCam event source."""

import gc
import logging
import sys
from collections import Counter, deque
from itertools import batched, groupby
from pathlib import Path as _Path

import astropy.units as u
import numpy as np
import tables
from astropy.table import Table
from ctapipe.containers import (
    CameraCalibrationContainer,
    CoordinateFrameType,
    EventIndexContainer,
    EventType,
    ObservationBlockContainer,
    ObservationBlockState,
    PixelStatus,
    PointingMode,
    R0CameraContainer,
    R1CameraContainer,
    SchedulingBlockContainer,
    SchedulingBlockType,
    StatisticsContainer,
    TelescopePointingContainer,
    TelescopeTriggerContainer,
    TriggerContainer,
)
from ctapipe.core import ToolConfigurationError
from ctapipe.core.traits import (
    Bool,
    CaselessStrEnum,
    Dict,
    Float,
    Int,
    List,
    Path,
)
from ctapipe.instrument import SubarrayDescription
from ctapipe.io import DataLevel, EventSource
from ctapipe.io.astropy_helpers import write_table
from ctapipe.io.hdf5dataformat import (
    DL0_TEL_POINTING_GROUP,
    DL1_SUBARRAY_TRIGGER_TABLE,
)

from ..calib import SST1MR1Calibrator, check_config_sections, check_image_extractor
from ..calib.pedestal_charges import PedestalChargeMonitor
from ..core import run_summary
from ..core.products import DL1, SST1M_CONFIG_GROUP, registered_files, write_hdf5_mark
from ..instrument import SST1M_TEL_IDS, add_telescope, load_sst1m_subarray
from ..instrument.constants import DIGICAM_N_PIXELS, DIGICAM_N_SAMPLES
from ..version import __version__
from .containers import (
    DigiCamConfigContainer,
    SST1MArrayEventContainer,
    SST1MCameraContainer,
    ctapipe_event_type,
)
from .decoder_process import DecoderError, DecoderProcess
from .decoding import InProcessDecoder, check_decoded
from .event_time import CameraClock, clock_scale_for
from .pedestal_tracker import PedestalTracker
from .pixel_order import PixelOrder
from .pointing import AltAzTracker, Target, parse_target, parse_target_name
from .run import DigiCamRun, run_files
from .zfits import DigiCamFileError, NotDigiCamFileError, inspect_digicam_file

# ctapipe-info --plugins reports the __version__ of the module of the source
__all__ = ["SST1MEventSource", "__version__"]

log = logging.getLogger(__name__)

#: pixel_status of a read-out DigiCam pixel: single (high) gain, stored as is
PIXEL_STORED = np.uint8(PixelStatus.HIGH_GAIN_STORED | PixelStatus.DVR_0)
#: pixel_status of an invalid pixel (disabled, dead, bad calibration): no gain
#: stored, which ctapipe reads as invalid
PIXEL_INVALID = np.uint8(0)
#: pixel_status bit of a pixel whose saturated pulse was recovered
PIXEL_SATURATED = np.uint8(PixelStatus.SATURATED)
#: where the R1 calibration provenance goes in ctapipe-process output files
R1_CALIBRATION_GROUP = f"{SST1M_CONFIG_GROUP}/r1_calibration"
#: events decoded before their times and pointing are computed together: astropy
#: Time and coordinate work is paid once per block instead of once per event
EVENTS_PER_BLOCK = 64


class SST1MEventSource(EventSource):
    """
    Reads SST-1M DigiCam raw data (protobuf zfits, ``DataModel.CameraEvent``).

    Claims files whose Events table holds DigiCam ``CameraEvent`` messages, in
    the legacy layout (Events is the first table) and the current one
    (DigicamConfig, then Events). A run may be split over several files
    (``<run>.000.fits.fz``, ``<run>.001.fits.fz``...) or given as an explicit
    list. Before anything is decoded every file is checked: its headers, its
    size and its checksums (protozfits crashes on damaged files), its telescope.

    Each event gets R0 (raw ADC, pixels in software order), R1, the trigger
    (time from the camera clock, ctapipe event type), the telescope pointing in
    AltAz when the run has a target, and SST-1M specific data in ``event.sst1m``.
    R1 is calibrated to photo-electrons by `~ctapipe_sst1m.calib.SST1MR1Calibrator`
    (gains, window, voltage drop, bad pixels, module swaps).

    After a successful ``ctapipe-process`` run the telescope pointing is also
    appended to the output file (``/dl0/monitoring/telescope/pointing``), where
    ctapipe's HDF5EventSource and TableLoader find it when reading the file back.

    ``max_events`` is lowered to the number of events the files' headers
    announce (it is set to that number when not given): ``ctapipe-process``
    sizes its progress bar with it, which then shows a total and an ETA. Inside
    a tool, the source prints a summary of the run to stderr when it closes
    (``print_summary``).
    """

    classes = [SST1MR1Calibrator, PedestalChargeMonitor]

    calibrate_r1 = Bool(
        True,
        help=(
            "Calibrate R1 to photo-electrons with SST1MR1Calibrator. False: R1 is "
            "the baseline-subtracted ADC."
        ),
    ).tag(config=True)

    pedestal_charge_statistics = Bool(
        True,
        help=(
            "Fill monitoring.pixel_statistics.pedestal_image of every event with "
            "the charge statistics of the latest pedestal events (for the SST-1M "
            "cleaning); needs calibrate_r1."
        ),
    ).tag(config=True)

    input_filelist = List(
        Path(exists=True, directory_ok=False),
        default_value=[],
        help=(
            "Files of one run, read in this order. If given, they replace the files "
            "found from input_url (which then defaults to the first of them)."
        ),
    ).tag(config=True)

    multi_file = Bool(
        True,
        help=(
            "If input_url is a chunk of a run split over several files "
            "(<run>.NNN.fits.fz), read all chunks of the run in order."
        ),
    ).tag(config=True)

    allow_missing_chunks = Bool(
        False,
        help=(
            "Read a run whose chunk files (<run>.NNN.fits.fz) have gaps, with a "
            "warning and a note in the product's completeness mark; by default "
            "such a run is refused."
        ),
    ).tag(config=True)

    allow_copied_chunks = Bool(
        False,
        help=(
            "Read a run whose chunks have identical content (copies of one file, "
            "as benchmarks build long runs); by default a copied chunk is refused."
        ),
    ).tag(config=True)

    obs_id = Int(
        None,
        allow_none=True,
        min=0,
        help=(
            "Observation id. Default: int(YYYYMMDD + NNNN) from the file name "
            "SST1M{T}_{YYYYMMDD}_{NNNN}.fits.fz, as SST-1M numbers runs."
        ),
    ).tag(config=True)

    event_id_source = CaselessStrEnum(
        ["auto", "swat", "camera"],
        default_value="auto",
        help=(
            "Where event_id comes from: 'swat' the SWAT array event number "
            "(arrayEvtNum, recorded since 2024-01-30), 'camera' the DigiCam event "
            "counter (eventNumber), 'auto' SWAT if the first event has it."
        ),
    ).tag(config=True)

    camera_clock_scale = CaselessStrEnum(
        ["auto", "tai", "utc"],
        default_value="auto",
        help=(
            "Time scale of the camera clock (local_time_sec/nanosec): 'tai' for the "
            "White Rabbit clock (from 2023-09-25), 'utc' for the camera server clock "
            "of earlier data; 'auto' chooses by the date of the first event."
        ),
    ).tag(config=True)

    telescope_id_map = Dict(
        key_trait=Int(),
        value_trait=Int(),
        default_value={},
        help=(
            "Map the telescopeID written by the camera to a tel_id, e.g. {1: 21}. "
            "The 2017 files of the prototype camera say telescopeID 1."
        ),
    ).tag(config=True)

    unknown_telescope_template = Int(
        22,
        allow_none=True,
        help=(
            "A telescopeID outside the SST-1M layout (21, 22) gets the description "
            "of this telescope, at the array reference point, with a warning. "
            "None: refuse such files."
        ),
    ).tag(config=True)

    pointing_ra = Float(
        None,
        allow_none=True,
        help="Pointing right ascension in deg (ICRS); overrides the TARGET header.",
    ).tag(config=True)

    pointing_dec = Float(
        None,
        allow_none=True,
        help="Pointing declination in deg (ICRS); overrides the TARGET header.",
    ).tag(config=True)

    pointing_node_spacing = Float(
        10.0,
        help=(
            "Seconds between the times at which the pointing is transformed to "
            "AltAz; events in between are interpolated linearly."
        ),
    ).tag(config=True)

    baseline_scale = Int(
        None,
        allow_none=True,
        help=(
            "DigiCam sends baselines multiplied by this factor (16 in all science "
            "data; 1 in the 2017 commissioning files). None: detect from the "
            "first event."
        ),
    ).tag(config=True)

    read_trigger_traces = Bool(
        False,
        help=(
            "Decode the trigger input traces and patch7/patch19 outputs into "
            "event.sst1m (in DigiCam firmware patch order)."
        ),
    ).tag(config=True)

    verify_checksums = Bool(
        True,
        help=(
            "Verify the FITS checksums (DATASUM) of every file before reading it. "
            "protozfits crashes on corrupted data, so switch off only for speed "
            "on files known to be good."
        ),
    ).tag(config=True)

    decoder = CaselessStrEnum(
        ["process", "in-process"],
        default_value="process",
        help=(
            "Where protozfits decodes the raw data: 'process', a child process "
            "with limited memory whose crash on a damaged file becomes a clean "
            "refusal naming the file and the event, and which decodes while the "
            "events are processed; 'in-process', in this process (for debugging "
            "and profiling; a damaged file can crash the interpreter). The "
            "events are the same bit for bit."
        ),
    ).tag(config=True)

    decoder_memory_gib = Float(
        2.0,
        min=0.25,
        help=(
            "Memory (address space, GiB) the decoder process may use; a file "
            "whose headers make protozfits allocate more is refused."
        ),
    ).tag(config=True)

    decoder_timeout = Float(
        60.0,
        min=1.0,
        help=(
            "Seconds the decoder process may take to deliver the next event "
            "before the file is declared unreadable."
        ),
    ).tag(config=True)

    freeze_gc_at_exit = Bool(
        True,
        help=(
            "When the source closes inside a tool that is the process's command "
            "(ctapipe-process from a shell), gc.freeze() the interpreter's "
            "objects so that the garbage collection at exit skips them (0.5-0.9 s "
            "per run). Never done in other processes (notebooks, tests)."
        ),
    ).tag(config=True)

    write_pointing = Bool(
        True,
        help=(
            "After a complete run inside ctapipe-process, append the telescope "
            "pointing to the DataWriter output (/dl0/monitoring/telescope/pointing)."
            " The R1 calibration provenance is always appended "
            "(/configuration/sst1m/r1_calibration)."
        ),
    ).tag(config=True)

    print_summary = Bool(
        True,
        help=(
            "Inside a tool (ctapipe-process), print a summary of the run to stderr "
            "when the source closes: events read and written, their types, the "
            "images surviving the cleaning, pedestals and NSB voltage drop, "
            "pointing. Not printed with the tool's --quiet; used as a library "
            "(no tool), the source logs it at INFO instead."
        ),
    ).tag(config=True)

    is_simulation = False
    datalevels = (DataLevel.R0, DataLevel.R1)

    def __init__(self, input_url=None, config=None, parent=None, **kwargs):
        filelist = kwargs.get("input_filelist") or []
        if input_url is None and filelist:
            input_url = filelist[0]
        super().__init__(input_url=input_url, config=config, parent=parent, **kwargs)
        if self.input_filelist and input_url is None:
            self.input_url = self.input_filelist[0]

        files = run_files(self.input_url, self.input_filelist, self.multi_file)
        self._check_output_is_not_input(files)
        # reading only one chunk of a run is asked for with multi_file=False
        one_chunk = not self.multi_file and not self.input_filelist
        #: the run's files, checked, and their headers
        self.run = DigiCamRun(
            files,
            allow_missing_chunks=self.allow_missing_chunks or one_chunk,
            allow_copied_chunks=self.allow_copied_chunks,
            logger=self.log,
        )
        if self.run.missing_chunks and not one_chunk:
            self.log.warning(
                "%s: chunk(s) %s of the run missing, reading the others "
                "(allow_missing_chunks); recorded in the product's mark",
                self.run.name,
                ", ".join(f"{c:03d}" for c in self.run.missing_chunks),
            )
        # ctapipe-process passes max_events to its progress bar as the total:
        # with the headers' count the bar shows how far the run is and an ETA
        if not self.max_events or self.max_events > self.n_events_in_files:
            self.max_events = self.n_events_in_files
        # started before the checksums are verified: it imports meanwhile, and
        # decodes nothing before it is told to
        self._decoder = self._make_decoder()
        #: events taken from the decoder (each once, look-ahead included)
        self.n_decoded = 0
        self._input_fault = None
        try:
            self._open_run()
        except BaseException:
            self._close_decoder()
            raise

    def _open_run(self):
        self.run.check_integrity(verify_checksums=self.verify_checksums)
        # the first event of the run tells the telescope, the clock and the
        # event ids; it is kept for the stream, not decoded twice. The other
        # files' telescope is checked when they are reached.
        self._decoded = self._decoded_events(self._decoder)
        self._lookahead = deque()
        first = self._read_ahead(1)
        if first is None:
            raise DigiCamFileError(
                f"{self.files[0]}: the headers announce {self.n_events_in_files} "
                "events, the decoder found none"
            )
        self.tel_id = self.telescope_id_map.get(first.telescope_id, first.telescope_id)
        self._subarray = self._build_subarray()

        # the configuration the hosting tool was given: a misspelt section or an
        # extraction window outside the 50 samples would pass silently
        check_config_sections(self.config)
        if self.tel_id in self._subarray.tel:
            n_samples = self._subarray.tel[self.tel_id].camera.readout.n_samples
            check_image_extractor(self.config, self._subarray, self.tel_id, n_samples)
        try:
            self.digicam_config = self.run.digicam_config(self._decoder.digicam_config())
        except DecoderError as err:
            raise DigiCamFileError(str(err)) from None

        self.clock = self._make_clock(first.seconds)
        self._use_swat_ids = self.run.uses_swat_ids(first, self.event_id_source)
        first_date = self.clock.to_time(first.seconds, 0).utc.strftime("%Y%m%d")
        self.obs_id = self.run.obs_id(first_date, configured=self.obs_id)
        self.target = self._choose_target()
        self._tracker = None
        if self.target.has_position:
            location = self._subarray.tel_earth_locations[self.tel_id]
            self._tracker = AltAzTracker(
                self.target, location, node_spacing=self.pointing_node_spacing
            )

        start = self.clock.to_time(first.seconds, first.nanoseconds)
        self._scheduling_blocks, self._observation_blocks = self._make_blocks(start)

        self.skipped = Counter()
        #: events yielded per ctapipe event type, for the summary
        self.event_types = Counter()
        self._voltage_drop_range = (np.inf, -np.inf)
        self._last_drop = (None, None)
        self.n_read = 0
        self._n_yielded = 0
        self._n_iterations = 0
        self._exhausted = False
        self.r1_calibrator = None
        self.pedestal_charges = None
        self.pedestals = None
        physical_order = None
        if not self.calibrate_r1:
            self.log.warning(
                "R1 waveforms are baseline-subtracted ADC counts, NOT calibrated to "
                "photo-electrons (SST1MEventSource.calibrate_r1 is false)"
            )
        elif self.tel_id in self._subarray.tel:  # else allowed_tels excludes it
            physical_order = self._setup_calibration(start)
        self.pixel_order = PixelOrder(
            self.run.baseline_scale(first, configured=self.baseline_scale),
            physical_order,
        )
        if self.r1_calibrator is not None:
            #: the pedestal events' look-ahead and statistics (None: no R1
            #: calibration)
            self.pedestals = PedestalTracker(
                self.tel_id,
                self.r1_calibrator,
                self.pedestal_charges,
                self.pixel_order,
                self.run.name,
                self.log,
            )

    # ------------------------------------------------------------- the run

    @property
    def files(self):
        """The run's files, in reading order."""
        return self.run.files

    @property
    def headers(self):
        """Headers of the run's files (`~ctapipe_sst1m.io.zfits.ZFitsHeaderInfo`)."""
        return self.run.headers

    @property
    def missing_chunks(self):
        """Chunks missing from the run (read with allow_missing_chunks)."""
        return self.run.missing_chunks

    @property
    def n_events_in_files(self):
        """Events announced by the headers of the run's files."""
        return self.run.n_events

    # ------------------------------------------------------------------ setup

    def _setup_calibration(self, start):
        """The R1 calibrator and the pedestal charges; the software -> physical
        pixel permutation of the swapped modules."""
        self.r1_calibrator = SST1MR1Calibrator(self._subarray, parent=self)
        if self.pedestal_charge_statistics:
            self.pedestal_charges = PedestalChargeMonitor(self._subarray, parent=self)
        model = (
            self.tel_id
            if self.tel_id in SST1M_TEL_IDS
            else self.unknown_telescope_template
        )
        return self.r1_calibrator.prepare(
            self.tel_id, start, model_tel_id=model, dark_run=self.run.is_dark_run
        )

    # ------------------------------------------------------------- decoding

    def _make_decoder(self):
        config_fields = (
            list(DigiCamConfigContainer.fields) if self.run.has_digicam_config else None
        )
        if self.decoder == "in-process":
            return InProcessDecoder(self.files, self.read_trigger_traces, config_fields)
        try:
            return DecoderProcess(
                self.files,
                with_trigger=self.read_trigger_traces,
                memory_gib=self.decoder_memory_gib,
                timeout=self.decoder_timeout,
                config_fields=config_fields,
            )
        except DecoderError as err:
            raise DigiCamFileError(
                f"{self.files[0]}: {err}; set SST1MEventSource.decoder='in-process'"
            ) from None

    def _decoded_events(self, decoder):
        """The decoder's (file index, event), its failure as DigiCamFileError."""
        in_file = Counter()
        try:
            decoder.start()
            for file_index, decoded in decoder.events():
                self.n_decoded += 1
                # protozfits may decode a damaged file without an error, into
                # events with too few samples or none: refused before any use
                fault = check_decoded(decoded, DIGICAM_N_PIXELS, DIGICAM_N_SAMPLES)
                if fault:
                    raise self._damaged(
                        f"{self.files[file_index]}: event {in_file[file_index]} of "
                        f"this file (camera event number {decoded.event_number}) "
                        f"decoded with {fault}; the file is damaged"
                    )
                in_file[file_index] += 1
                yield file_index, decoded
        except DecoderError as err:
            raise self._damaged(str(err)) from None

    def _damaged(self, message):
        """The refusal of a damaged input found while reading, remembered: the
        tool's output of the run is then removed when the source closes."""
        self._input_fault = message
        return DigiCamFileError(message)

    def _read_ahead(self, n):
        """Decode up to ``n`` events in total into the look-ahead buffer; the
        first event, None if there is none."""
        while len(self._lookahead) < n:
            item = next(self._decoded, None)
            if item is None:
                break
            self._lookahead.append(item)
        return self._lookahead[0][1] if self._lookahead else None

    def _close_decoder(self):
        if getattr(self, "_decoder", None) is not None:
            self._decoder.close()

    def close(self):
        """Stop the decoder process (if any) and close the source."""
        self._close_decoder()
        super().close()

    def _check_output_is_not_input(self, files):
        """
        Refuse an output path that is one of the run's files: with ``overwrite``,
        ctapipe's DataWriter deletes an existing output before any event is read.
        The output is read from the configuration the tool was given
        (``DataWriter.output_path``, ctapipe-process's ``--output``).
        """
        output = self._configured_output()
        if output is None:
            return
        for path in files:
            if path.resolve() == output:
                raise DigiCamFileError(
                    f"{path}: the output file (DataWriter.output_path) is this input "
                    "raw file; choose another output name"
                )

    def _configured_output(self):
        """``DataWriter.output_path`` of the tool's configuration, resolved, or None."""
        writer_config = self.config.get("DataWriter", {})
        output = writer_config.get("output_path") if writer_config else None
        return _Path(output).expanduser().resolve() if output else None

    def _build_subarray(self):
        subarray = load_sst1m_subarray()
        if self.tel_id not in SST1M_TEL_IDS:
            template = self.unknown_telescope_template
            if template is None:
                raise DigiCamFileError(
                    f"{self.files[0]}: telescopeID {self.tel_id} is not an SST-1M "
                    f"telescope {SST1M_TEL_IDS}; map it with "
                    "SST1MEventSource.telescope_id_map or set "
                    "SST1MEventSource.unknown_telescope_template"
                )
            self.log.warning(
                "%s: telescopeID %d is not in the SST-1M layout %s (a prototype "
                "camera?): describing it like tel %d, placed at the array reference "
                "point. Use SST1MEventSource.telescope_id_map to map it.",
                self.files[0].name,
                self.tel_id,
                SST1M_TEL_IDS,
                template,
            )
            subarray = add_telescope(subarray, self.tel_id, template_tel_id=template)
        # a raw file holds one telescope: the subarray is that telescope, as
        # ctapipe's monitoring sources expect data for every telescope in it
        allowed = not self.allowed_tels or self.tel_id in self.allowed_tels
        return subarray.select_subarray(
            [self.tel_id] if allowed else [], name=subarray.name
        )

    def _make_clock(self, first_second):
        scale = self.camera_clock_scale
        if scale == "auto":
            scale = clock_scale_for(first_second)
        self.log.info("Camera clock read as %s", scale.upper())
        return CameraClock(scale, first_second)

    def _choose_target(self):
        header_target = self.run.target_header
        target = Target(name="UNKNOWN")
        if header_target:
            try:
                target = parse_target(header_target)
            except ValueError as err:
                if self.pointing_ra is None:
                    raise DigiCamFileError(
                        f"{self.files[0]}: {err}; set SST1MEventSource.pointing_ra "
                        "and pointing_dec to give the position"
                    ) from None
                # a name (and wobble) without a position: the configured
                # position is the target's (the nightly takes it from a catalogue)
                target = parse_target_name(header_target)
        if (self.pointing_ra is None) != (self.pointing_dec is None):
            raise ToolConfigurationError(
                "SST1MEventSource.pointing_ra and pointing_dec: only one is set; "
                "set both (deg, ICRS)"
            )
        if self.pointing_ra is not None:
            self.log.info(
                "Pointing from config: RA %.4f deg, Dec %.4f deg (TARGET header: %s)",
                self.pointing_ra,
                self.pointing_dec,
                header_target,
            )
            return Target(
                name=target.name,
                ra=self.pointing_ra,
                dec=self.pointing_dec,
                wobble=target.wobble,
            )
        if not target.has_position:
            self.log.warning(
                "%s: %s, telescope pointing is unknown (NaN). Set "
                "SST1MEventSource.pointing_ra/pointing_dec to give it.",
                self.files[0].name,
                f"TARGET is {header_target!r} (no sky position)"
                if header_target
                else "no TARGET header",
            )
        return target

    def _make_blocks(self, start):
        sb = SchedulingBlockContainer(
            sb_id=np.uint64(self.obs_id),
            producer_id=f"SST1M-{self.tel_id}",
            sb_type=SchedulingBlockType.OBSERVATION,
            pointing_mode=PointingMode.TRACK
            if self.target.has_position
            else PointingMode.UNKNOWN,
        )
        ob = ObservationBlockContainer(
            obs_id=np.uint64(self.obs_id),
            sb_id=np.uint64(self.obs_id),
            producer_id=f"SST1M-{self.tel_id}",
            state=ObservationBlockState.COMPLETED_SUCCEDED,
            subarray_pointing_lat=self.target.dec * u.deg,
            subarray_pointing_lon=self.target.ra * u.deg,
            subarray_pointing_frame=CoordinateFrameType.ICRS
            if self.target.has_position
            else CoordinateFrameType.UNKNOWN,
            actual_start_time=start,
        )
        return {self.obs_id: sb}, {self.obs_id: ob}

    # ------------------------------------------------------------- properties

    @property
    def subarray(self) -> SubarrayDescription:
        return self._subarray

    @property
    def observation_blocks(self):
        return self._observation_blocks

    @property
    def scheduling_blocks(self):
        return self._scheduling_blocks

    @staticmethod
    def is_compatible(file_path):
        """
        True for SST-1M DigiCam raw files (checks FITS headers only, never raises),
        and for damaged files named like them.

        A file named ``*.fits.fz`` that is truncated, compressed, empty or not
        FITS at all is claimed, so that opening it says in one line what is
        wrong with it (ctapipe would only say that no source claimed it);
        well-formed files of other cameras (LST, NectarCAM) are not, and their
        refusal is logged at DEBUG only.
        """
        try:
            inspect_digicam_file(file_path)
        except NotDigiCamFileError as err:
            log.debug("%s", err)
            return False
        except Exception as err:
            named_like_raw = str(file_path).endswith(".fits.fz")
            log.debug("%s", err)
            return named_like_raw
        return True

    # ------------------------------------------------------------------ events

    def _stream(self):
        """(file index, event) of the whole run: the look-ahead, then the rest."""
        self._n_iterations += 1
        if self._n_iterations > 1:
            # iterated again: decoded again from the start, primed already
            self._close_decoder()
            self._decoder = self._make_decoder()
            self._decoded = self._decoded_events(self._decoder)
            self._lookahead.clear()
            self.n_read = 0
        elif self.pedestals is not None:
            self._read_ahead(self.pedestals.look_ahead)
            self.pedestals.prime([decoded for _, decoded in self._lookahead])
        # while the look-ahead's events are processed, the decoder process goes
        # on decoding into the buffer, which never holds more than the
        # look-ahead's events still to yield (so memory only falls): with its
        # ring alone the child would wait after 96 of them
        to_yield = len(self._lookahead)
        while self._lookahead:
            yield self._lookahead.popleft()
            to_yield -= 1
            while len(self._lookahead) < to_yield and self._decoder.ready():
                item = next(self._decoded, None)
                if item is None:
                    break
                self._lookahead.append(item)
        yield from self._decoded

    def _blocks(self):
        """Blocks of up to EVENTS_PER_BLOCK events of one file."""
        for file_index, items in groupby(self._stream(), key=lambda item: item[0]):
            for block in batched(items, EVENTS_PER_BLOCK):
                yield self.files[file_index], [decoded for _, decoded in block]

    def _generator(self):
        counter = 0
        for path, block in self._blocks():
            first_index = self.n_read
            self.n_read += len(block)
            for event in self._fill_block(path, block, first_index):
                event.count = counter
                self._n_yielded += 1
                self._tally(event)
                yield event
                counter += 1
        self._exhausted = True
        self._log_counts()

    def _tally(self, event):
        """Count what the end-of-run summary reports."""
        self.event_types[event.trigger.event_type] += 1
        drop = event.sst1m.tel[self.tel_id].voltage_drop_factor
        if drop is not None:
            # the calibrator makes a new factor for each pedestal event only:
            # its median is taken once
            if drop is not self._last_drop[0]:
                self._last_drop = (drop, float(np.median(drop)))
            drop = self._last_drop[1]
            low, high = self._voltage_drop_range
            self._voltage_drop_range = (min(low, drop), max(high, drop))

    def _fill_block(self, path, block, first_index):
        """Events of a block of decoded messages; times and pointing per block."""
        seconds = np.array([e.seconds for e in block], dtype=np.int64)
        nanoseconds = np.array([e.nanoseconds for e in block], dtype=np.int64)
        times = self.clock.to_time(seconds, nanoseconds)
        pointing = None
        if self._tracker is not None:
            alt, az = self._tracker(self.clock.to_unix_tai(seconds, nanoseconds))
            n = len(block)
            pointing = (
                u.Quantity(alt, u.rad),
                u.Quantity(az, u.rad),
                u.Quantity(np.full(n, self.target.ra), u.deg),
                u.Quantity(np.full(n, self.target.dec), u.deg),
            )
        for i, decoded in enumerate(block):
            event = self._fill_event(path, decoded, times[i], first_index + i)
            if event is None:
                continue
            if pointing is not None:
                self._fill_pointing(event, *(values[i] for values in pointing))
            yield event

    def _skip(self, reason):
        self.skipped[reason] += 1

    def _fill_event(self, path, decoded, time, index):
        tel_id = self.telescope_id_map.get(decoded.telescope_id, decoded.telescope_id)
        if tel_id != self.tel_id:
            raise self._damaged(
                f"{path}: event {decoded.event_number} comes from telescope {tel_id}, "
                f"the run ({self.files[0].name}) from telescope {self.tel_id}; the "
                "files of one run must come from one telescope"
            )
        if tel_id not in self._subarray.tel:
            self._skip(f"tel {tel_id} not in allowed_tels")
            return None
        if self._use_swat_ids:
            if not decoded.array_event_number:
                self._skip("no SWAT array event number")
                return None
            event_id = decoded.array_event_number
        else:
            event_id = decoded.event_number

        samples, baseline, flags = self.pixel_order(decoded)
        n_pixels = len(flags)
        disabled = flags == 0
        if self.pedestals is None:
            r1_waveform = np.subtract(samples, baseline[:, np.newaxis], dtype=np.float32)
            invalid = disabled
            r1_waveform[invalid] = 0.0
            saturated = None
        else:
            r1_waveform, invalid, saturated = self.pedestals.calibrate(
                index, decoded, samples, baseline, disabled
            )
        # ctapipe's data model: a pixel with no gain marked as stored is invalid
        pixel_status = np.where(invalid, PIXEL_INVALID, PIXEL_STORED)
        if saturated is not None and saturated.any():
            pixel_status[saturated] |= PIXEL_SATURATED
        event_type = ctapipe_event_type(decoded.event_type, self.run.is_dark_run)

        event = SST1MArrayEventContainer(
            index=EventIndexContainer(obs_id=self.obs_id, event_id=event_id),
            trigger=TriggerContainer(
                time=time,
                tels_with_trigger=np.array([tel_id], dtype=np.uint16),
                event_type=event_type,
            ),
        )
        event.meta["origin"] = "SST1M"
        event.meta["input_url"] = path
        event.trigger.tel[tel_id] = TelescopeTriggerContainer(
            time=time, event_type=event_type
        )
        event.r0.tel[tel_id] = R0CameraContainer(waveform=samples[np.newaxis])
        event.r1.tel[tel_id] = R1CameraContainer(
            waveform=r1_waveform[np.newaxis],
            event_type=event_type,
            event_time=time,
            pixel_status=pixel_status,
            selected_gain_channel=np.zeros(n_pixels, dtype=np.int8),
        )
        # disabled, dead and badly calibrated pixels are outliers for ctapipe's
        # extractors and its invalid-pixel interpolation
        event.monitoring.tel[tel_id].camera.coefficients = CameraCalibrationContainer(
            outlier_mask=invalid[np.newaxis]
        )
        event.sst1m.tel[tel_id] = self._sst1m_data(decoded, flags, baseline)
        if self.pedestals is not None:
            statistics = self.pedestals.statistics()
            if statistics is not None:
                event.monitoring.tel[
                    tel_id
                ].camera.pixel_statistics.pedestal_image = StatisticsContainer(
                    mean=statistics.mean, std=statistics.std
                )
        return event

    def _sst1m_data(self, decoded, flags, baseline):
        data = SST1MCameraContainer(
            camera_event_number=decoded.event_number,
            array_event_number=decoded.array_event_number or -1,
            event_type_flags=decoded.event_type,
            local_camera_clock=np.int64(decoded.seconds) * 1_000_000_000
            + np.int64(decoded.nanoseconds),
            pixel_flags=flags,
            digicam_baseline=baseline,
        )
        if self.pedestals is not None:
            data.voltage_drop_factor = self.pedestals.voltage_drop()
        if self.read_trigger_traces:
            n_samples = len(decoded.samples) // len(flags)
            data.trigger_input_traces = _trigger_input(decoded.trigger_input)
            data.trigger_output_patch7 = _trigger_output(
                decoded.trigger_patch7, n_samples
            )
            data.trigger_output_patch19 = _trigger_output(
                decoded.trigger_patch19, n_samples
            )
        return data

    def _fill_pointing(self, event, altitude, azimuth, ra, dec):
        event.monitoring.tel[self.tel_id].pointing = TelescopePointingContainer(
            altitude=altitude, azimuth=azimuth
        )
        array = event.monitoring.pointing
        array.array_altitude = altitude
        array.array_azimuth = azimuth
        array.array_ra = ra
        array.array_dec = dec

    # ----------------------------------------------------------------- closing

    def _log_counts(self):
        self.log.info(
            "Read %d events, yielded %d%s",
            self.n_read,
            self._n_yielded,
            "".join(f", skipped {n} ({reason})" for reason, n in self.skipped.items()),
        )

    @property
    def completed(self):
        """True once all events were read, or ``max_events`` were yielded."""
        return self._exhausted or (
            self.max_events is not None and self._n_yielded >= self.max_events
        )

    def pointing_table(self):
        """
        The telescope pointing of the events read so far, as interpolation nodes.

        Returns
        -------
        astropy.table.Table or None
            None if the run has no sky position.
        """
        return None if self._tracker is None else self._tracker.node_table()

    def __exit__(self, exc_type, exc_value, traceback):
        self._write_run_products(interrupted=exc_type is KeyboardInterrupt)
        self._show_summary()
        super().__exit__(exc_type, exc_value, traceback)
        self._freeze_gc_before_exit()

    def _freeze_gc_before_exit(self):
        """
        At the end of a tool that is the process's command (``ctapipe-process``
        run from a shell), move the interpreter's objects out of the garbage
        collector's reach: the collection at the process's exit then skips
        the 300000 objects of ctapipe, astropy and numba, 0.5 to 0.9 s of a
        run. Reference counting still frees them; only reference cycles among
        them would stay, which does not matter to a process that is about to
        exit, and is why nothing is frozen in any other process (a notebook,
        tests, a tool run inside a longer program).
        """
        tool = run_summary.hosting_tool(self)
        if (
            self.freeze_gc_at_exit
            and tool is not None
            and _Path(sys.argv[0]).name == tool.name
        ):
            gc.freeze()

    def event_counts(self, n_written):
        """
        What became of every event of the run's files.

        Parameters
        ----------
        n_written : int
            Events the hosting tool wrote (rows of its trigger table).

        Returns
        -------
        dict
            reason -> events; the values add up to the events in the files.
        """
        counts = {"written": n_written}
        if self._n_yielded > n_written:
            counts["not written by the tool (its event filters)"] = (
                self._n_yielded - n_written
            )
        for reason, n in self.skipped.items():
            counts[f"skipped: {reason}"] = n
        not_read = self.n_events_in_files - self._n_yielded - sum(self.skipped.values())
        if not_read > 0:
            counts["not processed (max_events)"] = not_read
        return counts

    def summary(self, output=None):
        """
        A one-screen summary of the run: what was read, written and measured.

        Parameters
        ----------
        output : pathlib.Path, optional
            The DL1 file the hosting tool wrote; its events, their types and
            the images surviving the cleaning are counted in it.

        Returns
        -------
        list[str]
            A title and aligned lines, as printed at the end of ctapipe-process.

        Raises
        ------
        OSError
            If ``output`` cannot be read.
        """
        more = f" and {len(self.files) - 1} more files" if len(self.files) > 1 else ""
        rows = [
            (
                "input",
                f"{self.files[0].name}{more}: tel {self.tel_id}, obs_id {self.obs_id}, "
                + run_summary.plural(self.n_events_in_files, "event"),
            )
        ]
        if output is None:
            rows.append(
                ("events", f"{self._n_yielded} read: " + self._describe_read_types())
            )
        else:
            counts = run_summary.read_dl1_counts(output)
            rows += [
                ("output", f"{run_summary.short_path(output)}: {self._state(counts)}"),
                ("left out", self._describe_left_out(counts.n_events)),
                ("events", run_summary.describe_event_types(counts.event_types)),
                ("cleaning", run_summary.describe_cleaning(counts)),
            ]
        rows += [
            ("pedestals", self._describe_pedestals()),
            ("pointing", self._describe_pointing()),
        ]
        title = (
            f"{self.__class__.__name__} summary "
            f"(--{self.__class__.__name__}.print_summary=False hides it)"
        )
        return run_summary.format_summary(title, rows)

    def _state(self, counts):
        """``32 events written, marked complete`` or why it is not."""
        written = f"{counts.n_events} events written"
        if self.completed:
            return f"{written}, marked complete"
        return (
            f"{written}, INCOMPLETE: stopped after {self._n_yielded} of "
            f"{self.n_events_in_files} events, not marked complete"
        )

    def _describe_left_out(self, n_written):
        counts = self.event_counts(n_written)
        return ", ".join(
            f"{n} {reason}" for reason, n in counts.items() if reason != "written" and n
        )

    def _describe_read_types(self):
        ordered = self.event_types.most_common()
        return ", ".join(f"{n} {t.name}" for t, n in ordered) or "none"

    def _describe_pedestals(self):
        n = self.event_types[EventType.SKY_PEDESTAL]
        n += self.event_types[EventType.DARK_PEDESTAL]
        if self.r1_calibrator is None:
            return f"{n} events; R1 not calibrated, no NSB voltage-drop correction"
        if n == 0 and (self.pedestals is None or self.pedestals.n_primed == 0):
            return "none: no NSB voltage-drop correction"
        mode = self.r1_calibrator.voltage_drop_correction
        low, high = self._voltage_drop_range
        if mode == "none" or not np.isfinite(low):
            return f"{n} events; NSB voltage-drop correction {mode}"
        spread = f" to {high:.3f}" if high - low >= 5e-4 else ""
        return f"{n} events; NSB voltage drop {low:.3f}{spread} ({mode})"

    def _describe_pointing(self):
        target = self.target
        if not target.has_position:
            header = self.headers[0].events_header.get("TARGET")
            why = f"TARGET {header!r}" if header else "no TARGET header"
            return f"unknown ({why}); set SST1MEventSource.pointing_ra/pointing_dec"
        name = "" if target.name == "UNKNOWN" else f"{target.name}, "
        return f"{name}RA {target.ra:.3f} deg, Dec {target.dec:.3f} deg (ICRS)"

    def _show_summary(self):
        """
        Print the summary at the end of a tool's run, or log it at INFO when the
        source is used as a library; nothing if the tool wrote no DL1 output
        (it failed before, and said why).
        """
        hosted = run_summary.hosting_tool(self) is not None
        outputs = [p for p in registered_files("output", role="DL1/Event") if p.is_file()]
        if hosted and not outputs:
            return
        try:
            lines = self.summary(outputs[-1] if outputs else None)
        except (OSError, tables.HDF5ExtError, tables.NoSuchNodeError) as err:
            self.log.warning("No run summary: %s", err)
            return
        if run_summary.summary_wanted(self, self.print_summary):
            print("\n".join(lines), file=sys.stderr, flush=True)
        elif not hosted:
            self.log.info("\n".join(lines))

    def _write_run_products(self, interrupted=False):
        """
        Append the pointing and the calibration provenance to the DL1 output of
        the tool that read this source, then mark the output complete, once the
        run is complete.

        The output is the one ctapipe's DataWriter registered with ctapipe's
        Provenance when it closed it (the source exits after the writer).
        ``interrupted``: a Ctrl-C reached the tool's exit (while the writer
        closed its file, which it then did not register).
        """
        outputs = [p for p in registered_files("output", role="DL1/Event") if p.is_file()]
        configured = self._configured_output()
        if not outputs and interrupted and configured is not None and configured.exists():
            self.log.error(
                "%s: INCOMPLETE, interrupted while the tool closed it; not marked "
                "complete, package tools will refuse it",
                configured,
            )
            return
        if not outputs:
            # a tool that failed before writing anything has said why already
            if self.parent is not None and self.completed:
                self.log.warning(
                    "%s: no DL1 output registered by the hosting tool; no pointing, "
                    "calibration provenance or completeness mark written",
                    self.files[0].name,
                )
            return
        for output in outputs:
            if not self.completed and self._input_fault is not None:
                # the run can never be completed from these files: nothing is
                # left under the output name (the refusal was said already)
                output.unlink(missing_ok=True)
                self.log.warning(
                    "%s: removed, the run stopped on a damaged input", output
                )
                continue
            if not self.completed:
                self.log.error(
                    "%s: INCOMPLETE, the run stopped after %d of %d events; not "
                    "marked complete, package tools will refuse it",
                    output,
                    self._n_yielded,
                    self.n_events_in_files,
                )
                continue
            try:
                self._append_run_products(output)
            except KeyboardInterrupt:
                # Ctrl-C after the last event: the mark is written last, so the
                # file is not marked; say so before the interrupt goes on
                self.log.error(
                    "%s: INCOMPLETE, interrupted while the pointing, calibration "
                    "provenance and completeness mark were written; not marked "
                    "complete, package tools will refuse it",
                    output,
                )
                raise

    def _append_run_products(self, output):
        pointing = self.pointing_table()
        if self.write_pointing and pointing is not None:
            key = f"{DL0_TEL_POINTING_GROUP}/tel_{self.tel_id:03d}"
            write_table(pointing, output, key, overwrite=True)
            self.log.info(
                "Wrote pointing (%d nodes) to %s:%s", len(pointing), output, key
            )
        if self.r1_calibrator is not None:
            provenance = Table(rows=[self.r1_calibrator.provenance(self.tel_id)])
            key = f"{R1_CALIBRATION_GROUP}/tel_{self.tel_id:03d}"
            write_table(provenance, output, key, overwrite=True)
        with tables.open_file(output, mode="r") as h5file:
            n_written = h5file.get_node(DL1_SUBARRAY_TRIGGER_TABLE).nrows
        counts = self.event_counts(n_written)
        write_hdf5_mark(
            output,
            DL1,
            events_in=sum(counts.values()),
            events_out=n_written,
            counts=counts,
            inputs=[f.name for f in self.files],
            notes=[
                f"chunk {c:03d} of the run missing (allow_missing_chunks)"
                for c in self.missing_chunks
            ],
        )
        self.log.info("%s: complete, %s", output, counts)


def _trigger_input(traces):
    """Trigger input traces as (432 patches, n_samples), firmware patch order."""
    per_sample = traces.reshape(-1, 3, 192)[:, :, :144]
    return per_sample.reshape(len(per_sample), -1).T.copy()


def _trigger_output(bits, n_samples):
    """Trigger output bits as bool (432 patches, n_samples), firmware patch order."""
    unpacked = np.unpackbits(bits.reshape(n_samples, -1), axis=1, bitorder="little")
    return unpacked.astype(bool).T.copy()
