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
