"""
The files of a run (given twice, copied, missing, mixed) and the messages on
directories, compressed files and files cut inside a header.

Every case is built at test time in ``tmp_path`` from the real DigiCam files:
copies under chunk names, links, gzip/bzip2/xz copies, truncations at offsets
found by parsing the headers of the real file.
"""

import bz2
import gzip
import lzma
import os
import shutil

import pytest
from astropy.io import fits

from ctapipe_sst1m.io import SST1MEventSource
from ctapipe_sst1m.io.zfits import (
    DigiCamFileError,
    check_file_integrity,
    check_run_files,
    inspect_digicam_file,
)

from ..helpers import BLOCK, CARD, truncated_copy

RUN = "SST1M2_20180822_0007"


def _chunks(directory, sources, numbers, stem=RUN):
    """Copies of ``sources`` named ``<stem>.NNN.fits.fz``, inspected."""
    directory.mkdir(parents=True, exist_ok=True)
    infos = []
    for source, number in zip(sources, numbers, strict=True):
        path = directory / f"{stem}.{number:03d}.fits.fz"
        shutil.copyfile(source, path)
        infos.append(inspect_digicam_file(path))
    return infos


@pytest.fixture
def distinct_files(digicam_files):
    """Four real DigiCam files with distinct content."""
    return [
        digicam_files["science_2018"],
        digicam_files["dark_2018"],
        digicam_files["proto_10"],
        digicam_files["proto_100"],
    ]


def _header_spans(path):
    """
    Each HDU of ``path`` as (index, header start, END card offset, data start).

    The header locations come from astropy; the END card is looked for card by
    card, as a FITS reader does.
    """
    data = path.read_bytes()
    spans = []
    with fits.open(path, memmap=False) as hdul:
        for index in range(len(hdul)):
            info = hdul.fileinfo(index)
            start, data_start = info["hdrLoc"], info["datLoc"]
            end = next(
                offset
                for offset in range(start, data_start, CARD)
                if data[offset : offset + 8] == b"END     "
            )
            spans.append((index, start, end, data_start))
    return spans


def _swapped_copy(info, destination):
    """A copy of a file with two words of its last HDU's data swapped (4 KiB in)."""
    data = bytearray(info.path.read_bytes())
    _, offset, _, _ = info.hdus[-1]
    offset += 4096
    first, second = data[offset : offset + 4], data[offset + 4 : offset + 8]
    assert first != second
    data[offset : offset + 8] = second + first
    destination.write_bytes(bytes(data))
    return destination


def _message(path_or_infos, allow_missing_chunks=False):
    """The message of the DigiCamFileError raised for a path or a list of infos."""
    with pytest.raises(DigiCamFileError) as err:
        if isinstance(path_or_infos, list):
            check_run_files(path_or_infos, allow_missing_chunks=allow_missing_chunks)
        else:
            inspect_digicam_file(path_or_infos)
    message = str(err.value)
    assert "\n" not in message
    return message


# --- accepted runs --------------------------------------------------------------


def test_single_file_is_a_run(digicam_files):
    for path in digicam_files.values():
        assert check_run_files([inspect_digicam_file(path)]) == []


def test_distinct_chunks_accepted(tmp_path, distinct_files):
    infos = _chunks(tmp_path, distinct_files, range(4))
    assert check_run_files(infos) == []
    assert check_run_files(infos, allow_missing_chunks=True) == []


def test_lone_chunk_000_is_complete(tmp_path, embedded_raw_file):
    assert check_run_files(_chunks(tmp_path, [embedded_raw_file], [0])) == []


def test_swapped_words_are_not_a_copy(tmp_path, embedded_raw_file):
    # swapping two data words keeps the size and the DATASUM (a ones' complement
    # sum ignores the order of the words): the hashed first bytes tell them apart
    (original,) = _chunks(tmp_path, [embedded_raw_file], [0])
    info = inspect_digicam_file(_swapped_copy(original, tmp_path / f"{RUN}.001.fits.fz"))
    check_file_integrity(info)
    assert info.hdus == original.hdus
    assert check_run_files([original, info]) == []


# --- the same file, the same content ----------------------------------------------


def test_same_path_twice(embedded_raw_file):
    info = inspect_digicam_file(embedded_raw_file)
    message = _message([info, info])
    assert message == f"{embedded_raw_file} and {embedded_raw_file} are the same file"


@pytest.mark.parametrize("link", [os.symlink, os.link], ids=["symlink", "hardlink"])
def test_same_file_under_another_name(tmp_path, embedded_raw_file, link):
    (chunk_0,) = _chunks(tmp_path, [embedded_raw_file], [0])
    other = tmp_path / f"{RUN}.001.fits.fz"
    link(chunk_0.path, other)
    message = _message([chunk_0, inspect_digicam_file(other)])
    assert message == f"{chunk_0.path} and {other} are the same file"


