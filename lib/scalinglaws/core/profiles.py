"""The profile registry: every per-profile number the shared machinery reads, in one table.

A profile is a scale at which every study runs: `smoke` (CI, minutes on a CPU), `cpu` (a real
small study on 2 cores, about 2 h) and `gpu` (one H100). This module holds what the studies share:
the model ladder (as shapes; `scalinglaws.models` builds the configs) and the token budgets of the
trainer. Each study's own per-profile settings live in its package's `PROFILES` dict; adding a
profile is one `Profile` here plus one entry in each study's `PROFILES` (see ARCHITECTURE.md).
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
    pretrain_floor: int        # fewest pretraining tokens any size gets
    pretrain_cap: int          # most pretraining tokens any size gets
    finetune_cap: int          # most fine-tuning tokens per expert


# Non-embedding parameters: smoke 3.4K / 14.5K; cpu 26.8K .. 804K (30x); gpu 665K .. 25.3M (38x).
# CPU caps measured with benchmarks/bench_train.py (1 thread, tokens per CPU-second): d32l2 17K,
# d48l3 13K, d64l4 10K, d96l4 7.4K, d128l4 5.8K, i.e. ~540 CPU-s per 1M tokens for the whole cpu
# ladder: 2M tokens per size ~ 1100 CPU-s ~ 9-10 min on 2 cores.
REGISTRY: dict[str, Profile] = {p.name: p for p in (
    Profile("smoke", "CI: seconds per unit on a laptop CPU",
            (Rung(16, 1, 8, 64), Rung(24, 2, 8, 64)),
            pretrain_floor=20_000, pretrain_cap=40_960, finetune_cap=4_096),
    Profile("cpu", "a real small study on 2 CPU cores (~2 h per study)",
            (Rung(32, 2, 16, 128), Rung(48, 3, 16, 128), Rung(64, 4, 16, 128), Rung(96, 4, 16, 128),
             Rung(128, 4, 16, 128)),
            pretrain_floor=500_000, pretrain_cap=2_097_152, finetune_cap=65_536),
    Profile("gpu", "one H100: each study under 9 minutes",
            (Rung(96, 6, 32, 512), Rung(128, 6, 32, 512), Rung(192, 6, 32, 512), Rung(256, 8, 64, 512),
             Rung(384, 8, 64, 512), Rung(512, 8, 64, 512)),
            pretrain_floor=20_000_000, pretrain_cap=600_000_000, finetune_cap=20_000_000),
)}

PROFILES: tuple[str, ...] = tuple(REGISTRY)             # every profile, smallest first
PROFILE_ORDER: tuple[str, ...] = tuple(reversed(PROFILES))  # best first: the book shows the best available

# Budget rules shared by every profile (scalinglaws.training applies them).
TOKENS_PER_PARAM = 20      # Chinchilla's compute-optimal ratio
FINETUNE_FRACTION = 0.05   # an expert's fine-tuning tokens, as a fraction of its base's pretraining
