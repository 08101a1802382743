"""The DELLA study (Deep, Bhardwaj, Poria 2024): the paper's Table 1 shape on our experts.

Experts. Three roles as in the paper: "lm", "math" and "code", each one domain of
`data.ALL_DOMAINS` (default speeches, algebra, code), fine-tuned from the testbed's base model of
every size with the merging study's recipe (`merging.study.expert_checkpoints`: this study never
trains a model of its own). Groups: the pairs and the triple, lm+math, lm+code, math+code,
lm+math+code (`combos`).

Merges (`scalinglaws.merge.merge`, in memory), per size and group:

    grid       DELLA (MAGPRUNE + [Elect] + Fuse) for every drop rate p in `p_grid`, window eps in
               `eps_grid` (eps = 0 is DARE at the same p, computed as the registry's dare /
               dare_ties, whose masks are exactly those of MAGPRUNE with eps = 0), scale lam in
               `lam_grid`, with and without Elect (`elect`); rescale 1/(1 - p_i), row-wise ranking.
               (p, eps) pairs whose window [p - eps/2, p + eps/2] leaves (0, 1) are skipped.
    baselines  Task Arithmetic (theta0 + lam mean_i v_i) for every lam; TIES (density 1 - p, per
               tensor as mergekit, elect, disjoint mean) for every p and lam.
    ablations  at each p of `p_grid`, eps = `ablation_eps` (or the largest grid eps valid at that
               p), lam = `ablation_lam`, Elect = `ablation_elect`: rescale "none" and "l1" (mergekit's
               L1-norm match) instead of 1/(1 - p_i); rank "random" (the same probabilities in a
               random order) and "tensor" (ranked over the whole tensor) instead of row-wise; and
               the reference DELLA and the DARE of the same p with the extra mask seeds
               `noise_seeds` (the spread that mask randomness alone causes).
    references the base model and every expert, on the same windows.

eps is the paper's *full* window width: drop probabilities run from p + eps/2 (smallest |delta|
of a row) to p - eps/2 (largest). The DELLA repository uses the same convention (window_size,
halved into `epsilon` before `rank_magnitude`); mergekit's `epsilon` is the half-width (see the
docstring of `scalinglaws.merge`, where both are cited).

Evaluation. Every merged model on each member expert's own domain: `tokens_per_domain` tokens of
uniform windows of `seq_len` + 1 tokens over the domain's test split (`eval_spec`; a domain's
windows are the same in every group and size), merged and scored by `evaluation.evaluate_merges`
(stacked backend, `eval_chunk` merged states per pass). A group's score is the mean CE
(nats/token) over its members' domains, the analogue of the paper's average of the members'
metrics. Noise: per (model, domain) standard errors and 95 % intervals from
`evaluation.bootstrap_domain_ce`; and `bootstrap` paired resamples of the windows (the same
resample of a domain for every model, size and group) giving draws of every group score, stored
in `noise`, from which every interval of `best` and `claims` is computed.

Units (resumable, `Sweep("della", profile)`): `references` (one size: base and experts on all
domains) and `merge_eval` (one size, group and chunk of `chunk_size` settings), each returning the
per-window NLL sums. Tables (`data/results/della/<profile>/`): grid, ablations, best, noise,
split (every setting's score on a seeded selection half and scoring half of the windows, so tuned
comparisons pick on one half and compare on the other: `split_scores`), tuned (each method's
settings tried, its pick on the selection half and its held-out score: `analysis.tuned_table`),
claims; provenance last.
"""
from __future__ import annotations

import math
import sys
import time

import numpy as np
import pandas as pd

from scalinglaws import data as D
from scalinglaws import evaluation as EV
from scalinglaws import models as Mo
from scalinglaws.core.results import ResultStore, provenance
from scalinglaws.core.sweep import Sweep, Unit
from scalinglaws.core.validation import ParameterError, check_float, check_int, check_subset
from scalinglaws.studies import exclusive_run, validate_run

