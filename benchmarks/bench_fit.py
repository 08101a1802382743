"""Point-estimate time of `scalinglaws.fitting.fit` on the Chinchilla reference vs a scipy grid doing equal work.

The scipy grid is Epoch's procedure: scipy.optimize.minimize(method="L-BFGS-B") from each of the
law's grid starts (the SAME starts our fitter uses), keep the best. By default scipy gets the SAME
exact analytic gradient our fitter has (so the ratio measures batching, not gradient quality);
`--numerical` gives scipy finite-difference gradients instead (how it is often written; not an
equal-work comparison, and the output says so). `--quick` times scipy on a random subset of
starts and extrapolates linearly (the output says so).

    python benchmarks/bench_fit.py [--quick] [--subset 60] [--threads 1]
"""
from __future__ import annotations

import argparse
import os
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


def plain_grid(df, starts, exact=True):
    """Epoch-style: sum of Huber(1e-3) of log residuals, L-BFGS-B per start, exact or numerical gradients."""
    logN, logD, logy = np.log(df["Model Size"].to_numpy()), np.log(df["D"].to_numpy()), np.log(df["loss"].to_numpy())

    def objective(p):
        a, b, e, alpha, beta = p
        pred = scipy.special.logsumexp([a - alpha * logN, b - beta * logD, np.full_like(logN, e)], axis=0)
        return scipy.special.huber(1e-3, pred - logy).sum()

    def objective_and_grad(p):
        a, b, e, alpha, beta = p
        terms = np.stack([a - alpha * logN, b - beta * logD, np.full_like(logN, e)])
        pred = scipy.special.logsumexp(terms, axis=0)
        res = pred - logy
        w = np.exp(terms - pred)  # softmax weights: d pred / d term
        dh = np.clip(res, -1e-3, 1e-3)  # Huber'(r) with delta 1e-3
        g = np.array([(dh * w[0]).sum(), (dh * w[1]).sum(), (dh * w[2]).sum(),
                      -(dh * w[0] * logN).sum(), -(dh * w[1] * logD).sum()])
        return scipy.special.huber(1e-3, res).sum(), g

    best = None
    for x0 in starts:
        if exact:
            r = scipy.optimize.minimize(objective_and_grad, x0, jac=True, method="L-BFGS-B")
        else:
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
    ap.add_argument("--numerical", action="store_true",
                    help="scipy with finite-difference gradients (NOT equal work: ours has exact gradients)")
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
        best = plain_grid(df, starts[idx], exact=not args.numerical)
        sub = time.perf_counter() - t0
        plain = sub * len(starts) / len(idx)
        print(f"plain scipy grid: {sub:.2f} s for {len(idx)} random starts -> "
              f"EXTRAPOLATED to {len(starts)} starts: {plain:.1f} s (--quick; best of the subset below)")
    else:
        t0 = time.perf_counter()
        best = plain_grid(df, starts, exact=not args.numerical)
        plain = time.perf_counter() - t0
        print(f"plain scipy grid: {plain:.1f} s for {len(starts)} starts")
    rep = law.report(dict(zip(law.params, best.x)))
    print("  " + ", ".join(f"{k}={v:.5g}" for k, v in rep.items()))
    grad = "finite-difference gradients (NOT equal work)" if args.numerical else "the same exact gradients"
    how = f"extrapolated from {args.subset} random starts" if args.quick else "timed over all starts"
    print(f"speed-up (scipy / ours): {plain / ours:.1f}x  [conditions: same law, data and {len(starts)} starts; "
          f"scipy with {grad}, {how}; ours with {args.threads} torch thread(s), point estimate only "
          f"(bootstrap 0); {os.cpu_count()} CPU cores on this machine]")


if __name__ == "__main__":
    main()
