"""Resource-model study (Song, Liu, Tegmark, Gore 2024, arXiv 2402.05164).

Parts, each a resumable sweep (`scalinglaws.core.sweep`), then fits, then provenance last:

1. single subtask: one-hidden-layer networks on 1-D targets (`toy.TARGETS`), widths x
   group-lasso strengths x seeds; loss vs allocated neurons (by weight threshold and by ablation),
   fitted with `fit("power")`: loss = A N^-alpha, the paper's exponent is -alpha = -1;
2. composites (parallel, series): shares N_1/N vs N (slope per doubling with a bootstrap interval)
   and the additive form l = c1/N1 + c2/N2 by fit;
3. language models: a width ladder at fixed depth and a ladder whose depth grows in proportion
   to width (`lm`), trained alike: tokens = `lm_tokens_per_param` x non-embedding parameters
   (capped by the epoch rule), every rate of `lm_lrs` and the rate bracketed (`lm_lr_bracket`
   rounds, as the testbed's); reducible loss vs non-embedding parameters by `fit("power_offset")`
   (the pure `power` beside it); predictions -1/2 and -1/3;
4. the Chinchilla link: Epoch's alpha refitted on the reference CSV (`fit("chinchilla")`).

The LM ladders run in resumable parts where a profile names them (`lm_parts`: {name: [rung, ...]},
covering every rung once): `--param part=NAME` trains one part's rungs (their rate brackets
included), records the units and writes only `lm_parts` (every LM unit recorded so far, `lm_parts`
below), no other table; a run without `part` reuses every record. At cpu the unit records live
beside the tables (`unit_records="results"`, committed: a part survives the loss of `.work/`).
`python -m scalinglaws resource-parts --profile cpu` prints each part's predicted CPU cost.

Tables (`ResultStore("resource", profile)`): single (tidy: one row per network and counting
method), composite, lm_ladders, fits, shares, additive, claims (`claims.py`: the paper's claims judged
on these tables, schema `scalinglaws.core.claims`), provenance.json last.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

from scalinglaws.core.results import ResultStore, provenance
from scalinglaws.core.regime import bracket_candidates, bracketed_rounds, grid_ratio
from scalinglaws.data import reference as REF
from scalinglaws.studies.resource.analysis import composite_fit_tables, composites
from scalinglaws.studies import exclusive_run, resolve_params
from scalinglaws.core.sweep import Sweep, Unit
from scalinglaws.core.threads import torch_threads
from scalinglaws.core.validation import (ParameterError, check_choice, check_float, check_int, check_profile,
                                    check_subset)

STUDY = "resource"
PAPER_EXPONENT = -1.0
HOFFMANN_ALPHA = REF.HOFFMANN["alpha"]  # the published exponents (`data.reference`, typed once)
EPOCH_ALPHA = REF.EPOCH["alpha"]
reference_frame = REF.chinchilla_points  # Epoch's 240 points (the study's name for them)

_TOY = dict(lr=1e-2, n_train=256, n_test=2048, thresholds=[1e-4, 1e-3, 1e-2], threshold=1e-3,
            ablation_tol=0.01, min_neurons=2, composite_tasks=["square", "sine"])
# LM ladders trained alike (issue 27). Chinchilla's compute-optimal 20 tokens per non-embedding
# parameter; batches of 8 sequences (1,024 tokens), so the smallest cpu rung, d32l2 (26.8K), gets
# 523 optimiser steps (`lm_min_steps` refuses a design whose smallest rung gets fewer); 1,024-token
# batches also train faster per token than 4,096 on one core (measured: d32l2 18.3K vs 13.5K,
# d96l6 3.8K vs 3.4K tokens per CPU-s). The rate grid is centred on the first design's choice
# (8e-3, the top of its grid for 11 of 12 rungs) and bracketed up to two rounds.
_LM = dict(lm_fixed_depth=2, lm_depth_ratio=16, lm_head_dim=8, lm_context=128, lm_batch_tokens=1024,
           lm_tokens_per_param=20.0, lm_min_steps=256, lm_lrs=[4e-3, 8e-3, 1.6e-2], lm_lr_bracket=2, lm_seed=0,
           lm_eval_tokens=4096, lm_domains=["all"], lm_parts=None, part=None, unit_records="work")
RUN_ONLY = ("part", "unit_records")  # how a run is carried out, not what it computes (`lm_parts` is the plan)
UNIT_RECORDS = ("work", "results")
# cpu parts: the pilot (the smallest rung with its rate bracket: the cheapest check of the design;
# on the shared 2-core machine its first unit took 756 s of wall for 29 s of uncontended training),
# then the rest in parts of growing cost (`python -m scalinglaws resource-parts --profile cpu`)
LM_PARTS_CPU = {"pilot": ["d32l2"], "small": ["d48l2", "d48l3", "d64l2"], "mid": ["d80l2", "d64l4", "d96l2"],
                "d80l5": ["d80l5"], "d96l6": ["d96l6"]}

PROFILES: dict[str, dict] = {
    "smoke": {**_TOY, "tasks": ["square"], "activations": ["relu"], "widths": [4, 8, 16], "regs": [0.0, 0.3],
              "seeds": 2, "steps": 300, "refit_steps": 100, "n_test": 512,
              "compositions": ["parallel", "series"], "composite_widths": [4, 8], "composite_regs": [0.1],
              "composite_seeds": 2, "bootstrap": 10, "chinchilla_bootstrap": 0,
              **_LM, "lm_widths": [16, 32, 48], "lm_tokens_per_param": 1.0, "lm_min_steps": 8, "lm_context": 64,
              "lm_batch_tokens": 256, "lm_lrs": [3e-3, 1e-2], "lm_lr_bracket": 1, "lm_eval_tokens": 256,
              "lm_domains": ["algebra", "code"], "lm_parts": {"small": ["d16l1", "d16l2"],
                                                             "rest": ["d32l2", "d48l2", "d48l3"]}},
    "cpu": {**_TOY, "tasks": ["square", "sine", "bump"], "activations": ["relu", "silu"],
            "widths": [4, 8, 16, 32, 64, 128], "regs": [0.0, 0.01, 0.03, 0.1, 0.3], "seeds": 5,
            "steps": 4000, "refit_steps": 1000,
            "compositions": ["parallel", "series"], "composite_widths": [8, 16, 32, 64, 128],
            "composite_regs": [0.03, 0.1], "composite_seeds": 5, "bootstrap": 1000, "chinchilla_bootstrap": 1000,
            **_LM, "lm_widths": [32, 48, 64, 80, 96], "lm_parts": LM_PARTS_CPU, "unit_records": "results"},
    "gpu": {**_TOY, "tasks": ["square", "sine", "bump"], "activations": ["relu", "silu"],
            "widths": [4, 8, 16, 32, 64, 128, 256], "regs": [0.0, 0.01, 0.03, 0.1, 0.3], "seeds": 10,
            "steps": 8000, "refit_steps": 2000,
            "compositions": ["parallel", "series"], "composite_widths": [8, 16, 32, 64, 128, 256],
            "composite_regs": [0.03, 0.1], "composite_seeds": 10, "bootstrap": 1000, "chinchilla_bootstrap": 1000,
            # tokens ~ N: rungs above d128 (d192l12 at the 49.8M-token epoch cap, 3 rates) would not fit an
            # 8-minute lease part (`plan gpu resource`), so the gpu ladders stop at d128 (depth d128l8)
            **_LM, "lm_widths": [32, 48, 64, 96, 128], "lm_context": 512, "lm_batch_tokens": 16384,
            "lm_min_steps": 32, "lm_head_dim": 16, "lm_lrs": [1e-3, 2e-3, 4e-3], "lm_lr_bracket": 0,
            "lm_eval_tokens": 16384},
}


def validate(params: dict) -> dict:
    """Check every parameter (ParameterError with one clear message); nothing is computed."""
    from scalinglaws.data import ALL_DOMAINS
    from scalinglaws.studies.resource.toy import ACTIVATIONS, COMPOSITIONS, TARGETS

    p = dict(params)
    p["tasks"] = check_subset("tasks", p["tasks"], list(TARGETS))
    p["activations"] = check_subset("activations", p["activations"], list(ACTIVATIONS))
    for name, lo in (("widths", 1), ("composite_widths", 1), ("lm_widths", 8)):
        vals = p[name]
        if isinstance(vals, (str, bytes)) or not hasattr(vals, "__iter__") or not list(vals):
            raise ParameterError(f"{name}={vals!r} must be a non-empty list of integers >= {lo}")
        for w in vals:
            check_int(f"{name} entry", w, minimum=lo, maximum=4096)
        if len(set(vals)) != len(vals):
            raise ParameterError(f"{name} has duplicates: {list(vals)}")
        p[name] = sorted(int(w) for w in vals)
    if len(p["widths"]) < 2:
        raise ParameterError(f"widths={p['widths']} needs at least two widths to fit a power law")
    for name in ("regs", "composite_regs"):
        vals = list(p[name]) if not isinstance(p[name], str) else [p[name]]
        if not vals:
            raise ParameterError(f"{name} must not be empty")
        p[name] = [check_float(f"{name} entry", r, 0.0, 100.0) for r in vals]
    for t in p["thresholds"]:
        check_float("thresholds entry", t, 0.0, 1.0, open_interval=True)
    p["thresholds"] = [float(t) for t in p["thresholds"]]
    if not p["thresholds"]:
        raise ParameterError("thresholds must not be empty")
    p["threshold"] = check_float("threshold", p["threshold"], 0.0, 1.0, open_interval=True)
    if p["threshold"] not in p["thresholds"]:
        raise ParameterError(f"threshold={p['threshold']} must be one of thresholds={p['thresholds']}")
    p["ablation_tol"] = check_float("ablation_tol", p["ablation_tol"], 0.0, 1.0, open_interval=True)
    for name, lo in (("seeds", 1), ("composite_seeds", 1), ("steps", 1), ("refit_steps", 0), ("n_train", 8),
                     ("n_test", 16), ("min_neurons", 1), ("bootstrap", 0), ("chinchilla_bootstrap", 0),
                     ("lm_fixed_depth", 1), ("lm_depth_ratio", 1), ("lm_head_dim", 1), ("lm_context", 8),
                     ("lm_batch_tokens", 8), ("lm_min_steps", 1), ("lm_seed", 0), ("lm_eval_tokens", 1)):
        check_int(name, p[name], minimum=lo)
    p["lm_tokens_per_param"] = check_float("lm_tokens_per_param", p["lm_tokens_per_param"], 0.0, 1e4,
                                           open_interval=True)
    check_int("lm_lr_bracket", p["lm_lr_bracket"], minimum=0, maximum=4)
    check_choice("unit_records", p["unit_records"], UNIT_RECORDS)
    if p["lm_batch_tokens"] % p["lm_context"]:
        raise ParameterError(f"lm_batch_tokens={p['lm_batch_tokens']} must be a multiple of lm_context={p['lm_context']}")
    for w in p["lm_widths"]:
        if w % p["lm_head_dim"]:
            raise ParameterError(f"lm_widths entry {w} must be a multiple of lm_head_dim={p['lm_head_dim']}")
        if w % p["lm_depth_ratio"]:  # depth = width / ratio exactly: d/L one constant along the ladder
            raise ParameterError(f"lm_widths entry {w} must be a multiple of lm_depth_ratio={p['lm_depth_ratio']} "
                                 "(the depth ladder's depth is width / ratio, exactly)")
    p["lr"] = check_float("lr", p["lr"], 0.0, 1.0, open_interval=True)
    lrs = p["lm_lrs"]
    if isinstance(lrs, (str, bytes)) or not isinstance(lrs, (list, tuple)) or not lrs or len(set(lrs)) != len(lrs):
        raise ParameterError(f"lm_lrs={lrs!r} must be a non-empty list of distinct learning rates in (0, 1)")
    p["lm_lrs"] = [check_float("lm_lrs entry", x, 0.0, 1.0, open_interval=True) for x in lrs]
    p["compositions"] = check_subset("compositions", p["compositions"], list(COMPOSITIONS))
    ct = p["composite_tasks"]
    if isinstance(ct, str) or len(ct) != 2:
        raise ParameterError(f"composite_tasks={ct!r} must be a pair of task names from {list(TARGETS)}")
    p["composite_tasks"] = check_subset("composite_tasks", ct, list(TARGETS))
    doms = p["lm_domains"]
    p["lm_domains"] = list(ALL_DOMAINS) if list(doms) == ["all"] else check_subset("lm_domains", doms, list(ALL_DOMAINS))
    _check_rungs(p)
    return p


def rungs(p: dict) -> list[dict]:
    """Every unique LM rung {size, d_model, n_layers, params_non_embedding, tokens, capped, steps},
    smallest first (a rung in both ladders, e.g. d32l2, once)."""
    from scalinglaws.studies.resource.lm import epoch_cap, ladder_sizes, lm_size, non_embedding_params, rung_tokens
    from scalinglaws.data import ALL_DOMAINS
    cap = epoch_cap(ALL_DOMAINS if list(p["lm_domains"]) == ["all"] else p["lm_domains"])  # unvalidated params too
    out = {}
    for m in ladder_sizes(p["lm_widths"], p["lm_fixed_depth"], p["lm_depth_ratio"], p["lm_head_dim"], p["lm_context"]):
        name = lm_size(m["d_model"], m["n_layers"], p["lm_head_dim"], p["lm_context"]).name
        if name in out:
            continue
        n = non_embedding_params(m["d_model"], m["n_layers"], p["lm_head_dim"], p["lm_context"])
        tokens, capped = rung_tokens(n, p["lm_tokens_per_param"], p["lm_batch_tokens"], cap)
        out[name] = {"size": name, "d_model": m["d_model"], "n_layers": m["n_layers"], "params_non_embedding": n,
                     "tokens": tokens, "capped": capped, "steps": tokens // p["lm_batch_tokens"]}
    return sorted(out.values(), key=lambda r: r["params_non_embedding"])


def _check_rungs(p: dict) -> None:
    """Every rung gets `lm_min_steps` optimiser steps; `lm_parts` covers every rung once; `part` names one."""
    rs = rungs(p)
    few = [f"{r['size']} ({r['steps']})" for r in rs if r["steps"] < p["lm_min_steps"]]
    if few:
        raise ParameterError(f"rungs {few} get fewer than lm_min_steps={p['lm_min_steps']} optimiser steps at "
                             f"lm_tokens_per_param={p['lm_tokens_per_param']:g} and lm_batch_tokens={p['lm_batch_tokens']}: "
                             "raise tokens per parameter, lower the batch or drop the smallest widths")
    parts, part = p["lm_parts"], p["part"]
    if parts is not None and TOY_PART in parts:
        raise ParameterError(f"lm_parts may not name a part {TOY_PART!r}: that name is the toy networks' part")
    if part == TOY_PART:
        return
    if parts is None:
        if part is not None:
            raise ParameterError(f"part={part!r} given but this profile defines no lm_parts")
        return
    if not isinstance(parts, dict) or not parts:
        raise ParameterError(f"lm_parts={parts!r} must be null or {{name: [rung, ...]}}")
    names = [r["size"] for r in rs]
    listed = [s for v in parts.values() for s in v]
    if sorted(listed) != sorted(names):
        raise ParameterError(f"lm_parts must name every rung {names} exactly once; they name {listed}")
    if part is not None:
        check_choice("part", part, list(parts) + [TOY_PART])


# ----------------------------------------------------------------------------- units

def _single_unit(cfg: dict) -> list[dict]:
    from scalinglaws.studies.resource.toy import train_single
    with torch_threads(1):
        rows = train_single(cfg["task"], cfg["width"], cfg["regs"], range(cfg["seeds"]), activation=cfg["activation"],
                            steps=cfg["steps"], refit_steps=cfg["refit_steps"], lr=cfg["lr"], n_train=cfg["n_train"],
                            n_test=cfg["n_test"], thresholds=cfg["thresholds"], ablation_tol=cfg["ablation_tol"])
    return rows


def _composite_unit(cfg: dict) -> list[dict]:
    from scalinglaws.studies.resource.toy import train_composite
    with torch_threads(1):
        return train_composite(cfg["kind"], tuple(cfg["tasks"]), cfg["width"], cfg["regs"], range(cfg["seeds"]),
                               activation=cfg["activation"], steps=cfg["steps"], refit_steps=cfg["refit_steps"],
                               lr=cfg["lr"], n_train=cfg["n_train"], n_test=cfg["n_test"],
                               threshold=cfg["threshold"], ablation_tol=cfg["ablation_tol"])


_LM_DATA: dict = {}


def _lm_unit(cfg: dict) -> dict:
    from scalinglaws import data
    from scalinglaws.evaluation import EvalSpec
    from scalinglaws.studies.resource.lm import train_rung
    key = (tuple(cfg["domains"]), cfg["context"], cfg["eval_tokens"])
    if key not in _LM_DATA:  # token arrays are cached on disk; keep them in memory across rungs
        arrays = {d: data.token_ids(d, "pretrain") for d in cfg["domains"]}
        windows = {s: EvalSpec(cfg["domains"], cfg["eval_tokens"], cfg["context"], 0, split=s) for s in ("val", "test")}
        _LM_DATA.clear()
        _LM_DATA[key] = (arrays, windows)
    arrays, windows = _LM_DATA[key]
    from scalinglaws.core.paths import work_root
    # a cpu rung trains for up to two hours: its state in .work/ lets a killed session resume it
    state = work_root() / "resume" / STUDY / Unit("lm", cfg).key
    with torch_threads(1):  # bit-reproducible on CPU for a fixed thread count
        return train_rung(cfg, arrays, windows, resume=state)


def _toy_common(p: dict) -> dict:
    return {k: p[k] for k in ("steps", "refit_steps", "lr", "n_train", "n_test", "ablation_tol")}


def single_units(p: dict) -> list[Unit]:
    return [Unit("single", {"task": t, "activation": a, "width": w, "regs": p["regs"], "seeds": p["seeds"],
                            "thresholds": p["thresholds"], **_toy_common(p)})
            for t in p["tasks"] for a in p["activations"] for w in p["widths"]]


def composite_units(p: dict) -> list[Unit]:
    return [Unit("composite", {"kind": k, "tasks": p["composite_tasks"], "activation": p["activations"][0],
                               "width": w, "regs": p["composite_regs"], "seeds": p["composite_seeds"],
                               "threshold": p["threshold"], **_toy_common(p)})
            for k in p["compositions"] for w in p["composite_widths"]]


def lm_unit(p: dict, rung: dict, lr: float) -> Unit:
    return Unit("lm", {"d_model": rung["d_model"], "n_layers": rung["n_layers"], "head_dim": p["lm_head_dim"],
                       "context": p["lm_context"], "seed": p["lm_seed"], "tokens": rung["tokens"],
                       "batch_tokens": p["lm_batch_tokens"], "lr": float(lr), "domains": p["lm_domains"],
                       "eval_tokens": p["lm_eval_tokens"]})


def lm_units(p: dict, rates: dict | None = None) -> tuple[list[Unit], list[dict]]:
    """Unique (rung, lr) units and the ladder membership rows pointing at them (a rung in both
    ladders, e.g. d32l2, is trained once per rate). `rates` = {size: [lr, ...]} (default: the
    grid `lm_lrs` for every rung); a size absent from `rates` is left out."""
    from scalinglaws.studies.resource.lm import ladder_sizes, lm_size
    by_name = {r["size"]: r for r in rungs(p)}
    rates = {s: list(p["lm_lrs"]) for s in by_name} if rates is None else rates
    members = ladder_sizes(p["lm_widths"], p["lm_fixed_depth"], p["lm_depth_ratio"], p["lm_head_dim"], p["lm_context"])
    units, seen, rows = [], {}, []
    for m in members:
        name = lm_size(m["d_model"], m["n_layers"], p["lm_head_dim"], p["lm_context"]).name
        for lr in rates.get(name, []):
            k = (name, float(lr))
            if k not in seen:
                seen[k] = len(units)
                units.append(lm_unit(p, by_name[name], lr))
            rows.append({**m, "unit": seen[k]})
    return units, rows


def lm_sweep(sweep: Sweep, p: dict, sizes: list[str], backend: str = "local") -> tuple[list, list[Unit], list[dict]]:
    """Train `sizes` (rung names) at every rate of the grid, bracketed by the testbed's rule
    (`core.regime.bracketed_rounds`) up to `lm_lr_bracket` rounds. Each rung's rates depend on its
    own results only, so a part chooses what the whole run does. Returns (records, units, membership
    rows) of the last round."""
    def train_round(rates):
        units, members = lm_units(p, rates)
        recs = sweep.run(units, _lm_unit, backend=backend, desc="LM ladders")
        return (recs, units, members), lm_table(recs, units, members).drop_duplicates(["size", "lr"])

    return bracketed_rounds({s: list(p["lm_lrs"]) for s in sizes}, grid_ratio(p["lm_lrs"]), p["lm_lr_bracket"],
                            train_round)


# ----------------------------------------------------------------------------- tables

def single_table(recs: list[dict], units: list[Unit]) -> pd.DataFrame:
    """Tidy: one row per (network, counting method); method 'weight' (threshold = weight threshold)
    or 'ablation' (threshold = relative loss tolerance)."""
    rows = []
    for u, rec in zip(units, recs):
        c = u.config
        for r in rec["rows"]:
            base = {"task": c["task"], "activation": c["activation"], "width": c["width"], "reg": r["reg"],
                    "seed": r["seed"], "loss": r["loss"], "train_loss": r["train_loss"]}
            for th in c["thresholds"]:
                rows.append({**base, "method": "weight", "threshold": th, "neurons": r[f"neurons_w{th:g}"]})
            rows.append({**base, "method": "ablation", "threshold": c["ablation_tol"], "neurons": r["neurons_ablation"]})
    return pd.DataFrame(rows)


def composite_table(recs, units) -> pd.DataFrame:
    rows = []
    for u, rec in zip(units, recs):
        c = u.config
        for r in rec["rows"]:
            rows.append({"kind": c["kind"], "task_1": c["tasks"][0], "task_2": c["tasks"][1],
                         "activation": c["activation"], "width": c["width"], **r})
    df = pd.DataFrame(rows)
    df["share_1"] = df["neurons_1"] / df["neurons"].where(df["neurons"] > 0)
    return df


def lm_table(recs, units, members) -> pd.DataFrame:
    """One row per (ladder, rung, rate); `chosen` marks each rung's rate with the lowest
    validation loss (the fits use the chosen rows; the test loss is not selected on); `bracket`
    says where the chosen rate sits among the rung's non-diverged rates (`core.regime.bracket`:
    'inside' when a worse rate lies on each side); `tokens_budget` is the rung's planned tokens
    (`tokens` is what it trained: 0 when it diverged); `wall_s` the unit's seconds."""
    from scalinglaws.core import regime as R
    rows = []
    for m in members:
        u, rec = units[m["unit"]], recs[m["unit"]]
        rows.append({"ladder": m["ladder"], "d_model": m["d_model"], "n_layers": m["n_layers"], **rec["rows"][0],
                     "lr": u.config["lr"], "context": u.config["context"], "tokens_budget": u.config["tokens"],
                     "batch_tokens": u.config["batch_tokens"], "unit_wall_s": rec.get("wall_s", float("nan")), "unit": u.key})
    t = pd.DataFrame(rows)
    ok = ~t["diverged"].astype(bool) & t["val_loss"].notna()
    best = t[ok].groupby(["ladder", "size"])["val_loss"].idxmin()
    t["chosen"] = t.index.isin(best.values)
    t["bracket"] = ""
    for (ladder, size), g in t.groupby(["ladder", "size"], sort=False):
        c = g[g["chosen"]]
        if len(c):
            # a diverged rate counts as tried, as in the testbed: one above the chosen rate brackets it
            t.loc[g.index, "bracket"] = R.bracket(float(c["lr"].iloc[0]), g["lr"]) if len(g) > 1 else "not swept"
    return t


