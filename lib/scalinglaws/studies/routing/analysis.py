"""The routing study's analysis, pure functions of its tables (tested on synthetic data): the
routing law per router, effective parameter counts, N_cutoff, held-out extrapolation, and the
analysis unit that computes them all (keyed by the measured losses, so a rerun does no work)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from scalinglaws import fitting as F
from scalinglaws import laws as LW
from scalinglaws.studies.routing.config import DENSE, DENSE_LAW, LAW
from scalinglaws.studies.routing.names import order_key
from scalinglaws.studies.routing.resources import resource_fits


def router_frame(loss: pd.DataFrame, router: str) -> pd.DataFrame:
    """The points of one router's law: the dense models (E = 1) and that router's E > 1 models."""
    sel = (loss["router"] == DENSE) | (loss["router"] == router)
    return loss[sel].sort_values(["N", "experts"]).reset_index(drop=True)


def routers_in(loss: pd.DataFrame) -> list[str]:
    return sorted(set(loss["router"]) - {DENSE}, key=order_key)


def _fit_rows(res, law: str, router: str) -> list[dict]:
    """The project's one `fits` schema (`FitResult.rows`), keyed by router, plus the fitter's message."""
    return [{**r, "law": law, "message": res.message} for r in res.rows(router=router)]


def fit_laws(loss: pd.DataFrame, bootstrap: int = 1000, seed: int = 0, maxiter: int = 500,
             huber_delta: float = 1e-3) -> tuple[pd.DataFrame, dict]:
    """Dense law on the E = 1 points and the routed law per router (module docstring).
    `huber_delta`: the fitter's (our study keeps its default; `clark.py` fits Clark's data by least
    squares in log loss, a delta above every residual).

    Returns (fits table: one row per law, router, parameter with value, 95% CI, SE, R2, ok;
    {router or 'dense': FitResult}). A router with fewer points than parameters is skipped."""
    rows, results = [], {}
    dense = loss[loss["router"] == DENSE]
    if len(dense) >= len(LW.get_law(DENSE_LAW).params):
        res = F.fit(DENSE_LAW, dense, columns={"N": "N"}, y="L", bootstrap=bootstrap, seed=seed, maxiter=maxiter,
                    huber_delta=huber_delta)
        results[DENSE] = res
        rows += _fit_rows(res, DENSE_LAW, DENSE)
    for r in routers_in(loss):
        pts = router_frame(loss, r)
        if len(pts) < len(LW.get_law(LAW).params):
            continue
        res = F.fit(LAW, pts, columns={"N": "N", "E": "experts"}, y="L", bootstrap=bootstrap, seed=seed,
                    maxiter=maxiter, huber_delta=huber_delta)
        results[r] = res
        rows += _fit_rows(res, LAW, r)
    cols = ["router", "law", "param", "estimate", "lo", "hi", "se", "r2", "r2_log", "rmse", "converged", "ok", "why_not_ok",
            "n_points", "message"]
    return pd.DataFrame(rows, columns=cols), results


SAMPLE_DRAWS = 200  # bootstrap draws kept per fit in `fit_samples` (enough for a 95% band)
# the routing law's *reported* parameters (E_start, E_max; the fitter works in log10 internally)
SAMPLE_COLUMNS = ["router", "law", "draw", *LW.get_law(LAW).reported]


def fit_samples_table(results: dict, draws: int = SAMPLE_DRAWS) -> pd.DataFrame:
    """The bootstrap draws of every fit (first `draws` of each), one row per (router, draw) with
    the law's parameters as columns (the dense law's rows have only a and d): the figures draw
    confidence bands from them, and the planner can propagate them."""
    rows = [row for r, res in results.items()
            for row in res.sample_rows(draws, router=r, law=DENSE_LAW if r == DENSE else LAW)]
    return pd.DataFrame(rows, columns=SAMPLE_COLUMNS)


def effective_params_table(loss: pd.DataFrame, results: dict) -> pd.DataFrame:
    """N_bar per routed model: from the routed and dense fits (`laws.effective_params`) and from
    the measured L through the dense fit (N_bar = 10^((log10 L - d)/a)); ratio = N_bar / N."""
    cols = ["router", "size", "N", "experts", "L", "N_bar_fit", "N_bar_measured", "ratio_fit", "ratio_measured"]
    if DENSE not in results:
        return pd.DataFrame(columns=cols)
    dp = results[DENSE].params
    rows = []
    for r in routers_in(loss):
        for x in router_frame(loss, r).itertuples():
            fit = LW.effective_params(results[r], dp, x.N, x.experts) if r in results else math.nan
            meas = 10.0 ** ((math.log10(x.L) - dp["d"]) / dp["a"])
            rows.append({"router": r, "size": x.size, "N": x.N, "experts": x.experts, "L": x.L,
                         "N_bar_fit": fit, "N_bar_measured": meas, "ratio_fit": fit / x.N, "ratio_measured": meas / x.N})
    return pd.DataFrame(rows, columns=cols)


def n_cutoff_table(results: dict) -> pd.DataFrame:
    """N_cutoff = 10^(-b/c) per router from the unrounded fit, with the 2.5/97.5 percentiles of
    log10 N_cutoff = -b/c over the bootstrap draws and the fraction of draws with c > 0 (where
    the cutoff exists: routing helps below it and hurts above it)."""
    rows = []
    for r, res in results.items():
        if r == DENSE:
            continue
        b, c = res.params["b"], res.params["c"]
        lg = -b / c if c != 0 else math.copysign(math.inf, -b)
        lo = hi = frac = math.nan
        if res.bootstrap is not None and len(res.bootstrap):
            bb, cc = res.bootstrap["b"].to_numpy(), res.bootstrap["c"].to_numpy()
            with np.errstate(divide="ignore", invalid="ignore"):
                draws = -bb / cc
            draws = draws[np.isfinite(draws)]
            if len(draws):
                lo, hi = np.percentile(draws, [2.5, 97.5])
            frac = float(np.mean(cc > 0))
        rows.append({"router": r, "b": b, "c": c, "log10_n_cutoff": lg, "n_cutoff": 10.0 ** lg if lg < 300 else math.inf,
                     "log10_lo": lo, "log10_hi": hi, "frac_c_positive": frac, "ok": res.ok})
    return pd.DataFrame(rows, columns=["router", "b", "c", "log10_n_cutoff", "n_cutoff", "log10_lo", "log10_hi",
                                       "frac_c_positive", "ok"])


EXTRAPOLATION_COLUMNS = ["router", "scheme", "size", "N", "experts", "L", "pred", "lo", "hi", "rel_error", "status"]


def extrapolation_table(loss: pd.DataFrame, max_fit_experts: int = 8, bootstrap: int = 0, seed: int = 0,
                        maxiter: int = 500, huber_delta: float = 1e-3) -> pd.DataFrame:
    """Held-out prediction errors. Schemes per router: 'size' (fit all but the largest N, predict
    it) and 'experts' (fit E <= max_fit_experts, predict larger E; if none was run, fit all but
    the largest E); dense: 'size' with the dense law. A scheme whose training set has fewer
    points than the law has parameters gets one row with status 'not testable'."""
    rows = []

    def run(router, scheme, frame, mask, law, columns):
        P = len(LW.get_law(law).params)
        if mask.sum() < P or mask.all():
            rows.append({"router": router, "scheme": scheme, "status": "not testable"})
            return
        ex = F.extrapolate(law, frame, mask, columns=columns, y="L", bootstrap=bootstrap, seed=seed, maxiter=maxiter,
                           huber_delta=huber_delta)
        for x in ex.table.itertuples():
            rows.append({"router": router, "scheme": scheme, "size": x.size, "N": x.N, "experts": x.experts,
                         "L": x.L, "pred": x.pred, "lo": x.lo, "hi": x.hi, "rel_error": x.rel_error,
                         "status": "ok" if ex.fit.ok else f"fit not ok: {ex.fit.why_not_ok}"})

    dense = loss[loss["router"] == DENSE].reset_index(drop=True)
    if len(dense):
        run(DENSE, "size", dense, (dense["N"] < dense["N"].max()).to_numpy(), DENSE_LAW, {"N": "N"})
    for r in routers_in(loss):
        pts = router_frame(loss, r)
        run(r, "size", pts, (pts["N"] < pts["N"].max()).to_numpy(), LAW, {"N": "N", "E": "experts"})
        cut = max_fit_experts if (pts["experts"] > max_fit_experts).any() else pts["experts"].max() - 1
        run(r, "experts", pts, (pts["experts"] <= cut).to_numpy(), LAW, {"N": "N", "E": "experts"})
    return pd.DataFrame(rows, columns=EXTRAPOLATION_COLUMNS)


def analyse(loss: pd.DataFrame, resources: pd.DataFrame, bootstrap: int = 1000, seed: int = 0,
            max_fit_experts: int = 8, maxiter: int = 500) -> dict[str, pd.DataFrame]:
    """Every analysis table from the loss table and the resource table (`resource_table`)."""
    fits, results = fit_laws(loss, bootstrap, seed, maxiter)
    return {"fits": fits, "fit_samples": fit_samples_table(results),
            "effective_params": effective_params_table(loss, results),
            "n_cutoff": n_cutoff_table(results),
            "extrapolation": extrapolation_table(loss, max_fit_experts, min(bootstrap, 200), seed, maxiter),
            "resource_fits": resource_fits(resources, bootstrap, seed)}


# the analysis unit's tables, in its config: a new table is a new unit, never a stale cached record
ANALYSIS_OUTPUTS = ["fits", "fit_samples", "effective_params", "n_cutoff", "extrapolation", "resource_fits"]


def _analysis(config: dict) -> dict:
    out = analyse(pd.DataFrame(config["loss"]), pd.DataFrame(config["resources"]), config["bootstrap"],
                  config["seed"], config["max_fit_experts"], config["maxiter"])
    return {name: {"columns": list(df.columns), "records": df.to_dict("records")} for name, df in out.items()}
