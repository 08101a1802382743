"""Clark et al. 2022's own measurements (`data/reference/clark2022_routing_measurements.csv`) put
through the routing study's code: the routing law fitted by our fitter, extrapolation measured, the
gain over dense along training, and Clark's claims judged with our claim logic.

The file (5,799 rows, checksummed on load by `data.reference`) holds every model's validation loss
at 28 evaluation steps. Which rows make the paper's fit is not in the file; `SELECTION` reconstructs
it, each choice with the reason (the chapter prints it):

    protocol   k = 1, routing frequency 0.5 (every other block routed), flop_increase 1: the paper's
               main grid; the k / frequency / FLOP ablations (25M and 370M only) stay out
    step       each model's last evaluation (249,000 for 221 of the 223 models; 248,000 and 250,000
               for one each), the end of the 250K-step schedule
    dense      the dense models (router 'Dense', E = 1) enter every router's fit as its E = 1 points,
               as in our study; 130M dense exists only as three seeds (1, 2, 3): their mean
    sizes, E   every size (15M..1.3B dense parameters) and every E = 2..512 measured (4 cells of
               the 6 x 9 grid are absent from the file: S-BASE 130M E=256, Hash 130M E=8 and 256,
               Hash 25M E=32)
    N          dense_parameter_count (the paper's N: parameters of the dense model a routed model
               extends)
    loss       loss_validation, fitted as log loss by least squares: our fitter with a Huber delta
               (HUBER_DELTA) above every residual, so the Huber loss is the square everywhere. The
               project's default delta = 1e-3 (an L1-like loss, for noisy small-model points) moves
               S-BASE's b further from Table 3 (see `search_table`, measured in the chapter)

The repository that redistributes the file (linhaowei1/SLD, `data/moe_scaling_law_loader.py`) keeps the
rows at step 249,000 of every k, routing frequency and FLOP budget and holds out the 1.3B models; we
do not follow it, because it mixes the ablations into the main grid (and drops the two models whose
last step is not 249,000).

The search that chose these (`search_table`): dense rows in or out, the smallest or the largest size
dropped, least squares or the project's Huber loss. Least squares with the dense rows and every size
is nearest Table 3 summed over the three routers; no choice brings S-BASE's b within 0.01 of the
quoted -0.108 (leaving out any single point moves it by < 0.005), so that coefficient is not
verified from these data.

Tables (written into the routing store of a profile by `python -m scalinglaws clark --profile P`,
recorded in provenance under `derived`): clark_loss (the selected points), clark_fits (ours beside
the quoted Table 3: quoted, diff, quoted_in_interval), clark_fit_samples, clark_search (the selection
variants), clark_extrapolation, clark_steps, clark_claims.
"""
from __future__ import annotations

import datetime as dt
import math
import time

import numpy as np
import pandas as pd

from scalinglaws import laws as LW
from scalinglaws.core import claims as CL
from scalinglaws.core import profiles as PR
from scalinglaws.core.results import ResultStore, git_commit
from scalinglaws.core.validation import ParameterError, check_choice, check_int
from scalinglaws.data import reference as REF
from scalinglaws.studies.routing import claims as RC
from scalinglaws.studies.routing import study as S
from scalinglaws.studies.routing.literature import CLARK_TABLE3

