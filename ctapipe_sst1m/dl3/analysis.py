"""
The standard analysis of a point source in SST-1M DL3, with gammapy: what an
astronomer runs on the files of ``ctapipe-sst1m-dl3``, and what the package's
validation and night reports run.

* `theta2_counts`: ON counts around the source and OFF counts around its
  reflections about each run's pointing (wobble runs), in bins of theta^2,
  and the Li & Ma significance within a cut;
* `datastore_problems`: gammapy's ``DataStore.check()``, runnable;
* `spectrum_analysis`: reflected-region background, stacked
  ``SpectrumDatasetOnOff``, safe energy range at 10 % of the maximum effective
  area, power-law fit with WStat and flux points. Point-like IRFs (RAD_MAX_2D)
  give an ON region of their energy-dependent radius; full-enclosure IRFs a
  circle with the PSF containment correction.
"""

from dataclasses import dataclass

import astropy.units as u
import numpy as np
from astropy.table import Table
from gammapy.data.event_list import EventListChecker
from gammapy.data.observations import ObservationChecker
from gammapy.datasets import Datasets, SpectrumDataset
from gammapy.estimators import FluxPointsEstimator
from gammapy.makers import (
    ReflectedRegionsBackgroundMaker,
    SafeMaskMaker,
    SpectrumDatasetMaker,
    WobbleRegionsFinder,
)
from gammapy.maps import MapAxis, RegionGeom
from gammapy.modeling import Fit
from gammapy.modeling.models import PowerLawSpectralModel, SkyModel
from gammapy.stats import WStatCountsStatistic
from regions import CircleSkyRegion, PointSkyRegion

__all__ = [
    "SpectrumResult",
    "Theta2Counts",
    "datastore_problems",
    "reflected_positions",
    "spectrum_analysis",
    "theta2_counts",
]


def datastore_problems(store):
    """
    The errors and warnings of gammapy's ``DataStore.check()``.

    gammapy 2.1's own ``check()`` cannot run on any event list: its column
    check reads a unit off ``TIME``, which gammapy 2 turns into an astropy
    ``Time`` (AttributeError). This runs every one of its checks but that one,
    which is done on the FITS table instead (required columns and units).

    Parameters
    ----------
    store : gammapy.data.DataStore

    Returns
    -------
    list of dict
        gammapy's check records of level "error" or "warning".
    """
    records = list(store.check(checks=["obs_table", "hdu_table", "consistency"]))
    for obs_id in store.obs_table["OBS_ID"]:
        try:
            # what check() loads: full-enclosure IRFs, background included
            observation = store.obs(obs_id)
        except Exception as err:
            records.append({"level": "error", "obs_id": obs_id, "msg": str(err)})
            continue
        records += ObservationChecker(observation).run(
            checks=["gti", "aeff", "edisp", "psf"]
        )
        checker = EventListChecker(observation.events)
        records += checker.run(checks=[c for c in checker.CHECKS if c != "columns"])
        location = store.hdu_table.hdu_location(obs_id=obs_id, hdu_type="events")
        table = Table.read(location.path(), hdu=location.hdu_name)
        for name, unit in EventListChecker.columns_required:
            if name not in table.colnames:
                message = f"Missing table column: {name!r}"
            elif u.Unit(unit) != (table[name].unit or u.dimensionless_unscaled):
                message = f"Invalid unit for column: {name!r}"
            else:
                continue
            records.append({"level": "error", "obs_id": obs_id, "msg": message})
    return [r for r in records if r["level"] in ("error", "warning")]


def reflected_positions(source, pointing, n_off):
    """
    The ``n_off`` positions reflecting ``source`` about ``pointing``.

    They lie on the circle through the source around the pointing, at equal
    angles (180 deg for one; 90, 180 and 270 deg for three).

    Returns
    -------
    astropy.coordinates.SkyCoord
    """
    offset = pointing.separation(source)
    angle = pointing.position_angle(source)
    turns = np.arange(1, n_off + 1) * (360.0 / (n_off + 1)) * u.deg
    return pointing.directional_offset_by(angle + turns, offset)


@dataclass
class Theta2Counts:
    """ON and OFF counts in bins of theta^2 (deg^2), summed over runs."""

    edges: np.ndarray
    on: np.ndarray
    off: np.ndarray
    #: exposure ratio ON / OFF (1 / number of OFF positions)
    alpha: float
    theta2_cut: float
    n_on: int
    n_off: int

    @property
    def excess(self):
        """Excess counts within the cut."""
        return self.n_on - self.alpha * self.n_off

    @property
    def significance(self):
        """Li & Ma (1983, eq. 17) significance within the cut."""
        statistic = WStatCountsStatistic(self.n_on, self.n_off, self.alpha)
        return float(statistic.sqrt_ts)


