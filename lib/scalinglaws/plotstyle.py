"""One plotting style for every figure of the book (layer 1, presentation).

Figure functions (`studies/*/figures.py`) call `use()` first and the helpers below instead of
styling inline:

- `use()`                 seaborn's whitegrid theme with every font at FONT_PT or more; figures drawn
                          at DPI, so a figure COLUMN_IN wide is shown at its natural size in the
                          book's column and its text reads at body-text scale (tests/test_book_browser.py
                          checks the rendered size against the PNG's `min_font_px` metadata)
- `subplots(r, c)`        a figure COLUMN_IN wide (constrained layout), `row_in` inches per row
- `log_axis(ax, "x")`     a log axis labelled in plain numbers (1,000 / 0.01 / 3e+06), at the major
                          ticks or at chosen `ticks`, never the overlapping "3x10^4 4x10^4" minors
- `band(ax, x, lo, hi)`   a confidence band around a fitted curve (bootstrap percentiles), from
                          `bootstrap_band` over the draws `draws_of` selects from `fit_samples`
- `reference(ax, y)`      a horizontal reference line (e.g. the base model), labelled in the legend
- `legend(ax)`            a readable legend (outside the axes when it has many entries)
"""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter, NullLocator

# The book's column is about 690 CSS px wide (sphinx-book-theme at a 1280 px window); a figure drawn
# COLUMN_IN wide at DPI is 650 px, shown unscaled. Its smallest text is FONT_PT = 13.9 px there,
# 0.87 of the 16 px body text (the browser test asks for 0.75).
COLUMN_IN = 6.5
DPI = 100
FONT_PT = 10
LEGEND_SIZE = FONT_PT
CONTEXT = "notebook"
BAND_ALPHA = 0.18
REFERENCE_STYLE = {"color": "0.35", "ls": ":", "lw": 1.2}


def use() -> None:
    """The book's theme: seaborn whitegrid, every font at FONT_PT or more, figures at DPI; in a
    notebook, PNGs that record their smallest font (`register_png_metadata`)."""
    import seaborn as sns

    sns.set_theme(style="whitegrid", context=CONTEXT)
    plt.rcParams.update({"font.size": FONT_PT + 1, "axes.labelsize": FONT_PT + 1, "axes.titlesize": FONT_PT + 1,
                         "xtick.labelsize": FONT_PT, "ytick.labelsize": FONT_PT, "legend.fontsize": LEGEND_SIZE,
                         "legend.title_fontsize": LEGEND_SIZE, "figure.titlesize": FONT_PT + 1,
                         "legend.framealpha": 0.85, "figure.dpi": DPI, "savefig.dpi": DPI,
                         "savefig.bbox": "tight", "figure.figsize": (COLUMN_IN, 0.62 * COLUMN_IN)})
    register_png_metadata()


def subplots(nrows: int = 1, ncols: int = 1, row_in: float = 3.0, width_in: float = COLUMN_IN, **kw):
    """`plt.subplots` for the book's column: COLUMN_IN wide, `row_in` inches per row, constrained
    layout (which also makes room for `legend`'s figure legends below the panels)."""
    return plt.subplots(nrows, ncols, figsize=(width_in, row_in * nrows), layout="constrained",
                        **{"squeeze": False, **kw})


def min_font_pt(fig) -> float:
    """The smallest font size (points) of any visible, non-empty text of `fig`: tick labels, labels,
    titles, legends, annotations (a heatmap's numbers)."""
    from matplotlib.text import Text
    fig.draw_without_rendering()  # tick labels exist only once the figure is drawn
    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    return float(min(sizes)) if sizes else float("nan")


def png_metadata(fig, dpi: float = DPI) -> dict:
    """The PNG text chunks the book's figures carry: the smallest font in pixels of the PNG as saved,
    so a browser test can compare it, scaled by rendered/natural width, with the body text."""
    return {"Software": "scalinglaws.plotstyle", "min_font_px": f"{min_font_pt(fig) * dpi / 72:.2f}"}


def png_bytes(fig) -> bytes:
    """The figure as PNG at DPI, tight bounding box, with `png_metadata`."""
    import io
    buf = io.BytesIO()
    fig.canvas.draw()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", metadata=png_metadata(fig))
    return buf.getvalue()


