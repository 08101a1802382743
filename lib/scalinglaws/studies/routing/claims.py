"""Clark et al.'s claims (and one question of ours) judged on the routing study's stored tables.

`claims(tables, profile)` reads only stored tables (`loss`, `fits`, `n_cutoff`, `resource_fits`) and
returns the claims table of `scalinglaws.core.claims` (the schema, the verdict rules). Per router:

    helps_at_fixed_N_<r>  b < 0: the 95% interval of b lies below 0
    shrinks_with_N_<r>    c > 0: the interval of c lies above 0
    n_cutoff_<r>          the cutoff N_cutoff = 10^(-b/c) exists and lies beyond every measured size:
                          c > 0 in at least 97.5% of the bootstrap draws and the 2.5% point of
                          log10 N_cutoff above log10 of the largest dense N
    beats_dense_<r>       the router at the largest E beats the dense model at every size (as
                          routing_beats_dense below, for this router)
and once:
    dense_falls_with_N    (the phenomenon a law in N needs) every step up the dense ladder lowers L:
                          the smallest decrease between neighbouring sizes, with a 95% interval
                          from the sampling standard errors of L, lies above 0
    routing_beats_dense   (the phenomenon the law describes) at every size the best router at the
                          largest E beats the dense model: the smallest gain L_dense - L_routed,
                          its 95% interval from the sampling errors, above 0
    sbase_best            S-BASE beats the best other router at the same (size, E): the mean of
                          L(S-BASE) - min L(others) over those cells, its 95% interval (cells
                          resampled) below 0
    one_functional_form   every router's fit is ok by the shared trust rule (`fitting.trust`:
                          converged, off its bounds, estimates inside their intervals, R2 >= R2_MIN)
                          (measure: the smallest R2; no interval)
    saturates_with_E      E_max is seen: its bootstrap 97.5% point below 10x the largest E measured,
                          for the majority of routers (value: S-BASE's E_max)
    more_steps_help_routing  (this study) the step check (`study.step_check_table`): with more optimiser
                          steps on the same tokens, the routers' mean gap to dense (L_routed - L_dense)
                          falls: its change, with a 95% interval from the sampling errors, below 0
    constant_shares       (this study) every domain keeps a constant share n_serving / E of the experts
                          as E grows: the slope kappa of log n_serving on log E (`study.share_growth`,
                          from the stored `resources` table) has an interval containing 1 (S-BASE at
                          the largest size)
    experts_as_resources  (this study) a domain's loss falls like 1/(experts serving it): the slope
                          gamma's interval contains 1 (S-BASE at the largest size)
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from scalinglaws import fitting as F
from scalinglaws.core import claims as CL
from scalinglaws.evaluation import domain_mean_se
from scalinglaws.studies.routing.literature import CLARK_TABLE3
from scalinglaws.studies.routing.resources import share_growth

PAPER = "Clark et al. 2022"
OURS = "this study"
ROUTER_NAMES = {"sbase": "S-BASE", "rlr": "RL-R", "hash": "Hash", "switch": "Switch top-1"}
CLARK_N_CUTOFF = {"sbase": "937B", "rlr": "85B", "hash": "83B"}
FIG_LOSS = "routing.html#fig-routing-loss-vs-experts"
FIG_CUTOFF = "routing.html#routing-n-cutoff"
FIG_RESOURCES = "routing.html#routing-resources"
FIG_STEPS = "routing.html#routing-step-check"
LAW = "routing"
SATURATION_FACTOR = 10
CUTOFF_SUPPORT = 0.975


def _param(fits: pd.DataFrame, router: str, param: str):
    f = fits[(fits["law"] == LAW) & (fits["router"] == router) & (fits["param"] == param)]
    return f.iloc[0] if len(f) else None


def _clark(router: str, param: str) -> str:
    return f" (Clark: {CLARK_TABLE3.loc[router, param]:g})" if router in CLARK_TABLE3.index else ""


def claims(tables: dict[str, pd.DataFrame], profile: str | None = None, seed: int = 0,
           bootstrap: int = 1000) -> pd.DataFrame:
    loss, fits = tables["loss"], tables["fits"]
    n_cut = tables.get("n_cutoff", pd.DataFrame())
    res_fits = tables.get("resource_fits", pd.DataFrame())
    routed = loss[loss["router"] != "dense"]
    routers = [r for r in ROUTER_NAMES if r in set(routed["router"])] + \
        sorted(set(routed["router"]) - set(ROUTER_NAMES))
    L_se = loss_se(tables.get("ce"))
    rows = [_dense_falls(loss, L_se), _routing_beats_dense(loss, L_se)]
    for r in routers:
        name = ROUTER_NAMES.get(r, r)
        rows.append(_routing_beats_dense(loss, L_se, r))
        for cid, param, positive, text in (
                ("helps_at_fixed_N", "b", False, f"At fixed N more experts lower the loss: b < 0{_clark(r, 'b')}"),
                ("shrinks_with_N", "c", True, f"The benefit of experts shrinks as N grows: c > 0{_clark(r, 'c')}")):
            p = _param(fits, r, param)
            if p is None:
                rows.append(CL.claim(f"{cid}_{r}", PAPER, text, f"{param} of the routing law, {name}",
                                     figure=FIG_LOSS, note="no routing-law fit for this router"))
                continue
            verdict = CL.sign(p["lo"], p["hi"], positive)
            note = ("no bootstrap interval" if verdict == "not testable" else
                    f"95% interval {'above' if positive else 'below'} 0" if verdict == "holds" else
                    f"95% interval not {'above' if positive else 'below'} 0")
            verdict, note = CL.unconfirmed(verdict, note, bool(p["ok"]), p.get("why_not_ok") or p.get("message", ""))
            rows.append(CL.claim(f"{cid}_{r}", PAPER, text, f"{param} of the routing law, {name}", p["estimate"],
                                 p["lo"], p["hi"], verdict, FIG_LOSS, note))
    rows += _n_cutoff(n_cut, loss, routers)
    rows.append(_sbase_best(routed, seed, bootstrap))
    rows.append(_one_form(fits, routers))
    rows.append(_saturation(fits, routed, routers))
    rows.append(_more_steps(tables.get("step_check")))
    rows.append(_resources(res_fits, loss))
    rows.append(_constant_shares(tables.get("resources"), loss, seed, bootstrap))
    return CL.frame(rows, profile)


Z95 = 1.96


def loss_se(ce) -> pd.Series | None:
    """Sampling SE of each model's L (the mean over domains of independent per-domain CEs)."""
    if ce is None or "ce_se" not in getattr(ce, "columns", []):
        return None
    return ce.groupby(["size", "experts", "router"])["ce_se"].agg(domain_mean_se)


