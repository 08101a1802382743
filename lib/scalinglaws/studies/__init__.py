"""Studies: one package `scalinglaws.studies.<name>` per study, discovered from this folder.

A study package exposes

- `PROFILES: dict[str, dict]` - its experiment parameters at each profile of `core.profiles.PROFILES`;
- `validate(params) -> dict` - checks a full parameter dict (raises ParameterError, no compute) and
  returns it normalised (the checked lists, never the raw input);
- optionally `data_files(params) -> [(domain, split), ...]` - the corpus files a run reads (their
  checksums are verified before the first unit; default: every split of `params["domains"]`);
- `run(profile, backend="local", **overrides) -> ResultStore` - first `validate_run` (the one
  validation path of `run`, the CLI and the notebooks), then the resumable sweep, the tidy tables
  and, last, the provenance record (so a store with provenance is a complete run); decorated with
  `exclusive_run`, which validates, then holds the study's lock and its dependencies' for the whole
  call (tables and provenance included), refuses a read of a study outside `DEPENDS_ON`
  (`core.results.read_scope`) and turns a disk error into one `RunFailed` line;
- optionally `validate_stored(params, profile)` - checks that read stored tables (another study's),
  run by `validate_run` before any lock or compute;
- optionally `disk_bytes(params) -> int` - what a run may write (checkpoints, token caches), checked
  against the free space of the work root before compute (default: `planned_disk_bytes`);
- `DEPENDS_ON` - studies whose units or stored tables it uses (they run first under `reproduce all`;
  a run that reads another study's store, or a package that imports another study, without
  declaring it fails: `core.results.read_scope` at run time, `tests/test_dependencies.py` on the source);
- optionally `COMMAND_TABLES` - tables its own commands write into its store (`clark`, `merging-nine`,
  ...) and its `run` never does; with every study's `seeds` table (`python -m scalinglaws seeds`):
  `command_tables(name)`. A run on a new profile (a gpu lease) makes every other table of the
  store; the gpu rehearsal checks both ways;
- optionally `cli.py` with `register(subparsers)`: its own sub-commands, found by the CLI.

Its experiment notebook `notebooks/<name>.ipynb` is a thin papermill wrapper around `run`; the book's
chapter reads the stored tables and calls the study's analysis functions.
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import json
import os
import pkgutil
import shutil
import traceback
import types
from pathlib import Path

from scalinglaws.core import profiles as PR
from scalinglaws.core.validation import ParameterError, check_backend, check_choice, check_profile, check_profile_keys


class RunFailed(RuntimeError):
    """A study's run stopped on an error of the machine (a full or read-only disk, ...): one line
    naming the study, profile and error; the details are in the run's failure record."""


@functools.cache
def study_names() -> tuple[str, ...]:
    """Every study package in this folder, dependencies first (then alphabetical)."""
    found = sorted(m.name for m in pkgutil.iter_modules(__path__) if m.ispkg)
    deps = {n: tuple(importlib.import_module(f"{__name__}.{n}").DEPENDS_ON) for n in found}
    order: list[str] = []

    def visit(name, seen=()):
        if name in seen:
            raise RuntimeError(f"studies depend on each other in a cycle: {seen + (name,)}")
        for d in deps[name]:
            visit(d, seen + (name,))
        if name not in order:
            order.append(name)

    for n in found:
        visit(n)
    return tuple(order)


def command_tables(name: str) -> frozenset[str]:
    """Tables of study `name`'s store that commands other than its `run` write: every study's `seeds`
    and `seeds_reproduction` (`studies.replicates`) and the study's own `COMMAND_TABLES`. `claims` re-derives run tables in
    place (fits re-judged, ...), so those stay run tables."""
    from scalinglaws.core.seeds import REPRODUCTION_TABLE
    from scalinglaws.studies import replicates
    return frozenset((replicates.TABLE, REPRODUCTION_TABLE, *getattr(get_study(name), "COMMAND_TABLES", ())))


def get_study(name: str):
    check_choice("study", name, study_names())
    return importlib.import_module(f"{__name__}.{name}")


def resolve_params(study_module, profile: str, overrides: dict) -> dict:
    """Profile defaults updated by overrides; unknown override names are an error."""
    check_profile(profile)
    check_profile_keys(f"{study_module.__name__}.PROFILES", study_module.PROFILES)
    if profile not in study_module.PROFILES:
        raise ParameterError(f"{study_module.__name__} has no parameters for profile {profile!r} "
                             f"(its PROFILES: {list(study_module.PROFILES)})")
    params = dict(study_module.PROFILES[profile])
    unknown = sorted(set(overrides) - set(params))
    if unknown:
        raise ParameterError(f"unknown parameter(s) {unknown}; this study takes {sorted(params)}")
    params.update(overrides)
    if PR.get(profile).device != "cpu" and os.environ.get("SCALINGLAWS_REHEARSE"):  # a device profile rehearsed on a CPU
        from scalinglaws.studies.lease_parts import rehearse
        params = rehearse(study_module.__name__.rsplit(".", 1)[-1], params, int(os.environ["SCALINGLAWS_REHEARSE"]))
    return study_module.validate(params)


