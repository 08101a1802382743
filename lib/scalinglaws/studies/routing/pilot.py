"""Regime pilots (issue 27): which settings make the learned routers leave uniform at cpu, measured.

The stored cpu grid's learned routers barely left uniform (eval entropy / log E at E = 16: S-BASE
0.93, Switch 0.97) and its step check says that more optimiser steps help them (S-BASE at d64l4,
E = 8: +0.074 nats above dense in 384 steps of 2,048 tokens, -0.025 below in 768 of 1,024). Before
the costly rerun, each candidate setting is trained at one small cell (`PILOT`: d32l2, E = 8, the
testbed's rate for that size, the grid's schedule otherwise) for dense, S-BASE and Switch, plus the
Hash control pair (Hash and `vocab`, `models.routed.VocabTableMLP`) at two settings, and scored on
the grid's evaluation windows (fewer tokens per domain). Settings (`SETTINGS`, name -> batch tokens
and router options): the grid's batch (baseline), half the batch (twice the steps, the step
check's change), and at that batch a router learning-rate multiplier (10, 3), a unit gate, and both.

Table `regime_pilot` (routing store of the profile, recorded in provenance `derived`): one row per
(setting, router) with L, its sampling SE, the gap to the dense model trained at the same batch, the
mean router entropy / log E at evaluation and over training (mean over routed blocks), the
evaluation load max / mean and the training seconds. Units are the study's own (`study.train_unit`,
`eval_unit`), so the records resume like the grid's and live where the grid's do
(`study.unit_sweep`: committed beside the tables at cpu).

    python -m scalinglaws routing-pilot --profile cpu [--settings baseline,steps,...]
"""
from __future__ import annotations

import datetime as dt
import json
import math
import time

import pandas as pd

from scalinglaws.core.results import ResultStore, git_commit
from scalinglaws.core.threads import torch_threads
from scalinglaws.core.validation import ParameterError, check_choice
from scalinglaws.evaluation import domain_mean_se
from scalinglaws.studies.routing import study as S

TABLE = "regime_pilot"
# the cell: the smallest cpu size at E = 8, with a sixth of the grid's stored token budget (131,072
# tokens: 64 steps of 2,048 or 128 of 1,024). Measured on the shared 2-core machine (other sweeps
# running): a dense d32l2 took > 93 CPU-s for 393,216 tokens, 4x the stored run's rate, so this
# budget keeps ten models within ~20 minutes. The pilot compares settings at equal tokens; the
# grid's routers see 3-16x more steps, so its entropies are upper bounds for the grid's.
PILOT = {"size": "d32l2", "experts": 8, "tokens": 131_072, "eval_tokens": 2048}
ROUTERS = ("sbase", "switch")
CONTROLS = ("hash", "vocab")  # trained at CONTROL_SETTING only
CONTROL_SETTINGS = ("steps", "steps_long")
# the options alone and together at the step check's batch (the first three settings, measured first,
# showed 1,024 better than 2,048 for dense and S-BASE at this budget), and a milder multiplier
SETTINGS: dict[str, tuple[int, dict]] = {
    "baseline": (2048, {}),
    "steps": (1024, {}),
    "combined": (1024, {"router_lr_mult": 10.0, "gate_scale": "unit"}),
    "lr_mult": (1024, {"router_lr_mult": 10.0}),
    "unit_gate": (1024, {"gate_scale": "unit"}),
    "lr_mult3": (1024, {"router_lr_mult": 3.0}),
    "lr_mult3_unit": (1024, {"router_lr_mult": 3.0, "gate_scale": "unit"}),
    # the candidates again on 4x the tokens (524,288: 512 steps of 1,024): does the ranking hold as
    # the models approach the grid's budget? (a third argument: tokens per model)
    "steps_long": (1024, {}, 524_288),
    "lr_mult_long": (1024, {"router_lr_mult": 10.0}, 524_288),
    "unit_gate_long": (1024, {"gate_scale": "unit"}, 524_288),
    "combined_long": (1024, {"router_lr_mult": 10.0, "gate_scale": "unit"}, 524_288),
}
COLUMNS = ["setting", "size", "experts", "router", "batch_tokens", "steps", "tokens", "router_options", "L", "L_se",
           "gap_to_dense", "entropy_ratio_eval", "entropy_ratio_train", "load_max_over_mean_eval", "train_s"]


def parse_settings(text) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()] if isinstance(text, str) else list(text)
    if not names:
        raise ParameterError(f"settings={text!r}: name at least one of {list(SETTINGS)}")
    for n in names:
        check_choice("setting", n, list(SETTINGS))
    return names


