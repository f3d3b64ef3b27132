"""Models trained with the shipped configurations, applied to real files."""

import numpy as np
import pytest
import tables
from ctapipe.instrument import SubarrayDescription
from ctapipe.io import read_table
from ctapipe.tools.apply_models import ApplyModels
from ctapipe.tools.process import ProcessorTool
from ctapipe.tools.train_disp_reconstructor import TrainDispReconstructor
from ctapipe.tools.train_energy_regressor import TrainEnergyRegressor
from ctapipe.tools.train_particle_classifier import TrainParticleClassifier

from .conftest import RESOURCES, run_ok

PROD4 = (
    "simtel/gamma_20deg_0deg_run102___cta-prod4-sst-1m_desert-2150m-Paranal-sst-1m"
    ".simtel.zst"
)
ENERGY_TABLE = "/dl2/event/telescope/energy/RandomForestRegressor/tel_{:03d}"


def test_simulation_model_applies_to_real_raw_data(tmp_path, toy_dl2, embedded_raw_file):
    """A mono energy model trained on (toy) simulations of tel 21 and 22 predicts
    for the real 2018 tel 22 events: the telescope descriptions of data and
    simulations are the same, so ctapipe finds the model of tel 22's type."""
    # the real 2018 images are faint (at most 47 p.e.): lower sst1mpipe's 50 p.e.
    faint = tmp_path / "faint.yaml"
    faint.write_text(
        "TrainEnergyRegressor:\n  EnergyRegressor:\n    QualityQuery:\n"
        "      quality_criteria:\n"
        '        - [intensity, "hillas_intensity > 20"]\n'
        '        - [leakage, "leakage_intensity_width_2 <= 0.7"]\n'
    )
    model = tmp_path / "energy_mono.pkl"
    run_ok(
        TrainEnergyRegressor(),
        tmp_path,
        f"--config={RESOURCES / 'sst1m_train_energy_mono.yaml'}",
        f"--config={faint}",
        f"--input={toy_dl2['gamma_energy']}",
        f"--output={model}",
    )
    real = tmp_path / "real.dl1.h5"
    run_ok(
        ProcessorTool(),
        tmp_path,
        f"--input={embedded_raw_file}",
        f"--output={real}",
        f"--config={RESOURCES / 'sst1m.yaml'}",
        "--no-progress",
    )
    simulated = SubarrayDescription.from_hdf(toy_dl2["gamma_energy"])
    assert SubarrayDescription.from_hdf(real).tel[22] == simulated.tel[22]

    dl2 = tmp_path / "real.dl2.h5"
    run_ok(
        ApplyModels(),
        tmp_path,
        f"--input={real}",
        f"--reconstructor={model}",
        f"--output={dl2}",
    )
    energy = read_table(dl2, ENERGY_TABLE.format(22))
    parameters = read_table(real, "/dl1/event/telescope/parameters/tel_022")
    assert len(energy) == len(parameters) == 32
    expected = np.nan_to_num(parameters["hillas_intensity"]) > 20
    assert np.count_nonzero(expected) >= 1
    np.testing.assert_array_equal(energy["RandomForestRegressor_tel_is_valid"], expected)
    predicted = energy["RandomForestRegressor_tel_energy"][expected]
    assert np.all((predicted > 0.1) & (predicted < 100))


def test_prod4_train_and_apply(tmp_path, shared_data):
    """The real prod4 SST-1M file: process, train (a smoke test: 129 telescope
    events), apply: every telescope with a good image gets an energy."""
    simtel = shared_data / PROD4
    if not simtel.exists():
        pytest.skip(f"{simtel} not found")
    dl1 = tmp_path / "prod4.dl1.h5"
    run_ok(
        ProcessorTool(),
        tmp_path,
        f"--input={simtel}",
        f"--output={dl1}",
        f"--config={RESOURCES / 'sst1m_mc.yaml'}",
        "--SST1MSimulationCorrections.pde_correction=1.0",
        "--DataWriter.write_dl1_images=False",
        "--no-progress",
    )
    model = tmp_path / "energy.pkl"
    run_ok(
        TrainEnergyRegressor(),
        tmp_path,
        f"--config={RESOURCES / 'sst1m_train_energy_mono.yaml'}",
        "--CrossValidator.n_cross_validations=2",
        f"--input={dl1}",
        f"--output={model}",
    )
    dl2 = tmp_path / "prod4.dl2.h5"
    run_ok(
        ApplyModels(),
        tmp_path,
        f"--input={dl1}",
        f"--reconstructor={model}",
        f"--output={dl2}",
    )
    with tables.open_file(dl1) as h5file:
        names = list(h5file.root.dl1.event.telescope.parameters._v_children)
    assert len(names) > 10
    n_valid = 0
    for name in names:
        parameters = read_table(dl1, f"/dl1/event/telescope/parameters/{name}")
        energy = read_table(dl2, ENERGY_TABLE.format(int(name[4:])))
        assert len(energy) == len(parameters)
        n_valid += np.count_nonzero(energy["RandomForestRegressor_tel_is_valid"])
    assert n_valid >= 30


def test_mono_configurations(tmp_path, toy_dl2):
    """The mono training configurations train and apply on the toy telescopes:
    energy, disp direction and gammaness for single telescope images."""
    energy, disp, classifier = (tmp_path / f"{n}.pkl" for n in ("e", "d", "c"))
    config = lambda name: f"--config={RESOURCES / name}"  # noqa: E731
    run_ok(
        TrainEnergyRegressor(),
        tmp_path,
        config("sst1m_train_energy_mono.yaml"),
        f"--input={toy_dl2['gamma_energy']}",
        f"--output={energy}",
    )
    run_ok(
        TrainDispReconstructor(),
        tmp_path,
        config("sst1m_train_disp_mono.yaml"),
        f"--input={toy_dl2['gamma_energy']}",
        f"--output={disp}",
    )
    with_energy = {}
    for name in ("gamma_classifier", "proton_classifier", "gamma_test"):
        with_energy[name] = tmp_path / f"{name}.h5"
        run_ok(
            ApplyModels(),
            tmp_path,
            f"--input={toy_dl2[name]}",
            f"--reconstructor={energy}",
            f"--output={with_energy[name]}",
        )
    run_ok(
        TrainParticleClassifier(),
        tmp_path,
        config("sst1m_train_classifier_mono.yaml"),
        f"--signal={with_energy['gamma_classifier']}",
        f"--background={with_energy['proton_classifier']}",
        f"--output={classifier}",
    )
    dl2 = tmp_path / "gamma_test.mono.h5"
    run_ok(
        ApplyModels(),
        tmp_path,
        f"--input={with_energy['gamma_test']}",
        f"--reconstructor={disp}",
        f"--reconstructor={classifier}",
        f"--output={dl2}",
    )
    for tel_id in (21, 22):
        for path, column in (
            ("energy/RandomForestRegressor", "RandomForestRegressor_tel_is_valid"),
            ("geometry/disp", "disp_tel_is_valid"),
            (
                "particle_type/RandomForestClassifier",
                "RandomForestClassifier_tel_is_valid",
            ),
        ):
            table = read_table(dl2, f"/dl2/event/telescope/{path}/tel_{tel_id:03d}")
            assert np.count_nonzero(table[column]) > 200, (tel_id, path)
    # the disp direction of the gammas points back to the pointing (70 deg altitude)
    table = read_table(dl2, "/dl2/event/telescope/geometry/disp/tel_021")
    valid = table["disp_tel_is_valid"]
    altitude = table["disp_tel_alt"].quantity[valid].to_value("deg")
    assert abs(np.median(altitude) - 70) < 0.2
