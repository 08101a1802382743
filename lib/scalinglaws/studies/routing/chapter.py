"""The routing chapter's derived tables and glued sentences, from the stored tables only
(book/routing.ipynb is a thin caller; every number in its prose comes from here or its own glue)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from scalinglaws.studies.routing.names import DENSE, ordered, router_name, without_distribution


def gap_at_top_e(loss: pd.DataFrame) -> pd.DataFrame:
    """L(router, largest E) - L(dense) per router (rows) and size (columns, ascending N), nats/token;
    negative: the routed model beats its dense counterpart."""
    dense = loss[loss["router"] == DENSE].set_index("size")["L"]
    routed = loss[loss["router"] != DENSE]
    top = routed[routed["experts"] == routed["experts"].max()]
    t = top.assign(gap=top["L"] - top["size"].map(dense)).pivot(index="router", columns="size", values="gap")
    order = loss[loss["router"] == DENSE].sort_values("N")["size"]
    return t.loc[ordered(t.index), [s for s in order if s in t.columns]]


def phenomenon_sentence(loss: pd.DataFrame) -> str:
    """Which routers beat dense at the largest E at every size, which at some, which at none."""
    g = gap_at_top_e(loss)
    if g.empty:
        return "No routed model was trained."
    E = int(loss["experts"].max())
    every = [router_name(r) for r in g.index if (g.loc[r] < 0).all()]
    none = [router_name(r) for r in g.index if (g.loc[r] >= 0).all()]
    some = [f"{router_name(r)} (at {', '.join(g.columns[g.loc[r] < 0])})" for r in g.index
            if router_name(r) not in every + none]

    def names(xs):
        return xs[0] if len(xs) == 1 else ", ".join(xs[:-1]) + " and " + xs[-1]

    parts = []
    if every:
        parts.append(f"{names(every)} beat{'s' if len(every) == 1 else ''} the dense model at every size")
    if some:
        parts.append(f"{names(some)} at some sizes only")
    if none:
        parts.append(f"{names(none)} at no size")
    return f"At E = {E}, " + "; ".join(parts) + "."


STEP_COLUMNS = {"router": "router", "grid_steps": "steps (grid)", "steps": "steps (check)", "grid_L": "L (grid)",
                "L": "L (check)", "gain_from_steps": "gain from steps", "grid_gap_to_dense": "gap to dense (grid)",
                "gap_to_dense": "gap to dense (check)"}


def step_check_view(step: pd.DataFrame) -> pd.DataFrame:
    """The step-check table as the chapter shows it (nats/token; a negative gap: routing helps)."""
    out = step[list(STEP_COLUMNS)].rename(columns=STEP_COLUMNS)
    out["router"] = out["router"].map(lambda r: router_name(r))
    return out.round(4)


def step_check_glue(step: pd.DataFrame) -> dict[str, str]:
    """The numbers the step-check paragraph quotes: the model checked, both batches' steps, dense's
    gain from the steps and the mean change of the routers' gap to dense."""
    if step is None or not len(step):
        return {"sc_where": "not run at this profile", "sc_steps": "n/a", "sc_dense_gain": "n/a",
                "sc_gap_change": "n/a", "sc_gap_grid": "n/a", "sc_gap_check": "n/a"}
    d = step[step["router"] == DENSE].iloc[0]
    r = step[step["router"] != DENSE]
    return {"sc_where": f"{d['size']}, E = {int(r['experts'].iloc[0])}",
            "sc_steps": f"{int(d['grid_steps'])} to {int(d['steps'])}",
            "sc_dense_gain": f"{d['gain_from_steps']:.3f}",
            "sc_gap_change": f"{(r['gap_to_dense'] - r['grid_gap_to_dense']).mean():+.3f}",
            "sc_gap_grid": f"{r['grid_gap_to_dense'].mean():+.3f}",
            "sc_gap_check": f"{r['gap_to_dense'].mean():+.3f}"}


