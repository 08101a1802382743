"""Resource-model study (Song, Liu, Tegmark, Gore 2024, arXiv 2402.05164).

Parts, each a resumable sweep (`scalinglaws.core.sweep`), then fits, then provenance last:

1. single subtask: one-hidden-layer networks on 1-D targets (`toy.TARGETS`), widths x
   group-lasso strengths x seeds; loss vs allocated neurons (by weight threshold and by ablation),
   fitted with `fit("power")`: loss = A N^-alpha, the paper's exponent is -alpha = -1;
2. composites (parallel, series): shares N_1/N vs N (slope per doubling with a bootstrap interval)
   and the additive form l = c1/N1 + c2/N2 by fit;
3. language models: a width ladder at fixed depth and a ladder whose depth grows with width
   (`lm`), each rung at one token budget and its best rate of `lm_lrs`; reducible loss vs
   non-embedding parameters by `fit("power_offset")` (the pure `power` beside it); predictions
   -1/2 and -1/3;
4. the Chinchilla link: Epoch's alpha refitted on the reference CSV (`fit("chinchilla")`).

Tables (`ResultStore("resource", profile)`): single (tidy: one row per network and counting
method), composite, lm_ladders, fits, shares, additive, claims (`claims.py`: the paper's claims judged
on these tables, schema `scalinglaws.core.claims`), provenance.json last.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

from scalinglaws.core.results import ResultStore, provenance
from scalinglaws.studies import exclusive_run, resolve_params
from scalinglaws.core.sweep import Sweep, Unit
from scalinglaws.core.threads import torch_threads
from scalinglaws.core.validation import (ParameterError, check_choice, check_float, check_int, check_profile,
                                    check_subset)

STUDY = "resource"
PAPER_EXPONENT = -1.0
HOFFMANN_ALPHA = 0.34
EPOCH_ALPHA = 0.348
REFERENCE_CSV = "data/reference/chinchilla_svg_extracted_data.csv"

_TOY = dict(lr=1e-2, n_train=256, n_test=2048, thresholds=[1e-4, 1e-3, 1e-2], threshold=1e-3,
            ablation_tol=0.01, min_neurons=2, composite_tasks=["square", "sine"])
_LM = dict(lm_fixed_depth=2, lm_depth_ratio=16, lm_head_dim=8, lm_context=128, lm_batch_tokens=4096,
           lm_lrs=[2e-3, 4e-3, 8e-3], lm_seed=0, lm_eval_tokens=4096, lm_domains=["all"])

PROFILES: dict[str, dict] = {
    "smoke": {**_TOY, "tasks": ["square"], "activations": ["relu"], "widths": [4, 8, 16], "regs": [0.0, 0.3],
              "seeds": 2, "steps": 300, "refit_steps": 100, "n_test": 512,
              "compositions": ["parallel", "series"], "composite_widths": [4, 8], "composite_regs": [0.1],
              "composite_seeds": 2, "bootstrap": 10, "chinchilla_bootstrap": 0,
              **_LM, "lm_widths": [16, 24, 32], "lm_tokens": 8192, "lm_context": 64, "lm_batch_tokens": 1024,
              "lm_lrs": [3e-3, 1e-2], "lm_eval_tokens": 256, "lm_domains": ["algebra", "code"]},
    "cpu": {**_TOY, "tasks": ["square", "sine", "bump"], "activations": ["relu", "silu"],
            "widths": [4, 8, 16, 32, 64, 128], "regs": [0.0, 0.01, 0.03, 0.1, 0.3], "seeds": 5,
            "steps": 4000, "refit_steps": 1000,
            "compositions": ["parallel", "series"], "composite_widths": [8, 16, 32, 64, 128],
            "composite_regs": [0.03, 0.1], "composite_seeds": 5, "bootstrap": 1000, "chinchilla_bootstrap": 1000,
            **_LM, "lm_widths": [16, 24, 32, 48, 64, 96], "lm_tokens": 1_048_576},
    "gpu": {**_TOY, "tasks": ["square", "sine", "bump"], "activations": ["relu", "silu"],
            "widths": [4, 8, 16, 32, 64, 128, 256], "regs": [0.0, 0.01, 0.03, 0.1, 0.3], "seeds": 10,
            "steps": 8000, "refit_steps": 2000,
            "compositions": ["parallel", "series"], "composite_widths": [8, 16, 32, 64, 128, 256],
            "composite_regs": [0.03, 0.1], "composite_seeds": 10, "bootstrap": 1000, "chinchilla_bootstrap": 1000,
            **_LM, "lm_widths": [32, 48, 64, 96, 128, 192, 256], "lm_tokens": 16_777_216, "lm_context": 512,
            "lm_batch_tokens": 65536, "lm_head_dim": 16, "lm_lrs": [1e-3, 2e-3, 4e-3], "lm_eval_tokens": 16384},
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
                     ("lm_batch_tokens", 8), ("lm_tokens", 8), ("lm_seed", 0), ("lm_eval_tokens", 1)):
        check_int(name, p[name], minimum=lo)
    if p["lm_tokens"] < p["lm_batch_tokens"]:
        raise ParameterError(f"lm_tokens={p['lm_tokens']} must be >= lm_batch_tokens={p['lm_batch_tokens']}")
    if p["lm_batch_tokens"] % p["lm_context"]:
        raise ParameterError(f"lm_batch_tokens={p['lm_batch_tokens']} must be a multiple of lm_context={p['lm_context']}")
    for w in p["lm_widths"]:
        if w % p["lm_head_dim"]:
            raise ParameterError(f"lm_widths entry {w} must be a multiple of lm_head_dim={p['lm_head_dim']}")
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
    return p


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
    with torch_threads(1):  # bit-reproducible on CPU for a fixed thread count
        return train_rung(cfg, arrays, windows)


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


def lm_units(p: dict) -> tuple[list[Unit], list[dict]]:
    """Unique (d_model, n_layers, lr) units and the ladder membership rows pointing at them (a
    rung in both ladders, e.g. d32l2, is trained once per rate)."""
    from scalinglaws.studies.resource.lm import ladder_sizes
    members = ladder_sizes(p["lm_widths"], p["lm_fixed_depth"], p["lm_depth_ratio"], p["lm_head_dim"], p["lm_context"])
    units, seen, rows = [], {}, []
    for m in members:
        for lr in p["lm_lrs"]:
            k = (m["d_model"], m["n_layers"], lr)
            if k not in seen:
                seen[k] = len(units)
                units.append(Unit("lm", {"d_model": k[0], "n_layers": k[1], "head_dim": p["lm_head_dim"],
                                         "context": p["lm_context"], "seed": p["lm_seed"], "tokens": p["lm_tokens"],
                                         "batch_tokens": p["lm_batch_tokens"], "lr": lr, "domains": p["lm_domains"],
                                         "eval_tokens": p["lm_eval_tokens"]}))
            rows.append({**m, "unit": seen[k]})
    return units, rows


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
    validation loss (the fits use the chosen rows; the test loss is not selected on)."""
    rows = []
    for m in members:
        u = units[m["unit"]]
        rows.append({"ladder": m["ladder"], "d_model": m["d_model"], "n_layers": m["n_layers"],
                     **recs[m["unit"]]["rows"][0], "lr": u.config["lr"], "context": u.config["context"]})
    t = pd.DataFrame(rows)
    ok = ~t["diverged"].astype(bool) & t["val_loss"].notna()
    best = t[ok].groupby(["ladder", "size"])["val_loss"].idxmin()
    t["chosen"] = t.index.isin(best.values)
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
    from scalinglaws.studies.resource.toy import fit_additive, share_trend

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
    share_rows, add_rows = [], []
    for kind, g in comp.groupby("kind", sort=False):
        g = g[(g["neurons_1"] > 0) & (g["neurons_2"] > 0)]
        if len(g) < 3:
            continue
        share_rows.append({"kind": kind, **share_trend(g, boot=max(B, 1), seed=0)})
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
        for free in (False, True):
            a = fit_additive(g, free_exponents=free, boot=max(B // 4, 1), seed=0)
            for k, v in a["params"].items():
                if not free and k in ("a1", "a2"):
                    continue
                add_rows.append({"kind": kind, "form": "free exponents" if free else "c1/N1 + c2/N2", "param": k,
                                 "estimate": v, "lo": a["ci"][k][0], "hi": a["ci"][k][1], "r2_log": a["r2_log"],
                                 "rmse_log": a["rmse_log"], "n_points": a["n"]})
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
    return pd.DataFrame(rows), pd.DataFrame(share_rows), pd.DataFrame(add_rows), pd.DataFrame(samples)


def reference_frame() -> pd.DataFrame:
    """Epoch's 240 points: the digitised Chinchilla CSV minus its 5 highest-loss points,
    N = Model Size, D = Training FLOP / (6 N)."""
    from scalinglaws.core.paths import REPO_ROOT
    df = pd.read_csv(REPO_ROOT / REFERENCE_CSV)
    df = df.sort_values("loss").iloc[:-5]
    return pd.DataFrame({"N": df["Model Size"].to_numpy(float),
                         "D": (df["Training FLOP"] / (6 * df["Model Size"])).to_numpy(float),
                         "loss": df["loss"].to_numpy(float)})


def chinchilla_rows(bootstrap: int) -> list[dict]:
    from scalinglaws.fitting import fit
    res = fit("chinchilla", reference_frame(), columns={"N": "N", "D": "D"}, y="loss", bootstrap=bootstrap, seed=0)
    return _fit_row(res, "chinchilla", "epoch_refit", method="reference_csv", primary=True)


# ----------------------------------------------------------------------------- run

def data_files(p: dict) -> list[tuple[str, str]]:
    """The corpus files a run reads: the LM ladders' training and validation splits."""
    return [(d, s) for s in ("pretrain", "val") for d in p["lm_domains"]]


def plan(p: dict) -> dict:
    lm_u, members = lm_units(p)
    return {"single": single_units(p), "composite": composite_units(p), "lm": lm_u, "members": members}


@exclusive_run
def run(profile: str, backend: str = "local", **overrides) -> ResultStore:
    """Run (or resume) the whole study at `profile`; returns the store (provenance written last)."""
    import sys
    from scalinglaws.studies import validate_run
    p = validate_run(sys.modules[__name__], profile, backend, overrides)
    units = plan(p)
    t0 = time.perf_counter()
    sweep = Sweep(STUDY, profile)
    s_recs = sweep.run(units["single"], _single_unit, backend=backend, desc="single subtask")
    c_recs = sweep.run(units["composite"], _composite_unit, backend=backend, desc="composites")
    l_recs = sweep.run(units["lm"], _lm_unit, backend=backend, desc="LM ladders")
    single = single_table(s_recs, units["single"])
    comp = composite_table(c_recs, units["composite"])
    lm = lm_table(l_recs, units["lm"], units["members"])
    fits, shares, additive, samples = fit_tables(single, comp, lm, p)
    store = ResultStore(STUDY, profile)
    tables = {"single": single, "composite": comp, "lm_ladders": lm, "fits": fits, "shares": shares,
              "additive": additive, "fit_samples": samples}
    from scalinglaws.studies.resource.claims import claims
    tables["claims"] = claims(tables, profile)
    for name, df in tables.items():
        store.write(name, df)
    unit_wall = sum(r["wall_s"] for r in s_recs + c_recs + l_recs)
    store.write_provenance(provenance(p, time.perf_counter() - t0, profile=profile, backend=backend,
                                      unit_compute_s=unit_wall, units=sum(len(v) for k, v in units.items() if k != "members")))
    return store
