"""Model ladder, parameter/FLOP accounting and safetensors checkpoints."""
from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaForCausalLM

from scalinglaws.models import (SIZES, build_model, count_params, flops_per_token, ladder, ladder_table,
                                load_checkpoint, load_meta, model_config, save_checkpoint)
from scalinglaws.core.validation import ParameterError


def _meta_model(config):
    with torch.device("meta"):
        return LlamaForCausalLM(config)


@pytest.mark.parametrize("size", list(SIZES))
def test_param_formula_matches_counted_tensors(size):
    cfg = model_config(size)
    model = _meta_model(cfg)
    counted = count_params(model)
    assert counted == count_params(cfg)
    # embedding counted once although tied (input lookup and LM head share one tensor)
    assert model.lm_head.weight is model.model.embed_tokens.weight
    assert counted["embedding"] == 4096 * cfg.hidden_size
    assert counted["total"] == sum(p.numel() for p in model.parameters())


def test_hand_computed_count():
    # d32l2: 2 blocks * (4*32^2 attention + 3*32*96 SwiGLU + 2*32 norms) + 32 final norm
    assert count_params(model_config("d32l2"))["non_embedding"] == 2 * (4 * 1024 + 3 * 32 * 96 + 64) + 32


def test_ladder_spans():
    for profile, span in (("cpu", 16), ("gpu", 32)):
        n = ladder_table(profile)["non_embedding"].tolist()
        assert n == sorted(n) and len(set(n)) == len(n)
        assert n[-1] / n[0] >= span
    assert len(ladder("smoke")) == 2
    assert 20_000 <= ladder_table("cpu")["non_embedding"].min() <= 40_000
    assert ladder_table("gpu")["non_embedding"].max() >= 16e6


def test_llama_architecture():
    cfg = model_config("d64l4")
    assert cfg.vocab_size == 4096 and cfg.tie_word_embeddings and cfg.hidden_act == "silu"
    assert cfg.hidden_size % cfg.num_attention_heads == 0
    assert cfg.intermediate_size % 16 == 0 and cfg.intermediate_size >= 8 * cfg.hidden_size / 3
    with pytest.raises(ParameterError):
        model_config("d7l7")


def test_flops_per_token_counts_matmuls():
    cfg = model_config("d48l3")
    model = _meta_model(cfg)
    # independent count: every Linear weight (incl. the tied LM head) costs 6 FLOPs per token,
    # attention QK^T and AV cost 2 * 2 * ctx * d per layer forward, times 3 for the backward
    matmul = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    expect = 6 * matmul + 3 * 2 * cfg.num_hidden_layers * cfg.max_position_embeddings * cfg.hidden_size
    # the formula uses N (norm gains included: 6 FLOPs each, a 0.1% overcount at this size)
    norms = sum(p.numel() for n, p in model.named_parameters() if "norm" in n)
    assert flops_per_token(cfg) == expect + 6 * norms
    assert flops_per_token(cfg, seq_len=16) < flops_per_token(cfg)


def test_build_model_is_seeded():
    a, b, c = (build_model("d16l1", s) for s in (3, 3, 4))
    for (_, pa), (_, pb), (_, pc) in zip(a.named_parameters(), b.named_parameters(), c.named_parameters()):
        assert torch.equal(pa, pb)
    assert not torch.equal(a.model.embed_tokens.weight, c.model.embed_tokens.weight)


def test_checkpoint_round_trip(tmp_path):
    model = build_model("d16l1", 0, context=32)
    x = torch.randint(0, 4096, (2, 20))
    with torch.no_grad():
        ref = model(input_ids=x).logits
    path = tmp_path / "ck"
    save_checkpoint(model, path, {"size": "d16l1", "step": 7})
    names = {p.name for p in path.iterdir()}
    assert "model.safetensors" in names and "meta.json" in names
    assert not [n for n in names if n.endswith((".bin", ".pt", ".pth", ".pkl"))]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dirs left
    loaded = AutoModelForCausalLM.from_pretrained(path, use_safetensors=True)
    with torch.no_grad():
        assert torch.equal(loaded(input_ids=x).logits, ref)
    assert load_meta(path) == {"size": "d16l1", "step": 7}
    # overwriting replaces the checkpoint atomically
    save_checkpoint(build_model("d16l1", 1, context=32), path, {"step": 8})
    assert load_meta(path) == {"step": 8}
    with torch.no_grad():
        assert not torch.equal(load_checkpoint(path)(input_ids=x).logits, ref)


def test_load_refuses_pickle(tmp_path):
    path = tmp_path / "ck"
    save_checkpoint(build_model("d16l1", 0), path, {})
    (path / "pytorch_model.bin").write_bytes(b"not really")
    with pytest.raises(ParameterError):
        load_checkpoint(path)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing")
    json.dumps(ladder_table("cpu").to_dict())  # tables are plain data


@pytest.mark.parametrize("header_len", [0x1780, 0x4B50])  # low bytes 0x80 (a pickle's) and b"PK" (a zip's)
def test_safetensors_whose_header_length_starts_like_a_pickle_is_accepted(tmp_path, header_len):
    """Found by the gpu rehearsal: a real routed checkpoint with a 6,016-byte header starts with 0x80
    and was refused as a pickle. The file's shape decides, not its first byte."""
    from safetensors.torch import load_file, save_file

    from scalinglaws.models.checkpoints import check_safetensors_header
    path = tmp_path / "model.safetensors"
    t = {"w": torch.arange(6, dtype=torch.float32)}
    for pad in range(header_len - 120, header_len):  # grow the metadata until the header has the wanted length
        save_file(t, path, metadata={"pad": "x" * pad})
        if int.from_bytes(path.read_bytes()[:8], "little") == header_len:
            break
    else:
        pytest.skip("could not produce the header length")
    assert path.read_bytes()[:1] == b"\x80" or path.read_bytes()[:2] == b"PK"
    check_safetensors_header(path)  # accepted
    assert torch.equal(load_file(path)["w"], t["w"])
    pickle_path = tmp_path / "pickle.safetensors"
    torch.save(t, pickle_path)  # a zip archive (PK) with a safetensors name: still refused
    with pytest.raises(ParameterError, match="zip"):
        check_safetensors_header(pickle_path)
