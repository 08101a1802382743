"""The merging study: experts fine-tuned from every base size, merged k at a time by every method,
evaluated on every domain; then the floor + tail law (Wang et al. 2025) fitted over (N, k).

Experts. From the testbed's base model of each size (`testbed.base_checkpoint`), one expert per
domain (M = len(domains)) is fine-tuned on that domain's `finetune` split for
`training.finetune_budget(size, profile)` tokens (5 % of the base's pretraining budget, capped per
profile; cpu: 100K tokens).

Merges. For each size and method, the subsets of experts (sorted index tuples, see
`scalinglaws.studies.merging.subsets`) are all 2^M - 1 subsets for the sizes in `full_enumeration`, otherwise the
prefixes of `n_permutations` diverse permutations. Every merged model (`scalinglaws.merge.merge`,
in memory) is evaluated on a fixed evaluation set: per domain, the first `eval_tokens` tokens of
the test split (whole documents in file order, the last one cut), scored with lm-eval's rolling
windows per document (`evaluation.evaluate_token_lists`). Bits per byte use the exact UTF-8 byte
length of every token (byte-level BPE). Random methods (dare, della*) are seeded per subset with
seed * 2^M + bitmask(subset).

Method variants (table name -> registry method and options, hyperparameters of the paper;
DELLA eps is the full window width):

    average          plain mean                                  lam 1
    task_arithmetic  theta0 + 0.8 (1/k) sum v_i                  lam 0.8
    ties_l0.5        TIES, density 0.2 (per whole model), lam 0.5
    ties_l1          TIES, density 0.2 (per whole model), lam 1
    dare             DARE p 0.2, mean, lam 1
    della            DELLA p 0.5, eps 0.14, elect, lam 1
    della_linear     DELLA without Elect (MAGPRUNE + mean)

Multitask baseline: for the (size, k) points in `multitask`, the base fine-tuned on the union of
the first k domains (equal mixture) for k times the expert budget, evaluated like the merges.

Units (resumable, `Sweep("merging", profile)`): `finetune` (one expert, checkpoint under
`work_root()/checkpoints/finetune/`), `specialise` (base and experts of one size on every domain),
`merge_eval` (one size and method, a chunk of subsets: base and experts loaded once),
`multitask`, `theory` (the curvature prediction of the law's constants for one size,
`scalinglaws.studies.merging.theory.theory_table`, on the linear methods), `fit` (one law fit with its
bootstrap) and `extrapolate` (the extrapolation tests of one curve family), the last two keyed by
their data points.

Tables (`data/results/merging/<profile>/`): experts, specialisation, merges, multitask, theory,
curves, variance, fits, fit_samples, extrapolation, stopping, subsets; provenance last (with the
time spent per stage).
"""
from __future__ import annotations

import copy
import math
import sys
import time

import numpy as np
import pandas as pd

from scalinglaws import data as D
from scalinglaws.studies.merging import analysis as MA
from scalinglaws import models as Mo
from scalinglaws.studies.merging import subsets as S
from scalinglaws.studies.merging.config import METHOD_VARIANTS, theory_coefficients
from scalinglaws.laws import get_law
from scalinglaws.core.results import ResultStore, provenance
from scalinglaws.studies import resolve_params, validate_run
from scalinglaws.core.sweep import Sweep, Unit, checkpoint_dir, find_checkpoint
from scalinglaws.evaluation import EvalSet
from scalinglaws.training import check_schedule, default_device
from scalinglaws.core.validation import ParameterError, check_int, check_subset

STUDY = "merging"

