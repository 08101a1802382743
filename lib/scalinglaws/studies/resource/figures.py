"""The resource chapter's figures, each drawn from stored tables (`single`, `composite`,
`lm_ladders`, `fits`, and `fit_samples` for the fits' 95% bootstrap bands) in the book's style
(`scalinglaws.plotstyle`)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from scalinglaws import plotstyle as PS


def power_fit(fits: pd.DataFrame, mask) -> tuple[float, float] | None:
    """(A, alpha) of a stored power-law fit selected by `mask`, or None."""
    f = fits[mask]
    if not len(f):
        return None
    return f[f.param == "A"].estimate.iloc[0], f[f.param == "alpha"].estimate.iloc[0]


def single_figure(prim: pd.DataFrame, fits: pd.DataFrame, tasks, acts, samples: pd.DataFrame | None = None):
    """Loss vs allocated neurons per task x activation, coloured by the regulariser, with the power
    fit and (given `samples`, the stored `fit_samples`) its 95% bootstrap band."""
    PS.use()
    fig, axes = PS.subplots(len(acts), len(tasks), row_in=2.6, sharey="col")
    for r, act in enumerate(acts):
        for c, task in enumerate(tasks):
            ax = axes[r, c]
            g = prim[(prim.task == task) & (prim.activation == act)]
            sc = ax.scatter(g.neurons, g.loss, c=np.log10(g.reg + 1e-3), s=10, cmap="viridis")
            p = power_fit(fits, (fits.part == "single") & (fits.subject == task) & (fits.activation == act)
                          & fits.primary & (fits.law == "power"))
            if p is not None:
                n = np.geomspace(max(g.neurons.min(), 1), g.neurons.max(), 50)
                ax.plot(n, p[0] * n ** -p[1], "k-", lw=1, label=f"slope {-p[1]:.2f}")
                d = PS.draws_of(samples, part="single", subject=task, activation=act, law="power")
                if len(d):
                    lo, hi = PS.bootstrap_band(n, lambda q, x: q["A"] * x ** -q["alpha"], d)
                    PS.band(ax, n, lo, hi, color="k", label="95% band")
            # the fitted slope in the title: a legend in each small panel covered the points
            ax.set(title=f"{task} ({act})" + (f": slope {-p[1]:.2f}" if p is not None else ""), xlabel="neurons N" if r == len(acts) - 1 else "",
                   ylabel="loss" if c == 0 else "")
            PS.log_axis(ax, "x")
            PS.log_axis(ax, "y")
    # the colour bar below the panels: beside them it took a fifth of the column's width
    fig.colorbar(sc, ax=axes, label="log10(lambda + 0.001)", location="bottom", shrink=0.5, aspect=40)
    return fig


def shares_figure(comp: pd.DataFrame, compositions, first_task: str):
    """The share N_1/N of the first subtask against the allocated neurons N, per composite."""
    PS.use()
    fig, axes = PS.subplots(1, len(compositions), row_in=3.2, sharey=True)
    for ax, kind in zip(axes[0], compositions):
        g = comp[comp.kind == kind]
        for reg, gg in g.groupby("reg"):
            ax.scatter(gg.neurons, gg.share_1, s=12, label=f"lambda={reg:g}")
        m = g.groupby("width")[["neurons", "share_1"]].mean()
        ax.plot(m.neurons, m.share_1, "k.-", lw=1, label="mean per width")
        ax.set(ylim=(0, 1), xlabel="allocated neurons N", ylabel=f"share N_1/N ({first_task})" if ax is axes[0, 0] else "",
               title=kind)
        PS.log_axis(ax, "x")
        PS.legend(ax)
    return fig


def lm_figure(lm: pd.DataFrame, fits: pd.DataFrame, samples: pd.DataFrame | None = None):
    """Test loss of each ladder's chosen rungs (`chosen`: the rate with the lowest val loss)
    against non-embedding parameters, with the fitted reducible-loss law L = E + A N^-alpha
    (solid), its 95% bootstrap band (given `samples`) and its floor E (dotted)."""
    PS.use()
    fig, axes = PS.subplots(1, 1, row_in=3.6)
    ax = axes[0, 0]
    chosen = lm[lm["chosen"]] if "chosen" in lm.columns else lm
    floors = []
    for ladder, g in chosen.groupby("ladder"):
        g = g.sort_values("params_non_embedding")
        ax.plot(g.params_non_embedding, g.loss, "o", label=f"{ladder} ladder")
        color = ax.lines[-1].get_color()
        f = fits[(fits.part == "lm") & (fits.subject == ladder) & (fits.method == "non_embedding")].set_index("param")
        if {"E", "A", "alpha"} <= set(f.index):
            n = np.geomspace(g.params_non_embedding.min(), g.params_non_embedding.max(), 50)
            E, A, alpha = (f.loc[k, "estimate"] for k in ("E", "A", "alpha"))
            ax.plot(n, E + A * n ** -alpha, "-", lw=1, color=color)
            d = PS.draws_of(samples, part="lm", subject=ladder, law="power_offset")
            if len(d):
                PS.band(ax, n, *PS.bootstrap_band(n, lambda q, x: q["E"] + q["A"] * x ** -q["alpha"], d), color=color)
            floors.append((ladder, E, color))
    # floors inside the data's range as dotted lines; one far below it (a fit whose floor is poorly
    # determined) would squash the ladders onto one line, so it is named in the legend instead
    lo, hi = ax.get_ylim()
    for ladder, E, color in floors:
        if lo - 0.25 * (hi - lo) <= E <= hi:
            ax.axhline(E, ls=":", lw=1, color=color, label=f"{ladder} floor E")
        else:
            ax.plot([], [], ls=":", lw=1, color=color, label=f"{ladder} floor E = {E:.2f} (off scale)")
    ax.set(xlabel="non-embedding parameters", ylabel="test loss (nats/token)")
    PS.log_axis(ax, "x")
    PS.legend(ax)
    return fig
