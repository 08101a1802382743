"""The merging study at the smoke profile end to end, its validation, its analysis, tail fits,
trust rule and claims."""
import math

import numpy as np
import pandas as pd
import pytest

from scalinglaws.studies.merging import analysis as MA
from scalinglaws.studies.merging import subsets as S
from scalinglaws.studies.merging import tail as TL
from scalinglaws.fitting.schema import FIT_COLUMNS
from scalinglaws.studies import merging
from scalinglaws.core.validation import ParameterError

SMOKE = merging.PROFILES["smoke"]
POOLS = SMOKE["pools"]


# ---------------------------------------------------------------------------------------------
# validation: bad parameters fail before anything is written


@pytest.mark.parametrize("override", [
    {"methods": ["average", "nope"]},
    {"sizes": ["d16l1", "d9999l9"]},
    {"eval_tokens_per_domain": 0},
    {"eval_tokens_per_domain": 1.5},
    {"bootstrap": -1},
    {"n_permutations": 1},
    {"pilot_lrs": [0.0]},
    {"pilot_token_mults": [1, 1]},
    {"pilot_seeds": 0},
    {"pilot_size": "d128l4"},
    {"ft_batch_tokens": 32},
    {"full_enumeration": ["d128l4"]},
    {"multitask": [["d16l1", 9]]},
    {"multitask": [["d128l4", 2]]},
    {"fit_scopes": ["in_domain", "everything"]},
    {"pools": {"related": ["code"]}},
    {"pools": {"related": ["code", "no_such_domain"]}},
    {"pools": {}},
    {"domains": ["code", "legal"]},
    {"no_such_parameter": 1},
])
def test_bad_parameters_raise_before_writing(scratch_roots, override):
    res, work = scratch_roots
    with pytest.raises(ParameterError):
        merging.run("smoke", **override)
    assert not res.exists() and not work.exists()


def test_bad_pool_message_names_parameter_and_allowed():
    with pytest.raises(ParameterError, match=r"pools\['related'\].*allowed"):
        merging.validate({**SMOKE, "pools": {"related": ["code", "poetry"]}})


def test_profiles_validate():
    for name, params in merging.PROFILES.items():
        merging.validate(dict(params))
    cpu = merging.PROFILES["cpu"]
    assert len(cpu["sizes"]) >= 4 and set(cpu["pools"]) == {"related", "unrelated"}
    assert all(len(v) == 5 for v in cpu["pools"].values())
    # the stored cpu results compare the default variants; the *_paper ones are opt-in
    from scalinglaws.studies.merging.config import DEFAULT_METHODS, PAPER_CONVENTION_METHODS
    assert cpu["methods"] == DEFAULT_METHODS
    assert set(PAPER_CONVENTION_METHODS) <= set(merging.METHOD_VARIANTS)
    assert len(merging.PROFILES["gpu"]["sizes"]) == 6


# ---------------------------------------------------------------------------------------------
# the smoke run, once for the module


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    root = tmp_path_factory.mktemp("merging")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SCALINGLAWS_RESULTS", str(root / "results"))
        mp.setenv("SCALINGLAWS_WORK", str(root / "work"))
        store = merging.run("smoke")
        units = root / "work" / "units" / "merging" / "smoke"
        before = {p: p.stat().st_mtime_ns for p in units.rglob("*.json")}
        tables = {t: store.read(t) for t in store.tables()}
        store2 = merging.run("smoke")  # resume: every unit is done
        after = {p: p.stat().st_mtime_ns for p in units.rglob("*.json")}
        tables2 = {t: store2.read(t) for t in store2.tables()}
        yield {"store": store, "tables": tables, "tables2": tables2, "before": before, "after": after,
               "root": root}


