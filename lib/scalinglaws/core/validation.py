"""Parameter validation shared by notebooks, the CLI and library entry points.

Every check raises `ParameterError` with one sentence naming the parameter, the bad value and
what is allowed, *before* any compute starts, so a bad run writes nothing.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from scalinglaws.core import profiles as PR



BACKENDS = ("local", "ray")  # sweep backends (core.sweep runs them)


class ParameterError(ValueError):
    """A user-supplied parameter is invalid. The message is meant to be shown as is."""

    def __str__(self):  # one line, whatever the message was built from
        return " ".join(super().__str__().split())


def check_choice(name: str, value, choices: Iterable):
    choices = list(choices)
    if value not in choices:
        raise ParameterError(f"{name}={value!r} is not one of {choices}")
    return value


def check_backend(backend: str) -> str:
    return check_choice("backend", backend, BACKENDS)


def check_profile(profile: str) -> str:
    return check_choice("profile", profile, PR.names())


def check_profile_keys(what: str, mapping: dict, complete: bool = False) -> dict:
    """A per-profile dictionary (a study's `PROFILES`, its seeds `CELLS`, ...) checked against the
    profile registry: every key a registered profile and, with `complete`, every registered profile a
    key. One line naming `what` and the offending names; returns `mapping`."""
    unknown = sorted(set(mapping) - set(PR.names()))
    missing = [n for n in PR.names() if n not in mapping] if complete else []
    if unknown or missing:
        raise ParameterError(f"{what} is keyed by profile: " + "; ".join(
            ([f"{unknown} not in the registry {list(PR.names())}"] if unknown else [])
            + ([f"no entry for {missing}"] if missing else [])))
    return mapping


def check_list(name: str, values, what: str = "values") -> list:
    """A JSON-style list (list or tuple). A bare string is refused: iterating it would yield its
    characters (`domains="code"` is not `["code"]`)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)):
        raise ParameterError(f"{name}={values!r} must be a list of {what}, e.g. [{values!r}]"
                             if isinstance(values, str) else f"{name}={values!r} must be a list of {what}")
    return list(values)


def check_subset(name: str, values, allowed: Sequence) -> list:
    """A non-empty list whose members are all in `allowed` (no duplicates). A bare string is
    refused ("must be a list"), never split into characters or silently wrapped."""
    allowed = list(allowed)
    values = check_list(name, values, f"values from {allowed}")
    if not values:
        raise ParameterError(f"{name} must not be empty (allowed: {list(allowed)})")
    bad = [v for v in values if not isinstance(v, (str, int, float)) or v not in allowed]
    if bad:
        raise ParameterError(f"{name} has unknown value(s) {bad}; allowed: {list(allowed)}")
    if len(set(values)) != len(values):
        raise ParameterError(f"{name} has duplicates: {values}")
    return values


def _check_number(name, value, kind):
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ParameterError(f"{name}={value!r} must be a {'integer' if kind is int else 'number'}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ParameterError(f"{name}={value!r} must be finite")
    return value


def check_int(name: str, value, minimum: int | None = None, maximum: int | None = None) -> int:
    _check_number(name, value, int)
    if minimum is not None and value < minimum:
        raise ParameterError(f"{name}={value} must be >= {minimum}")
    if maximum is not None and value > maximum:
        raise ParameterError(f"{name}={value} must be <= {maximum}")
    return value


def check_float(name: str, value, minimum: float | None = None, maximum: float | None = None,
                open_interval: bool = False) -> float:
    """A finite real number in [minimum, maximum] (or (minimum, maximum) if open_interval)."""
    _check_number(name, value, (int, float))
    value = float(value)
    lo_bad = minimum is not None and (value <= minimum if open_interval else value < minimum)
    hi_bad = maximum is not None and (value >= maximum if open_interval else value > maximum)
    if lo_bad or hi_bad:
        lb, rb = ("(", ")") if open_interval else ("[", "]")
        lo = "-inf" if minimum is None else minimum
        hi = "inf" if maximum is None else maximum
        raise ParameterError(f"{name}={value} must lie in {lb}{lo}, {hi}{rb}")
    return value


def check_fraction(name: str, value) -> float:
    """A probability-like number strictly inside (0, 1)."""
    return check_float(name, value, 0.0, 1.0, open_interval=True)
