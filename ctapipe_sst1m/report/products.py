"""
What one night left on disk, found from the directory layout of
``ctapipe-sst1m-nightly`` and its status table, and nothing else: the report
can be made again, alone, from the products.

``{night_dir}/{target}/{cs1,cs2,stereo}/{dl1,dl2,dl3}/`` holds the runs' products
(``{label}.{level}.h5``, ``SST1M_obs_{obs_id}.dl3.fits.gz``) with their logs
and configurations, ``{night_dir}/nightly_status.ecsv`` the state of every
step. Paths in the status table are those of the machine that wrote it; they
are found again under ``night_dir`` when the night was moved.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from astropy.table import Table

from ..dl3.gadf import DL3_FILE_GLOB, HDU_INDEX_FILE, OBS_INDEX_FILE
from ..nightly.discover import read_catalogue
from ..nightly.plan import MODES

__all__ = [
    "LEVELS",
    "STATUS_FILE",
    "ModeProducts",
    "NightProducts",
    "ReportError",
    "RunProducts",
    "find_night",
    "relocate",
    "target_position",
]

#: the levels whose products are per run
LEVELS = ("dl1", "dl2", "dl3")
#: the nightly's status table, in the night's directory
STATUS_FILE = "nightly_status.ecsv"
_LABEL = re.compile(r"^SST1M(?P<cs>[12]|_stereo)_(?P<night>\d{8})_(?P<run>\d{4})$")


class ReportError(ValueError):
    """The night directory cannot be reported on (not a night, unreadable)."""


@dataclass
class RunProducts:
    """The products and step records of one run in one mode."""

    label: str
    mode: str
    target: str
    #: level -> final product path (existing) or None
    products: dict = field(default_factory=dict)
    #: stage -> status record (dict), when the status table has one
    steps: dict = field(default_factory=dict)

    @property
    def run(self):
        """Run number, from the label."""
        return int(self.label.rsplit("_", 1)[1])

    @property
    def obs_id(self):
        """``{night}{run:04d}``, as the DL1 files and the DL3 headers have it."""
        match = _LABEL.match(self.label)
        return int(match["night"] + match["run"]) if match else None

    def sidecar(self, level, suffix):
        """``{label}.{level}.{suffix}`` in the level's directory (may not exist)."""
        product = self.products.get(level)
        directory = product.parent if product else None
        if directory is None:
            return None
        return directory / f"{self.label}.{level}.{suffix}"

    def state(self, stage):
        """The step's state: complete, failed, skipped, ... or missing."""
        record = self.steps.get(stage)
        if record is not None:
            return record["state"]
        return "complete" if self.products.get(stage) else "missing"


@dataclass
class ModeProducts:
    """One target's runs of one mode (cs1, cs2, stereo)."""

    target: str
    mode: str
    directory: Path
    runs: list = field(default_factory=list)
    #: the DL3 directory, when its gammapy indexes exist
    dl3_index: Path | None = None
    #: the index step's record
    index_step: dict | None = None

    def files(self, level):
        """The runs' complete products of ``level``."""
        return [r.products[level] for r in self.runs if r.products.get(level)]


@dataclass
class NightProducts:
    """One night's products, by target and mode."""

    directory: Path
    night: str
    #: target -> mode -> ModeProducts (modes with no run are absent)
    targets: dict = field(default_factory=dict)
    #: status records of runs that made no product (waiting, dark, ...)
    other_records: list = field(default_factory=list)
    status_file: Path | None = None

    def modes(self):
        """All ModeProducts, by target then mode."""
        for target in sorted(self.targets):
            for mode in MODES:
                if mode in self.targets[target]:
                    yield self.targets[target][mode]


def relocate(path, night_dir):
    """
    ``path`` from a status table, under ``night_dir`` if the night was moved.

    Returns
    -------
    Path or None
        None for an empty path.
    """
    if not path:
        return None
    path = Path(path)
    if path.exists():
        return path
    night_dir = Path(night_dir)
    parts = path.parts
    # .../{night}/{target}/{mode}/{level}/{file}: keep what follows the night
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == night_dir.name:
            return night_dir.joinpath(*parts[i + 1 :])
    return path


def _read_status(path):
    table = Table.read(path, format="ascii.ecsv")
    records = []
    for row in table:
        record = {}
        for name in table.colnames:
            value = row[name]
            # plain Python values: numpy strings print as np.str_('...')
            record[name] = "" if np.ma.is_masked(value) else np.asarray(value).item()
        records.append(record)
    return records


