"""Routed language models (Clark et al. 2022): dense ladder x experts x routers on one token budget.

    study.py  PROFILES, validate, run (units: dense, routed, eval, analysis) and the analysis functions:
              the routing law per router, effective parameter count, N_cutoff, extrapolation, claims,
              experts as resources

The routed model family and its routers live in `scalinglaws.models.routed` / `.routers`.
"""
from scalinglaws.studies.routing.study import PROFILES, STUDY, data_files, run, validate

DEPENDS_ON: tuple[str, ...] = ()
__all__ = ["DEPENDS_ON", "PROFILES", "STUDY", "data_files", "run", "validate"]
