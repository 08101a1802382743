"""The composition study's own questions, in the shared claims schema (`core.claims`).

Each is judged at the largest size and the largest k of each pool from the paired intervals of the
`contrasts` table (the same windows, the same bootstrap resamples for every arm), widened by the
training-seed SD of the contrast (the stored `seeds` table, measures below), and the law check from
`winner_predictions` against the naive forecast "the winner at the largest fitted size stays the
winner". At smoke every verdict is 'not testable' (`core.claims.frame`).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from scalinglaws.core import claims as CL
from scalinglaws.core import regime as R
from scalinglaws.studies.composition.analysis import contrast

FIGURE = "composition.html#composition-compute"
PAPER = "this study"
PAIRED = "paired bootstrap over evaluation windows (the same resamples for both arms)"
# the seeds table's measure for each contrast (the value is itself a difference: one "model")
SEED_MEASURES = {"merge_beats_base": "best_merge_minus_base", "multitask_beats_merge": "multitask_minus_best_merge",
                 "upcycled_beats_multitask": "upcycled_minus_multitask"}
N_BOOT = 2000
# a contrast without replicates of its own, and the replicated one whose seed SD bounds it (why)
SEED_BOUNDS = {"merge_beats_base": ("multitask_minus_best_merge",
                                    "the base is the same model at every seed, so best merge - base moves only "
                                    "with the merge; multitask - best merge moves with the merge and the "
                                    "multitask model, so its variance is at least the merge's alone while the two "
                                    "arms' seed noise is not positively correlated (assumed, not measured)")}


def _seeds(tables: dict, cid: str) -> CL.SeedNoise:
    """The contrast's training-seed noise: its own replicates, else a stated upper bound (SEED_BOUNDS),
    else unknown (the claim is then inconclusive)."""
    bound, why = SEED_BOUNDS.get(cid, (None, ""))
    return CL.seed_noise(tables, SEED_MEASURES[cid], bound=bound, why=why)


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
                rows.append(CL.claim(f"{cid}_{pool}", PAPER, text, measure, note="an arm is missing from the run"))
                continue
            d, lo, hi = contrast(con, pool, size, k, a, b)
            rows.append(CL.judge(f"{cid}_{pool}", PAPER, text, measure + f" ({a} - {b}), nats/token", d, lo, hi,
                                 CL.Below(0), interval=PAIRED, seeds=_seeds(tables, cid),
                                 figure=FIGURE))
    rows.append(_law_predicts_winner(tables))
    return CL.frame(rows, profile)


def _law_predicts_winner(tables: dict) -> dict:
    """Does the per-arm loss-vs-compute line name the winner at the largest size better than the
    naive forecast (the winner at the largest fitted size stays the winner)? Value: the law's share
    of right (pool, k) minus the naive forecast's; 95% interval: bootstrap over (pool, k) cells.
    Seed noise enters as a precondition: each winner's margin must exceed 2 seed SDs of the
    multitask - best merge contrast (else a reseed could change the winner)."""
    wp, wins = tables.get("winner_predictions", pd.DataFrame()), tables.get("wins", pd.DataFrame())
    text = ("A loss-vs-compute line per arm fitted on the smaller sizes names the arm that wins at the largest "
            "size (every pool and k) better than the naive forecast that the winner at the largest fitted size "
            "stays the winner")
    measure = "share of (pool, k) whose winner the law names - the naive forecast's share"
    if not len(wp) or not len(wins):
        return CL.claim("law_predicts_winner", PAPER, text, measure,
                        note="needs at least 3 sizes (fit on 2, predict the largest)")
    order = wins.drop_duplicates("size").sort_values("N")["size"].tolist()
    naive, margins = [], []
    for r in wp.itertuples():
        prev = order[order.index(r.size) - 1]
        w = wins[(wins["pool"] == r.pool) & (wins["k"] == r.k)].set_index("size")
        naive.append(w.loc[prev, "winner"] == r.measured_winner)
        margins.append(float(w.loc[r.size, "margin"]))
    law, base = wp["correct"].to_numpy(dtype=float), np.asarray(naive, dtype=float)
    d = law - base
    idx = np.random.default_rng(0).integers(0, len(d), (N_BOOT, len(d)))
    lo, hi = np.percentile(d[idx].mean(1), [2.5, 97.5])
    sd = CL.seed_noise(tables, SEED_MEASURES["multitask_beats_merge"]).sd
    pre = CL.Precondition("smallest winning margin at the largest size / (2 x seed SD of multitask_minus_best_merge)",
                          min(margins) / (2 * sd) if np.isfinite(sd) and sd > 0 else math.nan, ">", 1.0)
    return CL.judge("law_predicts_winner", PAPER, text, measure, d.mean(), lo, hi, CL.Above(0),
                    interval="bootstrap over (pool, k) cells", seeds=None, figure=FIGURE, preconditions=[pre],
                    note=f"law right in {int(law.sum())} of {len(law)}, the naive forecast in {int(base.sum())} of "
                         f"{len(base)} (winners: {', '.join(sorted(set(wp['measured_winner'])))})",
                    decide="a pool or k where the winner changes with size")


def derived_tables(tables: dict, config: dict) -> dict:
    """`fits` recomputed from the stored `summary` (`analysis.fits_table`; no retraining): a table
    stored before the one `fits` schema is brought under it."""
    from scalinglaws.studies.composition.analysis import fits_table
    return {"fits": fits_table(tables["summary"])} if "summary" in tables else {}


def regime(tables: dict) -> pd.DataFrame:
    """The composition study's regime (`core.regime`): one row per (pool, base size) with the base's
    pretraining tokens and, as expert_gain, the best merge's gain over the base at the pool's largest k."""
    s = tables["summary"]
    rows = []
    for (pool, size), g in s.groupby(["pool", "size"], sort=False):
        kmax = g[g["k"] == g["k"].max()]
        base = kmax[kmax["arm"] == "base"]["loss"]
        merges = kmax[kmax["arm"].str.startswith("merge_")]["loss"]
        gain = float(base.iloc[0] - merges.min()) if len(base) and len(merges) else math.nan
        rows.append(R.row(f"{pool}/{size}", g["N"].iloc[0], g["pretrain_tokens"].iloc[0],
                          expert_gain=gain, seeds=R.seed_count(tables, f"{pool}/{size}")))
    return R.frame(rows)
