"""The fitter's checks, which the fitting chapter (`book/fitting.ipynb`) shows: Epoch's replication of
Chinchilla refitted, its held-out extrapolation, and the coverage of the bootstrap intervals.

    fit_chinchilla       the Chinchilla law on Epoch's 240 points (`data.reference.chinchilla_points`);
                         the resource study stores the same fit in its `fits` table
    chinchilla_table     ours beside Epoch's and Hoffmann et al.'s published constants (typed once, in
                         `data.reference`), with the compute-optimal size exponent of each
    chinchilla_checks    the comparisons the chapter's prose states, each a bool
    chinchilla_extrapolation   fit the models up to a size, predict the larger ones
    coverage             how often the bootstrap 95% intervals of a power law contain the truth
    bootstrap_figure     the bootstrap distributions of the Chinchilla fit beside the published values
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

from scalinglaws.core.validation import check_float, check_int
from scalinglaws.data import reference as REF
from scalinglaws.fitting.fitter import Extrapolation, FitResult, extrapolate, fit
from scalinglaws.laws import get_law, optimal_allocation_exponent

CHINCHILLA_PARAMS = ("E", "A", "B", "alpha", "beta")


def fit_chinchilla(bootstrap: int = 1000, seed: int = 0) -> FitResult:
    """The Chinchilla law fitted on Epoch's 240 points with `bootstrap` resamples (the fitter's
    defaults otherwise); `seconds` on the result is its wall time."""
    check_int("bootstrap", bootstrap, minimum=0)
    check_int("seed", seed, minimum=0)
    return fit("chinchilla", REF.chinchilla_points(), y="loss", bootstrap=bootstrap, seed=seed)


def chinchilla_table(res: FitResult) -> pd.DataFrame:
    """Per parameter: ours (estimate, 95% interval, SE), Epoch's (with its SE), Hoffmann's and
    ours / Epoch - 1; a last row with each fit's compute-optimal size exponent beta / (alpha + beta)."""
    names = list(CHINCHILLA_PARAMS)
    table = pd.DataFrame({
        "ours": [res.params[k] for k in names],
        "ours 95% CI": [f"[{res.ci[k][0]:.4g}, {res.ci[k][1]:.4g}]" for k in names],
        "ours SE": [res.se[k] for k in names],
        "Epoch": [REF.EPOCH[k] for k in names],
        "Epoch SE": [REF.EPOCH_SE[k] for k in names],
        "Hoffmann": [REF.HOFFMANN[k] for k in names],
    }, index=names)
    table["ours / Epoch - 1"] = table["ours"] / table["Epoch"] - 1
    table.loc["N_opt exponent beta/(alpha+beta)", ["ours", "Epoch", "Hoffmann"]] = [
        optimal_allocation_exponent(p["alpha"], p["beta"]) for p in (res.params, REF.EPOCH, REF.HOFFMANN)]
    return table


def chinchilla_checks(res: FitResult) -> dict:
    """The comparisons with the literature the chapter states, and the numbers behind them:
    dev_max (largest relative deviation from Epoch of E, alpha, beta), and whether A and B lie within
    one of Epoch's SEs, Hoffmann's beta lies outside our interval, and our SEs are within 2x Epoch's."""
    dev = max(abs(res.params[k] / REF.EPOCH[k] - 1) for k in ("E", "alpha", "beta"))
    lo, hi = res.ci["beta"]
    return {"dev_max": dev, "near_epoch": dev < 0.02,
            "A_B_within_epoch_se": all(abs(res.params[k] - REF.EPOCH[k]) < REF.EPOCH_SE[k] for k in ("A", "B")),
            "hoffmann_beta_outside": not lo <= REF.HOFFMANN["beta"] <= hi,
            "se_like_epoch": all(0.5 < res.se[k] / REF.EPOCH_SE[k] < 2 for k in CHINCHILLA_PARAMS)}


def chinchilla_extrapolation(max_train_size: float = 1e9) -> Extrapolation:
    """Fit Epoch's points with N <= max_train_size (no bootstrap), predict the larger models:
    (held-out rows with pred and rel_error, the fit)."""
    check_float("max_train_size", max_train_size, minimum=0.0, open_interval=True)
    df = REF.chinchilla_points()
    return extrapolate("chinchilla", df, (df["N"] <= max_train_size).to_numpy(), y="loss", bootstrap=0)


def coverage(trials: int, seed: int = 0, true: dict | None = None, n_points: int = 12, noise: float = 0.02,
             bootstrap: int = 200) -> pd.Series:
    """Share of `trials` synthetic data sets whose bootstrap 95% interval contains the true value,
    per parameter of the power law y = A x^-alpha (`true`, default A = 3, alpha = 1): n_points on
    x in [10, 10^4] (log-spaced) with log-normal noise of SD `noise`, each fitted with `bootstrap`
    resamples (seed + trial)."""
    check_int("trials", trials, minimum=1)
    check_int("seed", seed, minimum=0)
    check_int("n_points", n_points, minimum=3)
    check_float("noise", noise, minimum=0.0, open_interval=True)
    check_int("bootstrap", bootstrap, minimum=20)
    true = dict(true or {"A": 3.0, "alpha": 1.0})
    x = np.logspace(1, 4, n_points)
    clean = get_law("power").predict(true, {"x": x})
    rng = np.random.default_rng(seed)
    hits = []
    for t in range(trials):
        y = clean * np.exp(noise * rng.standard_normal(x.size))
        r = fit("power", {"x": x, "y": y}, y="y", bootstrap=bootstrap, seed=seed + t)
        hits.append({k: r.ci[k][0] <= v <= r.ci[k][1] for k, v in true.items()})
    return pd.DataFrame(hits).mean().rename("coverage of nominal 95% intervals")


def timed_fits(bootstrap: int, seed: int = 0) -> dict:
    """The Chinchilla fit twice, for the chapter's timings: without bootstrap (t_point, s) and with
    (t_full, s); `fit` is the latter."""
    t0 = time.perf_counter()
    fit_chinchilla(0, seed)
    t_point = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = fit_chinchilla(bootstrap, seed)
    return {"fit": res, "t_point": t_point, "t_full": time.perf_counter() - t0}


def bootstrap_figure(res: FitResult):
    """Histograms of the bootstrap draws of each Chinchilla parameter with our estimate, Epoch's and
    Hoffmann's published values (A and B on log axes); the sixth panel holds the legend."""
    from scalinglaws import plotstyle as PS
    PS.use()
    fig, axes = PS.subplots(2, 3, row_in=2.2)
    for ax, k in zip(axes.flat, CHINCHILLA_PARAMS):
        vals = res.bootstrap[k]
        log = k in ("A", "B")
        ax.hist(vals, bins=np.geomspace(vals.min(), vals.max(), 40) if log else 40, color="0.75")
        ax.axvline(res.params[k], color="C0", label="ours")
        ax.axvline(REF.EPOCH[k], color="C1", ls="--", label="Epoch")
        ax.axvline(REF.HOFFMANN[k], color="C3", ls=":", label="Hoffmann")
        if log:
            PS.log_axis(ax, "x")
        ax.set_title(k)
        ax.set_yticks([])
    handles, labels = axes[0, 0].get_legend_handles_labels()
    axes[1, 2].axis("off")
    axes[1, 2].legend(handles, labels, loc="center", title="estimate")
    fig.suptitle(f"Bootstrap distributions ({len(res.bootstrap)} resamples) of the Chinchilla fit")
    return fig
