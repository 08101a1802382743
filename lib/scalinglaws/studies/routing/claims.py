"""Clark et al.'s claims (and one question of ours) judged on the routing study's stored tables.

`claims(tables, profile)` reads only stored tables (`loss`, `fits`, `n_cutoff`, `resource_fits`,
`routing`, `ce`, `step_check`, `resources`, and `seeds` when stored) and returns the claims table of
`scalinglaws.core.claims`, every verdict by `core.claims.judge` (holds / refuted / inconclusive /
not testable). Every fit is re-judged by the current trust rule (`fitting.trust.rejudge`), and the
claims on Clark's law declare the regime they need as `REGIME` preconditions: the dense ladder
falls with N, and a learned router has learned an assignment (mean routing entropy / log E at the
largest E below ROUTER_ENTROPY_MAX). Training-seed noise (`_router_seed_noise`): each
comparison pools the seed SD over its own replicated cells only (a collapsing router varies far
more between seeds than the others): `gain_over_dense` of the router's cells `<size>/E<E>/<router>`
for its gains, `test_ce` of the dense cells for the dense steps and, propagated through the law's
log-linear part, of the router's and dense cells for b and c; pooled over every cell (and said so)
where a router has none, and for the claims about the best router or the mean over routers. Per router:

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
    sbase_beats_dense_every_cell  (this study; issue 27's question) S-BASE beats the dense model at
                          every size and every E >= CELL_E_MIN, not only at the largest E: the
                          smallest gain over those cells (`router_vs_dense_cells`), its 95% interval
                          from the sampling errors widened by S-BASE's seed SD of the gain, above 0
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
from scalinglaws.core import regime as R
from scalinglaws.evaluation import domain_mean_se
from scalinglaws.fitting.trust import rejudge, rejudge_table
from scalinglaws.models import routers as RTR
from scalinglaws.studies.routing.chapter import CELL_READINGS, cell_tally, relative_entropy
from scalinglaws.studies.routing.literature import CLARK_TABLE3
from scalinglaws.studies.routing.names import parse_cell
from scalinglaws.studies.routing.resources import resource_fits, share_growth

PAPER = "Clark et al. 2022"
OURS = "this study"


def _name(router: str) -> str:
    """A router's name in the claims: its registered display name (the controls and dense by their kind)."""
    return RTR.display_names().get(router, router)


CLARK_N_CUTOFF = {"sbase": "937B", "rlr": "85B", "hash": "83B"}
FIG_LOSS = "routing.html#fig-routing-loss-vs-experts"
FIG_CUTOFF = "routing.html#routing-n-cutoff"
FIG_RESOURCES = "routing.html#routing-resources"
FIG_STEPS = "routing.html#routing-step-check"
LAW = "routing"
SATURATION_FACTOR = 10
CUTOFF_SUPPORT = 0.975
# a learned router whose routing entropy is near log E (1 after dividing) spreads every token over all
# experts: it has learned no assignment, so Clark's law (fitted to decisive routers) does not apply
ROUTER_ENTROPY_MAX = 0.8
ANALYTIC = "analytic, +-1.96 x the sampling SE (independent per-domain CEs)"
BOOT_FIT = "bootstrap of the routing-law fit"


def _param(fits: pd.DataFrame, router: str, param: str):
    f = fits[(fits["law"] == LAW) & (fits["router"] == router) & (fits["param"] == param)]
    return f.iloc[0] if len(f) else None


def _clark(router: str, param: str) -> str:
    """Clark's Table 3 value, marked second-hand: quoted from the paper's table, not yet checked
    against Clark's released data."""
    return f" (Clark Table 3, second-hand: {CLARK_TABLE3.loc[router, param]:g})" if router in CLARK_TABLE3.index else ""


PAPERS_OWN_RUNS = "papers_own_runs"  # a `tables` key: the claims are judged on the paper's own measurements


