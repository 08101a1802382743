"""Our merges beside the two reference implementations, measured on drawn experts: `conventions`.

The merging paper ships its own code (PyPI `merging-eval` 0.1.4, `merge.merging_methods`), and
mergekit (0.1.5) is the common reference for TIES, DARE and DELLA. Their conventions differ from
ours and from each other in ways that change a merge without changing its name (the sum vs the
mean of task vectors, how many entries a trim keeps, how dropped entries are rescaled). This
module merges the same drawn experts with ours and with each reference, and measures the
difference of every pairing: zero where a convention is matched, its size where it is not.

Experts (`draw_experts`): a freshly initialised base of the profile's smallest size and k
perturbations with the structure of fine-tuning deltas: per tensor a direction shared by all
experts (so signs mostly agree, as for experts of one base), an expert-specific low-rank part,
dense noise, and on the embedding a block of token rows that only that expert moves strongly
(its domain's tokens). Scales are relative to each tensor's RMS, varying per tensor and expert.
Nothing is trained: the conventions are properties of the merge functions, not of the experts.

Random methods (DARE) are compared with the *same* masks: the reference's Bernoulli draws are
replaced, for the call, by our masks (`_fixed_bernoulli`), so what is compared is the rescale and
the fusion, not two random streams.

`derive(profile)` writes the table into the merging store of `profile` (the results of a complete
run) and records it in provenance.json under `derived.conventions`, like `python -m scalinglaws
claims`; the CLI is `python -m scalinglaws conventions merging --profile P`. The references are
test dependencies (pyproject's dev extra): computing the table needs them, reading it does not.
"""
from __future__ import annotations

import contextlib
import copy
import os

import pandas as pd
import torch

from scalinglaws.core.validation import ParameterError, check_int

# a difference below this (float32 rounding of the same arithmetic in another order) is none
TOLERANCE = 1e-6
COLUMNS = ["comparison", "method", "ours", "reference", "reference_call", "matched", "n_elements",
           "max_abs_diff", "frac_differ", "rel_diff", "note"]
PAPER_CODE = "merging-eval 0.1.4"
MERGEKIT = "mergekit 0.1.5"


# ---------------------------------------------------------------------------------------------
# experts


def draw_experts(size: str, k: int, seed: int = 0, scale: float = 0.05):
    """(base model, base state, [expert states]) of `size`: a base initialised with `seed` and k
    structured perturbations (see the module docstring). Tied tensors stay tied in every expert."""
    from scalinglaws import models as Mo
    check_int("k", k, minimum=1, maximum=64)
    base_model = Mo.build_model(size, seed=seed)
    names = [n for n, _ in base_model.named_parameters()]  # tied weights once
    base = {n: t.detach().clone() for n, t in base_model.named_parameters()}
    g = torch.Generator().manual_seed(10_000 + seed)

    def low_rank(shape, rank=2):
        if len(shape) < 2:
            return torch.randn(shape, generator=g)
        u = torch.randn(shape[0], rank, generator=g)
        w = torch.randn(rank, int(torch.tensor(shape[1:]).prod()), generator=g)
        return (u @ w).reshape(shape) / rank ** 0.5

    deltas = [{} for _ in range(k)]
    for n in names:
        t = base[n]
        rms = float(t.pow(2).mean().sqrt()) or 1.0
        shared = low_rank(t.shape)
        tensor_scale = scale * rms * float(torch.empty(()).log_normal_(0.0, 0.5, generator=g))
        for i in range(k):
            d = 0.6 * shared + 0.6 * low_rank(t.shape) + 0.3 * torch.randn(t.shape, generator=g)
            if n.endswith("embed_tokens.weight"):  # expert i's own block of token rows
                rows = t.shape[0] // k
                d[i * rows:(i + 1) * rows] *= 4.0
            expert_scale = float(torch.empty(()).uniform_(0.5, 1.5, generator=g))
            deltas[i][n] = tensor_scale * expert_scale * d
    full = base_model.state_dict()
    experts = []
    for i in range(k):
        m = copy.deepcopy(base_model)
        with torch.no_grad():
            for n, p in m.named_parameters():
                p.add_(deltas[i][n])
        experts.append(m.state_dict())
    return base_model, full, experts


def _module(base_model, state):
    m = copy.deepcopy(base_model)
    m.load_state_dict(state)
    return m


# ---------------------------------------------------------------------------------------------
# the references, called as their users call them


