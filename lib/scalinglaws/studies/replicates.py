"""Training-seed replicates: `python -m scalinglaws seeds STUDY --profile P [--seeds 0,1,2] [--cells a,b]`.

A study's stored results come from one training seed; their intervals cover evaluation sampling
only. This entry point retrains a few representative cells of a study at several seeds, using the
study's own unit functions with only the seed changed, and stores the measurements as the table
`seeds` (schema: `scalinglaws.core.seeds`) in `data/results/<study>/<profile>/`, recorded in
`provenance.json` under `derived.seeds`, beside `seeds_reproduction`: the stored run's own seed,
retrained, against its stored values (`core.seeds`; claims widen the seed SD by the gap). Nothing
else of the study is rerun or rewritten.

Each study that supports it has a module `studies/<name>/seeds.py` defining
    MEASURES          {measure: what it is} (the names claims ask `core.seeds.seed_sd` for)
    CELLS             {profile: [cell, ...]} the default cells
    cells_allowed(params) -> [cell, ...]      every cell it can replicate at these parameters
    units(profile, params, cells, seeds) -> [Unit("seeds", config)]   one unit per (cell, seed)
    replicate(config) -> [{"cell", "measure", "seed", "value"}, ...]  the unit's function
    stored(tables, params, cells) -> DataFrame (seeds schema) of the stored run's own values
    seed_table(tables) -> DataFrame   what its chapter shows (seed spread beside the effects)
`params` is the stored run's own configuration (`provenance.json`'s `config`, validated by the
study), so a replicate measures exactly what the stored tables measure. The stored run's seed is
among the default seeds: its replicate must reproduce the stored value (same code, data, seed and
one torch thread on CPU); the difference is recorded in provenance (`reproduces`) and printed.

Resumability. Every (cell, seed) is one unit keyed by its config (`core.sweep`): atomic records,
a lock per study and profile, failures recorded. The records are small (a few numbers), so they
are written beside the tables, under `data/results/<study>/<profile>/units/seeds/`, and committed:
a fresh clone resumes from git, not only from `.work/`. The models a unit trains go to the study's
own sweep in `.work/` (so seed 0 reuses, or recreates, the very checkpoint the stored run used).
"""
from __future__ import annotations

import datetime as dt
import importlib
import importlib.util
import time

import pandas as pd

from scalinglaws.core import seeds as S
from scalinglaws.core.paths import results_root
from scalinglaws.core import profiles as PR
from scalinglaws.core.results import ResultStore, git_commit
from scalinglaws.core.sweep import Sweep
from scalinglaws.core.threads import torch_threads
from scalinglaws.core.validation import ParameterError, check_choice, check_profile_keys

TABLE = "seeds"
DEFAULT_SEEDS = (0, 1, 2)


def replicable_studies() -> list[str]:
    """Studies with a `seeds.py` module."""
    from scalinglaws.studies import study_names
    return [n for n in study_names() if importlib.util.find_spec(f"scalinglaws.studies.{n}.seeds") is not None]


def seeds_module(study: str):
    check_choice("study", study, replicable_studies())
    return importlib.import_module(f"scalinglaws.studies.{study}.seeds")


def parse_seeds(text) -> list[int]:
    """'0,1,2' (or a list) -> [0, 1, 2]: distinct non-negative integers, at least MIN_SEEDS of them."""
    items = text.split(",") if isinstance(text, str) else list(text)
    out = []
    for x in items:
        x = x.strip() if isinstance(x, str) else x
        try:
            v = int(x)
            if isinstance(x, float) and x != v or isinstance(x, bool):
                raise ValueError
        except (TypeError, ValueError):
            raise ParameterError(f"seeds={text!r}: {x!r} is not an integer; give distinct integers >= 0, "
                                 f"e.g. --seeds 0,1,2") from None
        if v < 0:
            raise ParameterError(f"seeds={text!r}: {v} is negative; seeds are integers >= 0")
        out.append(v)
    if len(set(out)) != len(out):
        raise ParameterError(f"seeds={text!r} has duplicates")
    if len(out) < S.MIN_SEEDS:
        raise ParameterError(f"seeds={text!r}: at least {S.MIN_SEEDS} seeds per cell are needed for a seed SD "
                             f"(core.seeds.MIN_SEEDS), got {len(out)}")
    return out


def seed_sweep(study: str, profile: str) -> Sweep:
    """The replicate units' records: beside the tables, committed with them (module docstring)."""
    sweep = Sweep(study, profile)
    sweep.dir = results_root() / study / profile / "units"
    return sweep


def stored_params(study: str, profile: str) -> dict:
    """The stored run's configuration, validated by the study (raises ParameterError if absent)."""
    from scalinglaws.studies import get_study
    check_choice("profile", profile, PR.names())
    store = ResultStore(study, profile)
    prov = store.provenance()
    if not prov or "config" not in prov:
        raise ParameterError(f"no complete run of {study!r} at profile {profile!r} under {store.dir} (no "
                             f"provenance.json); replicates vary the seed of a stored run: reproduce it first")
    mod = get_study(study)
    missing = sorted(set(mod.PROFILES.get(profile, {})) - set(prov["config"]) - set(getattr(mod, "RUN_ONLY", ())))
    if missing:  # a run stored by older code, before these parameters existed: its units are not today's
        raise ParameterError(f"the stored {study} run at profile {profile!r} predates parameters {missing} "
                             f"(made by older code): reproduce it first (make reproduce STUDY={study} PROFILE={profile})")
    return mod.validate(dict(prov["config"]))