def relative_entropy(routing: pd.DataFrame) -> pd.Series:
    """Per learned router, its training-time routing entropy at the largest E over log E (mean over
    sizes and routed blocks): 1 means the router spreads every token uniformly (it has learned no
    assignment), 0 a deterministic one. Hash has no router distribution and is left out."""
    t = routing[(routing["phase"] == "train") & ~routing["router"].isin(without_distribution())]
    top = t[t["experts"] == t["experts"].max()]
    rel = top.groupby("router")["entropy"].mean() / np.log(top["experts"].max())
    return rel.reindex(ordered(rel.index))


def entropy_sentence(routing: pd.DataFrame) -> str:
    rel = relative_entropy(routing)
    if rel.empty:
        return "No learned router was trained."
    E = int(routing.loc[routing["phase"] == "train", "experts"].max())
    parts = ", ".join(f"{router_name(r)} {v:.2f}" for r, v in rel.items())
    return f"At E = {E} the learned routers' entropy over log E, averaged over all training tokens, is {parts} (1: uniform, no assignment learned)."


def kappa_sentence(growth: pd.DataFrame) -> str:
    """The range of the share-growth slope kappa per router over sizes (`study.share_growth`)."""
    if growth is None or not len(growth):
        return "No router was run at two or more E > 1."
    g = growth.groupby("router")["kappa"].agg(["min", "max"])
    parts = [f"{router_name(r)} {g.loc[r, 'min']:.2f}" + (f" to {g.loc[r, 'max']:.2f}"
             if g.loc[r, 'max'] - g.loc[r, 'min'] >= 0.005 else "")
             for r in ordered(g.index)]
    held = int(growth["constant_share"].sum())
    return (f"Measured kappa over the sizes: {'; '.join(parts)}; the interval contains 1 in {held} of "
            f"{len(growth)} (router, size) cells.")


# ---------------------------------------------------------------------------------------------
# Clark et al.'s own measurements (tables clark_* written by `python -m scalinglaws clark`)
CLARK_PARAMS = ["a", "b", "c", "d", "E_start", "E_max"]


def clark_fit_view(clark_fits: pd.DataFrame) -> pd.DataFrame:
    """Our fit of Clark's data per router and parameter: estimate [95% interval], the quoted Table 3
    value, ours - quoted, and whether the quoted value lies in our interval."""
    f = clark_fits[clark_fits["router"] != DENSE]
    out = pd.DataFrame({
        "router": f["router"].map(lambda r: router_name(r)), "param": f["param"],
        "ours [95% interval]": [f"{e:.4g} [{lo:.4g}, {hi:.4g}]" for e, lo, hi in zip(f["estimate"], f["lo"], f["hi"])],
        "Table 3 (quoted)": f["quoted"].map(lambda v: f"{v:g}"),
        "ours - quoted": f["diff"].map(lambda v: f"{v:+.4f}" if abs(v) < 1 else f"{v:+.3g}"),
        "quoted in interval": f["quoted_in_interval"].map({True: "yes", False: "no"})})
    order = {p: i for i, p in enumerate(CLARK_PARAMS)}
    return out.sort_values(["router", "param"], key=lambda c: c.map(order) if c.name == "param" else c,
                           kind="stable").set_index(["router", "param"])


def clark_fit_glue(clark_fits: pd.DataFrame) -> dict[str, str]:
    """Numbers of the fit paragraph: the largest |ours - quoted| over a, b, c, d for RL-R and Hash,
    S-BASE's b and d beside the quoted, how many quoted values lie in our intervals, R^2."""
    f = clark_fits[clark_fits["router"] != DENSE].set_index(["router", "param"])
    abcd = f[f.index.get_level_values("param").isin(list("abcd"))]
    rh = abcd[abcd.index.get_level_values("router").isin(["rlr", "hash"])]
    r2 = clark_fits[clark_fits["router"] != DENSE].groupby("router")["r2_log"].first()
    return {"clark_rh_maxdiff": f"{rh['diff'].abs().max():.4f}",
            "clark_sbase_b": f"{f.loc[('sbase', 'b'), 'estimate']:.4f}", "clark_sbase_b_q": f"{f.loc[('sbase', 'b'), 'quoted']:g}",
            "clark_sbase_d": f"{f.loc[('sbase', 'd'), 'estimate']:.4f}", "clark_sbase_d_q": f"{f.loc[('sbase', 'd'), 'quoted']:g}",
            "clark_sbase_a_diff": f"{f.loc[('sbase', 'a'), 'diff']:+.4f}", "clark_sbase_c_diff": f"{f.loc[('sbase', 'c'), 'diff']:+.4f}",
            "clark_in_interval": f"{int(f['quoted_in_interval'].sum())} of {len(f)}",
            "clark_r2_min": f"{r2.min():.4f}", "clark_n_points": f"{int(clark_fits['n_points'].max())}"}


