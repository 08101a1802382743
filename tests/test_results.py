import json

import pandas as pd
import pytest

from scalinglaws.core.results import (ResultStore, atomic_write_json, available_profiles, config_hash, open_store,
                                 provenance)
from scalinglaws.core.validation import ParameterError


def test_store_roundtrip_and_best_profile(tmp_path):
    df = pd.DataFrame({"a": [1, 2], "b": [0.5, 0.25]})
    for prof in ("smoke", "cpu"):
        st = ResultStore("demo", prof, root=tmp_path)
        st.write("t", df.assign(p=prof))
    # only a store with provenance counts as a complete run
    assert available_profiles("demo", tmp_path) == []
    ResultStore("demo", "smoke", root=tmp_path).write_provenance(provenance({"x": 1}, 1.0, profile="smoke", backend="local", unit_compute_s=1.0))
    assert open_store("demo", "best", tmp_path).profile == "smoke"
    ResultStore("demo", "cpu", root=tmp_path).write_provenance(provenance({"x": 2}, 2.0, profile="cpu", backend="local", unit_compute_s=2.0))
    best = open_store("demo", "best", tmp_path)
    assert best.profile == "cpu" and best.read("t")["p"].eq("cpu").all()
    with pytest.raises(ParameterError):
        open_store("nothing", "best", tmp_path)
    with pytest.raises(FileNotFoundError, match="reproduce"):
        best.read("missing")


def test_provenance_fields():
    rec = provenance({"b": 1, "a": [1, 2]}, 3.14159, profile="smoke", backend="local", unit_compute_s=2.0)
    for key in ("commit", "date", "device", "versions", "wall_time_s", "config_hash", "config"):
        assert key in rec
    assert rec["config_hash"] == config_hash({"a": [1, 2], "b": 1})
    assert rec["versions"]["torch"]


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    p = tmp_path / "x.json"
    atomic_write_json(p, {"ok": 1})

    class Boom:
        def __str__(self):
            raise RuntimeError("boom")
    with pytest.raises(RuntimeError):
        atomic_write_json(p, {"bad": Boom()})
    assert json.loads(p.read_text()) == {"ok": 1}
    assert [q.name for q in tmp_path.iterdir()] == ["x.json"]


