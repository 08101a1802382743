"""Claims tables: the shared schema, the four verdicts and the rules `check_claims` enforces,
`judge` (claim tests, preconditions, training-seed noise), the routing and resource claims on small
synthetic tables, the `claims` command (recompute from stored tables, seeds passed, provenance), and
the Findings chapter's builders (grouped by paper, links named by target, scorecard, sentences)."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from scalinglaws import report
from scalinglaws.core import claims as CL
from scalinglaws.core import seeds as S
from scalinglaws.core.results import ResultStore

BOOT = "95% interval: bootstrap over windows"


def good(**over) -> pd.DataFrame:
    rows = [CL.claim("a", "Paper 2024", "x < 0", "x", -1.0, -1.5, -0.5, "holds", "routing.html#fig-x", f"below 0; {BOOT}"),
            CL.claim("b", "this study", "y = 1", "y", 2.0, 1.5, 2.5, "refuted", "fig-y", f"1 outside; {BOOT}"),
            CL.claim("c", "Paper 2024", "z", "z", note="too few points")]
    df = pd.DataFrame(rows)
    for k, v in over.items():
        df[k] = v
    return df


def test_schema_accepts_a_good_frame():
    out = CL.check_claims(good())
    assert list(out.columns) == list(CL.COLUMNS) and out["value"].dtype == float
    assert math.isnan(out.loc[2, "lo"])
    assert CL.VERDICTS == ("holds", "refuted", "inconclusive", "not testable")


@pytest.mark.parametrize("mutate, match", [
    (lambda d: d.drop(columns=["note"]), "missing"),
    (lambda d: d.assign(extra=1), "extra"),
    (lambda d: d.assign(verdict=["holds", "does not hold", "holds"]), "does not hold"),  # the retired verdict
    (lambda d: d.assign(claim_id=["a", "a", "c"]), "unique"),
    (lambda d: d.assign(value=["x", 1, 2]), "numeric"),
    (lambda d: d.assign(note=["", "", ""]), "note"),
    (lambda d: d.assign(figure=["routing.html#fig x", "", ""]), "figure"),
    (lambda d: d.assign(lo=[0.0, 3.0, math.nan]), "lo"),
    (lambda d: d.assign(paper=["", "p", "p"]), "paper"),
    (lambda d: d.assign(claim=[1, "y", "z"]), "strings"),
    # the verdict rules: a decided row needs a finite interval around its value, stated how it was made
    (lambda d: d.assign(lo=[math.nan, 1.5, math.nan]), "finite 95% interval"),
    (lambda d: d.assign(value=[-2.0, 2.0, math.nan]), "lo <= value <= hi"),
    (lambda d: d.assign(hi=[-0.5, math.inf, math.nan]), "finite 95% interval"),
    (lambda d: d.assign(note=["below 0", f"outside; {BOOT}", "n"]), "how its 95% interval was made"),
    (lambda d: d.assign(note=["below 0; 95% interval: from the min and max over sizes", f"x; {BOOT}", "n"]),
     "how its 95% interval was made"),
    (lambda d: d.assign(note=[f"x; {BOOT}", f"x; {BOOT}; fit not ok: R^2 0.5", "n"]), "fit that is not ok"),
    (lambda d: d.assign(verdict=["holds", "refuted", "inconclusive"], note=[f"x; {BOOT}", f"x; {BOOT}", ""]), "note"),
])
def test_schema_rejects_bad_frames(mutate, match):
    with pytest.raises(CL.ClaimsError, match=match):
        CL.check_claims(mutate(good()))
    with pytest.raises(CL.ClaimsError):
        CL.check_claims([1, 2])


def J(value, lo, hi, test, **kw):
    kw.setdefault("interval", "bootstrap over windows")
    kw.setdefault("seeds", None)
    return CL.judge("c", "p", "claim", "m", value, lo, hi, test, **kw)


@pytest.mark.parametrize("test, lo, hi, verdict", [
    (CL.Above(0), 0.1, 0.3, "holds"), (CL.Above(0), -0.3, -0.1, "refuted"), (CL.Above(0), -0.1, 0.3, "inconclusive"),
    (CL.Below(0), -0.3, -0.1, "holds"), (CL.Below(0), 0.1, 0.3, "refuted"), (CL.Below(0), -0.1, 0.3, "inconclusive"),
    (CL.Contains(1.0), 0.9, 1.2, "holds"), (CL.Contains(1.0), 1.1, 1.2, "refuted"),
    (CL.Contains(1.0, 0.0), -0.1, 1.2, "inconclusive"),  # cannot tell "= 1" from "= 0"
    # a rival prediction inside the interval: -1/2 cannot be told from -1/3; one outside leaves it standing
    (CL.Contains(-0.5, 0.0, "", ((-1 / 3, "the other prediction"),)), -0.6, -0.2, "inconclusive"),
    (CL.Contains(-0.5, 0.0, "", ((-1 / 3, "the other prediction"),)), -0.6, -0.4, "holds"),
    (CL.Within(0.5, 2.0), 0.6, 1.9, "holds"), (CL.Within(0.5, 2.0), 2.1, 3.0, "refuted"),
    (CL.Within(0.5, 2.0), 0.4, 1.0, "inconclusive"),
])
def test_judge_applies_the_claims_test_to_the_interval(test, lo, hi, verdict):
    r = J((lo + hi) / 2, lo, hi, test)
    assert r["verdict"] == verdict
    CL.check_claims(pd.DataFrame([r]))  # every row judge makes passes the validator
    if verdict == "inconclusive":
        assert "too wide" in r["note"] and CL.to_decide(r["note"])


def test_judge_without_an_interval_or_with_the_value_outside_it_decides_nothing():
    assert J(1.0, math.nan, math.nan, CL.Above(0))["verdict"] == "inconclusive"
    r = J(5.0, 0.1, 0.3, CL.Above(0))  # a min/max range is not an interval of its value
    assert r["verdict"] == "inconclusive" and "outside its interval" in r["note"]


def test_training_seed_noise_widens_the_interval_or_leaves_the_claim_inconclusive():
    # unknown: inconclusive, with the measure named and what would decide it
    r = J(0.05, 0.03, 0.07, CL.Above(0), seeds=CL.SeedNoise("gain_over_dense", math.nan))
    assert r["verdict"] == "inconclusive"
    assert "training-seed noise not measured (measure gain_over_dense)" in r["note"]
    assert "3 training seeds of gain_over_dense" in CL.to_decide(r["note"])
    assert (r["lo"], r["hi"]) == (0.03, 0.07) and "on the interval alone: holds" in r["note"]
    # known: each half-width combined in quadrature with 1.96 sd sqrt(n_models), by hand
    r = J(0.05, 0.03, 0.07, CL.Above(0), seeds=CL.SeedNoise("g", 0.01, 2))
    half = math.hypot(0.02, 1.959963984540054 * 0.01 * math.sqrt(2))
    assert r["verdict"] == "holds" and r["lo"] == pytest.approx(0.05 - half) and r["hi"] == pytest.approx(0.05 + half)
    assert "widened by training-seed SD 0.01" in r["note"]
    # a seed SD larger than the effect leaves it undecided
    assert J(0.05, 0.03, 0.07, CL.Above(0), seeds=CL.SeedNoise("g", 0.05, 2))["verdict"] == "inconclusive"
    # from a stored seeds table: pooled over cells with enough seeds
    seeds = pd.DataFrame({"cell": ["a"] * 3 + ["b"] * 3, "measure": "test_ce", "seed": [0, 1, 2] * 2,
                          "value": [1.0, 1.1, 1.2, 2.0, 2.0, 2.3]})
    sn = CL.seed_noise({"seeds": seeds}, "test_ce", n_models=2)
    assert sn.known and sn.sd == pytest.approx(S.seed_sd(seeds, "test_ce")) and sn.n_models == 2
    assert not CL.seed_noise({}, "test_ce").known and not CL.seed_noise({"seeds": seeds}, "other").known
    r = J(0.5, 0.4, 0.6, CL.Above(0), seeds=CL.seeds_included("a bootstrap over seeds"))
    assert r["verdict"] == "holds" and (r["lo"], r["hi"]) == (0.4, 0.6) and "seeds included" in r["note"]


def test_a_fit_that_is_not_ok_and_an_unmet_precondition_make_a_claim_inconclusive_never_refuted():
    r = J(-3.0, -3.5, -2.5, CL.Above(0), fit=(False, "R^2 0.5 < 0.9"))
    assert r["verdict"] == "inconclusive" and "fit not ok: R^2 0.5 < 0.9" in r["note"]
    assert "on the interval alone: refuted" in r["note"]
    pre = CL.Precondition("router entropy / log E", 0.93, "<", 0.8)
    r = J(0.5, 0.4, 0.6, CL.Above(0), preconditions=[pre, CL.Precondition("dense falls", 0.1, ">", 0)])
    assert r["verdict"] == "inconclusive" and "router entropy / log E 0.93 (needs < 0.8)" in r["note"]
    assert "dense falls" not in r["note"]  # met preconditions are not listed
    assert "router entropy / log E < 0.8" in CL.to_decide(r["note"])
    assert not CL.Precondition("x", math.nan, ">", 0).met and CL.Precondition("x", 1, ">=", 1).met
    with pytest.raises(ValueError):
        CL.Precondition("x", 1, "!=", 0)
    assert J(0.5, 0.4, 0.6, CL.Above(0), preconditions=[CL.Precondition("ok", 1, ">", 0)])["verdict"] == "holds"


def test_seed_noise_of_a_fitted_slope_by_least_squares():
    x = np.log(np.array([1e3, 1e4, 1e5]))
    X = np.column_stack([np.ones(3), x])
    seeds = pd.DataFrame({"cell": ["a"] * 3, "measure": "test_ce", "seed": [0, 1, 2], "value": [4.0, 4.1, 4.2]})
    sn = CL.seed_noise_of_fit({"seeds": seeds}, "test_ce", X, 4.0, 1)
    # sd of log L = 0.1 / 4; the slope's SE = sd / sqrt(sum (x - mean x)^2)
    assert sn.sd == pytest.approx(0.1 / 4 / math.sqrt(((x - x.mean()) ** 2).sum()))
    assert not CL.seed_noise_of_fit({}, "test_ce", X, 4.0, 1).known


def test_smoke_makes_every_verdict_not_testable():
    df = CL.frame([J(1, 0, 2, CL.Above(-1))], "smoke")
    assert df.loc[0, "verdict"] == "not testable" and df.loc[0, "note"].startswith("smoke profile")
    assert "holds" in df.loc[0, "note"] and df.loc[0, "value"] == 1


# ------------------------------------------------------------------------------------- routing

ES = [1, 2, 4, 8, 16, 32, 64]


def seeds_table(sd=0.002, measures=("test_ce",), cells=("a", "b")) -> pd.DataFrame:
    """A stored `seeds` table: three seeds per cell with sample SD `sd` for every measure."""
    rows = [{"cell": c, "measure": m, "seed": i, "value": 1.0 + (i - 1) * sd}
            for m in measures for c in cells for i in range(3)]
    return pd.DataFrame(rows)


ROUTING_SEED_MEASURES = ("test_ce", "gain_over_dense", "E_max:sbase", "experts_as_resources:sbase")


def routing_tables(b=(-0.12, -0.13, -0.11), c=(0.02, 0.018, 0.022), e_max=(100.0, 60.0, 200.0), cutoff=(6.0, 5.8, 6.2),
                   frac=1.0, shift=None, gamma=(1.0, 0.8, 1.2), r2=0.99, entropy=0.5, seed_sd=1e-4):
    """Stored routing tables as the study writes them, with chosen estimates and intervals: the
    same (b, c, E_max, cutoff) for both routers; dense sizes 10^3..10^5 and E up to 64; the learned
    router's routing entropy at `entropy` x log E; a seeds table with SD `seed_sd` (None: none)."""
    routers = ("sbase", "hash")
    loss, routing = [], []
    for i, N in enumerate((1e3, 1e4, 1e5)):
        loss.append({"size": f"s{i}", "N": int(N), "experts": 1, "router": "dense", "L": 4.0 - i * 0.3})
        for r in routers:
            for E in ES[1:]:
                loss.append({"size": f"s{i}", "N": int(N), "experts": E, "router": r,
                             "L": 4.0 - i * 0.3 - 0.01 * np.log2(E) + (shift or {}).get(r, 0.0)})
                routing.append({"size": f"s{i}", "experts": E, "router": r, "phase": "train", "layer": 0,
                                "entropy": 0.0 if r == "hash" else entropy * np.log(E)})
    fits = []
    for r in routers:
        for p, (est, lo, hi) in {"a": (-0.08, -0.09, -0.07), "b": b, "c": c, "d": (1.1, 1.0, 1.2),
                                  "E_start": (2.0, 1.5, 2.5), "E_max": e_max}.items():
            fits.append({"router": r, "law": "routing", "param": p, "estimate": est, "lo": lo, "hi": hi, "r2": r2,
                         "ok": r2 >= 0.9, "why_not_ok": "" if r2 >= 0.9 else f"R^2 {r2:g} < 0.9",
                         "n_points": 21, "message": "converged"})  # ok as the trust rule (fitting.trust) sets it
    n_cut = pd.DataFrame([{"router": r, "b": b[0], "c": c[0], "log10_n_cutoff": cutoff[0], "n_cutoff": 10 ** cutoff[0],
                           "log10_lo": cutoff[1], "log10_hi": cutoff[2], "frac_c_positive": frac, "ok": True}
                          for r in routers])
    rf = pd.DataFrame([{"router": r, "size": "s2", "law": "resource_slope", "param": "gamma", "estimate": gamma[0],
                        "lo": gamma[1], "hi": gamma[2], "n_points": 9, "ok": True, "why_not_ok": "",
                        "domains": 3, "one_over_n": True} for r in routers])  # the one fits schema
    out = {"loss": pd.DataFrame(loss), "fits": pd.DataFrame(fits), "n_cutoff": n_cut, "resource_fits": rf,
           "routing": pd.DataFrame(routing)}
    if seed_sd is not None:
        out["seeds"] = seeds_table(seed_sd, ROUTING_SEED_MEASURES, cells=("s0/dense", "s0/E4/sbase"))
    return out


