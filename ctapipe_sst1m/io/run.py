"""
One DigiCam run: its files, checked, and what their headers and first event
say about it (size, run type, obs_id, event ids, baseline scale).
"""

import logging
from pathlib import Path

from ctapipe.core import Provenance

from .containers import DigiCamConfigContainer
from .pixel_order import detect_baseline_scale
from .zfits import (
    DigiCamFileError,
    check_file_integrity,
    check_run_files,
    find_run_chunks,
    inspect_digicam_file,
    parse_run_name,
)

__all__ = ["DigiCamRun", "run_files"]

log = logging.getLogger(__name__)


def run_files(input_url, input_filelist=(), multi_file=True):
    """
    The files of a run: ``input_filelist`` if given, else all chunks of the
    run of ``input_url`` (``multi_file``) or that file alone.

    Returns
    -------
    list[pathlib.Path]
    """
    if input_filelist:
        return [Path(f) for f in input_filelist]
    url = Path(input_url)
    return find_run_chunks(url) if multi_file else [url]


class DigiCamRun:
    """
    The checked files of one run and their headers.

    Parameters
    ----------
    files : list[pathlib.Path]
        In reading order.
    allow_missing_chunks, allow_copied_chunks : bool
        As `~ctapipe_sst1m.io.zfits.check_run_files`.
    logger : logging.Logger, optional
        Where the warnings go (the source's).

    Raises
    ------
    DigiCamFileError
        If a file is not a readable DigiCam file, the files are not one run, or
        the run has no events.
    """

    def __init__(
        self, files, allow_missing_chunks=False, allow_copied_chunks=False, logger=None
    ):
        self.log = logger or log
        self.files = list(files)
        self.headers = [inspect_digicam_file(f) for f in self.files]
        #: numbers of the chunks missing from the run (allow_missing_chunks)
        self.missing_chunks = check_run_files(
            self.headers,
            allow_missing_chunks=allow_missing_chunks,
            allow_copied_chunks=allow_copied_chunks,
        )
        #: events announced by the headers of the run's files
        self.n_events = sum(h.n_events for h in self.headers)
        if self.n_events == 0:
            raise DigiCamFileError(
                f"{', '.join(map(str, self.files))}: empty run, no events in the file(s)"
            )

    @property
    def name(self):
        """The first file's name, which the messages give."""
        return self.files[0].name

    @property
    def is_dark_run(self):
        """True for a dark run (RUNTYPE 'darkrun')."""
        return self.headers[0].events_header.get("RUNTYPE", "") == "darkrun"

    @property
    def target_header(self):
        """The TARGET header card of the first file ('' without one)."""
        return self.headers[0].events_header.get("TARGET", "")

    @property
    def has_digicam_config(self):
        """True if the first file has a DigicamConfig table."""
        return self.headers[0].has_digicam_config

    def check_integrity(self, verify_checksums=True):
        """
        Check every file's size and checksums, and record them as inputs in
        ctapipe's provenance.

        Raises
        ------
        DigiCamFileError
            Naming the first damaged file.
        """
        for header in self.headers:
            check_file_integrity(header, verify_checksums=verify_checksums)
        for path in self.files:
            Provenance().add_input_file(str(path), role="R0/Event", add_meta=False)

    @staticmethod
    def digicam_config(values):
        """The DigicamConfig row's values (a dict, or None) as a container."""
        return None if values is None else DigiCamConfigContainer(**values)

    def baseline_scale(self, first, configured=None):
        """
        The factor of DigiCam's baselines: ``configured``, or detected from the
        first event (with a warning when it is not the usual 16).
        """
        if configured:
            return configured
        scale = detect_baseline_scale(first)
        if scale != 16:
            self.log.warning(
                "%s: baselines are not 16 x baseline (commissioning data?), "
                "using them as they are",
                self.name,
            )
        return scale

    def uses_swat_ids(self, first, event_id_source):
        """
        True if event ids come from the SWAT array event number.

        Raises
        ------
        DigiCamFileError
            If ``event_id_source`` is 'swat' and the events have none.
        """
        has_swat = bool(first.array_event_number)
        if event_id_source == "swat" and not has_swat:
            raise DigiCamFileError(
                f"{self.files[0]}: event_id_source='swat' but the events carry no "
                "SWAT array event number (arrayEvtNum)"
            )
        use_swat = event_id_source == "swat" or (event_id_source == "auto" and has_swat)
        self.log.info(
            "event_id from %s", "SWAT arrayEvtNum" if use_swat else "camera eventNumber"
        )
        return use_swat

    def obs_id(self, first_date, configured=None):
        """
        The run's obs_id: ``configured``, else from the file name
        (YYYYMMDD * 10000 + run number), else from ``first_date`` (YYYYMMDD of
        the first event) with a warning.
        """
        if configured is not None:
            return configured
        run = parse_run_name(self.files[0])
        if run.obs_id is not None:
            return run.obs_id
        obs_id = int(run.date or first_date) * 10000
        self.log.warning(
            "%s: no run number in the file name (SST1M{T}_{YYYYMMDD}_{NNNN}.fits.fz), "
            "using obs_id %d; set SST1MEventSource.obs_id to choose one",
            self.name,
            obs_id,
        )
        return obs_id
