"""Song et al.'s claims (and Chinchilla's exponent) judged on the resource study's stored tables.

`claims(tables, profile)` reads only the stored `fits`, `shares`, `additive`, `lm_ladders` (and
`seeds`, when stored) tables and returns the claims table of `scalinglaws.core.claims`, each verdict
by `core.claims.judge`:

    single_<task>_<activation>  loss ~ N^-1: the exponent's interval contains -1, not 0 (primary count)
    shares_constant_<kind>      shares N_i/N constant: the slope per doubling contains 0
    additive_<kind>_<a1|a2>     l = c1/N1 + c2/N2: each free exponent contains 1, not 0; the fit goes
                                through the trust rule like every other
    chinchilla_one_third        alpha = 1/3 inside our refit of Epoch's Chinchilla alpha (reference data)
    lm_width / lm_depth         our LM ladders: exponent contains -1/2 (fixed depth) / -1/3 (depth ~ width),
                                not 0 and not the other ladder's prediction; precondition: a ladder that
                                falls with N at bracketed rates
    lm_depth_chinchilla         the depth ladder's exponent contains Chinchilla's -0.34

Fits are re-judged by the current trust rule (`fitting.trust.rejudge`: an interval on a bound is
not ok) so a table stored under an older rule cannot keep a stale verdict. The toy networks are
trained from several seeds and the fits' bootstrap resamples those models, so their intervals
already cover training seeds; the LM ladders have one seed per size, so their exponents need the
seed SD of `test_ce` (propagated through the log-log fit).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from scalinglaws.core import claims as CL
from scalinglaws.core import regime as R
from scalinglaws.data import reference as REF
from scalinglaws.fitting.schema import wide
from scalinglaws.fitting.trust import rejudge, rejudge_table

PAPER = "Song et al. 2024"
HOFFMANN = "Hoffmann et al. 2022"
HOFFMANN_ALPHA = REF.HOFFMANN["alpha"]  # Hoffmann et al.'s published exponent (`data.reference`)
FIG_SINGLE = "resource.html#fig-resource-single"
FIG_SHARES = "resource.html#fig-resource-shares"
FIG_ADDITIVE = "resource.html#resource-additive"
FIG_LM = "resource.html#fig-resource-lm"
FIG_CHINCHILLA = "fitting.html#fig-fitting-chinchilla-bootstrap"
LM_PREDICTIONS = {"width": (-1 / 2, "fixed depth: N_p ~ N^2"), "depth": (-1 / 3, "depth ~ width: N_p ~ N^3")}
BOOT = "bootstrap over the fitted points"
TOY_SEEDS = CL.seeds_included("the bootstrap resamples toy networks trained from several seeds")
NO_SCALING = "no scaling with N"
SEED_MEASURE = "test_ce"


def _fit_of(fits: pd.DataFrame, x: pd.Series) -> tuple[bool, str]:
    """The trust verdict of the fit `x` (a row of `fits`) comes from, by the current rule."""
    keys = [c for c in FIT_KEYS if c in fits.columns]
    same = np.ones(len(fits), dtype=bool)
    for c in keys:
        v = x[c]
        same &= (fits[c].isna() if v is None or (isinstance(v, float) and math.isnan(v)) else fits[c] == v).to_numpy()
    return rejudge(fits[same], x["law"])


def _order(values) -> list:
    return list(dict.fromkeys(v for v in values if isinstance(v, str)))


def claims(tables: dict[str, pd.DataFrame], profile: str | None = None) -> pd.DataFrame:
    fits = tables["fits"]
    shares = tables.get("shares", pd.DataFrame())
    additive = tables.get("additive", pd.DataFrame())
    rows = []
    single = fits[(fits["part"] == "single") & (fits["param"] == "exponent") & (fits["law"] == "power")
                  & fits["primary"].fillna(False).astype(bool)]
    for task in _order(single["subject"]):
        for act in _order(single["activation"]):
            g = single[(single["subject"] == task) & (single["activation"] == act)]
            if not len(g):
                continue
            x = g.iloc[0]
            rows.append(CL.judge(f"single_{task}_{act}", PAPER,
                                 "A subtask's loss is inversely proportional to its allocated neurons: loss ~ N^-1",
                                 f"exponent of loss vs allocated neurons, target {task}, {act}", x["estimate"],
                                 x["lo"], x["hi"], CL.Contains(-1.0, 0.0, NO_SCALING), interval=BOOT, seeds=TOY_SEEDS,
                                 figure=FIG_SINGLE, fit=_fit_of(fits, x)))
    shares = wide(shares, ["kind"], ["log2_range"]) if len(shares) else shares  # the one fits schema, per fit
    for r in shares.itertuples() if len(shares) else ():
        rows.append(CL.judge(f"shares_constant_{r.kind}", PAPER,
                             "In a composite task the shares N_i/N stay constant as the network grows",
                             f"slope of the share N_1/N per doubling of N, {r.kind} composite", r.slope, r.slope_lo,
                             r.slope_hi, CL.Contains(0.0), interval="bootstrap over the composite networks",
                             seeds=TOY_SEEDS, figure=FIG_SHARES))
    if len(additive):
        free = additive[additive["law"] == "additive"]
        for kind in _order(free["kind"]):
            a = free[free["kind"] == kind].set_index("param")
            status = (bool(a["ok"].iloc[0]), str(a["why_not_ok"].iloc[0]))  # the fitter's trust verdict
            for k in ("a1", "a2"):
                if k in a.index:
                    x = a.loc[k]
                    rows.append(CL.judge(f"additive_{kind}_{k}", PAPER,
                                         "Subtask losses add up as l = c1/N1 + c2/N2 (exponent 1 for each)",
                                         f"free exponent {k} of l = c1 N1^-a1 + c2 N2^-a2, {kind} composite",
                                         x["estimate"], x["lo"], x["hi"], CL.Contains(1.0, 0.0, NO_SCALING),
                                         interval=BOOT, seeds=TOY_SEEDS, figure=FIG_ADDITIVE, fit=status))
    ch = fits[(fits["part"] == "chinchilla") & (fits["param"] == "alpha")]
    if len(ch):
        x = ch.iloc[0]
        rows.append(CL.judge("chinchilla_one_third", PAPER,
                             "With depth growing like width, alpha = 1/3, which matches Chinchilla's alpha",
                             "alpha of the Chinchilla law refitted on Epoch's digitised points", x["estimate"], x["lo"],
                             x["hi"], CL.Contains(1 / 3, 0.0, NO_SCALING), interval="bootstrap over the published points",
                             seeds=None, figure=FIG_CHINCHILLA, fit=_fit_of(fits, x),
                             note="reference data (Hoffmann et al.'s points as digitised by Epoch): no training seeds"))
    rows += _lm_rows(tables, fits)
    return CL.frame(rows, profile)


def _lm_rows(tables: dict, fits: pd.DataFrame) -> list[dict]:
    lm = fits[(fits["part"] == "lm") & (fits["param"] == "exponent") & (fits["method"] == "non_embedding")]
    ladders = tables.get("lm_ladders", pd.DataFrame())
    rows = []
    for ladder, (pred, why) in LM_PREDICTIONS.items():
        g = lm[lm["subject"] == ladder]
        if not len(g):
            continue
        x = g.iloc[0]
        chosen = ladders[(ladders["ladder"] == ladder) & ladders["chosen"]].sort_values("params_non_embedding") \
            if len(ladders) else ladders
        pre, noise = _ladder_preconditions(ladders, ladder), CL.SeedNoise(SEED_MEASURE, math.nan)
        if len(chosen) >= 2:
            X = np.column_stack([np.ones(len(chosen)), np.log(chosen["params_non_embedding"].to_numpy(dtype=float))])
            noise = CL.seed_noise_of_fit(tables, SEED_MEASURE, X, float(chosen["loss"].mean()), 1)
        fit = _fit_of(fits, x)
        for cid, paper, text, target in (
                (f"lm_{ladder}", PAPER, f"On language models, {why}, so loss ~ N_p^{pred:.3g}", pred),
                ("lm_depth_chinchilla", HOFFMANN,
                 f"Loss ~ N^-alpha with alpha = {HOFFMANN_ALPHA} (Chinchilla), on our depth ladder", -HOFFMANN_ALPHA)):
            if cid == "lm_depth_chinchilla" and ladder != "depth":
                continue
            # Song's prediction for one ladder must be told apart from the other ladder's: the point of the
            # argument is that the exponent follows how depth scales (Chinchilla's claim has no such rival)
            rivals = tuple((v, f"the {other} ladder's prediction") for other, (v, _) in LM_PREDICTIONS.items()
                           if other != ladder) if paper == PAPER else ()
            rows.append(CL.judge(cid, paper, text, f"exponent of held-out loss vs non-embedding parameters, {ladder} "
                                 "ladder", x["estimate"], x["lo"], x["hi"], CL.Contains(target, 0.0, NO_SCALING, rivals),
                                 interval=BOOT, seeds=noise, figure=FIG_LM, fit=fit, preconditions=pre))
    return rows


def _ladder_preconditions(ladders: pd.DataFrame, ladder: str) -> list:
    """The LM regime the exponent claims need: the chosen loss falls at every step up the ladder,
    and no size's chosen learning rate sits at an edge of its grid."""
    g = ladders[ladders["ladder"] == ladder] if len(ladders) else ladders
    if not len(g):
        return [CL.Precondition(f"{ladder} ladder stored", math.nan, ">", 0)]
    best = g[g["chosen"]].sort_values("params_non_embedding")
    drops = -np.diff(best["loss"].to_numpy(dtype=float))
    # a diverged rate counts as tried (the testbed's rule): one above the chosen rate brackets it
    edges = sum(R.bracket(r.lr, g[g["size"] == r.size]["lr"]) != "inside" for r in best.itertuples())
    return [CL.Precondition(f"smallest loss drop between neighbouring {ladder}-ladder sizes (nats/token)",
                            float(drops.min()) if len(drops) else math.nan, ">", 0.0),
            CL.Precondition(f"{ladder}-ladder sizes whose chosen learning rate is at an edge of its grid",
                            float(edges), "<=", 0.0)]


