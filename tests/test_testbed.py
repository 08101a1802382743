"""The testbed's choice of learning rate and what its chapter and claims say, on small synthetic
records and tables (no training)."""
import math

import pandas as pd
import pytest

from scalinglaws.studies.testbed import chapter as C
from scalinglaws.studies.testbed.claims import claims
from scalinglaws.core.regime import bracket_step, grid_ratio
from scalinglaws.studies.testbed.study import sweep_table


def _records(size, N, lr, train_loss, val, test, diverged=False):
    pre = {"key": f"{size}-{lr}", "rows": [{"size": size, "non_embedding": N, "lr": lr, "train_loss": train_loss,
                                             "diverged": diverged}]}
    ev = {"rows": [{"split": s, "domain": d, "ce": v + j * 0.1, "ce_se": 0.01}
                   for s, v in (("val", val), ("test", test)) for j, d in enumerate(("a", "b"))]}
    return pre, ev


def test_sweep_keeps_the_best_val_rate_never_a_diverged_one_and_ignores_test():
    recs = [_records("s1", 100, 1e-3, 5.0, 5.0, 4.0),      # best test, worse val
            _records("s1", 100, 3e-3, 4.8, 4.8, 4.9),      # best val: chosen
            _records("s2", 400, 1e-3, 4.5, 4.5, 4.5),
            _records("s2", 400, 3e-3, math.nan, 1.0, 1.0, diverged=True)]  # never chosen
    t = sweep_table([p for p, _ in recs], [e for _, e in recs])
    chosen = t[t["chosen"]].set_index("size")["lr"]
    assert chosen.to_dict() == {"s1": 3e-3, "s2": 1e-3}
    row = t[(t["size"] == "s1") & (t["lr"] == 3e-3)].iloc[0]
    assert row["val_ce"] == 4.8 + 0.05  # the mean over domains
    assert math.isclose(row["val_ce_se"], math.sqrt(2 * 0.01 ** 2) / 2)


def _tables(test_ce, se=0.01, lrs=(3e-3, 3e-3, 3e-3), seed_sd=0.001):
    """Stored testbed tables: a ladder of up to three sizes, a three-rate sweep per size (best at
    `lrs`) and, unless seed_sd is None, a seeds table of test_ce with that SD."""
    sizes = [("s1", 100), ("s2", 400), ("s3", 1600)]
    ladder = pd.DataFrame([{"size": s, "non_embedding": n, "lr": lr, "test_ce": ce, "test_ce_se": se, "steps": 512,
                            "tokens": 51200} for (s, n), ce, lr in zip(sizes, test_ce, lrs)])
    sweep = pd.DataFrame([{"size": s, "N": n, "lr": lr, "val_ce": 5.0 + abs(lr - best) * 100, "val_ce_se": 0.01,
                           "diverged": False, "chosen": lr == best}
                          for (s, n), best in zip(sizes, lrs) for lr in (1e-3, 3e-3, 1e-2)])
    out = {"ladder": ladder, "lr_sweep": sweep}
    if seed_sd is not None:
        out["seeds"] = pd.DataFrame([{"cell": s, "measure": "test_ce", "seed": i, "value": 4.0 + i * seed_sd}
                                     for s, _ in sizes[:2] for i in range(3)])
    return out


