"""Properties of scalinglaws.merge against independent (numpy / closed-form) references."""
import numpy as np
import pytest
import torch

from scalinglaws.merge import METHODS, describe, drop_probabilities, merge, method_defaults
from scalinglaws.core.validation import ParameterError

torch.set_num_threads(1)
LAM_METHODS = [m for m in METHODS if "lam" in METHODS[m].defaults]
RANDOM_METHODS = ["dare", "dare_ties", "della", "della_linear"]


def make_states(k=3, seed=0, scale=0.1, dtype=torch.float32, tied=True):
    """A small base (2-D weight, 1-D norm, int buffer, optionally a tied alias) and k experts."""
    g = torch.Generator().manual_seed(seed)
    base = {"emb": torch.randn(16, 12, generator=g).to(dtype),
            "norm": torch.ones(12, dtype=dtype),
            "proj": torch.randn(10, 16, generator=g).to(dtype),
            "steps": torch.arange(4)}
    if tied:
        base["head"] = base["emb"]
    experts = []
    for _ in range(k):
        e = {n: (t + scale * torch.randn(t.shape, generator=g).to(dtype)
                 if t.is_floating_point() else t.clone())
             for n, t in base.items() if n != "head"}
        if tied:
            e["head"] = e["emb"]
        experts.append(e)
    return base, experts


def deltas(base, experts, name):
    return np.stack([(e[name].double() - base[name].double()).numpy() for e in experts])


def test_registry_and_describe():
    assert {"average", "task_arithmetic", "ties", "dare", "della", "della_linear"} <= set(METHODS)
    assert method_defaults("task_arithmetic") == {"lam": 0.8}
    assert method_defaults("della")["p"] == 0.5
    d = method_defaults("ties")
    d["lam"] = 99  # a copy: the registry is not changed
    assert method_defaults("ties")["lam"] == 1.0
    for m in METHODS:
        assert m in describe(m) and METHODS[m].mergekit in describe(m)


@pytest.mark.parametrize("method", LAM_METHODS)
def test_lambda_zero_returns_base(method):
    base, experts = make_states()
    out = merge(base, experts, method, lam=0.0)
    for n in base:
        assert torch.equal(out[n], base[n]), n
        assert out[n] is not base[n]  # a new state dict, not aliases of the base


def test_average_of_one_expert_is_the_expert():
    base, (e,) = make_states(k=1)
    out = merge(base, [e], "average")
    for n in base:
        torch.testing.assert_close(out[n], e[n], rtol=0, atol=1e-6)


def test_average_is_the_mean_of_the_experts():
    base, experts = make_states(k=4)
    out = merge(base, experts, "average")
    for n in ("emb", "norm", "proj"):
        ref = np.mean([e[n].double().numpy() for e in experts], axis=0)
        np.testing.assert_allclose(out[n].numpy(), ref, atol=1e-6)


@pytest.mark.parametrize("lam", [0.8, 0.3, 1.0])
def test_task_arithmetic_identical_experts(lam):
    base, (e,) = make_states(k=1)
    out = merge(base, [e] * 5, "task_arithmetic", lam=lam)
    for n in ("emb", "norm", "proj"):
        ref = base[n].double() + lam * (e[n].double() - base[n].double())
        np.testing.assert_allclose(out[n].numpy(), ref.numpy(), atol=1e-6)


def test_task_arithmetic_uses_mean_not_sum():
    base, experts = make_states(k=4)
    out = merge(base, experts, "task_arithmetic")
    ref = base["proj"].double().numpy() + 0.8 * deltas(base, experts, "proj").mean(0)
    np.testing.assert_allclose(out["proj"].numpy(), ref, atol=1e-6)


@pytest.mark.parametrize("lam", [0.5, 1.0])
def test_ties_density_one_agreeing_signs_is_task_arithmetic(lam):
    base, _ = make_states(tied=False)
    g = torch.Generator().manual_seed(3)
    sign = {n: torch.randint(0, 2, t.shape, generator=g) * 2.0 - 1 for n, t in base.items()}
    experts = [{n: (t + sign[n] * (0.05 + torch.rand(t.shape, generator=g))
                    if t.is_floating_point() else t) for n, t in base.items()} for _ in range(3)]
    ties = merge(base, experts, "ties", density=1.0, lam=lam)
    ta = merge(base, experts, "task_arithmetic", lam=lam)
    for n in base:
        torch.testing.assert_close(ties[n], ta[n], rtol=0, atol=1e-6)


