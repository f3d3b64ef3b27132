"""
GADF DL3 files: EVENTS, GTI, POINTING and the IRF HDUs of one run, and the
HDU and observation index tables of a set of runs, made from the DL3 files'
headers (`read_index_entry`), so that the indexes of one
``ctapipe-sst1m-dl3`` call and those of ``ctapipe-sst1m-dl3-index`` on a
directory of separately written runs are the same tables.

Time system: TAI, the scale of ctapipe's (and the White Rabbit camera clock's)
times. ``TIME`` is in seconds since ``MJDREFI`` + ``MJDREFF``, which is
midnight (TAI) of the day the run starts: the values stay below a few 1e4 s,
where a float64 keeps the nanoseconds of the camera clock.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.table import Table
from astropy.time import Time

from ..core.products import DL3_INDEX, ProductError, one_line, write_fits_product
from ..version import __version__

__all__ = [
    "DL3_FILE_GLOB",
    "HDU_INDEX_FILE",
    "IRF_HDUS",
    "OBS_INDEX_FILE",
    "IndexEntry",
    "dl3_file_name",
    "hdu_index_table",
    "index_tables",
    "obs_index_row",
    "obs_index_table",
    "observation_hdus",
    "read_index_entry",
    "seconds_since",
    "time_reference",
    "write_indexes",
]

#: the DL3 file of a run, as ``ctapipe-sst1m-dl3`` names it, and the pattern
#: ``ctapipe-sst1m-dl3-index`` looks for
DL3_FILE_GLOB = "SST1M_obs_*.dl3.fits.gz"
HDU_INDEX_FILE = "hdu-index.fits.gz"
OBS_INDEX_FILE = "obs-index.fits.gz"

#: IRF HDU class (GADF HDUCLAS4) -> (hdu-index HDU_TYPE, HDU_CLASS)
IRF_HDUS = {
    "AEFF_2D": ("aeff", "aeff_2d"),
    "EDISP_2D": ("edisp", "edisp_2d"),
    "PSF_TABLE": ("psf", "psf_table"),
    "BKG_2D": ("bkg", "bkg_2d"),
    "RAD_MAX_2D": ("rad_max", "rad_max_2d"),
}
#: IRF HDUs of ctapipe-compute-irf that gammapy does not use for gamma rays
SKIPPED_IRF_HDUS = ("EFFECTIVE AREA PROTONS", "EFFECTIVE AREA ELECTRONS")


def dl3_file_name(obs_id):
    """The name of the DL3 file of run ``obs_id``."""
    return DL3_FILE_GLOB.replace("*", str(int(obs_id)))


def time_reference(start):
    """``MJDREFI``: the MJD of the TAI midnight before ``start``."""
    return int(np.floor(start.tai.mjd))


def seconds_since(times, mjdref):
    """GADF ``TIME``: seconds since ``mjdref`` (TAI) of astropy ``times``."""
    reference = Time(mjdref, format="mjd", scale="tai")
    return (times.tai - reference).to_value(u.s)


#: GADF document and version, in every HDU and index
GADF_DOC = {
    "HDUCLASS": "GADF",
    "HDUDOC": "https://github.com/open-gamma-ray-astro/gamma-astro-data-formats",
    "HDUVERS": "0.3",
}
ORIGIN = "SST-1M"


def _site_header(site):
    location = site.to_geodetic()
    return {
        "GEOLON": location.lon.to_value(u.deg),
        "GEOLAT": location.lat.to_value(u.deg),
        "ALTITUDE": location.height.to_value(u.m),
    }


def _time_header(mjdref):
    return {
        "MJDREFI": mjdref,
        "MJDREFF": 0.0,
        "TIMEUNIT": "s",
        "TIMESYS": "TAI",
        "TIMEREF": "TOPOCENTER",
    }


def _common_header(run, site, mjdref):
    return {
        **GADF_DOC,
        "OBS_ID": run.obs_id,
        "ORIGIN": ORIGIN,
        "TELESCOP": "SST1M",
        "INSTRUME": "SST1M-" + "-".join(str(t) for t in run.tel_ids),
        "CREATOR": f"ctapipe-sst1m {__version__}",
        **_time_header(mjdref),
        **_site_header(site),
    }


def observation_hdus(run, irf_hdus, irf_cards=None):
    """
    The HDUs of the DL3 file of one run.

    Parameters
    ----------
    run : RunEvents
    irf_hdus : list of astropy.io.fits.BinTableHDU
        The IRF HDUs (EFFECTIVE AREA ...), copied as they are.
    irf_cards : dict, optional
        Cards describing the IRFs and the cuts (node, FOVMAX), added to the
        EVENTS header.

    Returns
    -------
    astropy.io.fits.HDUList
    """
    site = run.subarray.reference_location
    mjdref = time_reference(run.start)
    common = _common_header(run, site, mjdref)
    tstart, tstop = seconds_since(run.start, mjdref), seconds_since(run.stop, mjdref)
    middle = run.start + (run.stop - run.start) / 2
    alt_pnt, az_pnt = run.mean_pointing
    ontime = tstop - tstart

    events = run.events
    columns = [
        fits.Column("EVENT_ID", "K", array=events["EVENT_ID"]),
        fits.Column("TIME", "D", unit="s", array=seconds_since(events["TIME"], mjdref)),
        fits.Column("RA", "D", unit="deg", array=events["RA"].to_value(u.deg)),
        fits.Column("DEC", "D", unit="deg", array=events["DEC"].to_value(u.deg)),
        fits.Column("ENERGY", "D", unit="TeV", array=events["ENERGY"].to_value(u.TeV)),
        fits.Column("GAMMANESS", "D", array=events["GAMMANESS"]),
        fits.Column("MULTIP", "J", array=events["MULTIP"]),
    ]
    events_hdu = fits.BinTableHDU.from_columns(columns, name="EVENTS")
    events_hdu.header.update(common)
    events_hdu.header.update(
        {
            "HDUCLAS1": "EVENTS",
            "TSTART": tstart,
            "TSTOP": tstop,
            # in TIMESYS (TAI), as the FITS standard wants
            "DATE-OBS": run.start.tai.isot,
            "DATE-END": run.stop.tai.isot,
            "TELAPSE": ontime,
            "ONTIME": ontime,
            # the DigiCam dead time is not recorded: livetime = ontime
            "LIVETIME": ontime,
            "DEADC": 1.0,
            # the raw files give the tracked position, not the source's
            "OBJECT": f"RA {run.target.ra.deg:.4f} DEC {run.target.dec.deg:.4f}",
            "RA_PNT": run.target.ra.deg,
            "DEC_PNT": run.target.dec.deg,
            # mean over the run
            "ALT_PNT": alt_pnt,
            "AZ_PNT": az_pnt,
            "RADECSYS": "ICRS",
            "EQUINOX": 2000.0,
            "OBS_MODE": run.pointing_mode,
            "N_TELS": len(run.tel_ids),
            "TELLIST": ",".join(str(t) for t in run.tel_ids),
            "EUNIT": "TeV",
            "N_TRIG": run.n_triggers,
        }
    )
    events_hdu.header.update(irf_cards or {})
    gti = fits.BinTableHDU.from_columns(
        [
            fits.Column("START", "D", unit="s", array=[tstart]),
            fits.Column("STOP", "D", unit="s", array=[tstop]),
        ],
        name="GTI",
    )
    gti.header.update(common)
    gti.header.update({"HDUCLAS1": "GTI"})
    pointing_hdu = fits.BinTableHDU.from_columns(
        [
            fits.Column("TIME", "D", unit="s", array=[seconds_since(middle, mjdref)]),
            fits.Column("RA_PNT", "D", unit="deg", array=[run.target.ra.deg]),
            fits.Column("DEC_PNT", "D", unit="deg", array=[run.target.dec.deg]),
            fits.Column("ALT_PNT", "D", unit="deg", array=[alt_pnt]),
            fits.Column("AZ_PNT", "D", unit="deg", array=[az_pnt]),
        ],
        name="POINTING",
    )
    pointing_hdu.header.update(common)
    pointing_hdu.header.update({"HDUCLAS1": "POINTING"})
    return fits.HDUList(
        [fits.PrimaryHDU(), events_hdu, gti, pointing_hdu, *[h.copy() for h in irf_hdus]]
    )


def _obs_row(header, n_events):
    """The observation-index row of a run from its EVENTS header."""
    return {
        "OBS_ID": header["OBS_ID"],
        "RA_PNT": header["RA_PNT"],
        "DEC_PNT": header["DEC_PNT"],
        "ALT_PNT": header["ALT_PNT"],
        "AZ_PNT": header["AZ_PNT"],
        "ZEN_PNT": 90 - header["ALT_PNT"],
        "ONTIME": header["ONTIME"],
        "LIVETIME": header["LIVETIME"],
        "DEADC": header["DEADC"],
        "TSTART": header["TSTART"],
        "TSTOP": header["TSTOP"],
        "MJDREFI": header["MJDREFI"],
        "MJDREFF": header["MJDREFF"],
        "N_TELS": header["N_TELS"],
        "TELLIST": header["TELLIST"],
        "OBJECT": header["OBJECT"],
        "EVENT_COUNT": n_events,
    }


def obs_index_row(run, hdus):
    """One row of the observation index, from a run's HDUs."""
    return _obs_row(hdus["EVENTS"].header, len(run.events))


