"""
Configuration mistakes refused at setup, with one line naming what to set.

Extraction windows against the 50 DigiCam samples, impossible values of the R1
calibration and pedestal-charge traits, gain and window files of the other
telescope (renamed copies of the real files), misspelt configuration sections.
"""

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from astropy.time import Time
from ctapipe.core import run_tool
from ctapipe.image.extractor import LocalPeakWindowSum
from ctapipe.tools.process import ProcessorTool
from traitlets import TraitError
from traitlets.config import Config

from ctapipe_sst1m.calib import (
    ConfigurationError,
    SST1MR1Calibrator,
    check_config_sections,
    check_image_extractor,
    read_gain_file,
    read_window_file,
    telescope_of_gains,
    telescope_of_window,
)
from ctapipe_sst1m.calib.pedestal_charges import PedestalChargeMonitor
from ctapipe_sst1m.calib.pedestals import PedestalStatistics
from ctapipe_sst1m.calib.saturation import SaturationRecovery
from ctapipe_sst1m.core.resources import (
    CALIBRATION_DIR,
    config_file,
    resource,
    shipped_configs,
)
from ctapipe_sst1m.instrument import load_sst1m_subarray
from ctapipe_sst1m.io import SST1MEventSource

RESOURCES = Path(str(resource(CALIBRATION_DIR)))
CONFIGS = [Path(str(config_file(name))) for name in shipped_configs()]
RUN_START = Time("2023-10-01")
#: sst1mpipe's per-night files whose gain pattern is that of the shipped gains:
#: every tel 21 file, and the tel 22 one of September 2023
RECOGNISED = {
    "20230228_0112_0115_Tel1_fitted_parameters.h5": 21,
    "20230302_0136_0137_Tel1_fitted_parameters.h5": 21,
    "20230322_0248_0249_Tel1_fitted_parameters.h5": 21,
    "20230708_0316_0317_Tel1_fitted_parameters.h5": 21,
    "20230917_0528_0529_Tel1_fitted_parameters.h5": 21,
    "20230921_0149_0150_Tel2_fitted_parameters.h5": 22,
    "averaged_calib_param_v2_2023_2024_tel1.h5": 21,
    "averaged_calib_param_v2_2023_2024_tel2.h5": 22,
}
#: the tel 22 files of 2022 and March 2023 match neither shipped table
UNRECOGNISED = (
    "20220324_0008_0009_Tel2_fitted_parameters.h5",
    "20230302_0194_0195_Tel2_fitted_parameters.h5",
    "20230322_0285_0286_Tel2_fitted_parameters.h5",
)
USE_LOCAL_PEAK = {"CameraCalibrator": {"image_extractor_type": "LocalPeakWindowSum"}}


@pytest.fixture(scope="module")
def calibration_dir(shared_data):
    path = shared_data / "calibration"
    if not path.is_dir():
        pytest.skip(f"{path} not found: reference inputs not available")
    return path


@pytest.fixture(scope="module")
def real_event(embedded_raw_file):
    """The source and first event (calibrated R1) of the real tel 22 file."""
    with SST1MEventSource(embedded_raw_file, max_events=1) as source:
        (event,) = source
    return source, event


@pytest.fixture(scope="module")
def n_samples(real_event):
    _, event = real_event
    return event.r1.tel[22].waveform.shape[-1]


def assert_one_line(err, *names):
    message = str(err.value)
    assert "\n" not in message
    for name in names:
        assert name in message
    # ctapipe's Tool.run turns a TraitError into exit code 2 with this message
    assert isinstance(err.value, TraitError)
    assert isinstance(err.value, ValueError)


def renamed_copy(source, directory, name):
    """A copy of the real file ``source`` under another name."""
    directory.mkdir(exist_ok=True)
    return Path(shutil.copyfile(source, directory / name))


def calibrator(**settings):
    return SST1MR1Calibrator(
        load_sst1m_subarray(), config=Config({"SST1MR1Calibrator": settings})
    )


# --------------------------------------------------------- extraction windows


