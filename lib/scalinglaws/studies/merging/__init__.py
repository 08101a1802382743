"""Merging (Wang et al. 2025) and DELLA inside it: experts, merges over (N, k), fits, theory, planning.

    study.py     PROFILES, METHOD_VARIANTS, validate, run (units: finetune, specialise, merge, ...)
    subsets.py   which expert subsets are merged (all C(M, k), or diverse permutations)
    analysis.py  curves, variance, fits, extrapolation, stopping: tables from the merge records
    theory.py    the 1/k theory measured: (c^2/2) Tr(H Sigma) from exact Gauss-Newton products
    planning.py  planning rules from a stored fit (experts for a target, k_eps, budgets)
    cli.py       `python -m scalinglaws plan merging ...`
"""
from scalinglaws.studies.merging.study import METHOD_VARIANTS, PROFILES, STUDY, data_files, run, validate

DEPENDS_ON: tuple[str, ...] = ("testbed",)
__all__ = ["DEPENDS_ON", "METHOD_VARIANTS", "data_files", "PROFILES", "STUDY", "run", "validate"]
