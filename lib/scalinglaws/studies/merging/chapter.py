"""The merging chapter's tables, computed from the stored tables (the chapter only formats them).

Each function takes stored tables (`experts`, `specialisation`, `merges`, `multitask`, `curves`,
`variance`, `fits`, `stopping`, `theory`, `subsets`) and returns a DataFrame or a dict of scalars
for glue. `tests/test_merging_study.py` runs them on the smoke profile's tables.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from scalinglaws import laws
from scalinglaws.studies.merging import analysis as MA
from scalinglaws.studies.merging import subsets as S

LAW_PARAMS = ("L_star", "B", "beta", "A0", "gamma", "b")


def sizes_of(experts: pd.DataFrame) -> pd.Series:
    """size -> N (non-embedding), smallest first."""
    return experts.groupby("size")["N"].first().sort_values()


def fitted(fits: pd.DataFrame, method: str, scope: str) -> dict | None:
    """{param: estimate} of one stored fit, or None."""
    f = fits[(fits["method"] == method) & (fits["scope"] == scope)]
    return dict(zip(f["param"], f["estimate"])) if len(f) else None


def specialisation_deltas(spec: pd.DataFrame) -> pd.DataFrame:
    """Expert rows of `specialisation` with delta = CE(expert) - CE(base) on the same domain, and
    own = the expert's own domain."""
    base = spec[spec["expert_domain"] == "base"].set_index(["size", "eval_domain"])["ce"]
    ex = spec[spec["expert_domain"] != "base"].copy()
    ex["delta"] = ex["ce"].to_numpy() - base.loc[list(zip(ex["size"], ex["eval_domain"]))].to_numpy()
    ex["own"] = ex["expert_domain"] == ex["eval_domain"]
    return ex


def endpoint_curves(curves: pd.DataFrame, M: int, method: str = "average", scope: str = "in_domain"):
    """(CE at k = 1, CE at k = M) per size, for one method and scope."""
    c = curves[(curves["method"] == method) & (curves["scope"] == scope)]
    return c[c["k"] == 1].set_index("size")["ce"], c[c["k"] == M].set_index("size")["ce"]


def trend(x: float) -> str:
    return "n/a" if not np.isfinite(x) else ("falls" if x < 0 else "rises")


def held_out_slope(curves: pd.DataFrame, size: str, method: str = "average") -> float:
    ho = curves[(curves["method"] == method) & (curves["scope"] == "held_out") & (curves["size"] == size)]
    return float(np.polyfit(ho["k"], ho["ce"], 1)[0]) if len(ho) > 1 else math.nan


def fit_parameter_table(fits: pd.DataFrame) -> pd.DataFrame:
    """The macro and variance fits: estimate [95% CI] per parameter, with R^2, ok and points."""
    macro = fits[fits["scope"].isin([*MA.MACRO_SCOPES, "variance", "variance_fpc"])].copy()
    macro["value"] = [f"{e:.3g} [{lo:.3g}, {hi:.3g}]" for e, lo, hi in zip(macro["estimate"], macro["lo"], macro["hi"])]
    tab = macro.pivot(index=["scope", "method"], columns="param", values="value")
    tab = tab[[c for c in LAW_PARAMS if c in tab.columns]]
    return tab.join(macro.groupby(["scope", "method"])[["r2", "ok", "n_points"]].first())


def fit_quality(fits: pd.DataFrame) -> dict:
    """R^2 summaries of the CE fits and the variance fits; how many fits are ok; beta per domain."""
    dom = fits[fits["scope"].str.startswith("domain:")]
    ce_fits = fits[~fits["scope"].str.startswith("variance")].groupby(["method", "scope"])["r2"].first()
    beta = dom[(dom["method"] == "average") & (dom["param"] == "beta")]["estimate"]
    ok = fits.groupby(["method", "scope"])["ok"].first()
    out = {"r2_min": ce_fits.min(), "r2_median": ce_fits.median(),
           "r2_frac98": (ce_fits > 0.98).mean() if len(ce_fits) else math.nan,
           "beta_dom_lo": beta.min() if len(beta) else math.nan, "beta_dom_hi": beta.max() if len(beta) else math.nan,
           "n_fits": len(ok), "n_fits_ok": int(ok.sum()), "ce_r2": ce_fits,
           "r2_by_domain": dom.groupby(["method", "scope"])["r2"].first().unstack("method") if len(dom) else pd.DataFrame()}
    for sc, tag in (("variance", "var"), ("variance_fpc", "fpc")):
        vr2 = fits[fits["scope"] == sc].groupby("method")["r2"].first()
        out[f"r2_{tag}_lo"], out[f"r2_{tag}_hi"] = (vr2.min(), vr2.max()) if len(vr2) else (math.nan, math.nan)
    return out


def three_point_table(curves: pd.DataFrame, sizes: pd.Series, methods, scope: str = "in_domain") -> pd.DataFrame:
    """The three-point recipe (k = 1, 2, 4) per method and size: L_inf, A, b."""
    rows = []
    for method in methods:
        c = curves[(curves["method"] == method) & (curves["scope"] == scope)]
        for size, g in c.groupby("size"):
            L = dict(zip(g["k"], g["ce"]))
            if all(k in L for k in (1, 2, 4)):
                rows.append({"method": method, "size": size, "N": sizes[size], **MA.three_point(L[1], L[2], L[4])})
    return pd.DataFrame(rows)


