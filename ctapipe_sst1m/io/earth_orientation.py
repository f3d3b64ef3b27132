"""
astropy's Earth orientation table, parsed once per machine instead of once per
process.

The first sky-to-horizon transform of a process makes astropy parse its IERS
tables (the bundled IERS-A and IERS-B text files, 20000 rows): 0.57 s, the
largest fixed cost of a short ``ctapipe-process`` run after the imports. The
UT1-UTC offset (up to 0.9 s, 14 arcsec of hour angle) and the polar motion
(0.5 arcsec) it gives are small against SST-1M's pointing precision, but they
are not dropped: the parsed table is pickled in astropy's cache directory and
loaded from there (6 ms) by the next processes, and only inside the source's
transforms (`using_cached_table`), so astropy's global state is not changed.
The cache is keyed by the versions of astropy and of its IERS data, and parsed
again when older than astropy's ``iers.conf.auto_max_age`` days, as astropy
would refresh its own table.
"""

import contextlib
import logging
import os
import pickle
import tempfile
import time
from pathlib import Path

__all__ = ["cache_path", "cached_table", "using_cached_table"]

log = logging.getLogger(__name__)

_loaded = {}


def cache_path():
    """Where the parsed table of this astropy installation is cached."""
    import astropy
    from astropy.config import get_cache_dir

    try:
        import astropy_iers_data

        data_version = astropy_iers_data.__version__
    except (ImportError, AttributeError):
        data_version = "unknown"
    name = f"iers-{astropy.__version__}-{data_version}.pickle"
    return Path(get_cache_dir()) / "ctapipe_sst1m" / name


def _fresh(path):
    from astropy.utils import iers

    max_age = iers.conf.auto_max_age
    if max_age is None:
        return True
    return time.time() - path.stat().st_mtime < float(max_age) * 86400


def cached_table():
    """
    astropy's Earth orientation table, from the cache when it is there.

    Returns
    -------
    astropy.utils.iers.IERS
        The table astropy would use; None if it cannot be cached (the caller
        then lets astropy load it as usual).
    """
    if "table" in _loaded:
        return _loaded["table"]
    from astropy.utils import iers

    table = None
    path = cache_path()
    with contextlib.suppress(OSError, pickle.UnpicklingError, EOFError, AttributeError):
        if path.is_file() and _fresh(path):
            with path.open("rb") as stream:
                table = pickle.load(stream)
            if not isinstance(table, iers.IERS):
                table = None
    if table is None:
        table = iers.earth_orientation_table.get()
        _store(table, path)
    _loaded["table"] = table
    return table


def _store(table, path):
    """Pickle ``table`` to ``path`` atomically; a failure only costs speed."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            dir=path.parent, prefix=f".{path.name}.", delete=False
        ) as stream:
            pickle.dump(table, stream, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(stream.name, path)
    except (OSError, pickle.PicklingError) as err:
        log.debug("IERS table not cached in %s: %s", path, err)
        with contextlib.suppress(OSError, NameError):
            Path(stream.name).unlink()


@contextlib.contextmanager
def using_cached_table():
    """Within the block, astropy's transforms use the cached table."""
    from astropy.utils import iers

    table = cached_table()
    if table is None:
        yield
        return
    with iers.earth_orientation_table.set(table):
        yield
