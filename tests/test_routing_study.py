"""The routing study: the smoke profile end to end (tables, provenance, resumability), validation
before compute, divergence reporting, and the analysis functions on synthetic data."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from transformers import AutoModelForCausalLM

from scalinglaws import laws as LW
from scalinglaws.models import routed as RT
from scalinglaws.studies import get_study, resolve_params
from scalinglaws.studies.routing import study as RS
from scalinglaws.core.sweep import UnitFailed, find_checkpoint
from scalinglaws.core.validation import ParameterError

TABLES = {"models", "curves", "ce", "ce_documents", "fit_samples", "loss", "routing", "expert_usage", "resources", "fits", "effective_params",
          "n_cutoff", "extrapolation", "step_check", "claims", "resource_fits"}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory, one_thread):
    root = tmp_path_factory.mktemp("routing")
    mp = pytest.MonkeyPatch()
    mp.setenv("SCALINGLAWS_RESULTS", str(root / "results"))
    mp.setenv("SCALINGLAWS_WORK", str(root / "work"))
    try:
        store = RS.run("smoke")
        yield store
    finally:
        mp.undo()


def test_smoke_profile_writes_every_table_with_provenance(smoke):
    store = smoke
    assert set(store.tables()) == TABLES
    p = resolve_params(RS, "smoke", {})
    n_models = len(p["sizes"]) * (1 + len(p["routers"]) * (len(p["experts"]) - 1))
    models = store.read("models")
    assert len(models) == n_models == 18
    assert (models.loc[models["experts"] == 1, "router"] == "dense").all()
    assert (models["tokens"] == p["tokens"]).all()  # one token budget for every model
    assert (models["lr"] == p["lr"]).all()  # a float lr: every size at that rate
    # a routed model has its dense counterpart's N and active parameters (+ the router)
    for r in models.itertuples():
        dense = models[(models["size"] == r.size) & (models["experts"] == 1)].iloc[0]
        assert r.N == dense.N and r.active - r.N <= r.experts * 64 and r.total >= dense.total
    loss = store.read("loss")
    assert len(loss) == n_models and loss["L"].between(5, 10).all()
    ce = store.read("ce")
    assert len(ce) == n_models * len(p["domains"])
    # L is the mean CE over domains
    m = ce.groupby(["size", "experts", "router"])["ce"].mean()
    for r in loss.itertuples():
        assert r.L == pytest.approx(m.loc[(r.size, r.experts, r.router)])
    routing = store.read("routing")
    assert set(routing["phase"]) == {"train", "eval"} and (routing["dropped_tokens"] == 0).all()
    assert (routing["load_max_over_mean"] >= 1).all()
    assert (routing.loc[routing["router"] == "hash", "entropy"] == 0).all()
    assert (routing.loc[(routing["router"] != "hash") & (routing["phase"] == "train"), "entropy"] > 0).all()
    usage = store.read("expert_usage")
    sums = usage.groupby(["size", "experts", "router", "domain", "layer"])["fraction"].sum()
    assert np.allclose(sums, 1.0)
    assert set(usage["router"]) == set(p["routers"])
    fits = store.read("fits")
    assert set(fits["law"]) == {"routing", "routing_dense"}
    assert set(fits.loc[fits["law"] == "routing", "param"]) == {"a", "b", "c", "d", "E_start", "E_max"}
    samples = store.read("fit_samples")  # the bootstrap draws behind the figures' bands
    assert set(samples["router"]) == set(fits["router"])
    assert samples.groupby("router").size().max() == min(p["bootstrap"], RS.SAMPLE_DRAWS)
    assert samples.loc[samples["law"] == "routing_dense", ["b", "c"]].isna().all().all()
    routed_draws = samples[samples["law"] == "routing"]
    assert routed_draws[["a", "b", "c", "d", "E_start", "E_max"]].notna().all().all()  # reported names
    from scalinglaws.studies.routing import figures as RF
    RF.loss_vs_experts(store.read("loss"), fits, samples)  # the chapter's call, on the stored draws
    claims = store.read("claims")
    from scalinglaws.core.claims import check_claims
    check_claims(claims)  # the shared schema; at smoke nothing can be judged
    assert {"sbase_best", "shrinks_with_N_sbase", "helps_at_fixed_N_sbase"} <= set(claims["claim_id"])
    assert set(claims["verdict"]) == {"not testable"}
    sc = store.read("step_check")  # dense and every router at (size, E), the same tokens in more steps
    assert list(sc["router"]) == ["dense"] + p["routers"] and (sc["size"] == p["step_check"]["size"]).all()
    assert (sc["steps"] == 2 * sc["grid_steps"]).all() and (sc["batch_tokens"] == 512).all()
    assert (sc["grid_batch_tokens"] == p["batch_tokens"]).all()
    grid = loss.set_index(["size", "experts", "router"])["L"]
    for x in sc.itertuples():
        assert x.grid_L == pytest.approx(grid.loc[(x.size, x.experts, x.router)])
        assert x.L != x.grid_L and x.L_se > 0 and x.grid_L_se > 0
    assert sc.loc[sc["router"] == "dense", ["gap_to_dense", "grid_gap_to_dense"]].eq(0).all().all()
    assert len(models) == n_models  # the step check's models stay out of the grid
    ex = store.read("extrapolation")
    assert (ex["status"] == "not testable").all()  # 2 sizes, 3 E: too few points to hold any out
    prov = store.provenance()
    for k in ("commit", "date", "device", "versions", "wall_time_s", "config_hash", "config", "unit_compute_s"):
        assert k in prov
    assert prov["models"] == n_models and prov["config"]["experts"] == [1, 2, 4]
    # rates from the stored testbed are recorded as the bases the results stand on (core.bases)
    if prov["config"]["lr"] == "testbed":
        assert prov["testbed_bases"] == {s: {"lr": v} for s, v in prov["config"]["lr_by_size"].items()}
    else:
        assert prov["testbed_bases"] == {}


def test_smoke_checkpoints_reload_as_routed_models(smoke):
    models = smoke.read("models")
    row = models[(models["router"] == "hash") & (models["experts"] == 4)].iloc[0]
    path = find_checkpoint(row["unit"])
    m = AutoModelForCausalLM.from_pretrained(path, use_safetensors=True)
    assert isinstance(m, RT.RoutedForCausalLM) and m.config.router == "hash" and m.config.num_local_experts == 4
    assert m.config.dense_size == row["size"]


def test_dense_ce_matches_the_stacked_evaluator_on_the_testbeds_windows(smoke):
    """The routing study's per-domain CE of a dense model equals the stacked evaluator's (the
    testbed's scorer) on the same uniform windows: one evaluation set across studies."""
    from scalinglaws import evaluation as EV
    from scalinglaws import models as M
    models, ce = smoke.read("models"), smoke.read("ce")
    row = models[models["experts"] == 1].iloc[-1]
    m = M.load_checkpoint(find_checkpoint(row["unit"]))
    p = resolve_params(RS, "smoke", {})
    spec = EV.EvalSpec(p["domains"], p["eval_tokens"], seed=p["eval_seed"])  # the testbed's windows and scorer
    ref = EV.evaluate(m, spec).frame(model=0).set_index("domain")["ce"]
    got = ce[(ce["size"] == row["size"]) & (ce["experts"] == 1)].set_index("domain")["ce"]
    assert np.allclose(got.loc[ref.index].to_numpy(), ref.to_numpy(), rtol=1e-5)
    assert (ce["ce_se"] > 0).all()


def test_ce_documents_match_lm_eval_on_a_routed_checkpoint(smoke):
    """The table a reader checks a checkpoint against: lm-eval (`hf` model through
    AutoModelForCausalLM, loglikelihood_rolling) on the first eval_docs documents gives the same NLL."""
    from scalinglaws.lmeval import run_lmeval
    docs = smoke.read("ce_documents")
    p = resolve_params(RS, "smoke", {})
    row = docs[(docs["router"] == "sbase") & (docs["experts"] == 4)].iloc[0]
    ref = run_lmeval(find_checkpoint(row["checkpoint"]), [row["domain"]], limit=p["eval_docs"], batch_size=4).iloc[0]
    assert ref["docs"] == row["docs"] and ref["nll_sum"] == pytest.approx(row["nll_sum"], rel=1e-4)


def test_smoke_rerun_does_no_work(smoke, monkeypatch):
    def boom(*a, **k):
        raise AssertionError("a finished unit was run again")

    for name in ("_train", "_evaluate", "_evaluate_docs", "_analysis"):  # (the step check's units too)
        monkeypatch.setattr(RS, name, boom)
    before = {t: smoke.read(t) for t in ("loss", "fits", "claims", "expert_usage", "step_check")}
    store = RS.run("smoke")
    for t, df in before.items():
        pd.testing.assert_frame_equal(store.read(t), df)


@pytest.mark.parametrize("overrides, match", [
    ({"routers": ["sbase", "moe"]}, "routers"),
    ({"experts": [1, 0, 2]}, "experts"),
    ({"experts": [1, 2.5]}, "experts"),
    ({"experts": [2, 4]}, "experts"),
    ({"experts": [1]}, "experts"),
    ({"experts": "1,2"}, "experts"),
    ({"experts": [1, 2, 2]}, "experts"),
    ({"sizes": ["d99l9"]}, "sizes"),
    ({"domains": ["poetry"]}, "domains"),
    ({"tokens": 100}, "tokens"),
    ({"lr": -1.0}, "lr"),
    ({"routed_every": 0}, "routed_every"),
    ({"router_options": {"capacity_factor": 1.25}}, "router option"),
    ({"router_options": {"sinkhorn_tol": -1.0}}, "sinkhorn_tol"),
    ({"experts_implementation": "batched_mm"}, "experts_implementation"),
    ({"eval_tokens": 0}, "eval_tokens"),
    ({"eval_bootstrap": 1}, "eval_bootstrap"),
    ({"eval_docs": 0}, "eval_docs"),
    ({"lr": "tuned"}, "lr"),
    ({"lr": {"d16l1": 1e-3}}, "lr has no rate for size"),
    ({"lr": {"d16l1": 1e-3, "d24l2": 2.0}}, "lr"),
    ({"bootstrap": -1}, "bootstrap"),
    ({"learning_rate": 1e-3}, "unknown parameter"),
    ({"step_check": {"size": "d16l1", "experts": 2}}, "step_check"),
    ({"step_check": {"size": "d99l9", "experts": 2, "batch_tokens": 512}}, "step_check size"),
    ({"step_check": {"size": "d16l1", "experts": 1, "batch_tokens": 512}}, "step_check experts"),
    ({"step_check": {"size": "d16l1", "experts": 2, "batch_tokens": 1024}}, "step_check batch_tokens"),
    ({"step_check": [512]}, "step_check"),
])
def test_bad_parameters_fail_before_any_compute(scratch_roots, overrides, match):
    res, work = scratch_roots
    with pytest.raises(ParameterError, match=match) as e:
        get_study("routing").run("smoke", **overrides)
    assert len(str(e.value).splitlines()) == 1
    assert not res.exists() and not work.exists()


def test_every_profile_validates_and_the_grids():
    for profile in ("smoke", "cpu", "gpu"):
        p = resolve_params(RS, profile, {})
        assert p["experts"][0] == 1 and set(p["routers"]) - {"vocab"} == {"sbase", "rlr", "hash", "switch"}
    assert "vocab" in resolve_params(RS, "cpu", {})["routers"]  # the Hash control (issue 27)
    assert resolve_params(RS, "cpu", {})["experts"][-1] >= 8 and len(resolve_params(RS, "cpu", {})["sizes"]) >= 4
    gpu = resolve_params(RS, "gpu", {})
    assert gpu["experts"] == [1, 2, 4, 8, 16, 32] and len(gpu["sizes"]) >= 4
    units = RS.units(resolve_params(RS, "smoke", {}))
    assert len({u.key for u in units}) == len(units) == 18


def test_lr_testbed_reads_the_testbeds_chosen_rates(scratch_roots):
    """lr='testbed': each size at the rate the testbed's stored sweep chose; without that table,
    one clear error before any compute (nothing written)."""
    from scalinglaws.core.results import ResultStore
    res, work = scratch_roots
    p = resolve_params(RS, "smoke", {"lr": "testbed"})
    with pytest.raises(ParameterError, match="reproduce testbed --profile smoke") as e:
        RS.run("smoke", lr="testbed")
    assert len(str(e.value).splitlines()) == 1 and not work.exists()
    ResultStore("testbed", "smoke").write("ladder", pd.DataFrame({"size": ["d16l1"], "lr": [0.01]}))
    with pytest.raises(ParameterError, match=r"no size\(s\) \['d24l2'\]"):
        RS.learning_rates(p, "smoke")
    ResultStore("testbed", "smoke").write("ladder", pd.DataFrame({"size": ["d16l1", "d24l2"], "lr": [0.01, 0.003]}))
    assert RS.learning_rates(p, "smoke") == {"d16l1": 0.01, "d24l2": 0.003}
    p["lr_by_size"] = RS.learning_rates(p, "smoke")
    lrs = {u.config["size"]: u.config["lr"] for u in RS.units(p)}
    assert lrs == {"d16l1": 0.01, "d24l2": 0.003}
    assert RS.learning_rates(resolve_params(RS, "smoke", {"lr": 2e-3}), "smoke") == {"d16l1": 2e-3, "d24l2": 2e-3}


def test_a_diverging_routed_run_names_router_and_unit(scratch_roots, monkeypatch, one_thread):
    from scalinglaws import training as T
    real = T.train

    def diverge(model, *a, **k):
        if isinstance(model, RT.RoutedForCausalLM):
            raise T.TrainingDiverged(2, float("nan"))
        return real(model, *a, **k)

    monkeypatch.setattr(T, "train", diverge)
    with pytest.raises(UnitFailed, match=r"router=rlr E=2 size=d16l1 diverged at step 2") as e:
        RS.run("smoke", sizes=["d16l1"], experts=[1, 2], routers=["rlr"])
    assert isinstance(e.value.__cause__, RS.RoutedTrainingDiverged)  # the sweep records it, then re-raises
    assert "unit config" in str(e.value) and "'tokens': 4096" in str(e.value)


# ---------------------------------------------------------------------------------------------
# analysis on synthetic data

TRUE = {"a": -0.08, "b": -0.12, "c": 0.02, "d": 1.1, "E_start": 2.0, "E_max": 100.0}
NS = 10.0 ** np.arange(4.0, 7.51, 0.5)
ES = [1, 2, 4, 8, 16, 32, 64, 128, 256]


def _synthetic(params=TRUE, routers=("sbase",), noise=1e-4, seed=0, shift=None, Ns=NS, Es=ES):
    """A loss table from the routed law: the dense rows are the law at E = 1 of the first router;
    `shift` adds a constant to log10 L of a router's E > 1 points."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, N in enumerate(Ns):
        size = f"s{i}"
        rows.append({"size": size, "N": int(N), "experts": 1, "router": "dense",
                     "L": 10 ** (LW.routing_log10_loss(params, N, 1) + rng.normal(0, noise))})
        for r in routers:
            for E in Es:
                if E > 1:
                    lg = LW.routing_log10_loss(params, N, E) + (shift or {}).get(r, 0.0) + rng.normal(0, noise)
                    rows.append({"size": size, "N": int(N), "experts": E, "router": r, "L": 10 ** lg})
    return pd.DataFrame(rows)


def test_e_hat_keeps_the_inner_inverse():
    Es, Em = 1.847, 314.478
    assert LW.e_hat(1, Es, Em) == pytest.approx(Es)
    assert LW.e_hat(1e12, Es, Em) == pytest.approx(Em, rel=1e-6)
    E = np.array([1.0, 2, 8, 64, 512])
    direct = 1.0 / (1.0 / (E - 1.0 + 1.0 / (1.0 / Es - 1.0 / Em)) + 1.0 / Em)
    assert np.allclose(LW.e_hat(E, Es, Em), direct)
    buggy = 1.0 / (1.0 / (E - 1.0 + (1.0 / Es - 1.0 / Em)) + 1.0 / Em)  # the dropped ^-1
    assert not np.allclose(LW.e_hat(E, Es, Em), buggy)
    # the registered law (fitted in log space) is the same function
    law = LW.get_law("routing")
    N = np.array([1e6, 1e7, 1e8, 1e8, 1e9])
    assert np.allclose(np.log10(law.predict(TRUE, {"N": N, "E": E})), LW.routing_log10_loss(TRUE, N, E))


@pytest.fixture(scope="module")
def synthetic_fit():
    loss = _synthetic()
    fits, results = RS.fit_laws(loss, bootstrap=200, seed=0)
    return loss, fits, results


def test_fit_laws_recovers_the_generating_parameters(synthetic_fit):
    loss, fits, results = synthetic_fit
    res = results["sbase"]
    assert res.ok and res.r2 > 0.999
    tol = {"a": 2e-3, "b": 5e-3, "c": 1e-3, "d": 1e-2}
    for k, t in tol.items():
        assert abs(res.params[k] - TRUE[k]) < t, (k, res.params[k])
        lo, hi = res.ci[k]
        assert lo - t <= TRUE[k] <= hi + t
    assert res.params["E_start"] == pytest.approx(TRUE["E_start"], rel=0.15)
    assert res.params["E_max"] == pytest.approx(TRUE["E_max"], rel=0.3)
    # the dense fit sees the E = 1 points: a + c log10 E_start and d + b log10 E_start
    dense = results["dense"].params
    lgEs = math.log10(TRUE["E_start"])
    assert dense["a"] == pytest.approx(TRUE["a"] + TRUE["c"] * lgEs, abs=1e-3)
    assert dense["d"] == pytest.approx(TRUE["d"] + TRUE["b"] * lgEs, abs=5e-3)
    row = fits[(fits["router"] == "sbase") & (fits["param"] == "c")].iloc[0]
    assert row["law"] == "routing" and row["lo"] < row["estimate"] < row["hi"]


def test_n_cutoff_from_unrounded_fit_with_bootstrap_interval(synthetic_fit):
    _, _, results = synthetic_fit
    t = RS.n_cutoff_table(results)
    row = t[t["router"] == "sbase"].iloc[0]
    true_lg = -TRUE["b"] / TRUE["c"]  # 6
    assert row["log10_n_cutoff"] == pytest.approx(true_lg, abs=0.15)
    assert row["n_cutoff"] == pytest.approx(10 ** row["log10_n_cutoff"])
    assert row["log10_n_cutoff"] == -row["b"] / row["c"]  # unrounded, from the fit itself
    assert row["log10_lo"] - 0.15 <= true_lg <= row["log10_hi"] + 0.15 and row["frac_c_positive"] == 1.0


def test_effective_params_table(synthetic_fit):
    loss, _, results = synthetic_fit
    t = RS.effective_params_table(loss, results)
    assert len(t) == len(loss)  # every sbase point, E = 1 included
    dense_true = {"a": TRUE["a"] + TRUE["c"] * math.log10(TRUE["E_start"]),
                  "d": TRUE["d"] + TRUE["b"] * math.log10(TRUE["E_start"])}
    expect = LW.effective_params(TRUE, dense_true, t["N"].to_numpy(), t["experts"].to_numpy())
    assert np.allclose(t["N_bar_fit"], expect, rtol=0.05)
    assert np.allclose(t["N_bar_measured"], expect, rtol=0.05)
    e1 = t[t["experts"] == 1]
    assert np.allclose(e1["ratio_measured"], 1.0, atol=0.02)
    big = t[(t["experts"] == 64) & (t["N"] < 1e5)]
    assert (big["ratio_fit"] > 1.5).all()  # routing is worth more dense parameters at small N


def test_extrapolation_table_predicts_held_out_points(synthetic_fit):
    loss, _, _ = synthetic_fit
    t = RS.extrapolation_table(loss, max_fit_experts=8)
    assert set(t["scheme"]) == {"size", "experts"} and set(t["router"]) == {"dense", "sbase"}
    assert (t["status"] == "ok").all()
    assert t.loc[t["scheme"] == "size", "rel_error"].abs().max() < 2e-3
    # 4 to 32 times beyond the largest fitted E, E_max is barely constrained by E <= 8: errors
    # grow with the distance but stay small
    err = t[t["scheme"] == "experts"].groupby("experts")["rel_error"].agg(lambda s: s.abs().max())
    assert err.loc[16] < 5e-3 and err.loc[32] < 1e-2 and err.max() < 0.06
    assert err.is_monotonic_increasing
    ex = t[(t["router"] == "sbase") & (t["scheme"] == "experts")]
    assert set(ex["experts"]) == {16, 32, 64, 128, 256}
    sz = t[(t["router"] == "sbase") & (t["scheme"] == "size")]
    assert set(sz["N"]) == {int(NS.max())}
    # too few points: reported, not raised
    small = _synthetic(Ns=NS[:2], Es=[1, 2, 4])
    assert (RS.extrapolation_table(small)["status"] == "not testable").all()


def test_resource_table_and_fits():
    usage = pd.DataFrame([
        # one expert serves 'code', both serve 'math' equally
        {"size": "s0", "experts": 2, "router": "sbase", "domain": "code", "layer": 0, "expert": 0, "tokens": 10, "fraction": 1.0},
        {"size": "s0", "experts": 2, "router": "sbase", "domain": "code", "layer": 0, "expert": 1, "tokens": 0, "fraction": 0.0},
        {"size": "s0", "experts": 2, "router": "sbase", "domain": "math", "layer": 0, "expert": 0, "tokens": 5, "fraction": 0.5},
        {"size": "s0", "experts": 2, "router": "sbase", "domain": "math", "layer": 0, "expert": 1, "tokens": 5, "fraction": 0.5},
    ])
    ce = pd.DataFrame([{"size": "s0", "experts": 2, "router": "sbase", "domain": "code", "ce": 3.0},
                       {"size": "s0", "experts": 2, "router": "sbase", "domain": "math", "ce": 2.0},
                       {"size": "s0", "experts": 1, "router": "dense", "domain": "code", "ce": 3.1},
                       {"size": "s0", "experts": 1, "router": "dense", "domain": "math", "ce": 2.2}])
    t = RS.resource_table(usage, ce).set_index("domain")
    assert t.loc["code", "n_serving"] == pytest.approx(1.0) and t.loc["math", "n_serving"] == pytest.approx(2.0)
    assert t.loc["math", "max_share"] == 0.5 and t.loc["code", "ce_dense"] == 3.1
    # synthetic: CE_d = A_d / n  (gamma 1) and CE_d = A_d n^-0.3
    rng = np.random.default_rng(0)
    for gamma, expect in ((1.0, True), (0.3, False)):
        rows = []
        for d, A in zip("abcdefgh", np.linspace(2, 5, 8)):
            for E in (2, 4, 8):
                n = E * rng.uniform(0.5, 1.0)
                rows.append({"size": "s0", "experts": E, "router": "hash", "domain": d, "n_serving": n,
                             "max_share": 1.0 / n, "ce": A * n ** -gamma * math.exp(rng.normal(0, 0.01)),
                             "ce_dense": A})
        f = RS.resource_fits(pd.DataFrame(rows), bootstrap=200).iloc[0]  # the one fits schema: param gamma
        assert f["law"] == "resource_slope" and f["param"] == "gamma" and f["ok"], f["why_not_ok"]
        assert f["estimate"] == pytest.approx(gamma, abs=0.05) and f["lo"] <= f["estimate"] <= f["hi"]
        assert f["one_over_n"] == expect and f["n_points"] == 32 and f["domains"] == 8


def test_chapter_figures_on_the_smoke_tables(smoke):
    """The routing chapter's figures draw from the stored smoke tables (one axes per panel)."""
    import matplotlib
    matplotlib.use("Agg")
    from scalinglaws.studies.routing import figures as F

    t = {name: smoke.read(name) for name in smoke.tables()}
    assert len(F.loss_vs_experts(t["loss"], t["fits"]).axes) == len(set(t["loss"]["router"])) - 1
    assert len(F.effective_params_figure(t["effective_params"], t["loss"], t["fits"]).axes) == 2
    assert len(F.load_balance_figure(t["routing"]).axes) == 2
    assert F.fit_params(t["fits"], "dense").keys() == {"a", "d"}


def _claim_tables(dense_L, routed_gain, se=0.005):
    """Synthetic loss/ce tables: dense L per size, routed L = dense - gain (sbase, E = 2, 4)."""
    loss, ce = [], []
    for i, (size, L) in enumerate(dense_L.items()):
        N = 10_000 * 4 ** i
        for E, r, Lm in [(1, "dense", L)] + [(E, "sbase", L - routed_gain * E / 4) for E in (2, 4)]:
            loss.append({"size": size, "N": N, "experts": E, "router": r, "L": Lm})
            ce += [{"size": size, "experts": E, "router": r, "domain": d, "ce": Lm, "ce_se": se * 2} for d in "abcd"]
    # training-seed replicates with a negligible SD, so the sampling intervals decide (tests of them below)
    seeds = pd.DataFrame([{"cell": c, "measure": m, "seed": i, "value": 1.0 + i * 1e-6} for c in ("s0/dense", "s0/E4/sbase")
                          for m in ("test_ce", "gain_over_dense", "constant_shares:sbase") for i in range(3)])
    return {"loss": pd.DataFrame(loss), "ce": pd.DataFrame(ce), "seeds": seeds, "fits": pd.DataFrame(
        columns=["router", "law", "param", "estimate", "lo", "hi", "r2", "ok", "message"])}


@pytest.mark.parametrize("dense_L, gain, falls, beats", [
    ({"s0": 5.0, "s1": 4.8, "s2": 4.6}, 0.05, "holds", "holds"),
    ({"s0": 5.0, "s1": 4.8, "s2": 4.9}, 0.05, "refuted", "holds"),   # the top step goes up
    ({"s0": 5.0, "s1": 4.8, "s2": 4.81}, 0.05, "inconclusive", "holds"),   # ... by less than its noise
    ({"s0": 5.0, "s1": 4.8, "s2": 4.6}, 0.002, "holds", "inconclusive"),   # gain within the noise
])
def test_phenomenon_claims_from_the_measured_losses(dense_L, gain, falls, beats):
    from scalinglaws.studies.routing.claims import claims
    c = claims(_claim_tables(dense_L, gain), "cpu").set_index("claim_id")
    assert c.loc["dense_falls_with_N", "verdict"] == falls
    assert c.loc["routing_beats_dense", "verdict"] == beats
    # the interval is the value +- 1.96 x the combined SE of two means over 4 domains (SE 0.01 each)
    se = np.hypot(0.01 / 2, 0.01 / 2)
    row = c.loc["dense_falls_with_N"]
    assert row["hi"] - row["value"] == pytest.approx(1.96 * se)
    # without a seeds table neither can be decided
    t = _claim_tables(dense_L, gain)
    t.pop("seeds")
    c = claims(t, "cpu").set_index("claim_id")
    assert c.loc["dense_falls_with_N", "verdict"] == c.loc["routing_beats_dense", "verdict"] == "inconclusive"


def test_every_router_is_judged_against_dense_on_its_own():
    """beats_dense_<r> judges each router alone: a router worse than dense at one size fails its own
    claim while the best-router claim still holds."""
    from scalinglaws.studies.routing.claims import claims
    t = _claim_tables({"s0": 5.0, "s1": 4.8, "s2": 4.6}, 0.05)
    hash_rows = t["loss"][t["loss"]["router"] == "sbase"].assign(router="hash")
    hash_rows.loc[hash_rows["size"] == "s1", "L"] += 0.2   # hash above dense at s1
    t["loss"] = pd.concat([t["loss"], hash_rows], ignore_index=True)
    t["ce"] = pd.concat([t["ce"], t["ce"][t["ce"]["router"] == "sbase"].assign(router="hash")], ignore_index=True)
    c = claims(t, "cpu").set_index("claim_id")
    assert c.loc["routing_beats_dense", "verdict"] == "holds"
    assert c.loc["beats_dense_sbase", "verdict"] == "holds"
    assert c.loc["beats_dense_hash", "verdict"] == "refuted"
    assert c.loc["beats_dense_hash", "value"] == pytest.approx(4.8 - (4.8 - 0.05 + 0.2))
    assert "s1 hash E=4" in c.loc["beats_dense_hash", "note"]


def test_sbase_is_judged_in_every_cell_with_four_or_more_experts():
    """Issue 27's question, cell by cell: S-BASE against dense at every (size, E >= 4), each reading
    from the seed-widened interval, and the claim on the worst cell."""
    from scalinglaws.studies.routing.chapter import cells_sentence
    from scalinglaws.studies.routing.claims import claims, loss_se, router_vs_dense_cells
    t = _claim_tables({"s0": 5.0, "s1": 4.8, "s2": 4.6}, 0.05)   # S-BASE E = 4: 0.05 below dense; E = 2 not asked
    cells = router_vs_dense_cells(t, t["loss"], loss_se(t["ce"]), "sbase")
    assert list(cells["experts"]) == [4, 4, 4] and list(cells["size"]) == ["s0", "s1", "s2"]
    assert cells["gain"].to_numpy() == pytest.approx([0.05] * 3) and set(cells["reading"]) == {"beats"}
    assert claims(t, "cpu").set_index("claim_id").loc["sbase_beats_dense_every_cell", "verdict"] == "holds"
    t["loss"].loc[(t["loss"]["size"] == "s1") & (t["loss"]["router"] == "sbase") & (t["loss"]["experts"] == 4), "L"] += 0.1
    c = claims(t, "cpu").set_index("claim_id").loc["sbase_beats_dense_every_cell"]
    assert c["verdict"] == "refuted" and c["value"] == pytest.approx(-0.05)
    assert "s1 E=4" in c["note"] and "beats in 2, trails in 1, undecided in 0" in c["note"]
    # a seed SD as large as the gains: no cell can be told from dense, the claim cannot be decided
    t["seeds"] = t["seeds"].assign(value=lambda d: np.where(d["measure"] == "gain_over_dense", d["seed"] * 0.1, d["value"]))
    cells = router_vs_dense_cells(t, t["loss"], loss_se(t["ce"]), "sbase")
    assert set(cells["reading"]) == {"undecided"} and cells["seed_sd"].iloc[0] == pytest.approx(0.1)
    assert claims(t, "cpu").set_index("claim_id").loc["sbase_beats_dense_every_cell", "verdict"] == "inconclusive"
    # no replicates: the sampling intervals read each cell, and the sentence says so
    t.pop("seeds")
    cells = router_vs_dense_cells(t, t["loss"], loss_se(t["ce"]), "sbase")
    assert list(cells["reading"]) == ["beats", "trails", "beats"] and "sampling intervals only" in cells_sentence(cells)


def test_each_router_is_widened_by_its_own_seed_noise():
    """A router that collapses varies far more from seed to seed than S-BASE: S-BASE's comparison
    with dense takes the SD of its own replicated cells, not one pooled with RL-R's; a router with no
    replicated cell falls back to the pool, and the note names which."""
    from scalinglaws.studies.routing.claims import claims
    t = _claim_tables({"s0": 5.0, "s1": 4.8, "s2": 4.6}, 0.05)
    t["seeds"] = pd.DataFrame([{"cell": c, "measure": "gain_over_dense", "seed": i, "value": v * i}
                               for c, v in (("s0/E4/sbase", 0.001), ("s0/E4/rlr", 0.3)) for i in range(3)]
                              + [{"cell": "s0/dense", "measure": "test_ce", "seed": i, "value": 1e-6 * i} for i in range(3)])
    t["loss"] = pd.concat([t["loss"], t["loss"][t["loss"]["router"] == "sbase"].assign(router="hash")], ignore_index=True)
    t["ce"] = pd.concat([t["ce"], t["ce"][t["ce"]["router"] == "sbase"].assign(router="hash")], ignore_index=True)
    c = claims(t, "cpu").set_index("claim_id")
    assert c.loc["beats_dense_sbase", "verdict"] == "holds" and "S-BASE's replicated cells" in c.loc["beats_dense_sbase", "note"]
    # Hash has no replicated cell: the pool (RL-R's spread included) swamps its 0.05 gain
    assert c.loc["beats_dense_hash", "verdict"] == "inconclusive"
    assert "pooled over every replicated cell (Hash: none replicated)" in c.loc["beats_dense_hash", "note"]
    # the dense ladder's steps take the dense cells' test_ce SD (here ~0), not RL-R's
    assert c.loc["dense_falls_with_N", "verdict"] == "holds" and "dense's replicated cells" in c.loc["dense_falls_with_N", "note"]


def _step_table(changes, dense_gain=0.05, se=0.002):
    """A step_check table: dense gains `dense_gain` from the steps; each router's gap to dense
    changes by `changes[r]` (negative: the gap shrinks)."""
    rows = [{"size": "s1", "experts": 4, "router": "dense", "batch_tokens": 512, "steps": 8, "L": 5.0 - dense_gain,
             "grid_batch_tokens": 1024, "grid_steps": 4, "grid_L": 5.0}]
    for r, ch in changes.items():
        rows.append({**rows[0], "router": r, "grid_L": 5.1, "L": 5.1 + ch - dense_gain})
    t = pd.DataFrame(rows).assign(L_se=se, grid_L_se=se)
    dense = t.iloc[0]
    return t.assign(gain_from_steps=t["grid_L"] - t["L"], gap_to_dense=t["L"] - dense["L"],
                    grid_gap_to_dense=t["grid_L"] - dense["grid_L"])


@pytest.mark.parametrize("changes, verdict", [
    ({"sbase": -0.05, "rlr": -0.04, "hash": -0.02}, "holds"),
    ({"sbase": 0.05, "rlr": 0.04, "hash": 0.02}, "refuted"),
    ({"sbase": 0.0, "rlr": 0.01, "hash": -0.01}, "inconclusive"),
    ({"sbase": -0.003, "rlr": -0.002, "hash": 0.0}, "inconclusive"),   # within the noise
])
def test_more_steps_claim_from_the_step_check(changes, verdict):
    from scalinglaws.studies.routing.claims import claims
    t = _claim_tables({"s0": 5.0, "s1": 4.8, "s2": 4.6}, 0.05)
    t["step_check"] = _step_table(changes)
    row = claims(t, "cpu").set_index("claim_id").loc["more_steps_help_routing"]
    assert row["verdict"] == verdict and row["value"] == pytest.approx(np.mean(list(changes.values())))
    # the dense model's errors enter once (not averaged over routers)
    se = math.sqrt(3 * 2 * 0.002 ** 2 / 9 + 2 * 0.002 ** 2)
    assert row["hi"] - row["value"] == pytest.approx(1.96 * se)
    assert "1024 -> 512 tokens (4 -> 8 steps)" in row["note"]
    assert RS.step_check_units(resolve_params(RS, "smoke", {"experts": [1, 4]})) == []  # outside the grid: skipped
    t.pop("step_check")
    assert claims(t, "cpu").set_index("claim_id").loc["more_steps_help_routing", "verdict"] == "not testable"


def test_chapter_sentences_from_the_tables():
    """The chapter's phenomenon sentence and step-check numbers come from the tables, router by router."""
    from scalinglaws.studies.routing import chapter as C
    rows = []
    for size, N, L in (("s0", 100, 5.0), ("s1", 400, 4.8)):
        rows.append({"size": size, "N": N, "experts": 1, "router": "dense", "L": L})
        for r, d in (("hash", {"s0": -0.1, "s1": -0.1}), ("sbase", {"s0": 0.05, "s1": -0.02}),
                     ("rlr", {"s0": 0.1, "s1": 0.1})):
            rows += [{"size": size, "N": N, "experts": E, "router": r, "L": L + d[size] * E / 4} for E in (2, 4)]
    loss = pd.DataFrame(rows)
    g = C.gap_at_top_e(loss)
    assert list(g.index) == ["sbase", "rlr", "hash"] and list(g.columns) == ["s0", "s1"]
    assert g.loc["sbase", "s1"] == pytest.approx(-0.02)
    assert C.phenomenon_sentence(loss) == ("At E = 4, Hash beats the dense model at every size; S-BASE (at s1) "
                                           "at some sizes only; RL-R at no size.")
    glue = C.step_check_glue(_step_table({"sbase": -0.05, "rlr": -0.01}))
    assert glue["sc_steps"] == "4 to 8" and glue["sc_gap_change"] == "-0.030" and glue["sc_dense_gain"] == "0.050"
    assert C.step_check_glue(pd.DataFrame())["sc_where"] == "not run at this profile"
    assert list(C.step_check_view(_step_table({"sbase": -0.05}))["router"]) == ["dense", "S-BASE"]
    routing = pd.DataFrame([{"router": r, "experts": E, "phase": ph, "entropy": h}
                            for r, h in (("sbase", math.log(4)), ("switch", 0.5 * math.log(4)), ("hash", 0.0))
                            for E in (2, 4) for ph in ("train", "eval")])
    rel = C.relative_entropy(routing)
    assert list(rel.index) == ["sbase", "switch"] and rel["sbase"] == pytest.approx(1.0)
    assert C.entropy_sentence(routing).startswith("At E = 4 the learned routers' entropy over log E, averaged over all training tokens, is "
                                                  "S-BASE 1.00, Switch top-1 0.50")


def test_share_growth_tells_constant_shares_from_specialisation():
    """kappa = 1 when every domain is served by a constant fraction of the experts, < 1 when the
    domains concentrate on relatively fewer experts as E grows; the claim reads the slope."""
    rng = np.random.default_rng(0)
    for kappa, expect in ((1.0, True), (0.5, False)):
        rows = [{"size": "s0", "experts": E, "router": "sbase", "domain": d,
                 "n_serving": c * E ** kappa * math.exp(rng.normal(0, 0.01)), "ce": 3.0, "ce_dense": 3.0,
                 "max_share": 0.5} for d, c in zip("abcdefgh", np.linspace(0.3, 0.9, 8)) for E in (2, 4, 8, 16)]
        g = RS.share_growth(pd.DataFrame(rows), bootstrap=200).iloc[0]
        assert g["kappa"] == pytest.approx(kappa, abs=0.02) and g["lo"] <= g["kappa"] <= g["hi"]
        assert g["constant_share"] == expect and g["points"] == 32 and g["domains"] == 8
        from scalinglaws.studies.routing.claims import claims
        t = _claim_tables({"s0": 5.0, "s1": 4.8}, 0.05)
        t["resources"] = pd.DataFrame(rows).assign(size="s1")
        row = claims(t, "cpu").set_index("claim_id").loc["constant_shares"]
        assert row["verdict"] == ("holds" if expect else "refuted")
    from scalinglaws.studies.routing import chapter as C
    growth = pd.DataFrame([{"router": "sbase", "size": "s0", "kappa": 0.5, "constant_share": False},
                           {"router": "sbase", "size": "s1", "kappa": 0.7, "constant_share": False},
                           {"router": "hash", "size": "s0", "kappa": 1.0, "constant_share": True}])
    assert C.kappa_sentence(growth) == ("Measured kappa over the sizes: S-BASE 0.50 to 0.70; Hash 1.00; the interval "
                                        "contains 1 in 1 of 3 (router, size) cells.")


# ---------------------------------------------------------------------------------------------
# stored unit records: a committed record must be found again by the key the code makes

def test_stored_routing_unit_records_are_found_by_the_keys_the_code_makes():
    """Every committed routing unit record (data/results/routing/*/units/) hashes to its key; the
    routed models inside the committed seeds records, rebuilt by `train_unit` from their own settings
    (through the router registry's options and `routing_fields`), have their recorded keys; and the
    seeds units the code plans from each stored run's config are exactly the committed seeds records.
    (The regime pilot's records, units/routed/, predate `IDENTITY_OPTIONS` and carry those options
    explicitly at their no-op values: they are found by their own config, not rebuilt here.)"""
    import json
    from pathlib import Path

    from scalinglaws.core.sweep import Unit
    from scalinglaws.studies.routing import seeds as RSE

    root = Path(__file__).resolve().parents[1] / "data" / "results" / "routing"
    records = sorted(root.glob("*/units/**/*.json"))
    if not records:
        pytest.skip("no committed routing unit records")
    for path in records:
        rec = json.loads(path.read_text())
        assert Unit(rec["kind"], rec["config"]).key == rec["key"] == path.stem, path
    routed = [t["config"] for p in sorted(root.glob("*/units/seeds/*.json"))
              for t in json.loads(p.read_text())["config"]["train"] if t["kind"] == "routed"]
    assert {c["router"] for c in routed} >= {"sbase", "rlr", "hash", "switch"}
    for c in routed:
        rt = c["routing"]
        params = {**{k: c[k] for k in RS._SCHEDULE}, "tokens": c["tokens"], "lr_by_size": {c["size"]: c["lr"]},
                  "routed_every": rt["routed_every"], "router_options": RT.router_options_of(rt)}
        params["seed"] = rt["hash_seed"]
        assert RS.train_unit(c["size"], c["experts"], c["router"], params).key == Unit("routed", c).key
    for profile in ("smoke", "cpu"):
        stored = {p.stem for p in (root / profile / "units" / "seeds").glob("*.json")}
        prov = root / profile / "provenance.json"
        if not stored or not prov.exists():
            continue
        params = RS.validate(dict(json.loads(prov.read_text())["config"]))
        seeds = sorted({json.loads((root / profile / "units" / "seeds" / f"{k}.json").read_text())["config"]["seed"]
                        for k in stored})
        planned = {u.key for u in RSE.units(profile, params, RSE.CELLS[profile], seeds)}
        assert planned == stored, profile