STUDY = "della"
ROLES = ("lm", "math", "code")
RESCALE_VARIANTS = ("none", "l1")      # ablations against the papers' 1/(1 - p_i)
RANK_VARIANTS = ("random", "tensor")   # ablations against the paper's row-wise ranking
BASELINES = ("ta", "ties")

_COMMON = {
    "roles": {"lm": "speeches", "math": "algebra", "code": "code"},
    "combos": [["lm", "math"], ["lm", "code"], ["math", "code"], ["lm", "math", "code"]],
    "p_grid": [0.1, 0.3, 0.5, 0.7, 0.9], "eps_grid": [0.0, 0.1, 0.2], "lam_grid": [0.5, 1.0],
    "elect": [True, False], "baselines": list(BASELINES),
    "ablation_eps": 0.2, "ablation_lam": 1.0, "ablation_elect": True,
    "rescales": list(RESCALE_VARIANTS), "ranks": list(RANK_VARIANTS), "noise_seeds": [1, 2],
    "seed": 0, "window_seed": 0, "bootstrap": 400, "chunk_size": 64, "eval_chunk": 16,
}
PROFILES = {
    # 2 tiny sizes, 3 drop rates, one lam: 4 groups x ~40 merges per size, seconds.
    "smoke": {**_COMMON, "sizes": Mo.ladder("smoke"), "p_grid": [0.3, 0.5, 0.7], "lam_grid": [1.0],
              "tokens_per_domain": 512, "seq_len": 32, "bootstrap": 100, "noise_seeds": [1]},
    # two cpu sizes, the paper's full grid: 4 groups x 104 merges per size (52 DELLA/DARE, 2 TA,
    # 10 TIES, 40 ablations), 9 (model, domain) evaluations per setting across the groups.
    # Measured (1 thread, shared machine): merge 0.25 s (d64l4) / 0.70 s (d128l4) per model; stacked
    # evaluation ~5.4K / ~3.6K tokens/s. With 2048 tokens per domain: 416 x 0.25 + 416 x 0.70 s of
    # merging + 936 x 2048 x (1/5.4K + 1/3.6K) s of evaluation ~ 400 + 890 ~ 1,300 CPU-s, about
    # 11-15 min on 2 cores (experts given). 4096 tokens per domain: ~2,200 CPU-s.
    # 4096 tokens per domain (~2,200 CPU-s): the paired bootstrap SE of a group score is then well
    # under the differences between settings the chapter compares (measured: see the chapter's noise line)
    # (d64l4 and d128l4 until the cpu ladder retired d128l4: core.profiles)
    "cpu": {**_COMMON, "sizes": ["d64l4", "d96l4"], "tokens_per_domain": 4096, "seq_len": 128},
    # two gpu sizes, longer windows and more tokens per domain.
    "gpu": {**_COMMON, "sizes": ["d128l6", "d256l8"], "tokens_per_domain": 65536, "seq_len": 512,
            "bootstrap": 1000, "eval_chunk": 32},
}


# ---------------------------------------------------------------------------------------------
# validation


def _check_grid(name, values, lo, hi, *, closed_lo=False) -> list[float]:
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)) or not values:
        raise ParameterError(f"{name}={values!r} must be a non-empty list of numbers in "
                             f"{'[' if closed_lo else '('}{lo}, {hi})")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                or not ((lo <= v) if closed_lo else (lo < v)) or not v < hi:
            raise ParameterError(f"{name} has invalid value {v!r}; allowed: numbers in "
                                 f"{'[' if closed_lo else '('}{lo}, {hi})")
        out.append(float(v))
    if len(set(out)) != len(out):
        raise ParameterError(f"{name} has duplicates: {list(values)}")
    return sorted(out)


def _bool_list(name, values) -> list[bool]:
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)) or not values \
            or any(not isinstance(v, bool) for v in values) or len(set(values)) != len(values):
        raise ParameterError(f"{name}={values!r} must be a non-empty list of distinct booleans "
                             "(True: Drop-Elect-Fuse, False: Drop-Fuse)")
    return list(values)


