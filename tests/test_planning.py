"""Planning with the merging law (scalinglaws.planning, `plan merging` CLI) on synthetic fits."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from scalinglaws.studies.merging import planning as P
from scalinglaws.cli import main
from scalinglaws.core.results import ResultStore
from scalinglaws.core.validation import ParameterError

TRUE = {"L_star": 2.0, "B": 10.0, "beta": 0.5, "A0": 5.0, "gamma": 0.2, "b": 0.5}


def law(p, N, k):
    return p["L_star"] + p["B"] * N ** -p["beta"] + p["A0"] * N ** -p["gamma"] / (k + p["b"])


def test_experts_for_target_analytic():
    fit = P.MergingFit(dict(TRUE))
    N = 1e4  # floor 2 + 10/100 = 2.1, A = 5 * 1e4^-0.2
    A = 5 * 1e4 ** -0.2
    r = P.experts_for_target(fit, N, 2.2)
    assert math.isclose(r["floor"], 2.1) and math.isclose(r["amplitude"], A)
    assert math.isclose(r["k"], A / 0.1 - 0.5, rel_tol=1e-12)
    assert r["k_needed"] == 8 and r["status"] == "reachable"
    assert law(TRUE, N, 8) <= 2.2 < law(TRUE, N, 7)
    low = P.experts_for_target(fit, N, 2.05)
    assert low["status"] == "unreachable" and low["k"] == math.inf
    easy = P.experts_for_target(fit, N, 5.0)
    assert easy["status"] == "one expert suffices" and easy["k_needed"] == 1
    with pytest.raises(ParameterError):
        P.experts_for_target(fit, N, -1.0)


def test_stopping_analytic():
    fit = P.MergingFit(dict(TRUE))
    N, b, K = 1e4, TRUE["b"], 8
    A = 5 * 1e4 ** -0.2
    st = P.stopping(fit, N, eps=0.01, pool=K, k_max=10)
    assert math.isclose(st["k_eps"], A / 0.01 - b) and st["k_eps_needed"] == math.ceil(A / 0.01 - b)
    t = st["table"]
    ks = t["k"].to_numpy(dtype=float)
    np.testing.assert_allclose(t["gain_next"], law(TRUE, N, ks) - law(TRUE, N, ks + 1), rtol=1e-10)
    Rk = (1 / (1 + b) - 1 / (ks[:K] + b)) / (1 / (1 + b) - 1 / (K + b))
    np.testing.assert_allclose(t["R"].to_numpy()[:K], Rk, rtol=1e-10, atol=1e-12)
    assert t["R"].isna().sum() == 2  # k > pool
    for level, k in st["k_at_R"].items():
        assert Rk[k - 1] >= level > (Rk[k - 2] if k > 1 else -1)
    with pytest.raises(ParameterError):
        P.stopping(fit, N, eps=0.0)


@pytest.fixture(scope="module")
def bootstrap_fit():
    """The merging law fitted (with 150 bootstrap draws) to noisy synthetic curves of TRUE."""
    from scalinglaws.fitting import fit
    rng = np.random.default_rng(0)
    N = np.repeat([3e3, 1e4, 3e4, 1e5], 8)
    k = np.tile(np.arange(1, 9), 4)
    y = law(TRUE, N, k) * (1 + 0.002 * rng.standard_normal(len(N)))
    res = fit("merging", pd.DataFrame({"N": N, "k": k, "y": y}), y="y", weights=k.astype(float),
              bootstrap=150, seed=0)
    return res


def test_intervals_from_bootstrap_contain_truth(bootstrap_fit):
    fit = P.load_fit(bootstrap_fit)
    assert fit.draws is not None and len(fit.draws) == 150
    N, target = 1e4, 2.3
    true_k = (5 * N ** -0.2) / (target - 2.1) - 0.5
    r = P.experts_for_target(fit, N, target)
    assert r["k_lo"] <= true_k <= r["k_hi"], (r, true_k)
    assert r["floor_lo"] <= 2.1 <= r["floor_hi"]
    assert r["p_reachable"] == 1.0
    st = P.stopping(fit, N, eps=0.02)
    assert st["k_eps_lo"] <= (5 * N ** -0.2) / 0.02 - 0.5 <= st["k_eps_hi"]
    # a target right at the true floor: k is huge or infinite for part of the draws
    edge = P.experts_for_target(fit, N, 2.1)
    assert edge["k_hi"] == math.inf or edge["k_hi"] > 100


def test_cost_model_and_next_step():
    cost = P.CostModel(N=[1e3, 1e4], N_total=[2e3, 3e4], D=[1e5, 1e6], D_ft=[1e4, 5e4], sizes=("s", "m"))
    np.testing.assert_allclose(cost.pretrain_flops([1e3, 1e4]), [6 * 2e3 * 1e5, 6 * 3e4 * 1e6])
    np.testing.assert_allclose(cost.expert_flops(1e4), 6 * 3e4 * 5e4)
    # log-log: halfway in log N is the geometric mean; beyond the end the last slope continues
    assert math.isclose(float(cost.n_total(math.sqrt(1e7))), math.sqrt(2e3 * 3e4))
    assert math.isclose(float(cost.n_total(1e5)), 3e4 * 15)
    fit = P.MergingFit(dict(TRUE))
    r = P.double_vs_expert(fit, cost, 1e3, k=5)
    assert math.isclose(r["gain_expert"], law(TRUE, 1e3, 5) - law(TRUE, 1e3, 6))
    assert math.isclose(r["gain_double"], law(TRUE, 1e3, 5) - law(TRUE, 2e3, 5))
    fd = float(cost.pretrain_flops(2e3) + 5 * cost.expert_flops(2e3))
    assert math.isclose(r["flops_double"], fd)
    assert math.isclose(r["per_flop_ratio"], (r["gain_double"] / fd) / (r["gain_expert"] / float(cost.expert_flops(1e3))))
    free = P.double_vs_expert(fit, cost, 1e3, k=5, count_pretraining=False)
    assert free["flops_double"] < r["flops_double"] and free["per_flop_ratio"] > r["per_flop_ratio"]


def test_budget_plan_is_the_brute_force_optimum():
    cost = P.CostModel.from_profile("cpu")
    fit = P.MergingFit(dict(TRUE))
    budget = 2e13
    df = P.budget_plan(fit, cost, budget, max_experts=8)
    best = df[df["best"]].iloc[0]
    # brute force over the same grid and every k
    cands = []
    for N in df["N"]:
        pre, ft = float(cost.pretrain_flops(N)), float(cost.expert_flops(N))
        for k in range(1, 9):
            if pre + k * ft <= budget:
                cands.append((law(TRUE, N, k), N, k))
    L, N, k = min(cands)
    assert math.isclose(best["N"], N) and best["k"] == k and math.isclose(best["loss"], L)
    assert (df["total_flops"] <= budget * (1 + 1e-9)).all()
    with pytest.raises(ParameterError):
        P.budget_plan(fit, cost, 1e9)
    with pytest.raises(ParameterError):
        P.budget_plan(fit, cost, -1.0)


def test_budget_plan_uncertainty(bootstrap_fit):
    fit = P.load_fit(bootstrap_fit)
    cost = P.CostModel.from_profile("cpu")
    df = P.budget_plan(fit, cost, 2e13, max_experts=8)
    assert math.isclose(df["p_best"].sum(), 1.0)
    ok = df["loss"].notna()
    assert (df.loc[ok, "loss_lo"] <= df.loc[ok, "loss"] + 1e-9).all()
    assert (df.loc[ok, "loss"] <= df.loc[ok, "loss_hi"] + 1e-9).all()


# ---------------------------------------------------------------------------------------------
# stored fits and the CLI

def _store(profile="smoke"):
    fits, samples = [], []
    rng = np.random.default_rng(1)
    for method in ("average", "ties_l1"):
        for name, v in TRUE.items():
            fits.append({"pool": "related", "method": method, "scope": "cross_domain", "law": "merging", "param": name, "estimate": v,
                         "lo": v, "hi": v, "se": 0.0, "r2": 0.99, "rmse": 0.01, "converged": True, "ok": True,
                         "n_points": 32})
        for d in range(40):
            samples.append({"pool": "related", "method": method, "scope": "cross_domain", "draw": d,
                            **{k: v * (1 + 0.01 * rng.standard_normal()) for k, v in TRUE.items()}})
    st = ResultStore("merging", profile)
    st.write("fits", pd.DataFrame(fits))
    st.write("fit_samples", pd.DataFrame(samples))
    curves = [{"pool": "related", "method": m, "size": s, "N": N, "k": k, "scope": "cross_domain",
               "ce": law(TRUE, N, k) if k else 2.3} for m in ("average", "ties_l1")
              for s, N in (("d16l1", 3360.0), ("d24l2", 14544.0)) for k in range(0, 5)]
    st.write("curves", pd.DataFrame(curves))
    return st


def test_load_fit_from_store(scratch_roots):
    _store()
    fit = P.load_fit(profile="smoke", method="ties_l1", scope="cross_domain")
    assert fit.params == TRUE and len(fit.draws) == 40 and fit.N_range == (3360.0, 14544.0)
    assert P.extrapolating(fit, 1e6) and not P.extrapolating(fit, 5000.0)
    with pytest.raises(ParameterError, match="no merging fit"):
        P.load_fit(profile="smoke", method="della", scope="cross_domain")
    with pytest.raises(ParameterError, match="pool"):
        P.load_fit(profile="smoke", method="average", scope="cross_domain", pool="nope")


def test_plan_keeps_the_base_and_refuses_to_extrapolate_silently(scratch_roots):
    _store()
    fit = P.load_fit(profile="smoke", method="average", scope="cross_domain", pool="related")
    assert fit.pool_size == 4 and fit.base_at(3360.0) == 2.3 and fit.base_at(5000.0) is None
    keep = P.experts_for_target(fit, 3360.0, 2.4)           # the base (2.3) already meets it
    assert keep["status"] == "keep the base" and keep["k_needed"] == 0
    far = P.experts_for_target(fit, 3360.0, law(TRUE, 3360.0, 40))  # needs ~40 experts of a pool of 4
    assert far["beyond_pool"] and far["status"].startswith("beyond the pool") and far["k_needed"] > 4
    st = P.stopping(fit, 3360.0, eps=1e-4, pool=4)
    assert st["table"]["k"].iloc[0] == 0 and st["k_eps_beyond_pool"]
    assert st["keep_base"] == bool(min(law(TRUE, 3360.0, k) for k in range(1, 5)) >= 2.3)
    with pytest.raises(ParameterError):
        P.load_fit(profile="smoke", method="average", scope="variance")


def test_cli_plan_from_store_and_file(scratch_roots, tmp_path, capsys):
    _store()
    base = ["plan", "merging", "--profile", "smoke", "--method", "average", "--scope", "cross_domain",
            "--size", "d16l1"]
    assert main(base + ["--target", "3.0", "--eps", "0.01", "--budget-flops", "1e12"]) == 0
    text = capsys.readouterr().out
    assert "experts needed" in text and "k_eps" in text and "best N" in text
    assert main(base + ["--target", "2.0", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["target"]["status"] == "unreachable" and out["target"]["k"] == "inf"
    assert out["fit"]["draws"] == 40
    # from a `fit merging --json` file (FitResult.to_dict), with and without draws
    f = tmp_path / "fit.json"
    f.write_text(json.dumps({"law": "merging", "params": TRUE, "r2": 0.99}))
    assert main(["plan", "merging", "--fit", str(f), "--n-params", "1e4", "--target", "2.2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["target"]["k_needed"] == 8 and out["target"]["k_lo"] is None


@pytest.mark.parametrize("extra", [
    ["--method", "nope"], ["--scope", "sideways"], ["--scope", "variance"], ["--size", "d7l7"],
    ["--target", "0"], ["--target", "-3"], ["--eps", "0"], ["--budget-flops", "-1e15"], ["--k", "0"],
    ["--fit", "/nonexistent/fit.json"], ["--profile", "laptop"]])
def test_cli_rejects_bad_input(scratch_roots, extra, capsys):
    _store()
    args = {"--profile": "smoke", "--method": "average", "--scope": "cross_domain", "--size": "d16l1"}
    for i in range(0, len(extra), 2):
        args[extra[i]] = extra[i + 1]
    argv = ["plan", "merging"] + [f"{k}={v}" for k, v in args.items()]  # "=": values may start with "-"
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and len(err.strip().splitlines()) == 1


def test_cli_needs_a_size(scratch_roots, capsys):
    _store()
    assert main(["plan", "merging", "--profile", "smoke"]) == 2
    assert "--size" in capsys.readouterr().err