RAW = "clark2022_routing_measurements.csv"
ROUTER_OF = {"Dense": "dense", "S-Base": "sbase", "RL-R": "rlr", "Hash": "hash"}
PROTOCOL = {"k": 1, "routing_frequency": 0.5, "flop_increase": 1.0}
LOSS_COLUMN = "loss_validation"
# least squares in log loss: every |log residual| of these fits is below 0.016 (checked in `fit`).
# Not larger: the fitter scales its objective by 1/delta^2, and at delta = 0.05 its optimiser stops
# short of the least-squares minimum (measured on synthetic data drawn from known coefficients:
# the residual sum of squares 5% above the one reached at 0.01 or 0.02, and 95% intervals that miss
# the truth far more often than 5%); at 0.02 they cover it (tests/test_clark_reference.py).
HUBER_DELTA = 0.02
MAX_FIT_EXPERTS = 64          # 'experts' extrapolation: fit E <= 64, predict E = 128..512
STEP_GRID = tuple(range(10_000, 250_000, 10_000))  # evaluations every model has (step 0 is the init)
SELECTION = pd.DataFrame([
    ("rows", "k = 1, routing frequency 0.5, flop_increase 1",
     "the paper's main grid; the k, frequency and FLOP ablations (25M, 370M only) stay out"),
    ("step", "each model's last evaluation (249K; 248K and 250K for one model each)",
     "the end of the 250K-step schedule"),
    ("dense rows", "E = 1 points of every router's fit; 130M dense = mean of its 3 seeds",
     "the law's E = 1 end (E_start) is pinned by the dense models, as in our study"),
    ("sizes", "all six: 15M, 25M, 55M, 130M, 370M, 1.3B dense parameters", "dropping 15M or 1.3B moves away from Table 3"),
    ("experts", "every E = 2..512 measured (4 of 54 cells are absent from the file)", "the paper's range"),
    ("N", "dense_parameter_count", "the parameters of the dense model a routed model extends"),
    ("loss", "loss_validation, log scale, least squares (Huber delta 0.02, above every residual)",
     "nearest Table 3; the project's delta 1e-3 (L1-like) moves S-BASE further away"),
], columns=["choice", "value", "why"])


# ---------------------------------------------------------------------------------------------
# the data
def load_raw(file=None) -> pd.DataFrame:
    """The shipped file, its sha256 verified (`data.reference`)."""
    return REF.load(RAW, file)


def _protocol(raw: pd.DataFrame) -> pd.DataFrame:
    sel = np.ones(len(raw), dtype=bool)
    for col, v in PROTOCOL.items():
        sel &= np.isclose(raw[col].to_numpy(dtype=float), v)
    return raw[sel]


def _ours(rows: pd.DataFrame, column: str = LOSS_COLUMN) -> pd.DataFrame:
    """Rows in the routing study's loss schema (size, N, experts, router, L), seeds averaged."""
    f = pd.DataFrame({"size": rows["model_size_label"], "N": rows["dense_parameter_count"].round().astype("int64"),
                      "experts": rows["num_experts"].astype(int), "router": rows["router_type"].map(ROUTER_OF),
                      "L": rows[column].astype(float), "step": rows["step"].astype(int)}).dropna(subset=["L"])
    # (loss_validation is never missing; a few per-dataset losses are, and those models drop out)
    g = f.groupby(["size", "N", "experts", "router"], as_index=False).agg(L=("L", "mean"), step=("step", "max"),
                                                                          seeds=("L", "size"))
    return g.sort_values(["router", "N", "experts"], key=lambda c: c.map(S.order_key) if c.name == "router" else c,
                         kind="stable").reset_index(drop=True)


LOSS_COLUMNS = ("loss_validation", "loss_c4", "loss_curation_corpus", "loss_lambada", "loss_pile", "loss_wikitext103")


def loss_table(raw: pd.DataFrame, step: int | None = None, column: str = LOSS_COLUMN) -> pd.DataFrame:
    """The selected models (SELECTION) at their last evaluation (step None) or at `step`; L is the
    loss `column` (default the validation loss Table 3 was fitted on; the per-dataset losses of the
    file refit the same way: `fit(loss_table(raw, column="loss_pile"))`)."""
    check_choice("column", column, LOSS_COLUMNS)
    p = _protocol(raw)
    rows = p.loc[p.groupby("hyper_id")["step"].idxmax()] if step is None else p[p["step"] == step]
    return _ours(rows, column)


def seed_sd(raw: pd.DataFrame) -> float:
    """Seed-to-seed SD of a final loss: the three 130M dense seeds (the file's only replicates)."""
    d = _protocol(raw)
    d = d[(d["router_type"] == "Dense") & (d["model_size_label"] == "130M")]
    last = d.loc[d.groupby("hyper_id")["step"].idxmax(), LOSS_COLUMN]
    return float(last.std(ddof=1))


# ---------------------------------------------------------------------------------------------
# the fit and Table 3
def fit(loss: pd.DataFrame, bootstrap: int = 1000, seed: int = 0, huber_delta: float = HUBER_DELTA):
    """(fits, results): `study.fit_laws` on Clark's points (dense law and routing law per router)."""
    fits, results = S.fit_laws(loss[["size", "N", "experts", "router", "L"]], bootstrap, seed, huber_delta=huber_delta)
    worst = max(float(np.max(np.abs(r.residuals))) for r in results.values())
    if worst >= huber_delta:  # then the Huber loss is not the square everywhere: not least squares
        raise ParameterError(f"a log residual {worst:.3g} exceeds huber_delta={huber_delta}: not a least-squares fit; "
                             f"pass a huber_delta above it (the per-dataset losses need about 0.1)")
    return fits, results


