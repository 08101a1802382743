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
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from scalinglaws import data
from scalinglaws.core.validation import ParameterError, check_int
from scalinglaws.data.tokenizer import load_tokenizer


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


# ---------------------------------------------------------------------------------------------
# token windows: every study's held-out set is built here (`EvalSpec` below), so there is one
# protocol to audit.


def token_bytes() -> np.ndarray:
    """UTF-8 bytes of every token id: byte-level BPE writes each byte as one symbol, so a token's
    byte count is its string length (special tokens: 0)."""
    tok = load_tokenizer()
    special = set(tok.all_special_ids)
    names = tok.convert_ids_to_tokens(list(range(len(tok))))
    return np.array([0 if i in special else len(t) for i, t in enumerate(names)], dtype=np.int64)


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


# ---------------------------------------------------------------------------------------------
# many models of one shape in one pass: stacked weights, fixed windows
#
# Merging and ensembles evaluate hundreds of models of one shape on one window set. One eager HF
# forward per model and batch is launch-bound on a GPU (tens of small kernels per layer, Python
# between them), so the weights of `models_per_pass` models are stacked along a leading model
# dimension and every layer runs once for all of them:
#
#   backend "grouped"  our own Llama forward on stacked weights (bmm per projection, q|k|v and
#                      gate|up fused, SDPA over model x window batches): LlamaForCausalLM only;
#   backend "vmap"     torch.func.vmap of functional_call over the model dimension: any HF causal
#                      LM; attention is switched to "eager" inside (SDPA has no batching rule for
#                      its CPU kernel and falls back to a per-model loop).
#
# Scores are per model and per window: the NLL sum (nats) of the window's scored targets, which
# are its last `n_scored` targets (default: all seq_len of a window of seq_len + 1 tokens).

BACKENDS = ("grouped", "vmap")


def _param_names(model) -> list[str]:
    """Parameter names of `model`, tied weights once (functional_call re-ties the aliases)."""
    return [n for n, _ in model.named_parameters()]


def stack_states(model, states) -> dict[str, torch.Tensor]:
    """{parameter name: (len(states), *shape) tensor} from state dicts shaped like `model`'s
    parameters (tied aliases once), on the model's device and dtype. ParameterError when a state
    misses a parameter or has another shape."""
    if isinstance(states, dict) or not isinstance(states, (list, tuple)) or not states:
        raise ParameterError("states must be a non-empty list of state dicts")
    params = dict(model.named_parameters())
    out = {}
    for name, p in params.items():
        rows = []
        for i, s in enumerate(states):
            if not isinstance(s, dict) or name not in s:
                raise ParameterError(f"states[{i}] has no tensor {name!r}")
            t = s[name]
            if tuple(t.shape) != tuple(p.shape):
                raise ParameterError(f"states[{i}] tensor {name!r} has shape {tuple(t.shape)}, "
                                     f"the model has {tuple(p.shape)}")
            rows.append(t.detach().to(p.device, p.dtype))
        out[name] = torch.stack(rows)
    return out


def stack_models(models) -> dict[str, torch.Tensor]:
    """Stacked parameters of models of one shape (see `stack_states`); ParameterError when the
    models differ in shape."""
    models = list(models)
    if not models:
        raise ParameterError("models must be a non-empty list")
    ref = models[0]
    for i, m in enumerate(models[1:], 1):
        if type(m) is not type(ref):
            raise ParameterError(f"models[{i}] is a {type(m).__name__}, models[0] a {type(ref).__name__}")
    return stack_states(ref, [dict(m.named_parameters()) for m in models])