def window_ok(p: float, eps: float) -> bool:
    """Whether DELLA's window [p - eps/2, p + eps/2] (eps the full width) lies inside (0, 1)."""
    return p - eps / 2 > 0 and p + eps / 2 < 1


def validate(params: dict) -> dict:
    params = dict(params)
    params["sizes"] = check_subset("sizes", params["sizes"], list(Mo.SIZES))
    roles = params["roles"]
    if not isinstance(roles, dict) or set(roles) != set(ROLES):
        raise ParameterError(f"roles={roles!r} must map each of {list(ROLES)} to a domain")
    for r in ROLES:
        if roles[r] not in D.ALL_DOMAINS:
            raise ParameterError(f"roles[{r!r}]={roles[r]!r} is not a domain; allowed: {list(D.ALL_DOMAINS)}")
    if len(set(roles.values())) != len(ROLES):
        raise ParameterError(f"roles={roles!r} must name three different domains")
    params["roles"] = {r: roles[r] for r in ROLES}
    combos = params["combos"]
    if isinstance(combos, (str, bytes)) or not isinstance(combos, (list, tuple)) or not combos:
        raise ParameterError(f"combos={combos!r} must be a non-empty list of role lists, e.g. [['lm', 'math']]")
    seen = []
    for c in combos:
        if isinstance(c, (str, bytes)) or not isinstance(c, (list, tuple)) or len(c) < 2 \
                or any(r not in ROLES for r in c) or len(set(c)) != len(c):
            raise ParameterError(f"combos has invalid group {c!r}; allowed: lists of >= 2 distinct roles from {list(ROLES)}")
        key = tuple(r for r in ROLES if r in c)
        if key in seen:
            raise ParameterError(f"combos has duplicates: {combos!r}")
        seen.append(key)
    params["combos"] = [list(k) for k in seen]
    params["p_grid"] = _check_grid("p_grid", params["p_grid"], 0.0, 1.0)
    params["eps_grid"] = _check_grid("eps_grid", params["eps_grid"], 0.0, 1.0, closed_lo=True)
    params["lam_grid"] = _check_grid("lam_grid", params["lam_grid"], 0.0, 10.0)
    params["elect"] = _bool_list("elect", params["elect"])
    params["baselines"] = list(params["baselines"]) if isinstance(params["baselines"], (list, tuple)) \
        else params["baselines"]
    if params["baselines"] != []:
        params["baselines"] = check_subset("baselines", params["baselines"], list(BASELINES))
    check_float("ablation_eps", params["ablation_eps"], 0.0, 1.0, open_interval=True)
    check_float("ablation_lam", params["ablation_lam"], 0.0, 10.0, open_interval=True)
    if not isinstance(params["ablation_elect"], bool):
        raise ParameterError(f"ablation_elect={params['ablation_elect']!r} must be True or False")
    for name, allowed in (("rescales", RESCALE_VARIANTS), ("ranks", RANK_VARIANTS)):
        v = params[name]
        params[name] = [] if (isinstance(v, (list, tuple)) and not v) else check_subset(name, v, list(allowed))
    ns = params["noise_seeds"]
    if isinstance(ns, (str, bytes)) or not isinstance(ns, (list, tuple)):
        raise ParameterError(f"noise_seeds={ns!r} must be a list of integers >= 0 (may be empty)")
    for s in ns:
        check_int("noise_seeds", s, minimum=0)
    check_int("seed", params["seed"], minimum=0)
    if params["seed"] in ns or len(set(ns)) != len(ns):
        raise ParameterError(f"noise_seeds={list(ns)} must be distinct and differ from seed={params['seed']}")
    check_int("window_seed", params["window_seed"], minimum=0)
    check_int("tokens_per_domain", params["tokens_per_domain"], minimum=1)
    check_int("seq_len", params["seq_len"], minimum=2)
    ctx = min(Mo.model_config(s).max_position_embeddings for s in params["sizes"])
    if params["seq_len"] > ctx:  # a window feeds seq_len tokens (its last is a target only)
        raise ParameterError(f"seq_len={params['seq_len']} must be <= {ctx} (the smallest context of sizes)")
    check_int("bootstrap", params["bootstrap"], minimum=2)
    check_int("chunk_size", params["chunk_size"], minimum=1)
    check_int("eval_chunk", params["eval_chunk"], minimum=1)
    if not any(window_ok(p, e) for p in params["p_grid"] for e in params["eps_grid"]):
        raise ParameterError("p_grid x eps_grid has no valid DELLA window (p +- eps/2 inside (0, 1))")
    return params


