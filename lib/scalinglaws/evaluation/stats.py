"""Per-domain statistics of per-window NLL sums: CE and bits/byte (`domain_metrics`), their
bootstrap over windows (`bootstrap_domain_ce`) and the error of a mean over domains."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from scalinglaws.core.validation import ParameterError, check_int
from scalinglaws.evaluation.windows import token_bytes


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
