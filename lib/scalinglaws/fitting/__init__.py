"""Fitting scaling laws: batched multi-start L-BFGS with exact gradients, bootstrap, extrapolation.

    fitter.py  `fit`, `extrapolate`, `FitResult` (one `fits` table schema: `FitResult.rows`)
    schema.py  the columns of every stored `fits` table (`FIT_COLUMNS`, `fit_rows`, `wide`)
    trust.py   the one trust rule behind every `ok` column (`trust`, `R2_MIN`, `TRUST_RULE`)
    cli.py     `python -m scalinglaws fit LAW FILE`

The laws themselves are data in `scalinglaws.laws`.
"""
from scalinglaws.fitting.fitter import Extrapolation, FitResult, extrapolate, fit
from scalinglaws.fitting.schema import FIT_COLUMNS, fit_rows, fits_frame, wide
from scalinglaws.fitting.trust import R2_MIN, TRUST_RULE, trust

__all__ = ["Extrapolation", "FIT_COLUMNS", "FitResult", "R2_MIN", "TRUST_RULE", "extrapolate", "fit", "fit_rows",
           "fits_frame", "trust", "wide"]
