"""The testbed chapter's figures, each drawn from stored tables."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from scalinglaws import plotstyle as PS


def lr_sweep(sweep):
    """Mean validation CE against learning rate, one line per size; the chosen rate circled."""
    PS.use()
    sizes = sweep.sort_values("N")["size"].unique()
    pal = dict(zip(sizes, sns.color_palette("viridis", len(sizes))))
    fig, axes = PS.subplots(1, 1, row_in=3.8)
    ax = axes[0, 0]
    for s in sizes:
        g = sweep[(sweep["size"] == s) & ~sweep["diverged"]].sort_values("lr")
        ax.errorbar(g["lr"], g["val_ce"], yerr=2 * g["val_ce_se"], marker="o", color=pal[s], label=s, capsize=2)
        c = g[g["chosen"]]
        ax.scatter(c["lr"], c["val_ce"], s=160, facecolors="none", edgecolors="black", zorder=3)
    PS.log_axis(ax, "x", ticks=sorted(sweep["lr"].unique()))
    ax.set(xlabel="peak learning rate", ylabel="mean validation CE (nats/token)")
    PS.legend(ax, title="size (circled: chosen)")
    return fig


def curves(curves, ladder):
    """Training loss against tokens of the chosen run of each size."""
    PS.use()
    lad = ladder.sort_values("non_embedding")
    fig, axes = PS.subplots(1, 1, row_in=3.8)
    ax = axes[0, 0]
    for i, r in enumerate(lad.itertuples()):
        c = curves[(curves["size"] == r.size) & (curves["peak_lr"] == r.lr)]
        ax.plot(c["tokens"], c["loss"], label=f"{r.size} (lr {r.lr:g})",
                color=plt.cm.viridis(i / max(1, len(lad) - 1)))
    ax.set(xlabel="training tokens", ylabel="training loss (nats/token)")
    PS.log_axis(ax, "x")
    PS.legend(ax)
    return fig


def ce_vs_n(ce, ladder):
    """Top: domain-mean test CE against N with 2-SE bars; below: per-domain test CE (bits/byte)."""
    PS.use()
    lad = ladder.sort_values("non_embedding")
    t = ce.merge(lad[["size", "non_embedding"]], on="size")
    # stacked, each the column's width: the heatmap's numbers at body-text scale need the room
    n_dom = t["domain"].nunique()
    fig, axes = plt.subplots(2, 1, figsize=(PS.COLUMN_IN, 3.0 + 0.34 * n_dom + 1.2), layout="constrained",
                             gridspec_kw={"height_ratios": [3.0, 0.34 * n_dom + 1.2]})
    axes[0].errorbar(lad["non_embedding"], lad["test_ce"], yerr=2 * lad["test_ce_se"], marker="o", capsize=3)
    PS.log_axis(axes[0], "x", ticks=lad["non_embedding"].tolist())
    # sizes are close on a log axis: short labels (27K, 0.8M) so neighbours do not overlap
    axes[0].xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v / 1e3:.0f}K" if v < 1e6 else f"{v / 1e6:.1f}M"))
    axes[0].set(xlabel="non-embedding parameters N", ylabel="mean test CE (nats/token)")
    pivot = t.pivot(index="domain", columns="size", values="bpb")[lad["size"].tolist()]
    pivot = pivot.loc[pivot.iloc[:, -1].sort_values().index]
    sns.heatmap(pivot, annot=True, fmt=".2f", cmap="mako_r", ax=axes[1], cbar_kws={"label": "bits per byte"},
                annot_kws={"fontsize": PS.FONT_PT})
    axes[1].set(xlabel="size", ylabel="")
    return fig


def domain_gains(ce, ladder):
    """Per domain: test CE of the largest base relative to the smallest (how much each domain
    gains from scale), a bar each, sorted."""
    PS.use()
    lad = ladder.sort_values("non_embedding")
    small, large = lad["size"].iloc[0], lad["size"].iloc[-1]
    p = ce.pivot(index="domain", columns="size", values="ce")
    gain = (p[small] - p[large]).sort_values()
    fig, axes = PS.subplots(1, 1, row_in=0.3 * len(gain) + 1.2)
    ax = axes[0, 0]
    ax.barh(gain.index, gain.values, color=np.where(gain.values > 0, "C0", "C3"))
    ax.set(xlabel=f"test CE drop from {small} to {large} (nats/token)", ylabel="")
    return fig
