"""Fitting scaling laws: batched multi-start L-BFGS with exact gradients, bootstrap, extrapolation.

    fitter.py  `fit`, `extrapolate`, `FitResult` (one `fits` table schema: `FitResult.rows`)
    trust.py   the one trust rule behind every `ok` column (`trust`, `R2_MIN`, `TRUST_RULE`)
    cli.py     `python -m scalinglaws fit LAW FILE`

The laws themselves are data in `scalinglaws.laws`.
"""
from scalinglaws.fitting.fitter import Extrapolation, FitResult, extrapolate, fit
from scalinglaws.fitting.trust import R2_MIN, TRUST_RULE, trust

__all__ = ["Extrapolation", "FitResult", "R2_MIN", "TRUST_RULE", "extrapolate", "fit", "trust"]
