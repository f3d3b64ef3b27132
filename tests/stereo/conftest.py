"""Single-telescope DL1 files written by stock ctapipe-process, for the merge tests."""

import pytest
from ctapipe.core import run_tool
from ctapipe.tools.process import ProcessorTool

from ctapipe_sst1m.core.resources import RESOURCES

PROD4 = (
    "simtel/gamma_20deg_0deg_run102___cta-prod4-sst-1m_desert-2150m-Paranal-sst-1m"
    ".simtel.zst"
)
#: Mrk 501, above the horizon of Ondrejov at the time of the 2018 file
TARGET = (253.4676, 39.7602)


def process(tmp_path, input_path, output, *extra):
    """Run ctapipe-process; return the output path (asserting success)."""
    code = run_tool(
        ProcessorTool(),
        argv=[f"--input={input_path}", f"--output={output}", *extra],
        cwd=tmp_path,
        raises=False,
    )
    assert code == 0, f"ctapipe-process failed on {input_path}"
    return output


@pytest.fixture(scope="session")
def data_dl1(tmp_path_factory, embedded_raw_file):
    """
    The real 2018 DigiCam file as DL1 of tel 21 and of tel 22.

    The file is tel 22's; tel 21's copy maps its telescope id. Both have the
    same events and times, a pointing (Mrk 501) and images.
    """
    pointing = [
        f"--SST1MEventSource.pointing_ra={TARGET[0]}",
        f"--SST1MEventSource.pointing_dec={TARGET[1]}",
    ]
    return _as_two_telescopes(
        tmp_path_factory.mktemp("data_dl1"), embedded_raw_file, *pointing
    )


@pytest.fixture(scope="session")
def data_dl1_without_pointing(tmp_path_factory, embedded_raw_file):
    """The real 2018 DigiCam file as DL1 of tel 21 and of tel 22, without
    pointing (the file has no TARGET header and none is given)."""
    return _as_two_telescopes(
        tmp_path_factory.mktemp("data_dl1_without_pointing"), embedded_raw_file
    )


@pytest.fixture(scope="session")
def prod4_dl1(tmp_path_factory, shared_data):
    """
    The prod4 SST-1M gammas as DL1: tel 19 alone, tel 33 alone, and both.

    Tels 19 and 33 are the pair of the file with the most common events (4 of
    31; no pair has more).
    """
    simtel = shared_data / PROD4
    if not simtel.exists():
        pytest.skip(f"{simtel} not found")
    tmp_path = tmp_path_factory.mktemp("prod4_dl1")
    common = [
        f"--config={RESOURCES / 'sst1m_mc.yaml'}",
        "--SST1MSimulationCorrections.pde_correction=1.0",
        "--no-progress",
    ]
    outputs = {}
    for tels in ((19,), (33,), (19, 33)):
        name = "_".join(map(str, tels))
        outputs[name] = process(
            tmp_path,
            simtel,
            tmp_path / f"tel_{name}.dl1.h5",
            *common,
            *(f"--EventSource.allowed_tels={tel}" for tel in tels),
        )
    return outputs


def _as_two_telescopes(tmp_path, raw_file, *options):
    """``raw_file`` (tel 22's) processed as tel 21 (``telescope_id_map``) and as
    tel 22, obs_id 201808220001, with ``options``; tel id -> DL1 file."""
    as_tel21 = tmp_path / "tel21.yaml"
    as_tel21.write_text("SST1MEventSource:\n  telescope_id_map: {22: 21}\n")
    common = [
        f"--config={RESOURCES / 'sst1m.yaml'}",
        *options,
        "--SST1MEventSource.obs_id=201808220001",
        "--no-progress",
    ]
    tel21 = process(
        tmp_path,
        raw_file,
        tmp_path / "SST1M1_20180822_0001.dl1.h5",
        *common,
        f"--config={as_tel21}",
    )
    tel22 = process(tmp_path, raw_file, tmp_path / "SST1M2_20180822_0001.dl1.h5", *common)
    return {21: tel21, 22: tel22}
