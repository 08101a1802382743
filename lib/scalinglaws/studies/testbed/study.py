"""The testbed: pretrain the model ladder on the multi-domain mixture with a learning-rate sweep,
keep each size's best learning rate, and evaluate every base model on every domain.

Protocol (documented in book/testbed):
- Data: every domain of the manifest (`data.ALL_DOMAINS`: real text and the generated mathematics
  subfields), equal weight per domain, random windows of the `pretrain` split.
- Budget: one token count for every size (`pretrain_tokens`, by default the profile's
  `training.token_budget`; Clark et al.'s protocol),
  checked against `core.profiles.MAX_EPOCHS` passes over each domain's unique tokens.
- Learning rate: every size is trained at every rate of `lrs`; the size keeps the rate with the
  lowest mean validation CE over domains (the `val` split, never the test split, so the test CE
  reported is not selected on). `lr` = {size: rate} skips the sweep and pins the rates.
  Bracketing (`lr_bracket` = n): a size whose best rate lies at an edge of the rates it was trained
  at gets the next rate beyond that edge (one grid step, the grid's own ratio), up to n times, so
  that its chosen rate ends up between two worse ones. A rate at the edge may be far from the size's
  optimum, and an under-tuned size can break the ladder's order (at `cpu`, d128l4 at the grid's
  lowest rate was still improving as the rate fell).
- Evaluation: windows drawn uniformly over each domain's split (`evaluation.evaluate` on an `EvalSpec`: `uniform_windows`,
  seeded, `eval_tokens` per domain, the model's context), scored by the stacked evaluator, with
  bootstrap standard errors over windows (`evaluation.bootstrap_domain_ce`).

Units (resumable, keyed by config hash): `pretrain` (one size at one rate: train, save a
safetensors checkpoint) and `eval` (one checkpoint, val and test splits). Tables written to
`data/results/testbed/<profile>/`: `lr_sweep` (every size x rate: train loss, val and test CE,
chosen), `ladder` (the chosen base of each size: parameters, FLOPs, tokens, epochs, wall time),
`curves` (training loss curves of every run), `evals` (per-domain CE of every run and split),
`ce` (per-domain test CE of the chosen bases), `step_check` (below), `claims` (see `claims.py`),
`domains` (corpus sizes) and `tokenizer`.

Step check (`step_check` = {"sizes": [...], "batch_tokens": B}, or None): the named sizes are
trained again at their chosen rate on the same tokens with the smaller batch B, i.e. more optimiser
steps. It answers the question a ladder that stops falling raises: are the larger sizes short of
optimiser steps (then they pull ahead with more steps) or of data (then they do not)? The table
holds both batches' test CE per size; the claim `testbed.more_steps_order` judges the order.

Other studies reuse the chosen bases through `base_checkpoint` / `base_key`, which run the size's
sweep if it is missing, so every base is trained once per profile.
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import pandas as pd

from scalinglaws import data as D
from scalinglaws import models as M
from scalinglaws.core.profiles import MAX_EPOCHS, REGISTRY
from scalinglaws.core.regime import bracketed_rounds, grid_ratio
from scalinglaws.core.results import ResultStore, provenance
from scalinglaws.core.sweep import Sweep, Unit, checkpoint_dir, find_checkpoint
from scalinglaws.core.validation import ParameterError, check_float, check_int, check_subset
from scalinglaws.studies import exclusive_run, resolve_params, validate_run
from scalinglaws.evaluation import domain_mean_se
from scalinglaws.training import TrainingDiverged, check_schedule, default_device, train

STUDY = "testbed"

_COMMON = {"seed": 0, "lr": None, "warmup_frac": 0.05, "min_lr_frac": 0.1, "weight_decay": 0.1,
           "grad_clip": 1.0, "domains": list(D.ALL_DOMAINS), "eval_seed": 0, "eval_bootstrap": 200,
           "step_check": None, "lr_bracket": 0}
PROFILES = {
    "smoke": {**_COMMON, "sizes": M.ladder("smoke"), "lrs": list(REGISTRY["smoke"].lr_grid),
              "pretrain_tokens": REGISTRY["smoke"].pretrain_tokens,
              "batch_tokens": 1024, "eval_tokens": 256, "domains": ["code", "scripture", "algebra", "legal"],
              "step_check": {"sizes": M.ladder("smoke"), "batch_tokens": 512}},
    # 1,024 steps of 2,048 tokens. At 512 steps of 4,096 the ladder stopped falling above d64l4 and
    # the step check (stored at commit 61c5548) showed why: the same tokens in twice the steps cut
    # d64l4's test CE by 0.23 and d128l4's by 0.36 nats and put d128l4 below d64l4. Tiny models gain
    # more from steps than from batch size. At 1,024 steps d128l4 still rose above d96l4 and gained most
    # from more steps, so the cpu ladder retired it (core.profiles). ~5K CPU-s for the 4 sizes.
    "cpu": {**_COMMON, "sizes": M.ladder("cpu"), "lrs": list(REGISTRY["cpu"].lr_grid),
            "pretrain_tokens": REGISTRY["cpu"].pretrain_tokens,
            "batch_tokens": 2048, "eval_tokens": 8192, "lr_bracket": 2,
            # is the top of the ladder still short of steps? its two largest sizes at twice the steps (~1,000 CPU-s)
            "step_check": {"sizes": ["d64l4", "d96l4"], "batch_tokens": 1024}},
    # (no step check and no bracketing at gpu: its ladder is sized to the 9-minute budget; pass
    # step_check / lr_bracket to run them, resumable in further device commands)
    "gpu": {**_COMMON, "sizes": M.ladder("gpu"), "lrs": list(REGISTRY["gpu"].lr_grid),
            "pretrain_tokens": REGISTRY["gpu"].pretrain_tokens,
            "batch_tokens": 65536, "eval_tokens": 32768},
}


def _check_lrs(params: dict) -> None:
    lrs = params["lrs"]
    if isinstance(lrs, (str, bytes)) or not isinstance(lrs, (list, tuple)) or not lrs:
        raise ParameterError(f"lrs={lrs!r} must be a non-empty list of learning rates in (0, 1)")
    for x in lrs:
        check_float("lrs entry", x, 0.0, 1.0, open_interval=True)
    if len(set(lrs)) != len(lrs):
        raise ParameterError(f"lrs={list(lrs)} has duplicates")
    pinned = params["lr"]
    if pinned is None:
        return
    if not isinstance(pinned, dict):
        raise ParameterError(f"lr={pinned!r} must be null (choose by the sweep over lrs) or a "
                             f"{{size: learning rate}} table covering sizes={params['sizes']}")
    missing = [s for s in params["sizes"] if s not in pinned]
    extra = sorted(set(pinned) - set(params["sizes"]))
    if missing or extra:
        raise ParameterError(f"lr table must name exactly the sizes {params['sizes']}: "
                             f"missing {missing}, not in sizes {extra}")
    for s, x in pinned.items():
        check_float(f"lr[{s}]", x, 0.0, 1.0, open_interval=True)


def epochs(params: dict, tokens: int) -> pd.Series:
    """Passes over each domain's unique pretraining tokens at `tokens` (equal domain weights)."""
    t = D.domain_table(domains=params["domains"])
    uniq = t[t["split"] == "pretrain"].set_index("domain")["tokens"]
    return (tokens / len(params["domains"])) / uniq


