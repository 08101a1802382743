"""Whether a study's stored results stand on the bases the stored testbed chooses now.

The merging, DELLA and composition studies fine-tune and merge the testbed's chosen base models;
the routing study trains at the learning rates the testbed chose. Each records what it used in its
provenance as `testbed_bases` = {size: {"unit": the base's unit key, "lr": the rate}} (either key).

When the testbed's profile changes (a new batch size, a new learning-rate grid), the stored testbed
chooses other bases, and the dependent studies' stored results still describe the old ones until they
are rerun. Rerunning the dependents takes hours at `cpu`, longer than one working session. So for a
while the book can hold chapters built on two different testbeds. `stale_bases` finds these sizes,
and the provenance banner says so; the book does not mix two testbeds silently.

This module only compares: what the testbed chooses now is read by the testbed's own package
(`studies.testbed.bases.testbed_choice`; `studies.stale_bases(store)` joins the two), so this layer
knows nothing of the testbed's tables.
"""
from __future__ import annotations

import math

KEY = "testbed_bases"   # the provenance field


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=1e-9)
    return a == b


def stale_bases(prov: dict, now: dict[str, dict]) -> list[str]:
    """One line per size whose recorded base (`prov["testbed_bases"]`) differs from `now`, what the
    stored testbed chooses ({size: {"unit", "lr"}}), e.g. "d64l4 (unit 07fa4af21b6817ca -> 5c1e...)".
    Empty when the results record no bases (a study that does not build on the testbed) or when
    `now` is empty (no testbed stored: nothing to compare against)."""
    recorded = prov.get(KEY) or {}
    if not recorded or not now:
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
