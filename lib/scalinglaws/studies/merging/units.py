"""The merging study's units: pure functions of their JSON configs (see `study.py` for the design).

    pilot        fine-tune one (domain, lr, tokens, seed) of the pilot grid, score base and expert
    finetune     one expert with the chosen recipe; its checkpoint is the product
    specialise   the base and every expert of one size on every pool domain, with sampling noise
    merge_eval   one (pool, size, method) chunk of subsets: merged in memory, evaluated stacked
    multitask    the base fine-tuned on the union of k domains of a pool
    theory       (c^2/2) Tr(H Sigma) and friends for one (pool, size)
    fit          one joint (N, k) law fit with its bootstrap
    extrapolate  the extrapolation tests of one curve family

Evaluation: every model is scored through `evaluation.evaluate` / `evaluate_merges` on the unit's
`eval_spec`: fixed unbiased windows of the test split (starts uniform over each domain's whole
token stream, `tokens_per_domain` scored tokens per domain, window = the model context), many
models at once with the stacked backend, reduced per domain (`Evaluation.frame`). A domain's
windows depend only on (domain, tokens, context, seed), so the same windows serve every pool.
"""
from __future__ import annotations

import copy

import numpy as np
import pandas as pd

from scalinglaws import data as D
from scalinglaws import evaluation as EV
from scalinglaws import models as Mo
from scalinglaws.core.sweep import Unit, checkpoint_dir, find_checkpoint
from scalinglaws.studies.merging import analysis as MA
from scalinglaws.studies.merging import pilot as PI
from scalinglaws.studies.merging import subsets as S
from scalinglaws.training import default_device

SCHEDULE_KEYS = ("ft_warmup_frac", "ft_min_lr_frac", "ft_weight_decay", "ft_grad_clip", "ft_batch_tokens")


# ---------------------------------------------------------------------------------------------
# evaluation windows


def eval_config(domains, params: dict, seq_len: int) -> dict:
    return {"domains": list(domains), "tokens_per_domain": params["eval_tokens_per_domain"], "seq_len": seq_len,
            "seed": params["seed"], "data": D.checksums(list(domains), "test")}


def eval_spec(ev: dict) -> EV.EvalSpec:
    """The evaluation spec of a unit's `eval` config: uniform windows, stacked evaluator, every
    model of the unit in one pass."""
    return EV.EvalSpec(ev["domains"], ev["tokens_per_domain"], ev["seq_len"], ev["seed"], split="test")


def score(work, states, ev: dict) -> tuple[np.ndarray, pd.DataFrame]:
    """(nll (models, windows), domain_metrics rows with column `model`) of state dicts."""
    res = EV.evaluate(work, eval_spec(ev), states=states)
    return res.nll, res.frame()


def _load(key: str):
    return Mo.load_unit_checkpoint(key, device=default_device())


# ---------------------------------------------------------------------------------------------
# fine-tuning


def train_from_base(config: dict, arrays: dict, tokens: int):
    from scalinglaws.training import train
    model = _load(config["base"])
    model.train()
    res = train(model, arrays, tokens=tokens, batch_tokens=config["ft_batch_tokens"], lr=config["ft_lr"],
                warmup_frac=config["ft_warmup_frac"], min_lr_frac=config["ft_min_lr_frac"],
                weight_decay=config["ft_weight_decay"], grad_clip=config["ft_grad_clip"],
                seed=config["seed"], device=default_device(), progress=False,
                weights={d: 1.0 for d in arrays})
    return model, res


def pilot(config: dict) -> dict:
    """One pilot run: fine-tune, then score base and expert on every pool domain (no checkpoint)."""
    d = config["domain"]
    model, res = train_from_base(config, {d: D.token_ids(d, "finetune")}, config["tokens"])
    base = _load(config["base"])
    _, m = score(base, [base.state_dict(), model.state_dict()], config["eval"])
    return {**PI.run_rows(config, m, config["pools"]), "train_loss": res.final_loss, "wall_s": res.wall_s}


def finetune(config: dict) -> dict:
    from scalinglaws.data.tokenizer import load_tokenizer
    d = config["domain"]
    model, res = train_from_base(config, {d: D.token_ids(d, "finetune")}, config["tokens"])
    Mo.save_checkpoint(model.cpu(), checkpoint_dir(Unit("finetune", config)),
                       meta={"unit": config, "train_loss": res.final_loss}, tokenizer=load_tokenizer())
    return {"size": config["size"], "N": Mo.count_params(model)["non_embedding"], "domain": d,
            "lr": config["ft_lr"], "finetune_tokens": res.tokens, "steps": res.steps,
            "train_loss": res.final_loss, "wall_s": res.wall_s}


# ---------------------------------------------------------------------------------------------
# evaluation units


