"""scalinglaws.merge against the merging paper's own code (PyPI `merging-eval` 0.1.4,
`merge.merging_methods.MergingMethod`) on experts drawn here from a d32l2 base.

How the conventions map (see the scalinglaws.merge docstring):
  * average          == average_merging (mean of the experts' parameters).
  * task_arithmetic  lam = c  == task_arithmetic with scaling_coefficient = c / k (its sum
    convention theta0 + lambda * sum v); scaling_coefficient = c is k times our step.
  * ties trim_count="merging_eval" == ties_merging (per tensor, param_value_mask_rate = 1 - density)
    and, with trim_scope="model", ties_merging_dare (one threshold over the whole task vector);
    our default trim_count="mergekit" keeps 1-2 fewer entries per tensor.
  * dare (rescale="inverse") == mask_merging, mask_strategy="random", use_weight_rescale, with
    average_merging (lam = 1) or task_arithmetic (scaling_coefficient = lam / k). Its masks come from
    torch.bernoulli on the global RNG: we hand it ours for the call (1 = dropped there), so the
    deterministic rest is compared exactly; its drop rate is checked on its own draws.

The experts: `conventions.draw_experts` (shared direction + expert-specific low-rank + noise, a
token-row block per expert on the embedding), the seed drawn per test from a fixed list.
"""
import pytest
import torch

from scalinglaws.merge import merge, trim, trim_keep_count
from scalinglaws.studies.merging import conventions as CV

mm = pytest.importorskip("merge.merging_methods")
mw = pytest.importorskip("merge.mask_weights_utils")
torch.set_num_threads(1)

SIZE, K = "d32l2", 3


@pytest.fixture(scope="module", params=[0, 7])
def drawn(request):
    base_model, base, experts = CV.draw_experts(SIZE, K, seed=request.param)
    names = [n for n, _ in base_model.named_parameters()]
    return base_model, base, experts, names, request.param


def close(ours, theirs, names, atol=1e-6):
    assert set(theirs) == set(names)  # every parameter merged, the tied embedding once
    for n in names:
        torch.testing.assert_close(ours[n], theirs[n], rtol=0, atol=atol, msg=n)


def n_differ(ours, theirs, names, tol=1e-6):
    return sum(int(((ours[n] - theirs[n]).abs() > tol).sum()) for n in names)


def test_experts_are_structured(drawn):
    """The draws are what the comparisons need: experts that move every tensor, tied weights tied,
    and signs that mostly agree across experts (a shared direction), unlike independent noise."""
    _, base, experts, names, _ = drawn
    for e in experts:
        assert e["lm_head.weight"].data_ptr() == e["model.embed_tokens.weight"].data_ptr()
        assert all(not torch.equal(e[n], base[n]) for n in names)
    v = [e["model.layers.0.mlp.up_proj.weight"] - base["model.layers.0.mlp.up_proj.weight"] for e in experts]
    agree = (torch.sign(v[0]) == torch.sign(v[1])).float().mean()
    assert 0.6 < agree < 0.95


def test_average_is_average_merging(drawn):
    base_model, base, experts, names, _ = drawn
    close(merge(base, experts, "average"), CV.paper_merge(base_model, experts, "average_merging"), names)


