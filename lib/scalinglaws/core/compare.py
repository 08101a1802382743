"""Two stores' tables, value by value: a part rerun elsewhere (a fresh clone, another machine)
against the committed tables (`scripts/compare_stores.py`).

Rows are matched on a key: the `unit` column (the unit record a row comes from) where the table
has one, else every column that is not a float. A part remakes a subset of a study's table, so
rows only in the reference store are expected and counted; a rerun row the reference lacks is a
difference. Float columns of matched rows are compared with an absolute tolerance (0: bit for
bit); other columns must be equal. Columns that measure the run rather than the model (wall
times: names ending in `_s` or `seconds`; where and when it ran) are skipped and listed, since
they differ on every rerun."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

ENVIRONMENT_COLUMNS = ("node", "device", "date", "commit", "host")


def skipped_column(name: str) -> bool:
    """A column that describes the run (time taken, where, when), not its result."""
    return name.endswith("_s") or name.endswith("seconds") or name in ENVIRONMENT_COLUMNS


@dataclass
class TableDiff:
    table: str
    key: list[str]
    matched: int
    only_reference: int
    only_rerun: int
    max_abs_diff: float = 0.0  # over the compared float columns of matched rows
    worst_column: str = ""
    beyond_tol: int = 0  # matched float values farther apart than the tolerance
    unequal: dict[str, int] = field(default_factory=dict)  # non-float column -> unequal matched rows
    skipped: list[str] = field(default_factory=list)
    missing_columns: list[str] = field(default_factory=list)  # in one table only

    @property
    def same(self) -> bool:
        return (self.only_rerun == 0 and self.beyond_tol == 0 and not self.unequal and not self.missing_columns
                and self.matched > 0)

    def line(self) -> str:
        state = "same" if self.same else "DIFFERENT"
        parts = [f"{self.table}: {state}; {self.matched} rows matched on {'+'.join(self.key)}",
                 f"{self.only_reference} only in the reference", f"{self.only_rerun} only in the rerun",
                 f"max |diff| {self.max_abs_diff:.3g}" + (f" ({self.worst_column})" if self.worst_column else "")]
        if self.beyond_tol:
            parts.append(f"{self.beyond_tol} values beyond the tolerance")
        if self.unequal:
            parts.append("unequal " + ", ".join(f"{c} ({n})" for c, n in sorted(self.unequal.items())))
        if self.missing_columns:
            parts.append("columns in one table only: " + ", ".join(self.missing_columns))
        if self.skipped:
            parts.append("skipped " + ", ".join(self.skipped))
        return "; ".join(parts)


def _is_float(s: pd.Series) -> bool:
    return pd.api.types.is_float_dtype(s)


def table_key(df: pd.DataFrame) -> list[str]:
    if "unit" in df.columns:
        return ["unit"]
    return [c for c in df.columns if not _is_float(df[c]) and not skipped_column(c)]


def compare_tables(name: str, reference: pd.DataFrame, rerun: pd.DataFrame, atol: float = 0.0) -> TableDiff:
    """`rerun` against `reference` (see the module docstring); rows keyed by `table_key(reference)`.
    A key repeated within a table (several rows of one unit) is told apart by its order of appearance."""
    skipped = sorted(c for c in set(reference.columns) | set(rerun.columns) if skipped_column(c))
    missing = sorted((set(reference.columns) ^ set(rerun.columns)) - set(skipped))
    key = table_key(reference)
    if not key or any(k not in rerun.columns for k in key):
        return TableDiff(name, key, 0, len(reference), len(rerun), math.nan, "", 0, {}, skipped,
                         missing or ["(no common key)"])
    a, b = reference.copy(), rerun.copy()
    for df in (a, b):
        df["_nth"] = df.groupby(key, dropna=False).cumcount()
    on = [*key, "_nth"]
    m = a.merge(b, on=on, how="outer", suffixes=("_ref", "_new"), indicator=True)
    both = m[m["_merge"] == "both"]
    diff = TableDiff(name, key, len(both), int((m["_merge"] == "left_only").sum()),
                     int((m["_merge"] == "right_only").sum()), 0.0, "", 0, {}, skipped, missing)
    for c in sorted(set(reference.columns) & set(rerun.columns) - set(key) - set(skipped)):
        x, y = both[f"{c}_ref"], both[f"{c}_new"]
        if _is_float(reference[c]) or _is_float(rerun[c]):
            x, y = x.to_numpy(dtype=float), y.to_numpy(dtype=float)
            nan_same = np.isnan(x) & np.isnan(y)
            d = np.where(nan_same, 0.0, np.abs(x - y))
            d = np.where(np.isnan(d), np.inf, d)  # NaN on one side only
            if len(d) and d.max() > diff.max_abs_diff:
                diff.max_abs_diff, diff.worst_column = float(d.max()), c
            diff.beyond_tol += int((d > atol).sum())
        else:
            # by value (an outer merge turns an int column with a missing row into floats: 10 == 10.0)
            n = int(((x != y) & ~(x.isna() & y.isna())).sum())
            if n:
                diff.unequal[c] = n
    return diff


def compare_stores(reference, rerun, tables=None, atol: float = 0.0) -> list[TableDiff]:
    """Every table both `ResultStore`s hold (or `tables`, each of which must be in both)."""
    names = sorted(set(reference.tables()) & set(rerun.tables())) if tables is None else list(tables)
    return [compare_tables(t, reference.read(t), rerun.read(t), atol) for t in names]
