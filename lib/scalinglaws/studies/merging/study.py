"""The merging study, in a regime where merging can work: two pools of experts fine-tuned with a
recipe a stored pilot chose, merged k at a time by every method, scored with the base (k = 0) on
unbiased windows; then per-size tail fits, the joint (N, k) law, the theory, and claims.

Pools (`pools`). {name: domains}: by default "related" (the mathematics subfields, like the
paper's) and "unrelated" (code, scripture, legal, speeches, manpages). One expert per (size,
domain) from the testbed's base of that size (`testbed.base_checkpoint`); merges, curves and fits
are per pool, each pool's merges scored on its own M domains (the paper's protocol).

Recipe (`pilot.py`). At `pilot_size` (default the middle of the ladder), every fine-tuning lr in
`pilot_lrs` x token multiple in `pilot_token_mults` (of `ft_base_tokens`) x `pilot_seeds` seeds, on
the first `pilot_domains_per_pool` domains of every pool; the rule picks the largest in-domain gain
whose forgetting is at most `pilot_max_forgetting` x the gain. Every expert then uses that recipe.

Evaluation (`units.py`). `evaluation.uniform_windows` of each domain's test split,
`eval_tokens_per_domain` scored tokens per domain at the model context, the stacked evaluator for
many models at once. The base is scored on the same windows (k = 0 rows of `merges`); the
`noise` table holds the bootstrap standard error of every per-domain CE and of every expert's
paired change from the base, so effects can be stated beside their noise.

Merges. `methods` names variants of `config.METHOD_VARIANTS` (default `config.DEFAULT_METHODS`);
`config.PAPER_CONVENTION_METHODS` is the study with the merging paper's code conventions (its TIES
trim count, per tensor; `conventions.py` measures every convention). Per pool of M experts: all 2^M - 1 subsets for sizes in `full_enumeration`, else the
prefixes of `n_permutations` diverse permutations (`subsets.py`). Random methods are seeded per
subset (seed * 2^M + bitmask).

Fits. Per (pool, method, size, scope) the exact tail fit L = L_inf + A/(k + b) with a bootstrap
over subsets (`tail.py`); per (pool, method, scope) the joint law with gamma of either sign
(`analysis.py`); `ok` is the trust rule of `tail.trust` with `why_not_ok`. A(N) fitted vs
(c^2/2) Tr(H Sigma) (`theory.py`) size by size, and TA/Average tail ratios vs the c^2 ratio.

Tables (`data/results/merging/<profile>/`): pilot, recipe, experts, specialisation, noise, merges
(k = 0 rows: the base), multitask, theory, subsets, curves (base_ce, delta_base, beats_base),
variance, tail_fits (the one fits schema, `fitting.schema`), theory_vs_tail, coefficient_ratio, fits
(ok, why_not_ok), fit_samples, extrapolation, stopping, paper_law_fits, tuned, claims; provenance last. Derived
afterwards (provenance `derived`): claims and the tables it re-derives (`python -m scalinglaws claims merging`),
conventions (`python -m scalinglaws conventions merging`) and the nine-expert pool's nine_* (`merging-nine`). Every table has a `pool` column except pilot
(per domain, with its pool), recipe, experts and specialisation (per domain).
"""
from __future__ import annotations

import math
import sys
import time

import pandas as pd

from scalinglaws import data as D
from scalinglaws import models as Mo
from scalinglaws.fitting.schema import fits_frame
from scalinglaws.core.results import ResultStore, provenance
from scalinglaws.fitting.trust import TRUST_RULE
from scalinglaws.core.sweep import Sweep, Unit, checkpoint_dir
from scalinglaws.core.validation import ParameterError, check_float, check_int, check_list, check_subset
from scalinglaws.laws import get_law
from scalinglaws.studies import exclusive_run, resolve_params, validate_run
from scalinglaws.studies.merging import analysis as MA
from scalinglaws.studies.merging import pilot as PI
from scalinglaws.studies.merging import subsets as S
from scalinglaws.studies.merging import tail as TL
from scalinglaws.studies.merging import units as U
from scalinglaws.studies.merging.config import DEFAULT_METHODS, DEFAULT_POOLS, METHOD_VARIANTS, theory_coefficients
from scalinglaws.training import check_schedule

