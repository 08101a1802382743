"""Audit of EVERY stored claims table (all studies, cpu and smoke, under data/results/, not the
suite's scratch root): what issue 23 says a reader can trust.

  - only the four verdicts;
  - every holds/refuted row has a finite lo <= value <= hi;
  - no refuted row rests on a fit that is not ok;
  - no decided row ignores training-seed noise (its note says how the seeds entered: widened by a
    training-seed SD, seeds included in the resampling, or reference data without training seeds);
  - every study's cpu results have a `seeds` table with >= 3 seeds in each (cell, measure);
  - the DELLA and merging method comparisons state their selection split (the `tuned` tables, and
    DELLA's tuned claims: decided only when picked on one half and scored on the other);
  - the Findings chapter shows the regime table and the counts per verdict.

Each check is a function returning the problems it finds; the tests run it on the stored tables
(no problem) and on a doctored copy (the problem found), so no check passes vacuously.
"""
from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from scalinglaws.core import claims as CL
from scalinglaws.core import seeds as S
from scalinglaws.core.paths import DATA_DIR, REPO_ROOT

RESULTS = DATA_DIR / "results"
PROFILES = ("cpu", "smoke")
STUDIES = sorted(p.name for p in RESULTS.iterdir() if p.is_dir())
CLAIM_TABLES = sorted(RESULTS.glob("*/*/claims.parquet"))
# how a decided row's note says training-seed noise entered its interval (core.claims.judge)
SEEDS_STATED = ("widened by training-seed SD", "training seeds included", "no training seeds")
DELLA_TUNED = ("della_beats_dare_tuned", "della_beats_ta", "della_beats_ties", "della_beats_base")
PICKED_APART = "picked on the selection half"


# ------------------------------------------------------------------------------------ the checks
def verdict_problems(df: pd.DataFrame) -> list[str]:
    bad = sorted(set(df["verdict"]) - set(CL.VERDICTS))
    return [f"verdicts outside the four: {bad}"] if bad else []


def interval_problems(df: pd.DataFrame) -> list[str]:
    out = []
    for r in df[df["verdict"].isin(CL.DECIDED)].itertuples():
        v, lo, hi = (float(x) for x in (r.value, r.lo, r.hi))
        if not (all(math.isfinite(x) for x in (v, lo, hi)) and lo <= v <= hi):
            out.append(f"{r.claim_id}: {r.verdict} without a finite lo <= value <= hi ({lo}, {v}, {hi})")
    return out


def refuted_fit_problems(df: pd.DataFrame) -> list[str]:
    return [f"{r.claim_id}: refuted on a fit that is not ok" for r in df.itertuples()
            if r.verdict == "refuted" and CL.FIT_NOT_OK in r.note]


def seed_noise_problems(df: pd.DataFrame) -> list[str]:
    return [f"{r.claim_id}: {r.verdict} on an interval that does not say how training-seed noise entered"
            for r in df[df["verdict"].isin(CL.DECIDED)].itertuples()
            if not any(s in r.note for s in SEEDS_STATED)]


SEED_SD_NOTE = re.compile(r"widened by training-seed SD \S+ \(([\w:]+)")


def reproduction_gap_problems(df: pd.DataFrame, repro: pd.DataFrame | None) -> list[str]:
    """A decided row widened by the seed SD of a measure whose stored values its own seed, retrained,
    does not give again (`seeds_reproduction`, gap above float noise) must carry that gap too."""
    out = []
    for r in df[df["verdict"].isin(CL.DECIDED)].itertuples():
        m = SEED_SD_NOTE.search(r.note)
        if m and S.reproduction_gap(repro, m.group(1)) > S.REPRODUCED_ATOL and "RMS gap" not in r.note:
            out.append(f"{r.claim_id}: {r.verdict} with the seed SD of {m.group(1)} but not its reproduction gap "
                       f"{S.reproduction_gap(repro, m.group(1)):.3g}")
    return out


def seeds_table_problems(seeds: pd.DataFrame | None) -> list[str]:
    if seeds is None:
        return ["no seeds table"]
    seeds = S.check_seeds(seeds)
    n = seeds.groupby(["cell", "measure"])["seed"].nunique()
    few = n[n < S.MIN_SEEDS]
    return ([] if len(n) else ["an empty seeds table"]) + [f"{c}/{m}: {k} seeds" for (c, m), k in few.items()]


