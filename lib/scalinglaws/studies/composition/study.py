"""The composition study: given k domains of a pool, a base of size N and a compute budget, keep the
base, merge k experts, fine-tune one model on the k domains (multitask), or route?

Arms, per (pool, size, k, subset), all starting from the testbed's chosen base of that size:

    base            the base itself (k = 0 of the merging study)
    merge_<method>  the k experts of the subset merged in memory, by Average and by the merging
                    study's best other method (`merge_methods: ["average", "best"]`; "best" is
                    read from the merging study's stored `curves` at this profile: the method with
                    the lowest mean in-domain change from the base over pools, sizes and k >= 2;
                    with no stored curves, the first linear method of the merging config other
                    than Average). The experts are the merging study's units (same keys, trained
                    once for both studies) with its pilot-chosen recipe (T tokens each).
    multitask       the base fine-tuned on the union of the k domains with k T tokens (the k
                    experts' total), the expert recipe otherwise (the merging study's multitask
                    config shape)
    upcycled        a routed model with E = k experts upcycled from the base (every expert the
                    dense MLP, router fresh; `units.py` says why the router must have gate 1),
                    fine-tuned like the multitask model (k T tokens)
    scratch_routed  a routed model with E = k trained from scratch on the k domains' pretraining
                    splits at the pretraining budget (`scratch`, off at cpu: see PROFILES)

Pools and k. The pools are the merging study's (5 domains each at cpu/gpu: "related", the
generated mathematics subfields; "unrelated", five real-text domains), so k <= 5: k = 8 (the
issue's largest) would need 8 domains in a pool and is impossible here; we use k in {2, 3, 5}.
Subsets: `subsets_per_k` seeded draws per (pool, k) (all of them when there are fewer), the same
subsets for every arm and size (`choose_subsets`).

Evaluation: every arm on the same unbiased windows, `evaluation.uniform_windows` of each of the
k domains' test split with the merging study's settings (`eval_tokens_per_domain`, seed, the
model context); loss = mean CE over the k domains, paired bootstrap intervals (`analysis.py`).
Costs: `costs.py`, one accounting for every arm.

Shared records. The multitask arm's config is the merging study's multitask config minus its
evaluation; the first subset of every k is the prefix the merging study's multitask baseline uses,
so where the merging study stored that record its in-domain loss is copied beside ours
(`merging_multitask`, same model, the merging study's stacked evaluator): a reproducibility check.

Tables (`data/results/composition/<profile>/`): arms, summary, contrasts, wins, fits,
predictions, winner_predictions, claims; provenance last.
"""
from __future__ import annotations

import hashlib
import itertools
import math
import sys
import time

import numpy as np
import pandas as pd

from scalinglaws import data as D
from scalinglaws import models as Mo
from scalinglaws.core.profiles import REGISTRY
from scalinglaws.core.results import ResultStore, provenance
from scalinglaws.core.sweep import Sweep, Unit
from scalinglaws.core.validation import ParameterError, check_int, check_subset
from scalinglaws.models import routed as RT
from scalinglaws.studies import exclusive_run, resolve_params, validate_run
from scalinglaws.studies.composition import analysis as A
from scalinglaws.studies.composition import costs as C
from scalinglaws.studies.composition import units as U
from scalinglaws.studies.merging import study as MS
from scalinglaws.studies.merging import units as MU
from scalinglaws.studies.merging.config import METHOD_VARIANTS, theory_coefficients

STUDY = "composition"
BEST = "best"

_COMMON = {"merge_methods": ["average", BEST], "router": "rlr", "routed_every": 2, "scratch": False,
           "scratch_tokens": None, "seed": 0, "bootstrap": 1000}