def _check_step_check(params: dict) -> None:
    sc = params["step_check"]
    if sc is None:
        return
    if not isinstance(sc, dict) or set(sc) != {"sizes", "batch_tokens"}:
        raise ParameterError(f"step_check={sc!r} must be null or {{\"sizes\": [...], \"batch_tokens\": B}}")
    # known sizes, not only the ladder's: overriding `sizes` must not invalidate the profile's check
    # (sizes outside the ladder have no chosen rate and are skipped by `step_check_table`)
    check_subset("step_check sizes", sc["sizes"], list(M.SIZES))
    bt = check_int("step_check batch_tokens", sc["batch_tokens"], minimum=64, maximum=params["batch_tokens"] - 1)
    check_schedule({**params, "lr": min(params["lrs"]), "batch_tokens": bt}, sizes=sc["sizes"])


def validate(params: dict) -> dict:
    params = dict(params)
    params["sizes"] = check_subset("sizes", params["sizes"], list(M.SIZES))
    params["domains"] = check_subset("domains", params["domains"], list(D.ALL_DOMAINS))
    check_int("seed", params["seed"], minimum=0)
    check_int("eval_seed", params["eval_seed"], minimum=0)
    check_int("eval_bootstrap", params["eval_bootstrap"], minimum=2)
    check_int("eval_tokens", params["eval_tokens"], minimum=1)
    _check_lrs(params)
    check_int("lr_bracket", params["lr_bracket"], minimum=0, maximum=4)
    check_schedule({**params, "lr": min(params["lrs"])}, sizes=params["sizes"])
    _check_step_check(params)
    tokens = check_int("pretrain_tokens", params["pretrain_tokens"], minimum=params["batch_tokens"])
    ep = epochs(params, tokens)
    if ep.max() > MAX_EPOCHS:
        raise ParameterError(f"pretrain_tokens={tokens:,} repeats domain {ep.idxmax()!r} {ep.max():.1f} times "
                             f"(equal domain weights over {len(params['domains'])} domains); at most "
                             f"{MAX_EPOCHS} epochs per domain: add domains or lower pretrain_tokens")
    return params


