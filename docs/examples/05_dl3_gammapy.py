"""
The DL3 of the tutorial in gammapy
==================================

The end of the chain: ``ctapipe-sst1m-dl3`` writes one GADF file per run (the
selected gamma-like events and the IRFs) and the index tables of gammapy's
``DataStore``, and from there an astronomer works in gammapy as for any other
telescope. These are the two observed-like runs of the :doc:`tutorial
<../tutorial>`: the toy simulation of the two SST-1M telescopes tracking a
gamma-ray source from Ondřejov in wobble mode, 0.4 deg north and 0.4 deg south
of it, 3 minutes each, with protons as background.

What to look for: the events pile up at the source, not at the pointings;
the background (protons that passed the gammaness cut) depends on the
distance from the pointing, which is why the OFF region is the source's
reflection about the pointing (same distance, no source); and the spectrum,
corrected with the IRFs, gives back the flux the toy injected.
"""

import astropy.units as u
import matplotlib.pyplot as plt
import numpy as np
from astropy.coordinates import SkyCoord
from gammapy.data import DataStore
from gammapy.maps import WcsNDMap
from gammapy.modeling.models import PowerLawSpectralModel
from tutorial_outputs import tutorial_outputs

from ctapipe_sst1m.dl3.analysis import (
    datastore_problems,
    spectrum_analysis,
    theta2_counts,
)
from ctapipe_sst1m.io.toy import SPECTRAL_INDEX, injected_gamma_flux

#: the toy source of the tutorial's observed runs (docs/tutorial/tutorial.sh)
SOURCE = SkyCoord(200.4987, 30.0422, unit="deg")

# %%
# The data store
# --------------
#
# The observation table has one row per run, with the pointing (the wobble
# position tracked) and the live time; gammapy's own checks find nothing
# wrong.

store = DataStore.from_dir(tutorial_outputs() / "dl3")
table = store.obs_table["OBS_ID", "RA_PNT", "DEC_PNT", "ALT_PNT", "AZ_PNT", "ONTIME"]
for name in table.colnames[1:]:
    table[name].info.format = ".2f"
print(table)
print("data store problems:", datastore_problems(store) or "none")
observations = store.get_observations()
for observation in observations:
    pointing = observation.get_pointing_icrs(observation.tmid)
    print(
        f"run {observation.obs_id}: {len(observation.events.table)} events, "
        f"pointing {pointing.separation(SOURCE).to(u.deg):.2f} from the source"
    )

# %%
# Counts map and theta²
# ---------------------
#
# The events of both runs in a 3 x 3 deg map around the source, with the two
# pointing positions; and the distribution of the squared angular distance
# from the source (ON) and from its reflection about each run's pointing (OFF),
# whose difference within the cut is the excess.

counts = WcsNDMap.create(skydir=SOURCE, width=3 * u.deg, binsz=0.05 * u.deg, frame="icrs")
for observation in observations:
    counts.fill_events(observation.events)
theta2 = theta2_counts(observations, SOURCE, n_off=1)

fig = plt.figure(figsize=(13, 5), layout="constrained")
ax = fig.add_subplot(1, 2, 1, projection=counts.geom.wcs)
counts.plot(ax=ax, add_cbar=True, cmap="viridis", stretch="sqrt")
ax.scatter(
    SOURCE.ra.deg,
    SOURCE.dec.deg,
    transform=ax.get_transform("icrs"),
    marker="*",
    s=150,
    facecolor="none",
    edgecolor="white",
    label="source",
)
for observation in observations:
    pointing = observation.get_pointing_icrs(observation.tmid)
    ax.scatter(
        pointing.ra.deg,
        pointing.dec.deg,
        transform=ax.get_transform("icrs"),
        marker="+",
        s=150,
        color="red",
    )
ax.set_title("counts (+: pointings)")

ax = fig.add_subplot(1, 2, 2)
centers = 0.5 * (theta2.edges[1:] + theta2.edges[:-1])
width = np.diff(theta2.edges)
ax.bar(centers, theta2.on, width=width, alpha=0.5, label="ON")
ax.errorbar(
    centers,
    theta2.alpha * theta2.off,
    yerr=theta2.alpha * np.sqrt(theta2.off),
    fmt="o",
    color="black",
    label="OFF x alpha",
)
ax.axvline(theta2.theta2_cut, color="grey", linestyle=":")
ax.set(
    xlabel="θ² (deg²)",
    ylabel="events",
    title=f"excess {theta2.excess:.0f}, Li & Ma {theta2.significance:.1f} sigma",
)
ax.legend()
print(
    f"theta2 < {theta2.theta2_cut} deg2: ON {theta2.n_on}, OFF {theta2.n_off}, "
    f"excess {theta2.excess:.0f}, Li & Ma {theta2.significance:.1f} sigma"
)

# %%
# The spectrum
# ------------
#
# A reflected-region spectrum of both runs stacked, fitted with a power law
# (WStat), and flux points, against what the toy injected (index 2, its flux
# from the simulated shower rate): the full-enclosure IRFs bring the counts
# back to a flux.

result = spectrum_analysis(observations, SOURCE, n_off=1)
injected = injected_gamma_flux(result.reference).to_value("cm-2 s-1 TeV-1")
print(f"index {result.index:.2f} +- {result.index_error:.2f}, injected {-SPECTRAL_INDEX}")
print(
    f"flux at {result.reference}: {result.amplitude / injected:.2f} +- "
    f"{result.amplitude_error / injected:.2f} x injected"
)

# E^2 dN/dE of the fit, its error band, the injected power law and the flux
# points of the energy bins with a significant excess (sqrt(TS) >= 2; the
# highest bins of these 6 minutes have no event)
unit = u.Unit("TeV cm-2 s-1")
energy = np.geomspace(*result.energy_range.to_value(u.TeV), 50) * u.TeV
fitted, low, high = result.model.spectral_model.evaluate_error(energy)
injected_model = PowerLawSpectralModel(
    index=-SPECTRAL_INDEX, amplitude=injected_gamma_flux(1 * u.TeV), reference=1 * u.TeV
)
points = result.flux_points.to_table(sed_type="e2dnde", format="gadf-sed")
points = points[points["sqrt_ts"] >= 2]

fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
ax.plot(energy, (energy**2 * fitted).to(unit), label="power-law fit")
ax.fill_between(
    energy.value,
    (energy**2 * (fitted - low)).to_value(unit),
    (energy**2 * (fitted + high)).to_value(unit),
    alpha=0.3,
)
ax.plot(energy, (energy**2 * injected_model(energy)).to(unit), "k--", label="injected")
ax.errorbar(
    points["e_ref"].quantity.to_value(u.TeV),
    points["e2dnde"].quantity.to_value(unit),
    yerr=points["e2dnde_err"].quantity.to_value(unit),
    xerr=[
        (points["e_ref"] - points["e_min"]).quantity.to_value(u.TeV),
        (points["e_max"] - points["e_ref"]).quantity.to_value(u.TeV),
    ],
    fmt="o",
    label="flux points",
)
ax.set(
    xscale="log", yscale="log", xlabel="energy (TeV)", ylabel="E² dN/dE (TeV cm⁻² s⁻¹)"
)
ax.legend()
plt.show()
