"""Resource-model study: neuron counting, attribution statistics, validation, smoke run + resume."""
import math

import numpy as np
import pandas as pd
import pytest
import torch

from scalinglaws.studies.resource import toy as rt
from scalinglaws.core.validation import ParameterError


def _block(w, b, a, c=0.0):
    """A hand-built batched one-hidden-layer block (B = 1, 1-D in and out)."""
    W1 = torch.tensor(w, dtype=torch.float32).view(1, 1, -1)
    b1 = torch.tensor(b, dtype=torch.float32).view(1, 1, -1)
    W2 = torch.tensor(a, dtype=torch.float32).view(1, -1, 1)
    b2 = torch.tensor([c], dtype=torch.float32).view(1, 1, 1)
    return [W1, b1, W2, b2]


def test_weight_threshold_count_on_hand_built_network():
    # magnitudes sqrt(||(w,b)|| |a|): sqrt(5*1)=2.24, 0, sqrt(1e-5*1e-5)=1e-5, sqrt(2*1e-8)=1.41e-4
    blk = _block([3.0, 0.0, 1e-5, 2.0], [4.0, 0.0, 0.0, 0.0], [1.0, 5.0, 1e-5, 1e-8])
    mag = rt.neuron_magnitude(blk)
    np.testing.assert_allclose(mag[0].numpy(), [math.sqrt(5), 0.0, 1e-5, math.sqrt(2e-8)], rtol=1e-5)
    assert rt.count_allocated(mag, 1e-3).tolist() == [1]
    assert rt.count_allocated(mag, 1e-4).tolist() == [2]
    assert rt.count_allocated(mag, 1e-6).tolist() == [3]
    # ReLU rescaling (w, b) -> t (w, b), a -> a / t leaves the function and the magnitude unchanged
    blk2 = _block([30.0, 0.0, 1e-4, 20.0], [40.0, 0.0, 0.0, 0.0], [0.1, 5.0, 1e-6, 1e-9])
    np.testing.assert_allclose(rt.neuron_magnitude(blk2).numpy(), mag.numpy(), rtol=1e-5)


def test_ablation_deltas_match_brute_force_removal():
    g = torch.Generator().manual_seed(0)
    blk = [p.detach() for p in rt.init_block(2, 1, 6, 1, g)]
    x = rt.grid(200, 2)
    y = x ** 2
    h = rt.hidden(blk, x, torch.relu)
    pred = torch.baddbmm(blk[3], h, blk[2])
    base = (pred - y).pow(2).mean(1)[:, 0]
    delta = rt.ablation_deltas(h, blk[2], pred - y, torch.ones(1))[:, :, 0]
    for j in range(6):
        W2 = blk[2].clone()
        W2[:, j] = 0
        removed = (torch.baddbmm(blk[3], h, W2) - y).pow(2).mean(1)[:, 0]
        np.testing.assert_allclose(delta[:, j].numpy(), (removed - base).numpy(), rtol=1e-4, atol=1e-7)


def test_ablation_ignores_dead_neurons_that_the_weight_count_includes():
    # neuron 2 is relu(x - 5): zero on [-1, 1] although its weights are large
    blk = _block([1.0, 1.0], [0.0, -5.0], [1.0, 3.0])
    x = rt.grid(256, 1)
    y = torch.relu(x) + 0.1 * x.abs()  # the live neuron explains most of y
    h = rt.hidden(blk, x, torch.relu)
    pred = torch.baddbmm(blk[3], h, blk[2])
    loss = (pred - y).pow(2).mean(1)[:, 0]
    delta = rt.ablation_deltas(h, blk[2], pred - y, torch.ones(1))[:, :, 0]
    assert rt.count_allocated(rt.neuron_magnitude(blk), 1e-3).item() == 2
    assert delta[0, 1].item() == 0.0
    assert rt.count_by_ablation(delta, loss, 0.01).item() == 1


