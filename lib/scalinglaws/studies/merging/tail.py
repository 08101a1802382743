"""Per-size tail fits L(k) = L_inf + A / (k + b), and what makes any fit trustworthy.

Why per size: the joint (N, k) law ties A(N) to a power of N; if that form is wrong (A grows with
N, or the N-dependence is carried by the floor alone) the joint fit goes degenerate while each
size's k-curve may still follow 1/(k + b) closely. Fitting each size alone measures A(N) directly,
which is what the theory predicts, (c^2/2) Tr(H Sigma), size by size.

Why not the one fitter (`scalinglaws.fitting.fit`, which fits the same law, `laws.merging_tail`): the
fit is on the loss's natural scale with weights k, A must be free in sign (A <= 0 is itself the
finding that the curve does not fall) and the bootstrap resamples the merged models within each k
(each point is a mean over subsets), not the points; the fitter fits log residuals and resamples
points. The fit is exact, not iterative: for b on a grid (0 and a log grid up to `B_MAX`) L_inf and A are
a weighted linear least-squares fit of L on x = 1/(k + b) (weights k, as the joint fit); the best b
is then refined between its grid neighbours. A is free in sign (A <= 0: the curve does not fall).
Intervals: a bootstrap over the merged models, resampling the subsets of each k with replacement
(the curve's own sampling noise; k = M has one subset and does not vary).

Trust (`scalinglaws.fitting.trust`, shared by every study): a fit is ok only if all hold, and
`why_not_ok` lists each that fails:
    converged       the optimiser converged (the exact tail fit always does)
    bounds          no parameter on a bound, except those in `allowed_bounds` (documented: b = 0 is
                    the theory's leading order; V* = 0 is the variance law's expectation)
    interval        every point estimate inside its own bootstrap interval (there is one)
    r2              R^2 >= `R2_MIN`
    dof             more points than parameters (an exact interpolation is not a test)
    falls           (tail fits) A > 0: the loss falls with k
    tail            (joint fits) the fitted tail moves the loss by more than 2 x RMSE over the
                    fitted k at some N (`analysis.fit_rows`): a flat curve is not a 1/k law
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from scalinglaws.fitting.schema import fit_rows, fits_frame, wide
from scalinglaws.fitting.trust import R2_MIN, trust  # noqa: F401  (the shared rule; re-exported)
from scalinglaws.laws import get_law

B_MAX = get_law("merging_tail").bounds["b"][1]  # 50: b's box, one source with the law
_B_GRID = np.concatenate([[0.0], np.geomspace(1e-3, B_MAX, 240)])


def _wls_grid(k: np.ndarray, Y: np.ndarray, w: np.ndarray, bs: np.ndarray):
    """For curves Y (n_curves, n_k) and every b in bs: the weighted LS (L_inf, A) and SSE.
    Returns L_inf, A, sse each (n_curves, n_b)."""
    X = 1.0 / (k[None, :] + bs[:, None])                  # (n_b, n_k)
    sw = w.sum()
    xm = (X * w).sum(1) / sw                               # (n_b,)
    ym = (Y * w).sum(1) / sw                               # (n_c,)
    dx = X - xm[:, None]                                   # (n_b, n_k)
    sxx = (w * dx * dx).sum(1)                             # (n_b,)
    sxy = np.einsum("bk,ck->cb", w * dx, Y)                # (n_c, n_b)  (sum w dx (y - ym) = sum w dx y)
    A = sxy / np.where(sxx > 0, sxx, np.nan)
    L = ym[:, None] - A * xm[None, :]
    pred = L[:, :, None] + A[:, :, None] * X[None]
    sse = (w * (Y[:, None, :] - pred) ** 2).sum(-1)
    return L, A, sse


def fit_tail_curve(k, y, w=None) -> dict:
    """The exact weighted fit of y = L_inf + A / (k + b) on one curve: L_inf, A, b, r2, rmse, on_bound."""
    k, y = np.asarray(k, dtype=float), np.asarray(y, dtype=float)
    w = k.copy() if w is None else np.asarray(w, dtype=float)
    L, A, sse = _wls_grid(k, y[None], w, _B_GRID)
    j = int(np.nanargmin(sse[0]))
    b = float(_B_GRID[j])
    if 0 < j < len(_B_GRID) - 1:  # refine between the neighbours (golden section on the profile SSE)
        lo, hi = _B_GRID[j - 1], _B_GRID[j + 1]
        fine = np.linspace(lo, hi, 201)
        Lf, Af, sf = _wls_grid(k, y[None], w, fine)
        i = int(np.nanargmin(sf[0]))
        b, Lb, Ab = float(fine[i]), float(Lf[0, i]), float(Af[0, i])
    else:
        Lb, Ab = float(L[0, j]), float(A[0, j])
    pred = Lb + Ab / (k + b)
    ss_res = float(((y - pred) ** 2).sum())
    ss_tot = float(((y - y.mean()) ** 2).sum())
    on_bound = ["b"] if b <= 0 else (["b"] if b >= B_MAX else [])
    return {"L_inf": Lb, "A": Ab, "b": b, "r2": 1 - ss_res / ss_tot if ss_tot > 0 else math.nan,
            "rmse": math.sqrt(ss_res / len(y)), "n_points": len(y), "on_bound": on_bound,
            "b_at_max": b >= B_MAX}


def bootstrap_tail(models: pd.DataFrame, col: str, n_boot: int, seed: int) -> pd.DataFrame:
    """Bootstrap draws of (L_inf, A, b) for one curve from its merged models (columns k and `col`):
    the models of each k resampled with replacement, the mean curve refitted on the b grid."""
    g = [(k, grp[col].to_numpy(dtype=float)) for k, grp in models.groupby("k", sort=True)]
    ks = np.array([k for k, _ in g], dtype=float)
    rng = np.random.default_rng(seed)
    Y = np.stack([v[rng.integers(0, len(v), size=(n_boot, len(v)))].mean(1) for _, v in g], axis=1)
    L, A, sse = _wls_grid(ks, Y, ks, _B_GRID)
    j = np.nanargmin(np.where(np.isfinite(sse), sse, np.inf), axis=1)
    r = np.arange(n_boot)
    return pd.DataFrame({"draw": r, "L_inf": L[r, j], "A": A[r, j], "b": _B_GRID[j]})


def amplitude_slope(N, A) -> float:
    """The least-squares slope of log A over log N (= -gamma of the joint law) across sizes with
    A > 0 (a size whose tail does not fall has no log); NaN with fewer than two such sizes."""
    N, A = np.asarray(N, dtype=float), np.asarray(A, dtype=float)
    keep = A > 0
    if keep.sum() < 2:
        return math.nan
    return float(np.polyfit(np.log(N[keep]), np.log(A[keep]), 1)[0])


TAIL_SCOPES = {"in_domain": "ce_in", "cross_domain": "ce_cross"}
TAIL_LAW = "merging_tail"  # the law L = L_inf + A / (k + b) in `scalinglaws.laws` (fitted here exactly)
TAIL_KEYS = ["pool", "method", "size", "N", "scope"]
TAIL_PARAMS = ("L_inf", "A", "b")


def tail_fits(models: pd.DataFrame, n_boot: int = 1000, seed: int = 0, r2_min: float = R2_MIN):
    """Per (pool, method, size, scope) tail fits from `analysis.model_losses` (k >= 1 models).
    Returns (a `fits` table in the one schema, `fitting.schema`, keyed by TAIL_KEYS; {(pool, method,
    size, scope): draws DataFrame}). r2 is on the loss's natural scale (the fit's), r2_log NaN."""
    rows, draws = [], {}
    for (pool, method, size, N), g in models[models["k"] >= 1].groupby(["pool", "method", "size", "N"], sort=True):
        for scope, col in TAIL_SCOPES.items():
            curve = g.groupby("k")[col].mean()
            f = fit_tail_curve(curve.index.to_numpy(), curve.to_numpy())
            est = {p: f[p] for p in TAIL_PARAMS}
            ci = se = None
            if n_boot >= 2:
                d = bootstrap_tail(g, col, n_boot, seed)
                draws[(pool, method, size, scope)] = d
                ci = {p: tuple(np.nanquantile(d[p], [0.025, 0.975])) for p in est}
                se = {p: float(d[p].std(ddof=1)) for p in est}
            extra = [] if f["A"] > 0 else [f"A={f['A']:.3g} <= 0: the loss does not fall with k"]
            # b's interval ending on B_MAX is cut by the box (b = 0 is the theory's leading order: allowed)
            if ci and np.isfinite(ci["b"][1]) and ci["b"][1] >= B_MAX * (1 - 1e-6):
                extra.append(f"interval reaches a bound: b (its upper end at B_MAX = {B_MAX:g})")
            ok, why = trust(est, ci, f["r2"], f["n_points"], 3, on_bound=f["on_bound"],
                            allowed_bounds=() if f["b_at_max"] else ("b",), r2_min=r2_min, extra=extra)
            rows += fit_rows(TAIL_LAW, est, ci, se, r2=f["r2"], rmse=f["rmse"], ok=ok, why_not_ok=why,
                             n_points=f["n_points"],
                             keys={"pool": pool, "method": method, "size": size, "N": N, "scope": scope})
    return fits_frame(rows, TAIL_KEYS), draws


def tail_wide(tails: pd.DataFrame) -> pd.DataFrame:
    """One row per tail fit (TAIL_KEYS, L_inf, A, b with `_lo`, `_hi`, `_se`, r2, rmse, n_points, ok,
    why_not_ok): the shape the figures, the planner and the claims read."""
    return wide(tails, TAIL_KEYS)


def theory_vs_tail(tails: pd.DataFrame, theory: pd.DataFrame, scope: str = "cross_domain") -> pd.DataFrame:
    """Fitted A(N) per size beside the theory's (c^2/2) Tr(H Sigma) of the same pool, method and size,
    with A_ratio = fitted / predicted (the theory's loss is the equal mixture of the pool's domains,
    the cross-domain curve)."""
    cols = ["pool", "method", "size", "N", "A", "A_lo", "A_hi", "A_pred", "A_pred_lo", "A_pred_hi",
            "A_ratio", "tail_ok"]
    if theory is None or not len(theory) or not len(tails):
        return pd.DataFrame(columns=cols)
    t = tail_wide(tails)
    t = t[t["scope"] == scope].rename(columns={"ok": "tail_ok"})
    j = t.merge(theory[["pool", "method", "size", "A_pred", "A_pred_lo", "A_pred_hi"]], on=["pool", "method", "size"])
    j["A_ratio"] = j["A"] / j["A_pred"]
    return j[cols].sort_values(["pool", "method", "N"]).reset_index(drop=True)


def coefficient_ratio(tails: pd.DataFrame, draws: dict, c2_pred: float, method: str = "task_arithmetic",
                      reference: str = "average", scope: str = "cross_domain") -> pd.DataFrame:
    """A(method) / A(reference) per pool and size with a paired bootstrap interval (the same
    resamples of the same subsets for both), beside the theory's c^2 ratio."""
    rows = []
    t = tail_wide(tails)
    t = t[t["scope"] == scope].set_index(["pool", "method", "size"])
    for (pool, m, size), r in t.iterrows():
        if m != method or (pool, reference, size) not in t.index:
            continue
        ref = t.loc[(pool, reference, size)]
        lo = hi = math.nan
        a, b = draws.get((pool, method, size, scope)), draws.get((pool, reference, size, scope))
        if a is not None and b is not None:
            q = (a["A"] / b["A"].where(b["A"] > 0)).dropna()
            if len(q):
                lo, hi = np.quantile(q, [0.025, 0.975])
        rows.append({"pool": pool, "size": size, "N": r["N"], "method": method, "reference": reference,
                     "ratio": r["A"] / ref["A"] if ref["A"] > 0 else math.nan, "lo": float(lo), "hi": float(hi),
                     "c2_ratio_pred": c2_pred, "both_ok": bool(r["ok"] and ref["ok"])})
    return pd.DataFrame(rows, columns=["pool", "size", "N", "method", "reference", "ratio", "lo", "hi",
                                       "c2_ratio_pred", "both_ok"])
