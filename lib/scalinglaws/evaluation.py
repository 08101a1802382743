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
from scalinglaws.core.validation import ParameterError, check_int
from scalinglaws.data.tokenizer import load_tokenizer
from scalinglaws.models import EOS_ID


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


@torch.inference_mode()
def evaluate_token_lists(model, docs: list[list[int]], prefix_id: int, *, batch_size: int = 32,
                         device=None, max_length: int | None = None) -> np.ndarray:
    """Negative log-likelihood (nats) of each token list under the rolling-window protocol."""
    check_int("batch_size", batch_size, minimum=1)
    L = max_length or model_context(model)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    lens = np.array([len(d) for d in docs], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lens + 1)])
    flat = np.empty(int(offsets[-1]), dtype=np.int64)
    wins = []  # (doc, absolute start in flat, length, n_scored)
    for i, d in enumerate(docs):
        flat[offsets[i]] = prefix_id
        flat[offsets[i] + 1: offsets[i + 1]] = d
        wins.extend((i, offsets[i] + s, ln, p) for s, ln, p in rolling_windows(len(d), L))
    nll = np.zeros(len(docs), dtype=np.float64)
    if not wins:
        return nll
    w = np.array(wins, dtype=np.int64)
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


# ---------------------------------------------------------------------------------------------
# evaluation sets shared by the studies: fixed document prefixes (merging), token windows (theory,
# resource ladders). Every study builds its held-out set here, so there is one protocol to audit.


def token_bytes() -> np.ndarray:
    """UTF-8 bytes of every token id: byte-level BPE writes each byte as one symbol, so a token's
    byte count is its string length (special tokens: 0)."""
    tok = load_tokenizer()
    special = set(tok.all_special_ids)
    names = tok.convert_ids_to_tokens(list(range(len(tok))))
    return np.array([0 if i in special else len(t) for i, t in enumerate(names)], dtype=np.int64)


def document_prefixes(domain: str, eval_tokens: int, doc_tokens: int | None = None) -> list[np.ndarray]:
    """`eval_tokens` tokens of a domain's test split: its documents in file order (split at EOS),
    each cut to its first `doc_tokens` tokens (None: whole), until `eval_tokens` are reached (the
    last one cut). The same set for every model of a profile."""
    ids = data.token_ids(domain, "test").astype(np.int64)
    eos = np.flatnonzero(ids == EOS_ID)
    docs, start, used = [], 0, 0
    cap = doc_tokens or len(ids)
    for end in list(eos) + [len(ids)]:
        doc = ids[start:end][: min(cap, eval_tokens - used)]
        start = end + 1
        if len(doc):
            docs.append(doc)
            used += len(doc)
        if used >= eval_tokens:
            break
    return docs


class EvalSet:
    """Documents of every domain, evaluated together in one call per model."""

    def __init__(self, domains, eval_tokens: int, doc_tokens: int | None = None):
        self.domains = list(domains)
        nbytes = token_bytes()
        self.docs, self.owner, self.tokens, self.bytes = [], [], {}, {}
        for i, d in enumerate(self.domains):
            docs = document_prefixes(d, eval_tokens, doc_tokens)
            self.docs += docs
            self.owner += [i] * len(docs)
            self.tokens[d] = int(sum(len(x) for x in docs))
            self.bytes[d] = int(sum(nbytes[x].sum() for x in docs))
        self.owner = np.asarray(self.owner)

    def evaluate(self, model, batch_size: int = 64) -> list[dict]:
        """[{eval_domain, ce (nats/token), bpb, tokens}] for every domain."""
        nll = evaluate_token_lists(model, self.docs, EOS_ID, batch_size=batch_size)
        rows = []
        for i, d in enumerate(self.domains):
            s = float(nll[self.owner == i].sum())
            rows.append({"eval_domain": d, "ce": s / self.tokens[d],
                         "bpb": s / (self.bytes[d] * math.log(2)), "tokens": self.tokens[d]})
        return rows


def sample_windows(domains=None, tokens_per_domain: int = 512, seq_len: int = 128, seed: int = 0,
                    split: str = "test") -> tuple[torch.Tensor, np.ndarray]:
    """Random token windows of length seq_len + 1 from each domain's `split`, equally many per
    domain (the held-out mixture with equal domain weights). Returns (windows (n, seq_len + 1)
    int64, domain index of each row)."""
    domains = list(domains or data.DOMAINS)
    check_int("tokens_per_domain", tokens_per_domain, minimum=1)
    check_int("seq_len", seq_len, minimum=1)
    per = max(1, math.ceil(tokens_per_domain / seq_len))
    rng = np.random.default_rng(seed)
    rows, groups = [], []
    for gi, d in enumerate(domains):
        ids = data.token_ids(d, split).astype(np.int64)
        if len(ids) < seq_len + 1:
            raise ParameterError(f"domain {d!r} {split} split has {len(ids)} tokens < seq_len + 1")
        starts = rng.choice(len(ids) - seq_len, size=per, replace=per > len(ids) - seq_len)
        rows.extend(ids[s:s + seq_len + 1] for s in starts)
        groups.extend([gi] * per)
    return torch.from_numpy(np.stack(rows)), np.asarray(groups)


def spaced_windows(arrays, seq_len: int, per_array: int) -> torch.Tensor:
    """`per_array` evenly spaced windows of seq_len + 1 tokens from each held-out array (fixed)."""
    out = []
    for a in arrays:
        a = np.asarray(a, dtype=np.int64)
        starts = np.linspace(0, len(a) - seq_len - 1, per_array).astype(np.int64)
        out.append(np.stack([a[s:s + seq_len + 1] for s in starts]))
    return torch.from_numpy(np.concatenate(out))


@torch.no_grad()
def window_loss_sums(logits_fn, windows: torch.Tensor, chunk: int = 64) -> np.ndarray:
    """Per-window sum of next-token cross-entropy (nats), float64; `logits_fn(inputs) -> logits`
    (a model, or a functional call with other parameters)."""
    out = []
    for s in range(0, len(windows), chunk):
        w = windows[s:s + chunk]
        z = logits_fn(w[:, :-1])
        z = (z.logits if hasattr(z, "logits") else z).float()
        ce = torch.nn.functional.cross_entropy(z.transpose(1, 2), w[:, 1:], reduction="none")
        out.append(ce.double().sum(1))
    return torch.cat(out).cpu().numpy()


@torch.no_grad()
def heldout_loss(model, windows: torch.Tensor, batch: int = 64) -> float:
    """Mean next-token cross-entropy (nats/token) of `model` over the windows."""
    model.eval()
    tot, n = 0.0, 0
    for chunk in windows.split(batch):
        logits = model(input_ids=chunk[:, :-1]).logits
        tot += torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), chunk[:, 1:].reshape(-1),
                                                 reduction="sum").item()
        n += chunk[:, 1:].numel()
    return tot / n