def test_prox_group_lasso_is_group_soft_thresholding():
    blk = _block([3.0, 0.1], [0.0, 0.0], [4.0, 0.1])  # group norms 5 and 0.1414
    rt.prox_group_lasso(blk, torch.tensor([[1.0]]))
    np.testing.assert_allclose(blk[0][0, 0].numpy(), [3.0 * 0.8, 0.0], rtol=1e-6)
    np.testing.assert_allclose(blk[2][0, :, 0].numpy(), [4.0 * 0.8, 0.0], rtol=1e-6)


def test_regulariser_controls_allocation():
    rows = rt.train_single("square", 16, [0.0, 1.0], [0], steps=300, refit_steps=50)
    free, sparse = rows
    assert free["neurons_w0.001"] == 16
    assert sparse["neurons_w0.001"] < 16
    assert sparse["neurons_ablation"] <= sparse["neurons_w0.001"]
    assert free["loss"] < 0.05  # it did learn y = x^2 (variance-normalised MSE)


def test_runs_are_deterministic_and_independent_of_batch_mates():
    a = rt.train_single("sine", 8, [0.1], [3], steps=60, refit_steps=10)
    b = rt.train_single("sine", 8, [0.0, 0.1], [3], steps=60, refit_steps=10)[1]
    assert a[0]["neurons_w0.001"] == b["neurons_w0.001"]
    assert a[0]["loss"] == pytest.approx(b["loss"], rel=1e-4)


def test_composites_report_consistent_attribution():
    for kind in rt.COMPOSITIONS:
        rows = rt.train_composite(kind, ("square", "sine"), 6, [0.0], [0], steps=50, refit_steps=0)
        r = rows[0]
        assert r["neurons_1"] + r["neurons_2"] == pytest.approx(r["neurons"], abs=1e-4)
        assert r["loss"] == pytest.approx(r["loss_1"] + r["loss_2"], rel=1e-6)
    assert rows[0]["neurons"] == 12  # series: two blocks of 6, none pruned at lambda = 0


def test_share_trend_detects_constant_and_drifting_shares():
    rng = np.random.default_rng(0)
    N = np.repeat([8, 16, 32, 64, 128], 20).astype(float)
    const = pd.DataFrame({"neurons": N, "share_1": 0.4 + 0.02 * rng.standard_normal(len(N))})
    s = rt.share_trend(const, boot=300)
    assert s["slope_lo"] < 0 < s["slope_hi"] and abs(s["mean"] - 0.4) < 0.01
    drift = const.assign(share_1=const["share_1"] + 0.05 * np.log2(N))
    d = rt.share_trend(drift, boot=300)
    assert d["slope_lo"] > 0.03 and d["slope"] == pytest.approx(0.05, abs=0.01)


def test_additive_laws_recover_known_constants():
    """The additive form is a law fitted by the one fitter (`laws.additive`, `laws.additive_inverse`)."""
    from scalinglaws.fitting import fit
    rng = np.random.default_rng(1)
    N1 = rng.integers(2, 60, 80).astype(float)
    N2 = rng.integers(2, 60, 80).astype(float)
    df = pd.DataFrame({"neurons_1": N1, "neurons_2": N2,
                       "loss": (2 / N1 + 3 / N2) * np.exp(0.01 * rng.standard_normal(80))})
    cols = {"N1": "neurons_1", "N2": "neurons_2"}
    fixed = fit("additive_inverse", df, columns=cols, y="loss", bootstrap=50)
    assert fixed.params["c1"] == pytest.approx(2, rel=0.03) and fixed.params["c2"] == pytest.approx(3, rel=0.03)
    free = fit("additive", df, columns=cols, y="loss", bootstrap=50)
    assert free.params["a1"] == pytest.approx(1, abs=0.05) and free.params["a2"] == pytest.approx(1, abs=0.05)
    assert free.r2_log > 0.99 and free.ok, free.why_not_ok