def test_resume_runs_no_new_unit(smoke):
    assert smoke["before"] == smoke["after"]
    for name, df in smoke["tables"].items():
        pd.testing.assert_frame_equal(df, smoke["tables2"][name], check_exact=False)
    prov = smoke["store"].provenance()
    assert prov["profile"] == "smoke"
    # the testbed bases the experts were fine-tuned from (the book's stale-base warning, core.bases)
    assert set(prov["testbed_bases"]) == set(prov["config"]["sizes"])
    assert set(smoke["tables"]["experts"]["size"]) <= set(prov["testbed_bases"])


def test_tables_and_schema(smoke):
    t = smoke["tables"]
    cols = {
        "pilot": ["pool", "domain", "size", "lr", "token_mult", "tokens", "seed", "gain", "forgetting"],
        "recipe": ["lr", "token_mult", "gain", "forgetting", "eligible", "chosen", "rule"],
        "experts": ["size", "N", "domain", "lr", "finetune_tokens", "train_loss", "wall_s", "unit"],
        "specialisation": ["size", "N", "expert_domain", "eval_domain", "ce", "bpb"],
        "noise": ["size", "N", "model", "paired", "eval_domain", "ce", "ce_se"],
        "merges": ["pool", "size", "N", "method", "subset", "k", "eval_domain", "in_subset", "ce", "bpb", "seed"],
        "curves": ["pool", "method", "size", "N", "k", "scope", "ce", "base_ce", "delta_base", "beats_base"],
        "multitask": ["pool", "size", "N", "k", "subset", "eval_domain", "in_subset", "ce"],
        "tail_fits": TL.TAIL_KEYS + list(FIT_COLUMNS),
        "theory_vs_tail": ["pool", "method", "size", "A", "A_pred", "A_ratio"],
        "coefficient_ratio": ["pool", "size", "ratio", "lo", "hi", "c2_ratio_pred"],
        "fits": ["pool", "method", "scope", "law", "param", "estimate", "lo", "hi", "se", "r2", "r2_log", "rmse",
                 "converged", "ok", "why_not_ok", "n_points"],
        "fit_samples": ["pool", "method", "scope", "draw", "L_star", "B", "beta", "A0", "gamma", "b"],
        "claims": ["claim_id", "paper", "claim", "measure", "value", "lo", "hi", "verdict", "figure", "note"],
    }
    for name, want in cols.items():
        assert name in t, name
        assert set(want) <= set(t[name].columns), (name, set(want) - set(t[name].columns))
    assert list(t["claims"].columns) == cols["claims"]
    assert set(t["claims"]["verdict"]) <= {"holds", "refuted", "inconclusive", "not testable"}
    assert t["recipe"]["chosen"].sum() == 1
    lr, mult = (t["recipe"].loc[t["recipe"]["chosen"], c].iloc[0] for c in ("lr", "token_mult"))
    assert (t["experts"]["lr"] == lr).all()
    assert (t["experts"]["finetune_tokens"] >= mult * SMOKE["ft_base_tokens"] * 0.9).all()
    doms = list(dict.fromkeys(d for v in POOLS.values() for d in v))
    assert len(t["experts"]) == len(SMOKE["sizes"]) * len(doms)
    sp = t["specialisation"]
    assert set(sp["expert_domain"]) == {"base", *doms}
    assert len(sp) == len(SMOKE["sizes"]) * (len(doms) + 1) * len(doms)
    assert (t["noise"]["ce_se"] > 0).all() and t["noise"]["paired"].any()
    # fits: ok only with an empty why_not_ok
    f = t["fits"]
    assert ((f["ok"]) == (f["why_not_ok"] == "")).all()


