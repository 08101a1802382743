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
    della_minus_base  group score of the reference DELLA at p minus the base's (nats/token). The base
                      is the same model at every seed, so its spread is the merge's own; the claim
                      `della_beats_base` (tuned DELLA against the base) reads its pooled SD.
    best_p_share      per cell "<size>/<group>": 1 when the drop rate whose reference DELLA scores
                      lowest lies in [0.5, 0.7], else 0; the one-cell share that the claim
                      `best_p_mid` averages over cells (its SD taken for the share: conservative).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from scalinglaws.core import seeds as S
from scalinglaws.core.sweep import Sweep, Unit
from scalinglaws.core.validation import ParameterError

MEASURES = {"della_minus_dare": "group score (mean CE over the group's domains) of DELLA minus DARE at the "
                                "same drop rate, lam and Elect, mask seed fixed (nats/token)",
            "della_minus_base": "group score of the reference DELLA at drop rate p minus the base's (nats/token)",
            "best_p_share": "1 when the drop rate of the best reference DELLA lies in [0.5, 0.7], else 0 (one cell)"}
BEST_P_MID = (0.5, 0.7)  # the paper's best drop rates (claim best_p_mid)
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
                "settings": [x for p, a, b in settings(params) for x in (a, b)],
                "measures": sorted(MEASURES), **ev}))
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
    base = _base_score({**config, "experts": []}, T)
    out, della = [], {}
    sets = config["settings"]
    for a, b in zip(sets[::2], sets[1::2]):
        della[a["p"]] = float(np.mean(score[setting_key(a)]))
        cell = f"{config['cell']}/p{a['p']:g}"
        out.append({"cell": cell, "measure": "della_minus_dare", "seed": config["seed"],
                    "value": della[a["p"]] - float(np.mean(score[setting_key(b)]))})
        if "della_minus_base" in config.get("measures", ()):
            out.append({"cell": cell, "measure": "della_minus_base", "seed": config["seed"],
                        "value": della[a["p"]] - base})
    if "best_p_share" in config.get("measures", ()) and della:
        out.append({"cell": config["cell"], "measure": "best_p_share", "seed": config["seed"],
                    "value": _in_mid(min(della, key=della.get))})
    return out


def _in_mid(p: float) -> float:
    return float(BEST_P_MID[0] <= p <= BEST_P_MID[1])


def _base_score(config: dict, T: int) -> float:
    """The base model's group score on the cell's windows (the same windows as the merges)."""
    from scalinglaws.studies.della.study import _load, _nll_rows
    base, _ = _load(config)
    rows = _nll_rows([base.state_dict()], base, config, ["base"])
    return float(np.mean([np.sum(r["nll"]) / (len(r["nll"]) * T) for r in rows]))


def stored(tables: dict, params: dict, cells: list[str]) -> pd.DataFrame:
    """The stored run's values of the table's cells, from the `ablations` table (mean CE over the
    group's domains of the "reference" and "dare" variants at each p)."""
    ab, grid = tables["ablations"], tables.get("grid")
    rows, seed = [], int(params["seed"])
    for c in cells:
        parts = c.split("/")
        size, group = parts[:2]
        cell_ab = ab[(ab["size"] == size) & (ab["group"] == group)]
        if len(parts) == 2:  # best_p_share: one per (size, group)
            ref = cell_ab[cell_ab["variant"] == "reference"].groupby("p")["ce"].mean()
            if len(ref):
                rows.append({"cell": c, "measure": "best_p_share", "seed": seed, "value": _in_mid(float(ref.idxmin()))})
            continue
        g = cell_ab[np.isclose(cell_ab["p"], float(parts[2][1:]))]
        score = g.groupby("variant")["ce"].mean()
        if {"reference", "dare"} <= set(score.index):
            rows.append({"cell": c, "measure": "della_minus_dare", "seed": seed,
                         "value": float(score["reference"] - score["dare"])})
        if "reference" in score.index and grid is not None:
            b = grid[(grid["size"] == size) & (grid["group"] == group) & (grid["setting"] == "base")]["ce"]
            if len(b):
                rows.append({"cell": c, "measure": "della_minus_base", "seed": seed,
                             "value": float(score["reference"] - b.mean())})
    return pd.DataFrame(rows, columns=list(S.COLUMNS))


def seed_table(tables: dict) -> pd.DataFrame:
    """For the chapter: per drop rate, the training-seed spread of DELLA - DARE beside the stored
    single-seed value, and the pooled training-seed SD next to the effect the claim reports.
    Empty without a seeds table."""
    return S.spread_beside_stored(tables.get("seeds"), lambda cells: stored(tables, {"seed": 0}, cells), pooled=True)