FIT_KEYS = ["part", "subject", "law", "method", "activation", "threshold"]


def derived_tables(tables: dict, config: dict) -> dict:
    """`fits` with every fit's `ok` re-judged by the current trust rule (no refit); `shares` and
    `additive` refitted from the stored `composite` table (`study.composite_fit_tables`, the run's
    bootstrap; no retraining), in the one fits schema."""
    from scalinglaws.studies.resource.analysis import composite_fit_tables
    out = {"fits": rejudge_table(tables["fits"], FIT_KEYS)} if "fits" in tables else {}
    if "composite" in tables:
        out["shares"], out["additive"] = composite_fit_tables(tables["composite"], config.get("bootstrap", 1000))
    return out


def regime(tables: dict, config: dict | None = None) -> pd.DataFrame:
    """The resource study's LM regime (`core.regime`): one row per size of each LM ladder (the toy
    networks train to convergence on small synthetic tasks; their regime is the chapter's text).
    `config`: the run's provenance config (its `lm_batch_tokens` gives the optimiser steps)."""
    lad = tables.get("lm_ladders", pd.DataFrame())
    batch = (config or {}).get("lm_batch_tokens")
    rows = []
    for (ladder, size), g in lad.groupby(["ladder", "size"], sort=False) if len(lad) else ():
        best = g[g["chosen"]].iloc[0]
        steps = best["tokens"] // batch if batch else math.nan
        rows.append(R.row(f"{ladder}/{size}", best["params_non_embedding"], best["tokens"], steps,
                          R.bracket(best["lr"], g["lr"]) if len(g) > 1 else "not swept",
                          seeds=R.seed_count(tables, f"{ladder}/{size}")))
    return R.frame(rows)
