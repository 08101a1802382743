"""The merging chapter's tables, computed from the stored tables (the chapter only formats them).

Each function takes stored tables (`pilot`, `recipe`, `experts`, `specialisation`, `noise`,
`merges`, `curves`, `variance`, `tail_fits`, `theory_vs_tail`, `coefficient_ratio`, `fits`,
`stopping`, `extrapolation`, `multitask`, `subsets`) and returns a DataFrame or a dict of scalars
for glue. `tests/test_merging_study.py` runs them on the smoke profile's tables.

This module is the chapter's whole public surface: `book/merging.ipynb` imports it and nothing else
of the study. What the chapter needs from other modules (the method registry, the paper's typed
numbers, the evaluation context, the conventions check, the planner, the seed table, the figures)
is re-exported below under the names the chapter uses, so the study's modules can be reorganised
without editing the book.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from scalinglaws import laws
from scalinglaws.studies.merging import analysis as MA
from scalinglaws.studies.merging import subsets as S
from scalinglaws.studies.merging import tail as TL
from scalinglaws.studies.merging import nine  # noqa: F401  (the nine-expert pool's section)
# the chapter's surface from other modules (see the module docstring)
from scalinglaws.studies.merging.tail import tail_wide  # noqa: F401
from scalinglaws.studies.merging.analysis import extrapolation_summary, fitted  # noqa: F401
from scalinglaws.studies.merging.config import METHOD_VARIANTS  # noqa: F401
from scalinglaws.studies.merging.conventions import PROTOCOL as CONVENTIONS_PROTOCOL  # noqa: F401
from scalinglaws.studies.merging.conventions import headline as conventions_headline  # noqa: F401
from scalinglaws.studies.merging.conventions import side_by_side as conventions_side_by_side  # noqa: F401
from scalinglaws.studies.merging.figures import (curves_grid, palette, pilot_figure,  # noqa: F401
                                                 specialisation_heatmap, stopping_figure, tails_figure,
                                                 variance_grid, nine_figure)
from scalinglaws.studies.merging.literature import PAPER  # noqa: F401
from scalinglaws.studies.merging.planning import experts_for_target, load_fit  # noqa: F401
from scalinglaws.studies.merging.seeds import seed_table  # noqa: F401
from scalinglaws.studies.merging.study import context_of  # noqa: F401

LAW_PARAMS = ("L_star", "B", "beta", "A0", "gamma", "b")


def sizes_of(experts: pd.DataFrame) -> pd.Series:
    """size -> N (non-embedding), smallest first."""
    return experts.groupby("size")["N"].first().sort_values()


def pools_of(curves: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(curves["pool"]))


def pool_size(curves: pd.DataFrame, pool: str) -> int:
    return int(curves[curves["pool"] == pool]["k"].max())


# ---------------------------------------------------------------------------------------------
# pilot, specialisation, noise


def pilot_table(recipe: pd.DataFrame) -> pd.DataFrame:
    """The pilot grid: mean gain and forgetting (with standard errors) per (lr, token multiple),
    whether the rule allows it and which one it chose."""
    cols = ["lr", "token_mult", "tokens", "runs", "gain", "gain_se", "forgetting", "forgetting_se",
            "forgetting_pool", "forgetting_off", "forgetting_per_gain", "eligible", "chosen"]
    return recipe[cols].sort_values(["lr", "token_mult"]).reset_index(drop=True)


def specialisation_deltas(spec: pd.DataFrame) -> pd.DataFrame:
    """Expert rows of `specialisation` with delta = CE(expert) - CE(base) on the same domain, and
    own = the expert's own domain."""
    base = spec[spec["expert_domain"] == "base"].set_index(["size", "eval_domain"])["ce"]
    ex = spec[spec["expert_domain"] != "base"].copy()
    ex["delta"] = ex["ce"].to_numpy() - base.loc[list(zip(ex["size"], ex["eval_domain"]))].to_numpy()
    ex["own"] = ex["expert_domain"] == ex["eval_domain"]
    return ex


