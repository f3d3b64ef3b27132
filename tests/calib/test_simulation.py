"""SST-1M simulations through ctapipe-process with sst1m_mc.yaml."""

import numpy as np
import pytest
import tables
from ctapipe.core import run_tool
from ctapipe.io import TableLoader
from ctapipe.io.hdf5dataformat import DL1_SUBARRAY_TRIGGER_TABLE
from ctapipe.tools.process import ProcessorTool

from ctapipe_sst1m.calib import qe_files_in_history
from ctapipe_sst1m.calib.simulation import pde_correction_table
from ctapipe_sst1m.core.products import DL1, read_hdf5_mark, verify_hdf5_product
from ctapipe_sst1m.core.resources import config_file

#: runs ctapipe tools on real or toy files (seconds to minutes each)
pytestmark = pytest.mark.slow

MC_CONFIG = config_file("sst1m_mc.yaml")
PROD4 = (
    "gamma_20deg_0deg_run102___cta-prod4-sst-1m_desert-2150m-Paranal-sst-1m.simtel.zst"
)


@pytest.fixture(scope="module")
def prod4(shared_data):
    return shared_data / "simtel" / PROD4


def _process(tmp_path, path, *extra, name="mc.dl1.h5"):
    output = tmp_path / name
    argv = [f"--input={path}", f"--output={output}", f"--config={MC_CONFIG}", *extra]
    argv.append("--no-progress")
    code = run_tool(ProcessorTool(), argv=argv, cwd=tmp_path, raises=False)
    return code, output


@pytest.fixture(scope="module")
def processed(prod4, tmp_path_factory):
    """The prod4 file with PDE factors 1 and 0.9 (it uses no SST-1M QE file)."""
    tmp_path = tmp_path_factory.mktemp("mc")
    outputs = []
    for factor in (1.0, 0.9):
        code, output = _process(
            tmp_path,
            prod4,
            f"--SST1MSimulationCorrections.pde_correction={factor}",
            name=f"mc_{factor}.dl1.h5",
        )
        assert code == 0
        outputs.append(output)
    return outputs


def _images(path):
    with TableLoader(path) as loader:
        return loader.read_telescope_events(dl1_images=True, true_images=True)


def test_charges_match_true_images(processed):
    events = _images(processed[0])
    assert len(events) == 129
    true, image = events["true_image"], events["image"]
    bright = true >= 30
    ratio = image[bright] / true[bright]
    # 7 of 50 samples around the peak, scaled to the whole pulse: bright pixels
    # come out at 0.97-0.98 of their true charge (NSB and Poisson noise aside)
    assert 0.95 < np.median(ratio) < 1.02
    assert bright.sum() > 100


def test_pde_factor_applied(processed):
    unit, corrected = (_images(p)["image"] for p in processed)
    np.testing.assert_allclose(corrected, unit / 0.9, rtol=1e-5, atol=1e-5)


def _trigger_rows(path):
    with tables.open_file(path) as h5file:
        return h5file.get_node(DL1_SUBARRAY_TRIGGER_TABLE).nrows


def test_outputs_marked_complete(processed):
    """ctapipe-process read the whole input: its DL1 output is marked complete,
    with as many events as its trigger table."""
    # the full check of one output (it walks the ~400 tables of the 70
    # telescopes, seconds), the mark alone of the other
    marks = [verify_hdf5_product(processed[0], kinds=(DL1,))]
    with tables.open_file(processed[1]) as h5file:
        marks.append(read_hdf5_mark(h5file, processed[1]))
    for output, mark in zip(processed, marks, strict=True):
        n_events = _trigger_rows(output)
        assert n_events == 31
        assert mark.kind == DL1
        assert mark.events_in == mark.events_out == n_events
        assert mark.counts == {"processed": n_events}
        assert mark.inputs == [PROD4]


def test_unknown_qe_file_refused(tmp_path, prod4, capsys):
    code, output = _process(tmp_path, prod4)
    assert code == 2
    assert not output.exists()
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if PROD4 in line]
    assert len(lines) == 1, stderr
    assert lines[0].endswith(
        f"{prod4}: tel 1 uses QE files ['PDE_V_4.4V_LVR5_ext'], none of which has "
        "an SST-1M PDE correction (those of tel 1 are for "
        "qe_SST1M_5477_ave_TEL1_NSB136.0, qe_SST1M_5477_ave_TEL1_NSB251.0); set "
        "SST1MSimulationCorrections.pde_correction, e.g. "
        "--SST1MSimulationCorrections.pde_correction=1.0 (all telescopes) or in YAML "
        "SST1MSimulationCorrections: {pde_correction: [[id, 1, 1.0]]} (tel 1)"
    )


def test_yaml_of_the_message_works(tmp_path, shared_data, capsys):
    """The YAML the error message proposes is a working configuration; the
    output of the whole file is then marked complete."""
    path = shared_data / "simtel" / "simtel_test_file.simtel.gz"
    code, output = _process(tmp_path, path, name="refused.dl1.h5")
    assert code == 2
    assert not output.exists()
    message = capsys.readouterr().err
    assert "uses QE files ['qe_SST1M_5477_ave']" in message
    snippet = message.split(" or in YAML ", 1)[1].split(" (tel 1)", 1)[0]
    assert snippet == "SST1MSimulationCorrections: {pde_correction: [[id, 1, 1.0]]}"
    config = tmp_path / "pde.yaml"
    config.write_text(snippet + "\n")
    code, output = _process(tmp_path, path, f"--config={config}")
    assert code == 0
    mark = verify_hdf5_product(output, kinds=(DL1,))
    assert mark.events_out == mark.events_in == _trigger_rows(output) == 9
    assert mark.counts == {"processed": 9}
    assert mark.inputs == [path.name]


def test_qe_files_in_history():
    history = [
        (1, b"QUANTUM_EFFiciency qe_SST1M_5477_ave_TEL1_NSB136.0.dat % SST-1M\n"),
        (1, b"NIGHTSKY_BACKGROUND all:0.136\n"),
        (2, b"quantum_efficiency qe_SST1M_5477_ave_TEL1_NSB136.0.dat\n"),
        (2, b"QUANTUM_EFFiciency /data/qe_SST1M_5477_ave_TEL2_NSB300.0.dat\n"),
    ]
    stems = qe_files_in_history(history)
    assert stems == ["qe_SST1M_5477_ave_TEL1_NSB136.0", "qe_SST1M_5477_ave_TEL2_NSB300.0"]
    table = pde_correction_table()
    assert set(stems) <= set(table["qe_file"])
    assert table[table["qe_file"] == stems[0]]["factor"][0] == pytest.approx(
        0.96569, abs=1e-5
    )


def test_real_history_of_sst1m_file(shared_data):
    from eventio import SimTelFile

    with SimTelFile(shared_data / "simtel" / "simtel_test_file.simtel.gz") as simtel:
        assert qe_files_in_history(simtel.history) == ["qe_SST1M_5477_ave"]