def pilot_params(profile: str, batch_tokens: int, options: dict, tokens: int | None = None) -> dict:
    """The grid's parameters at this profile with the pilot's cell, budget and one setting."""
    params = {**S.PROFILES[profile], "sizes": [PILOT["size"]], "experts": [1, PILOT["experts"]],
              "tokens": tokens or PILOT["tokens"], "batch_tokens": batch_tokens, "eval_tokens": PILOT["eval_tokens"],
              "router_options": dict(options), "routers": list(ROUTERS + CONTROLS), "step_check": None,
              "parts": None, "part": None}
    params = S.validate(params)
    params["lr_by_size"] = S.learning_rates(params, profile)
    return params


def plan(profile: str, settings) -> list[tuple[str, str, dict, object]]:
    """[(setting, router, params, train unit)] for every model the pilot trains (validated first)."""
    check_choice("profile", profile, list(S.PROFILES))
    out = []
    for name in parse_settings(settings):
        batch, options, *tokens = SETTINGS[name]
        params = pilot_params(profile, batch, options, *tokens)
        routers = (S.DENSE,) + ROUTERS + (CONTROLS if name in CONTROL_SETTINGS else ())
        for r in routers:
            E = 1 if r == S.DENSE else PILOT["experts"]
            out.append((name, r, params, S.train_unit(PILOT["size"], E, r, params)))
    return out


def _entropy_ratio(stats: list[dict], experts: int) -> float:
    vals = [s["entropy"] for s in stats]
    return float(sum(vals) / len(vals) / math.log(experts)) if vals else math.nan


def run_pilot(profile: str = "cpu", settings=tuple(SETTINGS), threads: int = 1) -> ResultStore:
    """Train and score the pilot's models not yet done, write `regime_pilot`, record it in provenance."""
    models = plan(profile, settings)
    t0 = time.perf_counter()
    sweep = S.unit_sweep(profile, models[0][2])
    rows, walls = [], {}
    with torch_threads(threads):
        for name, router, params, unit in models:
            trec, erec = S.train_and_evaluate(sweep, [unit], params)
            trec, erec = trec[0], erec[0]
            walls.update({trec["key"]: trec["wall_s"], erec["key"]: erec["wall_s"]})  # shared dense once
            r = trec["rows"][0]
            ce = pd.DataFrame([{k: v for k, v in x.items() if k != "routing"} for x in erec["rows"]])
            ev_stats = [s for x in erec["rows"] for s in x["routing"]]
            ev = {}
            for s in ev_stats:  # token-weighted over domains, per layer
                a = ev.setdefault(s["layer"], {"ent": 0.0, "tok": 0, "counts": None})
                a["ent"] += s["entropy"] * s["tokens"]
                a["tok"] += s["tokens"]
                a["counts"] = [c + n for c, n in zip(a["counts"] or [0] * len(s["counts"]), s["counts"])]
            E = r["experts"]
            learned = router in S.learned()
            ent_eval = (sum(a["ent"] / a["tok"] for a in ev.values()) / len(ev) / math.log(E)
                        if ev and learned else math.nan)
            load = (sum(max(a["counts"]) / (sum(a["counts"]) / E) for a in ev.values()) / len(ev)
                    if ev else math.nan)
            rows.append({"setting": name, "size": r["size"], "experts": E, "router": router,
                         "batch_tokens": params["batch_tokens"], "steps": r["steps"], "tokens": r["tokens"],
                         "router_options": json.dumps(params["router_options"], sort_keys=True),
                         "L": float(ce["ce"].mean()), "L_se": float(domain_mean_se(ce["ce_se"])),
                         "entropy_ratio_eval": ent_eval,
                         "entropy_ratio_train": _entropy_ratio(r["routing"], E) if learned else math.nan,
                         "load_max_over_mean_eval": load, "train_s": r["wall_s"]})
    df = pd.DataFrame(rows)
    dense = df[df["router"] == S.DENSE].groupby(["batch_tokens", "tokens"])["L"].first()
    df["gap_to_dense"] = df["L"] - [dense[(b, t)] for b, t in zip(df["batch_tokens"], df["tokens"])]
    df = df[COLUMNS]
    store = ResultStore(S.STUDY, profile)
    store.write(TABLE, df)
    prov = store.provenance()
    prov.setdefault("derived", {})[TABLE] = {
        "commit": git_commit(), "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": f"python -m scalinglaws routing-pilot --profile {profile} --settings {','.join(parse_settings(settings))}",
        "cell": PILOT, "settings": {n: {"batch_tokens": SETTINGS[n][0], "router_options": SETTINGS[n][1],
                                        "tokens": (SETTINGS[n][2:] or (PILOT["tokens"],))[0]}
                                    for n in parse_settings(settings)},
        "torch_threads": threads, "models": len(models), "unit_compute_s": round(sum(walls.values()), 1),
        "wall_time_s": round(time.perf_counter() - t0, 1)}
    store.write_provenance(prov)
    return store
