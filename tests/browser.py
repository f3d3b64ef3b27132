"""
A real headless Chromium for the tests of static HTML pages (the night report).

Chromium and its driver are Debian's packages (``chromium``, ``chromium-driver``),
driven by Selenium through the system ``chromedriver`` given explicitly: Selenium
Manager is then never asked to download a browser or a driver (the site has no
network). :func:`inspect_page` opens a page, waits for it to load, and returns what
a person would check: images rendered, links that lead somewhere, the tables' texts,
the console's errors, and a full-page screenshot.
"""

import base64
import logging
import os
import shutil
import struct
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple
from urllib.parse import unquote, urldefrag, urlsplit
from urllib.request import url2pathname

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.wait import WebDriverWait

__all__ = [
    "APT_PACKAGES",
    "WINDOW_SIZE",
    "PageImage",
    "PageLink",
    "PageReport",
    "chromium_paths",
    "inspect_page",
    "start_browser",
]

logger = logging.getLogger(__name__)

APT_PACKAGES = ("chromium", "chromium-driver")
INSTALL_COMMAND = f"apt-get install {' '.join(APT_PACKAGES)}"
WINDOW_SIZE = (1400, 900)
# base64 figures are hundreds of kB: keep only what tells them apart
SRC_PREFIX = 64
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

_PAGE_CONTENT = """
const navigation = performance.getEntriesByType('navigation')[0];
const root = document.documentElement;
const body = document.body || root;
return {
    title: document.title,
    images: Array.from(document.images, img => [
        img.getAttribute('src') || '', img.naturalWidth, img.naturalHeight, img.complete,
    ]),
    links: Array.from(
        document.querySelectorAll('a[href]'), a => [a.getAttribute('href'), a.href],
    ),
    ids: Array.from(document.querySelectorAll('[id]'), element => element.id),
    tables: Array.from(document.querySelectorAll('table'), table => Array.from(
        table.rows, row => Array.from(row.cells, cell => cell.innerText.trim()),
    )),
    text: body.innerText,
    scripts: document.scripts.length,
    load_ms: navigation ? navigation.loadEventEnd : 0,
    viewport: [window.innerWidth, window.innerHeight],
    page: [
        Math.max(root.scrollWidth, body.scrollWidth),
        Math.max(root.scrollHeight, body.scrollHeight),
    ],
};
"""


def _apt_get(*args):
    """Run apt-get non-interactively; return (succeeded, seconds, output's last lines)."""
    start = time.perf_counter()
    result = subprocess.run(
        # another apt-get or dpkg of the machine may hold the lock for a while
        ["apt-get", "-o", "DPkg::Lock::Timeout=300", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        check=False,
        timeout=1800,
    )
    tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-5:])
    return result.returncode == 0, time.perf_counter() - start, tail


def _find_chromium():
    return shutil.which("chromium"), shutil.which("chromedriver")


def chromium_paths():
    """
    Paths of Debian's Chromium and chromedriver, installed with apt-get if missing.

    As root (CI's fresh machine) missing packages are installed, with
    ``apt-get update`` first only if the install fails without it; the time it
    took is logged. Otherwise a missing browser skips the test.

    Returns
    -------
    tuple of pathlib.Path
        ``(chromium, chromedriver)``.

    Raises
    ------
    pytest.skip.Exception
        Chromium or chromedriver is missing and cannot be installed here (not root,
        or no apt-get): the reason names the command to run.
    pytest.fail.Exception
        As root, apt-get could not install them.
    """
    chromium, chromedriver = _find_chromium()
    if chromium and chromedriver:
        return Path(chromium), Path(chromedriver)

    missing = " and ".join(
        name
        for name, path in (("chromium", chromium), ("chromedriver", chromedriver))
        if path is None
    )
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip(f"{missing} not found on PATH: install with `{INSTALL_COMMAND}`")

    install = ("install", "-y", *APT_PACKAGES)
    ok, seconds, tail = _apt_get(*install)
    total = seconds
    if not ok:
        # a fresh machine's package lists may be empty or stale
        updated, seconds, tail = _apt_get("update")
        total += seconds
        if updated:
            ok, seconds, tail = _apt_get(*install)
            total += seconds
    if not ok:
        pytest.fail(f"{missing} not on PATH and `{INSTALL_COMMAND}` failed:\n{tail}")
    logger.info("installed %s with apt-get in %.1f s", " ".join(APT_PACKAGES), total)

    chromium, chromedriver = _find_chromium()
    if not (chromium and chromedriver):
        pytest.fail(f"`{INSTALL_COMMAND}` succeeded, yet {missing}: still not on PATH")
    return Path(chromium), Path(chromedriver)


