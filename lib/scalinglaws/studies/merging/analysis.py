"""Analysis of the merging sweep: CE curves, the floor + tail law, extrapolation, variance, R(k).

Input is the `merges` table of the merging study: one row per (pool, size, N, method, subset, k,
eval_domain) with the merged model's CE on that domain (one of its pool's domains) and `in_subset`
(the domain's expert is in the merge). Rows with k = 0 (subset "") are the base model on the same
windows: every curve starts there, and `beats_base` compares each k with it. For each
(pool, method, size, k):

    in-domain CE     L_in(k)  = mean_d  mean_{S: |S| = k, d in S}     CE_d(S)
    held-out CE      L_out(k) = mean_d  mean_{S: |S| = k, d not in S} CE_d(S)     (k < M)
    cross-domain CE  L_x(k)   = mean_S  mean_{all M domains d}        CE_d(S)
    per domain       L_d(k)   = mean_{S: |S| = k, d in S} CE_d(S)     (scope "domain:<d>")

(means over the subsets that were merged: all C(M, k) or the permutation prefixes).
Across-subset variance (scope "variance"): Var_S[ mean_d CE_d(S) ] over the k-subsets, which is 0
at k = M (one subset) by construction, so k = M is left out of its fit. Subsets of one pool of M
experts are drawn without replacement, so even i.i.d. experts give Var = (sigma^2 / k)(M - k)/(M - 1);
scope "variance_fpc" fits Var * (M - 1)/(M - k), the infinite-pool variance the law describes.

The law (Wang et al. 2025), fitted jointly over (N, k >= 1) with weights proportional to k:

    L(N, k) = L* + B N^-beta + A0 N^-gamma / (k + b)         (law "merging": gamma >= 0, as the
                                                              paper constrains it)

`FREE_LAW` ("merging_free", gamma of either sign) is a labelled diagnostic only: it shows whether the
data want a growing A(N), and no claim rests on it. Runs before the constraint stored fits of the
free law (their `law` column says so); the claims name it and re-judge them by the current rule.

Every fit's `ok` is the study's trust rule (`tail.trust`: converged, no parameter on a bound but b
(and V* for the variance law), estimate inside its interval, R^2 of log y (the scale the fitter
minimises; the variances span decades) >= tail.R2_MIN, more points than
parameters), with `why_not_ok` naming each failure.

Stopping curve: R(k) = (L(1) - env(k)) / (L(1) - min_j L(j)), env the running minimum;
k80 / k90 = the smallest k with R >= 0.8 / 0.9.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from scalinglaws.laws import get_law, k_at, stopping_curve
from scalinglaws.core.validation import ParameterError

LAW = "merging"  # the paper's law, gamma >= 0
FREE_LAW = "merging_free"  # diagnostic only: gamma of either sign
MACRO_SCOPES = ("in_domain", "cross_domain", "held_out")
KEYS = ["pool", "method", "size", "N", "k"]


def _with_pool(df: pd.DataFrame) -> pd.DataFrame:
    """Tables written before pools existed (and synthetic ones) are one pool, "all"."""
    return df if "pool" in df.columns else df.assign(pool="all")


def _require(df: pd.DataFrame, cols, what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ParameterError(f"{what} lacks column(s) {missing}; has {list(df.columns)}")


# ---------------------------------------------------------------------------------------------
# curves


def model_losses(merges: pd.DataFrame) -> pd.DataFrame:
    """One row per merged model (k >= 1): pool, method, size, N, subset, k, ce_cross (mean CE over
    its pool's domains) and ce_in (mean CE over the domains of its own experts)."""
    merges = _with_pool(merges)
    merges = merges[merges["k"] >= 1]
    _require(merges, KEYS + ["subset", "eval_domain", "in_subset", "ce"], "merges")
    g = merges.groupby(KEYS + ["subset"], sort=True)
    out = g["ce"].mean().rename("ce_cross").to_frame()
    out["ce_in"] = merges[merges["in_subset"]].groupby(KEYS + ["subset"])["ce"].mean()
    return out.reset_index()


def curves(merges: pd.DataFrame) -> pd.DataFrame:
    """Mean CE per (pool, method, size, N, k, scope): scopes in_domain, held_out, cross_domain and
    domain:<d> (in-domain CE of domain d), k = 0 (the base, the same value for every scope of a
    domain set) included when the merges carry base rows. Columns: pool, method, size, N, k, scope,
    ce, n_subsets, base_ce, delta_base (ce - base_ce), beats_base (ce < base_ce)."""
    merges = _with_pool(merges)
    _require(merges, KEYS + ["subset", "eval_domain", "in_subset", "ce"], "merges")
    base = merges[merges["k"] == 0]
    merges = merges[merges["k"] >= 1]
    frames = []
    # per domain and side (in / out): mean over subsets
    per = (merges.groupby(KEYS + ["eval_domain", "in_subset"])
           .agg(ce=("ce", "mean"), n_subsets=("subset", "nunique")).reset_index())
    for flag, scope in ((True, "in_domain"), (False, "held_out")):
        part = per[per["in_subset"] == flag]
        macro = part.groupby(KEYS).agg(ce=("ce", "mean"), n_subsets=("n_subsets", "min")).reset_index()
        frames.append(macro.assign(scope=scope))
    dom = per[per["in_subset"]].copy()
    dom["scope"] = "domain:" + dom["eval_domain"]
    frames.append(dom[KEYS + ["scope", "ce", "n_subsets"]])
    models = model_losses(merges)
    cross = models.groupby(KEYS).agg(ce=("ce_cross", "mean"), n_subsets=("subset", "nunique")).reset_index()
    frames.append(cross.assign(scope="cross_domain"))
    if len(base):
        per_b = base.groupby(KEYS + ["eval_domain"])["ce"].mean().reset_index()
        macro_b = per_b.groupby(KEYS)["ce"].mean().reset_index()
        for scope in ("in_domain", "held_out", "cross_domain"):
            frames.append(macro_b.assign(scope=scope, n_subsets=1))
        frames.append(per_b.assign(scope="domain:" + per_b["eval_domain"], n_subsets=1)[KEYS + ["scope", "ce", "n_subsets"]])
    out = pd.concat(frames, ignore_index=True)[KEYS + ["scope", "ce", "n_subsets"]]
    out = out.sort_values(["pool", "method", "scope", "N", "k"]).reset_index(drop=True)
    ref = out[out["k"] == 0].set_index(["pool", "method", "size", "scope"])["ce"]
    idx = pd.MultiIndex.from_frame(out[["pool", "method", "size", "scope"]])
    out["base_ce"] = ref.reindex(idx).to_numpy() if len(ref) else np.nan
    out["delta_base"] = out["ce"] - out["base_ce"]
    out["beats_base"] = out["delta_base"] < 0
    return out


def variance_curves(merges: pd.DataFrame) -> pd.DataFrame:
    """Across-subset spread per (method, size, N, k): var / sd of the cross-domain CE of the merged
    models (scope cross_domain) and the macro average over domains d of the variance of CE_d over
    the subsets containing d (scope in_domain). var uses ddof=1; NaN where one subset exists."""
    merges = _with_pool(merges)
    merges = merges[merges["k"] >= 1]
    models = model_losses(merges)
    cross = (models.groupby(KEYS)["ce_cross"].agg(var=lambda x: x.var(ddof=1), n_subsets="count")
             .reset_index().assign(scope="cross_domain"))
    ins = merges[merges["in_subset"]]
    per = ins.groupby(KEYS + ["eval_domain"])["ce"].agg(var=lambda x: x.var(ddof=1), n="count").reset_index()
    ind = per.groupby(KEYS).agg(var=("var", "mean"), n_subsets=("n", "min")).reset_index().assign(scope="in_domain")
    out = pd.concat([cross, ind], ignore_index=True)
    out["sd"] = np.sqrt(out["var"])
    return out[KEYS + ["scope", "var", "sd", "n_subsets"]].sort_values(["pool", "method", "scope", "N", "k"]).reset_index(drop=True)


def fit_points(curves_df: pd.DataFrame, variance_df: pd.DataFrame | None, method: str, scope: str,
               pool: str = "all") -> pd.DataFrame:
    """The (N, k, y) points of one fit of one pool: the CE curve of `scope` at k >= 1 (the base,
    k = 0, is where 1/(k + b) may diverge: it is the reference, not a point), or for scope
    'variance' the cross-domain across-subset variance (k with a single subset, where it is 0,
    dropped)."""
    curves_df = _with_pool(curves_df)
    if scope in ("variance", "variance_fpc"):
        if variance_df is None:
            raise ParameterError(f"scope {scope!r} needs the variance curves")
        variance_df = _with_pool(variance_df)
        v = variance_df[(variance_df["pool"] == pool) & (variance_df["method"] == method)
                        & (variance_df["scope"] == "cross_domain")].copy()
        if scope == "variance_fpc":  # undo the finite-pool factor (M - k)/(M - 1) of sampling without replacement
            M = int(v["k"].max())
            v["var"] = v["var"] * (M - 1) / (M - v["k"]).where(v["k"] < M)
        v = v[np.isfinite(v["var"]) & (v["var"] > 0)]
        pts = v.rename(columns={"var": "y"})[["size", "N", "k", "y"]]
    else:
        c = curves_df[(curves_df["pool"] == pool) & (curves_df["method"] == method)
                      & (curves_df["scope"] == scope) & (curves_df["k"] >= 1)]
        pts = c.rename(columns={"ce": "y"})[["size", "N", "k", "y"]]
    return pts.sort_values(["N", "k"]).reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# fits


# parameters that scale with y (L = L* + B N^-beta + A0 N^-gamma / (k + b)); beta, gamma, b do not
AMPLITUDES = ("L_star", "B", "A0")


def y_scale(y) -> float:
    """1 for y of order one (CE: 0.01 <= median <= 100), else a power of ten that brings the
    median of y near 1 (variances are ~1e-5 nats^2; the fitter converges faster and more reliably
    on numbers of order one). The law is scale-covariant: fitting c*y gives c*L_star, c*B, c*A0 and
    the same beta, gamma, b, R^2."""
    med = float(np.median(np.abs(np.asarray(y, dtype=float))))
    if not med > 0 or 1e-2 <= med <= 1e2:
        return 1.0
    return 10.0 ** (-round(math.log10(med)))


def fit_law(points: pd.DataFrame, bootstrap: int = 0, seed: int = 0, scale: float = 1.0):
    """Weighted fit of the merging law to points (N, k, y), weights w = k (the paper's choice:
    the spread of a merge of k experts shrinks like 1/k), on y * scale (see `y_scale`; undo with
    `fit_rows(..., scale)`). Returns a `fitting.FitResult`."""
    from scalinglaws.fitting import fit
    _require(points, ["N", "k", "y"], "fit points")
    return fit(LAW, points.assign(y=points["y"] * scale), columns={"N": "N", "k": "k"}, y="y",
               weights=points["k"].to_numpy(dtype=float), bootstrap=bootstrap, seed=seed)


def tail_span(params: dict, points: pd.DataFrame) -> float:
    """The largest change the fitted tail makes over the fitted k range at any fitted N:
    max_N A(N) (1/(k_min + b) - 1/(k_max + b)), in the units of the fit."""
    N = np.unique(points["N"].to_numpy(dtype=float))
    kmin, kmax = float(points["k"].min()), float(points["k"].max())
    A = params["A0"] * N ** -params["gamma"]
    return float(np.max(A * (1 / (kmin + params["b"]) - 1 / (kmax + params["b"]))))


def fit_rows(method: str, scope: str, res, scale: float = 1.0, pool: str = "all", r2_min: float | None = None,
             points: pd.DataFrame | None = None) -> list[dict]:
    """Long rows of the `fits` table, one per reported law parameter, in the units of y (a fit on
    y * scale is divided back: amplitudes, their intervals and the RMSE by scale). `ok` is the
    study's trust rule (`tail.trust`), `why_not_ok` its failed criteria; `converged` the optimiser's.
    With the fitted `points`, a fit whose tail changes the loss over the fitted k by less than twice
    its RMSE is not ok either ("no tail"): its k-dependence is not resolved (a flat curve fitted
    with A0 ~ 1e-40 is not a 1/k law)."""
    from scalinglaws.studies.merging.tail import R2_MIN, trust
    allowed = ("b", "L_star") if scope.startswith("variance") else ("b",)
    on_bound = [{"log_B": "B", "log_A0": "A0"}.get(p, p) for p in res.on_bound]
    extra = []
    if points is not None and len(points):
        span = tail_span(res.params, points)
        if not span > 2 * res.rmse:
            extra.append(f"no tail: it moves the fit by {span:.2g} over k, under 2 x RMSE {res.rmse:.2g}")
    ok, why = trust(dict(res.params), res.ci, res.r2_log, res.n, len(res.params), converged=res.converged,
                    on_bound=on_bound, allowed_bounds=allowed, r2_min=R2_MIN if r2_min is None else r2_min,
                    extra=extra, interval_on_bound=[{"log_B": "B", "log_A0": "A0"}.get(p, p)
                                                    for p in res.interval_on_bound])
    rows = res.rows(scale, AMPLITUDES, pool=pool, method=method, scope=scope)
    for r in rows:
        r["ok"], r["why_not_ok"] = ok, why
    return rows


def sample_rows(method: str, scope: str, res, scale: float = 1.0, pool: str = "all") -> list[dict]:
    """Rows of the `fit_samples` table: the bootstrap draws (reported parameters, units of y)."""
    return res.sample_rows(scale=scale, amplitudes=AMPLITUDES, pool=pool, method=method, scope=scope)


def params_of(fits: pd.DataFrame, method: str, scope: str, pool: str = "all") -> dict:
    """{param: estimate} of one fit from the `fits` table."""
    fits = _with_pool(fits)
    f = fits[(fits["pool"] == pool) & (fits["method"] == method) & (fits["scope"] == scope)]
    if f.empty:
        raise ParameterError(f"no fit for pool={pool!r} method={method!r} scope={scope!r}")
    return dict(zip(f["param"], f["estimate"]))


def predict(params: dict, N, k) -> np.ndarray:
    """L(N, k) from reported parameters (L_star, B, beta, A0, gamma, b)."""
    N, k = np.broadcast_arrays(np.asarray(N, dtype=float), np.asarray(k, dtype=float))
    return get_law(LAW).predict(params, {"N": N.ravel(), "k": k.ravel()}).reshape(N.shape)


# ---------------------------------------------------------------------------------------------
# extrapolation


def three_point(L1: float, L2: float, L4: float) -> dict:
    """The paper's three-point recipe: solve L(k) = L_inf + A / (k + b) exactly through k = 1, 2, 4.

        r = (L1 - L2) / (L2 - L4) = (4 + b) / (2 (1 + b))   =>   b = (4 - 2r) / (2r - 1)
        A = (L1 - L2) (1 + b)(2 + b),   L_inf = L1 - A / (1 + b)

    Needs a decreasing curve with 1/2 < r <= 2 (b >= 0). Otherwise (b would be negative or the
    curve does not fall) b is set to 0 and L_inf, A are the least-squares line of L on 1/k.
    Returns {'L_inf', 'A', 'b', 'exact'}.
    """
    d12, d24 = L1 - L2, L2 - L4
    if d12 > 0 and d24 > 0:
        r = d12 / d24
        if 0.5 < r <= 2.0:
            b = (4.0 - 2.0 * r) / (2.0 * r - 1.0)
            A = d12 * (1.0 + b) * (2.0 + b)
            return {"L_inf": L1 - A / (1.0 + b), "A": A, "b": b, "exact": True}
    x, y = np.array([1.0, 0.5, 0.25]), np.array([L1, L2, L4])
    A, L_inf = np.polyfit(x, y, 1)
    return {"L_inf": float(L_inf), "A": float(A), "b": 0.0, "exact": False}


def extrapolate_points(pts: pd.DataFrame, method: str, scope: str, bootstrap: int = 0, seed: int = 0,
                       k_train=(1, 2, 4), pool: str = "all") -> list[dict]:
    """Measured extrapolation errors of one curve family (points size, N, k, y), as rows with
    rel_error = (pred - y) / y on held-out points:

    test 'three_point'  per size: `three_point` on k = 1, 2, 4, predict k > 4 (the paper's recipe)
    test 'joint_k124'   the joint (N, k) law fitted on k in {1, 2, 4} (all sizes), predict k > 4
    test 'largest_N'    the joint law fitted without the largest N, predict every k at it

    A joint fit with fewer points than law parameters is skipped.
    """
    from scalinglaws.fitting import extrapolate
    n_par = len(get_law(LAW).params)
    rows = []
    if pts.empty:
        return rows
    kmax = pts["k"].max()
    for size, g in pts.groupby("size", sort=False):
        by_k = dict(zip(g["k"], g["y"]))
        if not all(k in by_k for k in k_train) or kmax <= max(k_train):
            continue
        tp = three_point(*(by_k[k] for k in k_train))
        for _, r in g[g["k"] > max(k_train)].iterrows():
            pred = tp["L_inf"] + tp["A"] / (r["k"] + tp["b"])
            rows.append({"pool": pool, "method": method, "scope": scope, "test": "three_point", "size": r["size"],
                         "N": float(r["N"]), "k": int(r["k"]), "y": float(r["y"]), "pred": float(pred),
                         "lo": math.nan, "hi": math.nan, "rel_error": float((pred - r["y"]) / r["y"])})
    tests = {"joint_k124": pts["k"].isin(k_train).to_numpy(),
             "largest_N": (pts["N"] < pts["N"].max()).to_numpy()}
    for test, mask in tests.items():
        if mask.all() or mask.sum() < n_par:
            continue
        held, _ = extrapolate(LAW, pts.assign(w=pts["k"].astype(float)), mask, columns={"N": "N", "k": "k"},
                              y="y", weights="w", bootstrap=bootstrap, seed=seed)
        if test == "joint_k124":  # k = 3 lies inside the fitted range: only k > 4 is extrapolation
            held = held[held["k"] > max(k_train)]
        for _, r in held.iterrows():
            rows.append({"pool": pool, "method": method, "scope": scope, "test": test, "size": r["size"],
                         "N": float(r["N"]), "k": int(r["k"]), "y": float(r["y"]), "pred": float(r["pred"]),
                         "lo": float(r["lo"]), "hi": float(r["hi"]), "rel_error": float(r["rel_error"])})
    return rows


EXTRAPOLATION_COLUMNS = ["pool", "method", "scope", "test", "size", "N", "k", "y", "pred", "lo", "hi", "rel_error"]


def extrapolation_table(curves_df: pd.DataFrame, methods, scopes, bootstrap: int = 0,
                        seed: int = 0) -> pd.DataFrame:
    """`extrapolate_points` for every method and scope, as one table."""
    rows = []
    curves_df = _with_pool(curves_df)
    for pool in curves_df["pool"].unique():
        for method in methods:
            for scope in scopes:
                pts = fit_points(curves_df, None, method, scope, pool)
                rows += extrapolate_points(pts, method, scope, bootstrap, seed, pool=pool)
    return pd.DataFrame(rows, columns=EXTRAPOLATION_COLUMNS)


def fitted(fits: pd.DataFrame, method: str, scope: str, pool: str) -> dict | None:
    """{param: estimate} of one stored joint fit, or None."""
    f = fits[(fits["pool"] == pool) & (fits["method"] == method) & (fits["scope"] == scope)] if len(fits) else fits
    return dict(zip(f["param"], f["estimate"])) if len(f) else None


def extrapolation_summary(extrap: pd.DataFrame) -> pd.DataFrame:
    """Mean and max |rel_error| (in %) per (pool, method, scope, test)."""
    e = _with_pool(extrap).assign(abs_pct=100 * extrap["rel_error"].abs())
    return (e.groupby(["pool", "method", "scope", "test"])
            .agg(mean_abs_pct=("abs_pct", "mean"), max_abs_pct=("abs_pct", "max"), n=("abs_pct", "size"))
            .reset_index())


# ---------------------------------------------------------------------------------------------
# stopping curve, method comparison


def stopping_table(curves_df: pd.DataFrame) -> pd.DataFrame:
    """R(k), k80, k90 per (pool, method, size, scope) from the mean CE curves at k >= 1 (see module
    docstring; R starts at one expert, as the paper's). Columns: pool, method, size, N, scope, k, ce,
    R, k80, k90."""
    rows = []
    curves_df = _with_pool(curves_df)
    curves_df = curves_df[curves_df["k"] >= 1]
    for (pool, method, size, N, scope), g in curves_df.groupby(["pool", "method", "size", "N", "scope"], sort=True):
        R = stopping_curve(g["k"].to_numpy(), g["ce"].to_numpy())
        k80, k90 = k_at(R, 0.8), k_at(R, 0.9)
        ce = dict(zip(g["k"], g["ce"]))
        for k, r in R.items():
            rows.append({"pool": pool, "method": method, "size": size, "N": N, "scope": scope, "k": int(k),
                         "ce": float(ce[k]), "R": float(r),
                         "k80": math.nan if k80 is None else int(k80),
                         "k90": math.nan if k90 is None else int(k90)})
    return pd.DataFrame(rows, columns=["pool", "method", "size", "N", "scope", "k", "ce", "R", "k80", "k90"])


def method_comparison(curves_df: pd.DataFrame, k: int, scope: str = "in_domain",
                      reference: str = "average") -> pd.DataFrame:
    """CE of every method at k relative to the reference method, per pool and size:
    rel = (CE_method - CE_ref) / CE_ref (negative: better than the reference).
    Columns: pool, size, N, method, ce, ce_ref, rel."""
    curves_df = _with_pool(curves_df)
    c = curves_df[(curves_df["scope"] == scope) & (curves_df["k"] == k)]
    ref = c[c["method"] == reference].set_index(["pool", "size"])["ce"]
    if ref.empty:
        raise ParameterError(f"no {reference!r} curve at k={k}, scope={scope!r}")
    out = c[["pool", "size", "N", "method", "ce"]].copy()
    out["ce_ref"] = ref.reindex(pd.MultiIndex.from_frame(out[["pool", "size"]])).to_numpy()
    out["rel"] = (out["ce"] - out["ce_ref"]) / out["ce_ref"]
    return out.sort_values(["pool", "N", "method"]).reset_index(drop=True)


def variance_ratio(variance_df: pd.DataFrame, k: int, scope: str = "cross_domain",
                   reference: str = "average") -> pd.DataFrame:
    """Across-subset variance of every method at k relative to the reference:
    rel = Var_method / Var_ref - 1. Columns: pool, size, N, method, var, var_ref, rel."""
    variance_df = _with_pool(variance_df)
    v = variance_df[(variance_df["scope"] == scope) & (variance_df["k"] == k)]
    ref = v[v["method"] == reference].set_index(["pool", "size"])["var"]
    out = v[["pool", "size", "N", "method", "var"]].copy()
    out["var_ref"] = ref.reindex(pd.MultiIndex.from_frame(out[["pool", "size"]])).to_numpy()
    out["rel"] = out["var"] / out["var_ref"] - 1.0
    return out.sort_values(["pool", "N", "method"]).reset_index(drop=True)


def prefix_vs_full(merges: pd.DataFrame, size: str, prefixes, scope: str = "in_domain",
                   pool: str | None = None) -> pd.DataFrame:
    """Does the diverse-permutation scheme reproduce full enumeration? For a size whose every
    subset was merged, the mean curves of `scope` over all subsets and over only the subsets in
    `prefixes` (subset keys), per method and k >= 1. Columns: method, k, ce_all, ce_prefix, rel."""
    merges = _with_pool(merges)
    m = merges[(merges["size"] == size) & (merges["k"] >= 1)]
    if pool is not None:
        m = m[m["pool"] == pool]
    full = curves(m)
    part = curves(m[m["subset"].isin(set(prefixes))])
    a = full[full["scope"] == scope].set_index(["method", "k"])["ce"].rename("ce_all")
    b = part[part["scope"] == scope].set_index(["method", "k"])["ce"].rename("ce_prefix")
    out = pd.concat([a, b], axis=1).dropna().reset_index()
    out["rel"] = (out["ce_prefix"] - out["ce_all"]) / out["ce_all"]
    return out
