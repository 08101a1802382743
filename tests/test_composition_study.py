"""The composition study: the smoke profile end to end into scratch roots (tables, provenance, a rerun
that does no work), the cost formulas against hand-computed values, upcycling (function-preserving
for gate-1 routers, checked against the dense base's own logits), validation before compute, the
analysis on synthetic data, and the planner against the stored tables."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from scalinglaws.fitting.schema import FIT_COLUMNS
import torch

from scalinglaws import models as Mo
from scalinglaws.core.claims import check_claims
from scalinglaws.core.validation import ParameterError
from scalinglaws.models import routed as RT
from scalinglaws.studies.composition import analysis as A
from scalinglaws.studies.composition import costs as C
from scalinglaws.studies.composition import planning as P
from scalinglaws.studies.composition import study as CS
from scalinglaws.studies.composition import units as U

TABLES = {"arms", "summary", "contrasts", "wins", "fits", "predictions", "winner_predictions", "claims"}
SMOKE_ARMS = {"base", "merge_average", "merge_task_arithmetic", "multitask", "upcycled", "scratch_routed"}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory, one_thread):
    root = tmp_path_factory.mktemp("composition")
    mp = pytest.MonkeyPatch()
    mp.setenv("SCALINGLAWS_RESULTS", str(root / "results"))
    mp.setenv("SCALINGLAWS_WORK", str(root / "work"))
    try:
        yield CS.run("smoke"), root
    finally:
        mp.undo()


# ----------------------------------------------------------------------------- end to end


def test_smoke_writes_every_table_with_provenance(smoke):
    store, root = smoke
    assert set(store.tables()) == TABLES
    assert str(store.dir).startswith(str(root))  # never the repository's data/results
    p = CS.resolve_params(CS, "smoke", {})
    arms = store.read("arms")
    assert set(arms["arm"]) == SMOKE_ARMS  # no stored merging curves here: TA from the merging config
    n_subsets = sum(len(CS.choose_subsets(pool, len(d), k, p["subsets_per_k"], p["seed"]))
                    for pool, d in p["pools"].items() for k in p["ks"])
    assert len(arms) == n_subsets * len(p["sizes"]) * len(SMOKE_ARMS)
    # every arm of a (pool, size, k) is scored on the same subsets
    per = arms.groupby(["pool", "size", "k", "arm"])["subset"].apply(lambda s: tuple(sorted(s)))
    assert per.groupby(level=[0, 1, 2]).nunique().eq(1).all()
    assert (arms.loc[arms["arm"] == "base", "delta_base"] == 0).all()
    assert (arms["lo"] <= arms["loss"]).all() and (arms["loss"] <= arms["hi"]).all() and (arms["se"] > 0).all()
    # matched fine-tuning tokens: multitask and upcycled get the k experts' total
    prov = store.provenance()
    ft = arms[arms["arm"].isin(["multitask", "upcycled"]) | arms["arm"].str.startswith("merge_")]
    assert (ft["finetune_tokens"] == ft["k"] * prov["expert_tokens"]).all()
    assert prov["commit"] and prov["method_source"].startswith("merging smoke config")
    assert prov["merge_methods_resolved"] == ["average", "task_arithmetic"]
    # the testbed bases it stands on, for the book's stale-base warning (core.bases)
    assert set(prov["testbed_bases"]) == set(p["sizes"]) and all(len(v["unit"]) == 16 for v in prov["testbed_bases"].values())
    claims = check_claims(store.read("claims"))
    assert (claims["verdict"] == "not testable").all()
    wins = store.read("wins")
    assert set(wins["verdict"]) <= {"wins", "tie"} and len(wins) == len(arms.groupby(["pool", "size", "k"]))


def test_in_domain_loss_recomputes_from_windows(smoke):
    """An arm's loss is the mean over its k domains of the per-domain CE on the merging study's
    windows: recomputed here with the testbed base and evaluation.domain_metrics."""
    from scalinglaws.core.sweep import find_checkpoint
    from scalinglaws.evaluation import domain_metrics, uniform_windows, window_loss_sums
    from scalinglaws.studies import testbed
    store, _ = smoke
    arms = store.read("arms")
    r = arms[(arms["arm"] == "base")].iloc[0]
    doms = r["domains"].split(",")
    model = Mo.load_checkpoint(find_checkpoint(testbed.base_key(r["size"], "smoke")))
    p = CS.resolve_params(CS, "smoke", {})
    win, dom = uniform_windows(doms, p["eval_tokens_per_domain"], seq_len=model.config.max_position_embeddings,
                               seed=p["seed"])
    m = domain_metrics(window_loss_sums(model, win), win, dom, doms)
    assert r["loss"] == pytest.approx(m["ce"].mean(), rel=1e-5)


def test_rerun_does_no_work(smoke, monkeypatch):
    from scalinglaws.studies.merging import units as MU
    from scalinglaws.studies.testbed import study as TS
    store, _ = smoke
    before = store.read("arms")

    def boom(config):
        raise AssertionError("a unit ran on a rerun")

    for mod, names in ((U, ("multitask_model", "upcycled", "scratch_routed", "evaluate")),
                       (MU, ("pilot", "finetune")), (TS, ("_pretrain", "_evaluate"))):
        for n in names:
            monkeypatch.setattr(mod, n, boom)
    again = CS.run("smoke")
    pd.testing.assert_frame_equal(again.read("arms").drop(columns="merging_multitask"),
                                  before.drop(columns="merging_multitask"))


# ----------------------------------------------------------------------------- costs


def test_costs_against_hand_computed_values():
    size = "d16l1"  # d = 16, 1 layer, 2 heads of 8, d_ff = 16 ceil(8 16 / 3 / 16) = 48, context 64
    cfg = Mo.model_config(size)
    V, d, f, ctx = cfg.vocab_size, 16, 48, 64
    assert (cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers, cfg.max_position_embeddings) == (d, f, 1, ctx)
    N = 4 * d * d + 3 * d * f + 2 * d + d            # q, k, v, o; SwiGLU; two norms; final norm = 3376
    assert N == 3376
    fpt = 6 * (N + V * d) + 6 * 1 * ctx * d          # Kaplan: 6 (N + V d) + 6 L n_ctx d
    total = N + V * d
    D, T, k = 1000, 100, 3
    base = C.arm_costs("base", size, k, pretrain_tokens=D, expert_tokens=T)
    assert base["pretrain_flops"] == fpt * D and base["finetune_flops"] == 0 and base["total_flops_amortised"] == 0
    assert base["inference_flops_per_token"] == pytest.approx(fpt / 3) and base["params_stored"] == total
    merge = C.arm_costs("merge", size, k, pretrain_tokens=D, expert_tokens=T)
    assert merge["finetune_flops"] == fpt * k * T and merge["merge_flops"] == 3 * k * total
    assert merge["total_flops"] == fpt * D + fpt * k * T + 3 * k * total
    assert merge["total_flops_amortised"] == fpt * k * T + 3 * k * total
    mt = C.arm_costs("multitask", size, k, pretrain_tokens=D, expert_tokens=T)
    assert mt["finetune_tokens"] == k * T and mt["finetune_flops"] == fpt * k * T and mt["merge_flops"] == 0
    # routed top-1, E = k, one routed block (d16l1): + router d E (params), + 6 d E (FLOPs per token)
    fpt_r = fpt + 6 * d * k
    up = C.arm_costs("upcycled", size, k, pretrain_tokens=D, expert_tokens=T, router="rlr", routed_every=2)
    assert up["pretrain_flops"] == fpt * D  # the dense base it was upcycled from
    assert up["finetune_flops"] == fpt_r * k * T
    assert up["inference_flops_per_token"] == pytest.approx(fpt_r / 3)
    assert up["params_stored"] == total + (k - 1) * 3 * d * f + d * k
    sc = C.arm_costs("scratch_routed", size, k, pretrain_tokens=D, expert_tokens=T, scratch_tokens=5 * D)
    assert sc["pretrain_flops"] == fpt_r * 5 * D and sc["finetune_flops"] == 0
    assert sc["total_flops_amortised"] == sc["total_flops"]  # its pretraining serves nobody else
    with pytest.raises(ValueError):
        C.arm_costs("bogus", size, k, pretrain_tokens=D, expert_tokens=T)


# ----------------------------------------------------------------------------- upcycling


@pytest.mark.parametrize("router", U.GATE_ONE_ROUTERS)
def test_upcycled_model_equals_its_dense_base(smoke, router):
    """Identical experts and a gate-1 router with arbitrary weights: the logits are the dense base's."""
    from scalinglaws.core.sweep import find_checkpoint
    from scalinglaws.studies import testbed
    key = testbed.base_key("d24l2", "smoke")
    dense = Mo.load_checkpoint(find_checkpoint(key)).eval()
    routed = U.upcycle(key, "d24l2", 3, router, 1, seed=0).eval()
    with torch.no_grad():
        for blk in routed.routed_blocks():
            if blk.gate.learned:
                blk.gate.weight.normal_(0.0, 3.0)  # any router
        ids = torch.randint(0, dense.config.vocab_size, (3, 40), generator=torch.Generator().manual_seed(1))
        torch.testing.assert_close(routed(ids).logits, dense(ids).logits, rtol=1e-5, atol=1e-5)
        # and the routing is really spread over the experts, not all on one
        counts = [b.stats()["counts"] for b in routed.routed_blocks()]
        assert any(sum(c > 0 for c in cnt) > 1 for cnt in counts)


