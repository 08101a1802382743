"""Subset enumeration and the diverse-permutation scheme (scalinglaws.studies.merging.subsets)."""
import itertools
import math

import numpy as np
import pytest

from scalinglaws.studies.merging import subsets as S
from scalinglaws.core.validation import ParameterError


@pytest.mark.parametrize("M", [1, 2, 5, 8])
def test_all_subsets_counts(M):
    everything = S.all_subsets(M)
    assert len(everything) == 2 ** M - 1
    assert len(set(everything)) == len(everything)
    for k in range(1, M + 1):
        sub = S.all_subsets(M, k)
        assert len(sub) == math.comb(M, k)
        assert all(len(s) == k and list(s) == sorted(s) and set(s) <= set(range(M)) for s in sub)
    assert [len(s) for s in everything] == sorted(len(s) for s in everything)  # sorted by k


def test_keys_and_bitmasks():
    subs = S.all_subsets(8)
    assert all(S.parse_subset(S.subset_key(s)) == s for s in subs)
    assert S.subset_key((5, 0, 3)) == "0-3-5"
    masks = [S.bitmask(s) for s in subs]
    assert sorted(masks) == list(range(1, 256))  # a bijection onto 1..2^M-1
    with pytest.raises(ParameterError):
        S.parse_subset("0-x")


def test_hamming():
    assert S.hamming((0, 1, 2, 3), (0, 1, 2, 3)) == 0
    assert S.hamming((0, 1, 2, 3), (3, 2, 1, 0)) == 4
    assert S.hamming((0, 1, 2, 3), (1, 0, 2, 3)) == 2


def test_diverse_permutations_start_and_validity():
    perms = S.diverse_permutations(8, 15, seed=0)
    assert len(perms) == 15 and len(set(perms)) == 15
    assert perms[0] == tuple(range(8)) and perms[1] == tuple(range(7, -1, -1))
    assert all(sorted(p) == list(range(8)) for p in perms)
    assert perms == S.diverse_permutations(8, 15, seed=0)  # deterministic
    assert perms != S.diverse_permutations(8, 15, seed=1)


def test_diverse_permutations_are_max_min_against_brute_force():
    # M = 4 has 24 permutations; 1000 uniform draws contain all of them (P(miss) ~ 24 e^-42), so
    # each greedy pick must reach the maximum over *all* permutations of the min distance.
    perms = S.diverse_permutations(4, 8, candidates=1000, seed=3)
    everything = list(itertools.permutations(range(4)))
    for j in range(2, len(perms)):
        best = max(min(S.hamming(q, p) for p in perms[:j]) for q in everything if q not in perms[:j])
        assert min(S.hamming(perms[j], p) for p in perms[:j]) == best


def test_diverse_beats_random_permutations():
    perms = np.array(S.diverse_permutations(8, 15, seed=0))
    rng = np.random.default_rng(0)
    dmin_div = min(S.hamming(a, b) for a, b in itertools.combinations(perms, 2))
    dmin_rand = [min(S.hamming(a, b) for a, b in itertools.combinations(
        [rng.permutation(8) for _ in range(15)], 2)) for _ in range(20)]
    assert dmin_div >= 6 and dmin_div > max(dmin_rand)


def test_prefix_subsets():
    perms = S.diverse_permutations(8, 15, seed=0)
    plan = S.prefix_subsets(perms)
    assert len(plan) == len(set(plan))
    assert [len(s) for s in plan] == sorted(len(s) for s in plan)
    prefixes = {tuple(sorted(p[:k])) for p in perms for k in range(1, 9)}
    assert set(plan) == prefixes
    assert plan.count(tuple(range(8))) == 1
    for k in range(1, 9):
        n_k = sum(len(s) == k for s in plan)
        assert 1 <= n_k <= min(15, math.comb(8, k))
    assert S.plan_subsets(8, "permutations", 15, seed=0) == plan
    assert S.plan_subsets(5, "all") == S.all_subsets(5)


def test_errors():
    with pytest.raises(ParameterError):
        S.diverse_permutations(3, 7)  # only 3! = 6 exist
    with pytest.raises(ParameterError):
        S.plan_subsets(4, "some")
    with pytest.raises(ParameterError):
        S.all_subsets(4, 5)