def test_merges_cover_every_k_and_the_base(smoke):
    mg = smoke["tables"]["merges"]
    plan = smoke["tables"]["subsets"]
    assert set(mg["pool"]) == set(POOLS)
    for (pool, size, method), g in mg.groupby(["pool", "size", "method"]):
        M = len(POOLS[pool])
        assert sorted(g["k"].unique()) == list(range(0, M + 1))
        assert set(g["eval_domain"]) == set(POOLS[pool])
        planned = set(plan.loc[(plan["pool"] == pool) & (plan["size"] == size), "subset"])
        assert set(g[g["k"] > 0]["subset"]) == planned
        assert (g.groupby("subset")["eval_domain"].nunique() == M).all()
        idx = {d: i for i, d in enumerate(POOLS[pool])}
        for row in g[g["k"] > 0].drop_duplicates(["subset", "eval_domain"]).itertuples():
            s = S.parse_subset(row.subset)
            assert row.k == len(s) and row.in_subset == (idx[row.eval_domain] in s)
    full = SMOKE["full_enumeration"][0]
    for pool, doms in POOLS.items():
        assert mg[(mg["size"] == full) & (mg["pool"] == pool) & (mg["k"] > 0)]["subset"].nunique() == 2 ** len(doms) - 1
    assert np.isfinite(mg["ce"]).all() and (mg["ce"] > 0).all()
    m = mg[mg["k"] > 0]
    assert (m.groupby(["pool", "subset"])["seed"].nunique() == 1).all()
    # curves start at the base, for every scope, and say whether each k beats it
    c = smoke["tables"]["curves"]
    assert (c.groupby(["pool", "method", "size", "scope"])["k"].min() == 0).all()
    np.testing.assert_allclose(c["delta_base"], c["ce"] - c["base_ce"])
    assert (c["beats_base"] == (c["ce"] < c["base_ce"])).all()


def test_single_expert_average_is_the_expert(smoke):
    """Averaging one expert returns it: its CE must equal the specialisation table's (same windows)."""
    mg, sp = smoke["tables"]["merges"], smoke["tables"]["specialisation"]
    one = mg[(mg["method"] == "average") & (mg["k"] == 1)].copy()
    one["expert_domain"] = [POOLS[p][S.parse_subset(s)[0]] for p, s in zip(one["pool"], one["subset"])]
    j = one.merge(sp, on=["size", "expert_domain", "eval_domain"], suffixes=("", "_spec"))
    assert len(j) == len(one)
    np.testing.assert_allclose(j["ce"], j["ce_spec"], rtol=1e-4)
    base = sp[sp["expert_domain"] == "base"].set_index(["size", "eval_domain"])["ce"]
    own = sp[sp["expert_domain"] == sp["eval_domain"]].set_index(["size", "eval_domain"])["ce"]
    assert (own < base.loc[own.index]).mean() >= 0.8


def test_multitask_fits_and_claims(smoke):
    t = smoke["tables"]
    mt = t["multitask"]
    (size, k), = [tuple(p) for p in SMOKE["multitask"]]
    assert set(mt["pool"]) == set(POOLS) and set(mt["size"]) == {size} and set(mt["k"]) == {k}
    for pool, g in mt.groupby("pool"):
        assert len(g) == len(POOLS[pool]) and g["in_subset"].sum() == k
    fits = t["fits"]
    assert set(fits["pool"]) == set(POOLS) and set(fits["method"]) == set(SMOKE["methods"])
    assert (fits.groupby(["pool", "method", "scope"]).size() == 6).all()
    fs = t["fit_samples"]
    assert (fs.groupby(["pool", "method", "scope"]).size() == SMOKE["bootstrap"]).all()
    tl = t["tail_fits"]
    # 3 experts per pool: 3 points for 3 parameters, never ok, and it says why
    assert not tl["ok"].any() and tl["why_not_ok"].str.contains("3 points for 3 parameters").all()
    st = t["stopping"]
    assert st["R"].between(0, 1).all() and (st["k"] >= 1).all()
    cl = t["claims"]
    assert len(cl) == len(POOLS) * len(merging.claims.CLAIMS) if hasattr(merging, "claims") else len(cl) > 0
    from scalinglaws.studies.merging.claims import claims
    pd.testing.assert_frame_equal(claims(t, "smoke"), cl, check_exact=False)


