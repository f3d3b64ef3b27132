"""The benchmarks' shower run: a raw file the source reads as real data, with showers."""

import importlib.util
import sys
import warnings
from importlib.resources import files

import numpy as np
import pytest
import yaml
from astropy.io import fits
from ctapipe.calib import CameraCalibrator
from ctapipe.containers import EventType
from traitlets.config import Config

from ctapipe_sst1m.io import SST1MEventSource

from .conftest import REPO

CONFIG = Config(
    yaml.safe_load((files("ctapipe_sst1m") / "resources/sst1m.yaml").read_text())
)


def _load_shower_run():
    """benchmarks/shower_run.py as a module (benchmarks/ is not a package)."""
    path = REPO / "benchmarks" / "shower_run.py"
    spec = importlib.util.spec_from_file_location("shower_run", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("shower_run", module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def shower_run(shared_data, tmp_path_factory):
    module = _load_shower_run()
    if not module.SIMTEL_FILE.is_file():
        pytest.skip(f"{module.SIMTEL_FILE} not found")
    directory = tmp_path_factory.mktemp("shower_run")
    return module.write_shower_run(directory / module.run_file_name(22), 10, seed=1)


def test_checksums_of_every_hdu_are_valid(shower_run):
    """The rewritten headers carry a CHECKSUM that matches, as the real files do."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with fits.open(
            shower_run.path, checksum=True, disable_image_compression=True
        ) as hdul:
            assert [hdu.name.upper() for hdu in hdul] == [
                "PRIMARY",
                "DIGICAMCONFIG",
                "EVENTS",
            ]
            for hdu in hdul:
                assert hdu.verify_checksum() == 1, hdu.name
                assert hdu.verify_datasum() == 1, hdu.name
            events = hdul["EVENTS"].header
            assert events["PBFHEAD"] == "DataModel.CameraEvent"
            assert events["ORIGIN"] == "CTA"
            assert events["NTRIGEXT"] == shower_run.n_pedestals


def test_source_reads_the_run_with_shower_pixels_far_above_the_noise(shower_run):
    """All events come back, of their types, and the injected showers are seen
    in the calibrated images at their true charge, far above the NSB."""
    with SST1MEventSource(shower_run.path, config=CONFIG) as source:
        assert list(source.subarray.tel) == [22]
        calibrator = CameraCalibrator(source.subarray, config=CONFIG)
        events = []
        for event in source:
            calibrator(event)
            # the run's name gives the obs_id, its TARGET header the pointing
            assert event.index.obs_id == 202401010001
            assert np.isfinite(event.monitoring.tel[22].pointing.altitude)
            events.append(
                (
                    event.index.event_id,
                    event.trigger.event_type,
                    event.dl1.tel[22].image.copy(),
                )
            )
    assert len(events) == shower_run.n_events == 10
    assert [e[0] for e in events] == list(range(1, 11))
    types = [e[1] for e in events]
    expected = [
        EventType.SKY_PEDESTAL if t & 0x8 else EventType.SUBARRAY
        for t in shower_run.event_types
    ]
    assert types == expected
    assert 1 <= types.count(EventType.SKY_PEDESTAL) < 5

    ratios, bright_charges, noise_charges = [], [], []
    for index, (_, event_type, image) in enumerate(events):
        true = shower_run.true_image(index)
        if event_type == EventType.SKY_PEDESTAL:
            assert true.sum() == 0
            noise_charges.append(image)
            continue
        bright = true >= 20
        noise_charges.append(image[true == 0])
        if bright.any():
            ratios.append(np.median(image[bright] / true[bright]))
            bright_charges.append(image[bright])
    noise = np.concatenate(noise_charges)
    bright = np.concatenate(bright_charges)
    assert len(bright) >= 10
    # the injection inverts the source's calibration: true charges come back
    assert 0.9 < np.median(ratios) < 1.1
    # every bright shower pixel stands above the NSB by far
    assert bright.min() > noise.mean() + 5 * noise.std()
