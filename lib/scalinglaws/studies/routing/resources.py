"""Experts as resources (what none of the papers has), from the routing study's tables: which experts
serve which domain, whether a domain's loss falls like 1/(experts serving it) (`resource_fits`) and
whether the domains keep constant shares of the experts as E grows (`share_growth`). Pure functions
of the `expert_usage` / `ce` tables; `study.py` writes their tables, `claims.py` judges them."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from scalinglaws.fitting.schema import fit_rows, fits_frame
from scalinglaws.fitting.trust import trust

DENSE = "dense"


def resource_table(usage: pd.DataFrame, ce: pd.DataFrame) -> pd.DataFrame:
    """Per routed model and domain: n_serving = exp(entropy of the domain's token shares over
    experts), averaged over routed blocks; max_share (mean over blocks of the largest share);
    the domain's CE, and the same size's dense CE on that domain."""
    cols = ["size", "experts", "router", "domain", "n_serving", "max_share", "ce", "ce_dense"]
    if len(usage) == 0:
        return pd.DataFrame(columns=cols)

    def per_block(g):
        p = g["fraction"].to_numpy()
        p = p[p > 0]
        return pd.Series({"n": float(np.exp(-(p * np.log(p)).sum())), "max": float(p.max()) if len(p) else math.nan})

    blocks = usage.groupby(["size", "experts", "router", "domain", "layer"]).apply(per_block, include_groups=False)
    agg = blocks.groupby(level=[0, 1, 2, 3]).mean().reset_index().rename(columns={"n": "n_serving", "max": "max_share"})
    ce_idx = ce.set_index(["size", "experts", "router", "domain"])["ce"]
    dense = ce[ce["router"] == DENSE].set_index(["size", "domain"])["ce"]
    agg["ce"] = [float(ce_idx.loc[(s, e, r, d)]) for s, e, r, d in zip(agg["size"], agg["experts"], agg["router"], agg["domain"])]
    agg["ce_dense"] = [float(dense.loc[(s, d)]) if (s, d) in dense.index else math.nan
                       for s, d in zip(agg["size"], agg["domain"])]
    return agg[cols]


RESOURCE_KEYS = ["router", "size"]
RESOURCE_EXTRA = ["domains", "one_over_n"]
RESOURCE_LAW = "resource_slope"  # log CE_d = alpha_d - gamma log n_serving, domain fixed effects


def resource_fits(resources: pd.DataFrame, bootstrap: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per router and size: gamma in log CE_d = alpha_d - gamma log n_serving (within-domain OLS
    over the routed models and, at n = 1, the dense model), with a 95% interval from resampling
    domains. 'one_over_n' = the interval contains 1 (loss falls like 1/experts serving it).

    A `fits` table in the one schema (`fitting.schema`; law `resource_slope`, param gamma; r2 the
    within-domain R^2). Not `fitting.fit`: the per-domain intercepts (one per domain, however many)
    are profiled out exactly and the bootstrap resamples domains, not points. ok is the trust rule
    without its R^2 criterion: the claim asks whether gamma is 1 or 0, and gamma = 0 (no dependence)
    explains no variance by design."""
    rows = []
    rng = np.random.default_rng(seed)
    for (r, s), g in resources.groupby(["router", "size"], sort=False) if len(resources) else ():
        pts = [(d, math.log(x.n_serving), math.log(x.ce)) for d, x in zip(g["domain"], g.itertuples())]
        for d, cd in g.groupby("domain")["ce_dense"].first().items():
            if np.isfinite(cd):
                pts.append((d, 0.0, math.log(cd)))
        frame = pd.DataFrame(pts, columns=["domain", "x", "y"])
        gamma, lo, hi = _slope_with_interval(frame, bootstrap, rng)
        doms = frame["domain"].unique()
        ci = {"gamma": (lo, hi)} if np.isfinite(lo) else None
        ok, why = trust({"gamma": gamma}, ci, _within_r2(frame, gamma), len(frame), 1 + len(doms),
                        converged=bool(np.isfinite(gamma)), r2_min=-math.inf)
        rows += fit_rows(RESOURCE_LAW, {"gamma": gamma}, ci, r2=_within_r2(frame, gamma), ok=ok, why_not_ok=why,
                         converged=bool(np.isfinite(gamma)), n_points=len(frame), keys={"router": r, "size": s},
                         extra={"domains": len(doms), "one_over_n": bool(lo <= 1.0 <= hi) if np.isfinite(lo) else False})
    return fits_frame(rows, RESOURCE_KEYS, RESOURCE_EXTRA)


