"""The resource LM ladders in resumable parts (issue 27): what each part trains and its predicted cost.

A profile's `lm_parts` ({name: [rung, ...]}, validated to name every rung once) splits the ladders;
`reproduce resource --param part=NAME` trains one part's rungs with their rate brackets and records
the units (at cpu beside the tables, committed), writing only `lm_parts`; `--param part=toys` trains
the toy networks' units only. After the last part a run without `part` reuses every record (it trains
whatever is not recorded yet), fits and writes every table.

Predicted cost (`part_costs`), in seconds of units, from the recorded units, not guesses: a rung's
training FLOPs (tokens x `models.flops_per_token`) over the FLOP rate its recorded units achieved
(all recorded units of the profile together: seconds of wall time on a shared machine, so the
prediction is in the same seconds); the rates per rung run from the grid alone (`low`) to the grid
plus every bracketing round (`high`). A rung already recorded costs what it took. The toy networks
are a part of their own (`study.TOY_PART`, one row), so they can train beside an LM part. Recorded units
that ran beside other jobs price the rest at that machine's load (the cpu pilot: 1.4 GFLOP/s of
wall); the `testbed_*` columns price it at the training rate of the stored testbed cpu run (same
model family, one thread, its `ladder` table's training seconds: a lower bound, evaluation
excluded), i.e. a machine with a core free. The final run's
toy networks are priced by the stored run's toy units (its provenance `unit_compute_s` less its LM
units' seconds).

    python -m scalinglaws resource-parts --profile cpu
"""
from __future__ import annotations

import math

import pandas as pd

from scalinglaws.core.results import ResultStore
from scalinglaws.core.validation import ParameterError
from scalinglaws.studies import resolve_params
from scalinglaws.studies.resource import study as S


def _flops(p: dict, rung: dict) -> float:
    from scalinglaws.models import flops_per_token, model_config
    from scalinglaws.studies.resource.lm import lm_size
    size = lm_size(rung["d_model"], rung["n_layers"], p["lm_head_dim"], p["lm_context"])
    return rung["tokens"] * flops_per_token(model_config(size), p["lm_context"])


def flop_rate(recorded: pd.DataFrame, p: dict) -> float:
    """Training FLOPs per second of unit time over the recorded, non-diverged LM units (one row each)."""
    by = {r["size"]: r for r in S.rungs(p)}
    u = recorded[~recorded["diverged"].astype(bool)].drop_duplicates("unit")
    if not len(u):
        raise ParameterError("no LM unit of this config is recorded yet: run the pilot part first "
                             "(python -m scalinglaws reproduce resource --profile cpu --no-notebook --param part=pilot)")
    return float(sum(_flops(p, by[s]) for s in u["size"]) / u["unit_wall_s"].sum())


def testbed_flop_rate(profile: str) -> float:
    """Training FLOPs per second of the stored testbed run at `profile` (its `ladder` table:
    flops_per_token x tokens over training seconds, all sizes together); NaN when none is stored."""
    store = ResultStore("testbed", profile)
    if not store.has("ladder"):
        return float("nan")
    t = store.read("ladder")
    return float((t["flops_per_token"] * t["tokens"]).sum() / t["wall_s"].sum())


def toy_seconds(profile: str) -> float:
    """The stored run's toy units' seconds (its unit_compute_s less its LM units'); NaN when none is stored."""
    store = ResultStore(S.STUDY, profile)
    prov = store.provenance()
    if not prov or not store.has("lm_ladders"):
        return float("nan")
    lm = store.read("lm_ladders")
    lm_s = lm.drop_duplicates(["d_model", "n_layers", "lr"])["wall_s"].fillna(0).sum()
    return float(prov["unit_compute_s"] - lm_s)


def toy_row(profile: str, p: dict) -> dict:
    """The toy part's row of `part_costs`: its units recorded so far, their seconds, and the rest priced
    at the stored run's toy seconds per unit (the same for low and high: no rate is bracketed)."""
    units, sweep = S.plan(p), S.unit_sweep(profile, p)
    toys = units["single"] + units["composite"]
    recs = [sweep.load(u) for u in toys if sweep.done(u)]
    left = (len(toys) - len(recs)) / len(toys) * toy_seconds(profile)
    left = -1 if math.isnan(left) else round(left)  # no stored run to price it by: -1, said by the CLI
    return {"part": S.TOY_PART, "rungs": f"{len(toys)} toy units", "done": f"{len(recs)} toy units" if recs else "",
            "spent_s": round(sum(r["wall_s"] for r in recs)), "predicted_low_s": left, "predicted_high_s": left,
            "testbed_low_s": left, "testbed_high_s": left,
            "command": f"python -m scalinglaws reproduce resource --profile {profile} --no-notebook --param part={S.TOY_PART}"}


def part_costs(profile: str = "cpu", overrides: dict | None = None) -> pd.DataFrame:
    """One row per part: rungs, rungs done, seconds spent on them, predicted seconds of the rest
    (low: the grid's rates only; high: every bracketing round too) and the command (module docstring)."""
    p = resolve_params(S, profile, dict(overrides or {}))
    if p["lm_parts"] is None:
        raise ParameterError(f"the resource {profile} profile defines no lm_parts")
    recorded = S.recorded_lm_table(S.unit_sweep(profile, p), p)
    rate, tb_rate = flop_rate(recorded, p), testbed_flop_rate(profile)
    by = {r["size"]: r for r in S.rungs(p)}
    n_grid, n_max = len(p["lm_lrs"]), len(p["lm_lrs"]) + p["lm_lr_bracket"]
    done = S.complete_rungs(recorded, p)  # a rung stopped midway is priced whole (its records are reused)
    rows = []
    for name, sizes in p["lm_parts"].items():
        spent = float(recorded[recorded["size"].isin(sizes)].drop_duplicates("unit")["unit_wall_s"].sum()) if len(recorded) else 0.0
        todo = [s for s in sizes if s not in done]
        flops = sum(_flops(p, by[s]) for s in todo)
        rows.append({"part": name, "rungs": ",".join(sizes), "done": ",".join(s for s in sizes if s in done),
                     "spent_s": round(spent), "predicted_low_s": round(flops / rate * n_grid),
                     "predicted_high_s": round(flops / rate * n_max), "testbed_low_s": round(flops / tb_rate * n_grid),
                     "testbed_high_s": round(flops / tb_rate * n_max),
                     "command": f"python -m scalinglaws reproduce resource --profile {profile} --no-notebook "
                                f"--param part={name}"})
    rows.append(toy_row(profile, p))
    out = pd.DataFrame(rows)
    out.attrs.update(flop_rate=rate, testbed_flop_rate=tb_rate, toy_s=toy_seconds(profile),
                     final_command=f"python -m scalinglaws reproduce resource --profile {profile}")
    return out
