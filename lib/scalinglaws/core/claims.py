"""The one schema of a study's `claims` table, its validator, and the collection of every study's
claims for the Findings chapter.

A study that tests published claims stores a table `claims` beside its other tables (written by
its `run()`, or recomputed from the stored tables by `python -m scalinglaws claims STUDY --profile P`),
one row per claim, with exactly these columns:

    claim_id  short stable identifier, unique in the table (e.g. "routing_helps_at_fixed_N")
    paper     whose claim: a short citation ("Clark et al. 2022") or "this study" for our own questions
    claim     the claim in one sentence, with the paper's value where it has one
    measure   what we measured to test it (e.g. "b of the routing law, S-BASE")
    value     our estimate (float; NaN when there is none)
    lo, hi    its 95% interval (floats; NaN when there is none)
    verdict   one of VERDICTS: 'holds' | 'does not hold' | 'not testable'
    figure    where a reader sees it: "<chapter>.html#<label>" (or just "<label>"), <label> being a MyST
              label in that chapter (a code cell's `mystnb.figure.name`, or a `(label)=` target);
              "" when no figure shows it. The Findings chapter renders it as a {ref}, so a label
              that does not exist fails the book build.
    note      why the verdict: the rule applied, or why the claim cannot be tested here

Verdicts come from intervals, never from point estimates alone; a profile that cannot test a
claim (too few points, no bootstrap, the smoke profile's few optimiser steps) says 'not testable'
and the note says why.
"""
from __future__ import annotations

import math
import re

import pandas as pd

from scalinglaws.core.validation import ParameterError

COLUMNS = ("claim_id", "paper", "claim", "measure", "value", "lo", "hi", "verdict", "figure", "note")
VERDICTS = ("holds", "does not hold", "not testable")
NUMERIC = ("value", "lo", "hi")
TEXT = tuple(c for c in COLUMNS if c not in NUMERIC)
FIGURE_RE = re.compile(r"^(?:[A-Za-z0-9_-]+\.html#)?[A-Za-z0-9_-]+$")
SMOKE_NOTE = ("smoke profile: a few optimiser steps per model, a pipeline check; no claim can be judged "
              "from it")


class ClaimsError(ParameterError):
    """A claims table does not follow the schema (names the column and the rows)."""


def check_claims(df: pd.DataFrame) -> pd.DataFrame:
    """Validate a claims table against the schema; returns it with columns in schema order and the
    numeric columns as floats. Raises ClaimsError naming what is wrong."""
    if not isinstance(df, pd.DataFrame):
        raise ClaimsError(f"a claims table is a DataFrame, not {type(df).__name__}")
    cols = list(df.columns)
    missing = [c for c in COLUMNS if c not in cols]
    extra = [c for c in cols if c not in COLUMNS]
    if missing or extra:
        raise ClaimsError(f"claims table columns must be exactly {list(COLUMNS)}; missing {missing}, extra {extra}")
    out = df[list(COLUMNS)].reset_index(drop=True)
    for c in NUMERIC:
        try:
            out[c] = pd.to_numeric(out[c], errors="raise").astype(float)
        except (TypeError, ValueError):
            raise ClaimsError(f"claims column {c!r} must be numeric (NaN for none): {list(out[c])}") from None
    for c in TEXT:
        bad = [i for i, v in enumerate(out[c]) if not isinstance(v, str)]
        if bad:
            raise ClaimsError(f"claims column {c!r} must hold strings; rows {bad} do not")
    for c in ("claim_id", "paper", "claim", "measure", "note"):
        empty = [i for i, v in enumerate(out[c]) if not v.strip()]
        if empty and c != "note":
            raise ClaimsError(f"claims column {c!r} is empty in rows {empty}")
    bad = sorted(set(out["verdict"]) - set(VERDICTS))
    if bad:
        raise ClaimsError(f"claims verdict(s) {bad} are not among {list(VERDICTS)}")
    dup = sorted(out.loc[out["claim_id"].duplicated(), "claim_id"])
    if dup:
        raise ClaimsError(f"claim_id must be unique; duplicated: {dup}")
    badfig = [v for v in out["figure"] if v and not FIGURE_RE.match(v)]
    if badfig:
        raise ClaimsError(f"figure must be '<chapter>.html#<label>', '<label>' or ''; got {badfig}")
    needs_note = [r.claim_id for r in out.itertuples() if r.verdict == "not testable" and not r.note.strip()]
    if needs_note:
        raise ClaimsError(f"a 'not testable' claim needs a note saying why: {needs_note}")
    for r in out.itertuples():
        if not (math.isnan(r.lo) or math.isnan(r.hi)) and r.lo > r.hi:
            raise ClaimsError(f"claim {r.claim_id!r}: lo {r.lo} > hi {r.hi}")
    return out


