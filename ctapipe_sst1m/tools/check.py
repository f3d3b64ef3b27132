"""ctapipe-sst1m-check: is each file complete and consistent? One line per file."""

import sys
from dataclasses import dataclass
from pathlib import Path

import tables
from astropy.io import fits
from ctapipe.core import Tool, traits
from ctapipe.io.hdf5dataformat import DL2_GROUP

from ..calib.simtel_files import SimTelFileError, scan_simtel_file
from ..core.products import (
    DL3,
    IRF,
    ProductError,
    nan_columns,
    verify_fits_product,
    verify_hdf5_product,
)
from ..instrument.constants import DIGICAM_N_PIXELS, DIGICAM_N_SAMPLES
from ..io.decoder_process import DecoderError, DecoderProcess
from ..io.decoding import check_decoded
from ..io.zfits import DigiCamFileError, check_file_integrity, inspect_digicam_file

__all__ = ["CheckTool", "Verdict", "check_file", "main"]

#: verdicts, and whether they count as good for the exit code
OK = "OK"
UNMARKED = "UNMARKED"
BAD = "BAD"


@dataclass
class Verdict:
    """What `check_file` found."""

    path: Path
    verdict: str
    kind: str
    detail: str

    def line(self):
        """``path: VERDICT kind: detail``"""
        kind = f" {self.kind}" if self.kind else ""
        return f"{self.path}: {self.verdict}{kind}: {self.detail}"


def _magic(path):
    with path.open("rb") as f:
        return f.read(8)


def _check_raw(path):
    header = inspect_digicam_file(path)
    check_file_integrity(header, verify_checksums=True)
    checked = sum(1 for *_, datasum in header.hdus if datasum is not None)
    n_decoded = _decode_all(path)
    if n_decoded != header.n_events:
        raise DigiCamFileError(
            f"{path}: the headers announce {header.n_events} events, {n_decoded} decoded"
        )
    return Verdict(
        path,
        OK,
        "DigiCam raw",
        f"{header.n_events} events decoded, sizes right, {checked} HDU checksums "
        "verified",
    )


def _decode_all(path):
    """
    Decode every event in a decoder process, as the source does: damage under
    right checksums (swapped words, a wrong heap pointer) shows only there.

    Raises
    ------
    DigiCamFileError
        If the decoder fails or an event has the wrong sizes.
    """
    decoder = DecoderProcess([path])
    n = 0
    try:
        for _, decoded in decoder.events():
            fault = check_decoded(decoded, DIGICAM_N_PIXELS, DIGICAM_N_SAMPLES)
            if fault:
                raise DigiCamFileError(
                    f"{path}: event {n} (camera event number "
                    f"{decoded.event_number}) decoded with {fault}"
                )
            n += 1
    except DecoderError as err:
        raise DigiCamFileError(str(err)) from None
    finally:
        decoder.close()
    return n


def _check_simtel(path):
    scan = scan_simtel_file(path, to_end=True)
    compression = f"{scan.compression}-compressed, " if scan.compression else ""
    detail = (
        f"{compression}{scan.n_objects} objects, {scan.n_bytes} bytes, ends with "
        f"its end-of-run histograms {list(scan.histogram_ids)}"
    )
    return Verdict(path, OK, "sim_telarray", detail)


def _check_hdf5(path, allow_unmarked):
    mark = verify_hdf5_product(path, require_mark=False, deep=True)
    if mark is None:
        with tables.open_file(path) as h5file:
            has_dl2 = DL2_GROUP in h5file
        kind = "DL2" if has_dl2 else "DL1"
        detail = (
            "no completeness mark (written by a stock ctapipe tool, or cut short); "
            "event tables consistent, every table readable"
        )
        return Verdict(path, OK if allow_unmarked else UNMARKED, kind, detail)
    counts = ", ".join(f"{n} {reason}" for reason, n in mark.counts.items())
    detail = mark.summary() + (f"; {counts}" if counts else "")
    return Verdict(path, OK, mark.kind, detail + "; every table readable")


