"""The trainer: sampling, schedule, determinism, learning, divergence, budgets."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scalinglaws.models import build_model, ladder
from scalinglaws.training import (TrainingDiverged, WindowSampler, finetune_budget, lr_at,
                                  token_budget, train)
from scalinglaws.core.validation import ParameterError

V = 64


def _model(seed=0):
    return build_model("d16l1", seed, vocab_size=V, context=32)


def _stream(n=20_000, seed=0):
    return np.random.default_rng(seed).integers(0, V, n).astype(np.uint16)


KW = dict(tokens=8 * 256, batch_tokens=256, seq_len=32, lr=3e-3, warmup_frac=0.25, min_lr_frac=0.1,
          weight_decay=0.1, grad_clip=1.0, device="cpu", log_every=1, progress=False)


def test_sampler_windows_are_contiguous_and_seeded():
    a = np.arange(1000, dtype=np.uint16)
    s1, s2 = WindowSampler(a, 16, 8, seed=1), WindowSampler(a, 16, 8, seed=1)
    x = s1.sample()
    assert x.shape == (8, 17) and x.dtype == torch.int64
    assert torch.all(x[:, 1:] - x[:, :-1] == 1)
    assert torch.equal(x, s2.sample())
    assert not torch.equal(WindowSampler(a, 16, 8, seed=2).sample(), x)


def test_sampler_mixture_weights():
    arrays = {"a": np.zeros(500, np.uint16), "b": np.ones(500, np.uint16)}
    s = WindowSampler(arrays, 4, 4000, seed=0, weights={"a": 0.8, "b": 0.2})
    frac_b = s.sample()[:, 0].float().mean().item()
    assert abs(frac_b - 0.2) < 0.03  # binomial sd 0.006
    assert WindowSampler(arrays, 4, 100, weights=[1, 0]).sample().sum() == 0
    with pytest.raises(ParameterError):
        WindowSampler(arrays, 4, 10, weights=[1, -1])
    with pytest.raises(ParameterError):
        WindowSampler(np.arange(4), 4, 10)  # shorter than one window


def test_lr_schedule():
    steps, w = 100, 10
    lrs = [lr_at(s, steps, 1.0, w, 0.1) for s in range(steps)]
    assert lrs[0] == pytest.approx(0.1) and lrs[w - 1] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[w:], lrs[w + 1:]))  # cosine decays monotonically
    assert lrs[-1] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 89 / 90)))
    assert lrs[w + 45] == pytest.approx(0.55)  # halfway through the decay: (1 + 0.1) / 2


def test_same_seed_same_losses_different_seed_different():
    torch.manual_seed(123)  # the trainer must not depend on the global RNG state
    r1 = train(_model(), _stream(), seed=5, **KW)
    torch.manual_seed(999)
    r2 = train(_model(), _stream(), seed=5, **KW)
    r3 = train(_model(), _stream(), seed=6, **KW)
    assert r1.curve["loss"].tolist() == r2.curve["loss"].tolist()
    assert r1.final_loss == r2.final_loss
    assert r1.curve["loss"].tolist() != r3.curve["loss"].tolist()
    assert list(r1.curve.columns) == ["step", "tokens", "loss", "lr", "tokens_per_s"]
    assert r1.steps == 8 and r1.tokens == 2048 and r1.curve["tokens"].iloc[-1] == 2048
    assert (r1.curve["tokens_per_s"] > 0).all() and r1.wall_s > 0


def test_micro_batching_matches_full_batch():
    r1 = train(_model(), _stream(), seed=0, **KW)
    r2 = train(_model(), _stream(), seed=0, micro_batch=2, **KW)
    np.testing.assert_allclose(r1.curve["loss"], r2.curve["loss"], rtol=1e-4)


def test_loss_goes_down_on_learnable_stream():
    # a deterministic cycle through 16 symbols: the next token is a function of the current one
    stream = (np.arange(20_000) % 16).astype(np.uint16)
    model = _model()
    kw = {**KW, "tokens": 60 * 256, "lr": 2e-2, "warmup_frac": 0.1, "log_every": 5}
    res = train(model, stream, seed=0, **kw)
    assert res.curve["loss"].iloc[0] > 3.0  # ~ ln 64 at the start
    assert res.final_loss < 0.3  # the cycle is learned (reached ~0.03)
    assert not model.training


def test_divergence_is_detected():
    model = _model()
    with torch.no_grad():
        model.model.layers[0].mlp.up_proj.weight[0, 0] = float("nan")
    with pytest.raises(TrainingDiverged) as e:
        train(model, _stream(), seed=0, **KW)
    assert e.value.step == 0 and math.isnan(e.value.loss)
    assert "diverged at step 0" in str(e.value)


def test_huge_learning_rate_diverges():
    kw = {**KW, "lr": 1e6, "grad_clip": 0.0, "warmup_frac": 0.0, "tokens": 30 * 256}
    with pytest.raises(TrainingDiverged) as e:
        train(_model(), _stream(), seed=0, **kw)
    assert e.value.step >= 1


def test_parameters_validated_before_compute():
    for bad in ({"seq_len": 64}, {"lr": -1.0}, {"batch_tokens": 16}, {"tokens": 100},
                {"warmup_frac": 1.5}, {"micro_batch": 3}):
        with pytest.raises(ParameterError):
            train(_model(), _stream(), seed=0, **{**KW, **bad})


def test_budgets():
    """One pretraining budget per profile for every size (Clark's protocol), within the epoch
    limit of the default testbed mixture; an expert's budget is a small share of it."""
    from scalinglaws.core.profiles import MAX_EPOCHS, REGISTRY
    from scalinglaws.studies import testbed
    for profile in ("smoke", "cpu", "gpu"):
        budgets = {token_budget(size, profile) for size in ladder(profile)}
        assert budgets == {REGISTRY[profile].pretrain_tokens}
        d = budgets.pop()
        params = testbed.PROFILES[profile]
        assert testbed.epochs(params, d).max() <= MAX_EPOCHS
        for size in ladder(profile):
            f = finetune_budget(size, profile)
            assert f % 1024 == 0 and 0 < f < d
    assert token_budget("d16l1", "smoke") == 40_960
    with pytest.raises(ParameterError, match="size"):
        token_budget("d9999l9", "smoke")

class _Killed(RuntimeError):
    pass


def _train_killed_after_six_steps(monkeypatch, state, kw):
    """Train with `resume=state` (saved after every step) and kill the run as it samples its 7th batch."""
    calls = {"n": 0}
    real = WindowSampler.sample

    def dies_at_seventh(self):
        calls["n"] += 1
        if calls["n"] == 7:
            raise _Killed("killed")
        return real(self)

    monkeypatch.setattr(WindowSampler, "sample", dies_at_seventh)
    with pytest.raises(_Killed):
        train(_model(), _stream(), seed=3, resume=state, resume_every_s=0.0, **kw)
    monkeypatch.setattr(WindowSampler, "sample", real)


def test_a_run_killed_midway_resumes_to_the_same_weights_bit_for_bit(tmp_path, monkeypatch):
    """`train(resume=...)`: a run stopped after a few steps (the state saved after every step here)
    and started again from its saved state ends with the weights, loss curve and optimiser state of a
    run never stopped; the state is gone at the end; a state of other settings is refused."""
    from scalinglaws import resume as RS
    kw = {**KW, "tokens": 12 * 256}
    ref_model = _model()
    ref = train(ref_model, _stream(), seed=3, **kw)

    state = tmp_path / "state"
    _train_killed_after_six_steps(monkeypatch, state, kw)
    assert (state / RS.META).exists()
    import json
    assert json.loads((state / RS.META).read_text())["step"] == 6  # saved after each of the 6 steps done

    with pytest.raises(ParameterError, match="belongs to another run"):
        train(_model(), _stream(), seed=4, resume=state, resume_every_s=0.0, **kw)
    model = _model()
    got = train(model, _stream(), seed=3, resume=state, resume_every_s=0.0, **kw)
    for (k, a), (_, b) in zip(ref_model.state_dict().items(), model.state_dict().items()):
        assert torch.equal(a, b), k
    assert got.curve["loss"].tolist() == ref.curve["loss"].tolist() and got.final_loss == ref.final_loss
    assert got.steps == ref.steps and got.tokens == ref.tokens
    assert not state.exists() and not list(tmp_path.iterdir())  # cleared when the run ends
    with pytest.raises(ParameterError, match="token arrays"):
        train(_model(), WindowSampler(_stream(), 32, 8), seed=3, resume=state, **kw)


def test_a_resumed_unit_records_the_time_its_killed_processes_spent(tmp_path, monkeypatch):
    """A sweep unit whose training resumes from a saved state records, as its wall_s, the seconds
    the killed process had trained (`spent_s` in the state) plus this process's: the parts' cost
    figures divide work by wall_s, and a record of the last process only overstated the rate."""
    import json

    from scalinglaws import resume as RS
    from scalinglaws.core.sweep import Sweep, Unit
    kw = {**KW, "tokens": 12 * 256}
    state = tmp_path / "state"
    _train_killed_after_six_steps(monkeypatch, state, kw)
    meta = json.loads((state / RS.META).read_text())
    meta["spent_s"] = 5000.0  # far above anything this test's process takes, so the credit is visible
    (state / RS.META).write_text(json.dumps(meta))

    def unit_fn(cfg):
        res = train(_model(), _stream(), seed=3, resume=state, resume_every_s=0.0, **kw)
        return {"loss": res.final_loss, "train_wall_s": res.wall_s}

    sw = Sweep("toy", "smoke", root=tmp_path / "w")
    rec, = sw.run([Unit("resumed", {"i": 0})], unit_fn)
    assert 5000.0 < rec["wall_s"] < 5000.0 + 60.0
    assert rec["wall_s"] >= rec["rows"][0]["train_wall_s"] > 5000.0
    fresh, = sw.run([Unit("fresh", {"i": 1})], lambda cfg: {"loss": train(_model(), _stream(), seed=3, **kw).final_loss})
    assert fresh["wall_s"] < 60.0  # the credit belongs to the unit that resumed, not to the next one