def test_smoke_with_the_paper_code_conventions(smoke, monkeypatch):
    """The study run with the merging paper's code conventions (`PAPER_CONVENTION_METHODS`: its TIES
    trim count), on the smoke run's units: experts and linear merges are the same units (same keys,
    so the same numbers), only the TIES (and DARE, not in the smoke default) merges are new, and
    TIES ran with the paper's trim count."""
    import json

    from scalinglaws.studies.merging.config import PAPER_CONVENTION_METHODS
    root = smoke["root"]
    monkeypatch.setenv("SCALINGLAWS_RESULTS", str(root / "paper_results"))
    monkeypatch.setenv("SCALINGLAWS_WORK", str(root / "work"))
    units = root / "work" / "units" / "merging" / "smoke"
    before = set(units.rglob("*.json"))
    store = merging.run("smoke", methods=PAPER_CONVENTION_METHODS)
    new = [json.loads(p.read_text()) for p in set(units.rglob("*.json")) - before]
    assert new and {r["kind"] for r in new} <= {"merge_eval", "fit", "extrapolate"}
    merged = {r["config"]["method"] for r in new if r["kind"] == "merge_eval"}
    assert merged == set(PAPER_CONVENTION_METHODS) - set(SMOKE["methods"])
    ties = [r["config"] for r in new if r["kind"] == "merge_eval" and r["config"]["method"].startswith("ties")]
    assert {c["method"] for c in ties} == {"ties_l0.5_paper", "ties_l1_paper"}
    assert all(c["options"]["trim_count"] == "merging_eval" and c["options"]["trim_scope"] == "tensor"
               for c in ties)
    mg = store.read("merges")
    assert set(mg["method"]) == set(PAPER_CONVENTION_METHODS)
    assert store.provenance()["config"]["methods"] == PAPER_CONVENTION_METHODS
    keys = ["pool", "size", "method", "subset", "eval_domain"]
    for m in ("average", "task_arithmetic"):  # the same units as the default smoke run
        a = mg[mg["method"] == m].sort_values(keys).reset_index(drop=True)
        b = smoke["tables"]["merges"].query("method == @m").sort_values(keys).reset_index(drop=True)
        pd.testing.assert_series_equal(a["ce"], b["ce"])
    t = mg[mg["method"].str.startswith("ties") & (mg["k"] > 0)]
    assert np.isfinite(t["ce"]).all() and t.groupby(["pool", "size", "method"])["k"].max().eq(3).all()
    assert set(store.read("fits")["method"]) == set(PAPER_CONVENTION_METHODS)
    with pytest.raises(ParameterError, match="methods"):
        merging.run("smoke", methods=["ties_l1_paper", "ties_paper"])


def test_variant_options_are_validated(monkeypatch):
    from scalinglaws.studies.merging import config
    monkeypatch.setitem(config.METHOD_VARIANTS, "ties_l1_paper",
                        ("ties", {"lam": 1.0, "density": 0.2, "trim_count": "paper"}))
    with pytest.raises(ParameterError, match="trim_count"):
        merging.validate({**SMOKE, "methods": ["ties_l1_paper"]})


# ---------------------------------------------------------------------------------------------
# studies.merging.analysis on synthetic tables with known answers


def _synthetic_merges(M=4, in_ce=1.0, out_ce=2.0, slope=0.1):
    """CE_d(S) = in_ce - slope*k if d in S else out_ce + slope*k, for every subset."""
    rows = []
    for s in S.all_subsets(M):
        for d in range(M):
            inside = d in s
            rows.append({"method": "average", "size": "a", "N": 1000, "subset": S.subset_key(s),
                         "k": len(s), "eval_domain": f"d{d}", "in_subset": inside,
                         "ce": in_ce - slope * len(s) if inside else out_ce + slope * len(s)})
    return pd.DataFrame(rows)


