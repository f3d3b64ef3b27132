"""
The gamma-ray candidates of one observed run, from its DL2 file.

The DL2 file is what ``ctapipe-process`` (geometry) and ``ctapipe-apply-models``
(energy, gammaness) write; the cuts file is ``ctapipe-optimize-event-selection``'s.
Events are kept if the three reconstructions are valid, the energy is within
the cuts' valid range, the gammaness passes the cut of its energy bin and the
direction is within the IRFs' field of view (``FOVMAX`` from the pointing).
The sky position comes from the reconstructed AltAz direction at each event's
time, seen from the array's reference location. The pointing is the tracked
sky position of the observation block (the wobble position of a wobble run).
"""

import operator
from dataclasses import dataclass, field
from functools import cached_property

import astropy.units as u
import numpy as np
from astropy.coordinates import AltAz, SkyCoord
from astropy.table import QTable
from ctapipe.containers import CoordinateFrameType, PointingMode
from ctapipe.io import TableLoader, read_table
from ctapipe.io.hdf5dataformat import (
    OBSERVATION_BLOCK_TABLE,
    SCHEDULING_BLOCK_TABLE,
    SIMULATION_GROUP,
)
from pyirf.cuts import evaluate_binned_cut

__all__ = ["DL3InputError", "RunEvents", "read_cuts", "read_run_events"]


class DL3InputError(ValueError):
    """An input that cannot be turned into DL3."""


@dataclass
class RunEvents:
    """The selected events and the observation of one run."""

    obs_id: int
    #: QTable: EVENT_ID, TIME (astropy Time), RA, DEC, ENERGY, GAMMANESS, MULTIP
    events: QTable
    #: first and last event time of the run (all triggers, before cuts)
    start: object
    stop: object
    #: the tracked sky position (the pointing)
    target: SkyCoord
    pointing_mode: str
    tel_ids: tuple
    subarray: object
    n_triggers: int
    #: events with valid reconstructions passing the gammaness cut but
    #: reconstructed beyond the field-of-view cut
    n_outside_fov: int = 0
    #: events left after each selection step, in order (every trigger is
    #: written or counted with the step that removed it)
    selection: dict = field(default_factory=dict)

    def selection_summary(self):
        """The selection steps as one line: ``name count, name count, ...``."""
        return ", ".join(f"{name} {count}" for name, count in self.selection.items())

    def pointing_altaz(self, n_times=50):
        """
        The pointing in AltAz at ``n_times`` times spread over the run.

        Returns
        -------
        astropy.coordinates.SkyCoord
        """
        times = self.start + (self.stop - self.start) * np.linspace(0, 1, n_times)
        frame = AltAz(obstime=times, location=self.subarray.reference_location)
        return self.target.transform_to(frame)

    @cached_property
    def mean_pointing(self):
        """Mean pointing over the run: alt, az (deg); computed once per run."""
        altaz = self.pointing_altaz()
        x = np.cos(altaz.alt.rad) * np.cos(altaz.az.rad)
        y = np.cos(altaz.alt.rad) * np.sin(altaz.az.rad)
        z = np.sin(altaz.alt.rad)
        alt = np.degrees(np.arctan2(z.sum(), np.hypot(x.sum(), y.sum())))
        az = np.degrees(np.arctan2(y.sum(), x.sum())) % 360
        return float(alt), float(az)


def read_cuts(path):
    """The gammaness cuts, valid energy range and quality criteria of a cuts file."""
    try:
        gh_cuts = QTable.read(path, hdu="GH_CUTS")
        valid = QTable.read(path, hdu="VALID_ENERGY")
        quality = QTable.read(path, hdu="QUALITY_CUTS_EXPR")
    except (OSError, KeyError) as err:
        raise DL3InputError(
            f"{path}: not a ctapipe-optimize-event-selection cuts file ({err})"
        ) from err
    criteria = [str(expression) for expression in quality["cut_expr"]]
    return gh_cuts, valid, criteria


def _required_columns(prefixes):
    energy, geometry, classifier = prefixes
    return [
        f"{energy}_energy",
        f"{energy}_is_valid",
        f"{geometry}_alt",
        f"{geometry}_az",
        f"{geometry}_is_valid",
        f"{geometry}_telescopes",
        f"{classifier}_prediction",
        f"{classifier}_is_valid",
    ]


