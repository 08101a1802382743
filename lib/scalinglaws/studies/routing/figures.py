"""The routing chapter's figures, each drawn from stored tables (`loss`, `fits`, `routing`,
`effective_params`, `resources`)."""
from __future__ import annotations

import numpy as np
import seaborn as sns

from scalinglaws import laws
from scalinglaws import plotstyle as PS
from scalinglaws.studies.routing.names import ordered, router_name  # noqa: F401 (router_name: the chapter's)


def fit_params(fits, router: str) -> dict | None:
    f = fits[fits["router"] == router]
    return dict(zip(f["param"], f["estimate"])) if len(f) else None


def loss_vs_experts(loss, fits, samples=None, ylabel: str = "test CE L (nats/token)"):
    """L vs E per router (one panel each), one line per dense size, with the fitted routing law
    and its 95% bootstrap band (from `fit_samples`). Also draws Clark et al.'s points (`clark_loss`,
    `clark_fits`, `clark_fit_samples`: the same schema) with their `ylabel`."""
    PS.use()
    routers = [r for r in ordered(loss["router"]) if r != "dense"]
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
        ax.set(title=router_name(r))
        PS.log_axis(ax, "x", sorted(set(loss["experts"])))
    for ax in axes[-1]:
        ax.set_xlabel("experts E")
    fig.supylabel(ylabel)
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
            ax.scatter(g[col], g["L"], s=10 + 4 * np.log2(g["experts"]), label=router_name(r), alpha=0.8)
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
        axes[0].plot(h["experts"], h["load_max_over_mean"], "o-", label=router_name(r))
        axes[1].plot(h["experts"], h["entropy"] / np.log(h["experts"]), "o-", label=router_name(r))
    axes[0].set(xlabel="experts E", ylabel="max / mean tokens per expert", title="load (training)")
    axes[1].set(xlabel="experts E", ylabel="router entropy / log E", title="entropy (training)", ylim=(0, 1.05))
    for ax in axes:
        PS.log_axis(ax, "x", sorted(set(g["experts"])))
    axes[0].axhline(1.0, label="perfect balance", **PS.REFERENCE_STYLE)
    PS.legend(axes[0])
    return fig


def _relative_to_dense(loss):
    """loss rows of routed models with rel = L / L(dense, same size) - 1 (negative: routing helps)."""
    dense = loss[loss["router"] == "dense"].set_index("size")["L"]
    r = loss[(loss["router"] != "dense") & loss["size"].isin(dense.index)]
    return r.assign(rel=r["L"] / r["size"].map(dense) - 1.0)


def clark_beside_ours(clark_loss, loss):
    """Clark et al.'s grid and ours on the same axes: each routed model's loss relative to the dense
    model of its own size, L / L_dense - 1 (in %), against E, one panel per router Clark measured.
    Relative to dense because the two datasets differ in text, tokenizer and scale: the ratio is
    what routing changes, in the units of neither."""
    PS.use()
    routers = [r for r in ("sbase", "rlr", "hash") if r in set(clark_loss["router"])]
    c, o = _relative_to_dense(clark_loss), _relative_to_dense(loss)
    csizes = clark_loss[clark_loss["router"] == "dense"].sort_values("N")["size"].tolist()
    osizes = loss[loss["router"] == "dense"].sort_values("N")["size"].tolist()
    cpal = dict(zip(csizes, sns.color_palette("viridis", len(csizes))))
    opal = dict(zip(osizes, sns.color_palette("autumn", len(osizes))))
    fig, axes = _router_panels(len(routers))
    for ax, r in zip(axes.flat, routers):
        for size in csizes:
            g = c[(c["router"] == r) & (c["size"] == size)].sort_values("experts")
            ax.plot(g["experts"], 100 * g["rel"], "-", marker=".", color=cpal[size], lw=1, label=f"Clark {size}")
        for size in osizes:
            g = o[(o["router"] == r) & (o["size"] == size)].sort_values("experts")
            if len(g):
                ax.plot(g["experts"], 100 * g["rel"], "--", marker="s", ms=4, color=opal[size], lw=1,
                        label=f"ours {size}")
        ax.axhline(0.0, label="dense (same size)", **PS.REFERENCE_STYLE)
        ax.set(title=router_name(r))
        PS.log_axis(ax, "x", sorted(set(clark_loss["experts"]) | set(loss["experts"])), max_labels=5)
    _label_panels(fig, axes, "experts E", "L / L(dense, same size) - 1 (%)")
    return fig


def clark_steps_figure(clark_steps, ours, experts: int = 8):
    """Each router's gain over dense along training, L / L_dense - 1 at the same step (in %), at E =
    `experts`: Clark et al.'s sizes (lines, one evaluation every 10K steps) and our step check
    (`clark.our_step_gaps`: the grid's steps and twice as many on the same tokens, squares)."""
    PS.use()
    routers = [r for r in ("sbase", "rlr", "hash") if r in set(clark_steps["router"])]
    cs = clark_steps[clark_steps["experts"] == experts]
    sizes = cs.drop_duplicates("size").sort_values("N")["size"].tolist()
    pal = dict(zip(sizes, sns.color_palette("viridis", len(sizes))))
    fig, axes = _router_panels(len(routers))
    for ax, r in zip(axes.flat, routers):
        for size in sizes:
            g = cs[(cs["router"] == r) & (cs["size"] == size)].sort_values("step")
            ax.plot(g["step"], 100 * g["rel_gap"], "-", color=pal[size], lw=1, label=f"Clark {size}")
        g = ours[ours["router"] == r].sort_values("steps") if len(ours) else ours
        if len(g):
            ax.plot(g["steps"], 100 * g["rel_gap"], "ks--", ms=5, lw=1,
                    label=f"ours {g['size'].iloc[0]} E={int(g['experts'].iloc[0])}")
        ax.axhline(0.0, label="dense (same step)", **PS.REFERENCE_STYLE)
        ax.set(title=f"{router_name(r)}, E = {experts}")
        PS.log_axis(ax, "x", max_labels=5)
    _label_panels(fig, axes, "optimiser steps", "L / L(dense) - 1 (%)")
    return fig


def _router_panels(n: int):
    """Column-wide panels, two a row (three in a row would shrink the ticks below body text)."""
    ncols = min(2, n)
    fig, axes = PS.subplots(-(-n // ncols), ncols, row_in=2.7, sharey=True)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes


def _label_panels(fig, axes, xlabel: str, ylabel: str) -> None:
    """Shared axis labels and one legend below the panels (inside it would cover the lines)."""
    for ax in axes.flat:
        if ax.get_visible():
            ax.set_xlabel(xlabel)
    fig.supylabel(ylabel)
    PS.legend(axes.flat[0], outside_over=3)
