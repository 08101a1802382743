"""The composition chapter's figures, each drawn from stored tables (`summary`)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from scalinglaws import plotstyle as PS

ARM_ORDER = ("base", "merge_average", "multitask", "upcycled", "scratch_routed")
COST_LABELS = {"total_flops": "total FLOPs (pretraining charged)",
               "total_flops_amortised": "FLOPs (base pretraining amortised)"}


def arm_order(arms) -> list[str]:
    """Arms in a fixed order (base first, merges after Average), unknown ones last."""
    arms = list(dict.fromkeys(arms))
    rank = {a: i for i, a in enumerate(ARM_ORDER)}
    return sorted(arms, key=lambda a: (rank.get(a, 1.5 if a.startswith("merge_") else 9), a))


def arm_label(arm: str) -> str:
    if arm.startswith("merge_"):
        return "merge (" + arm[len("merge_"):].replace("_", " ") + ")"
    return {"base": "keep base", "multitask": "multitask", "upcycled": "routed, upcycled",
            "scratch_routed": "routed, from scratch"}.get(arm, arm)


def compute_figure(summary, k=None, cost: str = "total_flops"):
    """In-domain loss vs total compute (log x), one panel per pool, one line per arm over the base
    sizes (error bars: 95% bootstrap intervals); the largest base as a reference line. k: the number
    of domains shown (default the largest measured)."""
    PS.use()
    k = int(summary["k"].max()) if k is None else k
    pools = list(dict.fromkeys(summary["pool"]))
    arms = arm_order(summary["arm"])
    pal = dict(zip(arms, sns.color_palette("colorblind", len(arms))))
    fig, axes = PS.subplots(1, len(pools), row_in=3.4)  # own y per pool: their loss levels differ
    for ax, pool in zip(axes[0], pools):
        g = summary[(summary["pool"] == pool) & (summary["k"] == k)]
        for arm in arms:
            a = g[g["arm"] == arm].sort_values("N")
            if not len(a) or not (a[cost] > 0).all():
                continue
            err = np.vstack([a["loss"] - a["lo"], a["hi"] - a["loss"]])
            ax.errorbar(a[cost], a["loss"], yerr=err, fmt="o", ms=4, lw=1.2, capsize=2, color=pal[arm],
                        label=arm_label(arm), ls="--" if arm == "base" else "-")
        b = g[g["arm"] == "base"]
        if len(b):
            top = b.loc[b["N"].idxmax()]
            PS.reference(ax, top["loss"], label=f"base {top['size']}")
        ax.set(xlabel=COST_LABELS.get(cost, cost), title=f"{pool} pool, k={k}")
        # ticks at the bases' costs: one per size, distinct even when the range is under a decade
        PS.log_axis(ax, "x", ticks=sorted(b[cost][b[cost] > 0]) if len(b) else None, max_labels=3)
    axes[0, 0].set_ylabel("in-domain CE (nats/token)")
    PS.legend(axes[0, -1], outside_over=4)
    return fig


def delta_figure(summary, size=None):
    """Change from the base (paired 95% interval) vs k, one panel per pool, one line per arm, at one
    size (default the largest)."""
    PS.use()
    size = summary.loc[summary["N"].idxmax(), "size"] if size is None else size
    pools = list(dict.fromkeys(summary["pool"]))
    arms = [a for a in arm_order(summary["arm"]) if a != "base"]
    pal = dict(zip(arms, sns.color_palette("colorblind", len(arms) + 1)[1:]))
    fig, axes = PS.subplots(1, len(pools), row_in=3.4, sharey=True)
    for ax, pool in zip(axes[0], pools):
        g = summary[(summary["pool"] == pool) & (summary["size"] == size)]
        for i, arm in enumerate(arms):
            a = g[g["arm"] == arm].sort_values("k")
            if not len(a):
                continue
            x = a["k"] + (i - len(arms) / 2) * 0.06
            err = np.vstack([a["delta_base"] - a["delta_lo"], a["delta_hi"] - a["delta_base"]])
            ax.errorbar(x, a["delta_base"], yerr=err, fmt="o-", ms=4, lw=1.2, capsize=2, color=pal[arm],
                        label=arm_label(arm))
        PS.reference(ax, 0.0, label="keep base")
        ax.set(xlabel="domains composed k", title=f"{pool} pool, {size}")
        ax.set_xticks(sorted(g["k"].unique()))
    axes[0, 0].set_ylabel("loss - base loss (nats/token)")
    PS.legend(axes[0, -1], outside_over=4)
    return fig
