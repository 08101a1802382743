"""Lease-sized gpu runs (issue 28): each study's `gpu` profile as named parts, and the cost model
that predicts their wall time.

A device lease gives one command of at most ~8-9 minutes (GPU-NOTES.md), and nothing stays on the
machine between leases. So the gpu profile of every study is a list of `Part`s: one command each
(`scripts/gpu_study.sh STUDY:PART`), self-contained (it trains the bases and experts it needs at the
stored testbed rates), predicted to finish within `LIMIT_S`. `python -m scalinglaws plan gpu STUDY`
prints every part's predicted minutes (`--verbose`: per unit), exits 1 naming a part predicted above
its limit (`--part P` refuses it with one line, exit 2), and prints the same model's error at cpu
against the per-unit wall times stored in the cpu tables (`lease_plan.calibrate`).

The cost model is deliberately simple: a unit's time is its optimiser steps times the larger of the
arithmetic time (tokens / the table's tokens per second for that size) and a per-step floor (kernel
launches: small models on a GPU are launch-bound), plus its evaluation (forward-only: three times the
training throughput, or a per-call floor). Throughput between the table's sizes is interpolated in
log(tokens/s) against log(non-embedding + head parameters); above it the end slope is extended, below it the
smallest size's rate is kept (tiny models are overhead-bound).
Every constant that is assumed rather than measured says so below.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from scalinglaws.core import profiles as PR
from scalinglaws.core.validation import ParameterError

LIMIT_S = 480.0   # a part's predicted wall time: 8 minutes of a 15-minute lease (1-2 min start, packing)
VOCAB = 4096      # the shared tokenizer's vocabulary: the LM head is part of every step's arithmetic


@dataclass(frozen=True)
class Rates:
    """One device's throughput table (training tokens/s of the dense ladder, eager, by size)."""
    device: str
    source: str
    train_tok_s: dict            # size name -> training tokens/s
    step_floor_s_per_layer: float  # smallest time of one optimiser step, per layer (launch-bound floor)
    eval_call_s: float           # smallest time of one evaluation forward call
    merge_s: float               # one merge of k experts' weights (the merge itself, not its evaluation)
    routed_factor: dict          # experts E -> throughput of the routed model / the dense one of that size
    toy_step_s: float            # one optimiser step of a batch of toy MLPs (resource study)
    compile_speedup: float = 1.0  # torch.compile's measured gain (applied when a study compiles)
    eval_speedup: float = 3.0    # forward only: a backward pass costs about two forwards
    unit_overhead_s: float = 0.0  # per training unit, outside the trainer: model build, data, checkpoint save


# measured: the median of (unit record wall - trainer wall) over the 71 committed routing cpu training
# records (lease_plan.unit_overhead_from_records; 0.06-39.6 s, the largest a unit that waited on a crowded
# machine: hence the median); tests/test_lease.py fails when the committed records move it
CPU_UNIT_OVERHEAD_S = 0.094
THROUGHPUT: dict[str, Rates] = {
    "h100": Rates(
        device="NVIDIA H100 80GB HBM3, torch 2.11.0+cu130",
        source="shared GPU-NOTES.md (2026-11-23), benchmarks/bench_train.py at commit b07c98f, "
               "65,536 tokens/step, context 512, bf16 autocast, eager",
        train_tok_s={"d96l6": 2.25e6, "d128l6": 1.94e6, "d192l6": 1.59e6, "d256l8": 1.06e6,
                     "d384l8": 0.77e6, "d512l8": 0.59e6},
        # d96l6 eager: 65,536 / 2.25M = 29 ms per step; assumed (not measured) two thirds of it is
        # launch overhead that does not shrink with the batch: 20 ms / 6 layers
        step_floor_s_per_layer=0.0033,
        # measured: a merged d96l6 evaluated in 0.325 s in 51 forward calls (launch-bound)
        eval_call_s=0.325 / 51, merge_s=0.046,
        # measured at d256l8, 65,536 tokens/step: Mixtral grouped_mm E=8 0.53M, E=32 0.46M vs dense 1.10M
        routed_factor={1: 1.0, 8: 0.53 / 1.10, 32: 0.46 / 1.10},
        toy_step_s=0.001,  # assumed: a few dozen small kernels per step of a batched MLP
        compile_speedup=2.0,
        # assumed: the cpu's measured host-side cost (no gpu unit record exists yet), plus a CUDA
        # copy of the weights that is negligible at these sizes
        unit_overhead_s=CPU_UNIT_OVERHEAD_S),  # measured 1.99x (d96l6) .. 2.17x (d512l8)
    "cpu": Rates(
        device="2-core x86 CPU, one torch thread per unit",
        source="core/profiles.py: benchmarks/bench_train.py, 1 thread, tokens per CPU-second",
        train_tok_s={"d32l2": 17e3, "d48l3": 13e3, "d64l4": 10e3, "d96l4": 7.4e3, "d128l4": 5.8e3},
        step_floor_s_per_layer=0.0005, eval_call_s=0.002, merge_s=0.01,
        # assumed: eager experts on a CPU cost the router and the dispatch, not more expert FLOPs
        routed_factor={1: 1.0, 2: 0.7, 32: 0.5},
        toy_step_s=0.0005,
        unit_overhead_s=CPU_UNIT_OVERHEAD_S),
}


