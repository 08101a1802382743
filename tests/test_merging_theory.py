"""The merging-theory terms (scalinglaws.studies.merging.theory) against explicit Jacobian/Hessian computations."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.func import functional_call

from scalinglaws.studies.merging import theory as C
from scalinglaws.models import build_model, save_checkpoint
from scalinglaws.core.validation import ParameterError

VOCAB, CTX, M = 16, 8, 4


@pytest.fixture(scope="module")
def toy():
    """A tiny float64 Llama, M experts = base + random perturbations, a few token windows."""
    torch.manual_seed(0)
    base = build_model("d16l1", seed=0, vocab_size=VOCAB, context=CTX).double().eval()
    experts = []
    for i in range(M):
        e = build_model("d16l1", seed=0, vocab_size=VOCAB, context=CTX).double()
        g = torch.Generator().manual_seed(100 + i)
        shift = torch.Generator().manual_seed(7)  # a shared component: the mean mu is not 0
        with torch.no_grad():
            for p in e.parameters():
                p.add_(0.05 * torch.randn(p.shape, generator=g, dtype=p.dtype)
                       + 0.03 * torch.randn(p.shape, generator=shift, dtype=p.dtype))
        experts.append(e)
    windows = torch.randint(0, VOCAB, (6, CTX + 1), generator=torch.Generator().manual_seed(1))
    params = C.base_parameters(base)
    V = C.task_vectors(params, experts)
    return base, experts, windows, params, V


def _flat(d, names):
    return torch.cat([d[n].reshape(-1) for n in names])


def _explicit(base, params, V, windows, c):
    """Theory terms from an explicit Jacobian of the logits (autograd.functional.jacobian) and
    an autograd Hessian of each token's cross-entropy w.r.t. its logits."""
    names = list(params)
    shapes = [params[n].shape for n in names]
    sizes = [params[n].numel() for n in names]
    theta0 = _flat(params, names)
    x, y = windows[:, :-1], windows[:, 1:].reshape(-1)
    base.set_attn_implementation("eager")

    def unflat(t):
        return {n: p.reshape(s) for n, p, s in zip(names, torch.split(t, sizes), shapes)}

    def logits(t):
        return functional_call(base, unflat(t), (x,)).logits.reshape(-1, VOCAB)

    def loss(t):
        return torch.nn.functional.cross_entropy(logits(t), y)

    # forward mode: reverse mode drops the input-side gradient of the padding row (token 0, the EOS
    # id, is nn.Embedding's padding_idx), which is not the derivative of the function
    J = torch.func.jacfwd(logits)(theta0)                             # (n_tok, V, P)
    z = logits(theta0).detach()
    Hz = torch.stack([torch.func.hessian(lambda zz: torch.nn.functional.cross_entropy(zz[None], y[t:t + 1]))(z[t])
                      for t in range(len(y))])                        # (n_tok, V, V)
    g = torch.func.jacfwd(loss)(theta0)
    Vm = torch.stack([_flat(v, names) for v in V], 1)                  # (P, M)
    M = Vm.shape[1]
    mu = Vm.mean(1)
    U = Vm - mu[:, None]
    JU = torch.einsum("tvp,pm->tvm", J, U)
    Jmu = J @ mu
    n = len(y)
    tr = float(torch.einsum("tvm,tvw,twm->", JU, Hz, JU)) / n / (M - 1)
    muHmu = float(torch.einsum("tv,tvw,tw->", Jmu, Hz, Jmu)) / n
    Hmu = torch.einsum("tvp,tvw,tw->p", J, Hz, Jmu) / n
    a = g + c * Hmu
    var_coef = c * c * float(((a @ U) ** 2).sum()) / (M - 1)
    L0 = float(loss(theta0))
    base.set_attn_implementation("sdpa")
    return {"tr_H_sigma": tr, "mu_H_mu": muHmu, "g_mu": float(g @ mu), "var_coef": var_coef,
            "L0": L0, "A_pred": 0.5 * c * c * tr, "L_inf_pred": L0 + c * float(g @ mu) + 0.5 * c * c * muHmu}


@pytest.mark.parametrize("c", [1.0, 0.8])
def test_span_terms_match_explicit_hessian(toy, c):
    base, _, windows, params, V = toy
    stats = C.span_statistics(base, params, V, windows, chunk=4, cs=(c,))
    got = C.terms_from_statistics(stats, c=c, n_boot=0)
    ref = _explicit(base, params, V, windows, c)
    for k, v in ref.items():
        assert math.isclose(got[k], v, rel_tol=2e-4, abs_tol=1e-7), (k, got[k], v)
    assert got["tr_H_sigma"] > 0 and got["var_coef"] > 0