SAMPLE_DRAWS = 200  # bootstrap draws kept per fit in `fit_samples` (enough for a 95% band)


def _fit_row(res, part, subject, samples: list | None = None, **extra) -> list[dict]:
    """Fit rows: one per parameter, plus the exponent -alpha when the law has alpha. With
    `samples` (a list), the fit's first SAMPLE_DRAWS bootstrap draws are appended to it, keyed like
    its `fits` rows (`FitResult.sample_rows`): the figures draw 95% bands from them."""
    if samples is not None:
        samples += res.sample_rows(SAMPLE_DRAWS, part=part, subject=subject, law=res.law.name, **extra)
    out = []
    for row in res.rows(part=part, subject=subject):
        out.append({**row, **extra})
        if row["param"] == "alpha":  # the exponent of loss in the resource, in the paper's sign convention
            out.append({**out[-1], "param": "exponent", "estimate": -row["estimate"], "lo": -row["hi"],
                        "hi": -row["lo"], "se": row["se"]})
    return out


def fit_tables(single: pd.DataFrame, comp: pd.DataFrame, lm: pd.DataFrame, p: dict) -> tuple[pd.DataFrame, ...]:
    from scalinglaws.fitting import fit

    B = p["bootstrap"]
    rows, samples = [], []  # samples: bootstrap draws of the fits the figures draw with bands
    for (task, act, method, th), g in single.groupby(["task", "activation", "method", "threshold"], sort=False):
        g = g[g["neurons"] >= p["min_neurons"]]
        if len(g) < 3 or g["neurons"].nunique() < 2:
            continue
        primary = method == "weight" and th == p["threshold"]
        extra = {"activation": act, "method": method, "threshold": th, "primary": primary}
        rows += _fit_row(fit("power", g, columns={"x": "neurons"}, y="loss", bootstrap=B, seed=0), "single", task,
                         samples if primary else None, **extra)
        if primary:
            rows += _fit_row(fit("power_offset", g, columns={"x": "neurons"}, y="loss", bootstrap=B, seed=0),
                             "single", task, **extra)
    for kind, g in composites(comp):
        for sub in (1, 2):
            gi = g[g[f"neurons_{sub}"] >= 1].rename(columns={f"neurons_{sub}": "n_i", f"loss_{sub}": "l_i"})
            if gi["n_i"].nunique() >= 2:
                rows += _fit_row(fit("power", gi, columns={"x": "n_i"}, y="l_i", bootstrap=B, seed=0),
                                 "composite", f"{kind}:subtask_{sub}", activation=g["activation"].iloc[0],
                                 method="weight" if kind == "series" else "ablation-share",
                                 threshold=p["threshold"], primary=False)
        rows += _fit_row(fit("power", g, columns={"x": "neurons"}, y="loss", bootstrap=B, seed=0), "composite",
                         f"{kind}:total", activation=g["activation"].iloc[0], method="weight",
                         threshold=p["threshold"], primary=False)
    shares, additive = composite_fit_tables(comp, B)
    for ladder, g in lm[lm["chosen"]].groupby("ladder", sort=False):
        if g["params_non_embedding"].nunique() >= 4:  # three parameters: at least four points
            rows += _fit_row(fit("power_offset", g, columns={"x": "params_non_embedding"}, y="loss", bootstrap=B,
                                 seed=0), "lm", ladder, samples, method="non_embedding", primary=True)
        if len(g) >= 2:
            rows += _fit_row(fit("power", g, columns={"x": "params_non_embedding"}, y="loss", bootstrap=B, seed=0),
                             "lm", ladder, method="non_embedding_no_floor", primary=False)
            rows += _fit_row(fit("power", g, columns={"x": "params_total"}, y="loss", bootstrap=B, seed=0),
                             "lm", ladder, method="total_no_floor", primary=False)
    rows += chinchilla_rows(p["chinchilla_bootstrap"])
    return pd.DataFrame(rows), shares, additive, pd.DataFrame(samples)


