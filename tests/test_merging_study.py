"""The merging study at the smoke profile end to end, its validation, and its analysis module."""
import math

import numpy as np
import pandas as pd
import pytest

from scalinglaws.studies.merging import analysis as MA
from scalinglaws.studies.merging import subsets as S
from scalinglaws.studies import merging
from scalinglaws.core.validation import ParameterError

SMOKE = merging.PROFILES["smoke"]
M = len(SMOKE["domains"])


# ---------------------------------------------------------------------------------------------
# validation: bad parameters fail before anything is written


@pytest.mark.parametrize("override", [
    {"methods": ["average", "nope"]},
    {"sizes": ["d16l1", "d9999l9"]},
    {"eval_tokens": 0},
    {"eval_tokens": 1.5},
    {"bootstrap": -1},
    {"n_permutations": 1},
    {"ft_lr": 0.0},
    {"ft_batch_tokens": 32},
    {"full_enumeration": ["d128l4"]},
    {"multitask": [["d16l1", M + 1]]},
    {"multitask": [["d128l4", 2]]},
    {"fit_scopes": ["in_domain", "everything"]},
    {"domains": ["code"]},
    {"no_such_parameter": 1},
])
def test_bad_parameters_raise_before_writing(scratch_roots, override):
    res, work = scratch_roots
    with pytest.raises(ParameterError):
        merging.run("smoke", **override)
    assert not res.exists() and not work.exists()


def test_profiles_validate():
    for name, params in merging.PROFILES.items():
        merging.validate(dict(params))
    cpu = merging.PROFILES["cpu"]
    assert len(cpu["sizes"]) >= 4 and len(cpu["domains"]) == 8
    assert set(cpu["methods"]) == set(merging.METHOD_VARIANTS)


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
    assert smoke["store"].provenance()["profile"] == "smoke"


def test_tables_and_schema(smoke):
    t = smoke["tables"]
    for name in ("experts", "specialisation", "merges", "multitask", "fits", "fit_samples",
                 "extrapolation", "stopping", "curves", "variance", "subsets"):
        assert name in t, name
    cols = {
        "experts": ["size", "N", "domain", "finetune_tokens", "train_loss", "wall_s", "unit"],
        "specialisation": ["size", "N", "expert_domain", "eval_domain", "ce", "bpb"],
        "merges": ["size", "N", "method", "subset", "k", "eval_domain", "in_subset", "ce", "bpb", "seed"],
        "multitask": ["size", "N", "k", "subset", "eval_domain", "in_subset", "ce"],
        "fits": ["method", "scope", "law", "param", "estimate", "lo", "hi", "se", "r2", "rmse",
                 "converged", "ok", "n_points"],
        "fit_samples": ["method", "scope", "draw", "L_star", "B", "beta", "A0", "gamma", "b"],
    }
    for name, want in cols.items():
        assert set(want) <= set(t[name].columns), (name, set(want) - set(t[name].columns))
    ex = t["experts"]
    assert len(ex) == len(SMOKE["sizes"]) * M and ex["finetune_tokens"].gt(0).all()
    sp = t["specialisation"]
    assert set(sp["expert_domain"]) == {"base", *SMOKE["domains"]}
    assert len(sp) == len(SMOKE["sizes"]) * (M + 1) * M


def test_merges_cover_every_k_and_in_subset(smoke):
    mg = smoke["tables"]["merges"]
    plan = smoke["tables"]["subsets"]
    assert set(mg["method"]) == set(SMOKE["methods"]) and set(mg["size"]) == set(SMOKE["sizes"])
    for (size, method), g in mg.groupby(["size", "method"]):
        assert sorted(g["k"].unique()) == list(range(1, M + 1))
        planned = set(plan.loc[plan["size"] == size, "subset"])
        assert set(g["subset"]) == planned
        assert (g.groupby("subset")["eval_domain"].nunique() == M).all()
    full = SMOKE["full_enumeration"][0]
    assert mg[mg["size"] == full]["subset"].nunique() == 2 ** M - 1
    idx = {d: i for i, d in enumerate(SMOKE["domains"])}
    for row in mg.drop_duplicates(["subset", "eval_domain"]).itertuples():
        s = S.parse_subset(row.subset)
        assert row.k == len(s)
        assert row.in_subset == (idx[row.eval_domain] in s)
    assert np.isfinite(mg["ce"]).all() and (mg["ce"] > 0).all()
    # seeds: one per subset, the same for every method and domain
    assert (mg.groupby("subset")["seed"].nunique() == 1).all()