def register_png_metadata() -> None:
    """In IPython, render figures through `png_bytes` (the inline backend's PNG formatter drops
    metadata); outside IPython nothing to do."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency of the book, not of the library
        return
    ip = get_ipython()
    if ip is None:
        return
    from matplotlib.figure import Figure
    # the inline backend registers its own PNG formatter when pyplot first loads it (at the first figure):
    # load it now, so that registration comes before ours instead of replacing it
    plt._get_backend_mod()
    ip.display_formatter.formatters["image/png"].for_type(Figure, png_bytes)


def plain(v: float) -> str:
    """A plain label for a tick value: 3, 0.01, 1,000, 3e+06 (no mathtext powers)."""
    if v == 0 or not math.isfinite(v):
        return f"{v:g}"
    if abs(v) >= 1e6 or abs(v) < 1e-3:
        return f"{v:.0e}".replace("e+0", "e").replace("e-0", "e-")
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:g}"


class _PlainLogLocator(LogLocator):
    """Decades; within a narrow range also 2x and 5x (under 1.5 decades) or every integer multiple
    (under 0.3 decades), so a panel spanning 3,000 to 14,000, or losses from 4.8 to 6.2, still has
    labelled ticks."""

    def tick_values(self, vmin, vmax):
        if vmin > 0 and vmax > 0 and math.isfinite(vmin) and math.isfinite(vmax):
            span = abs(math.log10(vmax / vmin))
            self.set_params(subs=tuple(range(1, 10)) if span < 0.3 else (1.0, 2.0, 5.0) if span < 1.5 else (1.0,))
        ticks = np.asarray(super().tick_values(vmin, vmax))
        # thin to what the axis has room for at FONT_PT (about 0.65 in per label), so labels never run
        # together (matplotlib falls back to linear ticks, 300 400 ... 900, when one decade tick is in view)
        lo, hi = sorted((vmin, vmax))
        inside = ticks[(ticks >= lo) & (ticks <= hi)]
        room = self._room()
        if room and len(inside) > room:
            inside = inside[::math.ceil(len(inside) / room)]
            return inside
        return ticks

    def _room(self) -> int | None:
        axis = getattr(self, "axis", None)
        if axis is None or axis.axes is None:
            return None
        box = axis.axes.get_position().transformed(axis.axes.figure.transFigure)
        size_in = (box.width if axis.axis_name == "x" else box.height) / axis.axes.figure.dpi
        return max(2, int(size_in / 0.65))


def log_axis(ax, which: str = "x", ticks=None, max_labels: int = 8) -> None:
    """Log scale on `which` ('x' or 'y') with plain labels: at `ticks` when given (e.g. the E values
    measured), else at the decades (thinned to at most `max_labels`); minor ticks unlabelled."""
    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    if ticks is not None:
        ticks = sorted({float(t) for t in ticks if t > 0})
        step = max(1, math.ceil(len(ticks) / max_labels))
        axis.set_major_locator(FixedLocator(ticks[::step]))
        axis.set_minor_locator(NullLocator())
    else:
        axis.set_major_locator(_PlainLogLocator(base=10, numticks=max_labels))
        axis.set_minor_locator(LogLocator(base=10, subs=np.arange(2, 10) * 0.1, numticks=12))
    axis.set_major_formatter(FuncFormatter(lambda v, _: plain(v)))
    axis.set_minor_formatter(NullFormatter())


def band(ax, x, lo, hi, color=None, label: str | None = None, alpha: float = BAND_ALPHA, clip: bool = True):
    """Shade the confidence band [lo, hi] around a fitted curve over x. `clip`: the band is drawn
    inside the y range the axes had before it (the data's), so a wide band (a poorly determined
    fit) shows as reaching the panel's edge instead of rescaling the panel and flattening the data."""
    x, lo, hi = (np.asarray(v, float) for v in (x, lo, hi))
    ok = np.isfinite(lo) & np.isfinite(hi)
    has_data = ax.has_data()
    before = ax.dataLim.frozen()
    out = ax.fill_between(x[ok], lo[ok], hi[ok], color=color, alpha=alpha, lw=0, label=label)
    if clip and has_data:  # the band leaves the data limits (and so autoscaling) as the data set them
        ax.dataLim.set_points(np.array([[ax.dataLim.x0, before.y0], [ax.dataLim.x1, before.y1]]))
        ax.autoscale_view()
    return out


def draws_of(samples, **keys):
    """The stored bootstrap draws (a study's `fit_samples`) of one fit, selected by its key columns
    (e.g. router="sbase"); an empty frame without samples. Feed to `bootstrap_band`."""
    import pandas as pd
    if samples is None or not len(samples):
        return pd.DataFrame()
    m = np.ones(len(samples), bool)
    for k, v in keys.items():
        m &= (samples[k] == v).to_numpy()
    return samples[m]


def bootstrap_band(x, predict, draws, q=(2.5, 97.5)):
    """The percentile band of a fitted curve: `predict(params, x)` over bootstrap draws (an iterable
    of parameter dicts, or a DataFrame of draws, one row each). Returns (lo, hi) over x."""
    rows = draws.to_dict("records") if hasattr(draws, "to_dict") else list(draws)
    if not rows:
        n = len(np.asarray(x))
        return np.full(n, np.nan), np.full(n, np.nan)
    curves = np.array([predict(p, x) for p in rows], float)
    return tuple(np.nanpercentile(curves, q, axis=0))


def reference(ax, y: float, label: str = "base model", **kw):
    """A horizontal reference line (the base model's value, a paper's value), in the legend."""
    return ax.axhline(y, label=label, **{**REFERENCE_STYLE, **kw})


def legend(ax, outside_over: int = 4, **kw):
    """A legend at LEGEND_SIZE. With more than `outside_over` entries it leaves the axes: below the
    panels as a figure legend (constrained layout makes room; the figure stays COLUMN_IN wide, where
    a legend right of the axes would widen it and shrink its text on the page)."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    size = kw.pop("fontsize", LEGEND_SIZE)
    if len(handles) > outside_over and "loc" not in kw:
        fig = ax.figure
        if fig.get_layout_engine() is not None and type(fig.get_layout_engine()).__name__ == "ConstrainedLayoutEngine":
            ncols = max(1, min(3, (len(handles) + 3) // 4))
            return fig.legend(handles, labels, loc="outside lower center", ncols=ncols, fontsize=size, **kw)
        kw = {"loc": "upper center", "bbox_to_anchor": (0.5, -0.2), "ncols": 2, **kw}
    return ax.legend(handles, labels, fontsize=size, **kw)
