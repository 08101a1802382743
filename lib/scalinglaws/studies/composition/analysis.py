"""Analysis of the composition study: pure functions of the evaluated models (tested on synthetic data).

Loss of a model on a subset of k domains = the mean over those domains of its CE (nats/token) on
each domain's uniform test windows. Noise: a paired bootstrap. For every domain the same resample
of its windows (`evaluation.domain_rng(seed, domain, "composition_bootstrap")`) is applied to every
model, every arm and every subset that contains the domain, so the difference of two arms is
resampled jointly (a paired interval, much narrower than two independent ones) and an arm's loss
averaged over subsets is resampled consistently.

Tables:
    arms       one row per (pool, size, k, subset, arm): loss, se, 95% interval, the paired
               difference to keep-base (delta_base, lo, hi) and the cost columns (`costs.py`)
    summary    one row per (pool, size, k, arm): the mean over subsets, with bootstrap se/interval
    contrasts  every pair of arms at (pool, size, k): loss_a - loss_b with its paired interval
    wins       per (pool, size, k): the winner, the runner-up and the margin with its interval;
               verdict "tie" when the paired interval of the margin includes 0 (tied_with lists
               every arm the winner cannot be told apart from)
    fits       per (pool, k, arm): log10 L = intercept + slope log10 C over sizes (C = total FLOPs), in
               the one `fits` schema (`fitting.schema`); `fit_lines` gives one row per line
    predictions per (pool, k, arm): the fit on every size but the largest, its prediction of the
               largest size, the measured error; `winner_predictions` whether the fits name the
               measured winner at the largest size
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd

ALPHA = (2.5, 97.5)


def _resample(domain: str, n: int, n_boot: int, seed: int) -> np.ndarray:
    from scalinglaws.evaluation import domain_rng
    return domain_rng(seed, domain, "composition_bootstrap").integers(0, n, size=(n_boot, n))


def loss_draws(nll: dict, tokens_per_window: int, domains, n_boot: int, seed: int) -> tuple[float, np.ndarray]:
    """(mean over `domains` of CE_d, its n_boot bootstrap draws); nll[d] = per-window NLL sums."""
    point, draws = [], []
    for d in domains:
        x = np.asarray(nll[d], dtype=float)
        point.append(x.sum() / (len(x) * tokens_per_window))
        idx = _resample(d, len(x), n_boot, seed)
        draws.append(x[idx].sum(1) / (len(x) * tokens_per_window))
    return float(np.mean(point)), np.mean(draws, axis=0)


def _iv(draws: np.ndarray) -> tuple[float, float, float]:
    lo, hi = np.percentile(draws, ALPHA)
    return float(np.std(draws, ddof=1)), float(lo), float(hi)


KEY = ["pool", "size", "N", "k"]


def arms_table(models: list[dict], n_boot: int, seed: int) -> tuple[pd.DataFrame, dict]:
    """models: dicts with pool, size, N, k, subset, domains (list), arm, method, cost columns, nll
    {domain: per-window sums}, tokens_per_window. Returns (arms table, {(pool, size, k, subset,
    arm): draws}). Every (pool, size, k, subset) needs an arm 'base'."""
    rows, draws = [], {}
    for m in models:
        point, dr = loss_draws(m["nll"], m["tokens_per_window"], m["domains"], n_boot, seed)
        key = (m["pool"], m["size"], m["k"], m["subset"], m["arm"])
        draws[key] = dr
        se, lo, hi = _iv(dr)
        extra = {k: v for k, v in m.items() if k not in ("nll", "tokens_per_window", "domains")}
        rows.append({**extra, "domains": ",".join(m["domains"]), "loss": point, "se": se, "lo": lo, "hi": hi})
    df = pd.DataFrame(rows)
    delta = []
    for r in df.itertuples():
        b = draws[(r.pool, r.size, r.k, r.subset, "base")]
        base_loss = df[(df["pool"] == r.pool) & (df["size"] == r.size) & (df["k"] == r.k) & (df["subset"] == r.subset)
                       & (df["arm"] == "base")]["loss"].item()
        dd = draws[(r.pool, r.size, r.k, r.subset, r.arm)] - b
        lo, hi = np.percentile(dd, ALPHA)
        delta.append({"delta_base": r.loss - base_loss, "delta_lo": float(lo), "delta_hi": float(hi)})
    return pd.concat([df, pd.DataFrame(delta)], axis=1), draws


def summary_table(arms: pd.DataFrame, draws: dict, cost_columns) -> tuple[pd.DataFrame, dict]:
    """Mean over subsets per (pool, size, k, arm), with the bootstrap of that mean."""
    rows, sdraws = [], {}
    for (pool, size, N, k, arm), g in arms.groupby(KEY + ["arm"], sort=False):
        dr = np.mean([draws[(pool, size, k, s, arm)] for s in g["subset"]], axis=0)
        sdraws[(pool, size, k, arm)] = dr
        se, lo, hi = _iv(dr)
        base = np.mean([draws[(pool, size, k, s, "base")] for s in g["subset"]], axis=0)
        dlo, dhi = np.percentile(dr - base, ALPHA)
        first = g.iloc[0]
        rows.append({"pool": pool, "size": size, "N": N, "k": k, "arm": arm, "method": first["method"],
                     "subsets": len(g), "loss": float(g["loss"].mean()), "se": se, "lo": lo, "hi": hi,
                     "delta_base": float(g["delta_base"].mean()), "delta_lo": float(dlo), "delta_hi": float(dhi),
                     **{c: first[c] for c in cost_columns}})
    return pd.DataFrame(rows), sdraws


def contrasts_table(summary: pd.DataFrame, sdraws: dict) -> pd.DataFrame:
    rows = []
    for (pool, size, N, k), g in summary.groupby(KEY, sort=False):
        for a, b in itertools.combinations(list(g["arm"]), 2):
            la, lb = (g.loc[g["arm"] == x, "loss"].item() for x in (a, b))
            lo, hi = np.percentile(sdraws[(pool, size, k, a)] - sdraws[(pool, size, k, b)], ALPHA)
            rows.append({"pool": pool, "size": size, "N": N, "k": k, "arm_a": a, "arm_b": b, "diff": la - lb,
                         "lo": float(lo), "hi": float(hi)})
    return pd.DataFrame(rows, columns=KEY + ["arm_a", "arm_b", "diff", "lo", "hi"])


def contrast(contrasts: pd.DataFrame, pool, size, k, a: str, b: str) -> tuple[float, float, float]:
    """(diff, lo, hi) of loss_a - loss_b (either order stored)."""
    c = contrasts[(contrasts["pool"] == pool) & (contrasts["size"] == size) & (contrasts["k"] == k)]
    fw = c[(c["arm_a"] == a) & (c["arm_b"] == b)]
    if len(fw):
        r = fw.iloc[0]
        return float(r["diff"]), float(r["lo"]), float(r["hi"])
    bw = c[(c["arm_a"] == b) & (c["arm_b"] == a)]
    if not len(bw):
        return math.nan, math.nan, math.nan
    r = bw.iloc[0]
    return -float(r["diff"]), -float(r["hi"]), -float(r["lo"])


WINS_COLUMNS = KEY + ["winner", "winner_loss", "runner_up", "runner_up_loss", "margin", "margin_lo", "margin_hi",
                      "verdict", "tied_with", "winner_total_flops"]


def wins_table(summary: pd.DataFrame, contrasts: pd.DataFrame) -> pd.DataFrame:
    """Per (pool, size, k): which arm has the lowest loss and whether it is told apart from the
    others (paired interval of loss_other - loss_winner above 0)."""
    rows = []
    for (pool, size, N, k), g in summary.groupby(KEY, sort=False):
        g = g.sort_values("loss")
        w, r = g.iloc[0], g.iloc[1] if len(g) > 1 else None
        tied = []
        for other in g["arm"].iloc[1:]:
            _, lo, _ = contrast(contrasts, pool, size, k, other, w["arm"])
            if not lo > 0:
                tied.append(other)
        m, mlo, mhi = contrast(contrasts, pool, size, k, r["arm"], w["arm"]) if r is not None else (math.nan,) * 3
        rows.append({"pool": pool, "size": size, "N": N, "k": k, "winner": w["arm"], "winner_loss": w["loss"],
                     "runner_up": r["arm"] if r is not None else "", "runner_up_loss": r["loss"] if r is not None else math.nan,
                     "margin": m, "margin_lo": mlo, "margin_hi": mhi, "verdict": "tie" if tied else "wins",
                     "tied_with": ",".join(tied), "winner_total_flops": w["total_flops"]})
    return pd.DataFrame(rows, columns=WINS_COLUMNS)


FIT_KEYS = ["pool", "k", "arm"]
FIT_EXTRA = ["cost_min", "cost_max", "loss_min", "loss_max"]  # the range each line was fitted on
LINE_LAW = "loglinear"  # log10 L = intercept + slope log10 C (`scalinglaws.laws`)


def _line(x, y) -> tuple[float, float]:
    if len(x) < 2 or np.ptp(x) == 0:
        return math.nan, math.nan
    slope, intercept = np.polyfit(x, y, 1)
    return float(slope), float(intercept)


def fits_table(summary: pd.DataFrame, cost: str = "total_flops") -> pd.DataFrame:
    """log10 L = intercept + slope log10 C per (pool, k, arm) over the sizes (C > 0 only), in the one
    `fits` schema (`fitting.schema`; params slope and intercept, no interval: the planner's
    `line_draws` gives one where it extrapolates), plus the cost and loss range of the points.

    The line is the least-squares fit of log10 L, solved exactly (`_line`), not by `fitting.fit`:
    through the two to four sizes of a pool the fitter's near-L1 Huber loss would pass the line
    through two of them, and the held-out predictions the claims test are defined on this line."""
    from scalinglaws.fitting import trust
    from scalinglaws.fitting.schema import fit_rows, fits_frame
    rows = []
    for (pool, k, arm), g in summary.groupby(FIT_KEYS, sort=False):
        g = g[g[cost] > 0]
        x, y = np.log10(g[cost].to_numpy(float)), np.log10(g["loss"].to_numpy(float))
        s, i = _line(x, y)
        r2_log = rmse = math.nan
        if np.isfinite(s):
            res = y - (i + s * x)
            ss_tot = float(((y - y.mean()) ** 2).sum())
            r2_log = 1.0 - float((res ** 2).sum()) / ss_tot if ss_tot > 0 else math.nan
            rmse = float(np.sqrt(np.mean((10.0 ** y - 10.0 ** (i + s * x)) ** 2)))
        ok, why = trust({"slope": s, "intercept": i}, None, r2_log, len(g), 2, converged=bool(np.isfinite(s)),
                        require_interval=False)
        extra = {"cost_min": float(g[cost].min()) if len(g) else math.nan,
                 "cost_max": float(g[cost].max()) if len(g) else math.nan,
                 "loss_min": float(g["loss"].min()) if len(g) else math.nan,
                 "loss_max": float(g["loss"].max()) if len(g) else math.nan}
        rows += fit_rows(LINE_LAW, {"slope": s, "intercept": i}, r2_log=r2_log, rmse=rmse, converged=bool(np.isfinite(s)),
                         ok=ok, why_not_ok=why, n_points=len(g), keys={"pool": pool, "k": k, "arm": arm}, extra=extra)
    return fits_frame(rows, FIT_KEYS, FIT_EXTRA)


def fit_lines(fits: pd.DataFrame) -> pd.DataFrame:
    """One row per stored line (FIT_KEYS, slope, intercept, n_points, the fitted range, ok): the
    shape the planner reads."""
    from scalinglaws.fitting.schema import wide
    return wide(fits, FIT_KEYS, FIT_EXTRA)


def predict(fit_row, cost: float) -> float:
    return float(10.0 ** (fit_row["intercept"] + fit_row["slope"] * math.log10(cost)))


PRED_COLUMNS = ["pool", "k", "arm", "size", "total_flops", "loss", "se", "pred", "error", "rel_error", "z", "status"]


def predictions_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Fit each arm's line on every size but the largest, predict the largest size's loss."""
    rows = []
    for (pool, k, arm), g in summary.groupby(["pool", "k", "arm"], sort=False):
        g = g.sort_values("N")
        if len(g) < 3:
            rows.append({"pool": pool, "k": k, "arm": arm, "status": f"not testable: {len(g)} sizes (3 needed)"})
            continue
        train, test = g.iloc[:-1], g.iloc[-1]
        s, i = _line(np.log10(train["total_flops"].to_numpy(float)), np.log10(train["loss"].to_numpy(float)))
        pred = 10.0 ** (i + s * math.log10(test["total_flops"]))
        err = pred - test["loss"]
        rows.append({"pool": pool, "k": k, "arm": arm, "size": test["size"], "total_flops": test["total_flops"],
                     "loss": test["loss"], "se": test["se"], "pred": pred, "error": err, "rel_error": err / test["loss"],
                     "z": err / test["se"] if test["se"] > 0 else math.nan, "status": "ok"})
    return pd.DataFrame(rows, columns=PRED_COLUMNS)


def winner_predictions(predictions: pd.DataFrame) -> pd.DataFrame:
    """Per (pool, k): the arm the held-out fits predict to win at the largest size vs the measured one."""
    cols = ["pool", "k", "size", "predicted_winner", "measured_winner", "correct"]
    ok = predictions[predictions["status"] == "ok"]
    rows = []
    for (pool, k), g in ok.groupby(["pool", "k"], sort=False):
        rows.append({"pool": pool, "k": k, "size": g["size"].iloc[0],
                     "predicted_winner": g.loc[g["pred"].idxmin(), "arm"],
                     "measured_winner": g.loc[g["loss"].idxmin(), "arm"],
                     "correct": bool(g.loc[g["pred"].idxmin(), "arm"] == g.loc[g["loss"].idxmin(), "arm"])})
    return pd.DataFrame(rows, columns=cols)
