"""Every study's `gpu` parts (issue 28) and the work each part does, for the cost model in `lease`.

A part is the study's gpu profile with overrides (`Part.overrides`): a subset of its grid (sizes, E
values) and, where the profile as configured cannot fit a lease, a smaller budget written down in
`Part.budget`. `work(study, params)` lists the units a run with those parameters trains, evaluates
and merges, as `lease.Work`, so the same function predicts a gpu part and a cpu run.

Routing uses the `parts`/`part` mechanism of branch `regime` (issue 27: `parts` = {name: {"sizes",
"experts"}} covering the grid once, `part` = one name, unit records committed under
`data/results/routing/<profile>/units/` with `unit_records="results"`); a part run with `part` set
records its units and writes no tables, and the last part (`tables`: no `part`) finds every unit
recorded and only analyses. Until that branch is on main, routing's parts are planned but not runnable.
"""
from __future__ import annotations

from scalinglaws.studies.lease import Part, Work

GPU_SIZES = ("d96l6", "d128l6", "d192l6", "d256l8", "d384l8", "d512l8")
N_DOMAINS_EVAL = 20  # the testbed's and routing's evaluation domains at gpu

# ----------------------------------------------------------------------------- routing redesign
# As configured: 84 models x 30M tokens = 2.5B tokens, ~80 min (GPU-NOTES). Per part one size (its
# dense model and E in {2..32} x 4 routers = 21 models); 8,388,608 tokens per model (about one epoch
# of the mixture) in 512 steps of 16,384 tokens, so learned routers get 4x the updates of the configured
# 65,536-token batch (458 steps of 65,536 at 30M): the step check at cpu found them short of updates.
ROUTING_TOKENS = 8_388_608
ROUTING_BATCH = 16_384
ROUTING_SIZES = GPU_SIZES[:4]
ROUTING_PARTS = {s: {"sizes": [s], "experts": [1, 2, 4, 8, 16, 32]} for s in ROUTING_SIZES}


def _has_parts_option() -> bool:
    """Whether the routing study takes regime's `parts`/`part` (branch regime, issue 27)."""
    from scalinglaws.studies.routing import PROFILES
    return "parts" in PROFILES["gpu"]


def _routing_parts() -> list[Part]:
    """With regime's parts: one part per size recording its units, then `tables`. Without them (until
    that branch is on main) each size is a part of its own with its own tables, like the other studies."""
    common = {"tokens": ROUTING_TOKENS, "batch_tokens": ROUTING_BATCH}
    budget = "{}: dense + E in 2..32 x 4 routers = 21 models x 8.4M tokens, 512 steps of 16,384"
    if not _has_parts_option():
        return [Part(s, {**common, "sizes": [s]}, budget.format(s)) for s in ROUTING_SIZES]
    over = {**common, "parts": ROUTING_PARTS, "unit_records": "results"}
    return [Part(s, {**over, "part": s}, budget.format(s)) for s in ROUTING_SIZES] + \
        [Part("tables", {**over, "part": None}, "every unit recorded by the parts above: analysis only")]


PARTS: dict[str, list[Part]] = {
    # 3 learning rates x 33.5M tokens per size, eager: the small sizes together, the large ones alone
    "testbed": [
        Part("small", {"sizes": list(GPU_SIZES[:4])}, "d96l6..d256l8: 3 rates x 33.5M tokens each"),
        Part("large", {"sizes": list(GPU_SIZES[4:])}, "d384l8, d512l8: 3 rates x 33.5M tokens each"),
    ],
    "routing": _routing_parts(),
    # one size per part: the testbed's sweep of its size (3 rates: nothing survives a lease), the pilot (smallest size only), ten
    # experts, 2 pools x 31 subsets x 7 methods merged and evaluated, multitask where configured
    "merging": [Part(s, {"sizes": [s], "full_enumeration": [s],
                         "multitask": [[s, k] for k in (2, 5)] if s in GPU_SIZES[:2] else []},
                     f"{s}: 3 bases x 33.5M tokens, 10 experts, 434 merged models") for s in GPU_SIZES],
    "composition": [Part(s, {"sizes": [s]}, f"{s}: base, experts, merges, multitask and upcycled models")
                    for s in GPU_SIZES[:3]],
    "della": [Part(s, {"sizes": [s]}, f"{s}: base, 3 experts, the p x eps x lambda grid") for s in ("d128l6", "d256l8")],
    # the study validates non-empty grids, so its parts split every grid by width: toy units are
    # batched over regs x seeds (one unit = 50 networks), the LM ladders are the expensive part
    "resource": [
        Part("narrow", {"widths": [4, 8, 16], "composite_widths": [8, 16], "lm_widths": [32, 48, 64]},
             "widths <= 16: 18 single and 4 composite toy units; LM rungs d32..d64 x 3 rates x 20 tokens per parameter"),
        Part("mid", {"widths": [32, 64], "composite_widths": [32, 64], "lm_widths": [96]},
             "widths 32, 64: 12 single and 4 composite toy units; LM rungs d96l2, d96l6 x 3 rates x 20 tokens per parameter"),
        Part("wide", {"widths": [128, 256], "composite_widths": [128, 256], "lm_widths": [128]},
             "widths 128, 256: 12 single and 4 composite toy units; LM rungs d128l2, d128l8 x 3 rates x 20 tokens per parameter"),
    ],
}


