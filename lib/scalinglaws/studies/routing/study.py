"""The routing study (Clark et al. 2022): dense ladder x experts x routers, one token budget, the
unified routing law, effective parameter counts, N_cutoff, extrapolation and experts as resources.

Grid. For every dense size and E in `experts` (1 must be among them): E = 1 is the dense model
(`models.build_model`, trained once and shared by every router), E > 1 the routed model of that
size (`scalinglaws.models.routed`: every other block's MLP becomes E top-1 experts of the dense MLP's
shape, so active parameters and FLOPs per token equal the dense model's) for every router in
`routers` (sbase, rlr, hash, switch; `scalinglaws.models.routers`). Every model of a profile trains on the
same number of tokens (`tokens`, Clark's protocol) with the testbed's pretraining recipe (all
20 domains, equal domain weights, AdamW, warmup + cosine, the testbed's batch and, with
lr="testbed", the learning rate its stored sweep chose for each size), and is evaluated on the
testbed's windows (`evaluation.uniform_windows` over every domain's test split, `eval_tokens` per
domain, bootstrap standard errors); L = the mean CE over domains (nats/token).
Routing statistics are recorded during training (accumulated over all training tokens) and at
evaluation (per domain): tokens per expert, load max/mean, dropped tokens (0: no capacity limit),
router entropy, auxiliary loss.

Units (resumable, `SW.Sweep("routing", profile)`): `dense` and `routed` (train one model, safetensors
checkpoint), `eval` (one checkpoint on every domain, with its expert usage per domain) and
`analysis` (every fit and derived table, keyed by the measured losses, so a rerun does no work).

Tables (`data/results/routing/<profile>/`): models, curves, ce, ce_documents (whole documents, the
lm-eval-comparable CE), loss, routing, expert_usage, fits, fit_samples (bootstrap draws),
effective_params, n_cutoff, extrapolation, step_check, claims, resources, resource_fits; provenance last.

Step check (`step_check` = {"size": s, "experts": E, "batch_tokens": B}, or None): the dense model
and every router's E-expert model of size s are trained again on the same tokens in the smaller
batch B, i.e. more optimiser steps, and scored on the same windows (table `step_check`; these models
stay out of the grid and its fits). It asks what the testbed's step check asked of the dense
ladder: is a router that trails dense short of updates (its gap to dense shrinks with more steps) or
is routing worse at this size whatever the steps (the gap stays)?

Analysis (pure functions of the tables, tested on synthetic data):

- `fit_laws`: per router, the routed law (law "routing", log10 L = a log10 N + b log10 Ehat +
  c log10 N log10 Ehat + d, Ehat with the inner ^-1, `laws.e_hat`) on the dense points (E = 1)
  plus that router's points, and the dense law (law "routing_dense", log10 L = a log10 N + d) on
  the dense points, each with bootstrap intervals (`fitting.fit`).
- `effective_params_table`: N_bar(N, E) from the fits (`laws.effective_params`) and from the
  measured loss through the dense fit, N_bar = 10^((log10 L - d) / a).
- `n_cutoff_table`: N_cutoff = 10^(-b/c) from the unrounded point estimate, its 95% interval from
  the bootstrap draws of -b/c (percentiles of log10 N_cutoff), and the fraction of draws with c > 0.
- `extrapolation_table`: fit on the smaller sizes, predict the largest; fit on E <= max_fit_experts
  (if no larger E was run: all but the largest E), predict the rest (`fitting.extrapolate`).
- `claims` (in `claims.py`, from the stored tables, written last): Clark's claims in the schema of
  `scalinglaws.core.claims`, each "holds", "refuted", "inconclusive" or "not testable".
- `resource_table` / `resource_fits`: per domain, the share of its tokens each expert gets; the
  number of experts serving the domain n = exp(entropy of that share), averaged over routed blocks;
  and the within-domain slope gamma of log CE_d on log n (log CE_d = alpha_d - gamma log n):
  "loss falls like 1/(experts serving it)" means gamma = 1.
"""
from __future__ import annotations

import math
import sys
import time

import numpy as np
import pandas as pd

import torch

from scalinglaws import data as D
from scalinglaws import evaluation as EV
from scalinglaws import fitting as F
from scalinglaws import laws as LW
from scalinglaws import models as M
from scalinglaws.core import results as RES
from scalinglaws.models import routed as RT
from scalinglaws.models import routers as R
from scalinglaws.studies.routing.resources import resource_fits, resource_table, share_growth  # noqa: F401 (API)
from scalinglaws import studies as ST
from scalinglaws.core import sweep as SW
from scalinglaws.data import tokenizer as TK
from scalinglaws import training as T
from scalinglaws.core import validation as V

STUDY = "routing"
DENSE = "dense"
LAW, DENSE_LAW = "routing", "routing_dense"

_COMMON = {"seed": 0, "lr": 3e-3, "warmup_frac": 0.05, "min_lr_frac": 0.1, "weight_decay": 0.1,
           "grad_clip": 1.0, "domains": list(D.ALL_DOMAINS), "routers": list(R.ROUTERS), "routed_every": 2,
           "router_options": {}, "experts_implementation": None, "compile": False,
           "eval_tokens": 8192, "eval_seed": 0, "eval_bootstrap": 200, "eval_docs": 4,
           "eval_batch_size": 32, "bootstrap": 1000, "fit_maxiter": 500, "extrapolation_max_experts": 8,
           "step_check": None, "parts": None, "part": None, "unit_records": "work"}
# parameters that say how a run is carried out, not what it computes: a changed default does not
# make stored results stale (`studies.profile_drift` skips them)
RUN_ONLY = ("parts", "part", "unit_records")
UNIT_RECORDS = ("work", "results")
# the regime pilot's choice (table regime_pilot, d32l2 E = 8, 524,288 tokens in 512 steps of 1,024;
# entropy / log E at evaluation, gap to dense in nats): plain S-BASE 0.96, -0.11; Switch 0.99, +0.18.
# router_lr_mult 10: S-BASE 0.23, -0.19 (its best); Switch 0.90, +0.04. The unit gate alone helps
# Switch's loss (-0.09) but not its entropy (0.98), and with the multiplier collapses S-BASE (0.05,
# +0.16). No setting took Switch below 0.8 at this budget; the grid's is 4x larger.
ROUTER_OPTIONS_CPU = {"router_lr_mult": 10.0}
# the cpu rerun's parts, each under `parts.PART_BUDGET_S` of predicted units (`routing-parts`)
# Predicted (`routing-parts`, from the stored run's rates at commit 03a56a7): p1 10.0K, p2 7.7K, p3
# 10.1K CPU-s of units; then the final run (no part): the step check (>= 2.0K) and the analysis (0.4K).
PARTS_CPU = {"p1": {"sizes": ["d32l2", "d48l3"], "experts": [1, 2, 4, 8, 16]},
             "p2": {"sizes": ["d64l4"], "experts": [1, 2, 4, 8, 16]},
             "p3": {"sizes": ["d96l4"], "experts": [1, 2, 4, 8, 16]}}
