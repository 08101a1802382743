"""The resource chapter's tables, computed from the stored tables (the chapter formats); the figures
are in `figures.py` (re-exported here), the claims in `claims.py`.

Inputs are the study's stored tables (`single`, `composite`, `lm_ladders`, `fits`, `shares`,
`additive`) and its config; outputs are DataFrames, figures, or formatted strings for glue.
"""
from __future__ import annotations

import pandas as pd

from scalinglaws.studies.resource.figures import (lm_figure, power_fit, shares_figure,  # noqa: F401 (the chapter's C.*)
                                                  single_figure)

LM_PREDICTIONS = (("width", 1 / 2), ("depth", 1 / 3))  # loss ~ N_p^-pred at fixed depth / depth ~ width


def fmt(v, lo, hi, d: int = 2) -> str:
    return f"{v:.{d}f} [{lo:.{d}f}, {hi:.{d}f}]"


def exponent(fits: pd.DataFrame, part: str, subject: str, **kw) -> pd.Series:
    """The stored fit row of the loss exponent (-alpha) of one part/subject (extra columns as filters)."""
    f = fits[(fits.part == part) & (fits.subject == subject) & (fits.param == "exponent")]
    for k, v in kw.items():
        f = f[f[k] == v]
    return f.iloc[0]


LM_METHODS = {"non_embedding": "reducible: E + A N^-alpha", "non_embedding_no_floor": "no floor: A N^-alpha",
              "total_no_floor": "no floor, total parameters"}


def lm_exponent_table(fits: pd.DataFrame, toy_gamma: tuple[float, float, float]) -> pd.DataFrame:
    """Per LM ladder and form: the fitted exponent, the paper's prediction and the one our toy
    exponent gamma (estimate, lo, hi) implies; `fit ok` is the shared trust rule (`fitting.trust`:
    converged, off bounds, inside its interval, R^2 >= R2_MIN) and `why not ok` its failed criteria."""
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
                             "fit ok": bool(r["ok"]), "why not ok": r.get("why_not_ok", ""),
                             "lo": r.lo, "hi": r.hi})
    return pd.DataFrame(rows)


def shares_wide(shares: pd.DataFrame) -> pd.DataFrame:
    """The stored `shares` table (the one fits schema: rows `slope` and `mean` per composite) as one
    row per composite: slope, slope_lo, slope_hi, mean, mean_lo, mean_hi, n_points, log2_range."""
    from scalinglaws.fitting.schema import wide
    return wide(shares, ["kind"], ["log2_range"])


# ----------------------------------------------------------------------------- the LM ladders' phenomenon

def rung_table(lm: pd.DataFrame, batch_tokens: int | None = None) -> pd.DataFrame:
    """One row per (ladder, rung), smallest first: non-embedding parameters, tokens trained (the
    planned budget where stored: a diverged rate trains none), tokens per parameter, the rates
    tried, the chosen one and where it sits among them (`core.regime.bracket`; a diverged rate
    counts as tried, as in the testbed), the test loss and its drop from the ladder's previous rung
    (positive: the ladder falls). Works on tables stored before `bracket` / `tokens_budget` / `steps`
    existed (their steps from `batch_tokens`, the run's batch)."""
    from scalinglaws.core import regime as R
    rows = []
    for (ladder, size), g in lm.groupby(["ladder", "size"], sort=False):
        c = g[g["chosen"]]
        if not len(c):
            continue
        c = c.iloc[0]
        tokens = int(c["tokens_budget"]) if "tokens_budget" in g.columns else int(c["tokens"])
        rows.append({"ladder": ladder, "size": size, "N": int(c["params_non_embedding"]), "tokens": tokens,
                     "tokens_per_param": tokens / c["params_non_embedding"],
                     "steps": int(c["steps"]) if "steps" in g.columns else tokens // batch_tokens if batch_tokens else None,
                     "rates tried": ", ".join(f"{x:g}" for x in sorted(g["lr"])), "chosen lr": float(c["lr"]),
                     "bracket": R.bracket(float(c["lr"]), g["lr"]) if len(g) > 1 else "not swept",
                     "test loss": float(c["loss"])})
    t = pd.DataFrame(rows)
    if not len(t):
        return t
    t = t.sort_values(["ladder", "N"], ascending=[False, True]).reset_index(drop=True)
    t["drop"] = -t.groupby("ladder")["test loss"].diff()
    return t


def ladder_summary(rt: pd.DataFrame) -> dict[str, str]:
    """Glue-ready phrases on a `rung_table`: tokens per rung, tokens per parameter, the rungs whose
    chosen rate is bracketed, and per ladder whether it falls at every step (its smallest drop)."""
    tpp = rt["tokens_per_param"]
    same_tokens = rt["tokens"].nunique() == 1
    one = rt["size"].nunique() == 1
    out = {"tokens": (f"{rt['tokens'].iloc[0]:,} tokens" if one else
                      f"the same {rt['tokens'].iloc[0]:,} tokens for every rung" if same_tokens else
                      f"{rt['tokens'].min():,} to {rt['tokens'].max():,} tokens"),
           "tpp": (f"{tpp.min():.1f}" if tpp.max() - tpp.min() < 0.05 * tpp.max() else f"{tpp.min():.1f} to {tpp.max():.1f}"),
           "design": ("one token budget for every rung" if same_tokens else "tokens proportional to N")}
    rungs = rt.drop_duplicates("size")
    inside = int((rungs["bracket"] == "inside").sum())
    out["bracketed"] = f"{inside} of {len(rungs)}"
    for ladder, g in rt.groupby("ladder"):
        d = g["drop"].dropna()
        if not len(d):
            out[f"falls_{ladder}"] = f"one rung only ({g['size'].iloc[0]})"
            continue
        worst = g.loc[d.idxmin()]
        out[f"falls_{ladder}"] = (f"falls at every step (smallest drop {d.min():.3f} nats, to {worst['size']})" if d.min() > 0
                                  else f"does not fall at every step: {worst['size']} is {-d.min():.3f} nats above the rung below it")
    return out


def ladder_figure(lm: pd.DataFrame):
    """The phenomenon before any fit: test loss against non-embedding parameters, one panel per
    ladder, every rate tried (small markers, one line per rate) and the chosen rate of each rung
    (large markers, joined)."""
    from scalinglaws import plotstyle as PS
    PS.use()
    ladders = [x for x in ("width", "depth") if x in set(lm["ladder"])]
    fig, axes = PS.subplots(1, len(ladders), row_in=3.2)
    for ax, ladder in zip(axes[0], ladders):
        g = lm[(lm["ladder"] == ladder) & ~lm["diverged"].astype(bool)]
        for lr, h in g.groupby("lr"):
            h = h.sort_values("params_non_embedding")
            ax.plot(h["params_non_embedding"], h["loss"], ".-", lw=0.6, ms=4, alpha=0.6, label=f"lr {lr:g}")
        c = g[g["chosen"]].sort_values("params_non_embedding")
        ax.plot(c["params_non_embedding"], c["loss"], "o-", color="black", lw=1.5, ms=6, label="chosen rate")
        ax.set(xlabel="non-embedding parameters", ylabel="test loss (nats/token)", title=f"{ladder} ladder")
        PS.log_axis(ax, "x")
        PS.legend(ax)
    return fig
