"""
The end product checked as an astronomer would: the toy chain's DL3 of two
wobble runs on a toy source (E^-2, known flux, protons as background), read
by gammapy and analysed the standard way, gives back the injected spectrum,
with full-enclosure and with point-like IRFs.

Set ``SST1M_VALIDATION_DIR`` to write the figures and numbers of the
documentation's Validation page there (``docs/validation``).
"""

import csv
import os
import shutil
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
import tables
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.time import Time
from ctapipe.core import run_tool
from ctapipe.io.hdf5dataformat import SIMULATION_RUN_TABLE
from gammapy.data import DataStore

from ctapipe_sst1m.dl3.analysis import (
    datastore_problems,
    spectrum_analysis,
    theta2_counts,
)
from ctapipe_sst1m.io.toy import SPECTRAL_INDEX, injected_gamma_flux
from ctapipe_sst1m.tools.compute_irf import SST1MIrfTool
from ctapipe_sst1m.tools.dl3 import DL3Tool

from .conftest import TARGET, WOBBLE, config

#: runs ctapipe tools on real or toy files (seconds to minutes each)
pytestmark = pytest.mark.slow

#: systematic budget of the flux at 1 TeV, on top of its statistical error:
#: the IRFs' own statistical error (40000 simulated gammas, about 3 %) and the
#: energy threshold region
FLUX_BUDGET = 0.10
#: and of the index
INDEX_BUDGET = 0.10
IRF_KINDS = {"full-enclosure": "irf", "point-like": "irf_point_like"}


def run_dl3(tmp_path, inputs, irf, cuts, name, *extra):
    """ctapipe-sst1m-dl3; return the exit code, output directory and log."""
    output_dir = tmp_path / name
    log_file = tmp_path / f"{name}.log"
    argv = [*map(str, inputs), f"--irf={irf}", f"--cuts={cuts}"]
    argv += [f"--output-dir={output_dir}", f"--log-file={log_file}", *extra]
    code = run_tool(DL3Tool(), argv=argv, cwd=tmp_path, raises=False)
    return code, output_dir, log_file.read_text()


@pytest.fixture(scope="module")
def stores(tmp_path_factory, observed_dl2, chain):
    """DL3 of the wobble runs with each kind of IRF, as gammapy DataStores."""
    tmp = tmp_path_factory.mktemp("validation")
    stores = {}
    for kind, key in IRF_KINDS.items():
        code, output_dir, log = run_dl3(
            tmp, observed_dl2.values(), chain[key], chain["cuts"], kind
        )
        assert code == 0, log
        stores[kind] = DataStore.from_dir(output_dir)
    return stores


@pytest.fixture(scope="module")
def results(stores):
    """The spectral fit of each kind."""
    source = SkyCoord(*TARGET, unit="deg")
    results = {}
    for kind, store in stores.items():
        observations = store.get_observations(required_irf=kind)
        results[kind] = spectrum_analysis(
            observations, source, point_like=kind == "point-like", n_off=1
        )
    return results


def test_irfs_are_what_they_say(chain):
    """Point-like IRFs with RAD_MAX; no NaN; the node and the cut recorded."""
    for kind, key in IRF_KINDS.items():
        with fits.open(chain[key]) as hdus:
            header = hdus[0].header
            assert (header["ALT_PNT"], header["AZ_PNT"]) == (70.0, 180.0)
            assert header["FOVMAX"] == 1.0
            names = [hdu.name for hdu in hdus]
            aeff = hdus["EFFECTIVE AREA"]
            assert aeff.header["HDUCLAS3"] == kind.upper()
            assert ("RAD_MAX" in names) == (kind == "point-like")
            assert not np.isnan(aeff.data["EFFAREA"]).any()
            assert 0.1 <= aeff.header["LO_THRES"] < 1 < 50 < aeff.header["HI_THRES"]
            if "BACKGROUND" in names:
                assert np.max(hdus["BACKGROUND"].data["BKG"]) > 0
            if "RAD_MAX" in names:
                assert np.all(np.isfinite(hdus["RAD_MAX"].data["THETA_HI"]))