def chinchilla_rows(bootstrap: int) -> list[dict]:
    """The `fits` rows of Epoch's Chinchilla refit (`fitting.checks.fit_chinchilla`, seed 0)."""
    from scalinglaws.fitting.checks import fit_chinchilla
    return _fit_row(fit_chinchilla(bootstrap, seed=0), "chinchilla", "epoch_refit", method="reference_csv",
                    primary=True)


# ----------------------------------------------------------------------------- run

def data_files(p: dict) -> list[tuple[str, str]]:
    """The corpus files a run reads: the LM ladders' training and validation splits."""
    return [(d, s) for s in ("pretrain", "val") for d in p["lm_domains"]]


def plan(p: dict) -> dict:
    """The toy units and the LM units of the grid's first round (bracketing may add rates)."""
    lm_u, members = lm_units(p)
    return {"single": single_units(p), "composite": composite_units(p), "lm": lm_u, "members": members}


def unit_sweep(profile: str, p: dict) -> Sweep:
    """Where the unit records live: `.work/units/resource/<profile>/` (unit_records="work") or beside
    the tables, `data/results/resource/<profile>/units/<kind>/` (="results", committed with them; the
    seeds replicates keep theirs there too, under `units/seeds`)."""
    from scalinglaws.core.paths import results_root
    sweep = Sweep(STUDY, profile)
    if p["unit_records"] == "results":
        sweep.dir = results_root() / STUDY / profile / "units"
    return sweep