def test_single_expert_average_is_the_expert(smoke):
    """Averaging one expert returns it: its CE must equal the specialisation table's."""
    mg, sp = smoke["tables"]["merges"], smoke["tables"]["specialisation"]
    one = mg[(mg["method"] == "average") & (mg["k"] == 1)].copy()
    one["expert_domain"] = [SMOKE["domains"][S.parse_subset(s)[0]] for s in one["subset"]]
    j = one.merge(sp, on=["size", "expert_domain", "eval_domain"], suffixes=("", "_spec"))
    assert len(j) == len(one)
    np.testing.assert_allclose(j["ce"], j["ce_spec"], rtol=1e-5)
    # experts specialise: on its own domain an expert beats the base
    base = sp[sp["expert_domain"] == "base"].set_index(["size", "eval_domain"])["ce"]
    own = sp[sp["expert_domain"] == sp["eval_domain"]].set_index(["size", "eval_domain"])["ce"]
    assert (own < base.loc[own.index]).mean() >= 0.8


def test_multitask_and_fits(smoke):
    t = smoke["tables"]
    mt = t["multitask"]
    (size, k), = [tuple(p) for p in SMOKE["multitask"]]
    assert set(mt["size"]) == {size} and set(mt["k"]) == {k} and len(mt) == M
    assert mt["in_subset"].sum() == k and set(mt["subset"]) == {S.subset_key(range(k))}
    fits = t["fits"]
    assert set(fits["method"]) == set(SMOKE["methods"])
    assert set(fits["scope"]) == set(SMOKE["fit_scopes"]) | {"variance_fpc"}
    assert (fits.groupby(["method", "scope"]).size() == 6).all()
    fs = t["fit_samples"]
    assert (fs.groupby(["method", "scope"]).size() == SMOKE["bootstrap"]).all()
    ex = t["extrapolation"]
    assert set(ex["test"]) >= {"three_point", "joint_k124"}
    assert (ex.loc[ex["test"] != "largest_N", "k"] > 4).all()
    np.testing.assert_allclose(ex["rel_error"], (ex["pred"] - ex["y"]) / ex["y"])
    st = t["stopping"]
    assert st["R"].between(0, 1).all()


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
    ex = C.specialisation_deltas(t["specialisation"])
    base = t["specialisation"][t["specialisation"]["expert_domain"] == "base"].set_index(["size", "eval_domain"])["ce"]
    r = ex.iloc[0]
    assert r["delta"] == pytest.approx(r["ce"] - base[(r["size"], r["eval_domain"])])
    assert ex["own"].sum() == len(P["domains"]) * len(sizes)

    q = C.fit_quality(t["fits"])
    assert q["n_fits"] == t["fits"].groupby(["method", "scope"]).ngroups
    assert 0 <= q["n_fits_ok"] <= q["n_fits"] and q["r2_min"] <= q["r2_median"]
    tab = C.fit_parameter_table(t["fits"])
    assert {"r2", "ok", "n_points"} <= set(tab.columns)

    M = len(P["domains"])
    first, last = C.endpoint_curves(t["curves"], M)
    assert set(first.index) == set(sizes.index)
    cmpr = C.method_comparison_table(t["curves"], M)
    assert np.allclose(cmpr[cmpr["method"] == "average"]["rel"], 0)
    med, kt, med_k = C.stopping_tables(t["stopping"])
    assert med["R"].between(0, 1).all()
    size, pv = C.permutation_check(t["merges"], t["subsets"], P, M)
    assert size == P["full_enumeration"][0] and len(pv)
    mt = C.multitask_table(t["multitask"], t["specialisation"], t["merges"], sizes, P["methods"], P["domains"])
    assert len(mt) == len(P["multitask"]) and np.isfinite(mt["gap"]).all()
    cmp = C.theory_vs_fit(t["theory"], t["fits"])
    if len(cmp):
        np.testing.assert_allclose(cmp["A_ratio"], cmp["A_fit"] / cmp["A_pred"])
    tp = C.three_point_table(t["curves"], sizes, P["methods"])
    assert set(tp.columns) >= {"L_inf", "A", "b"}

    pal = F.palette(P["methods"])
    for fig in (F.specialisation_heatmap(ex, sizes.index[-1], P["domains"]),
                F.curves_grid(t["curves"], t["fits"], sizes, P["methods"], M, pal),
                F.floor_and_amplitude(t["fits"], tp, sizes, P["methods"], pal),
                F.variance_grid(t["variance"], t["fits"], sizes, P["methods"], M, pal),
                F.stopping_figure(t["stopping"], med, sizes.index[-1], P["methods"], pal)):
        assert fig.axes
