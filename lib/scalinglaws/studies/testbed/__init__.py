"""Testbed: pretrain the dense ladder on the domain mixture with a learning-rate sweep; evaluate
every run on every domain; each size keeps its best rate.

    study.py  PROFILES, validate, run (units: pretrain, eval); `base_checkpoint` / `base_key`
              (the chosen base of a size, for other studies), `sweep_table`, `epochs`
"""
from scalinglaws.studies.testbed.study import (PROFILES, STUDY, base_checkpoint, base_key, data_files, disk_bytes,
                                               epochs, pretrain_unit, run, sweep_table, validate)

DEPENDS_ON: tuple[str, ...] = ()
__all__ = ["DEPENDS_ON", "PROFILES", "STUDY", "base_checkpoint", "base_key", "data_files", "disk_bytes", "epochs",
           "pretrain_unit", "run", "sweep_table", "validate"]
