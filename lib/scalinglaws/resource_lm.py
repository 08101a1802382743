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

import numpy as np
import torch

from scalinglaws.models import Size, _ff, build_model, count_params, model_config


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


def heldout_windows(arrays, seq_len: int, per_array: int) -> torch.Tensor:
    """`per_array` evenly spaced windows of seq_len + 1 tokens from each held-out array (fixed)."""
    out = []
    for a in arrays:
        a = np.asarray(a, dtype=np.int64)
        starts = np.linspace(0, len(a) - seq_len - 1, per_array).astype(np.int64)
        out.append(np.stack([a[s:s + seq_len + 1] for s in starts]))
    return torch.from_numpy(np.concatenate(out))


@torch.no_grad()
def heldout_loss(model, windows: torch.Tensor, batch: int = 64) -> float:
    """Mean next-token cross-entropy (nats/token) over the windows."""
    model.eval()
    tot, n = 0.0, 0
    for chunk in windows.split(batch):
        logits = model(input_ids=chunk[:, :-1]).logits
        tot += torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), chunk[:, 1:].reshape(-1),
                                                 reduction="sum").item()
        n += chunk[:, 1:].numel()
    return tot / n


def train_rung(cfg: dict, train_arrays, windows: torch.Tensor) -> dict:
    """Build, train and score one ladder rung; cfg has d_model, n_layers, head_dim, context, seed,
    tokens_per_param, min_tokens, max_tokens, batch_tokens, lr."""
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
