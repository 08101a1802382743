"""Training-seed replicates of the composition study (`python -m scalinglaws seeds composition`;
`studies.replicates`).

A replicated configuration is one (pool, size, k, subset) of the stored grid, "<pool>/<size>/k<k>/<subset>".
Seed s fine-tunes again, from the stored base and with the merging recipe, everything the cell's
arms train: the k experts (the merging study's finetune units, `seed` = s) and the multitask model
(this study's `multitask_model` unit, `seed` = s: the data order of fine-tuning). The merges (the
stored run's methods, `merge_methods_resolved`, with the same merge seeds) and the evaluation
windows are the stored run's; the losses are computed as in the `arms` table (mean CE over the k
domains, `analysis.loss_draws`).

Measures:
    multitask_minus_best_merge  multitask loss minus the lowest merged loss of the cell (nats/token;
                                negative: multitask wins), the quantity of `multitask_beats_merge_*`
"""
from __future__ import annotations

import pandas as pd

from scalinglaws.core import seeds as S
from scalinglaws.core.results import ResultStore
from scalinglaws.core.sweep import Sweep, Unit
from scalinglaws.core.validation import ParameterError

MEASURES = {"multitask_minus_best_merge": "multitask loss minus the best merge's loss, mean CE over the "
                                          "k domains (nats/token)"}
CELLS = {"smoke": ["related/d16l1/k2/0-1"], "cpu": ["related/d32l2/k2/0-1", "related/d32l2/k5/0-1-2-3-4"]}


def cells_allowed(params: dict) -> list[str]:
    from scalinglaws.studies.composition.study import choose_subsets, subset_key
    return [f"{pool}/{s}/k{k}/{subset_key(sub)}" for pool, doms in params["pools"].items() for k in params["ks"]
            for sub in choose_subsets(pool, len(doms), k, params["subsets_per_k"], params["seed"])
            for s in params["sizes"]]


def units(profile: str, params: dict, cells: list[str], seeds: list[int]) -> list[Unit]:
    from scalinglaws.models import get_size
    from scalinglaws.studies.composition import units as U
    from scalinglaws.studies.composition.study import _multitask_config
    from scalinglaws.studies.merging import units as MU
    from scalinglaws.studies.merging.config import METHOD_VARIANTS
    from scalinglaws.studies.merging.seeds import finetune_config, stored_bases, stored_recipe
    from scalinglaws.studies.replicates import stored_params
    prov = ResultStore("composition", profile).provenance()
    methods = prov.get("merge_methods_resolved")
    if not methods:
        raise ParameterError(f"the stored composition run at {profile!r} records no merge_methods_resolved")
    bases, recipe = stored_bases("composition", profile), stored_recipe(profile)
    mparams = stored_params("merging", profile)
    seq_len = min(get_size(s).context for s in params["sizes"])
    out = []
    for c in cells:
        pool, size, k, sub = c.split("/")
        pdoms = params["pools"][pool]
        idx = [int(i) for i in sub.split("-")]
        sdoms = [pdoms[i] for i in idx]
        for s in seeds:
            fts = [Unit("finetune", finetune_config(size, d, bases[size], mparams, recipe, s)) for d in sdoms]
            mt = _multitask_config(fts[0], pool, sdoms)
            merges = {m: {"kind": "merge", "size": size, "base": bases[size], "experts": [u.key for u in fts],
                          "method": METHOD_VARIANTS[m][0], "options": METHOD_VARIANTS[m][1],
                          "seed": MU.subset_seed(params["seed"], tuple(idx), len(pdoms))} for m in methods}
            specs = {**{f"merge_{m}": sp for m, sp in merges.items()},
                     "multitask": {"kind": "checkpoint", "key": Unit("multitask_model", mt).key, "size": size}}
            out.append(Unit("seeds", {
                "study": "composition", "profile": profile, "cell": c, "seed": s, "size": size, "base": bases[size],
                "finetune": [u.config for u in fts], "multitask_model": mt, "domains": sdoms,
                "eval": {arm: U.eval_config(sp, sdoms, params, seq_len) for arm, sp in specs.items()}}))
    return out


def replicate(config: dict) -> list[dict]:
    """Train the cell's experts and multitask model (the studies' own units, in their sweeps: seed 0
    gives the stored models), evaluate every arm as the study does (`units.evaluate`)."""
    from scalinglaws.studies.composition import units as U
    from scalinglaws.studies.composition.analysis import loss_draws
    from scalinglaws.studies.merging import units as MU
    from scalinglaws.studies.testbed.seeds import ensure_base
    profile = config["profile"]
    ensure_base(config["size"], profile, config["base"])
    Sweep("merging", profile).run([Unit("finetune", c) for c in config["finetune"]], MU.finetune,
                                  desc="finetune", checkpoints=True)
    Sweep("composition", profile).run([Unit("multitask_model", config["multitask_model"])], U.multitask_model,
                                      desc="multitask", checkpoints=True)
    loss = {}
    for arm, ev in config["eval"].items():
        rows = U.evaluate(ev)
        nll = {r["domain"]: r["nll"] for r in rows}
        loss[arm] = loss_draws(nll, rows[0]["tokens_per_window"], config["domains"], 2, 0)[0]
    best = min(v for a, v in loss.items() if a.startswith("merge_"))
    return [{"cell": config["cell"], "measure": "multitask_minus_best_merge", "seed": config["seed"],
             "value": float(loss["multitask"] - best)}]


def stored(tables: dict, params: dict, cells: list[str]) -> pd.DataFrame:
    """The stored run's values of the table's cells (from `arms`)."""
    arms, rows = tables["arms"], []
    for c in cells:
        pool, size, k, sub = c.split("/")
        g = arms[(arms["pool"] == pool) & (arms["size"] == size) & (arms["k"] == int(k[1:])) & (arms["subset"] == sub)]
        loss = dict(zip(g["arm"], g["loss"]))
        merges = [v for a, v in loss.items() if a.startswith("merge_")]
        if "multitask" in loss and merges:
            rows.append({"cell": c, "measure": "multitask_minus_best_merge", "seed": int(params["seed"]),
                         "value": float(loss["multitask"] - min(merges))})
    return pd.DataFrame(rows, columns=list(S.COLUMNS))


def seed_table(tables: dict) -> pd.DataFrame:
    """For the chapter: per replicated cell, the training-seed spread of multitask - best merge
    beside the stored single-seed value. Empty without a seeds table."""
    return S.spread_beside_stored(tables.get("seeds"), lambda cells: stored(tables, {"seed": 0}, cells))