def expert_effects(spec: pd.DataFrame, pools: dict) -> pd.DataFrame:
    """Per size and pool: the experts' mean own-domain gain, forgetting inside the pool and off it."""
    ex = specialisation_deltas(spec)
    rows = []
    for size, g in ex.groupby("size", sort=False):
        for pool, doms in pools.items():
            e = g[g["expert_domain"].isin(doms)]
            own = e[e["own"]]
            inside = e[~e["own"] & e["eval_domain"].isin(doms)]
            off = e[~e["eval_domain"].isin(doms)]
            rows.append({"size": size, "N": g["N"].iloc[0], "pool": pool, "gain": -own["delta"].mean(),
                         "forgetting_pool": inside["delta"].mean(), "forgetting_off": off["delta"].mean()})
    return pd.DataFrame(rows)


def noise_summary(noise: pd.DataFrame) -> pd.DataFrame:
    """Per size: the median per-domain CE standard error of a single model (base and experts) and
    the median paired standard error of an expert's change from the base on its own domain."""
    single = noise[~noise["paired"]].groupby("size")["ce_se"].median().rename("ce_se_single")
    p = noise[noise["paired"]]
    own = p[[m.split(" - ")[0] == d for m, d in zip(p["model"], p["eval_domain"])]]
    paired = own.groupby("size")["ce_se"].median().rename("ce_se_paired_own")
    return pd.concat([single, paired], axis=1).reset_index()


# ---------------------------------------------------------------------------------------------
# base vs merges


def base_vs_merge(curves: pd.DataFrame, pool: str, scope: str = "in_domain") -> pd.DataFrame:
    """Per (size, method) of one pool: the base's CE, the merge of 1 and of all M experts, the best
    k and its CE, delta = CE(k = M) - CE(base) and beats_base (the best k is below the base)."""
    c = curves[(curves["pool"] == pool) & (curves["scope"] == scope)]
    rows = []
    for (size, N, method), g in c.groupby(["size", "N", "method"], sort=False):
        g = g.set_index("k")["ce"]
        M = int(g.index.max())
        kb = int(g.drop(0, errors="ignore").idxmin())
        rows.append({"size": size, "N": N, "method": method, "base": g.get(0, math.nan), "k=1": g.get(1, math.nan),
                     "k=M": g[M], "best_k": kb, "best": g[kb], "delta_M": g[M] - g.get(0, math.nan),
                     "beats_base": bool(g[kb] < g.get(0, math.nan))})
    return pd.DataFrame(rows).sort_values(["N", "method"]).reset_index(drop=True)


def verdict_word(beats: bool) -> str:
    return "beats the base" if beats else "does not beat the base"


# ---------------------------------------------------------------------------------------------
# fits


def fit_parameter_table(fits: pd.DataFrame) -> pd.DataFrame:
    """The macro and variance joint fits: estimate [95% CI] per parameter, R^2, ok and why not."""
    macro = fits[fits["scope"].isin([*MA.MACRO_SCOPES, "variance", "variance_fpc"])].copy()
    macro["value"] = [f"{e:.3g} [{lo:.3g}, {hi:.3g}]" for e, lo, hi in zip(macro["estimate"], macro["lo"], macro["hi"])]
    tab = macro.pivot(index=["pool", "scope", "method"], columns="param", values="value")
    tab = tab[[c for c in LAW_PARAMS if c in tab.columns]]
    return tab.join(macro.groupby(["pool", "scope", "method"])[["r2", "ok", "why_not_ok", "n_points"]].first())


def fit_quality(fits: pd.DataFrame) -> dict:
    """R^2 summaries of the joint CE fits and the variance fits; how many are ok."""
    first = fits.groupby(["pool", "method", "scope"])[["r2", "ok"]].first()
    ce = first[~first.index.get_level_values("scope").str.startswith("variance")]
    out = {"r2_min": ce["r2"].min(), "r2_median": ce["r2"].median(), "r2_max": ce["r2"].max(),
           "n_fits": len(first), "n_fits_ok": int(first["ok"].sum())}
    for sc, tag in (("variance", "var"), ("variance_fpc", "fpc")):
        v = first[first.index.get_level_values("scope") == sc]["r2"]
        out[f"r2_{tag}_lo"], out[f"r2_{tag}_hi"] = (v.min(), v.max()) if len(v) else (math.nan, math.nan)
    return out