def fits_table(fits: pd.DataFrame) -> pd.DataFrame:
    """Our fits of Clark's data beside the quoted Table 3: quoted value, estimate - quoted, and
    whether the quoted value lies in our 95% bootstrap interval."""
    out = fits.copy()
    q = [CLARK_TABLE3.loc[r, p] if r in CLARK_TABLE3.index and p in CLARK_TABLE3.columns else math.nan
         for r, p in zip(out["router"], out["param"])]
    out["quoted"] = q
    out["diff"] = out["estimate"] - out["quoted"]
    out["quoted_in_interval"] = (out["lo"] <= out["quoted"]) & (out["quoted"] <= out["hi"])
    return out


def search_table(raw: pd.DataFrame) -> pd.DataFrame:
    """The selection search behind SELECTION (no bootstrap): per variant and router, a b c d and the
    summed |difference| to Table 3 over a, b, c, d."""
    base = loss_table(raw)
    variants = {"least squares, dense rows, all sizes (chosen)": (base, HUBER_DELTA),
                "least squares, no dense rows": (base[base["router"] != "dense"], HUBER_DELTA),
                "least squares, without 15M": (base[base["size"] != "15M"], HUBER_DELTA),
                "least squares, without 1.3B": (base[base["size"] != "1.3B"], HUBER_DELTA),
                "Huber delta 1e-3 (project default), dense rows, all sizes": (base, 1e-3)}
    rows = []
    for name, (loss, delta) in variants.items():
        fits, _ = S.fit_laws(loss, 0, 0, huber_delta=delta) if (loss["router"] == "dense").any() else \
            _fit_no_dense(loss, delta)
        for r in CLARK_TABLE3.index:
            f = fits[(fits["router"] == r) & (fits["law"] == S.LAW)].set_index("param")["estimate"]
            rows.append({"variant": name, "router": r, **f.to_dict(),
                         "distance": float(sum(abs(f[p] - CLARK_TABLE3.loc[r, p]) for p in "abcd"))})
    return pd.DataFrame(rows)


def _fit_no_dense(loss, delta):
    from scalinglaws import fitting as F
    rows = []
    for r in S.routers_in(loss):
        res = F.fit(S.LAW, loss[loss["router"] == r], columns={"N": "N", "E": "experts"}, y="L", bootstrap=0,
                    huber_delta=delta)
        rows += [{**x, "law": S.LAW} for x in res.rows(router=r)]
    return pd.DataFrame(rows), {}


# ---------------------------------------------------------------------------------------------
# extrapolation: the loss, the effective parameter count and N_cutoff
EXTRAPOLATION_COLUMNS = ["router", "scheme", "quantity", "size", "N", "experts", "measured", "pred", "lo", "hi",
                         "error", "status"]