def test_git_commit_ignores_rewritten_results_but_not_code(tmp_path, monkeypatch):
    """A run rewrites its own tables before its provenance: that must not mark the tree dirty,
    while any change to code or data outside data/results must."""
    import subprocess
    from scalinglaws.core import results as R
    run = lambda *a: subprocess.run(["git", *a], cwd=tmp_path, check=True, capture_output=True)  # noqa: E731
    run("init", "-q")
    (tmp_path / "data" / "results").mkdir(parents=True)
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "data" / "results" / "t.csv").write_text("a\n1\n")
    run("add", "-A")
    run("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "init")
    monkeypatch.setattr(R, "REPO_ROOT", tmp_path)
    assert not R.git_commit().endswith("+dirty")
    (tmp_path / "data" / "results" / "t.csv").write_text("a\n2\n")
    assert not R.git_commit().endswith("+dirty")
    (tmp_path / "code.py").write_text("x = 2\n")
    assert R.git_commit().endswith("+dirty")


def test_merge_provenance_keeps_one_runs_fields_and_the_newer_record_of_each_command():
    from scalinglaws.core.results import merge_provenance
    old_run = {"commit": "a", "date": "2026-12-01T00:00:00+00:00", "wall_time_s": 5, "config": {"x": 1},
               "derived": {"claims": {"date": "2026-12-03T00:00:00+00:00", "commit": "c"},
                           "seeds": {"date": "2026-12-01T00:00:00+00:00", "commit": "a"}}}
    new_run = {"commit": "b", "date": "2026-12-02T00:00:00+00:00", "config": {"x": 2}, "backend": "ray",
               "derived": {"claims": {"date": "2026-12-02T00:00:00+00:00", "commit": "b"},
                           "clark_fits": {"date": "2026-12-02T00:00:00+00:00", "commit": "b"}}}
    for a, b in ((old_run, new_run), (new_run, old_run)):  # symmetric
        m = merge_provenance(a, b)
        assert {k: v for k, v in m.items() if k != "derived"} == {k: v for k, v in new_run.items() if k != "derived"}
        assert m["derived"]["claims"]["commit"] == "c"  # the later claims record, though from the older run's side
        assert set(m["derived"]) == {"claims", "seeds", "clark_fits"}


def test_merge_provenance_script_resolves_a_real_git_conflict(tmp_path):
    import subprocess
    import sys

    from scalinglaws.core.paths import REPO_ROOT
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"]
    run = lambda *a: subprocess.run([*git, *a], cwd=tmp_path, capture_output=True, text=True)  # noqa: E731
    prov = tmp_path / "provenance.json"
    write = lambda d: prov.write_text(json.dumps(d, indent=2, sort_keys=True) + "\n")  # noqa: E731
    run("init")
    write({"date": "2026-12-01", "derived": {"claims": {"date": "2026-12-01"}}})
    run("add", "."), run("commit", "-m", "base")
    run("checkout", "-b", "other")
    write({"date": "2026-12-01", "derived": {"claims": {"date": "2026-12-01"}, "seeds": {"date": "2026-12-02"}}})
    run("commit", "-am", "seeds")
    run("checkout", "main")
    write({"date": "2026-12-01", "derived": {"claims": {"date": "2026-12-03"}}})
    run("commit", "-am", "claims")
    assert run("merge", "other").returncode != 0  # a real conflict
    script = [sys.executable, str(REPO_ROOT / "scripts" / "merge_provenance.py")]
    refused = subprocess.run([*script, "elsewhere.json"], cwd=tmp_path, capture_output=True, text=True)
    assert refused.returncode == 2 and "not a provenance.json in merge conflict" in refused.stderr
    done = subprocess.run([*script, "provenance.json"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(prov.read_text())["derived"] == {"claims": {"date": "2026-12-03"}, "seeds": {"date": "2026-12-02"}}
    assert run("diff", "--name-only", "--diff-filter=U").stdout.strip() == ""  # staged, conflict resolved


def test_a_run_keeps_the_records_of_command_tables_it_did_not_rewrite_marked_before_run(tmp_path, capsys):
    """A study run replaces its provenance whole, but a command table (seeds, clark, ...) stays on
    disk: its record is carried forward marked `before_run` (the banner warns), a record of a table
    the run rewrote (claims) or of a table no longer stored is dropped, a rerun command clears the mark."""
    import pandas as pd

    from scalinglaws.core.results import ResultStore
    from scalinglaws.report import provenance_banner
    store = ResultStore("demo", "cpu", root=tmp_path)
    for t in ("loss", "claims", "seeds", "clark_fits"):
        store.write(t, pd.DataFrame({"x": [1]}))
    cmd = {"seeds": "python -m scalinglaws seeds demo --profile cpu", "clark": "python -m scalinglaws clark"}
    store.write_provenance({"commit": "a", "date": "2026-12-01T00:00:00+00:00", "derived": {
        "claims": {"commit": "a", "date": "2026-12-01", "command": "claims"},
        "seeds": {"commit": "a", "date": "2026-12-01", "command": cmd["seeds"]},
        "clark": {"commit": "a", "date": "2026-12-01", "command": cmd["clark"], "tables": ["clark_fits"]},
        "gone": {"commit": "a", "date": "2026-12-01", "command": "x"}}})
    (tmp_path / "demo" / "cpu" / "gone.parquet").unlink(missing_ok=True)
    run = ResultStore("demo", "cpu", root=tmp_path)  # what a study's run does: write its tables, then its record
    run.write("loss", pd.DataFrame({"x": [2]}))
    run.write("claims", pd.DataFrame({"x": [2]}))
    assert run.write_run_provenance({"commit": "b", "date": "2026-12-07T00:00:00+00:00"}) == ["clark", "seeds"]
    prov = run.provenance()
    assert prov["commit"] == "b" and set(prov["derived"]) == {"seeds", "clark"}
    assert prov["derived"]["seeds"]["before_run"] == "2026-12-07T00:00:00+00:00"
    assert prov["derived"]["seeds"]["commit"] == "a"  # the command's own record, only marked
    assert cmd["seeds"] in capsys.readouterr().err
    text = provenance_banner(run)
    assert "Made beside an earlier run" in text and cmd["seeds"] in text and ":class: warning" in text
    prov["derived"]["seeds"] = {"commit": "b", "date": "2026-12-07", "command": cmd["seeds"]}  # the command reran
    prov["derived"]["clark"].pop("before_run")
    store.write_provenance(prov)
    assert "Made beside an earlier run" not in provenance_banner(store)