PROFILES = {
    # 2 tiny sizes x the merging smoke pools (3 domains) x k in {2, 3}, one subset each: 4 merges,
    # 4 multitask, 4 upcycled and 4 scratch routed models (40,960 tokens each) per size. About a
    # minute with one torch thread, plus the testbed's and the merging study's smoke units if missing.
    "smoke": {**_COMMON, "sizes": Mo.ladder("smoke"), "pools": MS.PROFILES["smoke"]["pools"], "ks": [2, 3],
              "subsets_per_k": 1, "eval_tokens_per_domain": MS.PROFILES["smoke"]["eval_tokens_per_domain"],
              "scratch": True, "bootstrap": 100},
    # The 3 smallest cpu sizes (d32l2, d48l3, d64l4: the merging study's bases and experts are
    # reused, 0 new experts), both pools of 5, k in {2, 3, 5}, 2 seeded subsets for k = 2, 3 and the
    # one for k = 5: 5 subsets x 2 pools x 3 sizes = 30 (pool, size, subset) points.
    # New training: multitask + upcycled, k x 65,536 tokens each: 2 x 2 x 3 x (2+2+2+2+5) x 65,536
    # = 10.2M fine-tuning tokens; at the measured 1-thread rates (d32l2 11K tok/s, d48l3 10K,
    # d64l4 7.2K; routed within 10% of dense) ~ 3.4M tokens per size -> 310 + 340 + 470 ~ 1,100 CPU-s.
    # Evaluation: 30 x (1 base + 2 merges + 2 trained) ~ 150 models x <= 5 x 4,096 tokens ~ 2M
    # tokens at ~14K tok/s ~ 150 CPU-s, merges ~ 60 x 1 s. Total ~ 1,350 CPU-s (~25 min on one
    # core) when the merging cpu experts are stored (else their cost: the merging study's).
    # scratch_routed (off): 30 routed models x 2,097,152 tokens = 63M tokens ~ 7,500 CPU-s
    # (~2 h on one core, 5.5x the rest of the profile): run it with overrides={"scratch": True}.
    "cpu": {**_COMMON, "sizes": Mo.ladder("cpu")[:3], "pools": MS.PROFILES["cpu"]["pools"], "ks": [2, 3, 5],
            "subsets_per_k": 2, "eval_tokens_per_domain": MS.PROFILES["cpu"]["eval_tokens_per_domain"]},
    # The 3 smallest gpu sizes, same grid. Multitask + upcycled: 2 x 2 x 3 x 13 x 524,288 = 82M
    # tokens at >= 1M tok/s (GPU-NOTES: 1.6-2.3M dense, ~0.6x routed) ~ 2 min; experts (merging gpu
    # recipe, 3 sizes x 10 domains) ~ 30 s if not stored; evaluation ~ 1 min; testbed bases if not
    # stored ~ 4 min (resumable). One H100 command < 9 min when the bases exist. Scratch routed
    # (off): 30 x 33.5M tokens ~ 1 GPU-h.
    "gpu": {**_COMMON, "sizes": Mo.ladder("gpu")[:3], "pools": MS.PROFILES["gpu"]["pools"], "ks": [2, 3, 5],
            "subsets_per_k": 2, "eval_tokens_per_domain": MS.PROFILES["gpu"]["eval_tokens_per_domain"]},
}


# ---------------------------------------------------------------------------------------------
# validation


def _check_ks(ks, pools: dict) -> list[int]:
    if isinstance(ks, (str, bytes)) or not isinstance(ks, (list, tuple)) or not ks:
        raise ParameterError(f"ks={ks!r} must be a non-empty list of integers k >= 2 (domains composed)")
    M = min(len(v) for v in pools.values())
    out = []
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
            raise ParameterError(f"ks has invalid value {k!r}; allowed: integers 2 <= k <= {M}")
        if k > M:
            raise ParameterError(f"ks has k={k}, more than the {M} domains of the smallest pool: a subset of k "
                                 f"domains needs k <= {M}")
        out.append(int(k))
    if len(set(out)) != len(out):
        raise ParameterError(f"ks has duplicates: {list(ks)}")
    return sorted(out)