def extrapolation_table(loss: pd.DataFrame, results: dict, bootstrap: int = 200, seed: int = 0) -> pd.DataFrame:
    """Held-out predictions on Clark's data, per router (error: (pred - measured) / measured for L
    and N_bar, pred - measured in decades for log10 N_cutoff):

    L, scheme 'size'        fit N <= 370M (and the dense law on the dense N <= 370M), predict 1.3B
    L, scheme 'experts'     fit E <= 64, predict E = 128..512 (`study.extrapolation_table`)
    N_bar, scheme 'size'    the 1.3B models' effective parameter count from the N <= 370M fits
                            (`laws.effective_params`) against N_bar measured: their loss through the
                            dense law fitted on every dense size
    log10_n_cutoff, 'size'  -b/c of the N <= 370M fit against that of the fit on every size
    """
    loss = loss[["size", "N", "experts", "router", "L"]]
    ex = S.extrapolation_table(loss, MAX_FIT_EXPERTS, bootstrap, seed, huber_delta=HUBER_DELTA)
    ex = ex[ex["status"] != "not testable"]
    rows = [{"router": x.router, "scheme": x.scheme, "quantity": "L", "size": x.size, "N": x.N, "experts": x.experts,
             "measured": x.L, "pred": x.pred, "lo": x.lo, "hi": x.hi, "error": x.rel_error, "status": x.status}
            for x in ex.itertuples()]
    n_max = loss["N"].max()
    small_fits, small = S.fit_laws(loss[loss["N"] < n_max], bootstrap, seed, huber_delta=HUBER_DELTA)
    dense_full = results[S.DENSE].params
    big = loss[(loss["N"] == n_max) & (loss["router"] != S.DENSE)]
    for x in big.itertuples():
        if x.router not in small:
            continue
        meas = 10.0 ** ((math.log10(x.L) - dense_full["d"]) / dense_full["a"])
        pred = LW.effective_params(small[x.router], small[S.DENSE], x.N, x.experts)
        lo = hi = math.nan
        rs, ds = small[x.router].bootstrap, small[S.DENSE].bootstrap
        if rs is not None and ds is not None and len(rs) and len(ds):
            m = min(len(rs), len(ds))  # draw j of the routed fit with draw j of the dense fit
            draws = [LW.effective_params(rs.iloc[j].to_dict(), ds.iloc[j].to_dict(), x.N, x.experts) for j in range(m)]
            lo, hi = np.nanpercentile(draws, [2.5, 97.5])
        rows.append({"router": x.router, "scheme": "size", "quantity": "N_bar", "size": x.size, "N": x.N,
                     "experts": x.experts, "measured": meas, "pred": pred, "lo": lo, "hi": hi,
                     "error": pred / meas - 1.0, "status": _status(small[x.router], small[S.DENSE])})
    full_cut = S.n_cutoff_table(results).set_index("router")
    small_cut = S.n_cutoff_table(small).set_index("router")
    for r in small_cut.index:
        x, m = small_cut.loc[r], full_cut.loc[r, "log10_n_cutoff"]
        rows.append({"router": r, "scheme": "size", "quantity": "log10_n_cutoff", "size": "", "N": math.nan,
                     "experts": math.nan, "measured": m, "pred": x["log10_n_cutoff"], "lo": x["log10_lo"],
                     "hi": x["log10_hi"], "error": x["log10_n_cutoff"] - m, "status": _status(small[r])})
    out = pd.DataFrame(rows, columns=EXTRAPOLATION_COLUMNS)
    out["size"] = out["size"].astype(str)
    return out


def _status(*fits) -> str:
    bad = [f.why_not_ok for f in fits if not f.ok]
    return "ok" if not bad else "fit not ok: " + "; ".join(bad)


# ---------------------------------------------------------------------------------------------
# the step dimension
STEP_COLUMNS = ["size", "N", "experts", "router", "step", "L", "L_dense", "gap", "rel_gap"]


def steps_table(raw: pd.DataFrame, steps=STEP_GRID) -> pd.DataFrame:
    """Every routed model's gain over dense along training: at each step, gap = L - L_dense (same
    size, same step; negative: routing helps) and rel_gap = L / L_dense - 1, the measure we put beside
    our step check (`our_step_gaps`): Clark's losses and ours are on different data and tokenizers,
    so only the relative gap compares."""
    parts = []
    for s in steps:
        t = loss_table(raw, s)
        dense = t[t["router"] == S.DENSE].set_index("size")["L"]
        r = t[(t["router"] != S.DENSE) & t["size"].isin(dense.index)].copy()
        r["step"], r["L_dense"] = s, r["size"].map(dense)
        parts.append(r)
    out = pd.concat(parts, ignore_index=True)
    out["gap"] = out["L"] - out["L_dense"]
    out["rel_gap"] = out["L"] / out["L_dense"] - 1.0
    return out[STEP_COLUMNS]


def our_step_gaps(step_check: pd.DataFrame) -> pd.DataFrame:
    """Our step check in the same measure: per router, rel_gap = L / L_dense - 1 at the grid's
    steps and at the check's (twice as many optimiser steps on the same tokens)."""
    if step_check is None or not len(step_check):
        return pd.DataFrame(columns=["size", "experts", "router", "steps", "rel_gap"])
    d = step_check[step_check["router"] == S.DENSE].iloc[0]
    rows = []
    for x in step_check[step_check["router"] != S.DENSE].itertuples():
        rows.append({"size": x.size, "experts": x.experts, "router": x.router, "steps": x.grid_steps,
                     "rel_gap": x.grid_L / d["grid_L"] - 1.0})
        rows.append({"size": x.size, "experts": x.experts, "router": x.router, "steps": x.steps,
                     "rel_gap": x.L / d["L"] - 1.0})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# claims
