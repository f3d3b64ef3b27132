"""The toy simulation at other pointings (IRF nodes), and the default unchanged."""

import tracemalloc

import astropy.units as u
import pytest
from astropy.coordinates import AltAz, SkyCoord

from ctapipe_sst1m.io.toy import ToySST1MEventSource, write_toy_config


def _source(tmp_path, **kwargs):
    path = write_toy_config(tmp_path / "gamma.sst1mtoy", "gamma", 200, 1, **kwargs)
    return ToySST1MEventSource(path)


@pytest.mark.parametrize(
    "pointing, expected", [(None, (70.0, 180.0)), ((60.0, 170.0), (60.0, 170.0))]
)
def test_simulated_pointing(tmp_path, pointing, expected):
    source = _source(tmp_path, pointing=pointing, ring=0.4)
    (config,) = source.simulation_config.values()
    for name, value in zip(("alt", "az"), expected, strict=True):
        for bound in ("min", "max"):
            assert u.Quantity(config[f"{bound}_{name}"]).to_value(u.deg) == (
                pytest.approx(value)
            )
    (block,) = source.observation_blocks.values()
    assert block.subarray_pointing_lat.to_value(u.deg) == pytest.approx(expected[0])
    assert block.subarray_pointing_lon.to_value(u.deg) == pytest.approx(expected[1])
    events = list(source)
    assert events
    for event in events:
        pointing_alt = event.monitoring.pointing.array_altitude.to_value(u.deg)
        assert pointing_alt == pytest.approx(expected[0])
        # the ring's gammas come from 0.4 deg around the pointing
        shower = event.simulation.shower
        direction = SkyCoord(alt=shower.alt, az=shower.az, frame=AltAz())
        center = SkyCoord(alt=expected[0] * u.deg, az=expected[1] * u.deg, frame=AltAz())
        assert direction.separation(center).to_value(u.deg) == pytest.approx(0.4)


def test_default_file_has_no_pointing_key(tmp_path):
    """Files written before the option read as before: alt 70, az 180."""
    path = write_toy_config(tmp_path / "gamma.sst1mtoy", "gamma", 10, 1)
    assert "pointing" not in path.read_text()


def test_showers_drawn_in_linear_memory(tmp_path):
    """20000 showers: a few MB (a matrix product's diagonal took 3.2 GB)."""
    path = write_toy_config(tmp_path / "gamma.sst1mtoy", "gamma", 20000, 1)
    tracemalloc.start()
    try:
        ToySST1MEventSource(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 200e6