def test_composite_fit_tables_are_in_the_one_fits_schema():
    from scalinglaws.fitting.schema import FIT_COLUMNS
    from scalinglaws.studies.resource.analysis import composite_fit_tables
    rng = np.random.default_rng(2)
    N1 = rng.integers(2, 60, 30).astype(float)
    N2 = rng.integers(2, 60, 30).astype(float)
    comp = pd.DataFrame({"kind": "parallel", "activation": "relu", "neurons_1": N1, "neurons_2": N2,
                         "neurons": N1 + N2, "share_1": N1 / (N1 + N2),
                         "loss": (2 / N1 + 3 / N2) * np.exp(0.01 * rng.standard_normal(30))})
    shares, additive = composite_fit_tables(comp, 40)
    assert list(shares.columns) == ["kind", *FIT_COLUMNS, "log2_range"]
    assert list(additive.columns) == ["kind", "form", *FIT_COLUMNS]
    assert set(shares["param"]) == {"slope", "mean"} and set(additive["law"]) == {"additive", "additive_inverse"}
    a = additive[additive["law"] == "additive_inverse"].set_index("param")["estimate"]
    assert a["c1"] == pytest.approx(2, rel=0.05) and a["c2"] == pytest.approx(3, rel=0.05)


def test_lm_ladders_units_and_choice():
    """Both ladders share the d32l2 rung: it is trained once per rate; each rung keeps the rate
    with the lowest validation loss (diverged rates never), whatever its test loss."""
    from scalinglaws.studies.resource.lm import ladder_sizes
    from scalinglaws.studies.resource.study import lm_table, lm_units
    rows = ladder_sizes([16, 32, 64], fixed_depth=2, depth_ratio=16, head_dim=8, context=64)
    assert [(r["ladder"], r["n_layers"]) for r in rows] == [("width", 2)] * 3 + [("depth", 1), ("depth", 2), ("depth", 4)]
    p = {"lm_widths": [16, 32], "lm_fixed_depth": 2, "lm_depth_ratio": 16, "lm_head_dim": 8, "lm_context": 64,
         "lm_seed": 0, "lm_tokens_per_param": 2.0, "lm_batch_tokens": 1024, "lm_lrs": [1e-3, 1e-2],
         "lm_domains": ["code"], "lm_eval_tokens": 128}
    units, members = lm_units(p)
    assert len(units) == 3 * 2 and len(members) == 4 * 2  # rungs d16l2, d32l2, d16l1; d32l2 shared
    # tokens proportional to N: 2 tokens per non-embedding parameter, in whole batches
    for u in units:
        from scalinglaws.studies.resource.lm import non_embedding_params
        n = non_embedding_params(u.config["d_model"], u.config["n_layers"], 8, 64)
        assert u.config["tokens"] % 1024 == 0 and abs(u.config["tokens"] - 2 * n) <= 512
    val = {1e-3: 5.0, 1e-2: 4.0}
    recs = [{"rows": [{"size": f"d{u.config['d_model']}l{u.config['n_layers']}", "diverged": u.config["d_model"] == 16
                       and u.config["n_layers"] == 1 and u.config["lr"] == 1e-2,
                       "val_loss": val[u.config["lr"]], "loss": 9.0 - val[u.config["lr"]]}]} for u in units]
    t = lm_table(recs, units, members)
    chosen = t[t["chosen"]].set_index(["ladder", "size"])["lr"]
    assert chosen[("width", "d32l2")] == 1e-2 and chosen[("depth", "d32l2")] == 1e-2
    assert chosen[("depth", "d16l1")] == 1e-3  # its better rate diverged
    assert t.groupby(["ladder", "size"])["chosen"].sum().eq(1).all()