def regime_preconditions(tables: dict, router: str | None) -> list:
    """What Clark's law needs of our regime (data, not ifs): the dense ladder's smallest step down
    in L above 0, and for a learned router its relative routing entropy below ROUTER_ENTROPY_MAX."""
    loss = tables["loss"]
    d = loss[loss["router"] == "dense"].sort_values("N")["L"].to_numpy()
    pre = [CL.Precondition("smallest decrease of dense L between neighbouring sizes (nats/token)",
                           float(-np.diff(d).max()) if len(d) > 1 else math.nan, ">", 0.0)]
    # on a paper's own runs (Clark et al.'s file: no router entropies) the regime is the paper's by
    # definition; the entropy precondition tests whether *our* routers reached it
    if router in RTR.learned_routers() and not tables.get(PAPERS_OWN_RUNS):
        rel = relative_entropy(tables["routing"]) if "routing" in tables else pd.Series(dtype=float)
        pre.append(CL.Precondition(f"{_name(router)} routing entropy / log E at the largest E",
                                   float(rel.get(router, math.nan)), "<", ROUTER_ENTROPY_MAX))
    return pre


def _fit_ok(fits: pd.DataFrame, router: str) -> tuple[bool, str]:
    f = fits[(fits["law"] == LAW) & (fits["router"] == router)]
    return rejudge(f, LAW) if len(f) else (False, "no fit")


def _router_seed_noise(tables: dict, measure: str, routers=(), n_models: int = 1) -> CL.SeedNoise:
    """Training-seed noise of `measure` pooled over the replicated cells of `routers` ('dense': the
    dense cells): a collapsing router such as RL-R varies far more from seed to seed than S-BASE or
    Hash, so one SD pooled over every router would blur each comparison with another router's noise.
    Pooled over every replicated cell when none of `routers` has one, or when `routers` is empty
    (claims about the best router or the mean over routers); the note says which."""
    seeds = tables.get("seeds")
    # the cell format is `routing.names.cell_name`'s: select by its parse, not by the string
    cells = sorted(c for c in set(seeds["cell"]) if parse_cell(str(c))[2] in routers) \
        if seeds is not None and len(routers) else []
    own = CL.seed_noise(tables, measure, n_models=n_models, cells=cells) if cells else None
    if own is not None and own.known:
        if own.included:
            return own
        names = " and ".join("dense" if r == "dense" else _name(r) for r in routers)
        return CL.SeedNoise(f"{measure} of {names}'s replicated cells", own.sd, n_models)
    pooled = CL.seed_noise(tables, measure, n_models=n_models)
    if len(routers) and pooled.known and not pooled.included:
        names = ", ".join("dense" if r == "dense" else _name(r) for r in routers)
        return CL.SeedNoise(f"{measure} pooled over every replicated cell ({names}: none replicated)", pooled.sd,
                            n_models)
    return pooled


def _gain_seed_noise(tables: dict, router: str | None = None) -> CL.SeedNoise:
    """Seed noise of gain_over_dense for `router` (None: pooled over every router)."""
    return _router_seed_noise(tables, "gain_over_dense", (router,) if router else ())


def _law_seed_noise(tables: dict, router: str, column: int) -> CL.SeedNoise:
    """Seed SD of b (column 1) or c (column 2) of the routing law: test_ce's seed SD (pooled over the
    router's and the dense model's replicated cells, the points the law is fitted on) on log10 L
    propagated through the law's log-linear part (log10 L ~ a lgN + b lgE + c lgN lgE + d; E for
    Ehat, an approximation stated in the note)."""
    loss = tables["loss"]
    g = loss[(loss["router"] == router) | ((loss["router"] == "dense") & (loss["experts"] == 1))]
    lgN, lgE = np.log10(g["N"].to_numpy(dtype=float)), np.log10(g["experts"].to_numpy(dtype=float))
    X = np.column_stack([lgN, lgE, lgN * lgE, np.ones(len(g))])
    return CL.seed_noise_of_fit(tables, "test_ce", X, float(g["L"].mean()) * math.log(10), column,
                                base=_router_seed_noise(tables, "test_ce", (router, "dense")))