PROFILES = {
    # 2 tiny sizes x E in {1, 2, 4} x 4 routers = 18 models of 4 steps each; ~0.3 s per model
    # with one torch thread (the test suite's setting), 30-40 s for the whole profile.
    "smoke": {**_COMMON, "sizes": M.ladder("smoke"), "experts": [1, 2, 4], "tokens": 4096,
              "batch_tokens": 1024, "domains": ["code", "scripture", "algebra", "legal"], "eval_tokens": 256,
              "eval_bootstrap": 20, "bootstrap": 20, "fit_maxiter": 100,
              "step_check": {"size": M.ladder("smoke")[-1], "experts": 2, "batch_tokens": 512}},
    # Issue 27's regime. The stored results (commit 03a56a7: 68 models of 786,432 tokens in 384 steps
    # of 2,048, no router options; 10.4K CPU-s) left the learned routers near uniform (eval entropy /
    # log E at E = 16: S-BASE 0.93, Switch 0.97) and the stored step check said they were short of
    # steps. Now: the 4 smallest cpu sizes x E in {1, 2, 4, 8, 16} x (4 routers + the Hash control
    # `vocab`) = 84 models, each on the testbed's budget (2,097,152 tokens) in 2,048 steps of 1,024
    # (the step check's batch), each size at the testbed's chosen rate, with the router options the
    # regime pilot chose (table regime_pilot, d32l2 E = 8: `pilot.SETTINGS`). The step check halves
    # the batch again. Run in parts (`parts.part_costs` prices each from the stored run's measured
    # rates; `python -m scalinglaws routing-parts` prints them with their commands), unit records
    # committed beside the tables, so a part resumes on a new machine from git.
    "cpu": {**_COMMON, "sizes": M.ladder("cpu")[:4], "experts": [1, 2, 4, 8, 16], "tokens": 2_097_152,
            "batch_tokens": 1024, "lr": "testbed", "routers": [*R.ROUTERS, "vocab"],
            "router_options": ROUTER_OPTIONS_CPU, "unit_records": "results", "parts": PARTS_CPU,
            # are the learned routers still short of updates? d64l4 dense + every router at E = 8
            # in 4,096 steps of 512 tokens (trained by the final run, after the parts)
            "step_check": {"size": "d64l4", "experts": 8, "batch_tokens": 512}},
    # 4 gpu sizes x E in {1, 2, 4, 8, 16, 32} x 4 routers = 84 models of 30M tokens (about 4
    # epochs of the mixture; GPU-NOTES: one fixed 30M budget gives a loss that falls with N). H100,
    # eager dense 2.25M / 1.94M / 1.59M / 1.06M tok/s (GPU-NOTES) and routed ~0.6x dense with
    # grouped_mm experts (Mixtral routing every block: 0.53M at d256l8 E=8 vs 1.10M dense):
    # 30M x (1/dense + 20/routed) per size = 460 + 530 + 650 + 970 s ~ 45 min of training, plus
    # ~3 min of evaluation; every unit < 2 min, so the sweep resumes across 10-minute commands.
    # lr="testbed" needs the testbed's gpu sweep first: `scripts/gpu_study.sh testbed routing`
    # (its archive restores data/results/testbed/gpu for later commands).
    "gpu": {**_COMMON, "sizes": M.ladder("gpu")[:4], "experts": [1, 2, 4, 8, 16, 32], "tokens": 30_015_488,
            "batch_tokens": 65536, "lr": "testbed", "eval_tokens": 32768, "eval_batch_size": 64,
            "experts_implementation": "grouped_mm"},
}
_SCHEDULE = ("seed", "warmup_frac", "min_lr_frac", "weight_decay", "grad_clip", "batch_tokens", "domains")
LR_FROM_TESTBED = "testbed"


class RoutedTrainingDiverged(RuntimeError):
    """A model of the routing grid diverged (NaN/inf loss); names the router and the unit."""


def _check_experts(values) -> list[int]:
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)):
        raise V.ParameterError(f"experts={values!r} must be a list of integers >= 1 including 1 (the dense model)")
    bad = [v for v in values if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1]
    if bad:
        raise V.ParameterError(f"experts has invalid value(s) {bad}; allowed: integers >= 1 (1 = the dense model)")
    if len(set(values)) != len(values):
        raise V.ParameterError(f"experts has duplicates: {list(values)}")
    if 1 not in values or len(values) < 2:
        raise V.ParameterError(f"experts={list(values)} must include 1 (the dense model) and at least one E > 1")
    return sorted(int(v) for v in values)


def _check_step_check(params: dict) -> None:
    sc = params["step_check"]
    if sc is None:
        return
    if not isinstance(sc, dict) or set(sc) != {"size", "experts", "batch_tokens"}:
        raise V.ParameterError(f"step_check={sc!r} must be null or {{\"size\": s, \"experts\": E, \"batch_tokens\": B}}")
    # any known size and E >= 2, not only the grid's: overriding `sizes` or `experts` must not invalidate
    # the profile's check (one outside the grid has no grid model to compare with: `step_check_units` skips it)
    V.check_choice("step_check size", sc["size"], list(M.SIZES))
    V.check_int("step_check experts", sc["experts"], minimum=2)
    bt = V.check_int("step_check batch_tokens", sc["batch_tokens"], minimum=64, maximum=params["batch_tokens"] - 1)
    T.check_schedule({**params, "lr": 1e-3, "batch_tokens": bt}, prefix="", sizes=[sc["size"]])


def data_files(params: dict) -> list[tuple[str, str]]:
    """The corpus files a run reads: the pretraining mixture and the test splits it evaluates on."""
    return [(d, s) for s in ("pretrain", "test") for d in params["domains"]]


