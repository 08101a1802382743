"""Laws: formulas against independent numpy versions, parametrisations, analytic gradients, and the
derived planning quantities against their defining equations."""
import math

import numpy as np
import pytest
import torch

from scalinglaws import laws as L
from scalinglaws.laws import LAWS, Law, get_law
from scalinglaws.core.validation import ParameterError

RNG = np.random.default_rng(0)
MERGE = {"L_star": 1.2, "B": 40.0, "beta": 0.3, "A0": 6.0, "gamma": 0.1, "b": 0.4}
ROUTED = {"a": -0.082, "b": -0.108, "c": 0.009, "d": 1.104, "E_start": 1.85, "E_max": 314.0}
DENSE = {"a": -0.082, "d": 1.104}
CHIN = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}

# independent numpy formulas, written from the papers, not from laws.py
REFERENCE = {
    "chinchilla": (CHIN, {"N": np.logspace(7, 10, 5), "D": np.logspace(9, 12, 5)},
                   lambda p, X: p["E"] + p["A"] * X["N"] ** -p["alpha"] + p["B"] * X["D"] ** -p["beta"]),
    "merging": (MERGE, {"N": np.logspace(5, 9, 5), "k": np.arange(1, 6.0)},
                lambda p, X: p["L_star"] + p["B"] * X["N"] ** -p["beta"] + p["A0"] * X["N"] ** -p["gamma"] / (X["k"] + p["b"])),
    "routing": (ROUTED, {"N": np.logspace(7, 9, 5), "E": np.array([1.0, 2, 8, 64, 512])},
                lambda p, X: 10 ** (p["a"] * np.log10(X["N"]) + p["b"] * np.log10(_ehat(X["E"], p)) +
                                    p["c"] * np.log10(X["N"]) * np.log10(_ehat(X["E"], p)) + p["d"])),
    "routing_dense": (DENSE, {"N": np.logspace(6, 9, 4)}, lambda p, X: 10 ** (p["a"] * np.log10(X["N"]) + p["d"])),
    "power_offset": ({"E": 0.3, "A": 5.0, "alpha": 0.7}, {"x": np.logspace(0, 4, 6)},
                     lambda p, X: p["E"] + p["A"] * X["x"] ** -p["alpha"]),
    "power": ({"A": 2.0, "alpha": 1.0}, {"x": np.logspace(0, 4, 6)}, lambda p, X: p["A"] * X["x"] ** -p["alpha"]),
}


def _ehat(E, p):
    Es, Em = p["E_start"], p["E_max"]
    return 1.0 / (1.0 / (E - 1.0 + 1.0 / (1.0 / Es - 1.0 / Em)) + 1.0 / Em)


def test_registry_has_the_contract_laws():
    assert {"chinchilla", "merging", "routing", "routing_dense", "power_offset", "power"} <= set(LAWS)
    with pytest.raises(ParameterError, match="unknown law"):
        get_law("chinchila")


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_formula_matches_independent_numpy(name):
    params, X, ref = REFERENCE[name]
    law = get_law(name)
    assert set(law.reported) == set(params)
    np.testing.assert_allclose(law.predict(params, X), ref(params, X), rtol=1e-10)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_report_unreport_roundtrip_and_grid_inside_bounds(name):
    params, X, ref = REFERENCE[name]
    law = get_law(name)
    back = law.report(law.unreport(params))
    for k, v in params.items():
        assert back[k] == pytest.approx(v, rel=1e-12)
    starts = law.start_grid(X, ref(params, X))
    lo = np.array([law.bounds[p][0] for p in law.params])
    hi = np.array([law.bounds[p][1] for p in law.params])
    assert starts.shape[1] == len(law.params) and len(starts) >= 1
    assert (starts >= lo).all() and (starts <= hi).all()


