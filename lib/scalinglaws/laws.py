"""Scaling laws as data: a formula, named parameters, bounds, a start grid and input columns.

A `Law` is everything the fitter (`scalinglaws.fitting`) needs; adding a law is one
`register_law(Law(...))` call, no fitter change. Each law gives its formula as a vectorised torch
function returning the *natural log* of the prediction, because the fitter minimises a Huber loss
of log residuals `log(pred) - log(y)` and works batched over many parameter vectors at once:

    log_model(p, X) -> log prediction, where p[name] has shape (S, 1) (S parameter vectors)
                       and X[column] has shape (1, n) (n data points); result shape (S, n).

Some laws are fitted in a better-conditioned parametrisation than the one reported (Chinchilla
in Epoch's log-sum-exp form with a = log A, b = log B, e = log E). `params` are the *fitted*
parameters (their bounds and grid apply); `report` maps them to the reported, natural ones and
`unreport` goes back.

The module ends with the derived quantities of each law (planning rules, effective parameter
count, compute-optimal allocation), each a small function whose docstring states the formula.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from scalinglaws.core.validation import ParameterError

LN10 = math.log(10.0)
Grid = Sequence[float] | Callable[[dict, np.ndarray], Sequence[float]]


def _identity(p: Mapping) -> dict:
    return dict(p)


@dataclass(frozen=True)
class Law:
    """A parametric law y = f(inputs; params), fitted in log space.

    name      registry key (`get_law(name)`)
    inputs    input column names the formula reads (the caller maps data columns onto them)
    params    fitted parameter names, in the order of the parameter vector
    log_model torch function (p, X) -> log prediction (see the module docstring)
    bounds    name -> (lo, hi), the box for bounded L-BFGS-B (+-inf allowed)
    grid      name -> start values, or a callable (X, y) -> start values (data-scaled starts);
              the fitter starts from the full Cartesian product
    report    fitted dict -> reported dict (default identity); `unreport` is its inverse
    jac       optional analytic (p, X) -> (log prediction, {name: d log prediction / d name}),
              a speed-up over autograd for laws fitted from thousands of starts (tests check it)
    positive  inputs that must be > 0 (they enter logs or powers)
    formula   the law in words/LaTeX, for docs and CLI output
    """

    name: str
    inputs: tuple[str, ...]
    params: tuple[str, ...]
    log_model: Callable[[dict, dict], torch.Tensor]
    bounds: dict[str, tuple[float, float]]
    grid: dict[str, Grid]
    report: Callable[[Mapping], dict] = _identity
    unreport: Callable[[Mapping], dict] = _identity
    jac: Callable[[dict, dict], tuple] | None = None
    positive: tuple[str, ...] = ()
    formula: str = ""
    reported: tuple[str, ...] = field(default=())

    def __post_init__(self):
        missing = [p for p in self.params if p not in self.bounds or p not in self.grid]
        if missing:
            raise ValueError(f"law {self.name!r}: parameters {missing} need bounds and a grid")
        if not self.reported:  # reported names, in order, from one dummy evaluation of `report`
            object.__setattr__(self, "reported", tuple(self.report({p: 1.0 for p in self.params})))

    def start_grid(self, X: Mapping[str, np.ndarray], y: np.ndarray) -> np.ndarray:
        """All grid starts as an array (S, P), clipped into the bounds."""
        axes = []
        for p in self.params:
            g = self.grid[p]
            vals = np.asarray(g(X, y) if callable(g) else g, dtype=float)
            lo, hi = self.bounds[p]
            axes.append(np.clip(vals, lo, hi))
        mesh = np.meshgrid(*axes, indexing="ij")
        return np.stack([m.ravel() for m in mesh], axis=1)

    def predict(self, params: Mapping[str, float], X: Mapping, reported: bool = True) -> np.ndarray:
        """Prediction y (natural scale) for one parameter set; `params` reported unless reported=False."""
        raw = self.unreport(params) if reported else dict(params)
        theta = {k: torch.tensor([[float(raw[k])]], dtype=torch.float64) for k in self.params}
        Xt = {c: torch.as_tensor(np.array(X[c], dtype=float), dtype=torch.float64).reshape(1, -1)
              for c in self.inputs}
        with torch.no_grad():
            return torch.exp(self.log_model(theta, Xt))[0].numpy()


LAWS: dict[str, Law] = {}


def register_law(law: Law) -> Law:
    """Add a law to the registry (replacing one of the same name) and return it."""
    LAWS[law.name] = law
    return law


def get_law(name) -> Law:
    if isinstance(name, Law):
        return name
    if name not in LAWS:
        raise ParameterError(f"unknown law {name!r}; known laws: {sorted(LAWS)}")
    return LAWS[name]


def _log_transform(pairs: dict[str, str], order: Sequence[str]):
    """report/unreport for fitted params that are logs of reported ones ({fitted: reported});
    reported names come out in `order`."""
    def report(p):
        r = {pairs.get(k, k): (math.exp(v) if k in pairs else v) for k, v in p.items()}
        return {k: r[k] for k in order}

    inverse = {v: k for k, v in pairs.items()}

    def unreport(p):
        return {inverse.get(k, k): (math.log(v) if k in inverse else v) for k, v in p.items()}

    return report, unreport


def _lse(*terms):
    return torch.logsumexp(torch.stack(torch.broadcast_tensors(*terms)), dim=0)


def _lse_jac(terms: list, dterms: list[dict]):
    """log(sum_j exp z_j) and its derivatives d/dp = sum_j softmax_j dz_j/dp (dz_j/dp: 1.0 or a tensor)."""
    z = torch.broadcast_tensors(*terms)
    mx = z[0]
    for zj in z[1:]:
        mx = torch.maximum(mx, zj)
    ex = [torch.exp(zj - mx) for zj in z]
    s = ex[0]
    for e in ex[1:]:
        s = s + e
    inv = 1.0 / s
    out = {}
    for e, dz in zip(ex, dterms):
        sm = e * inv
        for name, dv in dz.items():
            term = sm if isinstance(dv, float) and dv == 1.0 else sm * dv
            out[name] = term if name not in out else out[name] + term
    return mx + torch.log(s), out


def _y_log(offsets):
    """Data-scaled grid: log(mean y) + offsets."""
    return lambda X, y: math.log(float(np.mean(y))) + np.asarray(offsets, dtype=float)


# ---------------------------------------------------------------------------------------------
# Chinchilla (Hoffmann et al. 2022) in Epoch's parametrisation (Besiroglu et al. 2024):
#   log L = LSE(a - alpha log N, b - beta log D, e),  A = e^a, B = e^b, E = e^e.
_rep, _unrep = _log_transform({"a": "A", "b": "B", "e": "E"}, ("E", "A", "B", "alpha", "beta"))
register_law(Law(
    name="chinchilla",
    inputs=("N", "D"),
    params=("a", "b", "e", "alpha", "beta"),
    log_model=lambda p, X: _lse(p["a"] - p["alpha"] * torch.log(X["N"]),
                                p["b"] - p["beta"] * torch.log(X["D"]), p["e"]),
    bounds={"a": (-30.0, 100.0), "b": (-30.0, 100.0), "e": (-30.0, 10.0),
            "alpha": (0.0, 3.0), "beta": (0.0, 3.0)},
    # Epoch's 4500-start grid: a, b in 0..25 step 5; e in -1..1 step .5; alpha, beta in 0..2 step .5
    grid={"a": np.arange(0, 30, 5.0), "b": np.arange(0, 30, 5.0), "e": np.arange(-1, 1.5, 0.5),
          "alpha": np.arange(0, 2.5, 0.5), "beta": np.arange(0, 2.5, 0.5)},
    report=_rep,
    unreport=_unrep,
    jac=lambda p, X: _lse_jac(
        [p["a"] - p["alpha"] * torch.log(X["N"]), p["b"] - p["beta"] * torch.log(X["D"]), p["e"]],
        [{"a": 1.0, "alpha": -torch.log(X["N"])}, {"b": 1.0, "beta": -torch.log(X["D"])}, {"e": 1.0}]),
    positive=("N", "D"),
    formula="L = E + A N^-alpha + B D^-beta  (fitted as log L = LSE(a - alpha log N, b - beta log D, e))",
))

# ---------------------------------------------------------------------------------------------
# Model merging (Wang et al. 2025): L = L* + B N^-beta + A0 N^-gamma / (k + b).
# Amplitudes fitted as logs (log_B, log_A0): N may be 1e4..1e10, so B spans many decades.
_mrep, _munrep = _log_transform({"log_B": "B", "log_A0": "A0"}, ("L_star", "B", "beta", "A0", "gamma", "b"))


def _merging_log_model(p, X):
    logN = torch.log(X["N"])
    floor = torch.exp(p["log_B"] - p["beta"] * logN)
    tail = torch.exp(p["log_A0"] - p["gamma"] * logN) / (X["k"] + p["b"])
    return torch.log(p["L_star"] + floor + tail)


def _merging_law(name: str, gamma_lo: float, log_A0_offsets, gamma_grid, formula: str) -> Law:
    """The merging law with the tail exponent gamma bounded below by `gamma_lo` (0: the paper's
    law, A shrinks or stays with N; negative: A may grow). Everything else is shared."""
    return Law(
        name=name,
        inputs=("N", "k"),
        params=("L_star", "log_B", "beta", "log_A0", "gamma", "b"),
        log_model=_merging_log_model,
        bounds={"L_star": (0.0, math.inf), "log_B": (-100.0, 100.0), "beta": (0.0, 5.0),
                "log_A0": (-100.0, 100.0), "gamma": (gamma_lo, 5.0), "b": (0.0, 100.0)},
        grid={"L_star": lambda X, y: float(np.min(y)) * np.array([0.0, 0.5, 0.9]),
              "log_B": lambda X, y: _y_log([-2.0])(X, y) + np.array([0.0, 0.3, 0.6]) * float(np.mean(np.log(X["N"]))),
              "beta": [0.0, 0.3, 0.6],
              "log_A0": lambda X, y: _y_log([-2.0])(X, y) + np.array(log_A0_offsets) * float(np.mean(np.log(X["N"]))),
              "gamma": list(gamma_grid),
              "b": [0.0, 1.0]},
        report=_mrep,
        unreport=_munrep,
        positive=("N", "k"),
        formula=formula,
    )


register_law(_merging_law(
    "merging", 0.0, [0.0, 0.3], [0.0, 0.3],
    "L = L* + B N^-beta + A0 N^-gamma / (k + b)   (also the variance law, with V*, B_v, ...)"))
# A diagnostic, not the paper's law: the same formula with gamma free in sign, so a tail amplitude
# A(N) = A0 N^-gamma that *grows* with N (gamma < 0) shows as such instead of sitting on gamma = 0.
# The merging study fits the paper's law ("merging", gamma >= 0); runs before that fitted this one.
register_law(_merging_law(
    "merging_free", -3.0, [-0.3, 0.3], [-0.3, 0.3],
    "L = L* + B N^-beta + A0 N^-gamma / (k + b), gamma of either sign (A may grow with N)"))


# One size's k-curve (the merging study's per-size tail fits): L(k) = L_inf + A / (k + b).
# `studies/merging/tail.py` fits it exactly (weighted least squares on the natural scale, A of either
# sign, a bootstrap over merged models; its docstring says why not `fit`); `fit` takes it as well.
register_law(Law(
    name="merging_tail",
    inputs=("k",),
    params=("L_inf", "A", "b"),
    log_model=lambda p, X: torch.log(p["L_inf"] + p["A"] / (X["k"] + p["b"])),
    bounds={"L_inf": (0.0, math.inf), "A": (-math.inf, math.inf), "b": (0.0, 50.0)},
    grid={"L_inf": lambda X, y: float(np.min(y)) * np.array([0.5, 0.9, 1.0]),
          "A": lambda X, y: float(np.ptp(y)) * np.array([0.5, 1.0, 2.0]) + 1e-9,
          "b": [0.0, 0.5, 2.0]},
    positive=("k",),
    formula="L = L_inf + A / (k + b)",
))

# ---------------------------------------------------------------------------------------------
# Routed LMs (Clark et al. 2022): log10 L = a log10 N + b log10 Ehat + c log10 N log10 Ehat + d,
#   1/Ehat = 1/(E - 1 + (1/E_start - 1/E_max)^-1) + 1/E_max.
# Fitted with lg_E_start = log10 E_start and lg_E_ratio = log10(E_max/E_start) >= 0 so that
# E_max >= E_start holds inside a box (the inner inverse needs 1/E_start - 1/E_max > 0).
def _routing_rep(p):
    r = {k: p[k] for k in ("a", "b", "c", "d")}
    r["E_start"] = 10.0 ** p["lg_E_start"]
    r["E_max"] = r["E_start"] * 10.0 ** p["lg_E_ratio"]
    return r


def _routing_unrep(r):
    p = {k: r[k] for k in ("a", "b", "c", "d")}
    p["lg_E_start"] = math.log10(r["E_start"])
    p["lg_E_ratio"] = math.log10(r["E_max"] / r["E_start"])
    return p


def _routing_log_model(p, X):
    E_start = 10.0 ** p["lg_E_start"]
    E_max = E_start * 10.0 ** p["lg_E_ratio"]
    # (1/E_start - 1/E_max)^-1 = E_start / (1 - E_start/E_max): keep the inner inverse
    inner = E_start / (1.0 - 10.0 ** (-p["lg_E_ratio"]))
    lg_ehat = -torch.log10(1.0 / (X["E"] - 1.0 + inner) + 1.0 / E_max)
    lgN = torch.log10(X["N"])
    return LN10 * (p["a"] * lgN + p["b"] * lg_ehat + p["c"] * lgN * lg_ehat + p["d"])


register_law(Law(
    name="routing",
    inputs=("N", "E"),
    params=("a", "b", "c", "d", "lg_E_start", "lg_E_ratio"),
    log_model=_routing_log_model,
    bounds={"a": (-5.0, 5.0), "b": (-5.0, 5.0), "c": (-5.0, 5.0), "d": (-50.0, 50.0),
            "lg_E_start": (0.0, 4.0), "lg_E_ratio": (1e-3, 6.0)},
    grid={"a": [-0.2, -0.05], "b": [-0.2, -0.05], "c": [0.0, 0.02],
          "d": lambda X, y: math.log10(float(np.mean(y))) + 0.1 * float(np.mean(np.log10(X["N"]))) * np.array([0.0, 1.0, 2.0]),
          "lg_E_start": [0.2, 0.7], "lg_E_ratio": [1.0, 2.0, 3.0]},
    report=_routing_rep,
    unreport=_routing_unrep,
    positive=("N", "E"),
    formula="log10 L = a log10 N + b log10 Ehat + c log10 N log10 Ehat + d,"
            " 1/Ehat = 1/(E - 1 + (1/E_start - 1/E_max)^-1) + 1/E_max",
))

register_law(Law(
    name="routing_dense",
    inputs=("N",),
    params=("a", "d"),
    log_model=lambda p, X: LN10 * (p["a"] * torch.log10(X["N"]) + p["d"]),
    bounds={"a": (-5.0, 5.0), "d": (-50.0, 50.0)},
    grid={"a": [-0.3, -0.1, 0.0], "d": lambda X, y: math.log10(float(np.mean(y))) + np.array([0.0, 1.0, 2.0])},
    positive=("N",),
    formula="log10 L = a log10 N + d",
))

# A line in log-log (the composition study's loss against compute): log10 y = intercept + slope log10 x.
# `studies/composition/analysis.py` fits it by exact least squares (its `fits_table` says why).
register_law(Law(
    name="loglinear",
    inputs=("x",),
    params=("slope", "intercept"),
    log_model=lambda p, X: LN10 * (p["intercept"] + p["slope"] * torch.log10(X["x"])),
    bounds={"slope": (-5.0, 5.0), "intercept": (-50.0, 50.0)},
    grid={"slope": [-0.3, -0.1, 0.0],
          "intercept": lambda X, y: math.log10(float(np.mean(y))) + np.array([0.0, 1.0, 2.0])},
    positive=("x",),
    formula="log10 y = intercept + slope log10 x",
))

# ---------------------------------------------------------------------------------------------
# Plain power laws (resource model, any one-input curve).
_prep, _punrep = _log_transform({"a": "A", "e": "E"}, ("E", "A", "alpha"))
register_law(Law(
    name="power_offset",
    inputs=("x",),
    params=("a", "e", "alpha"),
    log_model=lambda p, X: _lse(p["a"] - p["alpha"] * torch.log(X["x"]), p["e"]),
    bounds={"a": (-100.0, 100.0), "e": (-100.0, 50.0), "alpha": (0.0, 5.0)},
    grid={"a": lambda X, y: math.log(float(np.max(y))) + np.array([0.0, 5.0, 10.0, 15.0, 20.0]),
          "e": lambda X, y: math.log(float(np.min(y))) + np.array([-3.0, -1.0, -0.3, -0.05]),
          "alpha": [0.1, 0.5, 1.0, 2.0]},
    report=_prep,
    unreport=_punrep,
    jac=lambda p, X: _lse_jac([p["a"] - p["alpha"] * torch.log(X["x"]), p["e"]],
                              [{"a": 1.0, "alpha": -torch.log(X["x"])}, {"e": 1.0}]),
    positive=("x",),
    formula="y = E + A x^-alpha  (fitted as log y = LSE(a - alpha log x, e))",
))

_p1rep, _p1unrep = _log_transform({"a": "A"}, ("A", "alpha"))
register_law(Law(
    name="power",
    inputs=("x",),
    params=("a", "alpha"),
    log_model=lambda p, X: p["a"] - p["alpha"] * torch.log(X["x"]),
    bounds={"a": (-100.0, 100.0), "alpha": (-5.0, 5.0)},
    grid={"a": lambda X, y: math.log(float(np.max(y))) + np.array([0.0, 5.0, 10.0]), "alpha": [0.0, 0.5, 1.0]},
    report=_p1rep,
    unreport=_p1unrep,
    positive=("x",),
    formula="y = A x^-alpha",
))


# ---------------------------------------------------------------------------------------------
# Additive subtask losses (resource model, Song et al. 2024): l = c1 N1^-a1 + c2 N2^-a2, with the
# paper's form a1 = a2 = 1 as its own law. Amplitudes fitted as logs (the toy losses span decades).
def _additive_grid(col):
    """Data-scaled starts for log c_i: log median(l N_i) and a decade either side."""
    return lambda X, y: math.log(float(np.median(y * X[col]))) + np.array([-2.3, 0.0, 2.3])


_arep, _aunrep = _log_transform({"log_c1": "c1", "log_c2": "c2"}, ("c1", "c2", "a1", "a2"))
register_law(Law(
    name="additive",
    inputs=("N1", "N2"),
    params=("log_c1", "log_c2", "a1", "a2"),
    log_model=lambda p, X: _lse(p["log_c1"] - p["a1"] * torch.log(X["N1"]), p["log_c2"] - p["a2"] * torch.log(X["N2"])),
    bounds={"log_c1": (-40.0, 20.0), "log_c2": (-40.0, 20.0), "a1": (0.0, 6.0), "a2": (0.0, 6.0)},
    grid={"log_c1": _additive_grid("N1"), "log_c2": _additive_grid("N2"), "a1": [0.5, 1.0, 2.0], "a2": [0.5, 1.0, 2.0]},
    report=_arep,
    unreport=_aunrep,
    positive=("N1", "N2"),
    formula="l = c1 N1^-a1 + c2 N2^-a2  (fitted as log l = LSE(log c1 - a1 log N1, log c2 - a2 log N2))",
))
_a1rep, _a1unrep = _log_transform({"log_c1": "c1", "log_c2": "c2"}, ("c1", "c2"))
register_law(Law(
    name="additive_inverse",
    inputs=("N1", "N2"),
    params=("log_c1", "log_c2"),
    log_model=lambda p, X: _lse(p["log_c1"] - torch.log(X["N1"]), p["log_c2"] - torch.log(X["N2"])),
    bounds={"log_c1": (-40.0, 20.0), "log_c2": (-40.0, 20.0)},
    grid={"log_c1": _additive_grid("N1"), "log_c2": _additive_grid("N2")},
    report=_a1rep,
    unreport=_a1unrep,
    positive=("N1", "N2"),
    formula="l = c1 / N1 + c2 / N2  (the resource model's additive form)",
))


# =============================================================================================
# Derived quantities
# =============================================================================================
def _params(p) -> Mapping:
    """Accept a reported-parameter mapping or anything with a `.params` mapping (a FitResult)."""
    return getattr(p, "params", p)


# --- merging ---------------------------------------------------------------------------------
def merging_floor(params, N):
    """L_inf(N) = L* + B N^-beta: the loss of a merge of infinitely many experts."""
    p = _params(params)
    return p["L_star"] + p["B"] * np.asarray(N, dtype=float) ** -p["beta"]


def merging_amplitude(params, N):
    """A(N) = A0 N^-gamma: the amplitude of the 1/(k + b) tail."""
    p = _params(params)
    return p["A0"] * np.asarray(N, dtype=float) ** -p["gamma"]


def merging_loss(params, N, k):
    """L(N, k) = L_inf(N) + A(N) / (k + b): the merging law at reported parameters."""
    return merging_floor(params, N) + merging_amplitude(params, N) / (np.asarray(k, dtype=float) + _params(params)["b"])


def k_for_target(params, N, L_target):
    """Experts needed to reach a target loss: k = A(N) / (L_target - L_inf(N)) - b.

    +inf where L_target <= L_inf(N) (the floor is above the target: no k reaches it); values
    below 1 mean a single expert already does.
    """
    p = _params(params)
    gap = np.asarray(L_target, dtype=float) - merging_floor(p, N)
    with np.errstate(divide="ignore"):
        k = np.where(gap > 0, merging_amplitude(p, N) / np.where(gap > 0, gap, 1.0) - p["b"], np.inf)
    return k if k.ndim else float(k)


def k_eps(params, N, eps):
    """Experts needed to get within eps of the floor: k_eps = A(N) / eps - b."""
    p = _params(params)
    k = merging_amplitude(p, N) / np.asarray(eps, dtype=float) - p["b"]
    return k if np.ndim(k) else float(k)


def marginal_gain(params, N, k):
    """Loss drop from the (k+1)-th expert: Delta_k = L(k) - L(k+1) = A(N) / ((k + b)(k + 1 + b))."""
    p = _params(params)
    k = np.asarray(k, dtype=float)
    d = merging_amplitude(p, N) / ((k + p["b"]) * (k + 1.0 + p["b"]))
    return d if np.ndim(d) else float(d)


def stopping_curve(k, L) -> pd.Series:
    """Fraction of the total improvement reached by k experts, on the monotone envelope:

        env(k) = min_{j <= k} L(j),   R(k) = (L(k_min) - env(k)) / (L(k_min) - min_j L(j)).

    R rises from 0 at the smallest k to 1 at the best k and never decreases. Returns a Series
    indexed by k (sorted). A curve with no improvement gives R = 1 everywhere.
    """
    s = pd.Series(np.asarray(L, dtype=float), index=np.asarray(k)).sort_index()
    env = s.cummin()
    total = s.iloc[0] - env.iloc[-1]
    R = (s.iloc[0] - env) / total if total > 0 else pd.Series(1.0, index=s.index)
    R.index.name, R.name = "k", "R"
    return R


def k_at(R: pd.Series, level: float):
    """Smallest k with R(k) >= level (R from `stopping_curve`); e.g. level 0.8 or 0.9."""
    hit = R.index[R.to_numpy() >= level - 1e-12]
    return hit[0] if len(hit) else None


# --- routing ---------------------------------------------------------------------------------
def e_hat(E, E_start, E_max):
    """Saturating expert count: 1/Ehat = 1/(E - 1 + (1/E_start - 1/E_max)^-1) + 1/E_max.

    Ehat(1) = E_start and Ehat -> E_max as E -> inf (note the inner ^-1).
    """
    E = np.asarray(E, dtype=float)
    out = 1.0 / (1.0 / (E - 1.0 + 1.0 / (1.0 / E_start - 1.0 / E_max)) + 1.0 / E_max)
    return out if out.ndim else float(out)


def routing_log10_loss(params, N, E):
    """log10 L = a log10 N + b log10 Ehat + c log10 N log10 Ehat + d (Clark et al. 2022)."""
    p = _params(params)
    lgN = np.log10(np.asarray(N, dtype=float))
    lgE = np.log10(e_hat(E, p["E_start"], p["E_max"]))
    return p["a"] * lgN + p["b"] * lgE + p["c"] * lgN * lgE + p["d"]


def effective_params(params_routed, params_dense, N, E):
    """Effective parameter count: the dense size N_bar with the same loss as the routed model,

        a_dense log10 N_bar + d_dense = log10 L_routed(N, E)
        =>  N_bar = 10^((log10 L_routed(N, E) - d_dense) / a_dense).
    """
    pd_ = _params(params_dense)
    out = 10.0 ** ((routing_log10_loss(params_routed, N, E) - pd_["d"]) / pd_["a"])
    return out if np.ndim(out) else float(out)


def n_cutoff(b, c):
    """Size above which routing stops helping: N_cutoff = 10^(-b/c) (d log L/d log Ehat = 0).

    Pass unrounded fitted values: -b/c is a ratio of two small numbers.
    """
    return 10.0 ** (-b / c)


# --- chinchilla ------------------------------------------------------------------------------
def optimal_allocation_exponent(alpha, beta):
    """Compute-optimal model size exponent a in N_opt ~ C^a: a = beta / (alpha + beta)
    (and D_opt ~ C^b with b = alpha / (alpha + beta))."""
    return beta / (alpha + beta)


def optimal_allocation(params, C):
    """Compute-optimal N and D for a FLOP budget C = 6 N D (Hoffmann et al. 2022, eq. 4):

        G = (alpha A / (beta B))^(1/(alpha+beta)),
        N_opt = G (C/6)^(beta/(alpha+beta)),  D_opt = G^-1 (C/6)^(alpha/(alpha+beta)).
    """
    p = _params(params)
    a, b = p["alpha"], p["beta"]
    G = (a * p["A"] / (b * p["B"])) ** (1.0 / (a + b))
    c6 = np.asarray(C, dtype=float) / 6.0
    return G * c6 ** (b / (a + b)), c6 ** (a / (a + b)) / G
