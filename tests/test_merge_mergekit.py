"""scalinglaws.merge against mergekit 0.1.5 on the same tensors, wherever definitions coincide.

How the conventions are mapped (see the scalinglaws.merge docstring):
  * average          == mergekit linear over the experts only, weight 1, normalize.
  * task_arithmetic  == mergekit task_arithmetic, weight 1, normalize: true, lambda = lam.
  * ties             == mergekit ties (per-tensor trim), weight 1, normalize: true, lambda.
  * dare / dare_ties / della / della_linear: mergekit draws masks with torch.bernoulli(keep
    probabilities) from the global RNG. We replace torch.bernoulli during the call by a function
    that (1) records the keep probabilities mergekit asked for, which must equal 1 - our drop
    probabilities (this checks density = 1 - p and epsilon = eps/2, the half-width), and (2)
    returns the mask our merge draws for that expert (u >= p_j with our seeded generator). With
    masks made identical the deterministic rest is compared: rescale="l1" == mergekit
    rescale: true, rescale="none" == rescale: false, with normalize: true. The papers'
    per-entry 1/(1-p_j) (our default) has no mergekit counterpart; its expectation is tested
    in test_merge.py.
"""
import pytest
import torch

from scalinglaws.merge import (METHODS, _generator, drop_probabilities, merge,
                               to_mergekit_yaml)

mk_api = pytest.importorskip("mergekit.merge_methods.api")
yaml = pytest.importorskip("yaml")
torch.set_num_threads(1)

SHAPES = {"w": (12, 20), "n": (20,), "e": (9, 4, 5)}


