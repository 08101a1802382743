"""The expert recipe, chosen by a stored pilot instead of guessed.

Why: merging can only pay off when each expert clearly improves its own domain while forgetting
little elsewhere (full fine-tunes of strong bases do). A too-hot or too-long fine-tune forgets the
base and no merge beats it; a too-cold one changes nothing. So the study measures, at one base size
(the middle of the ladder), every fine-tuning learning rate x token multiple of the pilot grid, for
a few domains of every pool and a few seeds, and picks the recipe by a stated rule.

Per pilot run (one domain d, one grid point, one seed), on the evaluation windows of every pool domain:

    gain        = CE_base(d) - CE_expert(d)                       (nats/token; > 0: it specialised)
    forgetting  = mean_{e != d} [CE_expert(e) - CE_base(e)]        (other domains of d's pool and the
                                                                    other pools; > 0: it forgot)

The rule (`choose_recipe`), on the means over domains and seeds of each grid point:

    eligible  = gain > 0 and forgetting <= max_forgetting * gain
    chosen    = the eligible point of largest gain (ties: fewer tokens, then the lower lr);
                if none is eligible, the point of smallest forgetting / gain among those with
                gain > 0; if no point gains at all, the point of largest gain.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

RULE = ("largest mean in-domain gain among the grid points whose mean forgetting is at most "
        "{f:g} x their gain (ties: fewer tokens, then lower lr); if none qualifies, the smallest "
        "forgetting/gain ratio among points that gain")


def run_rows(config: dict, metrics: pd.DataFrame, pools: dict) -> dict:
    """One pilot run's summary from `domain_metrics` rows of [base, expert] (column model 0 / 1)."""
    d = config["domain"]
    base = metrics[metrics["model"] == 0].set_index("domain")["ce"]
    ex = metrics[metrics["model"] == 1].set_index("domain")["ce"]
    delta = ex - base
    pool = next(p for p, doms in pools.items() if d in doms)
    own_pool = [e for e in pools[pool] if e != d]
    off = [e for e in delta.index if e not in pools[pool]]
    return {"pool": pool, "domain": d, "lr": config["ft_lr"], "token_mult": config["token_mult"],
            "tokens": config["tokens"], "seed": config["seed"], "ce_base": float(base[d]),
            "ce_expert": float(ex[d]), "gain": float(-delta[d]),
            "forgetting_pool": float(delta[own_pool].mean()) if own_pool else float("nan"),
            "forgetting_off": float(delta[off].mean()) if off else float("nan"),
            "forgetting": float(delta.drop(d).mean())}


def summarise(pilot: pd.DataFrame) -> pd.DataFrame:
    """Per grid point (lr, token_mult): mean and standard error (over domains x seeds) of gain and
    forgetting, and their ratio."""
    g = pilot.groupby(["lr", "token_mult"])
    out = g.agg(tokens=("tokens", "first"), runs=("gain", "size"), gain=("gain", "mean"),
                gain_se=("gain", lambda x: x.std(ddof=1) / np.sqrt(len(x)) if len(x) > 1 else np.nan),
                forgetting=("forgetting", "mean"),
                forgetting_se=("forgetting", lambda x: x.std(ddof=1) / np.sqrt(len(x)) if len(x) > 1 else np.nan),
                forgetting_pool=("forgetting_pool", "mean"), forgetting_off=("forgetting_off", "mean"))
    out = out.reset_index()
    out["forgetting_per_gain"] = out["forgetting"] / out["gain"].where(out["gain"] > 0)
    return out


def choose_recipe(pilot: pd.DataFrame, max_forgetting: float) -> pd.DataFrame:
    """The `recipe` table: `summarise(pilot)` with columns eligible, chosen and rule (see module
    docstring); exactly one row has chosen = True."""
    s = summarise(pilot)
    s["eligible"] = (s["gain"] > 0) & (s["forgetting"] <= max_forgetting * s["gain"])
    order = ["gain", "tokens", "lr"]
    if s["eligible"].any():
        pick = s[s["eligible"]].sort_values(order, ascending=[False, True, True]).index[0]
    elif (s["gain"] > 0).any():
        pick = s[s["gain"] > 0].sort_values(["forgetting_per_gain", "tokens", "lr"]).index[0]
    else:
        pick = s.sort_values(order, ascending=[False, True, True]).index[0]
    s["chosen"] = s.index == pick
    s["rule"] = RULE.format(f=max_forgetting)
    return s


def chosen(recipe: pd.DataFrame) -> dict:
    """{lr, token_mult} of the chosen row."""
    r = recipe[recipe["chosen"]].iloc[0]
    return {"lr": float(r["lr"]), "token_mult": float(r["token_mult"])}
