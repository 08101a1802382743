"""The checks of what a reader sees (tests/book_checks.py, run on the built book by
tests/test_book_browser.py) fail on pages broken on purpose, and pass on a page done right.

Two levels: each check as a function of a report built by hand (always runs), and small HTML pages
opened in headless Chromium (when Debian's chromium + chromium-driver are installed; seconds, no
book build): raw TeX without MathJax, a role nested in backticks, `**` glued as text, a figure
shrunk by the page or drawn too wide, a figure without a caption, a table and a code line wider
than the column, the result block missing or below the first screen.
"""
from __future__ import annotations

import functools
import http.server
import io
import shutil
import threading
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

import book_checks as BC  # noqa: E402
from scalinglaws import plotstyle as PS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MATHJAX = ROOT / "node_modules" / "mathjax"


def _png(path: Path, width_in: float = PS.COLUMN_IN, font_pt: float | None = None) -> Path:
    """A figure drawn through plotstyle (its PNG records min_font_px), `width_in` wide."""
    import matplotlib.pyplot as plt
    PS.use()
    fig, axes = PS.subplots(1, 1, row_in=2.5, width_in=width_in)
    axes[0, 0].plot([1, 2, 3], [3, 1, 2], label="a series")
    axes[0, 0].set(xlabel="x", ylabel="y")
    if font_pt:
        axes[0, 0].tick_params(labelsize=font_pt)
    path.write_bytes(PS.png_bytes(fig))
    plt.close(fig)
    return path


def _report(**kw) -> dict:
    base = {"text": "A plain paragraph.", "body_font_px": 16.0, "column_px": 690.0, "figures": [], "wide": [],
            "glance_top": 120.0}
    return {**base, **kw}


# ----------------------------------------------------------------------------- checks on reports

def test_png_records_its_smallest_font(tmp_path):
    assert BC.png_min_font_px(_png(tmp_path / "a.png")) == pytest.approx(PS.FONT_PT * PS.DPI / 72, abs=0.01)
    assert BC.png_min_font_px(_png(tmp_path / "b.png", font_pt=6)) == pytest.approx(6 * PS.DPI / 72, abs=0.01)


@pytest.mark.parametrize("text", [r"the law \(L = N^{-\alpha}\) holds", r"display \[x\]", "a $k$-merge",
                                  r"with \frac{1}{k} falling", "$$L$$"])
def test_raw_tex_is_found(text):
    assert BC.raw_tex(_report(text=text))
    assert not BC.raw_tex(_report(text="the law L = N^-alpha holds, at 3 $ per run"))


@pytest.mark.parametrize("text", ["commit {glue:text}commit``", "see {ref}`fig-a`", "the claim **holds**",
                                  "{cite}`wang2025merging`", "no study has a `gpu` run yet"])
def test_literal_markup_is_found(text):
    assert BC.literal_markup(_report(text=text))
    assert not BC.literal_markup(_report(text="the sets {2, 3, 5} and a*b"))


def test_figure_fonts_fail_when_shrunk_or_small(tmp_path):
    ok = _png(tmp_path / "ok.png")
    wide = _png(tmp_path / "wide.png", width_in=13)
    small = _png(tmp_path / "small.png", font_pt=6)
    from PIL import Image
    w = {p.name: Image.open(p).size[0] for p in (ok, wide, small)}
    fig = lambda name, shown: {"src": f"http://h/{name}", "natural_width": w[name], "rendered_width": shown,  # noqa: E731
                               "caption": "c"}
    assert BC.figure_fonts(_report(figures=[fig("ok.png", w["ok.png"])]), tmp_path) == []
    assert BC.figure_fonts(_report(figures=[fig("ok.png", 0.6 * w["ok.png"])]), tmp_path)   # shrunk by the page
    assert BC.figure_fonts(_report(figures=[fig("wide.png", 690)]), tmp_path)               # too wide: fit to column
    assert BC.figure_fonts(_report(figures=[fig("small.png", w["small.png"])]), tmp_path)   # small fonts
    (tmp_path / "plain.png").write_bytes(_plain_png())
    assert "no min_font_px" in BC.figure_fonts(_report(figures=[{**fig("ok.png", 600), "src": "http://h/plain.png"}]),
                                               tmp_path)[0]


def _plain_png() -> bytes:
    from PIL import Image
    buf = io.BytesIO()
    Image.new("RGB", (10, 10)).save(buf, format="PNG")
    return buf.getvalue()


def test_captions_width_and_result_block():
    fig = {"src": "http://h/a.png", "natural_width": 600, "rendered_width": 600, "caption": ""}
    assert BC.figure_captions(_report(figures=[fig]))
    assert not BC.figure_captions(_report(figures=[{**fig, "caption": "Fig. 1 What to see."}]))
    assert BC.too_wide(_report(wide=[{"tag": "table", "width": 900, "text": "x"}]))
    assert BC.result_first(_report(glance_top=None)) and BC.result_first(_report(glance_top=2400))
    assert not BC.result_first(_report(glance_top=200))


# ----------------------------------------------------------------------------- small pages in the browser

