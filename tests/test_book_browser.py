"""The built book in a real browser: every page of `_build/html` opened in headless Chromium.

Fails on JavaScript console errors, images that do not load, internal links to missing files,
results chapters without figures, and error text (`Traceback`, `Warning`) in cell outputs; saves a
full-page screenshot of each page under `_build/screenshots/`.

It needs the built book and a browser, so the main test run skips it; `make test` runs it after
`make book` with SCALINGLAWS_BROWSER_TEST=1 (Debian's `chromium` + `chromium-driver`, which the
Makefile installs when it can, and says so loudly when it cannot).
"""
from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
RESULTS_CHAPTERS = ("testbed", "fitting", "merging", "resource", "routing")  # each shows figures
ERROR_TEXT = ("Traceback", "Warning")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

pytestmark = pytest.mark.skipif(
    os.environ.get("SCALINGLAWS_BROWSER_TEST") != "1",
    reason="runs after `make book` (make test sets SCALINGLAWS_BROWSER_TEST=1)")


def pages() -> list[str]:
    if not HTML.is_dir():
        return []
    skip = {"genindex.html", "search.html"}
    return sorted(str(p.relative_to(HTML)) for p in HTML.rglob("*.html")
                  if p.name not in skip and not any(part.startswith("_") for part in p.relative_to(HTML).parts))


@pytest.fixture(scope="module")
def server():
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output readable
        pass


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and Path(DRIVER).exists()):
        pytest.skip("NO BROWSER: install Debian's chromium and chromium-driver to test the book in a browser")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    # the flags this machine's closed network needs (no background connections, no sandbox as root)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--window-size=1280,900"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def test_the_book_was_built():
    assert pages(), f"no pages under {HTML}: run `make book` first"
    assert {f"book/{c}.html" for c in RESULTS_CHAPTERS} <= set(pages())


@pytest.mark.parametrize("page", pages())
def test_page_in_the_browser(page, server, browser):
    browser.get(f"{server}/{page}")
    browser.execute_script("return document.readyState")
    problems = []

    # console errors (the browser log: SEVERE = uncaught exceptions, failed loads). A failed load of
    # an external resource (MathJax from its CDN) is this machine's closed network, not the book:
    # reported, not failed; every local failure and every script error fails.
    for entry in browser.get_log("browser"):
        msg = entry["message"]
        if entry["level"] != "SEVERE" or "favicon.ico" in msg:
            continue
        if "Failed to load resource" in msg and not msg.startswith(server):
            print(f"{page}: external resource unavailable offline: {msg.split(' ')[0]}")
            continue
        problems.append(f"console: {msg}")

    # images that did not load
    broken = browser.execute_script(
        "return Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
    problems += [f"broken image: {src}" for src in broken]

    # internal links to files that do not exist
    hrefs = browser.execute_script("return Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
    base = urlparse(server)
    for href in hrefs:
        u = urlparse(href)
        if u.netloc != base.netloc or not u.path or u.path.endswith("/"):
            continue
        if not (HTML / unquote(u.path).lstrip("/")).exists():
            problems.append(f"broken link: {u.path}")

    # error text in cell outputs, and figures where a results chapter needs them
    outputs = browser.execute_script(
        "return Array.from(document.querySelectorAll('.cell_output')).map(e => e.innerText)")
    for text in outputs:
        for word in ERROR_TEXT:
            if word in text:
                problems.append(f"'{word}' in a cell output: {text[:200]!r}")
    if Path(page).stem in RESULTS_CHAPTERS:
        figures = browser.execute_script("return document.querySelectorAll('.cell_output img').length")
        if figures == 0:
            problems.append("a results chapter without a single figure")

    SHOTS.mkdir(parents=True, exist_ok=True)
    height = browser.execute_script("return Math.min(document.body.scrollHeight, 16000)")
    browser.set_window_size(1280, max(900, height))
    browser.save_screenshot(str(SHOTS / (page.replace("/", "_").removesuffix(".html") + ".png")))
    browser.set_window_size(1280, 900)
    assert not problems, f"{page}:\n  " + "\n  ".join(problems)
