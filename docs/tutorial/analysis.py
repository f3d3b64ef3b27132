"""
The tutorial's gammapy analysis of its DL3 (``python analysis.py DL3_DIR``).

What an astronomer runs first on new DL3: the data store checks, a theta^2
plot with the Li & Ma significance, and a reflected-region spectrum fitted with
a power law, compared with what the toy simulation injected.
"""

import sys

import astropy.units as u
from astropy.coordinates import SkyCoord
from gammapy.data import DataStore

from ctapipe_sst1m.dl3.analysis import (
    datastore_problems,
    spectrum_analysis,
    theta2_counts,
)
from ctapipe_sst1m.io.toy import SPECTRAL_INDEX, injected_gamma_flux

#: the toy source of the tutorial's observed runs
SOURCE = SkyCoord(200.4987, 30.0422, unit="deg")


def main(dl3_dir):
    store = DataStore.from_dir(dl3_dir)
    print(store.obs_table["OBS_ID", "TSTART", "ONTIME", "ALT_PNT", "AZ_PNT", "N_TELS"])
    problems = datastore_problems(store)
    print("data store problems:", problems or "none")
    observations = store.get_observations()

    theta2 = theta2_counts(observations, SOURCE, n_off=1)
    print(
        f"theta2 < {theta2.theta2_cut} deg2: ON {theta2.n_on}, OFF {theta2.n_off}, "
        f"excess {theta2.excess:.0f}, Li & Ma {theta2.significance:.1f} sigma"
    )

    result = spectrum_analysis(observations, SOURCE, n_off=1)
    injected = injected_gamma_flux(result.reference).to_value("cm-2 s-1 TeV-1")
    low, high = result.energy_range.to_value(u.TeV)
    print(
        f"power law {low:.2f}-{high:.0f} TeV: index {result.index:.2f} +- "
        f"{result.index_error:.2f} (injected {-SPECTRAL_INDEX:.1f}), flux at "
        f"{result.reference} {result.amplitude:.3g} +- {result.amplitude_error:.2g} "
        f"cm-2 s-1 TeV-1 = {result.amplitude / injected:.2f} +- "
        f"{result.amplitude_error / injected:.2f} x injected"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
