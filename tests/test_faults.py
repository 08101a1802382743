"""Faults beyond SIGKILL: corrupted records and tables, two processes on one sweep, a full disk,
a diverging unit."""
import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from scalinglaws.cli import main
from scalinglaws.core import results as R
from scalinglaws.core.results import CorruptTable, ResultStore
from scalinglaws.core.sweep import Sweep, SweepBusy, Unit, UnitFailed

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import sweep_worker  # noqa: E402


def _run(root, n, log):
    os.environ["SWEEP_TEST_LOG"] = str(log)
    sw = Sweep("toy", "smoke", root=root)
    us = sweep_worker.units(n)
    recs = sw.run(us, sweep_worker.unit_fn)
    return sw, us, recs


def _ran(log):
    return [int(x) for x in Path(log).read_text().split()] if Path(log).exists() else []


@pytest.mark.parametrize("spoil", [
    lambda p: p.write_text(p.read_text()[: len(p.read_text()) // 2]),       # truncated
    lambda p: p.write_bytes(b"\x00\x01garbage"),                             # corrupted
    lambda p: p.write_text("[]"),                                            # not an object
    lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "key": "0" * 16})),  # another unit's
    lambda p: p.write_text(json.dumps({k: v for k, v in json.loads(p.read_text()).items() if k != "rows"})),
    lambda p: p.write_bytes(b"\xff" + p.read_bytes()[1:]),                  # not UTF-8 (one byte 0xFF)
    lambda p: p.write_text(json.dumps({**json.loads((p.parent / f"{Unit('toy', {'i': 0}).key}.json").read_text()),
                                       "key": json.loads(p.read_text())["key"]})),  # a foreign record, key edited
    lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "rows": [1, 2]})),  # rows not objects
], ids=["truncated", "garbage", "not-object", "wrong-key", "missing-rows", "not-utf8", "foreign-key-edited",
        "rows-not-objects"])
def test_bad_record_is_reported_deleted_and_redone(tmp_path, spoil):
    log = tmp_path / "log"
    sw, us, ref = _run(tmp_path / "root", 6, log)
    spoil(sw.record_path(us[3]))
    log.unlink()
    with pytest.warns(RuntimeWarning, match="corrupted unit record") as caught:
        _, _, again = _run(tmp_path / "root", 6, log)
    assert len([w for w in caught if "corrupted unit record" in str(w.message)]) == 1  # reported once
    assert _ran(log) == [3]  # only the bad unit is redone
    assert [r["rows"] for r in again] == [r["rows"] for r in ref]


def test_corrupted_result_table_is_named_and_rewritten(tmp_path):
    st = ResultStore("demo", "smoke", root=tmp_path)
    df = pd.DataFrame({"a": [1, 2, 3]})
    p = st.write("t", df)
    p.write_bytes(p.read_bytes()[:20])  # truncated
    with pytest.raises(CorruptTable, match=r"t\.parquet is unreadable.*reproduce demo --profile smoke"):
        st.read("t")
    st.write("t", df)  # a rerun rewrites every table
    pd.testing.assert_frame_equal(st.read("t"), df)


def test_full_disk_leaves_previous_tables_and_records_intact(tmp_path, monkeypatch):
    st = ResultStore("demo", "smoke", root=tmp_path)
    old = pd.DataFrame({"a": [1, 2, 3]})
    st.write("t", old)
    st.write_provenance({"x": 1})

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", full)
    with pytest.raises(OSError, match="No space"):
        st.write("t", pd.DataFrame({"a": [9]}))
    monkeypatch.setattr(R.os, "fsync", full)
    with pytest.raises(OSError, match="No space"):
        st.write_provenance({"x": 2})
    monkeypatch.undo()
    pd.testing.assert_frame_equal(st.read("t"), old)
    assert st.provenance() == {"x": 1}
    assert sorted(p.name for p in st.dir.iterdir()) == ["provenance.json", "t.parquet"]  # no temp files

    # a unit record: the failing write leaves no record, so the unit is redone next time
    sw = Sweep("toy", "smoke", root=tmp_path / "w")
    u = Unit("toy", {"i": 0})
    monkeypatch.setattr(R.os, "fsync", full)
    with pytest.raises(OSError):
        sw.run([u], lambda c: {"v": 1})
    monkeypatch.undo()
    assert not sw.done(u)
    assert sw.run([u], lambda c: {"v": 1})[0]["rows"] == [{"v": 1}]