def ties_reference(v, density, lam):
    """Numpy TIES on one tensor: v has shape (k, ...); per-expert top-density by magnitude."""
    k = v.shape[0]
    flat = v.reshape(k, -1)
    keep = max(1, int(density * flat.shape[1]))
    trimmed = np.zeros_like(flat)
    for i in range(k):
        top = np.argsort(-np.abs(flat[i]), kind="stable")[:keep]
        trimmed[i, top] = flat[i, top]
    elected = np.where(trimmed.sum(0) >= 0, 1.0, -1.0)
    agree = np.sign(trimmed) == elected
    count = agree.sum(0)
    fused = np.where(count > 0, (trimmed * agree).sum(0) / np.maximum(count, 1), 0.0)
    return lam * fused.reshape(v.shape[1:])


@pytest.mark.parametrize("density,lam", [(0.2, 1.0), (0.5, 0.5), (0.9, 1.0)])
def test_ties_per_tensor_matches_numpy_reference(density, lam):
    base, experts = make_states(k=4)
    out = merge(base, experts, "ties", density=density, lam=lam)
    for n in ("emb", "norm", "proj"):
        ref = base[n].double().numpy() + ties_reference(deltas(base, experts, n), density, lam)
        np.testing.assert_allclose(out[n].numpy(), ref, atol=1e-6, err_msg=n)


def test_ties_model_scope_keeps_global_top_density():
    base, (e,) = make_states(k=1, tied=False)
    names = ["emb", "norm", "proj"]
    # make the tensors' scales differ so per-tensor and global trims disagree
    e = dict(e, proj=base["proj"] + 10 * (e["proj"] - base["proj"]))
    density = 0.3
    out = merge(base, [e], "ties", density=density, trim_scope="model")
    v = np.concatenate([(e[n].double() - base[n].double()).numpy().ravel() for n in names])
    kept = np.concatenate([(out[n].double() - base[n].double()).numpy().ravel() for n in names])
    top = np.argsort(-np.abs(v))[:int(density * v.size)]
    expected = np.zeros_like(v)
    expected[top] = v[top]
    np.testing.assert_allclose(kept, expected, atol=1e-6)
    per_tensor = merge(base, [e], "ties", density=density)
    assert (per_tensor["proj"] != base["proj"]).sum() == int(density * base["proj"].numel())
    assert (out["proj"] != base["proj"]).sum() > int(density * base["proj"].numel())


def rank_probabilities(v, p, eps):
    """Independent MAGPRUNE reference: ranks by |v| per row with numpy, linear window."""
    rows = v.reshape(1, -1) if v.ndim < 2 else v.reshape(v.shape[0], -1)
    n = rows.shape[1]
    ranks = np.argsort(np.argsort(np.abs(rows), axis=1, kind="stable"), axis=1, kind="stable")
    return (p + eps / 2 - eps * ranks / (n - 1)).reshape(v.shape)


@pytest.mark.parametrize("shape", [(7, 33), (40,), (3, 4, 5)])
@pytest.mark.parametrize("p,eps", [(0.5, 0.2), (0.3, 0.5), (0.8, 0.02)])
def test_della_drop_probabilities(shape, p, eps):
    v = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    probs = drop_probabilities(v, p, eps)
    rows = probs.reshape(1, -1) if v.dim() < 2 else probs.reshape(shape[0], -1)
    vrows = v.reshape(rows.shape)
    torch.testing.assert_close(rows.double().mean(1), torch.full((rows.shape[0],), p,
                               dtype=torch.float64), rtol=0, atol=1e-6)
    torch.testing.assert_close(rows.max(1).values, torch.full((rows.shape[0],), p + eps / 2))
    torch.testing.assert_close(rows.min(1).values, torch.full((rows.shape[0],), p - eps / 2))
    # the smallest magnitude of each row has the largest drop probability
    smallest = vrows.abs().argmin(1)
    torch.testing.assert_close(rows.gather(1, smallest[:, None])[:, 0],
                               torch.full((rows.shape[0],), p + eps / 2))
    np.testing.assert_allclose(probs.numpy(), rank_probabilities(v.numpy(), p, eps), atol=1e-6)


