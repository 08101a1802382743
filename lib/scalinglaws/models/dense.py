"""The model family: a ladder of small Llama-style decoders per profile, and safetensors checkpoints.

Every model is a `transformers.LlamaForCausalLM` (pre-norm RMSNorm, RoPE, SwiGLU MLP, no biases,
tied input/output embeddings, vocabulary 4096), so checkpoints load with
`AutoModelForCausalLM.from_pretrained` and with lm-eval's `hf` model, and mergekit can merge them.

Sizes are named `d{d_model}l{n_layers}`. The MLP width follows Llama: d_ff = 8/3 d_model rounded up
to a multiple of 16; heads have 8 (smoke), 16 (cpu) or 32-64 (gpu)
dimensions.

Parameter counts (no biases, n_kv_heads = n_heads, tied embeddings, V = vocab, d = d_model,
L = n_layers, f = d_ff):

    embedding      = V d                       (shared by the input lookup and the LM head)
    non_embedding  = L (4 d^2 + 3 d f + 2 d) + d
                     (q, k, v, o projections; gate, up, down; two RMSNorms per block; final norm)

`non_embedding` is Kaplan et al.'s N; scaling fits use it (and report the total alongside).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import pandas as pd
import torch

from scalinglaws.core.profiles import REGISTRY
from scalinglaws.data.tokenizer import VOCAB_SIZE
from scalinglaws.core.validation import ParameterError, check_choice, check_int, check_profile

EOS_ID = 0  # `<|endoftext|>` is the tokenizer's first special token (eos = bos = pad)


@dataclass(frozen=True)
class Size:
    d_model: int
    n_layers: int
    n_heads: int
    d_ff: int
    context: int

    @property
    def name(self) -> str:
        return f"d{self.d_model}l{self.n_layers}"


def _ff(d: int, multiple: int = 16) -> int:
    """Llama's SwiGLU width: 8/3 d (same FLOPs as a 4d GELU MLP), rounded up to `multiple`."""
    return multiple * math.ceil(8 * d / 3 / multiple)