def test_ladder_depth_is_exactly_proportional_and_tokens_follow_n():
    """Depth = width / ratio exactly (a width off the ratio is refused); tokens = r N in whole batches,
    capped by the epoch rule (MAX_EPOCHS passes over the smallest domain, times the domains)."""
    from scalinglaws.core.profiles import MAX_EPOCHS
    from scalinglaws.data import domain_table
    from scalinglaws.studies.resource.lm import epoch_cap, ladder_sizes, rung_tokens
    rows = ladder_sizes([16, 32, 48, 96], fixed_depth=2, depth_ratio=16, head_dim=8, context=64)
    depth = [r for r in rows if r["ladder"] == "depth"]
    assert {r["d_model"] / r["n_layers"] for r in depth} == {16.0}
    with pytest.raises(ValueError, match="multiples of depth_ratio"):
        ladder_sizes([16, 24], fixed_depth=2, depth_ratio=16, head_dim=8, context=64)
    assert rung_tokens(10_000, 20.0, 1024, 10**9) == (199_680, False)  # 200,000 tokens: 195 whole batches
    assert rung_tokens(10_000, 20.0, 1024, 100_000) == (99_328, True)   # 97 whole batches under the cap
    assert rung_tokens(10, 1.0, 1024, 10**9) == (1024, False)            # at least one batch
    t = domain_table(domains=["code", "algebra"])
    assert epoch_cap(["code", "algebra"]) == MAX_EPOCHS * t[t["split"] == "pretrain"]["tokens"].min() * 2


def test_lm_parts_and_min_steps_are_validated(scratch_roots):
    from scalinglaws.studies import resolve_params
    from scalinglaws.studies.resource import study as S
    p = resolve_params(S, "cpu", {})
    assert [r["size"] for r in S.rungs(p)][:1] == p["lm_parts"]["pilot"]  # the pilot: the smallest rung
    assert sorted(s for v in p["lm_parts"].values() for s in v) == sorted(r["size"] for r in S.rungs(p))
    with pytest.raises(ParameterError, match="every rung"):
        resolve_params(S, "cpu", {"lm_parts": {"a": ["d32l2"]}})
    with pytest.raises(ParameterError, match="part"):
        resolve_params(S, "cpu", {"part": "nosuch"})
    assert resolve_params(S, "cpu", {"part": S.TOY_PART})["part"] == "toys"  # the toy networks' part
    assert resolve_params(S, "smoke", {"part": S.TOY_PART, "lm_parts": None})["part"] == "toys"
    with pytest.raises(ParameterError, match="toy networks"):
        resolve_params(S, "cpu", {"lm_parts": {**p["lm_parts"], "toys": []}})
    with pytest.raises(ParameterError, match="lm_min_steps"):
        resolve_params(S, "cpu", {"lm_tokens_per_param": 1.0})
    with pytest.raises(ParameterError, match="lm_depth_ratio"):
        resolve_params(S, "cpu", {"lm_widths": [32, 40], "lm_parts": None})


def test_rates_are_bracketed_like_the_testbed(monkeypatch, scratch_roots):
    """A rung whose best rate is the grid's top gets the next rate above (the grid's ratio), up to
    lm_lr_bracket rounds; the table then marks its chosen rate inside or at the edge."""
    from scalinglaws.studies import resolve_params
    from scalinglaws.studies.resource import study as S
    from scalinglaws.core.sweep import Sweep
    p = resolve_params(S, "smoke", {"lm_widths": [16], "lm_parts": None, "lm_lrs": [1e-3, 2e-3], "lm_lr_bracket": 2})
    best = {"d16l2": 4e-3, "d16l1": 1e-4}  # d16l2: optimum one step above the grid; d16l1: far below it

    def fake(cfg):
        name = f"d{cfg['d_model']}l{cfg['n_layers']}"
        v = 5.0 + abs(math.log(cfg["lr"] / best[name]))
        return {"size": name, "diverged": False, "val_loss": v, "loss": v, "params_non_embedding": cfg["d_model"] ** 2 * cfg["n_layers"],
                "params_total": 0, "params_embedding": 0, "tokens": cfg["tokens"], "steps": 1, "wall_s": 1.0}
    monkeypatch.setattr(S, "_lm_unit", fake)
    recs, units, members = S.lm_sweep(Sweep("resource", "smoke"), p, ["d16l1", "d16l2"])
    t = S.lm_table(recs, units, members)
    rates = t.groupby("size")["lr"].apply(lambda v: sorted(set(v.round(12))))
    assert rates["d16l2"] == [1e-3, 2e-3, 4e-3, 8e-3]  # 4e-3 chosen, then 8e-3 tried: bracketed
    assert rates["d16l1"] == [2.5e-4, 5e-4, 1e-3, 2e-3]  # two rounds down, still at the edge: said so
    c = t[t["chosen"]].drop_duplicates("size").set_index("size")
    assert c.loc["d16l2", "lr"] == pytest.approx(4e-3) and c.loc["d16l2", "bracket"] == "inside"
    assert c.loc["d16l1", "lr"] == pytest.approx(2.5e-4) and c.loc["d16l1", "bracket"] == "low edge"


