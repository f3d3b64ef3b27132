"""Test helpers: damaged or modified copies of real DigiCam files, and checks
shared by several test modules."""

import shutil
import subprocess
import sys

import numpy as np
from astropy.table import Table

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
