"""Every figure function of every study renders on small synthetic tables (Agg backend) and draws
data; the shared style (`scalinglaws.plotstyle`) labels log axes in plain numbers.

Figure functions are discovered: every public function defined in `studies/<name>/figures.py` whose
return annotation is absent or names a figure (a helper there declares its other return type, e.g.
`-> dict | None`). A discovered function needs synthetic inputs in SYNTHETIC below; a study package
maintained elsewhere whose inputs this file does not know is reported as xfail, by name, so a new
figure function is never silently untested.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import scalinglaws.studies as studies_pkg  # noqa: E402
from scalinglaws import plotstyle as PS  # noqa: E402

# study packages other sessions maintain: their figure functions are discovered and listed here
NOT_OURS = {"merging", "della"}


def figure_functions() -> list[tuple[str, str]]:
    out = []
    for m in sorted(pkgutil.iter_modules(studies_pkg.__path__), key=lambda m: m.name):
        if not m.ispkg or importlib.util.find_spec(f"scalinglaws.studies.{m.name}.figures") is None:
            continue
        mod = importlib.import_module(f"scalinglaws.studies.{m.name}.figures")
        for name, fn in inspect.getmembers(mod, inspect.isfunction):
            if name.startswith("_") or fn.__module__ != mod.__name__:
                continue
            ret = inspect.signature(fn).return_annotation
            if ret is inspect.Signature.empty or "fig" in str(ret).lower():
                out.append((m.name, name))
    return out


# ----------------------------------------------------------------------------- synthetic tables

ROUTING_LAW = {"a": -0.08, "b": -0.12, "c": 0.02, "d": 1.1, "E_start": 2.0, "E_max": 100.0}


def _routing():
    rows, fits, eff, routing = [], [], [], []
    for i, N in enumerate((3_000, 14_000, 60_000)):
        rows.append({"size": f"s{i}", "N": N, "experts": 1, "router": "dense", "L": 5.0 - 0.3 * i})
        for r in ("sbase", "hash"):
            for E in (2, 4, 8):
                L = 5.0 - 0.3 * i - 0.02 * np.log2(E)
                rows.append({"size": f"s{i}", "N": N, "experts": E, "router": r, "L": L})
                eff.append({"router": r, "experts": E, "N": N, "N_bar_fit": N * (1 + 0.1 * E), "L": L})
                for phase in ("train", "eval"):
                    routing.append({"router": r, "experts": E, "phase": phase, "load_max_over_mean": 1 + 0.1 * E,
                                    "entropy": 0.9 * np.log(E)})
    for r in ("sbase", "hash"):
        fits += [{"router": r, "law": "routing", "param": p, "estimate": v} for p, v in ROUTING_LAW.items()]
    fits += [{"router": "dense", "law": "routing_dense", "param": "a", "estimate": -0.05},
             {"router": "dense", "law": "routing_dense", "param": "d", "estimate": 0.9}]
    return pd.DataFrame(rows), pd.DataFrame(fits), pd.DataFrame(eff), pd.DataFrame(routing)


def _resource():
    rng = np.random.default_rng(0)
    prim = pd.DataFrame([{"task": t, "activation": a, "neurons": n, "loss": 0.5 / n * rng.uniform(0.8, 1.2), "reg": reg}
                         for t in ("square", "sine") for a in ("relu",) for n in (2, 4, 8, 16, 32) for reg in (0.0, 0.1)])
    fits = pd.DataFrame([{"part": "single", "subject": t, "activation": "relu", "primary": True, "law": "power",
                          "param": p, "estimate": v, "method": "weight"}
                         for t in ("square", "sine") for p, v in (("A", 0.5), ("alpha", 1.0))]
                        + [{"part": "lm", "subject": lad, "activation": None, "primary": True, "law": "power",
                            "param": p, "estimate": v, "method": "non_embedding"}
                           for lad in ("width", "depth") for p, v in (("A", 12.0), ("alpha", 0.08))])
    comp = pd.DataFrame([{"kind": k, "reg": reg, "width": w, "neurons": w * 0.8, "share_1": 0.4 + 0.01 * reg}
                         for k in ("parallel", "series") for reg in (0.03, 0.1) for w in (8, 16, 32, 64)])
    lm = pd.DataFrame([{"ladder": lad, "params_non_embedding": n, "loss": 12.0 * n ** -0.08}
                       for lad in ("width", "depth") for n in (20_000, 45_000, 80_000, 180_000)])
    return prim, fits, comp, lm


def _call_routing(name):
    from scalinglaws.studies.routing import figures as F
    loss, fits, eff, routing = _routing()
    return {"loss_vs_experts": lambda: F.loss_vs_experts(loss, fits),
            "effective_params_figure": lambda: F.effective_params_figure(eff, loss, fits),
            "load_balance_figure": lambda: F.load_balance_figure(routing)}[name]()


def _call_resource(name):
    from scalinglaws.studies.resource import figures as F
    prim, fits, comp, lm = _resource()
    return {"single_figure": lambda: F.single_figure(prim, fits, ["square", "sine"], ["relu"]),
            "shares_figure": lambda: F.shares_figure(comp, ["parallel", "series"], "square"),
            "lm_figure": lambda: F.lm_figure(lm, fits)}[name]()


def _testbed():
    sizes = [("d8l1", 3_000), ("d16l2", 14_000), ("d32l2", 60_000)]
    sweep = pd.DataFrame([{"size": s, "N": n, "lr": lr, "val_ce": 5.0 - 0.2 * i + (np.log10(lr) + 2.5) ** 2,
                           "val_ce_se": 0.01, "diverged": False, "chosen": lr == 3e-3}
                          for i, (s, n) in enumerate(sizes) for lr in (1e-3, 3e-3, 1e-2)])
    ladder = pd.DataFrame([{"size": s, "non_embedding": n, "lr": 3e-3, "test_ce": 5.0 - 0.2 * i, "test_ce_se": 0.01}
                           for i, (s, n) in enumerate(sizes)])
    curves = pd.DataFrame([{"size": s, "peak_lr": 3e-3, "lr": 1e-4, "tokens": t, "loss": 8.0 - np.log10(t) * 0.3 - 0.1 * i}
                           for i, (s, _) in enumerate(sizes) for t in (1_000, 10_000, 100_000)])
    ce = pd.DataFrame([{"size": s, "domain": d, "ce": 5.0 - 0.2 * i + j, "bpb": 1.5 - 0.05 * i + 0.1 * j}
                       for i, (s, _) in enumerate(sizes) for j, d in enumerate(("code", "legal", "algebra"))])
    return sweep, ladder, curves, ce


def _call_testbed(name):
    from scalinglaws.studies.testbed import figures as F
    sweep, ladder, curves, ce = _testbed()
    return {"lr_sweep": lambda: F.lr_sweep(sweep), "curves": lambda: F.curves(curves, ladder),
            "ce_vs_n": lambda: F.ce_vs_n(ce, ladder), "domain_gains": lambda: F.domain_gains(ce, ladder)}[name]()


SYNTHETIC = {"routing": _call_routing, "resource": _call_resource, "testbed": _call_testbed}
FUNCTIONS = figure_functions()


def test_discovery_finds_the_figure_functions():
    found = set(FUNCTIONS)
    assert {("routing", "loss_vs_experts"), ("resource", "lm_figure")} <= found
    assert ("routing", "fit_params") not in found and ("resource", "power_fit") not in found  # helpers


@pytest.mark.parametrize("study, name", FUNCTIONS, ids=[f"{s}.{n}" for s, n in FUNCTIONS])
def test_figure_renders_with_data(study, name):
    if study not in SYNTHETIC:
        if study in NOT_OURS:
            pytest.xfail(f"{study}.figures.{name}: synthetic inputs not known here (package maintained elsewhere)")
        pytest.fail(f"{study}.figures.{name} has no synthetic inputs in tests/test_figures.py SYNTHETIC")
    fig = SYNTHETIC[study](name)
    try:
        assert isinstance(fig, plt.Figure)
        fig.canvas.draw()
        # an ax.plot of an empty selection still adds a Line2D: count lines that hold points
        assert any(any(len(ln.get_xdata()) for ln in ax.lines) or ax.collections or ax.patches or ax.images
                   for ax in fig.axes), "no data drawn"
        for ax in fig.axes:
            assert all(len(ln.get_xdata()) for ln in ax.lines if not ln.get_label().startswith("_")), \
                f"a labelled line without points in {name}"
        for ax in fig.axes:
            for label in ax.get_xticklabels(minor=True) + ax.get_yticklabels(minor=True):
                assert not label.get_text() or ax.get_xscale() == "linear", f"minor tick labelled: {label.get_text()}"
            for label in ax.get_xticklabels() + ax.get_yticklabels():
                assert "$" not in label.get_text() and "10^" not in label.get_text(), label.get_text()
    finally:
        plt.close(fig)


@pytest.mark.parametrize("lo, hi, ticks, expect", [
    (3_000, 14_000, None, ["5,000", "10,000"]),
    (10, 1e6, None, ["100", "1,000", "10,000", "100,000"]),
    (4.8, 6.2, None, ["5", "6"]),
    (1, 16, [1, 2, 4, 8, 16], ["1", "2", "4", "8", "16"]),
])
def test_log_axis_labels_are_plain(lo, hi, ticks, expect):
    PS.use()
    fig, ax = plt.subplots()
    ax.plot([lo, hi], [lo, hi])
    PS.log_axis(ax, "x", ticks)
    ax.set_xlim(lo, hi)
    fig.canvas.draw()
    major = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert all(e in major for e in expect), major
    assert not [t.get_text() for t in ax.get_xticklabels(minor=True) if t.get_text()]
    plt.close(fig)


def test_band_reference_and_legend():
    PS.use()
    fig, ax = plt.subplots()
    x = np.linspace(1, 10, 20)
    ax.plot(x, 1 / x, label="fit")
    lo, hi = PS.bootstrap_band(x, lambda p, xx: p["A"] / xx, [{"A": a} for a in np.linspace(0.8, 1.2, 50)])
    assert np.all(lo <= 1 / x + 1e-12) and np.all(hi >= 1 / x - 1e-12)
    PS.band(ax, x, lo, hi, label="95% band")
    PS.reference(ax, 0.5)
    leg = PS.legend(ax)
    assert [t.get_text() for t in leg.get_texts()] == ["fit", "95% band", "base model"]
    assert leg.get_texts()[0].get_fontsize() >= PS.LEGEND_SIZE
    assert PS.plain(3e6) == "3e6" and PS.plain(0.01) == "0.01" and PS.plain(20000) == "20,000"
    plt.close(fig)
