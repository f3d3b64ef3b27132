"""
The parts of the night report on known inputs: the checks of a run, the Moon,
the page writer (complete files only), and how a moved night is found.
"""

from pathlib import Path

import numpy as np
import pytest
from astropy.coordinates import AltAz, SkyCoord, get_body
from astropy.time import Time
from matplotlib.figure import Figure

from ctapipe_sst1m.instrument.subarray import load_sst1m_subarray
from ctapipe_sst1m.report.measures import Histograms, TelescopeRun, moon_track
from ctapipe_sst1m.report.page import Link, ReportWriter
from ctapipe_sst1m.report.products import ReportError, find_night, relocate
from ctapipe_sst1m.report.quality import Thresholds, telescope_problems

START = 1_700_000_000.0


def telescope_run(
    dl1_rate=None, nsb=None, n_pedestals=100, tel_id=21, duration=600.0, bin_width=10.0
):
    """A telescope's run summary with the given rate bins and NSB levels."""
    n_bins = int(duration / bin_width)
    rates = np.full(n_bins, 100.0) if dl1_rate is None else np.asarray(dl1_rate)
    times = START + bin_width * (np.arange(len(rates)) + 0.5)
    nsb_times = START + np.arange(n_pedestals) * duration / max(1, n_pedestals)
    levels = np.full(n_pedestals, 2.0) if nsb is None else nsb(nsb_times - START)
    return TelescopeRun(
        tel_id=tel_id,
        n_events=int(rates.sum() * bin_width),
        n_pedestals=n_pedestals,
        n_showers=int(rates.sum() * bin_width),
        n_surviving=int(rates.sum() * bin_width),
        start=START,
        stop=START + duration,
        rate_times=times,
        trigger_rate=rates,
        dl1_rate=rates,
        nsb_times=nsb_times,
        nsb_level=levels,
        pedestal_mean=None,
        pedestal_std=None,
        pointing_times=np.array([]),
        pointing_alt=np.array([]),
        pointing_az=np.array([]),
        histograms=Histograms(),
    )


def test_good_run_has_no_problem():
    assert telescope_problems(telescope_run(), np.full(10, 0.7)) == []


def test_rate_drop():
    rates = np.full(60, 100.0)
    rates[30:33] = [20.0, 45.0, 49.0]
    (problem,) = telescope_problems(telescope_run(rates))
    assert problem == (
        "tel 21: DL1 rate drops to 20.0 Hz at 22:18:25 (run median 100.0 Hz; "
        "3 of 59 bins below 50%)"
    )
    # the last bin is partial: a low last bin is no drop
    rates = np.full(60, 100.0)
    rates[-1] = 1.0
    assert telescope_problems(telescope_run(rates)) == []


def test_nsb_jump():
    # 2 p.e., then 3 p.e. from the fifth minute
    (problem,) = telescope_problems(telescope_run(nsb=lambda t: 2.0 + (t >= 300)))
    assert problem.startswith("tel 21: NSB level jumps by 1.00 p.e. at 22:18:20")
    assert "(2.00 -> 3.00 p.e.; limit 0.5 p.e.)" in problem
    # a slow rise of 0.4 p.e. over the run is no jump
    assert telescope_problems(telescope_run(nsb=lambda t: 2.0 + 0.4 * t / 600)) == []


def test_few_pedestals_and_pointing():
    problems = telescope_problems(telescope_run(n_pedestals=12), np.full(5, 1.6))
    assert problems == [
        "tel 21: few pedestal events (12, fewer than 50): NSB level and cleaning "
        "thresholds uncertain",
        "tel 21: pointing 1.60 deg from the target (limit 1.0 deg)",
    ]
    limits = Thresholds(min_pedestals=10, max_pointing_offset=2.0)
    assert (
        telescope_problems(telescope_run(n_pedestals=12), np.full(5, 1.6), limits) == []
    )


def test_moon_phases_and_separation():
    """Full Moon 2018-08-26 11:56 UTC, new Moon 2018-08-11 09:58 UTC."""
    location = load_sst1m_subarray().reference_location
    times = Time(["2018-08-26T11:56", "2018-08-11T09:58", "2018-08-18T07:48"])
    # the Moon itself as target: separation 0; the target seen from the site
    moon = get_body("moon", times[:1], location)
    altaz = moon.transform_to(AltAz(obstime=times[:1], location=location))
    target = SkyCoord(altaz).icrs
    track = moon_track(times, location, target[0])
    assert track.illumination[0] > 0.99
    assert track.illumination[1] < 0.01
    # first quarter
    assert track.illumination[2] == pytest.approx(0.5, abs=0.03)
    assert track.separation[0] == pytest.approx(0, abs=0.01)
    assert np.all(np.abs(track.altitude) <= 90)


def test_writer_writes_complete_files_only(tmp_path):
    page = tmp_path / "out" / "report.html"
    pdf = tmp_path / "out" / "report.pdf"
    log = tmp_path / "logs" / "run.log"
    log.parent.mkdir()
    log.write_text("log")
    writer = ReportWriter(page, pdf, "title <&>")
    writer.heading(1, "Night", anchor="top")
    writer.table(
        ["run", "log"], [["1", Link("the log", log)], ["2", Link("top", "#top")]]
    )
    figure = Figure()
    figure.add_subplot().plot([1, 2, 3])
    writer.figure(figure, "a line")
    # nothing under the final names before close
    assert not page.exists() and not pdf.exists()
    sizes = writer.close()
    text = page.read_text()
    assert "<title>title &lt;&amp;&gt;</title>" in text
    assert '<a href="../logs/run.log">the log</a>' in text
    assert '<a href="#top">top</a>' in text
    assert text.count('src="data:image/png;base64,') == 1
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert sizes == {"html": page.stat().st_size, "pdf": pdf.stat().st_size}
    assert sorted(p.name for p in page.parent.iterdir()) == ["report.html", "report.pdf"]


def test_writer_abort_leaves_nothing(tmp_path):
    writer = ReportWriter(tmp_path / "report.html", tmp_path / "report.pdf", "t")
    figure = Figure()
    figure.add_subplot().plot([1, 2])
    writer.figure(figure, "a line")
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_moved_night_paths(tmp_path):
    night = tmp_path / "20240312"
    moved = night / "Crab/cs1/dl1/SST1M1_20240312_0001.dl1.log"
    moved.parent.mkdir(parents=True)
    moved.write_text("")
    old = Path("/data/analysis/20240312/Crab/cs1/dl1/SST1M1_20240312_0001.dl1.log")
    assert relocate(str(old), night) == moved
    assert relocate("", night) is None


def test_not_a_night(tmp_path):
    with pytest.raises(ReportError, match="no such directory"):
        find_night(tmp_path / "20240312")
    (tmp_path / "20240312").mkdir()
    with pytest.raises(ReportError, match=r"neither products nor nightly_status\.ecsv"):
        find_night(tmp_path / "20240312")
