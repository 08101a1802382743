"""The nine-expert merging pool (issue 27): parameters, the subset plan, both in-domain readings, R(k)
against a perfect 1/k law, and the smoke path end to end (parts, resume, tables, costs)."""
import itertools
import json

import numpy as np
import pandas as pd
import pytest

from scalinglaws.core.validation import ParameterError
from scalinglaws.studies.merging import nine as N
from scalinglaws.studies.merging import subsets as S


# ---------------------------------------------------------------------------------------------
# parameters and plan


@pytest.mark.parametrize("override", [
    {"parts": {"a": ["d32l2"]}},                                   # sizes left out
    {"parts": {"a": ["d32l2", "d48l3"], "b": ["d48l3", "d64l4", "d96l4"]}},  # a size twice
    {"parts": {"pilot": ["d32l2", "d48l3", "d64l4", "d96l4"]}},    # the pilot's name
    {"pilot_domains": ["legal"]},                                  # not in the pool
    {"pilot_domains": []},
    {"pools": {"nine": ["code", "legal"], "other": ["math", "algebra"]}},
    {"no_such_parameter": 1},
    {"n_permutations": 1},
])
def test_bad_parameters_raise(override):
    with pytest.raises(ParameterError):
        N.resolve("cpu", override)


def test_bad_part_and_profile():
    with pytest.raises(ParameterError):
        N.check_part("s9", N.resolve("cpu"))
    with pytest.raises(ParameterError):
        N.resolve("gpu")


def test_cpu_plan_is_the_papers():
    p = N.resolve("cpu")
    doms = N.pool_domains(p)
    assert len(doms) == 9 == len(set(doms))
    assert set(p["pilot_domains"]) <= set(doms)
    for s in p["sizes"][:2]:  # every subset at the two smallest sizes
        scheme, keys = N.subset_keys(s, p)
        assert scheme == "all" and len(keys) == 2 ** 9 - 1 == len(set(keys))
    want = S.prefix_subsets(S.diverse_permutations(9, 15, 1000, 0))
    for s in p["sizes"][2:]:  # prefixes of 15 diverse permutations at the others
        scheme, keys = N.subset_keys(s, p)
        assert scheme == "permutations" and keys == [S.subset_key(x) for x in want]
        assert {len(S.parse_subset(k)) for k in keys} == set(range(1, 10))


# ---------------------------------------------------------------------------------------------
# analysis on synthetic merges


def _merges(M, subsets, ce_in, ce_out=3.0, base=2.0, method="average", size="a", N_=100):
    """Merges of the given subsets: a domain inside a merge of k scores ce_in(k, d), outside ce_out."""
    rows = [{"pool": "nine", "size": size, "N": N_, "method": method, "subset": "", "k": 0, "eval_domain": f"d{d}",
             "in_subset": False, "ce": base, "bpb": 0.0, "seed": -1} for d in range(M)]
    for s in subsets:
        for d in range(M):
            inside = d in s
            rows.append({"pool": "nine", "size": size, "N": N_, "method": method, "subset": S.subset_key(s),
                         "k": len(s), "eval_domain": f"d{d}", "in_subset": inside,
                         "ce": ce_in(len(s), d) if inside else ce_out, "bpb": 0.0, "seed": 0})
    return pd.DataFrame(rows)


def test_perfect_one_over_k_saturates_like_the_reference():
    M = 9
    m = _merges(M, S.all_subsets(M), lambda k, d: 1.0 + 0.5 * (1 + d / 10) / k)
    sat = N.saturation_table(m).set_index("k")
    ref = pd.Series([(1 - 1 / k) / (1 - 1 / M) for k in range(1, M + 1)], index=range(1, M + 1))
    np.testing.assert_allclose(sat["R_domains"], ref, atol=1e-12)
    np.testing.assert_allclose(sat["R_perfect"], ref, atol=1e-12)
    np.testing.assert_allclose(sat["R_ours"], ref, atol=1e-12)
    assert sat.loc[5, "paper_R"] == 0.85 and sat.loc[6, "paper_R"] == 0.90 and np.isnan(sat.loc[4, "paper_R"])
    summ = N.saturation_summary(N.saturation_table(m)).iloc[0]
    assert summ["k90_perfect"] == 5 and summ["k90_domains"] == 5 and summ["k90_paper"] == 6
    assert summ["k85_perfect"] == 5  # R(4) = 0.84375 < 0.85 <= R(5) = 0.9


