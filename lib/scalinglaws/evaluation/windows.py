"""Held-out token windows: uniform over each domain's whole split (`uniform_windows`, the
studies' protocol; `domain_windows` is the package's one window cache), random with replacement
(`sample_windows`, the merging theory's), and the UTF-8 bytes of every token (`token_bytes`)."""
from __future__ import annotations

import math

import numpy as np
import torch

from scalinglaws import data
from scalinglaws.core.validation import ParameterError, check_int
from scalinglaws.data.tokenizer import load_tokenizer


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
