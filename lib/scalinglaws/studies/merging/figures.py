"""The merging chapter's figures: each function draws one figure from stored tables."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from scalinglaws import plotstyle as PS
from scalinglaws.studies.merging import analysis as MA
from scalinglaws.studies.merging.analysis import fitted
from scalinglaws.studies.merging.tail import tail_wide


def palette(methods) -> dict:
    PS.use()
    return dict(zip(methods, sns.color_palette("tab10", len(methods))))


def pilot_figure(recipe, max_forgetting: float):
    """Gain vs forgetting of every pilot grid point, the rule's boundary and the chosen recipe."""
    PS.use()
    fig, axes = PS.subplots(1, 1, row_in=3.8)
    ax = axes[0, 0]
    for r in recipe.itertuples():
        ax.errorbar(r.gain, r.forgetting, xerr=r.gain_se, yerr=r.forgetting_se, fmt="*" if r.chosen else "o",
                    ms=14 if r.chosen else 6, color="C3" if r.chosen else "C0")
        ax.annotate(f"lr {r.lr:g}, x{r.token_mult:g}", (r.gain, r.forgetting), fontsize=PS.FONT_PT,
                    xytext=(4, 4), textcoords="offset points")
    g = np.linspace(0, max(1e-6, recipe["gain"].max()) * 1.1, 20)
    ax.plot(g, max_forgetting * g, "--", color="grey", lw=1, label=f"forgetting = {max_forgetting:g} x gain")
    ax.axvline(0, color="k", lw=0.5)
    ax.axhline(0, color="k", lw=0.5)
    ax.set(xlabel="in-domain gain (nats/token)", ylabel="forgetting (nats/token)", title="pilot: expert recipes")
    PS.legend(ax)
    return fig


def specialisation_heatmap(ex, size: str, domains):
    PS.use()
    fig, axes = PS.subplots(1, 1, row_in=5.2)
    ax = axes[0, 0]
    m = ex[ex["size"] == size].pivot(index="expert_domain", columns="eval_domain", values="delta")
    sns.heatmap(m.loc[domains, domains], annot=True, fmt=".2f", cmap="RdBu_r", center=0, ax=ax,
                annot_kws={"fontsize": PS.FONT_PT},
                cbar_kws={"label": "CE(expert) - CE(base), nats/token"})
    ax.set(xlabel="evaluated on", ylabel="expert of", title=f"{size}: specialisation")
    return fig


def law_band(samples, pool: str, method: str, scope: str, N: float, k) -> tuple | None:
    """(lo, hi): the 95% band of the joint law L* + B N^-beta + A0 N^-gamma / (k + b) at size N over
    k, from the stored bootstrap draws (`fit_samples`) of one fit; None without draws. Vectorised
    over draws (numpy), so a figure with dozens of panels stays fast."""
    d = PS.draws_of(samples, pool=pool, method=method, scope=scope)
    if not len(d):
        return None
    col = {c: d[c].to_numpy(float)[:, None] for c in ("L_star", "B", "beta", "A0", "gamma", "b")}
    k = np.asarray(k, float)[None, :]
    with np.errstate(over="ignore", invalid="ignore"):
        curves = col["L_star"] + col["B"] * N ** -col["beta"] + col["A0"] * N ** -col["gamma"] / (k + col["b"])
    return tuple(np.nanpercentile(curves, [2.5, 97.5], axis=0))


def _fit_ok(fits, method: str, scope: str, pool: str) -> bool:
    f = fits[(fits["pool"] == pool) & (fits["method"] == method) & (fits["scope"] == scope)] if len(fits) else fits
    return bool(len(f) and f["ok"].astype(bool).all())


def _draw_band(ax, band, x, color):
    """Shade a law's band without letting a wide (not ok) one rescale the axes set by the data."""
    if band is None:
        return
    lim = ax.get_ylim()
    PS.band(ax, x, *band, color=color)
    if ax.get_yscale() != "log" or min(lim) > 0:  # (a shared log axis may still hold autoscale's linear limits)
        ax.set_ylim(lim)


