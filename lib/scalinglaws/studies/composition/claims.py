"""The composition study's own questions, in the shared claims schema (`core.claims`).

Each is judged at the largest size and the largest k of each pool from the paired intervals of the
`contrasts` table (the same windows, the same bootstrap resamples for every arm), and the law
check from `winner_predictions`. At smoke every verdict is 'not testable' (`core.claims.frame`).
"""
from __future__ import annotations

import math

import pandas as pd

from scalinglaws.core.claims import claim, frame, sign
from scalinglaws.studies.composition.analysis import contrast

FIGURE = "composition.html#composition-compute"
PAPER = "this study"


def _largest(summary: pd.DataFrame, pool: str):
    g = summary[summary["pool"] == pool]
    return g.loc[g["N"].idxmax(), "size"], int(g["k"].max())


def _best_merge(summary: pd.DataFrame, pool, size, k) -> str | None:
    g = summary[(summary["pool"] == pool) & (summary["size"] == size) & (summary["k"] == k)
                & summary["arm"].str.startswith("merge_")]
    return None if not len(g) else g.loc[g["loss"].idxmin(), "arm"]


def claims(tables: dict, profile: str) -> pd.DataFrame:
    summary, con = tables["summary"], tables["contrasts"]
    rows = []
    for pool in dict.fromkeys(summary["pool"]):
        size, k = _largest(summary, pool)
        where = f"{pool} pool, {size}, k={k}"
        bm = _best_merge(summary, pool, size, k)
        pairs = [("merge_beats_base", bm, "base", f"Merging k experts lowers the in-domain loss below the base's ({where}).",
                  "best merge - base, mean CE over the k domains"),
                 ("multitask_beats_merge", "multitask", bm, f"Multitask fine-tuning on the k domains beats the best "
                  f"merge of k experts at the same fine-tuning tokens ({where}).", "multitask - best merge"),
                 ("upcycled_beats_multitask", "upcycled", "multitask", f"An upcycled routed model (E = k) beats the "
                  f"dense multitask model at the same fine-tuning tokens ({where}).", "upcycled - multitask")]
        for cid, a, b, text, measure in pairs:
            if a is None or b is None:
                rows.append(claim(f"{cid}_{pool}", PAPER, text, measure, note="an arm is missing from the run"))
                continue
            d, lo, hi = contrast(con, pool, size, k, a, b)
            rows.append(claim(f"{cid}_{pool}", PAPER, text, measure + f" ({a} - {b})", d, lo, hi,
                              verdict=sign(lo, hi, positive=False), figure=FIGURE,
                              note="holds when the 95% paired bootstrap interval lies below 0"))
    wp = tables.get("winner_predictions", pd.DataFrame())
    text = ("A loss-vs-compute line per arm fitted on the smaller sizes names the arm that wins at the largest "
            "size (every pool and k).")
    if len(wp):
        frac = float(wp["correct"].mean())
        rows.append(claim("law_predicts_winner", PAPER, text, "fraction of (pool, k) whose held-out winner is right",
                          frac, verdict="holds" if frac == 1.0 else "does not hold", figure=FIGURE,
                          note=f"{int(wp['correct'].sum())} of {len(wp)} (pool, k); no interval: a count"))
    else:
        rows.append(claim("law_predicts_winner", PAPER, text, "held-out winner", math.nan,
                          note="needs at least 3 sizes (fit on 2, predict the largest)"))
    return frame(rows, profile)