def tuned_table_problems(tuned: pd.DataFrame | None) -> list[str]:
    """A tuned-methods table states its selection split and each method's number of settings tried."""
    if tuned is None or not len(tuned):
        return ["no tuned table (each method's pick on one half, its score on the other)"]
    out = []
    for col in ("method", "tried", "setting", "select", "score", "selection"):
        if col not in tuned.columns:
            out.append(f"tuned table lacks column {col!r}")
    if out:
        return out
    if not tuned["selection"].str.contains("half").all():
        out.append("a tuned row does not state its selection split")
    if not (pd.to_numeric(tuned["tried"]) >= 1).all():
        out.append("a tuned row has no settings tried")
    if not np.isfinite(pd.to_numeric(tuned["score"], errors="coerce")).all():
        out.append("a tuned row has no held-out score")
    return out


def della_claim_problems(df: pd.DataFrame) -> list[str]:
    """DELLA's tuned claims: each states the settings tried per method, and a decided one was picked
    on one half of the windows and scored on the other."""
    out = []
    rows = df.set_index("claim_id")
    for cid in DELLA_TUNED:
        if cid not in rows.index:
            out.append(f"{cid}: missing")
            continue
        r = rows.loc[cid]
        if "settings tried" not in r["note"]:
            out.append(f"{cid}: the settings each method tried are not stated")
        if r["verdict"] in CL.DECIDED and PICKED_APART not in r["measure"]:
            out.append(f"{cid}: {r['verdict']} on picks selected and scored on the same windows")
        if PICKED_APART not in r["measure"] and "same windows" not in r["note"]:
            out.append(f"{cid}: the selection split is not stated")
    return out


def findings_problems(nb: dict, claims: pd.DataFrame, regimes: dict) -> list[str]:
    """The Findings notebook shows the scorecard (counts per verdict) and the regime tables, and both
    are complete: every verdict a column whose counts add up, every study with a regime table."""
    from scalinglaws.report import VERDICT_ORDER, scorecard
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    out = [f"Findings does not call {f}" for f in ("scorecard(", "regime_table(") if f not in code]
    card = scorecard(claims, "study")
    if list(card.columns) != [*VERDICT_ORDER, "total"] or int(card["total"].sum()) != len(claims):
        out.append("the scorecard's counts per verdict do not cover every claim")
    out += [f"no regime table for {s}" for s, t in regimes.items() if t is None or not len(t)]
    return out


# ------------------------------------------------------------------------------------ helpers
def _read(path) -> pd.DataFrame:
    return pd.read_parquet(path)


def _table(study, profile, name):
    p = RESULTS / study / profile / f"{name}.parquet"
    return pd.read_parquet(p) if p.exists() else None


def _claims_id(path) -> str:
    return f"{path.parent.parent.name}/{path.parent.name}"


def _findings_inputs():
    from scalinglaws.studies import regime_table, study_names
    claims, _ = CL.collect(study_names(), RESULTS)
    nb = json.loads((REPO_ROOT / "book" / "findings.ipynb").read_text())
    return nb, claims, {s: regime_table(s, "best", RESULTS) for s in study_names()}


# ------------------------------------------------------------------------------------ the stored tables
def test_every_study_and_profile_has_a_claims_table():
    have = {_claims_id(p) for p in CLAIM_TABLES}
    assert have >= {f"{s}/{p}" for s in STUDIES for p in PROFILES}


@pytest.mark.parametrize("path", CLAIM_TABLES, ids=_claims_id)
def test_stored_claims_table(path):
    df = _read(path)
    repro = _table(path.parent.parent.name, path.parent.name, S.REPRODUCTION_TABLE)
    problems = (verdict_problems(df) + interval_problems(df) + refuted_fit_problems(df)
                + seed_noise_problems(df) + reproduction_gap_problems(df, repro))
    assert not problems, problems
    CL.check_claims(df)  # the schema's own validator agrees


@pytest.mark.parametrize("study", STUDIES)
def test_cpu_seeds_table(study):
    assert not seeds_table_problems(_table(study, "cpu", "seeds"))


@pytest.mark.parametrize("study,profile", [(s, p) for s in ("della", "merging") for p in PROFILES])
def test_method_comparisons_state_their_split(study, profile):
    tuned = _table(study, profile, "tuned")
    if study == "della":
        claims = _table(study, profile, "claims")
        assert not della_claim_problems(claims)
        if tuned is not None and not len(tuned):
            # a run stored before the window split: allowed only while no tuned claim is decided
            # (each says it was selected and scored on the same windows: della_claim_problems)
            assert not claims[claims["claim_id"].isin(DELLA_TUNED)]["verdict"].isin(CL.DECIDED).any()
            return
    assert not tuned_table_problems(tuned)


def test_findings_shows_regimes_and_verdict_counts():
    assert not findings_problems(*_findings_inputs())


