"""Studies: one package `scalinglaws.studies.<name>` per study, discovered from this folder.

A study package exposes

- `PROFILES: dict[str, dict]` - its experiment parameters at each profile of `core.profiles.PROFILES`;
- `validate(params) -> dict` - checks a full parameter dict (raises ParameterError, no compute);
- `run(profile, backend="local", **overrides) -> ResultStore` - runs the resumable sweep, writes the
  tidy tables and, last, the provenance record (so a store with provenance is a complete run);
- `DEPENDS_ON` - studies whose units it reuses (they run first under `reproduce all`);
- optionally `cli.py` with `register(subparsers)`: its own sub-commands, found by the CLI.

Its experiment notebook `notebooks/<name>.ipynb` is a thin papermill wrapper around `run`; the book's
chapter reads the stored tables and calls the study's analysis functions.
"""
from __future__ import annotations

import functools
import importlib
import pkgutil

from scalinglaws.core.validation import ParameterError, check_choice, check_profile


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
    return study_module.validate(params)


def study_cli_modules() -> list[str]:
    """`scalinglaws.studies.<name>.cli` of every study that has one."""
    return [f"{__name__}.{n}.cli" for n in study_names()
            if importlib.util.find_spec(f"{__name__}.{n}.cli") is not None]
