#!/usr/bin/env python
"""
Write the SST-1M instrument resource files shipped in ``ctapipe_sst1m``.

The input is sst1mpipe's ``instrument/sst1m_array.h5``, a ctapipe
``SubarrayDescription`` (tels 21 and 22) written by ctapipe 0.17. The outputs are
ECSV text tables that state their provenance in their metadata:

* ``DigiCam.camgeom.ecsv``: the camera geometry (``CameraGeometry.to_table``),
  identical for both telescopes;
* ``DigiCam_tel021.readout.ecsv``, ``DigiCam_tel022.readout.ecsv``: the readout of
  each telescope (``CameraReadout.to_table``); they differ in the reference pulse;
* ``SST1M_layout.ecsv``: one row per telescope (position, readout file) with the
  subarray name, the reference location and the optics in the metadata.

ECSV writes floats with all the digits needed to read back the same float64, so
the values are kept bit for bit; many of them are float32 numbers from
sim_telarray (e.g. the equivalent focal length 5.599999904632568 m).

Run from the repository root::

    python scripts/make_instrument_resources.py
"""

import argparse
import hashlib
import logging
from datetime import UTC, datetime
from pathlib import Path

import astropy
import astropy.units as u
import ctapipe
import numpy as np
from astropy.table import Table
from ctapipe.instrument import FocalLengthKind, SubarrayDescription
from ctapipe.io import read_table

from ctapipe_sst1m.core.resources import INSTRUMENT_DIR, resource

log = logging.getLogger("make_instrument_resources")

REPO = Path(__file__).resolve().parents[1]
GENERATOR = "scripts/make_instrument_resources.py"

#: input file, relative to the shared data directory
SOURCE = Path("instrument/sst1m_array.h5")
#: where the input file comes from
SOURCE_ORIGIN = (
    "sst1mpipe (SST-1M-collaboration/sst1mpipe), sst1mpipe/data/sst1m_array.h5"
)
LAYOUT_NODE = "/configuration/instrument/subarray/layout"

LAYOUT_FILE = "SST1M_layout.ecsv"


def geometry_file(camera_name):
    """File name of the camera geometry table."""
    return f"{camera_name}.camgeom.ecsv"


def readout_file(camera_name, tel_id):
    """File name of the readout table of one telescope."""
    return f"{camera_name}_tel{tel_id:03d}.readout.ecsv"


def make_provenance(source_path):
    """Provenance metadata common to all the written tables."""
    written_by = read_table(source_path, LAYOUT_NODE).meta
    return {
        "source": source_path.name,
        "source_sha256": hashlib.sha256(source_path.read_bytes()).hexdigest(),
        "source_origin": SOURCE_ORIGIN,
        "source_software": f"{written_by['ORIGIN']}, ctapipe {written_by['SOFT_VER']}",
        "generator": GENERATOR,
        "generator_software": (
            f"ctapipe {ctapipe.__version__}, astropy {astropy.__version__}"
        ),
        "date": datetime.now(UTC).date().isoformat(),
    }


def check_shared_description(subarray):
    """
    Check that the telescopes differ only in their readout.

    The layout table holds one optics description and the geometry table one
    geometry, so anything else differing between telescopes would be lost.
    """
    first_id, *other_ids = subarray.tel_ids
    first = subarray.tel[first_id]
    for tel_id in other_ids:
        tel = subarray.tel[tel_id]
        geometry, reference = tel.camera.geometry, first.camera.geometry
        same = (
            tel.name == first.name
            and str(tel) == str(first)
            and _optics_meta(tel.optics) == _optics_meta(first.optics)
            and geometry.to_table().meta == reference.to_table().meta
            and np.array_equal(geometry.pix_id, reference.pix_id)
            and all(
                np.array_equal(getattr(geometry, c), getattr(reference, c))
                for c in ("pix_x", "pix_y", "pix_area")
            )
        )
        if not same:
            raise ValueError(
                f"tel {tel_id} differs from tel {first_id} in more than its readout"
            )