def test_thirty_identical_chunks(tmp_path, embedded_raw_file):
    infos = _chunks(tmp_path, [embedded_raw_file] * 30, range(30))
    message = _message(infos)
    assert message == (
        f"{tmp_path / RUN}.000.fits.fz and {tmp_path / RUN}.001.fits.fz have "
        "identical content (same size and checksums): a copied chunk?"
    )
    # a copy is a copy even when chunks may be missing
    with pytest.raises(DigiCamFileError, match="identical content"):
        check_run_files(infos, allow_missing_chunks=True)


def test_copy_among_distinct_chunks(tmp_path, distinct_files):
    # 000, 001, 002 distinct; 003 a copy of 001 (the second file)
    infos = _chunks(tmp_path, [*distinct_files[:3], distinct_files[1]], range(4))
    message = _message(infos)
    assert message.startswith(f"{infos[1].path} and {infos[3].path} have identical")


def test_copy_under_an_unrelated_name(tmp_path, embedded_raw_file):
    renamed = tmp_path / "renamed_copy.fits.fz"
    shutil.copyfile(embedded_raw_file, renamed)
    infos = [inspect_digicam_file(embedded_raw_file), inspect_digicam_file(renamed)]
    message = _message(infos)
    assert message == (
        f"{embedded_raw_file} and {renamed} have identical content "
        "(same size and checksums): a copied chunk?"
    )


def test_same_chunk_in_two_directories(tmp_path, digicam_files):
    first = _chunks(tmp_path / "a", [digicam_files["science_2018"]], [0])
    second = _chunks(tmp_path / "b", [digicam_files["dark_2018"]], [0])
    message = _message(first + second)
    assert message == (
        f"run {RUN}: chunk 000 given twice: {first[0].path} and {second[0].path}"
    )


# --- missing chunks ---------------------------------------------------------------


def test_chunk_missing_in_the_middle(tmp_path, distinct_files):
    infos = _chunks(tmp_path, distinct_files[:3], [0, 1, 3])
    assert _message(infos) == (
        f"run {RUN}: chunk(s) 002 missing between 001 and 003; "
        "set SST1MEventSource.allow_missing_chunks to read the run without them"
    )
    assert check_run_files(infos, allow_missing_chunks=True) == [2]


def test_numbering_from_001_misses_000(tmp_path, distinct_files):
    infos = _chunks(tmp_path, distinct_files[:2], [1, 2])
    assert _message(infos).startswith(f"run {RUN}: chunk(s) 000 missing before 001;")
    assert check_run_files(infos, allow_missing_chunks=True) == [0]


def test_several_gaps(tmp_path, distinct_files):
    infos = _chunks(tmp_path, distinct_files[:3], [0, 3, 7])
    message = _message(infos)
    assert message.startswith(
        f"run {RUN}: chunk(s) 001-002 missing between 000 and 003, "
        "004-006 missing between 003 and 007;"
    )
    assert check_run_files(infos, allow_missing_chunks=True) == [1, 2, 4, 5, 6]


def test_missing_chunks_in_input_order(tmp_path, distinct_files):
    # the check is on chunk numbers, not on the order of the list
    infos = _chunks(tmp_path, distinct_files[:3], [3, 0, 1])
    assert "002 missing between 001 and 003" in _message(infos)


# --- different runs ---------------------------------------------------------------


def test_chunks_of_two_runs(tmp_path, distinct_files):
    run_a = _chunks(tmp_path, distinct_files[:2], [0, 1])
    run_b = _chunks(tmp_path, distinct_files[2:3], [0], stem="SST1M2_20180822_0008")
    message = _message(run_a + run_b)
    assert message == (
        "files of different runs in one input list: "
        f"{RUN} ({run_a[0].path}, {run_a[1].path}), "
        f"SST1M2_20180822_0008 ({run_b[0].path}); give the files of one run"
    )


def test_two_whole_runs(digicam_files):
    # files without a chunk number are runs by themselves
    paths = [digicam_files["dark_2018"], digicam_files["science_2018"]]
    message = _message([inspect_digicam_file(p) for p in paths])
    assert message.startswith("files of different runs in one input list: ")
    assert f"SST1M_01_20180822_001 ({paths[0]})" in message
    assert f"example_SST1M_20180822 ({paths[1]})" in message


def test_whole_run_mixed_with_chunks(tmp_path, distinct_files):
    chunks = _chunks(tmp_path, distinct_files[:2], [0, 1])
    whole = tmp_path / f"{RUN}.fits.fz"
    shutil.copyfile(distinct_files[2], whole)
    message = _message([*chunks, inspect_digicam_file(whole)])
    assert message.startswith("files of different runs in one input list: ")
    assert str(whole) in message
    assert str(chunks[1].path) in message