def test_datastore_check_passes(stores):
    """gammapy's checks (but the one that crashes in gammapy 2.1) find nothing."""
    for kind, store in stores.items():
        assert datastore_problems(store) == [], kind


def test_headers(stores):
    for store in stores.values():
        for obs_id in store.obs_table["OBS_ID"]:
            observation = store.obs(obs_id)
            header = observation.events.table.meta
            assert header["TIMESYS"] == "TAI"
            # DATE-OBS in TAI too: the same instant as TSTART (not 37 s apart)
            date_obs = Time(header["DATE-OBS"], scale="tai")
            assert abs((date_obs - observation.tstart).to_value(u.us)) < 1
            assert header["FOVMAX"] == 1.0
            assert (header["IRF_ALT"], header["IRF_AZ"]) == (70.0, 180.0)
            # wobble runs: the pointing is 0.4 deg from the source
            source = SkyCoord(*TARGET, unit="deg")
            offset = observation.get_pointing_icrs(observation.tmid).separation(source)
            assert offset.deg == pytest.approx(WOBBLE, abs=1e-3)
            assert abs(header["AZ_PNT"] - 180) < 5
            offsets = observation.events.radec.separation(
                observation.get_pointing_icrs(observation.tmid)
            )
            assert offsets.max().deg < 1.0


def test_theta2_significance(stores):
    """A clear signal at the source, background from the protons in the OFF."""
    source = SkyCoord(*TARGET, unit="deg")
    observations = stores["full-enclosure"].get_observations()
    theta2 = theta2_counts(observations, source, n_off=1)
    assert theta2.n_off > 0
    assert theta2.significance > 20
    # the excess is in the first bins, the OFF distribution flat
    assert theta2.on[:4].sum() > 5 * theta2.off[:4].sum()
    _record_theta2(theta2)


@pytest.mark.parametrize("kind", list(IRF_KINDS))
def test_gammapy_recovers_the_injected_spectrum(results, kind):
    result = results[kind]
    injected = injected_gamma_flux(result.reference).to_value("cm-2 s-1 TeV-1")
    ratio = result.amplitude / injected
    ratio_error = result.amplitude_error / injected
    index_expected = -SPECTRAL_INDEX
    _record_result(kind, result, ratio, ratio_error)
    assert result.significance > 20
    assert abs(ratio - 1) < 2 * ratio_error + FLUX_BUDGET, (ratio, ratio_error)
    assert abs(result.index - index_expected) < 2 * result.index_error + INDEX_BUDGET


def test_run_at_another_azimuth_is_refused(tmp_path, off_node_dl2, chain):
    code, output_dir, log = run_dl3(
        tmp_path, [off_node_dl2], chain["irf"], chain["cuts"], "refused"
    )
    assert code == 1
    assert "in azimuth from the IRFs'" in log
    assert "DL3Tool.pointing_mismatch=warn" in log
    assert not output_dir.exists() or not any(output_dir.iterdir())

    code, output_dir, log = run_dl3(
        tmp_path,
        [off_node_dl2],
        chain["irf"],
        chain["cuts"],
        "warned",
        "--DL3Tool.pointing_mismatch=warn",
    )
    assert code == 0
    assert "IRFs used anyway: the flux is biased" in log
    assert len(list(output_dir.glob("SST1M_obs_*.dl3.fits.gz"))) == 1


# ------------------------------------------------- the documentation's figures


def _output_dir():
    path = os.environ.get("SST1M_VALIDATION_DIR")
    if not path:
        return None
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _record_theta2(theta2):
    if (output := _output_dir()) is None:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    centers = 0.5 * (theta2.edges[1:] + theta2.edges[:-1])
    width = np.diff(theta2.edges)
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    ax.errorbar(centers, theta2.on, np.sqrt(theta2.on), fmt="o", ms=3, label="ON")
    ax.bar(
        centers,
        theta2.alpha * theta2.off,
        width=width,
        alpha=0.4,
        color="C1",
        label="OFF (reflected)",
    )
    ax.axvline(theta2.theta2_cut, color="k", ls="--", lw=1)
    ax.set_xlabel(r"$\theta^2$ (deg$^2$)")
    ax.set_ylabel("events")
    ax.set_title(
        f"toy source, two wobble runs: excess {theta2.excess:.0f}, "
        rf"{theta2.significance:.1f} $\sigma$ (Li & Ma)"
    )
    ax.legend()
    fig.savefig(output / "theta2.png", dpi=100)
    plt.close(fig)