PARTS_TABLE = "lm_parts"
# The part that trains the toy networks (single subtasks and composites) and nothing else: at cpu they
# take ~50 min of one core, which can run beside an LM part on the second core instead of in the final run.
TOY_PART = "toys"


def part_sizes(p: dict, part: str | None) -> list[str]:
    """The rung names a part trains (every rung when `part` is None)."""
    return [r["size"] for r in rungs(p)] if part is None else list(p["lm_parts"][part])


def recorded_lm_table(sweep: Sweep, p: dict) -> pd.DataFrame:
    """`lm_table` of every LM unit of this config already recorded in `sweep` (rungs of the parts
    done so far, their bracket rounds included; nothing is trained). A rung's rates are the grid
    and the bracketing steps beyond it, as `lm_sweep` makes them."""
    rates = bracket_candidates(list(p["lm_lrs"]), grid_ratio(p["lm_lrs"]), p["lm_lr_bracket"])
    candidates = {r["size"]: list(rates) for r in rungs(p)}
    units, members = lm_units(p, candidates)
    done = {i for i, u in enumerate(units) if sweep.done(u)}
    members = [m for m in members if m["unit"] in done]
    if not members:
        return pd.DataFrame()
    recs = [sweep.load(u) if i in done else None for i, u in enumerate(units)]
    return lm_table(recs, units, members)


