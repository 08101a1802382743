"""Issue 27's routing regime machinery: the router options (learning-rate multiplier, unit gate), the
Hash control (`vocab`), resumable parts and unit records that survive the loss of `.work/`."""
from __future__ import annotations

import shutil

import pytest

from scalinglaws.core.paths import DATA_DIR
import torch

from scalinglaws.core.validation import ParameterError
from scalinglaws.models import dense as MD
from scalinglaws.models import routed as RT
from scalinglaws.models import routers as R
from scalinglaws.studies import resolve_params, validate_run
from scalinglaws.studies.routing import pilot as P
from scalinglaws.studies.routing import study as RS


@pytest.mark.parametrize("opts", [{"router_lr_mult": 0.0}, {"router_lr_mult": -2.0}, {"router_lr_mult": "10"},
                                  {"router_lr_mult": 1e6}, {"gate_scale": "half"}, {"gate_scale": None}])
def test_bad_router_options_are_one_parameter_error_before_compute(opts, scratch_roots):
    with pytest.raises(ParameterError) as e:
        validate_run(RS, "smoke", "local", {"router_options": opts})
    assert "\n" not in str(e.value) and next(iter(opts)) in str(e.value)
    assert not scratch_roots[0].exists() and not scratch_roots[1].exists()  # nothing written


def test_router_lr_mult_starts_the_same_router_and_moves_it_m_times_as_far_under_adam():
    torch.manual_seed(0)
    x = torch.randn(64, 16)
    moves = {}
    for m in (1.0, 10.0):
        r = R.SwitchRouter(16, 4, lr_mult=m)
        with torch.no_grad():
            r.weight.copy_(torch.full((4, 16), 0.01) / m)  # the same effective W = m x weight
        w0 = (r.weight * m).detach().clone()
        opt = torch.optim.Adam(r.parameters(), lr=1e-3)
        route = r(x)
        (route.gate.sum() + r.aux_loss()).backward()
        opt.step()
        moves[m] = (r.weight.detach() * m - w0).abs()
        assert torch.allclose(r.router_logits(x), x @ (r.weight.detach() * m).T, atol=1e-6)
    # Adam's first step moves every entry by lr (sign of its gradient): W moves m times as far
    assert torch.allclose(moves[10.0], 10 * moves[1.0], rtol=1e-3, atol=1e-9)


def test_unit_gate_is_one_and_still_trains_the_router():
    torch.manual_seed(0)
    x = torch.randn(32, 8)
    for cls in (R.SwitchRouter, R.SBaseRouter):
        r = cls(8, 4, gate_scale="unit")
        r.train()
        route = r(x)
        assert torch.allclose(route.gate, torch.ones(32))
        (route.gate * torch.arange(32.0)).sum().backward()
        assert r.weight.grad is not None and r.weight.grad.abs().sum() > 0
        raw = cls(8, 4)
        raw.load_state_dict(r.state_dict())
        assert not torch.allclose(raw(x).gate, torch.ones(32))  # the raw gate is not 1


@pytest.mark.parametrize("size,E", [("d16l1", 2), ("d32l2", 8), ("d48l3", 16)])
def test_vocab_control_adds_hash_parameters_without_routing(size, E):
    vocab = RT.build_routed(size, E, "vocab")
    dense = MD.build_model(size)
    cfg = vocab.config
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731 (tied embeddings counted once)
    added = count(vocab) - count(dense)
    k, d, f, V, r = RT.vocab_rank(cfg), cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size, len(RT.routed_layers(cfg))
    assert added == r * (V * k + k * d) == RT.param_counts(cfg)["non_embedding"] - RT.param_counts(cfg)["N"]
    hash_added = r * (E - 1) * 3 * d * f  # what Hash adds (no router parameters)
    assert hash_added == RT.param_counts(RT.routed_config(size, E, "hash"))["non_embedding"] - RT.param_counts(cfg)["N"]
    assert abs(added - hash_added) <= r * (V + d) / 2  # the nearest table width
    assert vocab.routing_stats() == []  # nothing is routed
    ids = torch.randint(0, V, (2, 8))
    assert torch.isfinite(vocab(input_ids=ids, labels=ids).loss)


def _params(**extra):
    sizes = RS.PROFILES["smoke"]["sizes"]
    parts = {"small": {"sizes": sizes[:1], "experts": [1, 2]}, "large": {"sizes": sizes[1:], "experts": [1, 2]}}
    return {"routers": ["hash", "vocab"], "experts": [1, 2], "tokens": 2048, "step_check": None, "parts": parts,
            "unit_records": "results", **extra}