def curves_grid(curves, fits, sizes, methods, pool: str, pal: dict, samples=None):
    """CE vs k (k = 0 the base, a dotted reference line) per scope (rows) and size (columns) of one
    pool, with each method's fitted joint law: solid with its 95% bootstrap band (given `samples`,
    the stored `fit_samples`) when the fit is ok by the trust rule, thin and dashed without a band
    when it is not (the band of a degenerate fit covers the whole panel and hides the data)."""
    PS.use()
    c0 = curves[curves["pool"] == pool]
    M = int(c0["k"].max())
    scopes = [s for s in MA.MACRO_SCOPES if s in set(c0["scope"])]
    fig, axes = PS.subplots(len(scopes), len(sizes), row_in=2.4, sharex=True)  # own y per panel: sizes differ in level
    kk = np.linspace(1, M, 50)
    for i, scope in enumerate(scopes):
        for j, (size, N) in enumerate(sizes.items()):
            ax = axes[i, j]
            base = c0[(c0["scope"] == scope) & (c0["size"] == size) & (c0["k"] == 0)]["ce"]
            if len(base):
                PS.reference(ax, base.iloc[0], label="base (k = 0)")
            for method in methods:
                c = c0[(c0["method"] == method) & (c0["scope"] == scope) & (c0["size"] == size)]
                ax.plot(c["k"], c["ce"], "o", ms=3, color=pal[method], label=method)
                p = fitted(fits, method, scope, pool)
                if p is not None and _fit_ok(fits, method, scope, pool):
                    ax.plot(kk, MA.predict(p, N, kk), "-", lw=1, color=pal[method])
                    _draw_band(ax, law_band(samples, pool, method, scope, N, kk), kk, pal[method])
                elif p is not None:
                    ax.plot(kk, MA.predict(p, N, kk), "--", lw=0.7, color=pal[method])
            ax.set_title(f"{size}\nN = {N:,}" if i == 0 else "")
            ax.set_ylabel(f"{scope.replace('_', '-')} CE" if j == 0 else "")
            ax.set_xlabel("k" if i == len(scopes) - 1 else "")
    fig.suptitle(f"{pool} pool")
    PS.legend(axes[0, -1])
    return fig


def tails_figure(tails, th_vs_tail, pools, pal: dict, scope: str = "cross_domain"):
    """Per pool (one row each): the per-size fitted tail amplitude A(N) (intervals; hollow: fit not
    ok) and the theory's (c^2/2) Tr(H Sigma) (squares, dashed). The y range is that of the ok fits
    and the theory: a method whose fit is not ok and whose A lies far outside it (DELLA's A ~ 20)
    would squash every other method onto 0, so it is named in the panel with its range instead."""
    PS.use()
    fig, axes = PS.subplots(len(pools), 1, row_in=3.0, sharex=True)
    tails = tail_wide(tails)
    for ax, pool in zip(axes[:, 0], pools):
        t = tails[(tails["pool"] == pool) & (tails["scope"] == scope)]
        for method, g in t.groupby("method"):
            g = g.sort_values("N")
            col = pal.get(method, "k")
            ax.errorbar(g["N"], g["A"], yerr=[(g["A"] - g["A_lo"]).clip(lower=0), (g["A_hi"] - g["A"]).clip(lower=0)],
                        fmt="-", color=col, lw=1, label=f"{method}: fitted A")
            ax.scatter(g["N"], g["A"], s=25, color=[col if ok else "white" for ok in g["ok"]], edgecolors=col, zorder=3)
            th = th_vs_tail[(th_vs_tail["pool"] == pool) & (th_vs_tail["method"] == method)] if len(th_vs_tail) else th_vs_tail
            if len(th):
                th = th.sort_values("N")
                ax.errorbar(th["N"], th["A_pred"], yerr=[th["A_pred"] - th["A_pred_lo"], th["A_pred_hi"] - th["A_pred"]],
                            fmt="s--", ms=4, color=col, alpha=0.7, label=f"{method}: (c²/2) Tr(HΣ)")
        ax.axhline(0, color="k", lw=0.5)
        _focus_on_ok(ax, t, th_vs_tail[th_vs_tail["pool"] == pool] if len(th_vs_tail) else th_vs_tail)
        ax.set(ylabel="tail amplitude A", title=f"{pool} pool ({scope.replace('_', '-')})")
        PS.log_axis(ax, "x", ticks=sorted(t["N"].unique()) if len(t) else None)
    axes[-1, 0].set_xlabel("N (non-embedding parameters)")
    PS.legend(axes[0, 0])
    return fig