def test_digicam_has_50_samples(n_samples):
    assert n_samples == 50


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {**USE_LOCAL_PEAK, "LocalPeakWindowSum": {"window_width": 60}},
            "LocalPeakWindowSum.window_width = 60 for tel 22: must be between 1 and "
            "50 (the 50 samples of DigiCam); set LocalPeakWindowSum.window_width to "
            "a value between 1 and 50",
        ),
        (
            {**USE_LOCAL_PEAK, "LocalPeakWindowSum": {"window_width": 0}},
            "LocalPeakWindowSum.window_width = 0 for tel 22: must be between 1 and 50",
        ),
        (
            {**USE_LOCAL_PEAK, "LocalPeakWindowSum": {"window_shift": 100}},
            "LocalPeakWindowSum.window_shift = 100 for tel 22: must be between 0 and 6 "
            "(the window of LocalPeakWindowSum.window_width = 7 samples starts "
            "window_shift samples before the peak and must hold it); set "
            "LocalPeakWindowSum.window_shift to a value between 0 and 6",
        ),
        (
            {**USE_LOCAL_PEAK, "LocalPeakWindowSum": {"window_shift": 7}},
            "LocalPeakWindowSum.window_shift = 7 for tel 22: must be between 0 and 6",
        ),
        (
            {**USE_LOCAL_PEAK, "LocalPeakWindowSum": {"window_shift": -1}},
            "LocalPeakWindowSum.window_shift = -1 for tel 22: must be between 0 and 6",
        ),
        # nested under the calibrator, as traitlets allows
        (
            {
                "CameraCalibrator": {
                    "image_extractor_type": "LocalPeakWindowSum",
                    "LocalPeakWindowSum": {"window_width": 51},
                }
            },
            "LocalPeakWindowSum.window_width = 51 for tel 22",
        ),
        # no image_extractor_type: ctapipe's default, NeighborPeakWindowSum
        (
            {"NeighborPeakWindowSum": {"window_width": 5, "window_shift": 5}},
            "NeighborPeakWindowSum.window_shift = 5 for tel 22: must be between 0 and 4",
        ),
        (
            {
                "CameraCalibrator": {"image_extractor_type": "FixedWindowSum"},
                "FixedWindowSum": {"peak_index": 48, "window_shift": 3},
            },
            "FixedWindowSum.peak_index - FixedWindowSum.window_shift = 45 for tel 22: "
            "must be between 0 and 43 so that the window of "
            "FixedWindowSum.window_width = 7 samples lies within the 50 samples of "
            "DigiCam; set FixedWindowSum.peak_index and FixedWindowSum.window_shift",
        ),
        (
            {
                "CameraCalibrator": {"image_extractor_type": "FixedWindowSum"},
                "FixedWindowSum": {"peak_index": 2, "window_shift": 3},
            },
            "FixedWindowSum.peak_index - FixedWindowSum.window_shift = -1 for tel 22",
        ),
        (
            {
                "CameraCalibrator": {"image_extractor_type": "SlidingWindowMaxSum"},
                "SlidingWindowMaxSum": {"window_width": 51},
            },
            "SlidingWindowMaxSum.window_width = 51 for tel 22: must be between 1 and 50",
        ),
        (
            {
                "CameraCalibrator": {"image_extractor_type": "FlashCamExtractor"},
                "FlashCamExtractor": {"upsampling": 0},
            },
            "FlashCamExtractor.upsampling = 0 for tel 22: must be at least 1",
        ),
    ],
)
def test_extractor_window_refused(real_event, n_samples, config, message):
    source, _ = real_event
    with pytest.raises(ConfigurationError) as err:
        check_image_extractor(Config(config), source.subarray, 22, n_samples)
    assert_one_line(err, message)