def clark_search_view(search: pd.DataFrame) -> pd.DataFrame:
    """The selection variants: each router's a, b, c, d summed |difference| to Table 3, and the total."""
    t = search.pivot(index="variant", columns="router", values="distance")
    t = t[ordered(t.columns)].rename(columns=router_name)
    t["total"] = t.sum(axis=1)
    return t.sort_values("total").round(4)


EXTRAPOLATION_LABELS = {("L", "size"): "L at 1.3B from N <= 370M (relative error)",
                        ("L", "experts"): "L at E = 128..512 from E <= 64 (relative error)",
                        ("N_bar", "size"): "N_bar at 1.3B from N <= 370M (relative error)",
                        ("log10_n_cutoff", "size"): "log10 N_cutoff from N <= 370M (error in decades)"}


def clark_extrapolation_view(ex: pd.DataFrame) -> pd.DataFrame:
    """Mean and worst error per router and extrapolation (rows of `clark_extrapolation`)."""
    rows = []
    for (q, scheme), label in EXTRAPOLATION_LABELS.items():
        for r in ["dense", "sbase", "rlr", "hash"]:
            g = ex[(ex["quantity"] == q) & (ex["scheme"] == scheme) & (ex["router"] == r)]
            if len(g):
                rows.append({"prediction": label, "router": router_name(r), "models": len(g),
                             "mean error": g["error"].mean(), "worst |error|": g["error"].abs().max(),
                             "all fits ok": bool((g["status"] == "ok").all())})
    return pd.DataFrame(rows).set_index(["prediction", "router"]).round(4)


def clark_extrapolation_glue(ex: pd.DataFrame) -> dict[str, str]:
    def worst(q, scheme):
        g = ex[(ex["quantity"] == q) & (ex["scheme"] == scheme) & (ex["router"] != DENSE)]
        return g["error"].abs().max()
    cut = ex[ex["quantity"] == "log10_n_cutoff"].set_index("router")
    return {"clark_ex_size": f"{100 * worst('L', 'size'):.1f}%", "clark_ex_experts": f"{100 * worst('L', 'experts'):.1f}%",
            "clark_ex_nbar": f"{100 * worst('N_bar', 'size'):.0f}%",
            "clark_ex_nbar_sign": "overestimated" if (ex.loc[ex["quantity"] == "N_bar", "error"] > 0).all() else
            "underestimated" if (ex.loc[ex["quantity"] == "N_bar", "error"] < 0).all() else "misestimated",
            "clark_ex_cut": f"{cut['error'].abs().max():.2f}",
            "clark_ex_cut_lo": f"{cut['error'].min():.2f}"}


def clark_cutoff_view(ex: pd.DataFrame, quoted: dict) -> pd.DataFrame:
    """N_cutoff per router from our fit of every size of Clark's data beside the value the notes quote."""
    cut = ex[ex["quantity"] == "log10_n_cutoff"].set_index("router")
    return pd.DataFrame({"ours (all sizes)": [f"{10 ** cut.loc[r, 'measured'] / 1e9:.0f}B" for r in cut.index],
                         "ours (N <= 370M)": [f"{10 ** cut.loc[r, 'pred'] / 1e9:.0f}B" for r in cut.index],
                         "quoted": [f"{quoted[r] / 1e9:.0f}B" if r in quoted else "" for r in cut.index]},
                        index=[router_name(r) for r in cut.index])


