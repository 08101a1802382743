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
], ids=["truncated", "garbage", "not-object", "wrong-key", "missing-rows"])
def test_bad_record_is_reported_deleted_and_redone(tmp_path, spoil):
    log = tmp_path / "log"
    sw, us, ref = _run(tmp_path / "root", 6, log)
    spoil(sw.record_path(us[3]))
    log.unlink()
    with pytest.warns(RuntimeWarning, match="corrupted unit record"):
        _, _, again = _run(tmp_path / "root", 6, log)
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
