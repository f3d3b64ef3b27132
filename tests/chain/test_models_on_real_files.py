"""Models trained with the shipped configurations, applied to real files."""

import numpy as np
import pytest
import tables
from ctapipe.instrument import SubarrayDescription
from ctapipe.io import read_table
from ctapipe.tools.apply_models import ApplyModels
from ctapipe.tools.process import ProcessorTool
from ctapipe.tools.train_energy_regressor import TrainEnergyRegressor

from .conftest import RESOURCES, run_ok

#: runs ctapipe tools on real or toy files (seconds to minutes each)
pytestmark = pytest.mark.slow

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