def test_rung_table_reads_old_and_new_ladders():
    from scalinglaws.studies.resource import chapter as C
    lm = pd.DataFrame([{"ladder": "depth", "size": s, "params_non_embedding": n, "lr": lr, "loss": L + (lr != best),
                        "chosen": lr == best, "diverged": False, "tokens": 1000}
                       for s, n, L, best in (("a", 10, 5.0, 2e-3), ("b", 20, 4.5, 4e-3)) for lr in (2e-3, 4e-3, 8e-3)])
    rt = C.rung_table(lm)
    assert list(rt["bracket"]) == ["low edge", "inside"] and rt["drop"].iloc[1] == pytest.approx(0.5)
    s = C.ladder_summary(rt)
    assert s["bracketed"] == "1 of 2" and s["falls_depth"].startswith("falls at every step") and "same 1,000" in s["tokens"]


def test_reference_frame_is_epochs_240_points():
    from scalinglaws.studies.resource.study import reference_frame
    from scalinglaws.core.paths import REPO_ROOT
    raw = pd.read_csv(REPO_ROOT / "data/reference/chinchilla_svg_extracted_data.csv")
    df = reference_frame()
    assert len(raw) == 245 and len(df) == 240
    assert df["loss"].max() <= raw["loss"].nlargest(5).min()  # the five highest-loss points are dropped
    kept = raw.sort_values("loss").iloc[:240]
    np.testing.assert_allclose(6 * df["N"] * df["D"], kept["Training FLOP"].to_numpy(), rtol=1e-12)


# ----------------------------------------------------------------------------- the study

@pytest.mark.parametrize("override", [
    {"widths": [0, 8]}, {"widths": [8]}, {"widths": "8"}, {"widths": [8, 8]}, {"widths": [4, 8.5]},
    {"thresholds": [1e-3, -1.0]}, {"threshold": 2.0}, {"threshold": 0.5}, {"tasks": ["cube"]},
    {"composite_tasks": ["square"]}, {"activations": ["gelu"]}, {"regs": [-0.1]}, {"lm_widths": [20]},
    {"compositions": ["diagonal"]}, {"lm_domains": ["poetry"]}, {"seeds": 0}, {"no_such_param": 1},
])
def test_bad_parameters_raise_and_write_nothing(override, scratch_roots):
    from scalinglaws.studies import resource
    res, work = scratch_roots
    with pytest.raises(ParameterError):
        resource.run("smoke", **override)
    assert not res.exists() and not work.exists()


def test_bad_profile_raises(scratch_roots):
    from scalinglaws.studies import resource
    with pytest.raises(ParameterError, match="profile"):
        resource.run("huge")
    assert not scratch_roots[0].exists()