def _states(config: dict):
    """(work model, base state, expert states) of a unit, loaded once."""
    base = _load(config["base"])
    work = copy.deepcopy(base)
    return work, base.state_dict(), [_load(k).state_dict() for k in config["experts"]]


def specialise(config: dict) -> dict:
    """Base and every expert on every pool domain, and the sampling noise of those numbers: per
    (model, domain) the bootstrap standard error of CE over windows, and for every expert the
    paired standard error of its CE change from the base (the same resampled windows)."""
    import time

    t0 = time.perf_counter()
    work, base, experts = _states(config)
    names = ["base"] + list(config["domains"])
    res = EV.evaluate(work, eval_spec(config["eval"]), states=[base] + experts)
    nll, m = res.nll, res.frame()
    spec = [{"expert_domain": names[r.model], "eval_domain": r.domain, "ce": r.ce, "bpb": r.bpb, "tokens": r.tokens}
            for r in m.itertuples()]
    stack = np.concatenate([nll, nll[1:] - nll[:1]])  # models, then (expert - base): paired differences
    labels = names + [f"{d} - base" for d in names[1:]]
    b = res.bootstrap(config["n_boot"], config["seed"], rows=stack)
    noise = [{"model": labels[r.model], "paired": r.model >= len(names), "eval_domain": r.domain, "ce": r.ce,
              "ce_se": r.ce_se, "ce_lo": r.ce_lo, "ce_hi": r.ce_hi} for r in b.itertuples()]
    return {"spec": spec, "noise": noise, "wall_s": time.perf_counter() - t0}


def subset_seed(seed: int, subset, M: int) -> int:
    """seed * 2^M + bitmask(subset): a distinct, reproducible seed for every subset of a pool."""
    return seed * 2 ** M + S.bitmask(subset)


def merge_eval(config: dict) -> list[dict]:
    """Merge every subset of the chunk in memory, evaluate all of them in one stacked pass."""
    work, _, experts = _states(config)
    M = len(config["experts"])
    keys = list(config["subsets"])
    merges = [EV.Merge(tuple(S.parse_subset(key)), config["registry_method"],
                       subset_seed(config["seed"], S.parse_subset(key), M), config["options"]) for key in keys]
    seeds = [mg.seed for mg in merges]
    m = EV.evaluate_merges(work, experts, merges, eval_spec(config["eval"])).frame()
    idx = {d: i for i, d in enumerate(config["domains"])}
    rows = []
    for r in m.itertuples():
        subset = S.parse_subset(keys[r.model])
        rows.append({"subset": keys[r.model], "k": len(subset), "eval_domain": r.domain,
                     "in_subset": idx[r.domain] in subset, "ce": r.ce, "bpb": r.bpb, "seed": seeds[r.model]})
    return rows


def multitask(config: dict) -> list[dict]:
    arrays = {d: D.token_ids(d, "finetune") for d in config["train_domains"]}
    model, res = train_from_base(config, arrays, config["tokens"])
    model = model.to(default_device())
    _, m = score(model, [model.state_dict()], config["eval"])
    return [{"eval_domain": r.domain, "in_subset": r.domain in config["train_domains"], "ce": r.ce, "bpb": r.bpb,
             "tokens": r.tokens, "train_loss": res.final_loss, "wall_s": res.wall_s, "finetune_tokens": res.tokens}
            for r in m.itertuples()]


def theory(config: dict) -> list[dict]:
    """The theory check of one (pool, size) on its experts (`theory.theory_table`)."""
    from scalinglaws.studies.merging.theory import theory_table
    ckpts = {config["size"]: (find_checkpoint(config["base"]), [find_checkpoint(k) for k in config["experts"]])}
    df = theory_table(config["profile"], checkpoints=ckpts, methods=config["methods"],
                      tokens_per_domain=config["tokens_per_domain"], n_boot=config["n_boot"],
                      seed=config["seed"], domains=config["domains"])
    return df.drop(columns=["size"]).to_dict("records")


def extrapolate(config: dict) -> list[dict]:
    pts = pd.DataFrame(config["points"], columns=["size", "N", "k", "y"])
    return MA.extrapolate_points(pts, config["method"], config["scope"], config["bootstrap"], config["seed"],
                                 pool=config["pool"])


def fit(config: dict) -> dict:
    pts = pd.DataFrame(config["points"], columns=["N", "k", "y"])
    scale = MA.y_scale(pts["y"])
    res = MA.fit_law(pts, bootstrap=config["bootstrap"], seed=config["seed"], scale=scale)
    return {"fit": MA.fit_rows(config["method"], config["scope"], res, scale, pool=config["pool"],
                               r2_min=config["r2_min"], points=pts),
            "samples": MA.sample_rows(config["method"], config["scope"], res, scale, pool=config["pool"])}
