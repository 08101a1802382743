"""Model merging: Average, Task Arithmetic, TIES, DARE, DELLA and Model Stock on in-memory state dicts.

Every method but Model Stock is  theta = theta0 + lam * Fuse_i( Psi(v_i) ),  v_i = theta_i - theta0,  i = 1..k,
a *sparsifier* Psi applied to each task vector and a *consensus rule* Fuse, registered
mergekit-style in `METHODS` (a new method is one registry entry):

    sparsifier  Psi(v)
      none       v
      magnitude  v * [|v| >= t], t = the density-quantile of |v| (TIES trim; top-density kept,
                 at least one entry). trim_scope="tensor" ranks within each tensor (mergekit),
                 "model" ranks over the whole task vector of one expert (TIES/merging paper).
                 trim_count: how many entries the threshold keeps (n entries in the scope):
                 "mergekit" (default) the max(1, int(density * n)) largest; "merging_eval" the
                 merging paper's code (`merging-eval` 0.1.4 `ties_merging`, `ties_merging_dare`):
                 m = int(n * (1 - density)) and |v| >= the m-th smallest, i.e. n - m + 1 entries
                 (= ceil(density * n) + 1 up to float rounding: one more than mergekit where
                 density * n is an integer, two more where it is not), every entry when m = 0
                 (`trim_keep_count`). Both keep every entry tied with the threshold.
      random     m * v * r, m ~ Bernoulli(1 - p) per entry (DARE)
      magprune   m_j * v_j * r_j, m_j ~ Bernoulli(1 - p_j) (DELLA MAGPRUNE), with row-wise drop
                 probabilities p_j = p + eps/2 - eps * rank_j / (n - 1), rank_j = 0 for the
                 smallest |v_j| of its row (n entries): smallest magnitudes are dropped with
                 p + eps/2, largest with p - eps/2, the row mean is exactly p. A row is the
                 trailing dims of a >= 2-D tensor (out-features row of a Linear, one token of an
                 embedding); a 1-D tensor (norm weight) is a single row. eps = 0 is DARE.
                 Ranking (option `rank`, DELLA's ablations): "row" (default, the paper's
                 MAGPRUNE), "tensor" (ranks over the whole tensor, the DELLA repo's
                 `rank_magnitude_layer_sampling`), "random" (the same row-wise probabilities
                 p_j assigned by a random permutation of each row instead of by |v_j|: the
                 drop-rate spread without the magnitude ranking).
      rescale r  "inverse" (default, the papers): r_j = 1 / (1 - p_j), so E[Psi(v)] = v;
                 "l1" (mergekit >= 2025): r = ||v||_1 / ||m*v||_1 for the whole tensor;
                 "none": r = 1.

    consensus   Fuse
      mean       (1/k) sum_i Psi(v_i)
      elect      S = sign(sum_i Psi(v_i)) (S = +1 where the sum is exactly 0, as mergekit);
                 disjoint mean over the experts whose entry is nonzero with sign S
                 (0 where none agrees).

Registered methods (defaults from `method_defaults`):

    average          none      + mean,  lam = 1 fixed (plain mean of the experts)
    task_arithmetic  none      + mean,  lam = 0.8 (the merging paper's c/k convention:
                     theta0 + lam * (1/k) sum v_i, *not* lam * sum v_i)
    ties             magnitude + elect, density = 0.2 (TIES paper's top-20%), lam = 1
                     (the merging paper uses lam in {0.5, 1})
    dare             random    + mean,  p = 0.2, lam = 1 (merging paper: alpha = c/k, c = 1)
    dare_ties        random    + elect, p = 0.2, lam = 1
    della            magprune  + elect, p = 0.5 (DELLA's best drop rate), eps = 0.1 (our
                     choice: studies should set it), lam = 1 (Drop-Elect-Fuse)
    della_linear     magprune  + mean,  p = 0.5, eps = 0.1, lam = 1 (DELLA without Elect)

Outside the family (a `MergeMethod` with its own `tensor` function, as mergekit gives each
method its own file):

    model_stock      Model Stock (Jang et al. 2024): t * mean_i theta_i + (1 - t) * theta0,
                     t = k cos / (1 + (k - 1) cos) from the mean pairwise cosine of the task
                     vectors; k >= 2; option filter_wise (one t per row). Equal to mergekit's
                     `model_stock` (tests/test_merge_mergekit.py).

Each method declares its options (`Option`: default and check, mergekit's ConfigParameterDef)
and how many experts it merges; `resolve_options` / `check_merge` validate through them.

Conventions that differ from mergekit 0.1.5 (checked in tests/test_merge_mergekit.py):
  * DELLA window: our `eps` is the paper's *full* width; mergekit's `epsilon` is the half-width
    (eps = 0.14 here == epsilon 0.07 there); mergekit's `density` is our 1 - p. Read in
    arcee-ai/mergekit mergekit/sparsify.py (`della_magprune`: keep probabilities
    (density - epsilon) + rank_norm * 2 * epsilon, then `rescaled_masked_tensor`, an L1-norm
    match). The DELLA authors' repository (declare-lab/della @0641b61) agrees with us: its
    `window_size` is the full width (merge_methods/generalized_task_arithmetic.py passes
    epsilon = window_size / 2 to sparsify.py `rank_magnitude`, keep probabilities
    (density - epsilon) + rank_norm * 2 * epsilon) and survivors are divided by their own keep
    probability (our rescale="inverse"); its `rank_magnitude_layer_sampling` is our rank="tensor".
  * DARE/DELLA rescale: mergekit's `rescale: true` matches the L1 norm of the whole tensor
    (our rescale="l1"), not the papers' per-entry 1/(1 - p_j) (our default "inverse").
  * Normalisation: our `elect` divides by the number of agreeing experts (mergekit
    `normalize: true`, its default for ties/della); our `mean` divides by k (mergekit
    `normalize: true` with unit weights; mergekit's default for task_arithmetic/dare_* is
    `normalize: false`, i.e. lam * sum v_i).
  * MAGPRUNE rows of a > 2-D tensor: we rank over all trailing dims of each dim-0 slice;
    mergekit ranks along dim 1 only. Same for 1-D and 2-D tensors (all of a Llama model).
  * Trim: mergekit trims per tensor with exactly max(1, int(density * n)) entries (argsort);
    we keep |v| >= the k-th largest magnitude (identical unless magnitudes tie at the
    threshold, where we keep all tied entries). trim_scope="model" has no mergekit equivalent.
  * Randomness: mergekit draws masks from torch's global RNG; we draw per tensor from a
    torch.Generator seeded by (seed, tensor name, expert index), so results do not depend on
    dict order and expert i's mask does not depend on k. CPU and CUDA streams differ.

Conventions of the merging paper's own code (PyPI `merging-eval` 0.1.4, `merge.merging_methods`;
checked in tests/test_merge_paper_code.py):
  * task_arithmetic there is theta0 + lambda * sum_i v_i: our lam = c is its lambda = c / k.
  * ties_merging trims per tensor with param_value_mask_rate = 1 - density and keeps
    |v| >= the int(n * rate)-th smallest: our trim_count="merging_eval" (trim_scope="tensor");
    ties_merging_dare is the same count over the whole task vector (trim_scope="model") and
    replaces a zero elected sign by the majority sign (ours +1: only entries where the trimmed
    deltas sum to exactly 0 can differ).
  * mask_merging (DARE, mask_strategy="random", rescale): mask ~ Bernoulli(p) from the global
    RNG, survivors / (1 - p) (our rescale="inverse"), then average_merging (our lam = 1) or
    task_arithmetic (lambda = lam / k).
  * It merges `named_parameters()` only (tied weights once, buffers stay the base's), in the
    models' dtype (bfloat16 in its main_merging.py); we merge every floating tensor in float32.

Which tensors are merged: every floating-point tensor. Non-floating tensors (int buffers) are
copied from the base. Tied tensors (one storage under several names in the *base*, e.g.
`model.embed_tokens.weight` and `lm_head.weight` of a LlamaForCausalLM with
tie_word_embeddings=True) are merged once, under the alphabetically first name (which also
seeds its random draws), and the one result tensor is stored under every name, so the output
stays tied. Experts must agree on tied names (same storage or equal values), else
ParameterError. A base whose tied weights were copied apart (e.g. `{n: t.clone()}`) is merged
name by name: the same values for the deterministic methods, independent masks (so the
copies diverge) for the random ones.

Memory: tensor by tensor, never all tensors of all experts. `mean` keeps one running sum;
`elect` holds the k sparsified deltas of the current tensor (k * largest tensor * 4 bytes). trim_scope="model"
first makes one pass per expert to find its global threshold (one float32 copy of |v_i|).
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch

from scalinglaws.core.validation import ParameterError, check_choice, check_float, check_int

SPARSIFIERS = ("none", "magnitude", "random", "magprune")
CONSENSUS = ("mean", "elect")
RESCALES = ("inverse", "l1", "none")
TRIM_SCOPES = ("tensor", "model")
TRIM_COUNTS = ("mergekit", "merging_eval")
RANKS = ("row", "tensor", "random")


@dataclass(frozen=True)
class Option:
    """One declared parameter of a merge method (mergekit's `ConfigParameterDef`): its name, its
    default and its validation, `check(value, options) -> value` (options: the method's options
    resolved so far, in declaration order, for checks that involve an earlier one)."""
    name: str
    default: object
    check: Callable[[object, dict], object]
    doc: str = ""


def _lam(default: float) -> Option:
    return Option("lam", default, lambda v, o: check_float("lam", v), "scale of the fused task vector")


def _density(default: float) -> Option:
    def check(v, o):  # density = 1 keeps everything (mergekit's default), so (0, 1]
        v = check_float("density", v, 0.0, 1.0)
        if v == 0.0:
            raise ParameterError("density=0.0 must lie in (0, 1]")
        return v
    return Option("density", default, check, "fraction of entries the magnitude trim keeps")


def _p(default: float) -> Option:
    return Option("p", default, lambda v, o: check_float("p", v, 0.0, 1.0, open_interval=True), "drop probability")


def _eps(default: float) -> Option:
    def check(v, o):
        eps = check_float("eps", v, 0.0)
        lo, hi = o["p"] - eps / 2, o["p"] + eps / 2
        if lo <= 0 or hi >= 1:
            raise ParameterError(f"DELLA window p +- eps/2 = [{lo:g}, {hi:g}] must lie inside "
                                 f"(0, 1) (p={o['p']}, eps={eps} is the full width)")
        return eps
    return Option("eps", default, check, "full width of MAGPRUNE's drop-probability window")


def _choice(name: str, default: str, choices: tuple, doc: str) -> Option:
    return Option(name, default, lambda v, o: check_choice(name, v, choices), doc)


def _flag(name: str, default: bool, doc: str) -> Option:
    def check(v, o):
        if not isinstance(v, bool):
            raise ParameterError(f"{name}={v!r} must be true or false")
        return v
    return Option(name, default, check, doc)


@dataclass(frozen=True)
class MergeMethod:
    """One registry entry (mergekit's `MergeMethod` + `merge_method` decorator): the options it
    declares, how many experts it takes, and `tensor(method, name, base, experts, options, seed,
    context) -> merged tensor` (float32 in, float32 out), with `prepare(base, experts, names,
    options) -> context` run once per merge for whole-model statistics (None: no context).
    The sparsifier x consensus family (`family`) fills `sparsifier` and `consensus`; a method
    outside it leaves them empty."""
    name: str
    options: tuple
    tensor: Callable
    prepare: Callable | None = None
    sparsifier: str = ""
    consensus: str = ""
    min_experts: int = 1
    max_experts: int | None = None
    mergekit: str = ""          # mergekit merge_method reproducing it (see to_mergekit_yaml)
    summary: str = ""

    @property
    def defaults(self) -> dict:
        return {o.name: o.default for o in self.options}


def _family_tensor(m: "MergeMethod", name, b, xs, opts, seed, thresholds):
    return _merge_tensor(name, b, xs, m, opts, seed, thresholds)


def _family_prepare(m: "MergeMethod", base, experts, names, opts):
    """Model-scope TIES trim: each expert's threshold over its whole task vector."""
    if m.sparsifier == "magnitude" and opts["trim_scope"] == "model" and opts["density"] < 1:
        return _model_thresholds(base, experts, names, opts["density"], opts["trim_count"])
    return None


def family(name: str, sparsifier: str, consensus: str, options: tuple, mergekit: str, summary: str) -> MergeMethod:
    """theta0 + lam * Fuse_i(Psi(v_i)): a sparsifier x consensus method (module docstring)."""
    assert sparsifier in SPARSIFIERS and consensus in CONSENSUS, (name, sparsifier, consensus)
    return MergeMethod(name, options, _family_tensor, _family_prepare, sparsifier, consensus,
                       mergekit=mergekit, summary=summary)


def _register(*methods: MergeMethod) -> dict[str, MergeMethod]:
    out = {}
    for m in methods:
        assert m.name not in out, f"merge method {m.name!r} registered twice"
        assert m.min_experts >= 1 and (m.max_experts is None or m.max_experts >= m.min_experts), m.name
        out[m.name] = m
    return out


_RESCALE = lambda: _choice("rescale", "inverse", RESCALES, "survivor rescale")  # noqa: E731
_RANK = lambda: _choice("rank", "row", RANKS, "MAGPRUNE ranking")               # noqa: E731

METHODS: dict[str, MergeMethod] = _register(
    family("average", "none", "mean", (), "linear", "plain mean of the experts: (1/k) sum theta_i"),
    family("task_arithmetic", "none", "mean", (_lam(0.8),), "task_arithmetic", "theta0 + lam * (1/k) sum v_i"),
    family("ties", "magnitude", "elect",
           (_lam(1.0), _density(0.2), _choice("trim_scope", "tensor", TRIM_SCOPES, "where the trim ranks"),
            _choice("trim_count", "mergekit", TRIM_COUNTS, "how many entries the trim keeps")),
           "ties", "trim to top-density by |v|, elect sign, disjoint mean, times lam"),
    family("dare", "random", "mean", (_lam(1.0), _p(0.2), _RESCALE()),
           "dare_linear", "drop with prob p, survivors / (1 - p), mean, times lam"),
    family("dare_ties", "random", "elect", (_lam(1.0), _p(0.2), _RESCALE()),
           "dare_ties", "DARE drop, then elect sign and disjoint mean, times lam"),
    family("della", "magprune", "elect", (_lam(1.0), _p(0.5), _eps(0.1), _RESCALE(), _RANK()), "della",
           "MAGPRUNE (row-wise rank-dependent drop), elect sign, disjoint mean, times lam"),
    family("della_linear", "magprune", "mean", (_lam(1.0), _p(0.5), _eps(0.1), _RESCALE(), _RANK()), "della_linear",
           "MAGPRUNE, then plain mean (DELLA without Elect), times lam"),
    MergeMethod("model_stock", (_flag("filter_wise", False, "one interpolation ratio per row, not per tensor"),),
                lambda m, name, b, xs, opts, seed, ctx: model_stock_tensor(b, xs, opts["filter_wise"]),
                min_experts=2, mergekit="model_stock",
                summary="Model Stock: t w_avg + (1 - t) theta0 with t = k cos / (1 + (k - 1) cos), cos the "
                        "mean pairwise cosine of the task vectors (per tensor, or per row if filter_wise)"),
)


def linear_coefficient(name: str, options: Mapping | None = None) -> float | None:
    """c of a merge that is theta0 + (c/k) sum_i v_i (no sparsifier, plain mean): the case the
    merging paper's 1/k theory covers (alpha = c/k). None for every other method."""
    m = _method(name)
    if m.sparsifier != "none" or m.consensus != "mean":
        return None
    return float(resolve_options(name, options or {}).get("lam", 1.0))


def method_defaults(name: str) -> dict:
    """The default options of method `name` (a copy; every key is a valid option)."""
    return dict(_method(name).defaults)


def describe(name: str) -> str:
    """One paragraph: formula, sparsifier, consensus, defaults and the mergekit counterpart."""
    m = _method(name)
    opts = ", ".join(f"{k}={v!r}" for k, v in m.defaults.items()) or "no options"
    if not m.sparsifier:
        return f"{m.name}: {m.summary}; defaults: {opts}; mergekit: {m.mergekit}."
    return (f"{m.name}: {m.summary}. theta = theta0 + lam * {m.consensus}_i Psi(v_i) with "
            f"Psi = {m.sparsifier} sparsifier; defaults: {opts}; mergekit: {m.mergekit}.")


def _method(name) -> MergeMethod:
    check_choice("method", name, METHODS)
    return METHODS[name]


def resolve_options(method: str, options: Mapping) -> dict:
    """Defaults of `method` updated by `options`, each checked by its declared `Option`;
    raises ParameterError."""
    m = _method(method)
    unknown = sorted(set(options) - set(m.defaults))
    if unknown:
        raise ParameterError(f"method {method!r} has no option(s) {unknown}; "
                             f"allowed: {sorted(m.defaults)}")
    opts = {**m.defaults, **options}
    for o in m.options:
        opts[o.name] = o.check(opts[o.name], opts)
    return opts


def check_merge(method: str, k: int, seed: int, options: Mapping) -> dict:
    """Everything about a merge of k experts that can be checked without the states: the method,
    its options (`resolve_options`), the number of experts it takes and the seed."""
    opts = resolve_options(method, options)
    check_int("seed", seed, minimum=0)
    _check_count(_method(method), k)
    return opts


def _check_count(m: MergeMethod, k: int):
    if k < m.min_experts or (m.max_experts is not None and k > m.max_experts):
        allowed = f"{m.min_experts}" + ("+" if m.max_experts is None else
                                        "" if m.max_experts == m.min_experts else f"-{m.max_experts}")
        raise ParameterError(f"method {m.name!r} merges {allowed} experts, got {k}")


# ---------------------------------------------------------------------------------------------
# methods outside the sparsifier x consensus family

def model_stock_tensor(b: torch.Tensor, xs, filter_wise: bool = False) -> torch.Tensor:
    """Model Stock (Jang, Yun, Han 2024, arXiv 2403.19522) on one tensor, as mergekit's
    `model_stock` (merge_methods/model_stock.py): offsets v_i = theta_i - theta0, cos = the mean
    over pairs i < j of v_i.v_j / max(|v_i| |v_j|, 1e-6) (clamped to [-1, 1]) over the whole
    tensor, or per row (last dim; a 1-D tensor is one row) if `filter_wise`; then
    t = k cos / (1 + (k - 1) cos) (t = 0 where |1 + (k - 1) cos| < 1e-6, keeping the base) and
    theta = t * mean_i theta_i + (1 - t) * theta0. Float32; k >= 2."""
    w0 = b.to(torch.float32)
    ws = [x.to(b.device, torch.float32) for x in xs]
    shape = w0.shape
    if filter_wise:
        if w0.dim() == 1:
            w0, ws = w0.unsqueeze(0), [w.unsqueeze(0) for w in ws]
    else:
        w0, ws = w0.reshape(-1), [w.reshape(-1) for w in ws]
    offsets = [w - w0 for w in ws]
    cos = torch.stack([((a * c).sum(-1) / (a.norm(dim=-1) * c.norm(dim=-1)).clamp(min=1e-6)).clamp(-1, 1)
                       for i, a in enumerate(offsets) for c in offsets[i + 1:]]).mean(0).unsqueeze(-1)
    k = len(ws)
    den = 1 + (k - 1) * cos
    singular = den.abs() < 1e-6
    t = torch.where(singular, torch.zeros_like(cos), k * cos / torch.where(singular, torch.ones_like(den), den))
    return (t * (sum(ws) / k) + (1 - t) * w0).reshape(shape)


# ---------------------------------------------------------------------------------------------
# sparsifiers (one expert, one tensor, float32)

def drop_probabilities(v: torch.Tensor, p: float, eps: float, rank: str = "row",
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """MAGPRUNE drop probabilities, shape of v: p + eps/2 - eps * rank / (n - 1) per row.

    rank = 0..n-1 by |v| ascending within each row (rows = dim 0 of a >= 2-D tensor, the trailing
    dims flattened; a 1-D tensor is one row; a one-entry row gets p). `rank="tensor"`: one row,
    the whole tensor; `rank="random"`: each row's ranks are a random permutation drawn from
    `generator` (required), so the probabilities have the same spread but ignore |v|.
    """
    check_choice("rank", rank, RANKS)
    rows = v.reshape(1, -1) if (v.dim() < 2 or rank == "tensor") else v.reshape(v.shape[0], -1)
    n = rows.shape[1]
    if rank == "random":
        if generator is None:
            raise ParameterError("rank='random' needs a generator")
        order = torch.argsort(torch.rand(rows.shape, generator=generator, device=v.device), dim=1)
    else:
        order = torch.argsort(rows.abs(), dim=1)
    ranks = torch.empty_like(rows)
    ranks.scatter_(1, order, torch.arange(n, device=v.device, dtype=v.dtype).expand_as(rows))
    frac = ranks / (n - 1) if n > 1 else ranks
    return ((p + eps / 2) - eps * frac).reshape(v.shape)


def random_drop(v: torch.Tensor, p, generator: torch.Generator, rescale: str) -> torch.Tensor:
    """Drop each entry with probability p (scalar or tensor like v) and rescale the survivors.

    Entry j survives iff u_j >= p_j with u = torch.rand(v.shape, generator), so DARE (scalar p)
    and MAGPRUNE with eps = 0 see the same draws and keep the same entries.
    """
    p = torch.as_tensor(p, dtype=v.dtype, device=v.device)
    keep = torch.rand(v.shape, generator=generator, device=v.device, dtype=v.dtype) >= p
    if rescale == "inverse":
        return torch.where(keep, v / (1 - p), 0.0)
    masked = torch.where(keep, v, 0.0)
    if rescale == "l1":  # mergekit's rescaled_masked_tensor (norm l1, eps 1e-7)
        before, after = v.abs().sum(), masked.abs().sum()
        if before >= 1e-7 and after >= 1e-7:
            masked = masked * (before / after)
    return masked


def trim_keep_count(n: int, density: float, count: str = "mergekit") -> int:
    """How many of n entries a magnitude trim keeps (more only where magnitudes tie at the
    threshold): "mergekit" max(1, int(density * n)); "merging_eval" n - m + 1 with
    m = int(n * (1 - density)) (the paper code's `kthvalue(k=m)` of |v|, kept if >= it), or n
    when m = 0. Computed with the same float expressions as the two implementations."""
    check_choice("trim_count", count, TRIM_COUNTS)
    if count == "mergekit":
        return max(1, int(density * n))
    m = int(n * (1.0 - density))
    return n - m + 1 if m > 0 else n


def magnitude_threshold(v_abs: torch.Tensor, density: float, count: str = "mergekit") -> torch.Tensor:
    """The k-th largest |v|, k = `trim_keep_count(n, density, count)`. Exact.

    Large tensors: a strided sample of ~8k entries brackets the k-th value, one counting pass
    checks the bracket holds it, and only the bracket is searched (several times faster than
    top-k or kthvalue over the whole tensor); otherwise an unsorted top-k from the short end.
    """
    flat = v_abs.reshape(-1)
    n = flat.numel()
    k = trim_keep_count(n, density, count)
    if n > 65536:
        sample = flat[:: n // 8192].sort(descending=True).values
        m = sample.numel()
        c, margin = k / n * m, 4 * math.sqrt(m * (k / n) * (1 - k / n)) + 8
        i_hi, i_lo = int(c - margin), int(c + margin)
        hi = sample[i_hi] if i_hi >= 0 else flat.new_tensor(math.inf)
        lo = sample[i_lo] if i_lo < m else flat.new_tensor(-math.inf)
        band = flat[(flat <= hi) & (flat >= lo)]
        r = k - int((flat > hi).sum())  # rank of the k-th largest inside the band
        if 1 <= r <= band.numel():
            return torch.kthvalue(band, band.numel() - r + 1).values
    if k <= n // 2:
        return torch.topk(flat, k, sorted=False).values.min()
    return torch.topk(flat, n - k + 1, largest=False, sorted=False).values.max()


def trim(v: torch.Tensor, density: float, threshold: torch.Tensor | None = None,
         count: str = "mergekit") -> torch.Tensor:
    """Keep the entries with |v| >= threshold (default: this tensor's top-density threshold,
    counted by `count`, see `trim_keep_count`)."""
    if density >= 1.0:
        return v
    a = v.abs()
    t = magnitude_threshold(a, density, count) if threshold is None else threshold
    return torch.where(a >= t, v, 0.0)


# ---------------------------------------------------------------------------------------------
# state-dict plumbing

def _generator(seed: int, name: str, index: int, device: torch.device) -> torch.Generator:
    """A generator seeded by (seed, tensor name, expert index): independent of dict order."""
    digest = hashlib.blake2b(f"{seed}/{name}/{index}".encode(), digest_size=8).digest()
    g = torch.Generator(device=device)
    g.manual_seed(int.from_bytes(digest, "little") & (2**63 - 1))
    return g


def _tie_groups(base: Mapping[str, torch.Tensor]) -> list[list[str]]:
    """Names grouped by shared storage in the base (tied weights), each group sorted."""
    groups: dict = {}
    for name, t in base.items():
        key = (t.device, t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape),
               t.stride(), t.dtype) if t.numel() else (name,)
        groups.setdefault(key, []).append(name)
    return sorted((sorted(g) for g in groups.values()), key=lambda g: g[0])


def _validate_states(base, experts) -> list[list[str]]:
    if not isinstance(base, Mapping):
        raise ParameterError(f"base_state must be a dict of tensors, got {type(base).__name__}")
    if isinstance(experts, Mapping) or not isinstance(experts, Sequence) or not experts:
        raise ParameterError("expert_states must be a non-empty list of state dicts")
    for i, e in enumerate(experts):
        if not isinstance(e, Mapping):
            raise ParameterError(f"expert_states[{i}] must be a dict of tensors")
        missing, extra = sorted(set(base) - set(e)), sorted(set(e) - set(base))
        if missing or extra:
            name = (missing or extra)[0]
            raise ParameterError(f"expert_states[{i}] tensor {name!r} "
                                 f"{'is missing' if missing else 'is not in the base'} "
                                 f"({len(missing)} missing, {len(extra)} extra)")
        for name, b in base.items():
            t = e[name]
            if not isinstance(t, torch.Tensor):
                raise ParameterError(f"expert_states[{i}] tensor {name!r} is not a tensor")
            if t.shape != b.shape:
                raise ParameterError(f"expert_states[{i}] tensor {name!r} has shape "
                                     f"{tuple(t.shape)}, base has {tuple(b.shape)}")
            if t.is_floating_point() != b.is_floating_point():
                raise ParameterError(f"expert_states[{i}] tensor {name!r} has dtype {t.dtype}, "
                                     f"base has {b.dtype}")
    groups = _tie_groups(base)
    for group in (g for g in groups if len(g) > 1):
        for i, e in enumerate(experts):
            first = e[group[0]]
            for other in group[1:]:
                t = e[other]
                same = t.data_ptr() == first.data_ptr() and t.stride() == first.stride()
                if not same and not torch.equal(t.to(first.device), first):
                    raise ParameterError(f"expert_states[{i}] tensor {other!r} differs from "
                                         f"{group[0]!r}, which the base ties to it")
    return groups


def _model_thresholds(base, experts, names, density, count) -> list[torch.Tensor]:
    """Per expert: the top-density magnitude threshold over all its merged tensors."""
    out = []
    for e in experts:
        mags = torch.cat([(e[n].to(base[n].device, torch.float32) - base[n].float()).abs()
                          .reshape(-1) for n in names])
        out.append(magnitude_threshold(mags, density, count))
        del mags
    return out


def _merge_tensor(name, b, xs, m: MergeMethod, opts, seed, thresholds) -> torch.Tensor:
    """theta0 + lam * Fuse(Psi(v_i)) for one tensor, computed in float32 whatever the dtype
    (so random draws, and hence masks, are the same for float16/bfloat16/float32/float64)."""
    work = torch.float32
    b = b.to(work)
    lam = opts.get("lam", 1.0)
    total = None  # running sum of Psi(v_i): the mean, or the election's sign weight
    psis = []
    for i, x in enumerate(xs):
        v = x.to(b.device, work) - b
        if m.sparsifier == "magnitude":
            v = trim(v, opts["density"], None if thresholds is None else thresholds[i],
                     opts["trim_count"])
        elif m.sparsifier in ("random", "magprune"):
            g = _generator(seed, name, i, b.device)
            if m.sparsifier == "magprune":  # rank draws from their own stream: masks stay those of "row"
                rank = opts.get("rank", "row")
                rg = _generator(seed, name + "#rank", i, b.device) if rank == "random" else None
                p = drop_probabilities(v, opts["p"], opts["eps"], rank, rg)
            else:
                p = opts["p"]
            v = random_drop(v, p, g, opts["rescale"])
        if total is None:
            total = v.clone() if m.consensus == "elect" else v
        else:
            total.add_(v)
        if m.consensus == "elect":  # the mean needs only the running sum
            psis.append(v)
    if m.consensus == "mean":
        fused = total.div_(len(xs))
    else:
        # agree_i = Psi(v_i) nonzero with the elected sign s: s * Psi(v_i) > 0, so the disjoint
        # mean is s * sum_i relu(s * Psi(v_i)) / #{i: s * Psi(v_i) > 0}
        sign = torch.where(total >= 0, 1.0, -1.0).to(work)
        count = torch.zeros_like(total)
        fused = total.zero_()
        for v in psis:
            aligned = v.mul_(sign)
            count.add_(aligned > 0)
            fused.add_(aligned.clamp_(min=0))
        del psis
        fused.mul_(sign).div_(count.clamp_(min=1))
    return fused.mul_(lam).add_(b) if lam != 1.0 else fused.add_(b)


def merge(base_state: Mapping[str, torch.Tensor], expert_states: Sequence[Mapping[str, torch.Tensor]],
          method: str, *, seed: int = 0, **options) -> dict[str, torch.Tensor]:
    """Merge `expert_states` (fine-tuned from `base_state`) with `method` (see module docstring).

    Returns a new state dict with the base's names, devices and dtypes. `seed` seeds the random
    sparsifiers (per tensor name and expert index). All options, names and shapes are validated
    before any compute; errors are ParameterError naming the method, option or tensor.
    """
    m = _method(method)
    opts = resolve_options(method, options)
    check_int("seed", seed, minimum=0)
    groups = _validate_states(base_state, expert_states)
    _check_count(m, len(expert_states))
    floating = [g for g in groups if base_state[g[0]].is_floating_point()]
    context = m.prepare(m, base_state, expert_states, [g[0] for g in floating], opts) if m.prepare else None
    out: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for group in groups:
            name, b = group[0], base_state[group[0]]
            if b.is_floating_point():
                merged = m.tensor(m, name, b, [e[name] for e in expert_states], opts, seed,
                                  context).to(b.dtype)
            else:
                merged = b.clone()
            for alias in group:
                out[alias] = merged
    return {name: out[name] for name in base_state}


# ---------------------------------------------------------------------------------------------
# mergekit configuration

def to_mergekit_yaml(method: str, base_path: str, expert_paths: Sequence[str], **options) -> str:
    """A mergekit YAML config reproducing `merge(base, experts, method, **options)`.

    Exact (up to float rounding) for average, task_arithmetic and ties with
    trim_scope="tensor"; for dare*/della* mergekit draws its own masks from the global RNG, and
    rescale="inverse" (the papers' 1/(1-p_j)) has no mergekit equivalent: `rescale: true`
    (L1-norm match per tensor) is written instead. The header comments say which.
    """
    import yaml

    m = _method(method)
    opts = resolve_options(method, options)
    if isinstance(expert_paths, str) or not expert_paths:
        raise ParameterError("expert_paths must be a non-empty list of model paths")
    if not m.sparsifier:  # outside the family: our option names are mergekit's parameter names
        config = {"merge_method": m.mergekit, "base_model": str(base_path),
                  "models": [{"model": str(p)} for p in expert_paths], "parameters": dict(opts), "dtype": "float32"}
        return (f"# mergekit config for scalinglaws.merge method {method!r} with {opts}\n"
                + yaml.safe_dump(config, sort_keys=False))
    notes = [f"mergekit config for scalinglaws.merge method {method!r} with {opts}"]
    per_model: dict = {"weight": 1.0}
    params: dict = {}
    config: dict = {"merge_method": m.mergekit}
    if method == "average":
        notes.append("average = mergekit linear over the experts only (weights 1, normalize): "
                     "no base_model, which linear would count as one more model")
        params["normalize"] = True
    else:
        config["base_model"] = str(base_path)
        notes.append("weights 1 with normalize: true divide by k (mean) or, for ties/della/"
                     "dare_ties, by the number of experts agreeing with the elected sign; "
                     "mergekit's own default for task_arithmetic/dare_*/della_linear is "
                     "normalize: false (lambda * sum v_i, not our lambda * mean)")
        params["normalize"] = True
        params["lambda"] = opts["lam"]
    if "density" in opts:
        per_model["density"] = opts["density"]
        notes.append("mergekit trims per tensor, keeping exactly max(1, int(density*n)) entries")
        if opts["trim_count"] != "mergekit":
            notes.append(f"NOT REPRODUCED: trim_count={opts['trim_count']!r} (the merging paper "
                         "code's count, one or two more entries per tensor); mergekit keeps "
                         "int(density*n)")
        if opts["trim_scope"] == "model":
            notes.append("NOT REPRODUCED: trim_scope='model' (top-density over the whole task "
                         "vector) has no mergekit equivalent; this config trims per tensor")
    if "p" in opts:
        per_model["density"] = round(1.0 - opts["p"], 12)
        notes.append(f"mergekit density = 1 - p = keep probability (p = {opts['p']})")
        params["rescale"] = opts["rescale"] != "none"
        if opts["rescale"] == "inverse":
            notes.append("NOT REPRODUCED: per-entry survivor rescale 1/(1-p_j) of the papers; "
                         "mergekit's rescale: true matches each tensor's L1 norm instead")
        notes.append("random masks come from mergekit's global RNG (set --random-seed), not "
                     "from our per-tensor (seed, name, expert) generators")
    if opts.get("rank", "row") != "row":
        notes.append(f"NOT REPRODUCED: rank={opts['rank']!r}; mergekit's della_magprune ranks "
                     "within rows (dim 1) only")
    if "eps" in opts:
        per_model["epsilon"] = round(opts["eps"] / 2, 12)
        notes.append(f"mergekit epsilon is the half-width: epsilon = eps/2 = {opts['eps'] / 2:g} "
                     f"(our eps = {opts['eps']:g} is the full window, drop probabilities "
                     f"in [p - eps/2, p + eps/2])")
    if m.consensus == "elect":
        notes.append("sign election: sign of the sum of sparsified deltas, ties at 0 -> +1 "
                     "(mergekit consensus 'sum')")
    config["models"] = [{"model": str(p), "parameters": dict(per_model)} for p in expert_paths]
    config["parameters"] = params
    config["dtype"] = "float32"
    header = "".join(f"# {line}\n" for line in notes)
    return header + yaml.safe_dump(config, sort_keys=False)


# ---------------------------------------------------------------------------------------------
# many linear merges at once (stacked), for many-model evaluation

def linear_merges(base_state: Mapping[str, torch.Tensor], expert_states: Sequence[Mapping[str, torch.Tensor]],
                  coefficients, names: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
    """B linear merges at once: {name: (B, *shape)} with merge b = theta0 + sum_i C[b, i] v_i,
    v_i = theta_i - theta0, C = `coefficients` (B, M). `average` / `task_arithmetic` of a subset S
    is C[b, i] = lam / |S| for i in S (see `linear_coefficient`), equal to `merge` up to float
    rounding. Computed in float32 as one (B, M) x (M, numel) matmul per tensor; `names` restricts
    the tensors (e.g. a model's parameter names, tied aliases once). Floating tensors only."""
    groups = _validate_states(base_state, expert_states)
    C = torch.as_tensor(coefficients, dtype=torch.float32)
    if C.dim() != 2 or C.shape[1] != len(expert_states):
        raise ParameterError(f"coefficients must be (B, {len(expert_states)}), got {tuple(C.shape)}")
    del groups
    out = {}
    with torch.no_grad():
        for name in (names if names is not None else list(base_state)):
            b = base_state[name]
            if not b.is_floating_point():
                raise ParameterError(f"tensor {name!r} is not floating point")
            b32 = b.float()
            V = torch.stack([e[name].to(b.device, torch.float32) - b32 for e in expert_states]).reshape(len(expert_states), -1)
            out[name] = (C.to(b.device) @ V).add_(b32.reshape(1, -1)).reshape(-1, *b.shape).to(b.dtype)
    return out
