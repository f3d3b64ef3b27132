"""Stock ctapipe-process on real DigiCam files, read back by ctapipe."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from ctapipe.containers import EventType
from ctapipe.core import run_tool
from ctapipe.io import EventSource, TableLoader, read_table
from ctapipe.time import time_to_ctao_high_res
from ctapipe.tools.process import ProcessorTool

from ctapipe_sst1m.core.resources import config_file
from ctapipe_sst1m.io import SST1MEventSource

from ..helpers import add_events_header_card, corrupted_copy, truncated_copy

#: runs ctapipe tools on real or toy files (seconds to minutes each)
pytestmark = pytest.mark.slow

CONFIG = config_file("sst1m.yaml")


def _process(tmp_path, input_path, *extra, name="out.dl1.h5"):
    output = tmp_path / name
    code = run_tool(
        ProcessorTool(),
        argv=[f"--input={input_path}", f"--output={output}", *extra],
        cwd=tmp_path,
        raises=False,
    )
    return code, output


def _source_truth(path, **kwargs):
    with SST1MEventSource(path, **kwargs) as source:
        return [
            (
                e.index.obs_id,
                e.index.event_id,
                *time_to_ctao_high_res(e.trigger.time),
                e.trigger.event_type,
            )
            for e in source
        ]


@pytest.mark.parametrize(
    ("key", "tel_id", "n_events"),
    [
        ("science_2018", 22, 32),
        ("dark_2018", 22, 1),
        ("proto_10", 1, 10),
        ("proto_100", 1, 100),
    ],
)
def test_process_real_files(tmp_path, digicam_files, key, tel_id, n_events):
    path = digicam_files[key]
    code, output = _process(tmp_path, path, f"--config={CONFIG}")
    assert code == 0
    truth = _source_truth(path)
    assert len(truth) == n_events

    with TableLoader(output) as loader:
        events = loader.read_telescope_events(dl1_images=True, dl1_parameters=True)
        subarray = loader.subarray
    assert tel_id in subarray.tel
    assert len(events) == n_events
    np.testing.assert_array_equal(events["tel_id"], tel_id)
    np.testing.assert_array_equal(events["obs_id"], [t[0] for t in truth])
    np.testing.assert_array_equal(events["event_id"], [t[1] for t in truth])
    # times survive at full precision (ctapipe stores TAI s + quarter ns)
    s, qns = time_to_ctao_high_res(events["time"]).T
    np.testing.assert_array_equal(s, [t[2] for t in truth])
    np.testing.assert_array_equal(qns, [t[3] for t in truth])
    assert [EventType(t) for t in events["event_type"]] == [t[4] for t in truth]
    assert events["image"].shape == (n_events, 1296)


def test_process_without_config(tmp_path, embedded_raw_file):
    code, output = _process(tmp_path, embedded_raw_file)
    assert code == 0
    with TableLoader(output) as loader:
        events = loader.read_telescope_events()
    assert len(events) == 32
    # NSB triggers: Hillas parameters exist exactly for the images that kept pixels
    kept = np.ma.filled(events["morphology_n_pixels"], 0)
    intensity = np.ma.filled(events["hillas_intensity"], np.nan)
    np.testing.assert_array_equal(np.isfinite(intensity), kept > 0)


def test_pointing_survives_in_dl1(tmp_path, embedded_raw_file):
    raw = add_events_header_card(
        embedded_raw_file,
        tmp_path / "SST1M2_20180822_0001.fits.fz",
        "TARGET",
        "Crab,83.633,22.0145",
    )
    code, output = _process(tmp_path, raw, f"--config={CONFIG}")
    assert code == 0
    with SST1MEventSource(raw) as source:
        expected = {e.index.event_id: e.monitoring.tel[22].pointing for e in source}

    # ctapipe's HDF5EventSource reads the pointing back ...
    with EventSource(output) as source:
        assert type(source).__name__ == "HDF5EventSource"
        n = 0
        for event in source:
            pointing = event.monitoring.tel[22].pointing
            truth = expected[event.index.event_id]
            assert u.isclose(pointing.altitude, truth.altitude, atol=0.1 * u.arcsec)
            assert u.isclose(pointing.azimuth, truth.azimuth, atol=0.1 * u.arcsec)
            n += 1
    assert n == 32

    # ... and so does the TableLoader used by the training and IRF tools
    with TableLoader(output) as loader:
        events = loader.read_telescope_events(pointing=True)
    column = events["telescope_pointing_altitude"]
    assert not np.ma.getmaskarray(column).any()
    alt = u.Quantity(np.ma.filled(column, np.nan), column.unit)
    truth = u.Quantity([expected[i].altitude for i in events["event_id"]])
    assert u.allclose(alt, truth, atol=0.1 * u.arcsec)


def test_pointing_with_max_events(tmp_path, embedded_raw_file):
    """A run cut by max_events is complete: the pointing covers the events written."""
    raw = add_events_header_card(
        embedded_raw_file,
        tmp_path / "SST1M2_20180822_0001.fits.fz",
        "TARGET",
        "Crab,83.633,22.0145",
    )
    code, output = _process(tmp_path, raw, "--max-events=4")
    assert code == 0
    with TableLoader(output) as loader:
        events = loader.read_telescope_events(pointing=True)
    assert len(events) == 4
    assert np.all(np.isfinite(events["telescope_pointing_azimuth"]))


def _ctapipe_process(tmp_path, *args):
    """Run the installed ctapipe-process as a user does; returns (code, stderr)."""
    executable = Path(sys.executable).parent / "ctapipe-process"
    result = subprocess.run(
        [str(executable), *map(str, args)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return result.returncode, result.stderr


@pytest.fixture()
def bad_inputs(tmp_path, raw_dir, embedded_raw_file):
    size = embedded_raw_file.stat().st_size
    empty = tmp_path / "SST1M2_20180822_0091.fits.fz"
    empty.write_bytes(b"")
    noise = tmp_path / "SST1M2_20180822_0092.fits.fz"
    noise.write_bytes(np.random.default_rng(0).bytes(50_000))
    unclaimed = "Could not find compatible EventSource"
    return {
        # damaged files named like raw data are claimed and refused with the reason
        "empty": (empty, ["file is empty (0 bytes)"]),
        "random bytes": (noise, ["not a readable FITS file"]),
        "truncated": (
            truncated_copy(
                embedded_raw_file, tmp_path / "SST1M2_20180822_0093.fits.fz", size // 2
            ),
            ["truncated file: HDU 'EVENTS' needs"],
        ),
        "corrupted": (
            corrupted_copy(
                embedded_raw_file, tmp_path / "SST1M2_20180822_0094.fits.fz", 900_000
            ),
            ["corrupted data in HDU 'EVENTS'"],
        ),
        "LST": (
            Path(shutil.copy(raw_dir / "example_LST_R1_10_evts.fits.fz", tmp_path)),
            # well-formed files of other cameras: left to their own sources, the
            # reason only at DEBUG (users of those cameras see nothing of ours)
            [unclaimed],
        ),
        "NectarCAM": (
            Path(shutil.copy(raw_dir / "example_9evts_NectarCAM.fits.fz", tmp_path)),
            [unclaimed],
        ),
    }


@pytest.mark.parametrize(
    "case", ["empty", "random bytes", "truncated", "corrupted", "LST", "NectarCAM"]
)
def test_bad_input(tmp_path, bad_inputs, case):
    path, reasons = bad_inputs[case]
    output = tmp_path / "out.dl1.h5"
    code, stderr = _ctapipe_process(
        tmp_path, f"--input={path}", f"--output={output}", f"--config={CONFIG}"
    )
    assert code != 0
    assert not output.exists()
    for reason in reasons:
        assert reason in stderr
    assert path.name in stderr
    if case in ("LST", "NectarCAM"):
        # our plugin says nothing about other cameras' files: the only mention of
        # it is ctapipe's list of the sources it tried
        ours = [line for line in stderr.splitlines() if re.search("SST1M|DigiCam", line)]
        assert [line for line in ours if "available EventSources" not in line] == []


def test_mixed_telescope_list(tmp_path, digicam_files):
    # two chunks of one run, from two telescopes
    chunks = [tmp_path / f"SST1M2_20180822_0003.{i:03d}.fits.fz" for i in (0, 1)]
    chunks[0].write_bytes(digicam_files["science_2018"].read_bytes())
    chunks[1].write_bytes(digicam_files["proto_10"].read_bytes())
    config = tmp_path / "list.yaml"
    config.write_text(
        f"SST1MEventSource:\n  input_filelist:\n    - {chunks[0]}\n    - {chunks[1]}\n"
    )
    output = tmp_path / "out.dl1.h5"
    code, stderr = _ctapipe_process(
        tmp_path,
        f"--input={chunks[0]}",
        f"--output={output}",
        f"--config={config}",
    )
    # the telescope of a file is known when the file is reached: the output
    # the first file's events went to is removed
    assert code != 0
    assert not output.exists()
    assert "must come from one telescope" in stderr
    assert "SST1M2_20180822_0003.001.fits.fz: event" in stderr
    assert "comes from telescope 1" in stderr


def test_help_lists_source_options(capsys):
    ProcessorTool().print_help(classes=True)
    out = capsys.readouterr().out
    assert "SST1MEventSource.pointing_ra" in out
    assert "SST1MEventSource.camera_clock_scale" in out


def test_calibration_provenance_in_output(tmp_path, embedded_raw_file):
    code, output = _process(tmp_path, embedded_raw_file, f"--config={CONFIG}")
    assert code == 0
    provenance = read_table(output, "/configuration/sst1m/r1_calibration/tel_022")
    assert len(provenance) == 1
    row = provenance[0]
    assert row["gain_file"] == "ctapipe_sst1m default gains_tel022.ecsv"
    assert len(row["gain_sha256"]) == 64
    assert row["window_file"] == "ctapipe_sst1m default window_2.ecsv"
    assert row["n_pedestal_events"] == 2
    assert row["voltage_drop_factor"] == pytest.approx(0.93978, abs=1e-5)
    assert row["gains_measured"] == "2024-02-15"
    assert not row["module_swap"]
    assert row["gain_module_swap"]


def test_invalid_pixels_survive_r1_round_trip(tmp_path, embedded_raw_file):
    """Invalid pixels are marked in R1 pixel_status the ctapipe way: reading the R1
    written by ctapipe-process back gives the same outlier mask."""
    code, output = _process(
        tmp_path, embedded_raw_file, "--DataWriter.write_r1_waveforms=True"
    )
    assert code == 0
    with SST1MEventSource(embedded_raw_file) as source:
        expected = {
            e.index.event_id: e.monitoring.tel[22].camera.coefficients.outlier_mask
            for e in source
        }
    with EventSource(output) as source:
        n = 0
        for event in source:
            outliers = event.monitoring.tel[22].camera.coefficients.outlier_mask
            np.testing.assert_array_equal(outliers, expected[event.index.event_id])
            assert outliers.sum() == 22
            n += 1
    assert n == 32
