"""The one schema of every stored table of fits: one row per reported parameter of one fit.

    <study keys...>, law, param, estimate, lo, hi, se, r2, r2_log, rmse, converged, ok, why_not_ok,
    n_points, <study columns...>

`law` names the law (`scalinglaws.laws`) or, for the few estimators that are not the fitter's (the
merging tail fits, the routing resource slopes, the resource share trends: ARCHITECTURE.md says
why), the estimator; `lo`/`hi` are the 95% interval, NaN without one; `ok`/`why_not_ok` the trust
rule's verdict (`fitting.trust`). A study extends the schema with columns after `n_points` (e.g.
the cost range a composition line was fitted on); they are repeated on every row of the fit.

`FitResult.rows` writes it for the fitter's results, `fit_rows` for any other estimator, and
`wide` turns a table back into one row per fit (`<param>`, `<param>_lo`, `<param>_hi`,
`<param>_se`), the shape figures and planners read.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pandas as pd

FIT_COLUMNS = ("law", "param", "estimate", "lo", "hi", "se", "r2", "r2_log", "rmse", "converged", "ok",
               "why_not_ok", "n_points")
PER_FIT = ("law", "r2", "r2_log", "rmse", "converged", "ok", "why_not_ok", "n_points")  # equal on a fit's rows


def fit_rows(law: str, estimates: Mapping[str, float], ci: Mapping[str, tuple] | None = None,
             se: Mapping[str, float] | None = None, *, r2: float = math.nan, r2_log: float = math.nan,
             rmse: float = math.nan, converged: bool = True, ok: bool, why_not_ok: str, n_points: int,
             keys: Mapping | None = None, extra: Mapping | None = None) -> list[dict]:
    """Rows of a `fits` table for one fit: `keys` first, the schema, then the study's `extra` columns."""
    out = []
    for name, est in estimates.items():
        lo, hi = ci[name] if ci and name in ci else (math.nan, math.nan)
        out.append({**(keys or {}), "law": law, "param": name, "estimate": float(est), "lo": float(lo),
                    "hi": float(hi), "se": float(se[name]) if se and name in se else math.nan, "r2": float(r2),
                    "r2_log": float(r2_log), "rmse": float(rmse), "converged": bool(converged), "ok": bool(ok),
                    "why_not_ok": str(why_not_ok), "n_points": int(n_points), **(extra or {})})
    return out


def fits_frame(rows: Sequence[dict], keys: Sequence[str], extra: Sequence[str] = ()) -> pd.DataFrame:
    """A `fits` table from rows, columns in the schema's order (the schema even when empty)."""
    return pd.DataFrame(list(rows), columns=[*keys, *FIT_COLUMNS, *extra])


def wide(fits: pd.DataFrame, keys: Sequence[str], extra: Sequence[str] = ()) -> pd.DataFrame:
    """One row per fit (rows sharing `keys` and `law`): the keys, `law`, each parameter as `<p>`,
    `<p>_lo`, `<p>_hi`, `<p>_se`, then the per-fit columns and `extra`; fits keep their stored order."""
    keys = [*keys, "law"]
    per_fit = [c for c in (*PER_FIT, *extra) if c in fits.columns and c not in keys]
    if not len(fits):
        return pd.DataFrame(columns=[*keys, *per_fit])
    rows = []
    for key, g in fits.groupby(keys, sort=False, dropna=False):
        row = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        for r in g.itertuples(index=False):
            row.update({r.param: r.estimate, f"{r.param}_lo": r.lo, f"{r.param}_hi": r.hi, f"{r.param}_se": r.se})
        first = g.iloc[0]
        row.update({c: first[c] for c in per_fit})
        rows.append(row)
    return pd.DataFrame(rows)
