"""The merging paper's claims tested on our stored tables, one row per (claim, pool).

Why: the Findings chapter reads every study's `claims` table with one schema, so a verdict is
computed once, from stored numbers, with the measure and its interval beside it, never typed.

Columns (the shared schema): claim_id, paper, claim, measure, value, lo, hi, verdict ('holds' |
'does not hold' | 'not testable'), figure (the chapter figure that shows it), note.

Claims (per pool; Average unless said; the largest base size unless said):
    beats_base     a merge of all M experts beats the base in-domain: value = CE(k=M) - CE(base)
                   (nats), interval +-1.96 x its paired sampling SE; holds if hi < 0
    tail_form      the loss falls like 1/(k + b): the per-size cross-domain tail fits; value = the
                   smallest R^2 over sizes; holds if every size's fit is ok (A > 0 included)
    theory_A       A(N) = (c^2/2) Tr(H Sigma): value = median fitted/predicted over sizes, lo/hi
                   the smallest/largest; holds if every ratio lies in [1/2, 2] with ok tails
    c2_ratio       A(TA)/A(Average) = c^2 = 0.64: value = median ratio over sizes, lo/hi the
                   median of the per-size intervals; holds if 0.64 lies in most sizes' intervals
    a_shrinks      A(N) does not grow with N (the law's gamma >= 0): value = the log-log slope of the
                   fitted A over N (= -gamma); holds if slope <= 0
    saturation     most of the gain arrives early (paper: R = 90% at k = 6 of 9): value = k90 / M of
                   the median per-domain R(k); holds if <= 6/9 and the in-domain curve improves on k = 1
    joint_r2       the joint (N, k) law fits with R^2 > 0.98 (paper): value = R^2 of the in-domain
                   fit; holds if >= 0.98 and the fit is ok
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from scalinglaws.core.claims import frame

PAPER = "Wang et al. 2025 (merging scaling law)"
NAN = math.nan


def _tables(store_or_tables) -> dict:
    if isinstance(store_or_tables, dict):
        return store_or_tables
    return {t: store_or_tables.read(t) for t in store_or_tables.tables()}


def _row(cid, claim, measure, value, lo, hi, verdict, figure, note=""):
    return {"claim_id": cid, "paper": PAPER, "claim": claim, "measure": measure, "value": float(value),
            "lo": float(lo), "hi": float(hi), "verdict": verdict, "figure": figure, "note": note}


def _untestable(cid, claim, measure, figure, why):
    return _row(cid, claim, measure, NAN, NAN, NAN, "not testable", figure, why)


def _largest(df: pd.DataFrame) -> str | None:
    return None if df.empty else df.sort_values("N")["size"].iloc[-1]


def beats_base(T: dict, pool: str) -> dict:
    cid, claim = f"beats_base:{pool}", f"merging all experts of the {pool} pool beats the base in-domain"
    measure, fig = "CE(k=M) - CE(base), in-domain, nats/token", "fig-merging-curves"
    c = T.get("curves", pd.DataFrame())
    c = c[(c["pool"] == pool) & (c["method"] == "average") & (c["scope"] == "in_domain")] if len(c) else c
    if c.empty or not (c["k"] == 0).any():
        return _untestable(cid, claim, measure, fig, "no Average curve with the base")
    size = _largest(c)
    g = c[c["size"] == size]
    M = int(g["k"].max())
    delta = float(g[g["k"] == M]["delta_base"].iloc[0])
    se = NAN
    nz = T.get("noise", pd.DataFrame())
    if len(nz):
        doms = set(T["merges"][T["merges"]["pool"] == pool]["eval_domain"]) if "merges" in T else set()
        p = nz[(nz["size"] == size) & nz["paired"] & nz["eval_domain"].isin(doms)]
        own = p[[m.split(" - ")[0] == d for m, d in zip(p["model"], p["eval_domain"])]]
        if len(own):  # a macro over M domains: the mean of M per-domain paired errors
            se = float(np.sqrt((own["ce_se"] ** 2).sum()) / len(own))
    lo, hi = (delta - 1.96 * se, delta + 1.96 * se) if np.isfinite(se) else (NAN, NAN)
    n_sizes = int((c[c["k"] == c.groupby("size")["k"].transform("max")]["beats_base"]).sum())
    verdict = "holds" if np.isfinite(hi) and hi < 0 else "does not hold"
    note = (f"at {size}, k = {M}; paired sampling SE {se:.3g}; Average at k = M beats the base at {n_sizes} of "
            f"{c['size'].nunique()} sizes")
    return _row(cid, claim, measure, delta, lo, hi, verdict, fig, note)


def _average_tails(T: dict, pool: str) -> pd.DataFrame:
    """The per-size cross-domain tail fits of Average in one pool (the claims' reference curve)."""
    t = T.get("tail_fits", pd.DataFrame())
    return t[(t["pool"] == pool) & (t["method"] == "average") & (t["scope"] == "cross_domain")] if len(t) else t


def tail_form(T: dict, pool: str) -> dict:
    cid, claim = f"tail_form:{pool}", f"in the {pool} pool the loss falls like 1/(k + b) at every base size"
    measure, fig = "smallest R^2 of the per-size cross-domain tail fits (Average)", "fig-merging-tails"
    t = _average_tails(T, pool)
    if t.empty:
        return _untestable(cid, claim, measure, fig, "no tail fits")
    bad = t[~t["ok"].astype(bool)]
    note = "; ".join(f"{r.size}: {r.why_not_ok}" for r in bad.itertuples()) or "every size ok"
    return _row(cid, claim, measure, t["r2"].min(), t["r2"].min(), t["r2"].max(),
                "holds" if bad.empty else "does not hold", fig, note)


def theory_A(T: dict, pool: str) -> dict:
    cid, claim = f"theory_A:{pool}", f"in the {pool} pool the fitted A(N) matches (c^2/2) Tr(H Sigma) within 2x"
    measure, fig = "fitted A / predicted A (Average, cross-domain), median over sizes", "fig-merging-theory"
    j = T.get("theory_vs_tail", pd.DataFrame())
    j = j[(j["pool"] == pool) & (j["method"] == "average")] if len(j) else j
    if j.empty:
        return _untestable(cid, claim, measure, fig, "no theory rows (theory_tokens = 0 or no linear method)")
    r = j["A_ratio"].astype(float)
    good = bool(((r >= 0.5) & (r <= 2.0)).all() and j["tail_ok"].astype(bool).all())
    note = ", ".join(f"{s}: {x:.3g}" for s, x in zip(j["size"], r))
    if not j["tail_ok"].astype(bool).all():
        note += " (some tail fits not ok)"
    return _row(cid, claim, measure, r.median(), r.min(), r.max(), "holds" if good else "does not hold", fig, note)


def c2_ratio(T: dict, pool: str) -> dict:
    cid, claim = f"c2_ratio:{pool}", f"in the {pool} pool A(TA)/A(Average) equals the predicted c^2"
    measure, fig = "A(task_arithmetic) / A(average), cross-domain tails, median over sizes", "fig-merging-theory"
    c = T.get("coefficient_ratio", pd.DataFrame())
    c = c[c["pool"] == pool] if len(c) else c
    if c.empty:
        return _untestable(cid, claim, measure, fig, "needs both average and task_arithmetic")
    pred = float(c["c2_ratio_pred"].iloc[0])
    inside = ((c["lo"] <= pred) & (pred <= c["hi"])).sum()
    good = inside > len(c) / 2 and c["both_ok"].astype(bool).all()
    note = f"predicted {pred:.3g}; inside the interval at {int(inside)} of {len(c)} sizes"
    if not c["both_ok"].astype(bool).all():
        note += "; some tail fits not ok"
    return _row(cid, claim, measure, c["ratio"].median(), c["lo"].median(), c["hi"].median(),
                "holds" if good else "does not hold", fig, note)


def a_shrinks(T: dict, pool: str) -> dict:
    cid, claim = f"a_shrinks:{pool}", f"in the {pool} pool the tail amplitude A(N) does not grow with N"
    measure, fig = "slope of log A over log N (Average, cross-domain tails) = -gamma", "fig-merging-tails"
    t = _average_tails(T, pool)
    t = t[t["A"] > 0] if len(t) else t
    if len(t) < 2:
        return _untestable(cid, claim, measure, fig, "fewer than 2 sizes with A > 0")
    slope = float(np.polyfit(np.log(t["N"].astype(float)), np.log(t["A"].astype(float)), 1)[0])
    return _row(cid, claim, measure, slope, NAN, NAN, "holds" if slope <= 0 else "does not hold", fig,
                "A grows with N" if slope > 0 else "A shrinks with N")


def saturation(T: dict, pool: str) -> dict:
    cid, claim = f"saturation:{pool}", f"in the {pool} pool 90% of the merging gain arrives by k = 2/3 of the pool"
    measure, fig = "k90 / M of the median per-domain R(k), Average", "fig-merging-stopping"
    st, c = T.get("stopping", pd.DataFrame()), T.get("curves", pd.DataFrame())
    st = st[(st["pool"] == pool) & (st["method"] == "average") & st["scope"].str.startswith("domain:")] if len(st) else st
    if st.empty:
        return _untestable(cid, claim, measure, fig, "no stopping table")
    size = _largest(st)
    med = st[st["size"] == size].groupby("k")["R"].median()
    M = int(med.index.max())
    k90 = int(med.index[med.to_numpy() >= 0.9 - 1e-12][0])
    ind = c[(c["pool"] == pool) & (c["method"] == "average") & (c["scope"] == "in_domain") & (c["size"] == size)]
    improves = bool(len(ind) and ind[ind["k"] >= 1]["ce"].min() < ind[ind["k"] == 1]["ce"].iloc[0])
    if not improves:
        return _row(cid, claim, measure, k90 / M, NAN, NAN, "not testable", fig,
                    f"at {size} the in-domain curve never improves on k = 1: R(k) is 1 from the start")
    return _row(cid, claim, measure, k90 / M, NAN, NAN, "holds" if k90 / M <= 6 / 9 + 1e-9 else "does not hold",
                fig, f"at {size}: k90 = {k90} of M = {M} (paper: 6 of 9)")


def joint_r2(T: dict, pool: str) -> dict:
    cid, claim = f"joint_r2:{pool}", f"in the {pool} pool the joint (N, k) law fits with R^2 > 0.98"
    measure, fig = "R^2 of the joint in-domain fit (Average)", "fig-merging-curves"
    f = T.get("fits", pd.DataFrame())
    f = f[(f["pool"] == pool) & (f["method"] == "average") & (f["scope"] == "in_domain")] if len(f) else f
    if f.empty:
        return _untestable(cid, claim, measure, fig, "no joint fit (too few points)")
    r2, ok = float(f["r2"].iloc[0]), bool(f["ok"].iloc[0])
    why = f["why_not_ok"].iloc[0] if "why_not_ok" in f.columns else ""
    return _row(cid, claim, measure, r2, NAN, NAN, "holds" if ok and r2 >= 0.98 else "does not hold", fig,
                "ok" if ok else f"not ok: {why}")


CLAIMS = (beats_base, tail_form, theory_A, c2_ratio, a_shrinks, saturation, joint_r2)


def claims(store_or_tables, profile: str | None = None) -> pd.DataFrame:  # at smoke every verdict is "not testable" (core.claims.frame)
    """Every claim for every pool, from the stored tables only (a ResultStore or {name: DataFrame})."""
    T = _tables(store_or_tables)
    pools = list(dict.fromkeys(T["curves"]["pool"])) if "curves" in T and len(T["curves"]) else []
    return frame([fn(T, pool) for pool in pools for fn in CLAIMS], profile)