def _paper():
    try:
        from merge.merging_methods import MergingMethod
    except ImportError as e:  # the dev extra: pip install -c constraints.txt -e ".[dev]"
        raise ParameterError(f"the conventions table needs the merging paper's code (`merging-eval`, "
                             f"in the dev extra of pyproject.toml): {e}") from e
    return MergingMethod


def paper_merge(base_model, expert_states, method: str, **kwargs) -> dict[str, torch.Tensor]:
    """`MergingMethod(method).merging_models(...)` on modules holding the states: {name: tensor}
    over the base's named parameters (tied weights once). No parameter is excluded (the default of
    its main_merging.py)."""
    MergingMethod = _paper()
    experts = [_module(base_model, s) for s in expert_states]
    quiet = open(os.devnull, "w")
    # ties_merging prints FLOP and retention counts, mask_merging a progress bar
    with quiet, contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
        out = MergingMethod(method).merging_models(merged_model=copy.deepcopy(base_model),
                                                   models_to_merge=experts,
                                                   exclude_param_names_regex=[], **kwargs)
    return {n: t.detach() for n, t in out.items()}


def mergekit_merge(base_state, expert_states, names, method: str, parameters: dict,
                   with_base: bool = True) -> dict[str, torch.Tensor]:
    """mergekit's `merge_tensors` tensor by tensor (the same code path as a YAML merge)."""
    try:
        from mergekit.merge_methods import api
    except ImportError as e:
        raise ParameterError(f"the conventions table needs mergekit (the dev extra): {e}") from e
    out = {}
    for n in names:
        tensors = ([base_state[n]] if with_base else []) + [e[n] for e in expert_states]
        kw = {"base_index": 0} if with_base else {}
        out[n] = api.merge_tensors(tensors, method, parameters=dict(parameters), name=n, **kw)
    return out


@contextlib.contextmanager
def _fixed_bernoulli(masks: list[torch.Tensor]):
    """torch.bernoulli returns `masks` in order for the duration (each must match the shape asked
    for); every mask must be used."""
    queue = list(masks)
    real = torch.bernoulli

    def fake(probs, *args, **kwargs):
        if not queue:
            raise RuntimeError("the reference drew more masks than were prepared")
        m = queue.pop(0)
        if m.shape != probs.shape:
            raise RuntimeError(f"mask of shape {tuple(m.shape)} for a draw of shape {tuple(probs.shape)}")
        return m.to(probs.dtype)

    torch.bernoulli = fake
    try:
        yield
    finally:
        torch.bernoulli = real
    if queue:
        raise RuntimeError(f"{len(queue)} prepared masks were not drawn")


def keep_masks(base_state, expert_states, names, p: float, seed: int) -> dict[tuple[int, str], torch.Tensor]:
    """Our DARE keep masks {(expert, name): bool}: the draws `merge.merge(..., "dare", seed)` makes
    (per tensor generator seeded by the tie group's first name, u >= p)."""
    from scalinglaws.merge import _generator, _tie_groups
    first = {n: g[0] for g in _tie_groups(base_state) for n in g}
    cpu = torch.device("cpu")
    out = {}
    for i in range(len(expert_states)):
        for n in names:
            u = torch.rand(base_state[n].shape, generator=_generator(seed, first[n], i, cpu))
            out[(i, n)] = u >= torch.full_like(u, p)  # p in float32, as merge compares it
    return out


# ---------------------------------------------------------------------------------------------
# the table


def _compare(ours, theirs, base, names) -> dict:
    d = torch.cat([(ours[n].float() - theirs[n].float()).reshape(-1) for n in names])
    move = torch.cat([(ours[n].float() - base[n].float()).reshape(-1) for n in names])
    return {"n_elements": int(d.numel()), "max_abs_diff": float(d.abs().max()),
            "frac_differ": float((d.abs() > TOLERANCE).float().mean()),
            "rel_diff": float(d.norm() / move.norm()) if float(move.norm()) > 0 else float("nan")}