def data_files(params: dict) -> list[tuple[str, str]]:
    """The testbed's pretraining mixture (base models trained if missing), each role's fine-tuning
    split (experts trained if missing) and test split (evaluation)."""
    from scalinglaws.studies import testbed
    base = testbed.base_pretrain_files()
    doms = list(params["roles"].values())
    return base + [(d, s) for s in ("finetune", "test") for d in doms]


# ---------------------------------------------------------------------------------------------
# settings: one merged model each


def group_name(combo) -> str:
    return "+".join(combo)


def setting_key(s: dict) -> str:
    m = s["method"]
    if m == "ta":
        return f"ta|lam={s['lam']:g}"
    if m == "ties":
        return f"ties|p={s['p']:g}|lam={s['lam']:g}"
    return (f"{m}|p={s['p']:g}|eps={s['eps']:g}|lam={s['lam']:g}|elect={int(s['elect'])}|"
            f"rescale={s['rescale']}|rank={s['rank']}|seed={s['seed']}")


def _della(p, eps, lam, elect, seed, rescale="inverse", rank="row") -> dict:
    return {"method": "della" if eps > 0 else "dare", "p": p, "eps": eps, "lam": lam, "elect": elect,
            "rescale": rescale, "rank": rank if eps > 0 else "row", "seed": seed}


def registry_call(s: dict) -> tuple[str, dict, int]:
    """(registry method, options, seed) of `scalinglaws.merge.merge` for a setting."""
    m = s["method"]
    if m == "ta":
        return "task_arithmetic", {"lam": s["lam"]}, 0
    if m == "ties":
        return "ties", {"lam": s["lam"], "density": round(1 - s["p"], 12), "trim_scope": "tensor"}, 0
    if m == "dare":
        return ("dare_ties" if s["elect"] else "dare"), {"lam": s["lam"], "p": s["p"], "rescale": s["rescale"]}, s["seed"]
    return (("della" if s["elect"] else "della_linear"),
            {"lam": s["lam"], "p": s["p"], "eps": s["eps"], "rescale": s["rescale"], "rank": s["rank"]}, s["seed"])


def ablation_eps(params: dict, p: float) -> float | None:
    """The ablations' window at drop rate p: `ablation_eps` if valid there, else the largest valid
    grid eps > 0 below it (None: no valid window)."""
    if window_ok(p, params["ablation_eps"]):
        return params["ablation_eps"]
    ok = [e for e in params["eps_grid"] if 0 < e < params["ablation_eps"] and window_ok(p, e)]
    return max(ok) if ok else None


