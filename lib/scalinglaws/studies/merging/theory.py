"""Theory check of the merging law: predict A(N), L_inf(N) and the variance from the curvature of
the loss at the base model and the spread of the task vectors (Wang et al. 2025, Thm 3.1).

Setting. Experts theta_i = theta0 + v_i (i = 1..M); a merge of k of them with equal weights c/k is
theta0 + (c/k) sum v_i (Average c = 1, Task Arithmetic c = 0.8). With mu = mean(v),
u_i = v_i - mu, Sigma = (1/(M-1)) sum_i u_i u_i^T, g = grad L(theta0) and H the Gauss-Newton
(= Fisher, for softmax cross-entropy) curvature at theta0, a second-order expansion gives

    E[L(k)]  = L_inf + A / k,      A = (c^2/2) Tr(H Sigma),
    L_inf    = L(theta0) + c g'mu + (c^2/2) mu'H mu,
    Var L(k) = (c^2/k) a'Sigma a,  a = g + c H mu.

Everything lives in the span of the task vectors, so it is computed *exactly* (no probe noise in
parameter space) from the M x M Gram matrix G_ij = v_i' H v_j and the M numbers g'v_i:

    Tr(H Sigma) = (1/(M-1)) sum_i u_i'H u_i = (1/(M-1)) tr(C G C),  C = I - 11'/M
    mu'H mu     = 1'G1 / M^2,   g'mu = mean_i g'v_i,   a'u_i = g'u_i + c mu'H u_i.

The GGN of the token-averaged cross-entropy is H = E_t[J_t' (diag p_t - p_t p_t') J_t], J_t the
Jacobian of token t's logits z_t w.r.t. the parameters and p_t = softmax(z_t), so

    v_i'H v_j = E_t[ a_i' (diag p - p p') a_j ] = E_t[ sum_c p_c a_ic a_jc - (p'a_i)(p'a_j) ],
    g'v_i     = E_t[ (p_t - onehot(y_t))' a_i ],        a_i = J_t v_i,

and a_i, the directional derivative of the logits along v_i, is one forward-mode
`torch.func.jvp` per expert. Per-window sums of these quantities are kept, so error bars come
from a bootstrap over token windows (stratified by domain), which is the only noise: the
estimate is exact for the tokens used.

Finite pool. The measured merges are subsets of one pool of M experts, drawn without
replacement; then Cov(mean of k u's) = (1/k - 1/M) Sigma and

    E_subsets[L(k)] = L(theta0 + c mu) + A (1/k - 1/M):

the fitted amplitude is still A, but a floor fitted on the pool's curve estimates
L_inf - A/M (`L_pool_floor_pred`), and the across-subset variance is var_coef (1/k - 1/M).

`hutchinson_trace` is an independent estimator of the same trace with random probes
(E[z'Sigma^1/2 H Sigma^1/2 z] over Rademacher z, in the span or in the full parameter space);
the tests check the two agree and that the GGN form matches an explicit Hessian of the
cross-entropy w.r.t. the logits.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.func import functional_call, jvp

from scalinglaws.evaluation import sample_windows, window_loss_sums
from scalinglaws.studies.merging.config import theory_coefficients
from scalinglaws.core.validation import ParameterError, check_float, check_int



# ---------------------------------------------------------------------------------------------
# inputs: models, states, task vectors, token windows

def _as_model(model_or_path):
    if isinstance(model_or_path, torch.nn.Module):
        return model_or_path
    from scalinglaws.models import load_checkpoint
    return load_checkpoint(model_or_path)


def base_parameters(model) -> dict[str, torch.Tensor]:
    """The model's floating parameters by name, each tied tensor once (named_parameters order)."""
    return {n: p.detach() for n, p in model.named_parameters() if p.is_floating_point()}


def _as_state(x, names) -> dict[str, torch.Tensor]:
    """An expert as {name: tensor} for `names`: a module, a state dict or a checkpoint folder."""
    if isinstance(x, torch.nn.Module):
        state = dict(x.named_parameters())
        state.update({n: t for n, t in x.state_dict().items() if n not in state})
    elif isinstance(x, Mapping):
        state = x
    else:
        from safetensors.torch import load_file
        path = Path(x)
        files = sorted(path.glob("*.safetensors"))
        if not files:
            raise FileNotFoundError(f"no safetensors checkpoint in {path}")
        state = {}
        for f in files:
            state.update(load_file(f))
    missing = [n for n in names if n not in state]
    if missing:
        raise ParameterError(f"expert lacks parameter(s) {missing[:3]} of the base model")
    return {n: state[n].detach().float() for n in names}


