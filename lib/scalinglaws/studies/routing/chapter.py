"""The routing chapter's derived tables and glued sentences, from the stored tables only
(book/routing.ipynb is a thin caller; every number in its prose comes from here or its own glue)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from scalinglaws.studies.routing.figures import ROUTER_NAMES

DENSE = "dense"


def gap_at_top_e(loss: pd.DataFrame) -> pd.DataFrame:
    """L(router, largest E) - L(dense) per router (rows) and size (columns, ascending N), nats/token;
    negative: the routed model beats its dense counterpart."""
    dense = loss[loss["router"] == DENSE].set_index("size")["L"]
    routed = loss[loss["router"] != DENSE]
    top = routed[routed["experts"] == routed["experts"].max()]
    t = top.assign(gap=top["L"] - top["size"].map(dense)).pivot(index="router", columns="size", values="gap")
    order = loss[loss["router"] == DENSE].sort_values("N")["size"]
    routers = [r for r in ROUTER_NAMES if r in t.index]
    return t.loc[routers, [s for s in order if s in t.columns]]


def phenomenon_sentence(loss: pd.DataFrame) -> str:
    """Which routers beat dense at the largest E at every size, which at some, which at none."""
    g = gap_at_top_e(loss)
    if g.empty:
        return "No routed model was trained."
    E = int(loss["experts"].max())
    every = [ROUTER_NAMES[r] for r in g.index if (g.loc[r] < 0).all()]
    none = [ROUTER_NAMES[r] for r in g.index if (g.loc[r] >= 0).all()]
    some = [f"{ROUTER_NAMES[r]} (at {', '.join(g.columns[g.loc[r] < 0])})" for r in g.index
            if ROUTER_NAMES[r] not in every + none]

    def names(xs):
        return xs[0] if len(xs) == 1 else ", ".join(xs[:-1]) + " and " + xs[-1]

    parts = []
    if every:
        parts.append(f"{names(every)} beat{'s' if len(every) == 1 else ''} the dense model at every size")
    if some:
        parts.append(f"{names(some)} at some sizes only")
    if none:
        parts.append(f"{names(none)} at no size")
    return f"At E = {E}, " + "; ".join(parts) + "."


STEP_COLUMNS = {"router": "router", "grid_steps": "steps (grid)", "steps": "steps (check)", "grid_L": "L (grid)",
                "L": "L (check)", "gain_from_steps": "gain from steps", "grid_gap_to_dense": "gap to dense (grid)",
                "gap_to_dense": "gap to dense (check)"}


def step_check_view(step: pd.DataFrame) -> pd.DataFrame:
    """The step-check table as the chapter shows it (nats/token; a negative gap: routing helps)."""
    out = step[list(STEP_COLUMNS)].rename(columns=STEP_COLUMNS)
    out["router"] = out["router"].map(lambda r: ROUTER_NAMES.get(r, r))
    return out.round(4)


def step_check_glue(step: pd.DataFrame) -> dict[str, str]:
    """The numbers the step-check paragraph quotes: the model checked, both batches' steps, dense's
    gain from the steps and the mean change of the routers' gap to dense."""
    if step is None or not len(step):
        return {"sc_where": "not run at this profile", "sc_steps": "n/a", "sc_dense_gain": "n/a",
                "sc_gap_change": "n/a", "sc_gap_grid": "n/a", "sc_gap_check": "n/a"}
    d = step[step["router"] == DENSE].iloc[0]
    r = step[step["router"] != DENSE]
    return {"sc_where": f"{d['size']}, E = {int(r['experts'].iloc[0])}",
            "sc_steps": f"{int(d['grid_steps'])} to {int(d['steps'])}",
            "sc_dense_gain": f"{d['gain_from_steps']:.3f}",
            "sc_gap_change": f"{(r['gap_to_dense'] - r['grid_gap_to_dense']).mean():+.3f}",
            "sc_gap_grid": f"{r['grid_gap_to_dense'].mean():+.3f}",
            "sc_gap_check": f"{r['gap_to_dense'].mean():+.3f}"}


def relative_entropy(routing: pd.DataFrame) -> pd.Series:
    """Per learned router, its training-time routing entropy at the largest E over log E (mean over
    sizes and routed blocks): 1 means the router spreads every token uniformly (it has learned no
    assignment), 0 a deterministic one. Hash has no router distribution and is left out."""
    t = routing[(routing["phase"] == "train") & (routing["router"] != "hash")]
    top = t[t["experts"] == t["experts"].max()]
    rel = top.groupby("router")["entropy"].mean() / np.log(top["experts"].max())
    return rel.reindex([r for r in ROUTER_NAMES if r in rel.index])


def entropy_sentence(routing: pd.DataFrame) -> str:
    rel = relative_entropy(routing)
    if rel.empty:
        return "No learned router was trained."
    E = int(routing.loc[routing["phase"] == "train", "experts"].max())
    parts = ", ".join(f"{ROUTER_NAMES[r]} {v:.2f}" for r, v in rel.items())
    return f"At E = {E} the learned routers' entropy over log E, averaged over all training tokens, is {parts} (1: uniform, no assignment learned)."


def kappa_sentence(growth: pd.DataFrame) -> str:
    """The range of the share-growth slope kappa per router over sizes (`study.share_growth`)."""
    if growth is None or not len(growth):
        return "No router was run at two or more E > 1."
    g = growth.groupby("router")["kappa"].agg(["min", "max"])
    parts = [f"{ROUTER_NAMES.get(r, r)} {g.loc[r, 'min']:.2f}" + (f" to {g.loc[r, 'max']:.2f}"
             if g.loc[r, 'max'] - g.loc[r, 'min'] >= 0.005 else "")
             for r in ROUTER_NAMES if r in g.index]
    held = int(growth["constant_share"].sum())
    return (f"Measured kappa over the sizes: {'; '.join(parts)}; the interval contains 1 in {held} of "
            f"{len(growth)} (router, size) cells.")