def comparisons(size: str, k: int, seed: int = 0, density: float = 0.2, p: float = 0.2,
                c: float = 0.8) -> pd.DataFrame:
    """Every pairing of one of our merges with a reference call on the same drawn experts
    (`draw_experts(size, k, seed)`), in the schema COLUMNS. `matched` says whether the reference
    call is the one that should reproduce ours (then max_abs_diff must be float rounding)."""
    from scalinglaws.merge import merge
    base_model, base, experts = draw_experts(size, k, seed)
    names = [n for n, _ in base_model.named_parameters()]
    rate = 1.0 - density
    rows = []

    def row(comparison, method, ours_opts, reference, call, matched, theirs, note=""):
        ours = merge(base, experts, method, seed=seed, **ours_opts)
        rows.append({"comparison": comparison, "method": method,
                     "ours": ", ".join(f"{a}={b}" for a, b in ours_opts.items()) or "(defaults)",
                     "reference": reference, "reference_call": call, "matched": matched,
                     **_compare(ours, theirs, base, names), "note": note})

    # Average
    row("average", "average", {}, PAPER_CODE, "average_merging", True,
        paper_merge(base_model, experts, "average_merging"))
    row("average", "average", {}, MERGEKIT, "linear, weight 1, normalize", True,
        mergekit_merge(base, experts, names, "linear", {"weight": 1.0}, with_base=False))
    bf16 = paper_merge(copy.deepcopy(base_model).to(torch.bfloat16),
                       [{n: t.to(torch.bfloat16) for n, t in e.items()} for e in experts], "average_merging")
    row("average in bfloat16", "average", {}, PAPER_CODE, "average_merging on bfloat16 models", False, bf16,
        "its main_merging.py loads every model in bfloat16 and merges in that dtype; we merge in float32")
    # Task Arithmetic
    row("task arithmetic, c/k", "task_arithmetic", {"lam": c}, PAPER_CODE,
        f"task_arithmetic, scaling_coefficient = c/k = {c / k:g}", True,
        paper_merge(base_model, experts, "task_arithmetic", scaling_coefficient=c / k))
    row("task arithmetic, c as the sum's coefficient", "task_arithmetic", {"lam": c}, PAPER_CODE,
        f"task_arithmetic, scaling_coefficient = c = {c:g}", False,
        paper_merge(base_model, experts, "task_arithmetic", scaling_coefficient=c),
        "its theta0 + lambda * sum v: lambda = c is k times our step")
    row("task arithmetic, c/k", "task_arithmetic", {"lam": c}, MERGEKIT,
        f"task_arithmetic, weight 1, normalize: true, lambda {c:g}", True,
        mergekit_merge(base, experts, names, "task_arithmetic", {"weight": 1.0, "normalize": True, "lambda": c}))
    # TIES, per tensor and per model, both trim counts
    ties_paper = paper_merge(base_model, experts, "ties_merging", param_value_mask_rate=rate)
    ties_mk = mergekit_merge(base, experts, names, "ties", {"weight": 1.0, "density": density, "lambda": 1.0})
    ties_global = paper_merge(base_model, experts, "ties_merging_dare", param_value_mask_rate=rate)
    for count, tag in (("mergekit", "trim count ours (= mergekit)"), ("merging_eval", "trim count of the paper's code")):
        opts = {"density": density, "trim_scope": "tensor", "trim_count": count}
        row(f"TIES per tensor, {tag}", "ties", opts, PAPER_CODE,
            f"ties_merging, param_value_mask_rate {rate:g}", count == "merging_eval", ties_paper,
            "" if count == "merging_eval" else "it keeps |v| >= the int(0.8 n)-th smallest: 1-2 more entries per tensor")
        row(f"TIES per tensor, {tag}", "ties", opts, MERGEKIT,
            f"ties, density {density:g}, weight 1, lambda 1", count == "mergekit", ties_mk,
            "" if count == "mergekit" else "mergekit keeps exactly int(density n) entries per tensor")
        opts = {"density": density, "trim_scope": "model", "trim_count": count}
        row(f"TIES per model, {tag}", "ties", opts, PAPER_CODE,
            f"ties_merging_dare, param_value_mask_rate {rate:g}", count == "merging_eval", ties_global,
            "global trim over the whole task vector (its flattened variant)")
    # DARE with the same masks
    masks = keep_masks(base, experts, names, p, seed)
    drop = [~masks[(i, n)] for i in range(k) for n in names]  # its mask marks the dropped entries
    with _fixed_bernoulli(drop):
        dare_paper = paper_merge(base_model, experts, "mask_merging", weight_mask_rates=[p] * k,
                                 use_weight_rescale=True, mask_strategy="random",
                                 mask_apply_method="average_merging")
    row("DARE, same masks", "dare", {"p": p, "rescale": "inverse"}, PAPER_CODE,
        f"mask_merging, random, weight_mask_rates {p:g}, rescale, average_merging", True, dare_paper)
    keep = [masks[(i, n)] for n in names for i in range(k)]  # mergekit: tensor by tensor
    with _fixed_bernoulli(keep):
        dare_mk = mergekit_merge(base, experts, names, "dare_linear",
                                 {"weight": 1.0, "density": 1 - p, "normalize": True, "rescale": True})
    row("DARE, same masks", "dare", {"p": p, "rescale": "inverse"}, MERGEKIT,
        f"dare_linear, density {1 - p:g}, rescale: true, normalize", False, dare_mk,
        "mergekit rescales each tensor to its L1 norm, not each survivor by 1/(1-p)")
    row("DARE with mergekit's L1 rescale, same masks", "dare", {"p": p, "rescale": "l1"}, MERGEKIT,
        f"dare_linear, density {1 - p:g}, rescale: true, normalize", True, dare_mk)
    return pd.DataFrame(rows, columns=COLUMNS)