def validate(params: dict) -> dict:
    for k in RUN_ONLY:  # a stored config from before these existed (e.g. the seeds replicates re-validate it)
        params.setdefault(k, _COMMON[k])
    V.check_subset("sizes", params["sizes"], list(M.SIZES))
    V.check_subset("routers", params["routers"], list(RT.KINDS))
    V.check_subset("domains", params["domains"], list(D.ALL_DOMAINS))
    params["experts"] = _check_experts(params["experts"])
    V.check_int("seed", params["seed"], minimum=0)
    lr = params["lr"]
    if isinstance(lr, dict):
        missing = [s for s in params["sizes"] if s not in lr]
        if missing:
            raise V.ParameterError(f"lr has no rate for size(s) {missing}; give one per size of {params['sizes']}")
        for s in params["sizes"]:
            V.check_float(f"lr[{s!r}]", lr[s], 0.0, 1.0, open_interval=True)
    elif isinstance(lr, str):
        if lr != LR_FROM_TESTBED:
            raise V.ParameterError(f"lr={lr!r} must be a float in (0, 1), a dict size -> rate, or "
                                   f"{LR_FROM_TESTBED!r} (the rate the testbed's stored sweep chose for each size)")
    T.check_schedule({**params, "lr": 1e-3 if isinstance(lr, (str, dict)) else lr}, sizes=params["sizes"])
    V.check_int("tokens", params["tokens"], minimum=params["batch_tokens"])
    V.check_int("routed_every", params["routed_every"], minimum=1)
    opts = params["router_options"]
    if not isinstance(opts, dict):
        raise V.ParameterError(f"router_options={opts!r} must be a dict (keys: sinkhorn_tol, sinkhorn_max_iter, "
                             "sbase_assignment, balance_coef, z_coef, rl_coef)")
    for r in params["routers"]:  # validates option names and values (no model is built)
        RT.routed_config(params["sizes"][0], 2, r, routed_every=params["routed_every"], **opts)
    if params["experts_implementation"] is not None:
        V.check_choice("experts_implementation", params["experts_implementation"], RT.EXPERTS_IMPLEMENTATIONS)
    if not isinstance(params["compile"], bool):
        raise V.ParameterError(f"compile={params['compile']!r} must be True or False")
    V.check_int("eval_tokens", params["eval_tokens"], minimum=1)
    V.check_int("eval_seed", params["eval_seed"], minimum=0)
    V.check_int("eval_bootstrap", params["eval_bootstrap"], minimum=2)
    V.check_int("eval_docs", params["eval_docs"], minimum=1)
    V.check_int("eval_batch_size", params["eval_batch_size"], minimum=1)
    V.check_int("bootstrap", params["bootstrap"], minimum=0)
    V.check_int("fit_maxiter", params["fit_maxiter"], minimum=1)
    V.check_int("extrapolation_max_experts", params["extrapolation_max_experts"], minimum=1)
    _check_step_check(params)
    V.check_choice("unit_records", params["unit_records"], UNIT_RECORDS)
    _check_parts(params)
    return params


def _check_parts(params: dict) -> None:
    """parts: null (one part, the whole grid) or {name: {"sizes": [...], "experts": [...]}} such that
    every training unit of the grid falls in exactly one part; part: null (everything, then the
    tables) or one of the names (its units only, no tables)."""
    parts, part = params["parts"], params["part"]
    if parts is None:
        if part is not None:
            raise V.ParameterError(f"part={part!r}: this profile defines no parts (parts=null); leave part unset")
        return
    if not isinstance(parts, dict) or not parts:
        raise V.ParameterError(f"parts={parts!r} must be null or a non-empty dict name -> "
                               "{\"sizes\": [...], \"experts\": [...]}")
    for name, sel in parts.items():
        if not isinstance(sel, dict) or set(sel) != {"sizes", "experts"}:
            raise V.ParameterError(f"parts[{name!r}]={sel!r} must be {{\"sizes\": [...], \"experts\": [...]}}")
        V.check_subset(f"parts[{name!r}] sizes", sel["sizes"], params["sizes"])
        V.check_subset(f"parts[{name!r}] experts", sel["experts"], params["experts"])
    owners: dict[tuple, list[str]] = {}
    for name, sel in parts.items():
        for s in sel["sizes"]:
            for E in sel["experts"]:
                owners.setdefault((s, E), []).append(name)
    cells = [(s, E) for s in params["sizes"] for E in params["experts"]]
    orphan = [c for c in cells if c not in owners]
    twice = {c: n for c, n in owners.items() if len(n) > 1}
    if orphan or twice:
        raise V.ParameterError(f"parts must cover every (size, experts) of the grid exactly once; "
                               f"uncovered {orphan}, in several parts {twice}")
    if part is not None:
        V.check_choice("part", part, list(parts))

def learning_rates(params: dict, profile: str) -> dict[str, float]:
    """{size: peak learning rate}. lr="testbed" reads the rate the testbed's stored sweep chose
    for each size at this profile (`ladder` table), so dense and routed models train at the
    testbed's tuned rates; a missing table or size is one clear error before any compute."""
    lr, sizes = params["lr"], params["sizes"]
    if isinstance(lr, dict):
        return {s: float(lr[s]) for s in sizes}
    if not isinstance(lr, str):
        return {s: float(lr) for s in sizes}
    store = RES.ResultStore("testbed", profile)
    hint = f"run `python -m scalinglaws reproduce testbed --profile {profile}` first, or pass lr as a float"
    if not store.has("ladder"):
        raise V.ParameterError(f"lr='testbed' needs the testbed's stored ladder at profile {profile!r}; {hint}")
    chosen = store.read("ladder").set_index("size")["lr"]
    missing = [s for s in sizes if s not in chosen.index]
    if missing:
        raise V.ParameterError(f"lr='testbed': the testbed's {profile} ladder has no size(s) {missing}; {hint}")
    return {s: float(chosen[s]) for s in sizes}


def validate_stored(params: dict, profile: str) -> None:
    """The checks that read stored tables (`studies.validate_run` calls it before any lock or compute):
    lr='testbed' needs the testbed's ladder at this profile, with every size."""
    learning_rates(params, profile)


# ---------------------------------------------------------------------------------------------
# units