def _record_result(kind, result, ratio, ratio_error):
    if (output := _output_dir()) is None:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from gammapy.modeling.models import PowerLawSpectralModel

    table = output / "validation.csv"
    rows = []
    if table.exists():
        with table.open() as f:
            rows = [r for r in csv.DictReader(f) if r["IRFs"] != kind]
    rows.append(
        {
            "IRFs": kind,
            "index": f"{result.index:.3f} ± {result.index_error:.3f}",
            "flux at 1 TeV / injected": f"{ratio:.3f} ± {ratio_error:.3f}",
            "excess": f"{result.excess:.0f}",
            "significance": f"{result.significance:.1f}",
            "fit range (TeV)": (
                f"{result.energy_range[0].to_value(u.TeV):.2g} - "
                f"{result.energy_range[1].to_value(u.TeV):.2g}"
            ),
        }
    )
    rows.sort(key=lambda r: r["IRFs"])
    with table.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    true = PowerLawSpectralModel(
        index=-SPECTRAL_INDEX, amplitude=injected_gamma_flux(), reference=1 * u.TeV
    )
    energy_bounds = result.energy_range
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    sed = "e2dnde"
    true.plot(energy_bounds, ax=ax, sed_type=sed, color="k", ls="--", label="injected")
    result.model.spectral_model.plot(
        energy_bounds, ax=ax, sed_type=sed, color="C0", label="fit"
    )
    result.model.spectral_model.plot_error(
        energy_bounds, ax=ax, sed_type=sed, facecolor="C0"
    )
    result.flux_points.plot(ax=ax, sed_type=sed, color="C0", label="flux points")
    # E^2 dN/dE of the injected E^-2 is flat: show a decade around it
    level = (injected_gamma_flux() * u.TeV**2).to_value("erg cm-2 s-1")
    ax.set_ylim(level / 5, level * 5)
    ax.set_title(f"{kind} IRFs: index {result.index:.2f}, flux ratio {ratio:.2f}")
    ax.legend()
    fig.savefig(output / f"spectrum_{kind}.png", dpi=100)
    plt.close(fig)


def _with_simulated_azimuth(source, destination, azimuth_deg):
    shutil.copy(source, destination)
    with tables.open_file(destination, mode="a") as h5file:
        node = h5file.get_node(SIMULATION_RUN_TABLE)
        n_rows = node.nrows
        for column in ("min_az", "max_az"):
            node.modify_column(
                colname=column, column=np.full(n_rows, np.radians(azimuth_deg))
            )
    return destination


def test_irf_tool_refuses_what_would_bias_the_flux(tmp_path, chain, capsys):
    """A PSF shorter than the field-of-view cut; protons of another pointing."""
    dl2 = chain["dl2"]
    protons_east = _with_simulated_azimuth(
        dl2["proton_test"], tmp_path / "protons_east.dl2.h5", 90.0
    )
    cases = {
        "short PSF": (
            ["--PSF3DMaker.source_offset_max=0.5 deg"],
            dl2["proton_test"],
            "PSF3DMaker.source_offset_max 0.5 deg is below the field-of-view cut",
        ),
        "protons elsewhere": ([], protons_east, "use simulations of one pointing node"),
    }
    for i, (name, (extra, protons, message)) in enumerate(cases.items()):
        output = tmp_path / f"irf{i}.fits.gz"
        argv = [
            config("sst1m_irf.yaml"),
            config("sst1m_irf_point_source.yaml"),
            f"--cuts={chain['cuts']}",
            f"--gamma-file={dl2['gamma_test']}",
            f"--proton-file={protons}",
            f"--output={output}",
            *extra,
        ]
        code = run_tool(SST1MIrfTool(), argv=argv, cwd=tmp_path, raises=False)
        assert code == 2, name
        assert not output.exists(), name
        assert message in capsys.readouterr().err, name