def complete_rungs(table: pd.DataFrame, p: dict) -> set[str]:
    """Rungs of a `recorded_lm_table` that `lm_sweep` would train no further: every grid rate
    recorded, and the chosen rate inside its rates or every bracketing round spent."""
    if not len(table):
        return set()
    rt = table.drop_duplicates(["size", "lr"])
    grid = {round(float(x), 12) for x in p["lm_lrs"]}
    return {s for s, g in rt.groupby("size") if grid <= set(g["lr"].round(12))
            and ((g["bracket"] == "inside").any() or len(g) >= len(grid) + p["lm_lr_bracket"])}


def write_parts_table(profile: str, p: dict, command: str) -> ResultStore:
    """Write `lm_parts` (every LM unit of this config recorded so far, nothing trained) and record it
    in provenance `derived`: its commit, the command, the parts complete (every rung recorded at
    its bracketed rates: `lm_sweep` would train nothing more), the LM config and the units' seconds."""
    import datetime as dt
    from scalinglaws.core.results import git_commit
    sweep = unit_sweep(profile, p)
    table = recorded_lm_table(sweep, p)
    store = ResultStore(STUDY, profile)
    store.write(PARTS_TABLE, table)
    prov = store.provenance() or {}
    rt = table.drop_duplicates(["size", "lr"]) if len(table) else table
    complete = complete_rungs(table, p)
    prov.setdefault("derived", {})[PARTS_TABLE] = {
        "commit": git_commit(), "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command, "parts_done": sorted(n for n, sizes in p["lm_parts"].items() if set(sizes) <= complete),
        "rungs_complete": sorted(complete), "config": {k: p[k] for k in p if k.startswith("lm_")},
        "unit_compute_s": round(float(rt["unit_wall_s"].sum()), 1) if len(rt) else 0.0}
    store.write_provenance(prov)
    return store