def test_a_clean_ladder_holds_and_a_bump_is_refuted():
    clean = claims(_tables([5.0, 4.5, 4.0]), "cpu").set_index("claim_id")
    assert clean.loc["testbed.ce_falls_with_n", "verdict"] == "holds"
    assert clean.loc["testbed.lr_inside_grid", "verdict"] == "holds"
    assert "widened by training-seed SD" in clean.loc["testbed.ce_falls_with_n", "note"]
    bump = _tables([5.0, 4.5, 4.6], lrs=(3e-3, 3e-3, 1e-3))
    got = claims(bump, "cpu").set_index("claim_id")
    assert got.loc["testbed.ce_falls_with_n", "verdict"] == "refuted"
    assert got.loc["testbed.lr_inside_grid", "verdict"] == "refuted"  # s3's best rate is the grid's lowest
    # without training-seed replicates nothing on trained models is decided
    none = claims(_tables([5.0, 4.5, 4.0], seed_sd=None), "cpu").set_index("claim_id")
    assert set(none["verdict"]) == {"inconclusive", "not testable"}  # (no step check in these tables)
    assert "training-seed noise not measured (measure test_ce)" in none.loc["testbed.ce_falls_with_n", "note"]
    assert not C.strictly_falling(bump["ladder"])
    assert "From s3 on" in C.ladder_sentence(bump["ladder"], bump["lr_sweep"])
    assert "lowest rate" in C.ladder_sentence(bump["ladder"], bump["lr_sweep"])
    # a drop smaller than twice its noise bound is not clean
    noisy = _tables([5.0, 4.99, 4.98], se=0.02)
    assert not C.ladder_steps(noisy["ladder"])["clean"].any()
    assert claims(noisy, "cpu").set_index("claim_id").loc["testbed.ce_falls_with_n", "verdict"] == "inconclusive"
    # at smoke nothing is judged
    assert set(claims(_tables([5.0, 4.5, 4.0]), "smoke")["verdict"]) == {"not testable"}


def _step(ce_small, ce_large, se=0.01):
    return pd.DataFrame([{"size": s, "N": n, "lr": 3e-3, "batch_tokens": 2048, "steps": 1024, "test_ce": ce,
                          "test_ce_se": se, "base_batch_tokens": 4096, "base_steps": 512, "base_test_ce": ce + 0.2,
                          "base_test_ce_se": se, "gain": 0.2, "gain_se_bound": 2 * se, "unit": s}
                         for s, n, ce in (("s2", 400, ce_small), ("s3", 1600, ce_large))])


def test_more_steps_order_claim():
    """Step-limited (the larger size pulls ahead with more steps) holds; the larger size worse is
    refuted; a tie within the noise bound is inconclusive; no step check is not testable."""
    def verdict(step):
        t = {**_tables([5.0, 4.5, 4.6]), "step_check": step}
        return claims(t, "cpu").set_index("claim_id").loc["testbed.more_steps_order"]
    assert verdict(_step(4.0, 3.8))["verdict"] == "holds"
    tie = verdict(_step(3.865, 3.877))
    assert tie["verdict"] == "inconclusive" and tie["value"] == pytest.approx(0.012) and tie["lo"] < 0 < tie["hi"]
    assert "1024 steps instead of 512" in tie["note"]
    assert verdict(_step(3.9, 3.95))["verdict"] == "refuted"
    assert verdict(None)["verdict"] == "not testable"
    assert verdict(_step(4.0, 3.8).iloc[:0])["verdict"] == "not testable"


def test_a_one_size_ladder_is_not_testable_not_an_error():
    one = _tables([5.0])
    one = {"ladder": one["ladder"].iloc[:1], "lr_sweep": one["lr_sweep"][one["lr_sweep"]["size"] == "s1"]}
    got = claims(one, "cpu").set_index("claim_id")
    assert got.loc["testbed.ce_falls_with_n", "verdict"] == "not testable"


def test_bracketing_extends_a_size_whose_best_rate_is_at_an_edge_and_only_that_size():
    assert grid_ratio([2e-3, 4e-3, 8e-3]) == pytest.approx(2.0) and grid_ratio([1e-3]) == 2.0
    recs = [_records("lo", 100, 2e-3, 5, 4.0, 4.0), _records("lo", 100, 4e-3, 5, 4.1, 4.1),   # best at the low edge
            _records("mid", 200, 2e-3, 5, 4.2, 4.2), _records("mid", 200, 4e-3, 5, 4.0, 4.0),
            _records("mid", 200, 8e-3, 5, 4.1, 4.1),                                          # bracketed
            _records("hi", 300, 2e-3, 5, 4.2, 4.2), _records("hi", 300, 4e-3, 5, 4.0, 4.0),   # best at the high edge
            _records("dv", 400, 2e-3, 5, 4.2, 4.2), _records("dv", 400, 4e-3, 5, 4.0, 4.0),
            _records("dv", 400, 8e-3, math.nan, 1.0, 1.0, diverged=True),                     # bracketed by divergence
            _records("all", 500, 2e-3, math.nan, 1.0, 1.0, diverged=True)]                    # nothing to centre on
    t = sweep_table([p for p, _ in recs], [e for _, e in recs])
    assert bracket_step(t, 2.0) == {"lo": pytest.approx(1e-3), "hi": pytest.approx(8e-3)}


