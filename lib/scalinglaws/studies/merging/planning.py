"""Planning with a fitted merging law and its uncertainty: how many experts, when to stop, and
whether compute is better spent on a larger base or on more experts.

The law (Wang et al. 2025, `scalinglaws.laws`, law "merging"):

    L(N, k) = L_inf(N) + A(N) / (k + b),   L_inf(N) = L* + B N^-beta,   A(N) = A0 N^-gamma.

Questions answered (formulas in `scalinglaws.laws`, which this module only combines):

    experts for a target   k = A(N) / (L_target - L_inf(N)) - b, rounded up to an integer >= 1;
                           unreachable when L_target <= L_inf(N)
    within eps of floor    k_eps = A(N) / eps - b
    marginal gain          Delta_k = L(k) - L(k+1) = A / ((k + b)(k + 1 + b))
    stopping curve         R(k) = (L(1) - L(k)) / (L(1) - L(K)) on k = 1..K (the pool size);
                           for this law R(k) = (1/(1+b) - 1/(k+b)) / (1/(1+b) - 1/(K+b))

The base is an answer too (k = 0): when the fit knows the base's measured loss at N (the stored
curves' k = 0), a target the base already meets needs no expert ("keep the base"), and where no
merge of the pool is predicted to beat the base the answer says so. A k beyond the pool of M
experts the law was fitted on is an extrapolation: it is reported with status "beyond the pool"
(`beyond_pool` True), never silently.

Uncertainty: every answer is also computed for each bootstrap draw of the fit (the `fit_samples`
table, or `FitResult.bootstrap`) and reported as the central `level` interval of the draws
(no interpolation between draws, so unreachable draws, k = inf, are handled exactly), with the
fraction of draws for which a target is reachable.

Compute (FLOPs, the 6 N D rule with N the *total* parameter count, embeddings included):

    base      C_pre(N) = 6 N_total(N) D(N)        D = the profile's pretraining tokens
    expert    C_ft(N)  = 6 N_total(N) D_ft(N)     D_ft = the profile's fine-tuning tokens
    merge     0                                    (a weighted sum of tensors)

`CostModel` knows N_total, D and D_ft at the ladder sizes and interpolates them linearly in
log-log between sizes (and extrapolates along the end segments), so a FLOP budget can be
compared over a continuous grid of candidate N. Two decisions:

    budget    for C: every grid N gets k(N) = floor((C - C_pre(N)) / C_ft(N)) experts (capped by
              max_experts); the plan is the N with the lowest L(N, k(N))
    next step from (N, k): one more expert gains Delta_k for C_ft(N); doubling the base gains
              L(N, k) - L(2N, k) for C_pre(2N) + k C_ft(2N) (a new base and k new experts);
              both are reported per FLOP, with their ratio.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from scalinglaws import laws
from scalinglaws.studies.merging.analysis import MACRO_SCOPES
from scalinglaws.studies.merging.tail import tail_wide
from scalinglaws.core.validation import ParameterError, check_float, check_int

PARAMS = ("L_star", "B", "beta", "A0", "gamma", "b")
LOSS_SCOPES = MACRO_SCOPES


# ---------------------------------------------------------------------------------------------
# the fit

@dataclass
class MergingFit:
    """Reported law parameters, optional bootstrap draws (one row each, columns PARAMS) and
    where they came from. N_range: the (min, max) N the law was fitted on, if known."""
    params: dict
    draws: pd.DataFrame | None = None
    method: str | None = None
    scope: str | None = None
    source: str = ""
    N_range: tuple[float, float] | None = None
    info: dict = field(default_factory=dict)
    base_loss: dict | None = None      # {N: the base model's measured loss (k = 0)} at fitted sizes
    pool_size: int | None = None       # M, the experts the law was fitted on (k <= M measured)
    pool: str | None = None

    def __post_init__(self):
        missing = [p for p in PARAMS if p not in self.params]
        if missing:
            raise ParameterError(f"merging fit lacks parameter(s) {missing}; need {list(PARAMS)}")
        self.params = {p: float(self.params[p]) for p in PARAMS}
        if self.draws is not None:
            missing = [p for p in PARAMS if p not in self.draws.columns]
            if missing:
                raise ParameterError(f"bootstrap draws lack column(s) {missing}")
            self.draws = self.draws[list(PARAMS)].astype(float).reset_index(drop=True)
            if self.draws.empty:
                self.draws = None

    def draw_dicts(self) -> list[dict]:
        return [] if self.draws is None else self.draws.to_dict("records")

    def loss(self, N, k):
        """L(N, k) at the point estimate."""
        return laws.merging_loss(self.params, N, k)

    def base_at(self, N: float) -> float | None:
        """The base's measured loss at N (a fitted size), else None."""
        for n, v in (self.base_loss or {}).items():
            if abs(float(n) - N) <= 1e-9 * max(1.0, N):
                return float(v)
        return None