PAGE = """<!doctype html><html><head><meta charset="utf-8">{head}
<style>body {{ font-size: 16px; margin: 0; }} article {{ width: 690px; margin: 0 20px; }}
img {{ max-width: 100%; }}</style></head>
<body><article>{glance}<p>A paragraph of body text.</p>{body}</article></body></html>"""
GLANCE = '<div class="admonition glance"><p>The result, first.</p></div>'
MATHJAX_HEAD = '<script id="MathJax-script" async src="/mathjax/es5/tex-mml-chtml.js"></script>'
FIGURE = '<figure><img src="fig.png" {style}><figcaption>{caption}</figcaption></figure>'

BROKEN = {
    "raw_tex": dict(body=r"<p>The law \(L = N^{-\alpha}\) without MathJax.</p>"),
    "role_in_backticks": dict(body="<p>Commit <code>{glue:text}</code>commit``, as the chapter wrote it.</p>"),
    "stars_as_text": dict(body="<p>More steps put the larger size ahead: **holds**.</p>"),
    "shrunk_figure": dict(body=FIGURE.format(style='style="width: 380px"', caption="What to see.")),
    "wide_figure": dict(body=FIGURE.format(style="", caption="What to see.").replace("fig.png", "wide.png")),
    "no_caption": dict(body=FIGURE.format(style="", caption="")),
    "wide_table": dict(body="<table><tr>" + "".join(f"<td style='white-space:nowrap'>column_number_{i}</td>"
                                                     for i in range(20)) + "</tr></table>"),
    "wide_code": dict(body="<div class='cell_input'><pre>" + "x = 1; " * 60 + "</pre></div>"),
    "no_result_block": dict(glance=""),
    "result_block_late": dict(glance="", body="<div style='height: 2000px'></div>" + GLANCE),
}
EXPECTED = {"raw_tex": "raw TeX", "role_in_backticks": "literal role", "stars_as_text": "literal **",
            "shrunk_figure": "smallest text", "wide_figure": "smallest text", "no_caption": "without a caption",
            "wide_table": "wider than the column", "wide_code": "wider than the column",
            "no_result_block": "no result-at-a-glance", "result_block_late": "below the first screen"}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    _png(root / "fig.png")
    _png(root / "wide.png", width_in=13)
    good_body = FIGURE.format(style="", caption="Fig. 1 What to see.") + "<table><tr><td>1</td><td>2</td></tr></table>"
    head = ""
    if MATHJAX.is_dir():  # the shipped MathJax (npm ci): the good page's math must be typeset
        shutil.copytree(MATHJAX / "es5", root / "mathjax" / "es5")
        head, good_body = MATHJAX_HEAD, good_body + r"<p>The law \(L = N^{-\alpha}\) and $$L_* + B N^{-\beta}$$</p>"
    (root / "good.html").write_text(PAGE.format(head=head, glance=GLANCE, body=good_body))
    for name, parts in BROKEN.items():
        (root / f"{name}.html").write_text(PAGE.format(head="", **{"glance": GLANCE, "body": "", **parts}))
    handler = functools.partial(_Quiet, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser():
    if not BC.browser_available():
        pytest.skip("no chromium + chromedriver: the checks are tested on hand-built reports only")
    driver = BC.chrome()
    yield driver
    driver.quit()


def _problems(browser, site, name):
    root, url = site
    browser.get(f"{url}/{name}.html")
    if browser.execute_script("return !!document.getElementById('MathJax-script')"):
        assert BC.mathjax_done(browser)
    return BC.reader_problems(browser.execute_script(BC.COLLECT_JS), root, chapter=True)


def test_a_page_done_right_passes(browser, site):
    assert _problems(browser, site, "good") == []


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_each_broken_page_fails(browser, site, name):
    problems = _problems(browser, site, name)
    assert any(EXPECTED[name] in p for p in problems), problems


def test_stitch_check_flags_a_first_screen_shifted_or_cut(tmp_path):
    """The check `full_page_screenshot` runs on itself: the stitched first screen against a plain
    screenshot. The earlier stitcher's pages were shifted left by 2-250 px with their sidebar cut."""
    from PIL import Image
    plain = Image.open(_png(tmp_path / "a.png")).convert("RGB")
    assert BC.stitch_problems(plain.copy(), plain) == []
    tall = Image.new("RGB", (plain.size[0], plain.size[1] * 3), "white")
    tall.paste(plain, (0, 0))
    assert BC.stitch_problems(tall, plain) == []  # a whole page: its top is the first screen
    shifted = Image.new("RGB", plain.size, "white")
    shifted.paste(plain.crop((24, 0, *plain.size)), (0, 0))
    assert any("differs from a plain screenshot" in p for p in BC.stitch_problems(shifted, plain))
    assert any("width" in p for p in BC.stitch_problems(plain.crop((0, 0, plain.size[0] - 24, plain.size[1])), plain))


def test_full_page_screenshot_is_whole(browser, site, tmp_path):
    root, url = site
    (root / "tall.html").write_text(PAGE.format(head="", glance=GLANCE, body="<div style='height: 30000px'></div>"
                                                "<p style='background: red'>the end</p>"))
    browser.get(f"{url}/tall.html")
    browser.execute_script("window.scrollTo(0, 12000)")  # where an earlier check may have left it
    from PIL import Image
    height = BC.full_page_screenshot(browser, tmp_path / "tall.png")
    img = Image.open(tmp_path / "tall.png")
    assert height > 30000 and img.size[1] == height
    # the last tile was captured, not left white: the red paragraph near the bottom shows
    bottom = img.crop((0, height - 200, 400, height)).convert("RGB")
    assert any(px[0] > 200 and px[1] < 80 for px in bottom.getdata())
