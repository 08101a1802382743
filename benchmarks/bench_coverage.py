"""Coverage of the bootstrap intervals: repeated synthetic trials per law, fraction of nominal 95%
percentile intervals that contain the true parameter.

Each trial draws data from the law with known parameters and multiplicative log-normal noise,
fits with `bootstrap` resamples and checks every parameter's interval. A well-calibrated
interval covers ~95%; the percentile bootstrap on a few dozen points usually under-covers a bit.

    python benchmarks/bench_coverage.py [--quick] [--trials 20] [--bootstrap 200] [--laws power power_offset]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch

from scalinglaws.fitting import fit
from scalinglaws.laws import get_law


def _grid(**axes):
    mesh = np.meshgrid(*axes.values(), indexing="ij")
    return {k: m.ravel() for k, m in zip(axes, mesh)}


# law -> (true reported parameters, inputs, log-noise sigma)
TRIALS = {
    "power": ({"A": 3.0, "alpha": 1.0}, {"x": np.logspace(1, 4, 12)}, 0.02),
    "power_offset": ({"E": 0.5, "A": 20.0, "alpha": 0.5}, {"x": np.logspace(1, 5, 20)}, 0.01),
    "routing_dense": ({"a": -0.08, "d": 1.1}, {"N": np.logspace(6, 9, 10)}, 0.01),
    "chinchilla": ({"E": 1.7, "A": 400.0, "B": 1000.0, "alpha": 0.34, "beta": 0.30},
                   _grid(N=np.logspace(6, 9, 6), D=np.logspace(8, 11, 6)), 0.01),
    "merging": ({"L_star": 1.0, "B": 30.0, "beta": 0.3, "A0": 5.0, "gamma": 0.15, "b": 0.5},
                _grid(N=np.logspace(5, 8, 5), k=np.arange(1, 10.0)), 0.005),
    "routing": ({"a": -0.08, "b": -0.11, "c": 0.009, "d": 1.1, "E_start": 1.85, "E_max": 314.0},
                _grid(N=np.logspace(7, 9.2, 6), E=2.0 ** np.arange(0, 10)), 0.005),
}


def coverage(law_name: str, trials: int, bootstrap: int, seed: int = 0) -> pd.Series:
    """Fraction of trials whose 95% interval covers the truth, per parameter (+ 'fits ok')."""
    true, X, sigma = TRIALS[law_name]
    law = get_law(law_name)
    rng = np.random.default_rng(seed)
    clean = law.predict(true, X)
    hits, ok = [], []
    for t in range(trials):
        y = clean * np.exp(sigma * rng.standard_normal(clean.size))
        res = fit(law_name, pd.DataFrame({**X, "y": y}), y="y", bootstrap=bootstrap, seed=seed + t)
        hits.append({k: res.ci[k][0] <= v <= res.ci[k][1] for k, v in true.items()})
        ok.append(res.ok)
    out = pd.DataFrame(hits).mean()
    out["fits ok"] = float(np.mean(ok))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--laws", nargs="+", default=list(TRIALS), choices=list(TRIALS))
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--bootstrap", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="5 trials x 100 resamples on the two cheap laws")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if args.quick:
        args.laws, args.trials, args.bootstrap = ["power", "power_offset"], 5, 100
    print(f"nominal 95% percentile-bootstrap intervals, {args.trials} trials x {args.bootstrap} resamples")
    for name in args.laws:
        t0 = time.perf_counter()
        cov = coverage(name, args.trials, args.bootstrap, args.seed)
        cells = ", ".join(f"{k} {v:.2f}" for k, v in cov.items())
        print(f"{name:>14}: {cells}   ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
