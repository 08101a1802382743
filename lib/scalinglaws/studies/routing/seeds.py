"""Training-seed replicates of the routing grid (`python -m scalinglaws seeds routing`; `studies.replicates`).

Cells are models of the stored grid: "<size>/dense" (E = 1) and "<size>/E<E>/<router>". Seed s
retrains the cell with `seed` = s in the study's own train unit (`study.train_unit`), which sets
the initialisation, the data order, anything sampled inside the model and, for Hash, the
token-to-expert assignment (`hash_seed` = seed), then scores it on the stored run's windows
(`eval_seed` unchanged). The dense model of the same size and seed is trained (once) for the gain.

Measures:
    test_ce          L, the mean test CE over domains (nats/token): `loss.L`
    gain_over_dense  dense L minus routed L at the same size and seed (positive: routing helps);
                     only for routed cells. The seed-to-seed spread of this difference is the
                     noise of every "router beats dense" comparison.
"""
from __future__ import annotations

import pandas as pd

from scalinglaws.core import seeds as S
from scalinglaws.core.sweep import Sweep, Unit
from scalinglaws.core.validation import ParameterError
from scalinglaws.models import routed as RT
from scalinglaws.models import routers as R
from scalinglaws.studies.routing.names import cell_name, parse_cell  # noqa: F401 -- the cell format

MEASURES = {"test_ce": "mean test CE over domains (nats/token), the loss table's L",
            "gain_over_dense": "dense L minus routed L, same size and training seed (nats/token)"}
# every router (and dense) at one (N, E): the smallest size at E = 8; at cpu also the Hash control
# (`vocab`), whose comparison with dense would otherwise borrow the SD pooled over every router
CELLS = {"smoke": ["d24l2/dense"] + [f"d24l2/E4/{r}" for r in R.routers()],
         "cpu": ["d32l2/dense"] + [f"d32l2/E8/{r}" for r in (*R.routers(), *RT.CONTROLS)]}


def cells_allowed(params: dict) -> list[str]:
    return [cell_name(s, 1, RT.DENSE) for s in params["sizes"]] + \
        [cell_name(s, e, r) for s in params["sizes"] for e in params["experts"] if e > 1 for r in params["routers"]]


def units(profile: str, params: dict, cells: list[str], seeds: list[int]) -> list[Unit]:
    from scalinglaws.studies.routing.study import eval_unit, train_unit
    if "lr_by_size" not in params:
        raise ParameterError("the stored routing config has no lr_by_size (the rates its run resolved)")
    out = []
    for c in cells:
        size, E, router = parse_cell(c)
        for s in seeds:
            p = {**params, "seed": s}
            models = [train_unit(size, 1, "dense", p)] + ([train_unit(size, E, router, p)] if E > 1 else [])
            out.append(Unit("seeds", {"study": "routing", "profile": profile, "cell": c, "seed": s,
                                      "train": [{"kind": u.kind, "config": u.config} for u in models],
                                      "eval": [eval_unit(u, p).config for u in models],
                                      "experts_implementation": params["experts_implementation"],
                                      "compile": params["compile"], "eval_batch_size": params["eval_batch_size"]}))
    return out


def replicate(config: dict) -> list[dict]:
    """Train and evaluate (the study's own units, in its sweep: seed 0 is the stored model)."""
    from scalinglaws.studies.routing.study import _evaluate, _train
    sweep = Sweep("routing", config["profile"])
    impl, comp, bs = config["experts_implementation"], config["compile"], config["eval_batch_size"]
    trains = [Unit(t["kind"], t["config"]) for t in config["train"]]
    sweep.run(trains, lambda c: _train(c, impl, comp), desc="train", checkpoints=True)
    erecs = sweep.run([Unit("eval", e) for e in config["eval"]], lambda c: _evaluate(c, bs), desc="eval")
    L = [float(pd.DataFrame(r["rows"])["ce"].mean()) for r in erecs]
    cell, seed = config["cell"], config["seed"]
    rows = [{"cell": cell, "measure": "test_ce", "seed": seed, "value": L[-1]}]
    if len(L) == 2:
        rows.append({"cell": cell, "measure": "gain_over_dense", "seed": seed, "value": L[0] - L[1]})
    return rows


def stored(tables: dict, params: dict, cells: list[str]) -> pd.DataFrame:
    """The stored run's values of every cell (seed = the stored run's seed)."""
    loss = tables["loss"]
    L = {cell_name(r.size, int(r.experts), r.router): float(r.L) for r in loss.itertuples()}
    rows = []
    for c in cells:
        if c not in L:
            continue
        rows.append({"cell": c, "measure": "test_ce", "seed": int(params["seed"]), "value": L[c]})
        size, E, _ = parse_cell(c)
        if E > 1:
            rows.append({"cell": c, "measure": "gain_over_dense", "seed": int(params["seed"]),
                         "value": L[cell_name(size, 1, "dense")] - L[c]})
    return pd.DataFrame(rows, columns=list(S.COLUMNS))


def seed_table(tables: dict) -> pd.DataFrame:
    """For the chapter: per replicated cell and measure, the seed spread (n, mean, SD, min, max)
    beside the stored single-seed value, so each router's gain over dense is read against its
    training noise. Empty without a seeds table."""
    return S.spread_beside_stored(tables.get("seeds"), lambda cells: stored(tables, {"seed": 0}, cells))