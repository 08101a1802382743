"""The DELLA chapter's tables and glued numbers, from the stored tables only (book/della.ipynb is a
thin caller: one function per table, every number in its prose glued here)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from scalinglaws.core import profiles as PR
from scalinglaws.studies.della import analysis as A

# the paper's Table 1 (averages of AlpacaEval / GSM8K / MBPP, Llama-2-13B experts)
PAPER_TABLE1 = pd.DataFrame(
    [["LM+Math", 69.9, 72.3, 72.2, 72.9], ["LM+Code", 36.7, 56.1, 43.5, 57.5],
     ["Math+Code", 39.4, 41.0, 43.4, 42.4], ["LM+Math+Code", 40.1, 56.5, 57.2, 57.9]],
    columns=["merge", "TA", "DARE", "TIES", "DELLA"])


def load(store) -> dict:
    """The chapter's tables; `split` and `tuned` only where the stored run has them (runs made
    before the window split have neither)."""
    names = ("grid", "ablations", "best", "noise", "claims", "split", "tuned")
    return {name: store.read(name) for name in names if name in ("grid", "ablations", "best", "noise", "claims")
            or store.has(name)}


def tuned_table(T: dict) -> pd.DataFrame:
    """The fair comparison: per size and group, each tuned method's number of settings tried, its
    pick on the selection half of the windows, its score there and on the held-out scoring half, and
    DELLA's gain over it on the held-out half (nats/token; positive: DELLA better). Empty when the
    stored run predates the split (its tuned claims are then inconclusive)."""
    t = T.get("tuned")
    if t is None or not len(t):
        return pd.DataFrame(columns=["size", "group", "method", "settings tried", "picked", "selection half",
                                     "scoring half", "DELLA gain (held out)"])
    out = t[["size", "group", "method", "tried", "setting", "select", "score", "della_gain"]].copy()
    out.columns = ["size", "group", "method", "settings tried", "picked", "selection half", "scoring half",
                   "DELLA gain (held out)"]
    return out


def _ci(v, lo, hi, fmt=".4f"):
    return f"{v:+{fmt}} [{lo:+{fmt}}, {hi:+{fmt}}]" if np.isfinite(v) else "n/a"


def setup_table(T: dict, prov: dict) -> pd.DataFrame:
    """One row per size: N, experts' domains, models merged, windows per domain."""
    P = prov["config"]
    g = T["grid"]
    rows = []
    for s, d in g.groupby("size", sort=False):
        rows.append({"size": s, "N": int(d["N"].iloc[0]), "groups": d["group"].nunique(),
                     "settings per group": int(d[~d["method"].str.startswith(("base", "expert", "own"))]["setting"].nunique()
                                               + T["ablations"].loc[T["ablations"]["size"] == s, "setting"].nunique()),
                     "tokens per domain": int(d["tokens"].iloc[0])})
    out = pd.DataFrame(rows)
    out.attrs["roles"] = P["roles"]
    return out


def table1(T: dict) -> pd.DataFrame:
    """Our Table 1: per size and group, the best score (mean CE of the members, nats/token; lower
    is better) of TA, DARE, TIES and DELLA over the grid, and the base and the specialists."""
    b = T["best"]
    out = b[["size", "group", "base", "ta_best", "dare_best", "ties_best", "della", "own_expert"]].copy()
    out.columns = ["size", "group", "base", "TA", "DARE", "TIES", "DELLA", "own experts"]
    return out.round(4)


def gains_table(T: dict) -> pd.DataFrame:
    """The best DELLA's setting and its gains (nats/token, 95 % paired bootstrap interval)."""
    b = T["best"]
    out = pd.DataFrame({"size": b["size"], "group": b["group"], "p": b["p"], "eps": b["eps"], "lam": b["lam"],
                        "Elect": b["elect"]})
    for name, label in (("dare_same_p", "vs DARE same p"), ("ta_best", "vs TA"), ("ties_best", "vs TIES"),
                        ("base", "vs base")):
        out[label] = [_ci(v, lo, hi) for v, lo, hi in zip(b[f"gain_{name}"], b[f"gain_{name}_lo"], b[f"gain_{name}_hi"])]
    return out


def ablation_table(T: dict) -> pd.DataFrame:
    """Mean group score per ablation variant and p (over sizes and groups), nats/token."""
    a = T["ablations"].groupby(["size", "group", "p", "variant"])["ce"].mean().reset_index()
    return a.pivot_table(index="variant", columns="p", values="ce", aggfunc="mean").round(4)


def claims_table(T: dict) -> pd.DataFrame:
    c = T["claims"].copy()
    c["measured"] = [_ci(v, lo, hi) if np.isfinite(v) else "-" for v, lo, hi in zip(c["value"], c["lo"], c["hi"])]
    return c[["claim_id", "claim", "measured", "verdict", "note"]]


def glue_numbers(T: dict, prov: dict, glue) -> None:
    """Glue every number the chapter's prose quotes."""
    P = prov["config"]
    b, c = T["best"], T["claims"].set_index("claim_id")
    glue("profile", prov["profile"])
    glue("device", prov["device"])
    glue("commit", prov["commit"][:12])
    glue("run_minutes", f"{prov['unit_compute_s'] / 60:.1f}")
    glue("n_models", f"{prov['merged_models']:,}")
    glue("roles", ", ".join(f"{r} = {d}" for r, d in P["roles"].items()))
    glue("sizes", ", ".join(P["sizes"]))
    glue("p_grid", ", ".join(f"{p:g}" for p in P["p_grid"]))
    glue("eps_grid", ", ".join(f"{e:g}" for e in P["eps_grid"]))
    glue("lam_grid", ", ".join(f"{x:g}" for x in P["lam_grid"]))
    glue("tokens_per_domain", f"{P['tokens_per_domain']:,}")
    glue("seq_len", P["seq_len"])
    glue("bootstrap", P["bootstrap"])
    glue("n_beats_base", f"{int(b['beats_base'].sum())} of {len(b)}")
    t = T.get("tuned")
    tried = t.groupby("method")["tried"].max() if t is not None and len(t) else pd.Series(dtype=int)
    glue("tried_counts", ", ".join(f"{m} {int(n)}" for m, n in tried.items()) if len(tried) else
         "not stored (a run made before the window split)")
    glue("selection_split", t["selection"].iloc[0] if t is not None and len(t) else
         "none: the stored run picked and scored on the same windows, so its tuned claims are inconclusive")
    se = T["grid"]["ce_se"]
    glue("ce_se_median", f"{se.median():.4f}")
    sd = A.mask_seed_sd(T)
    glue("mask_sd", f"{sd:.4f}" if np.isfinite(sd) else "n/a")
    for cid, r in c.iterrows():
        glue(f"claim_{cid}", _ci(r["value"], r["lo"], r["hi"]) if np.isfinite(r["value"]) else "n/a")
        glue(f"verdict_{cid}", r["verdict"])
    glue("n_hold", f"{int((c['verdict'] == 'holds').sum())} of {int((c['verdict'] != 'not testable').sum())}")
    glue("profile_caveat", "These are smoke results: experts of a few optimiser steps on tiny models. They exercise "
         "the pipeline end to end; no conclusion about DELLA can be read from them." if not PR.claims_testable(prov["profile"]) else
         "Experts are short fine-tunes of small models; read the verdicts as statements about this regime.")