def conventions_table(profile: str) -> pd.DataFrame:
    """`comparisons` at `profile`: the smallest base size of its ladder, k = the size of its
    largest pool, the study's seed, density 0.2, p = 0.2, c = 0.8 (the study's TIES, DARE and TA)."""
    from scalinglaws import models as Mo
    from scalinglaws.studies.merging.study import PROFILES
    from scalinglaws.core.validation import check_choice
    check_choice("profile", profile, PROFILES)
    params = PROFILES[profile]
    k = max(len(v) for v in params["pools"].values())
    df = comparisons(Mo.ladder(profile)[0], k, params["seed"])
    df.insert(0, "size", Mo.ladder(profile)[0])
    df.insert(1, "k", k)
    return df


def derive(profile: str, root=None):
    """Compute `conventions_table(profile)`, write it into the merging store of `profile` (a
    complete run must be there) and record it in provenance.json under `derived.conventions`."""
    import datetime as dt

    from scalinglaws.core.results import ResultStore, git_commit
    from scalinglaws.core.validation import check_choice
    from scalinglaws.studies.merging.study import PROFILES, STUDY
    check_choice("profile", profile, PROFILES)
    store = ResultStore(STUDY, profile, root)
    prov = store.provenance()
    if not prov:
        raise ParameterError(f"no complete run of {STUDY!r} at profile {profile!r} under {store.dir} "
                             f"(no provenance.json); run `make reproduce STUDY={STUDY} PROFILE={profile}`")
    df = conventions_table(profile)
    store.write("conventions", df)
    prov.setdefault("derived", {})["conventions"] = {
        "commit": git_commit(), "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "from": [], "references": [PAPER_CODE, MERGEKIT],
        "command": f"python -m scalinglaws conventions merging --profile {profile}"}
    store.write_provenance(prov)
    return store


# ---------------------------------------------------------------------------------------------
# for the chapter

def side_by_side(conv: pd.DataFrame) -> pd.DataFrame:
    """One row per comparison of the stored `conventions` table: our merge, the merging paper's
    code call and mergekit call beside it, each with its measured max |difference| and fraction of
    differing elements (empty where that reference was not called)."""
    out = []
    for comparison, g in conv.groupby("comparison", sort=False):
        row = {"comparison": comparison, "ours": f"{g['method'].iloc[0]}: {g['ours'].iloc[0]}"}
        for ref, tag in ((PAPER_CODE, "paper's code"), (MERGEKIT, "mergekit")):
            r = g[g["reference"] == ref]
            if len(r) == 0:
                row.update({tag: "", f"{tag} max |diff|": float("nan"), f"{tag} % differ": float("nan")})
                continue
            rows = r.iloc[0]
            row.update({tag: rows["reference_call"], f"{tag} max |diff|": rows["max_abs_diff"],
                        f"{tag} % differ": 100 * rows["frac_differ"]})
        out.append(row)
    return pd.DataFrame(out).set_index("comparison")


