"""The testbed's own claims (the project's questions, not a paper's), from its stored tables:
does held-out loss fall with model size on this testbed, cleanly enough to fit laws on it? Does each
size's best learning rate lie inside the swept grid? And, where the ladder stalls, is its top short
of optimiser steps (`step_check`)? Verdicts by `core.claims.judge`; every value is a difference of
two trained models' test CE, so its interval is widened by the seed SD of `test_ce` (stored `seeds`)."""
from __future__ import annotations

import math

import pandas as pd

from scalinglaws.core import claims as CL
from scalinglaws.core import regime as R
from scalinglaws.studies.testbed.chapter import ladder_steps, lr_position

PAPER = "this study"
SEED_MEASURE = "test_ce"
# the windows are the same for every model: a difference's SE is at most the sum of the two SEs
CONSERVATIVE = "analytic, +-2 x (sum of the two sampling SEs), conservative for a difference on shared windows"


def claims(tables: dict, profile: str) -> pd.DataFrame:
    ladder, sweep = tables["ladder"], tables["lr_sweep"]
    noise = CL.seed_noise(tables, SEED_MEASURE, n_models=2)
    steps = ladder_steps(ladder)
    lad = ladder.sort_values("non_embedding")
    text = "Held-out CE falls strictly with model size N at a fixed token budget"
    measure = "smallest drop in mean test CE between adjacent sizes (nats/token)"
    if len(steps):
        w = steps.loc[steps["drop"].idxmin()]
        rows = [CL.judge("testbed.ce_falls_with_n", PAPER, text, measure, w["drop"], w["drop"] - 2 * w["drop_se_bound"],
                         w["drop"] + 2 * w["drop_se_bound"], CL.Above(0), interval=CONSERVATIVE, seeds=noise,
                         figure="testbed.html#fig-testbed-ce",
                         note=f"{len(lad)} sizes, {lad['non_embedding'].iloc[-1] / lad['non_embedding'].iloc[0]:.0f}x "
                              f"in N; smallest step {w['from']} -> {w['to']}; drops "
                              + ", ".join(f"{r['from']}->{r['to']} {r['drop']:.3f}" for _, r in steps.iterrows()))]
    else:
        rows = [CL.claim("testbed.ce_falls_with_n", PAPER, text, measure, figure="testbed.html#fig-testbed-ce",
                         note="one size: no step to measure")]
    rows.append(_lr_inside(sweep, noise))
    rows.append(_more_steps_order(tables.get("step_check"), noise))
    return CL.frame(rows, profile)


def _lr_inside(sweep: pd.DataFrame, noise) -> dict:
    """Is each size's best rate interior? Measure: the smallest over sizes of (the better of the two
    edge rates' validation CE - the best interior rate's), on the CE the rates were chosen by: above
    0 means every size's optimum is bracketed by the grid, below 0 that an edge rate beats every
    interior one somewhere. (Its seed noise is taken as that of test CE.)"""
    text = "Each size's best learning rate lies inside the swept grid (both edge rates are worse)"
    measure = ("smallest over sizes of min val CE at the grid's edge rates - min val CE at its interior rates "
               "(nats/token)")
    fig = "testbed.html#fig-testbed-lr"
    margins = []
    for size, g in sweep[~sweep["diverged"]].groupby("size", sort=False):
        g = g.sort_values("lr")
        if len(g) < 3:
            margins = []
            break
        edges, inner = g.iloc[[0, -1]], g.iloc[1:-1]
        e, i = edges.loc[edges["val_ce"].idxmin()], inner.loc[inner["val_ce"].idxmin()]
        margins.append((float(e["val_ce"] - i["val_ce"]), float(e["val_ce_se"] + i["val_ce_se"]), size))
    if not margins:
        return CL.claim("testbed.lr_inside_grid", PAPER, text, measure, figure=fig,
                        note="needs at least 3 rates per size")
    m, se, size = min(margins)
    pos = lr_position(sweep)
    return CL.judge("testbed.lr_inside_grid", PAPER, text, measure, m, m - 2 * se, m + 2 * se, CL.Above(0),
                    interval=CONSERVATIVE, seeds=noise, figure=fig,
                    note=f"tightest at {size}; chosen rates " + "; ".join(f"{r.size}: {r.lr:g} ({r.edge})"
                                                                         for r in pos.itertuples()))


def _more_steps_order(step: pd.DataFrame | None, noise) -> dict:
    """With more optimiser steps on the same tokens (the step check), does the largest checked size
    beat the smallest? Measure: CE(largest) - CE(smallest) at the smaller batch."""
    text = ("With more optimiser steps at the same tokens, the larger of the checked sizes reaches the lower CE "
            "(the top of the ladder is step-limited, not data-limited)")
    measure = "test CE(largest) - CE(smallest checked size) at the smaller batch (nats/token)"
    fig = "testbed.html#testbed-step-check"
    if step is None or len(step) < 2:
        return CL.claim("testbed.more_steps_order", PAPER, text, measure, figure=fig,
                        note="no step check at this profile")
    s = step.sort_values("N")
    a, b = s.iloc[0], s.iloc[-1]
    d, se = b["test_ce"] - a["test_ce"], a["test_ce_se"] + b["test_ce_se"]
    gains = ", ".join(f"{r.size} {r.gain:+.3f}" for r in s.itertuples())
    return CL.judge("testbed.more_steps_order", PAPER, text, measure, d, d - 2 * se, d + 2 * se, CL.Below(0),
                    interval=CONSERVATIVE, seeds=noise, figure=fig,
                    note=f"{a['size']} vs {b['size']} at {int(a['batch_tokens']):,}-token batches ({int(a['steps'])} "
                         f"steps instead of {int(a['base_steps'])}); CE gained by the extra steps: {gains}")


def regime(tables: dict) -> pd.DataFrame:
    """The testbed's regime (`core.regime`): one row per size of the ladder."""
    ladder, sweep = tables["ladder"].sort_values("non_embedding"), tables["lr_sweep"]
    step = tables.get("step_check")
    gain = dict(zip(step["size"], step["gain"])) if step is not None and len(step) else {}
    rows = []
    for r in ladder.itertuples():
        grid = sweep[(sweep["size"] == r.size) & ~sweep["diverged"]]["lr"]
        rows.append(R.row(r.size, r.non_embedding, r.tokens, r.steps, R.bracket(r.lr, grid) if len(grid) > 1
                          else "not swept", gain.get(r.size, math.nan), seeds=R.seed_count(tables, r.size, SEED_MEASURE)))
    return R.frame(rows)
