"""What the testbed chapter states, computed from the stored tables (`lr_sweep`, `ladder`, `ce`,
`evals`): is the ladder clean (test CE strictly falling with N, each step larger than its sampling
noise), where each size's best learning rate lies in the grid, and how large the evaluation noise
is next to the differences the other studies compare."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from scalinglaws.evaluation import domain_mean_se


def ladder_steps(ladder: pd.DataFrame) -> pd.DataFrame:
    """Adjacent sizes of the chosen ladder: the test-CE drop from one size to the next and its
    sampling standard error. The windows are the same for every model, so the drop's error is
    at most the sum of the two errors (perfect anti-correlation) and, as stored, we report that
    conservative bound; `clean` = the drop exceeds twice it."""
    lad = ladder.sort_values("non_embedding").reset_index(drop=True)
    rows = []
    for a, b in zip(lad.itertuples(), lad.iloc[1:].itertuples()):
        drop, se = a.test_ce - b.test_ce, a.test_ce_se + b.test_ce_se
        rows.append({"from": a.size, "to": b.size, "N_ratio": b.non_embedding / a.non_embedding,
                     "drop": drop, "drop_se_bound": se, "clean": bool(drop > 2 * se)})
    # the columns even for a one-size ladder (no steps), so the claims can say "not testable"
    return pd.DataFrame(rows, columns=["from", "to", "N_ratio", "drop", "drop_se_bound", "clean"])


def strictly_falling(ladder: pd.DataFrame) -> bool:
    """Test CE strictly decreasing in N over the chosen ladder."""
    ce = ladder.sort_values("non_embedding")["test_ce"].to_numpy()
    return bool(np.all(np.diff(ce) < 0))


def lr_position(lr_sweep: pd.DataFrame) -> pd.DataFrame:
    """Per size: the chosen rate and whether it lies at an edge of the grid (then the true optimum
    may lie outside it, which the chapter says), and the val-CE cost of the next-best rate."""
    rows = []
    for size, g in lr_sweep[~lr_sweep["diverged"]].groupby("size", sort=False):
        g = g.sort_values("lr")
        best = g[g["chosen"]].iloc[0]
        others = g[~g["chosen"]]["val_ce"]
        rows.append({"size": size, "N": int(best["N"]), "lr": best["lr"],
                     "edge": "low" if best["lr"] == g["lr"].min() else "high" if best["lr"] == g["lr"].max() else "inside",
                     "val_ce": best["val_ce"], "next_best_gap": float(others.min() - best["val_ce"]) if len(others) else math.nan})
    return pd.DataFrame(rows).sort_values("N").reset_index(drop=True)


def noise_summary(ce: pd.DataFrame) -> dict:
    """Sampling standard error of a per-domain test CE (median and max over sizes and domains) and
    of the domain-mean CE of one model."""
    per_model = ce.groupby("size")["ce_se"].agg(domain_mean_se)
    return {"domain_se_median": float(ce["ce_se"].median()), "domain_se_max": float(ce["ce_se"].max()),
            "mean_se_max": float(per_model.max())}


def ladder_sentence(ladder: pd.DataFrame, lr_sweep: pd.DataFrame) -> str:
    """One sentence on where the ladder stops improving, written from the tables (so it stays true
    when the results change): the first size that is not better than the one before it, and where
    that size's best learning rate lies."""
    lad = ladder.sort_values("non_embedding").reset_index(drop=True)
    ce = lad["test_ce"].to_numpy()
    bad = [i for i in range(1, len(lad)) if ce[i] >= ce[i - 1]]
    if not bad:
        return "Every size improves on the one before it."
    i = bad[0]
    pos = lr_position(lr_sweep).set_index("size")
    best = lad["size"].iloc[int(np.argmin(ce))]
    edge = pos.loc[lad["size"].iloc[i], "edge"]
    where = {"inside": "inside the grid", "low": "at the grid's lowest rate", "high": "at the grid's highest rate"}[edge]
    return (f"From {lad['size'].iloc[i]} on, larger models are not better: the best base is {best}, and "
            f"{lad['size'].iloc[i]}'s best rate lies {where}. At this budget every size gets the same "
            f"{int(lad['steps'].iloc[0]) if 'steps' in lad.columns else 'number of'} optimiser steps. A likely cause: "
            "with the standard parametrisation the stable rate shrinks with width, and a wider model trained at "
            "a lower rate for this few steps does not catch up; the larger sizes would need more steps or a "
            "width-transfer rule such as muP. The step check below tests the first remedy.")