def task_vectors(base_params: Mapping[str, torch.Tensor], experts) -> list[dict[str, torch.Tensor]]:
    """v_i = theta_i - theta0 for each expert (module, state dict or checkpoint path)."""
    out = []
    for e in experts:
        s = _as_state(e, list(base_params))
        for n, b in base_params.items():
            if s[n].shape != b.shape:
                raise ParameterError(f"expert tensor {n} has shape {tuple(s[n].shape)}, base {tuple(b.shape)}")
        out.append({n: (s[n].to(b.device, b.dtype) - b) for n, b in base_params.items()})
    return out


def combine(directions: Sequence[Mapping[str, torch.Tensor]], weights) -> dict[str, torch.Tensor]:
    """sum_i w_i d_i for parameter dicts d_i."""
    w = [float(x) for x in weights]
    return {n: sum(wi * d[n] for wi, d in zip(w, directions)) for n in directions[0]}


def _as_windows(token_batches) -> torch.Tensor:
    """(n, T + 1) int64 windows from a tensor/array or a list of (b, T + 1) batches."""
    if isinstance(token_batches, (torch.Tensor, np.ndarray)):
        w = torch.as_tensor(token_batches)
    else:
        w = torch.cat([torch.as_tensor(b).reshape(-1, torch.as_tensor(b).shape[-1]) for b in token_batches])
    if w.ndim != 2 or w.shape[1] < 2:
        raise ParameterError(f"token windows must be (n, T + 1) with T >= 1, got shape {tuple(w.shape)}")
    return w.long()


@contextmanager
def _eager_attention(model):
    """Forward-mode AD has no rule for the fused SDPA kernels: use eager attention meanwhile."""
    cfg = getattr(model, "config", None)
    old = getattr(cfg, "_attn_implementation", None)
    if old is None or old == "eager":
        yield
        return
    model.set_attn_implementation("eager")
    try:
        yield
    finally:
        model.set_attn_implementation(old)


def _logits(model, params, x):
    out = functional_call(model, params, (x,))
    return (out.logits if hasattr(out, "logits") else out).float()


# ---------------------------------------------------------------------------------------------
# exact statistics in the span of the task vectors

def _token_loss_sums(model, params, windows, chunk):
    """Per-window sum of next-token cross-entropy under `params`."""
    return window_loss_sums(lambda x: _logits(model, params, x), windows, chunk)


def span_statistics(model, base_params, directions, windows, *, chunk: int = 4,
                    cs: Sequence[float] = ()) -> dict:
    """Per-window sums for the span of `directions` (d_i = v_i, i = 1..M):

        loss[n]          sum_t CE_t(theta0)
        tokens[n]        number of scored tokens
        grad[n, i]       sum_t (p_t - onehot y_t)' J_t d_i            (-> g'd_i)
        gram[n, i, j]    sum_t (J_t d_i)'(diag p_t - p_t p_t')(J_t d_j)  (-> d_i'H d_j)

    and for each c in `cs` the exact per-window losses at theta0 + c d_i (`loss_single[c]`, n x M,
    the k = 1 merges) and at theta0 + c mean(d) (`loss_mean[c]`, the k = M merge).
    One jvp per direction and chunk of windows.
    """
    windows = _as_windows(windows)
    check_int("chunk", chunk, minimum=1)
    M = len(directions)
    n = len(windows)
    loss = np.zeros(n)
    grad = np.zeros((n, M))
    gram = np.zeros((n, M, M))
    was_training = model.training
    model.eval()
    with _eager_attention(model):
        for s in range(0, n, chunk):
            w = windows[s:s + chunk]
            x, y = w[:, :-1], w[:, 1:]
            f = lambda p: _logits(model, p, x)  # noqa: E731
            tangents = []
            z = None
            for d in directions:
                z, a = jvp(f, (base_params,), (d,))
                tangents.append(a.detach())
            z = z.detach()
            A = torch.stack(tangents)                        # (M, b, T, V)
            logp = torch.log_softmax(z, dim=-1)
            p = logp.exp()
            ce = -logp.gather(-1, y[..., None]).squeeze(-1)  # (b, T)
            resid = p.clone()
            resid.scatter_add_(-1, y[..., None], -torch.ones_like(y[..., None], dtype=p.dtype))
            pa = (A * p).sum(-1)                             # (M, b, T): p'a_i
            g = torch.einsum("btv,mbtv->bm", resid, A)
            G = torch.einsum("mbtv,kbtv->bmk", A * p, A) - torch.einsum("mbt,kbt->bmk", pa, pa)
            loss[s:s + len(w)] = ce.double().sum(1).numpy()
            grad[s:s + len(w)] = g.double().numpy()
            gram[s:s + len(w)] = G.double().numpy()
        out = {"loss": loss, "tokens": np.full(n, windows.shape[1] - 1, dtype=float), "grad": grad,
               "gram": gram, "loss_single": {}, "loss_mean": {}}
        for c in cs:
            c = float(c)
            singles = [_token_loss_sums(model, {k: base_params[k] + c * d[k] for k in base_params},
                                        windows, chunk) for d in directions]
            mean = combine(directions, [c / M] * M)
            out["loss_single"][c] = np.stack(singles, axis=1)
            out["loss_mean"][c] = _token_loss_sums(
                model, {k: base_params[k] + mean[k] for k in base_params}, windows, chunk)
    model.train(was_training)
    return out