def claim(claim_id: str, paper: str, text: str, measure: str, value=math.nan, lo=math.nan, hi=math.nan,
          verdict: str = "not testable", figure: str = "", note: str = "") -> dict:
    """One row of a claims table (a dict in schema order)."""
    return {"claim_id": claim_id, "paper": paper, "claim": text, "measure": measure, "value": _f(value),
            "lo": _f(lo), "hi": _f(hi), "verdict": verdict, "figure": figure, "note": note}


def _f(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def contains(lo, hi, target) -> str:
    """'holds' when target lies in [lo, hi], 'does not hold' when outside, 'not testable' when the
    interval is missing."""
    lo, hi = _f(lo), _f(hi)
    if math.isnan(lo) or math.isnan(hi):
        return "not testable"
    return "holds" if lo <= target <= hi else "does not hold"


def sign(lo, hi, positive: bool) -> str:
    """'holds' when the interval lies strictly on the claimed side of 0 (above for positive=True),
    'does not hold' otherwise, 'not testable' when it is missing."""
    lo, hi = _f(lo), _f(hi)
    if math.isnan(lo) or math.isnan(hi):
        return "not testable"
    return "holds" if (lo > 0 if positive else hi < 0) else "does not hold"


def unconfirmed(verdict: str, note: str, fit_ok: bool, why_not_ok: str = "") -> tuple[str, str]:
    """(verdict, note) of a claim on a fitted parameter, given whether that fit is ok by the trust rule
    (`fitting.trust`): a fit that is not ok cannot confirm a claim (a form that does not describe the
    data says nothing, however its interval falls), so 'holds' becomes 'does not hold'; the note says
    why either way."""
    if fit_ok:
        return verdict, note
    if verdict == "holds":
        verdict, note = "does not hold", note + ", but the fit is not ok, so it cannot confirm the claim"
    return verdict, note + (f"; fit not ok: {why_not_ok}" if why_not_ok else "; fit not ok")


def frame(rows: list[dict], profile: str | None = None) -> pd.DataFrame:
    """The validated claims table of `rows`; at the smoke profile every verdict becomes 'not
    testable' (the measurement stays, the note says why)."""
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    if profile == "smoke" and len(df):
        df["note"] = [SMOKE_NOTE + (f" (at a real profile: {v}; {n})" if n else f" (at a real profile: {v})")
                      for v, n in zip(df["verdict"], df["note"])]
        df["verdict"] = "not testable"
    return check_claims(df)


def collect(studies, root=None) -> tuple[pd.DataFrame, list[str]]:
    """Every study's stored claims at its best profile with a claims table (core.profiles.PROFILE_ORDER),
    as one frame with `study` and `profile` in front; and the studies without any stored claims."""
    from scalinglaws.core.results import ResultStore, available_profiles

    parts, missing = [], []
    for study in studies:
        for profile in available_profiles(study, root):
            store = ResultStore(study, profile, root)
            if store.has("claims"):
                df = check_claims(store.read("claims"))
                parts.append(df.assign(study=study, profile=profile))
                break
        else:
            missing.append(study)
    cols = ["study", "profile", *COLUMNS]
    out = pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)
    return out, missing
