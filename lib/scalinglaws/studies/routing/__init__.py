"""Routed language models (Clark et al. 2022): dense ladder x experts x routers on one token budget.

    study.py  `run`: the grid's units, then the tables, the analysis and the claims (and every name
              below, gathered for callers)
    config.py  PROFILES, validate, validate_stored, data_files, learning_rates (lr="testbed": the
              testbed's chosen rates, hence DEPENDS_ON testbed)
    units.py   the units (dense, routed, eval, eval_docs; the step check's), their configs and the
              functions that compute them; where their records live
    tables.py  the tables from unit records (models, curves, ce, routing, expert_usage, loss, step_check)
    analysis.py  the routing law per router, effective parameter count, N_cutoff, extrapolation
    names.py   the routers' display names and order, from the router registry
    resources.py  experts as resources: which experts serve which domain, loss vs experts serving it,
              constant shares of the experts as E grows
    claims.py  Clark's claims (and ours) judged on the stored tables
    clark.py   Clark et al. 2022's own measurements through this code (`python -m scalinglaws clark`): the
              selection reconstructed, the law vs Table 3, extrapolation, steps, claims; clark_* tables
    pilot.py   regime pilots (issue 27): candidate router settings at one small cell (`regime_pilot`)
    parts.py   the rerun in resumable parts (profile `parts`, `--param part=NAME`) and their predicted CPU cost
    cli.py     the `clark`, `routing-pilot` and `routing-parts` commands
    chapter.py  the chapter's derived tables and glued sentences
    publish.py  the checkpoints shipped in data/checkpoints/routing/<profile>/

The routed model family and its routers live in `scalinglaws.models.routed` / `.routers`.
"""
from scalinglaws.studies.routing.config import PROFILES, RUN_ONLY, STUDY, data_files, validate, validate_stored
from scalinglaws.studies.routing import clark as _clark
from scalinglaws.studies.routing import pilot as _pilot
from scalinglaws.studies.routing.study import run

# tables its own commands write into its store, never its run (`studies.command_tables`)
COMMAND_TABLES: tuple[str, ...] = (*_clark.TABLES, _pilot.TABLE)

# lr="testbed" (the cpu and gpu profiles) trains each size at the rate the testbed's stored ladder chose
DEPENDS_ON: tuple[str, ...] = ("testbed",)
__all__ = ["COMMAND_TABLES", "DEPENDS_ON", "PROFILES", "RUN_ONLY", "STUDY", "data_files", "run", "validate", "validate_stored"]