def _draws_from(obj) -> pd.DataFrame | None:
    if obj is None:
        return None
    if isinstance(obj, pd.DataFrame):
        return obj
    if isinstance(obj, Mapping):       # {param: [values]}
        return pd.DataFrame({k: list(v) for k, v in obj.items()})
    return pd.DataFrame(list(obj))      # [{param: value}, ...]


def fit_from_dict(d: Mapping, source: str = "dict") -> MergingFit:
    """From `FitResult.to_dict()` (as written by `python -m scalinglaws fit merging ... --json`),
    optionally with bootstrap draws under "samples" / "draws" / "fit_samples" (a list of
    {param: value} or {param: [values]}), or from a plain {param: value} mapping."""
    if "law" in d and d["law"] not in ("merging", "merging_free"):
        raise ParameterError(f"{source}: a fit of law {d['law']!r}, not 'merging'")
    params = d.get("params", d)
    draws = next((d[k] for k in ("samples", "draws", "fit_samples") if d.get(k) is not None), None)
    N_range = tuple(d["N_range"]) if d.get("N_range") else None
    info = {k: d[k] for k in ("r2", "ok", "why_not_ok", "n_points") if k in d}  # a FitResult's own verdict
    return MergingFit(dict(params), _draws_from(draws), d.get("method"), d.get("scope"), source, N_range, info)


def load_fit_file(path) -> MergingFit:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no fit file at {path}")
    try:
        d = json.loads(path.read_text())
    except ValueError as e:
        raise ParameterError(f"{path} is not JSON ({e})") from None
    if not isinstance(d, Mapping):
        raise ParameterError(f"{path} holds a {type(d).__name__}, not a JSON object")
    return fit_from_dict(d, source=str(path))


def check_scope(scope: str) -> str:
    """A scope of the merging fits that predicts a loss (not 'variance')."""
    from scalinglaws.data import ALL_DOMAINS
    allowed = list(LOSS_SCOPES) + [f"domain:{d}" for d in ALL_DOMAINS]
    if scope == "variance":
        raise ParameterError("scope='variance' is the across-subset variance law, not a loss: plan with "
                             f"one of {allowed}")
    if scope not in allowed:
        raise ParameterError(f"scope={scope!r} is not one of {allowed}")
    return scope