def _terms(loss, tokens, grad, gram, c, loss_single=None, loss_mean=None) -> dict:
    """Theory terms from (possibly resampled) totals over windows; see the module docstring."""
    M = grad.shape[0]
    L0 = float(loss / tokens)
    gv = grad / tokens                      # g'v_i
    G = gram / tokens                       # v_i'H v_j
    C = np.eye(M) - 1.0 / M
    Gu = C @ G @ C                          # u_i'H u_j
    tr = float(np.trace(Gu)) / (M - 1)  # Gu is PSD up to rounding
    muHmu = float(G.sum()) / M**2
    gmu = float(gv.mean())
    muHu = (G.sum(axis=0) / M) @ C          # mu'H u_i
    au = (gv - gmu) + c * muHu              # a'u_i
    var_coef = c * c * float(au @ au) / (M - 1)
    A = 0.5 * c * c * tr
    L_inf = L0 + c * gmu + 0.5 * c * c * muHmu
    out = {"L0": L0, "g_mu": gmu, "mu_H_mu": muHmu, "tr_H_sigma": tr, "A_pred": A,
           "L_inf_pred": L_inf, "L_pool_floor_pred": L_inf - A / M, "var_coef": var_coef,
           "L_k1_pred": L_inf - A / M + A}
    if loss_single is not None:
        out["L_k1_exact"] = float(np.mean(loss_single)) / tokens
    if loss_mean is not None:
        out["L_kM_exact"] = float(loss_mean) / tokens
    return out


def terms_from_statistics(stats: dict, c: float = 1.0, n_boot: int = 200, seed: int = 0,
                          groups=None) -> dict:
    """Point estimates of the theory terms for coefficient c, with bootstrap `<term>_se`,
    `<term>_lo`, `<term>_hi` (2.5/97.5%) over token windows, resampled within `groups`
    (e.g. the domain of each window) so the domain mixture stays fixed."""
    check_float("c", c, minimum=0.0, open_interval=True)
    check_int("n_boot", n_boot, minimum=0)
    c = float(c)
    n = len(stats["loss"])
    M = stats["grad"].shape[1]
    if M < 2:
        raise ParameterError(f"need at least 2 experts for a covariance, got {M}")
    ls = stats["loss_single"].get(c)
    lm = stats["loss_mean"].get(c)

    def at(idx):
        return _terms(stats["loss"][idx].sum(), stats["tokens"][idx].sum(), stats["grad"][idx].sum(0),
                      stats["gram"][idx].sum(0), c,
                      None if ls is None else ls[idx].sum(0), None if lm is None else lm[idx].sum())

    out = {"c": c, "M": M, "windows": n, "tokens": int(stats["tokens"].sum())}
    point = at(np.arange(n))
    out.update(point)
    if n_boot:
        rng = np.random.default_rng(seed)
        groups = np.zeros(n, dtype=int) if groups is None else np.asarray(groups)
        members = [np.flatnonzero(groups == gv) for gv in np.unique(groups)]
        draws = []
        for _ in range(n_boot):
            idx = np.concatenate([rng.choice(m, size=len(m), replace=True) for m in members])
            draws.append(at(idx))
        boot = pd.DataFrame(draws)
        for k in point:
            out[f"{k}_se"] = float(boot[k].std(ddof=1))
            out[f"{k}_lo"], out[f"{k}_hi"] = (float(q) for q in np.percentile(boot[k], [2.5, 97.5]))
    return out