def parts(study: str) -> list[Part]:
    return PARTS[study]


# ----------------------------------------------------------------------------- work per study


def _testbed(p: dict) -> list[Work]:
    n_dom = len(p["domains"])
    return [Work(f"pretrain {s} lr={lr}", s, tokens=p["pretrain_tokens"], batch_tokens=p["batch_tokens"],
                 eval_tokens=p["eval_tokens"] * n_dom * 2, eval_calls=n_dom * 4)
            for s in p["sizes"] for lr in p["lrs"]]


def _routing(p: dict) -> list[Work]:
    sel = p["parts"][p["part"]] if p.get("part") else None
    keep = (lambda s, E: s in sel["sizes"] and E in sel["experts"]) if sel else (lambda s, E: True)  # noqa: E731
    if p.get("parts") and not p.get("part"):  # the tables part: every unit recorded already
        return [Work("analysis (bootstrap fits)", toy_steps=int(120 / 0.001))]
    n_dom = len(p["domains"])
    ev = dict(eval_tokens=p["eval_tokens"] * n_dom * 2, eval_calls=n_dom * 4)  # test CE and documents
    out = []
    for s in p["sizes"]:
        if keep(s, 1):
            out.append(Work(f"dense {s}", s, tokens=p["tokens"], batch_tokens=p["batch_tokens"], **ev))
        for E in p["experts"]:
            if E > 1 and keep(s, E):
                out.append(Work(f"{s} E={E} x {len(p['routers'])} routers", s, tokens=p["tokens"],
                                batch_tokens=p["batch_tokens"], experts=E, n=len(p["routers"]), **ev))
    return out


def _bases(size: str) -> Work:
    """The testbed's sweep of one size, which a part of a study built on the testbed trains itself
    (`testbed.base_key` trains the size's sweep at the testbed's profile when its records are missing:
    nothing survives between leases)."""
    from scalinglaws.studies.testbed import PROFILES
    p = PROFILES["gpu" if size in GPU_SIZES else "cpu"]
    return Work(f"testbed sweep {size} ({len(p['lrs'])} rates)", size, tokens=p["pretrain_tokens"],
                batch_tokens=p["batch_tokens"], eval_tokens=p["eval_tokens"] * len(p["domains"]) * 2,
                eval_calls=len(p["domains"]) * 4, n=len(p["lrs"]))


