"""Point-estimate time of `scalinglaws.fitting.fit` on the Chinchilla reference vs a plain scipy grid.

The plain grid is Epoch's procedure as usually written: scipy.optimize.minimize(method="L-BFGS-B")
with numerical gradients from each of the 4500 grid starts, keep the best. `--quick` times the
plain grid on a random subset of starts and extrapolates linearly to 4500 (the output says so).

    python benchmarks/bench_fit.py [--quick] [--subset 60] [--threads 1]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import scipy.optimize
import scipy.special
import torch

from scalinglaws.fitting import fit
from scalinglaws.laws import get_law
from scalinglaws.core.paths import DATA_DIR


def load():
    df = pd.read_csv(DATA_DIR / "reference" / "chinchilla_svg_extracted_data.csv")
    df = df.drop(df["loss"].nlargest(5).index)
    df["D"] = df["Training FLOP"] / (6 * df["Model Size"])
    return df


def plain_grid(df, starts):
    """Epoch-style: sum of Huber(1e-3) of log residuals, L-BFGS-B with numerical gradients per start."""
    logN, logD, logy = np.log(df["Model Size"].to_numpy()), np.log(df["D"].to_numpy()), np.log(df["loss"].to_numpy())

    def objective(p):
        a, b, e, alpha, beta = p
        pred = scipy.special.logsumexp([a - alpha * logN, b - beta * logD, np.full_like(logN, e)], axis=0)
        return scipy.special.huber(1e-3, pred - logy).sum()

    best = None
    for x0 in starts:
        r = scipy.optimize.minimize(objective, x0, method="L-BFGS-B")
        if best is None or r.fun < best.fun:
            best = r
    return best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="time the plain grid on a random subset of starts")
    ap.add_argument("--subset", type=int, default=60, help="starts timed with --quick")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for our fitter")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    df = load()
    law = get_law("chinchilla")
    starts = law.start_grid({"N": df["Model Size"].to_numpy(), "D": df["D"].to_numpy()}, df["loss"].to_numpy())

    t0 = time.perf_counter()
    res = fit("chinchilla", df, columns={"N": "Model Size"}, y="loss", bootstrap=0, threads=args.threads)
    ours = time.perf_counter() - t0
    print(f"ours: {ours:.2f} s for {res.n_starts} starts (threads={args.threads}), ok={res.ok}")
    print("  " + ", ".join(f"{k}={v:.5g}" for k, v in res.params.items()))

    if args.quick:
        idx = np.random.default_rng(args.seed).choice(len(starts), size=min(args.subset, len(starts)), replace=False)
        t0 = time.perf_counter()
        best = plain_grid(df, starts[idx])
        sub = time.perf_counter() - t0
        plain = sub * len(starts) / len(idx)
        print(f"plain scipy grid: {sub:.2f} s for {len(idx)} random starts -> "
              f"EXTRAPOLATED to {len(starts)} starts: {plain:.1f} s (--quick; best of the subset below)")
    else:
        t0 = time.perf_counter()
        best = plain_grid(df, starts)
        plain = time.perf_counter() - t0
        print(f"plain scipy grid: {plain:.1f} s for {len(starts)} starts")
    rep = law.report(dict(zip(law.params, best.x)))
    print("  " + ", ".join(f"{k}={v:.5g}" for k, v in rep.items()))
    print(f"speed-up (plain / ours): {plain / ours:.0f}x")


if __name__ == "__main__":
    main()