def _diverge(config):
    from scalinglaws.training import TrainingDiverged
    if config["lr"] > 1:
        raise TrainingDiverged(7, float("nan"))
    return {"loss": 1.0}


def test_diverging_unit_leaves_a_record_naming_unit_and_config(tmp_path):
    sw = Sweep("toy", "smoke", root=tmp_path)
    good, bad = Unit("pretrain", {"size": "d16l1", "lr": 0.1}), Unit("pretrain", {"size": "d16l1", "lr": 10.0})
    with pytest.raises(UnitFailed, match=rf"pretrain/{bad.key} size=d16l1 failed \(TrainingDiverged"):
        sw.run([good, bad], _diverge)
    rec = json.loads(sw.failure_path(bad).read_text())
    assert rec["key"] == bad.key and rec["kind"] == "pretrain" and rec["config"] == bad.config
    assert "TrainingDiverged" in rec["error"] and "nan" in rec["error"].lower()
    assert sw.done(good) and not sw.done(bad)
    # fixed and rerun: the record of the failure goes, the unit's record comes
    sw.run([good], _diverge)
    assert sw.failure_path(bad).exists()


_HOLDER = """
import sys, time
from pathlib import Path
from scalinglaws.core.sweep import Sweep, Unit
sw = Sweep("toy", "smoke", root=Path(sys.argv[1]))
def slow(c):
    Path(sys.argv[2]).write_text("started")
    time.sleep(float(sys.argv[3]))
    return {"i": c["i"]}
sw.run([Unit("toy", {"i": i}) for i in range(2)], slow)
"""


def test_second_process_on_the_same_sweep_is_refused(tmp_path):
    root, flag = tmp_path / "root", tmp_path / "started"
    p = subprocess.Popen([sys.executable, "-c", _HOLDER, str(root), str(flag), "3"],
                         env={**os.environ}, stderr=subprocess.PIPE)
    try:
        t0 = time.time()
        while not flag.exists():
            assert p.poll() is None, p.stderr.read().decode()
            assert time.time() - t0 < 60
            time.sleep(0.05)
        sw = Sweep("toy", "smoke", root=root)
        with pytest.raises(SweepBusy, match="another process is running this sweep"):
            sw.run([Unit("toy", {"i": 0})], lambda c: {"i": -1})
    finally:
        assert p.wait(timeout=60) == 0, p.stderr.read().decode()
    # the first one's records are intact; once it is done the sweep is free again
    sw = Sweep("toy", "smoke", root=root)
    assert [r["rows"] for r in sw.run([Unit("toy", {"i": i}) for i in range(2)], lambda c: {"i": -1})] == \
        [[{"i": 0}], [{"i": 1}]]


def test_lock_is_reentrant_within_a_process(tmp_path):
    sw = Sweep("toy", "smoke", root=tmp_path)
    with sw.lock():
        assert sw.run([Unit("toy", {"i": 0})], lambda c: {"i": 0})[0]["rows"] == [{"i": 0}]


