"""The headless-browser harness (tests/browser.py) on small pages of known faults."""

import base64
import io

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from .browser import PNG_SIGNATURE, inspect_page

FIGURE_SIZE = (150, 100)
BLUE = (0, 0, 255)
GREEN = (0, 128, 0)
FILLER_HEIGHT = 3000


def figure_png():
    """A plain blue 150x100 PNG made by matplotlib, as the report's figures are."""
    figure = Figure(figsize=(3, 2), dpi=50, facecolor="#0000ff")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", facecolor=figure.get_facecolor())
    return buffer.getvalue()


def write_report_page(folder):
    logs = folder / "logs"
    logs.mkdir()
    (logs / "run 21.log").write_text("processed\n")
    figure = base64.b64encode(figure_png()).decode("ascii")
    page = folder / "report.html"
    page.write_text(
        f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Night report 2024-10-11</title>
<style>
body {{ margin: 0; font-family: sans-serif; }}
img {{ display: block; }}
.filler {{ height: {FILLER_HEIGHT}px; }}
footer {{ height: 100px; background: rgb{GREEN}; }}
</style></head>
<body>
<h1 id="summary">Night report</h1>
<img alt="trigger rate" src="data:image/png;base64,{figure}">
<img alt="damaged" src="data:image/png;base64,AAAA">
<ul>
<li><a href="logs/run%2021.log">run 21 log</a></li>
<li><a href="logs/missing.log">run 22 log</a></li>
<li><a href="#summary">summary</a></li>
<li><a href="#nowhere">nowhere</a></li>
<li><a href="https://www.cta-observatory.org/">CTAO</a></li>
</ul>
<table>
<thead><tr><th>Telescope</th><th>Events</th></tr></thead>
<tbody><tr><td>21</td><td> 1200 </td></tr><tr><td>22</td><td>1180</td></tr></tbody>
</table>
<div class="filler"></div>
<footer>end of report</footer>
</body></html>
""",
        encoding="utf-8",
    )
    return page


def test_inspect_page_reports_exactly_the_broken_parts(browser, tmp_path):
    page = write_report_page(tmp_path)
    report = inspect_page(browser, page, tmp_path / "shots" / "report.png")

    assert report.title == "Night report 2024-10-11"
    assert report.url == page.as_uri()
    assert 0 < report.load_seconds < 10
    assert report.scripts == 0

    good, damaged = report.images
    assert good.src.startswith("data:image/png;base64,iVBORw0KGgo")
    assert (good.natural_width, good.natural_height) == FIGURE_SIZE
    assert good.complete
    assert damaged.src == "data:image/png;base64,AAAA"
    assert report.broken_images == [damaged]

    links = [(link.href, link.kind, link.ok) for link in report.links]
    assert links == [
        ("logs/run%2021.log", "file", True),
        ("logs/missing.log", "file", False),
        ("#summary", "fragment", True),
        ("#nowhere", "fragment", False),
        ("https://www.cta-observatory.org/", "external", None),
    ]
    assert report.links[0].target == str(tmp_path / "logs" / "run 21.log")
    assert report.links[3].target == "nowhere"
    assert [link.href for link in report.broken_links] == ["logs/missing.log", "#nowhere"]
    assert [link.href for link in report.external_links] == [
        "https://www.cta-observatory.org/"
    ]

    assert report.tables == [[["Telescope", "Events"], ["21", "1200"], ["22", "1180"]]]
    assert "Night report" in report.text
    assert "end of report" in report.text

    # the screenshot is the whole page, beyond the window
    data = report.screenshot.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    viewport_width, viewport_height = report.viewport_size
    width, height = report.screenshot_size
    assert width == viewport_width
    assert height == report.page_size[1] > FILLER_HEIGHT > viewport_height
    with Image.open(report.screenshot) as shot:
        shot = shot.convert("RGB")
        assert shot.size == (width, height)
        # the footer, below the window, was drawn
        assert shot.getpixel((width // 2, height - 50)) == GREEN
        # and so was the figure (its pixels, not only its natural size)
        top = np.asarray(shot.crop((0, 0, 400, 400)))
        blue = np.count_nonzero(np.all(top == BLUE, axis=-1))
        assert blue >= 0.9 * FIGURE_SIZE[0] * FIGURE_SIZE[1]


def test_inspect_page_reads_the_console_of_this_page_only(browser, tmp_path):
    noisy = tmp_path / "noisy.html"
    noisy.write_text(
        "<!DOCTYPE html><html><head><title>noisy</title></head><body>"
        '<img src="figures/missing.png">'
        '<script>console.error("figure missing: " + 21)</script>'
        "</body></html>"
    )
    report = inspect_page(browser, noisy, tmp_path / "noisy.png")
    assert report.scripts == 1
    assert [image.src for image in report.broken_images] == ["figures/missing.png"]
    assert report.console_errors is not None
    assert len(report.console_errors) == 2
    assert any("figure missing: 21" in message for message in report.console_errors)
    assert any("ERR_FILE_NOT_FOUND" in message for message in report.console_errors)

    quiet = tmp_path / "quiet.html"
    quiet.write_text("<!DOCTYPE html><html><body><p>all good</p></body></html>")
    report = inspect_page(browser, quiet, tmp_path / "quiet.png")
    assert report.console_errors == []
    assert report.text == "all good"
    assert report.images == report.links == report.tables == []


def test_inspect_page_refuses_a_missing_page(browser, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"report\.html: no such page file"):
        inspect_page(browser, tmp_path / "report.html", tmp_path / "report.png")
    assert not (tmp_path / "report.png").exists()