def claims(tables: dict[str, pd.DataFrame], profile: str | None = None, seed: int = 0,
           bootstrap: int = 1000) -> pd.DataFrame:
    loss, fits = tables["loss"], tables["fits"]
    n_cut = tables.get("n_cutoff", pd.DataFrame())
    res_fits = tables.get("resource_fits", pd.DataFrame())
    routed = loss[loss["router"] != "dense"]
    routers = [r for r in RTR.routers() if r in set(routed["router"])] + \
        sorted(set(routed["router"]) - set(RTR.routers()))
    L_se = loss_se(tables.get("ce"))
    rows = [_dense_falls(tables, loss, L_se), _routing_beats_dense(tables, loss, L_se)]
    for r in routers:
        name = _name(r)
        rows.append(_routing_beats_dense(tables, loss, L_se, r))
        for cid, param, column, test, text in (
                ("helps_at_fixed_N", "b", 1, CL.Below(0), f"At fixed N more experts lower the loss: b < 0{_clark(r, 'b')}"),
                ("shrinks_with_N", "c", 2, CL.Above(0), f"The benefit of experts shrinks as N grows: c > 0{_clark(r, 'c')}")):
            p = _param(fits, r, param)
            if p is None:
                rows.append(CL.claim(f"{cid}_{r}", PAPER, text, f"{param} of the routing law, {name}",
                                     figure=FIG_LOSS, note="no routing-law fit for this router"))
                continue
            rows.append(CL.judge(f"{cid}_{r}", PAPER, text, f"{param} of the routing law, {name}", p["estimate"],
                                 p["lo"], p["hi"], test, interval=BOOT_FIT, seeds=_law_seed_noise(tables, r, column),
                                 figure=FIG_LOSS, fit=_fit_ok(fits, r), preconditions=regime_preconditions(tables, r)))
    if "sbase" in routers:
        rows.append(_beats_dense_every_cell(tables, loss, L_se, "sbase"))
    rows += _n_cutoff(tables, n_cut, loss, routers)
    rows.append(_sbase_best(routed, seed, bootstrap))
    rows.append(_one_form(fits, routers))
    rows.append(_saturation(tables, fits, routed, routers))
    rows.append(_more_steps(tables))
    rows.append(_resources(tables, res_fits, loss))
    rows.append(_constant_shares(tables, loss, seed, bootstrap))
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


def _dense_falls(tables: dict, loss: pd.DataFrame, L_se) -> dict:
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
    return CL.judge("dense_falls_with_N", OURS, text, measure, value, lo, hi, CL.Above(0), interval=ANALYTIC,
                    seeds=_router_seed_noise(tables, "test_ce", ("dense",), n_models=2), figure=FIG_LOSS,
                    note=f"smallest step {where}; steps " + ", ".join(f"{w} {v:.3f}" for v, _, w in steps))


def _routing_beats_dense(tables: dict, loss: pd.DataFrame, L_se, router: str | None = None) -> dict:
    """The best router (router=None) or one router at the largest E against the dense model, size by size."""
    name = _name(router)
    text = ("Routing lowers the loss at every size: the best router at the largest E beats the dense model"
            if router is None else
            f"{name} at the largest E beats the dense model at every size (Clark: every router improves on dense)")
    measure = (f"smallest over sizes of L(dense) - L({'best router' if router is None else name}, largest E), "
               "nats/token")
    cid = "routing_beats_dense" if router is None else f"beats_dense_{router}"
    routed = loss[loss["router"] != "dense"] if router is None else loss[loss["router"] == router]
    # per size, the lowest loss among the routed models at that size's largest E
    best = [g[g["experts"] == g["experts"].max()].nsmallest(1, "L") for _, g in routed.groupby("size")]
    gains = _gains_over_dense(loss, L_se, pd.concat(best) if best else routed)
    if not len(gains):
        return CL.claim(cid, PAPER, text, measure, figure=FIG_LOSS, note="no routed model")
    worst = gains.loc[gains["gain"].idxmin()]
    value, where = float(worst["gain"]), f"{worst['size']} {worst['router']} E={int(worst['experts'])}"
    lo, hi = _interval(value, float(worst["se"]))
    return CL.judge(cid, PAPER, text, measure, value, lo, hi, CL.Above(0), interval=ANALYTIC,
                    seeds=_gain_seed_noise(tables, router), figure=FIG_LOSS, note=f"smallest gain at {where}")