def verdicts(df):
    return df.set_index("claim_id")["verdict"]


def test_routing_claims_on_synthetic_tables():
    from scalinglaws.studies.routing.claims import claims
    # Clark's picture: b < 0, c > 0, a cutoff at 10^6 beyond the sizes 10^3..10^5, E_max seen, S-BASE better
    df = claims(routing_tables(shift={"hash": 0.01}), "cpu")
    v = verdicts(df)
    for r in ("sbase", "hash"):
        assert v[f"helps_at_fixed_N_{r}"] == "holds" and v[f"shrinks_with_N_{r}"] == "holds"
        assert v[f"n_cutoff_{r}"] == "holds"
    assert v["sbase_best"] == "holds" and v["saturates_with_E"] == "holds" and v["experts_as_resources"] == "holds"
    assert v["one_functional_form"] == "inconclusive"  # R^2 has no interval: it cannot hold or be refuted
    d = df.set_index("claim_id")
    assert d.loc["shrinks_with_N_sbase", "value"] == 0.02  # the interval widened (slightly) by the seed noise
    assert d.loc["shrinks_with_N_sbase", "lo"] < 0.018 and d.loc["shrinks_with_N_sbase", "hi"] > 0.022
    assert "second-hand" in d.loc["helps_at_fixed_N_sbase", "claim"]  # Clark's Table 3, not checked
    # trusted fits whose intervals exclude Clark's signs: refuted; S-BASE worse and gamma far from 1 too
    v = verdicts(claims(routing_tables(c=(-0.01, -0.02, -0.005), cutoff=(4.0, 3.5, 4.5), shift={"sbase": 0.01},
                                       gamma=(0.1, 0.05, 0.2), e_max=(1e5, 5e4, 1e6)), "cpu"))
    assert v["shrinks_with_N_sbase"] == "refuted" and v["sbase_best"] == "refuted"
    assert v["experts_as_resources"] == "refuted" and v["saturates_with_E"] == "refuted"
    assert v["n_cutoff_sbase"] == "refuted"  # the cutoff's interval lies inside the measured range
    # c > 0 in too few bootstrap draws: the cutoff may not exist (its precondition), so nothing is decided
    t = claims(routing_tables(frac=0.6), "cpu").set_index("claim_id")
    assert t.loc["n_cutoff_hash", "verdict"] == "inconclusive" and "c > 0" in t.loc["n_cutoff_hash", "note"]
    # the same picture from fits that are not ok (R^2 below the threshold): inconclusive, never refuted
    t = claims(routing_tables(c=(-0.01, -0.02, -0.005), r2=0.5), "cpu").set_index("claim_id")
    assert t.loc["shrinks_with_N_sbase", "verdict"] == "inconclusive" and "fit not ok" in t.loc["shrinks_with_N_sbase", "note"]
    assert "refuted" not in set(t["verdict"]) - {"sbase_best"}
    # an interval that reaches the law's bound (b in [-5, 5]) is cut by the box: the fit is not ok
    t = claims(routing_tables(b=(-0.12, -5.0, -0.11)), "cpu").set_index("claim_id")
    assert t.loc["helps_at_fixed_N_sbase", "verdict"] == "inconclusive"
    assert "interval reaches a bound: b" in t.loc["helps_at_fixed_N_sbase", "note"]
    # a learned router that has learned no assignment (entropy near log E): Clark's law does not apply to it
    t = claims(routing_tables(entropy=0.95), "cpu").set_index("claim_id")
    assert t.loc["helps_at_fixed_N_sbase", "verdict"] == "inconclusive"
    assert "S-BASE routing entropy / log E at the largest E 0.95 (needs < 0.8)" in t.loc["helps_at_fixed_N_sbase", "note"]
    assert t.loc["helps_at_fixed_N_hash", "verdict"] == "holds"  # Hash has no learned router
    # no seeds table: nothing on trained models can be decided; S-BASE's mean over cells resamples seeds itself
    t = claims(routing_tables(seed_sd=None, shift={"hash": 0.01}), "cpu").set_index("claim_id")
    assert t.loc["shrinks_with_N_hash", "verdict"] == "inconclusive" and t.loc["sbase_best", "verdict"] == "holds"
    assert "training-seed noise not measured" in t.loc["beats_dense_hash", "note"]
    # an interval straddling 0, or none at all (no bootstrap): never judged from a point estimate alone
    nan3 = (math.nan, math.nan)
    t = routing_tables(b=(-0.1, -0.2, 0.05), c=(0.02, *nan3), e_max=(100.0, *nan3), cutoff=(6.0, *nan3), frac=math.nan)
    v = verdicts(claims(t, "cpu"))
    assert v["helps_at_fixed_N_sbase"] == "inconclusive" and v["shrinks_with_N_sbase"] == "inconclusive"
    assert v["n_cutoff_sbase"] == "inconclusive" and v["saturates_with_E"] == "not testable"
    assert set(claims(routing_tables(), "smoke")["verdict"]) == {"not testable"}