def test_cli_reports_a_busy_sweep_in_one_line(monkeypatch, capsys, scratch_roots):
    from scalinglaws.studies import cli as scli

    def busy(args):
        raise SweepBusy("another process is running this sweep (x); wait for it to finish")
    monkeypatch.setattr(scli, "_reproduce", busy)
    assert main(["reproduce", "testbed", "--profile", "smoke"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("error: another process") and len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------------------------------------
# issue 29: checkpoints, locks held for a whole run, roots, interrupts, provenance, progress


def _tiny_checkpoint_unit(config):
    """A unit whose product is a checkpoint: one safetensors file and a config.json."""
    from safetensors.torch import save_file
    import torch
    from scalinglaws.core.sweep import checkpoint_dir
    d = checkpoint_dir(Unit("train", config))
    d.mkdir(parents=True, exist_ok=True)
    save_file({"w": torch.arange(256, dtype=torch.float32)}, str(d / "model.safetensors"))
    (d / "config.json").write_text("{}")
    return {"size": config["size"]}


def _flip(path, n=64):
    data = bytearray(path.read_bytes())
    mid = len(data) - 2 * n  # inside the tensor data, the header intact
    data[mid:mid + n] = bytes(b ^ 0xFF for b in data[mid:mid + n])
    path.write_bytes(bytes(data))


def test_corrupted_checkpoint_is_refused_naming_file_and_unit_and_redone(tmp_path, monkeypatch):
    from scalinglaws.core.sweep import CorruptCheckpoint, checkpoint_dir, find_checkpoint
    from scalinglaws.models import load_unit_checkpoint
    monkeypatch.setenv("SCALINGLAWS_WORK", str(tmp_path))
    sw, u = Sweep("toy", "smoke"), Unit("train", {"size": "s1"})
    rec = sw.run([u], _tiny_checkpoint_unit, checkpoints=True)[0]
    weights = checkpoint_dir(u) / "model.safetensors"
    assert rec["checkpoint"] == {"model.safetensors": R.sha256_file(weights),  # recorded with the unit
                                 "config.json": R.sha256_file(checkpoint_dir(u) / "config.json")}
    assert find_checkpoint(u.key) == checkpoint_dir(u)
    _flip(weights)
    with pytest.raises(CorruptCheckpoint, match=rf"{weights}.* unit train/{u.key} .*rerun"):
        find_checkpoint(u.key)
    assert not sw.record_path(u).exists()  # so the unit is redone on rerun
    with pytest.raises(CorruptCheckpoint):  # the loader every study uses goes through the same check
        load_unit_checkpoint(u.key)
    sw.run([u], _tiny_checkpoint_unit, checkpoints=True)
    assert find_checkpoint(u.key) == checkpoint_dir(u)
    # the owning sweep checks its own done checkpoints too, before anything loads them
    _flip(weights)
    with pytest.raises(CorruptCheckpoint, match=f"unit train/{u.key}"):
        sw.run([u], _tiny_checkpoint_unit, checkpoints=True)
    assert sw.run([u], _tiny_checkpoint_unit, checkpoints=True)[0]["rows"] == [{"size": "s1"}]
    (checkpoint_dir(u) / "config.json").write_text('{"edited": 1}')  # the architecture is vouched for too
    with pytest.raises(CorruptCheckpoint, match="config.json"):
        find_checkpoint(u.key)
    # a record made before hashes were recorded gets them on first use, then guards like the others
    sw.run([u], _tiny_checkpoint_unit, checkpoints=True)
    old = {k: v for k, v in json.loads(sw.record_path(u).read_text()).items() if k != "checkpoint"}
    sw.record_path(u).write_text(json.dumps(old))
    assert find_checkpoint(u.key) == checkpoint_dir(u)
    assert json.loads(sw.record_path(u).read_text())["checkpoint"]["model.safetensors"] == R.sha256_file(weights)


def test_corrupted_provenance_is_named_not_a_traceback(tmp_path):
    st = ResultStore("demo", "smoke", root=tmp_path)
    st.write_provenance({"commit": "x"})
    (st.dir / "provenance.json").write_bytes(b'{"commit": "\xff')
    with pytest.raises(CorruptTable, match=r"provenance .*provenance\.json is unreadable.*reproduce demo"):
        st.provenance()


def test_whole_run_lock_covers_dependencies_and_names_the_holder(scratch_roots):
    """A run of merging holds testbed's lock too (it trains missing bases); a second process asking for
    testbed, or for a study that needs testbed (della), is refused, told who holds it and why it needs it."""
    from scalinglaws.studies import hold
    _, work = scratch_roots
    flag = work.parent / "held"
    code = ("import sys, time\nfrom pathlib import Path\nfrom scalinglaws.studies import hold\n"
            "with hold('merging', 'smoke'):\n    Path(sys.argv[1]).write_text('x'); time.sleep(60)\n")
    p = subprocess.Popen([sys.executable, "-c", code, str(flag)], stderr=subprocess.PIPE)
    try:
        t0 = time.time()
        while not flag.exists():
            assert p.poll() is None, p.stderr.read().decode()
            assert time.time() - t0 < 60
            time.sleep(0.05)
        with pytest.raises(SweepBusy, match=f"testbed at profile smoke: pid {p.pid}, a run of merging"):
            with hold("testbed", "smoke"):
                pass
        with pytest.raises(SweepBusy, match=f"pid {p.pid}, a run of merging.*della needs it because it depends "
                                            "on testbed"):
            with hold("della", "smoke"):
                pass
    finally:
        p.kill()
        p.wait()
    with hold("della", "smoke"):  # free once the holder is gone
        pass


def test_a_study_run_holds_its_lock_through_table_and_provenance_writes(scratch_roots, monkeypatch):
    from scalinglaws.core import sweep as SW
    from scalinglaws.studies import exclusive_run
    seen = []

    def run(profile, backend="local", **overrides):
        store = ResultStore("testbed", profile)
        store.write("t", pd.DataFrame({"a": [1]}))
        seen.append(sorted(Path(p).parent.name for p in SW._HELD))  # held while the tables are written
        store.write_provenance({"x": 1})
        return store
    run.__module__ = "scalinglaws.studies.merging.study"
    exclusive_run(run)("smoke")
    assert seen == [["smoke", "smoke"]] and not SW._HELD  # merging's and testbed's; released after
    lock_dirs = sorted(p.parent.parent.name for p in scratch_roots[1].glob("units/*/smoke/.lock"))
    assert lock_dirs == ["merging", "testbed"]


def test_unwritable_or_full_roots_are_refused_before_compute(scratch_roots, monkeypatch, capsys):
    import shutil
    from scalinglaws import studies
    from scalinglaws.core.validation import ParameterError
    res, work = scratch_roots
    real_access = os.access
    monkeypatch.setattr(studies.os, "access", lambda p, m: False if str(p).startswith(str(res.parent)) and
                        "results" not in str(work) else real_access(p, m))
    with pytest.raises(ParameterError, match="results root .* is not writable"):
        studies.validate_run("testbed", "smoke")
    monkeypatch.setattr(studies.os, "access", real_access)
    usage = shutil.disk_usage(res.parent)
    monkeypatch.setattr(studies.shutil, "disk_usage", lambda p: usage._replace(free=20 * 2**20))
    with pytest.raises(ParameterError, match=r"work root .* has 20 MiB free; this run of testbed .* about [\d,]+ MiB"):
        studies.validate_run("testbed", "smoke")
    assert main(["reproduce", "testbed", "--profile", "smoke", "--no-notebook"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not res.exists() and not work.exists()  # nothing written, nothing computed


def test_a_disk_error_during_a_run_is_one_line_and_a_failure_record(scratch_roots, monkeypatch, capsys):
    from scalinglaws.studies import cli as scli, exclusive_run

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    def run(profile, backend="local", **overrides):
        ResultStore("testbed", profile).write("t", pd.DataFrame({"a": [1]}))
    run.__module__ = "scalinglaws.studies.testbed.study"
    monkeypatch.setattr(pd.DataFrame, "to_parquet", full)
    monkeypatch.setattr(scli, "_reproduce", lambda args: exclusive_run(run)(args.profile))
    assert main(["reproduce", "testbed", "--profile", "smoke"]) == 4
    err = capsys.readouterr().err
    assert err.startswith("error: the run of testbed at profile smoke stopped on a disk error (OSError: [Errno 28]")
    assert len(err.strip().splitlines()) == 1
    rec = json.loads((scratch_roots[1] / "units" / "testbed" / "smoke" / "run.failed.json").read_text())
    assert "No space left" in rec["error"]
    assert not list(scratch_roots[0].rglob("*.tmp"))  # the partial table is gone


def test_token_cache_partial_write_is_removed_and_a_bad_cache_is_a_miss(scratch_roots, monkeypatch):
    import numpy as np
    from scalinglaws.data import corpus
    _, work = scratch_roots

    def full(path, arr):
        Path(path).write_bytes(b"\x93NUMPY partial")
        raise OSError(errno.ENOSPC, "No space left on device")
    save = corpus.np.save
    monkeypatch.setattr(corpus.np, "save", full)
    with pytest.raises(OSError, match="No space"):
        corpus.token_ids("geometry", "val")
    assert list((work / "tokens").iterdir()) == []  # no partial .npy left for good
    monkeypatch.setattr(corpus.np, "save", save)
    ref = corpus.token_ids("geometry", "val")
    cache = next((work / "tokens").glob("geometry-val-*.npy"))
    cache.write_bytes(cache.read_bytes()[: cache.stat().st_size // 2])  # truncated
    with pytest.warns(RuntimeWarning, match=f"token cache {cache} is unreadable"):
        again = corpus.token_ids("geometry", "val")
    np.testing.assert_array_equal(again, ref)
    np.testing.assert_array_equal(np.load(cache), ref)  # rebuilt


_INTERRUPTIBLE = """
import argparse, sys, time
from pathlib import Path
import scalinglaws.cli as C
import scalinglaws.core.sweep as SW
SW.PROGRESS_EVERY_S = 0  # a line per unit
def slow(c):
    time.sleep(0.2 if c["i"] < 2 else 60)
    return {"i": c["i"]}
def parser():  # the real main() around a toy command: the study CLIs' imports would take most of the test
    p = argparse.ArgumentParser()
    p.add_subparsers(dest="command").add_parser("toy").set_defaults(func=lambda args: not SW.Sweep(
        "toy", "smoke", root=Path(sys.argv[1])).run([SW.Unit("toy", {"i": i}) for i in range(4)], slow, desc="toy units"))
    return p
C.build_parser = parser
raise SystemExit(C.main(["toy"]))
"""


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_interrupt_is_one_line_and_a_distinct_exit_code_and_resumes(tmp_path, sig):
    import signal
    root = tmp_path / "root"
    # SIGINT as a terminal sends it (a shell's background job starts with it ignored: undo that)
    p = subprocess.Popen([sys.executable, "-c", _INTERRUPTIBLE, str(root)], stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines = []
    try:
        for line in p.stderr:  # progress lines come as the run goes
            lines.append(line)
            if "2/4 units done" in line:
                break
        p.send_signal(getattr(signal, sig))
        rest = p.stderr.read()
        assert p.wait(timeout=60) == 130
    finally:
        p.kill()
    assert lines[0].startswith("toy@smoke toy units: 4 units, 0 already done, 4 to run")
    assert rest.strip() == "interrupted; finished units are kept, rerun to resume", rest
    sw = Sweep("toy", "smoke", root=root)
    assert [sw.done(Unit("toy", {"i": i})) for i in range(4)] == [True, True, False, False]


def test_untracked_code_marks_provenance_dirty(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    (repo / "lib").mkdir(parents=True)
    (repo / "lib" / "a.py").write_text("x = 1\n")
    (repo / ".gitignore").write_text("__pycache__/\n")
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "x"]):
        subprocess.run(git + cmd, cwd=repo, check=True)
    monkeypatch.setattr(R, "REPO_ROOT", repo)
    assert not R.git_commit().endswith("+dirty")
    (repo / "data" / "results").mkdir(parents=True)
    (repo / "data" / "results" / "t.parquet").write_text("")  # outputs are not code
    (repo / "lib" / "__pycache__").mkdir()
    (repo / "lib" / "__pycache__" / "a.pyc").write_text("")   # ignored files are not either
    assert not R.git_commit().endswith("+dirty")
    for where in ("lib/new_module.py", "notebooks/x.ipynb", "book/y.ipynb"):
        (repo / where).parent.mkdir(parents=True, exist_ok=True)
        (repo / where).write_text("")
        assert R.git_commit().endswith("+dirty"), where
        (repo / where).unlink()