def test_smoke_run_end_to_end_and_resume(scratch_roots, monkeypatch):
    from scalinglaws.core import paths
    from scalinglaws.studies import resolve_params
    from scalinglaws.core.results import open_store
    from scalinglaws.studies import resource
    from scalinglaws.core.sweep import Sweep

    res, work = scratch_roots
    shared_tokens = paths.WORK_DIR / "tokens"  # reuse the tokenised corpora cache (it is keyed by content)
    if shared_tokens.exists():
        work.mkdir(parents=True)
        (work / "tokens").symlink_to(shared_tokens)
    # the toy part first (it trains beside an LM part at cpu): its unit records, no table
    resource.run("smoke", part="toys")
    toy_dir = Sweep("resource", "smoke").dir
    toy_recs = {f: f.read_bytes() for kind in ("single", "composite") for f in (toy_dir / kind).glob("*.json")}
    from scalinglaws.studies.resource import study as RS
    planned = RS.plan(resolve_params(RS, "smoke", {}))
    assert len(toy_recs) == len(planned["single"]) + len(planned["composite"]) > 0
    assert not list((res / "resource").rglob("*.parquet")) and not (toy_dir / "lm").exists()
    store = resource.run("smoke")
    assert {f: f.read_bytes() for f in toy_recs} == toy_recs  # the final run reused them, untouched
    assert set(store.tables()) >= {"single", "composite", "lm_ladders", "fits", "shares", "additive"}
    prov = store.provenance()
    assert prov["config"]["tasks"] == ["square"] and prov["wall_time_s"] > 0
    single = store.read("single")
    p = resource.PROFILES["smoke"]
    n_nets = len(p["tasks"]) * len(p["activations"]) * len(p["widths"]) * len(p["regs"]) * p["seeds"]
    assert len(single) == n_nets * (len(p["thresholds"]) + 1)
    assert set(single["method"]) == {"weight", "ablation"}
    w = single[single["method"] == "weight"]
    assert (w["neurons"] <= w["width"]).all()
    fits = store.read("fits")
    assert {"single", "composite", "lm", "chinchilla"} <= set(fits["part"])
    assert fits[(fits["part"] == "single") & (fits["param"] == "exponent")]["estimate"].lt(0).all()
    lm = store.read("lm_ladders")
    assert set(lm["ladder"]) == {"width", "depth"} and lm["loss"].between(1, 10).all()
    assert open_store("resource", "best").profile == "smoke"
    # every fit has its trust verdict in words; the drawn fits have their bootstrap draws stored
    assert (fits["ok"] == (fits["why_not_ok"] == "")).all()
    samples = store.read("fit_samples")
    prim = fits[(fits["part"] == "single") & fits["primary"] & (fits["law"] == "power")]
    assert set(zip(samples.loc[samples["part"] == "single", "subject"], samples.loc[samples["part"] == "single", "activation"])) \
        == set(zip(prim["subject"], prim["activation"]))
    assert samples.groupby(["part", "subject", "activation", "law"], dropna=False)["draw"].nunique().eq(
        min(p["bootstrap"], resource.SAMPLE_DRAWS)).all()

    calls = []
    monkeypatch.setattr(Sweep, "_save", lambda self, *a, **k: calls.append(a))
    before = store.read("single")
    resource.run("smoke")
    assert calls == []  # every unit was already done
    pd.testing.assert_frame_equal(store.read("single"), before)


def test_chapter_functions_on_the_stored_cpu_tables():
    """The claims table from the shipped cpu results: verdicts that follow from the intervals; the
    chapter's figures draw."""
    import matplotlib
    matplotlib.use("Agg")
    from scalinglaws.core.paths import DATA_DIR
    from scalinglaws.core.results import ResultStore
    from scalinglaws.studies.resource import chapter as C

    store = ResultStore("resource", "cpu", root=DATA_DIR / "results")
    cfg = store.provenance()["config"]
    fits, shares, additive = store.read("fits"), store.read("shares"), store.read("additive")
    main = C.exponent(fits, "single", cfg["tasks"][0], activation=cfg["activations"][0], primary=True, law="power")
    lmtab = C.lm_exponent_table(fits, (-main.estimate, -main.hi, -main.lo))
    assert set(lmtab["ladder"]) <= {"width", "depth"} and len(lmtab)
    from scalinglaws.studies.resource.claims import claims as resource_claims
    claims = resource_claims({"fits": fits, "shares": shares, "additive": additive,
                              "lm_ladders": store.read("lm_ladders")}, "cpu")
    assert set(claims["verdict"]) <= {"holds", "refuted", "inconclusive"}
    first = claims.iloc[0]
    assert first["claim_id"] == f"single_{cfg['tasks'][0]}_{cfg['activations'][0]}"
    inside = main.lo <= -1 <= main.hi  # a fit that is not ok decides nothing; otherwise the interval does
    assert first["verdict"] == (("holds" if inside else "refuted") if main.ok else "inconclusive")
    prim = store.read("single")
    prim = prim[(prim.method == "weight") & (prim.threshold == cfg["threshold"])]
    assert C.single_figure(prim, fits, cfg["tasks"], cfg["activations"]).axes
    assert C.lm_figure(store.read("lm_ladders"), fits).axes