def _check_grouped(model):
    cfg = model.config
    bad = []
    if type(model).__name__ != "LlamaForCausalLM":
        bad.append(f"model class {type(model).__name__}")
    for attr in ("attention_bias", "mlp_bias"):
        if getattr(cfg, attr, False):
            bad.append(f"{attr}=True")
    if getattr(cfg, "hidden_act", "silu") != "silu":
        bad.append(f"hidden_act={cfg.hidden_act!r}")
    if getattr(cfg, "pretraining_tp", 1) not in (None, 1):
        bad.append("pretraining_tp > 1")
    if bad:
        raise ParameterError(f"backend='grouped' supports bias-free SiLU LlamaForCausalLM only ({', '.join(bad)}); "
                             f"use backend='vmap'")


def _grouped_weights(model, P: dict) -> dict:
    """Stacked weights rearranged for the grouped forward: per layer fused (q|k|v) and (gate|up),
    transposed to (B, in, out) for bmm."""
    cfg = model.config
    out = {"embed": P["model.embed_tokens.weight"], "norm": P["model.norm.weight"],
           "head": P.get("lm_head.weight", P["model.embed_tokens.weight"]), "layers": []}
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        a, m = p + "self_attn.", p + "mlp."
        out["layers"].append({
            "ln1": P[p + "input_layernorm.weight"], "ln2": P[p + "post_attention_layernorm.weight"],
            "qkv": torch.cat([P[a + "q_proj.weight"], P[a + "k_proj.weight"], P[a + "v_proj.weight"]], 1)
            .transpose(1, 2).contiguous(),
            "o": P[a + "o_proj.weight"].transpose(1, 2).contiguous(),
            "gu": torch.cat([P[m + "gate_proj.weight"], P[m + "up_proj.weight"]], 1).transpose(1, 2).contiguous(),
            "down": P[m + "down_proj.weight"].transpose(1, 2).contiguous()})
    return out


def _rms(h, w, eps):
    dt = h.dtype
    h = h.float()
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    return w[:, None, :] * h.to(dt)