@pytest.mark.parametrize(
    "config",
    [
        {},  # ctapipe's default extractor and window
        {**USE_LOCAL_PEAK, "LocalPeakWindowSum": {"window_width": 1, "window_shift": 0}},
        {
            **USE_LOCAL_PEAK,
            "LocalPeakWindowSum": {"window_width": 50, "window_shift": 49},
        },
        # the window of an extractor that is not used is not checked
        {**USE_LOCAL_PEAK, "NeighborPeakWindowSum": {"window_width": 60}},
        {
            "CameraCalibrator": {"image_extractor_type": "FixedWindowSum"},
            "FixedWindowSum": {"peak_index": 46, "window_shift": 3},
        },
        # FlashCam's window counts upsampled samples: 4 x 50
        {
            "CameraCalibrator": {"image_extractor_type": "FlashCamExtractor"},
            "FlashCamExtractor": {"window_width": 60, "window_shift": 30},
        },
        {"CameraCalibrator": {"image_extractor_type": "TwoPassWindowSum"}},
    ],
)
def test_extractor_window_accepted(real_event, n_samples, config):
    source, _ = real_event
    assert check_image_extractor(Config(config), source.subarray, 22, n_samples) is None


def test_shipped_process_config_accepted(real_event, n_samples):
    source, _ = real_event
    config = Config(yaml.safe_load(config_file("sst1m.yaml").read_text()))
    check_image_extractor(config, source.subarray, 22, n_samples)
    assert check_config_sections(config) == []


def test_extractor_window_per_telescope(n_samples):
    config = Config(
        {
            **USE_LOCAL_PEAK,
            "LocalPeakWindowSum": {"window_width": [["type", "*", 7], ["id", 22, 60]]},
        }
    )
    subarray = load_sst1m_subarray()
    check_image_extractor(config, subarray, 21, n_samples)
    with pytest.raises(ConfigurationError) as err:
        check_image_extractor(config, subarray, 22, n_samples)
    assert_one_line(err, "LocalPeakWindowSum.window_width = 60 for tel 22")


def test_refused_windows_are_silently_wrong_in_ctapipe(real_event):
    """Why the ranges: ctapipe extracts zero with a width of 0, and a window
    shifted by its width ends just before the peak."""
    source, event = real_event
    waveforms = event.r1.tel[22].waveform.astype(np.float64)
    n_pixels = waveforms.shape[1]
    gain = np.zeros(n_pixels, dtype=np.int8)
    broken = np.zeros((1, n_pixels), dtype=bool)

    def extract(width, shift):
        extractor = LocalPeakWindowSum(
            source.subarray,
            window_width=width,
            window_shift=shift,
            apply_integration_correction=False,
        )
        return extractor(waveforms, 22, gain, broken).image

    assert np.all(extract(0, 3) == 0)

    peak = waveforms[0].argmax(axis=-1)
    before_peak = np.array(
        [waveforms[0, i, max(0, p - 7) : p].sum() for i, p in enumerate(peak)]
    )
    np.testing.assert_allclose(extract(7, 7), before_peak, rtol=1e-5, atol=1e-4)
    # the largest accepted shift still holds the peak sample
    with_peak = np.array(
        [waveforms[0, i, max(0, p - 6) : p + 1].sum() for i, p in enumerate(peak)]
    )
    np.testing.assert_allclose(extract(7, 6), with_peak, rtol=1e-5, atol=1e-4)


def test_source_refuses_pedestal_extractor_window(embedded_raw_file):
    """The pedestal charges are extracted with the CameraCalibrator's extractor,
    configured at top level or nested under CameraCalibrator."""
    top_level = Config(
        {
            "CameraCalibrator": {"image_extractor_type": "LocalPeakWindowSum"},
            "LocalPeakWindowSum": {"window_width": 60},
        }
    )
    with pytest.raises(ConfigurationError) as err:
        SST1MEventSource(embedded_raw_file, config=top_level)
    assert_one_line(err, "LocalPeakWindowSum.window_width = 60 for tel 22")

    subarray = load_sst1m_subarray()
    nested = Config(
        {
            "CameraCalibrator": {
                "image_extractor_type": "LocalPeakWindowSum",
                "LocalPeakWindowSum": {"window_shift": 7},
            }
        }
    )
    with pytest.raises(ConfigurationError) as err:
        PedestalChargeMonitor(subarray, config=nested)
    assert_one_line(err, "LocalPeakWindowSum.window_shift = 7 for tel 21")


