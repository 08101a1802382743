"""The nine-expert pool (issue 27): the paper's M = 9, an expert recipe chosen per size, R(k) to k = 9.

Why a separate run. The stored merging study has pools of M = 5, so k runs 1..5 and the paper's
saturation statement (median R(k) >= 85% at k = 5, 90% at k = 6 of 9) cannot be tested; and one
fine-tuning rate (3e-4, the pilot's choice at the middle size, at the bottom of its grid) serves
every size, so A(N)'s trend is partly the recipe's. Here:

    pool      `NINE_POOL`: the five generated mathematics subfields, the older generated `math`
              mixture, `code`, `techdocs` (Python's documentation) and `manpages` -- a cluster of
              related mathematics domains plus four technical neighbours, the shape of the paper's
              pool (five mathematics subfields, code and three sciences). Every domain has its own
              finetune split (196K-409K tokens) and test split; no two are the same source. Of the
              20 shipped domains, some pairs are near-duplicates and are kept out of one pool:
              scripture / bible_web (one Bible, two translations), code / code_tests (one CPython
              source tree), dictionary / lexicon / glossary (definitions); an all-real-text pool of
              nine distinct sources also exists (e.g. code, dictionary, scripture, legal, techdocs,
              speeches, commentary, manpages, fortunes) and is one `pools` override away.
    recipe    per size: the pilot of `pilot.py` (lr x token multiple, rule `pilot.choose_recipe`)
              run at EVERY size on `pilot_domains` (one mathematics, one real-text domain),
              forgetting measured on the other eight pool domains.
    subsets   all 2^9 - 1 = 511 at the sizes in `full_enumeration` (the two smallest), the prefixes
              of 15 diverse permutations (`subsets.py`) at the others, as the paper.
    in-domain both readings (`in_domain_table`): ours, the mean over domains d of the mean over the
              merges containing d; the paper's, each merge scored on its own members' domains,
              averaged over merges (Wang et al.: "in-domain" = the merged model on the domains of
              the experts merged). They are equal under full enumeration and differ under sampled
              permutations.
    R(k)      `saturation_table`: the stopping curve (`laws.stopping_curve`) of every per-domain
              curve, its median over domains (what the `saturation` claim reads), of both in-domain
              curves, of a perfect 1/k law at the same M, beside the paper's 85% / 90% points.

Cost and parts. The run is long on CPU, so it is split into parts (`parts`: {name: [sizes]}, and
the part "pilot", every size's pilot); each part's unit records are written beside the tables,
`data/results/merging/<profile>/units/<kind>/<key>.json`, and committed, so a part resumes on a
new machine from git (experts are retrained only where a size's merges are not all recorded).
`measure` times the units (a fine-tune per size from the pilot's records, one merge + evaluation
chunk per size through the study's own `merge_eval` unit) into the table `nine_unit_costs`;
`part_costs` predicts every part from it. Tables (prefix `nine_`) are recorded in provenance
under `derived.nine`.

    python -m scalinglaws merging-nine --profile cpu --part pilot      # the pilot, every size
    python -m scalinglaws merging-nine --profile cpu --measure         # unit costs
    python -m scalinglaws merging-nine --profile cpu --plan            # parts, predicted CPU-s, commands
    python -m scalinglaws merging-nine --profile cpu --part s1         # one part's units
    python -m scalinglaws merging-nine --profile cpu                   # tables from the stored records
"""
from __future__ import annotations

import datetime as dt
import time

import numpy as np
import pandas as pd

from scalinglaws import data as D
from scalinglaws import evaluation as EV
from scalinglaws import models as Mo
from scalinglaws.core.paths import results_root
from scalinglaws.core.results import ResultStore, config_hash, git_commit
from scalinglaws.core.sweep import Sweep, Unit, find_checkpoint
from scalinglaws.core.threads import torch_threads
from scalinglaws.core.validation import ParameterError, check_choice, check_subset
from scalinglaws.laws import k_at, stopping_curve
from scalinglaws.studies.merging import analysis as MA
from scalinglaws.studies.merging import pilot as PI
from scalinglaws.studies.merging import study as ST
from scalinglaws.studies.merging import subsets as S
from scalinglaws.studies.merging import tail as TL
from scalinglaws.studies.merging import units as U

POOL = "nine"
NINE_POOL = ["arithmetic", "algebra", "number_theory", "geometry", "probability", "math", "code", "techdocs",
             "manpages"]