def test_many_chunks_listed_briefly(tmp_path, distinct_files):
    run_a = _chunks(tmp_path, distinct_files, range(4))
    other = _swapped_copy(run_a[0], tmp_path / "other_run.000.fits.fz")
    message = _message([*run_a, inspect_digicam_file(other)])
    assert f"{run_a[2].path} and 1 more)" in message
    assert str(run_a[3].path) not in message


# --- messages of inspect_digicam_file ---------------------------------------------


def test_directory(tmp_path):
    message = _message(tmp_path)
    assert message == f"{tmp_path}: is a directory, not a DigiCam raw file"
    assert SST1MEventSource.is_compatible(tmp_path) is False


@pytest.mark.parametrize(
    ("compress", "kind", "name"),
    [
        (gzip.compress, "gzip", "run.fits.fz.gz"),
        (gzip.compress, "gzip", "run.fits.fz"),
        (bz2.compress, "bzip2", "run.fits.fz.bz2"),
        (lzma.compress, "xz", "run.fits.fz.xz"),
    ],
)
def test_compressed_file(tmp_path, embedded_raw_file, compress, kind, name):
    path = tmp_path / name
    path.write_bytes(compress(embedded_raw_file.read_bytes()))
    message = _message(path)
    assert message.startswith(f"{path}: {kind}-compressed file; decompress it first")
    assert "truncated" not in message
    # claimed only when named like raw data, so that opening it says what is wrong
    assert SST1MEventSource.is_compatible(path) is name.endswith(".fits.fz")


def test_gzip_file_of_another_kind(tmp_path, embedded_raw_file):
    # gzip around something that is not FITS: nothing to decompress for us
    path = tmp_path / "run.fits.fz"
    path.write_bytes(gzip.compress(embedded_raw_file.read_bytes()[100:]))
    assert _message(path) == (
        f"{path}: not a readable FITS file (gzip-compressed, and not FITS once "
        "decompressed)"
    )


def test_truncated_in_primary_header(tmp_path, embedded_raw_file):
    _, _, end, data_start = _header_spans(embedded_raw_file)[0]
    # inside the first card, at the END card, after it but before the block ends
    for n_bytes in (40, end, end + CARD, data_start - 1):
        path = truncated_copy(embedded_raw_file, tmp_path / "t.fits.fz", n_bytes)
        assert _message(path) == (
            f"{path}: truncated file: ends inside the header of HDU 0 "
            f"(size {n_bytes} bytes)"
        )


@pytest.mark.parametrize("key", ["science_2018", "dark_2018", "proto_10", "proto_100"])
def test_truncated_in_table_headers(tmp_path, digicam_files, key):
    source = digicam_files[key]
    for index, start, end, data_start in _header_spans(source)[1:]:
        # inside XTENSION, among the cards, right after END, one byte short
        offsets = {start + 4, (start + end) // 2, end + CARD, data_start - 1}
        for n_bytes in sorted(n for n in offsets if n < data_start):
            path = truncated_copy(source, tmp_path / "t.fits.fz", n_bytes)
            assert _message(path) == (
                f"{path}: truncated file: ends inside the header of HDU {index} "
                f"(size {n_bytes} bytes)"
            )
            # claimed (named like raw data) so that opening it says what is wrong
            assert SST1MEventSource.is_compatible(path) is True


def test_truncated_in_config_data(tmp_path, digicam_files):
    source = digicam_files["dark_2018"]
    (_, config, events) = _header_spans(source)
    inside = (config[3] + events[1]) // 2
    path = truncated_copy(source, tmp_path / "t.fits.fz", inside)
    assert _message(path) == (
        f"{path}: truncated file: ends inside the data of HDU 1 'DigicamConfig' "
        f"(size {inside} bytes), before any 'Events' table"
    )
    # cut exactly between the two tables: valid FITS, but a DigiCam file cut short
    path = truncated_copy(source, tmp_path / "t.fits.fz", events[1])
    message = _message(path)
    assert message.startswith(f"{path}: no 'Events' table")
    assert f"ends after the DigicamConfig table (size {events[1]} bytes)" in message


def test_complete_header_truncated_data(tmp_path, digicam_files):
    # a whole header and no data: inspection passes, the integrity check refuses
    source = digicam_files["dark_2018"]
    _, _, _, data_start = _header_spans(source)[-1]
    path = truncated_copy(source, tmp_path / "t.fits.fz", data_start)
    assert data_start % BLOCK == 0
    with pytest.raises(DigiCamFileError, match="truncated file: HDU 'EVENTS' needs"):
        check_file_integrity(inspect_digicam_file(path))
