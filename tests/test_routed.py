"""The routed model family: registered classes, checkpoints, counts, E = 1 vs dense, backends,
routing statistics and the trainer's auxiliary-loss hook."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from scalinglaws import models as M
from scalinglaws.models import routed as RT
from scalinglaws.models import routers as R
from scalinglaws.training import train
from scalinglaws.core.validation import ParameterError

X = torch.randint(0, 4096, (2, 24), generator=torch.Generator().manual_seed(0))


def _logits(model, x=X):
    with torch.no_grad():
        return model(input_ids=x).logits


@pytest.mark.parametrize("router", R.ROUTERS)
def test_checkpoint_round_trip_with_automodel(tmp_path, router):
    model = RT.build_routed("d24l2", 4, router, context=32, routed_every=1, experts_implementation="eager").eval()
    if router == "hash":  # a table that is not the seeded one: it must come from the checkpoint
        model.model.layers[0].mlp.gate.table.copy_(torch.arange(4096) % 4)
    ref = _logits(model)
    path = M.save_checkpoint(model, tmp_path / "ck", {"router": router})
    cfg = json.loads((path / "config.json").read_text())
    assert cfg["model_type"] == "scalinglaws_routed" and cfg["router"] == router
    assert cfg["architectures"] == ["RoutedForCausalLM"] and cfg["num_local_experts"] == 4
    assert (path / "model.safetensors").exists()
    loaded = AutoModelForCausalLM.from_pretrained(path, use_safetensors=True).eval()
    assert isinstance(loaded, RT.RoutedForCausalLM) and loaded.config.router == router
    assert type(loaded.model.layers[0].mlp.gate) is R.ROUTER_CLASSES[router]
    RT.set_experts_implementation(loaded, "eager")
    assert torch.equal(_logits(loaded), ref)
    if router == "hash":
        assert torch.equal(loaded.model.layers[0].mlp.gate.table, torch.arange(4096) % 4)
        assert torch.equal(loaded.model.layers[1].mlp.gate.table, model.model.layers[1].mlp.gate.table)
    # the project's loader picks the backend for the device and gives the same function
    again = RT.load_routed(path)
    assert again.config._experts_implementation == "eager"
    assert torch.equal(_logits(again), ref)


def test_checkpoint_never_loads_as_stock_mixtral_without_the_registration(tmp_path):
    path = M.save_checkpoint(RT.build_routed("d16l1", 2, "sbase", context=32), tmp_path / "ck", {})
    code = ("import sys; from transformers import AutoModelForCausalLM\n"
            f"try:\n    AutoModelForCausalLM.from_pretrained({str(path)!r})\n"
            "except ValueError as e:\n    print(e); sys.exit(3)\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 3, out.stdout + out.stderr  # an error, not a silent Mixtral
    assert "scalinglaws_routed" in out.stdout
    assert AutoConfig.for_model("scalinglaws_routed").__class__ is RT.RoutedConfig  # registered here


@pytest.mark.parametrize("size", ["d16l1", "d24l2", "d48l3"])
@pytest.mark.parametrize("router", R.ROUTERS)
@pytest.mark.parametrize("E, every", [(1, 2), (4, 2), (3, 1)])
def test_param_formula_matches_counted_tensors(size, router, E, every):
    cfg = RT.routed_config(size, E, router, routed_every=every)
    with torch.device("meta"):
        model = RT.RoutedForCausalLM(cfg)
    counted = M.count_params(model)
    f = RT.param_counts(cfg)
    assert counted["total"] == f["total"] and counted["non_embedding"] == f["non_embedding"]
    assert f["N"] == M.param_formula(M.model_config(size))["non_embedding"]
    assert f["routed_blocks"] == len(range(0, M.get_size(size).n_layers, every))
    # active parameters: the dense model's plus the routers (a token meets one expert)
    assert f["active"] == f["N"] + f["router"]
    if router == "hash":
        assert f["router"] == 0 and f["active"] == f["N"]
    # FLOPs: the dense model's plus the router matmuls
    dense_flops = M.flops_per_token(M.model_config(size))
    assert RT.flops_per_token(cfg) == dense_flops + 6 * f["router"]


def test_routed_blocks_every_other_block():
    cfg = RT.routed_config("d64l4", 8, "switch")
    assert RT.routed_layers(cfg) == [0, 2]
    with torch.device("meta"):
        model = RT.RoutedForCausalLM(cfg)
    kinds = [type(layer.mlp).__name__ for layer in model.model.layers]
    assert kinds == ["RoutedSparseMoeBlock", "DenseMLP", "RoutedSparseMoeBlock", "DenseMLP"]
    assert RT.routed_layers(RT.routed_config("d16l1", 2, "hash")) == [0]  # one block: still routed
    assert RT.routed_layers(RT.routed_config("d64l4", 2, "hash", routed_every=1)) == [0, 1, 2, 3]
    # every expert has the dense MLP's shape
    e = model.model.layers[0].mlp.experts
    s = M.get_size("d64l4")
    assert tuple(e.gate_up_proj.shape) == (8, 2 * s.d_ff, s.d_model) and tuple(e.down_proj.shape) == (8, s.d_model, s.d_ff)


@pytest.mark.parametrize("every", [1, 2])
def test_one_expert_equals_the_dense_model_with_copied_weights(every):
    dense = M.build_model("d24l2", 0, context=32).eval()
    ref = _logits(dense)
    for router in ("switch", "hash", "rlr"):  # gate 1: the dense function exactly
        m = RT.copy_dense_weights(RT.build_routed("d24l2", 1, router, seed=3, context=32, routed_every=every), dense)
        assert torch.allclose(_logits(m.eval()), ref, atol=1e-6, rtol=0), router
    # S-BASE scales the routed MLP by sigmoid(router logit): with a zero router, by 1/2 exactly
    m = RT.copy_dense_weights(RT.build_routed("d24l2", 1, "sbase", seed=3, context=32, routed_every=every), dense)
    assert not torch.allclose(_logits(m.eval()), ref, atol=1e-4)
    with torch.no_grad():
        for b in m.routed_blocks():
            b.gate.weight.zero_()
        half = M.build_model("d24l2", 0, context=32).eval()
        half.load_state_dict(dense.state_dict())
        for i in RT.routed_layers(m.config):
            half.model.layers[i].mlp.down_proj.weight.mul_(0.5)
    assert torch.allclose(_logits(m), _logits(half), atol=1e-6, rtol=0)


def test_upcycled_experts_equal_the_dense_model_for_unit_gates():
    dense = M.build_model("d24l2", 0, context=32).eval()
    m = RT.copy_dense_weights(RT.build_routed("d24l2", 4, "hash", context=32), dense).eval()
    assert torch.allclose(_logits(m), _logits(dense), atol=1e-6, rtol=0)


def test_experts_backends_agree_with_gradients():
    torch.manual_seed(0)
    outs = {}
    for impl in RT.EXPERTS_IMPLEMENTATIONS:
        m = RT.build_routed("d24l2", 4, "switch", context=32, experts_implementation=impl)
        m.train()
        logits = m(input_ids=X).logits
        logits.float().square().mean().backward()
        outs[impl] = (logits.detach(), m.model.layers[0].mlp.experts.gate_up_proj.grad.clone(),
                      m.model.layers[0].mlp.gate.weight.grad.clone())
    for a, b in zip(outs["eager"], outs["grouped_mm"]):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-4)


def test_build_is_seeded_and_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    a, b, c = (RT.build_routed("d16l1", 4, "rlr", seed=s) for s in (1, 1, 2))
    assert torch.equal(torch.random.get_rng_state(), state)
    for (_, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.equal(pa, pb)
    assert not torch.equal(a.model.layers[0].mlp.experts.down_proj, c.model.layers[0].mlp.experts.down_proj)


def test_routing_statistics_and_reset():
    m = RT.build_routed("d24l2", 4, "switch", context=32, routed_every=1).eval()
    m.reset_routing_stats()
    _logits(m)
    _logits(m)
    stats = m.routing_stats()
    assert [s["layer"] for s in stats] == [0, 1]
    for s in stats:
        assert s["tokens"] == 2 * X.numel() and sum(s["counts"]) == s["tokens"] and s["dropped_tokens"] == 0
        assert s["load_max_over_mean"] == pytest.approx(max(s["counts"]) / (s["tokens"] / 4))
        assert 1.0 <= s["load_max_over_mean"] <= 4.0 and 0 < s["entropy"] <= np.log(4) + 1e-6
    m.reset_routing_stats()
    assert all(s["tokens"] == 0 for s in m.routing_stats())
    h = RT.build_routed("d16l1", 4, "hash", context=32).eval()
    _logits(h)
    assert h.routing_stats()[0]["entropy"] == 0.0  # a fixed table: no router distribution


def test_hash_model_needs_input_ids_and_rlr_samples_only_in_training():
    h = RT.build_routed("d16l1", 4, "hash", context=32)
    emb = h.model.embed_tokens(X)
    with pytest.raises(ValueError, match="input_ids"):
        h(inputs_embeds=emb)
    r = RT.build_routed("d16l1", 8, "rlr", context=32)
    r.eval()
    assert torch.equal(_logits(r), _logits(r))
    r.train()
    torch.manual_seed(0)
    a = r.model.layers[0].mlp
    r(input_ids=X)
    first = a.gate._last["index"].clone()
    r(input_ids=X)
    assert not torch.equal(first, a.gate._last["index"])
    with pytest.raises(ValueError, match="routing_stats"):
        r(input_ids=X, output_router_logits=True)


def test_auxiliary_loss_hook_of_the_trainer():
    """train() calls model.auxiliary_loss(token_loss) after every forward, with the detached
    per-token loss of that forward, and backpropagates loss + aux (the reported loss is the CE)."""
    data = np.random.default_rng(0).integers(0, 64, 20_000).astype(np.uint16)
    model = M.build_model("d16l1", 0, context=32)
    calls = []

    def aux(token_loss):
        calls.append((tuple(token_loss.shape), token_loss.requires_grad))
        return 0.0 * model.lm_head.weight.sum() + 0.25

    model.auxiliary_loss = aux
    res = train(model, data, tokens=512 * 4, batch_tokens=512, micro_batch=8, seq_len=32, progress=False, log_every=1)
    assert calls == [((8, 32), False)] * 8  # 4 steps x 2 micro-batches of 8 rows
    plain = M.build_model("d16l1", 0, context=32)
    ref = train(plain, data, tokens=512 * 4, batch_tokens=512, micro_batch=8, seq_len=32, progress=False, log_every=1)
    # a constant aux term changes neither the gradients nor the reported CE
    assert np.allclose(res.curve["loss"], ref.curve["loss"], atol=1e-5)


@pytest.mark.parametrize("router", R.ROUTERS)
def test_routed_models_train_with_their_auxiliary_losses(router):
    data = np.random.default_rng(0).integers(0, 64, 20_000).astype(np.uint16)
    m = RT.build_routed("d16l1", 4, router, context=32)
    w0 = {n: p.detach().clone() for n, p in m.named_parameters()}
    m.reset_routing_stats()
    res = train(m, data, tokens=512 * 6, batch_tokens=512, seq_len=32, progress=False, log_every=2, lr=1e-2)
    assert np.isfinite(res.final_loss) and res.curve["loss"].iloc[-1] < res.curve["loss"].iloc[0]
    st = m.routing_stats()[0]
    assert st["tokens"] == 512 * 6 and st["dropped_tokens"] == 0
    if router in ("switch", "rlr"):
        assert st["aux_loss"] > 0
    else:
        assert st["aux_loss"] == 0.0
    if router != "hash":  # the router learns (RL-R: only through REINFORCE and balancing)
        name = "model.layers.0.mlp.gate.weight"
        assert not torch.equal(dict(m.named_parameters())[name], w0[name])


def test_routed_config_validation():
    with pytest.raises(ParameterError, match="router"):
        RT.routed_config("d16l1", 2, "moe")
    with pytest.raises(ParameterError, match="num_experts"):
        RT.routed_config("d16l1", 0, "switch")
    with pytest.raises(ParameterError, match="num_experts"):
        RT.routed_config("d16l1", 2.5, "switch")
    with pytest.raises(ParameterError, match="size"):
        RT.routed_config("d99l9", 2, "switch")
    with pytest.raises(ParameterError, match="unknown router option"):
        RT.routed_config("d16l1", 2, "switch", capacity_factor=1.25)
    with pytest.raises(ParameterError, match="sbase_assignment"):
        RT.routed_config("d16l1", 2, "sbase", sbase_assignment="auction")
    with pytest.raises(ParameterError, match="experts_implementation"):
        RT.build_routed("d16l1", 2, "switch", experts_implementation="batched_mm")
    with pytest.raises(ValueError, match="router"):
        RT.RoutedConfig(router="top2")


@pytest.mark.parametrize("router", R.ROUTERS)
def test_routed_checkpoint_scored_by_lm_eval_equals_our_evaluator(tmp_path, router):
    """A routed checkpoint of every router, loaded by lm-eval's `hf` model through
    AutoModelForCausalLM (the registration is all it needs), scores the same NLL as our evaluator."""

    from _toy import toy_texts, toy_tokenizer, write_jsonl_gz
    from scalinglaws.evaluation import evaluate_texts
    from scalinglaws.lmeval import run_lmeval

    tok = toy_tokenizer()
    texts = toy_texts(6, seed=7)
    model = RT.build_routed("d24l2", 4, router, vocab_size=len(tok), context=32, experts_implementation="eager").eval()
    ckpt = M.save_checkpoint(model, tmp_path / "ck", {"router": router}, tokenizer=tok)
    data = write_jsonl_gz(tmp_path / "toy.jsonl.gz", texts)
    ref = run_lmeval(ckpt, ["toy"], data_files={"toy": data}, batch_size=4).iloc[0]
    ours = evaluate_texts(model, tok, texts)
    assert ours["nll_sum"] == pytest.approx(ref["nll_sum"], rel=1e-4)