def _optics_meta(optics):
    return {
        "name": optics.name,
        "size_type": optics.size_type.value,
        "reflector_shape": optics.reflector_shape.value,
        "n_mirrors": int(optics.n_mirrors),
        "n_mirror_tiles": int(optics.n_mirror_tiles),
        "mirror_area_m2": float(optics.mirror_area.to_value(u.m**2)),
        "equivalent_focal_length_m": float(optics.equivalent_focal_length.to_value(u.m)),
        "effective_focal_length_m": float(optics.effective_focal_length.to_value(u.m)),
    }


def make_layout_table(subarray, provenance):
    """Telescope positions and readout files, with the shared description as meta."""
    tel_ids = subarray.tel_ids
    first = subarray.tel[tel_ids[0]]
    camera_name = first.camera.name
    positions = u.Quantity([subarray.positions[tel_id] for tel_id in tel_ids])
    location = subarray.reference_location
    geodetic = location.geodetic

    table = Table(
        {
            "tel_id": np.asarray(tel_ids, dtype=np.int64),
            "pos_x": positions[:, 0].to(u.m),
            "pos_y": positions[:, 1].to(u.m),
            "pos_z": positions[:, 2].to(u.m),
            "readout": [readout_file(camera_name, tel_id) for tel_id in tel_ids],
        }
    )
    table["pos_x"].description = "ground frame x (north) of the telescope"
    table["pos_y"].description = "ground frame y (west) of the telescope"
    table["pos_z"].description = "ground frame z (up) of the telescope"
    table["readout"].description = "CameraReadout table of the telescope"

    table.meta = {
        "name": subarray.name,
        "description": (
            "SST-1M telescopes: positions relative to reference_location; every "
            "telescope has the optics below and the camera_geometry table. "
            "reference_location is given in geocentric ITRS (x_m, y_m, z_m, exact) "
            "and in WGS84 geodetic coordinates (lon_deg, lat_deg, height_m)."
        ),
        "reference_location": {
            "x_m": float(location.x.to_value(u.m)),
            "y_m": float(location.y.to_value(u.m)),
            "z_m": float(location.z.to_value(u.m)),
            "lon_deg": float(geodetic.lon.to_value(u.deg)),
            "lat_deg": float(geodetic.lat.to_value(u.deg)),
            "height_m": float(geodetic.height.to_value(u.m)),
        },
        "telescope_name": first.name,
        "camera_geometry": geometry_file(camera_name),
        "optics": _optics_meta(first.optics),
        "provenance": provenance,
    }
    return table


def write(table, output, name):
    """Write ``table`` as ECSV to ``output / name``."""
    path = output / name
    table.write(path, format="ascii.ecsv", overwrite=True)
    log.info("wrote %s (%d rows)", path, len(table))


def make_resources(source_path, output):
    """Write the geometry, readout and layout tables of ``source_path`` to ``output``."""
    log.info("reading %s", source_path)
    subarray = SubarrayDescription.from_hdf(
        source_path, focal_length_choice=FocalLengthKind.EQUIVALENT
    )
    check_shared_description(subarray)
    provenance = make_provenance(source_path)
    output.mkdir(parents=True, exist_ok=True)

    first = subarray.tel[subarray.tel_ids[0]]
    geometry = first.camera.geometry.to_table()
    geometry.meta["provenance"] = provenance
    write(geometry, output, geometry_file(first.camera.name))

    for tel_id in subarray.tel_ids:
        camera = subarray.tel[tel_id].camera
        readout = camera.readout.to_table()
        readout.meta["provenance"] = provenance
        write(readout, output, readout_file(camera.name, tel_id))

    write(make_layout_table(subarray, provenance), output, LAYOUT_FILE)


def main(args=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--shared-data",
        type=Path,
        default=REPO / "../shared/data",
        help=f"directory holding {SOURCE} (default: ../shared/data from the repo root)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=Path(str(resource(INSTRUMENT_DIR))),
        help="directory to write the tables to (default: the instrument resources "
        "of the ctapipe_sst1m imported, %(default)s)",
    )
    parser.add_argument("--log-level", default="INFO", help="default: %(default)s")
    args = parser.parse_args(args)
    logging.basicConfig(level=args.log_level, format="%(levelname)s %(message)s")

    source_path = (args.shared_data / SOURCE).resolve()
    if not source_path.is_file():
        parser.error(f"{source_path} not found")
    make_resources(source_path, args.output)


if __name__ == "__main__":
    main()
