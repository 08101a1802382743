"""The merging chapter's figures: each function draws one figure from stored tables."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from scalinglaws import laws
from scalinglaws.studies.merging import analysis as MA
from scalinglaws.studies.merging.chapter import fitted


def palette(methods) -> dict:
    sns.set_theme(style="whitegrid", context="notebook")
    return dict(zip(methods, sns.color_palette("tab10", len(methods))))


def specialisation_heatmap(ex, size: str, domains):
    fig, ax = plt.subplots(figsize=(7, 5.5))
    m = ex[ex["size"] == size].pivot(index="expert_domain", columns="eval_domain", values="delta")
    sns.heatmap(m.loc[domains, domains], annot=True, fmt=".2f", cmap="RdBu_r", center=0, ax=ax,
                cbar_kws={"label": "CE(expert) - CE(base), nats/token"})
    ax.set(xlabel="evaluated on", ylabel="expert of", title=f"{size}: specialisation")
    return fig


def curves_grid(curves, fits, sizes, methods, M: int, pal: dict):
    """CE vs k per scope (rows) and size (columns), with each method's fitted law."""
    scopes = [s for s in MA.MACRO_SCOPES if s in set(curves["scope"])]
    fig, axes = plt.subplots(len(scopes), len(sizes), figsize=(3.2 * len(sizes), 2.8 * len(scopes)),
                             squeeze=False, sharex=True)
    kk = np.linspace(1, M, 50)
    for i, scope in enumerate(scopes):
        for j, (size, N) in enumerate(sizes.items()):
            ax = axes[i, j]
            for method in methods:
                c = curves[(curves["method"] == method) & (curves["scope"] == scope) & (curves["size"] == size)]
                ax.plot(c["k"], c["ce"], "o", ms=3, color=pal[method], label=method)
                p = fitted(fits, method, scope)
                if p is not None:
                    ax.plot(kk, MA.predict(p, N, kk), "-", lw=1, color=pal[method])
            ax.set_title(f"{size} (N={N:,})" if i == 0 else "", fontsize=9)
            ax.set_ylabel(f"{scope} CE" if j == 0 else "")
            ax.set_xlabel("k" if i == len(scopes) - 1 else "")
    axes[0, -1].legend(fontsize=6, loc="upper right")
    fig.tight_layout()
    return fig


def floor_and_amplitude(fits, three_point, sizes, methods, pal: dict):
    """The fitted floor L_inf(N) and tail amplitude A(N), with the three-point estimates per size."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    NN = np.geomspace(sizes.min() / 1.5, sizes.max() * 1.5, 50)
    for method in methods:
        p = fitted(fits, method, "in_domain")
        if p is None:
            continue
        axes[0].plot(NN, laws.merging_floor(p, NN), color=pal[method], lw=1, label=method)
        axes[1].plot(NN, laws.merging_amplitude(p, NN), color=pal[method], lw=1)
        for tp in three_point[three_point["method"] == method].itertuples() if len(three_point) else ():
            axes[0].plot(tp.N, tp.L_inf, "o", ms=4, color=pal[method])
            axes[1].plot(tp.N, abs(tp.A), "o" if tp.A > 0 else "x", ms=4, color=pal[method])
    axes[0].set(xscale="log", xlabel="N (non-embedding)", ylabel="floor L_inf(N), nats/token")
    axes[1].set(xscale="log", yscale="log", xlabel="N (non-embedding)", ylabel="|tail amplitude A(N)| (x: A < 0)")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def variance_grid(variance, fits, sizes, methods, M: int, pal: dict):
    """Across-subset variance vs k per size, with the variance law (solid) and the finite-pool fit (dashed)."""
    v = variance[(variance["scope"] == "cross_domain") & np.isfinite(variance["var"])]
    fig, axes = plt.subplots(1, len(sizes), figsize=(3.2 * len(sizes), 3), squeeze=False, sharey=True)
    kv = np.linspace(1, M - 1, 40)
    for j, (size, N) in enumerate(sizes.items()):
        ax = axes[0, j]
        for method in methods:
            g = v[(v["method"] == method) & (v["size"] == size) & (v["var"] > 0)]
            ax.plot(g["k"], g["var"], "o", ms=3, color=pal[method], label=method)
            p = fitted(fits, method, "variance")
            if p is not None:
                ax.plot(kv, MA.predict(p, N, kv), "-", lw=1, color=pal[method])
            q = fitted(fits, method, "variance_fpc")
            if q is not None:  # back to the finite pool for plotting
                ax.plot(kv, MA.predict(q, N, kv) * (M - kv) / (M - 1), "--", lw=1, color=pal[method])
        ax.set(yscale="log", title=f"{size}", xlabel="k", ylabel="Var over subsets (nats^2)" if j == 0 else "")
    axes[0, -1].legend(fontsize=6)
    fig.tight_layout()
    return fig


def stopping_figure(stopping, med, size: str, methods, pal: dict):
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for method in methods:
        g = stopping[(stopping["scope"] == "cross_domain") & (stopping["method"] == method) & (stopping["size"] == size)]
        axes[0].plot(g["k"], g["R"], "o-", ms=3, color=pal[method], label=method)
        h = med[(med["method"] == method) & (med["size"] == size)]
        axes[1].plot(h["k"], h["R"], "o-", ms=3, color=pal[method])
    for ax, t in zip(axes, ("cross-domain", "median over domains (in-domain)")):
        ax.axhline(0.8, color="grey", lw=0.5)
        ax.axhline(0.9, color="grey", lw=0.5)
        ax.set(xlabel="k", ylabel="R(k)", title=f"{size}: {t}")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def theory_figure(cmp):
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for method, g in cmp.groupby("method"):
        g = g.sort_values("N")
        line, = axes[0].plot(g["N"], g["A_fit"], "o-", label=f"{method}: fitted A(N)")
        axes[0].errorbar(g["N"], g["A_pred"], yerr=[g["A_pred"] - g["A_pred_lo"], g["A_pred_hi"] - g["A_pred"]],
                         fmt="s--", color=line.get_color(), label=f"{method}: (c²/2) Tr(HΣ)")
        axes[1].plot(g["N"], g["floor_fit"], "o-", color=line.get_color(), label=f"{method}: fitted floor")
        axes[1].plot(g["N"], g["floor_pred"], "s--", color=line.get_color(), label=f"{method}: predicted floor")
    for ax, title in zip(axes, ["tail amplitude A(N)", "floor (finite pool)"]):
        ax.set_xscale("log")
        ax.set_xlabel("N (non-embedding parameters)")
        ax.set_title(title)
        ax.legend(fontsize=7)
    axes[0].set_yscale("log")
    fig.tight_layout()
    return fig


def budget_figure(bplan, budget: float):
    ax = bplan.plot(x="N", y="loss", logx=True, marker="o", legend=False, figsize=(6, 3.5))
    ax.fill_between(bplan["N"], bplan["loss_lo"], bplan["loss_hi"], alpha=0.2)
    ax.set_xlabel("base N (non-embedding)")
    ax.set_ylabel("predicted CE at the affordable k")
    ax.set_title(f"FLOP budget {budget:.2g}: larger base vs more experts")
    return ax.figure
