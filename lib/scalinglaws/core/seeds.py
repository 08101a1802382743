"""Training-seed replicates: the one schema of a study's `seeds` table and the noise it implies.

Every interval a study computes from one trained model covers evaluation sampling only. Training
the same configuration again from another seed moves the measurement by more than that (routing
Hash at E=2 reads 4.80 at one size and 4.94 at the next), so a verdict must also know the spread
across training seeds. A study stores it as a table `seeds` with exactly these columns:

    cell     which configuration was replicated (e.g. "d32l2", "d32l2/E8/sbase"): a short name
    measure  the quantity measured on it (e.g. "test_ce", "gain_over_dense"): the same name a
             claim uses when it asks for its noise
    seed     the training seed (int); at least MIN_SEEDS distinct seeds per (cell, measure)
    value    the measurement (float, finite)

`seed_spread` summarises it per (cell, measure); `seed_sd` pools the variance over cells for one
measure (the number a claim uses); `with_seed_noise` widens an evaluation interval by it.

The stored run's own seed is among the replicated seeds, and its replicate should give the stored
value again. Where it does not (the stored run was made by older code, or with another thread
count), the replicates measure the spread around a different centre: table `seeds_reproduction`
(REPRODUCTION_COLUMNS, one row per stored value checked) keeps the gap, and `reproduction_gap`
(its RMS per measure) is added to the seed SD by `core.claims.seed_noise`.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from scalinglaws.core.validation import ParameterError

COLUMNS = ("cell", "measure", "seed", "value")
MIN_SEEDS = 3
REPRODUCTION_TABLE = "seeds_reproduction"
REPRODUCTION_COLUMNS = ("cell", "measure", "seed", "stored", "replicate", "diff")
REPRODUCED_ATOL = 1e-9  # a gap below this is float noise (summation order), not a different model
Z95 = 1.959963984540054


class SeedsError(ParameterError):
    """A seeds table does not follow the schema (names the column and the rows)."""


def check_seeds(df: pd.DataFrame) -> pd.DataFrame:
    """Validate a seeds table; returns it in schema order with typed columns. Raises SeedsError."""
    if not isinstance(df, pd.DataFrame):
        raise SeedsError(f"a seeds table is a DataFrame, not {type(df).__name__}")
    missing = [c for c in COLUMNS if c not in df.columns]
    extra = [c for c in df.columns if c not in COLUMNS]
    if missing or extra:
        raise SeedsError(f"seeds table columns must be exactly {list(COLUMNS)}; missing {missing}, extra {extra}")
    out = df[list(COLUMNS)].reset_index(drop=True)
    for c in ("cell", "measure"):
        bad = [i for i, v in enumerate(out[c]) if not (isinstance(v, str) and v.strip())]
        if bad:
            raise SeedsError(f"seeds column {c!r} must hold non-empty strings; rows {bad} do not")
    try:
        seeds = pd.to_numeric(out["seed"], errors="raise")
        values = pd.to_numeric(out["value"], errors="raise").astype(float)
    except (TypeError, ValueError):
        raise SeedsError("seeds columns 'seed' (int) and 'value' (float) must be numeric") from None
    if not np.all(np.equal(np.mod(seeds, 1), 0)):
        raise SeedsError(f"seeds column 'seed' must hold integers: {sorted(set(seeds))}")
    out["seed"] = seeds.astype(int)
    out["value"] = values
    bad = [i for i, v in enumerate(values) if not math.isfinite(v)]
    if bad:
        raise SeedsError(f"seeds column 'value' must be finite; rows {bad} are not")
    dup = out.duplicated(["cell", "measure", "seed"])
    if dup.any():
        raise SeedsError(f"(cell, measure, seed) must be unique; duplicated rows {list(np.flatnonzero(dup))}")
    return out


def seed_spread(df: pd.DataFrame) -> pd.DataFrame:
    """Per (cell, measure): n_seeds, mean, sd (ddof 1; NaN below 2 seeds), min and max."""
    df = check_seeds(df)
    g = df.groupby(["cell", "measure"], sort=True)["value"]
    out = g.agg(n_seeds="count", mean="mean", sd=lambda v: float(np.std(v, ddof=1)) if len(v) > 1 else math.nan,
                min="min", max="max").reset_index()
    return out


def seed_sd(df: pd.DataFrame | None, measure: str, cells=None, min_seeds: int = MIN_SEEDS) -> float:
    """The training-seed SD of `measure`: the variances of the cells with at least `min_seeds`
    seeds, pooled (weighted by their degrees of freedom). NaN when no cell has enough seeds or the
    table is missing, so a caller can say 'seed noise unknown' rather than assume it is zero."""
    if df is None or len(df) == 0:
        return math.nan
    df = check_seeds(df)
    df = df[df["measure"] == measure]
    if cells is not None:
        df = df[df["cell"].isin(list(cells))]
    ss, dof = 0.0, 0
    for _, v in df.groupby("cell")["value"]:
        if len(v) >= min_seeds:
            ss += float(np.sum((v - v.mean()) ** 2))
            dof += len(v) - 1
    return math.sqrt(ss / dof) if dof else math.nan


def reproduction_gap(df: pd.DataFrame | None, measure: str, cells=None) -> float:
    """The RMS over the checked cells of (replicate - stored) for `measure` at the stored run's seed
    (`seeds_reproduction`); NaN when no row checks it (no table, or no stored value to compare)."""
    if df is None or not len(df):
        return math.nan
    d = df[df["measure"] == measure]
    if cells is not None:
        d = d[d["cell"].isin(list(cells))]
    diff = d["diff"].to_numpy(dtype=float)
    return float(np.sqrt(np.mean(diff ** 2))) if len(diff) else math.nan


def reproduction_sentence(df: pd.DataFrame | None) -> str:
    """The `seeds_reproduction` table in words, for a chapter's replicates section: whether the stored
    run's own seed, retrained, gives the stored values again, and if not by how much per measure."""
    if df is None or not len(df):
        return ("No stored value was checked against its own seed retrained (no table seeds_reproduction "
                "at this profile).")
    worst = float(df["diff"].abs().max())
    if worst <= REPRODUCED_ATOL:
        return (f"The stored run's own seed, retrained, gives its {len(df)} checked values again "
                f"(largest difference {worst:.1g}: float noise).")
    gaps = ", ".join(f"{m} {reproduction_gap(df, m):.2g}" for m in sorted(set(df["measure"])))
    return (f"The stored run's own seed, retrained by the current code, misses its stored values by up to {worst:.2g} "
            f"(RMS per measure: {gaps}; the table seeds_reproduction): the stored run was made by older code or "
            "another thread count, so every claim adds that gap to the seed SD in quadrature.")