def _arch(size: str) -> dict:
    """The dense architecture of a size, as in the testbed's unit keys."""
    arch = M.model_config(size).to_diff_dict()
    arch.pop("transformers_version", None)
    return arch


def _lr_of(params: dict, size: str) -> float:
    """The peak learning rate of a size: resolved by `run()` (lr_by_size), or a float/dict lr."""
    if "lr_by_size" in params:
        return params["lr_by_size"][size]
    lr = params["lr"]
    if isinstance(lr, str):
        raise V.ParameterError(f"lr={lr!r} is resolved from the stored testbed by run(); call learning_rates() first")
    return float(lr[size] if isinstance(lr, dict) else lr)


def train_unit(size: str, experts: int, router: str, params: dict) -> SW.Unit:
    """The config that identifies one trained model (E = 1: the dense model, router 'dense')."""
    common = {"size": size, "tokens": params["tokens"], "data": D.checksums(params["domains"], "pretrain"),
              "lr": _lr_of(params, size), **{k: params[k] for k in _SCHEDULE}}
    if experts == 1:
        return SW.Unit("dense", {**common, "experts": 1, "router": DENSE, "arch": _arch(size)})
    cfg = RT.routed_config(size, experts, router, routed_every=params["routed_every"], hash_seed=params["seed"],
                           **params["router_options"])
    # every routing setting explicitly (defaults included), so a changed default means new units
    return SW.Unit("routed", {**common, "experts": experts, "router": router, "arch": _arch(size),
                              "routing": RT.routing_fields(cfg)})


def routed_config_of(config: dict):
    """The RoutedConfig of a `routed` unit's config."""
    rt = config["routing"]
    return RT.routed_config(config["size"], rt["num_local_experts"], rt["router"], routed_every=rt["routed_every"],
                            hash_seed=rt["hash_seed"], **RT.router_options_of(rt))


def _train(config: dict, experts_implementation: str | None = None, compile: bool = False) -> dict:
    size, E, router = config["size"], config["experts"], config["router"]
    if E == 1:
        model = M.build_model(size, seed=config["seed"])
        cfg = model.config
    else:
        cfg = routed_config_of(config)
        cfg._attn_implementation = "sdpa"
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config["seed"])
            model = RT.RoutedForCausalLM(cfg)
        RT.set_experts_implementation(model, experts_implementation
                                      or RT.default_experts_implementation(T.default_device()))
        model.reset_routing_stats()
    arrays = {d: D.token_ids(d, "pretrain") for d in config["domains"]}
    try:
        res = T.train(model, arrays, tokens=config["tokens"], batch_tokens=config["batch_tokens"], lr=config["lr"],
                      warmup_frac=config["warmup_frac"], min_lr_frac=config["min_lr_frac"],
                      weight_decay=config["weight_decay"], grad_clip=config["grad_clip"], seed=config["seed"],
                      weights={d: 1.0 for d in arrays}, device=T.default_device(), progress=False, compile=compile)
    except T.TrainingDiverged as e:
        shown = {k: v for k, v in config.items() if k not in ("arch", "data")}
        raise RoutedTrainingDiverged(f"router={router} E={E} size={size} diverged at step {e.step} (loss {e.loss}); "
                                     f"unit config {shown}") from e
    unit = SW.Unit("dense" if E == 1 else "routed", config)
    M.save_checkpoint(model.cpu(), SW.checkpoint_dir(unit), meta={"unit": config, "train_loss": res.final_loss},
                      tokenizer=TK.load_tokenizer())
    if E == 1:
        counts = {"N": M.param_formula(cfg)["non_embedding"], **M.param_formula(cfg)}
        counts["active"] = counts["non_embedding"]
        flops, routing = M.flops_per_token(cfg), []
    else:
        counts = RT.param_counts(cfg)
        flops, routing = RT.flops_per_token(cfg), model.routing_stats()
    return {"size": size, "experts": E, "router": router, "N": counts["N"], "non_embedding": counts["non_embedding"],
            "active": counts["active"], "total": counts["total"], "flops_per_token": flops, "tokens": res.tokens,
            "steps": res.steps, "train_loss": res.final_loss, "wall_s": res.wall_s,
            "tokens_per_s": res.tokens / res.wall_s, "device": T.default_device(),
            "curve": res.curve.to_dict("records"), "routing": routing}


def eval_unit(train: SW.Unit, params: dict) -> SW.Unit:
    c = train.config
    return SW.Unit("eval", {"checkpoint": train.key, "size": c["size"], "experts": c["experts"], "router": c["router"],
                         "split": "test", "domains": params["domains"], "tokens_per_domain": params["eval_tokens"],
                         "seed": params["eval_seed"], "bootstrap": params["eval_bootstrap"],
                         "data": D.checksums(params["domains"], "test")})


def _evaluate(config: dict, batch_size: int = 32) -> list[dict]:
    """CE per domain on the testbed's evaluation windows (`evaluation.uniform_windows`: same
    domains, tokens, seed and the model's context, so a dense model here scores on exactly the
    windows the testbed uses), with bootstrap standard errors; one domain at a time so that the
    router's statistics (tokens per expert, entropy) are recorded per domain."""
    device = T.default_device()
    model = RT.load_routed(SW.find_checkpoint(config["checkpoint"]), device=device)
    model.eval()
    routed = isinstance(model, RT.RoutedForCausalLM)
    rows = []
    for domain in config["domains"]:
        if routed:
            model.reset_routing_stats()
        windows, dom = EV.uniform_windows([domain], config["tokens_per_domain"],
                                          seq_len=model.config.max_position_embeddings,
                                          seed=config["seed"], split=config["split"])
        nll = EV.window_loss_sums(model, windows.to(device), chunk=batch_size)
        df = EV.bootstrap_domain_ce(nll, windows, dom, [domain], n_boot=config["bootstrap"], seed=config["seed"])
        row = {k: df.iloc[0][k] for k in ("domain", "windows", "tokens", "bytes", "nll_sum", "ce", "ce_se", "bpb")}
        row["routing"] = model.routing_stats() if routed else []
        rows.append(row)
    return rows


def docs_unit(train: SW.Unit, params: dict) -> SW.Unit:
    c = train.config
    return SW.Unit("eval_docs", {"checkpoint": train.key, "size": c["size"], "experts": c["experts"],
                                 "router": c["router"], "split": "test", "domains": params["domains"],
                                 "max_docs": params["eval_docs"], "data": D.checksums(params["domains"], "test")})


