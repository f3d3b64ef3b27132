"""
The bad-input corpus: every case refused with exit code != 0, one line naming
the file and the fault, and nothing a package tool would accept left behind.

With ``SST1M_CORPUS_TABLE=path.csv`` the results are also written as the table
of the documentation (docs/robustness.rst).
"""

from pathlib import Path

import pytest

from ctapipe_sst1m.core.resources import config_file
from ctapipe_sst1m.tools.check import check_file

from .corpus import (
    assert_refused,
    merge_cases,
    run_cases,
    simulation_cases,
    undocumented,
    write_table,
)

#: runs ctapipe tools on real or toy files (seconds to minutes each)
pytestmark = pytest.mark.slow

SST1M_YAML = config_file("sst1m.yaml")


@pytest.fixture(scope="module")
def merge_results(tmp_path_factory, dl1_pair, embedded_raw_file):
    tmp = tmp_path_factory.mktemp("corpus_merge")
    return run_cases(merge_cases(tmp, dl1_pair[21], dl1_pair[22], embedded_raw_file))


@pytest.fixture(scope="module")
def simulation_results(tmp_path_factory, shared_data):
    tmp = tmp_path_factory.mktemp("corpus_simtel")
    mc_yaml = config_file("sst1m_mc.yaml")
    return run_cases(simulation_cases(tmp, shared_data / "simtel", mc_yaml))


def test_simulation_inputs_refused(simulation_results):
    write_table(simulation_results)
    failures = assert_refused(simulation_results)
    assert not failures, "\n".join(failures)


def test_raw_inputs_refused(raw_results):
    write_table(raw_results)
    failures = assert_refused(raw_results)
    assert not failures, "\n".join(failures)


def test_merge_inputs_refused(merge_results):
    write_table(merge_results)
    failures = assert_refused(merge_results)
    assert not failures, "\n".join(failures)


def test_check_tool_finds_every_damaged_file(raw_results, merge_results):
    """ctapipe-sst1m-check calls each damaged input of the corpus BAD."""
    missed, checked = [], 0
    for results in (raw_results, merge_results):
        for name, result in results.items():
            if not name.startswith(("raw ", "merge DL1", "merge empty", "merge text")):
                continue
            inputs = [a for a in result.case.command[1:] if not a.startswith("-")]
            inputs += [
                a.split("=", 1)[1]
                for a in result.case.command
                if a.startswith("--input=")
            ]
            bad = [p for p in inputs if Path(p).name in result.message]
            for path in bad:
                checked += 1
                verdict = check_file(path)
                if verdict.verdict == "OK":
                    missed.append(f"{name}: {verdict.line()}")
    assert not missed, "\n".join(missed)
    # the damaged raw and DL1 files were found in the messages and checked
    assert checked >= 35, checked


def test_corpus_size_and_documented(raw_results, merge_results, simulation_results):
    """With the DL3 cases (tests/chain/test_dl3_bad_inputs.py), over 110; every
    case in the documentation's table (regenerate it as docs/products.rst says)."""
    results = {**raw_results, **merge_results, **simulation_results}
    assert len(results) >= 90
    assert not undocumented(results), undocumented(results)
