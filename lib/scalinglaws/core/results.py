"""Tidy result tables per study and profile, written atomically, with provenance.

Layout: `<results_root>/<study>/<profile>/<table>.parquet` plus `provenance.json`, which records
the commit, date, device, library versions, wall time and config hash of the run that wrote them.

While a study runs (`studies.exclusive_run`), `read_scope` records which studies' stored results it
reads and refuses, at the first read, a study it does not declare in `DEPENDS_ON`
(`UndeclaredRead`): a study's declared dependencies are checked against what it reads.
"""
from __future__ import annotations

import contextlib
import contextvars
import datetime as _dt
import hashlib
import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path

import pandas as pd

from scalinglaws.core.paths import REPO_ROOT, results_root
from scalinglaws.core import profiles as PR
from scalinglaws.core.validation import ParameterError, check_profile


def sha256_file(path: Path) -> str:
    """The sha256 of a file, read in 1 MiB blocks (corpora, tokenizer, published checkpoints)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()



class CorruptTable(ParameterError):
    """A stored result table does not read back (truncated, corrupted)."""


class UndeclaredRead(RuntimeError):
    """A study's run read another study's stored results without declaring that study in its
    `DEPENDS_ON` (a hidden dependency: `reproduce all` could run it first, and its lock would not
    keep the other study from rewriting what it reads)."""


# (running study, the studies it may read, the studies it has read) while a study runs; None otherwise
_READ_SCOPE: contextvars.ContextVar = contextvars.ContextVar("scalinglaws_read_scope", default=None)


@contextlib.contextmanager
def read_scope(study: str, allowed):
    """Within: every read of a store (`ResultStore.read`, `has`, `tables`, `provenance`) of a study
    outside {study} | allowed raises UndeclaredRead; the studies read are recorded in the yielded set."""
    reads: set[str] = set()
    token = _READ_SCOPE.set((study, frozenset(allowed) | {study}, reads))
    try:
        yield reads
    finally:
        _READ_SCOPE.reset(token)


def _note_read(study: str) -> None:
    scope = _READ_SCOPE.get()
    if scope is None:
        return
    runner, allowed, reads = scope
    reads.add(study)
    if study not in allowed:
        raise UndeclaredRead(f"the {runner} study read the stored results of {study!r}, which it does not declare "
                             f"in DEPENDS_ON (it declares {sorted(allowed - {runner})}): add {study!r} to "
                             f"scalinglaws.studies.{runner}.DEPENDS_ON")


def config_hash(config) -> str:
    """Stable 16-hex-digit hash of a JSON-serialisable config (key order does not matter)."""
    blob = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _publish(tmp: str, path: Path) -> None:
    os.chmod(tmp, 0o644)  # mkstemp creates 0600; results are meant to be read by everyone
    os.replace(tmp, path)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder and rename: readers never see half a file,
    and a process killed mid-write leaves the old file (or none) behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        _publish(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode())


def atomic_write_parquet(path: Path, df: pd.DataFrame) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        df.to_parquet(tmp, index=False)
        _publish(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


UNTRACKED_DIRTY = ("lib", "notebooks", "book")  # an untracked file here is code a run may have used


def git_commit() -> str:
    """HEAD commit, suffixed with '+dirty' when the tree has uncommitted changes outside the stored
    results (`data/results/`: a run rewrites its own tables before its provenance, and those are
    outputs, not the code the commit must identify), or untracked files (not ignored) under
    `UNTRACKED_DIRTY`: a new module the run imported is code the commit does not identify."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":(exclude)data/results"], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        untracked = subprocess.run(["git", "ls-files", "--others", "--exclude-standard", "--", *UNTRACKED_DIRTY],
                                   cwd=REPO_ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        return (sha or "unknown") + ("+dirty" if dirty or untracked else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def device_description() -> str:
    try:
        import torch
        if torch.cuda.is_available():
            return f"cuda:{torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"cpu:{cpu} x{os.cpu_count()}"


def library_versions() -> dict:
    import importlib.metadata as md
    out = {"python": platform.python_version()}
    for name in ("torch", "transformers", "numpy", "scipy", "pandas", "lm_eval", "tokenizers"):
        try:
            out[name] = md.version(name.replace("_", "-"))
        except md.PackageNotFoundError:
            out[name] = None
    return out


def provenance(config, wall_time_s: float, *, profile: str, backend: str, unit_compute_s: float,
               **extra) -> dict:
    """The one provenance schema of every study: who ran what, where, with which code and data.

    wall_time_s is the whole `run` (resumed work excluded, cached units cost ~0); unit_compute_s
    adds up the recorded wall time of every unit the tables come from (resumed runs included),
    i.e. what rerunning from scratch costs. `extra` holds study-specific counters."""
    return {
        "commit": git_commit(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "device": device_description(),
        "versions": library_versions(),
        "profile": check_profile(profile),
        "backend": backend,
        "wall_time_s": round(float(wall_time_s), 3),
        "unit_compute_s": round(float(unit_compute_s), 1),
        "config_hash": config_hash(config),
        "config": config,
        **extra,
    }


def merge_provenance(ours: dict, theirs: dict) -> dict:
    """One store's provenance after two branches each changed it (a git merge of results): the
    run-level fields (commit, date, config, counters) are one run's, so they are taken whole from the
    newer run (by `date`), never mixed; each `derived.<name>` entry (claims, seeds, clark, ...) is
    one command's record, so the newer of the two is kept per entry. ISO dates compare as strings."""
    newer, older = (theirs, ours) if str(theirs.get("date", "")) > str(ours.get("date", "")) else (ours, theirs)
    out = {k: v for k, v in newer.items() if k != "derived"}
    derived = dict(older.get("derived", {}))
    for name, entry in newer.get("derived", {}).items():
        if name not in derived or str(entry.get("date", "")) >= str(derived[name].get("date", "")):
            derived[name] = entry
    if derived:
        out["derived"] = derived
    return out


class ResultStore:
    """The tables of one study at one profile."""

    def __init__(self, study: str, profile: str, root: Path | None = None):
        check_profile(profile)
        self.study, self.profile = study, profile
        self.dir = Path(root or results_root()) / study / profile
        self._written: set[str] = set()  # tables this instance wrote (`write_run_provenance`)

    def path(self, table: str) -> Path:
        return self.dir / f"{table}.parquet"

    def write(self, table: str, df: pd.DataFrame) -> Path:
        p = self.path(table)
        atomic_write_parquet(p, df)
        self._written.add(table)
        return p

    def read(self, table: str) -> pd.DataFrame:
        _note_read(self.study)
        p = self.path(table)
        if not p.exists():
            raise FileNotFoundError(f"no table {table!r} for study {self.study!r} at profile "
                                    f"{self.profile!r} (looked for {p}); run "
                                    f"`make reproduce STUDY={self.study} PROFILE={self.profile}`")
        try:
            return pd.read_parquet(p)
        except Exception as err:  # truncated or corrupted: name it, say how to redo it
            raise CorruptTable(f"table {p} is unreadable ({type(err).__name__}: {' '.join(str(err).split())[:200]}); "
                               f"rerun `python -m scalinglaws reproduce {self.study} --profile {self.profile}` "
                               "(finished units are reused; the tables are rewritten)") from None

    def has(self, table: str) -> bool:
        _note_read(self.study)
        return self.path(table).exists()

    def tables(self) -> list[str]:
        _note_read(self.study)
        return sorted(p.stem for p in self.dir.glob("*.parquet"))

    def write_provenance(self, record: dict) -> None:
        atomic_write_json(self.dir / "provenance.json", record)

    def write_run_provenance(self, record: dict) -> list[str]:
        """Write a study run's provenance `record`, which replaces the previous run's whole (commit,
        config and counters are this run's), except for the `derived` records of tables this run did
        not write: a table made by a command (seeds, clark, regime_pilot, conventions, nine, ...) stays
        on disk through a rerun, and dropping its record would leave it with none. Each such record is
        carried forward marked `before_run` (this run's date): the table was made beside an earlier
        run, so the banner says so and names the command to rerun (which writes a fresh record
        without the mark). A record of a table this run rewrote (claims, fits, ...) is dropped.
        Returns the names of the carried-forward records and prints one line for each."""
        import sys
        try:
            old = self.provenance().get("derived", {})
        except CorruptTable:  # an unreadable record is replaced, as `write_provenance` would
            old = {}
        carried = {}
        for name, entry in old.items():
            tables = set(entry.get("tables", [])) | {name}
            if not (tables & self._written) and any(self.path(t).exists() for t in tables):
                carried[name] = {**entry, "before_run": entry.get("before_run") or record.get("date", "")}
        out = {k: v for k, v in record.items() if k != "derived"}
        derived = {**carried, **record.get("derived", {})}
        if derived:
            out["derived"] = derived
        atomic_write_json(self.dir / "provenance.json", out)
        for name in sorted(carried):
            print(f"{self.study} @ {self.profile}: table `{name}` was made beside an earlier run; rerun "
                  f"`{carried[name].get('command', '?')}` to make it from this run's tables", file=sys.stderr)
        return sorted(carried)

    def made_before_run(self) -> dict[str, str]:
        """{table record: command to rerun} of the `derived` records `write_run_provenance` carried
        through a rerun (marked `before_run`): tables made beside an earlier run, not from this one's."""
        return {name: e.get("command", "?") for name, e in sorted(self.provenance().get("derived", {}).items())
                if e.get("before_run")}

    def provenance(self) -> dict:
        _note_read(self.study)
        p = self.dir / "provenance.json"
        if not p.exists():
            return {}
        try:
            rec = json.loads(p.read_bytes().decode("utf-8"))
            if not isinstance(rec, dict):
                raise ValueError("not a JSON object")
            return rec
        except ValueError as err:  # truncated, not UTF-8, edited: name it, say how to redo it
            raise CorruptTable(f"provenance {p} is unreadable ({type(err).__name__}: {' '.join(str(err).split())[:200]}); "
                               f"rerun `python -m scalinglaws reproduce {self.study} --profile {self.profile}` "
                               "(finished units are reused; tables and provenance are rewritten)") from None


def available_profiles(study: str, root: Path | None = None) -> list[str]:
    """Profiles of `study` that have a complete run (its provenance is written last)."""
    base = Path(root or results_root()) / study
    return [p for p in PR.best_first() if (base / p / "provenance.json").exists()]


def open_store(study: str, profile: str = "best", root: Path | None = None) -> ResultStore:
    """The store for `profile`, or for the best available one when profile == 'best'."""
    if profile == "best":
        have = available_profiles(study, root)
        if not have:
            raise ParameterError(f"no stored results for study {study!r} under "
                                 f"{Path(root or results_root())}; run `make reproduce STUDY={study}`")
        profile = have[0]
    if profile not in PR.names():
        raise ParameterError(f"profile={profile!r} is not one of {list(PR.names()) + ['best']}")
    return ResultStore(study, profile, root)