def data_files(params: dict) -> list[tuple[str, str]]:
    """The corpus files a run reads: the pretraining mixture and the two splits it evaluates on."""
    return [(d, s) for s in ("pretrain", "val", "test") for d in params["domains"]]


def base_pretrain_files() -> list[tuple[str, str]]:
    """The pretraining files of every domain a testbed base may be trained on, whatever the profile:
    what a study that fine-tunes the testbed's bases (and trains them when missing) checks before it
    runs. (The smoke profile's bases see 4 of these domains: checking more files is safe.)"""
    return [(d, "pretrain") for d in _COMMON["domains"]]


def disk_bytes(params: dict) -> int:
    """What a run may write under the work root (`studies.check_roots`): one checkpoint per size and
    rate, bracketing rates and step-check models included."""
    from scalinglaws.studies import checkpoint_bytes
    rates = (1 if params["lr"] is not None else len(params["lrs"]) + params["lr_bracket"])
    checked = params["step_check"]["sizes"] if params["step_check"] else []
    return sum(checkpoint_bytes(s) * (rates + (s in checked)) for s in params["sizes"])


def learning_rates(size: str, params: dict) -> list[float]:
    """The rates a size is trained at first: its pinned rate, or the whole grid (`bracket` may add more)."""
    return [params["lr"][size]] if params["lr"] is not None else list(params["lrs"])


# ---------------------------------------------------------------------------------------------
# units


def pretrain_unit(size: str, profile: str, params: dict, lr: float) -> Unit:
    """The config that identifies one base model (the data's checksums included, so new data
    means new models)."""
    keys = ("seed", "warmup_frac", "min_lr_frac", "weight_decay", "grad_clip", "batch_tokens", "domains")
    arch = M.model_config(size).to_diff_dict()  # an architecture change means new models
    arch.pop("transformers_version", None)
    return Unit("pretrain", {"size": size, "profile": profile, "tokens": params["pretrain_tokens"], "arch": arch,
                             "lr": float(lr), "weights": "equal", "data": D.checksums(params["domains"], "pretrain"),
                             **{k: params[k] for k in keys}})


def _pretrain(config: dict) -> dict:
    size = config["size"]
    model = M.build_model(size, seed=config["seed"])
    arrays = {d: D.token_ids(d, "pretrain") for d in config["domains"]}
    diverged = False
    try:
        res = train(model, arrays, tokens=config["tokens"], batch_tokens=config["batch_tokens"],
                    lr=config["lr"], warmup_frac=config["warmup_frac"], min_lr_frac=config["min_lr_frac"],
                    weight_decay=config["weight_decay"], grad_clip=config["grad_clip"], seed=config["seed"],
                    weights={d: 1.0 for d in arrays}, device=default_device(), progress=False)
        final, curve, wall, steps, tokens = res.final_loss, res.curve.to_dict("records"), res.wall_s, res.steps, res.tokens
    except TrainingDiverged as err:  # a rate of the sweep that diverges is a result, not a failure
        diverged, final, curve, wall, steps, tokens = True, math.nan, [], math.nan, err.step, 0
    ckpt = checkpoint_dir(Unit("pretrain", config))
    from scalinglaws.data.tokenizer import load_tokenizer
    M.save_checkpoint(model.cpu(), ckpt, meta={"unit": config, "train_loss": final, "diverged": diverged},
                      tokenizer=load_tokenizer())
    counts = M.count_params(model)
    return {"size": size, "lr": config["lr"], **counts, "flops_per_token": M.flops_per_token(model.config),
            "tokens": tokens, "tokens_per_param": tokens / counts["non_embedding"], "steps": steps,
            "train_loss": final, "diverged": diverged, "wall_s": wall,
            "tokens_per_s": tokens / wall if wall else math.nan, "device": default_device(), "curve": curve}


def eval_unit(pre: Unit, params: dict) -> Unit:
    return Unit("eval", {"checkpoint": pre.key, "size": pre.config["size"], "lr": pre.config["lr"],
                         "domains": params["domains"], "tokens_per_domain": params["eval_tokens"],
                         "seed": params["eval_seed"], "bootstrap": params["eval_bootstrap"],
                         "data": {s: D.checksums(params["domains"], s) for s in ("val", "test")}})