def validate(params: dict) -> dict:
    params = dict(params)
    params["sizes"] = check_subset("sizes", params["sizes"], list(Mo.SIZES))
    if not params["sizes"]:
        raise ParameterError("sizes must name at least one size")
    params["pools"] = MS._check_pools(params["pools"])
    params["ks"] = _check_ks(params["ks"], params["pools"])
    check_int("subsets_per_k", params["subsets_per_k"], minimum=1, maximum=1000)
    allowed = list(METHOD_VARIANTS) + [BEST]
    params["merge_methods"] = check_subset("merge_methods", params["merge_methods"], allowed)
    if not params["merge_methods"] or len(set(params["merge_methods"])) != len(params["merge_methods"]):
        raise ParameterError(f"merge_methods={params['merge_methods']!r} must be a non-empty list of distinct "
                             f"names from {allowed}")
    if params["router"] not in U.GATE_ONE_ROUTERS:
        raise ParameterError(f"router={params['router']!r} must be one of {list(U.GATE_ONE_ROUTERS)}: routers whose "
                             "gate is 1, so the upcycled model starts as the base (Switch, S-BASE scale the MLP)")
    check_int("routed_every", params["routed_every"], minimum=1)
    if not isinstance(params["scratch"], bool):
        raise ParameterError(f"scratch={params['scratch']!r} must be True or False")
    if params["scratch_tokens"] is not None:
        check_int("scratch_tokens", params["scratch_tokens"], minimum=1024)
    check_int("eval_tokens_per_domain", params["eval_tokens_per_domain"], minimum=16, maximum=1 << 22)
    check_int("seed", params["seed"], minimum=0)
    check_int("bootstrap", params["bootstrap"], minimum=2)
    return params


def data_files(params: dict) -> list[tuple[str, str]]:
    """The testbed's pretraining files (bases trained if missing), the fine-tuning and test splits of
    every pool domain, and their pretraining splits when the scratch arm runs."""
    doms = MS.eval_domains(params)
    base = _testbed().base_pretrain_files()
    return base + [(d, s) for s in ("finetune", "test") for d in doms] + \
        ([(d, "pretrain") for d in doms] if params["scratch"] else [])


def _testbed():
    from scalinglaws.studies import testbed
    return testbed


# ---------------------------------------------------------------------------------------------
# design


def choose_subsets(pool: str, M: int, k: int, n: int, seed: int) -> list[tuple[int, ...]]:
    """n subsets of size k of range(M) (all C(M, k) when there are at most n). The first is the
    prefix (0, ..., k-1), the merging study's multitask subset, so that where its multitask records
    exist they cross-check ours (`merging_multitask` in the arms table); the other n - 1 are drawn
    without replacement from the rest with a generator seeded by (seed, pool, k)."""
    every = list(itertools.combinations(range(M), k))
    if len(every) <= n:
        return every
    digest = hashlib.blake2b(f"composition_subsets/{seed}/{pool}/{k}".encode(), digest_size=8).digest()
    rng = np.random.default_rng(int.from_bytes(digest, "little"))
    rest = every[1:]
    return [every[0]] + sorted(rest[i] for i in rng.choice(len(rest), size=n - 1, replace=False))


def merging_multitask_unit(mt_config: dict, params: dict, mparams: dict, pool_domains: list[str],
                           seq_len: int) -> Unit:
    """The merging study's `multitask` unit that trains the same model as our multitask config (its
    config = ours + its evaluation windows over the pool, `merging.units.eval_config`)."""
    return Unit("multitask", {**mt_config, "eval": MU.eval_config(pool_domains, mparams, seq_len)})


def merging_multitask_loss(sweep: Sweep, unit: Unit) -> float:
    """In-domain mean CE of a stored merging multitask record (NaN when the merging study has none)."""
    if not sweep.done(unit):
        return math.nan
    rows = [r for r in sweep.load(unit)["rows"] if r["in_subset"]]
    return float(np.mean([r["ce"] for r in rows]))


def best_merge_method(profile: str) -> tuple[str, str]:
    """(method, where the choice came from): see the module docstring."""
    store = ResultStore("merging", profile)
    if store.has("curves"):
        c = store.read("curves")
        c = c[(c["scope"] == "in_domain") & (c["k"] >= 2) & (c["method"] != "average")
              & c["method"].isin(list(METHOD_VARIANTS))]
        if len(c):
            m = c.groupby("method")["delta_base"].mean().idxmin()
            return str(m), (f"merging {profile} curves: lowest mean in-domain change from the base over pools, "
                            "sizes and k >= 2, Average excluded")
    linear = [m for m in MS.PROFILES[profile]["methods"] if m != "average" and m in theory_coefficients()]
    return linear[0], f"merging {profile} config (no stored curves): first linear method other than Average"