# ------------------------------------------------------------ trait ranges


@pytest.mark.parametrize(
    ("trait", "value", "message"),
    [
        (
            "pedestal_window",
            0,
            "SST1MR1Calibrator.pedestal_window = 0: must be at least 1; set "
            "SST1MR1Calibrator.pedestal_window to a value at least 1",
        ),
        ("pedestal_priming_events", -1, "must be at least 0"),
        ("dead_pixel_std_threshold", -0.5, "must be at least 0.0"),
        ("dead_pixel_std_threshold", float("nan"), "= nan: must be at least 0.0"),
        ("gain_pulse_fraction", 0.0, "must be greater than 0.0 and at most 1.0"),
        ("gain_pulse_fraction", 1.1, "must be greater than 0.0 and at most 1.0"),
        ("saturation_threshold", 5000.0, "must be between 0.0 and 4095.0"),
        ("saturation_width_level", -1.0, "must be between 0.0 and 4095.0"),
        ("saturation_width_samples", 50, "must be between 0 and 49"),
        ("saturation_integration_level", 1.5, "must be between 0.0 and 1.0"),
    ],
)
def test_r1_calibrator_ranges(embedded_raw_file, trait, value, message):
    config = Config({"SST1MR1Calibrator": {trait: value}})
    with pytest.raises(ConfigurationError) as err:
        SST1MEventSource(embedded_raw_file, config=config)
    assert_one_line(err, f"SST1MR1Calibrator.{trait} = ", message)


@pytest.mark.parametrize(
    ("trait", "value"),
    [
        ("pedestal_window", 1),
        ("pedestal_priming_events", 0),
        ("dead_pixel_std_threshold", 0.0),
        ("gain_pulse_fraction", 1.0),
        ("gain_pulse_fraction", None),
        ("saturation_threshold", 4095.0),
        ("saturation_width_samples", 49),
        ("saturation_integration_level", 0.0),
    ],
)
def test_r1_calibrator_range_limits_accepted(trait, value):
    assert getattr(calibrator(**{trait: value}), trait) == value


def test_tool_exits_with_the_message(tmp_path, embedded_raw_file, capfd):
    """ctapipe-process: exit code 2 and the one line, no traceback."""
    code = run_tool(
        ProcessorTool(),
        argv=[
            f"--input={embedded_raw_file}",
            f"--output={tmp_path / 'out.dl1.h5'}",
            "--SST1MR1Calibrator.pedestal_window=0",
        ],
        cwd=tmp_path,
        raises=False,
    )
    assert code == 2
    log = capfd.readouterr().err
    assert "SST1MR1Calibrator.pedestal_window = 0: must be at least 1" in log
    assert "Traceback" not in log


def test_pedestal_charge_monitor_range():
    config = Config({"PedestalChargeMonitor": {"max_pedestal_images": 0}})
    with pytest.raises(ConfigurationError) as err:
        PedestalChargeMonitor(load_sst1m_subarray(), config=config)
    assert_one_line(
        err, "PedestalChargeMonitor.max_pedestal_images = 0: must be at least 1"
    )


def test_helper_classes_refuse_impossible_arguments():
    with pytest.raises(ValueError, match="max_events = 0: must be at least 1"):
        PedestalStatistics(0)
    readout = load_sst1m_subarray().tel[22].camera.readout
    SaturationRecovery(readout, window_width=7, window_shift=3)
    with pytest.raises(ValueError, match="window_shift = 7, window_width = 7"):
        SaturationRecovery(readout, window_width=7, window_shift=7)


# -------------------------------------------------- gain and window content