PILOT_PART = "pilot"
DERIVED = "nine"  # provenance derived.<DERIVED>
# every table `merging-nine` writes into the merging store (`write_tables` refuses any other name)
TABLES = ("nine_pilot", "nine_recipe", "nine_experts", "nine_specialisation", "nine_noise", "nine_subsets",
          "nine_merges", "nine_curves", "nine_in_domain", "nine_saturation", "nine_saturation_summary",
          "nine_tail_fits", "nine_a_trend", "nine_unit_costs", "nine_parts")
# the paper's median R(k): 85% at k = 5, 90% at k = 6 of 9 (Wang et al. 2025; `literature.PAPER`)
PAPER_R = {0.85: 5, 0.90: 6}

# Overrides of the merging study's profile of the same name (every other parameter is the study's).
NINE_PROFILES = {
    # 2 tiny sizes, the nine domains, permutations only (4 of them), one pilot domain, 2 rates
    "smoke": {"pools": {POOL: NINE_POOL}, "methods": ["average"], "full_enumeration": [],
              "n_permutations": 4, "pilot_lrs": [1e-3, 3e-3], "pilot_token_mults": [1], "pilot_seeds": 1,
              "pilot_domains": ["algebra"], "multitask": [], "chunk_size": 16,
              "tail_bootstrap": 50, "parts": {"a": Mo.ladder("smoke")[:1], "b": Mo.ladder("smoke")[1:]}},
    # 4 cpu sizes; rates bracketing the stored choice (3e-4 sat at the bottom of the grid; at d32l2
    # the first pilot chose 1e-4, so 3e-5 was added below it); one seed x two domains (one
    # mathematics, one real text) per grid point and size: 64 pilot fine-tunes
    "cpu": {"pools": {POOL: NINE_POOL}, "methods": ["average", "task_arithmetic"],
            "full_enumeration": Mo.ladder("cpu")[:2], "n_permutations": 15,
            "pilot_lrs": [3e-5, 1e-4, 3e-4, 1e-3], "pilot_token_mults": [1, 4], "pilot_seeds": 1,
            "pilot_domains": ["algebra", "code"], "multitask": [], "chunk_size": 32,
            "parts": {"s1": ["d32l2"], "s2": ["d48l3"], "s3": ["d64l4", "d96l4"]}},
}


# ---------------------------------------------------------------------------------------------
# parameters


def resolve(profile: str, overrides: dict | None = None) -> dict:
    """The merging study's profile with the nine-pool overrides, then `overrides`; every shared
    parameter checked by the study's own `validate`, the nine-pool ones here."""
    check_choice("profile", profile, list(NINE_PROFILES))
    params = {**ST.PROFILES[profile], **NINE_PROFILES[profile]}
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(params))
    if unknown:
        raise ParameterError(f"unknown parameter(s) {unknown}; the nine-pool run takes {sorted(params)}")
    params.update(overrides)
    params = ST.validate(params)
    if len(params["pools"]) != 1:
        raise ParameterError(f"pools={params['pools']!r}: the nine-pool run has exactly one pool")
    (doms,) = params["pools"].values()
    params["pilot_domains"] = check_subset("pilot_domains", params["pilot_domains"], doms)
    if not params["pilot_domains"]:
        raise ParameterError("pilot_domains must name at least one domain of the pool")
    parts = params["parts"]
    if not isinstance(parts, dict) or not parts or PILOT_PART in parts:
        raise ParameterError(f"parts={parts!r} must be a non-empty dict {{name: [sizes]}} (the name "
                             f"{PILOT_PART!r} is the pilot's)")
    seen = [s for v in parts.values() for s in check_subset("parts", v, params["sizes"])]
    if sorted(seen) != sorted(params["sizes"]):
        raise ParameterError(f"parts must cover every size of {params['sizes']} exactly once; they name {seen}")
    return params


def check_part(part, params: dict) -> None:
    if part is not None:
        check_choice("part", part, [PILOT_PART, *params["parts"]])


def sweep(profile: str) -> Sweep:
    """Unit records beside the tables (committed), so a part resumes on a new machine from git."""
    sw = Sweep(ST.STUDY, profile)
    sw.dir = results_root() / ST.STUDY / profile / "units"
    return sw


def pool_domains(params: dict) -> list[str]:
    return list(params["pools"][POOL])


# ---------------------------------------------------------------------------------------------
# bases, units