def plan(study: str, profile: str, seeds=DEFAULT_SEEDS, cells=None):
    """Validate everything (study, profile, seeds, cells, the stored run, the data files) and return
    (module, params, cells, units). Raises ParameterError before anything is computed or written."""
    mod = seeds_module(study)
    check_choice("profile", profile, PR.names())
    seeds = parse_seeds(seeds)
    params = stored_params(study, profile)
    allowed = mod.cells_allowed(params)
    if cells is None:
        cells = list(check_profile_keys(f"{mod.__name__}.CELLS", mod.CELLS).get(profile, ()))
    elif isinstance(cells, str):
        cells = [c.strip() for c in cells.split(",") if c.strip()]
    bad = [c for c in cells if c not in allowed]
    if bad or not cells:
        raise ParameterError(f"cells {bad or cells!r} cannot be replicated for {study} at {profile}; allowed: {allowed}")
    from scalinglaws.studies import data_files, get_study
    from scalinglaws.data.corpus import verify_files
    verify_files(data_files(get_study(study), params))
    units = mod.units(profile, params, list(cells), seeds)
    return mod, params, list(cells), units


def run_seeds(study: str, profile: str, seeds=DEFAULT_SEEDS, cells=None, threads: int = 1) -> ResultStore:
    """Train the replicates not yet done, write the `seeds` table and record it in provenance
    (`derived.seeds`: commit, date, command, cells, seeds, compute seconds, the seed-0 check)."""
    mod, params, cells, units = plan(study, profile, seeds, cells)
    t0 = time.perf_counter()
    sweep = seed_sweep(study, profile)
    with torch_threads(threads):  # CPU runs are bit-reproducible for a fixed thread count
        recs = sweep.run(units, mod.replicate, desc=f"{study} seeds")
    # the table holds the units of this call (units done before are reused, so a call naming
    # every cell costs only what is missing)
    rows = [r for rec in recs for r in rec["rows"]]
    table = S.check_seeds(pd.DataFrame(rows, columns=list(S.COLUMNS)))
    table = table.sort_values(["measure", "cell", "seed"]).reset_index(drop=True)
    store = ResultStore(study, profile)
    tables = {t: store.read(t) for t in store.tables() if t != TABLE}
    check = reproduction(table, mod.stored(tables, params, sorted(set(table["cell"]))))
    store.write(TABLE, table)
    store.write(S.REPRODUCTION_TABLE, reproduction_frame(check))  # claims widen the seed SD by its gap
    prov = store.provenance()
    prov.setdefault("derived", {})[TABLE] = {
        "commit": git_commit(), "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": f"python -m scalinglaws seeds {study} --profile {profile}",
        "tables": [TABLE, S.REPRODUCTION_TABLE], "cells": sorted(set(table["cell"])), "seeds": sorted(int(s) for s in set(table["seed"])),
        "measures": {m: mod.MEASURES[m] for m in sorted(set(table["measure"]))},
        "config_hash": params_hash(params), "torch_threads": threads,
        "units": len(units), "unit_compute_s": round(sum(float(r["wall_s"]) for r in recs), 1),
        "wall_time_s": round(time.perf_counter() - t0, 1),
        # the pairs themselves are the table's rows (one copy); provenance keeps the summary
        "reproduces": {"max_abs_diff": check["max_abs_diff"], "pairs": len(check["rows"]),
                       "table": S.REPRODUCTION_TABLE}}
    store.write_provenance(prov)
    return store


def params_hash(params: dict) -> str:
    from scalinglaws.core.results import config_hash
    return config_hash(params)


def reproduction(table: pd.DataFrame, stored: pd.DataFrame) -> dict:
    """The stored run's own values against the replicate at the same seed: per (cell, measure),
    both values and their difference; `max_abs_diff` over all (NaN when none overlap)."""
    stored = S.check_seeds(stored) if len(stored) else pd.DataFrame(columns=list(S.COLUMNS))
    m = stored.merge(table, on=["cell", "measure", "seed"], suffixes=("_stored", "_replicate"))
    rows = [{"cell": r.cell, "measure": r.measure, "seed": int(r.seed), "stored": float(r.value_stored),
             "replicate": float(r.value_replicate), "diff": float(r.value_replicate - r.value_stored)}
            for r in m.itertuples()]
    diffs = [abs(r["diff"]) for r in rows]
    return {"max_abs_diff": max(diffs) if diffs else float("nan"), "rows": rows}


def reproduction_frame(check: dict) -> pd.DataFrame:
    """`reproduction`'s rows as the table `seeds_reproduction` (schema `core.seeds.REPRODUCTION_COLUMNS`)."""
    return pd.DataFrame(check["rows"], columns=list(S.REPRODUCTION_COLUMNS))


def register(sub) -> None:
    p = sub.add_parser("seeds", help="train a study's representative cells at several seeds (table `seeds`)")
    p.add_argument("study", help="a study with a seeds module (testbed, routing, merging, della, composition, resource)")
    p.add_argument("--profile", default=PR.default(), help=f"one of {list(PR.names())} (default {PR.default()})")
    p.add_argument("--seeds", default=",".join(map(str, DEFAULT_SEEDS)),
                   help=f"comma-separated training seeds, at least {S.MIN_SEEDS} (default 0,1,2)")
    p.add_argument("--cells", default=None, help="comma-separated cells (default: the study's cells at the profile)")
    p.set_defaults(func=_seeds)


def _seeds(args) -> int:
    store = run_seeds(args.study, args.profile, args.seeds, args.cells)
    df = store.read(TABLE)
    prov = store.provenance()["derived"][TABLE]
    spread = S.seed_spread(df)
    for r in spread.itertuples():
        print(f"{r.cell:>24} {r.measure:<28} n={r.n_seeds} mean={r.mean:.4f} sd={r.sd:.4f}")
    print(f"{store.path(TABLE)}: {len(df)} rows; stored seed reproduced to max |diff| "
          f"{prov['reproduces']['max_abs_diff']:.3g}")
    return 0
