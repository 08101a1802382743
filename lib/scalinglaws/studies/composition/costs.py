"""One cost accounting for every arm of the composition study.

Every arm is charged with the same formulas, built on the models' own FLOP helpers
(`models.flops_per_token` for dense models, `models.routed.flops_per_token` for routed ones, both
training FLOPs per token = 6 x parameters a token meets + the LM head + attention; a routed top-1
model costs its dense counterpart plus the router's 6 d E per routed block):

    pretrain_flops      FLOPs that produced the starting point: 6 N_flops D of the dense base
                        (D = the testbed's pretraining tokens), or of the routed model trained from
                        scratch (its own fpt x its tokens)
    finetune_flops      fine-tuning tokens x the trained model's fpt: k experts of T tokens (merge),
                        one model on k T tokens (multitask, upcycled), 0 (base, scratch)
    merge_flops         MERGE_FLOPS_PER_PARAM x k x the model's parameters (subtract the base, scale,
                        add: a few FLOPs per weight per expert; Average and Task Arithmetic)
    total_flops         pretrain + finetune + merge
    total_flops_amortised  the same with the shared base's pretraining written off (it exists
                        anyway and serves every arm and every user); the scratch model's
                        pretraining is its own, so it stays in
    inference_flops_per_token  forward only: fpt / 3 (2 FLOPs per weight forward vs 6 to train)
    params_stored       parameters of the model that is served (tied embeddings counted once);
                        `params_active` those a token meets

Why both pretraining columns: with the base given (amortised), keeping it is free and a larger
base costs nothing either, so the question becomes purely about fine-tuning; charged in full, a
larger base has to pay for its own pretraining. The planner takes either.
"""
from __future__ import annotations

from scalinglaws import models as Mo
from scalinglaws.models import routed as RT

MERGE_FLOPS_PER_PARAM = 3.0
ARMS = ("base", "merge", "multitask", "upcycled", "scratch_routed")
COST_COLUMNS = ["pretrain_tokens", "finetune_tokens", "pretrain_flops", "finetune_flops", "merge_flops",
                "total_flops", "total_flops_amortised", "inference_flops_per_token", "params_stored",
                "params_active"]


def dense_fpt(size: str) -> float:
    return float(Mo.flops_per_token(Mo.model_config(size)))


def routed_cfg(size: str, experts: int, router: str, routed_every: int):
    return RT.routed_config(size, experts, router, routed_every=routed_every)


def arm_costs(arm: str, size: str, k: int, *, pretrain_tokens: int, expert_tokens: int, router: str = "rlr",
              routed_every: int = 2, scratch_tokens: int | None = None) -> dict:
    """The cost columns of one arm at (size, k); `expert_tokens` = fine-tuning tokens of one expert
    (multitask and upcycled models get k x that, the k experts' total)."""
    if arm not in ARMS:
        raise ValueError(f"arm={arm!r} is not one of {list(ARMS)}")
    dense = Mo.model_config(size)
    fd = dense_fpt(size)
    dense_total = Mo.param_formula(dense)["total"]
    pre_tok, ft_tok, merge = int(pretrain_tokens), 0, 0.0
    pre = fd * pre_tok
    fpt_served, params, active, shared = fd, dense_total, dense_total, True
    if arm in ("upcycled", "scratch_routed"):
        cfg = routed_cfg(size, k, router, routed_every)
        fpt_served = float(RT.flops_per_token(cfg))
        pc = RT.param_counts(cfg)
        params, active = pc["total"], pc["active"] + pc["embedding"]
    if arm == "merge":
        ft_tok = k * int(expert_tokens)
        merge = MERGE_FLOPS_PER_PARAM * k * dense_total
        ft = fd * ft_tok
    elif arm == "multitask":
        ft_tok = k * int(expert_tokens)
        ft = fd * ft_tok
    elif arm == "upcycled":
        ft_tok = k * int(expert_tokens)
        ft = fpt_served * ft_tok
    elif arm == "scratch_routed":
        pre_tok = int(scratch_tokens if scratch_tokens is not None else pretrain_tokens)
        pre, ft, shared = fpt_served * pre_tok, 0.0, False
    else:
        ft = 0.0
    return {"pretrain_tokens": pre_tok, "finetune_tokens": ft_tok, "pretrain_flops": pre, "finetune_flops": ft,
            "merge_flops": merge, "total_flops": pre + ft + merge,
            "total_flops_amortised": ft + merge + (0.0 if shared else pre),
            "inference_flops_per_token": fpt_served / 3.0, "params_stored": int(params), "params_active": int(active)}
