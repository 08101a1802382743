"""The built book in a real browser: every page of `_build/html` opened in headless Chromium.

Fails on JavaScript console errors, images that do not load, internal links to missing files,
results chapters without figures, error text (`Traceback`, `Warning`) in cell outputs, and on what
a reader would see wrong (tests/book_checks.py, each check proven to fail by tests/test_book_checks.py):
raw TeX that MathJax did not typeset, literal MyST roles or `**`, figures whose smallest text is
rendered under 0.75 of the body text, figures without a caption, tables and code cells wider than
the column, a chapter without its result-at-a-glance block on the first screen. Saves a screenshot
of each whole page (tiles stitched, however tall) under `_build/screenshots/`.

It needs the built book and a browser, so the main test run skips it; `make test` runs it after
`make book` with SCALINGLAWS_BROWSER_TEST=1 (Debian's `chromium` + `chromium-driver`, which the
Makefile installs when it can, and says so loudly when it cannot).
"""
from __future__ import annotations

import functools
import http.server
import os
import threading
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

import book_checks as BC

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
RESULTS_CHAPTERS = ("testbed", "fitting", "merging", "resource", "routing")  # each shows figures
# chapters that open with their result (an admonition of class `glance` on the first screen)
GLANCE_CHAPTERS = ("testbed", "fitting", "merging", "della", "routing", "resource", "composition")
ERROR_TEXT = ("Traceback", "Warning")

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
    if not BC.browser_available():
        pytest.skip("NO BROWSER: install Debian's chromium and chromium-driver to test the book in a browser")
    driver = BC.chrome()
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
    has_math = browser.execute_script("return !!document.querySelector('.math, .MathJax, mjx-container')")
    if has_math and not BC.mathjax_done(browser):
        problems.append("MathJax did not load or did not finish typesetting")

    # console errors (the browser log: SEVERE = uncaught exceptions, failed loads). The book ships its
    # own MathJax, so every failed load fails, local or not.
    for entry in browser.get_log("browser"):
        msg = entry["message"]
        if entry["level"] != "SEVERE" or "favicon.ico" in msg:
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

    # what a reader sees: typeset math, rendered roles, readable and captioned figures, nothing wider
    # than the column, the result first
    report = browser.execute_script(BC.COLLECT_JS)
    problems += BC.reader_problems(report, HTML, chapter=Path(page).stem in GLANCE_CHAPTERS)

    SHOTS.mkdir(parents=True, exist_ok=True)
    BC.full_page_screenshot(browser, SHOTS / (page.replace("/", "_").removesuffix(".html") + ".png"))
    assert not problems, f"{page}:\n  " + "\n  ".join(problems)


def test_findings_table_sorts_and_filters(server, browser):
    """The Findings chapter's combined claims table filters by typed words and sorts by a header click,
    offline (_static/tablefilter.js ships with the book)."""
    browser.get(f"{server}/book/findings.html")
    visible = "return Array.from(document.querySelector('table.filterable').tBodies[0].rows)" \
              ".filter(r => r.style.display !== 'none')"
    total = browser.execute_script(visible + ".length")
    assert total > 5, "the Findings page has no filterable claims table"
    box = browser.find_element("css selector", "div.tablefilter input")
    box.send_keys("refuted")
    rows = browser.execute_script(visible + ".map(r => r.textContent.toLowerCase())")
    assert 0 < len(rows) < total or all("refuted" in r for r in rows)
    assert all("refuted" in r for r in rows)
    box.clear()
    browser.execute_script("arguments[0].dispatchEvent(new Event('input'))", box)
    assert browser.execute_script(visible + ".length") == total
    # sort by the verdict column, then check the order the reader sees
    heads = browser.execute_script("return Array.from(document.querySelector('table.filterable').tHead.rows[0].cells)"
                                   ".map(c => c.textContent.trim())")
    col = heads.index("verdict")
    browser.execute_script(f"document.querySelector('table.filterable').tHead.rows[0].cells[{col}].click()")
    verdicts = browser.execute_script(f"return Array.from(document.querySelector('table.filterable').tBodies[0].rows)"
                                      f".map(r => r.cells[{col}].textContent.trim().toLowerCase())")
    assert verdicts == sorted(verdicts, key=lambda v: v)
