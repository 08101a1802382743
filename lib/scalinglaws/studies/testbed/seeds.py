"""Training-seed replicates of the testbed (`python -m scalinglaws seeds testbed`; `studies.replicates`).

A cell is a size of the ladder at the learning rate the stored sweep chose for it (`lr_sweep`,
`chosen`). Seed s retrains it with `seed` = s in the pretrain unit, which sets both the
initialisation (`models.build_model`) and the data order (`training.WindowSampler`), and scores it
on the stored run's windows (`eval_seed` unchanged), so seed differences are training noise only.

Measures:
    test_ce   mean test CE over domains (nats/token) of the size's chosen base: `lr_sweep.test_ce`
"""
from __future__ import annotations

import pandas as pd

from scalinglaws.core import seeds as S
from scalinglaws.core.results import ResultStore
from scalinglaws.core.sweep import Sweep, Unit
from scalinglaws.core.validation import ParameterError

MEASURES = {"test_ce": "mean test CE over domains (nats/token) of the size's base at its chosen rate"}
CELLS = {"smoke": ["d16l1", "d24l2"], "cpu": ["d32l2", "d48l3"]}


def chosen_rates(profile: str) -> dict[str, float]:
    """{size: the rate the stored sweep chose}."""
    store = ResultStore("testbed", profile)
    if not store.has("lr_sweep"):
        raise ParameterError(f"no stored testbed lr_sweep at profile {profile!r}; reproduce the testbed first")
    t = store.read("lr_sweep")
    return {r.size: float(r.lr) for r in t[t["chosen"]].itertuples()}


def cells_allowed(params: dict) -> list[str]:
    return list(params["sizes"])


def units(profile: str, params: dict, cells: list[str], seeds: list[int]) -> list[Unit]:
    from scalinglaws.studies.testbed.study import pretrain_unit
    rates = chosen_rates(profile)
    missing = [c for c in cells if c not in rates]
    if missing:
        raise ParameterError(f"the stored testbed sweep chose no rate for {missing}")
    return [Unit("seeds", {"study": "testbed", "profile": profile, "cell": c, "seed": s,
                           "params": {**params, "seed": s},
                           "pretrain": pretrain_unit(c, profile, {**params, "seed": s}, rates[c]).config})
            for c in cells for s in seeds]


def replicate(config: dict) -> list[dict]:
    """Pretrain (the testbed's own unit, in its sweep: seed 0 is the stored base) and evaluate."""
    from scalinglaws.studies.testbed.study import _train_and_eval, sweep_table
    params, profile = config["params"], config["profile"]
    pre = Unit("pretrain", config["pretrain"])
    precs, erecs = _train_and_eval(Sweep("testbed", profile), [pre], params, "local")
    row = sweep_table(precs, erecs).iloc[0]
    return [{"cell": config["cell"], "measure": "test_ce", "seed": config["seed"], "value": float(row["test_ce"])}]


def stored(tables: dict, params: dict, cells: list[str]) -> pd.DataFrame:
    """The stored run's value of every cell (seed = the stored run's seed)."""
    t = tables["lr_sweep"]
    t = t[t["chosen"] & t["size"].isin(cells)]
    return pd.DataFrame({"cell": t["size"], "measure": "test_ce", "seed": int(params["seed"]),
                         "value": t["test_ce"].astype(float)})


def seed_table(tables: dict) -> pd.DataFrame:
    """For the chapter: per replicated size, the seed spread of test CE beside the ladder's step to
    the next size (is the ladder's order larger than training noise?). Empty without a seeds table."""
    if "seeds" not in tables:
        return pd.DataFrame(columns=["cell", "measure", "n_seeds", "mean", "sd", "min", "max", "stored", "step_to_next"])
    sp = S.seed_spread(tables["seeds"])
    lad = tables["ladder"].sort_values("non_embedding").reset_index(drop=True)
    ce = dict(zip(lad["size"], lad["test_ce"]))
    nxt = dict(zip(lad["size"], list(lad["test_ce"].iloc[1:]) + [float("nan")]))
    sp["stored"] = sp["cell"].map(ce)
    sp["step_to_next"] = sp["cell"].map(lambda c: ce.get(c, float("nan")) - nxt.get(c, float("nan")))
    return sp


def ensure_base(size: str, profile: str, key: str) -> str:
    """Make sure the stored run's base of `size` (unit `key`, a stored study's `testbed_bases`)
    has its checkpoint in `.work/`, training only that one unit if it is missing (not the size's
    whole rate sweep, as `study.base_key` would). Raises ParameterError when the stored testbed's
    configuration no longer gives that key. Returns the key."""
    from scalinglaws.studies.replicates import stored_params
    from scalinglaws.studies.testbed.study import _pretrain, pretrain_unit
    params = stored_params("testbed", profile)
    unit = pretrain_unit(size, profile, params, chosen_rates(profile)[size])
    if unit.key != key:
        raise ParameterError(f"the stored testbed's {size} base is unit {unit.key}, not {key}: the study "
                             "was made on another testbed; rerun it before replicating it")
    Sweep("testbed", profile).run([unit], _pretrain, desc="base", checkpoints=True)
    return key
