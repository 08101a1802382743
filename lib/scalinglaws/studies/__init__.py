"""Studies: one package `scalinglaws.studies.<name>` per study, discovered from this folder.

A study package exposes

- `PROFILES: dict[str, dict]` - its experiment parameters at each profile of `core.profiles.PROFILES`;
- `validate(params) -> dict` - checks a full parameter dict (raises ParameterError, no compute) and
  returns it normalised (the checked lists, never the raw input);
- optionally `data_files(params) -> [(domain, split), ...]` - the corpus files a run reads (their
  checksums are verified before the first unit; default: every split of `params["domains"]`);
- `run(profile, backend="local", **overrides) -> ResultStore` - first `validate_run` (the one
  validation path of `run`, the CLI and the notebooks), then the resumable sweep, the tidy tables
  and, last, the provenance record (so a store with provenance is a complete run);
- `DEPENDS_ON` - studies whose units it reuses (they run first under `reproduce all`);
- optionally `cli.py` with `register(subparsers)`: its own sub-commands, found by the CLI.

Its experiment notebook `notebooks/<name>.ipynb` is a thin papermill wrapper around `run`; the book's
chapter reads the stored tables and calls the study's analysis functions.
"""
from __future__ import annotations

import functools
import importlib
import json
import os
import pkgutil
import types

from scalinglaws.core.validation import ParameterError, check_backend, check_choice, check_profile


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


def get_study(name: str):
    check_choice("study", name, study_names())
    return importlib.import_module(f"{__name__}.{name}")


def resolve_params(study_module, profile: str, overrides: dict) -> dict:
    """Profile defaults updated by overrides; unknown override names are an error."""
    check_profile(profile)
    params = dict(study_module.PROFILES[profile])
    unknown = sorted(set(overrides) - set(params))
    if unknown:
        raise ParameterError(f"unknown parameter(s) {unknown}; this study takes {sorted(params)}")
    params.update(overrides)
    if profile == "gpu" and os.environ.get("SCALINGLAWS_REHEARSE"):  # the CPU rehearsal of the gpu path
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
    return params


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
    profile = namespace.get("profile", "smoke")
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
    routing's `lr_by_size`) are not parameters and are skipped."""
    study = store.dir.parent.name
    stored = store.provenance().get("config")
    if study not in study_names() or not stored:
        return []
    try:
        now = resolve_params(get_study(study), store.profile, {})
    except ParameterError as err:  # the profile itself no longer validates: say so, do not fail the chapter
        return [f"**The `{store.profile}` profile of this study no longer validates** ({err})."]
    norm = lambda v: json.dumps(v, sort_keys=True, default=str)  # noqa: E731 -- tuples and lists alike
    changed = [f"`{k}` {_short(stored[k])} -> {_short(now[k])}" if k in stored else f"`{k}` (new) {_short(now[k])}"
               for k in sorted(now) if k not in stored or norm(stored[k]) != norm(now[k])]
    if not changed:
        return []
    return [f"**The `{store.profile}` profile has changed since these results were made:** " + "; ".join(changed)
            + f". Rerunning `make reproduce STUDY={study} PROFILE={store.profile}` gives results for the current "
            "parameters; until then this chapter describes the ones recorded in its provenance."]


def show_provenance(store, others=()) -> None:
    """The chapter's provenance banner (`report.provenance_banner`) with the study's profile drift."""
    from scalinglaws.report import show_provenance as show

    show(store, others, notes=profile_drift(store))


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
