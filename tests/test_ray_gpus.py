"""Ray that schedules GPUs (issue 28), tested on a CPU: a cluster declared with 2 fake GPUs gives
concurrent units distinct CUDA_VISIBLE_DEVICES, and a 2-node cluster on one machine finishes a smoke
study whose units depend on each other's checkpoints, with units on both nodes."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from scalinglaws.core import sweep as SW
from scalinglaws.core.validation import ParameterError

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow  # Ray start-up: ~20 s a cluster on 2 cores
HERE = Path(__file__).parent
LIB = HERE.parent / "lib"


def _gpu_unit(config):
    """Holds its GPU until every unit of the test has started (a file barrier, 60 s at most), so the
    devices it reports were held at the same time."""
    barrier = Path(config["barrier"])
    (barrier / str(config["i"])).write_text(os.environ.get("CUDA_VISIBLE_DEVICES", ""))
    deadline = time.time() + 60
    while len(list(barrier.iterdir())) < config["n"] and time.time() < deadline:
        time.sleep(0.05)
    return {"i": config["i"], "cuda": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
            "together": len(list(barrier.iterdir())) == config["n"]}


def test_units_on_a_cluster_with_two_gpus_get_distinct_devices(tmp_path, monkeypatch):
    monkeypatch.setenv("SCALINGLAWS_WORK", str(tmp_path / "work"))
    ray.init(num_cpus=2, num_gpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": f"{LIB}:{HERE}"}})
    try:
        assert SW.ray_gpus() == 1.0
        (tmp_path / "barrier").mkdir()
        units = [SW.Unit("gpu", {"i": i, "n": 2, "barrier": str(tmp_path / "barrier")}) for i in range(2)]
        recs = SW.Sweep("toy", "smoke", root=tmp_path).run(units, _gpu_unit, backend="ray")
        rows = [r["rows"][0] for r in recs]
        assert all(r["together"] for r in rows)  # they held their GPUs at once
        assert sorted(r["cuda"] for r in rows) == ["0", "1"]
        monkeypatch.setenv(SW.RAY_GPUS_ENV, "0.5")  # fractional: two units share one device
        assert SW.ray_gpus() == 0.5
        monkeypatch.setenv(SW.RAY_GPUS_ENV, "1.5")
        with pytest.raises(ParameterError, match="SCALINGLAWS_RAY_GPUS"):
            SW.ray_gpus()
    finally:
        ray.shutdown()


def test_dependencies_are_read_from_configs():
    base = SW.Unit("base", {"size": "d1"})
    ft = SW.Unit("ft", {"base": base.key})
    other = SW.Unit("ft", {"base": "0" * 16})
    deps = SW._dependencies([ft, base, other])
    assert deps == {ft.key: {base.key}, base.key: set(), other.key: set()}


def test_a_two_node_cluster_finishes_a_smoke_study_on_both_nodes(tmp_path, monkeypatch):
    from ray.cluster_utils import Cluster

    from scalinglaws.studies import testbed
    results, work = tmp_path / "results", tmp_path / "work"
    monkeypatch.setenv("SCALINGLAWS_RESULTS", str(results))
    monkeypatch.setenv("SCALINGLAWS_WORK", str(work))
    env = {"PYTHONPATH": str(LIB), "SCALINGLAWS_RESULTS": str(results), "SCALINGLAWS_WORK": str(work),
           "OMP_NUM_THREADS": "1"}
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    try:
        ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": env})
        assert len([n for n in ray.nodes() if n["Alive"]]) == 2
        store = testbed.run("smoke", backend="ray")
        assert store.has("ladder") and store.provenance()
        recs = [json.loads(p.read_text()) for p in (work / "units" / "testbed" / "smoke").rglob("*.json")]
        nodes = {r.get("node") for r in recs if "node" in r}
        assert len(nodes) == 2, nodes  # units ran on both nodes
        kinds = {r["kind"] for r in recs}
        assert "pretrain" in kinds and len(kinds) > 1  # evaluations read the pretrain units' checkpoints
        # a node that cannot see the work root is refused, naming the root
        monkeypatch.setattr(SW, "_sees", lambda path, token: False)
        with pytest.raises(ParameterError, match="not visible from Ray node"):
            SW.check_shared_root(work)
    finally:
        ray.shutdown()
        cluster.shutdown()