def with_seed_noise(value: float, lo: float, hi: float, sd: float, n_models: int = 1) -> tuple[float, float]:
    """Widen an evaluation interval [lo, hi] around `value` by training-seed noise: each side's
    half-width combined in quadrature with 1.96 * sd * sqrt(n_models), where n_models is how many
    independently trained models the value sums or differences (2 for "A beats B"). NaN sd leaves
    the interval as it is (the caller states that the seed noise is unknown)."""
    if not math.isfinite(sd):
        return lo, hi
    extra = Z95 * sd * math.sqrt(n_models)
    lo_w = value - math.hypot(value - lo, extra)
    hi_w = value + math.hypot(hi - value, extra)
    return lo_w, hi_w


SPREAD_COLUMNS = ["cell", "measure", "n_seeds", "mean", "sd", "min", "max", "stored"]


def spread_beside_stored(seeds: pd.DataFrame | None, stored, pooled: bool = False) -> pd.DataFrame:
    """A chapter's seed table: `seed_spread` per (cell, measure) beside the stored single-seed value
    (`stored(cells)` -> frame with cell, measure, value), and with `pooled` each measure's pooled
    `seed_sd` in `pooled_sd`. Empty (with the columns) without a seeds table."""
    cols = SPREAD_COLUMNS + (["pooled_sd"] if pooled else [])
    if seeds is None:
        return pd.DataFrame(columns=cols)
    sp = seed_spread(seeds)
    st = stored(sorted(set(sp["cell"]))).rename(columns={"value": "stored"})[["cell", "measure", "stored"]]
    sp = sp.merge(st, on=["cell", "measure"], how="left")
    if pooled:
        sp["pooled_sd"] = sp["measure"].map(lambda m: seed_sd(seeds, m))
    return sp[cols]