_COMMON = {
    "domains": list(D.DOMAINS), "methods": list(METHOD_VARIANTS), "seed": 0,
    # fine-tuning: a gentler learning rate than pretraining (3e-3), short warmup, cosine decay
    "ft_lr": 1e-3, "ft_warmup_frac": 0.1, "ft_min_lr_frac": 0.1, "ft_weight_decay": 0.0,
    "ft_grad_clip": 1.0,
    "n_permutations": 15, "permutation_candidates": 1000, "chunk_size": 64, "eval_batch_size": 64,
    "bootstrap": 1000, "extrapolation_bootstrap": 0,
    "fit_scopes": ["in_domain", "cross_domain", "held_out", "domains", "variance"],
    # the theory check (scalinglaws.studies.merging.theory): held-out tokens per domain, 0 to skip it
    "theory_tokens": 512, "theory_bootstrap": 200,
}
# what `fit_scopes` may name: the three macro curves, every domain's in-domain curve, the variance
FIT_SCOPES = ("in_domain", "cross_domain", "held_out", "domains", "variance")
PROFILES = {
    # 2 tiny sizes x 5 domains x 2 methods: every subset (31) at the first size, 4 permutations at
    # the second. Seconds on a laptop.
    "smoke": {**_COMMON, "sizes": Mo.ladder("smoke"), "domains": list(D.DOMAINS[:5]),
              "methods": ["average", "della"], "full_enumeration": Mo.ladder("smoke")[:1],
              "n_permutations": 4, "eval_tokens": 128, "eval_doc_tokens": 64, "ft_batch_tokens": 512,
              "chunk_size": 16, "theory_tokens": 64,
              "multitask": [[Mo.ladder("smoke")[0], 2]], "bootstrap": 20,
              "fit_scopes": ["in_domain", "cross_domain", "variance"]},
    # the 5 cpu sizes (30x in N) x 8 domains x 7 methods; all 255 subsets at the smallest size, 15
    # diverse permutations (86 distinct prefix sets) above: 4193 merged models. The evaluation set (4
    # documents x 128 tokens per domain, 4096 tokens per model) bounds the cost; see book/merging.
    "cpu": {**_COMMON, "sizes": Mo.ladder("cpu"), "full_enumeration": ["d32l2"],
            "eval_tokens": 512, "eval_doc_tokens": 128, "ft_batch_tokens": 2048,
            "multitask": [["d32l2", 2], ["d32l2", 4], ["d64l4", 2]]},
    # every gpu size, every subset, a larger evaluation set.
    "gpu": {**_COMMON, "sizes": Mo.ladder("gpu"), "full_enumeration": Mo.ladder("gpu"),
            "eval_tokens": 16384, "eval_doc_tokens": 512, "ft_batch_tokens": 16384, "chunk_size": 255,
            "eval_batch_size": 256, "theory_tokens": 4096,
            "multitask": [[s, k] for s in Mo.ladder("gpu")[:3] for k in (2, 4, 8)]},
}


MULTITASK_COLUMNS = ["size", "N", "k", "subset", "eval_domain", "in_subset", "ce", "bpb", "tokens",
                     "finetune_tokens", "train_loss", "wall_s"]


def validate(params: dict) -> dict:
    params = dict(params)
    params["sizes"] = check_subset("sizes", params["sizes"], list(Mo.SIZES))
    params["domains"] = check_subset("domains", params["domains"], list(D.DOMAINS))
    params["methods"] = check_subset("methods", params["methods"], list(METHOD_VARIANTS))
    if len(params["domains"]) < 2:
        raise ParameterError(f"domains={params['domains']} must name at least 2 domains (one expert each)")
    fe = params["full_enumeration"]
    if isinstance(fe, str) or not isinstance(fe, (list, tuple)):
        raise ParameterError(f"full_enumeration={fe!r} must be a list of sizes (may be empty)")
    bad = [s for s in fe if s not in params["sizes"]]
    if bad:
        raise ParameterError(f"full_enumeration has size(s) {bad} that are not in sizes={params['sizes']}")
    check_int("seed", params["seed"], minimum=0)
    check_schedule(params, prefix="ft_", sizes=params["sizes"])
    M = len(params["domains"])
    check_int("n_permutations", params["n_permutations"], minimum=2, maximum=math.factorial(M))
    check_int("permutation_candidates", params["permutation_candidates"], minimum=1)
    check_int("chunk_size", params["chunk_size"], minimum=1)
    check_int("eval_batch_size", params["eval_batch_size"], minimum=1)
    check_int("eval_tokens", params["eval_tokens"], minimum=16)
    if params["eval_doc_tokens"] is not None:
        check_int("eval_doc_tokens", params["eval_doc_tokens"], minimum=1)
    check_int("theory_tokens", params["theory_tokens"], minimum=0)
    check_int("bootstrap", params["bootstrap"], minimum=0)
    check_int("theory_bootstrap", params["theory_bootstrap"], minimum=0)
    check_int("extrapolation_bootstrap", params["extrapolation_bootstrap"], minimum=0)
    params["fit_scopes"] = check_subset("fit_scopes", params["fit_scopes"], FIT_SCOPES)
    mt = params["multitask"]
    if not isinstance(mt, (list, tuple)):
        raise ParameterError(f"multitask={mt!r} must be a list of [size, k] pairs")
    for point in mt:
        if not isinstance(point, (list, tuple)) or len(point) != 2:
            raise ParameterError(f"multitask point {point!r} must be a [size, k] pair")
        if point[0] not in params["sizes"]:
            raise ParameterError(f"multitask point {list(point)}: size {point[0]!r} is not in sizes={params['sizes']}")
        check_int("multitask k", point[1], minimum=1, maximum=M)
    from scalinglaws.merge import resolve_options
    for name in params["methods"]:
        method, opts = METHOD_VARIANTS[name]
        resolve_options(method, opts)
    return params