def tail_table(tails: pd.DataFrame, scope: str = "cross_domain") -> pd.DataFrame:
    """Per-size tail fits L_inf + A/(k + b) with intervals, R^2, ok and why not."""
    t = TL.tail_wide(tails)
    t = t[t["scope"] == scope].copy()
    for p in ("L_inf", "A", "b"):
        t[p] = [f"{e:.4g} [{lo:.3g}, {hi:.3g}]" for e, lo, hi in zip(t[p], t[f"{p}_lo"], t[f"{p}_hi"])]
    return t[["pool", "method", "size", "N", "L_inf", "A", "b", "r2", "ok", "why_not_ok"]].sort_values(
        ["pool", "method", "N"]).reset_index(drop=True)


def tail_ok_count(tails: pd.DataFrame, pool: str, scope: str = "cross_domain") -> tuple[int, int]:
    """(ok fits, fits) among a pool's per-size tail fits of every method in one scope."""
    t = TL.tail_wide(tails)
    t = t[(t["pool"] == pool) & (t["scope"] == scope)]
    return int(t["ok"].astype(bool).sum()), len(t)


def a_trend(tails: pd.DataFrame, pool: str, method: str = "average", scope: str = "cross_domain") -> float:
    """Log-log slope of the fitted A over N (positive: A grows with N)."""
    t = TL.tail_wide(tails)
    t = t[(t["pool"] == pool) & (t["method"] == method) & (t["scope"] == scope) & (t["A"] > 0)]
    return float(np.polyfit(np.log(t["N"]), np.log(t["A"]), 1)[0]) if len(t) > 1 else math.nan


def three_point_table(curves: pd.DataFrame, sizes: pd.Series, methods, pool: str, scope: str = "in_domain") -> pd.DataFrame:
    """The three-point recipe (k = 1, 2, 4) per method and size: L_inf, A, b."""
    rows = []
    for method in methods:
        c = curves[(curves["pool"] == pool) & (curves["method"] == method) & (curves["scope"] == scope)]
        for size, g in c.groupby("size"):
            L = dict(zip(g["k"], g["ce"]))
            if all(k in L for k in (1, 2, 4)):
                rows.append({"method": method, "size": size, "N": sizes[size], **MA.three_point(L[1], L[2], L[4])})
    return pd.DataFrame(rows)


def extrapolation_errors(extrap: pd.DataFrame, pool: str, scope: str = "in_domain") -> dict:
    """Mean and max |relative error| of each extrapolation test at `scope` in one pool."""
    out = {}
    for test in ("three_point", "joint_k124", "largest_N"):
        e = extrap[(extrap["pool"] == pool) & (extrap["test"] == test) & (extrap["scope"] == scope)] if len(extrap) else extrap
        out[test] = (e["rel_error"].abs().mean(), e["rel_error"].abs().max()) if len(e) else (math.nan, math.nan)
    return out


def stopping_tables(stopping: pd.DataFrame, pool: str):
    """(median R(k) over domains per method/size/k, k80/k90 of the cross-domain curves per
    method x size, k80/k90 of the median curves) of one pool."""
    st = stopping[stopping["pool"] == pool]
    dom_st = st[st["scope"].str.startswith("domain:")]
    med = dom_st.groupby(["method", "size", "k"])["R"].median().reset_index()
    kt = st[st["scope"] == "cross_domain"].groupby(["method", "size"])[["k80", "k90"]].first().unstack("size")
    med_k = med.groupby(["method", "size"]).apply(
        lambda g: pd.Series({"k80": laws.k_at(g.set_index("k")["R"], 0.8), "k90": laws.k_at(g.set_index("k")["R"], 0.9)}),
        include_groups=False) if len(med) else pd.DataFrame(columns=["k80", "k90"])
    return med, kt, med_k


