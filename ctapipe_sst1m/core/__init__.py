"""
What every layer of the package uses: the completeness of products.

The lowest layer (below ``instrument``): it imports nothing of the package but
its version, so that calibration, sources, stereo, DL3 and tools all mark and
check products the same way.
"""

from .products import (
    MARK_TABLE,
    ProductError,
    ProductMark,
    verify_fits_product,
    verify_hdf5_product,
    write_fits_product,
    write_hdf5_mark,
)

__all__ = [
    "MARK_TABLE",
    "ProductError",
    "ProductMark",
    "verify_fits_product",
    "verify_hdf5_product",
    "write_fits_product",
    "write_hdf5_mark",
]