def test_bracketed_rounds_walks_each_size_to_its_own_optimum_and_stops_at_the_round_cap():
    """A synthetic loss with a known optimum per size: the rule extends only sizes at an edge, one grid
    step per round, never proposes a rate >= 1, and trains each (size, rate) once per round."""
    from scalinglaws.core.regime import bracketed_rounds
    optimum = {"inside": 4e-3, "above": 3.2e-2, "far": 0.9, "below": 1e-3}
    calls = []

    def train_round(rates):
        calls.append({s: list(r) for s, r in rates.items()})
        rows = [{"size": s, "lr": lr, "val": abs(math.log(lr / optimum[s]))} for s, r in rates.items() for lr in r]
        t = pd.DataFrame(rows)
        t["chosen"] = t.index.isin(t.groupby("size")["val"].idxmin().values)
        return t, t

    t = bracketed_rounds({s: [2e-3, 4e-3, 8e-3] for s in optimum}, 2.0, 3, train_round)
    chosen = t[t["chosen"]].set_index("size")["lr"]
    assert chosen["inside"] == pytest.approx(4e-3) and chosen["below"] == pytest.approx(1e-3)
    assert chosen["above"] == pytest.approx(3.2e-2)      # two steps up, then bracketed by 6.4e-2
    assert chosen["far"] == pytest.approx(6.4e-2)        # still at the edge when the 3 rounds ran out
    assert len(calls) == 4 and calls[-1]["inside"] == [2e-3, 4e-3, 8e-3]
    assert calls[-1]["below"] == pytest.approx([5e-4, 1e-3, 2e-3, 4e-3, 8e-3])
    assert bracketed_rounds({"far": [0.6]}, 2.0, 5, train_round)["lr"].max() < 1.0  # 1.2 is never tried
    from scalinglaws.core.regime import bracket_candidates
    tried = {lr for c in calls for r in c.values() for lr in r}
    assert tried <= set(bracket_candidates([2e-3, 4e-3, 8e-3], 2.0, 3)) | {0.6}  # a reader finds every tried rate


def test_bracketed_sweep_trains_only_the_missing_edge_rates(scratch_roots, monkeypatch):
    """At smoke with lr_bracket=1: each size whose best rate is at an edge gets exactly one more rate,
    one grid step beyond it; a one-size sweep (what other studies call) chooses what the ladder does."""
    from scalinglaws.core.sweep import Sweep
    from scalinglaws.studies import resolve_params
    from scalinglaws.studies.testbed import study as S

    p = resolve_params(S, "smoke", {"lr_bracket": 1, "domains": ["code", "algebra"], "pretrain_tokens": 8192})
    first = S.bracketed_sweep(Sweep(S.STUDY, "smoke"), p["sizes"], "smoke", {**p, "lr_bracket": 0}, "local")[2]
    _, _, t = S.bracketed_sweep(Sweep(S.STUDY, "smoke"), p["sizes"], "smoke", p, "local")
    ratio = grid_ratio(p["lrs"])
    assert len(t) == len(first) + len(p["sizes"])  # two rates: every best rate is at an edge
    for size, g in t.groupby("size"):
        f = first[first["size"] == size]
        edge = bracket_step(f, ratio).get(size)
        expect = sorted(p["lrs"] + ([round(edge, 12)] if edge else []))
        assert sorted(g["lr"]) == pytest.approx(expect)
        one = S.bracketed_sweep(Sweep(S.STUDY, "smoke"), [size], "smoke", p, "local")[2]
        assert one.loc[one["chosen"], "unit"].item() == g.loc[g["chosen"], "unit"].item()