# ------------------------------------------------------------------------------------ resource

def _exp(part, subject, est, lo, hi, **kw):
    return {"part": part, "subject": subject, "law": kw.pop("law", "power"), "param": kw.pop("param", "exponent"),
            "estimate": est, "lo": lo, "hi": hi, "ok": True, "n_points": 10, "activation": kw.pop("activation", None),
            "method": kw.pop("method", "weight"), "threshold": 1e-3, "primary": kw.pop("primary", True)}


def lm_ladders(falls=True, edge=False) -> pd.DataFrame:
    """Two LM ladders of three sizes at three rates each; the middle rate chosen (the edge one with
    `edge`), loss falling with N (or the top size worse with falls=False)."""
    rows = []
    for ladder in ("width", "depth"):
        for i, N in enumerate((1e3, 1e4, 1e5)):
            L = 5.0 - 0.3 * i if falls or i < 2 else 5.0
            for lr in (0.002, 0.004, 0.008):
                best = lr == (0.008 if edge else 0.004)
                rows.append({"ladder": ladder, "size": f"s{i}", "params_non_embedding": int(N), "lr": lr,
                             "loss": L if best else L + 0.1, "chosen": best, "diverged": False})
    return pd.DataFrame(rows)


def resource_tables(single=(-1.05, -1.2, -0.9), lm_depth=(-0.3, -0.4, -0.25), seeds=True, **ladder):
    fits = pd.DataFrame([
        _exp("single", "square", *single, activation="relu"),
        _exp("single", "square", -2.0, -2.2, -1.8, activation="silu"),
        _exp("single", "square", -1.0, -1.1, -0.9, activation="relu", primary=False),  # not the primary count
        _exp("lm", "width", -0.1, -0.2, -0.05, method="non_embedding"),
        _exp("lm", "depth", *lm_depth, method="non_embedding"),
        _exp("lm", "depth", -0.9, -1.0, -0.8, method="total", primary=False),
        _exp("chinchilla", "epoch_refit", 0.35, 0.32, 0.37, law="chinchilla", param="alpha", method="reference_csv"),
    ])
    from scalinglaws.fitting.schema import fit_rows, fits_frame  # the one fits schema
    shares = fits_frame([r for kind, (s, lo, hi) in (("parallel", (0.02, 0.01, 0.03)), ("series", (0.0, -0.01, 0.01)))
                         for r in fit_rows("share_trend", {"slope": s, "mean": 0.4}, {"slope": (lo, hi), "mean": (0.3, 0.5)},
                                           ok=True, why_not_ok="", n_points=50, keys={"kind": kind},
                                           extra={"log2_range": 4.0})], ["kind"], ["log2_range"])
    additive = fits_frame(fit_rows("additive", {"c1": 1, "a1": 1.1, "a2": 2.5},
                                   {"c1": (0.5, 2), "a1": (0.8, 1.4), "a2": (2.0, 3.0)}, r2_log=0.95, ok=True,
                                   why_not_ok="", n_points=50, keys={"kind": "parallel", "form": "free exponents"}),
                          ["kind", "form"])
    out = {"fits": fits, "shares": shares, "additive": additive, "lm_ladders": lm_ladders(**ladder)}
    if seeds:
        out["seeds"] = seeds_table(0.001)
    return out