def test_ggn_quadratic_matches_explicit(toy):
    base, _, windows, params, V = toy
    w = C.combine(V, [1.0, -2.0, 0.5, 0.25])
    q = C.ggn_quadratic(base, params, w, windows, chunk=2)
    names = list(params)
    ref = _explicit(base, params, [w, {k: -t for k, t in w.items()}], windows, 1.0)
    # two directions w, -w: u = +-w, Tr(H Sigma) = (1/(2-1)) * 2 w'Hw
    assert math.isclose(q, ref["tr_H_sigma"] / 2, rel_tol=2e-4), (q, ref["tr_H_sigma"])
    assert len(names) == len(w)


@pytest.mark.parametrize("space", ["span", "full"])
def test_hutchinson_agrees_with_exact_trace(toy, space):
    base, _, windows, params, V = toy
    stats = C.span_statistics(base, params, V, windows)
    exact = C.terms_from_statistics(stats, n_boot=0)["tr_H_sigma"]
    est, se = C.hutchinson_trace(base, params, V, windows, n_probes=48, space=space, seed=3)
    assert se > 0
    assert abs(est - exact) < 4 * se + 1e-3 * exact, (est, se, exact)


def test_k1_and_kM_merges_evaluated_exactly(toy):
    base, experts, windows, params, V = toy
    c = 0.8
    stats = C.span_statistics(base, params, V, windows, cs=(c,))
    t = C.terms_from_statistics(stats, c=c, n_boot=0)
    x, y = windows[:, :-1], windows[:, 1:]

    def ce(model_params):
        with torch.no_grad():
            z = functional_call(base, model_params, (x,)).logits
        return float(torch.nn.functional.cross_entropy(z.reshape(-1, VOCAB), y.reshape(-1)))

    mean = C.combine(V, [c / M] * M)
    assert math.isclose(t["L_kM_exact"], ce({k: params[k] + mean[k] for k in params}), rel_tol=1e-6)
    k1 = np.mean([ce({k: params[k] + c * v[k] for k in params}) for v in V])
    assert math.isclose(t["L_k1_exact"], k1, rel_tol=1e-6)
    assert math.isclose(t["L_pool_floor_pred"], t["L_inf_pred"] - t["A_pred"] / M, rel_tol=1e-12)


def test_bootstrap_interval_and_strata(toy):
    base, _, windows, params, V = toy
    stats = C.span_statistics(base, params, V, windows)
    t = C.terms_from_statistics(stats, n_boot=100, seed=0, groups=[0, 0, 0, 1, 1, 1])
    assert t["tr_H_sigma_se"] > 0
    assert t["tr_H_sigma_lo"] <= t["tr_H_sigma"] <= t["tr_H_sigma_hi"]
    assert math.isclose(t["A_pred_lo"], 0.5 * t["tr_H_sigma_lo"], rel_tol=1e-9)
    # one stratum per window: every resample is the full set, so no spread at all
    t1 = C.terms_from_statistics(stats, n_boot=20, groups=range(6))
    assert t1["tr_H_sigma_se"] < 1e-12 * t1["tr_H_sigma"]


def test_task_vectors_from_checkpoints(tmp_path, toy):
    base, experts, windows, params, V = toy
    paths = [save_checkpoint(e.float(), tmp_path / f"e{i}") for i, e in enumerate(experts[:2])]
    for e in experts[:2]:
        e.double()
    fp = {k: v.float() for k, v in params.items()}
    got = C.task_vectors(fp, paths)
    for g, v in zip(got, V[:2]):
        for k in fp:
            torch.testing.assert_close(g[k], v[k].float(), rtol=0, atol=1e-6)
    with pytest.raises(ParameterError):
        C.theory_terms(base, experts[:1], windows)
    with pytest.raises(ParameterError):
        C.hutchinson_trace(base, params, V, windows, space="diag")


def test_theory_table_on_saved_checkpoints(tmp_path, scratch_roots):
    torch.manual_seed(0)
    base = build_model("d16l1", seed=0)
    bp = save_checkpoint(base, tmp_path / "base")
    eps = []
    for i in range(3):
        e = build_model("d16l1", seed=0)
        with torch.no_grad():
            for p in e.parameters():
                p.add_(0.01 * torch.randn_like(p))
        eps.append(save_checkpoint(e, tmp_path / f"x{i}"))
    df = C.theory_table("smoke", checkpoints={"d16l1": (bp, eps)}, tokens_per_domain=16, seq_len=16,
                        n_boot=10, domains=["code", "math"])
    assert list(df["method"]) == ["average", "task_arithmetic"]
    assert set(df["size"]) == {"d16l1"} and (df["N"] > 0).all()
    for col in ("A_pred", "A_pred_lo", "A_pred_hi", "L_inf_pred", "var_coef", "tr_H_sigma_se"):
        assert np.isfinite(df[col]).all(), col
    avg, ta = df.iloc[0], df.iloc[1]
    assert math.isclose(ta["A_pred"] / avg["A_pred"], 0.64, rel_tol=1e-9)  # (c^2/2) scaling
    assert avg["tokens"] == 2 * 16
    with pytest.raises(ParameterError):
        C.theory_table("smoke", checkpoints={}, methods=("ties",))
