"""Merging (Wang et al. 2025) and DELLA inside it: experts, merges over (N, k), fits, theory, planning.

    study.py     PROFILES (pools, pilot grid), validate, run: the stages and the tables
    units.py     the units (pilot, finetune, specialise, merge_eval, ...) and the evaluation windows
    pilot.py     the expert recipe: pilot summary and the stated rule that picks it
    subsets.py   which expert subsets are merged (all C(M, k), or diverse permutations)
    analysis.py  curves (base at k = 0), variance, joint fits, extrapolation, stopping
    tail.py      per-size tail fits L_inf + A/(k + b), the trust rule (ok, why_not_ok), A vs theory
    claims.py    the paper's claims tested on the stored tables (the shared `claims` schema)
    conventions.py  our merges vs the paper's code (merging-eval) and mergekit on drawn experts: the
                 derived `conventions` table (`python -m scalinglaws conventions merging`)
    theory.py    the 1/k theory measured: (c^2/2) Tr(H Sigma) from exact Gauss-Newton products
    planning.py  planning rules from a stored fit (experts for a target, k_eps, budgets)
    cli.py       `python -m scalinglaws plan merging ...`
    nine.py      the nine-expert pool (issue 27): a recipe per size, R(k) to k = 9, both in-domain
                 readings, run in resumable parts (`python -m scalinglaws merging-nine`, nine_cli.py)
"""
from scalinglaws.studies.merging.study import METHOD_VARIANTS, PROFILES, STUDY, data_files, disk_bytes, run, validate

from scalinglaws.studies.merging import nine as _nine

DEPENDS_ON: tuple[str, ...] = ("testbed",)
# tables its own commands write into its store, never its run (`studies.command_tables`)
COMMAND_TABLES: tuple[str, ...] = ("conventions", *_nine.TABLES)
__all__ = ["COMMAND_TABLES", "DEPENDS_ON", "METHOD_VARIANTS", "data_files", "disk_bytes", "PROFILES", "STUDY", "run", "validate"]
