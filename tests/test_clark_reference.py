"""Clark et al. 2022's own measurements (`data/reference/clark2022_routing_measurements.csv`) through
the routing study's code (`studies/routing/clark.py`): the checksum is enforced, the fit of the
shipped file gives the stored coefficients (and Table 3 where the chapter says it is verified),
and the fitter recovers known coefficients drawn on Clark's (N, E) grid within its intervals."""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from scalinglaws import laws as LW
from scalinglaws.core import paths
from scalinglaws.data import reference as REF
from scalinglaws.studies.routing import clark as C
from scalinglaws.studies.routing.literature import CLARK_TABLE3

STORED = paths.DATA_DIR / "results" / "routing" / "cpu" / "clark_fits.parquet"


@pytest.fixture(scope="module")
def raw():
    return C.load_raw()


@pytest.fixture(scope="module")
def point_fit(raw):
    return C.fit(C.loss_table(raw), bootstrap=0)


def test_checksum_is_enforced(tmp_path, raw):
    good = tmp_path / C.RAW
    shutil.copy(REF.path(C.RAW), good)
    assert len(REF.load(C.RAW, good)) == len(raw) == 5799
    bad = tmp_path / "edited.csv"
    text = good.read_bytes()
    bad.write_bytes(text.replace(b"2.8755049167659514", b"2.8755049167659515", 1))
    with pytest.raises(REF.ReferenceChecksumError, match="sha256"):
        REF.load(C.RAW, bad)
    with pytest.raises(REF.ReferenceChecksumError, match="missing"):
        REF.load(C.RAW, tmp_path / "absent.csv")


def test_selection_is_the_main_grid(raw):
    loss = C.loss_table(raw)
    assert set(loss["router"]) == {"dense", "sbase", "rlr", "hash"}
    dense = loss[loss["router"] == "dense"]
    assert len(dense) == 6 and dense.set_index("size").loc["130M", "seeds"] == 3  # the 130M seeds averaged
    assert len(loss) == 6 + 3 * 54 - 4  # 6 x 9 routed cells per router, 4 absent from the file
    assert loss["experts"].max() == 512 and (loss.loc[loss["router"] != "dense", "seeds"] == 1).all()


def test_fit_recovers_stored_coefficients_and_table3(point_fit):
    fits, results = point_fit
    est = fits.set_index(["router", "param"])["estimate"]
    stored = pd.read_parquet(STORED).set_index(["router", "param"])["estimate"]
    for r, p in stored.index:
        if p in "abcd":
            assert est[(r, p)] == pytest.approx(stored[(r, p)], abs=2e-4), (r, p)
    # the coefficients the chapter quotes as verified from the data (literature.py's docstring)
    for r in ("rlr", "hash"):
        for p, tol in (("a", 0.002), ("b", 0.005), ("c", 0.001), ("d", 0.006)):
            assert abs(est[(r, p)] - CLARK_TABLE3.loc[r, p]) < tol, (r, p)
    assert abs(est[("sbase", "b")] - CLARK_TABLE3.loc["sbase", "b"]) > 0.008  # the one not verified
    assert all(res.r2_log > 0.99 for res in results.values())


def test_synthetic_coefficients_recovered_within_intervals(raw):
    grid = C.loss_table(raw)[["size", "N", "experts", "router"]]
    grid = grid[grid["router"].isin(["dense", "sbase"])].reset_index(drop=True)
    truth = {"a": -0.085, "b": -0.13, "c": 0.011, "d": 1.12, "E_start": 2.0, "E_max": 300.0}
    rng = np.random.default_rng(0)
    lg = LW.routing_log10_loss(truth, grid["N"], grid["experts"]) + rng.normal(0, 0.002, len(grid))
    grid["L"] = 10.0 ** lg
    fits, _ = C.fit(grid, bootstrap=100, seed=3)
    f = fits[fits["router"] == "sbase"].set_index("param")
    for p in "abcd":
        assert f.loc[p, "lo"] <= truth[p] <= f.loc[p, "hi"], (p, f.loc[p, ["estimate", "lo", "hi"]].tolist())
        assert f.loc[p, "hi"] - f.loc[p, "lo"] < 0.5 * abs(truth[p])  # intervals that say something


def test_steps_and_extrapolation_shapes(raw):
    steps = C.steps_table(raw, steps=(10_000, 240_000))
    assert set(steps["step"]) == {10_000, 240_000}
    s = steps[(steps["router"] == "sbase") & (steps["size"] == "1.3B") & (steps["experts"] == 8)]
    assert len(s) == 2 and (s["gap"] < 0).all()  # routing helps at 1.3B along training
    assert np.allclose(s["rel_gap"], s["L"] / s["L_dense"] - 1)


def test_clark_command_validates_before_any_compute(tmp_path, monkeypatch):
    from scalinglaws.cli import main
    from scalinglaws.core.results import ResultStore
    monkeypatch.setenv("SCALINGLAWS_RESULTS", str(tmp_path))
    assert main(["clark", "--profile", "nosuch"]) == 2
    assert main(["clark", "--profile", "cpu"]) == 2  # no routing run stored under this root
    store = ResultStore("routing", "cpu", root=tmp_path)
    store.write_provenance({"commit": "c" * 40, "config": {}})
    assert main(["clark", "--profile", "cpu", "--bootstrap", "-1"]) == 2
    assert store.tables() == []  # nothing written


def test_stored_tables_and_chapter_views():
    from scalinglaws.studies.routing import chapter as CH
    d = paths.DATA_DIR / "results" / "routing" / "cpu"
    fits = pd.read_parquet(d / "clark_fits.parquet")
    routed = fits[fits["router"] != "dense"]
    assert np.allclose(routed["diff"], routed["estimate"] - routed["quoted"])
    assert (routed["quoted_in_interval"] == ((routed["lo"] <= routed["quoted"]) & (routed["quoted"] <= routed["hi"]))).all()
    # Clark's claims judged with our code: every claim testable on their data holds (one that fails is a bug)
    cc, ours = pd.read_parquet(d / "clark_claims.parquet"), pd.read_parquet(d / "claims.parquet")
    testable = cc[cc["verdict"] != "not testable"]
    held = testable[testable["verdict"] == "holds"]
    assert len(held) >= 15 and "refuted" not in set(testable["verdict"])
    # what stays undecided on their data is a claim whose value has no interval (R^2), not a failed test
    undecided = testable[testable["verdict"] == "inconclusive"]
    assert undecided["note"].str.contains("no 95% interval").all(), undecided[["claim_id", "note"]]
    assert set(cc.loc[cc["verdict"] == "not testable", "claim_id"]) == set(C.NOT_IN_CLARK)
    side = CH.claims_side_by_side(cc, ours)
    assert set(side.index) == set(cc["claim_id"]) | set(ours["claim_id"])
    assert CH.clark_claims_sentence(cc, ours).startswith(f"On Clark et al.'s data {len(held)} of the {len(testable)}")
    ex = pd.read_parquet(d / "clark_extrapolation.parquet")
    assert set(ex["quantity"]) == {"L", "N_bar", "log10_n_cutoff"}
    assert (ex.loc[ex["quantity"] == "L", "error"].abs() < 0.05).all()  # the law extrapolates on their data