def _evaluate(config: dict) -> list[dict]:
    from scalinglaws.evaluation import EvalSpec, evaluate
    model = M.load_unit_checkpoint(config["checkpoint"], device=default_device())
    rows = []
    for split in ("val", "test"):  # windows of the model's context, stacked evaluator
        spec = EvalSpec(config["domains"], config["tokens_per_domain"], seed=config["seed"], split=split)
        df = evaluate(model, spec).bootstrap(config["bootstrap"], config["seed"], model=0)
        rows += [{"split": split, **r} for r in df.to_dict("records")]
    return rows


# ---------------------------------------------------------------------------------------------
# the sweep and the choice


def _train_and_eval(sweep: Sweep, pre: list[Unit], params: dict, backend: str):
    """Pretrain and evaluate the units (each done once); return (pretrain records, eval records)."""
    precs = sweep.run(pre, _pretrain, backend=backend, desc="pretrain", checkpoints=True)
    evals = [eval_unit(u, params) for u in pre]
    erecs = sweep.run(evals, _evaluate, backend=backend, desc="eval")
    return precs, erecs


def sweep_table(precs: list[dict], erecs: list[dict]) -> pd.DataFrame:
    """One row per (size, lr): train loss, mean val and test CE over domains (with the sampling
    standard error of the mean), and `chosen`: the rate with the lowest mean val CE of its size
    (diverged runs are never chosen)."""
    rows = []
    for p, e in zip(precs, erecs):
        r = p["rows"][0]
        ev = pd.DataFrame(e["rows"])
        row = {"size": r["size"], "N": r["non_embedding"], "lr": r["lr"], "train_loss": r["train_loss"],
               "diverged": r["diverged"], "unit": p["key"]}
        for split, g in ev.groupby("split"):
            row[f"{split}_ce"] = g["ce"].mean()
            row[f"{split}_ce_se"] = domain_mean_se(g["ce_se"])
        rows.append(row)
    t = pd.DataFrame(rows).sort_values(["N", "lr"]).reset_index(drop=True)
    ok = ~t["diverged"] & t["val_ce"].notna()
    best = t[ok].groupby("size")["val_ce"].idxmin()
    t["chosen"] = t.index.isin(best.values)
    return t


def bracketed_sweep(sweep: Sweep, sizes, profile: str, params: dict, backend: str):
    """Train and evaluate every size at its rates, bracketed by `core.regime.bracketed_rounds` up to
    `lr_bracket` rounds (module docstring). Each size's rates depend on its own results only, so a
    one-size sweep (`base_key`) chooses what the whole ladder does.
    Returns (pretrain records, eval records, sweep table)."""
    def train_round(rates):
        pre = [pretrain_unit(s, profile, params, lr) for s in sizes for lr in rates[s]]
        precs, erecs = _train_and_eval(sweep, pre, params, backend)
        table = sweep_table(precs, erecs)
        return (precs, erecs, table), table

    rounds = 0 if params["lr"] is not None else params["lr_bracket"]
    return bracketed_rounds({s: learning_rates(s, params) for s in sizes}, grid_ratio(params["lrs"]), rounds,
                            train_round)


def _size_sweep(size: str, profile: str, backend: str = "local") -> pd.DataFrame:
    params = resolve_params(sys.modules[__name__], profile, {})
    return bracketed_sweep(Sweep(STUDY, profile), [size], profile, params, backend)[2]


def base_key(size: str, profile: str) -> str:
    """Unit key of the chosen base of `size` at `profile` (its sweep is trained now if missing)."""
    t = _size_sweep(size, profile)
    return t.loc[t["chosen"], "unit"].item()


def base_checkpoint(size: str, profile: str) -> Path:
    """Path of the chosen base model of `size` at `profile` (trained now if missing)."""
    return find_checkpoint(base_key(size, profile))


STEP_COLUMNS = ["size", "N", "lr", "batch_tokens", "steps", "test_ce", "test_ce_se", "base_batch_tokens",
                "base_steps", "base_test_ce", "base_test_ce_se", "gain", "gain_se_bound", "unit"]


