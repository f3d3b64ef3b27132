"""SST-1M calibration: pixel gains, window transmittance, swapped modules, R0 to R1."""

from .config_check import ConfigurationError, check_config_sections
from .extractor_check import check_extractor_window, check_image_extractor
from .gains import (
    GainTable,
    default_gain_table,
    read_gain_columns,
    read_gain_file,
    telescope_of_file,
    telescope_of_gains,
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
    telescope_of_window,
)

__all__ = [
    "ConfigurationError",
    "GainTable",
    "PedestalStatistics",
    "SST1MR1Calibrator",
    "SST1MSimulationCorrections",
    "check_config_sections",
    "check_extractor_window",
    "check_image_extractor",
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
    "telescope_of_gains",
    "telescope_of_window",
    "voltage_drop_factor",
]
