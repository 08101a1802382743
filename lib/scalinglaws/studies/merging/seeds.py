"""Training-seed replicates of the merging study (`python -m scalinglaws seeds merging`; `studies.replicates`).

A replicated configuration ("<pool>/<size>") is one pool's experts at one size: every expert is
fine-tuned again from the stored run's base (the testbed base in its `testbed_bases`, fixed) with
the stored recipe and `seed` = s in the study's own finetune unit (the data order of fine-tuning;
the base, the recipe and the evaluation windows stay those of the stored run). The experts are
then scored and merged exactly as the study does (`units.score`, `units.merge_eval` on the pool's
windows). What varies between seeds is thus the fine-tuning noise of the experts, which every
merge inherits; the base's own training noise is the testbed's `test_ce` replicates.

Measures (cells of the table):
    expert_ce   "<pool>/<size>/<domain>": in-domain CE of the domain's expert (nats/token): the
                `specialisation` row expert_domain = eval_domain = domain
    merged_ce   "<pool>/<size>/<method>/k<M>": cross-domain CE of the merge of all M experts of the
                pool (mean over the pool's domains; k = M is one subset, so no subset sampling):
                the `curves` row scope cross_domain at k = M
    merge_gain  same cells: base CE minus merged CE on the pool's domains (positive: the merge
                beats the base): minus `curves.delta_base`

A replicated tail ("<pool>/tail") is one pool at every size of the stored run, fine-tuned at seed s
as above, each size's subsets merged with Average exactly as the study plans and chunks them
(`study.subset_plan`, `chunk_size`), and its cross-domain tail L(k) = L_inf + A / (k + b) fitted
as `tail.tail_fits` does (the mean over subsets of each k of the mean CE over the pool's domains):
    tail_A        "<pool>/<size>/tail": the tail amplitude A at that size (nats/token): the
                  `tail_fits` row of Average, cross_domain (the claims tail_form and theory_A)
    tail_A_slope  "<pool>/tail": the slope of log A over log N across the sizes (`tail.amplitude_slope`,
                  = -gamma; the claim a_shrinks)
One unit per (pool, seed): the slope needs every size at the same seed.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from scalinglaws import data as D
from scalinglaws.core import seeds as S
from scalinglaws.core.results import ResultStore
from scalinglaws.core.sweep import Sweep, Unit
from scalinglaws.core.validation import ParameterError

MEASURES = {"expert_ce": "in-domain CE of a fine-tuned expert (nats/token)",
            "merged_ce": "cross-domain CE of the merge of all M experts of a pool (nats/token)",
            "merge_gain": "base CE minus merged CE on the pool's domains (nats/token)",
            "tail_A": "amplitude A of a pool's cross-domain Average tail L(k) = L_inf + A / (k + b) at one size "
                      "(nats/token)",
            "tail_A_slope": "slope of log A over log N across a pool's sizes (= -gamma)"}
MERGE_METHODS = ("average", "task_arithmetic")
TAIL = "tail"  # a cell "<pool>/tail": the pool's Average tail at every size
TAIL_METHOD = "average"  # the method whose tail the claims judge (`claims._average_tails`)
CELLS = {"smoke": ["related/d16l1"],
         "cpu": ["related/d32l2", "related/d48l3", f"related/{TAIL}", f"unrelated/{TAIL}"]}


def cells_allowed(params: dict) -> list[str]:
    return [f"{p}/{s}" for p in params["pools"] for s in params["sizes"]] + [f"{p}/{TAIL}" for p in params["pools"]]


def stored_bases(study: str, profile: str) -> dict[str, str]:
    """{size: testbed base unit key} a stored study run stands on: its provenance's `testbed_bases`
    where recorded, else the bases the stored testbed chose (`lr_sweep`, chosen rows)."""
    prov = ResultStore(study, profile).provenance()
    recorded = {s: v["unit"] for s, v in prov.get("testbed_bases", {}).items() if "unit" in v}
    if recorded:
        return recorded
    t = ResultStore("testbed", profile).read("lr_sweep")
    return {r.size: r.unit for r in t[t["chosen"]].itertuples()}


def stored_recipe(profile: str) -> dict:
    prov = ResultStore("merging", profile).provenance()
    if "recipe" not in prov:
        raise ParameterError(f"the stored merging run at {profile!r} records no recipe (provenance 'recipe')")
    return {"lr": float(prov["recipe"]["lr"]), "token_mult": float(prov["recipe"]["token_mult"])}


def finetune_config(size: str, domain: str, base: str, params: dict, recipe: dict, seed: int) -> dict:
    """The merging study's finetune unit config (`study._ft_config`) with the base key given, so
    no testbed sweep is looked up; seed 0 gives the stored expert's key."""
    from scalinglaws.studies.merging import units as U
    return {"size": size, "domain": domain, "base": base, "ft_lr": recipe["lr"], "token_mult": recipe["token_mult"],
            "tokens": int(round(recipe["token_mult"] * params["ft_base_tokens"])), "seed": seed,
            "data": D.checksums([domain], "finetune"), **{k: params[k] for k in U.SCHEDULE_KEYS}}


