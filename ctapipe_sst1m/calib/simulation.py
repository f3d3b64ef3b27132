"""
SST-1M corrections of simulated charges, as a ctapipe MonitoringSource.

The data are divided by the NSB voltage drop of gain x PDE
(`~ctapipe_sst1m.calib.pedestals`). Simulations made with a quantum-efficiency
file for a given NSB level (``qe_SST1M_5477_ave_TEL1_NSB136.0``...) get the
matching PDE drop, measured for that file, as a division of their charges. The
factor goes into ``event.monitoring.tel[tel_id].camera.coefficients.factor``,
which ctapipe's CameraCalibrator multiplies into the extracted charges, so that
``ctapipe-process`` applies it when ``ProcessorTool.monitoring_source_list``
names this source (``sst1m_mc.yaml``).

The source also guards the DL1 product of ``ctapipe-process``: the sim_telarray
input is checked complete before any event is processed (`scan_simtel_file`:
a file cut short or with damaged compressed data is refused), and the DL1
output is marked complete (`ctapipe_sst1m.core.products`) once the tool has
written it to the end.
"""

import re
from collections import defaultdict
from functools import cache
from pathlib import Path, PurePath

import astropy.units as u
import numpy as np
import tables
from astropy.table import Table
from ctapipe.core import ToolConfigurationError
from ctapipe.core.traits import Bool, FloatTelescopeParameter
from ctapipe.core.traits import Path as PathTrait
from ctapipe.io import MonitoringSource, MonitoringType
from ctapipe.io.hdf5dataformat import (
    DL1_SUBARRAY_TRIGGER_TABLE,
    SHOWER_DISTRIBUTION_TABLE,
)

from ..core import run_summary
from ..core.products import DL1, ProductError, registered_files, write_hdf5_mark
from ..instrument import (
    SST1M_FOCAL_LENGTH_CHOICE,
    fill_effective_focal_length,
    focal_length_mismatches,
    sst1m_focal_length,
    sst1m_optics,
)
from .simtel_files import SimTelFileError, is_simtel_file, scan_simtel_file
from .tables import calibration_resource

__all__ = [
    "SST1MSimulationCorrections",
    "pde_correction_table",
    "qe_files_in_history",
]

PDE_FACTORS = calibration_resource("mc_pde_correction_factors.ecsv")
_QE_LINE = re.compile(rb"^\s*QUANTUM_EFF\w*\s+(\S+)", re.IGNORECASE)


def _pde_option(tel_id=1):
    """How to set the PDE correction, as ctapipe's Tool prints it in one line."""
    return (
        "set SST1MSimulationCorrections.pde_correction, e.g. "
        "--SST1MSimulationCorrections.pde_correction=1.0 (all telescopes) or in YAML "
        f"SST1MSimulationCorrections: {{pde_correction: [[id, {tel_id}, 1.0]]}} "
        f"(tel {tel_id})"
    )


def _tels(tel_ids):
    """``tel 1``, ``tels 1, 2``, or ``70 telescopes (1, 2, 3, ...)``."""
    tel_ids = sorted(tel_ids)
    if len(tel_ids) == 1:
        return f"tel {tel_ids[0]}"
    if len(tel_ids) <= 5:
        return "tels " + ", ".join(map(str, tel_ids))
    return f"{len(tel_ids)} telescopes ({', '.join(map(str, tel_ids[:3]))}, ...)"


@cache
def pde_correction_table():
    """PDE correction factors of the SST-1M simulations: mc_tel_id, qe_file, factor."""
    return Table.read(PDE_FACTORS.read_text(), format="ascii.ecsv")


def qe_files_in_history(history):
    """
    QE files named in a sim_telarray history, without their extension, in order.

    Parameters
    ----------
    history : iterable of (int, bytes)
        ``eventio.SimTelFile.history`` or `SimTelScan.history`: (timestamp,
        line) pairs.

    Returns
    -------
    list[str]
    """
    stems = []
    for _, line in history:
        match = _QE_LINE.match(line)
        if match is not None:
            name = PurePath(match[1].decode()).name
            stem = name.removesuffix(".dat").removesuffix(".txt")
            if stem not in stems:
                stems.append(stem)
    return stems


