"""Fitting scaling laws: batched multi-start L-BFGS with exact gradients, bootstrap, extrapolation.

    fitter.py  `fit`, `extrapolate`, `FitResult` (one `fits` table schema: `FitResult.rows`)
    cli.py     `python -m scalinglaws fit LAW FILE`

The laws themselves are data in `scalinglaws.laws`.
"""
from scalinglaws.fitting.fitter import Extrapolation, FitResult, extrapolate, fit

__all__ = ["Extrapolation", "FitResult", "extrapolate", "fit"]
