"""
The instrument response of the toy chain
========================================

To turn counts into a flux, an analysis needs the instrument response
functions (IRFs): how much area the telescopes collect for gamma rays of each
energy after the cuts (effective area), how the reconstructed energy scatters
around the true one (energy dispersion), how the reconstructed directions
scatter around the true one (point-spread function) and how many protons are
left that look like gamma rays (background rate).

These are the IRFs of the :doc:`tutorial <../tutorial>`: ``ctapipe-sst1m-compute-irf``
on the toy simulation of the two SST-1M telescopes, after the energy
regression, the gamma/hadron classification and the gammaness cuts, for gammas
from a ring 0.4 deg around the pointing (the wobble offset of the observed
runs). The toy's numbers are not SST-1M's; the way to read them is the same.
The first build of the docs runs the tutorial (a few minutes); later builds
reuse its outputs while its files do not change.
"""

import astropy.units as u
import matplotlib.pyplot as plt
import numpy as np
from astropy.io import fits
from astropy.table import Table
from gammapy.irf import EffectiveAreaTable2D, load_irf_dict_from_file
from tutorial_outputs import tutorial_outputs

workdir = tutorial_outputs()
irf_file = workdir / "irf/full_enclosure.fits.gz"
benchmark_file = workdir / "irf/benchmarks.fits.gz"

# %%
# The file
# --------
#
# One GADF file, which gammapy reads as it is: the gammas' effective area,
# energy dispersion, PSF and the background, plus the protons' effective area.
# The IRFs are for one offset bin (the simulated gammas are at one offset).

with fits.open(irf_file) as hdus:
    print([hdu.name for hdu in hdus[1:]])
    header = hdus["EFFECTIVE AREA"].header
irfs = load_irf_dict_from_file(irf_file)
aeff, edisp, psf, background = (irfs[k] for k in ("aeff", "edisp", "psf", "bkg"))
proton_aeff = EffectiveAreaTable2D.read(irf_file, hdu="EFFECTIVE AREA PROTONS")
offset = aeff.axes["offset"].center[0]
print(
    f"offset {offset}, effective area above 0 from {header['LO_THRES']:.2f} "
    f"to {header['HI_THRES']:.0f} TeV"
)

# %%
# Effective area and energy dispersion
# ------------------------------------
#
# The gamma effective area rises from the trigger threshold of the two small
# telescopes (a few hundred GeV) with energy: brighter showers trigger and
# survive the cuts from farther away. The protons' is well below: the
# classifier rejects most of them, but not the fifth of the toy's protons made
# gamma-like on purpose, so that a background is left to subtract. The
# migration (reconstructed over true energy) is centred on 1 where the energy
# estimate is unbiased; near the threshold only upward fluctuations trigger,
# and the energy is overestimated.


def positive(values):
    """Empty bins as gaps in a logarithmic plot."""
    return np.where(values > 0, values, np.nan)


energy_true = aeff.axes["energy_true"].center
fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), layout="constrained")
gamma_area = aeff.evaluate(energy_true=energy_true, offset=offset).to_value(u.m**2)
proton_area = proton_aeff.evaluate(energy_true=energy_true, offset=offset).to_value(
    u.m**2
)
axes[0].plot(energy_true, positive(gamma_area), "o-", label="gammas")
axes[0].plot(energy_true, positive(proton_area), "o-", label="protons")
axes[0].set(
    xscale="log",
    yscale="log",
    xlabel="true energy (TeV)",
    ylabel="effective area after cuts (m²)",
)
axes[0].legend()
edisp.plot_bias(ax=axes[1], offset=offset)
axes[1].set(title="energy migration", ylim=(0, 3))
for ax in axes:
    ax.set_xlim(0.1, 100)

# %%
# Resolution and background
# -------------------------
#
# The benchmark file of the same run gives the energy resolution and bias and
# the 68 % containment radius of the reconstructed direction per energy bin;
# the tutorial's few thousand test gammas leave some bins nearly empty.
# The background rate is what an ON region of one square degree collects per
# second and per energy: what a source has to beat.


def benchmark(hdu):
    """The one row (one offset bin) of a benchmark table, NaN where empty."""
    table = Table.read(benchmark_file, hdu=hdu)
    return {
        name: np.ma.filled(table[name][0].astype(float), np.nan)
        for name in table.colnames
    }


bias = benchmark("ENERGY BIAS RESOLUTION")  # energies in TeV
angular = benchmark("ANGULAR RESOLUTION")  # radii in deg
energy_bins = np.sqrt(bias["ENERG_LO"] * bias["ENERG_HI"])
filled = bias["N_EVENTS"][0] >= 10
print(f"{bias['N_EVENTS'].sum():.0f} gammas after the cuts, {filled.sum()} bins of >= 10")
print(
    f"medians: energy resolution {np.median(bias['RESOLUTION'][0][filled]):.2f}, "
    f"bias {np.median(bias['BIAS'][0][filled]):.2f}, 68 % containment "
    f"{np.median(angular['ANGULAR_RESOLUTION_68'][0][filled]):.2f} deg"
)

fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), layout="constrained")
axes[0].plot(energy_bins, bias["RESOLUTION"][0], "o-", label="resolution")
axes[0].plot(energy_bins, bias["BIAS"][0], "o-", label="bias")
axes[0].axhline(0, color="grey", lw=0.5)
axes[0].set(xscale="log", xlabel="true energy (TeV)", title="energy")
axes[0].legend()
containment = psf.containment_radius(0.68, energy_true=energy_true, offset=offset)
# the PSF is defined where there are gammas
containment = np.where(gamma_area > 0, containment.to_value(u.deg), np.nan)
axes[1].plot(energy_true, containment, label="PSF of the IRFs")
axes[1].plot(energy_bins, angular["ANGULAR_RESOLUTION_68"][0], "o", label="benchmark")
axes[1].set(
    xscale="log",
    xlabel="true energy (TeV)",
    ylabel="68 % containment radius (deg)",
    title="direction",
)
axes[1].legend()
energy = background.axes["energy"].center
rate = background.evaluate(energy=energy, offset=offset)
axes[2].plot(energy, positive(rate.to_value("s-1 TeV-1 deg-2")), "o-")
axes[2].set(
    xscale="log",
    yscale="log",
    xlabel="reconstructed energy (TeV)",
    ylabel="s⁻¹ TeV⁻¹ deg⁻²",
    title="background rate",
)
for ax in axes:
    ax.set_xlim(0.1, 100)
plt.show()