def _hdu_kind(hdu):
    """(HDU_TYPE, HDU_CLASS) of a DL3 file's HDU."""
    if hdu.name in ("EVENTS", "GTI", "POINTING"):
        kind = hdu.name.lower()
        return kind, kind
    return IRF_HDUS[hdu.header["HDUCLAS4"]]


@dataclass(frozen=True)
class IndexEntry:
    """What the indexes say of one DL3 file, read from its headers."""

    path: Path
    obs_id: int
    #: (HDU_TYPE, HDU_CLASS, HDU_NAME) of each HDU after the primary
    hdus: tuple
    #: the observation-index row (`obs_index_row`)
    obs_row: dict
    #: GEOLON, GEOLAT, ALTITUDE of the EVENTS header
    site: dict
    #: OBS_MODE: the pointing mode
    pointing_mode: str


#: EVENTS cards the indexes are made of
_INDEX_CARDS = (
    "OBS_ID",
    "RA_PNT",
    "DEC_PNT",
    "ALT_PNT",
    "AZ_PNT",
    "ONTIME",
    "LIVETIME",
    "DEADC",
    "TSTART",
    "TSTOP",
    "MJDREFI",
    "MJDREFF",
    "N_TELS",
    "TELLIST",
    "OBJECT",
    "OBS_MODE",
    "GEOLON",
    "GEOLAT",
    "ALTITUDE",
)