def test_resource_claims_on_synthetic_tables():
    from scalinglaws.studies.resource.claims import claims
    df = claims(resource_tables(), "cpu")
    v = verdicts(df)
    assert v["single_square_relu"] == "holds" and v["single_square_silu"] == "refuted"
    assert v["shares_constant_parallel"] == "refuted" and v["shares_constant_series"] == "holds"
    assert v["additive_parallel_a1"] == "holds" and v["additive_parallel_a2"] == "refuted"
    assert v["chinchilla_one_third"] == "holds"
    assert v["lm_width"] == "refuted" and v["lm_depth"] == "holds" and v["lm_depth_chinchilla"] == "holds"
    assert df.set_index("claim_id").loc["single_square_relu", "value"] == -1.05
    assert (df["figure"] != "").all()
    v = verdicts(claims(resource_tables(single=(-3, math.nan, math.nan), lm_depth=(-0.1, -0.2, -0.05)), "cpu"))
    assert v["single_square_relu"] == "inconclusive" and v["lm_depth"] == "refuted"
    # a fit that is not ok cannot decide a claim, however its interval falls
    t = resource_tables()
    bad = (t["fits"]["subject"] == "depth") & (t["fits"]["part"] == "lm")
    t["fits"].loc[bad, "ok"], t["fits"].loc[bad, "why_not_ok"] = False, "R^2 0.5 < 0.9"
    d = claims(t, "cpu").set_index("claim_id")
    assert d.loc["lm_depth", "verdict"] == "inconclusive" and "fit not ok: R^2 0.5 < 0.9" in d.loc["lm_depth", "note"]
    assert d.loc["single_square_relu", "verdict"] == "holds"
    # an exponent interval reaching the law's bound (alpha <= 5: exponent -5) makes the fit not ok
    t = resource_tables(lm_depth=(-0.3, -5.0, -0.11))
    t["fits"].loc[t["fits"]["subject"] == "depth", "law"] = "power"
    t["fits"] = pd.concat([t["fits"], pd.DataFrame([_exp("lm", "depth", 0.3, 0.11, 5.0, param="alpha",
                                                         method="non_embedding")])], ignore_index=True)
    d = claims(t, "cpu").set_index("claim_id")
    assert d.loc["lm_depth", "verdict"] == "inconclusive" and "interval reaches a bound: alpha" in d.loc["lm_depth", "note"]
    # the additive fits go through the trust rule too
    t = resource_tables()
    t["additive"]["r2_log"], t["additive"]["ok"], t["additive"]["why_not_ok"] = 0.6, False, "R^2 0.6 < 0.9"
    assert verdicts(claims(t, "cpu"))["additive_parallel_a1"] == "inconclusive"
    # the LM regime as preconditions: a ladder that does not fall, or rates at the grid's edge
    for kw, what in (({"falls": False}, "smallest loss drop"), ({"edge": True}, "at an edge of its grid")):
        d = claims(resource_tables(**kw), "cpu").set_index("claim_id")
        assert d.loc["lm_depth", "verdict"] == "inconclusive" and what in d.loc["lm_depth", "note"]
    # no seeds: the LM claims (one seed per rung) wait for them; the toy claims resample seeds already
    v = verdicts(claims(resource_tables(seeds=False), "cpu"))
    assert v["lm_depth"] == "inconclusive" and v["single_square_relu"] == "holds" and v["chinchilla_one_third"] == "holds"


