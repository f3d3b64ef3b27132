"""
The night's status table: one row per step, machine-readable, always current.

``{analysis_dir}/{YYYYMMDD}/nightly_status.ecsv`` is rewritten (under a
temporary name, then renamed) after every finished step, so that a killed
night leaves a table true up to its last finished step. A new invocation reads
it back to keep the records of products it finds complete.
"""

import json
import os
import time
from pathlib import Path

import numpy as np
from astropy.table import Table

__all__ = ["STATUS_COLUMNS", "StatusTable", "summary_lines"]

#: columns of the status table, in order
STATUS_COLUMNS = (
    "run",
    "mode",
    "stage",
    "target",
    "state",
    "exit_code",
    "attempts",
    "events_in",
    "events_out",
    "duration",
    "log",
    "product",
    "reason",
    "choices",
    "host",
    "key",
    "invocation",
    "finished",
    "peak_rss_mb",
    "worker_rss_mb",
)
_INT = ("exit_code", "attempts", "events_in", "events_out")


class StatusTable:
    """
    Status records of a night's steps, keyed by step key.

    Parameters
    ----------
    path : Path
        The ECSV file (read if it exists).
    read_only : bool
        Never write it (a dry run).
    """

    def __init__(self, path, read_only=False):
        self.path = Path(path)
        self.read_only = read_only
        self.records = {}
        if self.path.is_file():
            table = Table.read(self.path, format="ascii.ecsv")
            for row in table:
                record = {c: row[c] for c in table.colnames}
                for column in _INT:
                    value = record.get(column)
                    record[column] = (
                        None if value is None or value == -999 else int(value)
                    )
                for column in ("log", "product", "reason", "host", "invocation"):
                    value = record.get(column)
                    record[column] = "" if np.ma.is_masked(value) else str(value)
                record["choices"] = json.loads(
                    "{}"
                    if np.ma.is_masked(record["choices"])
                    else record["choices"] or "{}"
                )
                self.records[record["key"]] = record

    def update(self, record, invocation):
        """Add or replace the record of a step and rewrite the file."""
        self.records[record["key"]] = dict(
            record, invocation=invocation, finished=record.get("finished") or time.time()
        )
        self.write()

    def write(self):
        """Rewrite the table atomically."""
        if self.read_only:
            return
        rows = []
        for record in sorted(
            self.records.values(),
            key=lambda r: (r["target"], r["mode"], r["run"], r["stage"]),
        ):
            row = {c: record.get(c) for c in STATUS_COLUMNS}
            for column in _INT:
                row[column] = -999 if row[column] is None else int(row[column])
            row["duration"] = float(row["duration"] or 0.0)
            for column in ("finished", "peak_rss_mb", "worker_rss_mb"):
                value = row[column]
                row[column] = float(value) if value is not None else np.nan
            row["choices"] = json.dumps(row["choices"] or {}, default=str)
            for column in ("log", "product", "reason", "host", "key", "invocation"):
                row[column] = str(row[column] or "")
            rows.append(row)
        table = (
            Table(rows=rows, names=STATUS_COLUMNS)
            if rows
            else Table(names=STATUS_COLUMNS)
        )
        table.meta["description"] = (
            "ctapipe-sst1m-nightly: one row per step; exit_code/events -999 when "
            "unknown; choices: the library and calibration choices (JSON)"
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f".{self.path.name}.partial")
        table.write(partial, format="ascii.ecsv", overwrite=True)
        os.replace(partial, self.path)


def summary_lines(records, invocation):
    """
    One screen about the night: per target and mode, runs and events; failures.

    Parameters
    ----------
    records : iterable of dict
    invocation : str
        This invocation's id: steps it ran are told apart from kept ones.

    Returns
    -------
    list of (label, text)
    """
    records = list(records)
    lines = []
    ran = [
        r for r in records if r.get("invocation") == invocation and r["state"] != "kept"
    ]
    states = {}
    for record in ran:
        states[record["state"]] = states.get(record["state"], 0) + 1
    kept = sum(
        1
        for r in records
        if r["state"] in ("complete", "kept")
        and (r["state"] == "kept" or r.get("invocation") != invocation)
    )
    lines.append(
        (
            "this run",
            ", ".join(f"{n} {s}" for s, n in sorted(states.items())) or "nothing to do",
        )
    )
    lines.append(("earlier", f"{kept} steps complete from earlier invocations"))
    groups = {}
    for record in records:
        if record["stage"] != "dl3":
            continue
        key = (record["target"], record["mode"])
        groups.setdefault(key, []).append(record)
    for (target, mode), group in sorted(groups.items()):
        done = [r for r in group if r["state"] in ("complete", "kept")]
        events = sum(r["events_out"] or 0 for r in done)
        lines.append(
            (
                f"{target} {mode}",
                f"{len(done)} of {len(group)} runs to DL3, {events} gamma-ray candidates",
            )
        )
    failed = [r for r in records if r["state"] == "failed"]
    for record in failed[:8]:
        lines.append(
            ("FAILED", f"{record['key']}: {record['reason']} (log {record['log']})")
        )
    if len(failed) > 8:
        lines.append(("FAILED", f"... and {len(failed) - 8} more (see the status table)"))
    skipped = [r for r in records if r["state"] == "skipped"]
    if skipped:
        lines.append(("skipped", f"{len(skipped)} steps after a failure upstream"))
    return lines