def test_switch_upcycling_is_not_the_base(smoke):
    """Why routers are restricted: Switch scales each routed MLP by its top probability."""
    from scalinglaws.core.sweep import find_checkpoint
    from scalinglaws.studies import testbed
    key = testbed.base_key("d24l2", "smoke")
    dense = Mo.load_checkpoint(find_checkpoint(key)).eval()
    routed = RT.copy_dense_weights(RT.build_routed("d24l2", 3, "switch"), dense).eval()
    ids = torch.randint(0, dense.config.vocab_size, (2, 20), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert not torch.allclose(routed(ids).logits, dense(ids).logits, atol=1e-4)


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize("overrides, match", [
    ({"ks": [2, 8]}, "k=8"), ({"ks": [1]}, "ks"), ({"ks": "2"}, "ks"), ({"router": "switch"}, "gate"),
    ({"merge_methods": ["nope"]}, "merge_methods"), ({"subsets_per_k": 0}, "subsets_per_k"),
    ({"sizes": ["d9999"]}, "sizes"), ({"scratch": "yes"}, "scratch"), ({"bootstrap": 1}, "bootstrap"),
    ({"pools": {"x": ["code"]}}, "pools"), ({"colour": 1}, "unknown parameter"),
])
def test_bad_parameters_fail_before_anything_is_written(scratch_roots, overrides, match):
    res, work = scratch_roots
    with pytest.raises(ParameterError, match=match) as e:
        CS.run("smoke", **overrides)
    assert "\n" not in str(e.value)
    assert not res.exists() and not work.exists()


def test_k_beyond_the_cpu_pools_names_the_limit():
    with pytest.raises(ParameterError, match="5 domains"):
        CS.resolve_params(CS, "cpu", {"ks": [2, 4, 8]})


# ----------------------------------------------------------------------------- design and analysis


def test_subsets_are_seeded_and_shared():
    a = CS.choose_subsets("related", 5, 2, 2, 0)
    assert a == CS.choose_subsets("related", 5, 2, 2, 0) and len(a) == 2 and all(len(s) == 2 for s in a)
    assert a[0] == (0, 1) and len(set(a)) == 2  # the merging study's multitask prefix first
    assert CS.choose_subsets("related", 5, 5, 2, 0) == [(0, 1, 2, 3, 4)]
    assert len({tuple(CS.choose_subsets("related", 5, 2, 2, s)) for s in range(6)}) > 1  # the seed matters


def test_multitask_model_is_the_merging_studys(smoke):
    """Our multitask config, run as the merging study's own `multitask` unit (its trainer and its
    stacked evaluator), gives the in-domain loss our arms table has for that subset."""
    from scalinglaws.core.sweep import Sweep
    from scalinglaws.studies.merging import study as MS
    from scalinglaws.studies.merging import units as MU
    store, _ = smoke
    p = CS.resolve_params(CS, "smoke", {})
    mparams = CS.resolve_params(MS, "smoke", {})
    arms = store.read("arms")
    pool, size, k = "related", p["sizes"][0], 2
    row = arms[(arms["pool"] == pool) & (arms["size"] == size) & (arms["k"] == k) & (arms["arm"] == "multitask")
               & (arms["subset"] == "0-1")].iloc[0]
    assert math.isnan(row["merging_multitask"])  # the merging study had not run it
    msweep = Sweep("merging", "smoke")
    _, _, recipe = MS._recipe_from(msweep.run(MS.pilot_units("smoke", mparams), MU.pilot), mparams)
    pdoms = p["pools"][pool]
    ft = MS.finetune_unit(size, pdoms[0], "smoke", mparams, recipe)
    mt = CS._multitask_config(ft, pool, pdoms[:k])
    unit = CS.merging_multitask_unit(mt, p, mparams, pdoms, Mo.get_size(size).context)
    msweep.run([unit], MU.multitask)
    assert CS.merging_multitask_loss(msweep, unit) == pytest.approx(row["loss"], abs=2e-5)
    # and a rerun (no new work) copies the shared record beside ours
    again = CS.run("smoke").read("arms")
    got = again[(again["pool"] == pool) & (again["size"] == size) & (again["k"] == k) & (again["arm"] == "multitask")
                & (again["subset"] == "0-1")].iloc[0]
    assert got["merging_multitask"] == pytest.approx(got["loss"], abs=2e-5)


def test_multitask_config_is_the_merging_shape():
    from scalinglaws.core.sweep import Unit
    ft = Unit("finetune", {"size": "d16l1", "domain": "code", "base": "b", "ft_lr": 1e-3, "tokens": 2048,
                           "token_mult": 1, "seed": 0, "data": {}})
    cfg = CS._multitask_config(ft, "unrelated", ["code", "legal"])
    assert "domain" not in cfg and cfg["tokens"] == 2 * 2048 and cfg["k"] == 2
    assert cfg["train_domains"] == ["code", "legal"] and cfg["pool"] == "unrelated"


def _synthetic_models(shift: dict):
    rng = np.random.default_rng(0)
    base = {d: rng.gamma(50.0, 0.1, size=40) * 8 for d in ("a", "b")}
    out = []
    for arm, s in shift.items():
        out.append({"pool": "p", "size": "s0", "N": 100, "k": 2, "subset": "0-1", "domains": ["a", "b"], "arm": arm,
                    "method": "", "total_flops": 1.0, "nll": {d: v + s * 8 for d, v in base.items()},
                    "tokens_per_window": 8})
    return out


def test_paired_bootstrap_ties_and_wins():
    arms, draws = A.arms_table(_synthetic_models({"base": 0.0, "same": 0.0, "better": -0.1}), 200, 0)
    same = arms[arms["arm"] == "same"].iloc[0]
    assert same["delta_base"] == 0 and same["delta_lo"] == 0 and same["delta_hi"] == 0
    better = arms[arms["arm"] == "better"].iloc[0]
    assert better["delta_base"] == pytest.approx(-0.1) and better["delta_hi"] < 0
    assert better["se"] > 0 and better["delta_hi"] - better["delta_lo"] < better["hi"] - better["lo"]  # pairing
    summary, sd = A.summary_table(arms, draws, ["total_flops"])
    wins = A.wins_table(summary, A.contrasts_table(summary, sd))
    assert wins.iloc[0]["winner"] == "better" and wins.iloc[0]["verdict"] == "wins"
    arms2, d2 = A.arms_table(_synthetic_models({"base": 0.0, "twin": -0.1, "better": -0.1}), 200, 0)
    s2, sd2 = A.summary_table(arms2, d2, ["total_flops"])
    w2 = A.wins_table(s2, A.contrasts_table(s2, sd2)).iloc[0]
    assert w2["verdict"] == "tie" and set(w2["tied_with"].split(",")) | {w2["winner"]} == {"twin", "better"}


def _power_summary():
    rows = []
    for arm, (a, b) in {"base": (1.0, -0.05), "multitask": (0.98, -0.05), "merge_average": (1.2, -0.07)}.items():
        for i, (size, N) in enumerate((("s0", 1), ("s1", 2), ("s2", 3))):
            c = 1e10 * 10 ** i
            L = 10 ** (a + b * math.log10(c))
            rows.append({"pool": "p", "size": size, "N": N, "k": 2, "arm": arm, "loss": L, "se": 0.01, "lo": L - 0.02,
                         "hi": L + 0.02, "total_flops": c * (1.1 if arm != "base" else 1.0),
                         "total_flops_amortised": 0.0 if arm == "base" else 0.1 * c})
    s = pd.DataFrame(rows)
    s["loss"] = [10 ** ({"base": 1.0, "multitask": 0.98, "merge_average": 1.2}[r.arm]
                        + {"base": -0.05, "multitask": -0.05, "merge_average": -0.07}[r.arm] * math.log10(r.total_flops))
                 for r in s.itertuples()]
    return s


def test_fits_and_held_out_predictions_are_exact_on_power_laws():
    s = _power_summary()
    fits = A.fits_table(s)
    assert list(fits.columns) == A.FIT_KEYS + list(FIT_COLUMNS) + A.FIT_EXTRA  # the one fits schema
    lines = A.fit_lines(fits).set_index("arm")
    assert lines.loc["multitask", "slope"] == pytest.approx(-0.05)
    assert lines.loc["multitask", "intercept"] == pytest.approx(0.98) and lines.loc["multitask", "ok"]
    pred = A.predictions_table(s)
    assert (pred["status"] == "ok").all() and np.allclose(pred["rel_error"], 0, atol=1e-9)
    wp = A.winner_predictions(pred)
    assert wp.iloc[0]["correct"] and wp.iloc[0]["measured_winner"] == s[s["size"] == "s2"].sort_values("loss").iloc[0]["arm"]


def test_planner_on_synthetic_tables():
    s, fits = _power_summary(), None
    fits = A.fits_table(s)
    mid = s[(s["arm"] == "multitask") & (s["size"] == "s1")].iloc[0]
    out = P.target_plan(s, fits, "p", 2, float(mid["loss"]))
    ok = s[s["loss"] <= mid["loss"]]
    assert out["cost"] == ok["total_flops"].min() and out["inside_range"] and out["source"] == "measured"
    far = P.target_plan(s, fits, "p", 2, float(s["loss"].min()) * 0.99)
    assert far["source"].startswith("fitted") and not far["inside_range"] and far["decades_beyond"] > 0
    assert far["cost_lo"] < far["cost"] < far["cost_hi"] and far["draws_reaching"] > 0.5
    # the line bootstrap: exact points with no noise give back the line; noise widens it
    sl, ic = P.line_draws(s.assign(se=0.0), "p", 2, "multitask", n=5)
    assert np.allclose(sl, -0.05) and np.allclose(ic, 0.98)
    b = P.budget_plan(s, fits, "p", 2, 1e13)
    assert not b["inside_range"] and "extrapolated" in b
    e = b["extrapolated"]
    assert e["lo"] < e["loss"] < e["hi"]
    # beyond MAX_DECADES of every arm's data the lines are not followed (as in target_plan)
    cmax = float(s["total_flops"].max())
    beyond = P.budget_plan(s, fits, "p", 2, cmax * 10 ** (P.MAX_DECADES + 0.5))
    assert "extrapolated" not in beyond and "no_extrapolation" in beyond and beyond["source"] == "measured"
    assert "no extrapolation" in P.render(beyond)
    free = P.budget_plan(s, fits, "p", 2, 1.0, cost="amortised")  # the base is given: every base is free
    assert free["arm"] == "base" and free["size"] == "s2"
    for bad in (lambda: P.target_plan(s, fits, "p", 2, 0.5), lambda: P.target_plan(s, fits, "p", 2, -1.0),
                lambda: P.budget_plan(s, fits, "p", 2, 1.0), lambda: P.budget_plan(s, fits, "q", 2, 1e12),
                lambda: P.budget_plan(s, fits, "p", 8, 1e12), lambda: P.budget_plan(s, fits, "p", 2, math.nan)):
        with pytest.raises(ParameterError):
            bad()


# ----------------------------------------------------------------------------- planner CLI on the stored tables


def _cli(*argv):
    from scalinglaws.cli import main
    return main(["plan", "composition", "--profile", "smoke", *argv])


def test_plan_cli_answers_from_the_stored_arms(smoke, capsys):
    store, root = smoke
    arms = store.read("arms")
    # an independent aggregation of the per-subset rows: mean loss over subsets per (size, arm)
    g = arms[(arms["pool"] == "related") & (arms["k"] == 2)].groupby(["size", "arm"]).agg(
        loss=("loss", "mean"), cost=("total_flops", "first")).reset_index()
    target = float(g["loss"].median())
    assert _cli("--pool", "related", "--k", "2", "--target", str(target), "--json") == 0
    import json
    out = json.loads(capsys.readouterr().out)
    reach = g[g["loss"] <= target]
    assert out["cost"] == pytest.approx(reach["cost"].min()) and out["loss"] <= target and out["inside_range"]
    budget = float(g["cost"].sort_values().iloc[len(g) // 2])
    assert _cli("--pool", "related", "--k", "2", "--budget", str(budget), "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["loss"] == pytest.approx(g[g["cost"] <= budget]["loss"].min())
    assert _cli("--pool", "related", "--k", "2", "--budget", str(budget)) == 0
    assert "extrapolation risk" in capsys.readouterr().out


@pytest.mark.parametrize("argv, match", [
    (("--pool", "nope", "--k", "2", "--budget", "1e12"), "pool"),
    (("--pool", "related", "--k", "2", "--budget", "-5"), "budget"),
    (("--pool", "related", "--k", "2", "--budget", "1"), "below the cheapest"),
    (("--pool", "related", "--k", "2", "--target", "0.01"), "unreachable"),
    (("--pool", "related", "--k", "7", "--target", "5"), "k=7"),
    (("--pool", "related", "--k", "2"), "exactly one"),
])
def test_plan_cli_bad_input_is_one_line_exit_2(smoke, capsys, argv, match):
    store, root = smoke
    before = sorted(p.name for p in store.dir.iterdir())
    assert _cli(*argv) == 2
    err = capsys.readouterr().err.strip()
    assert match in err and len(err.splitlines()) == 1
    assert sorted(p.name for p in store.dir.iterdir()) == before


@pytest.mark.parametrize("profile", ["smoke", "cpu", "gpu"])
def test_every_profile_validates(profile):
    p = CS.resolve_params(CS, profile, {})
    assert len(p["sizes"]) >= (2 if profile == "smoke" else 3) and len(p["pools"]) == 2
    assert max(p["ks"]) <= min(len(v) for v in p["pools"].values())
    assert p["scratch"] == (profile == "smoke")  # the expensive arm is off where its cost does not fit