def _se(L_se, key) -> float:
    return float(L_se.get(key, math.nan)) if L_se is not None else math.nan


def _interval(value: float, se: float) -> tuple[float, float]:
    return (value - Z95 * se, value + Z95 * se) if np.isfinite(se) else (math.nan, math.nan)


def _dense_falls(loss: pd.DataFrame, L_se) -> dict:
    text = "The dense ladder's loss falls with N (a law in N needs it)"
    measure = "smallest decrease of L between neighbouring dense sizes, nats/token"
    d = loss[loss["router"] == "dense"].sort_values("N")
    if len(d) < 2:
        return CL.claim("dense_falls_with_N", OURS, text, measure, figure=FIG_LOSS, note="needs two dense sizes")
    steps = []
    for (a, b) in zip(d.itertuples(), d.iloc[1:].itertuples()):
        se = math.hypot(_se(L_se, (a.size, 1, "dense")), _se(L_se, (b.size, 1, "dense")))
        steps.append((a.L - b.L, se, f"{a.size}->{b.size}"))
    value, se, where = min(steps)
    lo, hi = _interval(value, se)
    verdict = CL.sign(lo, hi, positive=True)
    return CL.claim("dense_falls_with_N", OURS, text, measure, value, lo, hi, verdict, FIG_LOSS,
                    f"smallest step {where}; steps " + ", ".join(f"{w} {v:.3f}" for v, _, w in steps))


