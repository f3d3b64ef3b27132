"""Completeness marks: written last by the package, checked by its readers."""

import logging

import numpy as np
import pytest
import tables
from astropy.io import fits
from ctapipe.core import Provenance, Tool, run_tool
from ctapipe.io import EventSource
from ctapipe.tools.process import ProcessorTool

from ctapipe_sst1m.core.products import (
    DL1,
    MARK_TABLE,
    ProductError,
    atomic_output,
    partial_path,
    read_hdf5_mark,
    remove_stale_partials,
    verify_fits_product,
    verify_hdf5_product,
    write_fits_product,
)
from ctapipe_sst1m.core.resources import config_file

SST1M_YAML = config_file("sst1m.yaml")


def process(tmp_path, raw, name="run.dl1.h5", *extra):
    output = tmp_path / name
    code = run_tool(
        ProcessorTool(),
        [f"--input={raw}", f"--output={output}", f"--config={SST1M_YAML}", *extra],
        cwd=tmp_path,
        raises=False,
    )
    return code, output


@pytest.fixture(scope="module")
def dl1_file(tmp_path_factory, embedded_raw_file):
    tmp_path = tmp_path_factory.mktemp("products")
    code, output = process(tmp_path, embedded_raw_file, "run.dl1.h5", "--no-progress")
    assert code == 0
    return output


def copy(source, tmp_path, name="copy.dl1.h5"):
    destination = tmp_path / name
    destination.write_bytes(source.read_bytes())
    return destination


@pytest.mark.slow
def test_ctapipe_process_output_is_marked(dl1_file):
    mark = verify_hdf5_product(dl1_file, kinds=(DL1,), deep=True)
    assert mark.kind == DL1
    assert mark.events_in == 32
    assert mark.events_out == 32
    assert mark.counts == {"written": 32}
    assert mark.inputs == ["example_SST1M_20180822.fits.fz"]
    assert mark.table_rows["/dl1/event/telescope/images/tel_022"] == 32


@pytest.mark.slow
def test_every_event_counted_with_max_events(tmp_path, embedded_raw_file):
    code, output = process(tmp_path, embedded_raw_file, "x.h5", "--max-events=5")
    assert code == 0
    mark = verify_hdf5_product(output)
    assert mark.counts == {"written": 5, "not processed (max_events)": 27}
    assert sum(mark.counts.values()) == mark.events_in == 32


@pytest.mark.slow
def test_datawriter_registers_its_output_with_provenance(tmp_path, embedded_raw_file):
    """Pins the ctapipe behaviour the source and monitoring sources rely on to
    find the output of the tool hosting them (instead of its attributes)."""
    code, output = process(tmp_path, embedded_raw_file, "pin.h5", "--max-events=1")
    assert code == 0
    activity = Provenance().finished_activities[-1]
    outputs = [o["url"] for o in activity.output if o["role"] == "DL1/Event"]
    assert str(output) in outputs
    # the source registers the raw chunks it reads
    inputs = [i["url"] for i in activity.input if i["role"] == "R0/Event"]
    assert inputs == [str(embedded_raw_file)]


def test_source_under_another_tool_says_nothing_was_marked(
    tmp_path, embedded_raw_file, capsys
):
    class ReadOnly(Tool):
        name = "read-only"

        def start(self):
            with EventSource(embedded_raw_file, parent=self) as source:
                for _ in source:
                    pass

    assert run_tool(ReadOnly(), [], cwd=tmp_path, raises=False) == 0
    assert "no DL1 output registered by the hosting tool" in capsys.readouterr().err


def test_missing_mark_refused(dl1_file, tmp_path):
    path = copy(dl1_file, tmp_path)
    with tables.open_file(path, mode="a") as h5file:
        h5file.remove_node(MARK_TABLE)
    with pytest.raises(ProductError, match="no completeness mark"):
        verify_hdf5_product(path)
    # stock-tool products: consistent tables are enough when asked
    assert verify_hdf5_product(path, require_mark=False) is None


def test_table_cut_short_refused(dl1_file, tmp_path):
    path = copy(dl1_file, tmp_path)
    with tables.open_file(path, mode="a") as h5file:
        h5file.get_node("/dl1/event/telescope/images/tel_022").remove_rows(20, 32)
    with pytest.raises(ProductError, match="images/tel_022 has 20 rows, 32 when"):
        verify_hdf5_product(path)