def extrapolation_errors(extrap: pd.DataFrame, scope: str = "in_domain") -> dict:
    """Mean and max |relative error| of each extrapolation test at `scope`."""
    out = {}
    for test in ("three_point", "joint_k124", "largest_N"):
        e = extrap[(extrap["test"] == test) & (extrap["scope"] == scope)] if len(extrap) else extrap
        out[test] = (e["rel_error"].abs().mean(), e["rel_error"].abs().max()) if len(e) else (math.nan, math.nan)
    return out


def stopping_tables(stopping: pd.DataFrame):
    """(median R(k) over domains per method/size/k, k80/k90 of the cross-domain curves per method x size,
    k80/k90 of the median curves)."""
    dom_st = stopping[stopping["scope"].str.startswith("domain:")]
    med = dom_st.groupby(["method", "size", "k"])["R"].median().reset_index()
    kt = stopping[stopping["scope"] == "cross_domain"].groupby(["method", "size"])[["k80", "k90"]].first().unstack("size")
    med_k = med.groupby(["method", "size"]).apply(
        lambda g: pd.Series({"k80": laws.k_at(g.set_index("k")["R"], 0.8), "k90": laws.k_at(g.set_index("k")["R"], 0.9)}),
        include_groups=False)
    return med, kt, med_k


def method_comparison_table(curves: pd.DataFrame, M: int) -> pd.DataFrame:
    """Relative CE difference of every method to Average at k = M, per scope and size."""
    rows = [MA.method_comparison(curves, k=M, scope=scope).assign(scope=scope)
            for scope in ("in_domain", "cross_domain") if scope in set(curves["scope"])]
    return pd.concat(rows, ignore_index=True)


def permutation_check(merges: pd.DataFrame, plan: pd.DataFrame, params: dict, M: int) -> tuple[str | None, pd.DataFrame]:
    """At the first fully enumerated size: the permutation-prefix curves vs full enumeration."""
    full = plan[plan["scheme"] == "all"]["size"].unique()
    if not len(full):
        return None, pd.DataFrame(columns=["method", "k", "rel"])
    prefixes = [S.subset_key(s) for s in S.plan_subsets(M, "permutations", params["n_permutations"],
                                                        params["permutation_candidates"], params["seed"])]
    return full[0], MA.prefix_vs_full(merges, full[0], prefixes)


def multitask_table(multitask: pd.DataFrame, spec: pd.DataFrame, merges: pd.DataFrame, sizes: pd.Series,
                    methods, domains) -> pd.DataFrame:
    """Multitask fine-tunes of k domains vs the experts alone and vs each merge of the same subset."""
    rows = []
    for (size, k, subset), g in multitask.groupby(["size", "k", "subset"]):
        row = {"size": size, "N": sizes[size], "k": k, "subset": subset,
               "multitask in-domain": g[g["in_subset"]]["ce"].mean(), "multitask cross": g["ce"].mean()}
        own = spec[(spec["size"] == size) & (spec["expert_domain"] == spec["eval_domain"])
                   & spec["eval_domain"].isin(domains[:k])]
        row["experts alone (own domain)"] = own["ce"].mean()
        mm = merges[(merges["size"] == size) & (merges["subset"] == subset)]
        for method in methods:
            r = mm[mm["method"] == method]
            row[f"{method} in-domain"] = r[r["in_subset"]]["ce"].mean()
        rows.append(row)
    mt = pd.DataFrame(rows)
    if len(mt):
        mt["best merge in-domain"] = mt[[f"{m} in-domain" for m in methods]].min(axis=1)
        mt["gap"] = (mt["multitask in-domain"] - mt["best merge in-domain"]) / mt["best merge in-domain"]
    return mt


def theory_vs_fit(theory: pd.DataFrame, fits: pd.DataFrame) -> pd.DataFrame:
    """Per method and size: the predicted tail amplitude (c^2/2) Tr(H Sigma) with its interval beside the
    fitted A(N) of the cross-domain law, and the predicted vs fitted floor; A_ratio = fitted / predicted."""
    rows = []
    for method, g in theory.groupby("method"):
        f = fits[(fits["method"] == method) & (fits["scope"] == "cross_domain") & (fits["law"] == "merging")]
        if f.empty:
            continue
        p = dict(zip(f["param"], f["estimate"]))
        for r in g.itertuples():
            rows.append({"method": method, "size": r.size, "N": r.N,
                         "A_pred": r.A_pred, "A_pred_lo": r.A_pred_lo, "A_pred_hi": r.A_pred_hi,
                         "A_fit": float(laws.merging_amplitude(p, r.N)),
                         "floor_pred": r.L_pool_floor_pred, "floor_fit": float(laws.merging_floor(p, r.N)),
                         "L_kM_exact": r.L_kM_exact, "L_inf_pred": r.L_inf_pred})
    cmp = pd.DataFrame(rows)
    if len(cmp):
        cmp["A_ratio"] = cmp["A_fit"] / cmp["A_pred"]
    return cmp