def _focus_on_ok(ax, t, th):
    """Limit the y axis to the ok fits' intervals and the theory (with a margin), and name the
    methods left outside with their range of A."""
    ok = t[t["ok"].astype(bool)] if len(t) else t
    vals = np.concatenate([ok[c].to_numpy(float) for c in ("A_lo", "A_hi")] +
                          ([th[c].to_numpy(float) for c in ("A_pred_lo", "A_pred_hi")] if len(th) else []) + [[0.0]])
    vals = vals[np.isfinite(vals)]
    if not len(ok) or not len(vals):
        return
    lo, hi = vals.min(), vals.max()
    pad = 0.15 * (hi - lo or 1.0)
    lo, hi = lo - pad, hi + pad
    out = [f"{m}: A {g['A'].min():.2g} to {g['A'].max():.2g}" for m, g in t.groupby("method")
           if ((g["A"] < lo) | (g["A"] > hi)).any()]
    ax.set_ylim(lo, hi)
    if out:
        import textwrap
        ax.text(0.01, 0.97, textwrap.fill("off scale (fit not ok): " + "; ".join(out), 80), transform=ax.transAxes,
                va="top", fontsize=PS.FONT_PT, bbox={"facecolor": "white", "alpha": 0.8, "lw": 0})


def variance_grid(variance, fits, sizes, methods, pool: str, pal: dict, samples=None):
    """Across-subset variance vs k per size of one pool, with the variance law (solid; its 95%
    bootstrap band given `samples` when the fit is ok) and the finite-pool fit (dashed)."""
    PS.use()
    v = variance[(variance["pool"] == pool) & (variance["scope"] == "cross_domain") & np.isfinite(variance["var"])]
    M = int(variance[variance["pool"] == pool]["k"].max())
    fig, axes = PS.subplots(1, len(sizes), row_in=3.0, sharey=True)
    kv = np.linspace(1, M - 1, 40)
    for j, (size, N) in enumerate(sizes.items()):
        ax = axes[0, j]
        for method in methods:
            g = v[(v["method"] == method) & (v["size"] == size) & (v["var"] > 0)]
            ax.plot(g["k"], g["var"], "o", ms=3, color=pal[method], label=method)
            p = fitted(fits, method, "variance", pool)
            if p is not None:
                ax.plot(kv, MA.predict(p, N, kv), "-", lw=1, color=pal[method])
                if _fit_ok(fits, method, "variance", pool):
                    _draw_band(ax, law_band(samples, pool, method, "variance", N, kv), kv, pal[method])
            q = fitted(fits, method, "variance_fpc", pool)
            if q is not None:  # back to the finite pool for plotting
                ax.plot(kv, MA.predict(q, N, kv) * (M - kv) / (M - 1), "--", lw=1, color=pal[method])
        ax.set(title=size, xlabel="k", ylabel="Var over subsets (nats²)" if j == 0 else "")
        PS.log_axis(ax, "y", max_labels=4)
    fig.suptitle(f"{pool} pool")
    PS.legend(axes[0, -1])
    return fig