def toy_sweeps(sweep: Sweep, units: dict, backend: str) -> tuple[list, list]:
    """Train (or reuse) the toy networks' units of `plan`: the records of the single-subtask and the
    composite units, the toy part's work and the first of the final run's."""
    return (sweep.run(units["single"], _single_unit, backend=backend, desc="single subtask"),
            sweep.run(units["composite"], _composite_unit, backend=backend, desc="composites"))


def run_toy_part(profile: str, p: dict, backend: str) -> ResultStore:
    """Train the toy networks' units (`TOY_PART`) and record them; no table is written (the final run
    reads the records and fits)."""
    units, sweep = plan(p), unit_sweep(profile, p)
    with sweep.lock():
        recs = toy_sweeps(sweep, units, backend)
    n, wall = sum(map(len, recs)), sum(r["wall_s"] for rs in recs for r in rs)
    print(f"resource @ {profile}, part {TOY_PART}: {n} toy units recorded under {sweep.dir} ({wall:.0f} s of units); "
          "no table written")
    return ResultStore(STUDY, profile)


def run_part(profile: str, p: dict, backend: str) -> ResultStore:
    """Train one part's rungs (rates bracketed), record the units; write `lm_parts` (every LM unit
    recorded so far; `write_parts_table`); no other table is written. The toy part: `run_toy_part`."""
    if p["part"] == TOY_PART:
        return run_toy_part(profile, p, backend)
    sweep = unit_sweep(profile, p)
    with sweep.lock():
        lm_sweep(sweep, p, part_sizes(p, p["part"]), backend)
    store = write_parts_table(profile, p, f"python -m scalinglaws reproduce resource --profile {profile} "
                                          f"--no-notebook --param part={p['part']}")
    table = store.read(PARTS_TABLE)
    print(f"resource @ {profile}, part {p['part']}: {len(table)} LM rows recorded under {sweep.dir} "
          f"({table.drop_duplicates('unit')['unit_wall_s'].sum():.0f} s of units so far); wrote {PARTS_TABLE} only")
    return store