# --------------------------------------------------------------------- the command, provenance

def test_claims_command_recomputes_from_stored_tables_with_their_seeds(tmp_path, monkeypatch):
    from scalinglaws.cli import main
    monkeypatch.setenv("SCALINGLAWS_RESULTS", str(tmp_path))
    store = ResultStore("resource", "cpu", root=tmp_path)
    for name, df in resource_tables(seeds=False).items():
        store.write(name, df)
    assert main(["claims", "resource", "--profile", "smoke"]) == 2  # no run at smoke: one error line, nothing written
    assert not ResultStore("resource", "smoke", root=tmp_path).has("claims")
    store.write_provenance({"commit": "c" * 40, "config": {}})
    assert main(["claims", "resource", "--profile", "cpu"]) == 0
    assert verdicts(store.read("claims"))["lm_depth"] == "inconclusive"  # no seeds stored yet
    store.write("seeds", seeds_table(0.001))  # the stored replicates reach the claims
    assert main(["claims", "resource", "--profile", "cpu"]) == 0
    df = store.read("claims")
    assert verdicts(df)["lm_depth"] == "holds" and list(df.columns) == list(CL.COLUMNS)
    assert "widened by training-seed SD" in df.set_index("claim_id").loc["lm_depth", "note"]
    prov = json.loads((store.dir / "provenance.json").read_text())
    assert prov["commit"] == "c" * 40  # the run's own record is kept
    d = prov["derived"]["claims"]
    assert d["command"] == "python -m scalinglaws claims resource --profile cpu" and d["commit"] and d["date"]
    assert "fits" in d["from"] and "seeds" in d["from"] and "claims" not in d["from"]