def _evaluate_docs(config: dict, batch_size: int = 32) -> list[dict]:
    """CE of the first `max_docs` whole documents of each domain's test split, scored by rolling
    windows (`evaluation.evaluate_domains`), which is what lm-eval's loglikelihood_rolling computes:
    the table a reader checks a checkpoint against with `lmeval.run_lmeval(..., limit=max_docs)`.
    (The study's CE is on the uniform windows; document starts have less context, so these differ.)"""
    device = T.default_device()
    model = RT.load_routed(SW.find_checkpoint(config["checkpoint"]), device=device)
    df = EV.evaluate_domains(model, TK.load_tokenizer(), config["domains"], split=config["split"],
                             max_docs=config["max_docs"], batch_size=batch_size, device=device)
    return df.to_dict("records")


# ---------------------------------------------------------------------------------------------
# tables from unit records


MODEL_COLUMNS = ["size", "experts", "router", "N", "non_embedding", "active", "total", "flops_per_token", "tokens",
                 "steps", "lr", "train_loss", "wall_s", "tokens_per_s", "device", "unit"]
CURVE_COLUMNS = ["size", "experts", "router", "step", "tokens", "loss", "lr", "tokens_per_s"]
CE_COLUMNS = ["size", "experts", "router", "domain", "windows", "tokens", "bytes", "nll_sum", "ce", "ce_se", "bpb"]
DOC_COLUMNS = ["size", "experts", "router", "checkpoint", "domain", "docs", "tokens", "bytes", "nll_sum", "ce", "bpb"]


def docs_rows(records: list[dict], units: list[SW.Unit]) -> pd.DataFrame:
    """ce_documents: one row per model and domain, with the checkpoint's unit key."""
    rows = [{**{k: u.config[k] for k in ("size", "experts", "router")}, "checkpoint": u.config["checkpoint"], **r}
            for rec, u in zip(records, units) for r in rec["rows"]]
    return pd.DataFrame(rows, columns=DOC_COLUMNS)