def _gains_over_dense(loss: pd.DataFrame, L_se, routed: pd.DataFrame) -> pd.DataFrame:
    """One row per row of `routed` whose size has a dense model: gain = L(dense) - L(routed) at that
    size (positive: routing helps) and `se`, the sampling SE of the difference (both losses' SEs)."""
    dense = loss[loss["router"] == "dense"].set_index("size")["L"]
    rows = [{"size": r.size, "N": int(r.N), "experts": int(r.experts), "router": r.router,
             "gain": float(dense[r.size] - r.L),
             "se": math.hypot(_se(L_se, (r.size, 1, "dense")), _se(L_se, (r.size, int(r.experts), r.router)))}
            for r in routed.itertuples() if r.size in dense.index]
    return pd.DataFrame(rows, columns=["size", "N", "experts", "router", "gain", "se"])


CELL_E_MIN = 4  # issue 27 asks whether S-BASE beats dense "at E >= 4 at every size"
def router_vs_dense_cells(tables: dict, loss: pd.DataFrame, L_se, router: str, e_min: int = CELL_E_MIN,
                          noise: CL.SeedNoise | None = None) -> pd.DataFrame:
    """One row per (size, E >= e_min) of `router`: gain = L(dense) - L(router) at the same size
    (positive: routing helps), its 95% interval from the sampling SEs of both losses (`lo`, `hi`),
    that interval widened by the router's training-seed SD of gain_over_dense (`_gain_seed_noise`;
    `lo_seeds`, `hi_seeds`; equal to the sampling interval while no replicates are stored, `seed_sd`
    NaN), and the cell's reading of the widened interval (`CELL_READINGS`). `noise`: the router's
    seed noise when the caller has it already (`_gain_seed_noise(tables, router)` otherwise)."""
    from scalinglaws.core.seeds import with_seed_noise
    sd = (noise or _gain_seed_noise(tables, router)).sd
    cells = loss[(loss["router"] == router) & (loss["experts"] >= e_min)].sort_values(["N", "experts"])
    rows = []
    for g in _gains_over_dense(loss, L_se, cells).to_dict("records"):
        lo, hi = _interval(g["gain"], g.pop("se"))
        lo_s, hi_s = with_seed_noise(g["gain"], lo, hi, sd)
        reading = "beats" if lo_s > 0 else "trails" if hi_s < 0 else "undecided"
        rows.append({**g, "lo": lo, "hi": hi, "seed_sd": sd, "lo_seeds": lo_s, "hi_seeds": hi_s, "reading": reading})
    return pd.DataFrame(rows, columns=["size", "N", "experts", "router", "gain", "lo", "hi", "seed_sd", "lo_seeds",
                                       "hi_seeds", "reading"])


def _beats_dense_every_cell(tables: dict, loss: pd.DataFrame, L_se, router: str) -> dict:
    name = _name(router)
    cid = f"{router}_beats_dense_every_cell"
    text = f"{name} beats the dense model at every size and every E >= {CELL_E_MIN}"
    measure = f"smallest over (size, E >= {CELL_E_MIN}) of L(dense) - L({name}), nats/token"
    noise = _gain_seed_noise(tables, router)
    cells = router_vs_dense_cells(tables, loss, L_se, router, noise=noise)
    if not len(cells):
        return CL.claim(cid, OURS, text, measure, figure=FIG_LOSS, note=f"no {name} model with E >= {CELL_E_MIN}")
    worst = cells.loc[cells["gain"].idxmin()]
    tally = ", ".join(f"{k} in {n}" for k, n in cell_tally(cells).items())
    how = "seed-widened intervals" if np.isfinite(cells["seed_sd"].iloc[0]) else "sampling intervals only"
    return CL.judge(cid, OURS, text, measure, worst["gain"], worst["lo"], worst["hi"], CL.Above(0),
                    interval=ANALYTIC, seeds=noise, figure=FIG_LOSS,
                    note=f"smallest gain at {worst['size']} E={int(worst['experts'])}; over {len(cells)} cells "
                         f"({how}): {tally}")