# ---------------------------------------------------------------------------------------------
# the fixed evaluation set


_EVAL_CACHE: dict = {}


def eval_set(config: dict) -> EvalSet:
    """The evaluation set of an `eval` unit config (cached: every unit of a run shares it)."""
    key = (tuple(config["domains"]), config["eval_tokens"], config["doc_tokens"])
    if key not in _EVAL_CACHE:
        _EVAL_CACHE.clear()
        _EVAL_CACHE[key] = EvalSet(*key)
    return _EVAL_CACHE[key]


def _eval_config(params: dict) -> dict:
    return {"domains": params["domains"], "eval_tokens": params["eval_tokens"],
            "doc_tokens": params["eval_doc_tokens"], "data": D.checksums(params["domains"], "test"),
            "batch_size": params["eval_batch_size"]}


# ---------------------------------------------------------------------------------------------
# units


def _testbed():
    from scalinglaws.studies import testbed
    return testbed


def base_key(size: str, profile: str) -> str:
    tb = _testbed()
    return tb.pretrain_unit(size, profile, resolve_params(tb, profile, {})).key


def finetune_unit(size: str, domain: str, profile: str, params: dict) -> Unit:
    from scalinglaws.training import finetune_budget
    keys = ("seed", "ft_lr", "ft_warmup_frac", "ft_min_lr_frac", "ft_weight_decay", "ft_grad_clip",
            "ft_batch_tokens")
    return Unit("finetune", {"size": size, "domain": domain, "base": base_key(size, profile),
                             "tokens": finetune_budget(size, profile),
                             "data": D.checksums([domain], "finetune"), **{k: params[k] for k in keys}})


def _train_from_base(config: dict, arrays, tokens: int):
    from scalinglaws.training import train
    model = Mo.load_checkpoint(find_checkpoint(config["base"]), device=default_device())
    model.train()
    res = train(model, arrays, tokens=tokens, batch_tokens=config["ft_batch_tokens"], lr=config["ft_lr"],
                warmup_frac=config["ft_warmup_frac"], min_lr_frac=config["ft_min_lr_frac"],
                weight_decay=config["ft_weight_decay"], grad_clip=config["ft_grad_clip"],
                seed=config["seed"], device=default_device(), progress=False,
                weights={d: 1.0 for d in arrays})
    return model, res


def _finetune(config: dict) -> dict:
    from scalinglaws.data.tokenizer import load_tokenizer
    d = config["domain"]
    model, res = _train_from_base(config, {d: D.token_ids(d, "finetune")}, config["tokens"])
    ckpt = checkpoint_dir(Unit("finetune", config))
    Mo.save_checkpoint(model.cpu(), ckpt, meta={"unit": config, "train_loss": res.final_loss},
                       tokenizer=load_tokenizer())
    return {"size": config["size"], "N": Mo.count_params(model)["non_embedding"], "domain": d,
            "finetune_tokens": res.tokens, "steps": res.steps, "train_loss": res.final_loss,
            "wall_s": res.wall_s}


def _ensure_experts(sweep: Sweep, units: list[Unit], backend: str) -> list[dict]:
    return sweep.run(units, _finetune, backend=backend, desc="finetune", checkpoints=True)


def _states(config: dict):
    """(work model, base state, expert states) of a unit, loaded once."""
    base = Mo.load_checkpoint(find_checkpoint(config["base"]), device=default_device())
    work = copy.deepcopy(base)  # the model merged states are loaded into (read the base once)
    experts = [Mo.load_checkpoint(find_checkpoint(k), device=default_device()).state_dict() for k in config["experts"]]
    return work, base.state_dict(), experts