def plan(params: dict) -> tuple[list[dict], list[dict]]:
    """(grid settings incl. baselines, ablation settings with their `variant`), each a dict with a
    `key`. Every group merges the same list."""
    seed = params["seed"]
    grid = [_della(p, e, lam, el, seed) for p in params["p_grid"] for e in params["eps_grid"]
            if window_ok(p, e) or e == 0 for lam in params["lam_grid"] for el in params["elect"]]
    if "ta" in params["baselines"]:
        grid += [{"method": "ta", "lam": lam} for lam in params["lam_grid"]]
    if "ties" in params["baselines"]:
        grid += [{"method": "ties", "p": p, "lam": lam, "elect": True} for p in params["p_grid"]
                 for lam in params["lam_grid"]]
    lam, el = params["ablation_lam"], params["ablation_elect"]
    abl = []
    for p in params["p_grid"]:
        e = ablation_eps(params, p)
        if e is None:
            continue
        abl.append({**_della(p, e, lam, el, seed), "variant": "reference"})
        abl += [{**_della(p, e, lam, el, seed, rescale=r), "variant": f"rescale={r}"} for r in params["rescales"]]
        abl += [{**_della(p, e, lam, el, seed, rank=r), "variant": f"rank={r}"} for r in params["ranks"]]
        abl.append({**_della(p, 0.0, lam, el, seed), "variant": "dare"})
        abl += [{**_della(p, 0.0, lam, el, s), "variant": f"dare seed={s}"} for s in params["noise_seeds"]]
        abl += [{**_della(p, e, lam, el, s), "variant": f"seed={s}"} for s in params["noise_seeds"]]
    for s in grid + abl:
        s["key"] = setting_key(s)
    return grid, abl


# ---------------------------------------------------------------------------------------------
# units


def eval_spec(domains, params_or_cfg: dict) -> EV.EvalSpec:
    """Uniform windows of the domains' test splits, stacked evaluator, `eval_chunk` models per pass."""
    return EV.EvalSpec(list(domains), params_or_cfg["tokens_per_domain"], params_or_cfg["seq_len"],
                       params_or_cfg["window_seed"], batch=params_or_cfg.get("eval_chunk"))


def _windows(domains, params_or_cfg: dict):
    return EV.spec_windows(eval_spec(domains, params_or_cfg))


def _ckpt_key(path) -> str:
    return str(path.name).rsplit("-", 1)[1]


def _load(config: dict):
    from scalinglaws.training import default_device
    dev = default_device()
    base = Mo.load_unit_checkpoint(config["base"], device=dev)
    experts = [Mo.load_unit_checkpoint(k, device=dev).state_dict() for k in config["experts"]]
    return base, experts


def _nll_rows(res: EV.Evaluation, config, labels) -> list[dict]:
    rows = []
    for i, label in enumerate(labels):
        for d in config["domains"]:
            rows.append({"setting": label, "domain": d, "nll": [round(float(x), 5) for x in res.window_sums(i, d)]})
    return rows


def _references(config: dict) -> list[dict]:
    """The base model and every expert on every domain's windows: per-window NLL sums."""
    base, experts = _load(config)
    states = [base.state_dict()] + experts
    labels = ["base"] + [f"expert:{r}" for r in config["roles"]]
    return _nll_rows(EV.evaluate(base, eval_spec(config["domains"], config), states=states), config, labels)


def _merge_eval(config: dict) -> list[dict]:
    """Every setting of the chunk merged (in memory) and evaluated on the group's domains."""
    base, experts = _load(config)
    merges = []
    for s in config["settings"]:
        method, opts, seed = registry_call(s)
        merges.append(EV.Merge(tuple(range(len(experts))), method, seed, opts))
    res = EV.evaluate_merges(base, experts, merges, eval_spec(config["domains"], config))
    return _nll_rows(res, config, [s["key"] for s in config["settings"]])


# ---------------------------------------------------------------------------------------------
# tables from the unit records


def _draw_indices(domain: str, n: int, B: int, seed: int) -> np.ndarray:
    """(B, n) window indices of the paired bootstrap of one domain: the same for every model,
    group and size (seeded by domain), so differences between any two models are paired."""
    return EV.domain_rng(seed, domain, purpose="della-noise").integers(0, n, size=(B, n))


SETTING_COLUMNS = ["method", "p", "eps", "lam", "elect", "rescale", "rank", "seed"]
GRID_COLUMNS = ["size", "N", "group", "setting", *SETTING_COLUMNS, "eval_domain", "role", "ce", "ce_se",
                "ce_lo", "ce_hi", "bpb", "tokens"]