def step_check_table(sweep: Sweep, params: dict, profile: str, lr_sweep: pd.DataFrame,
                     backend: str) -> tuple[pd.DataFrame, float]:
    """The step check (module docstring): per checked size in the ladder, test CE at the profile's batch (the chosen
    base, from `lr_sweep`) and at the smaller batch (same tokens, same rate, more steps); `gain` =
    base - small-batch CE with the conservative error bound of a difference on shared windows (the
    sum of the two standard errors). Empty (with the columns) when `step_check` is None. Returns
    (table, unit compute seconds)."""
    sc = params["step_check"]
    if sc is None:
        return pd.DataFrame(columns=STEP_COLUMNS), 0.0
    chosen = lr_sweep[lr_sweep["chosen"]].set_index("size")
    sizes = [s for s in sc["sizes"] if s in chosen.index]  # sizes outside the ladder are skipped
    if not sizes:
        return pd.DataFrame(columns=STEP_COLUMNS), 0.0
    small = {**params, "batch_tokens": sc["batch_tokens"]}
    units = [pretrain_unit(s, profile, small, float(chosen.loc[s, "lr"])) for s in sizes]
    precs, erecs = _train_and_eval(sweep, units, small, backend)
    t = sweep_table(precs, erecs)
    rows = []
    for r, p in zip(t.itertuples(), precs):
        b = chosen.loc[r.size]
        rows.append({"size": r.size, "N": r.N, "lr": r.lr, "batch_tokens": sc["batch_tokens"],
                     "steps": p["rows"][0]["steps"], "test_ce": r.test_ce, "test_ce_se": r.test_ce_se,
                     "base_batch_tokens": params["batch_tokens"],
                     "base_steps": params["pretrain_tokens"] // params["batch_tokens"],
                     "base_test_ce": b["test_ce"], "base_test_ce_se": b["test_ce_se"],
                     "gain": b["test_ce"] - r.test_ce, "gain_se_bound": b["test_ce_se"] + r.test_ce_se, "unit": r.unit})
    out = pd.DataFrame(rows, columns=STEP_COLUMNS).sort_values("N").reset_index(drop=True)
    return out, sum(r["wall_s"] for r in precs + erecs)


# ---------------------------------------------------------------------------------------------
# the study


@exclusive_run
def run(profile: str, backend: str = "local", **overrides) -> ResultStore:
    params = validate_run(sys.modules[__name__], profile, backend, overrides)
    t0 = time.perf_counter()
    sweep = Sweep(STUDY, profile)
    precs, erecs, lr_sweep = bracketed_sweep(sweep, params["sizes"], profile, params, backend)
    chosen = set(lr_sweep.loc[lr_sweep["chosen"], "unit"])

    ladder = M.ladder_table(profile).set_index("size") if set(params["sizes"]) <= set(M.ladder(profile)) \
        else pd.DataFrame(index=pd.Index([], name="size"))
    ep = epochs(params, params["pretrain_tokens"])
    rows, curves, evals = [], [], []
    for p, e in zip(precs, erecs):
        r = dict(p["rows"][0])
        for c in r.pop("curve"):
            # the curve's own `lr` is the schedule's rate at that step; `peak_lr` names the run
            curves.append({"size": r["size"], "peak_lr": r["lr"], **c})
        evals += [{"size": r["size"], "lr": r["lr"], "chosen": p["key"] in chosen, **x} for x in e["rows"]]
        if p["key"] in chosen:
            rows.append({**r, "max_epochs": float(ep.max()), "unit": p["key"]})
    summary = pd.DataFrame(rows).merge(lr_sweep[["unit", "val_ce", "val_ce_se", "test_ce", "test_ce_se"]], on="unit")
    cols = [c for c in ("d_model", "n_layers", "n_heads", "d_ff", "context") if c in ladder.columns]
    summary = summary.join(ladder[cols], on="size").sort_values("non_embedding").reset_index(drop=True)
    evals = pd.DataFrame(evals)
    step, step_s = step_check_table(sweep, params, profile, lr_sweep, backend)
    store = ResultStore(STUDY, profile)
    store.write("lr_sweep", lr_sweep)
    store.write("ladder", summary)
    store.write("curves", pd.DataFrame(curves))
    store.write("evals", evals)
    store.write("ce", evals[evals["chosen"] & (evals["split"] == "test")].drop(columns=["chosen", "split"])
                .reset_index(drop=True))
    store.write("step_check", step)
    from scalinglaws.studies.testbed.claims import claims
    store.write("claims", claims({"ladder": summary, "lr_sweep": lr_sweep, "step_check": step}, profile))
    store.write("domains", D.domain_table(domains=params["domains"]))
    store.write("tokenizer", D.tokenizer_stats(domains=params["domains"]))
    compute_s = sum(r["wall_s"] for r in precs + erecs) + step_s
    store.write_run_provenance(provenance(params, time.perf_counter() - t0, profile=profile,
                                      unit_compute_s=compute_s, backend=backend))
    return store