def read_index_entry(path):
    """
    Read back from a DL3 file's headers what the indexes list of it.

    The file is not verified here (`ctapipe_sst1m.core.products.verify_fits_product`
    does that); only its headers are read.

    Parameters
    ----------
    path : str or pathlib.Path
        A DL3 file written by ``ctapipe-sst1m-dl3`` (`observation_hdus`).

    Returns
    -------
    IndexEntry

    Raises
    ------
    ProductError
        If the file cannot be read, has no EVENTS HDU or lacks a card of the
        indexes, has an HDU of unknown class, or its EVENTS rows disagree
        with its mark (``SSTEVOUT``).
    """
    path = Path(path)
    try:
        with fits.open(path, memmap=False) as hdus:
            primary = hdus[0].header
            if "EVENTS" not in hdus:
                raise ProductError(f"{path}: no EVENTS HDU; not a DL3 file")
            events = hdus["EVENTS"].header
            missing = [card for card in _INDEX_CARDS if card not in events]
            if missing:
                raise ProductError(
                    f"{path}: EVENTS header without {', '.join(missing)}; not a DL3 "
                    "file of ctapipe-sst1m-dl3"
                )
            unknown = [
                h.name
                for h in hdus[1:]
                if h.name not in ("EVENTS", "GTI", "POINTING")
                and h.header.get("HDUCLAS4") not in IRF_HDUS
            ]
            if unknown:
                raise ProductError(
                    f"{path}: HDUs {unknown} are neither events nor GADF IRFs"
                )
            kinds = tuple((*_hdu_kind(h), h.name) for h in hdus[1:])
            n_events = int(events["NAXIS2"])
    except ProductError:
        raise
    except Exception as err:
        raise ProductError(
            f"{path}: headers not readable ({type(err).__name__}: {one_line(err)})"
        ) from err
    if "SSTEVOUT" in primary and primary["SSTEVOUT"] != n_events:
        raise ProductError(
            f"{path}: EVENTS has {n_events} rows, the mark says {primary['SSTEVOUT']}"
        )
    return IndexEntry(
        path=path,
        obs_id=int(events["OBS_ID"]),
        hdus=kinds,
        obs_row=_obs_row(events, n_events),
        site={key: events[key] for key in ("GEOLON", "GEOLAT", "ALTITUDE")},
        pointing_mode=str(events["OBS_MODE"]),
    )