def test_merging_saturation_is_judged_against_a_perfect_one_over_k_law():
    from scalinglaws.studies.merging.claims import k90_perfect, saturation
    assert [k90_perfect(M) for M in (2, 3, 5, 9)] == [2, 3, 4, 5]
    # a perfect 1/k law at M = 5 (k90 = 4, k90/M = 0.8 > 6/9): the claim holds for it, as at any M
    for M in (5, 9):
        rows, curves = [], []
        for d in ("a", "b", "c"):
            ce = {k: 2.0 + 0.5 / k for k in range(1, M + 1)}
            for k in range(1, M + 1):
                R = (ce[1] - ce[k]) / (ce[1] - ce[M])
                rows.append({"pool": "p", "method": "average", "size": "s", "N": 1, "scope": f"domain:{d}", "k": k,
                             "R": R})
        for k in range(0, M + 1):
            curves.append({"pool": "p", "method": "average", "size": "s", "N": 1, "scope": "in_domain", "k": k,
                           "ce": 2.0 + 0.5 / max(k, 1)})
        T = {"stopping": pd.DataFrame(rows), "curves": pd.DataFrame(curves),
             "seeds": seeds_table(0.01, ("k90",))}
        r = saturation(T, "p")
        assert r["value"] == 0 and r["verdict"] == "holds", (M, r)
    # a curve that never improves on k = 1: its precondition is unmet
    flat = T["curves"].assign(ce=2.0)
    r = saturation({**T, "curves": flat}, "p")
    assert r["verdict"] == "inconclusive" and "precondition unmet" in r["note"]


# ---------------------------------------------------------------------------- findings table

