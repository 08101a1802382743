"""Held-out cross-entropy per domain, computed exactly as lm-eval's `loglikelihood_rolling` does.

For one document with tokens t_1..t_n (the tokenizer's default encoding, as lm-eval's
`tok_encode`), lm-eval (0.4.13, `utils.get_rolling_token_windows` with context_len = 1 and
`make_disjoint_window`, `HFLM._loglikelihood_tokens`) scores every token exactly once:

    full = [EOT] + t                        (EOT = bos id, else eos id: the prefix token)
    window 1: full[0 : m + 1],  m = min(L, n)          scores all m targets
    window k: full[e - L : e + 1] for the next end e = min(prev_e + L, n), scoring the last
              e - prev_e targets; the other positions are context only

with L = max_length = the model context (config n_positions / max_position_embeddings / n_ctx).
Each window feeds its first len - 1 tokens to the model and reads log p of the next token.
Then, per document set,

    nll_sum             = - sum over docs and scored tokens of log p(token | window context)
    ce_nats_per_token   = nll_sum / tokens                 (tokens = sum of n)
    bits_per_byte       = nll_sum / (bytes ln 2)           (bytes = UTF-8 length of the text)

which are lm-eval's `bits_per_byte` and log(`byte_perplexity`) * bytes aggregates. Unlike
lm-eval (one padded batch of windows at a time, per-window Python slicing) we build all windows
with numpy, group windows of equal length (all full windows have length L + 1) into dense
batches, and sum the masked token losses on the device.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from scalinglaws import data
from scalinglaws.core.validation import check_int

def model_context(model) -> int:
    """lm-eval's `resolve_max_length`: the first of n_positions, max_position_embeddings, n_ctx."""
    cfg = getattr(model.config, "text_config", None) or model.config
    for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
        if getattr(cfg, attr, None) is not None:
            return int(getattr(cfg, attr))
    raise ValueError("model config has no context length")


def prefix_token_id(tokenizer) -> int:
    return tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id


def encode_texts(tokenizer, texts) -> list[list[int]]:
    """lm-eval's `HFLM.tok_encode`: default special tokens, except for a text that already starts
    with the prefix token's string."""
    prefix = tokenizer.decode(prefix_token_id(tokenizer))
    out = [None] * len(texts)
    for flag in (True, False):
        idx = [i for i, t in enumerate(texts) if (not t.startswith(prefix)) == flag]
        if idx:
            enc = tokenizer([texts[i] for i in idx], add_special_tokens=flag)["input_ids"]
            for i, ids in zip(idx, enc):
                out[i] = list(ids)
    return out


def rolling_windows(n: int, max_len: int) -> list[tuple[int, int, int]]:
    """(start, length, n_scored) of each window over full = [EOT] + t (len n + 1); see module doc."""
    if n == 0:
        return []
    m = min(max_len, n)
    wins = [(0, m + 1, m)]
    prev = m
    while prev < n:
        end = min(prev + max_len, n)
        wins.append((end - max_len, max_len + 1, end - prev))
        prev = end
    return wins


def _rolling_table(docs, prefix_id: int, L: int) -> tuple[np.ndarray, np.ndarray]:
    """(flat tokens [EOT] + doc per doc, windows (doc, absolute start in flat, length, n_scored))."""
    lens = np.array([len(d) for d in docs], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lens + 1)])
    flat = np.empty(int(offsets[-1]), dtype=np.int64)
    wins = []
    for i, d in enumerate(docs):
        flat[offsets[i]] = prefix_id
        flat[offsets[i] + 1: offsets[i + 1]] = d
        wins.extend((i, offsets[i] + s, ln, p) for s, ln, p in rolling_windows(len(d), L))
    return flat, np.array(wins, dtype=np.int64).reshape(-1, 4)


@torch.inference_mode()
def evaluate_token_lists(model, docs: list[list[int]], prefix_id: int, *, batch_size: int = 32,
                         device=None, max_length: int | None = None) -> np.ndarray:
    """Negative log-likelihood (nats) of each token list under the rolling-window protocol."""
    check_int("batch_size", batch_size, minimum=1)
    L = max_length or model_context(model)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    flat, w = _rolling_table(docs, prefix_id, L)
    nll = np.zeros(len(docs), dtype=np.float64)
    if not len(w):
        return nll
    was_training = model.training
    model.eval()
    for length in np.unique(w[:, 2]):
        group = w[w[:, 2] == length]
        pos = np.arange(length - 1)
        for b in range(0, len(group), batch_size):
            g = group[b: b + batch_size]
            tok = torch.from_numpy(flat[g[:, 1, None] + np.arange(length)]).to(device)
            logits = model(input_ids=tok[:, :-1]).logits.float()
            lp = torch.log_softmax(logits, dim=-1).gather(-1, tok[:, 1:, None]).squeeze(-1)
            # score only the last n_scored positions of each window
            mask = torch.from_numpy(pos[None, :] >= (length - 1 - g[:, 3, None])).to(device)
            per_win = -(lp * mask).sum(-1).double().cpu().numpy()
            np.add.at(nll, g[:, 0], per_win)
    model.train(was_training)
    return nll


def evaluate_texts(model, tokenizer, texts, batch_size: int = 32, device=None,
                   max_length: int | None = None, return_docs: bool = False) -> dict:
    """{'nll_sum', 'tokens', 'bytes', 'docs', 'ce_nats_per_token', 'bits_per_byte'} of `texts`
    (see the module docstring); `return_docs` adds the per-document 'doc_nll' array."""
    texts = list(texts)
    docs = encode_texts(tokenizer, texts)
    nll = evaluate_token_lists(model, docs, prefix_token_id(tokenizer), batch_size=batch_size,
                               device=device, max_length=max_length)
    n_tok = int(sum(len(d) for d in docs))
    n_bytes = int(sum(len(t.encode("utf-8")) for t in texts))
    total = float(nll.sum())
    out = {"nll_sum": total, "tokens": n_tok, "bytes": n_bytes, "docs": len(texts),
           "ce_nats_per_token": total / n_tok if n_tok else math.nan,
           "bits_per_byte": total / (n_bytes * math.log(2)) if n_bytes else math.nan}
    if return_docs:
        out["doc_nll"] = nll
    return out


def evaluate_domains(model, tokenizer, domains, split: str = "test", max_docs: int | None = None,
                     batch_size: int = 32, device=None) -> pd.DataFrame:
    """One row per domain: domain, docs, tokens, bytes, nll_sum, ce (nats/token), bpb.
    `max_docs` keeps the first documents of each split (deterministic)."""
    if max_docs is not None:
        check_int("max_docs", max_docs, minimum=1)
    rows = []
    for domain in domains:
        texts = data.load_texts(domain, split)[:max_docs]
        r = evaluate_texts(model, tokenizer, texts, batch_size=batch_size, device=device)
        rows.append({"domain": domain, "docs": r["docs"], "tokens": r["tokens"], "bytes": r["bytes"],
                     "nll_sum": r["nll_sum"], "ce": r["ce_nats_per_token"], "bpb": r["bits_per_byte"]})
    return pd.DataFrame(rows)