def test_inconsistent_unmarked_tables_refused(dl1_file, tmp_path):
    path = copy(dl1_file, tmp_path)
    with tables.open_file(path, mode="a") as h5file:
        h5file.remove_node(MARK_TABLE)
        h5file.get_node("/dl1/event/telescope/parameters/tel_022").remove_rows(0, 3)
    with pytest.raises(ProductError, match="29 rows for 32 events of tel 22"):
        verify_hdf5_product(path, require_mark=False)


def test_truncated_and_damaged_hdf5_refused(dl1_file, tmp_path):
    data = dl1_file.read_bytes()
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ProductError, match=r"truncated\.h5: unreadable HDF5"):
        verify_hdf5_product(truncated)

    # zero bytes inside the images' compressed chunks: the HDF5 structure is
    # intact, the fletcher32 chunk checksums are not
    offset = len(data) // 2
    damaged = bytearray(data)
    damaged[offset : offset + 64] = bytes(64)
    path = tmp_path / "damaged.h5"
    path.write_bytes(bytes(damaged))
    with pytest.raises(ProductError, match="damaged"):
        verify_hdf5_product(path, deep=True)


def test_not_a_product(tmp_path, embedded_raw_file):
    with pytest.raises(ProductError, match="not an HDF5 file"):
        verify_hdf5_product(embedded_raw_file)
    with pytest.raises(ProductError, match="is a directory"):
        verify_hdf5_product(tmp_path)
    empty = tmp_path / "empty.h5"
    empty.touch()
    with pytest.raises(ProductError, match="empty file"):
        verify_hdf5_product(empty)


def test_wrong_kind_refused(dl1_file):
    with pytest.raises(ProductError, match="a DL1 product, expected DL2"):
        verify_hdf5_product(dl1_file, kinds=("DL2",))


def _fits_product(tmp_path, name="irf.fits.gz"):
    hdus = fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.BinTableHDU.from_columns(
                [fits.Column("AREA", "D", array=np.linspace(0, 1e5, 5000))],
                name="EFFECTIVE AREA",
            ),
        ]
    )
    return write_fits_product(hdus, tmp_path / name, "IRF")


def test_fits_product_round_trip(tmp_path):
    path = _fits_product(tmp_path)
    header = verify_fits_product(path, kinds=("IRF",))
    assert header["SSTPROD"] == "IRF"
    with fits.open(path) as hdus:
        assert all("CHECKSUM" in h.header for h in hdus)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["irf.fits.gz"]


@pytest.mark.parametrize(
    ("name", "damage", "message"),
    [
        ("crc.fits.gz", lambda b: b[:100] + bytes([b[100] ^ 1]) + b[101:], "gzip"),
        ("cut.fits.gz", lambda b: b[: len(b) // 2], "truncated gzip"),
        ("bytes.fits", lambda b: b[:-4000] + bytes(8) + b[-3992:], "Checksum"),
        ("cut.fits", lambda b: b[: len(b) - 5000], "unreadable FITS"),
    ],
)
def test_damaged_fits_refused(tmp_path, name, damage, message):
    path = _fits_product(tmp_path, name)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(ProductError, match=message):
        verify_fits_product(path)


def test_unmarked_fits(tmp_path):
    path = tmp_path / "stock.fits"
    fits.HDUList([fits.PrimaryHDU()]).writeto(path)
    with pytest.raises(ProductError, match="no completeness mark"):
        verify_fits_product(path)
    assert verify_fits_product(path, require_mark=False) is not None


def test_atomic_output(tmp_path):
    final = tmp_path / "product.h5"
    with pytest.raises(RuntimeError), atomic_output(final) as partial:
        partial.write_text("half")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    with atomic_output(final) as partial:
        assert partial.name == ".product.h5.partial"
        partial.write_text("whole")
    assert final.read_text() == "whole"


def test_stale_partials_removed(tmp_path, caplog):
    final = tmp_path / "stereo.h5"
    partial_path(final).write_bytes(b"x" * 100)
    with caplog.at_level(logging.WARNING):
        removed = remove_stale_partials(final, logging.getLogger("test"))
    assert [p.name for p in removed] == [".stereo.h5.partial"]
    assert "left by an earlier run that did not finish (100 bytes)" in caplog.text
    assert list(tmp_path.iterdir()) == []


def test_mark_survives_reading(dl1_file):
    with tables.open_file(dl1_file) as h5file:
        mark = read_hdf5_mark(h5file, dl1_file)
    assert mark.summary().startswith("complete DL1, 32 events")
