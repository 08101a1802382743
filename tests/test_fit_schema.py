"""Every stored table of fits has the one schema (`fitting.schema`): the study's keys, law, param,
estimate, lo, hi, se, r2, r2_log, rmse, converged, ok, why_not_ok, n_points (then the study's own
columns), one row per parameter of a fit and one verdict per fit. Checked on the shipped results
of every profile, and on `fit_rows` / `wide`."""
import math

import pandas as pd
import pytest

from scalinglaws.core.paths import REPO_ROOT
from scalinglaws.fitting.schema import FIT_COLUMNS, fit_rows, fits_frame, wide

# every stored table of fits, per study: (table, its key columns)
STORED_FITS = {
    "merging": {"fits": ["pool", "method", "scope"], "paper_law_fits": ["pool", "method", "scope"],
                "tail_fits": ["pool", "method", "size", "N", "scope"],
                "nine_tail_fits": ["pool", "method", "size", "N", "scope"]},
    "composition": {"fits": ["pool", "k", "arm"]},
    "routing": {"fits": ["router"], "clark_fits": ["router"], "resource_fits": ["router", "size"]},
    "resource": {"fits": ["part", "subject", "method", "activation", "threshold"], "shares": ["kind"], "additive": ["kind", "form"]},
}
SHIPPED = REPO_ROOT / "data" / "results"
STORES = sorted(p for p in SHIPPED.glob("*/*") if (p / "provenance.json").exists())


def _is_fits_table(name: str) -> bool:
    """A table of fitted parameters (bootstrap draws, `fit_samples`, have their own schema)."""
    return ("fits" in name and "samples" not in name) or name in ("shares", "additive")


@pytest.mark.parametrize("store", STORES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_stored_fits_table_has_the_one_schema(store):
    study = store.parent.name
    for path in sorted(store.glob("*.parquet")):
        name = path.stem
        if not _is_fits_table(name):
            continue
        assert name in STORED_FITS.get(study, {}), f"{study}/{name}: a fits table this test does not know"
        df = pd.read_parquet(path)
        cols = set(df.columns)  # (merging's joint fits come from JSON unit records: columns sorted)
        assert set(FIT_COLUMNS) <= cols, (study, name, set(FIT_COLUMNS) - cols)
        assert set(STORED_FITS[study][name]) <= cols, (study, name, set(STORED_FITS[study][name]) - cols)
        per_fit = df.groupby([*STORED_FITS[study][name], "law"], dropna=False)
        assert (per_fit["param"].nunique() == per_fit.size()).all(), (study, name, "one row per parameter")
        assert (per_fit["ok"].nunique() == 1).all(), (study, name, "one verdict per fit")


def test_rows_and_wide_round_trip():
    rows = fit_rows("power", {"A": 2.0, "alpha": 0.5}, {"A": (1.5, 2.5), "alpha": (0.4, 0.6)}, {"A": 0.2},
                    r2=0.9, r2_log=0.95, rmse=0.1, ok=True, why_not_ok="", n_points=7, keys={"cell": "x"},
                    extra={"note": "n"})
    rows += fit_rows("power", {"A": 3.0, "alpha": 1.0}, ok=False, why_not_ok="no interval", n_points=2,
                     keys={"cell": "y"}, extra={"note": "m"})
    df = fits_frame(rows, ["cell"], ["note"])
    assert list(df.columns) == ["cell", *FIT_COLUMNS, "note"] and len(df) == 4
    w = wide(df, ["cell"], ["note"]).set_index("cell")
    assert w.loc["x", "A"] == 2.0 and w.loc["x", "A_lo"] == 1.5 and w.loc["x", "alpha_hi"] == 0.6
    assert w.loc["x", "A_se"] == 0.2 and math.isnan(w.loc["x", "alpha_se"]) and w.loc["x", "note"] == "n"
    assert not w.loc["y", "ok"] and math.isnan(w.loc["y", "A_lo"]) and w.loc["y", "n_points"] == 2
    assert list(fits_frame([], ["cell"]).columns) == ["cell", *FIT_COLUMNS]
