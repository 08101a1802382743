"""The composition study's own units: only what the merging study does not already store.

Experts and bases are the merging study's and the testbed's units (run through their sweeps, so
they are trained once for all studies). Added here:

    multitask_model  the base fine-tuned on the union of the k domains with k x the expert's
                     tokens, its config the merging study's `multitask` config shape (the expert
                     recipe with `domain` replaced by pool, k, train_domains, tokens, data) minus
                     `eval`; unlike the merging unit it keeps a checkpoint, because every arm must
                     be scored window by window for paired intervals
    upcycled         a routed model with E = k experts built from the dense base (sparse
                     upcycling: every expert a copy of the dense MLP, attention, norms and
                     embeddings copied, router fresh), fine-tuned like the multitask model
    scratch_routed   a routed model with E = k trained from scratch on the k domains' pretraining
                     splits at the pretraining budget, the testbed's recipe and learning rate
    eval             one model (a checkpoint, or a merge of a base and experts made in memory) on
                     the per-domain uniform windows (`evaluation.evaluate` / `evaluate_merges`);
                     rows hold the per-window NLL sums, so the bootstrap (`analysis.py`) can
                     resample the same windows for every arm

Why a gate-1 router for upcycling: a routed block computes gate x expert(x). With identical
experts the upcycled model equals the dense base exactly only if gate = 1 (Hash, RL-R); Switch
would scale every routed MLP by its top softmax probability (1/E at a fresh router) and S-BASE by
a sigmoid, so the "upcycled" start would not be the base.
"""
from __future__ import annotations

import numpy as np

from scalinglaws import data as D
from scalinglaws import evaluation as EV
from scalinglaws import models as Mo
from scalinglaws.core.sweep import Unit, checkpoint_dir, find_checkpoint
from scalinglaws.models import routed as RT
from scalinglaws.models.routers import gate_one_routers
from scalinglaws.training import default_device

# routers whose gate is 1: upcycling preserves the base's function (declared by each router: `Router.gate_one`)
GATE_ONE_ROUTERS = gate_one_routers()
SCHEDULE_KEYS = ("ft_warmup_frac", "ft_min_lr_frac", "ft_weight_decay", "ft_grad_clip", "ft_batch_tokens")


def _save(model, unit: Unit, res) -> dict:
    from scalinglaws.data.tokenizer import load_tokenizer
    Mo.save_checkpoint(model.cpu(), checkpoint_dir(unit), meta={"unit": unit.config, "train_loss": res.final_loss},
                       tokenizer=load_tokenizer())
    return {"size": unit.config["size"], "train_loss": res.final_loss, "tokens": res.tokens, "steps": res.steps,
            "wall_s": res.wall_s}


def _finetune(model, config: dict, arrays: dict):
    from scalinglaws.training import train
    model.train()
    return train(model, arrays, tokens=config["tokens"], batch_tokens=config["ft_batch_tokens"], lr=config["ft_lr"],
                 warmup_frac=config["ft_warmup_frac"], min_lr_frac=config["ft_min_lr_frac"],
                 weight_decay=config["ft_weight_decay"], grad_clip=config["ft_grad_clip"], seed=config["seed"],
                 device=default_device(), progress=False, weights={d: 1.0 for d in arrays})


def multitask_model(config: dict) -> dict:
    model = Mo.load_unit_checkpoint(config["base"], device=default_device())
    res = _finetune(model, config, {d: D.token_ids(d, "finetune") for d in config["train_domains"]})
    return _save(model, Unit("multitask_model", config), res)


def upcycle(base_key: str, size: str, experts: int, router: str, routed_every: int, seed: int):
    """The upcycled routed model of a dense checkpoint (before any fine-tuning)."""
    dense = Mo.load_unit_checkpoint(base_key, device="cpu")
    routed = RT.build_routed(size, experts, router, seed=seed, routed_every=routed_every, hash_seed=seed)
    return RT.copy_dense_weights(routed, dense)


def upcycled(config: dict) -> dict:
    model = upcycle(config["base"], config["size"], config["experts"], config["router"], config["routed_every"],
                    config["seed"]).to(default_device())
    RT.set_experts_implementation(model, RT.default_experts_implementation(default_device()))
    res = _finetune(model, config, {d: D.token_ids(d, "finetune") for d in config["train_domains"]})
    return _save(model, Unit("upcycled", config), res)


def scratch_routed(config: dict) -> dict:
    from scalinglaws.training import train
    model = RT.build_routed(config["size"], config["experts"], config["router"], seed=config["seed"],
                            routed_every=config["routed_every"], hash_seed=config["seed"],
                            experts_implementation=RT.default_experts_implementation(default_device()))
    arrays = {d: D.token_ids(d, "pretrain") for d in config["train_domains"]}
    res = train(model, arrays, tokens=config["tokens"], batch_tokens=config["batch_tokens"], lr=config["lr"],
                warmup_frac=config["warmup_frac"], min_lr_frac=config["min_lr_frac"],
                weight_decay=config["weight_decay"], grad_clip=config["grad_clip"], seed=config["seed"],
                device=default_device(), progress=False, weights={d: 1.0 for d in arrays})
    return _save(model, Unit("scratch_routed", config), res)


# ---------------------------------------------------------------------------------------------
# evaluation


def eval_config(spec: dict, domains, params: dict, seq_len: int) -> dict:
    return {"model": spec, "size": spec["size"], "domains": list(domains),
            "tokens_per_domain": params["eval_tokens_per_domain"], "seq_len": seq_len, "seed": params["seed"],
            "data": D.checksums(list(domains), "test")}


def eval_spec(config: dict) -> EV.EvalSpec:
    """Uniform windows of each domain's test split (the same for every arm and subset), scored by
    the model's own forward one domain at a time (routed arms included), 64 windows per forward."""
    return EV.EvalSpec(config["domains"], config["tokens_per_domain"], config["seq_len"], config["seed"],
                       backend="forward", batch=64)


def evaluate(config: dict) -> list[dict]:
    """Per domain: the NLL sum of every window (nats) and the tokens each window scores. The model
    spec is {"kind": "checkpoint", "key"} or {"kind": "merge", "base", "experts", "method",
    "options", "seed"} (merged in memory, `evaluation.evaluate_merges`, like the merging study)."""
    spec, device = config["model"], default_device()
    ev = eval_spec(config)
    if spec["kind"] == "checkpoint":
        res = EV.evaluate(RT.load_routed(find_checkpoint(spec["key"]), device=device), ev)
    elif spec["kind"] == "merge":
        base = Mo.load_unit_checkpoint(spec["base"], device=device)
        experts = [Mo.load_unit_checkpoint(k, device=device).state_dict() for k in spec["experts"]]
        merge = EV.Merge(tuple(range(len(experts))), spec["method"], spec["seed"], spec["options"])
        res = EV.evaluate_merges(base, experts, [merge], ev)
    else:
        raise ValueError(f"unknown model spec kind {spec['kind']!r}")
    return [{"domain": d, "nll": np.asarray(res.window_sums(0, d), dtype=float).tolist(),
             "tokens_per_window": config["seq_len"]} for d in config["domains"]]
