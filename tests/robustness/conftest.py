"""Complete DL1 products of the real 2018 file, for the robustness tests."""

import pytest
from ctapipe.core import run_tool
from ctapipe.tools.process import ProcessorTool

from ctapipe_sst1m.core.resources import config_file

from .corpus import raw_cases, run_cases

SST1M_YAML = config_file("sst1m.yaml")
#: Mrk 501, above the horizon of Ondrejov at the time of the 2018 file
TARGET = (253.4676, 39.7602)


@pytest.fixture(scope="session")
def dl1_pair(tmp_path_factory, embedded_raw_file):
    """The real 2018 file as complete DL1 of tel 21 and tel 22."""
    tmp = tmp_path_factory.mktemp("corpus_dl1")
    as_tel21 = tmp / "tel21.yaml"
    as_tel21.write_text("SST1MEventSource:\n  telescope_id_map: {22: 21}\n")
    outputs = {}
    for tel_id, extra in ((21, [f"--config={as_tel21}"]), (22, [])):
        outputs[tel_id] = tmp / f"SST1M{tel_id - 20}_20180822_0001.dl1.h5"
        argv = [
            f"--input={embedded_raw_file}",
            f"--output={outputs[tel_id]}",
            f"--config={SST1M_YAML}",
            f"--SST1MEventSource.pointing_ra={TARGET[0]}",
            f"--SST1MEventSource.pointing_dec={TARGET[1]}",
            "--SST1MEventSource.obs_id=201808220001",
            "--no-progress",
            *extra,
        ]
        assert run_tool(ProcessorTool(), argv, cwd=tmp, raises=False) == 0
    return outputs


@pytest.fixture(scope="session")
def raw_results(tmp_path_factory, raw_dir):
    """The raw corpus (`raw_cases`) run once: case name -> Result (shared by
    test_bad_inputs.py and test_decoder_crashes.py)."""
    tmp = tmp_path_factory.mktemp("corpus_raw")
    return run_cases(raw_cases(tmp, raw_dir, SST1M_YAML))