def _study_module(study):
    return get_study(study) if isinstance(study, str) else study


def data_files(study, params: dict) -> list[tuple[str, str]]:
    """The (domain, split) corpus files a run of `study` with `params` reads."""
    mod = _study_module(study)
    if hasattr(mod, "data_files"):
        return list(mod.data_files(params))
    from scalinglaws.data import SPLITS
    return [(d, s) for d in params.get("domains", ()) for s in SPLITS if s != "test"] + \
        [(d, "test") for d in params.get("domains", ())]


def validate_run(study, profile: str, backend: str = "local", overrides: dict | None = None) -> dict:
    """The one validation path of every entry point (`run()`, the CLI, the notebooks): profile,
    backend, parameter names, types and values, and the checksums of the data files the run will
    read. Raises ParameterError (one line; ChecksumError is one) before anything is written;
    returns the validated parameters."""
    mod = _study_module(study)
    check_profile(profile)
    check_backend(backend)
    overrides = {} if overrides is None else overrides
    if not isinstance(overrides, dict):
        raise ParameterError(f"overrides={overrides!r} must be a dict of parameter names to values; "
                             f"this study takes {sorted(mod.PROFILES[profile])}")
    params = resolve_params(mod, profile, overrides)
    from scalinglaws.data.corpus import verify_files
    verify_files(data_files(mod, params))
    if hasattr(mod, "validate_stored"):  # checks that need the profile's stored tables (routing's lr='testbed')
        mod.validate_stored(params, profile)
    check_roots(mod, profile, params)
    return params


RESULTS_BYTES = 16 * 2**20  # tables, provenance and unit records of one run: a generous bound
MODELS_PER_SIZE = 8         # default guess of the checkpoints a study trains per size (experts, rates, ...)


def checkpoint_bytes(size: str) -> int:
    """float32 weights of one checkpoint of `size` (safetensors stores them as is) plus the tokenizer."""
    from scalinglaws.models import model_config, param_formula
    return 4 * param_formula(model_config(size))["total"] + 4 * 2**20


def planned_disk_bytes(mod, params: dict) -> int:
    """What a run may write under the work root, an estimate from what it plans: `disk_bytes(params)`
    of the study when it has one, else MODELS_PER_SIZE checkpoints of each size it names, plus the
    token caches (2 bytes a token) of the corpus files it reads that are not cached yet."""
    if hasattr(mod, "disk_bytes"):
        models = int(mod.disk_bytes(params))
    else:
        from scalinglaws.models import SIZES
        models = sum(MODELS_PER_SIZE * checkpoint_bytes(s) for s in params.get("sizes", ()) if s in SIZES)
    from scalinglaws.data.corpus import load_manifest
    tokens = {(e["domain"], e["split"]): int(e.get("tokens", 0)) for e in load_manifest().get("files", [])}
    return models + sum(2 * tokens.get(pair, 0) for pair in dict.fromkeys(data_files(mod, params)))


def _existing(path: Path) -> Path:
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_roots(mod, profile: str, params: dict) -> None:
    """The results and work roots must be writable and the work root must have room for what the
    run plans (`planned_disk_bytes`), before any compute: otherwise a read-only results folder is
    found after hours of training, when the first table is written. ParameterError, one line."""
    from scalinglaws.core.paths import results_root, work_root
    study = mod.__name__.rsplit(".", 1)[-1]
    needs = {"results": (results_root() / study / profile, RESULTS_BYTES),
             "work": (work_root(), planned_disk_bytes(mod, params) + RESULTS_BYTES)}
    for name, (where, need) in needs.items():
        at = _existing(where)
        if not (at.is_dir() and os.access(at, os.W_OK | os.X_OK)):
            env = "SCALINGLAWS_RESULTS" if name == "results" else "SCALINGLAWS_WORK"
            raise ParameterError(f"the {name} root {where} is not writable (checked at {at}); make it writable "
                                 f"or point {env} at a folder that is")
        try:
            free = shutil.disk_usage(at).free
        except OSError:
            continue
        if free < need:
            raise ParameterError(f"the {name} root {where} has {free / 2**20:,.0f} MiB free; this run of {study} "
                                 f"at profile {profile} may write about {need / 2**20:,.0f} MiB (an estimate from "
                                 "its planned units): free some space or point the root elsewhere")