def load_fit(source=None, *, profile: str | None = None, method: str = "average",
             scope: str = "cross_domain", root=None, pool: str | None = None) -> MergingFit:
    """A MergingFit from: a MergingFit, a `FitResult`, a dict (see `fit_from_dict`), a JSON path,
    or (source None) the merging study's `fits` and `fit_samples` tables at `profile`, for one
    pool of experts (default: the first stored), with the base's measured loss per size and the
    pool size from the stored curves."""
    if isinstance(source, MergingFit):
        return source
    if source is not None and hasattr(source, "params") and hasattr(source, "law"):  # FitResult
        if source.law.name not in ("merging", "merging_free"):
            raise ParameterError(f"a fit of law {source.law.name!r}, not 'merging'")
        return MergingFit(dict(source.params), source.bootstrap, source=f"FitResult(n={source.n})")
    if isinstance(source, Mapping):
        return fit_from_dict(source)
    if source is not None:
        return load_fit_file(source)
    from scalinglaws.core.results import open_store
    from scalinglaws.studies.merging.config import METHOD_VARIANTS
    check_scope(scope)
    if method not in METHOD_VARIANTS:
        raise ParameterError(f"method={method!r} is not one of {list(METHOD_VARIANTS)}")
    store = open_store("merging", profile or "best", root)
    fits = store.read("fits")
    if "pool" not in fits.columns:
        fits = fits.assign(pool="all")
    pools = list(dict.fromkeys(fits["pool"]))
    pool = pool or pools[0]
    if pool not in pools:
        raise ParameterError(f"pool={pool!r} is not one of the stored pools {pools}")
    f = fits[(fits["pool"] == pool) & (fits["method"] == method) & (fits["scope"] == scope)
             & fits["law"].isin(["merging", "merging_free"])]
    if f.empty:
        have = sorted({(m, s) for m, s in zip(fits["method"], fits["scope"]) if not s.startswith("variance")})
        raise ParameterError(f"no merging fit for pool={pool!r} method={method!r} scope={scope!r} at profile "
                             f"{store.profile!r}; stored: {have}")
    draws = None
    if store.has("fit_samples"):
        s = store.read("fit_samples")
        s = s[s["pool"] == pool] if "pool" in s.columns else s
        draws = s[(s["method"] == method) & (s["scope"] == scope)]
    N_range, base, M = None, None, None
    if store.has("curves"):
        c = store.read("curves")
        c = c[c["pool"] == pool] if "pool" in c.columns else c
        c = c[(c["method"] == method) & (c["scope"] == scope)]
        if len(c):
            N_range = (float(c["N"].min()), float(c["N"].max()))
            M = int(c["k"].max())
            b0 = c[c["k"] == 0]
            base = dict(zip(b0["N"].astype(float), b0["ce"].astype(float))) or None
    info = {k: f[k].iloc[0] for k in ("r2", "ok", "why_not_ok", "n_points") if k in f.columns}
    return MergingFit(dict(zip(f["param"], f["estimate"])), draws, method, scope,
                      f"merging/{store.profile}/{pool}", N_range, info, base, M, pool)


def trusted(fit: MergingFit) -> tuple[bool, str]:
    """(ok, why_not_ok) of the law a plan uses, by the trust rule (`fitting/trust.py`) as stored
    with the fit; a fit that carries no verdict (plain parameters) is taken as given."""
    ok = fit.info.get("ok")
    if ok is None or (isinstance(ok, float) and math.isnan(ok)):
        return True, ""
    return bool(ok), str(fit.info.get("why_not_ok") or "")


def supported(profile: str, pool: str, method: str, scope: str, size: str | None, N: float,
              target: float | None = None, root=None) -> dict:
    """What the stored merging results support without the law: at the base size (by name or N),
    the measured curve (mean CE over subsets at each k, k = 0 the base) and the per-size tail fit
    `L(k) = L_inf + A/(k + b)` (`tail_fits`, with its own trust verdict); for a target, the smallest
    measured k whose CE meets it and, if the tail fit is ok, the k it predicts. Sizes without
    measurements give the measured sizes instead."""
    from scalinglaws.core.results import open_store
    store = open_store("merging", profile, root)
    c = store.read("curves") if store.has("curves") else pd.DataFrame()
    if len(c):
        c = c[(c["pool"] == pool) & (c["method"] == method) & (c["scope"] == scope)]
    sizes = list(dict.fromkeys(c["size"])) if len(c) else []
    if size is None and len(c):
        hit = c[np.isclose(c["N"].astype(float), N, rtol=1e-9)]
        size = hit["size"].iloc[0] if len(hit) else None
    out: dict = {"size": size, "measured_sizes": sizes}
    if size not in sizes:
        return out
    curve = c[c["size"] == size].sort_values("k")[["k", "ce", "n_subsets"]].reset_index(drop=True)
    out["curve"] = curve
    if store.has("tail_fits"):
        t = tail_wide(store.read("tail_fits"))
        t = t[(t["pool"] == pool) & (t["method"] == method) & (t["scope"] == scope) & (t["size"] == size)]
        if len(t):
            r = t.iloc[0]
            out["tail_fit"] = {k: (r[k].item() if hasattr(r[k], "item") else r[k])
                               for k in ("L_inf", "L_inf_lo", "L_inf_hi", "A", "b", "r2", "n_points", "ok", "why_not_ok")}
    if target is not None:
        meets = curve[curve["ce"] <= target]
        out["target"] = target
        out["measured_k"] = None if meets.empty else int(meets["k"].iloc[0])
        out["best_measured"] = {"k": int(curve.loc[curve["ce"].idxmin(), "k"]), "ce": float(curve["ce"].min())}
        tf = out.get("tail_fit")
        if tf and tf["ok"]:
            out["tail_k"] = (tf["A"] / (target - tf["L_inf"]) - tf["b"]) if target > tf["L_inf"] else math.inf
    return out