def _size(d, layers, head_dim, context):
    return Size(d, layers, d // head_dim, _ff(d), context)


# The ladders are declared in the profile registry (scalinglaws.core.profiles); names are unique
# across profiles. See `ladder_table`.
LADDERS: dict[str, list[Size]] = {
    name: [_size(r.d_model, r.n_layers, r.head_dim, r.context) for r in prof.ladder]
    for name, prof in REGISTRY.items()}
RETIRED: dict[str, list[Size]] = {
    name: [_size(r.d_model, r.n_layers, r.head_dim, r.context) for r in prof.retired]
    for name, prof in REGISTRY.items()}
SIZES: dict[str, Size] = {s.name: s for group in (LADDERS, RETIRED) for ladder in group.values() for s in ladder}
assert len(SIZES) == sum(map(len, LADDERS.values())) + sum(map(len, RETIRED.values())), "size names must be unique"


def ladder_sizes(profile: str) -> list[Size]:
    """The sizes of a profile's ladder, smallest first, read from the registry itself (a profile
    registered after import, a test's, has its ladder too)."""
    return [_size(r.d_model, r.n_layers, r.head_dim, r.context) for r in REGISTRY[check_profile(profile)].ladder]


def ladder(profile: str) -> list[str]:
    """Size names of a profile's ladder, smallest first."""
    return [s.name for s in ladder_sizes(profile)]


def get_size(size: str | Size) -> Size:
    if isinstance(size, Size):
        return size
    return SIZES[check_choice("size", size, list(SIZES))]


def model_config(size: str | Size, vocab_size: int = VOCAB_SIZE, context: int | None = None,
                 eos_token_id: int = EOS_ID):
    """`LlamaConfig` of a named size. `vocab_size`/`context` overrides serve tests and toy runs."""
    from transformers import LlamaConfig

    s = get_size(size)
    check_int("vocab_size", vocab_size, minimum=2)
    ctx = s.context if context is None else check_int("context", context, minimum=2)
    return LlamaConfig(
        vocab_size=vocab_size, hidden_size=s.d_model, intermediate_size=s.d_ff,
        num_hidden_layers=s.n_layers, num_attention_heads=s.n_heads, num_key_value_heads=s.n_heads,
        max_position_embeddings=ctx, hidden_act="silu", rms_norm_eps=1e-5,
        tie_word_embeddings=True, attention_bias=False, mlp_bias=False,
        # pad_token_id=None: with a pad id, nn.Embedding(padding_idx=...) would zero the input-side
        # gradient of that row, and our pad would be EOS (id 0), which is a real input token.
        bos_token_id=eos_token_id, eos_token_id=eos_token_id, pad_token_id=None,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        initializer_range=0.02, use_cache=False,
    )


def build_model(size: str | Size, seed: int = 0, **config_overrides):
    """A freshly initialised model; the same (size, seed) gives bit-identical weights.
    The global RNG is left untouched (init runs inside `torch.random.fork_rng`)."""
    from transformers import LlamaForCausalLM

    check_int("seed", seed, minimum=0)
    config = model_config(size, **config_overrides)
    config._attn_implementation = "sdpa"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    return model


def _config_of(model_or_config):
    return getattr(model_or_config, "config", model_or_config)


def param_formula(config) -> dict:
    """Parameter counts from the formula in the module docstring (no model built)."""
    d, f, n = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    hd = getattr(config, "head_dim", None) or d // config.num_attention_heads
    kv = config.num_key_value_heads * hd
    attn = d * config.num_attention_heads * hd * 2 + d * kv * 2  # q, o; k, v
    non_emb = n * (attn + 3 * d * f + 2 * d) + d
    emb = config.vocab_size * d * (1 if config.tie_word_embeddings else 2)
    return {"total": non_emb + emb, "non_embedding": non_emb, "embedding": emb}


def count_params(model_or_config) -> dict:
    """{'total', 'non_embedding', 'embedding'}: counted on a model's tensors (tied weights once),
    or from the formula when given a config."""
    if not isinstance(model_or_config, torch.nn.Module):
        return param_formula(model_or_config)
    seen, total, emb = set(), 0, 0
    for name, p in model_or_config.named_parameters(remove_duplicate=False):
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        if "embed_tokens" in name or "lm_head" in name:
            emb += p.numel()
    return {"total": total, "non_embedding": total - emb, "embedding": emb}


def flops_per_token(config, seq_len: int | None = None) -> float:
    """Training FLOPs per token (forward + backward), Kaplan et al. 2020 Table 1 style:

        C = 6 (N + V d) + 6 L n_ctx d

    N = non-embedding parameters (each weight: 2 FLOPs forward, 4 backward), V d = the tied LM
    head's matmul (the input lookup is free, the output projection is not; Chinchilla counts it),
    6 L n_ctx d = attention scores QK^T and the weighted sum AV (2 L n_ctx d forward, times 3),
    with n_ctx = seq_len (default: the model context). N includes the RMSNorm gains (a <0.2%
    overcount); softmax, RoPE and the elementwise ops are neglected.
    """
    c = _config_of(config)
    n_ctx = seq_len or c.max_position_embeddings
    n = param_formula(c)["non_embedding"]
    return 6.0 * (n + c.vocab_size * c.hidden_size) + 6.0 * c.num_hidden_layers * n_ctx * c.hidden_size


def ladder_table(profile: str) -> pd.DataFrame:
    """One row per size of the profile: shape, parameter counts and FLOPs per token."""
    rows = []
    for s in ladder_sizes(profile):
        cfg = model_config(s)
        rows.append({"size": s.name, **asdict(s), **param_formula(cfg),
                     "flops_per_token": flops_per_token(cfg)})
    return pd.DataFrame(rows)
