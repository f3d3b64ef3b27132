"""ctapipe-sst1m-dl3: observed-like toy runs to GADF DL3, read by gammapy."""

import shutil

import astropy.units as u
import numpy as np
import pytest
import tables
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table
from ctapipe.core import run_tool
from ctapipe.io import TableLoader
from gammapy.data import DataStore
from gammapy.datasets import SpectrumDataset
from gammapy.makers import SpectrumDatasetMaker
from gammapy.maps import MapAxis, RegionGeom
from regions import CircleSkyRegion

from ctapipe_sst1m.tools.dl3 import DL3Tool

from .conftest import TARGET, WOBBLE

#: runs ctapipe tools on real or toy files (seconds to minutes each)
pytestmark = pytest.mark.slow


def dl3(tmp_path, inputs, irf, cuts, *extra, output_dir="dl3"):
    """Run the tool; return the exit code, output directory and CRITICAL lines."""
    output_dir = tmp_path / output_dir
    log_file = tmp_path / f"{output_dir.name}.log"
    argv = [*map(str, inputs), f"--irf={irf}", f"--cuts={cuts}"]
    argv += [f"--output-dir={output_dir}", f"--log-file={log_file}", *extra]
    code = run_tool(DL3Tool(), argv=argv, cwd=tmp_path, raises=False)
    critical = [line for line in log_file.read_text().splitlines() if "CRITICAL" in line]
    return code, output_dir, "\n".join(critical)


@pytest.fixture(scope="module")
def datastore(tmp_path_factory, observed_dl2, chain):
    tmp = tmp_path_factory.mktemp("dl3")
    code, output_dir, _ = dl3(tmp, observed_dl2.values(), chain["irf"], chain["cuts"])
    assert code == 0
    return DataStore.from_dir(output_dir)


def test_gammapy_reads_observations(datastore, observed_dl2):
    assert sorted(datastore.obs_table["OBS_ID"]) == sorted(observed_dl2)
    target = SkyCoord(*TARGET, unit="deg")
    for obs_id in observed_dl2:
        observation = datastore.obs(obs_id)
        events = observation.events
        assert len(events.table) > 50
        # the reconstructed directions point back to the toy's source
        assert np.median(events.radec.separation(target).deg) < 0.3
        assert observation.aeff is not None
        assert observation.edisp is not None
        assert observation.psf is not None
        # wobble runs: the pointing 0.4 deg from the source
        offset = observation.pointing.fixed_icrs.separation(target)
        assert offset.deg == pytest.approx(WOBBLE, abs=1e-3)


def test_event_times_are_the_trigger_times(datastore, observed_dl2):
    """TIME + MJDREF (TAI) give back the ns trigger times: no 37 s, no rounding."""
    for obs_id, path in observed_dl2.items():
        events = datastore.obs(obs_id).events.table
        with TableLoader(path) as loader:
            triggers = loader.read_subarray_events()
        by_id = dict(zip(triggers["event_id"], range(len(triggers)), strict=True))
        rows = [by_id[i] for i in events["EVENT_ID"]]
        reference = datastore.obs(obs_id).events.time
        difference = (reference - triggers["time"][rows]).to_value(u.ns)
        assert np.max(np.abs(difference)) < 1
        gti = datastore.obs(obs_id).gti
        assert gti.time_start[0] <= reference.min()
        assert gti.time_stop[0] >= reference.max()


def test_dataset_exposure_is_aeff_times_livetime(datastore, observed_dl2):
    observation = datastore.obs(next(iter(observed_dl2)))
    target = SkyCoord(*TARGET, unit="deg")
    energy = MapAxis.from_energy_bounds(0.5, 50, 6, unit="TeV")
    energy_true = MapAxis.from_energy_bounds(0.3, 100, 10, unit="TeV", name="energy_true")
    geom = RegionGeom.create(region=CircleSkyRegion(target, 0.3 * u.deg), axes=[energy])
    empty = SpectrumDataset.create(geom=geom, energy_axis_true=energy_true)
    maker = SpectrumDatasetMaker(
        selection=["counts", "exposure", "edisp"], containment_correction=False
    )
    dataset = maker.run(empty, observation)
    assert dataset.counts.data.sum() > 20
    offset = observation.pointing.fixed_icrs.separation(target)
    aeff = observation.aeff.evaluate(energy_true=energy_true.center, offset=offset)
    expected = (aeff * observation.observation_live_time_duration).to_value(u.m**2 * u.s)
    assert np.all(expected > 0)
    np.testing.assert_allclose(
        dataset.exposure.quantity.to_value(u.m**2 * u.s).ravel(), expected, rtol=1e-6
    )