@pytest.mark.parametrize("della,dare", [("della_linear", "dare"), ("della", "dare_ties")])
@pytest.mark.parametrize("rescale", ["inverse", "l1", "none"])
def test_della_eps_zero_is_dare(della, dare, rescale):
    base, experts = make_states()
    for seed in (0, 7):
        a = merge(base, experts, della, eps=0.0, p=0.3, rescale=rescale, seed=seed)
        b = merge(base, experts, dare, p=0.3, rescale=rescale, seed=seed)
        for n in base:
            assert torch.equal(a[n], b[n]), n


@pytest.mark.parametrize("method,opts", [("dare", {"p": 0.3}), ("della_linear", {"p": 0.4, "eps": 0.4})])
def test_random_drop_preserves_expected_delta(method, opts):
    """Mean over seeds -> the un-dropped mean delta, within 6 sigma per entry; the
    standardised errors have unit mean square (so the tolerance is not vacuous)."""
    base, experts = make_states(k=3, tied=False)
    S = 300
    names = ["emb", "norm", "proj"]
    acc = {n: torch.zeros_like(base[n], dtype=torch.float64) for n in names}
    for s in range(S):
        out = merge(base, experts, method, seed=s, **opts)
        for n in names:
            acc[n] += out[n].double() - base[n].double()
    z2 = []
    for n in names:
        v = deltas(base, experts, n)
        p = (np.full_like(v, opts["p"]) if "eps" not in opts else
             np.stack([rank_probabilities(vi, opts["p"], opts["eps"]) for vi in v]))
        target = v.mean(0)
        var = (v ** 2 * p / (1 - p)).sum(0) / v.shape[0] ** 2 / S
        z = (acc[n].numpy() / S - target) / np.sqrt(var)
        assert np.abs(z).max() < 6, n
        z2.append(z.ravel() ** 2)
    assert 0.75 < np.concatenate(z2).mean() < 1.25


def test_random_methods_seeded_and_order_independent():
    base, experts = make_states()
    a = merge(base, experts, "della", seed=3)
    b = merge(dict(reversed(list(base.items()))),
              [dict(reversed(list(e.items()))) for e in experts], "della", seed=3)
    c = merge(base, experts, "della", seed=4)
    assert list(a) == list(base) and list(b) == list(reversed(list(base)))
    for n in base:
        assert torch.equal(a[n], b[n]), n
    assert not torch.equal(a["proj"], c["proj"])


def test_dare_drop_rate_and_rescale():
    base, (e,) = make_states(k=1, tied=False)
    out = merge(base, [e], "dare", p=0.25)
    v = (e["emb"] - base["emb"]).double()
    d = (out["emb"] - base["emb"]).double()
    kept = d != 0
    torch.testing.assert_close(d[kept], v[kept] / 0.75)
    assert abs(kept.double().mean().item() - 0.75) < 4 * np.sqrt(0.75 * 0.25 / v.numel())
    l1 = merge(base, [e], "dare", p=0.25, rescale="l1")
    d1 = (l1["emb"] - base["emb"]).double()
    torch.testing.assert_close(d1.abs().sum(), v.abs().sum(), rtol=1e-5, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16, torch.float64])
def test_dtype_device_and_ties_preserved(dtype):
    base, experts = make_states(dtype=dtype)
    for method in METHODS:
        out = merge(base, experts, method)
        assert list(out) == list(base)
        for n, t in base.items():
            assert out[n].dtype == t.dtype and out[n].device == t.device and out[n].shape == t.shape
        assert out["head"] is out["emb"]
        assert torch.equal(out["steps"], base["steps"])
        ref = merge({n: t.float() if t.is_floating_point() else t for n, t in base.items()},
                    [{n: t.float() if t.is_floating_point() else t for n, t in e.items()}
                     for e in experts], method)
        torch.testing.assert_close(out["proj"].float(), ref["proj"].to(dtype).float())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_state_stays_on_cuda():
    base, experts = make_states()
    to = lambda sd: {n: t.cuda() for n, t in sd.items()}
    cuda_base = to(base)
    cuda_base["head"] = cuda_base["emb"]
    out = merge(cuda_base, [to(e) for e in experts], "ties")
    ref = merge(base, experts, "ties")
    assert all(t.is_cuda for t in out.values())
    torch.testing.assert_close(out["proj"].cpu(), ref["proj"])