def resolve_methods(params: dict, profile: str) -> tuple[list[str], str]:
    out, source = [], "typed"
    for m in params["merge_methods"]:
        if m == BEST:
            m, source = best_merge_method(profile)
        if m not in out:
            out.append(m)
    return out, source


def subset_key(subset) -> str:
    return "-".join(str(i) for i in subset)


def _multitask_config(ft_unit: Unit, pool: str, domains: list[str]) -> dict:
    """The merging study's multitask config shape (its `run`, step 5) for these domains, minus eval."""
    cfg = dict(ft_unit.config)
    cfg.pop("domain")
    cfg.update({"pool": pool, "k": len(domains), "train_domains": list(domains), "tokens": len(domains) * cfg["tokens"],
                "data": D.checksums(list(domains), "finetune")})
    return cfg


def _scratch_config(size: str, pool: str, domains: list[str], params: dict, profile: str) -> dict:
    tb = _testbed()
    tparams = resolve_params(tb, profile, {})
    sweep = tb.study._size_sweep(size, profile)
    lr = float(sweep.loc[sweep["chosen"], "lr"].item())
    cfg = RT.routed_config(size, len(domains), params["router"], routed_every=params["routed_every"],
                           hash_seed=params["seed"])
    return {"size": size, "pool": pool, "k": len(domains), "train_domains": list(domains), "experts": len(domains),
            "router": params["router"], "routed_every": params["routed_every"], "routing": RT.routing_fields(cfg),
            "tokens": int(params["scratch_tokens"] or REGISTRY[profile].pretrain_tokens), "lr": lr,
            "data": D.checksums(list(domains), "pretrain"), "seed": params["seed"],
            **{k: tparams[k] for k in ("warmup_frac", "min_lr_frac", "weight_decay", "grad_clip", "batch_tokens")}}


# ---------------------------------------------------------------------------------------------
# the study