def states(k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = {n: torch.randn(s, generator=g) for n, s in SHAPES.items()}
    experts = [{n: t + 0.1 * torch.randn(t.shape, generator=g) for n, t in base.items()}
               for _ in range(k)]
    return base, experts


def mergekit_tensor(base, experts, name, method, parameters):
    tensors = [base[name]] + [e[name] for e in experts]
    return mk_api.merge_tensors(tensors, method, parameters=parameters, base_index=0, name=name)


def test_average_is_mergekit_linear():
    base, experts = states(k=4)
    ours = merge(base, experts, "average")
    for n in base:
        theirs = mk_api.merge_tensors([e[n] for e in experts], "linear",
                                      parameters={"weight": 1.0})
        torch.testing.assert_close(ours[n], theirs, rtol=0, atol=1e-6)


@pytest.mark.parametrize("lam", [0.8, 1.0, 0.3])
def test_task_arithmetic_is_mergekit_normalized(lam):
    base, experts = states(k=5)
    ours = merge(base, experts, "task_arithmetic", lam=lam)
    for n in base:
        theirs = mergekit_tensor(base, experts, n, "task_arithmetic",
                                 {"weight": 1.0, "normalize": True, "lambda": lam})
        torch.testing.assert_close(ours[n], theirs, rtol=0, atol=1e-6)
    # mergekit's default normalize: false is lam * sum, which is NOT our convention for k > 1
    summed = mergekit_tensor(base, experts, "w", "task_arithmetic", {"weight": 1.0, "lambda": lam})
    assert not torch.allclose(ours["w"], summed, atol=1e-3)


@pytest.mark.parametrize("density,lam", [(0.2, 1.0), (0.5, 0.5), (0.7, 1.0), (1.0, 0.5)])
def test_ties_is_mergekit_ties(density, lam):
    base, experts = states(k=4)
    ours = merge(base, experts, "ties", density=density, lam=lam)
    for n in base:
        theirs = mergekit_tensor(base, experts, n, "ties",
                                 {"weight": 1.0, "density": density, "lambda": lam})
        torch.testing.assert_close(ours[n], theirs, rtol=0, atol=1e-6)


def test_ties_trim_counts_against_mergekit():
    """trim_count="mergekit" (our default) is mergekit's count; the merging paper code's count
    ("merging_eval", tested against that code in test_merge_paper_code.py) keeps 1-2 entries more
    per tensor and expert, so a few entries of the merge differ from mergekit's."""
    base, experts = states(k=4)
    ours = merge(base, experts, "ties", density=0.2, trim_count="mergekit")
    paper = merge(base, experts, "ties", density=0.2, trim_count="merging_eval")
    differ = 0
    for n in base:
        theirs = mergekit_tensor(base, experts, n, "ties", {"weight": 1.0, "density": 0.2, "lambda": 1.0})
        torch.testing.assert_close(ours[n], theirs, rtol=0, atol=1e-6)
        differ += int(((paper[n] - theirs).abs() > 1e-6).sum())
    assert 0 < differ <= 2 * len(experts) * len(base)
    assert "NOT REPRODUCED" in to_mergekit_yaml("ties", "b", ["e"], trim_count="merging_eval")


class FixedMasks:
    """Stands in for torch.bernoulli inside mergekit.sparsify: records keep probabilities and
    returns our masks, one per call, in expert order."""

    def __init__(self, masks):
        self.masks, self.keep_probs = list(masks), []

    def __call__(self, probs, *args, **kwargs):
        self.keep_probs.append(probs.detach().clone())
        return self.masks.pop(0).to(probs.dtype)


def our_probs_and_masks(base, experts, name, p, eps, seed):
    out = []
    for i, e in enumerate(experts):
        v = e[name].float() - base[name].float()
        probs = drop_probabilities(v, p, eps) if eps is not None else torch.full_like(v, p)
        u = torch.rand(v.shape, generator=_generator(seed, name, i, v.device))
        out.append((probs, u >= probs))
    return out


@pytest.mark.parametrize("ours_method,mk_method,eps", [
    ("dare", "dare_linear", None), ("dare_ties", "dare_ties", None),
    ("della", "della", 0.2), ("della_linear", "della_linear", 0.3)])
@pytest.mark.parametrize("rescale", ["l1", "none"])
def test_random_methods_match_mergekit_with_fixed_masks(monkeypatch, ours_method, mk_method,
                                                        eps, rescale):
    base, experts = states(k=3)
    p, lam, seed = 0.4, 0.7, 5
    opts = {"p": p, "lam": lam, "rescale": rescale} | ({"eps": eps} if eps is not None else {})
    ours = merge(base, experts, ours_method, seed=seed, **opts)
    for n in ("w", "n"):  # > 2-D: mergekit ranks along dim 1 only, we flatten trailing dims
        pm = our_probs_and_masks(base, experts, n, p, eps, seed)
        fake = FixedMasks(m for _, m in pm)
        monkeypatch.setattr(torch, "bernoulli", fake)
        params = {"weight": 1.0, "density": 1 - p, "lambda": lam, "normalize": True,
                  "rescale": rescale == "l1"}
        if eps is not None:
            params["epsilon"] = eps / 2  # mergekit's epsilon is the half-width
        theirs = mergekit_tensor(base, experts, n, mk_method, params)
        monkeypatch.undo()
        assert not fake.masks and len(fake.keep_probs) == len(experts)
        for (probs, _), keep in zip(pm, fake.keep_probs):
            torch.testing.assert_close(keep.reshape(probs.shape), 1 - probs, rtol=0, atol=1e-6)
        torch.testing.assert_close(ours[n], theirs, rtol=0, atol=1e-5)


def test_della_keep_window_is_twice_mergekit_epsilon(monkeypatch):
    """The deterministic part alone: mergekit's keep probabilities with epsilon = eps/2 span
    [1 - p - eps/2, 1 - p + eps/2], our drop probabilities [p - eps/2, p + eps/2]."""
    from mergekit.sparsify import della_magprune
    v = torch.randn(6, 50, generator=torch.Generator().manual_seed(2))
    p, eps = 0.5, 0.14
    fake = FixedMasks([torch.ones_like(v)])
    monkeypatch.setattr(torch, "bernoulli", fake)
    della_magprune(v, density=1 - p, epsilon=eps / 2)
    monkeypatch.undo()
    keep = fake.keep_probs[0]
    torch.testing.assert_close(keep.max(1).values, torch.full((6,), 1 - p + eps / 2))
    torch.testing.assert_close(keep.min(1).values, torch.full((6,), 1 - p - eps / 2))
    torch.testing.assert_close(keep, 1 - drop_probabilities(v, p, eps), rtol=0, atol=1e-6)


@pytest.mark.parametrize("method", list(METHODS))
def test_yaml_parses_with_mergekit_config(method):
    from mergekit.config import MergeConfiguration
    text = to_mergekit_yaml(method, "base", ["e1", "e2", "e3"])
    assert text.startswith("#")
    cfg = MergeConfiguration.model_validate(yaml.safe_load(text))
    assert cfg.merge_method == METHODS[method].mergekit
    assert [str(m.model.model.path) for m in cfg.models] == ["e1", "e2", "e3"]
    if method.startswith("della"):
        assert cfg.models[0].parameters["epsilon"] == method_eps(method) / 2
        assert "half-width" in text


def method_eps(method):
    from scalinglaws.merge import method_defaults
    return method_defaults(method)["eps"]


def test_yaml_notes_unreproduced_options():
    text = to_mergekit_yaml("ties", "b", ["e"], trim_scope="model")
    assert "NOT REPRODUCED" in text
    assert "NOT REPRODUCED" not in to_mergekit_yaml("ties", "b", ["e"])
    assert "NOT REPRODUCED" in to_mergekit_yaml("dare", "b", ["e"])
    assert "NOT REPRODUCED" not in to_mergekit_yaml("dare", "b", ["e"], rescale="l1")


def test_run_merge_end_to_end(tmp_path):
    """mergekit's run_merge on tiny saved LlamaForCausalLM checkpoints (tied embeddings)
    reproduces our in-memory merge for the deterministic methods."""
    transformers = pytest.importorskip("transformers")
    from safetensors.torch import load_file
    from mergekit.config import MergeConfiguration
    from mergekit.merge import run_merge
    from mergekit.options import MergeOptions

    cfg = transformers.LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, vocab_size=128,
                                   max_position_embeddings=64, tie_word_embeddings=True)
    torch.manual_seed(0)
    base = transformers.LlamaForCausalLM(cfg)
    paths, sds = [], []
    for i in range(3):
        m = transformers.LlamaForCausalLM(cfg)
        m.load_state_dict(base.state_dict())
        if i:
            with torch.no_grad():
                for prm in m.parameters():
                    prm.add_(0.01 * torch.randn_like(prm))
        m.save_pretrained(tmp_path / f"m{i}")
        paths.append(str(tmp_path / f"m{i}"))
        sds.append(m.state_dict())
    for method, opts in [("average", {}), ("task_arithmetic", {}),
                         ("ties", {"density": 0.5, "lam": 0.5})]:
        text = to_mergekit_yaml(method, paths[0], paths[1:], **opts)
        out = tmp_path / f"out_{method}"
        run_merge(MergeConfiguration.model_validate(yaml.safe_load(text)), str(out),
                  MergeOptions(copy_tokenizer=False, write_model_card=False, quiet=True))
        theirs = load_file(out / "model.safetensors")
        ours = merge(sds[0], sds[1:], method, **opts)
        assert ours["lm_head.weight"] is ours["model.embed_tokens.weight"]
        assert set(theirs) == set(ours) - {"lm_head.weight"}  # saved tied: one copy
        for n, t in theirs.items():
            torch.testing.assert_close(ours[n], t, rtol=0, atol=1e-6, msg=f"{method} {n}")


@pytest.mark.parametrize("k", [2, 3, 5])
@pytest.mark.parametrize("filter_wise", [False, True])
def test_model_stock_is_mergekit_model_stock(k, filter_wise):
    """model_stock, the method outside sparsifier x consensus, against mergekit's own `model_stock`
    (same tensors, base first) per tensor and per row."""
    base, experts = states(k=k, seed=k)
    ours = merge(base, experts, "model_stock", filter_wise=filter_wise)
    for n in base:
        theirs = mergekit_tensor(base, experts, n, "model_stock", {"filter_wise": filter_wise})
        torch.testing.assert_close(ours[n], theirs, rtol=0, atol=1e-6)