def base_key(size: str, profile: str) -> str:
    """The testbed's chosen base of `size`: read from its stored `lr_sweep` and only that model
    trained if its checkpoint is missing (the key is checked to be the stored one), rather than
    the whole bracketed rate sweep `testbed.base_key` would rerun on a fresh machine. Without a
    stored sweep (a scratch results root), `testbed.base_key`."""
    from scalinglaws.studies import resolve_params
    from scalinglaws.studies.testbed import study as T
    store = ResultStore(T.STUDY, profile)
    if not store.has("lr_sweep"):
        return T.base_key(size, profile)
    t = store.read("lr_sweep")
    row = t[(t["size"] == size) & t["chosen"]]
    if len(row) != 1:
        raise ParameterError(f"the stored testbed {profile} lr_sweep has no chosen base of size {size!r}")
    unit = T.pretrain_unit(size, profile, resolve_params(T, profile, {}), float(row["lr"].iloc[0]))
    if unit.key != row["unit"].iloc[0]:
        raise ParameterError(f"the testbed's base of {size} no longer has the stored key {row['unit'].iloc[0]} "
                             f"(now {unit.key}): rerun the testbed first")
    try:
        find_checkpoint(unit.key)
    except FileNotFoundError:
        Sweep(T.STUDY, profile).run([unit], T._pretrain, desc=f"testbed base {size}", checkpoints=True)
    return unit.key


def _ft_config(size: str, domain: str, base: str, params: dict, lr: float, mult: float, seed: int) -> dict:
    # the shape of `study._ft_config`: with the same base and recipe, a unit of the main study
    return {"size": size, "domain": domain, "base": base, "ft_lr": float(lr), "token_mult": mult,
            "tokens": int(round(mult * params["ft_base_tokens"])), "seed": seed,
            "data": D.checksums([domain], "finetune"), **{k: params[k] for k in U.SCHEDULE_KEYS}}


def eval_config(params: dict) -> dict:
    return U.eval_config(pool_domains(params), params, ST.context_of(params))


def pilot_units(size: str, base: str, params: dict) -> list[Unit]:
    ev = eval_config(params)
    return [Unit("pilot", {**_ft_config(size, d, base, params, lr, m, params["seed"] + s), "eval": ev,
                           "pools": params["pools"]})
            for d in params["pilot_domains"] for lr in params["pilot_lrs"] for m in params["pilot_token_mults"]
            for s in range(params["pilot_seeds"])]


def recipe_of(size: str, precs: list[dict], params: dict) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(pilot rows, recipe table, chosen {lr, token_mult}) of one size from its pilot records."""
    pilot = pd.DataFrame([r["rows"][0] for r in precs])
    pilot.insert(2, "size", size)
    table = PI.choose_recipe(pilot, params["pilot_max_forgetting"])
    table.insert(0, "size", size)
    return pilot, table, PI.chosen(table)


def subset_keys(size: str, params: dict) -> tuple[str, list[str]]:
    scheme, subsets = ST.subset_plan(size, params, len(pool_domains(params)))
    return scheme, [S.subset_key(x) for x in subsets]


def size_units(size: str, base: str, recipe: dict, params: dict) -> dict:
    """{finetune: [9 units], specialise: unit, merge_eval: [units]} of one size."""
    doms = pool_domains(params)
    ft = [Unit("finetune", _ft_config(size, d, base, params, recipe["lr"], recipe["token_mult"], params["seed"]))
          for d in doms]
    experts = [u.key for u in ft]
    ev = eval_config(params)
    sp = Unit("specialise", {"size": size, "base": base, "domains": doms, "experts": experts, "eval": ev,
                             "n_boot": params["noise_bootstrap"], "seed": params["seed"]})
    _, keys = subset_keys(size, params)
    me = []
    for name in params["methods"]:
        method, opts = ST.METHOD_VARIANTS[name]
        for i in range(0, len(keys), params["chunk_size"]):
            me.append(Unit("merge_eval", {"size": size, "pool": POOL, "base": base, "domains": doms,
                                          "experts": experts, "eval": ev, "method": name,
                                          "registry_method": method, "options": opts, "seed": params["seed"],
                                          "subsets": keys[i:i + params["chunk_size"]]}))
    return {"finetune": ft, "specialise": sp, "merge_eval": me}


# ---------------------------------------------------------------------------------------------
# running parts


def run_pilot(profile: str, params: dict, sizes=None) -> dict[str, list[dict]]:
    """Every size's pilot (units reused when recorded): {size: records}."""
    sw = sweep(profile)
    out = {}
    for s in sizes or params["sizes"]:
        out[s] = sw.run(pilot_units(s, base_key(s, profile), params), U.pilot, desc=f"nine pilot {s}")
    return out


