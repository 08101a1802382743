"""Training-seed replicates (`python -m scalinglaws seeds STUDY`, `studies.replicates`): parameters
rejected before compute, a valid resumable `seeds` table whose stored seed reproduces the stored
value, and replicate configs that are the stored run's own units with only the seed changed."""
from __future__ import annotations

import json
import math
import shutil

import pandas as pd
import pytest

from scalinglaws.core import seeds as S
from scalinglaws.core.paths import DATA_DIR
from scalinglaws.core.sweep import Unit
from scalinglaws.core.validation import ParameterError
from scalinglaws.studies import replicates as R

SHIPPED = DATA_DIR / "results"


def _copy(res, *studies):
    for s in studies:
        # the stored run only: without the shipped replicates, so that the tests compute them
        shutil.copytree(SHIPPED / s / "smoke", res / s / "smoke", ignore=shutil.ignore_patterns("units", "seeds.parquet"))


@pytest.mark.parametrize("text, match", [("0,1", "at least 3"), ("0,0,1", "duplicates"), ("0,x,2", "not an integer"),
                                         ("0,-1,2", "negative"), ([0, 1.5, 2], "not an integer")])
def test_bad_seed_lists(text, match):
    with pytest.raises(ParameterError, match=match):
        R.parse_seeds(text)


def test_parse_seeds():
    assert R.parse_seeds("3, 1,2") == [3, 1, 2] and R.parse_seeds([0, 1, 2]) == [0, 1, 2]


@pytest.mark.parametrize("argv, match", [
    (["seeds", "nosuch", "--profile", "smoke"], "study"),
    (["seeds", "resource", "--profile", "nosuch"], "profile"),
    (["seeds", "resource", "--profile", "smoke", "--seeds", "0,1"], "at least 3"),
    (["seeds", "resource", "--profile", "smoke", "--cells", "depth/d999l1"], "cannot be replicated"),
    (["seeds", "testbed", "--profile", "cpu"], "no complete run"),  # not copied to the scratch root
])
def test_cli_rejects_before_compute(scratch_roots, capsys, argv, match):
    from scalinglaws.cli import main
    res, work = scratch_roots
    _copy(res, "resource")
    before = sorted(p.relative_to(res) for p in res.rglob("*"))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert match in err and len(err.strip().splitlines()) == 1
    assert sorted(p.relative_to(res) for p in res.rglob("*")) == before  # nothing written
    assert not work.exists()


def test_resource_replicates_resume_and_reproduce(scratch_roots, one_thread, monkeypatch):
    """One cheap cell at smoke: a valid table, seed 0 = the stored value, and a rerun (even with
    `.work/` gone, as on a fresh clone) that recomputes nothing because the records are committed."""
    from scalinglaws.studies.resource import seeds as RS
    res, work = scratch_roots
    _copy(res, "resource")
    store = R.run_seeds("resource", "smoke", "0,1,2", cells="depth/d16l1")
    df = S.check_seeds(store.read("seeds"))
    assert set(df["measure"]) == {"test_ce"} and sorted(df["seed"]) == [0, 1, 2]
    assert S.seed_spread(df)["n_seeds"].min() >= S.MIN_SEEDS and df["value"].nunique() == 3  # seeds differ
    lad = store.read("lm_ladders")
    want = lad[lad["chosen"] & (lad["ladder"] == "depth") & (lad["size"] == "d16l1")]["loss"].item()
    assert df.loc[df["seed"] == 0, "value"].item() == pytest.approx(want, abs=1e-6)
    prov = store.provenance()["derived"]["seeds"]
    assert prov["reproduces"]["max_abs_diff"] < 1e-6 and prov["seeds"] == [0, 1, 2]
    repro = store.read(S.REPRODUCTION_TABLE)  # the same check as a table, for the claims' seed noise
    assert list(repro.columns) == list(S.REPRODUCTION_COLUMNS) and repro["cell"].tolist() == ["depth/d16l1"]
    assert repro["diff"].abs().max() == pytest.approx(prov["reproduces"]["max_abs_diff"], abs=0)
    assert "rows" not in prov["reproduces"] and prov["reproduces"]["pairs"] == len(repro)  # one copy: the table
    assert prov["tables"] == ["seeds", S.REPRODUCTION_TABLE]
    records = sorted((res / "resource" / "smoke" / "units" / "seeds").glob("*.json"))
    assert len(records) == 3 and all(p.stat().st_size < 4000 for p in records)  # small enough to commit
    mtimes = [p.stat().st_mtime_ns for p in records]

    shutil.rmtree(work)  # a fresh clone: no checkpoints, no study records
    monkeypatch.setattr(RS, "replicate", lambda c: (_ for _ in ()).throw(AssertionError("recomputed")))
    again = R.run_seeds("resource", "smoke", "0,1,2", cells="depth/d16l1").read("seeds")
    pd.testing.assert_frame_equal(again, df)
    assert [p.stat().st_mtime_ns for p in records] == mtimes


