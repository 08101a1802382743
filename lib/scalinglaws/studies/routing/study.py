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

import time

import pandas as pd

from scalinglaws import fitting as F
from scalinglaws import studies as ST
from scalinglaws import training as T
from scalinglaws.core import results as RES
from scalinglaws.core import sweep as SW
from scalinglaws.models import routed as RT
# The study's parts, gathered here for callers (pilot, clark, seeds, parts, tests): `S.train_unit`,
# `S.fit_laws`, ... Each lives in the module its name says.
from scalinglaws.studies.routing.analysis import (ANALYSIS_OUTPUTS, EXTRAPOLATION_COLUMNS,  # noqa: F401
                                                  SAMPLE_COLUMNS, SAMPLE_DRAWS, _analysis, analyse,
                                                  effective_params_table, extrapolation_table, fit_laws,
                                                  fit_samples_table, n_cutoff_table, router_frame, routers_in)
from scalinglaws.studies.routing.config import (_COMMON, _SCHEDULE, DENSE, DENSE_LAW, LAW,  # noqa: F401
                                                LR_FROM_TESTBED, PARTS_CPU, PROFILES, ROUTER_OPTIONS_CPU,
                                                RUN_ONLY, STUDY, UNIT_RECORDS, data_files, learning_rates,
                                                validate, validate_stored)
from scalinglaws.studies.routing.names import learned, order_key  # noqa: F401
from scalinglaws.studies.routing.resources import resource_fits, resource_table, share_growth  # noqa: F401
from scalinglaws.studies.routing.tables import (CE_COLUMNS, CURVE_COLUMNS, DOC_COLUMNS,  # noqa: F401
                                                MODEL_COLUMNS, ROUTING_COLUMNS, STEP_CHECK_COLUMNS,
                                                docs_rows, eval_rows, loss_table, model_rows,
                                                step_check_table)
from scalinglaws.studies.routing.units import (RoutedTrainingDiverged, _evaluate, _evaluate_docs,  # noqa: F401
                                               _train, docs_unit, eval_unit, routed_config_of,
                                               step_check_units, train_and_evaluate, train_unit, unit_sweep,
                                               units)


@ST.exclusive_run
def run(profile: str, backend: str = "local", **overrides) -> RES.ResultStore:
    params = ST.validate_run(ST.get_study(STUDY), profile, backend, overrides)
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
    store.write_run_provenance(RES.provenance(
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