class SST1MSimulationCorrections(MonitoringSource):
    """
    Divides simulated charges by the PDE drop of their QE file.

    For each telescope the factor is ``pde_correction`` if set, else the one of
    the QE file named in the sim_telarray history of the input file
    (``mc_pde_correction_factors.ecsv``). A telescope for which neither gives a
    factor is an error, raised before any event is processed.

    The input file is ``input_url`` or else the one file the running ctapipe
    Tool's event source registered with ctapipe's Provenance (role
    ``DL0/Event``; SimTelEventSource registers its input when it is created,
    before the tool creates its monitoring sources). With
    ``check_input_complete`` it is read to its end when the source is created,
    and refused if truncated or damaged (`scan_simtel_file`).

    Entered as a context manager (``ctapipe-process`` does), the source marks
    the DL1 output of the tool complete when it exits, after the tool's
    DataWriter has closed and registered it (role ``DL1/Event``): only if the
    input was checked complete and the output holds the simulated shower
    distribution, which ctapipe writes after the last event of the input.

    It also keeps the telescope-frame parameters of simulations comparable with
    those of data: the camera frames of SST-1M telescopes must use the focal
    length of data (`~ctapipe_sst1m.instrument.SST1M_FOCAL_LENGTH_CHOICE`, the
    equivalent one; ``sst1m_mc.yaml`` sets it). SST-1M telescopes without an
    effective focal length (older sim_telarray files) get the SST-1M one in the
    subarray the tool writes, said at INFO level, so that ctapipe's readers,
    which ask for it by default, open the output.

    Raises
    ------
    SimTelFileError
        At creation, if the input is truncated, damaged or not a sim_telarray
        file.
    ctapipe.core.ToolConfigurationError
        At creation, if a telescope has no PDE correction, a factor is not
        positive, the input is ambiguous, or the camera frame of an SST-1M
        telescope does not use the focal length of data.
    """

    pde_correction = FloatTelescopeParameter(
        default_value=None,
        allow_none=True,
        help=(
            "PDE drop factor per telescope the simulated charges are divided by; "
            "None: from the QE file in the history of the sim_telarray file."
        ),
    ).tag(config=True)

    input_url = PathTrait(
        default_value=None,
        allow_none=True,
        exists=True,
        directory_ok=False,
        help=(
            "The sim_telarray file processed, whose history names the QE files and "
            "which is checked complete; None: the input registered by the event "
            "source of the running tool (ctapipe Provenance, role DL0/Event)."
        ),
    ).tag(config=True)

    check_input_complete = Bool(
        default_value=True,
        help=(
            "Read the whole sim_telarray input (object headers) before processing "
            "and refuse it if it is truncated or damaged; the DL1 output is marked "
            "complete only if this check was made."
        ),
    ).tag(config=True)

    print_summary = Bool(
        default_value=True,
        help=(
            "Inside a tool (ctapipe-process), print a summary to stderr when the "
            "source closes: events corrected and the factors used, the output, "
            "the images surviving the cleaning. Not printed with the tool's "
            "--quiet; used as a library (no tool), it is logged at INFO instead."
        ),
    ).tag(config=True)

    def __init__(self, subarray=None, config=None, parent=None, **kwargs):
        super().__init__(subarray=subarray, config=config, parent=parent, **kwargs)
        self.metadata["is_simulation"] = True
        # outputs registered before this source existed are not its tool's
        self._outputs_before = registered_files("output", role="DL1/Event")
        self._n_events = 0
        self._check_focal_length()
        self.input_path, self.scan = self._read_input()
        self._fill_effective_focal_length()
        self.factors = self._factors()
        self._coefficients = {
            tel_id: np.full(
                (1, subarray.tel[tel_id].camera.geometry.n_pixels),
                1 / factor,
                dtype=np.float32,
            )
            for tel_id, factor in self.factors.items()
        }
        self.log.info("PDE corrections: %s", self.factors)

    def _check_focal_length(self):
        """
        Refuse SST-1M camera frames that do not use the focal length of data.

        Raises
        ------
        ctapipe.core.ToolConfigurationError
            If the camera frame of an SST-1M telescope has another focal length
            than `~ctapipe_sst1m.instrument.SST1M_FOCAL_LENGTH_CHOICE`'s.
        """
        mismatches = focal_length_mismatches(self.subarray)
        if not mismatches:
            return
        inputs = registered_files("input", role="DL0/Event")
        where = self.input_url or (inputs[0] if inputs else self.__class__.__name__)
        found = ", ".join(f"{f.to_value(u.m):.3f}" for f in set(mismatches.values()))
        choice = SST1M_FOCAL_LENGTH_CHOICE.name
        raise ToolConfigurationError(
            f"{where}: {_tels(mismatches)}: camera frame focal length {found} m, but "
            f"SST-1M data and the models trained on simulations use the {choice} "
            f"focal length ({sst1m_focal_length().to_value(u.m):.3f} m) for "
            f"telescope-frame parameters; set SimTelEventSource.focal_length_choice: "
            f"{choice}"
        )

    def _fill_effective_focal_length(self):
        """Give SST-1M telescopes without an effective focal length the SST-1M
        one before the tool writes the subarray, so that ctapipe's readers, which
        ask for it by default, read the output."""
        filled, unknown = fill_effective_focal_length(self.subarray)
        where = self.input_path.name if self.input_path else "the input"
        if filled:
            self.log.info(
                "%s: no effective focal length for %s, set to the SST-1M one "
                "(%.3f m, ctapipe_sst1m instrument resource) so that ctapipe's "
                "readers open the output; telescope-frame parameters use the %s "
                "focal length (%.3f m)",
                where,
                _tels(filled),
                sst1m_optics().effective_focal_length.to_value(u.m),
                SST1M_FOCAL_LENGTH_CHOICE.name.lower(),
                sst1m_focal_length().to_value(u.m),
            )
        if unknown:
            self.log.warning(
                "%s: no effective focal length for %s, whose optics are not "
                "SST-1M's: read the output with focal_length_choice=EQUIVALENT "
                "(TableLoader, HDF5EventSource)",
                where,
                _tels(unknown),
            )

    @property
    def _needs_history(self):
        return any(self.pde_correction.tel[t] is None for t in self.subarray.tel_ids)

    def _input_file(self):
        """
        The sim_telarray input: ``input_url``, else the one input the tool's event
        source registered; None if there is none.

        Raises
        ------
        SimTelFileError
            If ``input_url`` is not an eventio file.
        ctapipe.core.ToolConfigurationError
            If several inputs were registered.
        """
        if self.input_url is not None:
            path = Path(self.input_url)
            if not is_simtel_file(path):
                raise SimTelFileError(
                    f"{path}: not a sim_telarray (eventio) file; set "
                    "SST1MSimulationCorrections.input_url"
                )
            return path
        inputs = registered_files("input", role="DL0/Event")
        if len(inputs) > 1:
            raise ToolConfigurationError(
                f"SST1MSimulationCorrections: {len(inputs)} event inputs registered "
                f"({', '.join(str(p) for p in inputs)}), which one is processed is "
                "unknown; set SST1MSimulationCorrections.input_url"
            )
        if not inputs:
            return None
        if not is_simtel_file(inputs[0]):
            # an event source of simulations not made by sim_telarray
            self.log.warning(
                "%s: not a sim_telarray file: not checked complete, the output will "
                "not be marked complete",
                inputs[0],
            )
            return None
        return inputs[0]

    def _read_input(self):
        """
        Find the input, read its history if needed and check it complete.

        Returns
        -------
        tuple[pathlib.Path or None, SimTelScan or None]

        Raises
        ------
        SimTelFileError
            If the input is truncated, damaged or not an eventio file.
        ctapipe.core.ToolConfigurationError
            If the history is needed and there is no input, or the input is
            ambiguous.
        """
        path = self._input_file()
        if path is None:
            if self._needs_history:
                raise ToolConfigurationError(
                    "SST1MSimulationCorrections: no sim_telarray input to read the QE "
                    "files from (no sim_telarray file registered by the tool's event "
                    "source); set SST1MSimulationCorrections.input_url or "
                    # the example names a telescope the subarray has
                    f"{_pde_option(min(self.subarray.tel_ids))}"
                )
            if self.check_input_complete and not registered_files("input", "DL0/Event"):
                self.log.warning(
                    "No sim_telarray input registered by the tool's event source: not "
                    "checked complete, the output will not be marked complete; set "
                    "SST1MSimulationCorrections.input_url to check it"
                )
            return None, None
        if self.check_input_complete:
            scan = scan_simtel_file(path, to_end=True)
            self.log.info(
                "%s: complete, %d objects, %d bytes", path, scan.n_objects, scan.n_bytes
            )
            return path, scan
        if self._needs_history:
            return path, scan_simtel_file(path, to_end=False)
        return path, None

    def _factors(self):
        """
        PDE correction of every telescope.

        Raises
        ------
        ctapipe.core.ToolConfigurationError
            If a telescope has no factor, or a factor is not positive.
        """
        stems = qe_files_in_history(self.scan.history) if self._needs_history else []
        table = pde_correction_table()
        factors = {}
        for tel_id in self.subarray.tel_ids:
            factor = self.pde_correction.tel[tel_id]
            if factor is None:
                known = table[table["mc_tel_id"] == tel_id]
                matches = [row["factor"] for row in known if row["qe_file"] in stems]
                if not matches:
                    corrected = ", ".join(str(name) for name in known["qe_file"])
                    corrected = (
                        f"those of tel {tel_id} are for {corrected}"
                        if corrected
                        else f"there are none for tel {tel_id}"
                    )
                    raise ToolConfigurationError(
                        f"{self.input_path}: tel {tel_id} uses QE files {stems}, none "
                        f"of which has an SST-1M PDE correction ({corrected}); "
                        f"{_pde_option(tel_id)}"
                    )
                factor = matches[0]
            if not factor > 0:
                raise ToolConfigurationError(
                    f"PDE correction of tel {tel_id} must be > 0, not {factor}; "
                    f"{_pde_option(tel_id)}"
                )
            factors[tel_id] = float(factor)
        return factors

    @property
    def monitoring_types(self):
        return (MonitoringType.CAMERA_COEFFICIENTS,)

    def get_table(self, monitoring_type, tel_id=None, **kwargs):
        """The constant charge factor of ``tel_id`` as a one-row table."""
        self._check(monitoring_type)
        return Table({"factor": self._coefficients[tel_id][np.newaxis]})

    def get_values(self, monitoring_type, time, tel_id=None, **kwargs):
        """The charge factor of ``tel_id`` (the same at all times)."""
        self._check(monitoring_type)
        return {"factor": self._coefficients[tel_id]}

    def _check(self, monitoring_type):
        if monitoring_type not in self.monitoring_types:
            raise KeyError(f"{self.__class__.__name__} provides no {monitoring_type}")

    def fill_monitoring_container(self, event):
        """Set the charge factor of every telescope of ``event``."""
        self._n_events += 1
        for tel_id in event.r1.tel:
            coefficients = event.monitoring.tel[tel_id].camera.coefficients
            coefficients.factor = self._coefficients[tel_id].copy()

    def __exit__(self, exc_type, exc_value, traceback):
        try:
            marked = self._mark_outputs(failed=exc_type is not None)
            self._show_summary(marked)
        finally:
            super().__exit__(exc_type, exc_value, traceback)

    def _describe_factors(self):
        """``1 (pde_correction): tels 1-70``, telescopes grouped by factor."""
        groups = defaultdict(list)
        for tel_id, factor in self.factors.items():
            configured = self.pde_correction.tel[tel_id] is not None
            origin = "pde_correction" if configured else "QE file in the history"
            groups[(factor, origin)].append(tel_id)
        return "; ".join(
            f"{factor:.4g} ({origin}): {'tel' if len(tel_ids) == 1 else 'tels'} "
            + run_summary.describe_ids(tel_ids)
            for (factor, origin), tel_ids in groups.items()
        )

    def summary(self, output, marked):
        """
        A one-screen summary: events corrected, factors, the output.

        Parameters
        ----------
        output : pathlib.Path
            The DL1 file the hosting tool wrote.
        marked : bool
            Whether it was marked complete.

        Returns
        -------
        list[str]

        Raises
        ------
        OSError
            If ``output`` cannot be read.
        """
        if self.input_path is None:
            checked = "no sim_telarray input"
        elif self.scan is not None and self.scan.complete:
            checked = (
                f"{self.input_path.name}: read to its end, complete "
                f"({self.scan.n_objects} objects)"
            )
        else:
            checked = f"{self.input_path.name}: not checked complete"
        counts = run_summary.read_dl1_counts(output)
        state = "marked complete" if marked else "NOT marked complete"
        name = self.__class__.__name__
        return run_summary.format_summary(
            f"{name} summary (--{name}.print_summary=False hides it)",
            [
                ("input", checked),
                (
                    "corrected",
                    f"{run_summary.plural(self._n_events, 'event')}; charges divided "
                    f"by {self._describe_factors()}",
                ),
                (
                    "output",
                    f"{run_summary.short_path(output)}: {counts.n_events} events "
                    f"written, {state}",
                ),
                ("cleaning", run_summary.describe_cleaning(counts)),
            ],
        )

    def _show_summary(self, marked):
        """Print the summary at the end of a tool's run (log it at INFO in library
        use); nothing if the tool wrote no DL1 output."""
        outputs = [
            path
            for path in registered_files("output", role="DL1/Event")
            if path not in self._outputs_before and path.is_file()
        ]
        if not outputs:
            return
        try:
            lines = self.summary(outputs[-1], outputs[-1] in marked)
        except (OSError, tables.HDF5ExtError, tables.NoSuchNodeError) as err:
            self.log.warning("No summary: %s", err)
            return
        if run_summary.summary_wanted(self, self.print_summary):
            run_summary.print_lines(lines)
        elif run_summary.hosting_tool(self) is None:
            self.log.info("\n".join(lines))

    def _mark_outputs(self, failed=False):
        """
        Mark complete the DL1 outputs the running tool registered since this
        source was created, if they are.

        Called when the source exits, after the tool's DataWriter closed its
        output. Outputs that are not complete (the tool stopped before the end of
        the input: ``max_events``, an error, an interrupt) are reported at ERROR
        level and left unmarked, so that the package's tools refuse them; errors
        are logged, not raised: an exception here would escape ctapipe's Tool
        with a traceback, and an unmarked output is already refused.

        Parameters
        ----------
        failed : bool
            The tool raised (its event loop did not finish).

        Returns
        -------
        list[pathlib.Path]
            The outputs marked complete.
        """
        outputs = [
            path
            for path in registered_files("output", role="DL1/Event")
            if path not in self._outputs_before
        ]
        if not outputs:
            self.log.debug("No DL1 output registered by a ctapipe tool: none marked")
            return []
        if self.scan is None or not self.scan.complete:
            self.log.warning(
                "%s: not marked complete, package tools will refuse it: no sim_telarray "
                "input was checked complete (no input, or "
                "SST1MSimulationCorrections.check_input_complete=False)",
                ", ".join(str(p) for p in outputs),
            )
            return []
        marked = []
        for output in outputs:
            try:
                if self._mark(output, failed):
                    marked.append(output)
            except (ProductError, OSError, tables.HDF5ExtError) as err:
                self.log.error("%s: not marked complete (%s)", output, err)
        return marked

    def _mark(self, output, failed):
        """Mark ``output`` complete if it holds the whole input; True if marked."""
        with tables.open_file(output, mode="r") as h5file:
            has_showers = SHOWER_DISTRIBUTION_TABLE in h5file
            n_written = 0
            if DL1_SUBARRAY_TRIGGER_TABLE in h5file:
                n_written = h5file.get_node(DL1_SUBARRAY_TRIGGER_TABLE).nrows
        if failed or not has_showers:
            self.log.error(
                "%s: INCOMPLETE, no %s: the processing of %s stopped before its end "
                "(max_events, an error or an interrupt) after %d events; not marked "
                "complete, package tools will refuse it",
                output,
                SHOWER_DISTRIBUTION_TABLE,
                self.input_path.name,
                self._n_events,
            )
            return False
        mark = write_hdf5_mark(
            output,
            DL1,
            events_in=self._n_events,
            events_out=n_written,
            counts={"processed": self._n_events},
            inputs=[self.input_path.name],
        )
        self.log.info("%s: %s", output, mark.summary())
        return True