STUDY = "merging"

_COMMON = {
    "pools": {k: list(v) for k, v in DEFAULT_POOLS.items()}, "methods": list(DEFAULT_METHODS), "seed": 0,
    # the pilot grid (learning rate x multiples of ft_base_tokens x seeds) and its rule
    "pilot_size": None, "pilot_lrs": [3e-4, 1e-3, 3e-3], "pilot_token_mults": [1, 4], "pilot_seeds": 2,
    "pilot_domains_per_pool": 2, "pilot_max_forgetting": 0.5,
    "ft_warmup_frac": 0.1, "ft_min_lr_frac": 0.1, "ft_weight_decay": 0.0, "ft_grad_clip": 1.0,
    "n_permutations": 15, "permutation_candidates": 1000, "chunk_size": 31,
    "noise_bootstrap": 1000, "tail_bootstrap": 1000, "bootstrap": 500, "extrapolation_bootstrap": 0,
    "fit_r2_min": TL.R2_MIN,
    "fit_scopes": ["in_domain", "cross_domain", "held_out", "domains", "variance"],
    # the theory check (theory.py): held-out tokens per domain, 0 to skip it
    "theory_tokens": 512, "theory_bootstrap": 200,
}
# what `fit_scopes` may name: the three macro curves, every domain's in-domain curve, the variance
FIT_SCOPES = ("in_domain", "cross_domain", "held_out", "domains", "variance")
_SMOKE_POOLS = {"related": list(D.RELATED_MATH[:3]), "unrelated": ["code", "scripture", "legal"]}
PROFILES = {
    # 2 tiny sizes x 2 pools of 3 x 3 methods; a 2 lr x 2 seed pilot on one domain per pool. Minutes.
    "smoke": {**_COMMON, "sizes": Mo.ladder("smoke"), "pools": _SMOKE_POOLS,
              "methods": ["average", "task_arithmetic", "della"], "full_enumeration": Mo.ladder("smoke")[:1],
              "n_permutations": 4, "pilot_lrs": [1e-3, 3e-3], "pilot_token_mults": [1],
              "pilot_domains_per_pool": 1, "ft_base_tokens": 2048, "ft_batch_tokens": 512,
              "eval_tokens_per_domain": 256, "chunk_size": 4, "theory_tokens": 128, "theory_bootstrap": 20,
              "multitask": [[Mo.ladder("smoke")[0], 2]], "bootstrap": 20, "tail_bootstrap": 100,
              "noise_bootstrap": 100, "fit_scopes": ["in_domain", "variance"]},
    # 4 cpu sizes x 2 pools of 5 x 7 methods, every subset (31 per pool): 1736 merged models of
    # 5 x 4096 tokens; a 3 x 2 x 2 pilot on 2 domains per pool at d64l4 (48 fine-tunes of
    # 65K-262K tokens). See the chapter for the measured cost.
    "cpu": {**_COMMON, "sizes": Mo.ladder("cpu"), "full_enumeration": Mo.ladder("cpu"),
            "ft_base_tokens": 65_536, "ft_batch_tokens": 2048, "eval_tokens_per_domain": 4096,
            "multitask": [["d32l2", 2], ["d64l4", 4]]},
    # the 6 gpu sizes, every subset, context 512; one pilot domain per pool; no per-domain fits
    # (their cost is CPU time on the fitter). Budget: under 9 minutes on one H100.
    "gpu": {**_COMMON, "sizes": Mo.ladder("gpu"), "full_enumeration": Mo.ladder("gpu"),
            "ft_base_tokens": 524_288, "ft_batch_tokens": 32_768, "eval_tokens_per_domain": 16_384,
            "pilot_domains_per_pool": 1, "theory_tokens": 2048,
            "fit_scopes": ["in_domain", "cross_domain", "held_out", "variance"],
            "multitask": [[s, k] for s in Mo.ladder("gpu")[:2] for k in (2, 5)]},
}

