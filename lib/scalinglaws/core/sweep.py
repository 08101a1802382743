"""Resumable sweeps: every unit of work is keyed by the hash of its config.

A unit (train one model, fine-tune one expert, merge one subset and evaluate it, ...) is a
pure function of its JSON config. Its output (a list of tidy rows) is written atomically to
`<work>/units/<study>/<profile>/<kind>/<key>.json` when it finishes. A rerun skips units whose
record exists, so a sweep killed at any point resumes to the same final table as an
uninterrupted one. Rows are returned in unit order, whatever order they finished in.

Backends: "local" (sequential, the default) and "ray" (optional extra: `pip install -e .[ray]`),
which runs pending units as Ray tasks and writes their records from the driver.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from scalinglaws.core.paths import work_root
from scalinglaws.core.results import atomic_write_json, config_hash
from scalinglaws.core.validation import ParameterError, check_choice

BACKENDS = ("local", "ray")


@dataclass(frozen=True)
class Unit:
    kind: str
    config: dict = field(hash=False)

    @property
    def key(self) -> str:
        return config_hash({"kind": self.kind, **self.config})


class Sweep:
    """The unit records of one study at one profile."""

    def __init__(self, study: str, profile: str, root: Path | None = None):
        self.dir = Path(root or work_root()) / "units" / study / profile

    def record_path(self, unit: Unit) -> Path:
        return self.dir / unit.kind / f"{unit.key}.json"

    def done(self, unit: Unit) -> bool:
        return self.record_path(unit).exists()

    def load(self, unit: Unit) -> dict:
        return json.loads(self.record_path(unit).read_text())

    def _save(self, unit: Unit, rows: list[dict], wall_s: float) -> dict:
        rec = {"key": unit.key, "kind": unit.kind, "config": unit.config, "rows": rows,
               "wall_s": round(wall_s, 3)}
        atomic_write_json(self.record_path(unit), rec)
        return rec

    def run(self, units: Sequence[Unit], fn: Callable[[dict], list[dict] | dict],
            backend: str = "local", desc: str | None = None, checkpoints: bool = False) -> list[dict]:
        """Run `fn(unit.config)` for every unit not yet done; return all records in unit order.
        With `checkpoints=True` the unit's product is its checkpoint (`checkpoint_dir(unit)`): a
        unit whose record exists but whose checkpoint was deleted is run again."""
        check_choice("backend", backend, BACKENDS)
        keys = [u.key for u in units]
        if len(set(keys)) != len(keys):
            raise ParameterError("sweep has duplicate units (identical configs)")
        if checkpoints:
            for u in units:
                if self.done(u) and not (checkpoint_dir(u) / "config.json").exists():
                    self.record_path(u).unlink()
        pending = [u for u in units if not self.done(u)]
        if pending:
            if backend == "local":
                for u in tqdm(pending, desc=desc or f"{units[0].kind} units", leave=False):
                    t0 = time.perf_counter()
                    self._save(u, _as_rows(fn(u.config)), time.perf_counter() - t0)
            else:
                self._run_ray(pending, fn)
        return [self.load(u) for u in units]

    def _run_ray(self, pending: Sequence[Unit], fn) -> None:
        try:
            import ray
        except ImportError as e:  # pragma: no cover - depends on the optional extra
            raise ParameterError("backend='ray' needs the optional extra: pip install -e .[ray]") from e
        started_here = not ray.is_initialized()
        if started_here:
            ray.init(include_dashboard=False, log_to_driver=False)
        try:
            remote = ray.remote(_timed_call)
            futures = {remote.remote(fn, u.config): u for u in pending}
            waiting = list(futures)
            while waiting:  # save each as it finishes: a killed driver keeps what was done
                ready, waiting = ray.wait(waiting, num_returns=1)
                rows, wall = ray.get(ready[0])
                self._save(futures[ready[0]], _as_rows(rows), wall)
        finally:
            if started_here:
                ray.shutdown()

    def table(self, units: Sequence[Unit], config_columns: Sequence[str] = ()) -> pd.DataFrame:
        """Concatenate the rows of finished units, prefixed by the chosen config columns."""
        frames = []
        for u in units:
            rec = self.load(u)
            df = pd.DataFrame(rec["rows"])
            for c in reversed([c for c in config_columns if c not in df.columns]):
                df.insert(0, c, [u.config[c]] * len(df))
            frames.append(df)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def checkpoint_dir(unit: Unit) -> Path:
    """Where a unit that trains a model keeps its checkpoint (scratch space, regenerable)."""
    return work_root() / "checkpoints" / unit.kind / f"{unit.config.get('size', 'model')}-{unit.key}"


def find_checkpoint(key: str) -> Path:
    """The checkpoint written by the unit with this key, whatever its kind."""
    found = sorted((work_root() / "checkpoints").glob(f"*/*-{key}"))
    if not found:
        raise FileNotFoundError(f"no checkpoint with unit key {key} under {work_root() / 'checkpoints'}")
    return found[0]


def _timed_call(fn, config):
    t0 = time.perf_counter()
    out = fn(config)
    return out, time.perf_counter() - t0


def _as_rows(out) -> list[dict]:
    if isinstance(out, dict):
        return [out]
    return list(out)
