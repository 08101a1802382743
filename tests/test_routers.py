"""The four routers: S-BASE (Sinkhorn, balanced assignment), Hash, RL-R (REINFORCE), Switch."""
from __future__ import annotations

import math

import pytest
import torch

from scalinglaws.models import routers as R


def _logits(T, E, scale=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(T, E, generator=g) * scale


def _sinkhorn_reference(logits, iters=20000):
    """Textbook Sinkhorn-Knopp in float64: alternately normalise the rows of exp(logits) to 1/T
    and the columns to 1/E until the row sums are uniform to 1e-14."""
    P = torch.exp(logits.double() - logits.double().max())
    T, E = P.shape
    for _ in range(iters):
        P = P / P.sum(1, keepdim=True) / T
        P = P / P.sum(0, keepdim=True) / E
        if (P.sum(1) * T - 1).abs().max() < 1e-14:
            break
    return P


# ---------------------------------------------------------------------------------------------
# S-BASE


@pytest.mark.parametrize("T, E, scale", [(512, 8, 1.0), (1000, 4, 3.0), (64, 32, 0.1), (4096, 32, 5.0),
                                         (8192, 16, 10.0)])
def test_sinkhorn_has_uniform_marginals_to_the_tolerance(T, E, scale):
    P, info = R.sinkhorn(_logits(T, E, scale), tol=1e-4, return_info=True)
    assert P.dtype == torch.float32 and info["error"] <= 1e-4 and info["iterations"] < R.SINKHORN_MAX_ITER
    # the last step normalises the columns: exact up to float32 rounding
    assert torch.allclose(P.sum(0) * E, torch.ones(E), atol=1e-5)
    # rows: uniform to the tolerance (mean relative error <= 1e-4, worst row <= 1e-3)
    assert (P.sum(1) * T - 1).abs().mean() <= 1e-4 and info["error"] <= 1e-4
    assert (P.sum(1) * T - 1).abs().max() < 1e-3
    # a tighter tolerance gives tighter rows
    P2 = R.sinkhorn(_logits(T, E, scale), tol=1e-7)
    assert (P2.sum(1) * T - 1).abs().max() < 1e-5


def test_sinkhorn_agrees_with_a_float64_reference_and_is_shift_invariant():
    lg = _logits(300, 6, 2.0, seed=3)
    P = R.sinkhorn(lg, tol=1e-8)
    ref = _sinkhorn_reference(lg)
    assert torch.allclose(P.double(), ref, rtol=1e-4, atol=1e-9)
    assert torch.equal(P.argmax(1), ref.argmax(1))  # the S-BASE routing decision
    # exp(logits - row max) instead of exp(logits): a shift of any row changes nothing
    shift = torch.linspace(-30.0, 30.0, 300).unsqueeze(1)
    assert torch.allclose(R.sinkhorn(lg + shift, tol=1e-8), P, rtol=1e-5, atol=1e-9)
    # the iteration cap is honoured
    _, info = R.sinkhorn(lg, tol=0.0, max_iter=7, return_info=True)
    assert info["iterations"] == 7


@pytest.mark.parametrize("T, E", [(1024, 8), (1000, 7), (37, 4), (5, 8), (64, 1)])
def test_balanced_assignment_gives_equal_loads_within_one_token(T, E):
    for seed in range(3):
        scores = torch.rand(T, E, generator=torch.Generator().manual_seed(seed)) ** 4  # skewed
        scores[:, 0] += 1.0  # every token prefers expert 0
        idx = R.balanced_assignment(scores)
        assert idx.shape == (T,) and idx.min() >= 0 and idx.max() < E
        loads = torch.bincount(idx, minlength=E)
        assert loads.sum() == T
        assert loads.max() - loads.min() <= 1
        assert set(loads.tolist()) <= {T // E, -(-T // E)}


def test_balanced_assignment_keeps_an_already_balanced_argmax():
    T, E = 64, 4
    pref = torch.arange(T) % E
    scores = torch.rand(T, E, generator=torch.Generator().manual_seed(0))
    scores[torch.arange(T), pref] += 2.0
    assert torch.equal(R.balanced_assignment(scores), pref)


def test_sbase_router_balances_in_training_and_is_top1_at_inference():
    torch.manual_seed(0)
    T, d, E = 4096, 16, 8
    x = torch.randn(T, d)
    x[:, 0] += 1.0
    for assignment in ("argmax", "balanced"):
        r = R.SBaseRouter(d, E, assignment=assignment)
        with torch.no_grad():
            r.weight.normal_(0, 0.3)
            r.weight[0, 0] += 1.0  # skew the logits towards expert 0
        r.eval()
        top1 = r(x)
        plain = torch.bincount(top1.index, minlength=E)
        assert torch.equal(top1.index, top1.logits.argmax(1))
        r.train()
        route = r(x)
        loads = torch.bincount(route.index, minlength=E)
        assert plain.max() / plain.float().mean() > 1.5  # plain top-1 is unbalanced here
        if assignment == "balanced":
            assert loads.max() - loads.min() <= 1
        else:  # Megatron's argmax of the Sinkhorn matrix: approximately balanced
            assert loads.max() / loads.float().mean() < 1.25
        # gate: sigmoid of the raw logit of the chosen expert (Megatron top-1), with gradient
        expect = torch.sigmoid(route.logits.gather(1, route.index[:, None]).squeeze(1))
        assert torch.allclose(route.gate, expect)
        route.gate.sum().backward()
        assert r.weight.grad is not None and r.weight.grad.abs().sum() > 0
        assert r.aux_loss().item() == 0.0  # S-BASE has no auxiliary loss
        assert r.last_sinkhorn["error"] <= r.tol


def test_sinkhorn_argmax_does_not_balance_low_contrast_logits_but_balanced_assignment_does():
    """Why S-BASE defaults to the capacity-constrained assignment: with logits that vary across
    tokens much less than the Sinkhorn temperature 1 (a router early in training), P is nearly
    uniform and its argmax is the raw top-1 shifted by one bias per expert: still unbalanced."""
    g = torch.Generator().manual_seed(0)
    T, E = 8192, 8
    logits = 0.3 * torch.randn(E, generator=g) + 0.1 * torch.randn(T, E, generator=g)
    logits += 0.1 * torch.randn(T, 1, generator=g) * torch.linspace(-1, 1, E)  # correlated across experts
    P, info = R.sinkhorn(logits, return_info=True)
    assert info["iterations"] <= 5 and (P.sum(0) * E - 1).abs().max() < 1e-4
    load = lambda idx: (torch.bincount(idx, minlength=E).max() / (T / E)).item()  # noqa: E731
    assert load(logits.argmax(1)) > 2.0  # raw top-1
    assert load(P.argmax(1)) > 1.2  # Megatron's argmax of the balanced matrix
    assert load(R.balanced_assignment(P)) == 1.0  # T/E exactly


def test_router_logits_are_float32_under_autocast():
    r = R.SwitchRouter(8, 4)
    x = torch.randn(10, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        route = r(x)
    assert route.logits.dtype == torch.float32 and route.gate.dtype == torch.float32


# ---------------------------------------------------------------------------------------------
# Hash


def test_hash_table_is_seeded_and_balanced_over_the_vocabulary():
    a, b, c = R.hash_table(4096, 8, 0), R.hash_table(4096, 8, 0), R.hash_table(4096, 8, 1)
    assert torch.equal(a, b) and not torch.equal(a, c)
    for V, E in ((4096, 8), (4096, 32), (1000, 7)):
        counts = torch.bincount(R.hash_table(V, E, 3), minlength=E)
        assert counts.max() - counts.min() <= 1
    # a random map, not a trivial one
    assert not torch.equal(a, torch.arange(4096) % 8)


def test_hash_router_routes_by_token_id_with_unit_gate():
    r = R.HashRouter(4, vocab_size=100, seed=5)
    assert not list(r.parameters())  # no learned router
    ids = torch.tensor([3, 3, 7, 99, 0])
    route = r(torch.randn(5, 16), ids)
    assert torch.equal(route.index, r.table[ids]) and torch.equal(route.gate, torch.ones(5))
    assert route.logits is None and r.aux_loss().item() == 0.0
    assert route.index[0] == route.index[1]  # same token, same expert, whatever the context
    with pytest.raises(ValueError, match="token ids"):
        r(torch.randn(5, 16))
    assert "table" in r.state_dict()  # a persistent buffer: saved in the checkpoint


# ---------------------------------------------------------------------------------------------
# RL-R


def test_rlr_samples_in_training_and_is_argmax_at_inference():
    torch.manual_seed(0)
    r = R.RLRouter(8, 4)
    x = torch.randn(2000, 8)
    r.eval()
    a, b = r(x), r(x)
    assert torch.equal(a.index, b.index) and torch.equal(a.index, a.logits.argmax(1))
    assert torch.equal(a.gate, torch.ones(2000))  # the expert output is not scaled by pi
    r.train()
    s1, s2 = r(x).index, r(x).index
    assert not torch.equal(s1, s2)
    with pytest.raises(ValueError, match="per-token loss"):
        r.aux_loss(None)


def test_rlr_policy_learns_to_route_tokens_to_the_better_expert():
    """Two token types; expert 0 is right for type A, expert 2 for type B (loss 0 vs 1); the
    policy, trained only by REINFORCE on the reward -loss (plus balancing), learns the map."""
    torch.manual_seed(0)
    d, E, T = 8, 4, 512
    r = R.RLRouter(d, E, rl_coef=1.0, balance_coef=1e-2)
    opt = torch.optim.Adam(r.parameters(), lr=0.05)
    centre = torch.randn(2, d)
    best = torch.tensor([0, 2])

    def batch():
        kind = torch.randint(0, 2, (T,))
        return centre[kind] + 0.3 * torch.randn(T, d), kind

    r.train()
    for _ in range(150):
        x, kind = batch()
        route = r(x)
        token_loss = (route.index != best[kind]).float()
        loss = r.aux_loss(token_loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
    r.eval()
    x, kind = batch()
    acc = (r(x).index == best[kind]).float().mean().item()
    assert acc > 0.95, acc


# ---------------------------------------------------------------------------------------------
# Switch


def test_load_balancing_loss_is_one_at_perfect_balance_and_matches_a_hand_computation():
    E = 4
    probs = torch.full((8, E), 1.0 / E)
    index = torch.arange(8) % E
    assert R.load_balancing_loss(probs, index).item() == pytest.approx(1.0)
    # hand-computed: f = (3/4, 1/4), P = (0.65, 0.35) -> 2 (0.75 0.65 + 0.25 0.35) = 1.15
    probs = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.3, 0.7]])
    assert R.load_balancing_loss(probs, probs.argmax(1)).item() == pytest.approx(1.15)
    # all tokens on one expert with all the probability: the maximum, E
    probs = torch.zeros(5, E)
    probs[:, 1] = 1.0
    assert R.load_balancing_loss(probs, torch.ones(5, dtype=torch.long)).item() == pytest.approx(E)


def test_z_loss_hand_computed():
    logits = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]])
    expect = (math.log(2.0) ** 2 + math.log(4.0) ** 2) / 2
    assert R.z_loss(logits).item() == pytest.approx(expect)


def test_switch_router_gate_and_aux_loss():
    torch.manual_seed(0)
    r = R.SwitchRouter(8, 4, balance_coef=1e-2, z_coef=1e-3)
    x = torch.randn(100, 8)
    route = r(x)
    probs = torch.softmax(route.logits, -1)
    assert torch.equal(route.index, probs.argmax(1))
    assert torch.allclose(route.gate, probs.max(1).values)
    aux = r.aux_loss()
    expect = 1e-2 * R.load_balancing_loss(probs, route.index) + 1e-3 * R.z_loss(route.logits)
    assert aux.item() == pytest.approx(expect.item())
    aux.backward()
    assert r.weight.grad.abs().sum() > 0
    assert r.aux_loss().item() == 0.0  # consumed: a second call has nothing to add
    r.eval()
    r(x)
    assert r.aux_loss().item() == 0.0  # no auxiliary loss outside training


def test_router_registry():
    assert R.ROUTERS == ("sbase", "rlr", "hash", "switch")
    assert {c.kind for c in R.ROUTER_CLASSES.values()} == set(R.ROUTERS)
    with pytest.raises(ValueError, match="assignment"):
        R.SBaseRouter(8, 4, assignment="auction")
