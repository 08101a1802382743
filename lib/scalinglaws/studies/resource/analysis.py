"""The resource study's fits of the composite networks, from the stored `composite` table (pure
functions; `study.fit_tables` writes them at the run, `claims.derived_tables` recomputes them):

    shares     per composite: the trend of the share N_1/N per doubling of N and the mean share
               (`toy.share_trend`), law name `share_trend`
    additive   per composite: the laws `additive_inverse` (l = c1/N1 + c2/N2, the paper's form) and
               `additive` (free exponents), fitted by `fitting.fit`

Both in the one fits schema (`fitting.schema`).
"""
from __future__ import annotations

import math

import pandas as pd

SHARE_LAW = "share_trend"  # share_1 = mean + slope (log2 N - its mean): `toy.share_trend`
ADDITIVE_FORMS = {"c1/N1 + c2/N2": "additive_inverse", "free exponents": "additive"}


def composites(comp: pd.DataFrame):
    """(kind, networks) of each composite with at least three networks whose subtasks both hold neurons."""
    for kind, g in comp.groupby("kind", sort=False):
        g = g[(g["neurons_1"] > 0) & (g["neurons_2"] > 0)]
        if len(g) >= 3:
            yield kind, g


def composite_fit_tables(comp: pd.DataFrame, bootstrap: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The composites' `shares` (the share trend, `toy.share_trend`) and `additive` (the laws
    `additive_inverse` and `additive`, by `fitting.fit` with bootstrap // 4 resamples) tables, both
    in the one fits schema (`fitting.schema`), from the stored `composite` table."""
    from scalinglaws.fitting import fit, fit_rows, fits_frame, trust
    from scalinglaws.studies.resource.toy import share_trend
    share_rows, add_rows = [], []
    for kind, g in composites(comp):
        t = share_trend(g, boot=max(bootstrap, 1), seed=0)
        est = {"slope": t["slope"], "mean": t["mean"]}
        ci = {"slope": (t["slope_lo"], t["slope_hi"]), "mean": (t["mean_lo"], t["mean_hi"])}
        # the claim asks whether the slope is 0: a flat trend explains no variance by design, so R^2 is
        # reported but not a criterion of ok
        ok, why = trust(est, ci, t["r2"], t["n"], 2, r2_min=-math.inf)
        share_rows += fit_rows(SHARE_LAW, est, ci, r2=t["r2"], ok=ok, why_not_ok=why, n_points=t["n"],
                               keys={"kind": kind}, extra={"log2_range": t["log2_range"]})
        for form, law in ADDITIVE_FORMS.items():
            res = fit(law, g, columns={"N1": "neurons_1", "N2": "neurons_2"}, y="loss",
                      bootstrap=max(bootstrap // 4, 1), seed=0)
            add_rows += res.rows(kind=kind, form=form)
    return fits_frame(share_rows, ["kind"], ["log2_range"]), fits_frame(add_rows, ["kind", "form"])
