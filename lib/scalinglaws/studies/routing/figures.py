"""The routing chapter's figures, each drawn from stored tables (`loss`, `fits`, `routing`,
`effective_params`, `resources`)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from scalinglaws import laws
from scalinglaws import plotstyle as PS

ROUTER_NAMES = {"dense": "dense", "sbase": "S-BASE", "rlr": "RL-R", "hash": "Hash", "switch": "Switch top-1"}


def fit_params(fits, router: str) -> dict | None:
    f = fits[fits["router"] == router]
    return dict(zip(f["param"], f["estimate"])) if len(f) else None


def loss_vs_experts(loss, fits, samples=None):
    """L vs E per router (one panel each), one line per dense size, with the fitted routing law
    and its 95% bootstrap band (from `fit_samples`)."""
    PS.use()
    routers = [r for r in ROUTER_NAMES if r != "dense" and r in set(loss["router"])]
    dense = loss[loss["router"] == "dense"].set_index("size")
    sizes = dense.sort_values("N").index
    pal = dict(zip(sizes, sns.color_palette("viridis", len(sizes))))
    # two panels a row, so each keeps a readable width in the column
    ncols = min(2, len(routers))
    nrows = -(-len(routers) // ncols)
    fig, axes = PS.subplots(nrows, ncols, row_in=2.7, sharey=True, sharex=True)
    for ax in axes.flat[len(routers):]:
        ax.set_visible(False)
    for ax, r in zip(axes.flat, routers):
        p = fit_params(fits, r)
        for size in sizes:
            g = loss[(loss["router"] == r) & (loss["size"] == size)].sort_values("experts")
            E = np.concatenate([[1], g["experts"]])
            L = np.concatenate([[dense.loc[size, "L"]], g["L"]])
            ax.plot(E, L, "o", ms=4, color=pal[size], label=f"{size} (N={dense.loc[size, 'N']:,})")
            if p is not None:
                EE = np.geomspace(1, E.max(), 40)
                N = dense.loc[size, "N"]
                ax.plot(EE, 10 ** laws.routing_log10_loss(p, N, EE), "-", lw=1, color=pal[size])
                lo, hi = PS.bootstrap_band(EE, lambda q, x: 10 ** laws.routing_log10_loss(q, N, x), PS.draws_of(samples, router=r))
                PS.band(ax, EE, lo, hi, color=pal[size])
        ax.set(title=ROUTER_NAMES[r])
        PS.log_axis(ax, "x", sorted(set(loss["experts"])))
    for ax in axes[-1]:
        ax.set_xlabel("experts E")
    fig.supylabel("test CE L (nats/token)")
    PS.legend(axes.flat[0], outside_over=3, title="dense size")  # below the panels: inside it covered points
    return fig


def effective_params_figure(eff, loss, fits, samples=None):
    """Every model at its effective parameter count N_bar (measured L through the dense fit): the
    collapse onto the dense line is the EPC's claim; left, the same models against their own N."""
    PS.use()
    dense = loss[loss["router"] == "dense"].sort_values("N")
    pd_ = fit_params(fits, "dense")
    fig, axes = PS.subplots(1, 2, row_in=3.3, sharey=True)
    axes = axes[0]
    for ax, col, title in ((axes[0], "N", "active N"),
                           (axes[1], "N_bar_fit", "effective N_bar (fit)")):
        ax.plot(dense["N"], dense["L"], "ks-", label="dense")
        for r, g in eff.groupby("router"):
            ax.scatter(g[col], g["L"], s=10 + 4 * np.log2(g["experts"]), label=ROUTER_NAMES.get(r, r), alpha=0.8)
        if pd_ is not None:
            NN = np.geomspace(min(dense["N"].min(), eff[col].min()), max(dense["N"].max(), eff[col].max()), 40)
            ax.plot(NN, 10 ** (pd_["a"] * np.log10(NN) + pd_["d"]), "k--", lw=0.8, label="dense law")
            lo, hi = PS.bootstrap_band(NN, lambda q, x: 10 ** (q["a"] * np.log10(x) + q["d"]), PS.draws_of(samples, router="dense"))
            PS.band(ax, NN, lo, hi, color="k", label="dense law 95% band" if np.isfinite(lo).any() else None)
        ax.set(xlabel="parameters", title=title)
        PS.log_axis(ax, "x", max_labels=4)
    axes[0].set_ylabel("test CE L (nats/token)")
    PS.legend(axes[1])
    return fig


def load_balance_figure(routing):
    """Load max/mean per router and E at evaluation (per domain, mean over routed blocks) and in training."""
    PS.use()
    g = routing.groupby(["router", "experts", "phase"], as_index=False)[["load_max_over_mean", "entropy"]].mean()
    fig, axes = PS.subplots(1, 2, row_in=3.2)
    axes = axes[0]
    for r, h in g[g["phase"] == "train"].groupby("router"):
        axes[0].plot(h["experts"], h["load_max_over_mean"], "o-", label=ROUTER_NAMES.get(r, r))
        axes[1].plot(h["experts"], h["entropy"] / np.log(h["experts"]), "o-", label=ROUTER_NAMES.get(r, r))
    axes[0].set(xlabel="experts E", ylabel="max / mean tokens per expert", title="load (training)")
    axes[1].set(xlabel="experts E", ylabel="router entropy / log E", title="entropy (training)", ylim=(0, 1.05))
    for ax in axes:
        PS.log_axis(ax, "x", sorted(set(g["experts"])))
    axes[0].axhline(1.0, label="perfect balance", **PS.REFERENCE_STYLE)
    PS.legend(axes[0])
    return fig