def headline(conv: pd.DataFrame) -> dict:
    """The numbers the chapter states, from the stored `conventions` table: the largest difference
    of a matched pair, and the size of each unmatched convention (max |diff|, % of elements
    differing, difference relative to the merge's displacement from the base)."""
    def pick(comparison, reference):
        r = conv[(conv["comparison"] == comparison) & (conv["reference"] == reference)]
        if len(r) != 1:
            raise ValueError(f"conventions table has {len(r)} rows for {comparison!r} vs {reference!r}")
        return r.iloc[0]

    ties = pick("TIES per tensor, trim count ours (= mergekit)", PAPER_CODE)
    ties_model = pick("TIES per model, trim count ours (= mergekit)", PAPER_CODE)
    ties_paper = pick("TIES per tensor, trim count of the paper's code", PAPER_CODE)
    bf16 = pick("average in bfloat16", PAPER_CODE)
    return {"size": conv["size"].iloc[0], "k": int(conv["k"].iloc[0]),
            "matched_max": float(conv.loc[conv["matched"], "max_abs_diff"].max()),
            "ta_sum_rel": float(pick("task arithmetic, c as the sum's coefficient", PAPER_CODE)["rel_diff"]),
            "ties_pct": 100 * float(ties["frac_differ"]), "ties_max": float(ties["max_abs_diff"]),
            "ties_rel": float(ties["rel_diff"]),
            "ties_model_pct": 100 * float(ties_model["frac_differ"]),
            "ties_model_max": float(ties_model["max_abs_diff"]),
            "ties_paper_max": float(ties_paper["max_abs_diff"]),
            "bf16_max": float(bf16["max_abs_diff"]), "bf16_rel": float(bf16["rel_diff"]),
            "dare_mk_rel": float(pick("DARE, same masks", MERGEKIT)["rel_diff"])}


# What the merging paper's code and scripts use, read in its repository (maxuan1798/Merging-EVAL,
# the repository of the PyPI package `merging-eval` 0.1.4; files named in `source`) beside ours.
# Typed from reading, like `literature.PAPER`; the measured side is the `conventions` table.
PROTOCOL: list[dict] = [
    {"setting": "Task Arithmetic coefficient",
     "paper": "theta0 + lambda * sum v (task_vector.py); README runs lambda = 0.2 with 4 experts "
              "(c = 0.8) and stores a 9-expert merge under sc0.1 (c = 0.9); paper text c = 0.8 as c/k",
     "ours": "theta0 + lam * mean v, lam = 0.8", "match": "yes (lam = lambda * k)",
     "source": "src/merge/task_vector.py, README.md"},
    {"setting": "TIES trim",
     "paper": "ties_merging: per tensor, param_value_mask_rate 0.8 (default and examples), keeps |v| >= "
              "the int(0.8 n)-th smallest; ties_merging_dare: the same over the whole task vector",
     "ours": "ties_l0.5/ties_l1: density 0.2 per model, int(0.2 n) kept; ties_*_paper: its per-tensor count",
     "match": "count and scope differ in ties_l*; ties_*_paper match ties_merging",
     "source": "src/merge/merging_methods.py"},
    {"setting": "TIES lambda",
     "paper": "scaling_coefficient (default 1.0, example 0.3); paper text lambda in {0.5, 1}",
     "ours": "0.5 and 1", "match": "yes (paper text)", "source": "src/merge/main_merging.py, example_model_merging.py"},
    {"setting": "TIES sign election",
     "paper": "sign of the sum of trimmed deltas, 0 -> +1 (ties_merging) or -> the majority sign "
              "(ties_merging_dare); disjoint mean over agreeing experts",
     "ours": "the same, 0 -> +1", "match": "yes", "source": "src/merge/merging_methods.py"},
    {"setting": "DARE",
     "paper": "mask_merging, mask_strategy random, weight_mask_rates per expert (API default 0.5), "
              "survivors / (1 - p), then average_merging (default mask_apply_method); paper table p = 0.2",
     "ours": "dare: p = 0.2, survivors / (1 - p), mean, lam = 1", "match": "yes",
     "source": "src/merge/mask_weights_utils.py, api/app.py"},
    {"setting": "Excluded parameters",
     "paper": "none: exclude_param_names_regex defaults to [] and merge.sh passes none; every named "
              "parameter (embeddings and norms included, a tied embedding once) is merged",
     "ours": "every floating tensor, a tied embedding once", "match": "yes",
     "source": "src/merge/main_merging.py, scripts/merge.sh"},
    {"setting": "Precision",
     "paper": "models loaded and merged in bfloat16, saved in bfloat16",
     "ours": "float32", "match": "no (measured: 'average in bfloat16')", "source": "src/merge/main_merging.py"},
    {"setting": "Random masks",
     "paper": "torch.bernoulli on the global RNG, expert after expert",
     "ours": "one generator per (seed, tensor, expert)", "match": "same distribution, other draws",
     "source": "src/merge/mask_weights_utils.py"},
]
