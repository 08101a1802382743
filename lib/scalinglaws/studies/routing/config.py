"""The routing study's parameters: each profile's grid and recipe (`PROFILES`), their validation
(`validate`, `validate_stored`), the corpus files a run reads and the learning rate of each size
(`learning_rates`: with lr="testbed", the rates the testbed's stored ladder chose).

The study itself (grid, units, tables, analysis) is described in `study.py`.
"""
from __future__ import annotations

import numpy as np

from scalinglaws import data as D
from scalinglaws import models as M
from scalinglaws import training as T
from scalinglaws.core import validation as V
from scalinglaws.models import routed as RT
from scalinglaws.models import routers as R
from scalinglaws.studies.testbed.bases import chosen_rates

STUDY = "routing"
DENSE = RT.DENSE
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
    V.check_subset("routers", params["routers"], list(RT.kinds()))
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
        raise V.ParameterError(f"router_options={opts!r} must be a dict (keys: {', '.join(RT.router_options())})")
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
    for each size at this profile (`studies.testbed.bases.chosen_rates`; routing DEPENDS_ON the testbed), so dense and routed models train at the
    testbed's tuned rates; a missing table or size is one clear error before any compute."""
    lr, sizes = params["lr"], params["sizes"]
    if isinstance(lr, dict):
        return {s: float(lr[s]) for s in sizes}
    if not isinstance(lr, str):
        return {s: float(lr) for s in sizes}
    chosen = chosen_rates(profile)  # the testbed's package reads its own tables
    hint = f"run `python -m scalinglaws reproduce testbed --profile {profile}` first, or pass lr as a float"
    if chosen is None:
        raise V.ParameterError(f"lr='testbed' needs the testbed's stored ladder at profile {profile!r}; {hint}")
    missing = [s for s in sizes if s not in chosen]
    if missing:
        raise V.ParameterError(f"lr='testbed': the testbed's {profile} ladder has no size(s) {missing}; {hint}")
    return {s: float(chosen[s]) for s in sizes}


def validate_stored(params: dict, profile: str) -> None:
    """The checks that read stored tables (`studies.validate_run` calls it before any lock or compute):
    lr='testbed' needs the testbed's ladder at this profile, with every size."""
    learning_rates(params, profile)

