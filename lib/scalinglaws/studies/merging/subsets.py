"""Which sets of experts to merge: full enumeration or the diverse-permutation scheme.

Experts are numbered 0..M-1 (the order of the study's domain list). A subset is a sorted tuple of
expert indices; in tables it is written `subset_key(s)`, the indices joined by "-" ("0-3-5").

Full enumeration: every k-subset, C(M, k) of them, sum_k C(M, k) = 2^M - 1 in all (255 for M = 8).

Diverse permutations (Wang et al. 2025, for bases too large to merge every subset): choose n
permutations of 0..M-1,

    pi_1 = (0, 1, ..., M-1),  pi_2 = its reverse,
    pi_j = argmax over `candidates` fresh random shuffles sigma of  min_{i<j} H(sigma, pi_i)

with H the Hamming distance between permutations (positions where they differ), and merge the
prefixes {pi_j(1..k)}, k = 1..M, of each one (prefixes repeated across permutations are merged
once). Every expert is the first of some permutation only by chance, but the prefix sets spread
over the experts: the paper found 15 permutations matched full enumeration.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from scalinglaws.core.validation import ParameterError, check_int

Subset = tuple[int, ...]


def subset_key(subset) -> str:
    """'0-3-5' for the subset {0, 3, 5} (sorted, so the key does not depend on merge order)."""
    return "-".join(str(int(i)) for i in sorted(subset))


def parse_subset(key: str) -> Subset:
    """Inverse of `subset_key`."""
    try:
        return tuple(sorted(int(x) for x in str(key).split("-")))
    except ValueError:
        raise ParameterError(f"subset {key!r} is not a '-'-joined list of expert indices") from None


def bitmask(subset) -> int:
    """sum_i 2^i over the subset: a unique integer per subset (used to seed random merges)."""
    return sum(1 << int(i) for i in set(subset))


def all_subsets(M: int, k: int | None = None) -> list[Subset]:
    """Every k-subset of range(M) in lexicographic order (all k = 1..M when k is None)."""
    check_int("M", M, minimum=1)
    ks = range(1, M + 1) if k is None else [check_int("k", k, minimum=1, maximum=M)]
    return [s for kk in ks for s in itertools.combinations(range(M), kk)]


def hamming(p, q) -> int:
    """Number of positions where permutations p and q differ."""
    p, q = np.asarray(p), np.asarray(q)
    if p.shape != q.shape:
        raise ParameterError(f"permutations of different lengths {len(p)} and {len(q)}")
    return int((p != q).sum())


def min_distances(chosen: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """For each candidate row, its smallest Hamming distance to the rows of `chosen`."""
    d = (candidates[:, None, :] != chosen[None, :, :]).sum(-1)  # (n_cand, n_chosen)
    return d.min(axis=1)


def diverse_permutations(M: int, n: int, candidates: int = 1000, seed: int = 0) -> list[Subset]:
    """n permutations of range(M): identity, reverse, then greedy max-min Hamming picks (see the
    module docstring). Each round draws `candidates` fresh shuffles from a generator seeded by
    `seed`; ties go to the first candidate drawn. The result depends only on (M, n, candidates, seed).
    """
    check_int("M", M, minimum=1)
    check_int("n", n, minimum=1)
    check_int("candidates", candidates, minimum=1)
    check_int("seed", seed, minimum=0)
    if n > math.factorial(M):
        raise ParameterError(f"n={n} permutations requested but only {math.factorial(M)} exist for M={M}")
    perms = [np.arange(M)]
    if n > 1 and M > 1:
        perms.append(np.arange(M)[::-1].copy())
    rng = np.random.default_rng(seed)
    while len(perms) < n:
        cand = np.argsort(rng.random((candidates, M)), axis=1)  # uniform random shuffles
        chosen = np.stack(perms)
        dist = min_distances(chosen, cand)
        dist[(cand[:, None, :] == chosen[None]).all(-1).any(1)] = -1  # never repeat a permutation
        best = int(np.argmax(dist))
        if dist[best] < 0:
            continue  # every candidate was already chosen (tiny M): draw again
        perms.append(cand[best])
    return [tuple(int(x) for x in p) for p in perms[:n]]


def prefix_subsets(perms, ks=None) -> list[Subset]:
    """The distinct prefix sets {p[:k]} of the permutations, sorted by k then first appearance."""
    perms = [tuple(p) for p in perms]
    if not perms:
        raise ParameterError("no permutations given")
    M = len(perms[0])
    ks = range(1, M + 1) if ks is None else ks
    out, seen = [], set()
    for k in ks:
        for p in perms:
            s = tuple(sorted(p[:k]))
            if s not in seen:
                seen.add(s)
                out.append(s)
    return out


def plan_subsets(M: int, scheme: str, n_permutations: int = 15, candidates: int = 1000,
                 seed: int = 0) -> list[Subset]:
    """The subsets to merge: scheme 'all' (every subset) or 'permutations' (prefixes of
    `diverse_permutations(M, n_permutations, candidates, seed)`). Sorted by k."""
    if scheme == "all":
        return all_subsets(M)
    if scheme == "permutations":
        return prefix_subsets(diverse_permutations(M, n_permutations, candidates, seed))
    raise ParameterError(f"scheme={scheme!r} is not one of ['all', 'permutations']")
