"""The merge methods the merging study compares, each pinned to a registry method and its options.

A new method variant is one entry here (and, if it is a new algorithm, one `MergeMethod` in
`scalinglaws.merge.METHODS`). Whether the 1/k theory applies, and with which c, follows from the
registry (`merge.linear_coefficient`): nothing else needs an entry.
"""
from __future__ import annotations

from scalinglaws.data import RELATED_MATH
from scalinglaws.merge import linear_coefficient

# The two pools of experts (one expert per domain). "related": the generated mathematics subfields,
# like the paper's nine mathematics/science domains; "unrelated": five real-text domains with little
# in common. Whether the floor + tail law holds in each is a finding of its own.
DEFAULT_POOLS: dict[str, list[str]] = {
    "related": list(RELATED_MATH),
    "unrelated": ["code", "scripture", "legal", "speeches", "manpages"],
}

# table name -> (registry method of scalinglaws.merge, options). All options are pinned here so a
# change of a library default does not silently change a stored result (they enter unit keys).
METHOD_VARIANTS: dict[str, tuple[str, dict]] = {
    "average": ("average", {}),
    "task_arithmetic": ("task_arithmetic", {"lam": 0.8}),
    "ties_l0.5": ("ties", {"lam": 0.5, "density": 0.2, "trim_scope": "model"}),
    "ties_l1": ("ties", {"lam": 1.0, "density": 0.2, "trim_scope": "model"}),
    "dare": ("dare", {"lam": 1.0, "p": 0.2, "rescale": "inverse"}),
    "della": ("della", {"lam": 1.0, "p": 0.5, "eps": 0.14, "rescale": "inverse"}),
    "della_linear": ("della_linear", {"lam": 1.0, "p": 0.5, "eps": 0.14, "rescale": "inverse"}),
    # TIES as the merging paper's own code computes it (`merging-eval` 0.1.4 `ties_merging`, the method
    # its README and API call TIES): trimmed per tensor, keeping |v| >= the int(0.8 n)-th smallest
    # (1-2 entries more per tensor than int(0.2 n)); see the chapter's conventions section.
    "ties_l0.5_paper": ("ties", {"lam": 0.5, "density": 0.2, "trim_scope": "tensor", "trim_count": "merging_eval"}),
    "ties_l1_paper": ("ties", {"lam": 1.0, "density": 0.2, "trim_scope": "tensor", "trim_count": "merging_eval"}),
}

# the variants a profile compares by default (the stored cpu results); the *_paper variants are opt-in
DEFAULT_METHODS: list[str] = ["average", "task_arithmetic", "ties_l0.5", "ties_l1", "dare", "della", "della_linear"]
# the merging study with the paper code's conventions: its four methods, TIES as its code trims it
# (Average, Task Arithmetic with c/k and DARE with 1/(1-p) are ours already, measured identical)
PAPER_CONVENTION_METHODS: list[str] = ["average", "task_arithmetic", "ties_l0.5_paper", "ties_l1_paper", "dare"]


def theory_coefficients(variants=None) -> dict[str, float]:
    """{variant: c} for the variants the 1/k theory covers (linear merges: alpha = c/k)."""
    names = METHOD_VARIANTS if variants is None else variants
    out = {}
    for v in names:
        method, options = METHOD_VARIANTS[v]
        c = linear_coefficient(method, options)
        if c is not None:
            out[v] = c
    return out