MULTITASK_COLUMNS = ["pool", "size", "N", "k", "subset", "eval_domain", "in_subset", "ce", "bpb", "tokens",
                     "finetune_tokens", "train_loss", "wall_s"]


# ---------------------------------------------------------------------------------------------
# validation


def _check_pools(pools) -> dict:
    allowed = list(D.ALL_DOMAINS)
    if not isinstance(pools, dict) or not pools:
        raise ParameterError(f"pools={pools!r} must be a non-empty dict {{name: [domains]}} with domains from {allowed}")
    out = {}
    for name, doms in pools.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ParameterError(f"pools has a bad pool name {name!r}: use a short identifier like 'related'")
        doms = check_subset(f"pools[{name!r}]", doms, allowed)
        if not 2 <= len(doms) <= 12:
            raise ParameterError(f"pools[{name!r}] has {len(doms)} domains; a pool needs 2 to 12 (one expert each)")
        out[name] = doms
    return out


def disk_bytes(params: dict) -> int:
    """What a run may write under the work root (`studies.check_roots`): an expert per domain and size,
    the pilot's fine-tunes (at most one size) and the multitask models (merged models stay in memory)."""
    from scalinglaws.studies import checkpoint_bytes
    experts = len(eval_domains(params))
    pilot = (len(params["pilot_lrs"]) * len(params["pilot_token_mults"]) * params["pilot_seeds"]
             * params["pilot_domains_per_pool"] * len(params["pools"]))
    multitask = sum(checkpoint_bytes(s) for s, _ in params["multitask"])
    return sum(checkpoint_bytes(s) * experts for s in params["sizes"]) + pilot * max(
        checkpoint_bytes(s) for s in params["sizes"]) + multitask


def eval_domains(params: dict) -> list[str]:
    """Every pool's domains, once, in pool order: what the base and the experts are scored on."""
    return list(dict.fromkeys(d for doms in params["pools"].values() for d in doms))


def context_of(params: dict) -> int:
    return min(Mo.get_size(s).context for s in params["sizes"])


