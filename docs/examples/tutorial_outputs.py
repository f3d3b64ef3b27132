"""
The products of the tutorial script, for the examples that show them.

Not an example itself (the gallery's ``ignore_pattern`` skips it): the IRF and
DL3 examples call `tutorial_outputs`, which runs ``docs/tutorial/tutorial.sh``
once into a cache directory and reuses it while the tutorial's files do not
change.
"""

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["tutorial_outputs"]

DOCS = Path(__file__).resolve().parent.parent
TUTORIAL = DOCS / "tutorial"
CACHE = DOCS / "_build" / "tutorial"
#: written last, with the digest of the tutorial's files
COMPLETE = ".complete"


#: the package the tutorial runs: a change of its code or resources runs the
#: tutorial again
PACKAGE = DOCS.parent / "ctapipe_sst1m"


def _digest(*directories):
    """Digest of the files of ``directories`` (names and contents)."""
    digest = hashlib.sha256()
    for directory in directories:
        files = [
            p
            for p in directory.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        ]
        for path in sorted(files):
            digest.update(str(path.relative_to(directory.parent)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def tutorial_outputs():
    """
    The tutorial's working directory, with its IRFs and DL3, run if needed.

    ``$SST1M_TUTORIAL_DIR``, if set, is a directory where the tutorial has
    been run (``bash docs/tutorial/tutorial.sh DIR``), used as it is; else the
    tutorial runs into ``docs/_build/tutorial`` unless an earlier run there,
    with the same tutorial files and package sources, went to its end (its
    output is in ``tutorial.log``).

    Returns
    -------
    pathlib.Path
        The directory, with ``irf/*.fits.gz`` and ``dl3/`` (gammapy's index
        files and one file per run).

    Raises
    ------
    FileNotFoundError
        If ``$SST1M_TUTORIAL_DIR`` has no DL3 index.
    RuntimeError
        If the tutorial script fails, with the end of its log.
    """
    given = os.environ.get("SST1M_TUTORIAL_DIR")
    if given:
        workdir = Path(given)
        if not (workdir / "dl3/obs-index.fits.gz").is_file():
            raise FileNotFoundError(
                f"{workdir}: no dl3/obs-index.fits.gz; set SST1M_TUTORIAL_DIR to a "
                "directory where docs/tutorial/tutorial.sh has run, or unset it"
            )
        return workdir
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    expected = _digest(TUTORIAL, PACKAGE)
    marker = CACHE / COMPLETE
    # two builds of the docs at once must not run the tutorial into one directory
    with open(CACHE.parent / f"{CACHE.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.is_file() and marker.read_text() == expected:
            print("tutorial outputs of an earlier build reused")
            return CACHE
        shutil.rmtree(CACHE, ignore_errors=True)
        CACHE.mkdir()
        log = CACHE / "tutorial.log"
        # the script calls the package's tools by name: those of this Python
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
        start = time.monotonic()
        with open(log, "w") as output:
            status = subprocess.run(
                ["bash", str(TUTORIAL / "tutorial.sh"), str(CACHE)],
                stdout=output,
                stderr=subprocess.STDOUT,
                env=dict(os.environ, PATH=path),
                check=False,
            ).returncode
        if status != 0:
            tail = "".join(log.read_text().splitlines(keepends=True)[-20:])
            raise RuntimeError(
                f"{TUTORIAL / 'tutorial.sh'}: exit status {status}; log {log}:\n{tail}"
            )
        marker.write_text(expected)
        print(f"tutorial.sh run in {time.monotonic() - start:.0f} s")
    return CACHE
