"""The regime a study's models were measured in: one row per trained configuration a claim stands
on, in one schema for every study, so a reader (and the Findings chapter, which stacks them) can
judge whether a paper's regime was reached before reading a verdict.

    cell              the configuration (a size, "<size>/E<E>/<router>", "<pool>/<size>", ...)
    N                 non-embedding parameters of the model (the base's, for fine-tuned experts)
    tokens            training tokens of this stage (pretraining, or fine-tuning for experts)
    tokens_per_param  tokens / N (Chinchilla-optimal training is about 20)
    steps             optimiser steps of this stage
    lr_bracket        where the chosen learning rate lies in its swept grid: 'inside', 'low edge',
                      'high edge', or 'not swept' (a rate taken from elsewhere, e.g. the testbed's)
    step_check_gain   test CE gained by doubling the optimiser steps at the same tokens (nats/token;
                      NaN where not checked): a large gain means the model is short of steps
    router_entropy    mean routing entropy / log E of a learned router (1: uniform; NaN where none)
    expert_gain       CE gain of a fine-tuned expert over its base on its own domain (nats/token)
    seeds             training seeds stored in the study's `seeds` table for this cell (0: none)

A study's `regime(tables)` returns this frame from its stored tables; `frame` validates it.
"""
from __future__ import annotations

import math

import pandas as pd

COLUMNS = ("cell", "N", "tokens", "tokens_per_param", "steps", "lr_bracket", "step_check_gain", "router_entropy",
           "expert_gain", "seeds")
BRACKETS = ("inside", "low edge", "high edge", "not swept")
NUMERIC = ("N", "tokens", "tokens_per_param", "steps", "step_check_gain", "router_entropy", "expert_gain", "seeds")


def row(cell: str, N=math.nan, tokens=math.nan, steps=math.nan, lr_bracket: str = "not swept", step_check_gain=math.nan,
        router_entropy=math.nan, expert_gain=math.nan, seeds=0) -> dict:
    """One regime row; tokens_per_param follows from tokens and N."""
    N, tokens = float(N), float(tokens)
    return {"cell": cell, "N": N, "tokens": tokens, "tokens_per_param": tokens / N if N > 0 else math.nan,
            "steps": float(steps), "lr_bracket": lr_bracket, "step_check_gain": float(step_check_gain),
            "router_entropy": float(router_entropy), "expert_gain": float(expert_gain), "seeds": int(seeds)}


def frame(rows: list[dict]) -> pd.DataFrame:
    """The validated regime table of `rows` (ValueError naming what is wrong)."""
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    bad = sorted(set(df["lr_bracket"]) - set(BRACKETS))
    if bad:
        raise ValueError(f"regime lr_bracket {bad} not among {list(BRACKETS)}")
    for c in NUMERIC:
        df[c] = pd.to_numeric(df[c]).astype(float if c != "seeds" else int)
    return df


def bracket(lr: float, grid) -> str:
    """'inside', 'low edge' or 'high edge' of a swept grid (a grid of one rate is an edge both ways)."""
    grid = sorted(float(x) for x in grid)
    if not grid:
        return "not swept"
    return "low edge" if lr <= grid[0] else "high edge" if lr >= grid[-1] else "inside"


def grid_ratio(lrs) -> float:
    """A rate grid's step between neighbouring rates (geometric mean ratio; 2 for a one-rate grid)."""
    lrs = sorted(lrs)
    return (lrs[-1] / lrs[0]) ** (1 / (len(lrs) - 1)) if len(lrs) > 1 else 2.0


def bracket_step(table: pd.DataFrame, ratio: float) -> dict[str, float]:
    """{size: the next rate to try} for every size of a sweep table (columns size, lr, chosen) whose
    chosen rate is the highest or lowest rate it was trained at (diverged runs count as tried: a
    diverged rate above the chosen one already brackets it). Sizes already bracketed are absent."""
    out = {}
    for size, g in table.groupby("size", sort=False):
        best = g.loc[g["chosen"], "lr"]
        if best.empty:  # every rate diverged: nothing to centre on
            continue
        lr = float(best.iloc[0])
        if lr >= g["lr"].max():
            out[size] = lr * ratio
        elif lr <= g["lr"].min():
            out[size] = lr / ratio
    return out


def bracket_candidates(grid, ratio: float, rounds: int) -> list[float]:
    """Every rate `bracketed_rounds` can try from `grid` in `rounds` rounds (the grid, then each step
    beyond either edge, rounded at every step as it rounds them, so a unit key made from one matches
    the other), below 1: what a reader of recorded units must look up without training anything."""
    lo, hi, beyond = min(grid), max(grid), []
    for _ in range(rounds):
        lo, hi = round(lo / ratio, 12), round(hi * ratio, 12)
        beyond += [lo, hi]
    return [x for x in [*grid, *beyond] if x < 1.0]


def bracketed_rounds(rates: dict[str, list[float]], ratio: float, rounds: int, train_round):
    """Train every size at its rates, then extend each size whose chosen rate sits at an edge of the
    rates it was trained at by one grid step (`ratio`), up to `rounds` rounds; the one bracketing
    rule of every study that sweeps a learning rate (the testbed's ladder, resource's LM ladders).

    `train_round(rates)` trains {size: rates} (already-recorded units are not retrained) and returns
    (result, sweep table with size / lr / chosen). Each size's next rate depends on its own rows
    only, so a sweep of a subset of sizes (a part, or one size) chooses what the whole sweep does.
    Returns the last round's result."""
    rates = {s: list(r) for s, r in rates.items()}
    for r in range(rounds + 1):
        result, table = train_round(rates)
        more = bracket_step(table, ratio) if r < rounds else {}
        more = {s: lr for s, lr in more.items() if lr < 1.0}  # a rate must stay a valid rate
        if not more:
            break
        for s, lr in more.items():
            rates[s] = sorted(rates[s] + [round(lr, 12)])  # rounded: the rate is part of a unit's key
    return result


def seed_count(tables: dict, cell: str, measure: str | None = None) -> int:
    """Distinct training seeds of `cell` (and `measure`, if given) in a study's stored `seeds` table;
    the seeds table's cells may name the configuration more finely ("<pool>/<size>/k5/0-1-2" under
    the regime's "<pool>/<size>"): the most seeds of any such cell count."""
    s = (tables or {}).get("seeds")
    if s is None or not len(s):
        return 0
    s = s[(s["cell"] == cell) | s["cell"].str.startswith(cell + "/")]
    if measure is not None:
        s = s[s["measure"] == measure]
    return int(s.groupby("cell")["seed"].nunique().max()) if len(s) else 0