def stopping_figure(stopping, meds: dict, size: str, methods, pal: dict):
    """R(k) per pool (columns): cross-domain (top) and the median over domains (bottom)."""
    PS.use()
    pools = list(meds)
    fig, axes = PS.subplots(2, len(pools), row_in=2.8, sharex=True, sharey=True)
    for j, pool in enumerate(pools):
        for method in methods:
            g = stopping[(stopping["pool"] == pool) & (stopping["scope"] == "cross_domain")
                         & (stopping["method"] == method) & (stopping["size"] == size)]
            axes[0, j].plot(g["k"], g["R"], "o-", ms=3, color=pal[method], label=method)
            h = meds[pool][(meds[pool]["method"] == method) & (meds[pool]["size"] == size)]
            axes[1, j].plot(h["k"], h["R"], "o-", ms=3, color=pal[method])
        for i, t in enumerate(("cross-domain", "in-domain median")):
            axes[i, j].axhline(0.8, color="grey", lw=0.5)
            axes[i, j].axhline(0.9, color="grey", lw=0.5)
            axes[i, j].set(xlabel="k" if i == 1 else "", ylabel=f"R(k), {t}" if j == 0 else "",
                           title=f"{pool} pool, {size}" if i == 0 else "")
    PS.legend(axes[0, 0])
    return fig


def budget_figure(bplan, budget: float):
    """Predicted CE at the affordable number of experts against the base's N, for one FLOP budget
    (`planning.budget_plan`), with its interval."""
    PS.use()
    fig, axes = PS.subplots(1, 1, row_in=3.4)
    ax = axes[0, 0]
    ax.plot(bplan["N"], bplan["loss"], marker="o")
    PS.band(ax, bplan["N"], bplan["loss_lo"], bplan["loss_hi"], color="C0")
    PS.log_axis(ax, "x")
    ax.set_xlabel("base N (non-embedding)")
    ax.set_ylabel("predicted CE at the affordable k")
    ax.set_title(f"FLOP budget {budget:.2g}: larger base vs more experts")
    return fig


def nine_figure(sat, ind, method: str = "average"):
    """The nine-expert pool (`nine.py`): left, R(k) to k = 9 per size (median over domains of the
    per-domain stopping curves) against a perfect 1/k law at the same M and the paper's 85% / 90%
    points; right, in-domain CE change from the base per size, ours (solid) and the paper's
    reading (dashed)."""
    PS.use()
    fig, axes = PS.subplots(1, 2, row_in=3.0)
    axes = axes[0]
    s = sat[sat["method"] == method]
    sizes = s.drop_duplicates("size").sort_values("N")["size"].tolist()
    for i, size in enumerate(sizes):
        g = s[s["size"] == size].sort_values("k")
        axes[0].plot(g["k"], g["R_domains"], "o-", ms=3, color=f"C{i}", label=size)
        h = ind[(ind["method"] == method) & (ind["size"] == size)].sort_values("k")
        base = h.loc[h["k"] == 0, "ours"].iloc[0] if (h["k"] == 0).any() else 0.0
        axes[1].plot(h["k"], h["ours"] - base, "o-", ms=3, color=f"C{i}", label=size)
        axes[1].plot(h["k"], h["paper"] - base, "--", color=f"C{i}")
    if len(s):
        g = s[s["size"] == sizes[-1]].sort_values("k")
        axes[0].plot(g["k"], g["R_perfect"], ":", color="black", label="perfect 1/k")
        p = g.dropna(subset=["paper_R"])
        axes[0].plot(p["k"], p["paper_R"], "s", color="black", ms=5, label="paper (median)")
    axes[0].set(xlabel="k (experts merged)", ylabel="R(k), median over domains")
    axes[1].axhline(0.0, color="grey", lw=0.5)
    axes[1].set(xlabel="k (0: the base)", ylabel="in-domain CE - base (nats)")
    PS.legend(axes[0])
    return fig