def test_parts_must_cover_the_grid_once_and_part_must_name_one():
    p = _params()
    validate_run(RS, "smoke", "local", {**p, "part": "small"})
    bad = [{**p, "part": "medium"}, {**p, "parts": {"small": p["parts"]["small"]}},
           {**p, "parts": {**p["parts"], "again": p["parts"]["small"]}}, {"part": "small"},
           {**p, "parts": {"x": {"sizes": ["d16l1"]}}}]
    for o in bad:
        with pytest.raises(ParameterError):
            validate_run(RS, "smoke", "local", o)


def test_a_part_runs_only_its_units_redoes_nothing_and_resumes_from_committed_records(scratch_roots, one_thread,
                                                                                       monkeypatch):
    results, work = scratch_roots
    p = _params(part="small")
    RS.run("smoke", **p)
    records = results / "routing" / "smoke" / "units"
    params = resolve_params(RS, "smoke", p)
    mine = {u.key for u in RS.units(params, "small")}
    assert len(mine) == 3  # dense + hash + vocab at the small size
    assert {f.stem for f in (records / "dense").glob("*.json")} | {f.stem for f in (records / "routed").glob("*.json")} == mine
    assert len(list((records / "eval").glob("*.json"))) == len(list((records / "eval_docs").glob("*.json"))) == 3
    assert not (results / "routing" / "smoke" / "models.parquet").exists()  # a part writes no tables

    def boom(*a, **k):
        raise AssertionError("a recorded unit was redone")
    for fn in ("_train", "_evaluate", "_evaluate_docs"):
        monkeypatch.setattr(RS, fn, boom)
    RS.run("smoke", **p)  # the second run redoes nothing
    shutil.rmtree(work)  # a new machine: no checkpoints, no .work/, only the committed records
    RS.run("smoke", **p)
    assert not work.exists() or not any(work.rglob("*.safetensors"))


def test_pilot_settings_are_validated_before_compute(monkeypatch):
    # the cpu pilot trains at the testbed's stored cpu rates: read the shipped results (`make test`
    # points SCALINGLAWS_RESULTS at a scratch root); planning writes nothing
    monkeypatch.setenv("SCALINGLAWS_RESULTS", str(DATA_DIR / "results"))
    with pytest.raises(ParameterError):
        P.parse_settings("baseline,nope")
    with pytest.raises(ParameterError):
        P.parse_settings("")
    assert [s for s, *_ in P.plan("smoke", "steps")] == ["steps"] * (1 + len(P.ROUTERS) + len(P.CONTROLS))
    assert len(P.plan("cpu", "steps")) == 5  # the cpu profile's parts and step check do not leak into the pilot
    long = P.plan("smoke", "lr_mult_long")
    assert [p["tokens"] for _, _, p, _ in long] == [524_288] * 3 and long[1][2]["router_options"] == {"router_lr_mult": 10.0}


def test_the_pilot_trains_scores_and_records_its_table(scratch_roots, one_thread, monkeypatch):
    """`routing-pilot` end to end on a tiny budget: its table (one row per setting and router, the
    dense model's gap 0), each learned router's entropy ratio in (0, 1], and its provenance record
    (the registry test asks every stored command table for one)."""
    import math
    monkeypatch.setitem(P.PILOT, "tokens", 8192)
    monkeypatch.setitem(P.PILOT, "eval_tokens", 512)
    monkeypatch.setattr(RS, "learning_rates", lambda params, profile: {P.PILOT["size"]: 3e-3})
    store = P.run_pilot("smoke", "baseline")
    df = store.read(P.TABLE)
    assert list(df.columns) == P.COLUMNS
    assert list(df["router"]) == [RS.DENSE, *P.ROUTERS] and set(df["setting"]) == {"baseline"}
    assert df.loc[df["router"] == RS.DENSE, "gap_to_dense"].item() == 0.0
    assert all(math.isfinite(v) and v > 0 for v in df["L_se"])
    learned = df[df["router"] != RS.DENSE]
    assert ((learned["entropy_ratio_eval"] > 0) & (learned["entropy_ratio_eval"] <= 1 + 1e-9)).all()
    assert (df["steps"] == 8192 // 2048).all()
    rec = store.provenance()["derived"][P.TABLE]
    assert rec["command"].startswith("python -m scalinglaws routing-pilot --profile smoke --settings baseline")
