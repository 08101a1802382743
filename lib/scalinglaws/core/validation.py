"""Parameter validation shared by notebooks, the CLI and library entry points.

Every check raises `ParameterError` with one sentence naming the parameter, the bad value and
what is allowed, *before* any compute starts, so a bad run writes nothing.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from scalinglaws.core.profiles import PROFILES



class ParameterError(ValueError):
    """A user-supplied parameter is invalid. The message is meant to be shown as is."""


def check_choice(name: str, value, choices: Iterable):
    choices = list(choices)
    if value not in choices:
        raise ParameterError(f"{name}={value!r} is not one of {choices}")
    return value


def check_profile(profile: str) -> str:
    return check_choice("profile", profile, PROFILES)


def check_subset(name: str, values, allowed: Sequence) -> list:
    """A non-empty list whose members are all in `allowed` (no duplicates)."""
    if isinstance(values, str):
        values = [values]
    values = list(values)
    if not values:
        raise ParameterError(f"{name} must not be empty (allowed: {list(allowed)})")
    bad = [v for v in values if v not in allowed]
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
