"""
The focal length of telescope-frame parameters, the same in data and in
simulations, and DL1 files that ctapipe's readers open with their defaults.

The DL1 of the real 2018 DigiCam file (``sst1m.yaml``) and of the three SST-1M
sim_telarray files (``sst1m_mc.yaml``) are made by ctapipe-process; the
telescope-frame Hillas parameters stored in them are compared with the
camera-frame ones recomputed from the stored images.
"""

import re
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
import yaml
from ctapipe.core import run_tool
from ctapipe.image import hillas_parameters
from ctapipe.instrument import FocalLengthKind
from ctapipe.io import TableLoader
from ctapipe.tools.process import ProcessorTool

from ctapipe_sst1m.core.resources import RESOURCES
from ctapipe_sst1m.instrument import (
    SST1M_FOCAL_LENGTH_CHOICE,
    sst1m_focal_length,
    sst1m_optics,
    sst1m_telescope_description,
)

DOCS = Path(__file__).resolve().parents[2] / "docs"
PROD4 = (
    "gamma_20deg_0deg_run102___cta-prod4-sst-1m_desert-2150m-Paranal-sst-1m.simtel.zst"
)
#: the sim_telarray files: prod4 (effective focal length 5.697 m) and two older
#: ones without an effective focal length
SIMTEL = {
    "prod4": PROD4,
    "simtel_test_file": "simtel_test_file.simtel.gz",
    "10_TeV": "1_triggered_events_10_TeV.simtel.gz",
}
#: tels of the prod4 file processed: the pair with the most common events
PROD4_TELS = (19, 33)
#: Mrk 501, above the horizon of Ondrejov at the time of the 2018 file
TARGET = (253.4676, 39.7602)


def _process(tmp_path, input_path, name, *extra):
    output = tmp_path / f"{name}.dl1.h5"
    log_file = tmp_path / f"{name}.log"
    argv = [
        f"--input={input_path}",
        f"--output={output}",
        f"--log-file={log_file}",
        "--no-progress",
        *extra,
    ]
    code = run_tool(ProcessorTool(), argv=argv, cwd=tmp_path, raises=False)
    assert code == 0, f"ctapipe-process failed on {input_path}"
    return output, log_file.read_text()


@pytest.fixture(scope="module")
def dl1(tmp_path_factory, shared_data, embedded_raw_file):
    """name -> (DL1 path, log) of the real file and of the three sim files."""
    tmp_path = tmp_path_factory.mktemp("focal_length")
    # as tel 21, whose calibration leaves 28 of its 30 shower images (tel 22's: 1)
    as_tel21 = tmp_path / "tel21.yaml"
    as_tel21.write_text("SST1MEventSource:\n  telescope_id_map: {22: 21}\n")
    outputs = {
        "data": _process(
            tmp_path,
            embedded_raw_file,
            "data",
            f"--config={RESOURCES / 'sst1m.yaml'}",
            f"--config={as_tel21}",
            f"--SST1MEventSource.pointing_ra={TARGET[0]}",
            f"--SST1MEventSource.pointing_dec={TARGET[1]}",
        )
    }
    for name, simtel in SIMTEL.items():
        path = shared_data / "simtel" / simtel
        if not path.is_file():
            pytest.skip(f"{path} not found")
        tels = PROD4_TELS if name == "prod4" else ()
        outputs[name] = _process(
            tmp_path,
            path,
            name,
            f"--config={RESOURCES / 'sst1m_mc.yaml'}",
            "--SST1MSimulationCorrections.pde_correction=1.0",
            *(f"--EventSource.allowed_tels={tel}" for tel in tels),
        )
    return outputs


def _implied_focal_lengths(path):
    """
    Focal length per telescope event that turns the camera-frame Hillas
    parameters of the stored image into the stored telescope-frame ones.

    Returns
    -------
    dict[str, numpy.ndarray]
        parameter (r, length, width) -> camera-frame value (m) / stored
        telescope-frame value (rad), for every image with at least 3 pixels.
    """
    with TableLoader(path) as loader:
        events = loader.read_telescope_events(dl1_images=True, dl1_parameters=True)
        subarray = loader.subarray
    implied = {"r": [], "length": [], "width": []}
    for row in events:
        mask = row["image_mask"]
        if np.count_nonzero(mask) < 3:
            continue
        # pixel positions in m do not depend on the frame's focal length
        geometry = subarray.tel[row["tel_id"]].camera.geometry
        camera = hillas_parameters(geometry[mask], row["image"][mask])
        for name in implied:
            stored = u.Quantity(row[f"hillas_{name}"], u.deg).to_value(u.rad)
            implied[name].append(getattr(camera, name).to_value(u.m) / stored)
    return {name: np.array(values) for name, values in implied.items()}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["data", "prod4"])
