"""Resumable sweeps: every unit of work is keyed by the hash of its config.

A unit (train one model, fine-tune one expert, merge one subset and evaluate it, ...) is a
pure function of its JSON config. Its output (a list of tidy rows) is written atomically to
`<work>/units/<study>/<profile>/<kind>/<key>.json` when it finishes. A rerun skips units whose
record exists, so a sweep killed at any point resumes to the same final table as an
uninterrupted one. Rows are returned in unit order, whatever order they finished in.

Backends: "local" (sequential, the default) and "ray" (optional extra: `pip install -e .[ray]`),
which runs pending units as Ray tasks and writes their records from the driver.

Faults beyond a kill: a record that does not parse, lacks a field or belongs to another unit
(truncated, corrupted, edited) is reported with a warning, deleted and its unit redone; a second
process running the same study and profile on the same root is refused (`SweepBusy`, one line)
while the first holds the sweep's lock (`fcntl.flock` on `<dir>/.lock`); a unit that raises
(a diverging run: `TrainingDiverged` on a NaN loss) leaves `<kind>/<key>.failed.json` naming the
unit, its config and the error, and the error is re-raised naming the unit.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tqdm import tqdm  # not tqdm.auto: in a notebook it warns without ipywidgets, and the warning lands in the book

from scalinglaws.core.paths import work_root
from scalinglaws.core.results import atomic_write_json, config_hash
from scalinglaws.core.validation import BACKENDS, ParameterError, check_choice


@dataclass(frozen=True)
class Unit:
    kind: str
    config: dict = field(hash=False)

    @property
    def key(self) -> str:
        return config_hash({"kind": self.kind, **self.config})


RECORD_KEYS = ("key", "kind", "config", "rows", "wall_s")


class SweepBusy(RuntimeError):
    """Another process holds this sweep's lock (same study, profile and work root)."""


class UnitFailed(RuntimeError):
    """A unit raised; its failure record names the unit and its config."""


_HELD: dict[str, tuple[int, int]] = {}  # lock path -> (fd, depth): the lock is re-entrant per process


class Sweep:
    """The unit records of one study at one profile."""

    def __init__(self, study: str, profile: str, root: Path | None = None):
        self.dir = Path(root or work_root()) / "units" / study / profile

    def record_path(self, unit: Unit) -> Path:
        return self.dir / unit.kind / f"{unit.key}.json"

    def failure_path(self, unit: Unit) -> Path:
        return self.dir / unit.kind / f"{unit.key}.failed.json"

    @contextlib.contextmanager
    def lock(self):
        """Hold this sweep's lock: a second process on the same sweep gets SweepBusy at once
        (re-entrant within a process, so a study may hold it around several `run` calls)."""
        path = str(self.dir / ".lock")
        if path in _HELD:
            fd, depth = _HELD[path]
            _HELD[path] = (fd, depth + 1)
        else:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise SweepBusy(f"another process is running this sweep ({self.dir}, lock {path}); "
                                "wait for it to finish, then rerun (finished units are reused)") from None
            _HELD[path] = (fd, 1)
        try:
            yield
        finally:
            fd, depth = _HELD[path]
            if depth == 1:
                del _HELD[path]
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
            else:
                _HELD[path] = (fd, depth - 1)

    def _read_valid(self, unit: Unit) -> dict | None:
        """The unit's record if it exists and is sound; a bad one is reported, deleted, None."""
        p = self.record_path(unit)
        try:
            text = p.read_text()
        except FileNotFoundError:
            return None
        try:
            rec = json.loads(text)
            if not isinstance(rec, dict):
                raise ValueError("not a JSON object")
            missing = [k for k in RECORD_KEYS if k not in rec]
            if missing:
                raise ValueError(f"missing field(s) {missing}")
            if rec["key"] != unit.key or rec["kind"] != unit.kind:
                raise ValueError(f"record of {rec['kind']}/{rec['key']}, expected {unit.kind}/{unit.key}")
            if not isinstance(rec["rows"], list):
                raise ValueError("rows is not a list")
        except (ValueError, TypeError) as err:
            warnings.warn(f"corrupted unit record {p} ({type(err).__name__}: {err}); deleted, the unit "
                          "will be redone", RuntimeWarning, stacklevel=3)
            p.unlink(missing_ok=True)
            return None
        return rec

    def done(self, unit: Unit) -> bool:
        return self._read_valid(unit) is not None

    def load(self, unit: Unit) -> dict:
        rec = self._read_valid(unit)
        if rec is None:
            raise FileNotFoundError(f"no valid record for unit {unit.kind}/{unit.key} under {self.dir}; "
                                    "rerun the study to redo it")
        return rec

    def _save(self, unit: Unit, rows: list[dict], wall_s: float) -> dict:
        rec = {"key": unit.key, "kind": unit.kind, "config": unit.config, "rows": rows,
               "wall_s": round(wall_s, 3)}
        atomic_write_json(self.record_path(unit), rec)
        self.failure_path(unit).unlink(missing_ok=True)  # an earlier failure of it is history
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
        if not units:
            return []
        with self.lock():
            return self._run_locked(units, fn, backend, desc, checkpoints)

    def _run_locked(self, units, fn, backend, desc, checkpoints) -> list[dict]:
        if checkpoints:
            for u in units:
                if self.done(u) and not (checkpoint_dir(u) / "config.json").exists():
                    self.record_path(u).unlink()
        pending = [u for u in units if not self.done(u)]
        if pending:
            if backend == "local":
                for u in tqdm(pending, desc=desc or f"{units[0].kind} units", leave=False):
                    t0 = time.perf_counter()
                    try:
                        out = fn(u.config)
                    except Exception as err:
                        self._fail(u, err, time.perf_counter() - t0)
                    self._save(u, _as_rows(out), time.perf_counter() - t0)
            else:
                self._run_ray(pending, fn)
        return [self.load(u) for u in units]

    def _fail(self, unit: Unit, err: BaseException, wall_s: float):
        """Record a failed unit (what ran, with which config, what went wrong) and raise."""
        path = self.failure_path(unit)
        atomic_write_json(path, {"key": unit.key, "kind": unit.kind, "config": unit.config,
                                 "error": f"{type(err).__name__}: {err}", "wall_s": round(wall_s, 3),
                                 "traceback": traceback.format_exception(type(err), err, err.__traceback__)})
        size = f" size={unit.config['size']}" if isinstance(unit.config, dict) and "size" in unit.config else ""
        raise UnitFailed(f"unit {unit.kind}/{unit.key}{size} failed ({type(err).__name__}: {err}); "
                         f"its config and traceback are in {path}") from err

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
                try:
                    rows, wall = ray.get(ready[0])
                except Exception as err:  # the task's own error, re-raised by ray
                    self._fail(futures[ready[0]], getattr(err, "cause", None) or err, 0.0)
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