def read_run_events(path, cuts, prefixes, fov_max=None):
    """
    The selected events of one observed run.

    Parameters
    ----------
    path : pathlib.Path
        DL2 file of one run.
    cuts : tuple
        `read_cuts` of the cuts file.
    prefixes : tuple of str
        Energy, geometry and classifier prefixes.
    fov_max : astropy.units.Quantity or None
        Events reconstructed this far or farther from the pointing are dropped.

    Returns
    -------
    RunEvents

    Raises
    ------
    DL3InputError
        For simulations, runs without a tracked target, several observations in
        one file, or DL2 without the needed columns.
    """
    with TableLoader(path) as loader:
        subarray = loader.subarray
        if SIMULATION_GROUP in loader.h5file:
            raise DL3InputError(f"{path}: simulated events; DL3 is for observed runs")
        events = loader.read_subarray_events(dl2=True, simulated=False)
    missing = [c for c in _required_columns(prefixes) if c not in events.colnames]
    if missing:
        raise DL3InputError(
            f"{path}: DL2 without {missing}; run ctapipe-process (geometry) and "
            "ctapipe-apply-models (energy, gammaness) first"
        )
    blocks = read_table(path, OBSERVATION_BLOCK_TABLE)
    schedules = read_table(path, SCHEDULING_BLOCK_TABLE)
    if len(blocks) != 1:
        raise DL3InputError(f"{path}: {len(blocks)} observation blocks, expected one run")
    block = blocks[0]
    frame = CoordinateFrameType(int(block["subarray_pointing_frame"]))
    if frame is not CoordinateFrameType.ICRS:
        raise DL3InputError(
            f"{path}: pointing given in {frame.name}, not a tracked sky position"
        )
    target = SkyCoord(
        u.Quantity(block["subarray_pointing_lon"], u.deg),
        u.Quantity(block["subarray_pointing_lat"], u.deg),
        frame="icrs",
    )
    if not np.all(np.isfinite([target.ra.deg, target.dec.deg])):
        raise DL3InputError(f"{path}: no pointing target in the observation block")

    energy_prefix, geometry, classifier = prefixes
    energy = u.Quantity(events[f"{energy_prefix}_energy"], u.TeV)
    gammaness = np.asarray(events[f"{classifier}_prediction"], dtype=float)
    valid = np.ones(len(events), dtype=bool)
    for prefix in prefixes:
        valid &= np.asarray(np.ma.filled(events[f"{prefix}_is_valid"], False))
    gh_cuts, valid_energy, _ = cuts
    in_range = (energy >= valid_energy["energy_min"][0]) & (
        energy < valid_energy["energy_max"][0]
    )
    selected = valid & in_range
    selection = {
        "triggers": len(events),
        "valid reconstructions": int(np.count_nonzero(valid)),
        "in the cuts' energy range": int(np.count_nonzero(selected)),
    }
    selected[selected] = evaluate_binned_cut(
        gammaness[selected], energy[selected], gh_cuts, operator.ge
    )
    selection["passing the gammaness cut"] = int(np.count_nonzero(selected))
    chosen = events[selected]
    times = chosen["time"]
    altaz = AltAz(obstime=times, location=subarray.reference_location)
    direction = SkyCoord(
        alt=u.Quantity(chosen[f"{geometry}_alt"], u.deg),
        az=u.Quantity(chosen[f"{geometry}_az"], u.deg),
        frame=altaz,
    ).icrs
    n_outside = 0
    if fov_max is not None:
        inside = direction.separation(target) < fov_max
        n_outside = int(np.count_nonzero(~inside))
        chosen, direction = chosen[inside], direction[inside]
        times = chosen["time"]
        selected[np.flatnonzero(selected)[~inside]] = False
        selection["within the field of view"] = int(np.count_nonzero(selected))
    table = QTable(
        {
            "EVENT_ID": np.asarray(chosen["event_id"], dtype=np.int64),
            "TIME": times,
            "RA": direction.ra.to(u.deg),
            "DEC": direction.dec.to(u.deg),
            "ENERGY": energy[selected],
            "GAMMANESS": gammaness[selected],
            "MULTIP": np.asarray(chosen[f"{geometry}_telescopes"]).sum(axis=1),
        }
    )
    mode = PointingMode(int(schedules["pointing_mode"][0])).name
    return RunEvents(
        obs_id=int(block["obs_id"]),
        events=table,
        start=events["time"].min(),
        stop=events["time"].max(),
        target=target,
        pointing_mode=mode,
        tel_ids=tuple(int(t) for t in subarray.tel_ids),
        subarray=subarray,
        n_triggers=len(events),
        n_outside_fov=n_outside,
        selection=selection,
    )