def test_curves_by_hand():
    M = 4
    c = MA.curves(_synthetic_merges(M)).set_index(["scope", "k"])["ce"]
    for k in range(1, M + 1):
        assert c[("in_domain", k)] == pytest.approx(1.0 - 0.1 * k)
        assert c[("domain:d2", k)] == pytest.approx(1.0 - 0.1 * k)
        # cross: k domains inside, M - k outside, for every subset
        assert c[("cross_domain", k)] == pytest.approx((k * (1 - 0.1 * k) + (M - k) * (2 + 0.1 * k)) / M)
        if k < M:
            assert c[("held_out", k)] == pytest.approx(2.0 + 0.1 * k)
    assert ("held_out", M) not in c.index
    v = MA.variance_curves(_synthetic_merges(M)).set_index(["scope", "k"])
    assert v.loc[("cross_domain", 2), "var"] == pytest.approx(0.0, abs=1e-20)  # no subset effect
    assert math.isnan(v.loc[("cross_domain", M), "var"])


def test_three_point_recovers_the_law():
    L = lambda k: 0.7 + 0.3 / (k + 0.5)  # noqa: E731
    tp = MA.three_point(L(1), L(2), L(4))
    assert tp["exact"]
    assert tp["L_inf"] == pytest.approx(0.7) and tp["A"] == pytest.approx(0.3) and tp["b"] == pytest.approx(0.5)
    flat = MA.three_point(1.0, 0.9, 0.89)  # r = 10 > 2: b would be negative
    assert not flat["exact"] and flat["b"] == 0.0


def test_stopping_and_comparison():
    cur = pd.DataFrame({"method": "average", "size": "a", "N": 1, "scope": "in_domain",
                        "k": [1, 2, 3, 4], "ce": [2.0, 1.5, 1.6, 1.0], "n_subsets": 1})
    st = MA.stopping_table(cur)
    assert st["R"].tolist() == pytest.approx([0.0, 0.5, 0.5, 1.0])
    assert st["k80"].iloc[0] == 4 and st["k90"].iloc[0] == 4
    two = pd.concat([cur, cur.assign(method="ties", ce=cur["ce"] * 0.9)])
    cmp_ = MA.method_comparison(two, k=4).set_index("method")["rel"]
    assert cmp_["average"] == 0 and cmp_["ties"] == pytest.approx(-0.1)


def test_fit_law_recovers_synthetic_constants():
    true = {"L_star": 1.0, "B": 30.0, "beta": 0.4, "A0": 2.0, "gamma": 0.1, "b": 0.5}
    pts = pd.DataFrame([{"N": N, "k": k} for N in (1e4, 4e4, 1.6e5, 6.4e5) for k in range(1, 9)])
    pts["y"] = MA.predict(true, pts["N"], pts["k"])
    res = MA.fit_law(pts)
    assert res.r2 > 0.9999
    for name in ("beta", "gamma", "b"):
        assert res.params[name] == pytest.approx(true[name], rel=0.05, abs=0.02)
    # a fit on scaled data, scaled back, gives the same constants (the variance fits use this)
    small = pts.assign(y=pts["y"] * 1e-5)
    scale = MA.y_scale(small["y"])
    assert scale == 1e5
    rows = MA.fit_rows("m", "s", MA.fit_law(small, scale=scale), scale=scale)
    got = {r["param"]: r["estimate"] for r in rows}
    for name in ("L_star", "B", "A0"):
        assert got[name] == pytest.approx(res.params[name] * 1e-5, rel=0.05)
    for name in ("beta", "gamma", "b"):
        assert got[name] == pytest.approx(res.params[name], rel=0.05, abs=0.02)




def test_curves_start_at_the_base():
    m = _synthetic_merges(3)
    base = pd.DataFrame([{"method": "average", "size": "a", "N": 1000, "subset": "", "k": 0, "eval_domain": f"d{d}",
                          "in_subset": False, "ce": 1.5} for d in range(3)])
    c = MA.curves(pd.concat([base, m], ignore_index=True))
    assert set(c["pool"]) == {"all"}
    z = c[c["k"] == 0].set_index("scope")["ce"]
    assert z["in_domain"] == z["cross_domain"] == z["domain:d1"] == 1.5
    ind = c[c["scope"] == "in_domain"].set_index("k")
    assert ind.loc[1, "beats_base"] and ind.loc[1, "delta_base"] == pytest.approx(0.9 - 1.5)
    assert not MA.fit_points(c, None, "average", "in_domain")["k"].eq(0).any()
    st = MA.stopping_table(c)
    assert (st["k"] >= 1).all()


