"""One plotting style for every figure of the book (layer 1, presentation).

Figure functions (`studies/*/figures.py`) call `use()` first and the helpers below instead of
styling inline:

- `use()`                 seaborn's whitegrid theme at a size that reads on a page; legends of
                          at least LEGEND_SIZE points
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

LEGEND_SIZE = 9
CONTEXT = "notebook"
BAND_ALPHA = 0.18
REFERENCE_STYLE = {"color": "0.35", "ls": ":", "lw": 1.2}


def use() -> None:
    """The book's theme: seaborn whitegrid, readable legend and tick sizes."""
    import seaborn as sns

    sns.set_theme(style="whitegrid", context=CONTEXT)
    plt.rcParams.update({"legend.fontsize": LEGEND_SIZE, "legend.title_fontsize": LEGEND_SIZE,
                         "legend.framealpha": 0.85, "axes.titlesize": 11, "figure.dpi": 100,
                         "savefig.bbox": "tight"})


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
        return super().tick_values(vmin, vmax)


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


def band(ax, x, lo, hi, color=None, label: str | None = None, alpha: float = BAND_ALPHA):
    """Shade the confidence band [lo, hi] around a fitted curve over x."""
    x, lo, hi = (np.asarray(v, float) for v in (x, lo, hi))
    ok = np.isfinite(lo) & np.isfinite(hi)
    return ax.fill_between(x[ok], lo[ok], hi[ok], color=color, alpha=alpha, lw=0, label=label)


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


def legend(ax, outside_over: int = 6, **kw):
    """A legend at LEGEND_SIZE; with more than `outside_over` entries it goes right of the axes."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    if len(handles) > outside_over:
        kw = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), **kw}
    return ax.legend(fontsize=kw.pop("fontsize", LEGEND_SIZE), **kw)