def _specialise(config: dict) -> list[dict]:
    """The base and every expert on every domain's evaluation set."""
    ev = eval_set(config["eval"])
    bs = config["eval"]["batch_size"]
    work, base, experts = _states(config)
    rows = [{"expert_domain": "base", **r} for r in ev.evaluate(work, bs)]
    for d, state in zip(config["domains"], experts):
        work.load_state_dict(state)
        rows += [{"expert_domain": d, **r} for r in ev.evaluate(work, bs)]
    return rows


def subset_seed(seed: int, subset, M: int) -> int:
    """seed * 2^M + bitmask(subset): a distinct, reproducible seed for every subset."""
    return seed * 2 ** M + S.bitmask(subset)


def _merge_eval(config: dict) -> list[dict]:
    """Merge every subset of the chunk in memory and evaluate it on every domain."""
    from scalinglaws.merge import merge
    ev = eval_set(config["eval"])
    work, base, experts = _states(config)
    M = len(config["experts"])
    rows = []
    for key in config["subsets"]:
        subset = S.parse_subset(key)
        seed = subset_seed(config["seed"], subset, M)
        merged = merge(base, [experts[i] for i in subset], config["registry_method"], seed=seed,
                       **config["options"])
        work.load_state_dict(merged)
        for r in ev.evaluate(work, config["eval"]["batch_size"]):
            d = r["eval_domain"]
            rows.append({"subset": key, "k": len(subset), "eval_domain": d,
                         "in_subset": config["domains"].index(d) in subset, "ce": r["ce"],
                         "bpb": r["bpb"], "seed": seed})
    return rows


def _multitask(config: dict) -> list[dict]:
    arrays = {d: D.token_ids(d, "finetune") for d in config["train_domains"]}
    model, res = _train_from_base(config, arrays, config["tokens"])
    ev = eval_set(config["eval"])
    return [{**r, "in_subset": r["eval_domain"] in config["train_domains"], "train_loss": res.final_loss,
             "wall_s": res.wall_s, "finetune_tokens": res.tokens}
            for r in ev.evaluate(model, config["eval"]["batch_size"])]


def _theory(config: dict) -> list[dict]:
    """The theory check of one size (`scalinglaws.studies.merging.theory.theory_table`) on its experts."""
    from scalinglaws.studies.merging.theory import theory_table
    ckpts = {config["size"]: (find_checkpoint(config["base"]), [find_checkpoint(k) for k in config["experts"]])}
    df = theory_table(config["profile"], checkpoints=ckpts, methods=config["methods"],
                      tokens_per_domain=config["tokens_per_domain"], n_boot=config["n_boot"],
                      seed=config["seed"], domains=config["domains"])
    return df.drop(columns=["size"]).to_dict("records")


def _extrapolate(config: dict) -> list[dict]:
    pts = pd.DataFrame(config["points"], columns=["size", "N", "k", "y"])
    return MA.extrapolate_points(pts, config["method"], config["scope"], config["bootstrap"], config["seed"])


def _fit(config: dict) -> dict:
    pts = pd.DataFrame(config["points"], columns=["N", "k", "y"])
    scale = MA.y_scale(pts["y"])
    res = MA.fit_law(pts, bootstrap=config["bootstrap"], seed=config["seed"], scale=scale)
    return {"fit": MA.fit_rows(config["method"], config["scope"], res, scale),
            "samples": MA.sample_rows(config["method"], config["scope"], res, scale)}


def subset_plan(size: str, params: dict) -> tuple[str, list[tuple]]:
    """(scheme, subsets) of one size."""
    M = len(params["domains"])
    scheme = "all" if size in params["full_enumeration"] else "permutations"
    return scheme, S.plan_subsets(M, scheme, params["n_permutations"], params["permutation_candidates"],
                                  params["seed"])


# ---------------------------------------------------------------------------------------------
# the study


def data_files(params: dict) -> list[tuple[str, str]]:
    """The corpus files a run reads: the testbed's (its base models are trained if missing), the
    fine-tuning split of every expert's domain and the test split of the evaluation set."""
    from scalinglaws.studies import testbed
    base = [(d, "pretrain") for d in testbed.PROFILES["cpu"]["domains"]]
    return base + [(d, s) for s in ("finetune", "test") for d in params["domains"]]


