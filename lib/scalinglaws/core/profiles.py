"""The profile registry: every fact about a profile, in one table.

A profile is a scale at which every study runs: `smoke` (CI, minutes on a CPU), `cpu` (a real
small study on 2 cores, about 2 h) and `gpu` (one H100). This module holds what the studies share:
the model ladder (as shapes; `scalinglaws.models` builds the configs), the token budgets of the
trainer, and what the rest of the code must know about a profile: its `rank` (the book shows the
best available profile: the highest rank), whether claims are testable at it, the device it needs,
whether it is the command line's default. Each study's own per-profile settings live in its
package's `PROFILES` dict, validated against this registry (`validation.check_profile_keys`); adding a profile is one
`Profile` here plus one entry in each study's `PROFILES` (see ARCHITECTURE.md).

Read the registry through the functions (`names`, `best_first`, `get`, ...), not by copying it at
import: a test registers a temporary profile (`tests/test_registries.py`).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rung:
    """One size of a ladder: d_model, layers, head dimension, context (tokens)."""
    d_model: int
    n_layers: int
    head_dim: int
    context: int


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    ladder: tuple[Rung, ...]   # dense sizes, smallest first
    pretrain_tokens: int       # every size's pretraining budget (one token count, Clark et al.'s protocol)
    finetune_cap: int          # most fine-tuning tokens per expert
    lr_grid: tuple[float, ...]  # the testbed's learning-rate sweep: each size keeps its best
    rank: int                  # order of scale: the higher, the better; the book shows the best available
    claims_testable: bool      # False: every claim's verdict is 'not testable' by design (`core.claims.frame`)
    device: str = "cpu"        # the machine a run needs: "cpu" or "h100" (`studies.lease` prices by it)
    cli_default: bool = False  # the profile a command uses when none is given (exactly one)
    why_not_testable: str = ""  # the note of every claim at a profile where claims are not testable
    retired: tuple[Rung, ...] = ()  # sizes taken out of the ladder: their names stay valid (stored
                                    # results and explicit parameters name them); no default trains them

    def __post_init__(self):
        if not self.claims_testable and not self.why_not_testable:
            raise ValueError(f"profile {self.name!r}: a profile where claims are not testable says why (why_not_testable)")


# Non-embedding parameters: smoke 3.4K / 14.5K; cpu 26.8K .. 443K (16.5x); gpu 665K .. 25.3M (38x).
# The cpu ladder had a fifth size, d128l4 (804K, 2.6 tokens per parameter at the cpu budget), retired
# because at this budget it stays short of optimiser steps: with 1,024 steps of 2,048 tokens and its
# rate bracketed, its test CE stayed above d96l4's, and doubling its steps gained it 0.125 nats against
# d64l4's 0.046 (testbed cpu results at commit d7150b5). Training it to the same completeness as the
# smaller sizes needs more steps than the cpu budget buys; a ladder for scaling fits needs sizes
# trained alike, so the cpu ladder stops at d96l4.
# One pretraining budget per profile, for every size (a budget that grows with N made the gpu
# ladder memorise its data: GPU-NOTES). The testbed checks it against MAX_EPOCHS of each domain's
# unique pretraining tokens (equal domain weights: the smallest domain, fortunes with 0.62M tokens
# among 20 domains, is repeated most: gpu 33.6M / 20 / 0.62M = 2.7 epochs).
# CPU cost measured with benchmarks/bench_train.py (1 thread, tokens per CPU-second): d32l2 17K,
# d48l3 13K, d64l4 10K, d96l4 7.4K, d128l4 5.8K, i.e. ~540 CPU-s per 1M tokens for the whole cpu
# ladder: 2M tokens per size and 3 learning rates ~ 3300 CPU-s of arithmetic (d128l4 included);
# measured with evaluation and 2,048-token batches, the 4-size ladder with bracketing ~ 5K CPU-s.
# gpu: 33.6M tokens per size, 3 learning rates: GPU-NOTES measured the six sizes at 30M tokens in
# 157 s of compiled training, so ~8 min for the sweep (resumable across device commands).
REGISTRY: dict[str, Profile] = {p.name: p for p in (
    Profile("smoke", "CI: seconds per unit on a laptop CPU",
            (Rung(16, 1, 8, 64), Rung(24, 2, 8, 64)),
            pretrain_tokens=40_960, finetune_cap=4_096, lr_grid=(3e-3, 1e-2),
            # a few optimiser steps on tiny models: it exercises the pipeline, it decides nothing
            rank=0, claims_testable=False,
            why_not_testable="smoke profile: a few optimiser steps per model, a pipeline check; no claim can be "
                             "judged from it"),
    Profile("cpu", "a real small study on 2 CPU cores (~2 h per study)",
            (Rung(32, 2, 16, 128), Rung(48, 3, 16, 128), Rung(64, 4, 16, 128), Rung(96, 4, 16, 128)),
            pretrain_tokens=2_097_152, finetune_cap=65_536, lr_grid=(2e-3, 4e-3, 8e-3),
            rank=1, claims_testable=True, cli_default=True, retired=(Rung(128, 4, 16, 128),)),
    Profile("gpu", "one H100: each study under 9 minutes",
            (Rung(96, 6, 32, 512), Rung(128, 6, 32, 512), Rung(192, 6, 32, 512), Rung(256, 8, 64, 512),
             Rung(384, 8, 64, 512), Rung(512, 8, 64, 512)),
            pretrain_tokens=33_554_432, finetune_cap=20_000_000, lr_grid=(1e-3, 2e-3, 4e-3),
            rank=2, claims_testable=True, device="h100"),
)}


def names() -> tuple[str, ...]:
    """Every profile, smallest rank first."""
    return tuple(sorted(REGISTRY, key=lambda n: REGISTRY[n].rank))


def best_first() -> tuple[str, ...]:
    """Every profile, best (highest rank) first: the order in which the book looks for results."""
    return tuple(reversed(names()))


def best() -> str:
    """The best profile: the one a chapter hopes to show."""
    return best_first()[0]


def default() -> str:
    """The profile a command runs when none is given."""
    found = [n for n, p in REGISTRY.items() if p.cli_default]
    if len(found) != 1:
        raise RuntimeError(f"exactly one profile must be the command line's default; found {found}")
    return found[0]


def get(name: str) -> Profile:
    """The registered profile `name` (validate a user's profile first: `validation.check_profile`)."""
    if name not in REGISTRY:
        raise KeyError(f"profile={name!r} is not one of {list(names())}")
    return REGISTRY[name]


def claims_testable(name: str) -> bool:
    return get(name).claims_testable


# Import-time snapshots kept for readers of the shipped profiles; code that must see a profile
# registered later (a test's temporary one) calls `names()` / `best_first()`.
PROFILES: tuple[str, ...] = names()             # every profile, smallest first
PROFILE_ORDER: tuple[str, ...] = best_first()   # best first: the book shows the best available

# Budget rules shared by every profile (scalinglaws.training applies them).
MAX_EPOCHS = 4             # most passes over any domain's unique pretraining tokens (repetition beyond
                           # ~4 epochs stops helping: Muennighoff et al. 2023)
FINETUNE_FRACTION = 0.05   # an expert's fine-tuning tokens, as a fraction of its base's pretraining
