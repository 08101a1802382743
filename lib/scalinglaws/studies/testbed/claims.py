"""The testbed's own claims (the project's questions, not a paper's), from its stored tables:
does held-out loss fall with model size on this testbed, cleanly enough to fit laws on it?"""
from __future__ import annotations

import pandas as pd

from scalinglaws.core.claims import frame

from scalinglaws.studies.testbed.chapter import ladder_steps, lr_position, strictly_falling



def claims(tables: dict, profile: str) -> pd.DataFrame:
    ladder, sweep = tables["ladder"], tables["lr_sweep"]
    steps = ladder_steps(ladder)
    pos = lr_position(sweep)
    lad = ladder.sort_values("non_embedding")
    worst = steps.loc[steps["drop"].idxmin()] if len(steps) else None
    rows = [
        {"claim_id": "testbed.ce_falls_with_n", "paper": "this study",
         "claim": "Held-out CE falls strictly with model size N at a fixed token budget",
         "measure": "smallest drop in mean test CE between adjacent sizes (nats/token)",
         "value": float(steps["drop"].min()) if len(steps) else float("nan"),
         "lo": float(worst["drop"] - 2 * worst["drop_se_bound"]) if worst is not None else float("nan"),
         "hi": float(worst["drop"] + 2 * worst["drop_se_bound"]) if worst is not None else float("nan"),
         "verdict": ("holds" if strictly_falling(ladder) and steps["clean"].all() else "does not hold")
         if len(steps) else "not testable",
         "figure": "testbed.html#fig-testbed-ce",
         "note": f"{len(lad)} sizes, {lad['non_embedding'].iloc[-1] / lad['non_embedding'].iloc[0]:.0f}x in N; "
                 f"{int(steps['clean'].sum())} of {len(steps)} steps exceed twice their noise bound"},
        {"claim_id": "testbed.lr_inside_grid", "paper": "this study",
         "claim": "Each size's best learning rate lies inside the swept grid (not at its edge)",
         "measure": "sizes whose chosen rate is interior to the grid",
         "value": float((pos["edge"] == "inside").sum()), "lo": float("nan"), "hi": float("nan"),
         "verdict": "holds" if (pos["edge"] == "inside").all() else "does not hold",
         "figure": "testbed.html#fig-testbed-lr",
         "note": "; ".join(f"{r.size}: {r.lr:g} ({r.edge})" for r in pos.itertuples())},
    ]
    return frame(rows, profile)