def _routing_beats_dense(loss: pd.DataFrame, L_se, router: str | None = None) -> dict:
    """The best router (router=None) or one router at the largest E against the dense model, size by size."""
    name = ROUTER_NAMES.get(router, router)
    text = ("Routing lowers the loss at every size: the best router at the largest E beats the dense model"
            if router is None else
            f"{name} at the largest E beats the dense model at every size (Clark: every router improves on dense)")
    measure = (f"smallest over sizes of L(dense) - L({'best router' if router is None else name}, largest E), "
               "nats/token")
    cid = "routing_beats_dense" if router is None else f"beats_dense_{router}"
    routed = loss[loss["router"] != "dense"] if router is None else loss[loss["router"] == router]
    dense = loss[loss["router"] == "dense"].set_index("size")
    gains = []
    for size, g in routed.groupby("size"):
        if size not in dense.index:
            continue
        top = g[g["experts"] == g["experts"].max()]
        best = top.loc[top["L"].idxmin()]
        se = math.hypot(_se(L_se, (size, 1, "dense")), _se(L_se, (size, int(best["experts"]), best["router"])))
        gains.append((float(dense.loc[size, "L"] - best["L"]), se, f"{size} {best['router']} E={int(best['experts'])}"))
    if not gains:
        return CL.claim(cid, PAPER, text, measure, figure=FIG_LOSS, note="no routed model")
    value, se, where = min(gains)
    lo, hi = _interval(value, se)
    verdict = CL.sign(lo, hi, positive=True)
    return CL.claim(cid, PAPER, text, measure, value, lo, hi, verdict, FIG_LOSS,
                    f"smallest gain at {where}; interval from sampling errors only (one seed per model)")


def _n_cutoff(n_cut: pd.DataFrame, loss: pd.DataFrame, routers) -> list[dict]:
    rows = []
    dense = loss[loss["router"] == "dense"]
    n_max = float(dense["N"].max()) if len(dense) else math.nan
    for r in routers:
        name = ROUTER_NAMES.get(r, r)
        quoted = f" (Clark: {CLARK_N_CUTOFF[r]} parameters)" if r in CLARK_N_CUTOFF else ""
        text = f"Routing helps up to a finite N_cutoff = 10^(-b/c), far beyond the sizes measured{quoted}"
        g = n_cut[n_cut["router"] == r] if len(n_cut) else n_cut
        measure = f"log10 N_cutoff (parameters), {name}"
        if not len(g):
            rows.append(CL.claim(f"n_cutoff_{r}", PAPER, text, measure, figure=FIG_CUTOFF, note="no routing-law fit"))
            continue
        x = g.iloc[0]
        lo, hi, frac = float(x["log10_lo"]), float(x["log10_hi"]), float(x["frac_c_positive"])
        if math.isnan(lo) or math.isnan(frac) or math.isnan(n_max):
            verdict, note = "not testable", "no bootstrap draws of -b/c"
        elif frac < CUTOFF_SUPPORT:
            verdict, note = "does not hold", f"c > 0 in only {frac:.0%} of the bootstrap draws: the cutoff may not exist"
        elif lo > math.log10(n_max):
            verdict, note = "holds", f"2.5% point above log10 of the largest N measured ({math.log10(n_max):.2f})"
        else:
            verdict, note = "does not hold", (f"interval reaches below log10 of the largest N measured "
                                              f"({math.log10(n_max):.2f}): routing stops helping inside our range")
        if "ok" in x.index and verdict != "not testable":
            verdict, note = CL.unconfirmed(verdict, note, bool(x["ok"]))
        rows.append(CL.claim(f"n_cutoff_{r}", PAPER, text, measure, x["log10_n_cutoff"], lo, hi, verdict,
                             FIG_CUTOFF, note))
    return rows


