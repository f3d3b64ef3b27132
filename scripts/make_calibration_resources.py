#!/usr/bin/env python
"""
Write the SST-1M calibration resource files shipped in ``ctapipe_sst1m``.

The inputs are sst1mpipe's data files (copies in ``../shared/data``); the outputs
are ECSV text tables that state their provenance in their metadata:

* ``gains_tel021.ecsv``, ``gains_tel022.ecsv``: pixel_id, dc_to_pe, calib_flag of
  ``averaged_calib_param_v2_2023_2024_tel{1,2}.h5``, sst1mpipe's default gains;
* ``window_1.ecsv``, ``window_2.ecsv``: pixel_id, transmittance of
  ``corr_factor_{1st,2nd}_wdw.txt``, the windows of tel 21 and tel 22;
* ``pixel_modules.ecsv``: pixel_id, module, pixel_in_module of
  ``digicam_pixels_mapping_V5T.txt``;
* ``swapped_modules.ecsv``: tel_id, start, stop, module_1, module_2 of
  ``inverted_module_list.json``.

ECSV writes floats with all the digits needed to read back the same float64; every
written table is read back and compared with the input values bit for bit (NaN
compares by position only: the inputs' NaNs have the sign bit set, ECSV's
``nan`` reads back without it).

Run from the repository root::

    python scripts/make_calibration_resources.py
"""

import argparse
import hashlib
import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import astropy
import numpy as np
import tables
from astropy.io import ascii
from astropy.table import Table
from astropy.time import Time

import ctapipe_sst1m
from ctapipe_sst1m.calib.gains import (
    gain_resource_name,
    read_gain_columns,
    telescope_of_file,
)
from ctapipe_sst1m.calib.window import (
    DEFAULT_WINDOWS,
    N_MODULES,
    PIXEL_MODULES_FILE,
    PIXELS_PER_MODULE,
    SWAPPED_MODULES_FILE,
    read_window_file,
    window_resource_name,
)
from ctapipe_sst1m.core.resources import CALIBRATION_DIR, resource
from ctapipe_sst1m.instrument import DIGICAM_N_PIXELS

log = logging.getLogger("make_calibration_resources")

REPO = Path(__file__).resolve().parents[1]
GENERATOR = "scripts/make_calibration_resources.py"

#: input files, relative to the shared data directory
GAIN_SOURCES = {
    21: Path("calibration/averaged_calib_param_v2_2023_2024_tel1.h5"),
    22: Path("calibration/averaged_calib_param_v2_2023_2024_tel2.h5"),
}
WINDOW_SOURCES = {
    1: Path("calibration/corr_factor_1st_wdw.txt"),
    2: Path("calibration/corr_factor_2nd_wdw.txt"),
}
PIXEL_MAP_SOURCE = Path("instrument/digicam_pixels_mapping_V5T.txt")
SWAP_SOURCE = Path("calibration/inverted_module_list.json")
PDE_SOURCE = Path("calibration/mc_pde_correction_factors.json")
PDE_FACTORS_FILE = "mc_pde_correction_factors.ecsv"
#: the columns of the pixel map, whose header is one commented line
PIXEL_MAP_N_COLUMNS = 40
PIXEL_MAP_COLUMNS = ("module", "pixel_hw_id", "pixel_sw_id")

GAIN_DESCRIPTION = (
    "Gains of the pixels of tel {tel_id}, sst1mpipe's default: multi-photo-electron "
    "fits of dark runs averaged over {period}. dc_to_pe is the baseline-subtracted "
    "ADC sum over a 5-sample window per photo-electron, optical cross talk included "
    "(gain / (1 - cross talk)), so that r1 = (adc - baseline) / dc_to_pe; it is NaN "
    "where the averaging had no value. calib_flag is 1 where the fits passed the "
    "quality cuts, 0 elsewhere; sst1mpipe does not use dc_to_pe where it is not 1."
)
GAIN_PERIODS = {21: "March 2023 - June 2024", 22: "September 2023 - June 2024"}
#: middle of the averaging periods: the cabling of the camera at that date tells
#: in which pixel order the gains were measured (swapped modules)
GAIN_MEASURED = {21: "2023-10-31", 22: "2024-02-15"}
WINDOW_DESCRIPTION = (
    "Relative transmittance of entrance window {window} in front of each pixel, "
    "normalised to a camera mean of 1 (lab measurement, sst1mpipe's "
    "correction_factor); pixel charges are divided by it. Used by default for "
    "tel {tel_id}."
)
PIXEL_MODULES_DESCRIPTION = (
    "Module of each DigiCam pixel (software pixel id) and the hardware position of "
    "the pixel in its module (pixel_hw_id of the mapping)."
)
SWAP_DESCRIPTION = (
    "Pairs of modules whose cables were swapped on a telescope from start "
    "(included) to stop (excluded), UTC: the signal of module_1 was recorded in the "
    "pixels of module_2 and the reverse."
)


