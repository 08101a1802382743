"""The one schema of a study's `claims` table, the rules a verdict follows, its validator, and the
collection of every study's claims for the Findings chapter.

A study that tests published claims stores a table `claims` beside its other tables (written by
its `run()`, or recomputed from the stored tables by `python -m scalinglaws claims STUDY --profile P`),
one row per claim, with exactly these columns:

    claim_id  short stable identifier, unique in the table (e.g. "routing_helps_at_fixed_N")
    paper     whose claim: a short citation ("Clark et al. 2022") or "this study" for our own questions
    claim     the claim in one sentence, with the paper's value where it has one
    measure   what we measured to test it (e.g. "b of the routing law, S-BASE")
    value     our estimate (float; NaN when there is none)
    lo, hi    a 95% interval of `value` (floats; NaN when there is none); the note says how it was
              made ("95% interval: bootstrap ..." or "95% interval: analytic ...")
    verdict   one of VERDICTS (below)
    figure    where a reader sees it: "<chapter>.html#<label>" (or just "<label>"), <label> being a MyST
              label in that chapter (a code cell's `mystnb.figure.name`, or a `(label)=` target);
              "" when no figure shows it. The Findings chapter renders it as a {ref}, so a label
              that does not exist fails the book build.
    note      why the verdict: the rule applied, the interval's kind, and for an inconclusive claim
              what would decide it ("to decide: ...")

The four verdicts (`judge` applies them; `check_claims` refuses rows that break them):

    holds          a trusted measurement's 95% interval lies where the claim says (contains the
                   claimed value, or lies on the claimed side of a threshold)
    refuted        a trusted measurement's 95% interval excludes the claim
    inconclusive   the measurement cannot decide: the fit behind it is not ok (`fitting.trust`), the
                   interval straddles the claim's boundary or also contains the alternative the
                   claim must be told apart from, training-seed noise is unknown (`core.seeds`) or
                   the value has no interval, or a stated precondition of the regime is unmet
                   (`Precondition`, with the measured value). The note says which, and what would
                   decide it.
    not testable   by design at this profile: the smoke profile (`frame`), or a profile that lacks
                   what the claim needs (too few sizes, an arm not run); the note says why

What a claim says of its value is data (`Contains`, `Above`, `Below`, `Within`), as are the regime's
preconditions (`Precondition`) and the training-seed noise of the measure (`SeedNoise`); `judge` is
the one place that turns them into a verdict.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import pandas as pd

from scalinglaws.core import seeds as S
from scalinglaws.core.validation import ParameterError

COLUMNS = ("claim_id", "paper", "claim", "measure", "value", "lo", "hi", "verdict", "figure", "note")
VERDICTS = ("holds", "refuted", "inconclusive", "not testable")
DECIDED = ("holds", "refuted")
NUMERIC = ("value", "lo", "hi")
TEXT = tuple(c for c in COLUMNS if c not in NUMERIC)
FIGURE_RE = re.compile(r"^(?:[A-Za-z0-9_-]+\.html#)?[A-Za-z0-9_-]+$")
# a decided row's note names how its interval was made
INTERVAL_RE = re.compile(r"95% interval: [^;]*\b(bootstrap|analytic)", re.IGNORECASE)
FIT_NOT_OK = "fit not ok"
TO_DECIDE = "to decide: "
SEEDS_UNKNOWN = "training-seed noise not measured"


class ClaimsError(ParameterError):
    """A claims table does not follow the schema (names the column and the rows)."""


def check_claims(df: pd.DataFrame) -> pd.DataFrame:
    """Validate a claims table against the schema and the verdict rules; returns it with columns in
    schema order and the numeric columns as floats. Raises ClaimsError naming what is wrong: besides
    the columns and types, every 'holds'/'refuted' row needs a finite lo <= value <= hi whose note
    names the interval's kind ("95% interval: bootstrap ..."/"analytic ..."); no 'refuted' row may
    rest on a fit that is not ok; 'inconclusive' and 'not testable' rows need a note."""
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
    for c in ("claim_id", "paper", "claim", "measure"):
        empty = [i for i, v in enumerate(out[c]) if not v.strip()]
        if empty:
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
    needs_note = [r.claim_id for r in out.itertuples() if r.verdict not in DECIDED and not r.note.strip()]
    if needs_note:
        raise ClaimsError(f"an 'inconclusive' or 'not testable' claim needs a note saying why: {needs_note}")
    for r in out.itertuples():
        if not (math.isnan(r.lo) or math.isnan(r.hi)) and r.lo > r.hi:
            raise ClaimsError(f"claim {r.claim_id!r}: lo {r.lo} > hi {r.hi}")
    decided = out[out["verdict"].isin(DECIDED)]
    no_interval = [r.claim_id for r in decided.itertuples()
                   if not (all(math.isfinite(x) for x in (r.value, r.lo, r.hi)) and r.lo <= r.value <= r.hi)]
    if no_interval:
        raise ClaimsError(f"a 'holds' or 'refuted' claim needs a finite 95% interval lo <= value <= hi: {no_interval}")
    unstated = [r.claim_id for r in decided.itertuples() if not INTERVAL_RE.search(r.note)]
    if unstated:
        raise ClaimsError(f"a 'holds' or 'refuted' claim's note must say how its 95% interval was made "
                          f"('95% interval: bootstrap ...' or '... analytic ...'): {unstated}")
    on_bad_fit = [r.claim_id for r in out.itertuples() if r.verdict == "refuted" and FIT_NOT_OK in r.note]
    if on_bad_fit:
        raise ClaimsError(f"a 'refuted' claim cannot rest on a fit that is not ok: {on_bad_fit}")
    return out


def claim(claim_id: str, paper: str, text: str, measure: str, value=math.nan, lo=math.nan, hi=math.nan,
          verdict: str = "not testable", figure: str = "", note: str = "") -> dict:
    """One row of a claims table (a dict in schema order). Studies build decided rows with `judge`;
    `claim` directly only for 'not testable' rows (the profile lacks what the claim needs)."""
    return {"claim_id": claim_id, "paper": paper, "claim": text, "measure": measure, "value": _f(value),
            "lo": _f(lo), "hi": _f(hi), "verdict": verdict, "figure": figure, "note": note}


def _f(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def to_decide(note: str) -> str:
    """What would decide an inconclusive claim: the note's 'to decide: ...' part ('' when none)."""
    i = note.rfind(TO_DECIDE)
    return note[i + len(TO_DECIDE):].strip() if i >= 0 else ""