def clark_steps_glue(clark_steps: pd.DataFrame, ours: pd.DataFrame, experts: int = 8) -> dict[str, str]:
    """The step paragraph: Clark's gain over dense at E = `experts` at the first and last step
    (mean over sizes and routers), how many (router, size) curves gain from the first to the last
    step; our step check's mean relative gap at its two step counts."""
    c = clark_steps[clark_steps["experts"] == experts]
    first, last = c["step"].min(), c["step"].max()
    piv = c.pivot_table(index=["router", "size"], columns="step", values="rel_gap")
    out = {"clark_st_E": str(experts), "clark_st_first": f"{first // 1000}K", "clark_st_last": f"{last // 1000}K",
           "clark_st_gap_first": f"{100 * piv[first].mean():.1f}%", "clark_st_gap_last": f"{100 * piv[last].mean():.1f}%",
           "clark_st_grow": f"{int((piv[last] < piv[first]).sum())} of {len(piv)}"}
    if len(ours):
        o = ours[ours["router"].isin(c["router"].unique())].groupby("steps")["rel_gap"].mean()
        same = (o.iloc[-1] < o.iloc[0]) == (piv[last].mean() < piv[first].mean())
        out.update({"ours_st_steps": " and ".join(str(int(s)) for s in o.index),
                    "ours_st_gaps": " and ".join(f"{100 * v:+.1f}%" for v in o.to_numpy()),
                    "ours_st_direction": "the same way" if same else "the other way"})
    else:
        out.update({"ours_st_steps": "n/a", "ours_st_gaps": "n/a", "ours_st_direction": "nowhere (no step check)"})
    return out


def claims_side_by_side(clark_claims: pd.DataFrame, claims: pd.DataFrame) -> pd.DataFrame:
    """Each routing claim judged on Clark's data and on ours by the same code: value [95% interval]
    and verdict on each (claims absent from one table show an empty cell)."""
    def cell(df):
        return pd.DataFrame({"claim_id": df["claim_id"],
                             "value": [("" if np.isnan(v) else f"{v:.4g}") + ("" if np.isnan(lo) else f" [{lo:.3g}, {hi:.3g}]")
                                       for v, lo, hi in zip(df["value"], df["lo"], df["hi"])],
                             "verdict": df["verdict"]}).set_index("claim_id")
    c, o = cell(clark_claims), cell(claims)
    t = c.join(o, how="outer", lsuffix=" (Clark's data)", rsuffix=" (ours)")
    text = pd.concat([claims, clark_claims]).drop_duplicates("claim_id").set_index("claim_id")["claim"]
    t.insert(0, "claim", text.reindex(t.index))
    order = list(claims["claim_id"]) + [i for i in clark_claims["claim_id"] if i not in set(claims["claim_id"])]
    return t.reindex([i for i in order if i in t.index]).fillna("")


def clark_claims_sentence(clark_claims: pd.DataFrame, claims: pd.DataFrame) -> str:
    """How many claims hold on Clark's data with our code, which do not, and how the same claims
    fare on ours (verdicts other than 'holds' and 'not testable' counted together)."""
    c = clark_claims.set_index("claim_id")["verdict"]
    testable = c[c != "not testable"]
    if not len(testable):
        return "At this profile every claim is 'not testable' (the notes say why)."
    held = testable[testable == "holds"]
    refuted = [i for i in testable.index if testable[i] == "refuted"]
    undecided = [i for i in testable.index if testable[i] == "inconclusive"]
    ours = claims.set_index("claim_id")["verdict"].reindex(held.index)
    s = f"On Clark et al.'s data {len(held)} of the {len(testable)} claims our code can test there hold"
    s += "." if not refuted else (f"; {', '.join(refuted)} {'is' if len(refuted) == 1 else 'are'} refuted there "
                                  "(a bug to find, not a finding).")
    if undecided:  # e.g. a claim on R^2, which has no interval: the data cannot decide it, whoever fits
        s += (f" {', '.join(undecided)} {'stays' if len(undecided) == 1 else 'stay'} inconclusive on their data too "
              "(the table's note says why).")
    return s + (f" On ours, {int((ours == 'holds').sum())} of those {len(held)} hold at this profile.")


