"""DELLA-Merging (Deep, Bhardwaj, Poria 2024) as its own study: the paper's Table 1 shape on our experts.

    study.py     PROFILES, validate, run (units: references, merge_eval), the settings plan
    analysis.py  group scores with paired bootstrap draws; the `best` table
    claims.py    the paper's conclusions judged on the stored tables (`claims(tables)`)
    figures.py   the chapter's figures
    chapter.py   the chapter's tables and glued numbers

Experts come from the merging study (`merging.study.expert_checkpoints`).
"""
from scalinglaws.studies.della.study import PROFILES, STUDY, data_files, run, validate

DEPENDS_ON: tuple[str, ...] = ("testbed", "merging")
__all__ = ["DEPENDS_ON", "PROFILES", "STUDY", "data_files", "run", "validate"]