def test_findings_groups_by_paper_names_links_by_target_and_counts_every_verdict(tmp_path):
    def put(study, profile, claims):
        s = ResultStore(study, profile, root=tmp_path)
        s.write_provenance({"commit": "x"})
        if claims is not None:
            s.write("claims", claims)

    put("routing", "smoke", good(claim_id=["s1", "s2", "s3"]))
    put("routing", "cpu", good())
    put("resource", "smoke", good())
    put("merging", "cpu", None)  # a run without a claims table
    df, missing = CL.collect(["routing", "resource", "merging", "testbed"], root=tmp_path)
    assert missing == ["merging", "testbed"]
    assert list(df.columns[:2]) == ["study", "profile"]
    assert set(df.loc[df["study"] == "routing", "profile"]) == {"cpu"}  # cpu beats smoke
    assert set(df.loc[df["study"] == "resource", "profile"]) == {"smoke"} and len(df) == 6
    md = report.findings_markdown(df, missing)
    assert md.count("#### Paper 2024") == 1 and md.count("#### this study") == 1  # one table per paper
    assert sum(line.startswith("| ") for line in md.splitlines()) == 2 + len(df)  # a header per paper, a row per claim
    assert "{ref}`routing: x <fig-x>`" in md and "{ref}`resource: y <fig-y>`" in md  # named by target, not "see"
    assert "see <" not in md
    assert "x: -1 [-1.5, -0.5]" in md and "z: n/a" in md
    assert "No stored claims yet: `merging`, `testbed`." in md
    assert report.verdict_counts(df) == {"holds": 2, "refuted": 2, "inconclusive": 0, "not testable": 2}
    card = report.scorecard(df, "study")
    assert card.loc["routing", "holds"] == 1 and card.loc["routing", "total"] == 3 and card["inconclusive"].sum() == 0
    table = report.findings_table(df)
    assert table["figure"].iloc[0] == '<a href="routing.html#fig-x">routing: x</a>'
    assert table["figure"].iloc[1] == '<a href="routing.html#fig-y">routing: y</a>'  # a bare label: its study's chapter
    one, two, three = report.found_sentences(df)
    assert one.startswith("Of 6 claims, 2 hold, 2 are refuted, 0 are inconclusive and 2 are not testable")
    assert "a (routing) holds" in two and three == "No claim is inconclusive."
    empty, missing = CL.collect(["merging"], root=tmp_path)
    assert len(empty) == 0 and "No study has stored claims yet" in report.findings_markdown(empty, missing)


def test_paper_numbers_and_what_would_decide_a_claim():
    assert report.paper_number("b < 0 (Clark Table 3, second-hand: -0.082)") == "-0.082 (Clark Table 3, second-hand)"
    assert report.paper_number("tuned DELLA beats tuned TA (Table 1: +11.1 on average)") == "+11.1 on average (Table 1)"
    assert report.paper_number("alpha = 1/3, which matches") == "=1/3" and report.paper_number("merging helps") == ""
    row = J(0.1, -0.1, 0.3, CL.Above(0), decide="more sizes")
    assert report.why_or_decide(row).startswith("more sizes; a narrower interval")
    assert report.why_or_decide(CL.claim("x", "p", "c", "m", note="too few points")) == "too few points"


def test_regime_rows_brackets_and_seed_counts():
    from scalinglaws.core import regime as R
    r = R.row("s", N=1000, tokens=20_000, steps=10, lr_bracket="inside")
    assert r["tokens_per_param"] == 20 and r["seeds"] == 0
    df = R.frame([r, R.row("t", N=0)])
    assert list(df.columns) == list(R.COLUMNS) and math.isnan(df.loc[1, "tokens_per_param"])
    with pytest.raises(ValueError, match="lr_bracket"):
        R.frame([R.row("s", lr_bracket="middle")])
    assert [R.bracket(x, [1, 2, 4]) for x in (1, 2, 4)] == ["low edge", "inside", "high edge"]
    assert R.bracket(1, []) == "not swept"
    seeds = pd.DataFrame({"cell": ["p/s/k2/0-1"] * 3 + ["p/s/k5/0-4"] * 4 + ["p/sx"] * 5, "measure": "m",
                          "seed": [0, 1, 2, 0, 1, 2, 3, 0, 1, 2, 3, 4], "value": 1.0})
    # finer cells of the seeds table count under the regime's coarser one (the most seeds of any); no prefix clash
    assert R.seed_count({"seeds": seeds}, "p/s") == 4 and R.seed_count({"seeds": seeds}, "p/sx") == 5
    assert R.seed_count({"seeds": seeds}, "p/s", measure="other") == 0 and R.seed_count({}, "p/s") == 0