def test_seed_zero_is_the_stored_unit(scratch_roots):
    """The replicate of the stored seed trains exactly the stored run's units (same config hash):
    testbed bases, routing models and merging experts at smoke."""
    res, _ = scratch_roots
    _copy(res, "testbed", "routing", "merging")
    _, _, _, units = R.plan("testbed", "smoke")
    lr = pd.read_parquet(res / "testbed" / "smoke" / "lr_sweep.parquet")
    stored = set(lr.loc[lr["chosen"], "unit"])
    keys = {u.config["seed"]: Unit("pretrain", u.config["pretrain"]).key for u in units}
    assert keys[0] in stored and keys[1] not in stored

    _, _, _, units = R.plan("routing", "smoke")
    models = set(pd.read_parquet(res / "routing" / "smoke" / "models.parquet")["unit"])
    for u in units:
        ks = [Unit(t["kind"], t["config"]).key for t in u.config["train"]]
        assert all((k in models) == (u.config["seed"] == 0) for k in ks)

    _, _, _, units = R.plan("merging", "smoke")
    experts = set(pd.read_parquet(res / "merging" / "smoke" / "experts.parquet")["unit"])
    for u in units:
        ks = [Unit("finetune", c).key for c in u.config["finetune"]]
        assert all((k in experts) == (u.config["seed"] == 0) for k in ks)


def test_reproduction_check():
    table = pd.DataFrame({"cell": ["a", "a", "b"], "measure": ["m"] * 3, "seed": [0, 1, 0], "value": [1.0, 2.0, 3.0]})
    stored = pd.DataFrame({"cell": ["a", "b"], "measure": ["m", "m"], "seed": [0, 0], "value": [1.25, 3.0]})
    out = R.reproduction(table, stored)
    assert out["max_abs_diff"] == pytest.approx(0.25) and len(out["rows"]) == 2
    assert math.isnan(R.reproduction(table, stored.iloc[:0])["max_abs_diff"])


@pytest.mark.parametrize("study", ["testbed", "routing", "merging", "della", "composition", "resource"])
def test_shipped_smoke_seeds_tables(study):
    """Every study ships a smoke `seeds` table (>= 3 seeds per cell and measure, measures documented
    in its seeds module, recorded in provenance) and its chapter function reads it."""
    import importlib
    from scalinglaws.core.results import ResultStore
    mod = importlib.import_module(f"scalinglaws.studies.{study}.seeds")
    store = ResultStore(study, "smoke", SHIPPED)
    df = S.check_seeds(store.read("seeds"))
    assert S.seed_spread(df)["n_seeds"].min() >= S.MIN_SEEDS
    assert set(df["measure"]) <= set(mod.MEASURES)
    derived = store.provenance()["derived"]["seeds"]
    assert derived["reproduces"]["max_abs_diff"] < 1e-4 and "+dirty" not in derived["commit"]
    tables = {t: store.read(t) for t in store.tables()}
    shown = mod.seed_table(tables)
    assert len(shown) == len(S.seed_spread(df)) and shown["stored"].notna().all()
    assert len(list((store.dir / "units" / "seeds").glob("*.json"))) == derived["units"]  # every record shipped


