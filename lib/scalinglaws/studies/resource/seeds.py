"""Training-seed replicates of the resource study's language-model ladders (`python -m scalinglaws
seeds resource`; `studies.replicates`).

A cell is one rung of a ladder at the rate the stored sweep chose for it ("<ladder>/<size>", e.g.
"depth/d16l1"; `lm_ladders`, chosen rows). Seed s retrains it with `seed` = s in the study's own
`lm` unit (`lm_seed` of the stored run replaced: initialisation and data order), scored on the
stored run's windows (their seed is fixed at 0 in `_lm_unit`). The toy networks already vary
their seeds inside the stored run (`seeds`, `composite_seeds`) and are not replicated here.

Measures:
    test_ce   the rung's test loss: mean CE over domains (nats/token), `lm_ladders.loss`
"""
from __future__ import annotations

import pandas as pd

from scalinglaws.core import seeds as S
from scalinglaws.core.results import ResultStore
from scalinglaws.core.sweep import Sweep, Unit
from scalinglaws.core.validation import ParameterError

MEASURES = {"test_ce": "test loss of an LM ladder rung at its chosen rate: mean CE over domains (nats/token)"}
# the two smallest rungs of the depth ladder (the cheapest; cpu: the ladders trained alike, issue 27)
CELLS = {"smoke": ["depth/d16l1", "depth/d32l2"], "cpu": ["depth/d32l2", "depth/d48l3"]}


def _chosen(profile: str) -> pd.DataFrame:
    store = ResultStore("resource", profile)
    if not store.has("lm_ladders"):
        raise ParameterError(f"no stored resource lm_ladders at profile {profile!r}; reproduce the study first")
    t = store.read("lm_ladders")
    return t[t["chosen"]]


def cells_allowed(params: dict) -> list[str]:
    from scalinglaws.studies.resource.lm import ladder_sizes, lm_size
    rows = ladder_sizes(params["lm_widths"], params["lm_fixed_depth"], params["lm_depth_ratio"],
                        params["lm_head_dim"], params["lm_context"])
    return [f"{r['ladder']}/{lm_size(r['d_model'], r['n_layers'], params['lm_head_dim'], params['lm_context']).name}"
            for r in rows]


def units(profile: str, params: dict, cells: list[str], seeds: list[int]) -> list[Unit]:
    from scalinglaws.studies.resource.study import lm_unit, rungs
    chosen = _chosen(profile)
    by_shape = {(r["d_model"], r["n_layers"]): r for r in rungs(params)}
    out = []
    for c in cells:
        ladder, size = c.split("/")
        row = chosen[(chosen["ladder"] == ladder) & (chosen["size"] == size)]
        if len(row) != 1:
            raise ParameterError(f"resource cell {c!r}: the stored lm_ladders has no chosen rate for it")
        r = row.iloc[0]
        rung = by_shape.get((int(r["d_model"]), int(r["n_layers"])))
        if rung is None:
            raise ParameterError(f"resource cell {c!r}: its rung is not in the stored config's ladders")
        # the stored unit at its chosen rate (a bracketing rate beyond the grid included): seed 0 is the stored run
        unit = lm_unit(params, rung, float(r["lr"]))
        for s in seeds:
            out.append(Unit("seeds", {"study": "resource", "profile": profile, "cell": c, "seed": s,
                                      "lm": {**unit.config, "seed": s}}))
    return out


def replicate(config: dict) -> list[dict]:
    """Train and score the rung (the study's own `lm` unit, in its sweep: seed 0 is the stored run's)."""
    from scalinglaws.studies.resource.study import _lm_unit
    rec = Sweep("resource", config["profile"]).run([Unit("lm", config["lm"])], _lm_unit, desc="lm")[0]
    return [{"cell": config["cell"], "measure": "test_ce", "seed": config["seed"], "value": float(rec["rows"][0]["loss"])}]


def stored(tables: dict, params: dict, cells: list[str]) -> pd.DataFrame:
    t = tables["lm_ladders"]
    t = t[t["chosen"]]
    rows = [{"cell": f"{r.ladder}/{r.size}", "measure": "test_ce", "seed": int(params["lm_seed"]), "value": float(r.loss)}
            for r in t.itertuples() if f"{r.ladder}/{r.size}" in cells]
    return pd.DataFrame(rows, columns=list(S.COLUMNS))


def seed_table(tables: dict) -> pd.DataFrame:
    """For the chapter: per replicated rung, the seed spread of the test loss beside the stored value
    and the step to the ladder's next rung (is the ladder's order larger than training noise?)."""
    cols = ["cell", "measure", "n_seeds", "mean", "sd", "min", "max", "stored", "step_to_next"]
    if "seeds" not in tables:
        return pd.DataFrame(columns=cols)
    sp = S.seed_spread(tables["seeds"])
    t = tables["lm_ladders"]
    t = t[t["chosen"]].sort_values(["ladder", "params_non_embedding"])
    stored_v, step = {}, {}
    for ladder, g in t.groupby("ladder", sort=False):
        names, loss = [f"{ladder}/{s}" for s in g["size"]], list(g["loss"])
        for i, n in enumerate(names):
            stored_v[n] = loss[i]
            step[n] = loss[i] - loss[i + 1] if i + 1 < len(loss) else float("nan")
    sp["stored"] = sp["cell"].map(stored_v)
    sp["step_to_next"] = sp["cell"].map(step)
    return sp[cols]
