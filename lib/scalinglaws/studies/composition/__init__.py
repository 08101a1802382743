"""Composing specialists compared (issue 13): keep the base, merge k experts, fine-tune one model on
the k domains (multitask), or route: a routed model upcycled from the base, or one trained from
scratch, on one testbed with one cost accounting and one evaluation.

    study.py     PROFILES, validate, run: which (pool, size, k, subset, arm) is built and how
    units.py     the units that add what the merging study does not have (multitask and routed
                 models with checkpoints, the evaluation of any arm on per-domain windows)
    costs.py     one cost accounting for every arm (pretraining, fine-tuning, inference, parameters)
    analysis.py  paired bootstrap of in-domain CE, the arms / summary / contrasts / wins tables,
                 the loss-vs-compute fits and their held-out predictions
    planning.py  "target loss at least cost" and "best loss for a budget" from the stored tables
    claims.py    the study's own questions in the shared claims schema
    figures.py   loss vs total compute, one line per arm, per pool
    cli.py       `python -m scalinglaws plan composition ...`
"""
from scalinglaws.studies.composition.study import PROFILES, STUDY, data_files, run, validate

DEPENDS_ON: tuple[str, ...] = ("testbed", "merging")
__all__ = ["DEPENDS_ON", "PROFILES", "STUDY", "data_files", "run", "validate"]