def _merging(p: dict) -> list[Work]:
    n_dom = sum(len(v) for v in p["pools"].values())
    ev_tokens = n_dom * p["eval_tokens_per_domain"]
    ev = dict(eval_tokens=ev_tokens, eval_calls=max(1, ev_tokens // 2560))  # 51 calls for 8 x 16,384 measured
    ft = p["ft_base_tokens"]
    out = []
    for i, s in enumerate(p["sizes"]):
        out.append(_bases(s))
        if i == 0:
            n_pilot = len(p["pilot_lrs"]) * len(p["pilot_seeds"] if isinstance(p["pilot_seeds"], list)
                                                else range(p["pilot_seeds"])) * p["pilot_domains_per_pool"] * 2
            for m in p["pilot_token_mults"]:
                out.append(Work(f"pilot {s} x{m}", s, tokens=ft * m, batch_tokens=p["ft_batch_tokens"], n=n_pilot, **ev))
        out.append(Work(f"experts {s}", s, tokens=ft, batch_tokens=p["ft_batch_tokens"], n=n_dom, **ev))
        n_merged = len(p["methods"]) * sum(2 ** len(v) - 1 for v in p["pools"].values())
        out.append(Work(f"merge+eval {s}", s, merges=1, n=n_merged, **ev))
    for s, k in p["multitask"]:
        out.append(Work(f"multitask {s} k={k}", s, tokens=ft * k, batch_tokens=p["ft_batch_tokens"], n=2, **ev))
    return out


def _composition(p: dict) -> list[Work]:
    n_dom = sum(len(v) for v in p["pools"].values())
    ev_tokens = n_dom * p["eval_tokens_per_domain"]
    ev = dict(eval_tokens=ev_tokens, eval_calls=max(1, ev_tokens // 2560))
    gpu = all(s in GPU_SIZES for s in p["sizes"])
    ft = 1_677_721 if gpu else 65_536  # FINETUNE_FRACTION x the profile's pretraining budget
    out = []
    for s in p["sizes"]:
        out.append(_bases(s))
        out.append(Work(f"experts {s}", s, tokens=ft, batch_tokens=32768 if gpu else 2048, n=n_dom, **ev))
        arms = len(p["pools"]) * len(p["ks"]) * p["subsets_per_k"]
        out.append(Work(f"merges {s}", s, merges=1, n=arms * len(p["merge_methods"]), **ev))
        out.append(Work(f"multitask+upcycled {s}", s, tokens=ft * 3, batch_tokens=32768 if gpu else 2048,
                        experts=3, n=arms * 2, **ev))
    return out


def _della(p: dict) -> list[Work]:
    n_roles = len(p["roles"])
    ev_tokens = n_roles * p["tokens_per_domain"]
    ev = dict(eval_tokens=ev_tokens, eval_calls=max(1, ev_tokens // (p["seq_len"] * p["eval_chunk"])))
    grid = len(p["p_grid"]) * len(p["eps_grid"]) * len(p["lam_grid"]) * len(p["elect"])
    n_merged = len(p["combos"]) * (grid + len(p["baselines"]) + len(p["rescales"]) * len(p["ranks"]) * 2)
    gpu = p["seq_len"] >= 512
    out = []
    for s in p["sizes"]:
        out.append(_bases(s))
        out.append(Work(f"experts {s}", s, tokens=1_677_721 if gpu else 65_536, batch_tokens=32768 if gpu else 2048,
                        n=n_roles, **ev))
        out.append(Work(f"merge+eval {s}", s, merges=1, n=n_merged * (1 + len(p["noise_seeds"])), **ev))
    return out


def _resource(p: dict) -> list[Work]:
    out = []
    if p["widths"]:
        n = len(p["tasks"]) * len(p["activations"]) * len(p["widths"])
        out.append(Work("single toy units", toy_steps=p["steps"] + p["refit_steps"], n=n))
    if p["composite_widths"]:
        n = len(p["compositions"]) * len(p["composite_widths"])
        out.append(Work("composite toy units", toy_steps=p["steps"] + p["refit_steps"], n=n))
    if p["lm_widths"]:  # tokens per rung ~ N (resource.study.rungs)
        from scalinglaws.studies.resource.study import rungs
        for r in rungs(p):
            out.append(Work(f"lm {r['size']}", r["size"], tokens=r["tokens"], batch_tokens=p["lm_batch_tokens"],
                            eval_tokens=p["lm_eval_tokens"], eval_calls=4, n=len(p["lm_lrs"])))
    return out


WORK = {"testbed": _testbed, "routing": _routing, "merging": _merging, "composition": _composition,
        "della": _della, "resource": _resource}


def work(study: str, params: dict) -> list[Work]:
    return WORK[study](params)


# ----------------------------------------------------------------------------- the CPU rehearsal
# Every gpu part's code path on a CPU (tests/test_gpu_rehearsal.py): the gpu profile with its sizes,
# context 512, routers, grouped_mm experts and compile flag, but token budgets and batches divided by
# a large factor (never below one 512-token sequence) and the grids thinned to a few cells, so that
# all studies together take minutes on 2 cores. `SCALINGLAWS_REHEARSE=FACTOR` applies it to every
# gpu profile a process resolves (`studies.resolve_params`), the testbed bases that a merging part
# trains included.
REHEARSAL_ENV = "SCALINGLAWS_REHEARSE"
_TOKEN_KEYS = ("pretrain_tokens", "tokens", "ft_base_tokens", "lm_tokens", "tokens_per_domain", "eval_tokens",
               "eval_tokens_per_domain", "lm_eval_tokens", "theory_tokens")
_BATCH_KEYS = ("batch_tokens", "ft_batch_tokens", "lm_batch_tokens")
_STEP_KEYS = ("steps", "refit_steps")
SEQ = 512
# thinning: the first few values of each grid (the code path of every cell kind stays)
_THIN = {"lrs": 2, "lm_lrs": 1, "pilot_lrs": 1, "pilot_token_mults": 1, "methods": 2, "p_grid": 2,
         "eps_grid": 1, "lam_grid": 1, "combos": 1, "widths": 2, "composite_widths": 1, "regs": 2,
         "lm_widths": 2, "experts": 3, "ks": 1, "tasks": 1, "activations": 1, "noise_seeds": 1}
_SMALL = {"bootstrap": 20, "eval_bootstrap": 10, "noise_bootstrap": 20, "tail_bootstrap": 20,
          "chinchilla_bootstrap": 20, "theory_bootstrap": 10, "extrapolation_bootstrap": 0, "n_permutations": 2,
          "permutation_candidates": 20, "seeds": 2, "composite_seeds": 2, "pilot_seeds": 1, "fit_maxiter": 50,
          "eval_docs": 1, "subsets_per_k": 1}


AS_STORED: set[str] = set()  # studies whose parameters `lease_plan.combine` passes as the parts stored them


def rehearse(study: str, params: dict, factor: int) -> dict:
    """`params` (a gpu profile with a part's overrides) for the CPU rehearsal: budgets / factor, grids thinned.
    A study in AS_STORED is left as given: combining rehearsed parts reruns it with their stored (already
    rehearsed) parameters, whose union must not be thinned again; the studies it depends on are rehearsed
    as they were in the parts, so their unit keys match the parts' records."""
    if study in AS_STORED:
        return dict(params)
    p = dict(params)
    for k in _BATCH_KEYS:
        if isinstance(p.get(k), int):
            p[k] = max(SEQ, p[k] // factor // SEQ * SEQ)
    for k in _TOKEN_KEYS:
        if isinstance(p.get(k), int):
            unit = p.get("batch_tokens", SEQ) if k in ("pretrain_tokens", "tokens") else SEQ
            p[k] = max(2 * unit, p[k] // factor // unit * unit)
    for k in _STEP_KEYS:
        if isinstance(p.get(k), int):
            p[k] = max(2, p[k] // factor)
    if isinstance(p.get("lm_tokens_per_param"), float):  # resource's LM rungs: tokens ~ N, scaled down alike
        p["lm_tokens_per_param"] /= factor
        p["lm_min_steps"] = 1
    if isinstance(p.get("domains"), list):
        p["domains"] = p["domains"][:4]
    if p.get("lm_domains") == ["all"]:  # resource's LM ladders: four domains, not every token cache
        p["lm_domains"] = ["code", "scripture", "algebra", "legal"]
    if isinstance(p.get("sizes"), list) and len(p["sizes"]) > 2:  # two sizes: every per-size path, cheaply
        p["sizes"] = p["sizes"][:2]
    for k, n in _THIN.items():
        if isinstance(p.get(k), list) and len(p[k]) > n:
            p[k] = p[k][:n]
    for k, v in _SMALL.items():
        if isinstance(p.get(k), int) and p[k] > v:
            p[k] = v
    if "pools" in p and isinstance(p["pools"], dict):  # two domains per pool: every pool kind, 3 subsets each
        p["pools"] = {name: doms[:2] for name, doms in p["pools"].items()}
    if isinstance(p.get("full_enumeration"), list):
        p["full_enumeration"] = [x for x in p["full_enumeration"] if x in p.get("sizes", [])]
    if isinstance(p.get("multitask"), list):
        p["multitask"] = [m for m in p["multitask"] if m[1] <= 2 and m[0] in p.get("sizes", [])][:1]
    if isinstance(p.get("parts"), dict):  # routing: the parts' E values follow the thinned grid
        p["parts"] = {n: {"sizes": sel["sizes"], "experts": [E for E in sel["experts"] if E in p["experts"]]}
                      for n, sel in p["parts"].items() if set(sel["sizes"]) <= set(p.get("sizes", []))}
    return p