def run_size(size: str, profile: str, params: dict) -> None:
    """One size: its pilot (reused), nine experts with its recipe, the specialisation and every
    merge. Experts are trained only when some merge or the specialisation is not yet recorded
    (committed records need no checkpoint)."""
    sw = sweep(profile)
    base = base_key(size, profile)
    precs = run_pilot(profile, params, [size])[size]
    _, _, recipe = recipe_of(size, precs, params)
    u = size_units(size, base, recipe, params)
    evals = [u["specialise"], *u["merge_eval"]]
    if not all(sw.done(x) for x in evals + u["finetune"]):
        sw.run(u["finetune"], U.finetune, desc=f"nine finetune {size}", checkpoints=True)
    sw.run([u["specialise"]], U.specialise, desc=f"nine specialise {size}")
    sw.run(u["merge_eval"], U.merge_eval, desc=f"nine merge_eval {size}")


def run_part(profile: str, part: str, overrides: dict | None = None, threads: int = 1) -> None:
    params = resolve(profile, overrides)
    check_part(part, params)
    with torch_threads(threads):
        if part == PILOT_PART:
            run_pilot(profile, params)
        else:
            for s in params["parts"][part]:
                run_size(s, profile, params)


# ---------------------------------------------------------------------------------------------
# costs


def measure(profile: str, overrides: dict | None = None, threads: int = 1, chunk: int = 9,
            domain: str | None = None) -> pd.DataFrame:
    """`nine_unit_costs`, one row per size, in CPU-seconds of this process (`time.process_time`, so a
    machine shared with other jobs inflates them little, unlike wall time):

        ft_cpu_s_per_token       one fine-tune of `ft_base_tokens` tokens on `domain` (default the
                                 first pilot domain) with the profile's schedule, timed per token
        merge_eval_cpu_s_per_model   `chunk` merges (k = 1..chunk) and their stacked evaluation on
                                 the pool's windows (`units.score`), the work of one `merge_eval` unit

    Both on a freshly initialised model of the size: their cost does not depend on the weights, so
    no base or expert is needed. Beside them, for comparison: the stored merging run's fine-tuning
    seconds per token (`experts` table, wall time of an unshared run), the pilot's recorded ones
    where present (wall time, possibly on a shared machine), and the testbed base's training seconds
    (its `ladder` row), paid only where a machine lacks the base."""
    import torch

    from scalinglaws.merge import merge
    from scalinglaws.training import train
    params = resolve(profile, overrides)
    sw = sweep(profile)
    doms = pool_domains(params)
    domain = domain or params["pilot_domains"][0]
    check_choice("domain", domain, doms)
    tb, mg = ResultStore("testbed", profile), ResultStore(ST.STUDY, profile)
    ladder = tb.read("ladder").set_index("size") if tb.has("ladder") else None
    stored = mg.read("experts") if mg.has("experts") else None
    ev = eval_config(params)
    rows = []
    with torch_threads(threads):
        EV.spec_windows(U.eval_spec(ev))  # built once, as in a sweep (not a unit's cost)
        arrays = {domain: D.token_ids(domain, "finetune")}
        for s in params["sizes"]:
            torch.manual_seed(params["seed"])
            model = Mo.build_model(s, seed=params["seed"])
            t0 = time.process_time()
            res = train(model, arrays, tokens=params["ft_base_tokens"], batch_tokens=params["ft_batch_tokens"],
                        lr=params["pilot_lrs"][0], warmup_frac=params["ft_warmup_frac"],
                        min_lr_frac=params["ft_min_lr_frac"], weight_decay=params["ft_weight_decay"],
                        grad_clip=params["ft_grad_clip"], seed=params["seed"], device="cpu", progress=False,
                        weights={domain: 1.0})
            ft = (time.process_time() - t0) / res.tokens
            model.eval()
            base = {k: v.detach().clone() for k, v in model.state_dict().items()}
            k = min(chunk, len(doms))
            t0 = time.process_time()
            states = [merge(base, [base] * j, "average") for j in range(1, k + 1)]
            U.score(model, states, ev)
            me = (time.process_time() - t0) / k
            try:  # the pilot's own timings, where recorded
                pil = [sw.load(x)["rows"][0] for x in pilot_units(s, base_key_stored(s, profile), params)
                       if sw.done(x)]
            except ParameterError:
                pil = []
            ref = stored[stored["size"] == s] if stored is not None else pd.DataFrame()
            rows.append({"size": s, "N": Mo.count_params(model)["non_embedding"],
                         "ft_cpu_s_per_token": ft, "ft_tokens_timed": int(res.tokens),
                         "merge_eval_cpu_s_per_model": me, "merge_eval_models_timed": k,
                         "eval_tokens_per_model": len(doms) * params["eval_tokens_per_domain"],
                         "ft_s_per_token_stored_run": float((ref["wall_s"] / ref["finetune_tokens"]).median())
                         if len(ref) else np.nan,
                         "ft_s_per_token_pilot": float(np.median([r["wall_s"] / r["tokens"] for r in pil]))
                         if pil else np.nan,
                         "base_train_s": float(ladder.loc[s, "wall_s"]) if ladder is not None and s in ladder.index
                         else np.nan, "torch_threads": threads})
    return pd.DataFrame(rows)