def test_merging_paper_law_is_refitted_from_stored_curves_with_gamma_nonnegative():
    """Curves from the paper's law (gamma > 0) refit under law 'merging' with gamma >= 0 and pass the
    trust rule; the joint_r2 claim reads that refit, not the stored free-sign diagnostic."""
    from scalinglaws.laws import get_law
    from scalinglaws.studies.merging.claims import joint_r2, paper_law_fits
    true = {"L_star": 1.0, "B": 30.0, "beta": 0.3, "A0": 5.0, "gamma": 0.15, "b": 0.5}
    rows = []
    for i, N in enumerate((1e5, 3e5, 1e6, 3e6)):
        for k in range(0, 9):
            ce = float(get_law("merging").predict(true, {"N": [N], "k": [max(k, 1)]})[0])
            rows += [{"pool": "p", "method": "average", "size": f"s{i}", "N": int(N), "k": k, "scope": s, "ce": ce,
                      "n_subsets": 1, "base_ce": ce, "delta_base": 0.0, "beats_base": False}
                     for s in ("in_domain", "cross_domain")]
    curves = pd.DataFrame(rows)
    fits = paper_law_fits({"curves": curves}, {"bootstrap": 20, "seed": 0})
    assert set(fits["law"]) == {"merging"} and set(fits["scope"]) == {"in_domain", "cross_domain"}
    g = fits[(fits["scope"] == "in_domain") & (fits["param"] == "gamma")].iloc[0]
    assert g["estimate"] == pytest.approx(0.15, abs=0.05) and g["ok"], g["why_not_ok"]
    r = joint_r2({"paper_law_fits": fits, "fits": fits.assign(law="merging_free")}, "p")
    assert "law merging;" in r["note"] and r["verdict"] == "inconclusive"  # R^2 has no interval (yet)


def test_seed_noise_bound_used_only_without_own_replicates():
    import math
    from scalinglaws.core import claims as CL
    seeds = pd.DataFrame({"cell": ["c"] * 6, "measure": ["wide"] * 3 + ["own"] * 3, "seed": [0, 1, 2] * 2,
                          "value": [0.0, 0.1, 0.2, 0.0, 0.01, 0.02]})
    t = {"seeds": seeds}
    bounded = CL.seed_noise(t, "missing", bound="wide", why="because")
    assert bounded.sd == pytest.approx(0.1) and "upper bound for missing" in bounded.measure and "because" in bounded.measure
    assert CL.seed_noise(t, "own", bound="wide").sd == pytest.approx(0.01)  # its own replicates win
    assert math.isnan(CL.seed_noise(t, "missing").sd)  # no bound named: unknown
    assert math.isnan(CL.seed_noise(t, "missing", bound="absent").sd)


def test_seed_noise_is_widened_by_the_gap_between_stored_values_and_their_own_seed_retrained():
    """Where the stored run's seed, retrained, misses the stored value (older code, other threads), the
    replicates spread around another centre: the SD a verdict uses adds the RMS gap in quadrature."""
    import math
    from scalinglaws.core import claims as CL
    seeds = pd.DataFrame({"cell": ["a"] * 3 + ["b"] * 3, "measure": "m", "seed": [0, 1, 2] * 2,
                          "value": [1.0, 1.1, 1.2, 2.0, 2.1, 2.2]})
    repro = pd.DataFrame({"cell": ["a", "b"], "measure": "m", "seed": 0, "stored": [0.97, 2.04],
                          "replicate": [1.0, 2.0], "diff": [0.03, -0.04]})
    plain = CL.seed_noise({"seeds": seeds}, "m")
    wide = CL.seed_noise({"seeds": seeds, S.REPRODUCTION_TABLE: repro}, "m")
    gap = math.sqrt((0.03 ** 2 + 0.04 ** 2) / 2)
    assert plain.sd == pytest.approx(0.1) and wide.sd == pytest.approx(math.hypot(0.1, gap))
    assert "widened by 0.035" in wide.measure and wide.n_models == plain.n_models
    only_a = CL.seed_noise({"seeds": seeds, S.REPRODUCTION_TABLE: repro}, "m", cells=["a"])
    assert only_a.sd == pytest.approx(math.hypot(0.1, 0.03))  # the gap of the cells used
    exact = repro.assign(diff=[0.0, 4e-16])  # reproduced to float noise: nothing added
    assert CL.seed_noise({"seeds": seeds, S.REPRODUCTION_TABLE: exact}, "m").sd == pytest.approx(0.1)
    assert math.isnan(CL.seed_noise({S.REPRODUCTION_TABLE: repro}, "m").sd)  # a gap alone is no seed SD
    r = J(0.3, 0.25, 0.35, CL.Above(0), seeds=wide)
    assert "RMS gap between the stored values and their own seed retrained" in r["note"]


def test_reproduction_sentence_says_whether_the_stored_seed_is_reproduced():
    repro = pd.DataFrame({"cell": ["a", "b"], "measure": ["m", "n"], "seed": 0, "stored": [1.0, 2.0],
                          "replicate": [1.0, 2.0], "diff": [0.0, 4e-16]})
    assert "gives its 2 checked values again" in S.reproduction_sentence(repro)
    off = repro.assign(diff=[0.03, -0.001])
    text = S.reproduction_sentence(off)
    assert "misses its stored values by up to 0.03" in text and "m 0.03, n 0.001" in text and "quadrature" in text
    assert "No stored value was checked" in S.reproduction_sentence(None)
