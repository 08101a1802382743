"""`core.compare` / `scripts/compare_stores.py`: a rerun part's tables against the committed ones."""
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from scalinglaws.core.compare import compare_tables
from scalinglaws.core.paths import REPO_ROOT
from scalinglaws.core.results import ResultStore


def _table(units=("u1", "u2", "u3"), loss=(5.0, 4.5, 4.0)):
    return pd.DataFrame({"unit": list(units), "size": [f"s{u}" for u in units], "loss": list(loss),
                         "wall_s": np.arange(len(units)) * 10.0, "steps": [10] * len(units)})


def test_a_subset_rerun_bit_for_bit_is_the_same_and_times_are_skipped():
    ref = _table()
    part = _table(("u2", "u3"), (4.5, 4.0)).assign(wall_s=[99.0, 98.0])  # other machine, other times
    d = compare_tables("t", ref, part)
    assert d.same and d.matched == 2 and d.only_reference == 1 and d.only_rerun == 0 and d.skipped == ["wall_s"]
    assert d.key == ["unit"] and d.max_abs_diff == 0.0


def test_a_changed_value_an_extra_row_and_a_changed_integer_are_differences():
    ref = _table()
    d = compare_tables("t", ref, _table(loss=(5.0, 4.5, 4.0 + 1e-7)))
    assert not d.same and d.beyond_tol == 1 and d.worst_column == "loss" and d.max_abs_diff == pytest.approx(1e-7)
    assert compare_tables("t", ref, _table(loss=(5.0, 4.5, 4.0 + 1e-7)), atol=1e-6).same
    extra = pd.concat([ref, _table(("u9",), (3.0,))], ignore_index=True)
    assert compare_tables("t", ref, extra).only_rerun == 1 and not compare_tables("t", ref, extra).same
    d = compare_tables("t", ref, ref.assign(steps=[10, 11, 10]))
    assert d.unequal == {"steps": 1} and not d.same
    d = compare_tables("t", ref, ref.assign(loss=[5.0, np.nan, 4.0]))  # NaN on one side only
    assert d.max_abs_diff == np.inf and not d.same
    assert compare_tables("t", ref.assign(loss=[5.0, np.nan, 4.0]), ref.assign(loss=[5.0, np.nan, 4.0])).same
    assert not compare_tables("t", ref, ref.drop(columns="steps")).same  # a column lost


def test_tables_without_a_unit_column_match_on_their_non_float_columns():
    ref = pd.DataFrame({"size": ["a", "a", "b"], "k": [1, 2, 1], "ce": [1.0, 2.0, 3.0]})
    d = compare_tables("t", ref, ref.iloc[::-1].reset_index(drop=True))  # row order does not matter
    assert d.key == ["size", "k"] and d.same


def _script(*args, env=None):
    return subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "compare_stores.py"), *args],
                          capture_output=True, text=True, env=env)


def test_the_script_exits_0_1_2(tmp_path):
    ref, new = tmp_path / "ref", tmp_path / "new"
    ResultStore("resource", "cpu", ref).write("lm_parts", _table())
    ResultStore("resource", "cpu", new).write("lm_parts", _table(("u2", "u3"), (4.5, 4.0)))
    r = _script("resource", "cpu", str(new), "--reference-root", str(ref))
    assert r.returncode == 0 and "lm_parts: same" in r.stdout, r.stdout + r.stderr
    ResultStore("resource", "cpu", new).write("lm_parts", _table(("u2", "u3"), (4.5, 4.1)))
    r = _script("resource", "cpu", str(new), "--reference-root", str(ref))
    assert r.returncode == 1 and "lm_parts: DIFFERENT" in r.stdout
    for bad, word in ((["nosuch", "cpu", str(new)], "study"), (["resource", "big", str(new)], "profile"),
                      (["resource", "cpu", str(new), "--atol", "-1"], "--atol"),
                      (["resource", "cpu", str(new), "--tables", "loss"], "--tables"),
                      (["resource", "cpu", str(tmp_path / "empty")], "rerun store")):
        r = _script(*bad, "--reference-root", str(ref)) if bad[0] != "nosuch" else _script(*bad)
        assert r.returncode == 2 and word in r.stderr and len(r.stderr.strip().splitlines()) == 1, (bad, r.stderr)
