"""Which testbed bases a study's stored results stand on, and whether the stored testbed still chooses them.

The merging, DELLA and composition studies fine-tune and merge the testbed's chosen base models;
the routing study trains at the learning rates the testbed chose. Each records what it used in its
provenance as `testbed_bases` = {size: {"unit": the base's unit key, "lr": the rate}} (either key).

When the testbed's profile changes (a new batch size, a new learning-rate grid), the stored testbed
chooses other bases, and the dependent studies' stored results still describe the old ones until they
are rerun. Rerunning the dependents takes hours at `cpu`, longer than one working session. So for a
while the book can hold chapters built on two different testbeds. `stale_bases` finds these sizes,
and the provenance banner says so; the book does not mix two testbeds silently.
"""
from __future__ import annotations

import math
from pathlib import Path

from scalinglaws.core.results import ResultStore

TESTBED = "testbed"
KEY = "testbed_bases"   # the provenance field


def testbed_choice(profile: str, root: Path | None = None) -> dict[str, dict]:
    """{size: {"unit", "lr"}} of the bases the stored testbed at `profile` chooses ({} if none is stored)."""
    store = ResultStore(TESTBED, profile, root)
    if not store.has("lr_sweep"):
        return {}
    t = store.read("lr_sweep")
    t = t[t["chosen"]]
    return {str(r.size): {"unit": str(r.unit), "lr": float(r.lr)} for r in t.itertuples()}


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=1e-9)
    return a == b


def stale_bases(prov: dict, profile: str, root: Path | None = None) -> list[str]:
    """One line per size whose recorded base (`prov["testbed_bases"]`) differs from what the stored
    testbed at `profile` chooses now, e.g. "d64l4 (unit 07fa4af21b6817ca -> 5c1e...)". Empty when
    the results record no bases (a study that does not build on the testbed) or when no testbed is
    stored (nothing to compare against)."""
    recorded = prov.get(KEY) or {}
    now = testbed_choice(profile, root) if recorded else {}
    if not now:
        return []
    out = []
    for size, rec in sorted(recorded.items()):
        cur = now.get(size)
        if cur is None:
            out.append(f"{size} (not in the stored testbed ladder)")
            continue
        diffs = [f"{k} {rec[k]:g} -> {cur[k]:g}" if isinstance(rec[k], float) else f"{k} {rec[k]} -> {cur[k]}"
                 for k in sorted(rec) if k in cur and not _same(rec[k], cur[k])]
        if diffs:
            out.append(f"{size} ({', '.join(diffs)})")
    return out