FIG_CLARK = "routing.html#fig-routing-clark-loss"
NOT_IN_CLARK = {"more_steps_help_routing": "Clark's file has no same-token step check (more steps there means more tokens)",
                "experts_as_resources": "Clark's file has no per-domain expert usage",
                "constant_shares": "Clark's file has no per-domain expert usage"}


def claims_table(loss: pd.DataFrame, fits: pd.DataFrame, results: dict, sd: float, profile: str | None,
                 seed: int = 0, bootstrap: int = 1000) -> pd.DataFrame:
    """The routing study's claims (`routing.claims.claims`, our code unchanged) judged on Clark's
    tables. Each model's sampling error is the seed-to-seed SD of a final loss (`seed_sd`): the file
    has no per-model error, and a seed is the larger source of spread at this scale."""
    ce = loss.assign(domain="validation", ce=loss["L"], ce_se=sd)[["size", "experts", "router", "domain", "ce", "ce_se"]]
    tables = {"loss": loss[["size", "N", "experts", "router", "L"]], "fits": fits, "ce": ce,
              "n_cutoff": S.n_cutoff_table(results), RC.PAPERS_OWN_RUNS: True,
              CL.SEEDS_INCLUDED: f"every model's sampling SE is the 130M dense seed-to-seed SD ({sd:.4f})"}
    df = RC.claims(tables, None, seed, bootstrap)
    for cid, why in NOT_IN_CLARK.items():
        df.loc[df["claim_id"] == cid, "note"] = why
    df["figure"] = FIG_CLARK
    df["note"] = df["note"] + f"; on Clark et al.'s data (their models' sampling SE: the 130M dense seed SD {sd:.4f})"
    return CL.frame(df.to_dict("records"), profile)


# ---------------------------------------------------------------------------------------------
# derive the tables into a profile's store
BOOTSTRAP, PIPELINE_BOOTSTRAP = 1000, 20  # draws per fit; at a profile whose claims are not testable, a few
TABLES = ("clark_loss", "clark_fits", "clark_fit_samples", "clark_search", "clark_extrapolation", "clark_steps",
          "clark_claims")


def compute(raw: pd.DataFrame, profile: str | None, bootstrap: int, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Every clark_* table from the raw file (bootstrap draws per fit; extrapolation uses <= 200)."""
    check_int("bootstrap", bootstrap, minimum=0)
    loss = loss_table(raw)
    fits, results = fit(loss, bootstrap, seed)
    return {"clark_loss": loss, "clark_fits": fits_table(fits),
            "clark_fit_samples": S.fit_samples_table(results),
            "clark_search": search_table(raw),
            "clark_extrapolation": extrapolation_table(loss, results, min(bootstrap, 200), seed),
            "clark_steps": steps_table(raw),
            "clark_claims": claims_table(loss, fits, results, seed_sd(raw), profile, seed, max(bootstrap, 100))}


def derive(profile: str, root=None, bootstrap: int | None = None) -> ResultStore:
    """Write the clark_* tables into the routing store of `profile` (which must hold a complete run:
    the chapter shows them beside it) and record each under provenance `derived`."""
    check_choice("profile", profile, S.PROFILES)
    store = ResultStore(S.STUDY, profile, root)
    prov = store.provenance()
    if not prov:
        raise ParameterError(f"no complete routing run at profile {profile!r} under {store.dir} (no provenance.json)")
    default = BOOTSTRAP if PR.claims_testable(profile) else PIPELINE_BOOTSTRAP
    bootstrap = default if bootstrap is None else check_int("bootstrap", bootstrap, minimum=0)
    raw = load_raw()  # checksum verified before any compute
    t0 = time.perf_counter()
    tables = compute(raw, profile, bootstrap)
    for name, df in tables.items():
        store.write(name, df)
    stamp = {"commit": git_commit(), "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
             "from": [f"data/reference/{RAW}"], "command": f"python -m scalinglaws clark --profile {profile}",
             "bootstrap": bootstrap, "seconds": round(time.perf_counter() - t0, 1)}
    for name in tables:
        prov.setdefault("derived", {})[name] = dict(stamp)
    store.write_provenance(prov)
    return store