def _meta(s: dict) -> dict:
    return {c: s.get(c, np.nan if c in ("p", "eps", "seed") else ("" if c in ("rescale", "rank") else False))
            for c in SETTING_COLUMNS}


SPLIT_HALVES = ("select", "score")


def split_scores(nll: np.ndarray, dom: np.ndarray, doms, T: int, seed: int) -> np.ndarray:
    """(models, 2) group scores on two disjoint halves of every domain's windows: 'select' (where
    a tuned comparison picks each method's best setting) and 'score' (where the picked settings are
    compared), so a method tried in more settings gains nothing from fitting the windows' noise.
    The split is seeded per domain (`evaluation.domain_rng`), the same for every model."""
    per = []
    for j, d in enumerate(doms):
        sel = np.flatnonzero(dom == j)
        perm = EV.domain_rng(seed, d, purpose="della-split").permutation(len(sel))
        halves = (sel[perm[: len(sel) // 2]], sel[perm[len(sel) // 2:]])
        per.append(np.stack([nll[:, h].sum(-1) / (len(h) * T) for h in halves], axis=1))
    return np.mean(per, axis=0)


def assemble(size, N, group, roles, records, settings, params, windows):
    """(domain rows, {setting: (B,) group-score draws, ("split", setting): (2,) scores on the
    selection and scoring halves (`split_scores`)}) of one size and group.

    records: {(setting, domain): nll array}; settings: {key: metadata dict} (base, expert:<role>
    and own_expert included). windows: (w, dom) of the group's domains."""
    from scalinglaws.evaluation import bootstrap_domain_ce
    w, dom = windows
    doms = [params["roles"][r] for r in roles]
    keys = list(settings)
    T = w.shape[1] - 1
    rows, draws = [], {}
    nll = np.stack([np.concatenate([records[(k, d)] for d in doms]) for k in keys])
    boot = bootstrap_domain_ce(nll, w, dom, doms, n_boot=params["bootstrap"], seed=params["seed"])
    B = params["bootstrap"]
    per_domain = []
    for j, d in enumerate(doms):
        sel = np.flatnonzero(dom == j)
        idx = _draw_indices(d, len(sel), B, params["seed"])
        per_domain.append(nll[:, sel][:, idx].sum(-1) / (len(sel) * T))      # (models, B)
    score_draws = np.mean(per_domain, axis=0)
    split = split_scores(nll, dom, doms, T, params["seed"])
    for i, k in enumerate(keys):
        draws[k] = score_draws[i]
        draws[("split", k)] = split[i]  # its scores on the selection and scoring halves
        for j, d in enumerate(doms):
            r = boot.iloc[i * len(doms) + j]
            assert r["domain"] == d
            role = next(x for x in roles if params["roles"][x] == d)
            rows.append({"size": size, "N": N, "group": group, "setting": k, **_meta(settings[k]),
                         "eval_domain": d, "role": role, "ce": r["ce"], "ce_se": r["ce_se"],
                         "ce_lo": r["ce_lo"], "ce_hi": r["ce_hi"], "bpb": r["bpb"], "tokens": r["tokens"]})
    return rows, draws


# ---------------------------------------------------------------------------------------------
# the experts

EXPERTS_FROM = {
    "stored": "the stored testbed's chosen base (lr_sweep) and the stored merging recipe (provenance 'recipe'): "
              "only the base unit and the experts' finetune units, trained if missing",
    "trained": "merging.study.expert_checkpoints: the testbed's rate sweep and the merging pilot, trained if missing"}


def stored_experts(size: str, domains: list[str], profile: str):
    """(base checkpoint, {domain: expert checkpoint}) from what the stored results already chose:
    the testbed's chosen base of `size` and the merging study's stored recipe, the very units (same
    keys) `merging.study.expert_checkpoints` would return on those stored results, but without
    retraining the testbed's whole rate sweep and the merging pilot to re-derive their choices (the
    training-seed replicates take the same path). None when the stored results cannot say (no
    testbed lr_sweep or merging recipe at `profile`, or a testbed whose configuration no longer
    gives the stored base's key): the caller then trains everything."""
    from scalinglaws.core.results import ResultStore
    from scalinglaws.core.sweep import find_checkpoint
    from scalinglaws.studies.merging import units as MU
    from scalinglaws.studies.merging.seeds import finetune_config, stored_recipe
    from scalinglaws.studies.replicates import stored_params
    from scalinglaws.studies.testbed.seeds import ensure_base
    tb = ResultStore("testbed", profile)
    if not tb.has("lr_sweep"):
        return None
    t = tb.read("lr_sweep")
    chosen = t[t["chosen"] & (t["size"] == size)]
    if len(chosen) != 1:
        return None
    try:
        mparams, recipe = stored_params("merging", profile), stored_recipe(profile)
        key = ensure_base(size, profile, str(chosen["unit"].item()))
    except ParameterError:
        return None
    units = {d: Unit("finetune", finetune_config(size, d, key, mparams, recipe, mparams["seed"])) for d in domains}
    Sweep("merging", profile).run(list(units.values()), MU.finetune, desc="finetune", checkpoints=True)
    return find_checkpoint(key), {d: find_checkpoint(u.key) for d, u in units.items()}


# ---------------------------------------------------------------------------------------------
# the study


@exclusive_run
def run(profile: str, backend: str = "local", **overrides) -> ResultStore:
    from scalinglaws.studies.merging.study import expert_checkpoints
    from scalinglaws.studies.della import analysis as A
    from scalinglaws.studies.della.claims import claims
    params = validate_run(sys.modules[__name__], profile, backend, overrides)
    t0 = time.perf_counter()
    sweep = Sweep(STUDY, profile)
    roles = params["roles"]
    all_doms = [roles[r] for r in ROLES]
    grid, abl = plan(params)
    unique = {}
    for s in grid + abl:
        unique.setdefault(s["key"], {k: v for k, v in s.items() if k != "variant"})
    ev = {k: params[k] for k in ("tokens_per_domain", "seq_len", "window_seed", "eval_chunk")}

    ckpts, N, experts_from = {}, {}, {}
    for size in params["sizes"]:
        found = stored_experts(size, all_doms, profile)
        experts_from[size] = "stored" if found else "trained"
        base, experts = found or expert_checkpoints(size, all_doms, profile)
        ckpts[size] = (_ckpt_key(base), {r: _ckpt_key(experts[roles[r]]) for r in ROLES})
        N[size] = Mo.count_params(Mo.model_config(size))["non_embedding"]
    t_experts = time.perf_counter() - t0

    ref_units = [Unit("references", {"size": s, "base": ckpts[s][0], "roles": list(ROLES),
                                     "experts": [ckpts[s][1][r] for r in ROLES], "domains": all_doms,
                                     "data": D.checksums(all_doms, "test"), **ev}) for s in params["sizes"]]
    rrecs = sweep.run(ref_units, _references, backend=backend, desc="references")
    m_units = []
    for s in params["sizes"]:
        for combo in params["combos"]:
            settings = list(unique.values())
            for i in range(0, len(settings), params["chunk_size"]):
                m_units.append(Unit("merge_eval", {
                    "size": s, "group": group_name(combo), "base": ckpts[s][0],
                    "experts": [ckpts[s][1][r] for r in combo], "domains": [roles[r] for r in combo],
                    "data": D.checksums([roles[r] for r in combo], "test"),
                    "settings": settings[i:i + params["chunk_size"]], **ev}))
    mrecs = sweep.run(m_units, _merge_eval, backend=backend, desc="merge_eval")

    # per (size, group): every model's per-window NLL on the group's domains
    records: dict = {}
    for u, rec in zip(ref_units, rrecs):
        for r in rec["rows"]:
            records.setdefault(u.config["size"], {})[("ref", r["setting"], r["domain"])] = np.asarray(r["nll"])
    for u, rec in zip(m_units, mrecs):
        for r in rec["rows"]:
            records[u.config["size"]][(u.config["group"], r["setting"], r["domain"])] = np.asarray(r["nll"])
    rows, noise, split = [], [], []
    win_cache = {}
    for s in params["sizes"]:
        R = records[s]
        for combo in params["combos"]:
            g = group_name(combo)
            doms = [roles[r] for r in combo]
            recs = {(k, d): R[(g, k, d)] for k in unique for d in doms}
            meta = dict(unique)
            recs.update({("base", d): R[("ref", "base", d)] for d in doms})
            meta["base"] = {"method": "base"}
            for r in combo:
                recs.update({(f"expert:{r}", d): R[("ref", f"expert:{r}", d)] for d in doms})
                meta[f"expert:{r}"] = {"method": f"expert:{r}"}
            recs.update({("own_expert", roles[r]): R[("ref", f"expert:{r}", roles[r])] for r in combo})
            meta["own_expert"] = {"method": "own_expert"}
            key = tuple(doms)
            if key not in win_cache:
                win_cache[key] = _windows(doms, params)
            rws, draws = assemble(s, N[s], g, combo, recs, meta, params, win_cache[key])
            rows += rws
            for k, v in draws.items():
                if isinstance(k, tuple):  # ("split", setting): its scores on the two halves
                    split += [{"size": s, "group": g, "setting": k[1], "half": h, "score": float(x)}
                              for h, x in zip(SPLIT_HALVES, v)]
                    continue
                noise.append(pd.DataFrame({"size": s, "group": g, "setting": k,
                                           "draw": np.arange(len(v)), "score": v.astype(np.float32)}))
    allrows = pd.DataFrame(rows, columns=GRID_COLUMNS)
    grid_keys = {x["key"] for x in grid} | {"base", "own_expert"} | {f"expert:{r}" for r in ROLES}
    grid_t = allrows[allrows["setting"].isin(grid_keys)].reset_index(drop=True)
    variants = pd.DataFrame([{"setting": x["key"], "variant": x["variant"]} for x in abl], columns=["setting", "variant"])
    abl_t = variants.merge(allrows, on="setting", how="left")
    abl_t = abl_t[["size", "N", "group", "variant"] + [c for c in GRID_COLUMNS if c not in ("size", "N", "group")]]
    abl_t = abl_t.sort_values(["size", "group", "p", "variant", "eval_domain"], kind="stable").reset_index(drop=True)
    noise_t = pd.concat(noise, ignore_index=True)
    tables = {"grid": grid_t, "ablations": abl_t, "noise": noise_t,
              "split": pd.DataFrame(split, columns=["size", "group", "setting", "half", "score"])}
    tables["best"] = A.best_table(tables)
    tables["tuned"] = A.tuned_table(tables)
    tables["claims"] = claims(tables, profile)

    store = ResultStore(STUDY, profile)
    for name, df in tables.items():
        store.write(name, df)
    walls = [r["wall_s"] for r in rrecs + mrecs]
    n_models = sum(len(u.config["settings"]) for u in m_units)
    merge_s = sum(r["wall_s"] for r in mrecs)
    store.write_run_provenance(provenance(
        params, time.perf_counter() - t0, profile=profile, backend=backend,
        unit_compute_s=round(sum(walls), 1), merged_models=n_models,
        merge_eval_s=round(merge_s, 1), merge_eval_s_per_model=round(merge_s / max(1, n_models), 4),
        eval_tokens_per_model=int(params["tokens_per_domain"]), experts_s=round(t_experts, 1),
        experts={s: {"base": ckpts[s][0], **ckpts[s][1]} for s in params["sizes"]},
        experts_from={s: EXPERTS_FROM[v] for s, v in experts_from.items()},
        testbed_bases={s: {"unit": ckpts[s][0]} for s in params["sizes"]}))
    return store