def _check_fits(path, allow_unmarked):
    header = verify_fits_product(path, require_mark=False)
    kind = header.get("SSTPROD", "FITS")
    with fits.open(path) as hdus:
        names = [h.name for h in hdus[1:]]
        if kind == IRF and (nan := nan_columns(hdus[1:])):
            name, column, n_nan, size = nan[0]
            raise ProductError(f"{path}: NaN in {name} {column} ({n_nan} of {size})")
        if kind == DL3:
            n_events = len(hdus["EVENTS"].data)
            if n_events != header.get("SSTEVOUT", n_events):
                raise ProductError(
                    f"{path}: EVENTS has {n_events} rows, the mark says "
                    f"{header['SSTEVOUT']}"
                )
    if not header.get("SSTCOMPL", False):
        detail = f"no completeness mark; readable to its end; HDUs {names}"
        return Verdict(path, OK if allow_unmarked else UNMARKED, "FITS", detail)
    detail = f"checksums of {len(names) + 1} HDUs verified; HDUs {names}"
    if "SSTEVOUT" in header:
        detail = f"{header['SSTEVOUT']} of {header.get('SSTEVIN', '?')} events; " + detail
    return Verdict(path, OK, f"complete {kind}", detail)


def check_file(path, allow_unmarked=False):
    """
    Whether a raw, simulation, DL1, DL2, IRF or DL3 file is complete and consistent.

    Parameters
    ----------
    path : str or pathlib.Path
    allow_unmarked : bool
        Count products without a completeness mark (written by stock ctapipe
        tools) as good if they are consistent.

    Returns
    -------
    Verdict
        Never raises for a bad file: the verdict says what is wrong.
    """
    path = Path(path)
    try:
        if path.is_dir():
            raise ProductError(f"{path}: is a directory")
        if not path.is_file():
            raise ProductError(f"{path}: no such file")
        if path.stat().st_size == 0:
            raise ProductError(f"{path}: empty file (0 bytes)")
        magic = _magic(path)
        if magic.startswith(b"\x89HDF"):
            return _check_hdf5(path, allow_unmarked)
        if path.name.endswith(".fits.fz"):
            return _check_raw(path)
        if magic.startswith(b"SIMPLE") or path.name.endswith((".fits", ".fits.gz")):
            return _check_fits(path, allow_unmarked)
        if path.name.endswith((".simtel", ".simtel.gz", ".simtel.zst")):
            return _check_simtel(path)
        from eventio.file_types import is_eventio

        if is_eventio(path):
            return _check_simtel(path)
        raise ProductError(
            f"{path}: not a DigiCam raw, sim_telarray, HDF5 or FITS file "
            f"(starts with {magic!r})"
        )
    except (ProductError, DigiCamFileError, SimTelFileError, OSError, ValueError) as err:
        return Verdict(path, BAD, "", str(err).removeprefix(f"{path}: "))


class CheckTool(Tool):
    """
    Tell for each file whether it is complete and consistent: DigiCam raw
    (sizes, FITS checksums, every event decoded in a decoder process),
    sim_telarray (read to its end), DL1/DL2 HDF5 (completeness mark, tables
    agreeing with each other and with the mark, every table read through its
    HDF5 checksums), IRF and DL3 FITS (checksums, mark, no NaN in IRFs, event
    counts). One line per file; exit code 0 only if
    every file is good.
    """

    name = "ctapipe-sst1m-check"
    description = __doc__
    examples = """
    ctapipe-sst1m-check SST1M1_20240101_0001.fits.fz run.dl1.h5 dl3/*.fits.gz
    """

    files = traits.List(
        traits.Path(), default_value=[], help="Files to check (also positional)"
    ).tag(config=True)
    allow_unmarked = traits.Bool(
        False,
        help=(
            "Accept consistent products without a completeness mark (outputs of "
            "stock ctapipe tools such as ctapipe-apply-models)"
        ),
    ).tag(config=True)

    aliases = {("i", "input"): "CheckTool.files"}
    flags = {
        "allow-unmarked": (
            {"CheckTool": {"allow_unmarked": True}},
            "Accept consistent products without a completeness mark",
        )
    }

    def setup(self):
        self.paths = [*self.files, *(Path(p) for p in self.extra_args)]
        if not self.paths:
            self.log.critical("no file given")
            self.exit(2)

    def start(self):
        self.verdicts = []
        for path in self.paths:
            verdict = check_file(path, self.allow_unmarked)
            print(verdict.line(), flush=True)
            self.verdicts.append(verdict)

    def finish(self):
        self.bad = [v for v in self.verdicts if v.verdict != OK]
        if len(self.verdicts) > 1:
            n_good = len(self.verdicts) - len(self.bad)
            print(f"{n_good} of {len(self.verdicts)} files good", file=sys.stderr)


def main():
    """Run the check tool; exit code 1 if any file is not good."""
    tool = CheckTool()
    tool.bad = []
    try:
        tool.run()
    except SystemExit as done:
        # a bad file is the tool's answer, not its failure: no error log
        if done.code == 0 and tool.bad:
            sys.exit(1)
        raise
