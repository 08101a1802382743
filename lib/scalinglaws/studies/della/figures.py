"""The DELLA chapter's figures, each drawn from stored tables (`grid`, `ablations`)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from scalinglaws import plotstyle as PS
from scalinglaws.studies.della import analysis as A


def grid_figure(tables: dict, lam: float | None = None):
    """Group score (mean CE over the members' domains) against the drop rate p: one panel per
    (size, group), one line per window eps (eps = 0 is DARE), solid with Elect, dashed without;
    the base (grey, dotted) and the best Task Arithmetic (black, dash-dotted) as horizontal
    references. `lam`: the scale shown (default: the one of the best DELLA overall)."""
    PS.use()
    meta, _ = A.scores(tables)
    gd = A.grid_della(meta).reset_index()
    if lam is None:
        lam = float(gd.loc[gd["score"].idxmin(), "lam"])
    gd = gd[gd["lam"] == lam]
    sizes = list(dict.fromkeys(tables["grid"].sort_values("N")["size"]))
    groups = list(dict.fromkeys(tables["grid"]["group"]))
    eps = sorted(gd["eps"].unique())
    pal = dict(zip(eps, sns.color_palette("viridis", len(eps))))
    # one row per size, one column per group; one y label for the figure (a label per row overlapped)
    fig, axes = PS.subplots(len(sizes), len(groups), row_in=2.3, sharex=True)  # own y per panel: groups differ in level
    m = meta.reset_index()
    for i, s in enumerate(sizes):
        for j, g in enumerate(groups):
            ax = axes[i, j]
            for e in eps:
                for el, ls in ((True, "-"), (False, "--")):
                    d = gd[(gd["size"] == s) & (gd["group"] == g) & (gd["eps"] == e) & (gd["elect"] == el)].sort_values("p")
                    if len(d):
                        ax.plot(d["p"], d["score"], ls, marker="o", ms=3, color=pal[e],
                                label=f"eps={e:g}{' (DARE)' if e == 0 else ''}, {'Elect' if el else 'no Elect'}")
            cell = m[(m["size"] == s) & (m["group"] == g)]
            base = cell.loc[cell["method"] == "base", "score"]
            ta = cell.loc[cell["method"] == "ta", "score"]
            if len(base):
                PS.reference(ax, base.iloc[0])
            if len(ta):
                ax.axhline(ta.min(), color="black", ls="-.", lw=1, label="best TA")
            ax.set_title(f"{s}\n{g}" if i == 0 else s)
            ax.tick_params(axis="x", labelrotation=0)
    for ax in axes[-1]:
        ax.set_xlabel("p")
    fig.supylabel("mean CE of members (nats/token)")
    PS.legend(axes[0, -1])
    fig.suptitle(f"lambda = {lam:g}")
    return fig


def ablation_figure(tables: dict):
    """Each ablation variant's score minus the reference DELLA's at the same p (mean over sizes and
    groups), against p: above 0 the variant is worse than the paper's DELLA."""
    PS.use()
    a = tables["ablations"].groupby(["size", "group", "p", "variant"])["ce"].mean().reset_index()
    ref = a[a["variant"] == "reference"].rename(columns={"ce": "ref"}).drop(columns="variant")
    d = a.merge(ref, on=["size", "group", "p"]).assign(delta=lambda x: x["ce"] - x["ref"])
    d = d[d["variant"] != "reference"].groupby(["variant", "p"])["delta"].mean().reset_index()
    fig, axes = PS.subplots(1, 1, row_in=3.4)
    ax = axes[0, 0]
    for v, g in d.groupby("variant"):
        ax.plot(g["p"], g["delta"], marker="o", ms=4, label=v)
    ax.axhline(0, color="grey", lw=1)
    ax.set(xlabel="drop rate p", ylabel="CE(variant) - CE(DELLA), nats/token")
    PS.legend(ax)
    return fig
