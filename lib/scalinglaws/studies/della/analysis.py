"""The DELLA study's derived tables, pure functions of the stored tables (`grid`, `ablations`,
`noise`): group scores with their paired bootstrap draws, and the `best` table (the paper's
Table 1 shape: each group's best DELLA against TA, TIES and DARE).

A group's *score* is the mean CE (nats/token) over its members' domains; lower is better, so a
*gain* of DELLA over a baseline is score(baseline) - score(DELLA) (positive: DELLA better). Every
interval is the 2.5/97.5 % percentile of the same quantity over the `noise` draws (paired window
resamples: the same resample for every model), i.e. evaluation noise only: the choice of the best
setting is made once on the point estimates and is not redone per draw, except where a claim
says so, and mask randomness is measured separately (`mask_seed_sd`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

KEY = ["size", "group", "setting"]
META = ["N", "method", "p", "eps", "lam", "elect", "rescale", "rank", "seed"]


def scores(tables: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(meta, M): meta indexed by (size, group, setting) with the setting's fields and `score`;
    M the same index with columns 'point' and every draw 0..B-1 of the score."""
    rows = pd.concat([tables["grid"], tables["ablations"].drop(columns="variant")], ignore_index=True)
    meta = rows.groupby(KEY, sort=False).agg({**{c: "first" for c in META}, "ce": "mean"})
    meta = meta.rename(columns={"ce": "score"})
    nz = tables["noise"]
    D = nz.pivot_table(index=KEY, columns="draw", values="score", aggfunc="first")
    D = D.reindex(meta.index)
    M = pd.concat([meta[["score"]].rename(columns={"score": "point"}), D.astype(np.float64)], axis=1)
    return meta, M


def interval(values: pd.Series) -> tuple[float, float, float]:
    """(point, lo, hi) from a Series over M's columns ('point' and the draws)."""
    d = values.drop("point").to_numpy(dtype=float)
    d = d[np.isfinite(d)]
    lo, hi = (np.percentile(d, [2.5, 97.5]) if len(d) else (np.nan, np.nan))
    return float(values["point"]), float(lo), float(hi)


def grid_della(meta: pd.DataFrame, seed: int | None = None) -> pd.DataFrame:
    """The grid's MAGPRUNE/DARE settings with the paper's options (rescale inverse, rank row) and
    the grid's mask seed."""
    m = meta[meta["method"].isin(["della", "dare"]) & (meta["rescale"] == "inverse") & (meta["rank"] == "row")]
    s = m["seed"].min() if seed is None else seed
    return m[m["seed"] == s]


def _best(meta: pd.DataFrame, mask) -> pd.Series:
    """The setting with the lowest score per (size, group) among `mask`."""
    sub = meta[mask]
    return sub.groupby(level=[0, 1])["score"].idxmin()


def best_table(tables: dict) -> pd.DataFrame:
    """Per size and group: the best DELLA setting (eps > 0, point estimate), its score, and its
    gain over DARE at the same p, lam and Elect; over the best DARE, TA and TIES of the grid; over
    the base; and the gap to each member's own expert on its own domain (the specialists)."""
    meta, M = scores(tables)
    gd = grid_della(meta)
    della = _best(gd, gd["method"] == "della")
    dare_best = _best(gd, gd["method"] == "dare")
    ta = _best(meta, meta["method"] == "ta")
    ties = _best(meta, meta["method"] == "ties")
    rows = []
    for cell, key in della.items():
        size, group = cell
        s = meta.loc[key]
        same = gd[(gd["method"] == "dare") & (gd["p"] == s["p"]) & (gd["lam"] == s["lam"]) & (gd["elect"] == s["elect"])]
        same = same.loc[(size, group)] if (size, group) in same.index.droplevel(2) else None
        row = {"size": size, "N": s["N"], "group": group, "setting": key[2], "p": s["p"], "eps": s["eps"],
               "lam": s["lam"], "elect": bool(s["elect"]), "della": s["score"]}

        def gain(name, other_key):
            if other_key is None:
                row.update({name: np.nan, f"gain_{name}": np.nan, f"gain_{name}_lo": np.nan, f"gain_{name}_hi": np.nan})
                return
            v, lo, hi = interval(M.loc[other_key] - M.loc[key])
            row.update({name: meta.loc[other_key, "score"], f"gain_{name}": v, f"gain_{name}_lo": lo, f"gain_{name}_hi": hi})

        gain("dare_same_p", (size, group, same.index[0]) if same is not None and len(same) else None)
        for name, best in (("dare_best", dare_best), ("ta_best", ta), ("ties_best", ties)):
            gain(name, best.get(cell))
        gain("base", (size, group, "base") if (size, group, "base") in meta.index else None)
        gain("own_expert", (size, group, "own_expert") if (size, group, "own_expert") in meta.index else None)
        row["beats_base"] = bool(row["gain_base"] > 0) if np.isfinite(row["gain_base"]) else False
        rows.append(row)
    return pd.DataFrame(rows)


