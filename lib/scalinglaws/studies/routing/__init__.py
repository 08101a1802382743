"""Routed language models (Clark et al. 2022): dense ladder x experts x routers on one token budget.

    study.py  PROFILES, validate, run (units: dense, routed, eval, analysis) and the analysis functions:
              the routing law per router, effective parameter count, N_cutoff, extrapolation, claims,
              experts as resources
    resources.py  experts as resources: which experts serve which domain, loss vs experts serving it,
              constant shares of the experts as E grows
    claims.py  Clark's claims (and ours) judged on the stored tables
    clark.py   Clark et al. 2022's own measurements through this code (`python -m scalinglaws clark`): the
              selection reconstructed, the law vs Table 3, extrapolation, steps, claims; clark_* tables
    cli.py     the `clark` command
    chapter.py  the chapter's derived tables and glued sentences
    publish.py  the checkpoints shipped in data/checkpoints/routing/<profile>/

The routed model family and its routers live in `scalinglaws.models.routed` / `.routers`.
"""
from scalinglaws.studies.routing.study import PROFILES, STUDY, data_files, run, validate, validate_stored

DEPENDS_ON: tuple[str, ...] = ()
__all__ = ["DEPENDS_ON", "PROFILES", "STUDY", "data_files", "run", "validate", "validate_stored"]