def _hdu_table(index):
    table = Table(
        rows=index,
        names=["OBS_ID", "HDU_TYPE", "HDU_CLASS", "FILE_DIR", "FILE_NAME", "HDU_NAME"],
    )
    table.meta.update({**GADF_DOC, "HDUCLAS1": "INDEX", "HDUCLAS2": "HDU"})
    return table


def hdu_index_table(rows):
    """
    The HDU index: one row per (run, HDU).

    Parameters
    ----------
    rows : list of (obs_id, file name, HDUList)
    """
    index = [
        (obs_id, *_hdu_kind(hdu), ".", file_name, hdu.name)
        for obs_id, file_name, hdus in rows
        for hdu in hdus[1:]
    ]
    return _hdu_table(index)


def obs_index_table(rows, site):
    """
    The observation index of a set of runs.

    Parameters
    ----------
    rows : list of dict
        `obs_index_row` of each run.
    site : astropy.coordinates.EarthLocation or dict
        The array's reference location, or the ``GEOLON``, ``GEOLAT`` and
        ``ALTITUDE`` cards of a DL3 file.
    """
    table = Table(rows=rows)
    # each file counts from the midnight before its run: the index counts from
    # the earliest (a night crosses midnight)
    mjdref = int(np.min(table["MJDREFI"]))
    days = (np.asarray(table["MJDREFI"]) - mjdref) * 86400.0
    table["TSTART"] = np.asarray(table["TSTART"]) + days
    table["TSTOP"] = np.asarray(table["TSTOP"]) + days
    table["MJDREFI"] = mjdref
    table["RA_PNT"].unit = table["DEC_PNT"].unit = u.deg
    table["ALT_PNT"].unit = table["AZ_PNT"].unit = table["ZEN_PNT"].unit = u.deg
    for column in ("ONTIME", "LIVETIME", "TSTART", "TSTOP"):
        table[column].unit = u.s
    table.meta.update(
        {
            **GADF_DOC,
            "HDUCLAS1": "INDEX",
            "HDUCLAS2": "OBS",
            **_time_header(mjdref),
            **(dict(site) if isinstance(site, Mapping) else _site_header(site)),
        }
    )
    return table


def index_tables(entries, file_dir="."):
    """
    The HDU and observation indexes of DL3 files.

    Parameters
    ----------
    entries : list of IndexEntry
        `read_index_entry` of each file; the rows are ordered by obs_id.
    file_dir : str
        ``FILE_DIR`` of the HDU index: the files' directory relative to the
        indexes'.

    Returns
    -------
    (astropy.table.Table, astropy.table.Table)
        The HDU index and the observation index.

    Raises
    ------
    ValueError
        If ``entries`` is empty.
    """
    if not entries:
        raise ValueError("no DL3 file to index")
    entries = sorted(entries, key=lambda entry: entry.obs_id)
    index = [
        (entry.obs_id, hdu_type, hdu_class, file_dir, entry.path.name, name)
        for entry in entries
        for hdu_type, hdu_class, name in entry.hdus
    ]
    obs_table = obs_index_table([e.obs_row for e in entries], entries[0].site)
    return _hdu_table(index), obs_table


def write_indexes(entries, output_dir, file_dir="."):
    """
    Write ``hdu-index.fits.gz`` and ``obs-index.fits.gz`` of DL3 files, each
    with its completeness mark, under a hidden name renamed when complete.

    Parameters
    ----------
    entries : list of IndexEntry
    output_dir : pathlib.Path
        Existing directory of the indexes.
    file_dir : str
        The DL3 files' directory relative to ``output_dir``.

    Returns
    -------
    (astropy.table.Table, astropy.table.Table)
        The HDU and observation indexes written.

    Raises
    ------
    ValueError
        If ``entries`` is empty.
    OSError
        If a file cannot be written.
    """
    tables = index_tables(entries, file_dir)
    # the HDU index first: a kill between the two leaves added runs in the HDU
    # index only, which gammapy ignores, rather than observations without HDUs
    for name, table in zip((HDU_INDEX_FILE, OBS_INDEX_FILE), tables, strict=True):
        hdus = fits.HDUList([fits.PrimaryHDU(), fits.table_to_hdu(table)])
        write_fits_product(hdus, Path(output_dir) / name, DL3_INDEX)
    return tables
