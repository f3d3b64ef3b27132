"""Test helpers: damaged or modified copies of real DigiCam files, and checks
shared by several test modules."""

import re
import shutil
import subprocess
import sys

import numpy as np
from astropy.table import Table

from ctapipe_sst1m.core.products import DL1, write_hdf5_mark

CARD = 80
BLOCK = 2880


def add_events_header_card(source, destination, key, value):
    """
    Copy ``source`` adding ``KEY = 'value'`` to its Events header.

    The card replaces the END card, and END moves to the next card, which must be
    blank padding of the same 2880-byte header block: nothing else moves, so the
    data and its DATASUM stay valid (as for a file written with the key).
    """
    data = bytearray(source.read_bytes())
    events = data.find(b"EXTNAME = 'Events'")
    end = events
    while data[end : end + CARD].rstrip() != b"END":
        end += CARD
    if (end // BLOCK) != ((end + CARD) // BLOCK) or data[
        end + CARD : end + 2 * CARD
    ].strip():
        raise ValueError("no free card left in the Events header block")
    card = f"{key:<8}= '{value}'".ljust(CARD).encode("ascii")
    data[end : end + CARD] = card
    data[end + CARD : end + 2 * CARD] = b"END".ljust(CARD)
    destination.write_bytes(bytes(data))
    return destination


def truncated_copy(source, destination, n_bytes):
    """The first ``n_bytes`` of ``source``."""
    destination.write_bytes(source.read_bytes()[:n_bytes])
    return destination


def corrupted_copy(source, destination, offset, length=64):
    """``source`` with ``length`` bytes flipped from ``offset`` on."""
    data = bytearray(source.read_bytes())
    for i in range(offset, offset + length):
        data[i] ^= 0x5A
    destination.write_bytes(bytes(data))
    return destination


def linked_copy(source, destination):
    """``source`` under another name."""
    shutil.copyfile(source, destination)
    return destination


def assert_resources_generated(generator, shared_data, output, resources, names):
    """
    Run a resource generator script into ``output`` and check that it writes
    exactly the shipped ``names``, equal to the shipped files in metadata,
    columns, units and values (but for the date and software versions).
    """
    command = [sys.executable, str(generator), "--shared-data", str(shared_data)]
    command += ["--output", str(output), "--log-level", "WARNING"]
    subprocess.run(command, check=True)
    assert sorted(p.name for p in output.iterdir()) == sorted(names)
    for name in names:
        shipped = Table.read(resources / name, format="ascii.ecsv")
        generated = Table.read(output / name, format="ascii.ecsv")
        for table in (shipped, generated):
            del table.meta["provenance"]["date"]
            del table.meta["provenance"]["generator_software"]
        assert generated.meta == shipped.meta, name
        assert generated.colnames == shipped.colnames, name
        for column in shipped.colnames:
            assert generated[column].unit == shipped[column].unit, (name, column)
            np.testing.assert_array_equal(generated[column], shipped[column])


def edit_dl1_events(path, keep=None, time_shift_ns=None):
    """
    Edit the events of a single-telescope DL1 file in place, and mark it
    complete again (it stands for another complete run).

    Parameters
    ----------
    keep : numpy.ndarray of bool, optional
        Events to keep; the rows of the others are removed from every event
        table (one row per event in a single-telescope file).
    time_shift_ns : numpy.ndarray of int, optional
        Added to each event's trigger times (before removing events).
    """
    import tables

    event_tables = []
    with tables.open_file(path, mode="a") as h5file:
        n_events = h5file.root.dl1.event.subarray.trigger.nrows
        for node in h5file.walk_nodes("/", classname="Table"):
            if "/event/" in node._v_pathname and node.nrows == n_events:
                event_tables.append(node)
        if time_shift_ns is not None:
            for node in event_tables:
                if "time" not in node.colnames:
                    continue
                high_res = node.col("time").astype(np.int64)
                ns = high_res[:, 0] * 1_000_000_000 + high_res[:, 1] // 4
                ns += np.asarray(time_shift_ns, dtype=np.int64)
                shifted = np.stack(
                    [ns // 1_000_000_000, (ns % 1_000_000_000) * 4], axis=1
                ).astype(np.uint32)
                node.modify_column(colname="time", column=shifted)
        if keep is not None:
            for node in event_tables:
                rows = node.read()[np.asarray(keep)]
                node.remove_rows(0, node.nrows)
                node.append(rows)
        n_written = h5file.root.dl1.event.subarray.trigger.nrows
    write_hdf5_mark(path, DL1, events_in=n_written, events_out=n_written)
    return path


def parse_summary(stderr, title):
    """The one-screen summary printed after the line starting with ``title``:
    label -> text, wrapped lines joined; asserts it fits on a screen."""
    lines = stderr.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    rows, label = {}, None
    for line in lines[start + 1 :]:
        if not line.startswith("  "):
            break
        match = re.match(r"  (\S.*?)  +(\S.*)", line)
        if match and not line.startswith("    "):
            label = match[1].strip()
            rows[label] = match[2]
        else:
            rows[label] += " " + line.strip()
    assert len(rows) + 1 <= 15, "a summary fits on a screen"
    return rows