def make_provenance(source_path):
    """Provenance metadata of a table written from ``source_path``."""
    return {
        "source": source_path.name,
        "source_sha256": hashlib.sha256(source_path.read_bytes()).hexdigest(),
        "source_origin": (
            "sst1mpipe (SST-1M-collaboration/sst1mpipe), "
            f"sst1mpipe/data/{source_path.name}"
        ),
        "generator": GENERATOR,
        "generator_software": (
            f"ctapipe_sst1m {ctapipe_sst1m.__version__}, astropy {astropy.__version__}, "
            f"numpy {np.__version__}, tables {tables.__version__}"
        ),
        "date": datetime.now(UTC).date().isoformat(),
    }


def make_gain_table(source_path, tel_id):
    """pixel_id, dc_to_pe, calib_flag of an sst1mpipe gain file."""
    file_tel = telescope_of_file(source_path)
    if file_tel != tel_id:
        raise ValueError(f"{source_path} is named for tel {file_tel}, not {tel_id}")
    table, _ = read_gain_columns(source_path)
    table["pixel_id"].description = "pixel id"
    table["dc_to_pe"].description = "ADC counts per photo-electron in a 5-sample sum"
    table["calib_flag"].description = "1: good fit, 0: bad"
    table.meta = {
        "tel_id": tel_id,
        "description": GAIN_DESCRIPTION.format(
            tel_id=tel_id, period=GAIN_PERIODS[tel_id]
        ),
        "measured": GAIN_MEASURED[tel_id],
        "provenance": make_provenance(source_path),
    }
    return table


def make_window_table(source_path, window):
    """pixel_id, transmittance of an sst1mpipe window file."""
    (tel_id,) = [tel for tel, number in DEFAULT_WINDOWS.items() if number == window]
    factors, _ = read_window_file(source_path)
    table = Table(
        {"pixel_id": np.arange(len(factors), dtype=np.int64), "transmittance": factors}
    )
    table["transmittance"].description = "relative window transmittance"
    table.meta = {
        "window": window,
        "default_tel_id": tel_id,
        "description": WINDOW_DESCRIPTION.format(window=window, tel_id=tel_id),
        "provenance": make_provenance(source_path),
    }
    return table


def make_pixel_modules_table(source_path):
    """pixel_id, module, pixel_in_module of the DigiCam pixel map, by pixel id."""
    mapping = ascii.read(source_path, format="commented_header")
    missing = set(PIXEL_MAP_COLUMNS) - set(mapping.colnames)
    if len(mapping.colnames) != PIXEL_MAP_N_COLUMNS or missing:
        raise ValueError(
            f"{source_path}: header parsed to {len(mapping.colnames)} columns "
            f"{mapping.colnames}, expected {PIXEL_MAP_N_COLUMNS} including "
            f"{PIXEL_MAP_COLUMNS}"
        )
    mapping.sort("pixel_sw_id")
    if not np.array_equal(mapping["pixel_sw_id"], np.arange(DIGICAM_N_PIXELS)):
        raise ValueError(f"{source_path}: pixel_sw_id is not 0..{DIGICAM_N_PIXELS - 1}")

    table = Table(
        {
            "pixel_id": np.asarray(mapping["pixel_sw_id"], dtype=np.int64),
            "module": np.asarray(mapping["module"], dtype=np.int64),
            "pixel_in_module": np.asarray(mapping["pixel_hw_id"], dtype=np.int64),
        }
    )
    table["pixel_id"].description = "software pixel id (pixel_sw_id)"
    table["module"].description = f"module, 1 to {N_MODULES}"
    position = f"hardware position in the module (pixel_hw_id), 1 to {PIXELS_PER_MODULE}"
    table["pixel_in_module"].description = position
    table.meta = {
        "description": PIXEL_MODULES_DESCRIPTION,
        "provenance": make_provenance(source_path),
    }
    return table


def make_swap_table(source_path):
    """tel_id, start, stop, module_1, module_2 of sst1mpipe's swapped module list."""
    entries = json.loads(source_path.read_text(encoding="utf-8")).values()
    # "date_sart" is sst1mpipe's spelling
    table = Table(
        {
            "tel_id": [int(entry["ntel"]) for entry in entries],
            "start": [_utc_isot(entry["date_sart"]) for entry in entries],
            "stop": [_utc_isot(entry["date_stop"]) for entry in entries],
            "module_1": [int(entry["module_1"]) for entry in entries],
            "module_2": [int(entry["module_2"]) for entry in entries],
        },
        dtype=[np.int64, str, str, np.int64, np.int64],
    )
    table["start"].description = "first time of the swap, ISO UTC (included)"
    table["stop"].description = "end of the swap, ISO UTC (excluded)"
    table.meta = {
        "description": SWAP_DESCRIPTION,
        "provenance": make_provenance(source_path),
    }
    return table


