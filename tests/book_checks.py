"""What a reader of the book sees, checked: the functions behind tests/test_book_browser.py.

A page is opened in headless Chromium; `COLLECT_JS` reads what the reader sees into one report
(a dict: the prose text with math and code taken out, each figure's rendered and natural size,
each table's and code cell's width against the column, the result block's position). The checks
below are plain functions of that report, so tests/test_book_checks.py proves that each one fails
on a page broken on purpose (small HTML pages in the browser, and reports built by hand), without
a full book build.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

# A reader's tick labels should be at least this share of the body text's size.
MIN_FONT_RATIO = 0.75

# The prose as rendered: math typeset by MathJax (mjx-container) and code blocks removed; inline
# code kept (a role nested in backticks renders as inline code plus text).
COLLECT_JS = r"""
const article = document.querySelector('article') || document.body;
const column = article.getBoundingClientRect().width;
const clone = article.cloneNode(true);
clone.querySelectorAll('mjx-container, script, style, pre, .cell_input, .highlight, .MathJax, mjx-assistive-mml')
     .forEach(e => e.remove());
const para = article.querySelector('p') || document.body;
const figures = Array.from(article.querySelectorAll('.cell_output img, figure img')).map(img => {
  const fig = img.closest('figure');
  const cap = fig ? fig.querySelector('figcaption') : null;
  return {src: img.currentSrc || img.src, natural_width: img.naturalWidth,
          rendered_width: img.getBoundingClientRect().width,
          caption: cap ? cap.innerText.trim() : ''};
});
const wide = [];
article.querySelectorAll('table, .cell_input pre, .cell_output pre, div.highlight').forEach(e => {
  const w = Math.max(e.getBoundingClientRect().width, e.scrollWidth);
  if (w > column + 1 || e.scrollWidth > e.clientWidth + 1) {
    wide.push({tag: e.tagName.toLowerCase(), width: Math.round(w), text: (e.innerText || '').slice(0, 80)});
  }
});
const glance = article.querySelector('.glance');
return {text: clone.textContent, body_font_px: parseFloat(getComputedStyle(para).fontSize),
        column_px: column, figures: figures, wide: wide,
        glance_top: glance ? glance.getBoundingClientRect().top + window.scrollY : null};
"""

# Raw TeX that MathJax should have typeset: \( \) \[ \] $$, $x$-style spans, \command{ or \alpha.
_TEX = re.compile(r"\\\(|\\\)|\\\[|\\\]|\$\$|\$[^$\s][^$\n]{0,80}\$|\\(?:frac|hat|tfrac|log|sum|mathrm|alpha|beta|gamma|epsilon|lambda)\b")
# A MyST role or directive that was not rendered: {glue:text}, {ref}, {cite}`...`, {numref}...
_ROLE = re.compile(r"\{(?:glue(?::[a-z]+)?|ref|numref|cite(?::[a-z]+)?|download|doc|eq|term|math)\}")


def _snippet(text: str, m: re.Match) -> str:
    return " ".join(text[max(0, m.start() - 40): m.end() + 40].split())


def raw_tex(report: dict) -> list[str]:
    """Math left as TeX in the rendered prose (MathJax did not load or did not typeset it)."""
    text = report["text"]
    return [f"raw TeX: ...{_snippet(text, m)}..." for m in _TEX.finditer(text)][:10]


def literal_markup(report: dict) -> list[str]:
    """MyST roles, ** emphasis and backticks shown as literal text (a role nested in backticks, Markdown
    glued as plain text by {glue:text})."""
    text = report["text"]
    out = [f"literal role: ...{_snippet(text, m)}..." for m in _ROLE.finditer(text)]
    out += [f"literal **: ...{_snippet(text, m)}..." for m in re.finditer(r"\*\*", text)]
    out += [f"literal backtick: ...{_snippet(text, m)}..." for m in re.finditer("`", text)]
    return out[:10]


def png_min_font_px(path) -> float | None:
    """The smallest font (px of the PNG as saved) a figure records in its metadata
    (`scalinglaws.plotstyle.png_metadata`); None when it records none."""
    from PIL import Image
    with Image.open(path) as im:
        value = getattr(im, "text", {}).get("min_font_px")
    return float(value) if value else None


def local_path(src: str, html_root) -> Path:
    return Path(html_root) / unquote(urlparse(src).path).lstrip("/")


def figure_fonts(report: dict, html_root, min_ratio: float = MIN_FONT_RATIO) -> list[str]:
    """Figures whose smallest text, as rendered (the PNG's min_font_px scaled by rendered/natural
    width), is under `min_ratio` of the body text: a figure drawn too wide for the column (shrunk to
    fit), drawn with small fonts, or shrunk by the page's CSS all fail."""
    out = []
    for f in report["figures"]:
        name = Path(urlparse(f["src"]).path).name
        path = local_path(f["src"], html_root)
        if not path.suffix.lower() == ".png" or not path.exists():
            continue  # SVG logos and remote images carry no font record
        font = png_min_font_px(path)
        if font is None:
            out.append(f"figure {name}: no min_font_px in its PNG (not drawn through scalinglaws.plotstyle)")
            continue
        scale = f["rendered_width"] / f["natural_width"] if f["natural_width"] else 0.0
        shown = font * scale
        if shown < min_ratio * report["body_font_px"]:
            out.append(f"figure {name}: smallest text {shown:.1f} px as rendered ({font:.1f} px drawn, shown at "
                       f"{scale:.2f}x: {f['natural_width']} px in {f['rendered_width']:.0f} px) < {min_ratio} x "
                       f"{report['body_font_px']:.0f} px body text")
    return out