def theory_terms(base_model, expert_models_or_states, token_batches, c: float = 1.0, n_boot: int = 200,
                 seed: int = 0, groups=None, chunk: int = 4) -> dict:
    """Thm 3.1 terms at one base model: tr_H_sigma, A_pred = (c^2/2) Tr(H Sigma), L_inf_pred,
    L_pool_floor_pred, var_coef = c^2 a'Sigma a, the exact k = 1 / k = M merge losses on the same
    tokens (L_k1_exact, L_kM_exact) and bootstrap se/lo/hi of each.

    base_model                 a model or a checkpoint folder
    expert_models_or_states    models, state dicts or checkpoint folders (M >= 2)
    token_batches              (n, T + 1) windows (or a list of batches); e.g. `sample_windows()[0]`
    groups                     optional stratum of each window for the bootstrap (its domain)
    """
    model = _as_model(base_model)
    experts = list(expert_models_or_states)
    if len(experts) < 2:
        raise ParameterError(f"need at least 2 experts, got {len(experts)}")
    base = base_parameters(model)
    V = task_vectors(base, experts)
    stats = span_statistics(model, base, V, token_batches, chunk=chunk, cs=(float(c),))
    return terms_from_statistics(stats, c=c, n_boot=n_boot, seed=seed, groups=groups)


# ---------------------------------------------------------------------------------------------
# a probe estimator of the same trace

def ggn_quadratic(model, base_params, direction, windows, chunk: int = 4) -> float:
    """w'H w for the token-averaged softmax cross-entropy GGN at base_params (one jvp per chunk)."""
    windows = _as_windows(windows)
    total, ntok = 0.0, 0
    with _eager_attention(model):
        for s in range(0, len(windows), chunk):
            x = windows[s:s + chunk, :-1]
            z, a = jvp(lambda p: _logits(model, p, x), (base_params,), (direction,))
            p = torch.softmax(z.detach(), dim=-1)
            a = a.detach()
            q = (p * a * a).sum(-1) - (p * a).sum(-1) ** 2
            total += float(q.double().sum())
            ntok += q.numel()
    return total / ntok


def hutchinson_trace(model, base_params, directions, windows, n_probes: int = 32, space: str = "span",
                     seed: int = 0, chunk: int = 4) -> tuple[float, float]:
    """Tr(H Sigma) = E_z[z' Sigma^1/2 H Sigma^1/2 z] with Rademacher z; returns (mean, se).

    Sigma = F F', F = [u_1 .. u_M] / sqrt(M - 1). space="span": z in {+-1}^M and w = F z
    (E[w w'] = F F' = Sigma). space="full": z in {+-1}^P over all parameters and
    w = Sigma^1/2 z = F (F'F)^-1/2 F' z, the symmetric square root (pseudo-inverse on the
    zero eigenvalue that centring creates), so E[w w'] = Sigma as well.
    """
    if space not in ("span", "full"):
        raise ParameterError(f"space={space!r} is not one of ['span', 'full']")
    check_int("n_probes", n_probes, minimum=2)
    M = len(directions)
    mean = combine(directions, [1.0 / M] * M)
    F = [{k: (d[k] - mean[k]) / math.sqrt(M - 1) for k in d} for d in directions]
    gen = torch.Generator().manual_seed(seed)
    if space == "full":
        E = torch.tensor([[sum(float((a[k].double() * b[k].double()).sum()) for k in a) for b in F] for a in F],
                         dtype=torch.float64)
        evals, evecs = torch.linalg.eigh(E)
        keep = evals > evals.max() * 1e-10
        inv_sqrt = (evecs[:, keep] * evals[keep].rsqrt()) @ evecs[:, keep].T
    qs = []
    for _ in range(n_probes):
        if space == "span":
            z = torch.randint(0, 2, (M,), generator=gen).double() * 2 - 1
            coef = z
        else:
            zs = {k: torch.randint(0, 2, v.shape, generator=gen).to(v.dtype) * 2 - 1 for k, v in F[0].items()}
            Ftz = torch.tensor([sum(float((f[k].double() * zs[k].double()).sum()) for k in f) for f in F],
                               dtype=torch.float64)
            coef = inv_sqrt @ Ftz
        w = combine(F, coef.tolist())
        qs.append(ggn_quadratic(model, base_params, w, windows, chunk=chunk))
    qs = np.asarray(qs)
    return float(qs.mean()), float(qs.std(ddof=1) / math.sqrt(len(qs)))