# ---------------------------------------------------------------------------------------------
# tail fits and the trust rule


def _tail_models(L_inf, A, b, M=8, noise=0.0, seed=0):
    """Merged models of one curve: every k-subset of M with ce_cross = L_inf + A/(k + b) + noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in S.all_subsets(M):
        k = len(s)
        y = L_inf + A / (k + b) + noise * rng.standard_normal()
        rows.append({"pool": "p", "method": "average", "size": "a", "N": 1e5, "subset": S.subset_key(s), "k": k,
                     "ce_cross": y, "ce_in": y})
    return pd.DataFrame(rows)


def test_tail_fit_recovers_parameters():
    f = TL.fit_tail_curve(np.arange(1, 9), 3.0 + 0.4 / (np.arange(1, 9) + 0.7))
    assert f["L_inf"] == pytest.approx(3.0, abs=1e-4) and f["A"] == pytest.approx(0.4, rel=1e-3)
    assert f["b"] == pytest.approx(0.7, abs=5e-3) and f["r2"] > 0.99999
    tab, draws = TL.tail_fits(_tail_models(3.0, 0.4, 0.7, noise=0.002), n_boot=200)
    assert list(tab.columns) == TL.TAIL_KEYS + list(FIT_COLUMNS)  # the one fits schema, a row per parameter
    assert (tab.groupby(TL.TAIL_KEYS).size() == 3).all() and set(tab["param"]) == {"L_inf", "A", "b"}
    r = TL.tail_wide(tab)
    r = r[r["scope"] == "cross_domain"].iloc[0]
    assert r["A"] == pytest.approx(0.4, rel=0.15) and r["L_inf"] == pytest.approx(3.0, abs=0.01)
    assert r["A_lo"] <= r["A"] <= r["A_hi"] and r["A_hi"] - r["A_lo"] < 0.2
    assert r["ok"], r["why_not_ok"]
    assert len(draws[("p", "average", "a", "cross_domain")]) == 200


def test_trust_flags_degenerate_fits_with_reasons():
    # a curve that rises with k: A <= 0, said so
    tab, _ = TL.tail_fits(_tail_models(3.0, -0.3, 0.5, noise=0.001), n_boot=100)
    r = TL.tail_wide(tab).iloc[0]
    assert not r["ok"] and "does not fall" in r["why_not_ok"]
    # pure noise: R^2 far below the threshold
    tab, _ = TL.tail_fits(_tail_models(3.0, 0.0, 0.5, noise=0.05, seed=3), n_boot=100)
    assert "R^2" in tab.iloc[0]["why_not_ok"]
    # the trust rule by itself: every criterion named
    ok, why = TL.trust({"gamma": 2.83, "b": 0.0}, {"gamma": (3.9, 5.0), "b": (0.0, 1.0)}, r2=-0.06, n_points=6,
                       n_params=6, converged=False, on_bound=["gamma", "b"], allowed_bounds=("b",))
    assert not ok
    for part in ("not converged", "on a bound: gamma", "gamma=2.83 outside [3.9, 5]", "R^2 -0.06 < 0.9",
                 "6 points for 6 parameters"):
        assert part in why, (part, why)
    assert "b" not in why.split("on a bound: ")[1].split(";")[0]  # b = 0 is allowed (documented)
    ok, why = TL.trust({"A": 1.0}, {"A": (0.9, 1.1)}, r2=0.99, n_points=8, n_params=3)
    assert ok and why == ""


def test_joint_fit_ok_uses_the_trust_rule():
    true = {"L_star": 1.0, "B": 30.0, "beta": 0.4, "A0": 2.0, "gamma": 0.1, "b": 0.5}
    pts = pd.DataFrame([{"N": N, "k": k} for N in (1e4, 4e4, 1.6e5, 6.4e5) for k in range(1, 9)])
    rng = np.random.default_rng(0)
    pts["y"] = MA.predict(true, pts["N"], pts["k"]) * (1 + 1e-4 * rng.standard_normal(len(pts)))
    rows = MA.fit_rows("average", "in_domain", MA.fit_law(pts, bootstrap=8), pool="p", points=pts)
    assert rows[0]["pool"] == "p" and rows[0]["ok"] == (rows[0]["why_not_ok"] == "")
    # a flat curve in k: no tail to find, the fit must not be ok
    flat = pts.assign(y=1.0 + 30.0 * pts["N"] ** -0.4)
    rows = MA.fit_rows("average", "in_domain", MA.fit_law(flat, bootstrap=4), pool="p", points=flat)
    assert not rows[0]["ok"] and "no tail" in rows[0]["why_not_ok"]


def test_pilot_rule_picks_largest_gain_within_forgetting_budget():
    from scalinglaws.studies.merging import pilot as PI
    rows = []
    for lr, mult, gain, forget in [(1e-3, 1, 0.10, 0.01), (1e-3, 4, 0.30, 0.10), (3e-3, 4, 0.50, 0.40)]:
        for seed in (0, 1):
            rows.append({"pool": "p", "domain": "d", "lr": lr, "token_mult": mult, "tokens": mult * 100, "seed": seed,
                         "gain": gain, "forgetting": forget, "forgetting_pool": forget, "forgetting_off": forget})
    r = PI.choose_recipe(pd.DataFrame(rows), max_forgetting=0.5)
    assert PI.chosen(r) == {"lr": 1e-3, "token_mult": 4.0}
    assert r["eligible"].tolist() == [True, True, False]
    r = PI.choose_recipe(pd.DataFrame(rows), max_forgetting=0.05)  # none eligible: best ratio
    assert PI.chosen(r) == {"lr": 1e-3, "token_mult": 1.0}


# ---------------------------------------------------------------------------------------------
# the chapter's functions on the smoke tables (the chapter only formats what they return)


def test_chapter_tables_on_smoke(smoke):
    import matplotlib
    matplotlib.use("Agg")
    from scalinglaws.studies.merging import chapter as C
    from scalinglaws.studies.merging import figures as F

    t = smoke["tables"]
    P = smoke["store"].provenance()["config"]
    sizes = C.sizes_of(t["experts"])
    assert list(sizes) == sorted(sizes)
    pools = C.pools_of(t["curves"])
    assert pools == list(P["pools"])
    eff = C.expert_effects(t["specialisation"], P["pools"])
    assert len(eff) == len(sizes) * len(pools)
    nz = C.noise_summary(t["noise"])
    assert (nz["ce_se_paired_own"] > 0).all()
    for pool in pools:
        bvm = C.base_vs_merge(t["curves"], pool)
        assert len(bvm) == len(sizes) * len(P["methods"])
        assert (bvm["beats_base"] == (bvm["best"] < bvm["base"])).all()
        med, kt, med_k = C.stopping_tables(t["stopping"], pool)
        assert med["R"].between(0, 1).all()
        cmpr = C.method_comparison_table(t["curves"], pool)
        assert np.allclose(cmpr[cmpr["method"] == "average"]["rel"], 0)
        size, pv = C.permutation_check(t["merges"], t["subsets"], P, pool)
        assert size == P["full_enumeration"][0] and len(pv)
        C.extrapolation_errors(t["extrapolation"], pool)
        C.three_point_table(t["curves"], sizes, P["methods"], pool)
    q = C.fit_quality(t["fits"])
    assert 0 <= q["n_fits_ok"] <= q["n_fits"]
    assert {"r2", "ok", "why_not_ok"} <= set(C.fit_parameter_table(t["fits"]).columns)
    assert {"ok", "why_not_ok"} <= set(C.tail_table(t["tail_fits"]).columns)
    mt = C.multitask_table(t["multitask"], t["specialisation"], t["merges"], P["methods"], P["pools"])
    assert len(mt) == len(P["multitask"]) * len(pools) and np.isfinite(mt["gap"]).all()
    assert C.pilot_table(t["recipe"])["chosen"].sum() == 1

    pal = F.palette(P["methods"])
    doms = list(dict.fromkeys(d for v in P["pools"].values() for d in v))
    meds = {pool: C.stopping_tables(t["stopping"], pool)[0] for pool in pools}
    figs = [F.pilot_figure(t["recipe"], P["pilot_max_forgetting"]),
            F.specialisation_heatmap(C.specialisation_deltas(t["specialisation"]), sizes.index[-1], doms),
            F.tails_figure(t["tail_fits"], t["theory_vs_tail"], pools, pal),
            F.stopping_figure(t["stopping"], meds, sizes.index[-1], P["methods"], pal)]
    figs += [F.curves_grid(t["curves"], t["fits"], sizes, P["methods"], pool, pal, t["fit_samples"]) for pool in pools]
    figs += [F.variance_grid(t["variance"], t["fits"], sizes, P["methods"], pool, pal, t["fit_samples"]) for pool in pools]
    for fig in figs:
        assert fig.axes


def test_law_band_from_draws_brackets_the_law():
    """The merging figures' band: percentiles over draws scattered around known parameters hold the
    law's curve at those parameters, and no draws means no band."""
    from scalinglaws.studies.merging import figures as F
    rng = np.random.default_rng(0)
    true = {"L_star": 2.0, "B": 30.0, "beta": 0.3, "A0": 5.0, "gamma": 0.2, "b": 0.5}
    d = pd.DataFrame({k: v * np.exp(0.05 * rng.standard_normal(300)) for k, v in true.items()})
    d = d.assign(pool="p", method="average", scope="cross_domain", draw=range(300))
    k = np.linspace(1, 8, 15)
    lo, hi = F.law_band(d, "p", "average", "cross_domain", 1e5, k)
    mid = MA.predict(true, 1e5, k)
    assert (lo < mid).all() and (mid < hi).all() and (hi - lo < 0.5 * mid).all()
    assert F.law_band(d, "p", "ties_l1", "cross_domain", 1e5, k) is None and F.law_band(None, "p", "a", "s", 1e5, k) is None