def test_telescope_frame_uses_the_sst1m_focal_length(dl1, name):
    """Data and simulations: telescope-frame Hillas parameters are the
    camera-frame ones divided by the equivalent focal length (5.600 m), not the
    effective one (5.697 m, 1.7 % more) ctapipe would use by default."""
    implied = _implied_focal_lengths(dl1[name][0])
    assert len(implied["r"]) >= 5
    expected = sst1m_focal_length().to_value(u.m)
    assert expected == pytest.approx(5.600, abs=1e-3)
    effective = sst1m_optics().effective_focal_length.to_value(u.m)
    assert effective / expected - 1 > 0.015
    for parameter, values in implied.items():
        np.testing.assert_allclose(values, expected, rtol=2e-5, err_msg=parameter)


def test_one_focal_length_choice_for_data_and_simulations():
    """The data camera frames, sst1m_mc.yaml and sst1m_stereo.yaml agree."""
    assert SST1M_FOCAL_LENGTH_CHOICE is FocalLengthKind.EQUIVALENT
    frame = sst1m_telescope_description(21).camera.geometry.frame
    assert frame.focal_length == sst1m_optics().equivalent_focal_length
    mc = yaml.safe_load((RESOURCES / "sst1m_mc.yaml").read_text())
    assert mc["SimTelEventSource"]["focal_length_choice"] == "EQUIVALENT"
    stereo = yaml.safe_load((RESOURCES / "sst1m_stereo.yaml").read_text())
    assert stereo["HDF5EventSource"]["focal_length_choice"] == "EQUIVALENT"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["data", *SIMTEL])
def test_table_loader_defaults_read_every_dl1(dl1, name):
    """TableLoader with its defaults (effective focal length) reads them all."""
    path, log = dl1[name]
    with TableLoader(path) as loader:
        events = loader.read_telescope_events()
        subarray = loader.subarray
    assert len(events) > 0
    effective = sst1m_optics().effective_focal_length
    for tel in subarray.tel.values():
        assert tel.optics == sst1m_optics()
        assert tel.optics.effective_focal_length == effective
        assert tel.camera.geometry.frame.focal_length == effective
    filled = "no effective focal length for tel 1, set to the SST-1M one (5.697 m"
    assert (filled in log) == (name in ("simtel_test_file", "10_TeV"))


def _snippet():
    """The code of the "Reading DL1 back" paragraph of the docs, verbatim."""
    text = (DOCS / "index.rst").read_text()
    block = re.search(r"Reading DL1 back\n.*?::\n\n((?:(?: {8}.*)?\n)+)", text)
    assert block is not None, "no 'Reading DL1 back' snippet in docs/index.rst"
    code = "\n".join(line[8:] for line in block[1].splitlines())
    file_name = re.search(r'TableLoader\("([^"]+)"\)', code)[1]
    return code, file_name


@pytest.mark.slow
@pytest.mark.parametrize("name", ["data", *SIMTEL])
def test_docs_reading_back_snippet(dl1, name, tmp_path, monkeypatch):
    """The docs' snippet runs as written on the DL1 of data and of simulations."""
    code, file_name = _snippet()
    (tmp_path / file_name).symlink_to(dl1[name][0])
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(code, namespace)
    events = namespace["events"]
    assert len(events) > 0
    assert "hillas_intensity" in events.colnames
    assert np.all(np.isfinite(events["telescope_pointing_altitude"]))


@pytest.mark.slow
def test_effective_focal_length_in_camera_frames_refused(tmp_path, shared_data, capsys):
    """Simulations parametrised with another focal length than data are refused
    before any event is processed."""
    path = shared_data / "simtel" / PROD4
    if not path.is_file():
        pytest.skip(f"{path} not found")
    output = tmp_path / "effective.dl1.h5"
    code = run_tool(
        ProcessorTool(),
        argv=[
            f"--input={path}",
            f"--output={output}",
            f"--config={RESOURCES / 'sst1m_mc.yaml'}",
            "--SST1MSimulationCorrections.pde_correction=1.0",
            "--SimTelEventSource.focal_length_choice=EFFECTIVE",
            "--no-progress",
        ],
        cwd=tmp_path,
        raises=False,
    )
    assert code != 0
    assert not output.exists()
    assert (
        f"{path}: 70 telescopes (1, 2, 3, ...): camera frame focal length 5.697 m, "
        "but SST-1M data and the models trained on simulations use the EQUIVALENT "
        "focal length (5.600 m) for telescope-frame parameters; set "
        "SimTelEventSource.focal_length_choice: EQUIVALENT"
    ) in capsys.readouterr().err
