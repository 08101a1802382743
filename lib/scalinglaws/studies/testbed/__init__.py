"""Testbed: pretrain the dense ladder on the domain mixture with a learning-rate sweep; evaluate
every run on every domain; each size keeps its best rate.

    study.py  PROFILES, validate, run (units: pretrain, eval); `base_checkpoint` / `base_key`
              (the chosen base of a size, for other studies), `base_pretrain_files`, `sweep_table`, `epochs`
    bases.py  what the stored testbed chooses (`testbed_choice`, `chosen_rates`): the testbed's table
              layout, read here for the studies built on it
"""
from scalinglaws.studies.testbed.study import (PROFILES, STUDY, base_checkpoint, base_key, base_pretrain_files, data_files, disk_bytes,
                                               epochs, pretrain_unit, run, sweep_table, validate)

DEPENDS_ON: tuple[str, ...] = ()
__all__ = ["DEPENDS_ON", "PROFILES", "STUDY", "base_checkpoint", "base_key", "base_pretrain_files", "data_files", "disk_bytes", "epochs",
           "pretrain_unit", "run", "sweep_table", "validate"]
