"""The testbed: pretrain the model ladder on the multi-domain mixture and evaluate every base
model on every domain's held-out test split.

Units (resumable, keyed by config hash): `pretrain` (one size: train, save a safetensors
checkpoint) and `eval` (one checkpoint on all domains). Tables written to
`data/results/testbed/<profile>/`: `ladder` (sizes, parameters, FLOPs, tokens, wall time),
`curves` (training loss curves), `ce` (per-domain CE in nats/token and bits/byte), `domains`
(corpus sizes) and `tokenizer` (tokenizer statistics).

Other studies (merging, resource) reuse the base models through `base_checkpoint`, which trains
a missing one with exactly the same config, so it is trained once per profile.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import pandas as pd

from scalinglaws import data as D
from scalinglaws import models as M
from scalinglaws.core.results import ResultStore, provenance
from scalinglaws.studies import resolve_params, validate_run
from scalinglaws.core.sweep import Sweep, Unit, checkpoint_dir, find_checkpoint
from scalinglaws.training import check_schedule, default_device, token_budget, train
from scalinglaws.core.validation import check_int, check_subset

STUDY = "testbed"

_COMMON = {"seed": 0, "lr": 3e-3, "warmup_frac": 0.05, "min_lr_frac": 0.1, "weight_decay": 0.1,
           "grad_clip": 1.0, "domains": list(D.DOMAINS)}
PROFILES = {
    # eval_max_docs caps the test documents per domain (None: the whole test split)
    "smoke": {**_COMMON, "sizes": M.ladder("smoke"), "batch_tokens": 1024, "eval_max_docs": 6},
    "cpu": {**_COMMON, "sizes": M.ladder("cpu"), "batch_tokens": 8192, "eval_max_docs": None},
    "gpu": {**_COMMON, "sizes": M.ladder("gpu"), "batch_tokens": 65536, "lr": 2e-3, "eval_max_docs": None},
}


def validate(params: dict) -> dict:
    params = dict(params)
    params["sizes"] = check_subset("sizes", params["sizes"], list(M.SIZES))
    params["domains"] = check_subset("domains", params["domains"], list(D.DOMAINS))
    check_int("seed", params["seed"], minimum=0)
    check_schedule(params, sizes=params["sizes"])
    if params["eval_max_docs"] is not None:
        check_int("eval_max_docs", params["eval_max_docs"], minimum=1)
    return params


def data_files(params: dict) -> list[tuple[str, str]]:
    """The corpus files a run reads: pretraining mixture and the test splits it evaluates on."""
    return [(d, s) for s in ("pretrain", "test") for d in params["domains"]]


# ---------------------------------------------------------------------------------------------
# units


def pretrain_unit(size: str, profile: str, params: dict) -> Unit:
    """The config that identifies one base model (the data's checksums included, so new data
    means new models)."""
    keys = ("seed", "lr", "warmup_frac", "min_lr_frac", "weight_decay", "grad_clip", "batch_tokens", "domains")
    arch = M.model_config(size).to_diff_dict()  # an architecture change means new models
    arch.pop("transformers_version", None)
    return Unit("pretrain", {"size": size, "profile": profile, "tokens": token_budget(size, profile), "arch": arch,
                             "data": D.checksums(params["domains"], "pretrain"),
                             **{k: params[k] for k in keys}})


def _pretrain(config: dict) -> dict:
    size = config["size"]
    model = M.build_model(size, seed=config["seed"])
    arrays = {d: D.token_ids(d, "pretrain") for d in config["domains"]}
    res = train(model, arrays, tokens=config["tokens"], batch_tokens=config["batch_tokens"],
                lr=config["lr"], warmup_frac=config["warmup_frac"], min_lr_frac=config["min_lr_frac"],
                weight_decay=config["weight_decay"], grad_clip=config["grad_clip"], seed=config["seed"],
                weights={d: 1.0 for d in arrays}, device=default_device(), progress=False)
    ckpt = checkpoint_dir(Unit("pretrain", config))
    from scalinglaws.data.tokenizer import load_tokenizer
    M.save_checkpoint(model.cpu(), ckpt, meta={"unit": config, "train_loss": res.final_loss},
                      tokenizer=load_tokenizer())
    counts = M.count_params(model)
    return {"size": size, **counts, "flops_per_token": M.flops_per_token(model.config),
            "tokens": res.tokens, "tokens_per_param": res.tokens / counts["total"], "steps": res.steps,
            "train_loss": res.final_loss, "wall_s": res.wall_s, "tokens_per_s": res.tokens / res.wall_s,
            "device": default_device(), "curve": res.curve.to_dict("records")}


def eval_unit(checkpoint_key: str, size: str, split: str, params: dict) -> Unit:
    return Unit("eval", {"checkpoint": checkpoint_key, "size": size, "split": split,
                         "domains": params["domains"], "max_docs": params["eval_max_docs"],
                         "data": D.checksums(params["domains"], split)})


def _ensure(sweep: Sweep, units: list[Unit], backend: str = "local") -> list[dict]:
    return sweep.run(units, _pretrain, backend=backend, desc="pretrain", checkpoints=True)


def base_checkpoint(size: str, profile: str, params: dict | None = None) -> Path:
    """Path of the trained base model of `size` at `profile` (trained now if missing)."""
    params = params or resolve_params(sys.modules[__name__], profile, {})
    unit = pretrain_unit(size, profile, params)
    _ensure(Sweep(STUDY, profile), [unit])
    return checkpoint_dir(unit)


def base_key(size: str, profile: str) -> str:
    """Unit key of the base model of `size` at `profile` (TEMPORARY shim for the merging branch;
    the testbed redesign provides the real one with this signature)."""
    return pretrain_unit(size, profile, resolve_params(sys.modules[__name__], profile, {})).key


def _evaluate(config: dict) -> list[dict]:
    from scalinglaws.evaluation import evaluate_domains
    from scalinglaws.data.tokenizer import load_tokenizer
    model = M.load_checkpoint(find_checkpoint(config["checkpoint"]), device=default_device())
    df = evaluate_domains(model, load_tokenizer(), config["domains"], split=config["split"],
                          max_docs=config["max_docs"])
    return df.to_dict("records")


# ---------------------------------------------------------------------------------------------
# the study


def run(profile: str, backend: str = "local", **overrides) -> ResultStore:
    params = validate_run(sys.modules[__name__], profile, backend, overrides)
    t0 = time.perf_counter()
    sweep = Sweep(STUDY, profile)
    units = [pretrain_unit(s, profile, params) for s in params["sizes"]]
    pre = _ensure(sweep, units, backend)
    evals = [eval_unit(u.key, u.config["size"], "test", params) for u in units]
    ev = sweep.run(evals, _evaluate, backend=backend, desc="eval")

    store = ResultStore(STUDY, profile)
    ladder = M.ladder_table(profile).set_index("size")
    rows, curves = [], []
    for rec in pre:
        r = dict(rec["rows"][0])
        for c in r.pop("curve"):
            curves.append({"size": r["size"], **c})
        rows.append({**r, "unit": rec["key"]})
    summary = pd.DataFrame(rows)
    summary = summary.join(ladder[["d_model", "n_layers", "n_heads", "d_ff", "context"]], on="size")
    store.write("ladder", summary)
    store.write("curves", pd.DataFrame(curves))
    ce = sweep.table(evals, ["size"])
    store.write("ce", ce)
    # the original 8 domains, as in the stored results (the manifest now lists more; see data/README.md)
    store.write("domains", D.domain_table(domains=D.DOMAINS))
    store.write("tokenizer", D.tokenizer_stats(domains=D.DOMAINS))
    compute_s = sum(r["wall_s"] for r in pre + ev)
    store.write_provenance(provenance(params, time.perf_counter() - t0, profile=profile,
                                      unit_compute_s=compute_s, backend=backend))
    return store