def start_browser(chromium=None, chromedriver=None, window_size=WINDOW_SIZE):
    """
    Start a headless Chromium driven by the system chromedriver.

    Parameters
    ----------
    chromium, chromedriver : path-like, optional
        The browser and its driver; by default those of :func:`chromium_paths`.
    window_size : tuple of int
        Window width and height in pixels (the viewport is smaller by the height
        of the browser's frame, which headless Chromium keeps).

    Returns
    -------
    selenium.webdriver.Chrome
        The started driver; the caller quits it.

    Raises
    ------
    selenium.common.exceptions.WebDriverException
        The browser or the driver did not start.
    """
    if chromium is None or chromedriver is None:
        chromium, chromedriver = chromium_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = str(chromium)
    for argument in (
        "--headless=new",
        # root (CI) cannot use the sandbox, nor containers without user namespaces;
        # the pages opened are the tests' own
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        # screenshots and page widths without a scrollbar's 15 pixels
        "--hide-scrollbars",
        f"--window-size={window_size[0]},{window_size[1]}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})

    start = time.perf_counter()
    driver = webdriver.Chrome(
        service=Service(executable_path=str(chromedriver)), options=options
    )
    logger.info(
        "started %s %s in %.2f s",
        chromium,
        driver.capabilities.get("browserVersion", "?"),
        time.perf_counter() - start,
    )
    return driver


class PageImage(NamedTuple):
    """An ``<img>`` as the browser loaded it (``natural_width`` 0: not rendered)."""

    src: str
    natural_width: int
    natural_height: int
    complete: bool


class PageLink(NamedTuple):
    """
    An ``<a href>`` and where it leads.

    ``kind`` is ``"file"`` (``target`` is the path, ``ok`` whether it is an
    existing file), ``"fragment"`` (``target`` is the id, ``ok`` whether an element
    of the page has it), ``"external"`` (http or https, not fetched: ``ok`` is None)
    or ``"other"`` (mailto, data, ...: ``ok`` is None).
    """

    href: str
    target: str
    kind: str
    ok: bool | None


@dataclass
class PageReport:
    """What :func:`inspect_page` saw of a page."""

    url: str
    title: str
    load_seconds: float
    images: list[PageImage]
    links: list[PageLink]
    tables: list[list[list[str]]]
    text: str
    scripts: int
    # None: this Chromium does not expose its console log
    console_errors: list[str] | None
    viewport_size: tuple[int, int]
    page_size: tuple[int, int]
    screenshot: Path
    screenshot_size: tuple[int, int]
    inspect_seconds: float = field(default=0.0)

    @property
    def broken_images(self):
        """Images that did not render (no natural width)."""
        return [image for image in self.images if image.natural_width == 0]

    @property
    def broken_links(self):
        """Links checked and found leading nowhere (external ones are not checked)."""
        return [link for link in self.links if link.ok is False]

    @property
    def external_links(self):
        """http(s) links, listed but not fetched."""
        return [link for link in self.links if link.kind == "external"]


def _classify_link(href, resolved, page_url, ids):
    url, fragment = urldefrag(resolved)
    scheme = urlsplit(resolved).scheme
    if scheme in ("http", "https"):
        return PageLink(href, resolved, "external", None)
    if scheme != "file":
        return PageLink(href, resolved, "other", None)
    if url == page_url and (fragment or href.startswith("#")):
        target = unquote(fragment)
        return PageLink(href, target, "fragment", target in ids)
    path = Path(url2pathname(urlsplit(url).path))
    return PageLink(href, str(path), "file", path.is_file())


def _console_errors(driver):
    try:
        entries = driver.get_log("browser")
    except (WebDriverException, AttributeError):
        return None
    return [entry["message"] for entry in entries if entry.get("level") == "SEVERE"]


def _png_size(data):
    if data[:8] != PNG_SIGNATURE:
        raise ValueError("screenshot is not a PNG")
    return struct.unpack(">II", data[16:24])


def inspect_page(driver, html_path, screenshot_path, timeout=30):
    """
    Open a local HTML page and report what the browser made of it.

    Waits for ``document.readyState == 'complete'`` (every image loaded or failed),
    then reads images, links, tables and text, and saves a full-page screenshot
    (Chrome DevTools' ``Page.captureScreenshot`` beyond the viewport: the window
    keeps its size for the next page).

    Parameters
    ----------
    driver : selenium.webdriver.Chrome
        A driver from :func:`start_browser` (the ``browser`` fixture).
    html_path : path-like
        The page file.
    screenshot_path : path-like
        Where to write the PNG screenshot (parent folders are created).
    timeout : float
        Seconds to wait for the page to load.

    Returns
    -------
    PageReport

    Raises
    ------
    FileNotFoundError
        ``html_path`` is not a file.
    selenium.common.exceptions.TimeoutException
        The page did not load within ``timeout`` seconds.
    """
    start = time.perf_counter()
    html_path = Path(html_path).resolve()
    if not html_path.is_file():
        raise FileNotFoundError(f"{html_path}: no such page file; write the page first")
    screenshot_path = Path(screenshot_path)

    # the browser log is read destructively: drop what earlier pages left in it
    _console_errors(driver)
    driver.get(html_path.as_uri())
    WebDriverWait(driver, timeout).until(
        lambda d: d.execute_script("return document.readyState") == "complete",
        message=f"{html_path}: not loaded after {timeout} s",
    )
    content = driver.execute_script(_PAGE_CONTENT)
    page_url = urldefrag(driver.current_url).url
    ids = set(content["ids"])

    width, height = content["page"]
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
        },
    )
    png = base64.b64decode(shot["data"])
    screenshot_path.parent.mkdir(parents=True, exist_ok=True)
    screenshot_path.write_bytes(png)

    report = PageReport(
        url=driver.current_url,
        title=content["title"],
        load_seconds=content["load_ms"] / 1000,
        images=[
            PageImage(src[:SRC_PREFIX], int(w), int(h), bool(complete))
            for src, w, h, complete in content["images"]
        ],
        links=[
            _classify_link(href, resolved, page_url, ids)
            for href, resolved in content["links"]
        ],
        tables=content["tables"],
        text=content["text"],
        scripts=int(content["scripts"]),
        console_errors=_console_errors(driver),
        viewport_size=tuple(content["viewport"]),
        page_size=(width, height),
        screenshot=screenshot_path,
        screenshot_size=_png_size(png),
    )
    report.inspect_seconds = time.perf_counter() - start
    return report