def test_in_domain_readings_by_hand():
    # domain d's CE inside a merge depends on the merge's other members: the two readings weigh
    # merges differently once subsets are sampled
    M = 3
    ce = lambda s: {d: 1.0 + 0.3 * d ** 2 + 0.05 * sum(s) for d in s}  # noqa: E731
    subsets = [(0,), (1,), (2,), (0, 1), (1, 2)]  # (0, 2) not merged: sampled, not enumerated
    rows = _merges(M, subsets, lambda k, d: 0.0)
    for i, r in rows.iterrows():
        if r["in_subset"]:
            rows.loc[i, "ce"] = ce(S.parse_subset(r["subset"]))[int(r["eval_domain"][1])]
    t = N.in_domain_table(rows).set_index("k")
    per_merge = [np.mean(list(ce(s).values())) for s in [(0, 1), (1, 2)]]
    assert t.loc[2, "paper"] == pytest.approx(np.mean(per_merge))
    # ours: per domain, the mean over the merges containing it, then the mean over domains
    d0, d1, d2 = ce((0, 1))[0], np.mean([ce((0, 1))[1], ce((1, 2))[1]]), ce((1, 2))[2]
    assert t.loc[2, "ours"] == pytest.approx(np.mean([d0, d1, d2]))
    assert t.loc[2, "paper_minus_ours"] != pytest.approx(0.0)
    assert t.loc[0, "ours"] == t.loc[0, "paper"] == 2.0
    # under full enumeration they agree
    full = _merges(M, S.all_subsets(M), lambda k, d: 0.0)
    for i, r in full.iterrows():
        if r["in_subset"]:
            full.loc[i, "ce"] = ce(S.parse_subset(r["subset"]))[int(r["eval_domain"][1])]
    tf = N.in_domain_table(full)
    np.testing.assert_allclose(tf["ours"], tf["paper"])


def test_a_trend_slope():
    from scalinglaws.fitting.schema import fit_rows, fits_frame
    from scalinglaws.studies.merging import tail as TL

    rows = []
    for size, n, a in (("s1", 1e3, 1.0), ("s2", 1e4, 0.1), ("s3", 1e5, 0.01)):
        rows += fit_rows(TL.TAIL_LAW, {"L_inf": 1.0, "A": a, "b": 0.0}, ok=True, why_not_ok="", n_points=5,
                         keys={"pool": "nine", "method": "average", "size": size, "N": n, "scope": "in_domain"})
    tails = fits_frame(rows, TL.TAIL_KEYS)  # the stored `nine_tail_fits` schema
    assert N.a_trend(tails)["A_slope"].iloc[0] == pytest.approx(-1.0)


# ---------------------------------------------------------------------------------------------
# the smoke path end to end


@pytest.fixture(scope="module")
def smoke(tmp_path_factory, one_thread):
    root = tmp_path_factory.mktemp("nine")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SCALINGLAWS_RESULTS", str(root / "results"))
        mp.setenv("SCALINGLAWS_WORK", str(root / "work"))
        p = N.resolve("smoke")
        N.run_part("smoke", "pilot")
        store, missing = N.write_tables("smoke")
        after_pilot = ({t: store.read(t) for t in store.tables()}, missing)
        for part in p["parts"]:
            N.run_part("smoke", part)
        units = root / "results" / "merging" / "smoke" / "units"
        before = {q: q.stat().st_mtime_ns for q in units.rglob("*.json")}
        import shutil
        shutil.rmtree(root / "work" / "checkpoints" / "finetune")  # a new machine: expert checkpoints lost
        for part in p["parts"]:
            N.run_part("smoke", part)  # resumes from the records: nothing retrained
        after = {q: q.stat().st_mtime_ns for q in units.rglob("*.json")}
        costs = N.measure("smoke")
        store, missing = N.write_tables("smoke", costs=costs)
        yield {"p": p, "pilot": after_pilot, "tables": {t: store.read(t) for t in store.tables()},
               "missing": missing, "before": before, "after": after, "units": units,
               "prov": json.loads((store.dir / "provenance.json").read_text())}


def test_pilot_alone_gives_a_recipe_per_size(smoke):
    tables, missing = smoke["pilot"]
    assert missing == smoke["p"]["sizes"]
    assert set(tables) == {"nine_pilot", "nine_recipe"}
    rec = tables["nine_recipe"]
    assert rec.groupby("size")["chosen"].sum().to_dict() == {s: 1 for s in smoke["p"]["sizes"]}


def test_parts_resume_from_committed_records(smoke):
    assert smoke["before"] == smoke["after"]
    kinds = {q.parent.name for q in smoke["units"].rglob("*.json")}
    assert {"pilot", "finetune", "specialise", "merge_eval"} <= kinds