def parse_cell(cell: str) -> tuple[str, str]:
    """A cell's (pool, size); size is `TAIL` for a replicated tail ("<pool>/tail")."""
    pool, size = cell.split("/")
    return pool, size


def units(profile: str, params: dict, cells: list[str], seeds: list[int]) -> list[Unit]:
    from scalinglaws.studies.merging import units as U
    from scalinglaws.studies.merging.config import METHOD_VARIANTS
    from scalinglaws.studies.merging.study import context_of
    bases, recipe = stored_bases("merging", profile), stored_recipe(profile)
    # every base the cells need, checked once (a tail cell needs every size of the stored run)
    needed = [s for c in cells for s in (params["sizes"] if parse_cell(c)[1] == TAIL else [parse_cell(c)[1]])]
    missing = sorted(set(needed) - set(bases), key=needed.index)
    if missing:
        raise ParameterError(f"the stored merging run at {profile!r} names no testbed base for {missing}")
    out = []
    for c in cells:
        pool, size = parse_cell(c)
        if size == TAIL:
            out += [tail_unit(profile, params, pool, bases, recipe, s) for s in seeds]
            continue
        doms = params["pools"][pool]
        methods = {m: METHOD_VARIANTS[m] for m in MERGE_METHODS if m in params["methods"]}
        for s in seeds:
            out.append(Unit("seeds", {
                "study": "merging", "profile": profile, "cell": c, "seed": s, "pool": pool, "size": size,
                "base": bases[size], "domains": doms,
                "finetune": [finetune_config(size, d, bases[size], params, recipe, s) for d in doms],
                "eval": U.eval_config(doms, params, context_of(params)), "merge_seed": params["seed"],
                "methods": {m: [reg, opts] for m, (reg, opts) in methods.items()}}))
    return out


def tail_unit(profile: str, params: dict, pool: str, bases: dict, recipe: dict, seed: int) -> Unit:
    """One (pool, seed) of a replicated tail: for every size of the stored run, its base, experts at
    `seed`, evaluation and the study's subset plan for Average (see the module docstring)."""
    from scalinglaws.studies.merging import units as U
    from scalinglaws.studies.merging.config import METHOD_VARIANTS
    from scalinglaws.studies.merging.study import context_of, subset_plan
    from scalinglaws.studies.merging.subsets import subset_key
    if TAIL_METHOD not in params["methods"]:
        raise ParameterError(f"the stored merging run has no {TAIL_METHOD!r} merges to replicate a tail of")
    doms, T = params["pools"][pool], context_of(params)
    reg, opts = METHOD_VARIANTS[TAIL_METHOD]
    return Unit("seeds", {
        "study": "merging", "profile": profile, "cell": f"{pool}/{TAIL}", "seed": seed, "pool": pool,
        "domains": doms, "merge_seed": params["seed"], "method": [reg, opts], "chunk_size": params["chunk_size"],
        "sizes": [{"size": s, "base": bases[s],
                   "finetune": [finetune_config(s, d, bases[s], params, recipe, seed) for d in doms],
                   "eval": U.eval_config(doms, params, T),
                   "subsets": [subset_key(x) for x in subset_plan(s, params, len(doms))[1]]}
                  for s in params["sizes"]]})


def replicate_tail(config: dict) -> list[dict]:
    """A `tail_unit`: per size, fine-tune the experts (the study's finetune units, so seed 0 gives
    the stored experts), merge the plan's subsets with Average in the study's chunks, fit the
    cross-domain tail; then A's slope over N."""
    from scalinglaws import models as Mo
    from scalinglaws.studies.merging import analysis as MA
    from scalinglaws.studies.merging import tail as TL
    from scalinglaws.studies.merging import units as U
    from scalinglaws.studies.testbed.seeds import ensure_base
    profile, pool, seed, doms = config["profile"], config["pool"], config["seed"], config["domains"]
    reg, opts = config["method"]
    sweep, chunk = Sweep("merging", profile), int(config["chunk_size"])
    rows, N, A = [], [], []
    for spec in config["sizes"]:
        size, keys = spec["size"], list(spec["subsets"])
        ensure_base(size, profile, spec["base"])
        fts = [Unit("finetune", c) for c in spec["finetune"]]
        sweep.run(fts, U.finetune, desc="finetune", checkpoints=True)
        merged = []
        for i in range(0, len(keys), chunk):
            merged += U.merge_eval({"base": spec["base"], "experts": [u.key for u in fts], "domains": doms,
                                    "eval": spec["eval"], "registry_method": reg, "options": opts,
                                    "seed": config["merge_seed"], "subsets": keys[i:i + chunk]})
        n = Mo.count_params(Mo.model_config(size))["non_embedding"]
        m = pd.DataFrame(merged).assign(pool=pool, method=TAIL_METHOD, size=size, N=n)
        # the study's own path from merges to the tail fit (analysis.model_losses, tail.tail_fits), no bootstrap
        fit = TL.tail_wide(TL.tail_fits(MA.model_losses(m), n_boot=0)[0])
        a = float(fit.loc[fit["scope"] == "cross_domain", "A"].item())
        N.append(n)
        A.append(a)
        rows.append({"cell": f"{pool}/{size}/{TAIL}", "measure": "tail_A", "seed": seed, "value": float(a)})
    slope = TL.amplitude_slope(N, A)
    if np.isfinite(slope):  # fewer than two sizes whose tail falls: no slope to replicate
        rows.append({"cell": f"{pool}/{TAIL}", "measure": "tail_A_slope", "seed": seed, "value": slope})
    return rows