def run(profile: str, backend: str = "local", **overrides) -> ResultStore:
    params = validate_run(sys.modules[__name__], profile, backend, overrides)
    t0 = time.perf_counter()
    sweep = Sweep(STUDY, profile)
    domains = params["domains"]
    tb = _testbed()
    for s in params["sizes"]:  # the testbed's base models (trained now if missing)
        tb.base_checkpoint(s, profile)

    # experts
    ft_units = {(s, d): finetune_unit(s, d, profile, params) for s in params["sizes"] for d in domains}
    ft = _ensure_experts(sweep, list(ft_units.values()), backend)
    experts = pd.DataFrame([{**rec["rows"][0], "unit": rec["key"]} for rec in ft])
    N = dict(zip(experts["size"], experts["N"]))
    ev_cfg = _eval_config(params)

    def model_config(s):
        return {"size": s, "base": base_key(s, profile), "domains": domains,
                "experts": [ft_units[(s, d)].key for d in domains], "eval": ev_cfg}

    spec_units = [Unit("specialise", model_config(s)) for s in params["sizes"]]
    sprecs = sweep.run(spec_units, _specialise, backend=backend, desc="specialise")
    spec = sweep.table(spec_units, ["size"])

    # merges
    merge_units, plan_rows = [], []
    for s in params["sizes"]:
        scheme, subsets = subset_plan(s, params)
        keys = [S.subset_key(x) for x in subsets]
        plan_rows += [{"size": s, "scheme": scheme, "subset": key, "k": len(x)} for key, x in zip(keys, subsets)]
        for name in params["methods"]:
            method, opts = METHOD_VARIANTS[name]
            for i in range(0, len(keys), params["chunk_size"]):
                merge_units.append(Unit("merge_eval", {
                    **model_config(s), "method": name, "registry_method": method, "options": opts,
                    "seed": params["seed"], "subsets": keys[i:i + params["chunk_size"]]}))
    mrecs = sweep.run(merge_units, _merge_eval, backend=backend, desc="merge_eval")
    merges = sweep.table(merge_units, ["size", "method"])

    # multitask baseline: the first k domains, k expert budgets
    from scalinglaws.training import finetune_budget
    mt_units = []
    for s, k in params["multitask"]:
        cfg = {**finetune_unit(s, domains[0], profile, params).config}
        cfg.pop("domain")
        cfg.update({"k": k, "train_domains": domains[:k], "tokens": k * finetune_budget(s, profile),
                    "data": D.checksums(domains[:k], "finetune"), "eval": ev_cfg})
        mt_units.append(Unit("multitask", cfg))
    mtrecs = sweep.run(mt_units, _multitask, backend=backend, desc="multitask")
    multitask = sweep.table(mt_units, ["size", "k"])
    if len(multitask):
        multitask.insert(2, "subset", [S.subset_key(range(k)) for k in multitask["k"]])

    # theory check: curvature at the base and task-vector spread (linear merges only)
    th_methods = [m for m in params["methods"] if m in theory_coefficients()]
    th_units = [] if not (params["theory_tokens"] and th_methods) else [
        Unit("theory", {**model_config(s), "profile": profile, "methods": th_methods,
                        "tokens_per_domain": params["theory_tokens"], "n_boot": params["theory_bootstrap"],
                        "seed": params["seed"]}) for s in params["sizes"]]
    threcs = sweep.run(th_units, _theory, backend=backend, desc="theory")
    theory = sweep.table(th_units, ["size"])

    # analysis: curves, fits (units, so a resumed run does not refit), extrapolation, R(k)
    for df in (spec, merges, multitask):
        if len(df):
            df.insert(1, "N", df["size"].map(N))
    if len(theory) and "N" in theory.columns:
        theory["N"] = theory["size"].map(N)
    curves = MA.curves(merges)
    variance = MA.variance_curves(merges)
    kinds = params["fit_scopes"]
    macro = [sc for sc in MA.MACRO_SCOPES if sc in kinds]
    scopes = (macro + ([f"domain:{d}" for d in domains] if "domains" in kinds else [])
              + (["variance", "variance_fpc"] if "variance" in kinds else []))
    fit_units, ex_units = [], []
    for name in params["methods"]:
        for scope in scopes:
            pts = MA.fit_points(curves, variance, name, scope)
            if len(pts) >= len(get_law(MA.LAW).params):
                fit_units.append(Unit("fit", {"method": name, "scope": scope, "bootstrap": params["bootstrap"],
                                              "seed": params["seed"],
                                              "points": pts[["N", "k", "y"]].to_numpy().tolist()}))
            if scope in macro:
                ex_units.append(Unit("extrapolate", {
                    "method": name, "scope": scope, "bootstrap": params["extrapolation_bootstrap"],
                    "seed": params["seed"],
                    "points": [[r.size, float(r.N), int(r.k), float(r.y)] for r in pts.itertuples()]}))
    frecs = sweep.run(fit_units, _fit, backend=backend, desc="fit")
    fits = pd.DataFrame([r for rec in frecs for r in rec["rows"][0]["fit"]])
    samples = pd.DataFrame([r for rec in frecs for r in rec["rows"][0]["samples"]])
    erecs = sweep.run(ex_units, _extrapolate, backend=backend, desc="extrapolate")
    extrap = pd.DataFrame([r for rec in erecs for r in rec["rows"]], columns=MA.EXTRAPOLATION_COLUMNS)
    stopping = MA.stopping_table(curves)

    store = ResultStore(STUDY, profile)
    store.write("experts", experts[["size", "N", "domain", "finetune_tokens", "steps", "train_loss",
                                    "wall_s", "unit"]])
    store.write("specialisation", spec[["size", "N", "expert_domain", "eval_domain", "ce", "bpb", "tokens"]])
    store.write("merges", merges[["size", "N", "method", "subset", "k", "eval_domain", "in_subset", "ce",
                                  "bpb", "seed"]])
    if len(theory):
        store.write("theory", theory)
    store.write("multitask", multitask[[c for c in MULTITASK_COLUMNS if c in multitask.columns]])
    store.write("subsets", pd.DataFrame(plan_rows))
    store.write("curves", curves)
    store.write("variance", variance)
    store.write("fits", fits)
    store.write("fit_samples", samples)
    store.write("extrapolation", extrap)
    store.write("stopping", stopping)
    walls = [r["wall_s"] for r in ft + sprecs + mrecs + mtrecs + threcs + frecs + erecs]
    n_models = sum(len(u.config["subsets"]) for u in merge_units)
    merge_s = sum(r["wall_s"] for r in mrecs)
    store.write_provenance(provenance(
        params, time.perf_counter() - t0, profile=profile, backend=backend,
        unit_compute_s=round(sum(walls), 1), merged_models=n_models,
        merge_eval_s_per_model=round(merge_s / max(1, n_models), 4),
        eval_tokens_per_model=int(sum(eval_set(ev_cfg).tokens.values())),
        finetune_s=round(sum(r["wall_s"] for r in ft), 1), merge_eval_s=round(merge_s, 1),
        multitask_s=round(sum(r["wall_s"] for r in mtrecs), 1),
        theory_s=round(sum(r["wall_s"] for r in threcs), 1),
        fit_s=round(sum(r["wall_s"] for r in frecs + erecs), 1)))
    return store


# ---------------------------------------------------------------------------------------------
# experts for other studies


def expert_checkpoints(size: str, domains: list[str], profile: str) -> tuple["Path", dict[str, "Path"]]:
    """(base checkpoint, {domain: expert checkpoint}) fine-tuned with the merging study's recipe at
    `profile` (trained now if missing). Any domain of `data.ALL_DOMAINS` may be named (the recipe is
    the profile's: `finetune_unit` with the merging study's default parameters).

    Minimal form (della-study branch): the profile's fine-tuning recipe of this module, shared
    units with the merging study itself (same keys), so an expert is trained once."""
    from scalinglaws.core.validation import check_choice
    tb = _testbed()
    check_choice("size", size, list(Mo.SIZES))
    domains = check_subset("domains", list(domains), list(D.ALL_DOMAINS))
    params = resolve_params(sys.modules[__name__], profile, {})
    base = tb.base_checkpoint(size, profile)
    units = {d: finetune_unit(size, d, profile, params) for d in domains}
    _ensure_experts(Sweep(STUDY, profile), list(units.values()), "local")
    return base, {d: checkpoint_dir(u) for d, u in units.items()}
