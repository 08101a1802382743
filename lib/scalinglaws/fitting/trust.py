"""When a fitted law is worth trusting: the one rule every study's `ok` column applies.

A fit is ok only if all of these hold; `why_not_ok` lists each one that fails, in words:

    converged   the optimiser converged
    bounds      no parameter on a bound, except those in `allowed_bounds` (a study names them and
                says why in its chapter: e.g. b = 0 is the merging theory's leading order)
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
TRUST_RULE = 3  # bump when the rule changes: analysis units put it in their config, so cached verdicts are redone


def trust(estimates: dict, ci: dict | None, r2: float, n_points: int, n_params: int, converged: bool = True,
          on_bound=(), allowed_bounds=(), r2_min: float = R2_MIN, extra=(),
          require_interval: bool = True) -> tuple[bool, str]:
    """(ok, why_not_ok) by the module's rule. `extra`: further failed criteria of a study (strings).
    `require_interval`: a missing bootstrap interval is itself a failure (the studies' fits), or
    the interval criterion is skipped (fits made without bootstrap on purpose)."""
    why = []
    if not converged:
        why.append("not converged")
    bad = [p for p in on_bound if p not in allowed_bounds]
    if bad:
        why.append("on a bound: " + ", ".join(bad))
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
