"""The bad-input corpus of ctapipe-sst1m-dl3, built from the toy chain's products."""

import gzip
import shutil

import numpy as np
import pytest
import tables
from astropy.io import fits

from ctapipe_sst1m.tools.check import check_file

from ..robustness.corpus import (
    DL3,
    Case,
    assert_refused,
    run_cases,
    undocumented,
    write_table,
)

#: runs ctapipe tools on real or toy files (seconds to minutes each)
pytestmark = pytest.mark.slow


def _copy(source, destination):
    shutil.copy(source, destination)
    return destination


def _remove_node(source, destination, node):
    _copy(source, destination)
    with tables.open_file(destination, mode="a") as h5file:
        h5file.remove_node(node, recursive=True)
    return destination


def _nan_irf(irf, destination):
    """The IRF with an all-NaN effective area, checksums recomputed: a file that
    reads perfectly and is wrong."""
    with fits.open(irf) as hdus:
        hdus["EFFECTIVE AREA"].data["EFFAREA"][:] = np.nan
        hdus.writeto(destination, checksum=True)
    return destination


def dl3_cases(tmp, dl2, dl1, irf, cuts, raw_file):
    irf_bytes = irf.read_bytes()
    cases = []

    def case(name, inputs, message, names, irf_file=irf, cuts_file=cuts, spawn=False):
        output_dir = tmp / name.replace(" ", "_")
        command = [DL3, *map(str, inputs), f"--irf={irf_file}", f"--cuts={cuts_file}"]
        command.append(f"--output-dir={output_dir}")
        cases.append(Case(name, command, message, names, [output_dir], spawn))

    crc = bytearray(irf_bytes)
    crc[len(crc) // 2] ^= 0xFF
    bad = tmp / "crc_irf.fits.gz"
    bad.write_bytes(bytes(crc))
    case("dl3 IRF failing its gzip CRC", [dl2], "gzip", bad.name, irf_file=bad)
    plain = tmp / "overwritten_irf.fits"
    data = bytearray(gzip.decompress(irf_bytes))
    data[len(data) // 2 : len(data) // 2 + 16] = b"\x00" * 16
    plain.write_bytes(bytes(data))
    case("dl3 IRF with overwritten bytes", [dl2], "checksum", plain.name, irf_file=plain)
    nan = _nan_irf(irf, tmp / "nan_irf.fits.gz")
    case("dl3 IRF with an all-NaN effective area", [dl2], "NaN", nan.name, irf_file=nan)
    cut = tmp / "cut_irf.fits.gz"
    cut.write_bytes(irf_bytes[: len(irf_bytes) // 2])
    case("dl3 IRF truncated", [dl2], "truncated", cut.name, irf_file=cut, spawn=True)
    text = tmp / "text_irf.fits.gz"
    text.write_text("not an IRF\n")
    case("dl3 IRF is a text file", [dl2], "", text.name, irf_file=text)
    empty = tmp / "empty_irf.fits"
    empty.touch()
    case("dl3 IRF is empty", [dl2], "empty", empty.name, irf_file=empty)
    case(
        "dl3 IRF is the cuts file", [dl2], "expected GADF IRFs", cuts.name, irf_file=cuts
    )

    text_cuts = tmp / "cuts.txt"
    text_cuts.write_text("gammaness > 0.5\n")
    case("dl3 cuts file is text", [dl2], "", text_cuts.name, cuts_file=text_cuts)
    strict = tmp / "strict_cuts.fits"
    with fits.open(cuts) as hdus:
        # a gammaness cut above 1 in every bin: no event can pass
        hdus["GH_CUTS"].data["cut"][:] = 1.5
        hdus.writeto(strict)
    case(
        "dl3 cuts that no event passes",
        [dl2],
        "no event passes",
        dl2.name,
        cuts_file=strict,
    )
    cut_cuts = tmp / "cut_cuts.fits"
    cut_cuts.write_bytes(cuts.read_bytes()[:5000])
    case("dl3 cuts file truncated", [dl2], "", cut_cuts.name, cuts_file=cut_cuts)

    for node, label in (
        ("/dl1/event/subarray/trigger", "trigger table"),
        ("/configuration/observation", "observation group"),
        ("/configuration/instrument", "instrument group"),
        ("/dl2/event/subarray/energy", "energy group"),
    ):
        name = f"dl3 DL2 without its {label}"
        path = _remove_node(dl2, tmp / f"no_{label.replace(' ', '_')}.dl2.h5", node)
        case(name, [path], "", path.name)
    data = dl2.read_bytes()
    for fraction in (0.3, 0.7):
        path = tmp / f"cut{int(fraction * 10)}.dl2.h5"
        path.write_bytes(data[: int(fraction * len(data))])
        case(f"dl3 DL2 truncated at {fraction:.0%}", [path], "", path.name)
    empty_dl2 = tmp / "empty.dl2.h5"
    empty_dl2.touch()
    case("dl3 DL2 empty file", [empty_dl2], "empty", empty_dl2.name)
    case("dl3 raw file given as DL2", [raw_file], "not an HDF5 file", raw_file.name)
    short = _copy(dl2, tmp / "short.dl2.h5")
    with tables.open_file(short, mode="a") as h5file:
        node = h5file.get_node("/dl2/event/subarray/energy/RandomForestRegressor")
        node.remove_rows(node.nrows // 2, node.nrows)
    case(
        "dl3 DL2 whose energy table stops halfway (apply-models interrupted)",
        [short],
        "rows for",
        short.name,
    )
    case("dl3 DL1 without models", [dl1], "DL2 without", dl1.name)
    directory = tmp / "a_directory.dl2.h5"
    directory.mkdir()
    case("dl3 directory as DL2", [directory], "", directory.name)
    occupied = tmp / "occupied"
    occupied.write_text("a file where the output directory should be")
    cases.append(
        Case(
            "dl3 output directory is a file",
            [DL3, str(dl2), f"--irf={irf}", f"--cuts={cuts}", f"--output-dir={occupied}"],
            "is a file",
            occupied.name,
            [],
        )
    )
    return cases


def test_dl3_inputs_refused(
    tmp_path, observed_dl2, observed_dl1, chain, embedded_raw_file
):
    first = next(iter(observed_dl2.values()))
    dl1 = next(iter(observed_dl1.values()))
    cases = dl3_cases(
        tmp_path, first, dl1, chain["irf"], chain["cuts"], embedded_raw_file
    )
    results = run_cases(cases)
    write_table(results)
    failures = assert_refused(results)
    assert not failures, "\n".join(failures)
    assert len(results) >= 20
    assert not undocumented(results), undocumented(results)
    # ctapipe-sst1m-check calls the damaged products BAD
    for name in ("crc_irf.fits.gz", "nan_irf.fits.gz", "cut_irf.fits.gz", "short.dl2.h5"):
        assert check_file(tmp_path / name).verdict == "BAD", name


def test_products_of_the_chain_are_complete(chain, observed_dl2, tmp_path):
    """The package's IRFs pass the check; apply-models' DL2 is consistent but
    unmarked (stock tool)."""
    for path in (chain["irf"], chain["benchmarks"]):
        verdict = check_file(path)
        assert verdict.verdict == "OK", verdict.line()
        assert "complete IRF" in verdict.kind
    dl2 = next(iter(observed_dl2.values()))
    assert check_file(dl2).verdict == "UNMARKED"
    assert check_file(dl2, allow_unmarked=True).verdict == "OK"