def model_rows(records: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(models, curves, train-time routing) from training records."""
    models, curves, routing = [], [], []
    for rec in records:
        r = dict(rec["rows"][0])
        key = {k: r[k] for k in ("size", "experts", "router")}
        curves += [{**key, **c} for c in r.pop("curve")]
        routing += [{**key, "phase": "train", **_stat_row(s)} for s in r.pop("routing")]
        models.append({**r, "lr": rec["config"]["lr"], "unit": rec["key"]})
    return pd.DataFrame(models), pd.DataFrame(curves), pd.DataFrame(routing, columns=ROUTING_COLUMNS)


ROUTING_COLUMNS = ["size", "experts", "router", "phase", "layer", "tokens", "load_max_over_mean",
                   "batch_load_max_over_mean", "dropped_tokens", "entropy", "aux_loss"]


def _stat_row(s: dict) -> dict:
    return {k: s[k] for k in ROUTING_COLUMNS[4:]}


def eval_rows(records: list[dict], units: list[SW.Unit]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(ce per domain, eval-time routing per layer aggregated over domains, expert usage)."""
    ce, routing, usage = [], [], []
    for rec, u in zip(records, units):
        key = {k: u.config[k] for k in ("size", "experts", "router")}
        per_layer: dict[int, dict] = {}
        for row in rec["rows"]:
            row = dict(row)
            stats = row.pop("routing")
            ce.append({**key, **row})
            for s in stats:
                tot = max(1, s["tokens"])
                usage += [{**key, "domain": row["domain"], "layer": s["layer"], "expert": e, "tokens": int(n),
                           "fraction": n / tot} for e, n in enumerate(s["counts"])]
                agg = per_layer.setdefault(s["layer"], {"counts": np.zeros(len(s["counts"])), "entropy": 0.0,
                                                        "batch": 0.0, "n": 0})
                agg["counts"] += np.asarray(s["counts"], dtype=float)
                agg["entropy"] += s["entropy"] * s["tokens"]
                agg["batch"] += s["batch_load_max_over_mean"] if np.isfinite(s["batch_load_max_over_mean"]) else 0.0
                agg["n"] += 1
        for layer, a in sorted(per_layer.items()):
            tokens = a["counts"].sum()
            routing.append({**key, "phase": "eval", "layer": layer, "tokens": int(tokens),
                            "load_max_over_mean": float(a["counts"].max() / (tokens / len(a["counts"]))),
                            "batch_load_max_over_mean": a["batch"] / max(1, a["n"]), "dropped_tokens": 0,
                            "entropy": a["entropy"] / max(1.0, tokens), "aux_loss": math.nan})
    return (pd.DataFrame(ce), pd.DataFrame(routing, columns=ROUTING_COLUMNS),
            pd.DataFrame(usage, columns=["size", "experts", "router", "domain", "layer", "expert", "tokens", "fraction"]))


def loss_table(ce: pd.DataFrame, models: pd.DataFrame) -> pd.DataFrame:
    """One row per model: size, N, experts, router, L (mean CE over domains), bpb (mean)."""
    g = ce.groupby(["size", "experts", "router"], sort=False).agg(L=("ce", "mean"), bpb=("bpb", "mean")).reset_index()
    n = models.set_index(["size", "experts", "router"])["N"]
    g.insert(1, "N", [int(n.loc[(s, e, r)]) for s, e, r in zip(g["size"], g["experts"], g["router"])])
    return g.sort_values(["router", "N", "experts"], key=lambda c: c.map(_router_order) if c.name == "router" else c,
                         kind="stable").reset_index(drop=True)


def _router_order(r):
    return -1 if r == DENSE else list(R.ROUTERS).index(r) if r in R.ROUTERS else 99


# ---------------------------------------------------------------------------------------------
# analysis (pure functions of the tables)


def router_frame(loss: pd.DataFrame, router: str) -> pd.DataFrame:
    """The points of one router's law: the dense models (E = 1) and that router's E > 1 models."""
    sel = (loss["router"] == DENSE) | (loss["router"] == router)
    return loss[sel].sort_values(["N", "experts"]).reset_index(drop=True)


def routers_in(loss: pd.DataFrame) -> list[str]:
    return sorted(set(loss["router"]) - {DENSE}, key=_router_order)


def _fit_rows(res, law: str, router: str) -> list[dict]:
    """The project's one `fits` schema (`FitResult.rows`), keyed by router, plus the fitter's message."""
    return [{**r, "law": law, "message": res.message} for r in res.rows(router=router)]


def fit_laws(loss: pd.DataFrame, bootstrap: int = 1000, seed: int = 0, maxiter: int = 500,
             huber_delta: float = 1e-3) -> tuple[pd.DataFrame, dict]:
    """Dense law on the E = 1 points and the routed law per router (module docstring).
    `huber_delta`: the fitter's (our study keeps its default; `clark.py` fits Clark's data by least
    squares in log loss, a delta above every residual).

    Returns (fits table: one row per law, router, parameter with value, 95% CI, SE, R2, ok;
    {router or 'dense': FitResult}). A router with fewer points than parameters is skipped."""
    rows, results = [], {}
    dense = loss[loss["router"] == DENSE]
    if len(dense) >= len(LW.get_law(DENSE_LAW).params):
        res = F.fit(DENSE_LAW, dense, columns={"N": "N"}, y="L", bootstrap=bootstrap, seed=seed, maxiter=maxiter,
                    huber_delta=huber_delta)
        results[DENSE] = res
        rows += _fit_rows(res, DENSE_LAW, DENSE)
    for r in routers_in(loss):
        pts = router_frame(loss, r)
        if len(pts) < len(LW.get_law(LAW).params):
            continue
        res = F.fit(LAW, pts, columns={"N": "N", "E": "experts"}, y="L", bootstrap=bootstrap, seed=seed,
                    maxiter=maxiter, huber_delta=huber_delta)
        results[r] = res
        rows += _fit_rows(res, LAW, r)
    cols = ["router", "law", "param", "estimate", "lo", "hi", "se", "r2", "r2_log", "rmse", "converged", "ok", "why_not_ok",
            "n_points", "message"]
    return pd.DataFrame(rows, columns=cols), results


SAMPLE_DRAWS = 200  # bootstrap draws kept per fit in `fit_samples` (enough for a 95% band)
# the routing law's *reported* parameters (E_start, E_max; the fitter works in log10 internally)
SAMPLE_COLUMNS = ["router", "law", "draw", *LW.get_law(LAW).reported]


def fit_samples_table(results: dict, draws: int = SAMPLE_DRAWS) -> pd.DataFrame:
    """The bootstrap draws of every fit (first `draws` of each), one row per (router, draw) with
    the law's parameters as columns (the dense law's rows have only a and d): the figures draw
    confidence bands from them, and the planner can propagate them."""
    rows = [row for r, res in results.items()
            for row in res.sample_rows(draws, router=r, law=DENSE_LAW if r == DENSE else LAW)]
    return pd.DataFrame(rows, columns=SAMPLE_COLUMNS)


def effective_params_table(loss: pd.DataFrame, results: dict) -> pd.DataFrame:
    """N_bar per routed model: from the routed and dense fits (`laws.effective_params`) and from
    the measured L through the dense fit (N_bar = 10^((log10 L - d)/a)); ratio = N_bar / N."""
    cols = ["router", "size", "N", "experts", "L", "N_bar_fit", "N_bar_measured", "ratio_fit", "ratio_measured"]
    if DENSE not in results:
        return pd.DataFrame(columns=cols)
    dp = results[DENSE].params
    rows = []
    for r in routers_in(loss):
        for x in router_frame(loss, r).itertuples():
            fit = LW.effective_params(results[r], dp, x.N, x.experts) if r in results else math.nan
            meas = 10.0 ** ((math.log10(x.L) - dp["d"]) / dp["a"])
            rows.append({"router": r, "size": x.size, "N": x.N, "experts": x.experts, "L": x.L,
                         "N_bar_fit": fit, "N_bar_measured": meas, "ratio_fit": fit / x.N, "ratio_measured": meas / x.N})
    return pd.DataFrame(rows, columns=cols)


def n_cutoff_table(results: dict) -> pd.DataFrame:
    """N_cutoff = 10^(-b/c) per router from the unrounded fit, with the 2.5/97.5 percentiles of
    log10 N_cutoff = -b/c over the bootstrap draws and the fraction of draws with c > 0 (where
    the cutoff exists: routing helps below it and hurts above it)."""
    rows = []
    for r, res in results.items():
        if r == DENSE:
            continue
        b, c = res.params["b"], res.params["c"]
        lg = -b / c if c != 0 else math.copysign(math.inf, -b)
        lo = hi = frac = math.nan
        if res.bootstrap is not None and len(res.bootstrap):
            bb, cc = res.bootstrap["b"].to_numpy(), res.bootstrap["c"].to_numpy()
            with np.errstate(divide="ignore", invalid="ignore"):
                draws = -bb / cc
            draws = draws[np.isfinite(draws)]
            if len(draws):
                lo, hi = np.percentile(draws, [2.5, 97.5])
            frac = float(np.mean(cc > 0))
        rows.append({"router": r, "b": b, "c": c, "log10_n_cutoff": lg, "n_cutoff": 10.0 ** lg if lg < 300 else math.inf,
                     "log10_lo": lo, "log10_hi": hi, "frac_c_positive": frac, "ok": res.ok})
    return pd.DataFrame(rows, columns=["router", "b", "c", "log10_n_cutoff", "n_cutoff", "log10_lo", "log10_hi",
                                       "frac_c_positive", "ok"])


EXTRAPOLATION_COLUMNS = ["router", "scheme", "size", "N", "experts", "L", "pred", "lo", "hi", "rel_error", "status"]


def extrapolation_table(loss: pd.DataFrame, max_fit_experts: int = 8, bootstrap: int = 0, seed: int = 0,
                        maxiter: int = 500, huber_delta: float = 1e-3) -> pd.DataFrame:
    """Held-out prediction errors. Schemes per router: 'size' (fit all but the largest N, predict
    it) and 'experts' (fit E <= max_fit_experts, predict larger E; if none was run, fit all but
    the largest E); dense: 'size' with the dense law. A scheme whose training set has fewer
    points than the law has parameters gets one row with status 'not testable'."""
    rows = []

    def run(router, scheme, frame, mask, law, columns):
        P = len(LW.get_law(law).params)
        if mask.sum() < P or mask.all():
            rows.append({"router": router, "scheme": scheme, "status": "not testable"})
            return
        ex = F.extrapolate(law, frame, mask, columns=columns, y="L", bootstrap=bootstrap, seed=seed, maxiter=maxiter,
                           huber_delta=huber_delta)
        for x in ex.table.itertuples():
            rows.append({"router": router, "scheme": scheme, "size": x.size, "N": x.N, "experts": x.experts,
                         "L": x.L, "pred": x.pred, "lo": x.lo, "hi": x.hi, "rel_error": x.rel_error,
                         "status": "ok" if ex.fit.ok else f"fit not ok: {ex.fit.why_not_ok}"})

    dense = loss[loss["router"] == DENSE].reset_index(drop=True)
    if len(dense):
        run(DENSE, "size", dense, (dense["N"] < dense["N"].max()).to_numpy(), DENSE_LAW, {"N": "N"})
    for r in routers_in(loss):
        pts = router_frame(loss, r)
        run(r, "size", pts, (pts["N"] < pts["N"].max()).to_numpy(), LAW, {"N": "N", "E": "experts"})
        cut = max_fit_experts if (pts["experts"] > max_fit_experts).any() else pts["experts"].max() - 1
        run(r, "experts", pts, (pts["experts"] <= cut).to_numpy(), LAW, {"N": "N", "E": "experts"})
    return pd.DataFrame(rows, columns=EXTRAPOLATION_COLUMNS)


def analyse(loss: pd.DataFrame, resources: pd.DataFrame, bootstrap: int = 1000, seed: int = 0,
            max_fit_experts: int = 8, maxiter: int = 500) -> dict[str, pd.DataFrame]:
    """Every analysis table from the loss table and the resource table (`resource_table`)."""
    fits, results = fit_laws(loss, bootstrap, seed, maxiter)
    return {"fits": fits, "fit_samples": fit_samples_table(results),
            "effective_params": effective_params_table(loss, results),
            "n_cutoff": n_cutoff_table(results),
            "extrapolation": extrapolation_table(loss, max_fit_experts, min(bootstrap, 200), seed, maxiter),
            "resource_fits": resource_fits(resources, bootstrap, seed)}


# the analysis unit's tables, in its config: a new table is a new unit, never a stale cached record
ANALYSIS_OUTPUTS = ["fits", "fit_samples", "effective_params", "n_cutoff", "extrapolation", "resource_fits"]


def _analysis(config: dict) -> dict:
    out = analyse(pd.DataFrame(config["loss"]), pd.DataFrame(config["resources"]), config["bootstrap"],
                  config["seed"], config["max_fit_experts"], config["maxiter"])
    return {name: {"columns": list(df.columns), "records": df.to_dict("records")} for name, df in out.items()}


# ---------------------------------------------------------------------------------------------
# the study


def units(params: dict, part: str | None = None) -> list[SW.Unit]:
    """The training units: the dense model of every size, then every routed (size, E, router);
    with `part`, only the (size, E) cells of that part (`parts`)."""
    sel = params["parts"][part] if part is not None else {"sizes": params["sizes"], "experts": params["experts"]}
    keep = lambda s, E: s in sel["sizes"] and E in sel["experts"]  # noqa: E731
    out = [train_unit(s, 1, DENSE, params) for s in params["sizes"] if keep(s, 1)]
    out += [train_unit(s, E, r, params) for s in params["sizes"] for E in params["experts"] if E > 1
            for r in params["routers"] if keep(s, E)]
    return out


def unit_sweep(profile: str, params: dict) -> SW.Sweep:
    """Where the unit records live. unit_records="work": `.work/units/routing/<profile>/` (scratch);
    "results": beside the tables, `data/results/routing/<profile>/units/<kind>/<key>.json`, committed
    with them, so a sweep resumes on a new machine from git (the layout of the seeds replicates,
    branch `seeds`: `Sweep` with its `dir` moved under the results root; `.gitignore` ignores the
    lock). Checkpoints stay in `.work/` either way (`train_and_evaluate` needs one only for a model
    whose evaluations are not recorded yet)."""
    sweep = SW.Sweep(STUDY, profile)
    if params["unit_records"] == "results":
        sweep.dir = RES.results_root() / STUDY / profile / "units"
    return sweep


def train_and_evaluate(sweep: SW.Sweep, train_units: list[SW.Unit], params: dict, docs: bool = False,
                       backend: str = "local") -> tuple[list[dict], ...]:
    """Train, evaluate (and with `docs`, score whole documents) every unit not yet recorded;
    returns the records (train, eval[, docs]) in unit order. A trained model whose evaluations are
    all recorded needs no checkpoint: its record is reused even where `.work/` was lost (a fresh
    clone with the committed records redoes nothing); any other model is retrained if its
    checkpoint is missing."""
    impl, comp, bs = params["experts_implementation"], params["compile"], params["eval_batch_size"]
    ev = [eval_unit(u, params) for u in train_units]
    dc = [docs_unit(u, params) for u in train_units] if docs else []
    settled = {u.key for i, u in enumerate(train_units)
               if sweep.done(ev[i]) and (not docs or sweep.done(dc[i])) and sweep.done(u)}
    train = lambda c: _train(c, impl, comp)  # noqa: E731
    sweep.run([u for u in train_units if u.key not in settled], train, backend=backend, desc="train", checkpoints=True)
    trecs = sweep.run(train_units, train, backend=backend, desc="train")  # all recorded now: loads them
    erecs = sweep.run(ev, lambda c: _evaluate(c, bs), backend=backend, desc="eval")
    if not docs:
        return trecs, erecs
    return trecs, erecs, sweep.run(dc, lambda c: _evaluate_docs(c, bs), backend=backend, desc="eval_docs")


def step_check_units(params: dict) -> list[SW.Unit]:
    """The step check's training units (module docstring): dense and every router at (size, E),
    the grid's recipe with the smaller batch; [] when step_check is None or (size, E) is not in the grid."""
    sc = params["step_check"]
    if sc is None or sc["size"] not in params["sizes"] or sc["experts"] not in params["experts"]:
        return []
    small = {**params, "batch_tokens": sc["batch_tokens"]}
    return [train_unit(sc["size"], 1, DENSE, small)] + [train_unit(sc["size"], sc["experts"], r, small)
                                                        for r in params["routers"]]


STEP_CHECK_COLUMNS = ["size", "experts", "router", "batch_tokens", "steps", "L", "L_se", "grid_batch_tokens",
                      "grid_steps", "grid_L", "grid_L_se", "gain_from_steps", "gap_to_dense", "grid_gap_to_dense"]


def step_check_table(records: list[dict], ce: pd.DataFrame, grid_ce: pd.DataFrame, models: pd.DataFrame) -> pd.DataFrame:
    """One row per step-check model (`records`: its training records, `ce`: its per-domain CE) beside
    the same model of the grid (`grid_ce`, `models`); empty when the check is off or outside the grid: L and its sampling SE at both batches,
    gain_from_steps = grid_L - L, and each batch's gap to that batch's dense model (L - L_dense;
    negative: routing helps)."""
    if not records:
        return pd.DataFrame(columns=STEP_CHECK_COLUMNS)
    key = ["size", "experts", "router"]

    def per_model(frame):
        return frame.groupby(key).agg(L=("ce", "mean"), L_se=("ce_se", EV.domain_mean_se))

    small, grid = per_model(ce), per_model(grid_ce)
    grid_models = models.set_index(key)
    rows = []
    for rec in records:
        r = rec["rows"][0]
        k = (r["size"], r["experts"], r["router"])
        g = grid_models.loc[k]
        rows.append({**dict(zip(key, k)), "batch_tokens": rec["config"]["batch_tokens"], "steps": r["steps"],
                     "L": float(small.loc[k, "L"]), "L_se": float(small.loc[k, "L_se"]),
                     "grid_batch_tokens": int(round(g["tokens"] / g["steps"])), "grid_steps": int(g["steps"]),
                     "grid_L": float(grid.loc[k, "L"]), "grid_L_se": float(grid.loc[k, "L_se"])})
    out = pd.DataFrame(rows)
    dense = out[out["router"] == DENSE].set_index("size")
    out["gain_from_steps"] = out["grid_L"] - out["L"]
    out["gap_to_dense"] = out["L"] - out["size"].map(dense["L"])
    out["grid_gap_to_dense"] = out["grid_L"] - out["size"].map(dense["grid_L"])
    return out[STEP_CHECK_COLUMNS]


@ST.exclusive_run
def run(profile: str, backend: str = "local", **overrides) -> RES.ResultStore:
    params = ST.validate_run(sys.modules[__name__], profile, backend, overrides)
    params["lr_by_size"] = learning_rates(params, profile)
    t0 = time.perf_counter()
    sweep = unit_sweep(profile, params)
    impl = params["experts_implementation"]
    if params["part"] is not None:  # one part's units, recorded; the tables wait for the whole grid
        part_units = units(params, params["part"])
        with sweep.lock():
            recs = train_and_evaluate(sweep, part_units, params, docs=True, backend=backend)
        print(f"routing @ {profile}, part {params['part']}: {len(part_units)} models recorded under {sweep.dir} "
              f"({sum(r['wall_s'] for rs in recs for r in rs):.0f} CPU-s of units); no tables written")
        return RES.ResultStore(STUDY, profile)
    train_units = units(params)
    ev_units = [eval_unit(u, params) for u in train_units]
    doc_units = [docs_unit(u, params) for u in train_units]
    trecs, erecs, drecs = train_and_evaluate(sweep, train_units, params, docs=True, backend=backend)

    sc_units = step_check_units(params)
    sc_ev_units = [eval_unit(u, params) for u in sc_units]
    sc_recs, sc_erecs = train_and_evaluate(sweep, sc_units, params, backend=backend) if sc_units else ([], [])

    models, curves, train_routing = model_rows(trecs)
    ce, eval_routing, usage = eval_rows(erecs, ev_units)
    loss = loss_table(ce, models)
    resources = resource_table(usage, ce)
    an_unit = SW.Unit("analysis", {"loss": loss.to_dict("records"), "resources": resources.to_dict("records"),
                                "bootstrap": params["bootstrap"], "seed": params["seed"],
                                "max_fit_experts": params["extrapolation_max_experts"],
                                "maxiter": params["fit_maxiter"], "outputs": ANALYSIS_OUTPUTS,
                                "sample_columns": SAMPLE_COLUMNS, "trust_rule": F.TRUST_RULE,
                                "r2_min": F.R2_MIN})
    arec = sweep.run([an_unit], _analysis, backend="local", desc="analysis")[0]
    analysis = {k: pd.DataFrame(v["records"], columns=v["columns"]) for k, v in arec["rows"][0].items()
                if k != "claims"}  # (analysis records of older commits held claims; they come from claims.py now)
    # a record made before the one fits schema holds resource_fits' old columns: recomputed (cheap, same draws)
    analysis["resource_fits"] = resource_fits(resources, params["bootstrap"], params["seed"])

    store = RES.ResultStore(STUDY, profile)
    tables = {"models": models[MODEL_COLUMNS], "curves": curves[CURVE_COLUMNS], "ce": ce[CE_COLUMNS],
              "loss": loss, "routing": pd.concat([train_routing, eval_routing], ignore_index=True),
              "expert_usage": usage, "resources": resources, "ce_documents": docs_rows(drecs, doc_units), **analysis}
    tables["step_check"] = step_check_table(sc_recs, eval_rows(sc_erecs, sc_ev_units)[0], ce, models)
    from scalinglaws.studies.routing.claims import claims
    tables["claims"] = claims(tables, profile)
    for name, df in tables.items():
        store.write(name, df)
    walls = [r["wall_s"] for r in trecs + erecs + drecs + sc_recs + sc_erecs + [arec]]
    store.write_provenance(RES.provenance(
        params, time.perf_counter() - t0, profile=profile, backend=backend, unit_compute_s=round(sum(walls), 1),
        train_s=round(sum(r["wall_s"] for r in trecs), 1),
        eval_s=round(sum(r["wall_s"] for r in erecs + drecs), 1),
        step_check_s=round(sum(r["wall_s"] for r in sc_recs + sc_erecs), 1),
        analysis_s=round(arec["wall_s"], 1), models=len(train_units),
        experts_implementation=impl or RT.default_experts_implementation(T.default_device()),
        # the rates come from the stored testbed only with lr="testbed" (a float or table is the user's own)
        testbed_bases=({s: {"lr": v} for s, v in params["lr_by_size"].items()}
                       if params["lr"] == LR_FROM_TESTBED else {})))
    return store
