"""
Truncated and damaged sim_telarray inputs of SST1MSimulationCorrections.

The damaged inputs are made at test time from the real files: decompressed
streams cut at 30, 50 and 70 % and compressed again the same way, compressed
files cut or with flipped bytes, a stream without its end-of-run histograms.
"""

import gzip
import io
import struct
import subprocess
import sys
from pathlib import Path

import eventio
import pytest
import zstandard
from ctapipe.core import Provenance, ToolConfigurationError, run_tool
from ctapipe.io import SimTelEventSource
from ctapipe.tools.process import ProcessorTool

from ctapipe_sst1m.calib.simtel_files import SimTelFileError, scan_simtel_file
from ctapipe_sst1m.calib.simulation import SST1MSimulationCorrections
from ctapipe_sst1m.core.products import DL1, ProductError, verify_hdf5_product
from ctapipe_sst1m.core.resources import config_file

MC_CONFIG = config_file("sst1m_mc.yaml")
PROD4 = (
    "gamma_20deg_0deg_run102___cta-prod4-sst-1m_desert-2150m-Paranal-sst-1m.simtel.zst"
)
SST1M_GZ = "simtel_test_file.simtel.gz"
REAL_FILES = [PROD4, SST1M_GZ, "1_triggered_events_10_TeV.simtel.gz"]
OVERRIDE = (
    "; reproduce or copy the file again, or set "
    "SST1MSimulationCorrections.check_input_complete=False to process it anyway "
    "(the output is then not marked complete)"
)


def _decompress(path):
    data = path.read_bytes()
    if data.startswith(b"\x1f\x8b"):
        return gzip.decompress(data)
    reader = zstandard.ZstdDecompressor().stream_reader(
        io.BytesIO(data), read_across_frames=True
    )
    return reader.read()


def _zstd(data):
    # as the prod4 file: one frame with its checksum
    return zstandard.ZstdCompressor(write_checksum=True).compress(data)


def _object_starts(path):
    """Decompressed offsets where the top-level objects of a file start, read by
    eventio itself (independently of the scan)."""
    with eventio.EventIOFile(path) as simtel:
        return [o.header.content_address - o.header.header_size for o in simtel]


def _flipped(data, offset, length=64):
    data = bytearray(data)
    for i in range(offset, offset + length):
        data[i] ^= 0x5A
    return bytes(data)


def _cut_message(path, cut, starts):
    """The message of a decompressed stream cut at byte ``cut``."""
    number = sum(start <= cut for start in starts)
    return (
        f"{path}: truncated sim_telarray file (ends inside object {number} at byte "
        f"{cut}; the object starts at byte {starts[number - 1]}){OVERRIDE}"
    )


@pytest.fixture(scope="module")
def simtel_dir(shared_data):
    return shared_data / "simtel"