def key_of(size: str, profile: str) -> str:
    """The base's key for pricing and reading records: the stored one, nothing trained; without a
    stored testbed sweep (a scratch root), `testbed.base_key`."""
    try:
        return base_key_stored(size, profile)
    except ParameterError:
        return base_key(size, profile)


def base_key_stored(size: str, profile: str) -> str:
    """The chosen base's key from the stored testbed `lr_sweep`, nothing trained (ParameterError
    without one)."""
    store = ResultStore("testbed", profile)
    if not store.has("lr_sweep"):
        raise ParameterError(f"no stored testbed {profile} lr_sweep")
    t = store.read("lr_sweep")
    row = t[(t["size"] == size) & t["chosen"]]
    if len(row) != 1:
        raise ParameterError(f"the stored testbed {profile} lr_sweep has no chosen base of size {size!r}")
    return str(row["unit"].iloc[0])


def part_costs(profile: str, costs: pd.DataFrame, overrides: dict | None = None) -> pd.DataFrame:
    """Predicted CPU-s of every part from the measured `nine_unit_costs`: the pilot part (its
    fine-tunes at the measured rate plus two model evaluations each), and per size part nine
    fine-tunes at the recipe's tokens (the pilot's choice where recorded, else the largest
    multiple: an upper bound), the specialisation (10 models evaluated) and every merge. Bases
    excluded (column base_train_s: paid once on a machine without them)."""
    params = resolve(profile, overrides)
    sw = sweep(profile)
    c = costs.set_index("size")
    M = len(pool_domains(params))
    grid_tokens = [m * params["ft_base_tokens"] for m in params["pilot_token_mults"]]
    cmd = f"nice -n 5 python -m scalinglaws merging-nine --profile {profile} --part "
    pilot_s = sum(len(params["pilot_domains"]) * params["pilot_seeds"] * len(params["pilot_lrs"])
                  * sum(t * c.loc[s, "ft_cpu_s_per_token"] + 2 * c.loc[s, "merge_eval_cpu_s_per_model"] for t in grid_tokens)
                  for s in params["sizes"])
    rows = [{"part": PILOT_PART, "sizes": ",".join(params["sizes"]), "merged_models": 0, "finetune_s": round(pilot_s),
             "merge_eval_s": 0, "cpu_s": round(pilot_s), "recipe": "", "command": cmd + PILOT_PART}]
    for name, sizes in params["parts"].items():
        ft = me = 0.0
        n_models, recipes = 0, []
        for s in sizes:
            base = key_of(s, profile)
            pu = pilot_units(s, base, params)
            if all(sw.done(x) for x in pu):
                r = recipe_of(s, [sw.load(x) for x in pu], params)[2]
                tokens = r["token_mult"] * params["ft_base_tokens"]
                recipes.append(f"{s}: lr {r['lr']:g} x{r['token_mult']:g}")
            else:
                tokens = max(grid_tokens)
                recipes.append(f"{s}: pilot not recorded (priced at the largest multiple)")
            n = len(subset_keys(s, params)[1]) * len(params["methods"])
            n_models += n
            ft += M * tokens * c.loc[s, "ft_cpu_s_per_token"]
            me += (n + M + 1) * c.loc[s, "merge_eval_cpu_s_per_model"]
        rows.append({"part": name, "sizes": ",".join(sizes), "merged_models": n_models, "finetune_s": round(ft),
                     "merge_eval_s": round(me), "cpu_s": round(ft + me), "recipe": "; ".join(recipes),
                     "command": cmd + name})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# analysis (functions of the stored merges table)


def in_domain_table(merges: pd.DataFrame) -> pd.DataFrame:
    """Both in-domain readings per (method, size, N, k), k = 0 the base: `ours` (mean over domains of
    the mean over the merges containing it: `analysis.curves` scope in_domain) and `paper` (mean
    over merges of each merge's CE on its own members' domains), with `n_merges`."""
    c = MA.curves(merges)
    ours = c[c["scope"] == "in_domain"].set_index(["method", "size", "N", "k"])["ce"].rename("ours")
    ml = MA.model_losses(merges)
    paper = ml.groupby(["method", "size", "N", "k"]).agg(paper=("ce_in", "mean"), n_merges=("subset", "nunique"))
    out = pd.concat([ours, paper], axis=1).reset_index()
    base = out["k"] == 0
    out.loc[base, "paper"] = out.loc[base, "ours"]  # the base: the same mean over the pool's domains
    out.loc[base, "n_merges"] = 1
    out["n_merges"] = out["n_merges"].astype(int)
    out["paper_minus_ours"] = out["paper"] - out["ours"]
    return out.sort_values(["method", "N", "k"]).reset_index(drop=True)