def _sbase_best(routed: pd.DataFrame, seed: int, bootstrap: int) -> dict:
    text = "S-BASE is the best of the routers at every size and E"
    measure = "mean over (size, E) of L(S-BASE) - min L(other routers), nats/token"
    deltas = []
    for _, g in routed.groupby(["size", "experts"]):
        if "sbase" in set(g["router"]) and g["router"].nunique() >= 2:
            deltas.append(float(g.loc[g["router"] == "sbase", "L"].min() - g.loc[g["router"] != "sbase", "L"].min()))
    if not deltas:
        return CL.claim("sbase_best", PAPER, text, measure, figure=FIG_LOSS,
                        note="needs S-BASE and another router at the same (size, E)")
    d = np.asarray(deltas)
    rng = np.random.default_rng(seed)
    draws = d[rng.integers(0, len(d), (bootstrap, len(d)))].mean(1)
    lo, hi = np.percentile(draws, [2.5, 97.5])
    wins = int((d < 0).sum())
    verdict = CL.sign(lo, hi, positive=False)
    return CL.claim("sbase_best", PAPER, text, measure, d.mean(), lo, hi, verdict, FIG_LOSS,
                    f"S-BASE lowest in {wins} of {len(d)} cells; interval over cells resampled "
                    f"({'below' if verdict == 'holds' else 'not below'} 0)")


def _one_form(fits: pd.DataFrame, routers) -> dict:
    text = "One functional form (the routing law) fits every router"
    measure = "smallest R2 of the routing-law fits"
    rf = fits[fits["law"] == LAW].drop_duplicates("router") if len(fits) else fits
    if not len(rf):
        return CL.claim("one_functional_form", PAPER, text, measure, figure=FIG_LOSS,
                        note="no router has enough points to fit the law")
    ok = bool(rf["ok"].all() and len(rf) == len(routers))
    note = f"rule: every fit ok by the trust rule (converged, off its bounds, estimates inside their intervals, " \
           f"R2 >= {F.R2_MIN:g}); " + "; ".join(
        f"{ROUTER_NAMES.get(x.router, x.router)} R2 {x.r2:.3f}{'' if x.ok else ' (not ok)'}" for x in rf.itertuples())
    if len(rf) != len(routers):
        note += f" (fitted {len(rf)} of {len(routers)} routers)"
    return CL.claim("one_functional_form", PAPER, text, measure, rf["r2"].min(), verdict="holds" if ok else "does not hold",
                    figure=FIG_LOSS, note=note)


def _saturation(fits: pd.DataFrame, routed: pd.DataFrame, routers) -> dict:
    text = (f"The benefit saturates in E: a finite E_max (Clark, S-BASE: {CLARK_TABLE3.loc['sbase', 'E_max']:g})")
    em = fits[(fits["law"] == LAW) & (fits["param"] == "E_max")] if len(fits) else fits
    if not len(em) or em["hi"].isna().all():
        return CL.claim("saturates_with_E", PAPER, text, "E_max of the routing law, S-BASE", figure=FIG_LOSS,
                        note="needs routing-law fits with bootstrap intervals")
    top = routed.groupby("router")["experts"].max()
    seen = {x.router: bool(np.isfinite(x.hi) and x.hi < SATURATION_FACTOR * top.loc[x.router]) for x in em.itertuples()}
    verdict = "holds" if sum(seen.values()) > len(seen) / 2 else "does not hold"
    main = em[em["router"] == "sbase"]
    x = (main if len(main) else em).iloc[0]
    note = (f"rule: the 97.5% point of E_max below {SATURATION_FACTOR}x the largest E measured, for most routers; "
            + "; ".join(f"{ROUTER_NAMES.get(r, r)} {'seen' if s else 'not seen'} (largest E {top.loc[r]})"
                        for r, s in seen.items()))
    return CL.claim("saturates_with_E", PAPER, text, f"E_max of the routing law, {ROUTER_NAMES.get(x.router, x.router)}",
                    x.estimate, x.lo, x.hi, verdict, FIG_LOSS, note)


