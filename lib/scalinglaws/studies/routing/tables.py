"""The routing study's tables from its unit records: models, curves, ce, ce_documents, routing,
expert_usage, loss (one row per model, the analysis's input) and step_check."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from scalinglaws import evaluation as EV
from scalinglaws.core import sweep as SW
from scalinglaws.studies.routing.config import DENSE
from scalinglaws.studies.routing.names import order_key


MODEL_COLUMNS = ["size", "experts", "router", "N", "non_embedding", "active", "total", "flops_per_token", "tokens",
                 "steps", "lr", "train_loss", "wall_s", "tokens_per_s", "device", "unit"]
CURVE_COLUMNS = ["size", "experts", "router", "step", "tokens", "loss", "lr", "tokens_per_s"]
CE_COLUMNS = ["size", "experts", "router", "domain", "windows", "tokens", "bytes", "nll_sum", "ce", "ce_se", "bpb"]
DOC_COLUMNS = ["size", "experts", "router", "checkpoint", "domain", "docs", "tokens", "bytes", "nll_sum", "ce", "bpb"]


def docs_rows(records: list[dict], units: list[SW.Unit]) -> pd.DataFrame:
    """ce_documents: one row per model and domain, with the checkpoint's unit key."""
    rows = [{**{k: u.config[k] for k in ("size", "experts", "router")}, "checkpoint": u.config["checkpoint"], **r}
            for rec, u in zip(records, units) for r in rec["rows"]]
    return pd.DataFrame(rows, columns=DOC_COLUMNS)


def model_rows(records: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(models, curves, train-time routing) from training records."""
    models, curves, routing = [], [], []
    for rec in records:
        r = dict(rec["rows"][0])
        key = {k: r[k] for k in ("size", "experts", "router")}
        curves += [{**key, **c} for c in r.pop("curve")]
        routing += [{**key, "phase": "train", **_stat_row(s)} for s in r.pop("routing")]
        models.append({**r, "lr": rec["config"]["lr"], "unit": rec["key"]})
    return pd.DataFrame(models), pd.DataFrame(curves), pd.DataFrame(routing, columns=ROUTING_COLUMNS)


ROUTING_COLUMNS = ["size", "experts", "router", "phase", "layer", "tokens", "load_max_over_mean",
                   "batch_load_max_over_mean", "dropped_tokens", "entropy", "aux_loss"]


def _stat_row(s: dict) -> dict:
    return {k: s[k] for k in ROUTING_COLUMNS[4:]}


def eval_rows(records: list[dict], units: list[SW.Unit]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(ce per domain, eval-time routing per layer aggregated over domains, expert usage)."""
    ce, routing, usage = [], [], []
    for rec, u in zip(records, units):
        key = {k: u.config[k] for k in ("size", "experts", "router")}
        per_layer: dict[int, dict] = {}
        for row in rec["rows"]:
            row = dict(row)
            stats = row.pop("routing")
            ce.append({**key, **row})
            for s in stats:
                tot = max(1, s["tokens"])
                usage += [{**key, "domain": row["domain"], "layer": s["layer"], "expert": e, "tokens": int(n),
                           "fraction": n / tot} for e, n in enumerate(s["counts"])]
                agg = per_layer.setdefault(s["layer"], {"counts": np.zeros(len(s["counts"])), "entropy": 0.0,
                                                        "batch": 0.0, "n": 0})
                agg["counts"] += np.asarray(s["counts"], dtype=float)
                agg["entropy"] += s["entropy"] * s["tokens"]
                agg["batch"] += s["batch_load_max_over_mean"] if np.isfinite(s["batch_load_max_over_mean"]) else 0.0
                agg["n"] += 1
        for layer, a in sorted(per_layer.items()):
            tokens = a["counts"].sum()
            routing.append({**key, "phase": "eval", "layer": layer, "tokens": int(tokens),
                            "load_max_over_mean": float(a["counts"].max() / (tokens / len(a["counts"]))),
                            "batch_load_max_over_mean": a["batch"] / max(1, a["n"]), "dropped_tokens": 0,
                            "entropy": a["entropy"] / max(1.0, tokens), "aux_loss": math.nan})
    return (pd.DataFrame(ce), pd.DataFrame(routing, columns=ROUTING_COLUMNS),
            pd.DataFrame(usage, columns=["size", "experts", "router", "domain", "layer", "expert", "tokens", "fraction"]))


def loss_table(ce: pd.DataFrame, models: pd.DataFrame) -> pd.DataFrame:
    """One row per model: size, N, experts, router, L (mean CE over domains), bpb (mean)."""
    g = ce.groupby(["size", "experts", "router"], sort=False).agg(L=("ce", "mean"), bpb=("bpb", "mean")).reset_index()
    n = models.set_index(["size", "experts", "router"])["N"]
    g.insert(1, "N", [int(n.loc[(s, e, r)]) for s, e, r in zip(g["size"], g["experts"], g["router"])])
    return g.sort_values(["router", "N", "experts"], key=lambda c: c.map(order_key) if c.name == "router" else c,
                         kind="stable").reset_index(drop=True)



STEP_CHECK_COLUMNS = ["size", "experts", "router", "batch_tokens", "steps", "L", "L_se", "grid_batch_tokens",
                      "grid_steps", "grid_L", "grid_L_se", "gain_from_steps", "gap_to_dense", "grid_gap_to_dense"]


def step_check_table(records: list[dict], ce: pd.DataFrame, grid_ce: pd.DataFrame, models: pd.DataFrame) -> pd.DataFrame:
    """One row per step-check model (`records`: its training records, `ce`: its per-domain CE) beside
    the same model of the grid (`grid_ce`, `models`); empty when the check is off or outside the grid: L and its sampling SE at both batches,
    gain_from_steps = grid_L - L, and each batch's gap to that batch's dense model (L - L_dense;
    negative: routing helps)."""
    if not records:
        return pd.DataFrame(columns=STEP_CHECK_COLUMNS)
    key = ["size", "experts", "router"]

    def per_model(frame):
        return frame.groupby(key).agg(L=("ce", "mean"), L_se=("ce_se", EV.domain_mean_se))

    small, grid = per_model(ce), per_model(grid_ce)
    grid_models = models.set_index(key)
    rows = []
    for rec in records:
        r = rec["rows"][0]
        k = (r["size"], r["experts"], r["router"])
        g = grid_models.loc[k]
        rows.append({**dict(zip(key, k)), "batch_tokens": rec["config"]["batch_tokens"], "steps": r["steps"],
                     "L": float(small.loc[k, "L"]), "L_se": float(small.loc[k, "L_se"]),
                     "grid_batch_tokens": int(round(g["tokens"] / g["steps"])), "grid_steps": int(g["steps"]),
                     "grid_L": float(grid.loc[k, "L"]), "grid_L_se": float(grid.loc[k, "L_se"])})
    out = pd.DataFrame(rows)
    dense = out[out["router"] == DENSE].set_index("size")
    out["gain_from_steps"] = out["grid_L"] - out["L"]
    out["gap_to_dense"] = out["L"] - out["size"].map(dense["L"])
    out["grid_gap_to_dense"] = out["grid_L"] - out["size"].map(dense["grid_L"])
    return out[STEP_CHECK_COLUMNS]

