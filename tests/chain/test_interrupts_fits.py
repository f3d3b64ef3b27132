"""
Interrupting ctapipe-sst1m-compute-irf and ctapipe-sst1m-dl3 (SIGINT, SIGTERM,
SIGKILL) at several moments never leaves a FITS product that a package tool
accepts: each file is complete and verified, or absent.
"""

import signal
import sys
from pathlib import Path

import pytest

from ctapipe_sst1m.core.products import ProductError, verify_fits_product

from ..robustness.corpus import DL3, interrupt
from .conftest import RESOURCES

#: runs ctapipe tools on real or toy files (seconds to minutes each)
pytestmark = pytest.mark.slow

COMPUTE_IRF = str(Path(sys.executable).parent / "ctapipe-sst1m-compute-irf")
#: seconds after the start: imports take a few seconds, the work a few more
DELAYS = (3.0, 7.0)


def _fits_left(directory, final_names):
    """Final products present, each verified; no temporary file left."""
    for name in final_names:
        path = directory / name
        if path.exists():
            verify_fits_product(path)  # raises if not complete
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


# each signal on one of the two tools (both write through write_fits_product),
# the kill on both: 10 s each of the test command's critical path
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_compute_irf_interrupted(tmp_path, chain, sig):
    dl2 = chain["dl2"]
    for delay in DELAYS:
        workdir = tmp_path / f"d{delay}"
        workdir.mkdir()
        output = workdir / "irf.fits.gz"
        command = [
            COMPUTE_IRF,
            f"--config={RESOURCES / 'sst1m_irf.yaml'}",
            f"--config={RESOURCES / 'sst1m_irf_point_like.yaml'}",
            f"--cuts={chain['cuts']}",
            f"--gamma-file={dl2['gamma_test']}",
            f"--proton-file={dl2['proton_test']}",
            f"--output={output}",
        ]
        code, stderr = interrupt(command, None, sig, delay, workdir)
        leftovers = _fits_left(workdir, ["irf.fits.gz"])
        if code == 0:
            assert output.exists(), stderr[-2000:]
        elif output.exists():
            # the signal came after the rename: the product is whole
            verify_fits_product(output, kinds=("IRF",))
        if leftovers:
            # only a kill leaves a temporary file; the next run removes it
            assert sig != signal.SIGINT, leftovers


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_dl3_interrupted(tmp_path, chain, observed_dl2, sig):
    for delay in DELAYS:
        output_dir = tmp_path / f"dl3_{delay}"
        command = [
            DL3,
            *map(str, observed_dl2.values()),
            f"--irf={chain['irf']}",
            f"--cuts={chain['cuts']}",
            f"--output-dir={output_dir}",
        ]
        code, stderr = interrupt(command, None, sig, delay, tmp_path)
        names = [f"SST1M_obs_{obs_id}.dl3.fits.gz" for obs_id in observed_dl2]
        names += ["hdu-index.fits.gz", "obs-index.fits.gz"]
        if not output_dir.exists():
            assert code != 0
            continue
        try:
            _fits_left(output_dir, names)
        except ProductError as err:
            pytest.fail(f"{sig.name} after {delay} s left a damaged product: {err}")
        assert code != 0 or "CRITICAL" not in stderr
        if code == 0:
            assert all((output_dir / n).exists() for n in names)