def validate(params: dict) -> dict:
    params = dict(params)
    params["sizes"] = check_subset("sizes", params["sizes"], list(Mo.SIZES))
    params["pools"] = _check_pools(params["pools"])
    params["methods"] = check_subset("methods", params["methods"], list(METHOD_VARIANTS))
    fe = params["full_enumeration"]
    if isinstance(fe, str) or not isinstance(fe, (list, tuple)):
        raise ParameterError(f"full_enumeration={fe!r} must be a list of sizes (may be empty)")
    bad = [s for s in fe if s not in params["sizes"]]
    if bad:
        raise ParameterError(f"full_enumeration has size(s) {bad} that are not in sizes={params['sizes']}")
    check_int("seed", params["seed"], minimum=0)
    # the pilot grid
    if params["pilot_size"] is not None and params["pilot_size"] not in params["sizes"]:
        raise ParameterError(f"pilot_size={params['pilot_size']!r} must be None (the middle size) or one of {params['sizes']}")
    lrs = check_list("pilot_lrs", params["pilot_lrs"], "learning rates in (0, 1)")
    if not lrs or len(set(lrs)) != len(lrs):
        raise ParameterError(f"pilot_lrs={lrs!r} must be a non-empty list of distinct learning rates in (0, 1)")
    for lr in lrs:
        check_float("pilot_lrs", lr, 0.0, 1.0, open_interval=True)
    mults = check_list("pilot_token_mults", params["pilot_token_mults"], "token multiples in (0, 64]")
    if not mults or len(set(mults)) != len(mults):
        raise ParameterError(f"pilot_token_mults={mults!r} must be a non-empty list of distinct multiples of ft_base_tokens")
    for m in mults:
        check_float("pilot_token_mults", m, 0.0, 64.0, open_interval=True)
    check_int("pilot_seeds", params["pilot_seeds"], minimum=1, maximum=10)
    check_int("pilot_domains_per_pool", params["pilot_domains_per_pool"], minimum=1,
              maximum=min(len(v) for v in params["pools"].values()))
    check_float("pilot_max_forgetting", params["pilot_max_forgetting"], 0.0)
    check_schedule({**params, "ft_lr": lrs[0]}, prefix="ft_", sizes=params["sizes"])
    check_int("ft_base_tokens", params["ft_base_tokens"], minimum=params["ft_batch_tokens"])
    # subsets, evaluation, fits
    Ms = [len(v) for v in params["pools"].values()]
    check_int("n_permutations", params["n_permutations"], minimum=2, maximum=math.factorial(min(Ms)))
    check_int("permutation_candidates", params["permutation_candidates"], minimum=1)
    check_int("chunk_size", params["chunk_size"], minimum=1)
    check_int("eval_tokens_per_domain", params["eval_tokens_per_domain"], minimum=16, maximum=1 << 22)
    for name in ("noise_bootstrap", "tail_bootstrap"):
        check_int(name, params[name], minimum=0 if name == "tail_bootstrap" else 2)
    check_float("fit_r2_min", params["fit_r2_min"], 0.0, 1.0)
    check_int("theory_tokens", params["theory_tokens"], minimum=0)
    check_int("bootstrap", params["bootstrap"], minimum=0)
    check_int("theory_bootstrap", params["theory_bootstrap"], minimum=0)
    check_int("extrapolation_bootstrap", params["extrapolation_bootstrap"], minimum=0)
    params["fit_scopes"] = check_subset("fit_scopes", params["fit_scopes"], FIT_SCOPES)
    mt = params["multitask"]
    if not isinstance(mt, (list, tuple)):
        raise ParameterError(f"multitask={mt!r} must be a list of [size, k] pairs (run for every pool)")
    for point in mt:
        if not isinstance(point, (list, tuple)) or len(point) != 2:
            raise ParameterError(f"multitask point {point!r} must be a [size, k] pair")
        if point[0] not in params["sizes"]:
            raise ParameterError(f"multitask point {list(point)}: size {point[0]!r} is not in sizes={params['sizes']}")
        check_int("multitask k", point[1], minimum=1, maximum=min(Ms))
    from scalinglaws.merge import resolve_options
    for name in params["methods"]:
        method, opts = METHOD_VARIANTS[name]
        resolve_options(method, opts)
    return params


# ---------------------------------------------------------------------------------------------
# unit configs


def _testbed():
    from scalinglaws.studies import testbed
    return testbed


def base_key(size: str, profile: str) -> str:
    """The unit key of the testbed's chosen base of `size` (`testbed.base_key`)."""
    return _testbed().base_key(size, profile)