def test_tied_llama_embeddings_merge_once():
    transformers = pytest.importorskip("transformers")
    cfg = transformers.LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                   num_attention_heads=4, num_key_value_heads=2, vocab_size=128,
                                   tie_word_embeddings=True)
    torch.manual_seed(0)
    models = [transformers.LlamaForCausalLM(cfg) for _ in range(3)]
    sds = [m.state_dict() for m in models]
    assert "lm_head.weight" in sds[0] and "model.embed_tokens.weight" in sds[0]
    out = merge(sds[0], sds[1:], "della", seed=1)
    assert out["lm_head.weight"] is out["model.embed_tokens.weight"]
    # a base whose copies were untied is merged name by name (deterministic: same values)
    untied = {n: t.clone() for n, t in sds[0].items()}
    ta = merge(untied, sds[1:], "task_arithmetic")
    assert ta["lm_head.weight"] is not ta["model.embed_tokens.weight"]
    torch.testing.assert_close(ta["lm_head.weight"], ta["model.embed_tokens.weight"])
    # experts must agree on tied names
    bad = dict(sds[1], **{"lm_head.weight": sds[1]["lm_head.weight"] + 1})
    with pytest.raises(ParameterError, match="lm_head.weight"):
        merge(sds[0], [bad], "average")


def test_many_experts_per_tensor():
    base, experts = make_states(k=16, tied=False)
    out = merge(base, experts, "della", seed=0)
    assert torch.isfinite(out["proj"]).all()


@pytest.mark.parametrize("method,opts,match", [
    ("slerp", {}, "method"),
    ("average", {"lam": 0.5}, "lam"),
    ("ties", {"p": 0.5}, r"\['p'\]"),
    ("ties", {"density": 0.0}, "density"),
    ("ties", {"density": 1.5}, "density"),
    ("ties", {"trim_scope": "layer"}, "trim_scope"),
    ("ties", {"trim_count": "paper"}, "trim_count"),
    ("dare", {"trim_count": "merging_eval"}, "trim_count"),
    ("dare", {"p": 0.0}, "p="),
    ("dare", {"p": 1.0}, "p="),
    ("dare", {"rescale": "l2"}, "rescale"),
    ("della", {"p": 0.1, "eps": 0.2}, "window"),
    ("della", {"p": 0.9, "eps": 0.2}, "window"),
    ("della", {"eps": -0.1}, "eps"),
    ("task_arithmetic", {"lam": float("nan")}, "lam"),
    ("dare", {"seed": -1}, "seed"),
])
def test_bad_options_raise(method, opts, match):
    base, experts = make_states()
    with pytest.raises(ParameterError, match=match):
        merge(base, experts, method, **opts)
    # options are checked before the states: a bad option wins over bad states
    with pytest.raises(ParameterError, match=match):
        merge(base, [], method, **opts)


def test_bad_states_name_the_tensor():
    base, experts = make_states()
    with pytest.raises(ParameterError, match="expert_states"):
        merge(base, [], "average")
    missing = {n: t for n, t in experts[0].items() if n != "proj"}
    with pytest.raises(ParameterError, match="'proj'.*missing"):
        merge(base, [experts[1], missing], "average")
    extra = dict(experts[0], extra=torch.zeros(2))
    with pytest.raises(ParameterError, match="'extra'"):
        merge(base, [extra], "average")
    shaped = dict(experts[0], proj=torch.zeros(16, 10))
    with pytest.raises(ParameterError, match=r"'proj' has shape \(16, 10\)"):
        merge(base, [shaped], "ties")


def test_elect_breaks_exact_ties_towards_plus():
    """Sum exactly 0 -> elected sign +1 (mergekit's rule): the positive experts are averaged."""
    base = {"w": torch.zeros(3)}
    experts = [{"w": torch.tensor([1.0, -2.0, 0.5])}, {"w": torch.tensor([-1.0, 2.0, 0.5])}]
    out = merge(base, experts, "ties", density=1.0, lam=1.0)
    torch.testing.assert_close(out["w"], torch.tensor([1.0, 2.0, 0.5]))


def test_equal_tensors_under_different_names_get_independent_masks():
    t = torch.randn(8, 8, generator=torch.Generator().manual_seed(0))
    base = {"a": torch.zeros(8, 8), "b": torch.zeros(8, 8)}  # separate storages: not tied
    out = merge(base, [{"a": t, "b": t.clone()}], "dare", p=0.5)
    assert not torch.equal(out["a"], out["b"])


