"""The seeds-table schema and the training-seed noise it implies (core.seeds), against values
computed by hand."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from scalinglaws.core import seeds as S


def table():
    return pd.DataFrame({"cell": ["a"] * 3 + ["b"] * 3 + ["c"] * 2,
                         "measure": ["ce"] * 8,
                         "seed": [0, 1, 2, 0, 1, 2, 0, 1],
                         "value": [1.0, 2.0, 3.0, 10.0, 10.0, 13.0, 5.0, 9.0]})


def test_spread_per_cell():
    sp = S.seed_spread(table()).set_index("cell")
    assert sp.loc["a", "n_seeds"] == 3 and sp.loc["a", "sd"] == pytest.approx(1.0)
    assert sp.loc["b", "sd"] == pytest.approx(np.std([10, 10, 13], ddof=1))


def test_pooled_sd_uses_cells_with_enough_seeds():
    # a: SS 2, dof 2; b: SS 6, dof 2; c has 2 seeds < MIN_SEEDS and is left out
    assert S.seed_sd(table(), "ce") == pytest.approx(math.sqrt(8 / 4))
    assert S.seed_sd(table(), "ce", cells=["a"]) == pytest.approx(1.0)
    assert math.isnan(S.seed_sd(table(), "other"))
    assert math.isnan(S.seed_sd(None, "ce"))


def test_widening_in_quadrature():
    lo, hi = S.with_seed_noise(1.0, 0.7, 1.4, sd=0.2, n_models=2)
    extra = S.Z95 * 0.2 * math.sqrt(2)
    assert lo == pytest.approx(1.0 - math.hypot(0.3, extra)) and hi == pytest.approx(1.0 + math.hypot(0.4, extra))
    assert S.with_seed_noise(1.0, 0.7, 1.4, sd=math.nan) == (0.7, 1.4)


@pytest.mark.parametrize("mutate, match", [
    (lambda d: d.drop(columns=["seed"]), "missing"),
    (lambda d: d.assign(seed=[0, 0, 2, 0, 1, 2, 0, 1]), "unique"),
    (lambda d: d.assign(value=[math.nan] + [1.0] * 7), "finite"),
    (lambda d: d.assign(seed=[0.5] + [1] * 7), "integers"),
    (lambda d: d.assign(cell=[""] + ["a"] * 7), "non-empty"),
])
def test_schema_rejects(mutate, match):
    with pytest.raises(S.SeedsError, match=match):
        S.check_seeds(mutate(table()))


def test_spread_beside_stored_values():
    stored = lambda cells: pd.DataFrame({"cell": cells, "measure": ["ce"] * len(cells),  # noqa: E731
                                         "value": [10.0 * i for i in range(len(cells))]})
    out = S.spread_beside_stored(table(), stored, pooled=True).set_index("cell")
    assert list(out.columns) == [c for c in S.SPREAD_COLUMNS if c != "cell"] + ["pooled_sd"]
    assert out.loc["b", "stored"] == 10.0 and out.loc["a", "sd"] == pytest.approx(1.0)
    assert out["pooled_sd"].tolist() == pytest.approx([math.sqrt(8 / 4)] * 3)
    assert S.spread_beside_stored(None, stored).empty