def perfect_R(M: int) -> pd.Series:
    """R(k) of a perfect 1/k law L = L* + A/k on k = 1..M: (1 - 1/k) / (1 - 1/M)."""
    k = np.arange(1, M + 1)
    return pd.Series((1 - 1 / k) / (1 - 1 / M), index=k)


def saturation_table(merges: pd.DataFrame) -> pd.DataFrame:
    """R(k), k = 1..M, per (method, size): `R_domains` the median over domains of each domain's
    stopping curve (what the `saturation` claim reads), `R_ours` / `R_paper` of the two in-domain
    curves, `R_perfect` of a perfect 1/k law at the same M, `paper_R` the paper's points (85% at
    k = 5, 90% at k = 6; NaN elsewhere)."""
    c = MA.curves(merges)
    ind = in_domain_table(merges)
    rows = []
    for (method, size, N), g in c[c["k"] >= 1].groupby(["method", "size", "N"], sort=True):
        doms = g[g["scope"].str.startswith("domain:")].pivot_table(index="k", columns="scope", values="ce")
        R_d = pd.concat({d: stopping_curve(doms.index, doms[d]) for d in doms.columns}, axis=1).median(axis=1)
        i = ind[(ind["method"] == method) & (ind["size"] == size) & (ind["k"] >= 1)]
        R_o, R_p = stopping_curve(i["k"], i["ours"]), stopping_curve(i["k"], i["paper"])
        M = int(doms.index.max())
        perf = perfect_R(M)
        paper_at = {k: q for q, k in PAPER_R.items()} if M == 9 else {}
        for k in doms.index:
            rows.append({"method": method, "size": size, "N": N, "k": int(k), "R_domains": float(R_d[k]),
                         "R_ours": float(R_o[k]), "R_paper": float(R_p[k]), "R_perfect": float(perf[k]),
                         "paper_R": paper_at.get(int(k), np.nan)})
    return pd.DataFrame(rows)


def saturation_summary(sat: pd.DataFrame) -> pd.DataFrame:
    """Per (method, size): k85 and k90 of each R curve (smallest k reaching the level), beside the
    paper's (5, 6) and a perfect 1/k law's at the same M."""
    rows = []
    for (method, size, N), g in sat.groupby(["method", "size", "N"], sort=True):
        g = g.set_index("k")
        row = {"method": method, "size": size, "N": N, "M": int(g.index.max())}
        for col in ("R_domains", "R_ours", "R_paper", "R_perfect"):
            for q in (0.85, 0.90):
                hit = k_at(g[col], q)
                row[f"k{int(q * 100)}_{col[2:]}"] = np.nan if hit is None else int(hit)
        row["k85_paper"], row["k90_paper"] = PAPER_R[0.85], PAPER_R[0.90]
        rows.append(row)
    return pd.DataFrame(rows)


def a_trend(tails: pd.DataFrame) -> pd.DataFrame:
    """From `tail_fits` (the one fits schema), per (method, scope): the log-log slope of the tail amplitude A over N (sizes with A > 0),
    the sign the law's gamma >= 0 asks to be negative."""
    rows = []
    for (method, scope), g in TL.tail_wide(tails).groupby(["method", "scope"], sort=True):
        g = g[g["A"] > 0]
        slope = float(np.polyfit(np.log(g["N"]), np.log(g["A"]), 1)[0]) if len(g) >= 2 else np.nan
        rows.append({"method": method, "scope": scope, "sizes": len(g), "A_slope": slope})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# tables