def pilot_size(params: dict) -> str:
    return params["pilot_size"] or params["sizes"][len(params["sizes"]) // 2]


def _ft_config(size: str, domain: str, profile: str, params: dict, lr: float, mult: float, seed: int) -> dict:
    return {"size": size, "domain": domain, "base": base_key(size, profile), "ft_lr": lr, "token_mult": mult,
            "tokens": int(round(mult * params["ft_base_tokens"])), "seed": seed,
            "data": D.checksums([domain], "finetune"), **{k: params[k] for k in U.SCHEDULE_KEYS}}


def pilot_units(profile: str, params: dict) -> list[Unit]:
    size = pilot_size(params)
    ev = U.eval_config(eval_domains(params), params, context_of(params))
    doms = [d for v in params["pools"].values() for d in v[:params["pilot_domains_per_pool"]]]
    return [Unit("pilot", {**_ft_config(size, d, profile, params, lr, m, params["seed"] + s),
                           "eval": ev, "pools": params["pools"]})
            for d in dict.fromkeys(doms) for lr in params["pilot_lrs"] for m in params["pilot_token_mults"]
            for s in range(params["pilot_seeds"])]


def finetune_unit(size: str, domain: str, profile: str, params: dict, recipe: dict) -> Unit:
    return Unit("finetune", _ft_config(size, domain, profile, params, recipe["lr"], recipe["token_mult"],
                                       params["seed"]))


def subset_plan(size: str, params: dict, M: int) -> tuple[str, list[tuple]]:
    """(scheme, subsets) of one size and a pool of M experts."""
    scheme = "all" if size in params["full_enumeration"] else "permutations"
    return scheme, S.plan_subsets(M, scheme, params["n_permutations"], params["permutation_candidates"],
                                  params["seed"])


def data_files(params: dict) -> list[tuple[str, str]]:
    """The corpus files a run reads: the testbed's (its bases are trained if missing), the
    fine-tuning split of every expert's domain and the test split of the evaluation windows."""
    testbed = _testbed()
    base = testbed.base_pretrain_files()
    return base + [(d, s) for s in ("finetune", "test") for d in eval_domains(params)]


# ---------------------------------------------------------------------------------------------
# the study


def _recipe_from(precs: list[dict], params: dict):
    """(pilot table, recipe table, chosen recipe) from the pilot's unit records."""
    pilot = pd.DataFrame([r["rows"][0] for r in precs])
    pilot.insert(2, "size", pilot_size(params))
    recipe_table = PI.choose_recipe(pilot, params["pilot_max_forgetting"])
    return pilot, recipe_table, PI.chosen(recipe_table)


class _Stages:
    """Runs each stage's units on the study's sweep and records its unit compute time (provenance)."""

    def __init__(self, profile: str, backend: str):
        self.sweep, self.backend, self.seconds = Sweep(STUDY, profile), backend, {}

    def __call__(self, name: str, units: list[Unit], fn, **kw) -> list[dict]:
        recs = self.sweep.run(units, fn, backend=self.backend, desc=name, **kw)
        self.seconds[name] = round(sum(r["wall_s"] for r in recs), 1)
        return recs


def _pool_config(pool: str, size: str, profile: str, params: dict, ft_units: dict, T: int) -> dict:
    """What every unit of one (pool, size) shares: the base, the pool's experts and its evaluation."""
    doms = params["pools"][pool]
    return {"size": size, "pool": pool, "base": base_key(size, profile), "domains": doms,
            "experts": [ft_units[(size, d)].key for d in doms], "eval": U.eval_config(doms, params, T)}


def _experts(stages: _Stages, profile: str, params: dict, doms: list[str], recipe: dict):
    """2. One expert per (size, domain), with the recipe: (units by (size, domain), experts table)."""
    ft_units = {(s, d): finetune_unit(s, d, profile, params, recipe) for s in params["sizes"] for d in doms}
    ft = stages("finetune", list(ft_units.values()), U.finetune, checkpoints=True)
    return ft_units, pd.DataFrame([{**rec["rows"][0], "unit": rec["key"]} for rec in ft])


def _specialise(stages: _Stages, profile: str, params: dict, doms: list[str], ft_units: dict, T: int):
    """3. Base and experts on every domain, with sampling noise: (specialisation, noise) tables."""
    sp_units = [Unit("specialise", {"size": s, "base": base_key(s, profile), "domains": doms,
                                    "experts": [ft_units[(s, d)].key for d in doms],
                                    "eval": U.eval_config(doms, params, T), "n_boot": params["noise_bootstrap"],
                                    "seed": params["seed"]}) for s in params["sizes"]]
    sprecs = stages("specialise", sp_units, U.specialise)
    spec = pd.DataFrame([{"size": u.config["size"], **r} for u, rec in zip(sp_units, sprecs) for r in rec["rows"][0]["spec"]])
    noise = pd.DataFrame([{"size": u.config["size"], **r} for u, rec in zip(sp_units, sprecs) for r in rec["rows"][0]["noise"]])
    return spec, noise


def _merges(stages: _Stages, profile: str, params: dict, ft_units: dict, T: int, spec: pd.DataFrame):
    """4. Merges per pool, chunked, with the base as k = 0: (merge units, merges table, subset plan rows)."""
    merge_units, plan_rows = [], []
    for pool, pdoms in params["pools"].items():
        for s in params["sizes"]:
            scheme, subsets = subset_plan(s, params, len(pdoms))
            keys = [S.subset_key(x) for x in subsets]
            plan_rows += [{"pool": pool, "size": s, "scheme": scheme, "subset": key, "k": len(x)}
                          for key, x in zip(keys, subsets)]
            for name in params["methods"]:
                method, opts = METHOD_VARIANTS[name]
                for i in range(0, len(keys), params["chunk_size"]):
                    merge_units.append(Unit("merge_eval", {
                        **_pool_config(pool, s, profile, params, ft_units, T), "method": name,
                        "registry_method": method, "options": opts, "seed": params["seed"],
                        "subsets": keys[i:i + params["chunk_size"]]}))
    stages("merge_eval", merge_units, U.merge_eval)
    merges = stages.sweep.table(merge_units, ["pool", "size", "method"])
    base_rows = spec[spec["expert_domain"] == "base"]
    k0 = [{"pool": pool, "size": r.size, "method": m, "subset": "", "k": 0, "eval_domain": r.eval_domain,
           "in_subset": False, "ce": r.ce, "bpb": r.bpb, "seed": -1}
          for pool, pdoms in params["pools"].items() for m in params["methods"]
          for r in base_rows[base_rows["eval_domain"].isin(pdoms)].itertuples()]
    return merge_units, pd.concat([pd.DataFrame(k0), merges], ignore_index=True), plan_rows


def _multitask(stages: _Stages, params: dict, ft_units: dict, T: int) -> pd.DataFrame:
    """5. The multitask baseline: the first k domains of each pool, k expert budgets."""
    mt_units = []
    for pool, pdoms in params["pools"].items():
        for s, k in params["multitask"]:
            cfg = dict(ft_units[(s, pdoms[0])].config)
            cfg.pop("domain")
            cfg.update({"pool": pool, "k": k, "train_domains": pdoms[:k], "tokens": k * cfg["tokens"],
                        "data": D.checksums(pdoms[:k], "finetune"), "eval": U.eval_config(pdoms, params, T)})
            mt_units.append(Unit("multitask", cfg))
    stages("multitask", mt_units, U.multitask)
    multitask = stages.sweep.table(mt_units, ["pool", "size", "k"])
    if len(multitask):
        multitask.insert(3, "subset", [S.subset_key(range(k)) for k in multitask["k"]])
    return multitask


def _theory(stages: _Stages, profile: str, params: dict, ft_units: dict, T: int) -> pd.DataFrame:
    """6. The theory: curvature at the base and task-vector spread of each pool (linear merges only)."""
    th_methods = [m for m in params["methods"] if m in theory_coefficients()]
    th_units = [] if not (params["theory_tokens"] and th_methods) else [
        Unit("theory", {**_pool_config(pool, s, profile, params, ft_units, T), "profile": profile,
                        "methods": th_methods, "tokens_per_domain": params["theory_tokens"],
                        "n_boot": params["theory_bootstrap"], "seed": params["seed"]})
        for pool in params["pools"] for s in params["sizes"]]
    stages("theory", th_units, U.theory)
    return stages.sweep.table(th_units, ["pool", "size"])


def _add_N(dfs, N: dict) -> None:
    """Every table keyed by size gets (or refreshes) its N column, right after size."""
    for df in dfs:
        if len(df):
            if "N" in df.columns:
                df["N"] = df["size"].map(N)
            else:
                df.insert(df.columns.get_loc("size") + 1, "N", df["size"].map(N))


def _fit_units(curves: pd.DataFrame, variance: pd.DataFrame, params: dict) -> tuple[list[Unit], list[Unit]]:
    """The joint law's fit units (every pool, method and fitted scope with enough points) and the
    extrapolation units (the macro scopes)."""
    kinds = params["fit_scopes"]
    macro = [sc for sc in MA.MACRO_SCOPES if sc in kinds]
    fit_units, ex_units = [], []
    for pool, pdoms in params["pools"].items():
        scopes = (macro + ([f"domain:{d}" for d in pdoms] if "domains" in kinds else [])
                  + (["variance", "variance_fpc"] if "variance" in kinds else []))
        for name in params["methods"]:
            for scope in scopes:
                pts = MA.fit_points(curves, variance, name, scope, pool)
                if len(pts) >= len(get_law(MA.LAW).params):
                    fit_units.append(Unit("fit", {"pool": pool, "method": name, "scope": scope, "law": MA.LAW,
                                                  "bootstrap": params["bootstrap"], "seed": params["seed"],
                                                  "r2_min": params["fit_r2_min"], "trust_rule": TRUST_RULE,
                                                  "points": pts[["N", "k", "y"]].to_numpy().tolist()}))
                if scope in macro:
                    ex_units.append(Unit("extrapolate", {
                        "pool": pool, "method": name, "scope": scope, "law": MA.LAW,
                        "bootstrap": params["extrapolation_bootstrap"], "seed": params["seed"],
                        "points": [[r.size, float(r.N), int(r.k), float(r.y)] for r in pts.itertuples()]}))
    return fit_units, ex_units


def _analysis(stages: _Stages, params: dict, merges: pd.DataFrame, theory: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """7. Analysis: curves (with the base), tail fits, joint fits (units), extrapolation, R(k)."""
    curves = MA.curves(merges)
    variance = MA.variance_curves(merges)
    tails, draws = TL.tail_fits(MA.model_losses(merges), params["tail_bootstrap"], params["seed"],
                                params["fit_r2_min"])
    coeffs = theory_coefficients()
    ratio = TL.coefficient_ratio(tails, draws, (coeffs["task_arithmetic"] / coeffs["average"]) ** 2) \
        if {"average", "task_arithmetic"} <= set(params["methods"]) else pd.DataFrame()
    fit_units, ex_units = _fit_units(curves, variance, params)
    frecs = stages("fit", fit_units, U.fit)
    erecs = stages("extrapolate", ex_units, U.extrapolate)
    return {"curves": curves, "variance": variance, "tail_fits": tails,
            "theory_vs_tail": TL.theory_vs_tail(tails, theory), "coefficient_ratio": ratio,
            # the schema even without a fit (a one-size gpu part fits nothing across sizes)
            "fits": fits_frame([r for rec in frecs for r in rec["rows"][0]["fit"]], ["pool", "method", "scope"]),
            "fit_samples": pd.DataFrame([r for rec in frecs for r in rec["rows"][0]["samples"]]),
            "extrapolation": pd.DataFrame([r for rec in erecs for r in rec["rows"]], columns=MA.EXTRAPOLATION_COLUMNS),
            "stopping": MA.stopping_table(curves)}


@exclusive_run
def run(profile: str, backend: str = "local", **overrides) -> ResultStore:
    """Run (or resume) the study at `profile`: the numbered stages below, then the tables, the
    claims and provenance (last)."""
    params = validate_run(sys.modules[__name__], profile, backend, overrides)
    t0 = time.perf_counter()
    stages = _Stages(profile, backend)
    pools, doms = params["pools"], eval_domains(params)
    tb = _testbed()
    for s in params["sizes"]:  # the testbed's base models (trained now if missing)
        tb.base_checkpoint(s, profile)
    T = context_of(params)

    # 1. the pilot and the recipe
    pilot, recipe_table, recipe = _recipe_from(stages("pilot", pilot_units(profile, params), U.pilot), params)
    ft_units, experts = _experts(stages, profile, params, doms, recipe)
    spec, noise = _specialise(stages, profile, params, doms, ft_units, T)
    merge_units, merges, plan_rows = _merges(stages, profile, params, ft_units, T, spec)
    multitask = _multitask(stages, params, ft_units, T)
    theory = _theory(stages, profile, params, ft_units, T)
    _add_N((spec, noise, merges, multitask, theory), dict(zip(experts["size"], experts["N"])))

    tables = {
        "pilot": pilot, "recipe": recipe_table,
        "experts": experts[["size", "N", "domain", "lr", "finetune_tokens", "steps", "train_loss", "wall_s", "unit"]],
        "specialisation": spec[["size", "N", "expert_domain", "eval_domain", "ce", "bpb", "tokens"]],
        "noise": noise[["size", "N", "model", "paired", "eval_domain", "ce", "ce_se", "ce_lo", "ce_hi"]],
        "merges": merges[["pool", "size", "N", "method", "subset", "k", "eval_domain", "in_subset", "ce", "bpb", "seed"]],
        "multitask": multitask[[c for c in MULTITASK_COLUMNS if c in multitask.columns]],
        "subsets": pd.DataFrame(plan_rows), **_analysis(stages, params, merges, theory),
    }
    if len(theory):
        tables["theory"] = theory
    # what `claims merging` re-derives, made by the run too, so a run's stored claims and tables (a
    # gpu lease runs no `claims`) are those the command would give
    from scalinglaws.studies.merging.claims import paper_law_fits
    from scalinglaws.studies.merging.tuned import tuned_table
    tables["paper_law_fits"] = paper_law_fits(tables, params)
    tables["tuned"] = tuned_table(tables["merges"], params["seed"])
    store = ResultStore(STUDY, profile)
    for name, df in tables.items():
        store.write(name, df)
    from scalinglaws.studies.merging.claims import claims
    store.write("claims", claims(tables, profile))
    n_models = sum(len(u.config["subsets"]) for u in merge_units)
    win_tokens = sum(len(v) for v in pools.values()) * params["eval_tokens_per_domain"]
    store.write_run_provenance(provenance(
        params, time.perf_counter() - t0, profile=profile, backend=backend,
        unit_compute_s=round(sum(stages.seconds.values()), 1), merged_models=n_models,
        merge_eval_s_per_model=round(stages.seconds["merge_eval"] / max(1, n_models), 4),
        eval_tokens_per_model=int(win_tokens / len(pools)), recipe=recipe,
        testbed_bases={s: {"unit": base_key(s, profile)} for s in params["sizes"]},
        **{f"{k}_s": v for k, v in stages.seconds.items()}))
    return store


# ---------------------------------------------------------------------------------------------
# experts for other studies


def expert_checkpoints(size: str, domains: list[str], profile: str) -> tuple["Path", dict[str, "Path"]]:
    """(base checkpoint, {domain: expert checkpoint}) fine-tuned with the merging study's recipe at
    `profile` (the pilot's choice; the pilot and the experts are trained now if missing). Any
    domain of `data.ALL_DOMAINS` may be named; the units are the merging study's own (same keys),
    so an expert is trained once for both studies."""
    from scalinglaws.core.validation import check_choice
    tb = _testbed()
    check_choice("size", size, list(Mo.SIZES))
    domains = check_subset("domains", list(domains), list(D.ALL_DOMAINS))
    params = resolve_params(sys.modules[__name__], profile, {})
    base = tb.base_checkpoint(size, profile)
    sweep = Sweep(STUDY, profile)
    _, _, recipe = _recipe_from(sweep.run(pilot_units(profile, params), U.pilot, desc="pilot"), params)
    units = {d: finetune_unit(size, d, profile, params, recipe) for d in domains}
    sweep.run(list(units.values()), U.finetune, desc="finetune", checkpoints=True)
    return base, {d: checkpoint_dir(u) for d, u in units.items()}