def _n_cutoff(tables: dict, n_cut: pd.DataFrame, loss: pd.DataFrame, routers) -> list[dict]:
    """N_cutoff = 10^(-b/c) exists (c > 0 in at least CUTOFF_SUPPORT of the draws: a precondition) and
    lies beyond the largest dense N: its log10 interval above log10 N_max. Seed SD of log10 N_cutoff
    by the delta method from those of b and c (`_law_seed_noise`)."""
    rows = []
    fits = tables["fits"]
    dense = loss[loss["router"] == "dense"]
    n_max = float(dense["N"].max()) if len(dense) else math.nan
    for r in routers:
        name = _name(r)
        quoted = f" (Clark Table 3, second-hand: {CLARK_N_CUTOFF[r]} parameters)" if r in CLARK_N_CUTOFF else ""
        text = f"Routing helps up to a finite N_cutoff = 10^(-b/c), far beyond the sizes measured{quoted}"
        g = n_cut[n_cut["router"] == r] if len(n_cut) else n_cut
        measure = f"log10 N_cutoff (parameters), {name}"
        if not len(g) or not math.isfinite(n_max):
            rows.append(CL.claim(f"n_cutoff_{r}", PAPER, text, measure, figure=FIG_CUTOFF, note="no routing-law fit"))
            continue
        x = g.iloc[0]
        ok, why = _fit_ok(fits, r)
        if "ok" in x.index and not bool(x["ok"]) and ok:
            ok, why = False, "the cutoff's fit is not ok"
        b, c = float(x["b"]), float(x["c"])
        sb, sc = _law_seed_noise(tables, r, 1), _law_seed_noise(tables, r, 2)
        sd = math.hypot(sb.sd / c, b * sc.sd / c ** 2) if sb.known and sc.known and c else math.nan
        pre = regime_preconditions(tables, r) + [
            CL.Precondition("share of bootstrap draws with c > 0 (the cutoff exists)", float(x["frac_c_positive"]),
                            ">=", CUTOFF_SUPPORT)]
        rows.append(CL.judge(f"n_cutoff_{r}", PAPER, text, measure, x["log10_n_cutoff"], x["log10_lo"], x["log10_hi"],
                             CL.Above(math.log10(n_max)), interval=BOOT_FIT,
                             seeds=sb if sb.included else CL.SeedNoise("test_ce, through b and c", sd),
                             figure=FIG_CUTOFF, fit=(ok, why),
                             preconditions=pre,
                             note=f"the claim: log10 N_cutoff above log10 of the largest N measured ({math.log10(n_max):.2f})"))
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
    return CL.judge("sbase_best", PAPER, text, measure, d.mean(), lo, hi, CL.Below(0),
                    interval="bootstrap over (size, E) cells", figure=FIG_LOSS,
                    seeds=CL.seeds_included("each cell's models are trained independently, so resampling cells "
                                            "resamples training noise"),
                    note=f"S-BASE lowest in {int((d < 0).sum())} of {len(d)} cells")