def test_tuned_methods_pick_on_selection_domains_and_score_on_the_others():
    """A family with two variants picks the one better on the selection domains, even when the other
    is better on the scoring domains (the held-out score is then reported, not the better one)."""
    from scalinglaws.studies.merging.tuned import split_domains, tuned_table
    doms = ["a", "b", "c", "d"]
    sel, score = split_domains(doms, 0, "p")
    assert sorted(sel + score) == doms and len(sel) == 2 and not set(sel) & set(score)
    ce = {"average": {d: 2.0 for d in doms},
          "ties_l0.5": {**{d: 1.0 for d in sel}, **{d: 3.0 for d in score}},   # best on selection, worse held out
          "ties_l1": {**{d: 1.5 for d in sel}, **{d: 1.0 for d in score}}}
    rows = [{"pool": "p", "size": "s", "N": 10, "method": m, "subset": "0-1-2-3", "k": 4, "eval_domain": d,
             "in_subset": True, "ce": v} for m, per in ce.items() for d, v in per.items()]
    rows.append({**rows[0], "k": 1, "ce": 9.0})  # a k < M row is ignored
    t = tuned_table(pd.DataFrame(rows), 0).set_index("method")
    assert t.loc["TIES", "tried"] == 2 and t.loc["TIES", "setting"] == "ties_l0.5"
    assert t.loc["TIES", "select"] == 1.0 and t.loc["TIES", "score"] == 3.0
    assert t.loc["TIES", "rel_to_average"] == pytest.approx(0.5) and t.loc["Average", "tried"] == 1
    assert t["selection"].str.contains("half").all()
