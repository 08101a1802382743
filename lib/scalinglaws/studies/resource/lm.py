"""The resource model on our language models: width and depth ladders.

The resource model says a subtask's loss falls like 1/N with N the neurons given to it; if the
shares stay constant, the total loss falls like N^-1 too. Parameters per layer grow like N^2, so

    fixed depth L:      N_p ~ N^2 L ~ N^2   =>  loss ~ N_p^-1/2
    depth L ~ N:        N_p ~ N^2 L ~ N^3   =>  loss ~ N_p^-1/3   (Chinchilla: alpha = 0.34)

Two ladders test this on the testbed's model family (`scalinglaws.models`, Llama blocks, vocabulary
4096) and trainer (`scalinglaws.training.train`): widths d_model at a fixed depth, and widths with
depth L = d_model / depth_ratio. Every model gets tokens = clip(r N_nonemb, min, max) (the same
tokens-per-parameter rule r on non-embedding parameters) and is scored by its mean cross-entropy
(nats/token) on fixed held-out windows of the validation split.
"""
from __future__ import annotations

import torch

from scalinglaws.models import Size, build_model, count_params, model_config
from scalinglaws.models.dense import _ff


def lm_size(d_model: int, n_layers: int, head_dim: int, context: int) -> Size:
    """A ladder rung: Llama MLP width 8/3 d (rounded to 16), heads of `head_dim` dimensions."""
    return Size(d_model, n_layers, max(1, d_model // head_dim), _ff(d_model), context)


def ladder_sizes(widths, fixed_depth: int, depth_ratio: int, head_dim: int, context: int) -> list[dict]:
    """The two ladders as rows {ladder, d_model, n_layers}: 'width' (depth fixed) and 'depth'
    (n_layers = max(1, d_model // depth_ratio): depth grows in proportion to width)."""
    rows = [{"ladder": "width", "d_model": d, "n_layers": fixed_depth} for d in widths]
    rows += [{"ladder": "depth", "d_model": d, "n_layers": max(1, d // depth_ratio)} for d in widths]
    return rows


def token_rule(non_embedding: int, tokens_per_param: float, min_tokens: int, max_tokens: int,
               batch_tokens: int) -> int:
    """tokens = clip(r N_nonemb, min, max), a whole number of batches."""
    d = min(max(tokens_per_param * non_embedding, min_tokens), max_tokens)
    return max(batch_tokens, int(d // batch_tokens * batch_tokens))


def train_rung(cfg: dict, train_arrays, windows: torch.Tensor) -> dict:
    """Build, train and score one ladder rung; cfg has d_model, n_layers, head_dim, context, seed,
    tokens_per_param, min_tokens, max_tokens, batch_tokens, lr."""
    from scalinglaws.evaluation import heldout_loss
    from scalinglaws.training import train

    size = lm_size(cfg["d_model"], cfg["n_layers"], cfg["head_dim"], cfg["context"])
    counts = count_params(model_config(size))
    tokens = token_rule(counts["non_embedding"], cfg["tokens_per_param"], cfg["min_tokens"],
                        cfg["max_tokens"], cfg["batch_tokens"])
    model = build_model(size, seed=cfg["seed"])
    res = train(model, train_arrays, tokens=tokens, batch_tokens=cfg["batch_tokens"], seq_len=cfg["context"],
                lr=cfg["lr"], seed=cfg["seed"], progress=False)
    return {"size": size.name, "n_heads": size.n_heads, "d_ff": size.d_ff,
            "params_total": counts["total"], "params_non_embedding": counts["non_embedding"],
            "params_embedding": counts["embedding"], "tokens": res.tokens,
            "tokens_per_param": res.tokens / counts["non_embedding"],
            "rule_clipped": bool(res.tokens != int(cfg["tokens_per_param"] * counts["non_embedding"]
                                                   // cfg["batch_tokens"] * cfg["batch_tokens"])),
            "train_loss": res.final_loss, "loss": heldout_loss(model, windows), "wall_s": res.wall_s}
