"""A sweep run as its own process, so a test can kill it (SIGKILL) part-way.

The log path and the per-unit delay come from the environment: they are not part of the units'
configs, so a resumed run (without the delay) has the same unit keys as the killed one."""
import hashlib
import os
import sys
import time
from pathlib import Path

from scalinglaws.core.sweep import Sweep, Unit


def unit_fn(config):
    with open(os.environ["SWEEP_TEST_LOG"], "a") as f:  # which units actually ran
        f.write(f"{config['i']}\n")
    time.sleep(float(os.environ.get("SWEEP_TEST_SLEEP", "0")))
    h = hashlib.sha256(str(config["i"]).encode()).hexdigest()
    return [{"j": j, "value": int(h[j:j + 6], 16) / 2**24} for j in range(3)]


def units(n):
    return [Unit("toy", {"i": i}) for i in range(n)]


if __name__ == "__main__":
    root, n = Path(sys.argv[1]), int(sys.argv[2])
    sw = Sweep("toy", "smoke", root=root)
    us = units(n)
    sw.run(us, unit_fn)
    sw.table(us, ["i"]).to_parquet(root / "final.parquet")