# ---------------------------------------------------------------------------------------------
# helpers over draws

def _interval(values, level: float) -> tuple[float, float]:
    """Central `level` interval of draws, taken at actual draws (inverted CDF: inf-safe)."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return (math.nan, math.nan)
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(v, [a, 1.0 - a], method="inverted_cdf")
    return float(lo), float(hi)


def _over(fit: MergingFit, fn, level: float) -> dict:
    """fn(params) -> float at the estimate, and its interval over the draws."""
    est = float(fn(fit.params))
    vals = [float(fn(p)) for p in fit.draw_dicts()]
    lo, hi = _interval(vals, level)
    return {"estimate": est, "lo": lo, "hi": hi, "draws": len(vals)}


def _check_level(level):
    return check_float("level", level, 0.0, 1.0, open_interval=True)


def _check_N(N) -> float:
    return check_float("N", N, 0.0, open_interval=True)


def extrapolating(fit: MergingFit, N: float) -> bool:
    """True when N lies outside the range of sizes the law was fitted on (when known)."""
    return fit.N_range is not None and not (fit.N_range[0] * (1 - 1e-9) <= N <= fit.N_range[1] * (1 + 1e-9))


# ---------------------------------------------------------------------------------------------
# how many experts

def experts_for_target(fit: MergingFit, N: float, target: float, level: float = 0.95) -> dict:
    """Experts needed to reach loss `target` at base size N (law: k = A/(L_target - L_inf) - b).

    k (continuous, inf if unreachable), k_needed = max(1, ceil(k)), floor L_inf(N) with its
    interval, k_lo/k_hi over the draws and p_reachable (fraction of draws whose floor is below
    the target). status: 'reachable', 'one expert suffices' (k <= 1) or 'unreachable'; with the
    base's loss known: 'keep the base' (k_needed 0) when the base meets the target; with the pool
    size known: 'beyond the pool' when k_needed > M (an extrapolation of the law past the k it
    was fitted on; `beyond_pool` True). `merge_beats_base`: some k <= M is predicted below the base.
    """
    N, target = _check_N(N), check_float("target", target, 0.0, open_interval=True)
    _check_level(level)
    k = float(laws.k_for_target(fit.params, N, target))
    floor = _over(fit, lambda p: laws.merging_floor(p, N), level)
    kd = [float(laws.k_for_target(p, N, target)) for p in fit.draw_dicts()]
    k_lo, k_hi = _interval(kd, level)
    status = "unreachable" if not math.isfinite(k) else ("one expert suffices" if k <= 1 else "reachable")
    k_needed = (math.ceil(k - 1e-9) if math.isfinite(k) and k > 1 else (1 if math.isfinite(k) else math.inf))
    base = fit.base_at(N)
    M = fit.pool_size
    beyond = M is not None and math.isfinite(k_needed) and k_needed > M
    beats = None
    if base is not None and M:
        beats = bool(np.min(fit.loss(N, np.arange(1, M + 1))) < base)
    if base is not None and target >= base:
        status, k_needed = "keep the base", 0
        beyond = False
    elif beyond:
        status = f"beyond the pool: needs {k_needed} experts, the law was fitted on at most {M}"
    return {"N": N, "target": target, "k": k, "k_needed": k_needed,
            "k_lo": k_lo, "k_hi": k_hi, "status": status,
            "p_reachable": float(np.mean(np.isfinite(kd))) if kd else math.nan,
            "floor": floor["estimate"], "floor_lo": floor["lo"], "floor_hi": floor["hi"],
            "amplitude": float(laws.merging_amplitude(fit.params, N)), "extrapolated": extrapolating(fit, N),
            "base_loss": math.nan if base is None else base, "pool": M, "beyond_pool": beyond,
            "merge_beats_base": beats}


def stopping(fit: MergingFit, N: float, eps: float | None = None, pool: int = 8, k_max: int | None = None,
             levels=(0.85, 0.9), level: float = 0.95) -> dict:
    """Where to stop adding experts at base size N.

    k_eps (+ interval) for a tolerance eps above the floor (`k_eps_beyond_pool` when it exceeds
    the pool); a table over k = 1..k_max of L(k), Delta_k = L(k) - L(k+1) (+ interval) and R(k)
    on the pool k = 1..pool, led by a k = 0 row (the base's measured loss) when the fit knows it,
    and `keep_base` True when no k of the pool is predicted below the base; for each R level the
    smallest k reaching it (`laws.k_at`).
    """
    N = _check_N(N)
    check_int("pool", pool, minimum=2)
    k_max = check_int("k_max", k_max, minimum=1) if k_max is not None else pool
    _check_level(level)
    out: dict = {"N": N, "pool": pool, "extrapolated": extrapolating(fit, N)}
    if eps is not None:
        eps = check_float("eps", eps, 0.0, open_interval=True)
        r = _over(fit, lambda p: laws.k_eps(p, N, eps), level)
        out.update({"eps": eps, "k_eps": r["estimate"], "k_eps_lo": r["lo"], "k_eps_hi": r["hi"],
                    "k_eps_needed": max(1, math.ceil(r["estimate"] - 1e-9)),
                    "k_eps_beyond_pool": bool(r["estimate"] > pool)})
    ks = np.arange(1, max(k_max, pool) + 1, dtype=float)
    L = fit.loss(N, ks)
    R = laws.stopping_curve(ks[:pool], L[:pool])
    rows = []
    for i, k in enumerate(ks[:k_max]):
        g = _over(fit, lambda p, k=k: laws.marginal_gain(p, N, k), level)
        rows.append({"k": int(k), "loss": float(L[i]), "gain_next": g["estimate"], "gain_next_lo": g["lo"],
                     "gain_next_hi": g["hi"], "R": float(R.iloc[i]) if i < pool else math.nan})
    base = fit.base_at(N)
    if base is not None:
        rows.insert(0, {"k": 0, "loss": base, "gain_next": base - float(L[0]), "gain_next_lo": math.nan,
                        "gain_next_hi": math.nan, "R": math.nan})
        out["keep_base"] = bool(np.min(L[:pool]) >= base)
    out["table"] = pd.DataFrame(rows)
    out["k_at_R"] = {float(lv): (None if laws.k_at(R, lv) is None else int(laws.k_at(R, lv))) for lv in levels}
    return out


# ---------------------------------------------------------------------------------------------
# compute

@dataclass
class CostModel:
    """Per ladder size: N (non-embedding), N_total, D (pretraining tokens), D_ft (tokens per
    expert); log-log interpolation in N in between (end segments extrapolate)."""
    N: np.ndarray
    N_total: np.ndarray
    D: np.ndarray
    D_ft: np.ndarray
    sizes: tuple = ()
    label: str = ""

    def __post_init__(self):
        arrs = [np.asarray(x, dtype=float) for x in (self.N, self.N_total, self.D, self.D_ft)]
        if len({a.shape for a in arrs}) != 1 or arrs[0].ndim != 1 or len(arrs[0]) < 1:
            raise ParameterError("cost model arrays must be 1-D and of equal length")
        if (np.concatenate(arrs) <= 0).any():
            raise ParameterError("cost model values must be > 0")
        order = np.argsort(arrs[0])
        self.N, self.N_total, self.D, self.D_ft = (a[order] for a in arrs)
        if self.sizes:
            self.sizes = tuple(np.asarray(self.sizes)[order])

    @classmethod
    def from_profile(cls, profile: str) -> "CostModel":
        from scalinglaws.models import ladder_table
        from scalinglaws.training import finetune_budget, token_budget
        t = ladder_table(profile)
        return cls(t["non_embedding"].to_numpy(), t["total"].to_numpy(),
                   np.array([token_budget(s, profile) for s in t["size"]]),
                   np.array([finetune_budget(s, profile) for s in t["size"]]), tuple(t["size"]), profile)

    def _interp(self, y, N):
        lx, ly = np.log(self.N), np.log(y)
        x = np.log(np.asarray(N, dtype=float))
        if len(lx) == 1:
            return np.exp(ly[0] + (x - lx[0])) if y is self.N_total else np.full_like(x, y[0])
        out = np.interp(x, lx, ly)
        lo_slope = (ly[1] - ly[0]) / (lx[1] - lx[0])
        hi_slope = (ly[-1] - ly[-2]) / (lx[-1] - lx[-2])
        out = np.where(x < lx[0], ly[0] + lo_slope * (x - lx[0]), out)
        out = np.where(x > lx[-1], ly[-1] + hi_slope * (x - lx[-1]), out)
        return np.exp(out)

    def n_total(self, N):
        return self._interp(self.N_total, N)

    def pretrain_flops(self, N):
        """C_pre(N) = 6 N_total D."""
        return 6.0 * self.n_total(N) * self._interp(self.D, N)

    def expert_flops(self, N):
        """C_ft(N) = 6 N_total D_ft (one expert)."""
        return 6.0 * self.n_total(N) * self._interp(self.D_ft, N)

    def size_N(self, size: str) -> float:
        if size not in self.sizes:
            raise ParameterError(f"size={size!r} is not one of {list(self.sizes)}")
        return float(self.N[list(self.sizes).index(size)])


def budget_plan(fit: MergingFit, cost: CostModel, budget_flops: float, N_grid=None, points_per_gap: int = 4,
                max_experts: int | None = None, count_pretraining: bool = True, level: float = 0.95) -> pd.DataFrame:
    """Best (N, k) for a FLOP budget: one row per candidate N with the affordable k, its cost,
    predicted loss (+ interval), p_best (fraction of bootstrap draws for which this N is the best)
    and best (the point estimate's choice). Default grid: the ladder sizes plus `points_per_gap`
    geometric points between neighbours. Rows with k < 1 are infeasible (loss NaN)."""
    budget = check_float("budget_flops", budget_flops, 0.0, open_interval=True)
    _check_level(level)
    check_int("points_per_gap", points_per_gap, minimum=0)
    if max_experts is not None:
        check_int("max_experts", max_experts, minimum=1)
    if N_grid is None:
        lN = np.log(cost.N)
        pieces = [np.linspace(a, b, points_per_gap + 2)[:-1] for a, b in zip(lN[:-1], lN[1:])] + [lN[-1:]]
        N_grid = np.exp(np.concatenate(pieces))
    N_grid = np.unique(np.asarray(N_grid, dtype=float))
    if (N_grid <= 0).any():
        raise ParameterError("N_grid values must be > 0")
    pre = cost.pretrain_flops(N_grid) if count_pretraining else np.zeros_like(N_grid)
    ft = cost.expert_flops(N_grid)
    k = np.floor((budget - pre) / ft + 1e-9)
    if max_experts is not None:
        k = np.minimum(k, max_experts)
    feasible = k >= 1
    if not feasible.any():
        cheapest = float(np.min(pre + ft))
        raise ParameterError(f"budget_flops={budget:.3g} buys no base with one expert on this grid "
                             f"(cheapest: {cheapest:.3g} FLOPs)")
    kf = np.where(feasible, k, 1.0)

    def losses(p):
        return np.where(feasible, laws.merging_floor(p, N_grid) + laws.merging_amplitude(p, N_grid) / (kf + p["b"]),
                        np.nan)

    L = losses(fit.params)
    draws = np.array([losses(p) for p in fit.draw_dicts()]) if fit.draws is not None else np.empty((0, len(N_grid)))
    p_best = np.zeros(len(N_grid))
    lo = hi = np.full(len(N_grid), np.nan)
    if len(draws):
        best_d = np.nanargmin(draws, axis=1)
        p_best = np.bincount(best_d, minlength=len(N_grid)) / len(draws)
        ivs = [_interval(draws[:, j], level) if feasible[j] else (np.nan, np.nan) for j in range(len(N_grid))]
        lo, hi = np.array([a for a, _ in ivs]), np.array([b for _, b in ivs])
    size_of = dict(zip(cost.N, cost.sizes)) if cost.sizes else {}
    df = pd.DataFrame({"N": N_grid, "size": [size_of.get(n, "") for n in N_grid],
                       "N_total": cost.n_total(N_grid), "k": np.where(feasible, k, 0).astype(int),
                       "pretrain_flops": pre, "expert_flops": ft, "total_flops": pre + np.where(feasible, k, 0) * ft,
                       "loss": L, "loss_lo": lo, "loss_hi": hi, "p_best": p_best,
                       "extrapolated": [extrapolating(fit, n) for n in N_grid]})
    df["best"] = False
    df.loc[int(np.nanargmin(L)), "best"] = True
    return df


def double_vs_expert(fit: MergingFit, cost: CostModel, N: float, k: int, count_pretraining: bool = True,
                     level: float = 0.95) -> dict:
    """From a base of size N with k experts: one more expert vs a base of size 2N (with k experts).

    gain_expert = Delta_k = A(N)/((k+b)(k+1+b)),  flops_expert = C_ft(N)
    gain_double = L(N, k) - L(2N, k),              flops_double = C_pre(2N) + k C_ft(2N)
    (C_pre omitted with count_pretraining=False: the larger base is given). Per-FLOP gains, the
    ratios double/expert (of gains and of gains per FLOP) and intervals over the draws.
    """
    N = _check_N(N)
    check_int("k", k, minimum=1)
    _check_level(level)
    fe = float(cost.expert_flops(N))
    fd = float((cost.pretrain_flops(2 * N) if count_pretraining else 0.0) + k * cost.expert_flops(2 * N))

    def gains(p):
        ge = float(laws.marginal_gain(p, N, k))
        L = lambda n: laws.merging_loss(p, n, k)  # noqa: E731
        gd = float(L(N) - L(2 * N))
        return ge, gd

    ge, gd = gains(fit.params)
    out = {"N": N, "k": k, "gain_expert": ge, "flops_expert": fe, "gain_per_flop_expert": ge / fe,
           "gain_double": gd, "flops_double": fd, "gain_per_flop_double": gd / fd,
           "gain_ratio": gd / ge if ge > 0 else math.inf,
           "per_flop_ratio": (gd / fd) / (ge / fe) if ge > 0 else math.inf,
           "extrapolated": extrapolating(fit, N) or extrapolating(fit, 2 * N)}
    draws = [gains(p) for p in fit.draw_dicts()]
    if draws:
        d = np.array(draws)
        for name, col in (("gain_expert", d[:, 0]), ("gain_double", d[:, 1])):
            out[f"{name}_lo"], out[f"{name}_hi"] = _interval(col, level)
        ratio = np.where(d[:, 0] > 0, (d[:, 1] / fd) / np.where(d[:, 0] > 0, d[:, 0] / fe, 1.0), np.inf)
        out["per_flop_ratio_lo"], out["per_flop_ratio_hi"] = _interval(ratio, level)
        out["p_double_better"] = float(np.mean(ratio > 1))
    out["better"] = "double the base" if out["per_flop_ratio"] > 1 else "one more expert"
    return out
