"""Resumable sweeps: every unit of work is keyed by the hash of its config.

A unit (train one model, fine-tune one expert, merge one subset and evaluate it, ...) is a
pure function of its JSON config. Its output (a list of tidy rows) is written atomically to
`<work>/units/<study>/<profile>/<kind>/<key>.json` when it finishes. A rerun skips units whose
record exists, so a sweep killed at any point resumes to the same final table as an
uninterrupted one. Rows are returned in unit order, whatever order they finished in.

Backends: "local" (sequential, the default) and "ray" (optional extra: `pip install -e .[ray]`),
which runs pending units as Ray tasks and writes their records from the driver.

Faults beyond a kill: a record that is not UTF-8, does not parse, breaks the schema
(`RECORD_KEYS` and their types) or belongs to another unit (its kind and config must hash to its
key: a foreign record with an edited key is caught) is reported once with a warning, deleted and
its unit redone. A second process running the same study and profile on the same root is refused
(`SweepBusy`, one line naming the holder) while the first holds the sweep's lock (`fcntl.flock` on
`<dir>/.lock`, whose content says which study's run holds it). A unit that raises (a diverging
run: `TrainingDiverged` on a NaN loss) leaves `<kind>/<key>.failed.json` naming the unit, its
config and the error, and the error is re-raised naming the unit.

Checkpoints: a unit run with `checkpoints=True` records the sha256 of every `*.safetensors` file
(and of `config.json`) of its checkpoint in its record (`checkpoint`). `find_checkpoint(key)`, the one way a study reaches
a unit's checkpoint, checks those hashes first: a file that no longer matches (bit rot, an edit, a
partial copy) raises `CorruptCheckpoint` naming the file and the unit, and the unit's record is
removed so a rerun trains it again. A sweep checks its own done checkpoints the same way.

Ray: a unit asks for one GPU when the cluster has GPUs (`ray_gpus`; `SCALINGLAWS_RAY_GPUS=0.25`
packs small units four to a GPU), so an 8-GPU node runs 8 units at once, each on its own device; a
unit whose config names another pending unit's key (a fine-tune naming its base) is submitted after
that unit finished; on a cluster of several nodes the work root is checked first to be visible from
every node (`check_shared_root`). Each record of a Ray unit names the node that ran it (`node`).

Replay (`replaying()`, `SCALINGLAWS_REPLAY=1`): a sweep runs no unit; every unit must be recorded, and
a unit trained for its checkpoint is taken from its record although the checkpoint is gone
(`find_checkpoint` returns where it was: a study's `run` may name a base by its path). Combining
gpu lease parts (`studies.lease_plan.combine`) reruns a study's `run` this way on the union of the parts'
unit records, so its fits across sizes are those of one uninterrupted run, with no GPU and no weights.
A unit not recorded raises `NotRecorded` naming it.

Progress: every `run` prints plain lines to stderr (`<study>@<profile> <what>: done/total units,
elapsed, ~time left`), at its start and then at most every `PROGRESS_EVERY_S` seconds, so a long
run (or a notebook executed by `reproduce`, which streams them) shows where it is.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import os
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from scalinglaws.core.paths import results_root, work_root
from scalinglaws.core.results import atomic_write_json, config_hash, sha256_file
from scalinglaws.core.threads import torch_threads
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


class NotRecorded(RuntimeError):
    """Replay asked for a unit that no record holds (a lease part that did not run, or other overrides)."""


REPLAY_ENV = "SCALINGLAWS_REPLAY"


def replaying() -> bool:
    """Whether sweeps replay recorded units only (module doc, "Replay")."""
    return os.environ.get(REPLAY_ENV) == "1"


@contextlib.contextmanager
def replay():
    """Sweeps in this block (and in processes it starts) replay recorded units only."""
    before = os.environ.get(REPLAY_ENV)
    os.environ[REPLAY_ENV] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(REPLAY_ENV, None)
        else:
            os.environ[REPLAY_ENV] = before


class CorruptCheckpoint(RuntimeError):
    """A checkpoint file no longer matches the sha256 its unit recorded (or no record vouches for it)."""


PROGRESS_EVERY_S = 20.0  # at most one progress line per sweep call this often (and one at each end)
_REUSED_SAID: set = set()  # (label, units) of sweep calls whose units were all done, said once per process


_HELD: dict[str, tuple[int, int]] = {}  # lock path -> (fd, depth): the lock is re-entrant per process


class Sweep:
    """The unit records of one study at one profile."""

    def __init__(self, study: str, profile: str, root: Path | None = None):
        self.study, self.profile = study, profile
        self.dir = Path(root or work_root()) / "units" / study / profile

    def record_path(self, unit: Unit) -> Path:
        return self.dir / unit.kind / f"{unit.key}.json"

    def failure_path(self, unit: Unit) -> Path:
        return self.dir / unit.kind / f"{unit.key}.failed.json"

    @contextlib.contextmanager
    def lock(self, holder: str | None = None, why: str = ""):
        """Hold this sweep's lock: a second process on the same sweep gets SweepBusy at once
        (re-entrant within a process, so a study may hold it around several `run` calls, and a
        study's whole `run` holds it: `studies.exclusive_run`). `holder` (the study whose run takes
        it; default this sweep's study) is written into the lock file so that a refused process can
        say who holds it; `why` is added to its message (why the caller needs this sweep)."""
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
                info = _lock_info(fd)
                os.close(fd)
                who = (f"pid {info.get('pid', '?')}, a run of {info.get('holder', '?')} at profile "
                       f"{info.get('profile', '?')} since {info.get('since', '?')}") if info else "unknown holder"
                raise SweepBusy(f"another process is running this sweep ({self.study} at profile {self.profile}: "
                                f"{who}; lock {path}){'; ' + why if why else ''}; wait for it to finish, then "
                                "rerun (finished units are reused)") from None
            try:  # who holds it, for the message of a refused process (best effort: a full disk must not stop a run)
                blob = json.dumps({"pid": os.getpid(), "holder": holder or self.study, "profile": self.profile,
                                   "since": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")})
                os.ftruncate(fd, 0)
                os.pwrite(fd, blob.encode(), 0)
            except OSError:
                pass
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
        """The unit's record if it exists and is sound; a bad one is reported (once: it is
        deleted), and None returned. Sound: UTF-8, a JSON object with the fields and types of
        `RECORD_KEYS`, of this unit, whose kind and config hash to its key."""
        p = self.record_path(unit)
        try:
            data = p.read_bytes()
        except FileNotFoundError:
            return None
        try:
            rec = json.loads(data.decode("utf-8"))
            check_record(rec, unit)
        except (ValueError, TypeError, KeyError, AttributeError) as err:  # UnicodeDecodeError is a ValueError
            warnings.warn(f"corrupted unit record {p} ({type(err).__name__}: {' '.join(str(err).split())[:200]}); "
                          "deleted, the unit will be redone", RuntimeWarning, stacklevel=3)
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

    def _save(self, unit: Unit, rows: list[dict], wall_s: float, checkpoints: bool = False,
              node: str | None = None) -> dict:
        rec = {"key": unit.key, "kind": unit.kind, "config": unit.config, "rows": rows,
               "wall_s": round(wall_s, 3)}
        if node is not None:  # the Ray node that ran it (where its checkpoint was written)
            rec["node"] = node
        if checkpoints:
            rec["checkpoint"] = checkpoint_hashes(unit)
        atomic_write_json(self.record_path(unit), rec)
        self.failure_path(unit).unlink(missing_ok=True)  # an earlier failure of it is history
        return rec

    def run(self, units: Sequence[Unit], fn: Callable[[dict], list[dict] | dict],
            backend: str = "local", desc: str | None = None, checkpoints: bool = False) -> list[dict]:
        """Run `fn(unit.config)` for every unit not yet done; return all records in unit order.
        With `checkpoints=True` the unit's product is its checkpoint (`checkpoint_dir(unit)`): its
        sha256 goes into the record; a unit whose record exists but whose checkpoint was deleted is
        run again, and one whose checkpoint no longer matches its record raises CorruptCheckpoint
        (the record is removed, so a rerun redoes it)."""
        check_choice("backend", backend, BACKENDS)
        keys = [u.key for u in units]
        if len(set(keys)) != len(keys):
            raise ParameterError("sweep has duplicate units (identical configs)")
        if not units:
            return []
        with self.lock():
            return self._run_locked(units, fn, backend, desc, checkpoints)

    def _run_locked(self, units, fn, backend, desc, checkpoints) -> list[dict]:
        if replaying():  # records only: the checkpoints of a lease part never come back
            missing = [u for u in units if not self.done(u)]
            if missing:
                u = missing[0]
                size = f" size={u.config['size']}" if "size" in u.config else ""
                raise NotRecorded(f"{len(missing)} of {len(units)} {self.study}@{self.profile} {desc or u.kind} unit(s) "
                                  f"are not recorded under {self.dir} (first: {u.kind}/{u.key}{size}); replay reads "
                                  "recorded units only: run the lease part that trains them")
            return [self.load(u) for u in units]
        if checkpoints:
            for u in units:
                rec = self._read_valid(u)
                if rec is None:
                    continue
                if not (checkpoint_dir(u) / "config.json").exists():
                    self.record_path(u).unlink()
                else:
                    _verify(checkpoint_dir(u), [(self.record_path(u), rec)])
        pending = [u for u in units if not self.done(u)]
        label = f"{self.study}@{self.profile} {desc or units[0].kind}"
        if not pending and (label, len(units)) not in _REUSED_SAID:  # once: studies ask for the same bases often
            _REUSED_SAID.add((label, len(units)))
            print(f"{label}: {len(units)} units, all already done", file=sys.stderr, flush=True)
        if pending:
            progress = Progress(label, len(units), len(units) - len(pending))
            if backend == "local":
                for u in pending:
                    t0 = time.perf_counter()
                    try:
                        with torch_threads(UNIT_THREADS):
                            out, wall = _run_timed(fn, u.config)
                    except Exception as err:
                        self._fail(u, err, time.perf_counter() - t0)
                    self._save(u, _as_rows(out), wall, checkpoints)
                    progress.step()
            else:
                self._run_ray(pending, fn, checkpoints, progress)
        return [self.load(u) for u in units]

    def _fail(self, unit: Unit, err: BaseException, wall_s: float):
        """Record a failed unit (what ran, with which config, what went wrong) and raise. On a
        full or read-only disk the record itself may not be writable: the error then says so."""
        path = self.failure_path(unit)
        try:
            atomic_write_json(path, {"key": unit.key, "kind": unit.kind, "config": unit.config,
                                     "error": f"{type(err).__name__}: {err}", "wall_s": round(wall_s, 3),
                                     "traceback": traceback.format_exception(type(err), err, err.__traceback__)})
            where = f"its config and traceback are in {path}"
        except OSError as werr:
            where = f"its failure record could not be written either ({type(werr).__name__}: {werr})"
        size = f" size={unit.config['size']}" if isinstance(unit.config, dict) and "size" in unit.config else ""
        msg = " ".join(str(err).split())[:400]
        raise UnitFailed(f"unit {unit.kind}/{unit.key}{size} failed ({type(err).__name__}: {msg}); {where}") from err

    def _run_ray(self, pending: Sequence[Unit], fn, checkpoints: bool = False, progress=None) -> None:
        """Pending units as Ray tasks (module doc, "Ray"): one GPU each on a cluster with GPUs
        (`ray_gpus`), a unit whose config names another pending unit's key after that unit, and the
        work root checked first to be one that every node sees."""
        try:
            import ray
        except ImportError as e:  # pragma: no cover - depends on the optional extra
            raise ParameterError("backend='ray' needs the optional extra: pip install -e .[ray]") from e
        started_here = not ray.is_initialized()
        if started_here:
            ray.init(include_dashboard=False, log_to_driver=False, address=os.environ.get("RAY_ADDRESS"))
        try:
            check_shared_root(work_root())
            remote = ray.remote(_timed_call).options(num_gpus=ray_gpus())
            needs = _dependencies(pending)
            done: set[str] = set()
            futures: dict = {}
            queued = list(pending)
            while queued or futures:
                for u in [u for u in queued if needs[u.key] <= done]:
                    futures[remote.remote(fn, u.config)] = u
                    queued.remove(u)
                if not futures:
                    raise RuntimeError(f"units wait on each other in a cycle: {[u.key for u in queued]}")
                ready, _ = ray.wait(list(futures), num_returns=1)
                unit = futures.pop(ready[0])
                try:  # save each as it finishes: a killed driver keeps what was done
                    rows, wall, *node = ray.get(ready[0])  # node: absent from a worker of older code
                except Exception as err:  # the task's own error, re-raised by ray
                    self._fail(unit, getattr(err, "cause", None) or err, 0.0)
                rec = self._save(unit, _as_rows(rows), wall, checkpoints, node=node[0] if node else None)
                done.add(rec["key"])
                if progress is not None:
                    progress.step()
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


def _lock_info(fd: int) -> dict:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode("utf-8") or "{}")
        return info if isinstance(info, dict) else {}
    except (OSError, ValueError):
        return {}


def check_record(rec, unit: Unit | None = None) -> None:
    """Raise ValueError/TypeError unless `rec` is a sound unit record (of `unit`, when given): the
    fields of RECORD_KEYS with their types, rows a list of objects, and kind + config hashing to
    key (a record copied from another unit with its key edited fails here)."""
    if not isinstance(rec, dict):
        raise ValueError("not a JSON object")
    missing = [k for k in RECORD_KEYS if k not in rec]
    if missing:
        raise ValueError(f"missing field(s) {missing}")
    if not isinstance(rec["key"], str) or not isinstance(rec["kind"], str):
        raise TypeError("key and kind must be strings")
    if not isinstance(rec["config"], dict):
        raise TypeError("config is not an object")
    if not isinstance(rec["rows"], list) or not all(isinstance(r, dict) for r in rec["rows"]):
        raise ValueError("rows is not a list of objects")
    if isinstance(rec["wall_s"], bool) or not isinstance(rec["wall_s"], (int, float)):
        raise TypeError("wall_s is not a number")
    if unit is not None and (rec["key"] != unit.key or rec["kind"] != unit.kind):
        raise ValueError(f"record of {rec['kind']}/{rec['key']}, expected {unit.kind}/{unit.key}")
    actual = config_hash({"kind": rec["kind"], **rec["config"]})
    if actual != rec["key"]:
        raise ValueError(f"its kind and config hash to {actual}, not to its key {rec['key']} (a record of "
                         "another unit)")
    ck = rec.get("checkpoint")
    if ck is not None and not (isinstance(ck, dict) and all(isinstance(v, str) and len(v) == 64
                                                              for v in ck.values())):
        raise ValueError("checkpoint is not a {file: sha256} object")


class Progress:
    """Plain progress lines on stderr for one sweep call: `label: done/total units (reused),
    elapsed, ~left`, the time left estimated from the mean wall time of the units run so far."""

    def __init__(self, label: str, total: int, reused: int, every_s: float | None = None, stream=None):
        self.label, self.total, self.reused = label, total, reused
        self.every_s = PROGRESS_EVERY_S if every_s is None else every_s
        self.stream = stream
        self.ran = 0
        self.t0 = self.last = time.perf_counter()
        self._say(f"{total} units, {reused} already done, {total - reused} to run")

    def _say(self, text: str) -> None:
        print(f"{self.label}: {text}", file=self.stream or sys.stderr, flush=True)

    def step(self) -> None:
        self.ran += 1
        now = time.perf_counter()
        todo = self.total - self.reused
        if self.ran < todo and now - self.last < self.every_s:
            return
        self.last = now
        elapsed = now - self.t0
        left = elapsed / self.ran * (todo - self.ran)
        self._say(f"{self.reused + self.ran}/{self.total} units done, {_duration(elapsed)} elapsed"
                  + (f", ~{_duration(left)} left" if self.ran < todo else ""))


def _duration(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def checkpoint_dir(unit: Unit) -> Path:
    """Where a unit that trains a model keeps its checkpoint (scratch space, regenerable)."""
    return work_root() / "checkpoints" / unit.kind / f"{unit.config.get('size', 'model')}-{unit.key}"


def _hashed_files(d: Path) -> list[Path]:
    """The files of a checkpoint folder its record vouches for: the weights and the architecture."""
    return sorted([*d.glob("*.safetensors"), *d.glob("config.json")])


def checkpoint_hashes(unit: Unit) -> dict[str, str]:
    """{file name: sha256} of the weights (`*.safetensors`) and `config.json` of a unit's checkpoint,
    for its record."""
    d = checkpoint_dir(unit)
    return {p.name: sha256_file(p) for p in _hashed_files(d)} if d.is_dir() else {}


_VERIFIED: dict[str, tuple] = {}  # file -> (inode, size, mtime) when it last matched its record


def _verify(path: Path, records: list[tuple[Path, dict]]) -> None:
    """Check every weights file of the checkpoint folder `path` against the sha256 its unit's
    records hold. A record made before hashes were recorded gets them now (trust on first use).
    A mismatch removes the records (so a rerun redoes the unit) and raises CorruptCheckpoint."""
    kind, key = path.parent.name, path.name.rsplit("-", 1)[-1]
    files = _hashed_files(path)
    for rec_path, rec in records:
        want = rec.get("checkpoint")
        if want is None:  # an older record: vouch for what is there now, once
            try:
                atomic_write_json(rec_path, {**rec, "checkpoint": {p.name: sha256_file(p) for p in files}})
            except OSError:
                pass
            continue
        for p in files:
            st = p.stat()
            sig = (st.st_ino, st.st_size, st.st_mtime_ns)
            if _VERIFIED.get(str(p)) == sig and p.name in want:
                continue
            got = sha256_file(p)
            if p.name not in want and p.name == "config.json":  # recorded before configs were hashed
                continue
            if want.get(p.name) != got:
                for r, _ in records:
                    r.unlink(missing_ok=True)
                why = ("is not listed in" if p.name not in want else
                       f"has sha256 {got[:16]}..., not the {want[p.name][:16]}... recorded in")
                raise CorruptCheckpoint(f"checkpoint file {p} of unit {kind}/{key} {why} its unit record "
                                        f"{rec_path}; the record is removed: rerun to train the unit again")
            _VERIFIED[str(p)] = sig
        gone = sorted(set(want) - {p.name for p in files})
        if gone:
            for r, _ in records:
                r.unlink(missing_ok=True)
            raise CorruptCheckpoint(f"checkpoint {path} of unit {kind}/{key} lacks {gone}, recorded in {rec_path}; "
                                    "the record is removed: rerun to train the unit again")


def find_checkpoint(key: str) -> Path:
    """The checkpoint written by the unit with this key, whatever its kind, after checking its
    weights against the sha256 in the unit's record (the one way studies reach a checkpoint:
    `models.load_unit_checkpoint` loads through it). Raises FileNotFoundError when there is none,
    CorruptCheckpoint when its files no longer match or no unit record vouches for it."""
    found = sorted((work_root() / "checkpoints").glob(f"*/*-{key}"))
    if not found and replaying():  # where it was: a replayed run names checkpoints by key, never loads one
        for rp in sorted((work_root() / "units").glob(f"*/*/*/{key}.json")):
            rec = json.loads(rp.read_bytes().decode("utf-8"))
            check_record(rec)
            return checkpoint_dir(Unit(rec["kind"], rec["config"]))
    if not found:
        raise FileNotFoundError(f"no checkpoint with unit key {key} under {work_root() / 'checkpoints'}")
    path = found[0]
    kind = path.parent.name
    records = []
    # a unit's record lives in the scratch tree (.work/units/<study>/<profile>/) or, for sweeps that
    # commit their records beside the tables (routing's unit_records="results", the seeds runs), in
    # <results>/<study>/<profile>/units/: either vouches for the checkpoint
    candidates = [*(work_root() / "units").glob(f"*/*/{kind}/{key}.json"),
                  *results_root().glob(f"*/*/units/{kind}/{key}.json")]
    for rp in sorted(candidates):
        try:
            rec = json.loads(rp.read_bytes().decode("utf-8"))
            check_record(rec)
        except (OSError, ValueError, TypeError, KeyError):
            continue  # the owning sweep reports and redoes a bad record
        if rec["key"] == key:
            records.append((rp, rec))
    if not records:
        raise CorruptCheckpoint(f"checkpoint {path} has no sound unit record ({kind}/{key}.json under "
                                f"{work_root() / 'units'} or {results_root()}/*/*/units) to check it against; "
                                "rerun the study that trains it")
    _verify(path, records)
    return path


# Seconds the running unit spent in earlier processes: a training resumed from its saved state
# (`training.train(resume=...)`) credits what it had trained before it was killed, so the unit's record
# counts all its time, not only the last process's (the parts' cost figures are rates over wall_s).
_earlier_s = 0.0


def credit_earlier_time(seconds: float) -> None:
    """Add `seconds` spent on the running unit by a process that was killed (see `_earlier_s`)."""
    global _earlier_s
    _earlier_s += float(seconds)


def _run_timed(fn, config) -> tuple:
    """`fn(config)` and the unit's wall time: this process's plus what earlier ones credited."""
    global _earlier_s
    _earlier_s = 0.0
    t0 = time.perf_counter()
    out = fn(config)
    return out, time.perf_counter() - t0 + _earlier_s


def _timed_call(fn, config):
    import ray
    out, wall = _run_timed(fn, config)
    return out, wall, ray.get_runtime_context().get_node_id()


# One torch intra-op thread per unit, on either backend: a Ray worker gets OMP_NUM_THREADS=1 from
# Ray, and CPU results are bit-reproducible only for a fixed thread count (`core.threads`), so a
# local run must not take torch's default (the machine's core count) or the same unit would give
# other numbers on another machine or backend. Parallelism comes from running units side by side.
UNIT_THREADS = 1


# ----------------------------------------------------------------------------- Ray on GPUs and clusters
RAY_GPUS_ENV = "SCALINGLAWS_RAY_GPUS"


def ray_gpus() -> float:
    """GPUs one unit asks Ray for: `SCALINGLAWS_RAY_GPUS` when set (a fraction in (0, 1] packs small
    units several to a GPU, e.g. 0.25: four d96l6 units per H100), else 1 on a cluster with GPUs (Ray
    then gives each task its own `CUDA_VISIBLE_DEVICES`) and 0 on one without."""
    import ray
    env = os.environ.get(RAY_GPUS_ENV)
    if env:
        try:
            value = float(env)
        except ValueError:
            value = -1.0
        if not (0 < value <= 1 or (value > 1 and value.is_integer())):
            raise ParameterError(f"{RAY_GPUS_ENV}={env!r} must be a fraction in (0, 1] or a whole number of GPUs")
        return value
    return 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0


def _dependencies(units: Sequence[Unit]) -> dict[str, set[str]]:
    """{key: keys of the other units in `units` that its config names} (e.g. a fine-tune naming its
    base's key): those run first, so a checkpoint exists before the unit that loads it starts."""
    keys = {u.key for u in units}
    out = {}
    for u in units:
        text = json.dumps(u.config, sort_keys=True, default=str)
        out[u.key] = {k for k in keys if k != u.key and k in text}
    return out


def _sees(path: str, token: str) -> bool:
    try:
        return Path(path).read_text() == token
    except OSError:
        return False


def check_shared_root(root: Path) -> None:
    """Every alive Ray node must see the work root (unit records and checkpoints written on one node
    are read on another): a token written here is read back by a task pinned to each node. A node
    that does not see it is one ParameterError naming the root and the node(s)."""
    import secrets

    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
    nodes = [n["NodeID"] for n in ray.nodes() if n.get("Alive")]
    if len(nodes) <= 1:
        return
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    probe = root / f".shared-check-{os.getpid()}"
    token = secrets.token_hex(8)
    probe.write_text(token)
    try:
        sees = ray.remote(_sees)
        answers = ray.get([sees.options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(n, soft=False))
                           .remote(str(probe), token) for n in nodes])
    finally:
        probe.unlink(missing_ok=True)
    blind = [n[:12] for n, ok in zip(nodes, answers) if not ok]
    if blind:
        raise ParameterError(f"the work root {root} is not visible from Ray node(s) {blind}: unit records and "
                             "checkpoints must be shared; set SCALINGLAWS_WORK to a path every node mounts (NFS etc.)")


def _as_rows(out) -> list[dict]:
    if isinstance(out, dict):
        return [out]
    return list(out)