def mask_seed_sd(tables: dict) -> float:
    """Mean over (size, group, p, method) of the standard deviation of the score across mask seeds
    (the ablations' reference DELLA and DARE repeated with `noise_seeds`); NaN without repeats."""
    a = tables["ablations"]
    if not len(a):
        return float("nan")
    fam = a["variant"].map(lambda v: "dare" if v.startswith("dare") else ("della" if v == "reference" or v.startswith("seed=") else None))
    a = a.assign(family=fam).dropna(subset=["family"])
    sc = a.groupby(["size", "group", "p", "family", "seed"])["ce"].mean()
    sd = sc.groupby(level=[0, 1, 2, 3]).std(ddof=1).dropna()
    return float(sd.mean()) if len(sd) else float("nan")


# ---------------------------------------------------------------------------------------------
# fair comparisons of tuned methods: pick on one half of the windows, score on the other

TUNED_COLUMNS = ["size", "group", "method", "tried", "setting", "select", "score", "della_gain", "selection"]
SELECTION = ("each method's setting picked on the 'select' half of every domain's evaluation windows (a seeded "
             "split, study.split_scores) and scored on the disjoint 'score' half")


def method_masks(meta: pd.DataFrame) -> dict[str, np.ndarray]:
    """{method: boolean mask over meta's index} of the settings each tuned method tries: DELLA and
    DARE as the grid runs them (the paper's options, the grid's mask seed), TA and TIES over their grids."""
    gd = grid_della(meta)
    return {"DELLA": meta.index.isin(gd[gd["method"] == "della"].index),
            "DARE": meta.index.isin(gd[gd["method"] == "dare"].index),
            "TA": (meta["method"] == "ta").to_numpy(), "TIES": (meta["method"] == "ties").to_numpy()}


def tuned_table(tables: dict) -> pd.DataFrame:
    """Per (size, group) and tuned method: how many settings it tried, the one picked on the
    selection half, its score on the selection half and on the held-out scoring half, and DELLA's
    gain over it on the scoring half (score(method) - score(DELLA); positive: DELLA better). Empty
    (with the columns) when the stored run has no `split` table (made before the split existed)."""
    split = tables.get("split")
    if split is None or not len(split):
        return pd.DataFrame(columns=TUNED_COLUMNS)
    meta, _ = scores(tables)
    sp = split.pivot_table(index=KEY, columns="half", values="score")
    masks = method_masks(meta)
    rows = []
    for (size, group), _ in meta.groupby(level=[0, 1], sort=False):
        picks = {}
        for method, mask in masks.items():
            keys = [k for k in meta.index[mask] if k[:2] == (size, group) and k in sp.index]
            if not keys:
                continue
            sel = sp.loc[keys]
            k = sel["select"].idxmin()
            picks[method] = {"size": size, "group": group, "method": method, "tried": len(keys), "setting": k[2],
                             "select": float(sel.loc[k, "select"]), "score": float(sel.loc[k, "score"])}
        for method, r in picks.items():
            r["della_gain"] = r["score"] - picks["DELLA"]["score"] if "DELLA" in picks else np.nan
            r["selection"] = SELECTION
            rows.append(r)
    return pd.DataFrame(rows, columns=TUNED_COLUMNS)