def test_merging_tail_replicates_reproduce_the_stored_tail_fits(scratch_roots, one_thread):
    """A replicated tail ("<pool>/tail") merges every size's planned subsets with Average at each seed
    and fits the tail as the study does: seed 0 gives the stored tail_fits' A at every size and the
    claims' slope of log A over log N; other seeds move them; the claims then know the seed SD of A."""
    import numpy as np

    from scalinglaws.studies.merging import claims as MC
    from scalinglaws.studies.merging import seeds as MS
    from scalinglaws.studies.merging import tail as TL
    res, _ = scratch_roots
    _copy(res, "testbed", "merging")
    store = R.run_seeds("merging", "smoke", "0,1,2", cells="related/tail")
    df = S.check_seeds(store.read("seeds"))
    tails = TL.tail_wide(store.read("tail_fits"))
    tails = tails[(tails["pool"] == "related") & (tails["method"] == "average") & (tails["scope"] == "cross_domain")]
    sizes = sorted(tails["size"])
    assert set(df["cell"]) == {f"related/{s}/tail" for s in sizes} | {"related/tail"}
    a0 = df[(df["measure"] == "tail_A") & (df["seed"] == 0)].set_index("cell")["value"]
    for r in tails.itertuples():
        # the shipped smoke run was trained with another thread count: equal to float noise (as its check)
        assert a0[f"related/{r.size}/tail"] == pytest.approx(r.A, rel=1e-4, abs=1e-5)
    slope0 = df[(df["measure"] == "tail_A_slope") & (df["seed"] == 0)]["value"].item()
    assert slope0 == pytest.approx(TL.amplitude_slope(tails["N"], tails["A"]), rel=1e-4)
    assert df[df["measure"] == "tail_A"].groupby("cell")["value"].nunique().min() == 3  # the seeds differ
    assert store.provenance()["derived"]["seeds"]["reproduces"]["max_abs_diff"] < 1e-4
    shown = MS.seed_table({t: store.read(t) for t in store.tables()})
    assert shown["stored"].notna().all()
    tables = {t: store.read(t) for t in store.tables()}
    assert np.isfinite(MC.CL.seed_noise(tables, "tail_A").sd) and np.isfinite(MC.CL.seed_noise(tables, "tail_A_slope").sd)


@pytest.mark.parametrize("cell", ["related/tail", "related/d16l1"])
def test_merging_cells_whose_base_is_missing_are_refused_before_compute(scratch_roots, monkeypatch, cell):
    """A cell (a tail: every size of the stored run; a (pool, size): its size) whose testbed base the
    stored run does not name is refused with the sizes missing, before any unit is built or trained."""
    from scalinglaws.studies.merging import seeds as MS
    res, _ = scratch_roots
    _copy(res, "testbed", "merging")
    real = MS.stored_bases
    monkeypatch.setattr(MS, "stored_bases", lambda study, profile: {k: v for k, v in real(study, profile).items()
                                                                     if k != "d16l1"})
    with pytest.raises(ParameterError, match=r"no testbed base for \['d16l1'\]"):
        R.plan("merging", "smoke", "0,1,2", cells=cell)


def test_a_stored_run_made_before_a_parameter_existed_is_refused_by_name(scratch_roots):
    """Replicates of a run stored by older code (its config lacks a parameter the study has now) are
    refused with one line naming the parameter and the command to rerun, not a KeyError."""
    res, _ = scratch_roots
    _copy(res, "resource")
    prov_path = res / "resource" / "smoke" / "provenance.json"
    prov = json.loads(prov_path.read_text())
    del prov["config"]["lm_min_steps"]
    prov_path.write_text(json.dumps(prov))
    with pytest.raises(ParameterError, match=r"predates parameters \['lm_min_steps'\].*make reproduce STUDY=resource"):
        R.plan("resource", "smoke", "0,1,2")