# ---------------------------------------------------------------------------------------------
# per size of a merging profile

def _merging_checkpoints(profile: str, sizes=None) -> tuple[dict, list[str]]:
    """({size: (base path, [expert paths])}, domains) of a merging-study profile.

    Experts come from the study's `experts` table (its `unit` key names the checkpoint folder
    `<work>/checkpoints/*/<size>-<key>`, as every study saves them); bases from
    `scalinglaws.studies.testbed.base_checkpoint`.
    """
    from scalinglaws.core.sweep import find_checkpoint
    from scalinglaws.core.results import ResultStore
    from scalinglaws.studies import testbed

    experts = ResultStore("merging", profile).read("experts")
    out = {}
    for size, grp in experts.groupby("size", sort=False):
        if sizes is not None and size not in sizes:
            continue
        paths = [find_checkpoint(unit) for unit in grp["unit"]]
        out[size] = (testbed.base_checkpoint(size, profile), paths)
    return out, list(dict.fromkeys(experts["domain"]))


def theory_table(profile: str, checkpoints: Mapping | None = None, methods=("average", "task_arithmetic"),
                 tokens_per_domain: int = 512, seq_len: int | None = None, n_boot: int = 200,
                 seed: int = 0, domains=None, sizes=None) -> pd.DataFrame:
    """The theory's predictions for every size of a merging profile, one row per (size, method):

    size, N (non-embedding params), method, c, M, windows, tokens, and for each term
    (tr_H_sigma, A_pred, L_inf_pred, L_pool_floor_pred, var_coef, L0, g_mu, mu_H_mu, L_k1_pred,
    L_k1_exact, L_kM_exact) its value and bootstrap `_se`, `_lo`, `_hi` (2.5/97.5 %).

    checkpoints   {size: (base path, [expert paths])}; default: found from the merging study's
                  `experts` table (see `_merging_checkpoints`), whose domains are then the default
    The held-out tokens are `tokens_per_domain` from each domain's test split (equal mixture),
    in windows of the model context (or `seq_len`), the same windows for every size; the
    bootstrap resamples windows within each domain.
    """
    from scalinglaws.models import count_params
    from scalinglaws.core.validation import check_profile

    check_profile(profile)
    coefficients = theory_coefficients()
    for m in methods:
        if m not in coefficients:
            raise ParameterError(f"method {m!r} has no theory coefficient (not a linear merge); "
                                 f"known: {sorted(coefficients)}")
    check_int("tokens_per_domain", tokens_per_domain, minimum=1)
    if checkpoints is None:
        checkpoints, found = _merging_checkpoints(profile, sizes)
        domains = domains or found
    rows = []
    for size, (base_path, expert_paths) in dict(checkpoints).items():
        model = _as_model(base_path)
        T = seq_len or int(model.config.max_position_embeddings)
        windows, groups = sample_windows(domains, tokens_per_domain, T, seed=seed)
        base = base_parameters(model)
        V = task_vectors(base, expert_paths)
        cs = [coefficients[m] for m in methods]
        stats = span_statistics(model, base, V, windows, cs=cs)
        for m, c in zip(methods, cs):
            t = terms_from_statistics(stats, c=c, n_boot=n_boot, seed=seed, groups=groups)
            rows.append({"size": size, "N": count_params(model)["non_embedding"], "method": m, **t})
    return pd.DataFrame(rows)