def tables(profile: str, overrides: dict | None = None) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """The nine-pool tables from the stored unit records only (nothing is trained): the pilot and
    recipe of every size whose pilot is recorded; the merges and their analyses once every size is
    recorded. Returns (tables, sizes still missing)."""
    params = resolve(profile, overrides)
    sw = sweep(profile)
    pilots, recipes, experts, spec, noise, merges, missing = [], [], [], [], [], [], []
    for s in params["sizes"]:
        base = key_of(s, profile)
        pu = pilot_units(s, base, params)
        if not all(sw.done(x) for x in pu):
            missing.append(s)
            continue
        pil, rec_table, recipe = recipe_of(s, [sw.load(x) for x in pu], params)
        pilots.append(pil)
        recipes.append(rec_table)
        u = size_units(s, base, recipe, params)
        if not all(sw.done(x) for x in [*u["finetune"], u["specialise"], *u["merge_eval"]]):
            missing.append(s)
            continue
        experts += [{**sw.load(x)["rows"][0], "token_mult": recipe["token_mult"], "unit": x.key} for x in u["finetune"]]
        sp = sw.load(u["specialise"])["rows"][0]
        spec += [{"size": s, **r} for r in sp["spec"]]
        noise += [{"size": s, **r} for r in sp["noise"]]
        merges.append(sw.table(u["merge_eval"], ["pool", "size", "method"]))
    out = {}
    if pilots:
        out["nine_pilot"] = pd.concat(pilots, ignore_index=True)
        out["nine_recipe"] = pd.concat(recipes, ignore_index=True)
    if missing:
        return out, missing
    ex = pd.DataFrame(experts)
    N = dict(zip(ex["size"], ex["N"]))
    spec, noise = pd.DataFrame(spec), pd.DataFrame(noise)
    m = pd.concat(merges, ignore_index=True)
    base_rows = spec[spec["expert_domain"] == "base"]
    k0 = pd.DataFrame([{"pool": POOL, "size": r.size, "method": meth, "subset": "", "k": 0,
                        "eval_domain": r.eval_domain, "in_subset": False, "ce": r.ce, "bpb": r.bpb, "seed": -1}
                       for meth in params["methods"] for r in base_rows.itertuples()])
    m = pd.concat([k0, m], ignore_index=True)
    m.insert(2, "N", m["size"].map(N))
    spec.insert(1, "N", spec["size"].map(N))
    noise.insert(1, "N", noise["size"].map(N))
    merges_t = m[["pool", "size", "N", "method", "subset", "k", "eval_domain", "in_subset", "ce", "bpb", "seed"]]
    tails, _ = TL.tail_fits(MA.model_losses(merges_t), params["tail_bootstrap"], params["seed"], params["fit_r2_min"])
    sat = saturation_table(merges_t)
    plan = [{"size": s, "scheme": subset_keys(s, params)[0], "subset": key, "k": len(S.parse_subset(key))}
            for s in params["sizes"] for key in subset_keys(s, params)[1]]
    out.update({
        "nine_experts": ex[["size", "N", "domain", "lr", "token_mult", "finetune_tokens", "steps", "train_loss",
                            "wall_s", "unit"]],
        "nine_specialisation": spec[["size", "N", "expert_domain", "eval_domain", "ce", "bpb", "tokens"]],
        "nine_noise": noise[["size", "N", "model", "paired", "eval_domain", "ce", "ce_se", "ce_lo", "ce_hi"]],
        "nine_subsets": pd.DataFrame(plan), "nine_merges": merges_t, "nine_curves": MA.curves(merges_t),
        "nine_in_domain": in_domain_table(merges_t), "nine_saturation": sat,
        "nine_saturation_summary": saturation_summary(sat), "nine_tail_fits": tails, "nine_a_trend": a_trend(tails),
    })
    return out, []


def write_tables(profile: str, overrides: dict | None = None, costs: pd.DataFrame | None = None,
                 measured: bool = False) -> tuple[ResultStore, list[str]]:
    """Write what `tables` can make (and `nine_unit_costs` / `nine_parts` when `costs` are given;
    `measured`: they were timed by this call) and record them in provenance `derived.nine`
    (commit, date, the parameters' hash, missing sizes)."""
    params = resolve(profile, overrides)
    out, missing = tables(profile, overrides)
    if costs is not None:
        out["nine_unit_costs"] = costs
        out["nine_parts"] = part_costs(profile, costs, overrides)
    undeclared = sorted(set(out) - set(TABLES))
    if undeclared:  # the gpu rehearsal and the store's readers rely on the declared names
        raise RuntimeError(f"merging-nine made tables {undeclared} not declared in nine.TABLES")
    store = ResultStore(ST.STUDY, profile)
    for name, df in out.items():
        store.write(name, df)
    prov = store.provenance()  # {} where the study has no stored run (a scratch root)
    entry = dict(prov.get("derived", {}).get(DERIVED, {}))
    entry.update({"commit": git_commit(), "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                  "command": f"python -m scalinglaws merging-nine --profile {profile}", "pool": pool_domains(params),
                  "config_hash": config_hash(params), "missing_sizes": missing,
                  "tables": sorted(set(entry.get("tables", [])) | set(out))})
    entry.pop("costs_measured", None)  # only the call that timed them says when
    if measured:
        entry["costs_measured"] = entry["date"]
    if "nine_pilot" in out:
        # wall seconds of the pilot's units (on a shared machine, several times their CPU-s)
        entry["pilot_unit_wall_s"] = round(float(out["nine_pilot"]["wall_s"].sum()), 1)
        entry.pop("pilot_unit_compute_s", None)
    prov.setdefault("derived", {})[DERIVED] = entry
    store.write_provenance(prov)
    return store, missing