def _one_form(fits: pd.DataFrame, routers) -> dict:
    """Every router's fit ok by the trust rule. Its measure, the smallest R^2, has no interval, so
    this claim cannot hold or be refuted; the note lists which fits fail and why."""
    text = "One functional form (the routing law) fits every router"
    measure = "smallest R2 of the routing-law fits"
    rf = fits[fits["law"] == LAW].drop_duplicates("router") if len(fits) else fits
    if not len(rf):
        return CL.claim("one_functional_form", PAPER, text, measure, figure=FIG_LOSS,
                        note="no router has enough points to fit the law")
    status = {x.router: _fit_ok(fits, x.router) for x in rf.itertuples()}
    note = f"trust rule: converged, off its bounds, intervals off the bounds, estimates inside their intervals, " \
           f"R2 >= {F.R2_MIN:g}; " + "; ".join(
        f"{_name(x.router)} R2 {x.r2:.3f}{'' if status[x.router][0] else ' (not ok: ' + status[x.router][1] + ')'}"
        for x in rf.itertuples())
    if len(rf) != len(routers):
        note += f" (fitted {len(rf)} of {len(routers)} routers)"
    return CL.judge("one_functional_form", PAPER, text, measure, rf["r2"].min(), math.nan, math.nan,
                    CL.Above(F.R2_MIN), interval="none", seeds=None, figure=FIG_LOSS, note=note,
                    decide="a bootstrap interval of each fit's R2 and fits that pass the trust rule")


def _saturation(tables: dict, fits: pd.DataFrame, routed: pd.DataFrame, routers) -> dict:
    """E_max is seen: S-BASE's E_max interval below SATURATION_FACTOR x the largest E measured."""
    text = ("The benefit saturates in E: a finite E_max within reach "
            f"(Clark Table 3, second-hand, S-BASE: {CLARK_TABLE3.loc['sbase', 'E_max']:g})")
    em = fits[(fits["law"] == LAW) & (fits["param"] == "E_max")] if len(fits) else fits
    if not len(em) or em["hi"].isna().all():
        return CL.claim("saturates_with_E", PAPER, text, "E_max of the routing law, S-BASE", figure=FIG_LOSS,
                        note="needs routing-law fits with bootstrap intervals")
    top = routed.groupby("router")["experts"].max()
    main = em[em["router"] == "sbase"]
    x = (main if len(main) else em).iloc[0]
    limit = SATURATION_FACTOR * float(top.loc[x.router])
    others = "; ".join(f"{_name(y.router)} E_max {y.estimate:.3g} [{y.lo:.3g}, {y.hi:.3g}]"
                       for y in em.itertuples())
    return CL.judge("saturates_with_E", PAPER, text, f"E_max of the routing law, {_name(x.router)}",
                    x.estimate, x.lo, x.hi, CL.Below(limit), interval=BOOT_FIT,
                    seeds=CL.seed_noise(tables, f"E_max:{x.router}"), figure=FIG_LOSS,
                    fit=_fit_ok(fits, x.router), preconditions=regime_preconditions(tables, x.router),
                    note=f"the claim: E_max below {SATURATION_FACTOR}x the largest E measured ({limit:g}); {others}")


def _more_steps(tables: dict) -> dict:
    step = tables.get("step_check")
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
    note = (f"{d['size']} E={int(r['experts'].iloc[0])}, batch {int(d['grid_batch_tokens'])} -> {int(d['batch_tokens'])} "
            f"tokens ({int(d['grid_steps'])} -> {int(d['steps'])} steps); change per router: "
            + ", ".join(f"{_name(x.router)} {c:+.3f}" for x, c in zip(r.itertuples(), change))
            + f"; dense gains {d['gain_from_steps']:.3f} from the steps (all models scored on the same windows, so the "
              "sampling interval is conservative)")
    # a change of a gap between two trainings: two independently trained gaps
    return CL.judge("more_steps_help_routing", OURS, text, measure, value, lo, hi, CL.Below(0), interval=ANALYTIC,
                    seeds=CL.seed_noise(tables, "gain_over_dense", n_models=2), figure=FIG_STEPS, note=note)


