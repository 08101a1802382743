"""The many-model evaluator (stacked weights) against the one-model evaluator; uniform windows,
per-domain aggregation and the bootstrap."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scalinglaws import data as D
from scalinglaws import evaluation as E
from scalinglaws.core.validation import ParameterError
from scalinglaws.merge import linear_merges, merge
from scalinglaws.models import build_model


def _perturbed(size, seed, **kw):
    m = build_model(size, 0, **kw)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():  # norms too, so every tensor matters
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return m.eval()


@pytest.fixture(scope="module")
def models():
    return [_perturbed("d24l2", s, vocab_size=300, context=32) for s in range(3)]


@pytest.mark.parametrize("backend", ["grouped", "vmap"])
def test_many_equals_one(models, backend):
    w = torch.randint(0, 300, (7, 33), generator=torch.Generator().manual_seed(0))
    ref = np.stack([E.window_loss_sums(m, w) for m in models])
    got = E.evaluate_stacked(models[0], E.stack_models(models), w, backend=backend)
    np.testing.assert_allclose(got, ref, rtol=1e-5)
    chunked = E.evaluate_stacked(models[0], E.stack_models(models), w, backend=backend, models_per_pass=2,
                                 windows_per_pass=3)
    np.testing.assert_allclose(chunked, ref, rtol=1e-5)
    # n_scored: only the last targets of each window
    ns = np.array([32, 1, 5, 0, 16, 32, 2])
    got = E.evaluate_stacked(models[0], E.stack_states(models[0], [m.state_dict() for m in models]), w, ns,
                             backend=backend)
    for j, m in enumerate(models):
        with torch.no_grad():
            lp = torch.log_softmax(m(input_ids=w[:, :-1]).logits.float(), -1).gather(-1, w[:, 1:, None])[..., 0]
        want = [-lp[i, 32 - k:].sum().item() for i, k in enumerate(ns)]
        np.testing.assert_allclose(got[j], want, rtol=1e-5, atol=1e-5)


def test_shapes_must_match(models):
    other = build_model("d16l1", 0, vocab_size=300, context=32)
    with pytest.raises(ParameterError, match="shape"):
        E.stack_states(models[0], [models[0].state_dict(), other.state_dict()])
    with pytest.raises(ParameterError):
        E.stack_models([models[0], other])
    with pytest.raises(ParameterError, match="backend"):
        E.evaluate_stacked(models[0], E.stack_models(models), torch.zeros(1, 5, dtype=torch.long), backend="nope")


def test_linear_merges_equal_merge(models):
    base, experts = models[0].state_dict(), [m.state_dict() for m in models[1:]]
    C = torch.tensor([[0.5, 0.5], [0.8, 0.0]])
    st = linear_merges(base, experts, C, [n for n, _ in models[0].named_parameters()])
    a = merge(base, experts, "average")
    t = merge(base, experts[:1], "task_arithmetic")
    for n in st:
        torch.testing.assert_close(st[n][0], a[n])
        torch.testing.assert_close(st[n][1], t[n])


def test_uniform_windows_deterministic_and_spread():
    w1, d1, s1 = E.uniform_windows(["math", "legal"], 2048, 16, seed=3, return_starts=True)
    w2, d2, s2 = E.uniform_windows(["math", "legal"], 2048, 16, seed=3, return_starts=True)
    assert torch.equal(w1, w2) and np.array_equal(d1, d2) and np.array_equal(s1, s2)
    w3, _, s3 = E.uniform_windows(["math", "legal"], 2048, 16, seed=4, return_starts=True)
    assert not np.array_equal(s1, s3)
    # a domain's windows do not depend on the other domains
    _, _, s4 = E.uniform_windows(["legal"], 2048, 16, seed=3, return_starts=True)
    np.testing.assert_array_equal(s4, s1[d1 == 1])
    assert w1.shape == (2 * 128, 17) and np.bincount(d1).tolist() == [128, 128]
    ids = D.token_ids("math", "test")
    st = s1[d1 == 0]
    for s, row in zip(st[:5], w1[d1 == 0][:5]):
        np.testing.assert_array_equal(row.numpy(), ids[s:s + 17])
    # starts cover the whole split (not document prefixes): every quarter is hit, many mid-document
    quarters = np.bincount(st * 4 // (len(ids) - 16), minlength=4)
    assert (quarters > 10).all()
    assert st.max() > 0.9 * len(ids)
    assert np.mean(ids[np.maximum(st - 1, 0)] != 0) > 0.5  # most starts are not right after EOS


def test_domain_metrics_and_bootstrap_by_hand():
    w, d = E.uniform_windows(["math", "legal"], 64, 8, seed=0)
    rng = np.random.default_rng(0)
    nll = rng.uniform(10, 20, size=(2, len(w)))
    df = E.domain_metrics(nll, w, d, ["math", "legal"])
    nb = E.token_bytes()
    for _, r in df.iterrows():
        sel = d == ["math", "legal"].index(r["domain"])
        s = nll[r["model"], sel].sum()
        by = nb[w[sel][:, 1:].numpy()].sum()
        assert r["tokens"] == 8 * sel.sum() and r["bytes"] == by
        assert r["ce"] == pytest.approx(s / (8 * sel.sum()))
        assert r["bpb"] == pytest.approx(s / (by * math.log(2)))
    one = E.domain_metrics(nll[0], w, d, ["math", "legal"])
    assert "model" not in one and one["ce"].tolist() == df[df["model"] == 0]["ce"].tolist()
    bs = E.bootstrap_domain_ce(nll[0], w, d, ["math", "legal"], n_boot=2000, seed=1)
    for _, r in bs.iterrows():  # equal tokens per window: se ~ std(nll_w) / sqrt(n) / seq_len
        x = nll[0, d == ["math", "legal"].index(r["domain"])]
        want = x.std(ddof=0) / math.sqrt(len(x)) / 8
        assert r["ce_se"] == pytest.approx(want, rel=0.1)
        assert r["ce_lo"] < r["ce"] < r["ce_hi"]
    assert E.bootstrap_domain_ce(nll[0], w, d, ["math", "legal"], n_boot=50, seed=1).equals(
        E.bootstrap_domain_ce(nll[0], w, d, ["math", "legal"], n_boot=50, seed=1))