def theta2_counts(observations, source, n_off=3, theta2_cut=0.04, theta2_max=0.5):
    """
    Theta^2 distributions around the source and its reflected positions.

    Parameters
    ----------
    observations : gammapy.data.Observations
    source : astropy.coordinates.SkyCoord
    n_off : int
        OFF positions per run.
    theta2_cut, theta2_max : float
        Signal cut and histogram range (deg^2).

    Returns
    -------
    Theta2Counts
    """
    edges = np.linspace(0, theta2_max, 51)
    on, off = np.zeros(len(edges) - 1), np.zeros(len(edges) - 1)
    n_on = n_off_total = 0
    for observation in observations:
        events = observation.events.radec
        pointing = observation.get_pointing_icrs(observation.tmid)
        theta2 = events.separation(source).deg ** 2
        on += np.histogram(theta2, edges)[0]
        n_on += int(np.count_nonzero(theta2 < theta2_cut))
        for position in reflected_positions(source, pointing, n_off):
            theta2 = events.separation(position).deg ** 2
            off += np.histogram(theta2, edges)[0]
            n_off_total += int(np.count_nonzero(theta2 < theta2_cut))
    return Theta2Counts(
        edges=edges,
        on=on,
        off=off,
        alpha=1.0 / n_off,
        theta2_cut=theta2_cut,
        n_on=n_on,
        n_off=n_off_total,
    )


@dataclass
class SpectrumResult:
    """A power-law fit of a stacked ON/OFF spectrum."""

    index: float
    index_error: float
    #: differential flux at the reference energy, cm-2 s-1 TeV-1
    amplitude: float
    amplitude_error: float
    reference: u.Quantity
    #: energy range of the fit (safe range of the stacked dataset)
    energy_range: u.Quantity
    excess: float
    significance: float
    dataset: object
    flux_points: object
    model: object


def spectrum_analysis(
    observations,
    source,
    on_radius=0.2 * u.deg,
    point_like=False,
    n_off=3,
    energy_edges=None,
    reference=1 * u.TeV,
):
    """
    Reflected-region 1D spectral analysis and power-law fit.

    Parameters
    ----------
    observations : gammapy.data.Observations
    source : astropy.coordinates.SkyCoord
    on_radius : astropy.units.Quantity
        ON region radius for full-enclosure IRFs.
    point_like : bool
        The observations have point-like IRFs: the ON region is the source
        point with the IRFs' RAD_MAX, no containment correction.
    n_off : int
        Number of OFF regions per run.
    energy_edges : astropy.units.Quantity
        Reconstructed-energy edges; 0.1-100 TeV, 5 bins per decade by default.
    reference : astropy.units.Quantity
        Reference energy of the power law.

    Returns
    -------
    SpectrumResult

    Raises
    ------
    ValueError
        If no run gives an OFF region (ON and OFF regions overlap).
    """
    if energy_edges is None:
        energy_edges = np.geomspace(0.1, 100, 16) * u.TeV
    energy = MapAxis.from_edges(energy_edges, name="energy", interp="log")
    energy_true = MapAxis.from_energy_bounds(0.1, 300, 30, unit="TeV", name="energy_true")
    region = PointSkyRegion(source) if point_like else CircleSkyRegion(source, on_radius)
    geom = RegionGeom.create(region=region, axes=[energy])
    empty = SpectrumDataset.create(geom=geom, energy_axis_true=energy_true)
    maker = SpectrumDatasetMaker(
        selection=["counts", "exposure", "edisp"],
        containment_correction=not point_like,
        use_region_center=True,
    )
    background = ReflectedRegionsBackgroundMaker(
        region_finder=WobbleRegionsFinder(n_off_regions=n_off)
    )
    safe = SafeMaskMaker(methods=["aeff-max"], aeff_percent=10)
    datasets = Datasets()
    for observation in observations:
        dataset = maker.run(empty.copy(name=str(observation.obs_id)), observation)
        dataset = background.run(dataset, observation)
        if dataset.counts_off is None:
            # gammapy finds no OFF region where they would overlap the ON (zero
            # OFF counts in a found region are a measurement, and kept)
            continue
        datasets.append(safe.run(dataset, observation))
    if len(datasets) == 0:
        raise ValueError(
            f"no run with an OFF region ({n_off} reflected regions of "
            f"{'RAD_MAX' if point_like else on_radius}) overlap the ON region"
        )
    stacked = datasets.stack_reduce(name="stacked")
    model = SkyModel(
        spectral_model=PowerLawSpectralModel(
            index=2, amplitude=1e-10 * u.Unit("cm-2 s-1 TeV-1"), reference=reference
        ),
        name="source",
    )
    stacked.models = [model]
    fit = Fit()
    result = fit.run(datasets=[stacked])
    if not result.success:
        raise ValueError(f"the power-law fit failed: {result.message}")
    spectral = model.spectral_model
    mask = stacked.mask_safe.data.ravel()
    edges = energy.edges
    low, high = edges[:-1][mask].min(), edges[1:][mask].max()
    points = FluxPointsEstimator(
        energy_edges=edges[(edges >= low) & (edges <= high)], source="source"
    ).run(datasets=[stacked])
    info = stacked.info_dict()
    return SpectrumResult(
        index=float(spectral.index.value),
        index_error=float(spectral.index.error),
        amplitude=float(spectral.amplitude.quantity.to_value("cm-2 s-1 TeV-1")),
        amplitude_error=float(
            (spectral.amplitude.error * spectral.amplitude.unit).to_value(
                "cm-2 s-1 TeV-1"
            )
        ),
        reference=reference,
        energy_range=u.Quantity([low, high]),
        excess=float(info["excess"]),
        significance=float(info["sqrt_ts"]),
        dataset=stacked,
        flux_points=points,
        model=model,
    )
