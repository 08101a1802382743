"""The resource chapter's tables and figures, computed from the stored tables (the chapter formats).

Inputs are the study's stored tables (`single`, `composite`, `lm_ladders`, `fits`, `shares`,
`additive`) and its config; outputs are DataFrames, figures, or formatted strings for glue.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

LM_PREDICTIONS = (("width", 1 / 2), ("depth", 1 / 3))  # loss ~ N_p^-pred at fixed depth / depth ~ width


def fmt(v, lo, hi, d: int = 2) -> str:
    return f"{v:.{d}f} [{lo:.{d}f}, {hi:.{d}f}]"


def verdict(lo, hi, target) -> str:
    return "holds (inside our CI)" if lo <= target <= hi else "does not hold at our scale"


def exponent(fits: pd.DataFrame, part: str, subject: str, **kw) -> pd.Series:
    """The stored fit row of the loss exponent (-alpha) of one part/subject (extra columns as filters)."""
    f = fits[(fits.part == part) & (fits.subject == subject) & (fits.param == "exponent")]
    for k, v in kw.items():
        f = f[f[k] == v]
    return f.iloc[0]


def power_fit(fits: pd.DataFrame, mask) -> tuple[float, float] | None:
    """(A, alpha) of a stored power-law fit selected by `mask`, or None."""
    f = fits[mask]
    if not len(f):
        return None
    return f[f.param == "A"].estimate.iloc[0], f[f.param == "alpha"].estimate.iloc[0]


def single_figure(prim: pd.DataFrame, fits: pd.DataFrame, tasks, acts):
    """Loss vs allocated neurons per task x activation, coloured by the regulariser, with the power fit."""
    fig, axes = plt.subplots(len(acts), len(tasks), figsize=(4 * len(tasks), 3.3 * len(acts)), squeeze=False,
                             layout="constrained")
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
                ax.legend(fontsize=8)
            ax.set(xscale="log", yscale="log", title=f"{task} ({act})", xlabel="allocated neurons N", ylabel="loss")
    fig.colorbar(sc, ax=axes, label="log10(lambda + 1e-3)", shrink=0.6)
    return fig


def shares_figure(comp: pd.DataFrame, compositions, first_task: str):
    fig, axes = plt.subplots(1, len(compositions), figsize=(5 * len(compositions), 3.3), squeeze=False)
    for ax, kind in zip(axes[0], compositions):
        g = comp[comp.kind == kind]
        for reg, gg in g.groupby("reg"):
            ax.scatter(gg.neurons, gg.share_1, s=12, label=f"lambda={reg:g}")
        m = g.groupby("width")[["neurons", "share_1"]].mean()
        ax.plot(m.neurons, m.share_1, "k.-", lw=1, label="mean per width")
        ax.set(xscale="log", ylim=(0, 1), xlabel="allocated neurons N", ylabel=f"share N_1/N ({first_task})", title=kind)
        ax.legend(fontsize=7)
    return fig


def lm_figure(lm: pd.DataFrame, fits: pd.DataFrame):
    """Test loss of each ladder's chosen rungs against non-embedding parameters, with the fitted
    reducible-loss law L = E + A N^-alpha (solid) and its floor E (dotted)."""
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for ladder, g in lm[lm["chosen"]].groupby("ladder"):
        g = g.sort_values("params_non_embedding")
        ax.plot(g.params_non_embedding, g.loss, "o", label=f"{ladder} ladder")
        color = ax.lines[-1].get_color()
        f = fits[(fits.part == "lm") & (fits.subject == ladder) & (fits.method == "non_embedding")].set_index("param")
        if len(f):
            n = np.geomspace(g.params_non_embedding.min(), g.params_non_embedding.max(), 50)
            E, A, alpha = (f.loc[k, "estimate"] for k in ("E", "A", "alpha"))
            ax.plot(n, E + A * n ** -alpha, "-", lw=1, color=color)
            ax.axhline(E, ls=":", lw=1, color=color)
    ax.set(xscale="log", xlabel="non-embedding parameters", ylabel="test loss (nats/token)")
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.legend()
    return fig


LM_METHODS = {"non_embedding": "reducible: E + A N^-alpha", "non_embedding_no_floor": "no floor: A N^-alpha",
              "total_no_floor": "no floor, total parameters"}


def lm_exponent_table(fits: pd.DataFrame, toy_gamma: tuple[float, float, float]) -> pd.DataFrame:
    """Per LM ladder and form: the fitted exponent, the paper's prediction and the one our toy
    exponent gamma (estimate, lo, hi) implies; `ok` is the fitter's flag (converged, off bounds,
    inside its interval)."""
    g_, g_lo, g_hi = toy_gamma
    rows = []
    for ladder, pred in LM_PREDICTIONS:
        for method, form in LM_METHODS.items():
            f = fits[(fits.part == "lm") & (fits.subject == ladder) & (fits.method == method) & (fits.param == "exponent")]
            if len(f):
                r = f.iloc[0]
                rows.append({"ladder": ladder, "parameters": method, "form": form,
                             "exponent [95% CI]": fmt(r.estimate, r.lo, r.hi, 3),
                             "paper's prediction": f"{-pred:.3f}",
                             "from our toy exponent": fmt(-g_ * pred, -g_hi * pred, -g_lo * pred, 3),
                             "prediction inside CI": bool(r.lo <= -pred <= r.hi),
                             "fit ok": bool(r.get("ok", True)), "lo": r.lo, "hi": r.hi})
    return pd.DataFrame(rows)


def claims_table(fits: pd.DataFrame, shares: pd.DataFrame, additive: pd.DataFrame, lmtab: pd.DataFrame,
                 tasks, acts) -> pd.DataFrame:
    """Every claim of Song et al. we test, with our estimate [95% CI] and the verdict."""
    main = exponent(fits, "single", tasks[0], activation=acts[0], primary=True, law="power")
    claims = [("single subtask: loss ~ N^-1 (y = x^2)", "-1", fmt(main.estimate, main.lo, main.hi),
               verdict(main.lo, main.hi, -1))]
    for act in acts[1:]:
        r = exponent(fits, "single", tasks[0], activation=act, primary=True, law="power")
        claims.append((f"same, {act} activation", "-1", fmt(r.estimate, r.lo, r.hi), verdict(r.lo, r.hi, -1)))
    for task in tasks[1:]:
        r = exponent(fits, "single", task, activation=acts[0], primary=True, law="power")
        claims.append((f"same law for another target ({task})", "-1", fmt(r.estimate, r.lo, r.hi), verdict(r.lo, r.hi, -1)))
    for kind, r in shares.set_index("kind").iterrows():
        claims.append((f"{kind} composite: shares N_i/N constant (slope per doubling)", "0",
                       fmt(r.slope, r.slope_lo, r.slope_hi, 3), verdict(r.slope_lo, r.slope_hi, 0.0)))
    for kind in additive.kind.unique():
        a = additive[(additive.kind == kind) & (additive.form == "free exponents")].set_index("param")
        ok = all(a.loc[k, "lo"] <= 1 <= a.loc[k, "hi"] for k in ("a1", "a2"))
        claims.append((f"{kind} composite: l = c1/N1 + c2/N2 (free exponents a1, a2)", "1, 1",
                       ", ".join(fmt(a.loc[k, "estimate"], a.loc[k, "lo"], a.loc[k, "hi"]) for k in ("a1", "a2")),
                       "holds (both inside CI)" if ok else "does not hold at our scale"))
    a_ch = fits[fits.part == "chinchilla"].set_index("param").loc["alpha"]
    claims.append(("depth ~ width: alpha = 1/3 matches Chinchilla (Epoch refit)", "0.333",
                   fmt(a_ch.estimate, a_ch.lo, a_ch.hi, 3), verdict(a_ch.lo, a_ch.hi, 1 / 3)))
    for _, r in lmtab[lmtab.parameters == "non_embedding"].iterrows():
        pred = r["paper's prediction"]
        claims.append((f"our LMs, {r.ladder} ladder: loss ~ N_p^{pred}", pred, r["exponent [95% CI]"],
                       verdict(r.lo, r.hi, float(pred))))
    return pd.DataFrame(claims, columns=["claim", "paper", "ours [95% CI]", "verdict"])