@exclusive_run
def run(profile: str, backend: str = "local", **overrides) -> ResultStore:
    params = validate_run(sys.modules[__name__], profile, backend, overrides)
    t0 = time.perf_counter()
    methods, method_source = resolve_methods(params, profile)
    tb = _testbed()
    mparams = resolve_params(MS, profile, {})
    msweep, sweep = Sweep("merging", profile), Sweep(STUDY, profile)
    stage: dict[str, float] = {}

    def timed(name, sw, units, fn, **kw):
        recs = sw.run(units, fn, backend=backend, desc=name, **kw)
        stage[name] = round(sum(r["wall_s"] for r in recs), 1)
        return recs

    bases = {s: tb.base_key(s, profile) for s in params["sizes"]}
    # the merging study's recipe and experts (its own units: stored ones are reused)
    _, _, recipe = MS._recipe_from(timed("pilot", msweep, MS.pilot_units(profile, mparams), MU.pilot), mparams)
    doms = MS.eval_domains(params)
    ft_units = {(s, d): MS.finetune_unit(s, d, profile, mparams, recipe) for s in params["sizes"] for d in doms}
    timed("finetune", msweep, list(ft_units.values()), MU.finetune, checkpoints=True)
    expert_tokens = next(iter(ft_units.values())).config["tokens"]
    seq_len = min(Mo.get_size(s).context for s in params["sizes"])
    pretrain_tokens = REGISTRY[profile].pretrain_tokens

    # the grid: (pool, size, k, subset) x arm, each with its evaluation unit
    points, trains = [], {"multitask_model": [], "upcycled": [], "scratch_routed": []}
    fns = {"multitask_model": U.multitask_model, "upcycled": U.upcycled, "scratch_routed": U.scratch_routed}
    for pool, pdoms in params["pools"].items():
        for k in params["ks"]:
            for sub in choose_subsets(pool, len(pdoms), k, params["subsets_per_k"], params["seed"]):
                sdoms = [pdoms[i] for i in sub]
                for s in params["sizes"]:
                    pt = {"pool": pool, "size": s, "k": k, "subset": subset_key(sub), "domains": sdoms}
                    base_spec = {"kind": "checkpoint", "key": bases[s], "size": s}
                    points.append({**pt, "arm": "base", "method": "", "cost_arm": "base",
                                   "eval": Unit("eval", U.eval_config(base_spec, pdoms, params, seq_len))})
                    for m in methods:
                        reg, opts = METHOD_VARIANTS[m]
                        spec = {"kind": "merge", "size": s, "base": bases[s], "experts": [ft_units[(s, d)].key for d in sdoms],
                                "method": reg, "options": opts, "seed": MU.subset_seed(params["seed"], sub, len(pdoms))}
                        points.append({**pt, "arm": f"merge_{m}", "method": m, "cost_arm": "merge",
                                       "eval": Unit("eval", U.eval_config(spec, sdoms, params, seq_len))})
                    mt = _multitask_config(ft_units[(s, sdoms[0])], pool, sdoms)
                    cross = merging_multitask_loss(msweep, merging_multitask_unit(mt, params, mparams, pdoms, seq_len))
                    kinds = {"multitask_model": mt,
                             "upcycled": {**mt, "experts": k, "router": params["router"],
                                          "routed_every": params["routed_every"]}}
                    if params["scratch"]:
                        kinds["scratch_routed"] = _scratch_config(s, pool, sdoms, params, profile)
                    for kind, cfg in kinds.items():
                        u = Unit(kind, cfg)
                        trains[kind].append(u)
                        arm = "multitask" if kind == "multitask_model" else kind
                        spec = {"kind": "checkpoint", "key": u.key, "size": s}
                        points.append({**pt, "arm": arm, "method": "", "cost_arm": arm,
                                       "merging_multitask": cross if arm == "multitask" else math.nan,
                                       "eval": Unit("eval", U.eval_config(spec, sdoms, params, seq_len))})
    for kind, units in trains.items():
        timed(kind, sweep, units, fns[kind], checkpoints=True)
    # one evaluation per distinct model (the base of a (pool, size) is evaluated once on the pool)
    ev_units = list({p["eval"].key: p["eval"] for p in points}.values())
    erecs = {r["key"]: r for r in timed("eval", sweep, ev_units, U.evaluate)}

    N = {s: Mo.param_formula(Mo.model_config(s))["non_embedding"] for s in params["sizes"]}
    models = []
    for p in points:
        rows = erecs[p["eval"].key]["rows"]
        costs = C.arm_costs(p["cost_arm"], p["size"], p["k"], pretrain_tokens=pretrain_tokens,
                            expert_tokens=expert_tokens, router=params["router"], routed_every=params["routed_every"],
                            scratch_tokens=params["scratch_tokens"])
        models.append({"pool": p["pool"], "size": p["size"], "N": N[p["size"]], "k": p["k"], "subset": p["subset"],
                       "arm": p["arm"], "method": p["method"], "domains": p["domains"], **costs,
                       "merging_multitask": p.get("merging_multitask", math.nan),
                       "nll": {r["domain"]: r["nll"] for r in rows}, "tokens_per_window": rows[0]["tokens_per_window"]})
    tables = analyse(models, params["bootstrap"], params["seed"])
    store = ResultStore(STUDY, profile)
    from scalinglaws.studies.composition.claims import claims
    tables["claims"] = claims(tables, profile)
    for name, df in tables.items():
        store.write(name, df)
    store.write_run_provenance(provenance(
        params, time.perf_counter() - t0, profile=profile, backend=backend,
        unit_compute_s=round(sum(stage.values()), 1), merge_methods_resolved=methods, method_source=method_source,
        expert_recipe=recipe, expert_tokens=expert_tokens, pretrain_tokens=pretrain_tokens,
        models_evaluated=len(ev_units), testbed_bases={s: {"unit": k} for s, k in bases.items()},
        **{f"{k}_s": v for k, v in stage.items()}))
    return store


def analyse(models: list[dict], n_boot: int, seed: int) -> dict[str, pd.DataFrame]:
    """Every table of the study from the evaluated models (`analysis.py`)."""
    arms, draws = A.arms_table(models, n_boot, seed)
    summary, sdraws = A.summary_table(arms, draws, C.COST_COLUMNS)
    contrasts = A.contrasts_table(summary, sdraws)
    preds = A.predictions_table(summary)
    return {"arms": arms, "summary": summary, "contrasts": contrasts, "wins": A.wins_table(summary, contrasts),
            "fits": A.fits_table(summary), "predictions": preds, "winner_predictions": A.winner_predictions(preds)}