@pytest.mark.parametrize("name", [*RECOGNISED, *UNRECOGNISED])
def test_telescope_of_gains_never_wrong(calibration_dir, name):
    """The real files are told apart by their gain pattern, or not at all."""
    tel_id, evidence = telescope_of_gains(read_gain_file(calibration_dir / name))
    assert tel_id == RECOGNISED.get(name)
    if tel_id is None:
        assert evidence.startswith("records no telescope")
    else:
        assert evidence.startswith("its pixel gain pattern: rank correlation")


@pytest.mark.parametrize(
    ("original", "renamed"),
    [
        (
            "20230917_0528_0529_Tel1_fitted_parameters.h5",
            "20230917_0528_0529_Tel2_fitted_parameters.h5",
        ),
        (
            "averaged_calib_param_v2_2023_2024_tel1.h5",
            "averaged_calib_param_v2_2023_2024_tel2.h5",
        ),
    ],
)
def test_renamed_gain_file_refused(
    tmp_path, embedded_raw_file, calibration_dir, original, renamed
):
    """A tel 21 file named for tel 22, given for the tel 22 run."""
    copy = renamed_copy(calibration_dir / original, tmp_path / "renamed", renamed)
    config = Config({"SST1MR1Calibrator": {"gain_file": str(copy)}})
    with pytest.raises(ConfigurationError) as err:
        SST1MEventSource(embedded_raw_file, config=config)
    assert_one_line(
        err,
        f"{copy}: gain calibration of tel 21 given for tel 22 (from its pixel gain "
        "pattern: rank correlation ",
        "; set SST1MR1Calibrator.gain_file to a gain file of tel 22",
    )


def test_renamed_ecsv_gains_refused(tmp_path):
    copy = renamed_copy(RESOURCES / "gains_tel021.ecsv", tmp_path, "gains_tel022.ecsv")
    with pytest.raises(ConfigurationError) as err:
        calibrator(gain_file=str(copy)).prepare(22, RUN_START)
    assert_one_line(
        err,
        f"{copy}: gain calibration of tel 21 given for tel 22 (from its tel_id "
        "metadata); set SST1MR1Calibrator.gain_file",
    )


def test_misnamed_gain_file_goes_by_content(tmp_path, calibration_dir, caplog):
    """A tel 22 file named for tel 21 is refused for tel 21 and used for tel 22."""
    original = "20230921_0149_0150_Tel2_fitted_parameters.h5"
    copy = renamed_copy(
        calibration_dir / original,
        tmp_path,
        "20230921_0149_0150_Tel1_fitted_parameters.h5",
    )
    with pytest.raises(ConfigurationError) as err:
        calibrator(gain_file=str(copy)).prepare(21, RUN_START)
    assert_one_line(err, "gain calibration of tel 22 given for tel 21")

    with caplog.at_level(logging.WARNING):
        accepted = calibrator(gain_file=str(copy))
        accepted.prepare(22, RUN_START)
    assert "is named for tel 21 but holds gains of tel 22" in caplog.text
    assert accepted.provenance(22)["gain_file"] == str(copy)


def test_unrecognised_gain_file_falls_back_to_its_name(tmp_path, calibration_dir, caplog):
    original = "20230302_0194_0195_Tel2_fitted_parameters.h5"
    with caplog.at_level(logging.WARNING):
        calibrator(gain_file=str(calibration_dir / original)).prepare(22, RUN_START)
    assert "records no telescope" in caplog.text
    assert "checked against tel 22 by its file name only" in caplog.text

    copy = renamed_copy(
        calibration_dir / original,
        tmp_path,
        "20230302_0194_0195_Tel1_fitted_parameters.h5",
    )
    with pytest.raises(ConfigurationError) as err:
        calibrator(gain_file=str(copy)).prepare(22, RUN_START)
    assert_one_line(
        err, "gain calibration of tel 21 given for tel 22 (from its file name)"
    )


@pytest.mark.parametrize(
    ("name", "tel_id"),
    [("corr_factor_1st_wdw.txt", 21), ("corr_factor_2nd_wdw.txt", 22)],
)
def test_telescope_of_window(calibration_dir, name, tel_id):
    path = calibration_dir / name
    factors, _ = read_window_file(path)
    assert telescope_of_window(path, factors)[0] == tel_id