def pilot_glue(pilot: pd.DataFrame | None, entropy_max: float) -> dict[str, str]:
    """The pilot section's numbers: the cell the pilot trained (`pilot_cell`: size and routed E of the
    stored `regime_pilot` table) and the entropy target of the rerun (`entropy_target`: `entropy_max`,
    the claims' ROUTER_ENTROPY_MAX, the relative entropy a learned router must fall below; passed in,
    as `claims` imports this module)."""
    out = {"entropy_target": f"{entropy_max:g}"}
    if pilot is None or not len(pilot):
        return {**out, "pilot_cell": "no pilot stored at this profile"}
    routed = pilot[pilot["experts"] > 1]
    sizes = ", ".join(dict.fromkeys(pilot["size"]))
    es = ", ".join(str(int(e)) for e in sorted(set(routed["experts"])))
    return {**out, "pilot_cell": f"{sizes}, E = {es}" if es else sizes}


# a (size, E) cell's reading of its seed-widened interval of the gain over dense
# (`claims.router_vs_dense_cells`): above 0, below 0, containing 0
CELL_READINGS = ("beats", "trails", "undecided")


def cell_tally(cells: pd.DataFrame) -> dict[str, int]:
    """{reading: number of cells} of a `claims.router_vs_dense_cells` table, every reading present
    (0 if none): the claim's note and `cells_sentence` both count with it."""
    counts = cells["reading"].value_counts()
    return {k: int(counts.get(k, 0)) for k in CELL_READINGS}


def cells_sentence(cells: pd.DataFrame) -> str:
    """`claims.router_vs_dense_cells` in words: in how many (size, E) cells the router beats, trails or
    cannot be told from the dense model, and which intervals say so (seed-widened or sampling only)."""
    if not len(cells):
        return "No routed model of this router at these expert counts is stored."
    name, n = router_name(cells["router"].iloc[0]), len(cells)
    c = cell_tally(cells)
    sd = cells["seed_sd"].iloc[0]
    how = (f"95% intervals from the sampling errors widened by the training-seed SD of the gain ({sd:.3f} nats)"
           if np.isfinite(sd) else "95% sampling intervals only: no training-seed replicates are stored, so a "
           "cell's reading may change once they are")
    worst = cells.loc[cells["gain"].idxmin()]
    return (f"{name} beats the dense model in {c['beats']} of {n} cells with E >= {int(cells['experts'].min())}, "
            f"trails it in {c['trails']} and cannot be told from it in {c['undecided']} ({how}); "
            f"its largest deficit is {-worst['gain']:.3f} nats at {worst['size']}, E = {int(worst['experts'])}.")


def pilot_rerun_sentence(drift: list[str]) -> str:
    """Whether the stored grid was made with the settings the pilot chose: `drift` is the chapter's
    profile drift (`studies.profile_drift`; empty when the stored config is the profile's)."""
    if drift:
        return ("Until the rerun with these settings lands, the stored grid above was made with older settings, "
                "as the provenance banner says.")
    return "The stored grid above was made with these settings (its recorded config is the profile's)."


def clark_split_glue(ex: pd.DataFrame, loss: pd.DataFrame) -> dict[str, str]:
    """The extrapolation split on Clark et al.'s data, from the stored tables: the held-out sizes and
    E values (`clark_extrapolation`'s rows of each scheme) and the largest of the fitted ones (the
    sizes and E of `clark_loss` below the held-out)."""
    def held(scheme):
        return ex[(ex["scheme"] == scheme) & (ex["quantity"] == "L")]
    size, experts = held("size"), held("experts")
    out = {}
    if len(size):
        n_min = size["N"].min()
        fitted = loss[loss["N"] < n_min].sort_values("N")
        out["clark_ex_fit_N"] = str(fitted["size"].iloc[-1]) if len(fitted) else "n/a"
        out["clark_ex_held_N"] = ", ".join(dict.fromkeys(size.sort_values("N")["size"]))
    if len(experts):
        e_min, e_max = int(experts["experts"].min()), int(experts["experts"].max())
        below = sorted(e for e in loss["experts"].unique() if e < e_min)
        out["clark_ex_fit_E"] = str(int(below[-1])) if below else "n/a"
        out["clark_ex_held_E"] = f"{e_min} to {e_max}" if e_min != e_max else str(e_min)
    return out
