"""The one evaluation entry point (`evaluate`, `evaluate_merges` on an `EvalSpec`) against the
primitives it routes to: the studies' stored numbers were computed with those primitives, so the
entry point must reproduce them bit for bit (exact equality, not a tolerance)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from scalinglaws import evaluation as E
from scalinglaws.core.validation import ParameterError
from scalinglaws.merge import merge
from scalinglaws.models import build_model

DOMS = ["math", "legal"]
CTX = 16


def _perturbed(seed):
    m = build_model("d16l1", 0, context=CTX)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return m.eval()


@pytest.fixture(scope="module")
def models(one_thread):
    return [_perturbed(s) for s in range(4)]


def test_spec_windows_are_uniform_windows_and_cached():
    spec = E.EvalSpec(DOMS, 96, CTX, seed=2)
    w, d = E.spec_windows(spec)
    w0, d0 = E.uniform_windows(DOMS, 96, seq_len=CTX, seed=2, split="test")
    assert torch.equal(w, w0) and np.array_equal(d, d0)
    assert E.domain_windows("legal", 96, CTX, 2) is E.domain_windows("legal", 96, CTX, 2)  # one cache
    with pytest.raises(ParameterError, match="seq_len"):
        E.spec_windows(E.EvalSpec(DOMS, 96))  # the model's context is not known here


def test_stacked_is_evaluate_stacked_per_batch(models):
    spec = E.EvalSpec(DOMS, 64, seed=1, batch=2)
    res = E.evaluate(models[0], spec, states=[m.state_dict() for m in models[1:]])
    w, dom = E.uniform_windows(DOMS, 64, seq_len=CTX, seed=1)
    want = np.concatenate([E.evaluate_stacked(models[0], E.stack_states(models[0], [m.state_dict() for m in ms]), w)
                           for ms in (models[1:3], models[3:])])
    assert np.array_equal(res.nll, want)
    pd.testing.assert_frame_equal(res.frame(), E.domain_metrics(want, w, dom, DOMS), check_exact=True)
    pd.testing.assert_frame_equal(res.frame(model=1), E.domain_metrics(want[1], w, dom, DOMS), check_exact=True)
    pd.testing.assert_frame_equal(res.bootstrap(30, 4, model=2),
                                  E.bootstrap_domain_ce(want[2], w, dom, DOMS, n_boot=30, seed=4), check_exact=True)
    assert np.array_equal(res.window_sums(0, "legal"), want[0, dom == 1])
    own = E.evaluate(models[1:], E.EvalSpec(DOMS, 64, seed=1))  # the models' own weights, all in one pass
    assert np.array_equal(own.nll, E.evaluate_stacked(models[1], E.stack_models(models[1:]), w))


def test_forward_is_window_loss_sums_per_domain(models):
    spec = E.EvalSpec(DOMS, 64, CTX, seed=0, backend="forward", batch=3)
    res = E.evaluate(models[2], spec)
    want = np.concatenate([E.window_loss_sums(models[2], E.uniform_windows([d], 64, seq_len=CTX, seed=0)[0], chunk=3)
                           for d in DOMS])
    assert np.array_equal(res.nll[0], want)
    # states are loaded into a copy of the model: the same numbers as the model itself
    via_states = E.evaluate(models[0], spec, states=[models[2].state_dict()])
    assert np.array_equal(via_states.nll, res.nll)
    assert not torch.equal(models[0].lm_head.weight, models[2].lm_head.weight)  # architecture untouched


@pytest.mark.parametrize("backend", ["stacked", "forward"])
def test_evaluate_merges_is_merge_then_evaluate(models, backend):
    base, experts = models[0], [m.state_dict() for m in models[1:]]
    merges = [E.Merge((0, 2), "ties", 0, {"density": 0.5}), E.Merge((1,), "dare", 3, {"p": 0.3}),
              E.Merge((0, 1, 2), "model_stock")]
    spec = E.EvalSpec(DOMS, 48, seed=0, backend=backend, batch=2)
    res = E.evaluate_merges(base, experts, merges, spec)
    states = [merge(base.state_dict(), [experts[i] for i in m.experts], m.method, seed=m.seed, **m.options)
              for m in merges]
    assert np.array_equal(res.nll, E.evaluate(base, spec, states=states).nll)


def test_every_merge_is_checked_before_any_is_computed(models, monkeypatch):
    import scalinglaws.merge as MG
    calls = []
    monkeypatch.setattr(MG, "merge", lambda *a, **k: calls.append(a) or {})
    base, experts = models[0], [m.state_dict() for m in models[1:]]
    spec = E.EvalSpec(DOMS, 48)
    for bad, match in [(E.Merge((0,), "ties", 0, {"density": 2.0}), "density"),
                       (E.Merge((5,), "average"), "indices"), (E.Merge((0,), "model_stock"), "2\\+ experts"),
                       (E.Merge((0,), "nope"), "method")]:
        with pytest.raises(ParameterError, match=match):
            E.evaluate_merges(base, experts, [E.Merge((0, 1), "average"), bad], spec)
    assert calls == []


def test_documents_protocol_is_evaluate_domains(models):
    from scalinglaws.data.tokenizer import load_tokenizer
    res = E.evaluate(models[1], E.EvalSpec(DOMS, protocol="documents", max_docs=2))
    want = E.evaluate_domains(models[1], load_tokenizer(), DOMS, max_docs=2)
    pd.testing.assert_frame_equal(res.frame(model=0), want, check_exact=True)


@pytest.mark.parametrize("kwargs,match", [
    ({"domains": "math", "tokens_per_domain": 8}, "list"),
    ({"domains": [], "tokens_per_domain": 8}, "non-empty"),
    ({"domains": ["math", "math"], "tokens_per_domain": 8}, "distinct"),
    ({"domains": DOMS}, "tokens_per_domain"),
    ({"domains": DOMS, "tokens_per_domain": 8, "split": "dev"}, "split"),
    ({"domains": DOMS, "tokens_per_domain": 8, "backend": "fast"}, "backend"),
    ({"domains": DOMS, "tokens_per_domain": 8, "batch": 0}, "batch"),
    ({"domains": DOMS, "tokens_per_domain": 8, "seed": -1}, "seed"),
    ({"domains": DOMS, "tokens_per_domain": 8, "max_docs": 3}, "max_docs"),
    ({"domains": DOMS, "tokens_per_domain": 8, "protocol": "documents"}, "tokens_per_domain"),
])
def test_spec_is_validated_on_construction(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        E.EvalSpec(**kwargs)


def test_evaluate_refuses_what_it_cannot_score(models):
    spec = E.EvalSpec(DOMS, 8)
    with pytest.raises(ParameterError, match="EvalSpec"):
        E.evaluate(models[0], {"domains": DOMS})
    with pytest.raises(ParameterError, match="one model"):
        E.evaluate(models[:2], spec, states=[models[0].state_dict()])
    with pytest.raises(ParameterError, match="non-empty list"):
        E.evaluate(models[0], spec, states=models[0].state_dict())


def test_lmeval_cross_checks_the_same_spec(models, tmp_path):
    """lm-eval (its `hf` model, offline) on the spec `evaluate` scores: the same documents, the
    same NLL to lm-eval's float rounding. A uniform-windows spec has no lm-eval task."""
    from scalinglaws.data.tokenizer import load_tokenizer
    from scalinglaws.lmeval import run_lmeval_spec
    from scalinglaws.models import save_checkpoint
    save_checkpoint(models[3], tmp_path / "ckpt", tokenizer=load_tokenizer())
    spec = E.EvalSpec(DOMS, protocol="documents", max_docs=2, batch=4)
    ours = E.evaluate(models[3], spec).frame(model=0).set_index("domain")
    ref = run_lmeval_spec(tmp_path / "ckpt", spec).set_index("domain")
    for d in DOMS:
        assert ref.loc[d, "docs"] == ours.loc[d, "docs"] and ref.loc[d, "bytes"] == ours.loc[d, "bytes"]
        assert ref.loc[d, "nll_sum"] == pytest.approx(ours.loc[d, "nll_sum"], rel=1e-4)
    with pytest.raises(ParameterError, match="documents"):
        run_lmeval_spec(tmp_path / "ckpt", E.EvalSpec(DOMS, 8))


def test_a_new_merge_method_reaches_evaluate_merges(models, monkeypatch):
    """A method added only to `merge.METHODS` (a temporary registry here) is merged and scored by
    the studies' merge-then-evaluate with no other change."""
    import scalinglaws.merge as MG
    first = MG.MergeMethod("first_expert", (), lambda m, name, b, xs, o, seed, ctx: xs[0].to(b.device, torch.float32))
    monkeypatch.setitem(MG.METHODS, "first_expert", first)
    base, experts = models[0], [m.state_dict() for m in models[1:]]
    spec = E.EvalSpec(DOMS, 48)
    res = E.evaluate_merges(base, experts, [E.Merge((1, 2), "first_expert")], spec)
    assert np.array_equal(res.nll, E.evaluate(base, spec, states=[experts[1]]).nll)