def method_comparison_table(curves: pd.DataFrame, pool: str) -> pd.DataFrame:
    """Relative CE difference of every method to Average at k = M, per scope and size, one pool."""
    c = curves[curves["pool"] == pool]
    M = pool_size(curves, pool)
    rows = [MA.method_comparison(c, k=M, scope=scope).assign(scope=scope)
            for scope in ("in_domain", "cross_domain") if scope in set(c["scope"])]
    return pd.concat(rows, ignore_index=True)


def permutation_check(merges: pd.DataFrame, plan: pd.DataFrame, params: dict, pool: str) -> tuple[str | None, pd.DataFrame]:
    """At the first fully enumerated size: the permutation-prefix curves vs full enumeration."""
    p = plan[(plan["pool"] == pool) & (plan["scheme"] == "all")]
    M = len(params["pools"][pool])
    if not len(p) or math.factorial(M) < params["n_permutations"]:
        return None, pd.DataFrame(columns=["method", "k", "rel"])
    size = p["size"].iloc[0]
    prefixes = [S.subset_key(s) for s in S.plan_subsets(M, "permutations", params["n_permutations"],
                                                        params["permutation_candidates"], params["seed"])]
    return size, MA.prefix_vs_full(merges, size, prefixes, pool=pool)


def multitask_table(multitask: pd.DataFrame, spec: pd.DataFrame, merges: pd.DataFrame, methods, pools: dict) -> pd.DataFrame:
    """Multitask fine-tunes of k domains vs the experts alone and vs each merge of the same subset."""
    rows = []
    for (pool, size, N, k, subset), g in multitask.groupby(["pool", "size", "N", "k", "subset"]):
        doms = pools[pool][:k]
        row = {"pool": pool, "size": size, "N": N, "k": k,
               "multitask in-domain": g[g["in_subset"]]["ce"].mean(), "multitask cross": g["ce"].mean()}
        own = spec[(spec["size"] == size) & (spec["expert_domain"] == spec["eval_domain"]) & spec["eval_domain"].isin(doms)]
        row["experts alone (own domain)"] = own["ce"].mean()
        mm = merges[(merges["pool"] == pool) & (merges["size"] == size)]
        row["base in-domain"] = mm[(mm["k"] == 0) & mm["eval_domain"].isin(doms)]["ce"].mean()
        mm = mm[mm["subset"] == subset]
        for method in methods:
            r = mm[mm["method"] == method]
            row[f"{method} in-domain"] = r[r["in_subset"]]["ce"].mean()
        rows.append(row)
    mt = pd.DataFrame(rows)
    if len(mt):
        mt["best merge in-domain"] = mt[[f"{m} in-domain" for m in methods]].min(axis=1)
        mt["gap"] = (mt["multitask in-domain"] - mt["best merge in-domain"]) / mt["best merge in-domain"]
    return mt


def tuned_methods_table(merges: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, str]:
    """(table, selection sentence) of the fair method comparison at k = M (`tuned.tuned_table`): per
    pool, size and method family, the variants tried, the pick on the selection domains, its CE there
    and on the held-out domains, relative to Average's on the held-out domains (%)."""
    from scalinglaws.studies.merging.tuned import SELECTION, tuned_table
    t = tuned_table(merges, seed)
    out = t[["pool", "size", "method", "tried", "setting", "select", "score", "rel_to_average"]].copy()
    out["rel_to_average"] = out["rel_to_average"] * 100
    out.columns = ["pool", "size", "method", "variants tried", "picked", "CE selection domains",
                   "CE scoring domains", "vs Average, scoring domains (%)"]
    doms = t.drop_duplicates("pool")
    split = "; ".join(f"{r.pool}: select on {r.select_domains}, score on {r.score_domains}" for r in doms.itertuples())
    return out, f"{SELECTION} ({split})" if split else SELECTION
