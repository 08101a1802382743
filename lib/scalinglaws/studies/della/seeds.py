"""Training-seed replicates of the DELLA study (`python -m scalinglaws seeds della`; `studies.replicates`).

Two seeds live in this study, and they are not the same thing. The *mask seed* (`seed` of a merge
setting: which parameters MAGPRUNE/DARE drop) is varied by the stored run itself (`noise_seeds`, the
ablations' "seed=s" variants). The *training seed* is the experts' fine-tuning seed: the stored
experts are the merging study's finetune units at its `seed` (0). A replicate here fine-tunes the
three role experts again from the stored base with the merging recipe and `seed` = s (the
merging study's own finetune unit), keeps the mask seed, window seed and every setting of the
stored run, and merges and scores exactly as the study does (`study._merge_eval`, `_nll_rows`).

A replicated configuration is "<size>/<group>" (a group of roles, e.g. "d64l4/lm+math+code");
its rows are per drop rate p of the stored ablations (eps = the ablation window at p, lam =
`ablation_lam`, Elect = `ablation_elect`), cell "<size>/<group>/p<p>".

Measures:
    della_minus_dare  group score of DELLA minus that of DARE at the same p, lam and Elect (nats/token;
                      negative: DELLA better). The group score is the mean CE over the group's
                      domains, as in the `grid` table. (The claim `della_beats_dare_same_p` reads
                      the opposite sign, CE(DARE) - CE(DELLA); a seed SD does not depend on it.)
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from scalinglaws.core import seeds as S
from scalinglaws.core.sweep import Sweep, Unit
from scalinglaws.core.validation import ParameterError

MEASURES = {"della_minus_dare": "group score (mean CE over the group's domains) of DELLA minus DARE at the "
                                "same drop rate, lam and Elect, mask seed fixed (nats/token)"}
CELLS = {"smoke": ["d16l1/lm+math+code"], "cpu": ["d64l4/lm+math+code"]}


def cells_allowed(params: dict) -> list[str]:
    from scalinglaws.studies.della.study import group_name
    return [f"{s}/{group_name(c)}" for s in params["sizes"] for c in params["combos"]]


def settings(params: dict) -> list[tuple[float, dict, dict]]:
    """(p, DELLA setting, DARE setting) of every drop rate with an ablation window: the stored
    ablations' "reference" and "dare" variants (mask seed = the stored run's seed)."""
    from scalinglaws.studies.della.study import plan
    _, abl = plan(params)
    ref = {a["p"]: a for a in abl if a["variant"] == "reference"}
    dare = {a["p"]: a for a in abl if a["variant"] == "dare"}
    strip = lambda a: {k: v for k, v in a.items() if k != "variant"}  # noqa: E731
    return [(p, strip(ref[p]), strip(dare[p])) for p in sorted(ref) if p in dare]


def units(profile: str, params: dict, cells: list[str], seeds: list[int]) -> list[Unit]:
    from scalinglaws.studies.della.study import ROLES
    from scalinglaws.studies.merging.seeds import finetune_config, stored_bases, stored_recipe
    from scalinglaws.studies.replicates import stored_params
    bases, recipe = stored_bases("della", profile), stored_recipe(profile)
    mparams = stored_params("merging", profile)
    ev = {k: params[k] for k in ("tokens_per_domain", "seq_len", "window_seed", "eval_chunk")}
    out = []
    for c in cells:
        size, group = c.split("/")
        roles = group.split("+")
        if size not in bases or any(r not in ROLES for r in roles):
            raise ParameterError(f"della cell {c!r}: no stored base for {size} or unknown role in {roles}")
        doms = [params["roles"][r] for r in roles]
        for s in seeds:
            out.append(Unit("seeds", {
                "study": "della", "profile": profile, "cell": c, "seed": s, "size": size, "base": bases[size],
                "domains": doms, "finetune": [finetune_config(size, d, bases[size], mparams, recipe, s) for d in doms],
                "settings": [x for p, a, b in settings(params) for x in (a, b)], **ev}))
    return out


def replicate(config: dict) -> list[dict]:
    """Fine-tune the group's experts (the merging study's units, in its sweep: seed 0 gives the
    stored experts), merge every setting and score it on the group's windows (`_merge_eval`)."""
    from scalinglaws.studies.della.study import _merge_eval, setting_key
    from scalinglaws.studies.merging import units as MU
    from scalinglaws.studies.testbed.seeds import ensure_base
    ensure_base(config["size"], config["profile"], config["base"])
    fts = [Unit("finetune", c) for c in config["finetune"]]
    Sweep("merging", config["profile"]).run(fts, MU.finetune, desc="finetune", checkpoints=True)
    rows = _merge_eval({**config, "experts": [u.key for u in fts]})
    T = config["seq_len"]  # tokens scored per window (windows of seq_len + 1 tokens)
    score = {}
    for r in rows:  # group score = mean over domains of CE_d = sum of window NLLs / scored tokens
        x = np.asarray(r["nll"], dtype=float)
        score.setdefault(r["setting"], []).append(x.sum() / (len(x) * T))
    out = []
    sets = config["settings"]
    for a, b in zip(sets[::2], sets[1::2]):
        diff = float(np.mean(score[setting_key(a)]) - np.mean(score[setting_key(b)]))
        out.append({"cell": f"{config['cell']}/p{a['p']:g}", "measure": "della_minus_dare",
                    "seed": config["seed"], "value": diff})
    return out


def stored(tables: dict, params: dict, cells: list[str]) -> pd.DataFrame:
    """The stored run's values of the table's cells, from the `ablations` table (mean CE over the
    group's domains of the "reference" and "dare" variants at each p)."""
    ab = tables["ablations"]
    rows = []
    for c in cells:
        size, group, p = c.split("/")
        g = ab[(ab["size"] == size) & (ab["group"] == group) & np.isclose(ab["p"], float(p[1:]))]
        score = g.groupby("variant")["ce"].mean()
        if {"reference", "dare"} <= set(score.index):
            rows.append({"cell": c, "measure": "della_minus_dare", "seed": int(params["seed"]),
                         "value": float(score["reference"] - score["dare"])})
    return pd.DataFrame(rows, columns=list(S.COLUMNS))


def seed_table(tables: dict) -> pd.DataFrame:
    """For the chapter: per drop rate, the training-seed spread of DELLA - DARE beside the stored
    single-seed value, and the pooled training-seed SD next to the effect the claim reports.
    Empty without a seeds table."""
    return S.spread_beside_stored(tables.get("seeds"), lambda cells: stored(tables, {"seed": 0}, cells), pooled=True)