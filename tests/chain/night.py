"""
A test night of both telescopes from the real DigiCam files, and a model
library from the toy chain, for ctapipe-sst1m-nightly.

The raw files are copies of the real 2018-08-23 file (tel 22, 32 events) under
the site's layout and run names of both telescopes, with a ``TARGET`` header
naming a test source (its position comes from a test catalogue) and the header
times of each run moved so that run N of SST1M-1 overlaps run N of SST1M-2
only. The test source is where the toy simulations point (alt 70 deg, az 180
deg) at the time of the file's events, so the library's node fits the runs.
"""

import shutil
from pathlib import Path

import astropy.units as u
from astropy.coordinates import AltAz, SkyCoord
from astropy.table import Table
from astropy.time import Time

from ctapipe_sst1m.instrument.subarray import load_sst1m_subarray

from ..helpers import add_events_header_card, corrupted_copy

NIGHT = "20180822"
#: the events of the real file are at 2018-08-23T00:00:02 - 00:00:45 UTC
EVENT_TIME = Time("2018-08-23T00:00:20", scale="utc")
SOURCE = "TestSrc"
#: (camera server, run) -> TARGET header; cs2 run 3 is damaged, run 4 a dark run
RUNS = {
    (1, 1): f"{SOURCE}_W1",
    (1, 2): f"{SOURCE}_W2",
    (2, 1): f"{SOURCE}_W1",
    (2, 2): f"{SOURCE}_W2",
}
DAMAGED = (2, 3)
DARK = (2, 4)
_CARD = 80


def source_position():
    """ICRS position of the test source: alt 70, az 180 deg at the events' time."""
    location = load_sst1m_subarray().reference_location
    altaz = AltAz(obstime=EVENT_TIME, location=location)
    icrs = SkyCoord(alt=70 * u.deg, az=180 * u.deg, frame=altaz).icrs
    return float(icrs.ra.deg), float(icrs.dec.deg)


def write_catalogue(path):
    """The test catalogue: the test source and a second, unused entry."""
    ra, dec = source_position()
    Table(
        {
            "name": [SOURCE, "Crab"],
            "ra": [ra, 83.6329],
            "dec": [dec, 22.0145],
            "aliases": ["test source", "Crab Nebula"],
        }
    ).write(path, format="ascii.ecsv", overwrite=True)
    return path


def _set_events_card(path, key, value):
    """Replace the value of a string card of the Events header, same length."""
    data = bytearray(path.read_bytes())
    events = data.find(b"EXTNAME = 'Events'")
    start = events - events % 2880
    position = data.find(f"{key:<8}= '".encode(), start)
    old = data[position : position + _CARD]
    quote = old.index(b"'", 11)
    assert len(value) == quote - 11, (old, value)
    data[position + 11 : position + 11 + len(value)] = value.encode()
    path.write_bytes(bytes(data))


def raw_dir_of(root, cs):
    """The site layout's directory of a camera server's files that night."""
    return Path(root) / f"cs{cs}" / "data/raw/2018/08/22" / f"SST1M{cs}"


def write_run(root, cs, run, target, source_file, hour):
    """One run: a copy of ``source_file`` with TARGET and header times set."""
    directory = raw_dir_of(root, cs)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"SST1M{cs}_{NIGHT}_{run:04d}.fits.fz"
    add_events_header_card(source_file, path, "TARGET", target)
    for key in ("DATE", "DATEEND"):
        minute = "00:02" if key == "DATE" else "00:45"
        _set_events_card(path, key, f"2018-08-22T{hour:02d}:{minute}")
    return path


def build_raw_night(root, raw_file, dark_file=None, damaged=True):
    """
    The test night under ``root`` (site layout); returns the run paths.

    Run N of both telescopes is at hour 19 + N (UTC) of 2018-08-22 in the
    headers; the damaged run is cs2 run 3 (data bytes flipped: its DATASUM
    fails), the dark run cs2 run 4 (``RUNTYPE darkrun``).
    """
    paths = {}
    for (cs, run), target in RUNS.items():
        paths[(cs, run)] = write_run(root, cs, run, target, raw_file, 19 + run)
    if damaged:
        good = write_run(root, 2, 3, f"{SOURCE}_W1", raw_file, 22)
        data = good.read_bytes()
        corrupted_copy(good, good, len(data) // 2)
        paths[DAMAGED] = good
    if dark_file is not None:
        directory = raw_dir_of(root, 2)
        paths[DARK] = shutil.copyfile(
            dark_file, directory / f"SST1M2_{NIGHT}_{DARK[1]:04d}.fits.fz"
        )
    return paths


def build_library(directory, stereo, tel21, tel22):
    """
    A one-node library ``ze20_az180_nsb2.4`` from the toy chain's products.

    Parameters
    ----------
    stereo, tel21, tel22 : dict
        ``models`` (energy, [disp,] classifier files), ``cuts``, ``irf``.
    """
    node = Path(directory) / "ze20_az180_nsb2.4"
    for mode, chain in (("stereo", stereo), ("tel_021", tel21), ("tel_022", tel22)):
        target = node / mode
        target.mkdir(parents=True, exist_ok=True)
        names = ["energy.pkl", "classifier.pkl"]
        if len(chain["models"]) == 3:
            names = ["energy.pkl", "disp.pkl", "classifier.pkl"]
        for name, model in zip(names, chain["models"], strict=True):
            shutil.copyfile(model, target / name)
        shutil.copyfile(chain["cuts"], target / "cuts.fits")
        shutil.copyfile(chain["irf"], target / "irf.fits.gz")
    return Path(directory)
