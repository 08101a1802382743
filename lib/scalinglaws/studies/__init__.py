"""Studies: each is a module `scalinglaws.studies.<name>` that defines

- `PROFILES: dict[str, dict]` - the experiment parameters of the smoke, cpu and gpu profiles;
- `validate(params) -> dict` - checks a full parameter dict (raises ParameterError, no compute);
- `run(profile, backend="local", **overrides) -> ResultStore` - runs the resumable sweep, writes the
  tidy tables and, last, the provenance record (so a store with provenance is a complete run).

Its experiment notebook `notebooks/<name>.ipynb` is a thin papermill wrapper around `run`; the book's
analysis notebooks read the stored tables.
"""
from __future__ import annotations

import importlib

from scalinglaws.validation import check_choice

STUDIES = ("testbed", "merging", "resource")


def get_study(name: str):
    check_choice("study", name, STUDIES)
    return importlib.import_module(f"scalinglaws.studies.{name}")


def resolve_params(study_module, profile: str, overrides: dict) -> dict:
    """Profile defaults updated by overrides; unknown override names are an error."""
    from scalinglaws.validation import ParameterError, check_profile
    check_profile(profile)
    params = dict(study_module.PROFILES[profile])
    unknown = sorted(set(overrides) - set(params))
    if unknown:
        raise ParameterError(f"unknown parameter(s) {unknown}; this study takes {sorted(params)}")
    params.update(overrides)
    return study_module.validate(params)