@pytest.fixture(scope="module")
def damaged(simtel_dir, tmp_path_factory):
    """Name -> (damaged file, expected message or its start)."""
    out = tmp_path_factory.mktemp("damaged_simtel")
    cases = {}
    compressions = ((SST1M_GZ, "gz", gzip.compress), (PROD4, "zst", _zstd))
    for name, suffix, compress in compressions:
        source = simtel_dir / name
        stream = _decompress(source)
        starts = _object_starts(source)
        for percent in (30, 50, 70):
            cut = len(stream) * percent // 100
            path = out / f"cut{percent}_{name}"
            path.write_bytes(compress(stream[:cut]))
            cases[f"{suffix} {percent}%"] = (path, _cut_message(path, cut, starts))
        # the histograms, sim_telarray's last object, missing: the stream ends
        # at the end of an object
        path = out / f"no_histograms_{name}"
        path.write_bytes(compress(stream[: starts[-1]]))
        cases[f"{suffix} no histograms"] = (
            path,
            f"{path}: truncated sim_telarray file (no end-of-run histograms: no type "
            "100 object with the shower distribution, histogram 6, after the last run "
            f"header; {len(starts) - 1} objects, {starts[-1]} bytes){OVERRIDE}",
        )
        compressed = source.read_bytes()
        path = out / f"cut_compressed_{name}"
        path.write_bytes(compressed[: len(compressed) // 2])
        cases[f"{suffix} compressed cut"] = (
            path,
            f"{path}: truncated sim_telarray file (ends inside object ",
        )
        path = out / f"flipped_{name}"
        path.write_bytes(_flipped(compressed, len(compressed) // 2))
        cases[f"{suffix} flipped"] = (path, f"{path}: damaged sim_telarray file (")
    # the CRC32 of the gzip trailer wrong: every byte decompresses, the check fails
    compressed = (simtel_dir / SST1M_GZ).read_bytes()
    path = out / f"crc_{SST1M_GZ}"
    path.write_bytes(_flipped(compressed, len(compressed) - 8, length=1))
    cases["gz crc"] = (
        path,
        f"{path}: damaged sim_telarray file (gzip stream: CRC check failed",
    )
    # two zstd frames, the second cut: the first frame alone is a valid stream
    stream = _decompress(simtel_dir / PROD4)
    half = len(stream) // 2
    frames = _zstd(stream[:half]) + _zstd(stream[half:])
    path = out / f"second_frame_cut_{PROD4}"
    path.write_bytes(frames[:-1000])
    cases["zst second frame cut"] = (
        path,
        f"{path}: truncated sim_telarray file (ends inside object ",
    )
    return cases


@pytest.mark.slow
@pytest.mark.parametrize("name", REAL_FILES)
def test_real_files_complete(simtel_dir, name):
    path = simtel_dir / name
    scan = scan_simtel_file(path)
    assert scan.complete
    assert 6 in scan.histogram_ids
    assert scan.n_bytes == len(_decompress(path))
    assert scan.n_objects == len(_object_starts(path))
    with eventio.SimTelFile(path) as simtel:
        assert scan.history == simtel.history
    assert scan_simtel_file(path, to_end=False).history == scan.history


def test_zstd_frames_read_across(simtel_dir, tmp_path):
    """A stream compressed as several zstd frames, behind skippable frames (as
    pzstd writes it), is read frame after frame."""
    stream = _decompress(simtel_dir / PROD4)
    third = len(stream) // 3
    skippable = struct.pack("<II", 0x184D2A50, 4) + b"\0\0\0\0"
    path = tmp_path / PROD4
    path.write_bytes(
        b"".join(
            skippable + _zstd(stream[i : i + third]) for i in range(0, len(stream), third)
        )
    )
    scan = scan_simtel_file(path)
    assert scan.complete
    assert scan.n_bytes == len(stream)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file, not a sim_telarray file"),
        (
            b"not eventio" * 10,
            "not a sim_telarray file (no eventio sync marker at its start)",
        ),
    ],
)
def test_not_a_simtel_file(tmp_path, content, message):
    path = tmp_path / "x.simtel"
    path.write_bytes(content)
    with pytest.raises(SimTelFileError) as error:
        scan_simtel_file(path)
    assert str(error.value) == f"{path}: {message}"


@pytest.mark.parametrize(
    "case",
    [
        "gz 30%",
        "gz 50%",
        "gz 70%",
        "zst 30%",
        "zst 50%",
        "zst 70%",
        "gz no histograms",
        "zst no histograms",
        "gz compressed cut",
        "zst compressed cut",
        "gz flipped",
        "zst flipped",
        "gz crc",
        "zst second frame cut",
    ],
)
@pytest.mark.slow
def test_scan_refuses(damaged, case):
    path, message = damaged[case]
    with pytest.raises(SimTelFileError) as error:
        scan_simtel_file(path)
    text = str(error.value)
    assert "\n" not in text
    if message.endswith(OVERRIDE):
        assert text == message
    else:
        assert text.startswith(message)
        assert text.endswith(OVERRIDE)
    # ctapipe's Tool reports a ToolConfigurationError in one line, no traceback
    assert isinstance(error.value, ToolConfigurationError)


def _process(tmp_path, path, *extra):
    output = tmp_path / "mc.dl1.h5"
    argv = [
        f"--input={path}",
        f"--output={output}",
        f"--config={MC_CONFIG}",
        "--SST1MSimulationCorrections.pde_correction=1.0",
        "--no-progress",
        *extra,
    ]
    return run_tool(ProcessorTool(), argv=argv, cwd=tmp_path, raises=False), output


@pytest.mark.parametrize(
    ("case", "what"),
    [
        ("gz 30%", "truncated"),
        ("gz 50%", "truncated"),
        ("gz 70%", "truncated"),
        ("zst 30%", "truncated"),
        ("zst 70%", "truncated"),
        ("zst compressed cut", "truncated"),
        ("gz no histograms", "truncated"),
        ("gz flipped", "damaged"),
    ],
)
@pytest.mark.slow
def test_process_refuses(tmp_path, damaged, capsys, case, what):
    path, _ = damaged[case]
    code, output = _process(tmp_path, path)
    assert code == 2
    stderr = capsys.readouterr().err
    lines = [line for line in stderr.splitlines() if path.name in line]
    assert len(lines) == 1, stderr
    assert f"{path}: {what} sim_telarray file (" in lines[0]
    assert "Traceback" not in stderr
    with pytest.raises(ProductError):
        verify_hdf5_product(output, kinds=(DL1,))


@pytest.mark.slow
def test_ctapipe_process_one_line(tmp_path, damaged):
    """What a user sees: one line naming the file, exit code 2."""
    path, message = damaged["zst 50%"]
    output = tmp_path / "mc.dl1.h5"
    executable = Path(sys.executable).parent / "ctapipe-process"
    result = subprocess.run(
        [
            str(executable),
            f"--input={path}",
            f"--output={output}",
            f"--config={MC_CONFIG}",
            "--SST1MSimulationCorrections.pde_correction=1.0",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if path.name in line]
    assert len(lines) == 1, result.stderr
    assert lines[0].endswith(message)
    assert "Traceback" not in result.stderr
    assert not output.exists()


@pytest.mark.slow
def test_check_disabled_processes_but_does_not_mark(tmp_path, damaged, capsys):
    """check_input_complete=False: the truncated file is processed as before the
    check (its first events, exit 0), but the output is not marked complete."""
    path, _ = damaged["gz 50%"]
    code, output = _process(
        tmp_path, path, "--SST1MSimulationCorrections.check_input_complete=False"
    )
    assert code == 0
    assert f"{output}: not marked complete" in capsys.readouterr().err
    with pytest.raises(ProductError, match="no completeness mark"):
        verify_hdf5_product(output, kinds=(DL1,))


@pytest.mark.slow
def test_max_events_not_marked(tmp_path, simtel_dir, capsys):
    """max_events stops before the histograms: the output is incomplete."""
    code, output = _process(tmp_path, simtel_dir / SST1M_GZ, "--max-events=3")
    assert code == 0
    stderr = capsys.readouterr().err
    assert f"{output}: INCOMPLETE, no /simulation/service/shower_distribution" in stderr
    assert "stopped before its end (max_events, an error or an interrupt) after 3 " in (
        stderr
    )
    with pytest.raises(ProductError, match="no completeness mark"):
        verify_hdf5_product(output, kinds=(DL1,))


def _source(path):
    return SimTelEventSource(path, focal_length_choice="EQUIVALENT")


@pytest.mark.slow
def test_input_registered_by_the_event_source(simtel_dir):
    """Outside a tool the input is the one an event source registered with
    ctapipe's Provenance in the current activity; no output, no mark."""
    path = simtel_dir / SST1M_GZ
    with Provenance().activity("test_input_registered"):
        with _source(path) as source:
            corrections = SST1MSimulationCorrections(
                subarray=source.subarray, pde_correction=0.9
            )
        with corrections:
            assert corrections.input_path == path
            assert corrections.scan.complete
            assert corrections.factors == {1: 0.9}
            # a second input: which one is processed is unknown
            with _source(simtel_dir / PROD4):
                pass
            with pytest.raises(ToolConfigurationError, match="2 event inputs"):
                SST1MSimulationCorrections(subarray=source.subarray, pde_correction=0.9)
            explicit = SST1MSimulationCorrections(
                subarray=source.subarray, pde_correction=0.9, input_url=path
            )
            assert explicit.input_path == path


def test_explicit_truncated_input_refused(simtel_dir, damaged):
    path, message = damaged["gz 70%"]
    with _source(simtel_dir / SST1M_GZ) as source:
        subarray = source.subarray
    with pytest.raises(SimTelFileError) as error:
        SST1MSimulationCorrections(subarray=subarray, pde_correction=1.0, input_url=path)
    assert str(error.value) == message


def test_no_input_for_the_history(simtel_dir):
    with _source(simtel_dir / SST1M_GZ) as source:
        subarray = source.subarray
    with Provenance().activity("test_no_input"):
        with pytest.raises(ToolConfigurationError) as error:
            SST1MSimulationCorrections(subarray=subarray)
        # without a history to read, a factor is enough
        corrections = SST1MSimulationCorrections(subarray=subarray, pde_correction=1.0)
        assert corrections.scan is None
    assert str(error.value) == (
        "SST1MSimulationCorrections: no sim_telarray input to read the QE files from "
        "(no sim_telarray file registered by the tool's event source); set "
        "SST1MSimulationCorrections.input_url or set "
        "SST1MSimulationCorrections.pde_correction, e.g. "
        "--SST1MSimulationCorrections.pde_correction=1.0 (all telescopes) or in YAML "
        "SST1MSimulationCorrections: {pde_correction: [[id, 1, 1.0]]} (tel 1)"
    )