def _slope_is_one(tables: dict, cid: str, text: str, table: pd.DataFrame, loss: pd.DataFrame, column: str,
                  measure: str, method: str) -> dict:
    """A claim that a fitted slope (`column` of a per-(router, size) table with lo/hi) equals 1 (told
    apart from 0), judged on S-BASE (else the first router) at the largest dense size; the note lists
    every router's slope there. Its seed noise: the seeds table's measure `<cid>:<router>`."""
    dense = loss[loss["router"] == "dense"].sort_values("N")
    largest = dense["size"].iloc[-1] if len(dense) else table["size"].iloc[-1]
    g = table[table["size"] == largest]
    main = g[g["router"] == "sbase"]
    x = (main if len(main) else g).iloc[0]
    note = f"{method}; " + "; ".join(f"{_name(y.router)} {getattr(y, column):.3g} "
                                     f"[{y.lo:.3g}, {y.hi:.3g}]" for y in g.itertuples())
    return CL.judge(cid, OURS, text, f"{measure}, {_name(x.router)}, {largest}", x[column], x.lo,
                    x.hi, CL.Contains(1.0, 0.0, "no dependence"), interval="bootstrap over domains",
                    seeds=CL.seed_noise(tables, f"{cid}:{x.router}"), figure=FIG_RESOURCES, note=note)


def _resources(tables: dict, res_fits: pd.DataFrame, loss: pd.DataFrame) -> dict:
    text = "A domain's loss falls like 1/(experts serving it): gamma = 1 (the resource model, carried to experts)"
    if not len(res_fits):
        return CL.claim("experts_as_resources", OURS, text, "gamma", figure=FIG_RESOURCES, note="no routed model")
    gamma = res_fits[res_fits["param"] == "gamma"].rename(columns={"estimate": "gamma"})  # the one fits schema
    return _slope_is_one(tables, "experts_as_resources", text, gamma, loss, "gamma",
                         "gamma of log CE_d on log n_serving", "we fit total, not reducible, loss")


def _constant_shares(tables: dict, loss: pd.DataFrame, seed: int, bootstrap: int) -> dict:
    resources = tables.get("resources")
    text = ("A domain keeps a constant share of the experts as E grows: experts serving it n proportional to E "
            "(the resource model's constant allocation, carried to experts)")
    growth = share_growth(resources, bootstrap, seed) if resources is not None and len(resources) else pd.DataFrame()
    if not len(growth):
        return CL.claim("constant_shares", OURS, text, "kappa", figure=FIG_RESOURCES,
                        note="needs routed models at two or more E")
    return _slope_is_one(tables, "constant_shares", text, growth, loss, "kappa", "kappa of log n_serving on log E",
                         "slope of log n_serving on log E within domains")


def derived_tables(tables: dict, config: dict) -> dict:
    """`fits` with every fit's `ok` re-judged by the current trust rule (no refit); `resource_fits`
    recomputed from the stored `resources` (the run's bootstrap and seed: the same draws), in the
    one fits schema."""
    out = {"fits": rejudge_table(tables["fits"], ["router", "law"])} if "fits" in tables else {}
    if "resources" in tables:
        out["resource_fits"] = resource_fits(tables["resources"], config.get("bootstrap", 1000), config.get("seed", 0))
    return out


def regime(tables: dict) -> pd.DataFrame:
    """The routing study's regime (`core.regime`): one row per trained model (dense and routed),
    with its optimiser steps, the step check's gain where run, and a learned router's relative
    routing entropy (training tokens, this size and E)."""
    m, rt = tables["models"], tables.get("routing", pd.DataFrame())
    step = tables.get("step_check", pd.DataFrame())
    rows = []
    for x in m.sort_values(["router", "experts", "N"]).itertuples():
        cell = f"{x.size}/dense" if x.router == "dense" else f"{x.size}/E{int(x.experts)}/{x.router}"
        ent = math.nan
        if len(rt) and x.router in RTR.learned_routers():
            t = rt[(rt["phase"] == "train") & (rt["size"] == x.size) & (rt["experts"] == x.experts)
                   & (rt["router"] == x.router)]
            ent = float(t["entropy"].mean() / math.log(x.experts)) if len(t) and x.experts > 1 else math.nan
        sc = step[(step["size"] == x.size) & (step["experts"] == x.experts) & (step["router"] == x.router)] \
            if len(step) else step
        rows.append(R.row(cell, x.N, x.tokens, x.steps, "not swept", float(sc["gain_from_steps"].iloc[0])
                          if len(sc) else math.nan, ent, seeds=R.seed_count(tables, cell)))
    return R.frame(rows)