@exclusive_run
def run(profile: str, backend: str = "local", **overrides) -> ResultStore:
    """Run (or resume) the whole study at `profile`; returns the store (provenance written last).
    With `part` (a name of `lm_parts`): that part's LM rungs only (`run_part`)."""
    import sys
    from scalinglaws.studies import validate_run
    p = validate_run(sys.modules[__name__], profile, backend, overrides)
    if p["part"] is not None:
        return run_part(profile, p, backend)
    units = plan(p)
    t0 = time.perf_counter()
    sweep = unit_sweep(profile, p)
    s_recs, c_recs = toy_sweeps(sweep, units, backend)
    l_recs, l_units, l_members = lm_sweep(sweep, p, part_sizes(p, None), backend)
    single = single_table(s_recs, units["single"])
    comp = composite_table(c_recs, units["composite"])
    lm = lm_table(l_recs, l_units, l_members)
    fits, shares, additive, samples = fit_tables(single, comp, lm, p)
    store = ResultStore(STUDY, profile)
    tables = {"single": single, "composite": comp, "lm_ladders": lm, "fits": fits, "shares": shares,
              "additive": additive, "fit_samples": samples}
    from scalinglaws.studies.resource.claims import claims
    tables["claims"] = claims(tables, profile)
    for name, df in tables.items():
        store.write(name, df)
    store.write(PARTS_TABLE, lm)  # every LM unit recorded: the whole ladder, as the parts left it
    unit_wall = sum(r["wall_s"] for r in s_recs + c_recs + l_recs)
    store.write_run_provenance(provenance(p, time.perf_counter() - t0, profile=profile, backend=backend,
                                      unit_compute_s=unit_wall,
                                      units=len(units["single"]) + len(units["composite"]) + len(l_units)))
    return store