# ---------------------------------------------------------------------------------------------
# for the chapter (functions of the stored nine_* tables)


def recipe_by_size(recipe: pd.DataFrame) -> pd.DataFrame:
    """The chosen recipe of every size: rate, token multiple, mean gain and forgetting, how many
    grid points the rule allowed, and whether the chosen rate sits at an edge of the rate grid
    (then the grid does not bracket it)."""
    rows = []
    for size, g in recipe.groupby("size", sort=False):
        c = g[g["chosen"]].iloc[0]
        lrs = sorted(set(g["lr"]))
        rows.append({"size": size, "lr": float(c["lr"]), "token_mult": float(c["token_mult"]),
                     "tokens": int(c["tokens"]), "gain": float(c["gain"]), "forgetting": float(c["forgetting"]),
                     "eligible_points": int(g["eligible"].sum()), "grid_points": len(g),
                     "lr_at_grid_edge": c["lr"] in (lrs[0], lrs[-1]) and len(lrs) > 1,
                     "tokens_at_grid_top": bool(c["token_mult"] == g["token_mult"].max())})
    return pd.DataFrame(rows)


def paper_saturation_text() -> str:
    """The paper's saturation statement from `PAPER_R`, for the chapter's prose (never typed there):
    '85% at k = 5 and 90% at k = 6'."""
    return " and ".join(f"{q:.0%} at k = {k}" for q, k in sorted(PAPER_R.items()))


def phenomenon(tables: dict, method: str = "average") -> str:
    """The nine-pool curves in words, before any fit (stored tables only): at the largest size, how
    the in-domain CE (ours) and the cross-domain CE move from k = 1 to k = M, and against the base;
    where the in-domain curve never improves on k = 1, R(k) of it says nothing (its best k is 1)."""
    if "nine_curves" not in tables:
        return "No nine-pool merges are stored at this profile."
    c = tables["nine_curves"]
    c = c[c["method"] == method]
    size = c.sort_values("N")["size"].iloc[-1]
    g = c[c["size"] == size]
    M = int(g["k"].max())

    def ce(scope, k):
        return float(g[(g["scope"] == scope) & (g["k"] == k)]["ce"].iloc[0])

    ind = g[(g["scope"] == "in_domain") & (g["k"] >= 1)].set_index("k")["ce"]
    best_k = int(ind.idxmin())
    base, i1, iM, x1, xM = ce("in_domain", 0), ce("in_domain", 1), ce("in_domain", M), ce("cross_domain", 1), \
        ce("cross_domain", M)
    if best_k == 1:
        trend = (f"rises with k, where the paper's falls: a merge of more experts dilutes each specialist on its own "
                 f"domain, so the in-domain R(k) is degenerate (its best k is 1) and the saturation claim's precondition "
                 f"is unmet")
    else:
        trend = f"is lowest at k = {best_k}"
    return (f"At {size} ({method}), the in-domain CE is {i1:.3f} nats/token at k = 1 and {iM:.3f} at k = {M} "
            f"(the base: {base:.3f}): it {trend}. The cross-domain CE (every pool domain, whatever the subset) falls "
            f"from {x1:.3f} at k = 1 to {xM:.3f} at k = {M} (the base: {ce('cross_domain', 0):.3f}): that curve is the "
            f"one the 1/(k + b) tail describes.")


def status(tables: dict, derived: dict) -> str:
    """One sentence: whether the nine-pool sweep is stored at this profile, and what is."""
    if "nine_saturation" in tables:
        return (f"The nine-pool sweep is stored ({len(tables['nine_merges']):,} evaluation rows, "
                f"{tables['nine_subsets']['subset'].nunique():,} distinct subsets over {len(tables['nine_experts']):,} experts).")
    missing = derived.get("missing_sizes") or []
    have = ", ".join(dict.fromkeys(tables["nine_pilot"]["size"])) if "nine_pilot" in tables else "none"
    return (f"The nine-pool sweep is not stored at this profile yet (sizes without their records: "
            f"{', '.join(missing) or 'all'}); the pilot that chooses each size's recipe is stored for: {have}. "
            "The parts still to run, with their predicted cost, are in the table below.")