def _within_r2(frame: pd.DataFrame, gamma: float) -> float:
    """R^2 of the within-domain fit (centred y explained by -gamma times centred x)."""
    x = frame["x"] - frame.groupby("domain")["x"].transform("mean")
    y = frame["y"] - frame.groupby("domain")["y"].transform("mean")
    ss = float((y * y).sum())
    return 1.0 - float(((y + gamma * x) ** 2).sum()) / ss if ss > 0 and np.isfinite(gamma) else math.nan


def _slope_with_interval(frame: pd.DataFrame, bootstrap: int, rng) -> tuple[float, float, float]:
    """`_within_slope` of a (domain, x, y) frame and its 95% interval from resampling domains.

    A domain drawn m times enters the fixed-effects slope m times with the same centred sums, so each
    draw is sum_d m_d Sxy_d / sum_d m_d Sxx_d over per-domain sums computed once (the same numbers as
    refitting the concatenated resample, without building it)."""
    value = _within_slope(frame)
    doms = frame["domain"].unique()
    x = frame["x"] - frame.groupby("domain")["x"].transform("mean")
    y = frame["y"] - frame.groupby("domain")["y"].transform("mean")
    sums = pd.DataFrame({"domain": frame["domain"], "xy": x * y, "xx": x * x}).groupby("domain")[["xy", "xx"]].sum()
    sxy, sxx = sums.loc[doms, "xy"].to_numpy(), sums.loc[doms, "xx"].to_numpy()
    index = {d: i for i, d in enumerate(doms)}
    draws = []
    for _ in range(bootstrap):
        pick = rng.choice(doms, size=len(doms), replace=True)
        m = np.bincount([index[d] for d in pick], minlength=len(doms))
        den = float(m @ sxx)
        draws.append(-float(m @ sxy) / den if den > 0 else math.nan)
    draws = np.asarray([v for v in draws if np.isfinite(v)])
    lo, hi = (np.percentile(draws, [2.5, 97.5]) if len(draws) else (math.nan, math.nan))
    return value, lo, hi


def share_growth(resources: pd.DataFrame, bootstrap: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Do the domains keep constant shares of the experts as E grows (the resource model's constant
    allocation, carried to experts)? Per router and size: the slope kappa of log n_serving on log E
    within domains (the routed models, E > 1), with a 95% interval from resampling domains.
    kappa = 1: every domain is served by a constant fraction n/E of the experts; kappa < 1: the
    domains concentrate on relatively fewer experts as E grows (they specialise)."""
    cols = ["router", "size", "kappa", "lo", "hi", "points", "domains", "constant_share"]
    rows = []
    rng = np.random.default_rng(seed)
    routed = resources[resources["experts"] > 1] if len(resources) else resources
    for (r, s), g in routed.groupby(["router", "size"], sort=False):
        if g["experts"].nunique() < 2:
            continue
        frame = pd.DataFrame({"domain": g["domain"].to_numpy(), "x": np.log(g["experts"].to_numpy(dtype=float)),
                              "y": np.log(g["n_serving"].to_numpy(dtype=float))})
        value, lo, hi = _slope_with_interval(frame, bootstrap, rng)
        # _within_slope is minus the slope (the resource fits' gamma); here the slope itself
        kappa, lo, hi = -value, -hi, -lo
        rows.append({"router": r, "size": s, "kappa": kappa, "lo": lo, "hi": hi, "points": len(frame),
                     "domains": g["domain"].nunique(),
                     "constant_share": bool(lo <= 1.0 <= hi) if np.isfinite(lo) else False})
    return pd.DataFrame(rows, columns=cols)


def _within_slope(frame: pd.DataFrame) -> float:
    """-slope of y on x after removing each domain's mean (domain fixed effects)."""
    x = frame["x"] - frame.groupby("domain")["x"].transform("mean")
    y = frame["y"] - frame.groupby("domain")["y"].transform("mean")
    sxx = float((x * x).sum())
    return -float((x * y).sum()) / sxx if sxx > 0 else math.nan