def dependencies(study: str) -> list[str]:
    """Every study `study` depends on, directly or not, dependencies first."""
    out: list[str] = []

    def visit(name):
        for d in get_study(name).DEPENDS_ON:
            visit(d)
            if d not in out:
                out.append(d)
    visit(study)
    return out


@contextlib.contextmanager
def hold(study: str, profile: str):
    """Hold the locks of `study` at `profile` and of every study it depends on (it reuses, and may
    train, their units), so that no other process runs any of them meanwhile. A held lock raises
    SweepBusy naming its holder and why this study needs it."""
    from scalinglaws.core.sweep import Sweep
    with contextlib.ExitStack() as stack:
        for dep in dependencies(study):
            stack.enter_context(Sweep(dep, profile).lock(
                holder=study, why=f"{study} needs it because it depends on {dep} (DEPENDS_ON: it reuses "
                                  f"{dep}'s units or reads its stored tables)"))
        stack.enter_context(Sweep(study, profile).lock(holder=study))
        yield


def exclusive_run(run):
    """Decorate a study's `run(profile, backend="local", **overrides)`: validate (nothing written on
    bad input), then hold `hold(study, profile)` for the whole call, tables and provenance writes
    included; an OSError (full or read-only disk) becomes RunFailed, one line, with a failure record
    `run.failed.json` beside the study's unit records when it can be written."""
    @functools.wraps(run)
    def locked(profile: str, backend: str = "local", **overrides):
        from scalinglaws.core.results import read_scope
        study = run.__module__.split(".")[2]  # scalinglaws.studies.<study>.<module>
        with read_scope(study, dependencies(study)):  # reads outside DEPENDS_ON fail (UndeclaredRead)
            return _locked_run(run, study, profile, backend, overrides)
    return locked


def _locked_run(run, study: str, profile: str, backend: str, overrides: dict):
    validate_run(get_study(study), profile, backend, overrides)
    with hold(study, profile):
        try:
            out = run(profile, backend, **overrides)
        except OSError as err:
            raise RunFailed(_record_run_failure(study, profile, err)) from err
        from scalinglaws.core.paths import work_root
        (work_root() / "units" / study / profile / "run.failed.json").unlink(missing_ok=True)  # history now
        return out


def _record_run_failure(study: str, profile: str, err: OSError) -> str:
    from scalinglaws.core.paths import work_root
    from scalinglaws.core.results import atomic_write_json
    msg = f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"
    path = work_root() / "units" / study / profile / "run.failed.json"
    try:
        atomic_write_json(path, {"study": study, "profile": profile, "error": msg,
                                 "traceback": traceback.format_exception(type(err), err, err.__traceback__)})
        where = f"details in {path}"
    except OSError:
        where = "its failure record could not be written either"
    return (f"the run of {study} at profile {profile} stopped on a disk error ({msg}); finished units are kept, "
            f"fix it and rerun to resume; {where}")


NOTEBOOK_PARAMETERS = ("profile", "backend", "overrides")
_KERNEL_NAMES = frozenset({"In", "Out", "get_ipython", "exit", "quit", "open"})


def notebook_params(study, namespace: dict) -> tuple[str, str, dict]:
    """The guard of an experiment notebook, called in the cell right after `parameters` (and
    papermill's `injected-parameters`): `profile, backend, overrides = notebook_params(STUDY, globals())`.

    Every variable papermill injected must be a declared notebook parameter (profile, backend,
    overrides) or one of the study's parameters (then it is an override); any other name is an
    error naming the allowed ones, so `-y "size: [d9999]"` fails instead of running the default
    study. Then the whole run is validated (`validate_run`). Returns (profile, backend, overrides)."""
    mod = _study_module(study)
    names = {n for n, v in namespace.items()
             if not n.startswith("_") and n not in _KERNEL_NAMES
             and not isinstance(v, (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type))}
    profile = namespace.get("profile", PR.names()[0])  # a notebook's parameters cell defaults to the smallest
    check_profile(profile)
    study_params = set(mod.PROFILES[profile])
    unknown = sorted(names - set(NOTEBOOK_PARAMETERS) - study_params)
    if unknown:
        raise ParameterError(f"unknown notebook parameter(s) {unknown}; this notebook takes "
                             f"{list(NOTEBOOK_PARAMETERS)} and the study's parameters {sorted(study_params)}")
    overrides = namespace.get("overrides", {})
    if not isinstance(overrides, dict):
        raise ParameterError(f"overrides={overrides!r} must be a dict of parameter names to values")
    direct = {n: namespace[n] for n in sorted(names & study_params)}
    both = sorted(set(direct) & set(overrides))
    if both:
        raise ParameterError(f"parameter(s) {both} given both directly and in overrides; give each once")
    overrides = {**overrides, **direct}
    backend = namespace.get("backend", "local")
    validate_run(mod, profile, backend, overrides)
    return profile, backend, overrides


