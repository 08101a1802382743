"""The DELLA paper's conclusions (Deep, Bhardwaj, Poria 2024, Table 1 and its ablations), each judged
on the stored tables of the DELLA study.

`claims(tables)` reads only `grid`, `ablations`, `noise` and, when stored, `split` and `seeds`, and
returns one row per claim in the schema of `core.claims`, each verdict by `core.claims.judge`.
`value` is the measured quantity (nats/token unless the measure says otherwise), `lo`/`hi` its 95 %
interval over the paired bootstrap draws of the evaluation windows (`noise`), widened by the mask
randomness (the merges' Bernoulli draws: the ablations' repeated mask seeds, `mask_seed_sd`, for two
merges) and by the training-seed SD of `della_minus_dare` (the seeds table; unknown: inconclusive).

Fair comparisons: a claim about *tuned* methods (the best setting of each) picks each method's best
setting on one half of the windows and compares the picks on the other (`split`, written by runs
since the split was added; `study.split_scores`), and names how many settings each method tried. A
stored run without `split` selected and scored on the same windows, so its tuned claims are
inconclusive (a method tried in more settings wins more of the windows' noise).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from scalinglaws.core.claims import COLUMNS, Above, Precondition, frame, judge, seed_noise
from scalinglaws.core.seeds import with_seed_noise
from scalinglaws.studies.della import analysis as A

CLAIM_COLUMNS = list(COLUMNS)
PAPER = "Deep et al. 2024 (DELLA-Merging)"


SEEDS = "della_minus_dare"  # the seeds table's measure of a merge-method difference on the same experts
SAME_WINDOWS = "selected and scored on the same windows"


def _row(cid, claim, measure, figure, value=np.nan, lo=np.nan, hi=np.nan, test=None, note="", paper=PAPER,
         ctx=None, interval="paired bootstrap over evaluation windows", preconditions=(), decide=""):
    """A claims row judged by `core.claims.judge` (test: what the claim says; default a gain above
    0); without a value it is 'not testable' (the profile's grid lacks what the claim needs)."""
    if not np.isfinite(value):
        return {"claim_id": cid, "paper": paper, "claim": claim, "measure": measure, "value": np.nan, "lo": np.nan,
                "hi": np.nan, "verdict": "not testable", "figure": figure, "note": note or "not in this profile's grid"}
    ctx = ctx or {}
    sd = ctx.get("mask_sd", np.nan)
    if np.isfinite(sd) and np.isfinite(lo) and np.isfinite(hi):
        lo, hi = with_seed_noise(value, lo, hi, sd, 2)
        interval += f", widened by the mask-seed SD {sd:.4f} (two merges)"
    return judge(cid, paper, claim, measure, value, lo, hi, test or Above(0), interval=interval,
                 seeds=ctx.get("seeds"), figure=figure, note=note, preconditions=preconditions, decide=decide)


def _paired(M, a_keys, b_keys):
    """Mean over pairs of score(b) - score(a), per column of M."""
    return pd.Series(M.loc[b_keys].to_numpy().mean(0) - M.loc[a_keys].to_numpy().mean(0), index=M.columns)


def _match(meta, a: pd.DataFrame, b: pd.DataFrame, on: list[str]):
    """Index pairs (a_key, b_key) of rows of a and b agreeing on size, group and `on`."""
    ra = a.reset_index()
    rb = b.reset_index()
    m = ra.merge(rb, on=["size", "group", *on], suffixes=("_a", "_b"))
    ka = list(zip(m["size"], m["group"], m["setting_a"]))
    kb = list(zip(m["size"], m["group"], m["setting_b"]))
    return ka, kb, m


def _diff_claim(M, ka, kb, cid, claim, measure, figure, note="", ctx=None):
    if not ka:
        return _row(cid, claim, measure, figure, note=note or "no matching settings at this profile")
    v, lo, hi = A.interval(_paired(M, ka, kb))
    diffs = M.loc[kb, "point"].to_numpy() - M.loc[ka, "point"].to_numpy()
    n = f"{int((diffs > 0).sum())} of {len(diffs)} paired settings favour the claim"
    return _row(cid, claim, measure, figure, v, lo, hi, note="; ".join(x for x in (n, note) if x), ctx=ctx)


def _min_gain(M, meta, della_mask, other_mask):
    """Mean over (size, group) of min score(other) - min score(DELLA), per column (the best
    setting re-selected in every draw: tuning noise included)."""
    d = M[della_mask.reindex(M.index, fill_value=False).to_numpy()].groupby(level=[0, 1]).min()
    o = M[other_mask.reindex(M.index, fill_value=False).to_numpy()].groupby(level=[0, 1]).min()
    cells = d.index.intersection(o.index)
    return (o.loc[cells] - d.loc[cells]).mean(0), len(cells)


def _tuned_split(split: pd.DataFrame, meta: pd.DataFrame, a_mask, b_mask):
    """Tuned b against tuned a, fairly: per (size, group) each side's best setting picked on the
    'select' half of the windows, both picks scored on the 'score' half. Returns, per cell,
    score(a's pick) - score(b's pick) (positive: b is better)."""
    sp = split.pivot_table(index=["size", "group", "setting"], columns="half", values="score")
    gains = []
    for (size, group), _ in meta.groupby(level=[0, 1]):
        picks = []
        for mask in (a_mask, b_mask):
            keys = [k for k in meta.index[mask.reindex(meta.index, fill_value=False).to_numpy()]
                    if k[:2] == (size, group) and k in sp.index]
            if not keys:
                break
            sel = sp.loc[keys]
            picks.append(float(sel.loc[sel["select"].idxmin(), "score"]))
        if len(picks) == 2:
            gains.append(picks[0] - picks[1])
    return np.asarray(gains)


def _tried(meta: pd.DataFrame, mask) -> int:
    """Settings a method tried per (size, group) (the largest count over cells)."""
    m = pd.Series(np.asarray(mask), index=meta.index)
    return int(m.groupby(level=[0, 1]).sum().max()) if m.any() else 0


def _tuned(tables, meta, M, cid, name, della_mask, other_mask, paper_gain, ctx, other_label=None):
    """A claim that tuned DELLA beats tuned `name` (or the base), judged fairly when a `split` is stored."""
    claim = f"tuned DELLA beats tuned {name} (Table 1: {paper_gain} on average)" if other_label is None else other_label
    tried = f"settings tried per (size, group): DELLA {_tried(meta, della_mask)}, {name} {_tried(meta, other_mask)}"
    measure = f"mean over (size, group) of CE({name}) - CE(best DELLA), nats/token"
    if not np.asarray(other_mask).any() or not np.asarray(della_mask).any():
        return _row(cid, claim, measure, "tab-della-best", note=f"no {name} settings at this profile")
    split = tables.get("split")
    if split is not None and len(split):
        g = _tuned_split(split, meta, pd.Series(np.asarray(other_mask), index=meta.index),
                         pd.Series(np.asarray(della_mask), index=meta.index))
        # scoring half: half the windows, so the full-window bootstrap spread x sqrt(2) (analytic)
        s, _ = _min_gain(M, meta, pd.Series(np.asarray(della_mask), index=meta.index),
                         pd.Series(np.asarray(other_mask), index=meta.index))
        _, lo, hi = A.interval(s)
        half = (hi - lo) / 2 * math.sqrt(2)
        v = float(g.mean())
        return _row(cid, claim, measure + "; picked on the selection half, scored on the other", "tab-della-tuned",
                    v, v - half, v + half, note=f"{len(g)} (size, group) cells; {tried}", ctx=ctx,
                    interval="analytic: the paired bootstrap spread over all windows x sqrt(2) for the half")
    s, n = _min_gain(M, meta, pd.Series(np.asarray(della_mask), index=meta.index),
                     pd.Series(np.asarray(other_mask), index=meta.index))
    v, lo, hi = A.interval(s)
    return _row(cid, claim, measure + "; the best setting re-chosen in every bootstrap draw", "tab-della-best",
                v, lo, hi, note=f"{n} (size, group) cells; {tried}", ctx=ctx,
                preconditions=[Precondition(f"tuned picks made on windows disjoint from the scored ones (1 yes, 0 no: "
                                            f"{SAME_WINDOWS})", 0.0, ">=", 1.0)],
                decide="a rerun that stores the window split (the split table): pick on one half, score on the other")


def claims(tables: dict, profile: str | None = None) -> pd.DataFrame:  # at smoke every verdict is "not testable" (core.claims.frame)
    meta, M = A.scores(tables)
    gd = A.grid_della(meta)
    della = gd[gd["method"] == "della"]
    dare = gd[gd["method"] == "dare"]
    ctx = {"mask_sd": A.mask_seed_sd(tables), "seeds": seed_noise(tables, SEEDS)}
    rows = []

    # 1. DELLA >= DARE at the same drop rate (the paper's central comparison)
    ka, kb, _ = _match(meta, della, dare, ["p", "lam", "elect"])
    rows.append(_diff_claim(M, ka, kb, "della_beats_dare_same_p",
                            "DELLA (MAGPRUNE) beats DARE at the same drop rate p (Table 1: +1.2 points on average)",
                            "mean over (size, group, p, eps > 0, lam, Elect) of CE(DARE) - CE(DELLA), nats/token",
                            "fig-della-grid", ctx=ctx))

    # 2-4. Table 1: the best DELLA against the best DARE, TA and TIES of the grid
    is_della = meta.index.isin(della.index)
    for cid, name, mask, paper_gain in (
            ("della_beats_dare_tuned", "DARE", meta.index.isin(dare.index), "+1.2"),
            ("della_beats_ta", "Task Arithmetic", (meta["method"] == "ta").to_numpy(), "+11.1"),
            ("della_beats_ties", "TIES", (meta["method"] == "ties").to_numpy(), "+3.6")):
        rows.append(_tuned(tables, meta, M, cid, name, is_della, mask, paper_gain, ctx))

    # 5-8. ablations at each p: ranking and rescaling
    ab = tables["ablations"]
    ab = ab.groupby(["size", "group", "variant", "setting"], sort=False)["p"].first().reset_index()
    ref = ab[ab["variant"] == "reference"]
    for cid, variant, claim, fig in (
            ("magprune_beats_random_rank", "rank=random",
             "MAGPRUNE's magnitude ranking beats a random ranking of the same drop probabilities", "tab-della-ablations"),
            ("row_rank_beats_tensor_rank", "rank=tensor",
             "ranking within rows beats ranking over the whole tensor (the paper's layer-wise ablation)", "tab-della-ablations"),
            ("rescale_matters", "rescale=none",
             "rescaling the survivors by 1/(1 - p_i) is essential (no rescaling collapses at high p)", "tab-della-ablations"),
            ("inverse_beats_l1_rescale", "rescale=l1",
             "the papers' per-entry 1/(1 - p_i) rescale beats mergekit's L1-norm match", "tab-della-ablations")):
        other = ab[ab["variant"] == variant]
        m = ref.merge(other, on=["size", "group", "p"], suffixes=("_a", "_b"))
        ka = list(zip(m["size"], m["group"], m["setting_a"]))
        kb = list(zip(m["size"], m["group"], m["setting_b"]))
        note = ""
        if len(m):
            per_p = (M.loc[kb, "point"].to_numpy() - M.loc[ka, "point"].to_numpy())
            by_p = pd.Series(per_p).groupby(m["p"].to_numpy()).mean()
            note = "by p: " + ", ".join(f"{p:g}: {x:+.4f}" for p, x in by_p.items())
        paper = PAPER if variant != "rescale=l1" else "mergekit's convention (not a paper claim)"
        r = _diff_claim(M, ka, kb, cid, claim, f"mean over (size, group, p) of CE({variant}) - CE(reference DELLA), "
                        "nats/token", fig, note, ctx=ctx)
        r["paper"] = paper
        rows.append(r)

    # 9. Elect: Drop-Elect-Fuse vs Drop-Fuse
    ka, kb, _ = _match(meta, della[della["elect"] == True], della[della["elect"] == False], ["p", "eps", "lam"])  # noqa: E712
    rows.append(_diff_claim(M, ka, kb, "elect_helps", "the Elect step helps: Drop-Elect-Fuse beats Drop-Fuse (Table 4)",
                            "mean over (size, group, p, eps > 0, lam) of CE(without Elect) - CE(with Elect), nats/token",
                            "fig-della-grid", ctx=ctx))

    # 10. the best drop rate lies around 0.5-0.7
    ps = sorted(della["p"].unique())
    mid = [p for p in ps if 0.5 <= p <= 0.7]
    measure = "share of (size, group) cells whose best DELLA setting has p in [0.5, 0.7] (re-chosen per draw)"
    if len(ps) < 3 or not mid:
        rows.append(_row("best_p_mid", "the best drop rate is around p = 0.5-0.7 (0.5 for most pairs)", measure,
                         "fig-della-grid", note="the grid needs p below, inside and above [0.5, 0.7]"))
    else:
        Md = M.loc[della.index]
        shares = {}
        for c in Md.columns:
            best = Md[c].groupby(level=[0, 1]).idxmin()
            shares[c] = float(np.mean([0.5 <= della.loc[k, "p"] <= 0.7 for k in best]))
        v, lo, hi = A.interval(pd.Series(shares))
        best_pt = Md["point"].groupby(level=[0, 1]).idxmin()
        note = "best p per cell: " + ", ".join(f"{k[0]} {k[1]}: {della.loc[k, 'p']:g}" for k in best_pt)
        # a share: mask and training noise enter through which setting wins, not additively
        rows.append(_row("best_p_mid", "the best drop rate is around p = 0.5-0.7 (0.5 for most pairs)", measure,
                         "fig-della-grid", v, lo, hi, test=Above(0.5), note=note,
                         ctx={"seeds": seed_noise(tables, "best_p_share")}, interval="bootstrap over evaluation windows"))

    # 11. the merge keeps what the experts gained: the best DELLA beats the base
    base = (meta["method"].to_numpy() == "base")
    rows.append(_tuned(tables, meta, M, "della_beats_base", "base", is_della, base, "",
                       {"mask_sd": ctx["mask_sd"], "seeds": seed_noise(tables, "della_minus_base")},
                       other_label="the merged model beats the base on its members' domains (implicit in Table 1)"))

    # 12. not testable here
    rows.append(_row("constant_lambda_beats_adaptive", "a constant lambda beats per-model (adaptive) lambda",
                     "-", "", note="adaptive lambda is not implemented (the DELLA repository's ada_* variants silently "
                                   "use a constant lambda)"))
    return frame(rows, profile)


def derived_tables(tables: dict, config: dict) -> dict:
    """Tables `python -m scalinglaws claims della` recomputes from the stored ones before judging:
    `best` and the fair comparison `tuned` (from `split`; empty for a run made before the split)."""
    return {"best": A.best_table(tables), "tuned": A.tuned_table(tables)}


def regime(tables: dict) -> pd.DataFrame:
    """The DELLA study's regime (`core.regime`): per size, the merged experts' gain over the base on
    their own domains (from `best`: CE(base) - CE(own expert), mean over groups)."""
    from scalinglaws.core import regime as R
    b = tables.get("best", pd.DataFrame())
    rows = []
    for size, g in b.groupby("size", sort=False) if len(b) else ():
        rows.append(R.row(size, g["N"].iloc[0], expert_gain=float((g["base"] - g["own_expert"]).mean()),
                          seeds=R.seed_count(tables, size)))
    return R.frame(rows)