def find_night(night_dir):
    """
    The products of the night in ``night_dir``.

    Parameters
    ----------
    night_dir : str or Path
        ``{analysis_dir}/{YYYYMMDD}``.

    Returns
    -------
    NightProducts

    Raises
    ------
    ReportError
        If ``night_dir`` is not a directory, or has neither products nor a
        status table.
    """
    night_dir = Path(night_dir)
    if not night_dir.is_dir():
        raise ReportError(
            f"{night_dir}: no such directory; give the night's directory "
            "({analysis_dir}/{YYYYMMDD}) of ctapipe-sst1m-nightly"
        )
    night = NightProducts(directory=night_dir, night=night_dir.name)
    runs = {}

    def run_of(target, mode, label):
        key = (target, mode, label)
        if key not in runs:
            runs[key] = RunProducts(label=label, mode=mode, target=target)
        return runs[key]

    for target_dir in sorted(p for p in night_dir.iterdir() if p.is_dir()):
        for mode in MODES:
            mode_dir = target_dir / mode
            if not mode_dir.is_dir():
                continue
            for level in ("dl1", "dl2"):
                for path in sorted((mode_dir / level).glob(f"*.{level}.h5")):
                    if path.name.startswith("."):
                        continue
                    label = path.name[: -len(f".{level}.h5")]
                    run_of(target_dir.name, mode, label).products[level] = path
    status_file = night_dir / STATUS_FILE
    if status_file.is_file():
        night.status_file = status_file
        try:
            records = _read_status(status_file)
        except Exception as err:
            raise ReportError(
                f"{status_file}: not a readable status table ({err})"
            ) from err
        for record in records:
            for column in ("log", "product"):
                record[column] = relocate(record[column], night_dir)
            stage = record["stage"]
            if stage in LEVELS:
                run = run_of(record["target"], record["mode"], record["run"])
                run.steps[stage] = record
            elif stage != "index":
                night.other_records.append(record)
        index_records = {
            (r["target"], r["mode"]): r for r in records if r["stage"] == "index"
        }
    else:
        index_records = {}
    # DL3 written apart from the nightly's runs (an index, no DL1/DL2 here)
    for index in sorted(night_dir.glob(f"*/*/dl3/{HDU_INDEX_FILE}")):
        mode_dir = index.parent.parent
        if mode_dir.name in MODES:
            night.targets.setdefault(mode_dir.parent.name, {}).setdefault(
                mode_dir.name,
                ModeProducts(
                    target=mode_dir.parent.name, mode=mode_dir.name, directory=mode_dir
                ),
            )
    for (target, mode, _), run in sorted(runs.items()):
        modes = night.targets.setdefault(target, {})
        if mode not in modes:
            modes[mode] = ModeProducts(
                target=target, mode=mode, directory=night_dir / target / mode
            )
        modes[mode].runs.append(run)
    if not runs and night.status_file is None and not night.targets:
        raise ReportError(
            f"{night_dir}: neither products nor {STATUS_FILE}; give the night's "
            "directory ({analysis_dir}/{YYYYMMDD}) of ctapipe-sst1m-nightly"
        )
    for modes in night.targets.values():
        for mode in modes.values():
            _find_dl3(mode)
            mode.index_step = index_records.get((mode.target, mode.mode))
    return night


def _find_dl3(mode):
    """Each run's DL3 file (by obs_id), and the indexes when present."""
    directory = mode.directory / "dl3"
    files = {}
    for path in directory.glob(DL3_FILE_GLOB):
        if not path.name.startswith("."):
            match = re.search(r"_(\d+)\.dl3", path.name)
            if match:
                files[int(match[1])] = path
    for run in mode.runs:
        run.products["dl3"] = files.get(run.obs_id)
    if (directory / HDU_INDEX_FILE).is_file() and (directory / OBS_INDEX_FILE).is_file():
        mode.dl3_index = directory


def target_position(mode, catalogue=None):
    """
    The target's ICRS position (deg) and where it comes from.

    From the catalogue when given and it knows the target, else from the
    configuration the nightly wrote for a DL1 step of the target
    (``SST1MEventSource.pointing_ra/dec``).

    Parameters
    ----------
    mode : ModeProducts
    catalogue : str or Path, optional
        A source catalogue (``read_catalogue``).

    Returns
    -------
    tuple
        (ra, dec, source) or (None, None, reason).
    """
    if catalogue:
        entry = read_catalogue(catalogue).get(mode.target.lower())
        if entry is not None:
            return entry[1], entry[2], f"catalogue {Path(catalogue).name}"
    for run in mode.runs:
        config = run.sidecar("dl1", "yaml")
        if config is None or not config.is_file():
            continue
        source = (yaml.safe_load(config.read_text()) or {}).get("SST1MEventSource", {})
        if "pointing_ra" in source and "pointing_dec" in source:
            return (
                float(source["pointing_ra"]),
                float(source["pointing_dec"]),
                f"configuration {config.name}",
            )
    return None, None, "no position: not in the catalogue, none in the DL1 configuration"
