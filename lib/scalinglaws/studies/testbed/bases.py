"""What the stored testbed chooses, read through the testbed's own table layout: the one place
outside `study.py` that knows the testbed's tables (`lr_sweep`: one row per size and rate, `chosen`
marks each size's base; `ladder`: one row per size at its chosen rate).

The studies built on the testbed call these instead of reading its tables: merging, DELLA and
composition fine-tune its chosen bases (`testbed_choice`), routing trains at its chosen rates
(`chosen_rates`); `studies.stale_bases` compares a result's recorded bases with the current choice
(`core.bases.stale_bases`).
"""
from __future__ import annotations

from pathlib import Path

from scalinglaws.core.results import ResultStore

STUDY = "testbed"


def testbed_choice(profile: str, root: Path | None = None) -> dict[str, dict]:
    """{size: {"unit", "lr"}} of the bases the stored testbed at `profile` chooses ({} if none is stored)."""
    store = ResultStore(STUDY, profile, root)
    if not store.has("lr_sweep"):
        return {}
    t = store.read("lr_sweep")
    t = t[t["chosen"]]
    return {str(r.size): {"unit": str(r.unit), "lr": float(r.lr)} for r in t.itertuples()}


def chosen_rates(profile: str, root: Path | None = None) -> dict[str, float] | None:
    """{size: the learning rate the stored testbed's ladder chose} at `profile`; None when no ladder is stored."""
    store = ResultStore(STUDY, profile, root)
    if not store.has("ladder"):
        return None
    return {str(s): float(lr) for s, lr in store.read("ladder").set_index("size")["lr"].items()}
