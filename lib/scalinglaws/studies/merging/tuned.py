"""Fair comparisons of the merge methods at k = M: each method's best setting picked on one half of
the evaluation data and scored on the other, with the number of settings it tried beside it.

The study runs each method variant of `config.METHOD_VARIANTS` at fixed options, and some methods
in more than one (TIES at two scales, DELLA with and without Elect). Reading "the best TIES" off
the same numbers it is compared on would favour the method tried most (it wins the evaluation
noise of its best draw). So a method *family* (FAMILIES) picks its variant on a selection half and
is scored on the disjoint scoring half.

What the halves are. The stored `merges` table holds each merge's CE per evaluation domain, not
per evaluation window, so the halves are of the pool's domains: a seeded permutation of the pool's
domains per pool (`evaluation.domain_rng`, purpose "merging-split"), the first floor(M/2) for
selection and the rest for scoring. (A split of every domain's windows, as the DELLA study stores,
needs the merges re-evaluated with per-window losses kept: see SELECTION.)
"""
from __future__ import annotations

import numpy as np
import pandas as pd

# family -> the method variants (`config.METHOD_VARIANTS` names) it tries
FAMILIES: dict[str, tuple[str, ...]] = {
    "Average": ("average",), "Task Arithmetic": ("task_arithmetic",), "TIES": ("ties_l0.5", "ties_l1"),
    "DARE": ("dare",), "DELLA": ("della", "della_linear"),
    "TIES (paper code)": ("ties_l0.5_paper", "ties_l1_paper"),
}
REFERENCE = "Average"
COLUMNS = ["pool", "size", "N", "k", "method", "tried", "setting", "select", "score", "rel_to_average",
           "select_domains", "score_domains", "selection"]
SELECTION = ("each method's variant picked on a seeded half of the pool's evaluation domains and scored on the "
             "other half (the stored merges keep per-domain CE, not per-window losses, so the split is by domain)")


def split_domains(domains, seed: int, pool: str) -> tuple[list[str], list[str]]:
    """(selection domains, scoring domains): a seeded permutation of the pool's domains, the first
    floor(M/2) for selection."""
    from scalinglaws.evaluation import domain_rng
    doms = sorted(domains)
    order = domain_rng(seed, pool, purpose="merging-split").permutation(len(doms))
    half = len(doms) // 2
    return [doms[i] for i in order[:half]], [doms[i] for i in order[half:]]


def tuned_table(merges: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Per (pool, size) at k = M (the merge of the whole pool, in-domain) and method family: the
    variants tried, the one picked on the selection domains, its mean CE on the selection and on the
    scoring domains, and its scoring-half CE relative to Average's (negative: better than Average)."""
    if merges is None or not len(merges):
        return pd.DataFrame(columns=COLUMNS)
    rows = []
    for pool, mp in merges.groupby("pool", sort=False):
        M = int(mp["k"].max())
        top = mp[(mp["k"] == M) & mp["in_subset"].astype(bool)]
        sel_d, score_d = split_domains(top["eval_domain"].unique(), seed, pool)
        if not sel_d or not score_d:
            continue
        for (size, N), g in top.groupby(["size", "N"], sort=False):
            ce = g.groupby(["method", "eval_domain"])["ce"].mean().unstack("eval_domain")
            picks = {}
            for family, variants in FAMILIES.items():
                tried = [v for v in variants if v in ce.index]
                if not tried:
                    continue
                select = ce.loc[tried, sel_d].mean(axis=1)
                pick = str(select.idxmin())
                picks[family] = {"pool": pool, "size": size, "N": int(N), "k": M, "method": family, "tried": len(tried),
                                 "setting": pick, "select": float(select[pick]),
                                 "score": float(ce.loc[pick, score_d].mean()),
                                 "select_domains": ", ".join(sel_d), "score_domains": ", ".join(score_d),
                                 "selection": SELECTION}
            ref = picks.get(REFERENCE, {}).get("score", np.nan)
            for r in picks.values():
                r["rel_to_average"] = (r["score"] - ref) / ref if np.isfinite(ref) else np.nan
                rows.append(r)
    return pd.DataFrame(rows, columns=COLUMNS)
