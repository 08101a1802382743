"""The DELLA study: the new MAGPRUNE options against independent numpy references, the settings
plan, the smoke profile end to end (tables, provenance, claims schema) and resuming without
redoing units."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from scalinglaws.core.validation import ParameterError
from scalinglaws.merge import drop_probabilities, merge, resolve_options
from scalinglaws.studies import resolve_params
from scalinglaws.studies.della import study as DS
from scalinglaws.studies.della.claims import CLAIM_COLUMNS

TABLES = {"grid", "ablations", "best", "noise", "split", "tuned", "claims"}


# ---------------------------------------------------------------------------- merge options


def np_probabilities(v: np.ndarray, p: float, eps: float) -> np.ndarray:
    """Independent reference: one row (flattened v), rank 0 = smallest |v|, p + eps/2 - eps r/(n-1)."""
    flat = np.abs(v).reshape(-1)
    r = np.empty(len(flat))
    r[np.argsort(flat, kind="stable")] = np.arange(len(flat))
    return (p + eps / 2 - eps * r / (len(flat) - 1)).reshape(v.shape)


@pytest.mark.parametrize("shape", [(6, 9), (3, 4, 5), (17,)])
def test_tensor_rank_is_one_row_over_the_whole_tensor(shape):
    v = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    got = drop_probabilities(v, 0.5, 0.2, rank="tensor").numpy()
    np.testing.assert_allclose(got, np_probabilities(v.numpy(), 0.5, 0.2), atol=1e-6)
    assert got.mean() == pytest.approx(0.5, abs=1e-6)


def test_random_rank_permutes_each_row_and_ignores_magnitude():
    v = torch.randn(8, 50, generator=torch.Generator().manual_seed(1))
    row = drop_probabilities(v, 0.4, 0.3).numpy()
    rnd = drop_probabilities(v, 0.4, 0.3, rank="random", generator=torch.Generator().manual_seed(2)).numpy()
    # the same multiset of probabilities in every row (a permutation of the row-wise ones)
    np.testing.assert_allclose(np.sort(rnd, 1), np.sort(row, 1), atol=1e-6)
    # but not ordered by magnitude: correlation with |v| near 0, row-wise ranking's is -1
    a = np.abs(v.numpy()).argsort(1).argsort(1).reshape(-1)
    assert np.corrcoef(a, row.reshape(-1))[0, 1] < -0.99
    assert abs(np.corrcoef(a, rnd.reshape(-1))[0, 1]) < 0.2
    with pytest.raises(ParameterError, match="generator"):
        drop_probabilities(v, 0.4, 0.3, rank="random")


def _states(k=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = {"w": torch.randn(6, 10, generator=g), "b": torch.randn(10, generator=g)}
    experts = [{n: t + 0.1 * torch.randn(t.shape, generator=g) for n, t in base.items()} for _ in range(k)]
    return base, experts


def np_magprune(v, probs, u, rescale):
    """Reference MAGPRUNE of one delta with uniforms u: keep u >= p_j; rescale inverse / l1 / none."""
    keep = u >= probs
    if rescale == "inverse":
        return np.where(keep, v / (1 - probs), 0.0)
    out = np.where(keep, v, 0.0)
    if rescale == "l1" and np.abs(out).sum() > 1e-7:
        out = out * np.abs(v).sum() / np.abs(out).sum()
    return out


@pytest.mark.parametrize("rescale", ["inverse", "l1", "none"])
@pytest.mark.parametrize("rank", ["row", "tensor"])
def test_della_linear_matches_numpy_reference(rescale, rank):
    """della_linear with k = 1 is theta0 + lam * MAGPRUNE(v): recompute the masks from the
    generator stream `merge` documents and compare with the numpy reference."""
    from scalinglaws.merge import _generator
    base, experts = _states(k=1)
    out = merge(base, experts, "della_linear", p=0.5, eps=0.4, lam=0.7, rescale=rescale, rank=rank, seed=3)
    for n in base:
        v = (experts[0][n] - base[n]).numpy()
        u = torch.rand(v.shape, generator=_generator(3, n, 0, torch.device("cpu"))).numpy()
        if rank == "tensor" or v.ndim < 2:
            probs = np_probabilities(v, 0.5, 0.4)
        else:
            probs = np.stack([np_probabilities(r, 0.5, 0.4) for r in v])
        want = base[n].numpy() + 0.7 * np_magprune(v, probs, u, rescale)
        np.testing.assert_allclose(out[n].numpy(), want, rtol=1e-5, atol=1e-6)


def test_random_rank_keeps_the_row_masks_stream_and_defaults_are_unchanged():
    base, experts = _states(k=3)
    a = merge(base, experts, "della", p=0.5, eps=0.2, seed=1)
    b = merge(base, experts, "della", p=0.5, eps=0.2, seed=1, rank="row")
    for n in base:
        assert torch.equal(a[n], b[n])
    c = merge(base, experts, "della", p=0.5, eps=0.2, seed=1, rank="random")
    assert any(not torch.equal(a[n], c[n]) for n in base)
    assert resolve_options("della", {})["rank"] == "row"
    with pytest.raises(ParameterError, match="rank"):
        merge(base, experts, "della", rank="column")


# ---------------------------------------------------------------------------- plan and validation


def test_plan_skips_invalid_windows_and_names_dare():
    p = resolve_params(DS, "cpu", {})
    grid, abl = DS.plan(p)
    della = [s for s in grid if s["method"] in ("della", "dare")]
    assert all(DS.window_ok(s["p"], s["eps"]) for s in della if s["method"] == "della")
    assert not any(s["p"] in (0.1, 0.9) and s["eps"] == 0.2 for s in della)
    assert all(s["eps"] == 0 for s in della if s["method"] == "dare")
    # 5 p x 3 eps - 2 invalid, x 2 lam x 2 Elect
    assert len(della) == 13 * 2 * 2
    keys = [s["key"] for s in grid]
    assert len(set(keys)) == len(keys)
    assert {s["variant"] for s in abl} >= {"reference", "rescale=none", "rescale=l1", "rank=random", "rank=tensor", "dare"}
    # the ablations' eps falls back to the largest valid grid eps where 0.2 does not fit
    assert {s["eps"] for s in abl if s["variant"] == "reference" and s["p"] == 0.1} == {0.1}


@pytest.mark.parametrize("override,must", [
    ({"p_grid": [0.5, 1.0]}, "p_grid"), ({"eps_grid": [-0.1]}, "eps_grid"), ({"elect": ["yes"]}, "elect"),
    ({"roles": {"lm": "poetry", "math": "algebra", "code": "code"}}, "roles"),
    ({"combos": [["lm"]]}, "combos"), ({"ranks": ["column"]}, "ranks"), ({"rescales": ["l2"]}, "rescales"),
    ({"seq_len": 4096}, "seq_len"), ({"noise_seeds": [0]}, "noise_seeds"), ({"sizes": ["d9999"]}, "sizes"),
])
def test_validate_rejects(override, must):
    with pytest.raises(ParameterError, match=must):
        resolve_params(DS, "smoke", override)


# ---------------------------------------------------------------------------- the smoke profile


@pytest.fixture(scope="module")
def smoke(tmp_path_factory, one_thread):
    root = tmp_path_factory.mktemp("della")
    mp = pytest.MonkeyPatch()
    mp.setenv("SCALINGLAWS_RESULTS", str(root / "results"))
    mp.setenv("SCALINGLAWS_WORK", str(root / "work"))
    try:
        yield DS.run("smoke"), mp
    finally:
        mp.undo()


def test_smoke_writes_every_table_with_provenance(smoke):
    store, _ = smoke
    assert set(store.tables()) == TABLES
    prov = store.provenance()
    assert prov["profile"] == "smoke" and prov["merged_models"] > 0
    p = resolve_params(DS, "smoke", {})
    assert prov["testbed_bases"] == {s: {"unit": prov["experts"][s]["base"]} for s in p["sizes"]}
    grid = store.read("grid")
    assert set(grid["size"]) == set(p["sizes"]) and grid["group"].nunique() == len(p["combos"])
    # every merged model is evaluated on exactly its members' domains
    doms = grid.groupby(["size", "group", "setting"])["eval_domain"].nunique()
    assert set(doms.xs("lm+math+code", level=1)) == {3} and set(doms.xs("lm+math", level=1)) == {2}
    assert grid["ce"].between(1, 12).all() and (grid["ce_se"] > 0).all()
    assert (grid["ce_lo"] <= grid["ce"]).all() and (grid["ce"] <= grid["ce_hi"]).all()
    assert {"base", "own_expert", "ta", "ties", "della", "dare"} <= set(grid["method"])
    noise = store.read("noise")
    assert noise["draw"].nunique() == p["bootstrap"]
    best = store.read("best")
    assert len(best) == len(p["sizes"]) * len(p["combos"])
    assert (best["gain_dare_same_p_lo"] <= best["gain_dare_same_p"]).all()


def test_claims_schema(smoke):
    store, _ = smoke
    c = store.read("claims")
    assert list(c.columns) == CLAIM_COLUMNS
    assert set(c["verdict"]) <= {"holds", "refuted", "inconclusive", "not testable"}
    assert c["claim_id"].is_unique and len(c) >= 8
    # every measured interval holds its estimate (at smoke every verdict is "not testable", the values stay)
    measured = c[c[["value", "lo", "hi"]].notna().all(axis=1)]
    assert len(measured) and (measured["lo"] <= measured["value"] + 1e-12).all() and (measured["value"] <= measured["hi"] + 1e-12).all()
    # the claims are a function of the stored tables only
    from scalinglaws.studies.della.claims import claims
    again = claims({n: store.read(n) for n in ("grid", "ablations", "noise", "split")}, "smoke")
    pd.testing.assert_frame_equal(again, c)
    # tuned comparisons pick on one half of the windows and score on the other, and say how many settings each tried
    tuned = c.set_index("claim_id").loc["della_beats_ties"]
    assert "picked on the selection half" in tuned["measure"] and "settings tried per (size, group): DELLA" in tuned["note"]
    # a stored run without the split selected and scored on the same windows: its tuned claims decide nothing
    old = claims({n: store.read(n) for n in ("grid", "ablations", "noise")}, "cpu").set_index("claim_id")
    assert old.loc["della_beats_ties", "verdict"] == "inconclusive"
    assert "selected and scored on the same windows" in old.loc["della_beats_ties", "note"]


def test_split_scores_use_two_disjoint_halves_of_every_domain():
    from scalinglaws.studies.della.study import split_scores
    rng = np.random.default_rng(0)
    dom = np.repeat([0, 1], 10)
    nll = rng.uniform(1, 2, size=(3, 20))  # 3 models, 20 windows, T = 4 tokens each
    s = split_scores(nll, dom, ["a", "b"], 4, seed=0)
    assert s.shape == (3, 2)
    # the two halves of equal size average to the full-window score
    full = np.mean([nll[:, dom == j].sum(1) / (10 * 4) for j in (0, 1)], axis=0)
    assert np.allclose(s.mean(1), full)
    assert np.allclose(split_scores(nll, dom, ["a", "b"], 4, seed=0), s)  # seeded
    assert not np.allclose(s[:, 0], s[:, 1])


def test_resume_does_not_redo_units(smoke):
    store, mp = smoke
    before = store.read("grid")

    def boom(config):
        raise AssertionError("a finished unit was redone")

    mp.setattr(DS, "_merge_eval", boom)
    mp.setattr(DS, "_references", boom)
    store2 = DS.run("smoke")
    pd.testing.assert_frame_equal(store2.read("grid"), before)


def test_tuned_table_picks_on_the_selection_half(smoke):
    """Each method's pick is the lowest score on the selection half among exactly the settings it
    tried; its reported score is the held-out half's; DELLA's gain is the held-out difference."""
    from scalinglaws.studies.della import analysis as A
    store, _ = smoke
    tables = {n: store.read(n) for n in ("grid", "ablations", "noise", "split")}
    t = store.read("tuned")
    pd.testing.assert_frame_equal(t, A.tuned_table(tables))
    meta, _ = A.scores(tables)
    masks = A.method_masks(meta)
    sp = tables["split"].pivot_table(index=["size", "group", "setting"], columns="half", values="score")
    for r in t.itertuples():
        keys = [k for k in meta.index[masks[r.method]] if k[:2] == (r.size, r.group)]
        assert r.tried == len(keys) > 0
        sel = sp.loc[keys]
        assert r.setting == sel["select"].idxmin()[2] and r.score == sel.loc[(r.size, r.group, r.setting), "score"]
        della = t[(t["size"] == r.size) & (t["group"] == r.group) & (t["method"] == "DELLA")]["score"].item()
        assert r.della_gain == pytest.approx(r.score - della)
    assert set(t["method"]) == {"DELLA", "DARE", "TA", "TIES"} and t["selection"].str.contains("half").all()
    assert A.tuned_table({n: tables[n] for n in ("grid", "ablations", "noise")}).empty  # no split: nothing to show