def _with_pointing_mode(source, destination, mode):
    shutil.copy(source, destination)
    with tables.open_file(destination, mode="a") as h5file:
        node = h5file.root.configuration.observation.scheduling_block
        node.modify_column(colname="pointing_mode", column=[mode])
    return destination


def test_bad_inputs(tmp_path, observed_dl1, observed_dl2, chain, toy_dl2):
    first, second = observed_dl2.values()
    cases = {}
    cases["no gammaness"] = (
        [observed_dl1[next(iter(observed_dl1))]],
        chain["irf"],
        chain["cuts"],
        "DL2 without",
    )
    mono_cuts = tmp_path / "mono_cuts.fits"
    with fits.open(chain["cuts"]) as hdus:
        table = Table.read(hdus["QUALITY_CUTS_EXPR"])
        table["cut_expr"] = [
            e.replace("HillasReconstructor", "disp") for e in table["cut_expr"]
        ]
        hdus["QUALITY_CUTS_EXPR"] = fits.table_to_hdu(table)
        hdus["QUALITY_CUTS_EXPR"].name = "QUALITY_CUTS_EXPR"
        hdus.writeto(mono_cuts)
    cases["cuts of another mode"] = ([first], chain["irf"], mono_cuts, "another mode")
    cases["not an IRF file"] = (
        [first],
        chain["cuts"],
        chain["cuts"],
        "expected GADF IRFs",
    )
    drifting = _with_pointing_mode(second, tmp_path / "drift.dl2.h5", 1)
    cases["different pointing modes"] = (
        [first, drifting],
        chain["irf"],
        chain["cuts"],
        "different pointing modes",
    )
    cases["simulation"] = (
        [chain["dl2"]["gamma_test"]],
        chain["irf"],
        chain["cuts"],
        "simulated events",
    )
    for i, (name, (inputs, irf, cuts, message)) in enumerate(cases.items()):
        code, output_dir, critical = dl3(tmp_path, inputs, irf, cuts, output_dir=f"o{i}")
        assert code == 1, name
        assert message in critical, (name, critical)
        assert not output_dir.exists() or not any(output_dir.iterdir()), name


def test_stock_irf_accepted_with_a_warning(tmp_path, observed_dl2, chain):
    """Stock ctapipe-compute-irf IRFs record no telescopes: used, with a warning."""
    stock = tmp_path / "stock_irf.fits.gz"
    with fits.open(chain["irf"]) as hdus:
        recorded = ("TELLIST", "ENERGREC", "GEOMREC", "GHCLASS", "SSTPROD", "SSTCOMPL")
        for key in (*recorded, "ALT_PNT", "AZ_PNT", "ZEN_PNT", "NSBNODE", "FOVMAX"):
            del hdus[0].header[key]
        # ctapipe-compute-irf writes no checksums
        for hdu in hdus:
            for key in ("CHECKSUM", "DATASUM"):
                hdu.header.remove(key, ignore_missing=True)
        hdus.writeto(stock)
    first = next(iter(observed_dl2.values()))
    code, output_dir, _ = dl3(tmp_path, [first], stock, chain["cuts"])
    assert code == 0
    log = (tmp_path / f"{output_dir.name}.log").read_text()
    assert "cannot be checked" in log
    assert "no completeness mark or checksums" in log
    # no node: the pointing is not checked, the events are cut at the IRFs' offsets
    assert "the runs' pointing cannot be checked" in log
    with fits.open(output_dir / f"SST1M_obs_{first.name.split('.')[0]}.dl3.fits.gz") as h:
        assert h["EVENTS"].header["FOVMAX"] == 1.0
        assert "IRF_ALT" not in h["EVENTS"].header
    assert (output_dir / "hdu-index.fits.gz").exists()
