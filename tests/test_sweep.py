import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from scalinglaws.core.sweep import Sweep, Unit
from scalinglaws.core.validation import ParameterError

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import sweep_worker  # noqa: E402


def _worker(root, n, log, sleep):
    env = {**os.environ, "SWEEP_TEST_LOG": str(log), "SWEEP_TEST_SLEEP": str(sleep)}
    return subprocess.Popen([sys.executable, str(HERE / "sweep_worker.py"), str(root), str(n)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_unit_key_is_stable_and_order_independent():
    a = Unit("train", {"size": "s", "seed": 1, "lr": 1e-3})
    b = Unit("train", {"lr": 1e-3, "seed": 1, "size": "s"})
    assert a.key == b.key
    assert a.key != Unit("eval", a.config).key != Unit("train", {**a.config, "seed": 2}).key


def test_killed_sweep_resumes_to_identical_table(tmp_path):
    n = 24
    # uninterrupted reference
    ref_root = tmp_path / "ref"
    p = _worker(ref_root, n, tmp_path / "ref.log", 0.0)
    assert p.wait(timeout=120) == 0, p.stderr.read().decode()
    ref = pd.read_parquet(ref_root / "final.parquet")

    root, log = tmp_path / "killed", tmp_path / "killed.log"
    p = _worker(root, n, log, 0.15)
    rec_dir = root / "units" / "toy" / "smoke" / "toy"
    deadline = time.time() + 60
    while time.time() < deadline and len(list(rec_dir.glob("*.json"))) < 6:
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    done_before = len(list(rec_dir.glob("*.json")))
    assert 6 <= done_before < n, "the kill must land part-way"
    assert not (root / "final.parquet").exists()

    p = _worker(root, n, log, 0.0)
    assert p.wait(timeout=120) == 0, p.stderr.read().decode()
    resumed = pd.read_parquet(root / "final.parquet")
    pd.testing.assert_frame_equal(resumed, ref)

    runs = [int(x) for x in log.read_text().split()]
    # finished units never rerun; at most the one unit in flight at the kill is redone
    assert len(runs) <= n + 1
    assert sorted(set(runs)) == list(range(n))
    assert not list(rec_dir.glob(".*.tmp")), "no temporary files left behind"


def test_sweep_skips_done_units(tmp_path, monkeypatch):
    log = tmp_path / "log"
    monkeypatch.setenv("SWEEP_TEST_LOG", str(log))
    sw = Sweep("toy", "smoke", root=tmp_path)
    us = sweep_worker.units(5)
    first = sw.run(us, sweep_worker.unit_fn)
    second = sw.run(us, sweep_worker.unit_fn)
    assert first == second
    assert len(log.read_text().split()) == 5


def test_duplicate_units_and_bad_backend_rejected(tmp_path):
    sw = Sweep("toy", "smoke", root=tmp_path)
    u = Unit("toy", {"i": 0})
    with pytest.raises(ParameterError, match="duplicate"):
        sw.run([u, Unit("toy", {"i": 0})], lambda c: {})
    with pytest.raises(ParameterError, match="backend"):
        sw.run([u], lambda c: {}, backend="slurm")
    assert not (tmp_path / "units").exists(), "nothing written on bad input"


def test_ray_backend_matches_local(tmp_path, monkeypatch, capfd):
    pytest.importorskip("ray")
    import ray
    log = tmp_path / "log"
    monkeypatch.setenv("SWEEP_TEST_LOG", str(log))
    us = sweep_worker.units(6)
    local = Sweep("toy", "smoke", root=tmp_path / "local")
    local.run(us, sweep_worker.unit_fn)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(HERE), "SWEEP_TEST_LOG": str(log)}})
    try:
        remote = Sweep("toy", "smoke", root=tmp_path / "ray")
        capfd.readouterr()
        remote.run(us, sweep_worker.unit_fn, backend="ray")
        err = capfd.readouterr().err  # the driver shows progress as the tasks finish, like the local backend
        assert "toy@smoke toy: 6 units, 0 already done, 6 to run" in err and "6/6 units done" in err
    finally:
        ray.shutdown()
    pd.testing.assert_frame_equal(local.table(us, ["i"]), remote.table(us, ["i"]))


def test_unit_whose_checkpoint_was_deleted_reruns(tmp_path, monkeypatch):
    import shutil

    from scalinglaws.core.sweep import checkpoint_dir, find_checkpoint
    monkeypatch.setenv("SCALINGLAWS_WORK", str(tmp_path))
    runs = []

    def fn(config):
        runs.append(config["size"])
        d = checkpoint_dir(Unit("train", config))
        d.mkdir(parents=True)
        (d / "config.json").write_text("{}")
        return {"ok": 1}

    sw = Sweep("toy", "smoke", root=tmp_path)
    u = Unit("train", {"size": "s1"})
    sw.run([u], fn, checkpoints=True)
    sw.run([u], fn, checkpoints=True)
    assert runs == ["s1"] and find_checkpoint(u.key) == checkpoint_dir(u)
    shutil.rmtree(checkpoint_dir(u))
    sw.run([u], fn, checkpoints=True)
    assert runs == ["s1", "s1"]
    with pytest.raises(FileNotFoundError):
        find_checkpoint("0" * 16)


def _threads_unit(config):
    import torch
    return [{"threads": torch.get_num_threads()}]


def test_a_local_unit_runs_on_one_torch_thread_as_a_ray_worker_does(tmp_path):
    """CPU numbers are bit-reproducible only for a fixed thread count: a local unit must not take
    torch's default (the core count), which would make local and Ray runs of one unit differ."""
    import torch

    from scalinglaws.core import sweep as SW
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        rec = SW.Sweep("t", "smoke", root=tmp_path).run([SW.Unit("x", {"a": 1})], _threads_unit)[0]
        assert rec["rows"][0]["threads"] == SW.UNIT_THREADS == 1
        assert torch.get_num_threads() == 2  # restored for the caller
    finally:
        torch.set_num_threads(before)
