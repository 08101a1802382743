"""When a fitted law is worth trusting: the one rule every study's `ok` column applies.

A fit is ok only if all of these hold; `why_not_ok` lists each one that fails, in words:

    converged   the optimiser converged
    bounds      no parameter on a bound, except those in `allowed_bounds` (a study names them and
                says why in its chapter: e.g. b = 0 is the merging theory's leading order)
    interval bounds  no 95% interval reaching a bound (same exceptions): an interval that ends on a
                bound is cut by the box, not by the data (e.g. an exponent interval [-5.0, -0.11]
                where -5 is the bound), so its width and any verdict from it are unknown
    interval    every point estimate inside its own bootstrap 95% interval (when there is one: a
                fit made without bootstrap is judged by the other criteria and its rows show no
                interval). An estimate outside its interval means the resamples found a different
                basin: the point estimate is not representative.
    r2          R^2 >= `r2_min` (default `R2_MIN`) on the scale the fit minimises: log y for the
                fitter (`FitResult.r2_log`; on y's natural scale a law over values spanning decades
                would be judged by its few largest points), y for exact linear fits such as the
                merging tail fits. A law that explains less of the variance than that is not the
                data's functional form, however small its intervals
    dof         more points than parameters: an exact interpolation tests nothing

Why one module: the merging, routing and resource studies (and `FitResult.ok`) used to judge fits
with different rules, so "ok" in one chapter meant less than in another.
"""
from __future__ import annotations

import numpy as np

R2_MIN = 0.9
TRUST_RULE = 4  # bump when the rule changes: analysis units put it in their config, so cached verdicts are redone


def trust(estimates: dict, ci: dict | None, r2: float, n_points: int, n_params: int, converged: bool = True,
          on_bound=(), allowed_bounds=(), r2_min: float = R2_MIN, extra=(),
          require_interval: bool = True, interval_on_bound=()) -> tuple[bool, str]:
    """(ok, why_not_ok) by the module's rule. `extra`: further failed criteria of a study (strings).
    `require_interval`: a missing bootstrap interval is itself a failure (the studies' fits), or
    the interval criterion is skipped (fits made without bootstrap on purpose). `interval_on_bound`:
    parameters whose 95% interval reaches a bound (`intervals_on_bound`)."""
    why = []
    if not converged:
        why.append("not converged")
    bad = [p for p in on_bound if p not in allowed_bounds]
    if bad:
        why.append("on a bound: " + ", ".join(bad))
    bad = [p for p in interval_on_bound if p not in allowed_bounds]
    if bad:
        why.append("interval reaches a bound: " + ", ".join(bad))
    if ci is None:
        if require_interval:
            why.append("no bootstrap interval")
    else:
        out = [f"{p}={v:.3g} outside [{ci[p][0]:.3g}, {ci[p][1]:.3g}]" for p, v in estimates.items()
               if p in ci and np.isfinite(ci[p][0]) and not (ci[p][0] - 1e-9 * max(1, abs(v)) <= v
                                                               <= ci[p][1] + 1e-9 * max(1, abs(v)))]
        if out:
            why.append("estimate outside its interval: " + "; ".join(out))
    if not (np.isfinite(r2) and r2 >= r2_min):
        why.append(f"R^2 {r2:.3g} < {r2_min:g}")
    if n_points <= n_params:
        why.append(f"{n_points} points for {n_params} parameters")
    why += list(extra)
    return (not why), "; ".join(why)


def intervals_on_bound(ci: dict | None, bounds: dict, rtol: float = 1e-6) -> list[str]:
    """Parameters whose interval [lo, hi] (ci: name -> (lo, hi)) touches a finite bound of `bounds`
    (name -> (lo, hi)); names in only one of the two are skipped."""
    out = []
    for p, (lo, hi) in (ci or {}).items():
        if p not in bounds:
            continue
        for end in (lo, hi):
            if np.isfinite(end) and any(np.isfinite(b) and abs(end - b) <= rtol * max(1.0, abs(b)) for b in bounds[p]):
                out.append(p)
                break
    return out


def rejudge(rows, law: str, allowed_bounds=()) -> tuple[bool, str]:
    """(ok, why_not_ok) of a stored fit by the current rule, from its `fits` rows (one per reported
    parameter: param, lo, hi, ok, why_not_ok): the stored verdict plus the interval-bounds criterion
    for the parameters the law reports under their fitted names (a stored table made before the
    criterion existed is judged by it without a refit)."""
    from scalinglaws.laws import get_law
    first = rows.iloc[0]
    ok, why = bool(first.get("ok", False)), str(first.get("why_not_ok", "") or "")
    ci = {r.param: (float(r.lo), float(r.hi)) for r in rows.itertuples()}
    hit = [p for p in intervals_on_bound(ci, get_law(law).bounds) if p not in allowed_bounds]
    if hit and "interval reaches a bound" not in why:
        why = "; ".join(x for x in (why, "interval reaches a bound: " + ", ".join(hit)) if x)
        ok = False
    return ok, why


def rejudge_table(fits, keys, law_column: str = "law", allowed=lambda key: ()):
    """A stored `fits` table (one row per reported parameter) with `ok` and `why_not_ok` of every
    fit (rows sharing `keys`) re-judged by `rejudge`; `allowed(key)`: the bounds a fit may touch.
    Nothing is refitted: a table made under an older rule is brought under the current one."""
    out = fits.copy()
    if "why_not_ok" not in out.columns:  # tables written before the column existed
        out["why_not_ok"] = ""
    keys = [k for k in keys if k in out.columns]
    ok_col, why_col = out.columns.get_loc("ok"), out.columns.get_loc("why_not_ok")
    for key, pos in out.groupby(keys, dropna=False, sort=False).indices.items():  # positions: any index
        g = out.iloc[pos]
        ok, why = rejudge(g, g[law_column].iloc[0], allowed(key))
        out.iloc[pos, ok_col], out.iloc[pos, why_col] = ok, why
    return out