def replicate(config: dict) -> list[dict]:
    """A (pool, size) cell: fine-tune the pool's experts (the study's units, in its sweep: seed 0 gives the stored
    experts), score base and experts on the pool's windows, merge all M with each method."""
    from scalinglaws.studies.merging import subsets as SU
    from scalinglaws.studies.merging import units as U
    from scalinglaws.studies.testbed.seeds import ensure_base
    if parse_cell(config["cell"])[1] == TAIL:
        return replicate_tail(config)
    profile, size, pool, seed = config["profile"], config["size"], config["pool"], config["seed"]
    ensure_base(size, profile, config["base"])
    sweep = Sweep("merging", profile)
    fts = [Unit("finetune", c) for c in config["finetune"]]
    sweep.run(fts, U.finetune, desc="finetune", checkpoints=True)
    doms, ev = config["domains"], config["eval"]
    work, base, experts = U._states({"base": config["base"], "experts": [u.key for u in fts]})
    _, m = U.score(work, [base] + experts, ev)
    ce = {(int(r.model), r.domain): float(r.ce) for r in m.itertuples()}
    base_ce = float(np.mean([ce[(0, d)] for d in doms]))
    rows = [{"cell": f"{pool}/{size}/{d}", "measure": "expert_ce", "seed": seed, "value": ce[(i + 1, d)]}
            for i, d in enumerate(doms)]
    M = len(doms)
    for name, (reg, opts) in config["methods"].items():
        merged = U.merge_eval({"base": config["base"], "experts": [u.key for u in fts], "domains": doms,
                               "eval": ev, "registry_method": reg, "options": opts, "seed": config["merge_seed"],
                               "subsets": [SU.subset_key(range(M))]})
        mce = float(np.mean([r["ce"] for r in merged]))
        cell = f"{pool}/{size}/{name}/k{M}"
        rows += [{"cell": cell, "measure": "merged_ce", "seed": seed, "value": mce},
                 {"cell": cell, "measure": "merge_gain", "seed": seed, "value": base_ce - mce}]
    return rows


def stored(tables: dict, params: dict, cells: list[str]) -> pd.DataFrame:
    """The stored run's values of the table's cells (seed = the stored run's seed)."""
    from scalinglaws.studies.merging import tail as TL
    seed, rows = int(params["seed"]), []
    spec, curves = tables["specialisation"], tables["curves"]
    tails = TL.tail_wide(tables["tail_fits"]) if "tail_fits" in tables else pd.DataFrame()
    if len(tails):
        tails = tails[(tails["method"] == TAIL_METHOD) & (tails["scope"] == "cross_domain")].sort_values("N")
    for c in cells:
        parts = c.split("/")
        if parts[-1] == TAIL:  # "<pool>/<size>/tail": A at one size; "<pool>/tail": A's slope over N
            t = tails[tails["pool"] == parts[0]] if len(tails) else tails
            if len(parts) == 3:
                t = t[t["size"] == parts[1]] if len(t) else t
                if len(t):
                    rows.append({"cell": c, "measure": "tail_A", "seed": seed, "value": float(t["A"].iloc[0])})
            elif len(t):
                slope = TL.amplitude_slope(t["N"], t["A"])
                if np.isfinite(slope):
                    rows.append({"cell": c, "measure": "tail_A_slope", "seed": seed, "value": slope})
            continue
        if len(parts) == 3:
            pool, size, dom = parts
            r = spec[(spec["size"] == size) & (spec["expert_domain"] == dom) & (spec["eval_domain"] == dom)]
            if len(r):
                rows.append({"cell": c, "measure": "expert_ce", "seed": seed, "value": float(r["ce"].iloc[0])})
        elif len(parts) == 4:
            pool, size, method, k = parts
            r = curves[(curves["pool"] == pool) & (curves["size"] == size) & (curves["method"] == method)
                       & (curves["k"] == int(k[1:])) & (curves["scope"] == "cross_domain")]
            if len(r):
                rows += [{"cell": c, "measure": "merged_ce", "seed": seed, "value": float(r["ce"].iloc[0])},
                         {"cell": c, "measure": "merge_gain", "seed": seed, "value": -float(r["delta_base"].iloc[0])}]
    return pd.DataFrame(rows, columns=list(S.COLUMNS))


def seed_table(tables: dict) -> pd.DataFrame:
    """For the chapter: per measure, the pooled seed SD over the replicated cells (`core.seeds.seed_sd`)
    and each cell's spread beside the stored single-seed value. Empty without a seeds table."""
    return S.spread_beside_stored(tables.get("seeds"), lambda cells: stored(tables, {"seed": 0}, cells), pooled=True)