def shape(size: str) -> tuple[int, int]:
    """'d96l6' -> (96, 6)."""
    m = re.fullmatch(r"d(\d+)l(\d+)", size)
    if not m:
        raise ParameterError(f"size {size!r} is not d<d_model>l<layers>")
    return int(m[1]), int(m[2])


def arithmetic_params(size: str) -> float:
    """Non-embedding parameters (12 d^2 L) plus the LM head (d x vocabulary): what a token's step costs."""
    d, L = shape(size)
    return 12 * d * d * L + d * VOCAB


def train_tok_s(rates: Rates, size: str) -> float:
    """Training tokens/s of a dense model of `size`, interpolated in log-log over the table."""
    pts = sorted((math.log(arithmetic_params(s)), math.log(v)) for s, v in rates.train_tok_s.items())
    x = math.log(arithmetic_params(size))
    if x <= pts[0][0]:  # below the table: smaller models are overhead-bound, no faster than its smallest
        return math.exp(pts[0][1])
    lo, hi = (pts[0], pts[1]) if x <= pts[0][0] else (pts[-2], pts[-1]) if x >= pts[-1][0] else \
        next((a, b) for a, b in zip(pts, pts[1:]) if a[0] <= x <= b[0])
    slope = (hi[1] - lo[1]) / (hi[0] - lo[0])
    return math.exp(lo[1] + slope * (x - lo[0]))


def routed_factor(rates: Rates, experts: int) -> float:
    """Routed throughput / dense, interpolated in log2(E) between the table's points (E=1: dense)."""
    if experts <= 1:
        return 1.0
    pts = sorted(rates.routed_factor.items())
    for (e0, f0), (e1, f1) in zip(pts, pts[1:]):
        if e0 <= experts <= e1:
            t = (math.log2(experts) - math.log2(e0)) / (math.log2(e1) - math.log2(e0))
            return f0 + t * (f1 - f0)
    return pts[-1][1]


@dataclass(frozen=True)
class Work:
    """One unit (or `n` alike) of a part: training, evaluation, merging or toy steps."""
    label: str
    size: str = ""
    tokens: int = 0           # training tokens
    batch_tokens: int = 0
    experts: int = 1
    eval_tokens: int = 0      # evaluation tokens (forward only)
    eval_calls: int = 0       # evaluation forward calls (the launch-bound floor)
    merges: int = 0
    toy_steps: int = 0
    compile: bool = False
    n: int = 1

    def seconds(self, rates: Rates) -> float:
        """Predicted wall seconds of all `n` units."""
        s = 0.0
        if self.tokens:
            tps = train_tok_s(rates, self.size) * routed_factor(rates, self.experts)
            if self.compile:
                tps *= rates.compile_speedup
            steps = max(1, self.tokens // max(1, self.batch_tokens))
            per_step = max(self.batch_tokens / tps, rates.step_floor_s_per_layer * shape(self.size)[1])
            s += steps * per_step + rates.unit_overhead_s
        if self.eval_tokens:
            s += max(self.eval_tokens / (train_tok_s(rates, self.size) * rates.eval_speedup),
                     self.eval_calls * rates.eval_call_s)
        s += self.merges * rates.merge_s + self.toy_steps * rates.toy_step_s
        return s * self.n


@dataclass(frozen=True)
class Part:
    """One lease's command: the study's gpu profile with `overrides`, its budget in words."""
    name: str
    overrides: dict = field(hash=False)
    budget: str = ""
    limit_s: float = LIMIT_S


def device_of(profile: str) -> str:
    return PR.get(profile).device