def _grouped_logits(model, W: dict, x: torch.Tensor) -> torch.Tensor:
    """(B, n, T, V) logits of B stacked Llama models (weights W from `_grouped_weights`) on the
    same (n, T) inputs: HF's LlamaForCausalLM forward, layer by layer, for all models at once."""
    cfg = model.config
    B = W["embed"].shape[0]
    n, T = x.shape
    H, Hkv = cfg.num_attention_heads, cfg.num_key_value_heads
    hd = getattr(cfg, "head_dim", None) or cfg.hidden_size // H
    eps = cfg.rms_norm_eps
    h = W["embed"][:, x.reshape(-1)]                                     # (B, nT, d)
    pos = torch.arange(T, device=x.device)[None]
    cos, sin = model.model.rotary_emb(h[:1, :T], pos)                    # (1, T, hd)
    cos, sin = cos[:, None], sin[:, None]

    def rope(t):
        t1, t2 = t[..., : hd // 2], t[..., hd // 2:]
        return t * cos + torch.cat((-t2, t1), -1) * sin

    for L in W["layers"]:
        a = _rms(h, L["ln1"], eps)
        qkv = torch.bmm(a, L["qkv"]).view(B * n, T, H + 2 * Hkv, hd).transpose(1, 2)
        q, k, v = qkv.split([H, Hkv, Hkv], dim=1)
        o = torch.nn.functional.scaled_dot_product_attention(rope(q), rope(k), v, is_causal=True,
                                                             enable_gqa=Hkv != H)
        h = h + torch.bmm(o.transpose(1, 2).reshape(B, n * T, H * hd), L["o"])
        a = _rms(h, L["ln2"], eps)
        g, u = torch.bmm(a, L["gu"]).chunk(2, dim=-1)
        h = h + torch.bmm(torch.nn.functional.silu(g) * u, L["down"])
    h = _rms(h, W["norm"], eps)
    return torch.bmm(h, W["head"].transpose(1, 2)).view(B, n, T, -1)


def _vmap_logits(model, P: dict, x: torch.Tensor) -> torch.Tensor:
    from torch.func import functional_call, vmap

    def one(p, inp):
        return functional_call(model, p, (inp,), kwargs={"use_cache": False}).logits

    return vmap(one, in_dims=(0, None))(P, x)


class _attention:
    """Context manager: the model's attention implementation switched to `impl` meanwhile."""

    def __init__(self, model, impl):
        self.model, self.impl = model, impl
        self.old = getattr(getattr(model, "config", None), "_attn_implementation", None)

    def __enter__(self):
        if self.impl and self.old not in (None, self.impl):
            self.model.set_attn_implementation(self.impl)

    def __exit__(self, *exc):
        if self.impl and self.old not in (None, self.impl):
            self.model.set_attn_implementation(self.old)


def _auto_chunks(B, n, T, V, models_per_pass, windows_per_pass, max_logit_elems):
    mb = min(B, models_per_pass or B)
    if windows_per_pass:
        return mb, min(n, windows_per_pass)
    wb = max(1, min(n, max_logit_elems // max(1, mb * T * V)))
    if wb == 1 and mb * T * V > max_logit_elems and not models_per_pass:
        mb = max(1, max_logit_elems // (T * V))
    return mb, wb


@torch.inference_mode()
def evaluate_stacked(model, params: dict, windows: torch.Tensor, n_scored=None, *,
                     backend: str = "grouped", models_per_pass: int | None = None,
                     windows_per_pass: int | None = None, autocast: bool | None = None,
                     max_logit_elems: int = 2 ** 26) -> np.ndarray:
    """(B, n_windows) float64 NLL sums (nats) of B stacked models (`stack_states`/`stack_models`,
    leading dim B) on `windows` ((n, T + 1) token ids; each window's first token is context only).
    `n_scored` (int or per-window array, default T) scores only the last n_scored targets; a
    boolean (n, T) array scores the targets it marks.
    `model` gives the architecture (its own weights are not used). Chunks: `models_per_pass` models
    and `windows_per_pass` windows per forward (default: as many as keep B x n x T x V logits under
    `max_logit_elems`). `autocast`: bf16 autocast (default: on CUDA only; fp32 otherwise)."""
    from scalinglaws.core.validation import check_choice
    check_choice("backend", backend, BACKENDS)
    if models_per_pass is not None:
        check_int("models_per_pass", models_per_pass, minimum=1)
    if windows_per_pass is not None:
        check_int("windows_per_pass", windows_per_pass, minimum=1)
    names = _param_names(model)
    missing = [k for k in names if k not in params]
    if missing:
        raise ParameterError(f"params has no stacked tensor {missing[0]!r} ({len(missing)} missing)")
    B = int(params[names[0]].shape[0])
    for k in names:
        if params[k].shape[0] != B:
            raise ParameterError(f"params[{k!r}] stacks {params[k].shape[0]} models, {names[0]!r} {B}")
    windows = torch.as_tensor(windows)
    if windows.dim() != 2 or windows.shape[1] < 2:
        raise ParameterError(f"windows must be (n, T + 1) token ids with T >= 1, got {tuple(windows.shape)}")
    n, T = windows.shape[0], windows.shape[1] - 1
    if n_scored is not None and np.asarray(n_scored).dtype == bool:
        score = np.asarray(n_scored)
        if score.shape != (n, T):
            raise ParameterError(f"a boolean n_scored mask must be (n, T) = {(n, T)}, got {score.shape}")
    else:
        ns = np.full(n, T, dtype=np.int64) if n_scored is None else np.broadcast_to(np.asarray(n_scored), (n,))
        if ns.min() < 0 or ns.max() > T:
            raise ParameterError(f"n_scored must lie in [0, {T}]")
        score = np.arange(T)[None, :] >= (T - ns[:, None])
    if backend == "grouped":
        _check_grouped(model)
    device = params[names[0]].device
    V = int(model.config.get_text_config().vocab_size if hasattr(model.config, "get_text_config")
            else model.config.vocab_size)
    mb, wb = _auto_chunks(B, n, T, V, models_per_pass, windows_per_pass, max_logit_elems)
    use_autocast = (device.type == "cuda") if autocast is None else bool(autocast)
    win = windows.to(device)
    mask = torch.from_numpy(np.ascontiguousarray(score)).to(device)
    out = torch.empty(B, n, dtype=torch.float64, device=device)
    was_training = model.training
    model.eval()
    try:
        with _attention(model, "eager" if backend == "vmap" else None):
            for m0 in range(0, B, mb):
                P = {k: params[k][m0:m0 + mb] for k in names}
                W = _grouped_weights(model, P) if backend == "grouped" else P
                for w0 in range(0, n, wb):
                    w = win[w0:w0 + wb]
                    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_autocast):
                        z = (_grouped_logits(model, W, w[:, :-1]) if backend == "grouped"
                             else _vmap_logits(model, W, w[:, :-1]))
                    b = z.shape[0]
                    y = w[:, 1:].expand(b, -1, -1)
                    ce = torch.nn.functional.cross_entropy(z.float().reshape(-1, z.shape[-1]), y.reshape(-1),
                                                           reduction="none").view(b, len(w), T)
                    out[m0:m0 + b, w0:w0 + len(w)] = (ce * mask[w0:w0 + len(w)]).double().sum(-1)
    finally:
        model.train(was_training)
    return out.cpu().numpy()


# ---------------------------------------------------------------------------------------------
# unbiased evaluation windows: uniform over each domain's whole split


def domain_rng(seed: int, domain: str, purpose: str = "uniform_windows") -> np.random.Generator:
    """A generator per (purpose, seed, domain): a domain's draws do not depend on the other
    domains, and draws for different purposes (windows, bootstrap resamples) are independent."""
    import hashlib
    digest = hashlib.blake2b(f"{purpose}/{seed}/{domain}".encode(), digest_size=8).digest()
    return np.random.default_rng(int.from_bytes(digest, "little"))


def uniform_windows(domains=None, tokens_per_domain: int = 16384, seq_len: int = 512, seed: int = 0,
                    split: str = "test", return_starts: bool = False):
    """Windows of seq_len + 1 tokens whose starts are drawn uniformly (without replacement) over
    each domain's whole `split` (its token stream, documents joined by EOS), so a window may start
    anywhere, mid-document included; its first token is context only, so each window scores
    seq_len targets and a domain gets ceil(tokens_per_domain / seq_len) windows. Fixed for a
    (domains, tokens_per_domain, seq_len, seed, split): each domain has its own seeded stream.

    Returns (windows (n, seq_len + 1) int64 tensor, domain index (n,)), plus the start offsets
    (n,) when `return_starts`. Rows are grouped by domain, starts sorted within a domain."""
    domains = list(domains or data.DOMAINS)
    check_int("tokens_per_domain", tokens_per_domain, minimum=1)
    check_int("seq_len", seq_len, minimum=1)
    check_int("seed", seed, minimum=0)
    per = math.ceil(tokens_per_domain / seq_len)
    rows, groups, starts = [], [], []
    for gi, d in enumerate(domains):
        ids = data.token_ids(d, split).astype(np.int64)
        n_starts = len(ids) - seq_len
        if n_starts < per:
            raise ParameterError(f"domain {d!r} {split} split has {len(ids)} tokens: too few for {per} "
                                 f"distinct windows of seq_len + 1 = {seq_len + 1}")
        st = np.sort(domain_rng(seed, d).choice(n_starts, size=per, replace=False))
        rows.append(ids[st[:, None] + np.arange(seq_len + 1)])
        groups.append(np.full(per, gi))
        starts.append(st)
    out = (torch.from_numpy(np.concatenate(rows)), np.concatenate(groups))
    return out + (np.concatenate(starts),) if return_starts else out


def _as_2d(nll) -> tuple[np.ndarray, bool]:
    a = np.asarray(nll, dtype=np.float64)
    return (a[None], True) if a.ndim == 1 else (a, False)


def domain_metrics(nll, windows: torch.Tensor, domain, domains, n_scored=None) -> pd.DataFrame:
    """Per-domain CE and bits/byte from per-window NLL sums: nll (n,) or (models, n) from
    `evaluate_stacked`/`window_loss_sums`; windows (n, T + 1) and their domain index. A window's
    scored targets are its last n_scored (default T) tokens; their UTF-8 bytes (`token_bytes`)
    give bits/byte = nll_sum / (bytes ln 2); ce = nll_sum / tokens (nats/token). One row per
    (model, domain) with columns [model,] domain, windows, tokens, bytes, nll_sum, ce, bpb."""
    a, single = _as_2d(nll)
    domain = np.asarray(domain)
    windows = torch.as_tensor(windows)
    n, T = windows.shape[0], windows.shape[1] - 1
    if a.shape[1] != n or len(domain) != n:
        raise ParameterError(f"nll has {a.shape[1]} windows, windows {n}, domain {len(domain)}")
    ns = np.full(n, T) if n_scored is None else np.broadcast_to(np.asarray(n_scored), (n,))
    mask = np.arange(T)[None, :] >= (T - ns[:, None])
    nb = token_bytes()[windows[:, 1:].numpy()]
    win_bytes = (nb * mask).sum(1)
    rows = []
    for j in range(a.shape[0]):
        for i, d in enumerate(domains):
            sel = domain == i
            s, tok, by = a[j, sel].sum(), int(ns[sel].sum()), int(win_bytes[sel].sum())
            rows.append({**({} if single else {"model": j}), "domain": d, "windows": int(sel.sum()),
                         "tokens": tok, "bytes": by, "nll_sum": float(s),
                         "ce": s / tok if tok else math.nan,
                         "bpb": s / (by * math.log(2)) if by else math.nan})
    return pd.DataFrame(rows)


def domain_mean_se(ce_se) -> float:
    """Standard error of a mean over domains (equal weights) from the per-domain errors: the
    windows of different domains are drawn independently."""
    ce_se = np.asarray(ce_se, dtype=float)
    return math.sqrt((ce_se ** 2).sum()) / len(ce_se)


def bootstrap_domain_ce(nll, windows: torch.Tensor, domain, domains, n_boot: int = 1000, seed: int = 0,
                        n_scored=None) -> pd.DataFrame:
    """Sampling standard error of per-domain CE and bits/byte over the evaluation windows: the
    windows of each domain resampled with replacement `n_boot` times (the same resamples for every
    model, so differences between models are paired), the ratio nll_sum / tokens (/ bytes)
    recomputed. Columns of `domain_metrics` plus ce_se, bpb_se, ce_lo, ce_hi (2.5 / 97.5 %)."""
    check_int("n_boot", n_boot, minimum=2)
    base = domain_metrics(nll, windows, domain, domains, n_scored)
    a, single = _as_2d(nll)
    domain = np.asarray(domain)
    windows = torch.as_tensor(windows)
    n, T = windows.shape[0], windows.shape[1] - 1
    ns = np.full(n, T) if n_scored is None else np.broadcast_to(np.asarray(n_scored), (n,))
    mask = np.arange(T)[None, :] >= (T - ns[:, None])
    win_bytes = (token_bytes()[windows[:, 1:].numpy()] * mask).sum(1)
    rng = np.random.default_rng(seed)
    stats = {}
    for i, d in enumerate(domains):
        idx = np.flatnonzero(domain == i)
        if not len(idx):
            continue
        draw = idx[rng.integers(0, len(idx), size=(n_boot, len(idx)))]   # (n_boot, n_d)
        tok, by = ns[draw].sum(1), win_bytes[draw].sum(1)
        s = a[:, draw].sum(-1)                                              # (models, n_boot)
        stats[d] = (s / tok, s / (by * math.log(2)))
    extra = []
    for j in range(a.shape[0]):
        for d in domains:
            if d not in stats:
                extra.append({"ce_se": math.nan, "bpb_se": math.nan, "ce_lo": math.nan, "ce_hi": math.nan})
                continue
            ce, bpb = stats[d][0][j], stats[d][1][j]
            extra.append({"ce_se": float(ce.std(ddof=1)), "bpb_se": float(bpb.std(ddof=1)),
                          "ce_lo": float(np.quantile(ce, 0.025)), "ce_hi": float(np.quantile(ce, 0.975))})
    return pd.concat([base, pd.DataFrame(extra)], axis=1)


# ---------------------------------------------------------------------------------------------
# the one entry point: an EvalSpec says what a model is scored on and how; `evaluate` scores
# models (or state dicts in one model's architecture) on it, `evaluate_merges` merges first.
#
# Studies build an EvalSpec from their unit configs (the configs, and hence the unit keys, are
# unchanged) and read the per-domain frame or the per-window NLL sums from the `Evaluation`.
# Both backends are kept because each study's stored numbers were computed with one of them and
# the two agree only to float rounding: "stacked" (`evaluate_stacked`: many models of one shape
# per pass, every domain's windows together) and "forward" (the model's own forward through
# `window_loss_sums`, one domain at a time: any model, routed ones included).

PROTOCOLS = ("uniform", "documents")
EVAL_BACKENDS = ("stacked", "forward")


@dataclass(frozen=True)
class EvalSpec:
    """What to score and how. protocol "uniform": ceil(tokens_per_domain / seq_len) windows of
    seq_len + 1 tokens per domain, starts uniform over the `split` (`uniform_windows`, seeded per
    (seed, domain)); seq_len None = the model's context. protocol "documents": the first
    `max_docs` whole documents of each domain scored by lm-eval's rolling windows
    (`evaluate_domains`; `lmeval.run_lmeval_spec` runs lm-eval itself on the same spec).
    backend and batch: "stacked" scores `batch` models per `evaluate_stacked` call (None: all
    at once); "forward" runs `batch` windows per forward (None: 64). Validated on construction."""
    domains: tuple
    tokens_per_domain: int | None = None
    seq_len: int | None = None
    seed: int = 0
    split: str = "test"
    protocol: str = "uniform"
    max_docs: int | None = None
    backend: str = "stacked"
    batch: int | None = None

    def __post_init__(self):
        from scalinglaws.core.validation import check_choice, check_list
        domains = check_list("domains", self.domains, "domain names")
        if not domains or not all(isinstance(d, str) for d in domains) or len(set(domains)) != len(domains):
            raise ParameterError(f"domains must be a non-empty list of distinct domain names, got {domains!r}")
        object.__setattr__(self, "domains", tuple(domains))
        check_choice("split", self.split, data.SPLITS)
        check_choice("protocol", self.protocol, PROTOCOLS)
        check_choice("backend", self.backend, EVAL_BACKENDS)
        check_int("seed", self.seed, minimum=0)
        for name in ("seq_len", "batch", "max_docs"):
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name), minimum=1)
        if self.protocol == "uniform":
            check_int("tokens_per_domain", self.tokens_per_domain, minimum=1)
            if self.max_docs is not None:
                raise ParameterError("max_docs belongs to protocol='documents'")
        elif self.tokens_per_domain is not None:
            raise ParameterError("tokens_per_domain belongs to protocol='uniform'")


_WINDOW_CACHE: dict = {}
_WINDOW_CACHE_SIZE = 64   # domains' window sets kept (every unit of a run reuses the same few)


def domain_windows(domain: str, tokens_per_domain: int, seq_len: int, seed: int = 0,
                   split: str = "test") -> torch.Tensor:
    """The uniform windows of one domain (`uniform_windows([domain], ...)[0]`), cached: the one
    window cache of the package. A domain's windows depend only on these arguments (each domain
    has its own seeded stream), so the windows of several domains are their concatenation."""
    key = (domain, tokens_per_domain, seq_len, seed, split)
    if key not in _WINDOW_CACHE:
        if len(_WINDOW_CACHE) >= _WINDOW_CACHE_SIZE:
            _WINDOW_CACHE.pop(next(iter(_WINDOW_CACHE)))
        _WINDOW_CACHE[key] = uniform_windows([domain], tokens_per_domain, seq_len=seq_len, seed=seed,
                                             split=split)[0]
    return _WINDOW_CACHE[key]


def spec_windows(spec: EvalSpec, seq_len: int | None = None) -> tuple[torch.Tensor, np.ndarray]:
    """(windows (n, T + 1), domain index (n,)) of a uniform spec: equal to `uniform_windows(
    spec.domains, ...)`; `seq_len` is used when the spec leaves it to the model."""
    T = spec.seq_len or seq_len
    if spec.protocol != "uniform" or T is None:
        raise ParameterError("spec_windows needs protocol='uniform' and a seq_len")
    per = [domain_windows(d, spec.tokens_per_domain, T, spec.seed, spec.split) for d in spec.domains]
    return torch.cat(per), np.concatenate([np.full(len(w), i) for i, w in enumerate(per)])


@dataclass
class Evaluation:
    """The scores of B models on one spec. nll: (B, n) per-window NLL sums (nats) over `windows`
    ((n, T + 1), domain index `domain`); `frame()` the per-domain table, `bootstrap()` with
    sampling errors, `window_sums(b, domain)` one model's windows of one domain. A documents
    evaluation has no windows: `frame()` is `evaluate_domains`' table (column `model`)."""
    spec: EvalSpec
    nll: np.ndarray | None
    windows: torch.Tensor | None
    domain: np.ndarray | None
    documents: pd.DataFrame | None = None

    def frame(self, model: int | None = None) -> pd.DataFrame:
        """`domain_metrics` rows: every model with column `model`, or model `model` without it."""
        if self.documents is not None:
            return (self.documents if model is None else
                    self.documents[self.documents["model"] == model].drop(columns="model").reset_index(drop=True))
        nll = self.nll if model is None else self.nll[model]
        return domain_metrics(nll, self.windows, self.domain, list(self.spec.domains))

    def bootstrap(self, n_boot: int, seed: int, model: int | None = None, rows=None) -> pd.DataFrame:
        """`bootstrap_domain_ce` of every model (or of model `model`, without column `model`), or
        of `rows` ((R, n) NLL sums built from `nll`, e.g. paired differences)."""
        nll = rows if rows is not None else (self.nll if model is None else self.nll[model])
        return bootstrap_domain_ce(nll, self.windows, self.domain, list(self.spec.domains), n_boot=n_boot, seed=seed)

    def window_sums(self, model: int, domain: str) -> np.ndarray:
        return self.nll[model, self.domain == self.spec.domains.index(domain)]


def _as_models(models) -> list:
    models = list(models) if isinstance(models, (list, tuple)) else [models]
    if not models:
        raise ParameterError("models must be a model or a non-empty list of models")
    return models


def evaluate(models, spec: EvalSpec, *, states=None) -> Evaluation:
    """Score `models` (one model or a list of models of one shape) on `spec`; with `states` (a
    list of state dicts, or callables returning one, for merges built only when their batch is
    scored) score those in the architecture of the single model `models` instead."""
    if not isinstance(spec, EvalSpec):
        raise ParameterError(f"spec must be an EvalSpec, got {type(spec).__name__}")
    models = _as_models(models)
    if states is not None:
        if len(models) != 1:
            raise ParameterError("states are scored in the architecture of one model, got several")
        if isinstance(states, dict) or not isinstance(states, (list, tuple)) or not states:
            raise ParameterError("states must be a non-empty list of state dicts")
    if spec.protocol == "documents":
        return _evaluate_documents(models, spec, states)
    arch = models[0]
    win, dom = spec_windows(spec, int(arch.config.max_position_embeddings))
    if spec.backend == "stacked":
        nll = _stacked(models, states, win, spec.batch)
    else:
        nll = _forward(models, states, spec, win.shape[1] - 1)
    return Evaluation(spec, nll, win, dom)


def _state(s):
    return s() if callable(s) else s


def _stacked(models, states, win, batch) -> np.ndarray:
    """(B, n) NLL sums, `batch` models per `evaluate_stacked` call (their states stacked per call)."""
    arch = models[0]
    items = list(states) if states is not None else models
    step = batch or len(items)
    out = []
    for i in range(0, len(items), step):
        chunk = items[i:i + step]
        params = (stack_states(arch, [_state(s) for s in chunk]) if states is not None else stack_models(chunk))
        out.append(evaluate_stacked(arch, params, win))
    return np.concatenate(out)


def _forward(models, states, spec: EvalSpec, T: int) -> np.ndarray:
    """(B, n) NLL sums, each model's own forward (`window_loss_sums`), one domain at a time."""
    import copy

    def scored():
        if states is None:
            yield from models
            return
        work = copy.deepcopy(models[0])
        for s in states:
            work.load_state_dict(_state(s))
            yield work

    rows = []
    for model in scored():
        model.eval()
        per = [window_loss_sums(model, domain_windows(d, spec.tokens_per_domain, T, spec.seed, spec.split)
                                .to(model.device), chunk=spec.batch or 64) for d in spec.domains]
        rows.append(np.concatenate(per))
    return np.stack(rows)


def _evaluate_documents(models, spec: EvalSpec, states) -> Evaluation:
    import copy

    from scalinglaws.data.tokenizer import load_tokenizer
    tok = load_tokenizer()
    scored = models
    if states is not None:
        scored = []
        for s in states:
            work = copy.deepcopy(models[0])
            work.load_state_dict(_state(s))
            scored.append(work)
    frames = [evaluate_domains(m, tok, list(spec.domains), split=spec.split, max_docs=spec.max_docs,
                               batch_size=spec.batch or 32).assign(model=j) for j, m in enumerate(scored)]
    return Evaluation(spec, None, None, None, pd.concat(frames, ignore_index=True))


@dataclass(frozen=True)
class Merge:
    """One merge of `evaluate_merges`: the experts (indices into its expert states) merged with
    the registered `method` (`merge.METHODS`) and its options, random draws seeded by `seed`."""
    experts: tuple
    method: str
    seed: int = 0
    options: dict = field(default_factory=dict)


def evaluate_merges(base_model, expert_states, merges, spec: EvalSpec) -> Evaluation:
    """Merge-then-evaluate, the loop every study runs: each `Merge` of `merges` applied to the
    base's state dict and `expert_states` (`merge.merge`), scored on `spec` in the base's
    architecture (model b of the result is merges[b]). Every merge is validated before any is
    computed; a merge is built only when its batch of `spec.batch` models is scored, so memory
    holds one batch of merged states."""
    from scalinglaws.merge import check_merge, merge
    merges = list(merges)
    if not merges:
        raise ParameterError("merges must be a non-empty list of Merge")
    for i, m in enumerate(merges):
        if not isinstance(m, Merge):
            raise ParameterError(f"merges[{i}] must be a Merge, got {type(m).__name__}")
        bad = [e for e in m.experts if not (isinstance(e, int) and 0 <= e < len(expert_states))]
        if bad or not m.experts:
            raise ParameterError(f"merges[{i}].experts must be indices in [0, {len(expert_states)}), got {m.experts}")
        check_merge(m.method, len(m.experts), m.seed, m.options)
    base = base_model.state_dict()

    def build(m):
        return lambda: merge(base, [expert_states[e] for e in m.experts], m.method, seed=m.seed, **m.options)

    return evaluate(base_model, spec, states=[build(m) for m in merges])