def frame(rows: list[dict], profile: str | None = None) -> pd.DataFrame:
    """The validated claims table of `rows`; at a profile where claims are not testable
    (`core.profiles`: smoke) every verdict becomes 'not testable' (the measurement stays, the note
    says why)."""
    from scalinglaws.core import profiles as PR
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    if profile is not None and not PR.claims_testable(profile) and len(df):
        why = PR.get(profile).why_not_testable
        df["note"] = [why + (f" (at a real profile: {v}; {n})" if n else f" (at a real profile: {v})")
                      for v, n in zip(df["verdict"], df["note"])]
        df["verdict"] = "not testable"
    return check_claims(df)


def collect(studies, root=None) -> tuple[pd.DataFrame, list[str]]:
    """Every study's stored claims at its best profile with a claims table (core.profiles.best_first),
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


# ---------------------------------------------------------------------------------------------
# what a claim says of its value
@dataclass(frozen=True)
class Contains:
    """The claim names a value: holds when the interval contains `target`, refuted when it excludes
    it. With `alternative` (the value the claim must be told apart from, e.g. 0 for "loss scales
    like N^-1" against "loss does not scale"), an interval containing both is inconclusive; so is
    one containing a rival of `rivals` ((value, what it is), e.g. the exponent a competing
    prediction names): an interval that fits two predictions confirms neither."""
    target: float
    alternative: float | None = None
    alternative_is: str = ""
    rivals: tuple = ()

    def decide(self, lo: float, hi: float) -> tuple[str, str]:
        t = self.target
        if not lo <= t <= hi:
            return "refuted", f"{t:g} outside the interval"
        for a, what in ((self.alternative, self.alternative_is), *self.rivals):
            if a is not None and lo <= a <= hi:
                what = f" ({what})" if what else ""
                return "inconclusive", (f"the interval contains both {t:g} and {a:g}{what}: too wide to tell the "
                                        "claim from its negation")
        return "holds", f"{t:g} inside the interval"

    def describe(self) -> str:
        return f"= {self.target:g}"


@dataclass(frozen=True)
class Above:
    """The claim says the value exceeds `threshold` (a gain: threshold 0): holds when the whole
    interval lies above, refuted when it lies below, inconclusive when it straddles it."""
    threshold: float = 0.0

    def decide(self, lo: float, hi: float) -> tuple[str, str]:
        t = self.threshold
        if lo > t:
            return "holds", f"interval above {t:g}"
        if hi < t:
            return "refuted", f"interval below {t:g}"
        return "inconclusive", f"the interval straddles {t:g}: too wide to tell the claim from its negation"

    def describe(self) -> str:
        return f"> {self.threshold:g}"


@dataclass(frozen=True)
class Below:
    """The claim says the value lies below `threshold` (a loss difference: threshold 0)."""
    threshold: float = 0.0

    def decide(self, lo: float, hi: float) -> tuple[str, str]:
        t = self.threshold
        if hi < t:
            return "holds", f"interval below {t:g}"
        if lo > t:
            return "refuted", f"interval above {t:g}"
        return "inconclusive", f"the interval straddles {t:g}: too wide to tell the claim from its negation"

    def describe(self) -> str:
        return f"< {self.threshold:g}"


@dataclass(frozen=True)
class Within:
    """The claim says the value lies in [low, high] (e.g. a ratio within 2x of 1): holds when the
    interval lies inside, refuted when it lies wholly outside, inconclusive when it crosses an edge."""
    low: float
    high: float

    def decide(self, lo: float, hi: float) -> tuple[str, str]:
        if self.low <= lo and hi <= self.high:
            return "holds", f"interval inside [{self.low:g}, {self.high:g}]"
        if hi < self.low or lo > self.high:
            return "refuted", f"interval outside [{self.low:g}, {self.high:g}]"
        return "inconclusive", (f"the interval crosses an edge of [{self.low:g}, {self.high:g}]: too wide to tell "
                                "the claim from its negation")

    def describe(self) -> str:
        return f"in [{self.low:g}, {self.high:g}]"


# ---------------------------------------------------------------------------------------------
# what the regime must be for the claim to apply, and the training-seed noise of the measure
_OPS = {"<": lambda v, t: v < t, "<=": lambda v, t: v <= t, ">": lambda v, t: v > t, ">=": lambda v, t: v >= t}


@dataclass(frozen=True)
class Precondition:
    """A condition the paper's regime meets and a claim needs, as a measured value against a
    threshold (e.g. "mean router entropy / log E" < 0.9). Unmet (or unmeasured: NaN) makes the
    claim inconclusive, the note giving the measured value."""
    what: str
    value: float
    op: str
    threshold: float

    def __post_init__(self):
        if self.op not in _OPS:
            raise ValueError(f"Precondition op must be one of {list(_OPS)}, not {self.op!r}")

    @property
    def met(self) -> bool:
        v = _f(self.value)
        return math.isfinite(v) and _OPS[self.op](v, self.threshold)

    def describe(self) -> str:
        v = _f(self.value)
        return f"{self.what} {'not measured' if not math.isfinite(v) else f'{v:.3g}'} (needs {self.op} {self.threshold:g})"


@dataclass(frozen=True)
class SeedNoise:
    """The training-seed SD of a claim's measure (`core.seeds.seed_sd`; NaN: not measured) and how
    many independently trained models the value sums or differences. A claim on reference data
    (published points, no training) passes `seeds=None` to `judge` instead."""
    measure: str
    sd: float
    n_models: int = 1
    included: str = ""  # how the interval already covers training seeds (then nothing is added)

    @property
    def known(self) -> bool:
        return bool(self.included) or math.isfinite(_f(self.sd))


# a `tables` key a caller sets when every interval its claims compute already carries training-seed noise
# (its value says how); `seed_noise` then adds nothing and the note states it
SEEDS_INCLUDED = "seeds_included"


def seeds_included(how: str) -> SeedNoise:
    """For an interval that already resamples independently trained models (e.g. a bootstrap over
    models trained from several seeds): nothing to add; `how` is stated in the note."""
    return SeedNoise("", math.nan, 1, how)


def seed_noise_of_fit(tables: dict | None, measure: str, design, y_mean: float, column: int,
                      base: SeedNoise | None = None) -> SeedNoise:
    """The training-seed SD of one coefficient of a fit on log y, linear in its coefficients with
    design matrix `design` (points x coefficients): the seed SD of `measure` (y's units) taken to
    log scale (/ y_mean) and propagated by least squares, sd * sqrt((X'X)^-1)[column, column]. An
    approximation for nonlinear laws (their linear part), stated in the note. `base`: the measure's
    SeedNoise when the caller pools it over chosen cells (default: every replicated cell)."""
    import numpy as np
    base = base or seed_noise(tables, measure)
    if not base.known or base.included:
        return base
    X = np.asarray(design, dtype=float)
    var = np.linalg.pinv(X.T @ X)[column, column]
    return SeedNoise(f"{base.measure or measure}, propagated through the fit", base.sd / y_mean * math.sqrt(var), 1)


def seed_noise(tables: dict | None, measure: str, n_models: int = 1, cells=None, bound: str | None = None,
               why: str = "") -> SeedNoise:
    """The SeedNoise of `measure` from a study's stored `seeds` table (absent: not measured).

    bound: another measure of the seeds table whose SD bounds this one's from above (`why` says
    why, e.g. "Var(A - B) = Var(A) + Var(B) >= Var(A) for independent seeds, and B - base has only
    A's noise"). Used only while `measure` itself has no replicates; the note then names both."""
    included = (tables or {}).get(SEEDS_INCLUDED)
    if included:  # e.g. a paper's own data whose per-model errors were set to its seed-to-seed SD
        return seeds_included(str(included))
    table = (tables or {}).get("seeds")
    sd = S.seed_sd(table, measure, cells=cells)
    if not math.isfinite(sd) and bound:
        up = S.seed_sd(table, bound, cells=cells)
        if math.isfinite(up):
            return _with_reproduction_gap(
                tables, bound, cells, SeedNoise(f"{bound}, an upper bound for {measure} (not replicated itself: {why})",
                                                up, n_models))
    return _with_reproduction_gap(tables, measure, cells, SeedNoise(measure, sd, n_models))


def _with_reproduction_gap(tables: dict | None, measure: str, cells, noise: SeedNoise) -> SeedNoise:
    """`noise` widened (in quadrature) by the RMS gap between the stored run's values and their
    seed's replicates (`core.seeds.reproduction_gap`): where the stored seed, retrained, does not give
    the stored value again, the replicates' spread is around another centre, and the stored value's
    distance from it is noise of the same kind that the verdict must carry."""
    gap = S.reproduction_gap((tables or {}).get(S.REPRODUCTION_TABLE), measure, cells)
    if not (math.isfinite(_f(noise.sd)) and math.isfinite(gap) and gap > S.REPRODUCED_ATOL):
        return noise
    return SeedNoise(f"{noise.measure}; widened by {gap:.2g}, the RMS gap between the stored values and their own "
                     "seed retrained", math.hypot(noise.sd, gap), noise.n_models)


def fit_status(row) -> tuple[bool, str]:
    """(ok, why_not_ok) of a stored fits row (a Series or dict with `ok` and `why_not_ok`/`message`)."""
    get = row.get if hasattr(row, "get") else (lambda k, d=None: d)
    why = get("why_not_ok", "") or get("message", "") or ""
    return bool(get("ok", False)), str(why) if why == why else ""


def judge(claim_id: str, paper: str, text: str, measure: str, value, lo, hi, test, *, interval: str,
          seeds: SeedNoise | None, figure: str = "", note: str = "", fit: tuple[bool, str] | None = None,
          preconditions=(), decide: str = "") -> dict:
    """One claims row with its verdict by the four-verdict rule.

    test          what the claim says of `value` (Contains, Above, Below, Within)
    interval      how [lo, hi] was made, e.g. "paired bootstrap over evaluation windows" or
                  "analytic, +-1.96 SE" (must name 'bootstrap' or 'analytic'); it goes in the note
    seeds         the measure's training-seed noise (`seed_noise`): the interval is widened by it;
                  unknown makes the claim inconclusive. None: reference data, no training seeds
    fit           (ok, why_not_ok) of the fit the value comes from, by the trust rule
    preconditions Precondition objects the regime must meet
    decide        what would decide the claim if it ends inconclusive (added to the generic remedies)
    """
    value, lo, hi = _f(value), _f(lo), _f(hi)
    reasons, remedies = [], []
    if not all(math.isfinite(x) for x in (value, lo, hi)):
        reasons.append("no 95% interval of the value")
        remedies.append("an interval (bootstrap or analytic) for the measure")
    elif not lo <= value <= hi:
        reasons.append(f"the value {value:.3g} lies outside its interval [{lo:.3g}, {hi:.3g}]")
        remedies.append("an interval centred on the estimate")
    elif seeds is not None and seeds.included:
        interval += f"; training seeds included ({seeds.included})"
    elif seeds is not None and seeds.known:
        lo, hi = S.with_seed_noise(value, lo, hi, seeds.sd, seeds.n_models)
        interval += f", widened by training-seed SD {seeds.sd:.3g} ({seeds.measure}, {seeds.n_models} model" \
                    f"{'s' if seeds.n_models != 1 else ''})"
    if seeds is not None and not seeds.known:
        reasons.append(f"{SEEDS_UNKNOWN} (measure {seeds.measure})")
        remedies.append(f"at least {S.MIN_SEEDS} training seeds of {seeds.measure}")
    if fit is not None and not fit[0]:
        reasons.append(f"{FIT_NOT_OK}" + (f": {fit[1]}" if fit[1] else ""))
        remedies.append("a fit that passes the trust rule (more sizes, or a law that describes the data)")
    unmet = [p for p in preconditions if not p.met]
    if unmet:
        reasons.append("precondition unmet: " + "; ".join(p.describe() for p in unmet))
        remedies.append("a regime where " + "; ".join(f"{p.what} {p.op} {p.threshold:g}" for p in unmet))
    parts = [note] if note else []
    if math.isfinite(lo) and math.isfinite(hi) and lo <= value <= hi:
        raw, why = test.decide(lo, hi)
        if raw == "inconclusive":
            reasons.append(why)
            remedies.append("a narrower interval (more evaluation tokens or training seeds, or larger models)")
        elif reasons:
            parts.append(f"on the interval alone: {raw} ({why})")
        else:
            parts.append(why)
    else:
        raw = "inconclusive"
    parts.append(f"95% interval: {interval}")
    if reasons:
        verdict = "inconclusive"
        parts = ["inconclusive: " + "; ".join(reasons)] + parts
        parts.append(TO_DECIDE + "; ".join(dict.fromkeys(([decide] if decide else []) + remedies)))
    else:
        verdict = raw
    return claim(claim_id, paper, text, measure, value, lo, hi, verdict, figure, "; ".join(parts))