def _utc_isot(text):
    return Time(text, format="isot", scale="utc").isot


def write(table, output, name):
    """Write ``table`` as ECSV to ``output / name`` and check it reads back exactly."""
    path = output / name
    table.write(path, format="ascii.ecsv", overwrite=True)
    check_round_trip(table, Table.read(path, format="ascii.ecsv"), path)
    log.info("wrote %s (%d rows)", path, len(table))


def check_round_trip(table, read, path):
    """Raise ValueError unless ``read`` has the values of ``table``, bit for bit."""
    if read.colnames != table.colnames or read.meta != table.meta:
        raise ValueError(f"{path}: columns or metadata differ after reading back")
    for name in table.colnames:
        if not same_values(np.asarray(table[name]), np.asarray(read[name])):
            raise ValueError(f"{path}: column {name} differs after reading back")


def same_values(expected, actual):
    """Equal dtype and values, floats bit for bit (NaN by position)."""
    if expected.dtype != actual.dtype or expected.shape != actual.shape:
        return False
    if expected.dtype.kind != "f":
        return np.array_equal(expected, actual)
    nan = np.isnan(expected)
    return np.array_equal(nan, np.isnan(actual)) and np.array_equal(
        expected[~nan].view(np.uint64), actual[~nan].view(np.uint64)
    )


def make_pde_table(source_path):
    """mc_tel_id, qe_file, factor of sst1mpipe's MC PDE correction factors."""
    factors = json.loads(source_path.read_text(encoding="utf-8"))["mc_correction_for_PDE"]
    rows = [
        (int(tel.removeprefix("tel_")), qe_file, factor)
        for tel, by_file in factors.items()
        for qe_file, factor in by_file.items()
    ]
    table = Table(rows=rows, names=("mc_tel_id", "qe_file", "factor"))
    table["mc_tel_id"].description = "telescope id in the SST-1M simulations"
    table["qe_file"].description = "QUANTUM_EFFiciency file of sim_telarray, no suffix"
    table["factor"].description = "simulated charges are divided by it"
    table.meta = {
        "description": (
            "PDE drop of the SST-1M sensors at the NSB level a sim_telarray QE file "
            "was made for, relative to that file: the simulated counterpart of the "
            "voltage-drop correction of data."
        ),
        "provenance": make_provenance(source_path),
    }
    return table


def make_resources(shared_data, output):
    """Write all the calibration tables from the files in ``shared_data``."""
    output.mkdir(parents=True, exist_ok=True)
    for tel_id, source in GAIN_SOURCES.items():
        table = make_gain_table(shared_data / source, tel_id)
        write(table, output, gain_resource_name(tel_id))
    for window, source in WINDOW_SOURCES.items():
        table = make_window_table(shared_data / source, window)
        write(table, output, window_resource_name(window))
    modules = make_pixel_modules_table(shared_data / PIXEL_MAP_SOURCE)
    write(modules, output, PIXEL_MODULES_FILE)
    write(make_swap_table(shared_data / SWAP_SOURCE), output, SWAPPED_MODULES_FILE)
    write(make_pde_table(shared_data / PDE_SOURCE), output, PDE_FACTORS_FILE)


def main(args=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--shared-data",
        type=Path,
        default=REPO / "../shared/data",
        help="directory holding calibration/ and instrument/ (default: ../shared/data "
        "from the repo root)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=Path(str(resource(CALIBRATION_DIR))),
        help="directory to write the tables to (default: the calibration resources "
        "of the ctapipe_sst1m imported, %(default)s)",
    )
    parser.add_argument("--log-level", default="INFO", help="default: %(default)s")
    args = parser.parse_args(args)
    logging.basicConfig(level=args.log_level, format="%(levelname)s %(message)s")

    shared_data = args.shared_data.resolve()
    sources = [*GAIN_SOURCES.values(), *WINDOW_SOURCES.values()]
    for source in [*sources, PIXEL_MAP_SOURCE, SWAP_SOURCE, PDE_SOURCE]:
        if not (shared_data / source).is_file():
            parser.error(f"{shared_data / source} not found")
    make_resources(shared_data, args.output)


if __name__ == "__main__":
    main()