@pytest.mark.parametrize("kind", ["random", "sorted", "ties", "mostly_zero"])
@pytest.mark.parametrize("density", [0.01, 0.2, 0.5, 0.97])
def test_magnitude_threshold_large_tensors_exact(kind, density, monkeypatch):
    """The bracketed selection used for large tensors equals numpy's k-th largest, also for
    inputs where the strided sample is biased (sorted) or values tie (ties, zeros)."""
    from scalinglaws.merge import magnitude_threshold
    g = torch.Generator().manual_seed(0)
    n = 200_003
    a = torch.rand(n, generator=g)
    if kind == "sorted":
        a = a.sort().values
    elif kind == "ties":
        a = torch.randint(0, 50, (n,), generator=g).float()
    elif kind == "mostly_zero":
        a = torch.where(torch.rand(n, generator=g) < 0.9, 0.0, a)
    k = max(1, int(density * n))
    expected = np.sort(a.numpy())[::-1][k - 1]
    if kind in ("random", "sorted"):  # the fast bracket must hold the answer: no top-k fallback
        monkeypatch.setattr(torch, "topk", None)
    assert magnitude_threshold(a, density).item() == expected


def _model_stock_reference(b, xs):
    """Model Stock from the paper's formula in float64 numpy (one ratio per tensor)."""
    b = b.double().numpy().ravel()
    v = [x.double().numpy().ravel() - b for x in xs]
    k = len(v)
    cos = np.mean([v[i] @ v[j] / (np.linalg.norm(v[i]) * np.linalg.norm(v[j]))
                   for i in range(k) for j in range(i + 1, k)])
    t = k * cos / (1 + (k - 1) * cos)
    return t * np.mean([x.double().numpy().ravel() for x in xs], axis=0) + (1 - t) * b


@pytest.mark.parametrize("k", [2, 4])
def test_model_stock_against_the_formula(k):
    base, experts = make_states(k=k, seed=3)
    out = merge(base, experts, "model_stock")
    for n in ("emb", "proj", "norm"):
        ref = _model_stock_reference(base[n], [e[n] for e in experts]).reshape(base[n].shape)
        np.testing.assert_allclose(out[n].double().numpy(), ref, rtol=0, atol=1e-5)
    assert out["head"] is out["emb"] and torch.equal(out["steps"], base["steps"])
    # orthogonal task vectors: cos = 0, t = 0, the base; equal task vectors: cos = 1, t = 1, the expert
    assert np.isclose(_model_stock_reference(torch.zeros(2), [torch.tensor([1., 0.]), torch.tensor([0., 1.])]),
                      0).all()
    same = merge(base, [experts[0], experts[0]], "model_stock")
    torch.testing.assert_close(same["proj"], experts[0]["proj"], rtol=0, atol=1e-6)


def test_model_stock_slot_declares_its_options_and_count():
    from scalinglaws.merge import check_merge, linear_coefficient
    m = METHODS["model_stock"]
    assert (m.sparsifier, m.consensus, m.min_experts) == ("", "", 2)
    assert method_defaults("model_stock") == {"filter_wise": False}
    assert linear_coefficient("model_stock") is None and "Model Stock" in describe("model_stock")
    base, experts = make_states(k=2)
    with pytest.raises(ParameterError, match="merges 2\\+ experts, got 1"):
        merge(base, experts[:1], "model_stock")
    with pytest.raises(ParameterError, match="filter_wise"):
        check_merge("model_stock", 2, 0, {"filter_wise": "yes"})
    with pytest.raises(ParameterError, match="no option"):
        merge(base, experts, "model_stock", lam=1.0)


def test_a_new_method_needs_only_a_registry_entry(monkeypatch):
    """A method added to METHODS (here in a temporary registry) is merged, validated and
    described through the same functions as the registered ones."""
    from scalinglaws import merge as MG
    halfway = MG.MergeMethod("halfway", (MG._lam(0.5),), lambda m, name, b, xs, o, seed, ctx:
                             b.float() + o["lam"] * (xs[0].to(b.device, torch.float32) - b.float()),
                             max_experts=1, mergekit="linear", summary="theta0 + lam v_1")
    monkeypatch.setitem(MG.METHODS, "halfway", halfway)
    base, experts = make_states(k=2)
    out = merge(base, experts[:1], "halfway", lam=0.25)
    torch.testing.assert_close(out["proj"], base["proj"] + 0.25 * (experts[0]["proj"] - base["proj"]))
    with pytest.raises(ParameterError, match="merges 1 experts, got 2"):
        merge(base, experts, "halfway")
    assert method_defaults("halfway") == {"lam": 0.5} and "halfway" in describe("halfway")
