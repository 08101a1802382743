"""Testbed: pretrain the dense ladder on the domain mixture; evaluate every base on every domain.

    study.py  PROFILES, validate, run (units: pretrain, eval); `base_checkpoint` for other studies
"""
from scalinglaws.studies.testbed.study import (PROFILES, STUDY, base_checkpoint, base_key, data_files, pretrain_unit,
                                               run, validate)

DEPENDS_ON: tuple[str, ...] = ()
__all__ = ["DEPENDS_ON", "PROFILES", "STUDY", "base_checkpoint", "base_key", "data_files", "pretrain_unit", "run", "validate"]
