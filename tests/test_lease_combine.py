"""Combining lease parts (issue 28): a study run as two parts, each stored as `scripts/gpu_study.sh`
stores it (tables in `parts/<part>/`, unit records in `parts/<part>/units/`), then combined by
`lease_plan.combine`, must give the tables of one uninterrupted run over every part's cells: the fits
across sizes (resource's exponents and fit draws, the testbed's law across its ladder) refitted on the
union, not each part's own fits stacked. The combine replays unit records only (no checkpoint, none
trained), as it must on a machine that never saw the leases' weights."""
from __future__ import annotations

import shutil

import pandas as pd
import pytest

from scalinglaws.core import sweep as SW
from scalinglaws.studies import get_study
from scalinglaws.studies import lease_plan as LPL

TIMING = {"wall_s", "train_s", "eval_s", "seconds", "elapsed_s"}  # each training's own clock, not a result


def _run(monkeypatch, study, results, work, **overrides):
    monkeypatch.setenv("SCALINGLAWS_RESULTS", str(results))
    monkeypatch.setenv("SCALINGLAWS_WORK", str(work))
    return get_study(study).run("smoke", **overrides)


def _store_part(monkeypatch, tmp, study, name, root, work, overrides):
    """One part as gpu_study.sh stores it: run in a staging results root, tables moved under
    `parts/<name>/`, the work root's unit records (every study's at this profile) copied beside them."""
    stage = tmp / f"stage-{name}"
    _run(monkeypatch, study, stage, work, **overrides)
    dest = root / study / "smoke" / "parts" / name
    shutil.move(str(stage / study / "smoke"), dest)
    for d in (work / "units").glob("*/smoke"):
        shutil.copytree(d, dest / LPL.PART_UNITS / d.parent.name / "smoke",
                        ignore=shutil.ignore_patterns(".lock", "*.failed.json"))
    return dest


def _tables(store_dir):
    return {p.stem: pd.read_parquet(p) for p in sorted(store_dir.glob("*.parquet"))}


def _assert_same_tables(got: dict, want: dict):
    assert sorted(got) == sorted(want)
    for name in want:
        g, w = got[name], want[name]
        keep = [c for c in w.columns if c not in TIMING]
        assert list(g.columns) == list(w.columns), name
        pd.testing.assert_frame_equal(g[keep].reset_index(drop=True), w[keep].reset_index(drop=True),
                                      check_exact=False, rtol=1e-9, atol=1e-12, obj=name)


def _combine_and_check(monkeypatch, tmp, study, one_run, parts_root):
    monkeypatch.setenv("SCALINGLAWS_WORK", str(tmp / "no-work"))  # combine replays the parts' records only
    store = LPL.combine(study, "smoke", root=parts_root)
    assert store is not None
    _assert_same_tables(_tables(store.dir), _tables(one_run.dir))
    prov = store.provenance()
    assert sorted(prov["parts"]) == ["a", "b"] and prov["config"] == one_run.provenance()["config"]


@pytest.mark.slow  # ~80 CPU-s (the resource smoke run once, two part analyses, the replay)
def test_resource_parts_combine_into_the_one_run_tables(tmp_path, monkeypatch):
    """Resource at smoke: parts by width (a part needs two toy widths to fit, so they share 8); the
    exponents across widths (`fits`, `fit_samples`) and the claims must be those of the whole run. The
    parts reuse the one run's unit records (so only the analysis differs, and the test stays short)."""
    work = tmp_path / "work-one"
    # lm_parts (the smoke profile's own cpu-style split of the LM rungs) is a plan over every rung:
    # these lease parts split by width instead, so neither the one run nor the parts use it
    one = _run(monkeypatch, "resource", tmp_path / "one", work, lm_parts=None)
    root = tmp_path / "parts"
    _store_part(monkeypatch, tmp_path, "resource", "a", root, work,
                {"widths": [4, 8], "composite_widths": [4], "lm_widths": [16, 32], "lm_parts": None})
    _store_part(monkeypatch, tmp_path, "resource", "b", root, work,
                {"widths": [8, 16], "composite_widths": [8], "lm_widths": [48], "lm_parts": None})
    # the old combination (the parts' rows stacked) differs from the one run: its fits are the parts' own
    stacked = pd.concat([pd.read_parquet(root / "resource/smoke/parts" / p / "fits.parquet") for p in "ab"])
    assert len(stacked) != len(one.read("fits")) or not stacked.reset_index(drop=True).equals(one.read("fits"))
    _combine_and_check(monkeypatch, tmp_path, "resource", one, root)


@pytest.mark.slow  # ~1.5 CPU-min: the testbed's smoke ladder trained once
def test_testbed_parts_combine_into_the_one_run_tables(tmp_path, monkeypatch):
    """Testbed at smoke: one size per part (the parts reuse the one run's trained units, so only
    the analysis differs); the law across the ladder (claims) and every table must be the one run's."""
    work = tmp_path / "work-one"
    one = _run(monkeypatch, "testbed", tmp_path / "one", work)
    sizes = one.provenance()["config"]["sizes"]
    root = tmp_path / "parts"
    for name, size in zip("ab", sizes):
        _store_part(monkeypatch, tmp_path, "testbed", name, root, work, {"sizes": [size]})
    stacked = pd.concat([pd.read_parquet(root / "testbed/smoke/parts" / p / "claims.parquet") for p in "ab"])
    assert len(stacked) != len(one.read("claims")) or not stacked.reset_index(drop=True).equals(one.read("claims"))
    _combine_and_check(monkeypatch, tmp_path, "testbed", one, root)


def test_replay_refuses_a_unit_no_part_recorded(tmp_path, monkeypatch):
    monkeypatch.setenv("SCALINGLAWS_WORK", str(tmp_path))
    sweep = SW.Sweep("resource", "smoke")
    with SW.replay(), pytest.raises(SW.NotRecorded, match="1 of 1 resource@smoke .* not recorded"):
        sweep.run([SW.Unit("x", {"size": "d16l1"})], lambda c: [{"v": 1}])
    assert sweep.run([SW.Unit("x", {"size": "d16l1"})], lambda c: [{"v": 1}])[0]["rows"] == [{"v": 1}]
    with SW.replay():  # recorded now: replayed without calling the function
        assert sweep.run([SW.Unit("x", {"size": "d16l1"})], lambda c: 1 / 0)[0]["rows"] == [{"v": 1}]


def test_union_of_part_parameters(tmp_path):
    a = {"sizes": ["d16l1"], "seed": 0, "multitask": [["d16l1", 2]]}
    b = {"sizes": ["d24l2"], "seed": 0, "multitask": [["d16l1", 2], ["d24l2", 2]]}
    u = LPL.union_config("testbed", "smoke", [a, b])
    assert u["sizes"] == ["d16l1", "d24l2"] and u["seed"] == 0 and "multitask" not in u  # not a testbed parameter
    with pytest.raises(Exception, match="differ in 'seed'"):
        LPL.union_config("testbed", "smoke", [a, {**b, "seed": 1}])
    assert LPL.combine("testbed", "smoke", root=tmp_path) is None
