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
"""

import re
from functools import cache
from importlib.resources import files
from pathlib import PurePath

import numpy as np
from astropy.table import Table
from ctapipe.core.traits import FloatTelescopeParameter
from ctapipe.io import MonitoringSource, MonitoringType

__all__ = ["SST1MSimulationCorrections", "pde_correction_table", "qe_files_in_history"]

PDE_FACTORS = (
    files("ctapipe_sst1m") / "resources/calibration/mc_pde_correction_factors.ecsv"
)
_QE_LINE = re.compile(rb"^\s*QUANTUM_EFF\w*\s+(\S+)", re.IGNORECASE)


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
        ``eventio.SimTelFile.history``: (type, line) pairs.

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
    """

    pde_correction = FloatTelescopeParameter(
        default_value=None,
        allow_none=True,
        help=(
            "PDE drop factor per telescope the simulated charges are divided by; "
            "None: from the QE file in the history of the sim_telarray file."
        ),
    ).tag(config=True)

    def __init__(self, subarray=None, config=None, parent=None, **kwargs):
        super().__init__(subarray=subarray, config=config, parent=parent, **kwargs)
        self.metadata["is_simulation"] = True
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

    def _factors(self):
        needed = [t for t in self.subarray.tel_ids if self.pde_correction.tel[t] is None]
        stems, origin = [], None
        if needed:
            stems, origin = self._history_qe_files()
        table = pde_correction_table()
        factors = {}
        for tel_id in self.subarray.tel_ids:
            factor = self.pde_correction.tel[tel_id]
            if factor is None:
                known = table[table["mc_tel_id"] == tel_id]
                matches = [row["factor"] for row in known if row["qe_file"] in stems]
                if not matches:
                    corrected = [str(name) for name in table["qe_file"]]
                    raise ValueError(
                        f"{origin}: tel {tel_id} uses QE files {stems}, none of which "
                        f"has an SST-1M PDE correction ({corrected}); "
                        "set SST1MSimulationCorrections.pde_correction"
                    )
                factor = matches[0]
            if not factor > 0:
                raise ValueError(f"PDE correction of tel {tel_id} must be > 0: {factor}")
            factors[tel_id] = float(factor)
        return factors

    def _history_qe_files(self):
        source = getattr(self.parent, "event_source", None)
        simtel_file = getattr(source, "file_", None)
        history = getattr(simtel_file, "history", None)
        if history is None:
            raise ValueError(
                "SST1MSimulationCorrections: no sim_telarray history to find the QE "
                "files in (not run by ctapipe-process on a sim_telarray file?); set "
                "SST1MSimulationCorrections.pde_correction"
            )
        return qe_files_in_history(history), source.input_url

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
        for tel_id in event.r1.tel:
            coefficients = event.monitoring.tel[tel_id].camera.coefficients
            coefficients.factor = self._coefficients[tel_id].copy()
