"""Song et al.'s claims (and Chinchilla's exponent) judged on the resource study's stored tables.

`claims(tables, profile)` reads only the stored `fits`, `shares` and `additive` tables and returns
the claims table of `scalinglaws.core.claims`. Every verdict asks whether the paper's value lies
in our 95% bootstrap interval:

    single_<task>_<activation>  loss ~ N^-1: the exponent's interval contains -1 (primary count)
    shares_constant_<kind>      shares N_i/N constant: the slope per doubling contains 0
    additive_<kind>_<a1|a2>     l = c1/N1 + c2/N2: each free exponent contains 1
    chinchilla_one_third        alpha = 1/3 inside our refit of Epoch's Chinchilla alpha
    lm_width / lm_depth         our LM ladders: exponent contains -1/2 (fixed depth) / -1/3 (depth ~ width)
    lm_depth_chinchilla         the depth ladder's exponent contains Chinchilla's -0.34
"""
from __future__ import annotations

import pandas as pd

from scalinglaws.core import claims as CL

PAPER = "Song et al. 2024"
HOFFMANN = "Hoffmann et al. 2022"
HOFFMANN_ALPHA = 0.34
FIG_SINGLE = "resource.html#fig-resource-single"
FIG_SHARES = "resource.html#fig-resource-shares"
FIG_ADDITIVE = "resource.html#resource-additive"
FIG_LM = "resource.html#fig-resource-lm"
FIG_CHINCHILLA = "fitting.html#fig-fitting-chinchilla-bootstrap"
LM_PREDICTIONS = {"width": (-1 / 2, "fixed depth: N_p ~ N^2"), "depth": (-1 / 3, "depth ~ width: N_p ~ N^3")}


def _why(verdict: str, target: float) -> str:
    return {"holds": f"{target:g} inside the 95% interval", "does not hold": f"{target:g} outside the 95% interval",
            "not testable": "no bootstrap interval"}[verdict]


def _row(cid, paper, text, measure, est, lo, hi, target, figure, fit=None) -> dict:
    """A claim on one estimate: holds when `target` lies in its 95% interval; with `fit` (the fits
    row the estimate comes from) only if that fit is ok (`core.claims.unconfirmed`)."""
    verdict = CL.contains(lo, hi, target)
    note = _why(verdict, target)
    if fit is not None:
        verdict, note = CL.unconfirmed(verdict, note, bool(fit["ok"]), fit.get("why_not_ok", ""))
    return CL.claim(cid, paper, text, measure, est, lo, hi, verdict, figure, note)


def _order(values) -> list:
    return list(dict.fromkeys(v for v in values if isinstance(v, str)))


def claims(tables: dict[str, pd.DataFrame], profile: str | None = None) -> pd.DataFrame:
    fits = tables["fits"]
    shares = tables.get("shares", pd.DataFrame())
    additive = tables.get("additive", pd.DataFrame())
    rows = []
    single = fits[(fits["part"] == "single") & (fits["param"] == "exponent") & (fits["law"] == "power")
                  & fits["primary"].fillna(False).astype(bool)]
    tasks, acts = _order(single["subject"]), _order(single["activation"])
    for task in tasks:
        for act in acts:
            g = single[(single["subject"] == task) & (single["activation"] == act)]
            if not len(g):
                continue
            x = g.iloc[0]
            rows.append(_row(f"single_{task}_{act}", PAPER,
                             "A subtask's loss is inversely proportional to its allocated neurons: loss ~ N^-1",
                             f"exponent of loss vs allocated neurons, target {task}, {act}", x["estimate"],
                             x["lo"], x["hi"], -1.0, FIG_SINGLE, fit=x))
    for r in shares.itertuples() if len(shares) else ():
        rows.append(_row(f"shares_constant_{r.kind}", PAPER,
                         "In a composite task the shares N_i/N stay constant as the network grows",
                         f"slope of the share N_1/N per doubling of N, {r.kind} composite", r.slope, r.slope_lo,
                         r.slope_hi, 0.0, FIG_SHARES))
    if len(additive):
        free = additive[additive["form"] == "free exponents"]
        for kind in _order(free["kind"]):
            a = free[free["kind"] == kind].set_index("param")
            for k in ("a1", "a2"):
                if k in a.index:
                    x = a.loc[k]
                    rows.append(_row(f"additive_{kind}_{k}", PAPER,
                                     "Subtask losses add up as l = c1/N1 + c2/N2 (exponent 1 for each)",
                                     f"free exponent {k} of l = c1 N1^-a1 + c2 N2^-a2, {kind} composite",
                                     x["estimate"], x["lo"], x["hi"], 1.0, FIG_ADDITIVE))
    ch = fits[(fits["part"] == "chinchilla") & (fits["param"] == "alpha")]
    if len(ch):
        x = ch.iloc[0]
        rows.append(_row("chinchilla_one_third", PAPER,
                         "With depth growing like width, alpha = 1/3, which matches Chinchilla's alpha",
                         "alpha of the Chinchilla law refitted on Epoch's digitised points", x["estimate"], x["lo"],
                         x["hi"], 1 / 3, FIG_CHINCHILLA, fit=x))
    lm = fits[(fits["part"] == "lm") & (fits["param"] == "exponent") & (fits["method"] == "non_embedding")]
    for ladder, (pred, why) in LM_PREDICTIONS.items():
        g = lm[lm["subject"] == ladder]
        if not len(g):
            continue
        x = g.iloc[0]
        rows.append(_row(f"lm_{ladder}", PAPER, f"On language models, {why}, so loss ~ N_p^{pred:.3g}",
                         f"exponent of held-out loss vs non-embedding parameters, {ladder} ladder", x["estimate"],
                         x["lo"], x["hi"], pred, FIG_LM, fit=x))
        if ladder == "depth":
            rows.append(_row("lm_depth_chinchilla", HOFFMANN,
                             f"Loss ~ N^-alpha with alpha = {HOFFMANN_ALPHA} (Chinchilla), on our depth ladder",
                             "exponent of held-out loss vs non-embedding parameters, depth ladder", x["estimate"],
                             x["lo"], x["hi"], -HOFFMANN_ALPHA, FIG_LM, fit=x))
    return CL.frame(rows, profile)