def study_cli_modules() -> list[str]:
    """`scalinglaws.studies.<name>.cli` of every study that has one."""
    return [f"{__name__}.{n}.cli" for n in study_names()
            if importlib.util.find_spec(f"{__name__}.{n}.cli") is not None]


def _short(value, width: int = 60) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= width else text[:width - 3] + "..."


def profile_drift(store) -> list[str]:
    """The parameters whose profile default differs from the config the stored results were made
    with, as one banner line (empty when none differ). Results made before a profile changed still
    describe the old parameters; rerunning the profile gives other numbers, and a reader should
    know that before comparing. Keys only in the stored config (values a run derives, such as
    routing's `lr_by_size`) are not parameters and are skipped, as are a study's `RUN_ONLY` parameters
    (how a run is split or where its unit records live, e.g. routing's `part`)."""
    study = store.dir.parent.name
    stored = store.provenance().get("config")
    if study not in study_names() or not stored:
        return []
    try:
        now = resolve_params(get_study(study), store.profile, {})
    except ParameterError as err:  # the profile itself no longer validates: say so, do not fail the chapter
        return [f"**The `{store.profile}` profile of this study no longer validates** ({err})."]
    norm = lambda v: json.dumps(v, sort_keys=True, default=str)  # noqa: E731 -- tuples and lists alike
    run_only = set(getattr(get_study(study), "RUN_ONLY", ()))  # how a run is carried out, not what it computes
    changed = [f"`{k}` {_short(stored[k])} -> {_short(now[k])}" if k in stored else f"`{k}` (new) {_short(now[k])}"
               for k in sorted(now) if k not in run_only and (k not in stored or norm(stored[k]) != norm(now[k]))]
    if not changed:
        return []
    return [f"**The `{store.profile}` profile has changed since these results were made:** " + "; ".join(changed)
            + f". Rerunning `make reproduce STUDY={study} PROFILE={store.profile}` gives results for the current "
            "parameters; until then this chapter describes the ones recorded in its provenance."]


def stale_bases(store) -> list[str]:
    """The sizes whose testbed base (recorded in the store's provenance, `testbed_bases`) the stored
    testbed at the same profile and root no longer chooses (`core.bases.stale_bases`), one line each."""
    from scalinglaws.core.bases import stale_bases as compare
    from scalinglaws.studies.testbed.bases import testbed_choice

    prov = store.provenance()
    return compare(prov, testbed_choice(store.profile, store.dir.parent.parent)) if prov.get("testbed_bases") else []


def show_provenance(store, others=()) -> None:
    """The chapter's provenance banner (`report.provenance_banner`) with the study's profile drift
    and the testbed bases it no longer stands on."""
    from scalinglaws.report import show_provenance as show

    show(store, others, notes=profile_drift(store), stale=stale_bases(store))


def regime_table(study: str, profile: str = "best", root=None):
    """The regime table (`core.regime`) of a study's stored results at `profile` ('best': the best
    profile it has), from its claims module's `regime(tables[, config])`; None when the study has no
    `regime` or no stored run. Chapters show it beside the claims; Findings stacks every study's."""
    import inspect

    from scalinglaws.core.results import available_profiles, open_store
    if not available_profiles(study, root):
        return None
    try:
        module = importlib.import_module(f"scalinglaws.studies.{study}.claims")
    except ModuleNotFoundError:
        return None
    if not hasattr(module, "regime"):
        return None
    store = open_store(study, profile, root)
    tables = {t: store.read(t) for t in store.tables()}
    takes_config = len(inspect.signature(module.regime).parameters) > 1
    return module.regime(tables, store.provenance().get("config", {})) if takes_config else module.regime(tables)


def seed_sd_line(study: str, measures, profile: str = "best", root=None) -> str:
    """'training-seed SD: <measure> 0.012 nats (3 seeds x 2 cells), ...' from a study's stored `seeds`
    table, or 'training-seed SD: not measured (no seeds table)' where none is stored: the sentence a
    chapter shows beside its effects."""
    from scalinglaws.core import seeds as S
    from scalinglaws.core.results import open_store
    store = open_store(study, profile, root)
    if not store.has("seeds"):
        return ("Training-seed SD: not measured (this run stores no seeds table), so the claims that need it "
                "are inconclusive.")
    table = store.read("seeds")
    spread = S.seed_spread(table)
    parts = []
    for m in measures:
        sd = S.seed_sd(table, m)
        g = spread[spread["measure"] == m]
        parts.append(f"{m} {sd:.3g} ({int(g['n_seeds'].max()) if len(g) else 0} seeds x {len(g)} cells)"
                     if sd == sd else f"{m} not measured")
    return "Training-seed SD (pooled over replicated cells): " + ", ".join(parts) + "."