def figure_captions(report: dict) -> list[str]:
    """Figures without a caption (a figure cell without `mystnb.figure.caption`)."""
    return [f"figure without a caption: {Path(urlparse(f['src']).path).name}" for f in report["figures"]
            if not f["caption"]]


def too_wide(report: dict) -> list[str]:
    """Tables and code cells wider than the column (they scroll sideways or run off the page)."""
    return [f"{w['tag']} wider than the column ({w['width']} px > {report['column_px']:.0f} px): {w['text']!r}"
            for w in report["wide"]]


def result_first(report: dict, screen_px: int = 900) -> list[str]:
    """The chapter's result-at-a-glance block (class `glance`) missing or below the first screen."""
    top = report.get("glance_top")
    if top is None:
        return ["no result-at-a-glance block (an admonition of class `glance`)"]
    if top > screen_px:
        return [f"the result-at-a-glance block starts at {top:.0f} px, below the first screen ({screen_px} px)"]
    return []


def reader_problems(report: dict, html_root, chapter: bool) -> list[str]:
    """Every check of what a reader sees; `chapter`: a results chapter, which opens with its result."""
    out = raw_tex(report) + literal_markup(report) + figure_fonts(report, html_root) + figure_captions(report)
    out += too_wide(report)
    if chapter:
        out += result_first(report)
    return out


def mathjax_done(driver, timeout_s: float = 30) -> bool:
    """Wait until MathJax has typeset the page; False when the page has no MathJax or it failed to load."""
    driver.set_script_timeout(timeout_s)
    return bool(driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const t0 = Date.now();
        (function wait() {
          if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
            MathJax.startup.promise.then(() => done(true), () => done(false));
          } else if (Date.now() - t0 > 5000) { done(false); } else { setTimeout(wait, 100); }
        })();"""))


def full_page_screenshot(driver, path) -> int:
    """A screenshot of the whole page, however tall: the window scrolled one screen at a time, each
    screen captured as the reader sees it and pasted at its scroll offset (so sticky bars repeat on
    every screen). Returns the page height.

    Captured in one go beyond the viewport instead (`captureBeyondViewport`, the earlier stitcher),
    the page is laid out for a window as tall as the page: the book's pages came out with the left
    ~20-250 px cut and the content shifted (findings, index, routing), while a plain screenshot was
    whole. So the stitched image's first screen is checked against a plain screenshot of the top of
    the page (`stitch_problems`), which raises when they differ."""
    import base64
    import io

    from PIL import Image

    driver.execute_script("window.scrollTo(0, 0)")
    width = int(driver.execute_script("return document.documentElement.clientWidth"))
    height = int(driver.execute_script(
        "return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)"))
    canvas = Image.new("RGB", (width, height), "white")
    view = int(driver.execute_script("return window.innerHeight"))
    for y in range(0, height, view):  # the window scrolled screen by screen: the layout a reader sees
        driver.execute_script(f"window.scrollTo(0, {y})")
        top = int(driver.execute_script("return window.scrollY"))  # the last screen stops at the page's end
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
        canvas.paste(Image.open(io.BytesIO(base64.b64decode(shot["data"]))).convert("RGB"), (0, top))
    driver.execute_script("window.scrollTo(0, 0)")
    plain = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
    canvas.save(path)
    problems = stitch_problems(canvas, plain)
    if problems:
        raise AssertionError(f"{path}: " + "; ".join(problems))
    return height


def stitch_problems(stitched, plain, tolerance: float = 0.02) -> list[str]:
    """Where a stitched full-page screenshot's first screen differs from a plain screenshot of it (both
    PIL images taken at the top-left corner): a different width, or more than `tolerance` of the
    pixels differing (a shifted or cut page differs almost everywhere; a caret or an animation, little)."""
    from PIL import ImageChops
    if stitched.size[0] != plain.size[0]:
        return [f"stitched width {stitched.size[0]} px, the browser's {plain.size[0]} px"]
    top = stitched.crop((0, 0, plain.size[0], min(plain.size[1], stitched.size[1])))
    plain = plain.crop((0, 0, *top.size))
    diff = ImageChops.difference(top, plain).convert("L").point(lambda v: 255 if v > 24 else 0)
    share = sum(diff.histogram()[255:]) / (top.size[0] * top.size[1])
    return [f"its first screen differs from a plain screenshot in {share:.1%} of the pixels (shifted or cut)"] \
        if share > tolerance else []


def browser_available() -> bool:
    return bool(CHROMIUM and Path(DRIVER).exists())


def chrome(width: int = 1280, height: int = 900):
    """Headless Chromium at a laptop's window size, logging the console."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    # the flags this machine's closed network needs (no background connections, no sandbox as root)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", f"--window-size={width},{height}", "--hide-scrollbars"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(60)
    return driver
