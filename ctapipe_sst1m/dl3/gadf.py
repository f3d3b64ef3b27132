"""
GADF DL3 files: EVENTS, GTI, POINTING and the IRF HDUs of one run, and the
HDU and observation index tables of a set of runs.

Time system: TAI, the scale of ctapipe's (and the White Rabbit camera clock's)
times. ``TIME`` is in seconds since ``MJDREFI`` + ``MJDREFF``, which is
midnight (TAI) of the day the run starts: the values stay below a few 1e4 s,
where a float64 keeps the nanoseconds of the camera clock.
"""

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.table import Table
from astropy.time import Time

from ..version import __version__

__all__ = [
    "IRF_HDUS",
    "hdu_index_table",
    "obs_index_row",
    "obs_index_table",
    "observation_hdus",
    "seconds_since",
    "time_reference",
]

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


def obs_index_row(run, hdus):
    """One row of the observation index, from a run's HDUs."""
    header = hdus["EVENTS"].header
    return {
        "OBS_ID": run.obs_id,
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
        "EVENT_COUNT": len(run.events),
    }


def hdu_index_table(rows):
    """
    The HDU index: one row per (run, HDU).

    Parameters
    ----------
    rows : list of (obs_id, file name, HDUList)
    """
    index = []
    for obs_id, file_name, hdus in rows:
        for hdu in hdus[1:]:
            if hdu.name in ("EVENTS", "GTI", "POINTING"):
                kind = hdu.name.lower()
                hdu_type, hdu_class = kind, kind
            else:
                hdu_type, hdu_class = IRF_HDUS[hdu.header["HDUCLAS4"]]
            index.append((obs_id, hdu_type, hdu_class, ".", file_name, hdu.name))
    table = Table(
        rows=index,
        names=["OBS_ID", "HDU_TYPE", "HDU_CLASS", "FILE_DIR", "FILE_NAME", "HDU_NAME"],
    )
    table.meta.update({**GADF_DOC, "HDUCLAS1": "INDEX", "HDUCLAS2": "HDU"})
    return table


def obs_index_table(rows, site):
    """
    The observation index of a set of runs.

    Parameters
    ----------
    rows : list of dict
        `obs_index_row` of each run.
    site : astropy.coordinates.EarthLocation
        The array's reference location.
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
            **_site_header(site),
        }
    )
    return table