def test_renamed_window_file_refused(tmp_path, embedded_raw_file, calibration_dir):
    copy = renamed_copy(
        calibration_dir / "corr_factor_1st_wdw.txt", tmp_path, "corr_factor_2nd_wdw.txt"
    )
    config = Config({"SST1MR1Calibrator": {"window_file": str(copy)}})
    with pytest.raises(ConfigurationError) as err:
        SST1MEventSource(embedded_raw_file, config=config)
    assert_one_line(
        err,
        f"{copy}: window transmittance of tel 21 given for tel 22 (from its factors, "
        "those of window 1, mounted on tel 21); set SST1MR1Calibrator.window_file",
    )

    ecsv = renamed_copy(RESOURCES / "window_1.ecsv", tmp_path, "window_2.ecsv")
    with pytest.raises(ConfigurationError) as err:
        calibrator(window_file=str(ecsv)).prepare(22, RUN_START)
    assert_one_line(err, "(from its window metadata: window 1, mounted on tel 21)")


def test_new_window_measurement_used_with_warning(tmp_path, calibration_dir, caplog):
    """A file with factors of no shipped window cannot be checked: used, with a
    warning."""
    pixel_id, factors = np.loadtxt(
        calibration_dir / "corr_factor_2nd_wdw.txt", skiprows=1, unpack=True
    )
    remeasured = tmp_path / "corr_factor_new_wdw.txt"
    lines = ["pixel_id\t correction_factor"]
    lines += [
        f"{int(i)}\t {float(f) * 1.001!r}" for i, f in zip(pixel_id, factors, strict=True)
    ]
    remeasured.write_text("\n".join(lines) + "\n")
    with caplog.at_level(logging.WARNING):
        accepted = calibrator(window_file=str(remeasured))
        accepted.prepare(22, RUN_START)
    assert "records no window or telescope" in caplog.text
    assert "not checked against tel 22" in caplog.text
    assert accepted.provenance(22)["window_file"] == str(remeasured)


# --------------------------------------------------------- config sections


def test_misspelt_section_refused():
    config = Config({"SST1MEventSourse": {"max_events": 3}})
    with pytest.raises(ConfigurationError) as err:
        check_config_sections(config)
    assert str(err.value) == (
        "config section 'SST1MEventSourse' matches no component; did you mean "
        "'SST1MEventSource'?"
    )


def test_misspelt_sections_on_one_line():
    config = Config(
        {
            "localpeakwindowsum": {"window_width": 7},
            "SST1MEventSource": {"SST1MR1Calibrater": {"pedestal_window": 10}},
        }
    )
    with pytest.raises(ConfigurationError) as err:
        check_config_sections(config)
    assert_one_line(
        err,
        "config section 'localpeakwindowsum' matches no component; did you mean "
        "'LocalPeakWindowSum'?",
        "config section 'SST1MEventSource.SST1MR1Calibrater' matches no component; "
        "did you mean 'SST1MR1Calibrator'?",
    )


def test_unknown_section_warned(caplog):
    """A component of a package that is not installed may be far from any name."""
    config = Config({"LSTEventSource": {"max_events": 3}, "SST1MEventSource": {}})
    with caplog.at_level(logging.WARNING):
        assert check_config_sections(config) == ["LSTEventSource"]
    assert "config section 'LSTEventSource' matches no component" in caplog.text


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.name)
def test_shipped_configs_name_components(path):
    config = Config(yaml.safe_load(path.read_text()))
    assert check_config_sections(config) == []


def test_ctapipe_components_known():
    """Sections of components ctapipe-process builds whether imported or not."""
    config = Config(
        {
            name: {}
            for name in (
                "CameraCalibrator",
                "ImageProcessor",
                "ShowerProcessor",
                "HillasReconstructor",
                "DataWriter",
                "ProcessorTool",
            )
        }
    )
    assert check_config_sections(config) == []