# ------------------------------------------------------------------------------------ doctored copies
@pytest.fixture(scope="module")
def stored():
    """A decided row (with its seed note), and DELLA's cpu claims, to doctor."""
    allc = pd.concat([_read(p) for p in CLAIM_TABLES], ignore_index=True)
    return allc[allc["verdict"].isin(CL.DECIDED)].reset_index(drop=True), _table("della", "cpu", "claims")


def test_doctored_verdict_fails(stored):
    d = stored[0].copy()
    d.loc[0, "verdict"] = "does not hold"
    assert verdict_problems(d)


@pytest.mark.parametrize("change", [{"lo": np.nan}, {"hi": -np.inf}, {"value": 1e9}])
def test_doctored_interval_fails(stored, change):
    d = stored[0].copy()
    for k, v in change.items():
        d.loc[0, k] = v
    assert interval_problems(d)


def test_doctored_refuted_on_bad_fit_fails(stored):
    d = stored[0].copy()
    d.loc[0, "verdict"] = "refuted"
    d.loc[0, "note"] = f"{CL.FIT_NOT_OK}: R^2 0.6 < 0.9; " + d.loc[0, "note"]
    assert refuted_fit_problems(d)


def test_doctored_seed_note_fails(stored):
    d = stored[0].copy()
    for s in SEEDS_STATED:
        d["note"] = d["note"].str.replace(s, "evaluation windows only", regex=False)
    assert seed_noise_problems(d) and len(seed_noise_problems(d)) == len(d)


def test_doctored_reproduction_gap_fails():
    """The merging cpu claims carry the gap of their stored seed; with a larger gap on a measure whose
    rows do not mention it (a claim computed before the gap was known), the check finds them."""
    claims = _table("merging", "cpu", "claims")
    decided = claims[claims["verdict"].isin(CL.DECIDED)]
    measures = {m.group(1) for n in decided["note"] for m in [SEED_SD_NOTE.search(n)] if m}
    assert measures, "no decided merging claim names its seed measure"
    repro = pd.DataFrame({"cell": "c", "measure": sorted(measures), "seed": 0, "stored": 0.0, "replicate": 0.5,
                          "diff": 0.5})
    stripped = claims.assign(note=claims["note"].str.replace("RMS gap", "gap", regex=False))
    assert len(reproduction_gap_problems(stripped, repro)) == int(decided["note"].map(lambda n: bool(SEED_SD_NOTE.search(n))).sum())
    assert not reproduction_gap_problems(stripped, repro.assign(diff=1e-12))


def test_doctored_seeds_table_fails():
    seeds = _table("testbed", "cpu", "seeds")
    assert seeds_table_problems(None)
    two = seeds[seeds["seed"] != seeds["seed"].max()]
    assert seeds_table_problems(two)


def test_doctored_tuned_table_fails():
    tuned = _table("merging", "cpu", "tuned")
    assert tuned_table_problems(None) and tuned_table_problems(tuned.iloc[:0])
    assert tuned_table_problems(tuned.assign(selection="best on the evaluation windows"))
    assert tuned_table_problems(tuned.drop(columns="tried"))
    assert tuned_table_problems(tuned.assign(score=np.nan))


def test_doctored_della_claims_fail(stored):
    della = stored[1].copy()
    i = della.index[della["claim_id"] == "della_beats_ta"][0]
    picked = PICKED_APART in della.loc[i, "measure"]
    della.loc[i, "measure"] = della.loc[i, "measure"].replace("; " + PICKED_APART + ", scored on the other", "")
    della.loc[i, "verdict"] = "holds"
    della.loc[i, "note"] = della.loc[i, "note"].replace("same windows", "windows")
    assert della_claim_problems(della), (picked, della.loc[i].to_dict())
    assert della_claim_problems(della[della["claim_id"] != "della_beats_ties"])
    untried = stored[1].copy()
    untried["note"] = untried["note"].str.replace("settings tried", "settings", regex=False)
    assert della_claim_problems(untried)


def test_doctored_findings_fail():
    nb, claims, regimes = _findings_inputs()
    cut = {**nb, "cells": [c for c in nb["cells"] if "scorecard(" not in "".join(c["source"])]}
    assert findings_problems(cut, claims, regimes)
    cut = {**nb, "cells": [c for c in nb["cells"] if "regime_table(" not in "".join(c["source"])]}
    assert findings_problems(cut, claims, regimes)
    assert findings_problems(nb, claims, {**regimes, "della": None})
    wrong = claims.copy()
    wrong.loc[wrong.index[0], "verdict"] = "unclear"
    assert findings_problems(nb, wrong, regimes)
