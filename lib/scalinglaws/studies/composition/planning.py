"""The composition planner: from the stored `summary` and `fits` tables (read through
`analysis.fit_lines`), the cheapest way to a target loss on k domains of a pool, and the best loss for a compute budget.

Options: every measured (arm, size) of the pool at that k: keep the base (at any stored size, so
"a larger base" is an option), merge, multitask, upcycled or scratch routed. Cost: `total_flops`
(pretraining charged in full, the default) or `total_flops_amortised` (the base is given; then every
stored base is free and the question is about fine-tuning only).

Measured answers come first: the cheapest option whose measured loss meets the target, or the
lowest measured loss within the budget; `confident` says whether the option's 95% upper bound
meets the target too. When nothing measured meets the target, each arm's fitted line
log10 L = intercept + slope log10 C (`fits`, total cost only) is solved for the cost that reaches
it, and the cheapest is the answer, with its extrapolation risk: how many decades of compute
beyond the largest measured cost of that arm (`decades_beyond`; 0 and `inside_range` true for a
measured answer), and a 95% interval from a parametric bootstrap of the line (`line_draws`: every
measured loss redrawn from its bootstrap standard error, the line refitted). A target no line reaches within MAX_DECADES decades (or whose lines do not fall
with compute) is unreachable: a ParameterError, like a budget below the cheapest option, a
non-positive target or budget, an unknown pool or k.

An extrapolated answer says whether the line it follows is ok by the trust rule (`fitting/trust.py`:
its R^2 on log10 L, more points than its 2 parameters, the point estimates inside their bootstrap
intervals from `line_draws`): `trusted` and `why_not_ok`, shown as a warning when it is not.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from scalinglaws.core.validation import ParameterError
from scalinglaws.studies.composition.analysis import fit_lines, predict

COSTS = {"total": "total_flops", "amortised": "total_flops_amortised"}
MAX_DECADES = 2.0
LINE_DRAWS = 400


def line_draws(summary: pd.DataFrame, pool: str, k: int, arm: str, n: int = LINE_DRAWS, seed: int = 0):
    """(slopes, intercepts) of log10 L = intercept + slope log10 C refitted on n redraws of the arm's
    measured losses, each loss ~ Normal(loss, se) (its paired-bootstrap standard error)."""
    g = summary[(summary["pool"] == pool) & (summary["k"] == k) & (summary["arm"] == arm)
                & (summary["total_flops"] > 0)]
    x = np.log10(g["total_flops"].to_numpy(float))
    if len(g) < 2 or np.ptp(x) == 0:
        return np.array([]), np.array([])
    rng = np.random.default_rng(seed)
    y = g["loss"].to_numpy(float)[None, :] + rng.standard_normal((n, len(g))) * g["se"].to_numpy(float)[None, :]
    y = np.log10(np.clip(y, 1e-9, None))
    xc = x - x.mean()
    slopes = (y - y.mean(1, keepdims=True)) @ xc / (xc @ xc)
    return slopes, y.mean(1) - slopes * x.mean()


def line_trust(summary: pd.DataFrame, pool: str, k: int, arm: str, slope: float, intercept: float) -> tuple[bool, str]:
    """(ok, why_not_ok) of an arm's fitted line log10 L = intercept + slope log10 C by the trust rule:
    R^2 on log10 L over the arm's measured points, more points than 2, and slope and intercept
    inside the central 95% of the refitted lines (`line_draws`)."""
    from scalinglaws.fitting.trust import trust
    g = summary[(summary["pool"] == pool) & (summary["k"] == k) & (summary["arm"] == arm)
                & (summary["total_flops"] > 0)]
    x, y = np.log10(g["total_flops"].to_numpy(float)), np.log10(g["loss"].to_numpy(float))
    resid = y - (intercept + slope * x)
    ss = float(((y - y.mean()) ** 2).sum()) if len(y) else 0.0
    r2 = 1.0 - float((resid ** 2).sum()) / ss if ss > 0 else float("nan")
    sl, ic = line_draws(summary, pool, k, arm)
    ci = None if not len(sl) else {"slope": tuple(np.percentile(sl, [2.5, 97.5])),
                                   "intercept": tuple(np.percentile(ic, [2.5, 97.5]))}
    return trust({"slope": slope, "intercept": intercept}, ci, r2, len(g), 2)


def options(summary: pd.DataFrame, pool: str, k: int, cost: str = "total") -> pd.DataFrame:
    """The measured options of (pool, k), with column `cost`."""
    if cost not in COSTS:
        raise ParameterError(f"cost={cost!r} must be one of {list(COSTS)}")
    pools = list(dict.fromkeys(summary["pool"]))
    if pool not in pools:
        raise ParameterError(f"pool={pool!r} is not in the stored composition results; stored pools: {pools}")
    ks = sorted(int(x) for x in summary.loc[summary["pool"] == pool, "k"].unique())
    if isinstance(k, bool) or not isinstance(k, int) or k not in ks:
        raise ParameterError(f"k={k!r} was not measured for pool {pool!r}; measured k: {ks}")
    g = summary[(summary["pool"] == pool) & (summary["k"] == k)].copy()
    g["cost"] = g[COSTS[cost]].astype(float)
    return g.sort_values(["cost", "loss"]).reset_index(drop=True)


def _answer(row, how: str, **extra) -> dict:
    return {"arm": row["arm"], "size": row.get("size", ""), "loss": float(row["loss"]), "cost": float(row["cost"]),
            "source": how, **extra}


def _check_positive(name: str, v) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
        raise ParameterError(f"{name}={v!r} must be a positive finite number")
    return float(v)


def target_plan(summary: pd.DataFrame, fits: pd.DataFrame, pool: str, k: int, target: float,
                cost: str = "total") -> dict:
    """The cheapest option reaching loss <= target (see the module docstring)."""
    target = _check_positive("target", target)
    fits = fit_lines(fits)
    opts = options(summary, pool, k, cost)
    ok = opts[opts["loss"] <= target]
    lo_range = (float(opts["cost"].min()), float(opts["cost"].max()))
    if len(ok):
        r = ok.iloc[0]
        return {**_answer(r, "measured", confident=bool(r["hi"] <= target), inside_range=True, decades_beyond=0.0),
                "question": f"target loss {target:g} on {pool} with k={k} at least {cost} cost",
                "measured_cost_range": lo_range, "alternatives": ok.head(5)[["arm", "size", "loss", "hi", "cost"]]}
    if cost != "total":
        raise ParameterError(f"target loss {target:g} is below every measured loss of pool {pool!r} at k={k} "
                             f"(best {opts['loss'].min():.4g}); extrapolation uses the total-cost fits: use --cost total")
    best = None
    for f in fits[(fits["pool"] == pool) & (fits["k"] == k)].itertuples():
        if not (f.slope < 0) or f.n_points < 2:
            continue
        c = 10.0 ** ((math.log10(target) - f.intercept) / f.slope)
        dec = math.log10(c / f.cost_max)
        if dec <= MAX_DECADES and (best is None or c < best[0]):
            best = (c, f, dec)
    if best is None:
        raise ParameterError(f"target loss {target:g} is unreachable for pool {pool!r} at k={k}: no measured option "
                             f"reaches it (best {opts['loss'].min():.4g}) and no arm's fitted line reaches it within "
                             f"{MAX_DECADES:g} decades of compute beyond its measurements")
    c, f, dec = best
    ok, why = line_trust(summary, pool, k, f.arm, f.slope, f.intercept)
    sl, ic = line_draws(summary, pool, k, f.arm)
    ok_draws = sl < 0
    with np.errstate(over="ignore"):  # a nearly flat redrawn line reaches the target at an infinite cost
        costs = 10.0 ** ((math.log10(target) - ic[ok_draws]) / sl[ok_draws]) if ok_draws.any() else np.array([])
    lo, hi = (np.percentile(costs, [2.5, 97.5]) if len(costs) else (math.nan, math.nan))
    return {"arm": f.arm, "size": "", "loss": target, "cost": c, "cost_lo": float(lo), "cost_hi": float(hi),
            "draws_reaching": float(ok_draws.mean()) if len(sl) else math.nan, "source": "fitted line (extrapolated)",
            "trusted": ok, "why_not_ok": why,
            "confident": False, "inside_range": False, "decades_beyond": dec,
            "question": f"target loss {target:g} on {pool} with k={k} at least {cost} cost",
            "measured_cost_range": lo_range, "alternatives": opts.nsmallest(5, "loss")[["arm", "size", "loss", "hi", "cost"]]}


def budget_plan(summary: pd.DataFrame, fits: pd.DataFrame, pool: str, k: int, budget: float,
                cost: str = "total") -> dict:
    """The lowest measured loss within the budget; beyond the largest measured cost (by at most
    MAX_DECADES), also the best fitted-line prediction at the budget (flagged as extrapolated)."""
    budget = _check_positive("budget", budget)
    fits = fit_lines(fits)
    opts = options(summary, pool, k, cost)
    within = opts[opts["cost"] <= budget]
    if not len(within):
        raise ParameterError(f"budget {budget:g} FLOPs is below the cheapest option for pool {pool!r} at k={k} "
                             f"({opts['cost'].min():.4g} FLOPs, {opts.iloc[0]['arm']} at {opts.iloc[0]['size']})")
    r = within.loc[within["loss"].idxmin()]
    cmax = float(opts["cost"].max())
    out = {**_answer(r, "measured", inside_range=budget <= cmax, decades_beyond=max(0.0, math.log10(budget / cmax))),
           "question": f"best loss on {pool} with k={k} for a budget of {budget:g} FLOPs ({cost} cost)",
           "measured_cost_range": (float(opts["cost"].min()), cmax),
           "alternatives": within.nsmallest(5, "loss")[["arm", "size", "loss", "hi", "cost"]]}
    if budget > cmax and cost == "total":
        # the same horizon as target_plan: no line is followed more than MAX_DECADES beyond its data
        # (a power law in compute has no floor; two decades out it already predicts implausibly low loss)
        preds = [(predict(f._asdict(), budget), f.arm, math.log10(budget / f.cost_max))
                 for f in fits[(fits["pool"] == pool) & (fits["k"] == k)].itertuples()
                 if f.n_points >= 2 and math.isfinite(f.slope) and math.log10(budget / f.cost_max) <= MAX_DECADES]
        if not preds:
            out["no_extrapolation"] = (f"the budget lies more than {MAX_DECADES:g} decades beyond every arm's "
                                       "measurements: the fitted lines are not followed that far")
        if preds:
            p, arm, dec = min(preds)
            sl, ic = line_draws(summary, pool, k, arm)
            lo, hi = (np.percentile(10.0 ** (ic + sl * math.log10(budget)), [2.5, 97.5]) if len(sl)
                      else (math.nan, math.nan))
            f = fits[(fits["pool"] == pool) & (fits["k"] == k) & (fits["arm"] == arm)].iloc[0]
            ok, why = line_trust(summary, pool, k, arm, float(f["slope"]), float(f["intercept"]))
            out["extrapolated"] = {"arm": arm, "loss": p, "lo": float(lo), "hi": float(hi), "decades_beyond": dec,
                                   "trusted": ok, "why_not_ok": why}
    return out


def _distrust(d: dict) -> list[str]:
    if d.get("trusted", True):
        return []
    return [f"  WARNING: the fitted line of {d['arm']} is not ok by the trust rule (fitting/trust.py): "
            f"{d['why_not_ok']}; the measured options below are what the stored results support"]


def render(out: dict) -> str:
    L = [out["question"] + ":"] + _distrust(out)
    size = f" at {out['size']}" if out.get("size") else ""
    iv = (f" [95%: {out['cost_lo']:.3g}, {out['cost_hi']:.3g}; the line reaches the target in "
          f"{100 * out['draws_reaching']:.0f}% of its draws]" if "cost_lo" in out else "")
    L.append(f"  answer: {out['arm']}{size}, loss {out['loss']:.4g}, cost {out['cost']:.4g} FLOPs{iv} ({out['source']})")
    if out["inside_range"]:
        risk = "inside the measured range"
    elif out["source"] == "measured":
        risk = (f"the answer is a measurement, but the budget lies {out['decades_beyond']:.2f} decades beyond the "
                "largest measured cost: larger options were not measured")
    else:
        risk = f"extrapolated {out['decades_beyond']:.2f} decades beyond the largest measured cost of that arm"
    lo, hi = out["measured_cost_range"]
    L.append(f"  extrapolation risk: {risk} (measured costs {lo:.3g} to {hi:.3g} FLOPs)")
    if "confident" in out:
        L.append(f"  target met by the 95% upper bound too: {'yes' if out['confident'] else 'no'}")
    if "no_extrapolation" in out:
        L.append(f"  no extrapolation: {out['no_extrapolation']}")
    if "extrapolated" in out:
        e = out["extrapolated"]
        L.append(f"  beyond the measurements, the fitted lines predict {e['arm']} best at loss {e['loss']:.4g} "
                 f"[95%: {e['lo']:.4g}, {e['hi']:.4g}] "
                 f"({e['decades_beyond']:.2f} decades beyond its data: a guess, not a measurement)")
        L += _distrust(e)
    L.append("  options considered (best first):")
    L.append(out["alternatives"].to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    return "\n".join(L)