def _more_steps(step: pd.DataFrame | None) -> dict:
    text = ("Routing trails dense for want of optimiser steps: with more steps on the same tokens, the routers' gap "
            "to dense shrinks")
    measure = "mean over routers of the change in L(routed) - L(dense) from the grid's batch to the smaller one, nats/token"
    if step is None or not len(step) or (step["router"] != "dense").sum() == 0:
        return CL.claim("more_steps_help_routing", OURS, text, measure, figure=FIG_STEPS,
                        note="no step check at this profile")
    d = step[step["router"] == "dense"].iloc[0]
    r = step[step["router"] != "dense"]
    change = (r["gap_to_dense"] - r["grid_gap_to_dense"]).to_numpy()
    n = len(r)
    # the dense model enters every router's gap: its errors count once, not averaged away
    se = math.sqrt(((r["L_se"] ** 2 + r["grid_L_se"] ** 2).sum()) / n ** 2 + d["L_se"] ** 2 + d["grid_L_se"] ** 2)
    value = float(change.mean())
    lo, hi = _interval(value, se)
    verdict = CL.sign(lo, hi, positive=False)
    note = (f"{d['size']} E={int(r['experts'].iloc[0])}, batch {int(d['grid_batch_tokens'])} -> {int(d['batch_tokens'])} "
            f"tokens ({int(d['grid_steps'])} -> {int(d['steps'])} steps); change per router: "
            + ", ".join(f"{ROUTER_NAMES.get(x.router, x.router)} {c:+.3f}" for x, c in zip(r.itertuples(), change))
            + f"; dense gains {d['gain_from_steps']:.3f} from the steps; interval from sampling errors only "
              "(all models scored on the same windows, so it is conservative)")
    return CL.claim("more_steps_help_routing", OURS, text, measure, value, lo, hi, verdict, FIG_STEPS, note)


def _slope_is_one(cid: str, text: str, table: pd.DataFrame, loss: pd.DataFrame, column: str, measure: str,
                  method: str) -> dict:
    """A claim that a fitted slope (`column` of a per-(router, size) table with lo/hi) equals 1, judged on
    S-BASE (else the first router) at the largest dense size; the note lists every router's slope there."""
    dense = loss[loss["router"] == "dense"].sort_values("N")
    largest = dense["size"].iloc[-1] if len(dense) else table["size"].iloc[-1]
    g = table[table["size"] == largest]
    main = g[g["router"] == "sbase"]
    x = (main if len(main) else g).iloc[0]
    verdict = CL.contains(x.lo, x.hi, 1.0)
    note = ({"holds": "interval contains 1", "does not hold": "interval excludes 1",
             "not testable": "no bootstrap interval"}[verdict] + f"; {method}; "
            + "; ".join(f"{ROUTER_NAMES.get(y.router, y.router)} {getattr(y, column):.3g} [{y.lo:.3g}, {y.hi:.3g}]"
                        for y in g.itertuples()))
    return CL.claim(cid, OURS, text, f"{measure}, {ROUTER_NAMES.get(x.router, x.router)}, {largest}",
                    x[column], x.lo, x.hi, verdict, FIG_RESOURCES, note)


def _resources(res_fits: pd.DataFrame, loss: pd.DataFrame) -> dict:
    text = "A domain's loss falls like 1/(experts serving it): gamma = 1 (the resource model, carried to experts)"
    if not len(res_fits):
        return CL.claim("experts_as_resources", OURS, text, "gamma", figure=FIG_RESOURCES, note="no routed model")
    return _slope_is_one("experts_as_resources", text, res_fits, loss, "gamma", "gamma of log CE_d on log n_serving",
                         "we fit total, not reducible, loss")


def _constant_shares(resources: pd.DataFrame | None, loss: pd.DataFrame, seed: int, bootstrap: int) -> dict:
    text = ("A domain keeps a constant share of the experts as E grows: experts serving it n proportional to E "
            "(the resource model's constant allocation, carried to experts)")
    growth = share_growth(resources, bootstrap, seed) if resources is not None and len(resources) else pd.DataFrame()
    if not len(growth):
        return CL.claim("constant_shares", OURS, text, "kappa", figure=FIG_RESOURCES,
                        note="needs routed models at two or more E")
    return _slope_is_one("constant_shares", text, growth, loss, "kappa", "kappa of log n_serving on log E",
                         "slope of log n_serving on log E within domains")