@pytest.mark.parametrize("c", [0.8, 1.0, 0.3])
def test_task_arithmetic_is_the_sum_convention_with_c_over_k(drawn, c):
    base_model, base, experts, names, _ = drawn
    ours = merge(base, experts, "task_arithmetic", lam=c)
    close(ours, CV.paper_merge(base_model, experts, "task_arithmetic", scaling_coefficient=c / K), names)
    # called with c itself, its sum takes k times our step: the two conventions are not the same
    summed = CV.paper_merge(base_model, experts, "task_arithmetic", scaling_coefficient=c)
    move = {n: summed[n] - base[n] for n in names}
    for n in names:
        torch.testing.assert_close(move[n], K * (ours[n] - base[n]), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("n,density,mergekit,merging_eval", [
    (100, 0.2, 20, 21),     # density * n an integer: one more
    (32, 0.2, 6, 8),        # 6.4: two more (it keeps n - int(25.6) + 1)
    (3, 0.2, 1, 2),         # m = int(2.4) = 2: keeps 3 - 2 + 1; ours at least 1
    (4, 0.2, 1, 2),         # m = int(3.2) = 3: keeps 4 - 3 + 1
])
def test_trim_keep_count_by_hand(n, density, mergekit, merging_eval):
    assert trim_keep_count(n, density, "mergekit") == mergekit
    assert trim_keep_count(n, density, "merging_eval") == merging_eval
    assert trim_keep_count(4, 0.9, "merging_eval") == 4  # int(0.4) = 0: nothing masked
    v = torch.randn(n, generator=torch.Generator().manual_seed(n))
    assert int((trim(v, density) != 0).sum()) == mergekit
    assert int((trim(v, density, count="merging_eval") != 0).sum()) == merging_eval


@pytest.mark.parametrize("density,lam", [(0.2, 1.0), (0.2, 0.5), (0.5, 1.0)])
def test_ties_merging_eval_count_is_ties_merging(drawn, density, lam):
    base_model, base, experts, names, _ = drawn
    theirs = CV.paper_merge(base_model, experts, "ties_merging", param_value_mask_rate=1 - density,
                            scaling_coefficient=lam)
    paper = merge(base, experts, "ties", density=density, lam=lam, trim_count="merging_eval")
    close(paper, theirs, names)
    # our default (mergekit's count) keeps 1-2 fewer entries per tensor: a few elements differ
    ours = merge(base, experts, "ties", density=density, lam=lam)
    total = sum(base[n].numel() for n in names)
    assert 0 < n_differ(ours, theirs, names) <= 2 * K * len(names) < 0.01 * total


def test_ties_merging_eval_count_per_model_is_ties_merging_dare(drawn):
    """ties_merging_dare: the same trim over the whole flattened task vector (our trim_scope="model",
    the merging study's TIES)."""
    base_model, base, experts, names, _ = drawn
    theirs = CV.paper_merge(base_model, experts, "ties_merging_dare", param_value_mask_rate=0.8)
    close(merge(base, experts, "ties", trim_scope="model", trim_count="merging_eval"), theirs, names)
    ours = merge(base, experts, "ties", trim_scope="model")  # 1-2 entries more per expert there
    n = sum(base[n].numel() for n in names)
    extra = trim_keep_count(n, 0.2, "merging_eval") - trim_keep_count(n, 0.2, "mergekit")
    assert extra in (1, 2) and 0 < n_differ(ours, theirs, names) <= K * extra


@pytest.mark.parametrize("apply,lam", [("average_merging", 1.0), ("task_arithmetic", 0.7)])
def test_dare_is_mask_merging_with_the_same_masks(drawn, apply, lam):
    base_model, base, experts, names, seed = drawn
    p = 0.2
    keep = CV.keep_masks(base, experts, names, p, seed)
    drop = [~keep[(i, n)] for i in range(K) for n in names]  # experts in turn, tensors in order
    extra = {} if apply == "average_merging" else {"scaling_coefficient": lam / K}
    with CV._fixed_bernoulli(drop):
        theirs = CV.paper_merge(base_model, experts, "mask_merging", weight_mask_rates=[p] * K,
                                use_weight_rescale=True, mask_strategy="random", mask_apply_method=apply,
                                **extra)
    close(merge(base, experts, "dare", p=p, lam=lam, seed=seed), theirs, names)
    # the masks matter: ours with another seed is another merge
    assert n_differ(merge(base, experts, "dare", p=p, lam=lam, seed=seed + 1), theirs, names) > 0


def test_paper_dare_drops_with_probability_p_and_rescales_by_one_over_one_minus_p():
    """On its own draws: `weight_mask_rates` is the drop probability (our p), survivors / (1 - p)."""
    torch.manual_seed(0)
    x = torch.ones(200_000)
    out = mw.mask_input_with_mask_rate(x, mask_rate=0.3, use_rescale=True, mask_strategy="random")
    dropped = float((out == 0).float().mean())
    assert abs(dropped - 0.3) < 0.005
    torch.testing.assert_close(out[out != 0], torch.full_like(out[out != 0], 1 / 0.7))


def test_conventions_table_measures_matches_as_zero_and_mismatches_as_not():
    df = CV.comparisons("d16l1", 3, seed=3)
    assert list(df.columns) == CV.COLUMNS and set(df["reference"]) == {CV.PAPER_CODE, CV.MERGEKIT}
    matched, other = df[df["matched"]], df[~df["matched"]]
    assert (matched["max_abs_diff"] <= CV.TOLERANCE).all(), matched
    assert (other["max_abs_diff"] > 1e-4).all() and (other["frac_differ"] > 0).all(), other
    ta_sum = df[df["comparison"].str.contains("sum's coefficient")].iloc[0]
    assert ta_sum["rel_diff"] == pytest.approx(K - 1, rel=1e-4)  # k times the step: off by (k - 1)


def test_conventions_command_stores_a_derived_table(tmp_path, monkeypatch):
    import json

    from scalinglaws.cli import main
    from scalinglaws.core.results import ResultStore
    monkeypatch.setenv("SCALINGLAWS_RESULTS", str(tmp_path))
    store = ResultStore("merging", "smoke", root=tmp_path)
    assert main(["conventions", "merging", "--profile", "smoke"]) == 2  # no run stored: nothing written
    assert not store.has("conventions")
    assert main(["conventions", "routing", "--profile", "smoke"]) == 2
    store.write_provenance({"commit": "c" * 40, "config": {}})
    assert main(["conventions", "merging", "--profile", "smoke"]) == 0
    df = store.read("conventions")
    assert list(df.columns) == ["size", "k", *CV.COLUMNS] and set(df["size"]) == {"d16l1"}
    prov = json.loads((store.dir / "provenance.json").read_text())
    assert prov["commit"] == "c" * 40  # the run's own record is kept
    d = prov["derived"]["conventions"]
    assert d["command"] == "python -m scalinglaws conventions merging --profile smoke" and d["commit"] and d["date"]
