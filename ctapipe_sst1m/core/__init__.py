"""
What every layer of the package uses: the completeness of products, the
package's HDF5 group and its resource files (`ctapipe_sst1m.core.resources`).

The lowest layer (below ``instrument``): it imports nothing of the package but
its version, so that calibration, sources, stereo, DL3 and tools all mark and
check products the same way and find the shipped files in one place.
"""

from .products import (
    MARK_TABLE,
    SST1M_CONFIG_GROUP,
    ProductError,
    ProductMark,
    verify_fits_product,
    verify_hdf5_product,
    write_fits_product,
    write_hdf5_mark,
)

__all__ = [
    "MARK_TABLE",
    "SST1M_CONFIG_GROUP",
    "ProductError",
    "ProductMark",
    "verify_fits_product",
    "verify_hdf5_product",
    "write_fits_product",
    "write_hdf5_mark",
]