@pytest.mark.parametrize("name", [n for n in sorted(LAWS) if LAWS[n].jac is not None])
def test_analytic_jacobian_matches_autograd(name):
    params, X, _ = REFERENCE[name]
    law = get_law(name)
    raw = law.unreport(params)
    theta = torch.tensor([[raw[p] for p in law.params]] * 3, dtype=torch.float64)
    theta = theta + 0.05 * torch.randn(theta.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    Xt = {k: torch.tensor(v, dtype=torch.float64).reshape(1, -1) for k, v in X.items()}
    th = theta.clone().requires_grad_(True)
    p = {n: th[:, i:i + 1] for i, n in enumerate(law.params)}
    out = law.log_model(p, Xt)
    logp, dlog = law.jac({n: theta[:, i:i + 1] for i, n in enumerate(law.params)}, Xt)
    torch.testing.assert_close(logp, out.detach())
    for i, n in enumerate(law.params):
        (g,) = torch.autograd.grad(out[:, 0].sum(), th, retain_graph=True)
        assert float(dlog[n][:, 0].sub(g[:, i]).abs().max()) < 1e-10


def test_e_hat_limits_and_inner_inverse():
    assert L.e_hat(1.0, 1.85, 314.0) == pytest.approx(1.85, rel=1e-12)
    assert L.e_hat(1e12, 1.85, 314.0) == pytest.approx(314.0, rel=1e-6)
    # hand value: 1/(1/(8 - 1 + 1/(1/2 - 1/100)) + 1/100)
    inner = 1.0 / (0.5 - 0.01)
    assert L.e_hat(8.0, 2.0, 100.0) == pytest.approx(1.0 / (1.0 / (7.0 + inner) + 0.01), rel=1e-12)
    # the buggy variant without the inner ^-1 gives a different number
    assert L.e_hat(8.0, 2.0, 100.0) != pytest.approx(1.0 / (1.0 / (7.0 + (0.5 - 0.01)) + 0.01), rel=1e-3)


def test_merging_planning_rules_solve_their_equations():
    law = get_law("merging")
    N = 3e7
    L_inf = L.merging_floor(MERGE, N)
    target = L_inf + 0.05
    k = L.k_for_target(MERGE, N, target)
    assert law.predict(MERGE, {"N": [N], "k": [k]})[0] == pytest.approx(target, rel=1e-10)
    assert L.k_for_target(MERGE, N, L_inf - 0.01) == math.inf
    eps = 0.02
    ke = L.k_eps(MERGE, N, eps)
    assert law.predict(MERGE, {"N": [N], "k": [ke]})[0] - L_inf == pytest.approx(eps, rel=1e-10)
    ks = np.arange(1, 9.0)
    curve = law.predict(MERGE, {"N": np.full(9, N), "k": np.arange(1, 10.0)})
    np.testing.assert_allclose(L.marginal_gain(MERGE, N, ks), curve[:-1] - curve[1:], rtol=1e-10)


def test_stopping_curve_envelope_and_k_at():
    k = [1, 2, 3, 4, 5]
    loss = [1.0, 0.8, 0.85, 0.6, 0.5]  # a bump at k=3: the envelope keeps 0.8
    R = L.stopping_curve(k, loss)
    np.testing.assert_allclose(R.to_numpy(), [0.0, 0.4, 0.4, 0.8, 1.0])
    assert (np.diff(R.to_numpy()) >= 0).all()
    assert L.k_at(R, 0.8) == 4 and L.k_at(R, 0.9) == 5 and L.k_at(R, 0.3) == 2
    assert L.stopping_curve([3, 1, 2], [0.5, 1.0, 0.7]).index.tolist() == [1, 2, 3]  # sorts by k


def test_n_cutoff_is_where_experts_stop_helping():
    b, c = ROUTED["b"], ROUTED["c"]
    Nc = L.n_cutoff(b, c)
    assert Nc == pytest.approx(10 ** (0.108 / 0.009))
    # slope of log10 L in log10 Ehat is b + c log10 N: zero at the cutoff, negative below it
    for N, sign in [(Nc, 0), (Nc / 100, -1)]:
        lo = L.routing_log10_loss(ROUTED, N, 8.0)
        hi = L.routing_log10_loss(ROUTED, N, 64.0)
        assert (hi - lo) == pytest.approx(0.0, abs=1e-12) if sign == 0 else (hi - lo) < 0


def test_effective_params_dense_model_has_the_same_loss():
    N, E = 1e8, 64.0
    Nbar = L.effective_params(ROUTED, DENSE, N, E)
    dense_loss = get_law("routing_dense").predict(DENSE, {"N": [Nbar]})[0]
    routed_loss = get_law("routing").predict(ROUTED, {"N": [N], "E": [E]})[0]
    assert dense_loss == pytest.approx(routed_loss, rel=1e-10)
    assert Nbar > N  # with the same (a, d), experts help below the cutoff


def test_chinchilla_allocation():
    assert L.optimal_allocation_exponent(0.34, 0.28) == pytest.approx(0.28 / 0.62)
    C = 1e21
    N_opt, D_opt = L.optimal_allocation(CHIN, C)
    assert 6 * N_opt * D_opt == pytest.approx(C, rel=1e-10)
    # brute force: the loss along the iso-FLOP line C = 6 N D is lowest at N_opt
    Ns = N_opt * np.logspace(-1, 1, 2001)
    loss = get_law("chinchilla").predict(CHIN, {"N": Ns, "D": C / (6 * Ns)})
    assert Ns[np.argmin(loss)] == pytest.approx(N_opt, rel=5e-3)


def test_law_needs_bounds_and_grid_for_every_parameter():
    with pytest.raises(ValueError, match="need bounds"):
        Law(name="bad", inputs=("x",), params=("a", "b"), log_model=lambda p, X: p["a"] + 0 * X["x"],
            bounds={"a": (0, 1)}, grid={"a": [0.5]})


def test_laws_named_by_the_special_estimators_are_fittable():
    """The laws registered for the estimators that are not the fitter's (ARCHITECTURE.md, "Fits
    outside the fitter") are real laws: `fit` recovers them on clean data, and the composition
    study's exact least-squares line is the `loglinear` law's least-squares optimum."""
    from scalinglaws.fitting import fit
    from scalinglaws.studies.composition.analysis import _line
    k = np.arange(1, 9, dtype=float)
    r = fit("merging_tail", {"k": k, "loss": 2.0 + 0.5 / (k + 0.7)}, bootstrap=0)
    assert r.params["L_inf"] == pytest.approx(2.0, rel=1e-4) and r.params["b"] == pytest.approx(0.7, rel=1e-3)
    rng = np.random.default_rng(0)
    x = np.geomspace(1e12, 1e14, 6)
    y = 10 ** (1.2 - 0.08 * np.log10(x)) * np.exp(0.01 * rng.standard_normal(x.size))
    slope, intercept = _line(np.log10(x), np.log10(y))
    ls = fit("loglinear", {"x": x, "y": y}, y="y", bootstrap=0, huber_delta=1.0)  # Huber = squared loss here
    assert ls.params["slope"] == pytest.approx(slope, abs=1e-4)
    assert ls.params["intercept"] == pytest.approx(intercept, abs=1e-3)