def test_nine_tables(smoke):
    t, p = smoke["tables"], smoke["p"]
    assert smoke["missing"] == []
    m = t["nine_merges"]
    assert set(m["k"]) == set(range(10)) and set(m["eval_domain"]) == set(N.NINE_POOL)
    for s in p["sizes"]:
        plan = t["nine_subsets"][t["nine_subsets"]["size"] == s]
        assert m[(m["size"] == s) & (m["k"] >= 1)]["subset"].nunique() == len(plan)
    sat = t["nine_saturation"]
    assert sorted(set(sat["k"])) == list(range(1, 10))
    np.testing.assert_allclose(sat.groupby(["method", "size"])["R_domains"].max(), 1.0)
    ind = t["nine_in_domain"]
    assert set(ind["k"]) == set(range(10)) and ind[["ours", "paper"]].notna().all().all()
    assert set(t["nine_experts"]["domain"]) == set(N.NINE_POOL)
    lr = t["nine_recipe"][t["nine_recipe"]["chosen"]].set_index("size")["lr"]
    assert (t["nine_experts"].set_index("size")["lr"].groupby(level=0).first() == lr.reindex(p["sizes"])).all()
    assert len(t["nine_tail_fits"]) and len(t["nine_a_trend"])
    parts = t["nine_parts"]
    assert list(parts["part"]) == ["pilot", *p["parts"]] and (parts["cpu_s"] >= 0).all()
    assert (t["nine_unit_costs"][["ft_cpu_s_per_token", "merge_eval_cpu_s_per_model"]] > 0).all().all()
    d = smoke["prov"]["derived"]["nine"]
    assert d["missing_sizes"] == [] and "nine_saturation" in d["tables"] and "nine_pilot" in d["tables"]


def test_the_nine_pool_is_judged_by_the_merging_claims_once_its_merges_are_stored():
    """The stored smoke nine_* tables give the pool's four claims (by the same functions as the run's
    pools, on its own curves, tails and a stopping table made from its curves); without nine_curves
    (cpu before the parts are done) no nine row appears; the pool name is nine.POOL."""
    from scalinglaws.core.results import ResultStore
    from scalinglaws.studies.merging import claims as C
    assert C.NINE_POOL == N.POOL
    store = ResultStore("merging", "smoke")
    T = {t: store.read(t) for t in store.tables()}
    got = C.claims(T, "cpu").set_index("claim_id")
    nine = got[got.index.str.endswith(":nine")]
    assert sorted(nine.index) == sorted(f"{fn.__name__}:nine" for fn in C.NINE_CLAIMS)
    assert nine["note"].str.startswith("nine-expert pool").all()
    sat = nine.loc["saturation:nine"]
    summary = T["nine_saturation_summary"].sort_values("N").iloc[-1]  # the largest size, as the claim reads
    assert sat["value"] == summary["k90_domains"] - summary["k90_perfect"]
    base = T["nine_curves"].query("method == 'average' and scope == 'in_domain'").sort_values("N")
    last = base[base["size"] == base["size"].iloc[-1]]
    assert nine.loc["beats_base:nine", "value"] == pytest.approx(last.loc[last["k"].idxmax(), "delta_base"])
    without = {t: v for t, v in T.items() if t != "nine_curves"}
    assert not C.claims(without, "cpu")["claim_id"].str.endswith(":nine").any()


def test_the_phenomenon_sentence_says_when_the_in_domain_curve_never_improves_on_one_expert():
    def curves(in_domain):
        rows = []
        for k, ce in enumerate(in_domain):
            rows += [{"method": "average", "size": "s", "N": 10, "k": k, "scope": "in_domain", "ce": ce},
                     {"method": "average", "size": "s", "N": 10, "k": k, "scope": "cross_domain", "ce": 3.0 - 0.01 * k}]
        return {"nine_curves": pd.DataFrame(rows)}
    rising = N.phenomenon(curves([2.6, 2.4, 2.5, 2.55]))
    assert "rises with k" in rising and "precondition is unmet" in rising and "2.400 nats/token at k = 1" in rising
    falling = N.phenomenon(curves([2.6, 2.5, 2.45, 2.48]))
    assert "is lowest at k = 2" in falling and "precondition" not in falling
    assert "2.970 at k = 3" in falling  # the cross-domain curve at k = M
    assert N.phenomenon({}) == "No nine-pool merges are stored at this profile."


def test_the_chapters_paper_statement_is_the_literature_tables():
    """The chapter's prose glues the paper's saturation points from `PAPER_R`; the literature table
    (shown beside our numbers) states the same points, so the two cannot drift apart."""
    from scalinglaws.studies.merging.literature import PAPER
    assert N.paper_saturation_text() == "85% at k = 5 and 90% at k = 6"
    row = PAPER.loc["median R(k) >= 85% / 90% at", "paper value"]
    assert row == " / ".join(f"k = {k}" for _, k in sorted(N.PAPER_R.items()))
