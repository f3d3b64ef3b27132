"""SST-1M calibration: pixel gains, window transmittance, swapped modules, R0 to R1."""

from .gains import (
    GainTable,
    default_gain_table,
    read_gain_columns,
    read_gain_file,
    telescope_of_file,
)
from .pedestals import PedestalStatistics, voltage_drop_factor
from .r0_to_r1 import SST1MR1Calibrator, pulse_fraction
from .simulation import SST1MSimulationCorrections, qe_files_in_history
from .window import (
    default_window_factors,
    default_window_file,
    module_swap_permutation,
    pixel_modules,
    read_window_file,
    swapped_modules,
)

__all__ = [
    "GainTable",
    "PedestalStatistics",
    "SST1MR1Calibrator",
    "SST1MSimulationCorrections",
    "default_gain_table",
    "default_window_factors",
    "default_window_file",
    "module_swap_permutation",
    "pixel_modules",
    "pulse_fraction",
    "qe_files_in_history",
    "read_gain_columns",
    "read_gain_file",
    "read_window_file",
    "swapped_modules",
    "telescope_of_file",
    "voltage_drop_factor",
]