def test_figures_draw_bands_that_hold_the_fitted_curve():
    """With stored draws, every fitted curve of the single-subtask figure gets a shaded band, and
    the band contains the curve of the point estimate (draws scattered around it)."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.collections import PolyCollection
    from scalinglaws.studies.resource import figures as RF

    rng = np.random.default_rng(0)
    n = np.array([4, 8, 16, 32, 64.0])
    prim = pd.DataFrame({"task": "square", "activation": "relu", "neurons": n, "loss": 2.0 / n, "reg": 0.0})
    fits = pd.DataFrame([{"part": "single", "subject": "square", "activation": "relu", "primary": True,
                          "law": "power", "param": k, "estimate": v} for k, v in (("A", 2.0), ("alpha", 1.0))])
    draws = pd.DataFrame({"part": "single", "subject": "square", "activation": "relu", "law": "power",
                          "draw": range(100), "A": 2.0 * np.exp(0.05 * rng.standard_normal(100)),
                          "alpha": 1.0 + 0.02 * rng.standard_normal(100)})
    ax = RF.single_figure(prim, fits, ["square"], ["relu"], draws).axes[0]
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 1
    verts = bands[0].get_paths()[0].vertices
    mid = verts[(verts[:, 0] > 15) & (verts[:, 0] < 17)][:, 1]
    assert mid.min() < 2.0 / 16 < mid.max()
    assert not [c for c in RF.single_figure(prim, fits, ["square"], ["relu"]).axes[0].collections
                if isinstance(c, PolyCollection)]


def test_part_costs_price_the_rest_from_the_shipped_pilot(monkeypatch):
    """The cpu parts' plan from the committed pilot records: the pilot is done at no further cost;
    the others are priced by FLOPs at two measured rates (the recorded units', the testbed run's)."""
    from scalinglaws.core.paths import DATA_DIR
    from scalinglaws.studies.resource import parts
    monkeypatch.setenv("SCALINGLAWS_RESULTS", str(DATA_DIR / "results"))
    df = parts.part_costs("cpu")
    r = df.set_index("part")
    assert r.loc["pilot", "done"] == "d32l2" and r.loc["pilot", "predicted_low_s"] == 0 and r.loc["pilot", "spent_s"] > 0
    lm = r.drop(index="toys")
    done = lm["done"] == lm["rungs"]
    assert (lm.loc[done, "predicted_low_s"] == 0).all() and (lm.loc[done, "spent_s"] > 0).all()
    assert (lm.loc[~done, "predicted_low_s"] > 0).all()  # a part stopped midway is priced whole
    assert (r["predicted_high_s"] >= r["predicted_low_s"]).all()
    todo = lm[~done]
    np.testing.assert_allclose(todo["predicted_low_s"] / todo["testbed_low_s"],
                               df.attrs["testbed_flop_rate"] / df.attrs["flop_rate"], rtol=0.01)
    assert "--param part=d96l6" in r.loc["d96l6", "command"] and "--param part=toys" in r.loc["toys", "command"]
    n_toys = int(r.loc["toys", "rungs"].split()[0])
    assert n_toys == 46 and r.loc["toys", "predicted_low_s"] >= 0  # priced by the stored run's toy seconds
