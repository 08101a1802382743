"""The routed model family: the dense ladder with top-1 routed SwiGLU experts (Clark et al. 2022).

A routed model of size `s` with E experts is the dense model `models.model_config(s)` in which the
MLP of every other block is replaced by E experts of the dense MLP's shape (SwiGLU, d -> d_ff ->
d) and a router that sends each token to exactly one of them (top-1). A token therefore meets the
same weights and FLOPs as in the dense model, plus the router's E x d matrix; Clark's N is the
dense model's non-embedding parameter count, and a routed model is placed at (N, E).

Which blocks are routed: every other one, `routed_every = 2` (Clark et al.'s routing frequency
1/2, as in GShard and Switch), counted from the first block: blocks 0, 2, 4, ... are routed, so a
one-block model (the smoke ladder's d16l1) has one routed block and the cpu ladder's 2-4 block
models have 1-2. `routed_every = 1` routes every block. Routers (`scalinglaws.routers`): S-BASE,
RL-R, Hash, Switch; no token is ever dropped (no capacity limit), so "dropped tokens" is 0.

Implementation: transformers' Mixtral classes (attention, RMSNorm, RoPE, decoder layer, causal-LM
head and loss) with

    RoutedConfig(MixtralConfig)          model_type "scalinglaws_routed": router kind and options
                                         (hash seed, Sinkhorn tolerance, loss coefficients),
                                         routed_every, num_experts_per_tok = 1
    RoutedExperts                        the E SwiGLU experts as fused 3-D tensors (Mixtral's
                                         layout, gate_up_proj (E, 2 f, d), down_proj (E, d, f)),
                                         with transformers' experts backends (eager / grouped_mm)
    RoutedSparseMoeBlock                 router (`.gate`) + experts + routing statistics
    RoutedModel / RoutedForCausalLM      the stacks; the model's forward hands input_ids to the
                                         hash routers

Both classes are registered with AutoConfig / AutoModelForCausalLM when this module is imported,
so a checkpoint (`models.save_checkpoint`, safetensors) reloads with `AutoModelForCausalLM` (or
`models.load_checkpoint`) as the same routed model: router kind and options live in config.json,
the hash table in model.safetensors. Without this module imported, loading fails loudly
("unknown model type") instead of silently loading Mixtral's stock softmax router.

Training: `model.auxiliary_loss(token_loss)` (the trainer's generic hook,
`training.train`) returns the mean over routed blocks of each router's auxiliary loss (Switch:
balance + z-loss; RL-R: REINFORCE with reward -token_loss + balance; S-BASE, Hash: 0).
Statistics (`routing_stats`, `reset_routing_stats`), accumulated over every forward since the
last reset, per routed block: tokens per expert, load max/mean (over the accumulated counts and
averaged per forward), dropped tokens (0), mean router entropy (nats, of softmax(logits); 0 for
Hash) and the mean auxiliary loss.

Parameter counts (d = d_model, f = d_ff, R = routed blocks, E experts; router d E per routed
block for learned routers, 0 for Hash, whose table is a buffer):

    N                  = dense non-embedding parameters (`models.param_formula`)
    non_embedding      = N + R ((E - 1) 3 d f + router)
    active             = N + R router                 (parameters a token meets)
    total              = non_embedding + V d          (tied embeddings)
    FLOPs per token    = models.flops_per_token(dense) + 6 R d E  (learned routers)

Regime options (issue 27; `router_lr_mult`, `gate_scale`, in `scalinglaws.routers`): a router
learning-rate multiplier (a reparameterisation of W, no trainer change) and a unit gate (value 1,
gradient of log gate) for Switch and S-BASE, whose raw gates (~1/E, ~0.5) scale the expert output
down early; both default to the plain router. The Hash control `router="vocab"` (`VocabTableMLP`):
the routed blocks keep the dense MLP and add a learned (V, k) per-token-id table projected to d,
with as many parameters as Hash adds (k = `vocab_rank`); no routing, no routing statistics.

E = 1 is not the dense model for every router: with the dense weights copied in
(`copy_dense_weights`), Switch (gate = softmax over one expert = 1), Hash and RL-R (gate 1) compute
the dense function exactly, S-BASE scales the block's MLP output by sigmoid(router logit).
"""
from __future__ import annotations

import math

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, MixtralConfig
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.integrations import use_experts_implementation
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.models.mixtral import modeling_mixtral as MX

from scalinglaws.core import validation as V
from scalinglaws.models import checkpoints as CK
from scalinglaws.models import dense as M
from scalinglaws.models import routers as R

MODEL_TYPE = "scalinglaws_routed"
EXPERTS_IMPLEMENTATIONS = ("eager", "grouped_mm")
DENSE = "dense"  # the E = 1 model's name in the routing study's tables
# models of the routed family that do not route, with their display names: "vocab", the Hash
# control (`VocabTableMLP`)
CONTROLS = {"vocab": "vocab control (Hash's parameters, no routing)"}
# the routing part of a RoutedConfig besides the router options (`routing_fields`)
ROUTING_FIELDS = ("router", "num_local_experts", "num_experts_per_tok", "routed_every", "hash_seed")


# Router facts, derived from the router registry (`routers.ROUTER_CLASSES`) when asked, so that a
# router registered later (a test's temporary one) is seen everywhere.
def kinds() -> tuple[str, ...]:
    """Every model kind of the routed family: the registered routers, then the controls."""
    return R.routers() + tuple(CONTROLS)


def display_names() -> dict[str, str]:
    """{kind: the name the book shows}: the dense model, every registered router, the controls."""
    return {DENSE: DENSE, **R.display_names(), **CONTROLS}


def router_options() -> tuple[str, ...]:
    """The names of every router option (`routers.options()`)."""
    return tuple(R.options())


def identity_options() -> dict[str, object]:
    """The options left out of a unit's key at their default (`routers.Option.keyed` False)."""
    return {name: o.default for name, o in R.options().items() if not o.keyed}


def routed_fields() -> tuple[str, ...]:
    """What a RoutedConfig adds to the dense size's config (`routing_fields`)."""
    return ROUTING_FIELDS + router_options()


# import-time snapshots of the shipped registry, for readers (the functions above are the source)
ROUTER_OPTIONS = router_options()
KINDS = kinds()
ROUTED_FIELDS = routed_fields()


class RoutedConfig(MixtralConfig):
    """MixtralConfig plus the router (see the module docstring); num_experts_per_tok is 1."""

    model_type = MODEL_TYPE

    router: str = "switch"
    routed_every: int = 2
    hash_seed: int = 0
    dense_size: str | None = None
    # one field per router option, declared by the routers (`routers.Option`: name, type, default);
    # the class body is a namespace, so the fields are added to it before the dataclass is made
    __annotations__.update({o.name: o.type for o in R.options().values()})
    vars().update({o.name: o.default for o in R.options().values()})

    def __post_init__(self, **kwargs):
        if self.router not in kinds():
            raise ValueError(f"router={self.router!r} is not one of {list(kinds())}")
        super().__post_init__(**kwargs)


def routed_layers(config) -> list[int]:
    """Indices of the routed blocks: 0, k, 2k, ... with k = routed_every."""
    return list(range(0, config.num_hidden_layers, config.routed_every))


# ---------------------------------------------------------------------------------------------
# modules


class DenseMLP(nn.Module):
    """The dense SwiGLU MLP of the unrouted blocks (Llama's: gate_proj, up_proj, down_proj)."""

    def __init__(self, config):
        super().__init__()
        d, f = config.hidden_size, config.intermediate_size
        self.gate_proj = nn.Linear(d, f, bias=False)
        self.up_proj = nn.Linear(d, f, bias=False)
        self.down_proj = nn.Linear(f, d, bias=False)
        self.act_fn = ACT2FN[config.hidden_act]

    def forward(self, x):
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))


def vocab_rank(config) -> int:
    """k, the width of the vocabulary control's table: the k whose V k + k d parameters per block
    are nearest to what Hash adds per routed block, (E - 1) 3 d f (at least 1)."""
    d, f, E, V = config.hidden_size, config.intermediate_size, config.num_local_experts, config.vocab_size
    return max(1, round((E - 1) * 3 * d * f / (V + d)))


class VocabTableMLP(DenseMLP):
    """The Hash control (issue 27): the dense MLP plus a learned per-token-id vector, no routing.

    y = MLP(x) + P t[id], t: a (V, k) table indexed by the input token id, P: (d, k), k =
    `vocab_rank(config)`. It adds as many parameters per block as Hash with E experts adds
    ((E - 1) 3 d f, to one row of the table), all of them conditioned on the token id, and every
    token meets the same dense MLP: no routing. So Hash - dense = (routing by id) + (more
    parameters); vocab - dense = more vocabulary-conditioned parameters alone; Hash - vocab
    separates the two. The model's forward hands it the input ids, as it does the hash router."""

    def __init__(self, config):
        super().__init__(config)
        self.rank = vocab_rank(config)
        self.table = nn.Embedding(config.vocab_size, self.rank)
        self.proj = nn.Linear(self.rank, config.hidden_size, bias=False)
        self.token_ids = None

    def forward(self, x):
        if self.token_ids is None:
            raise ValueError("the vocabulary control needs the input token ids: call the model with input_ids")
        ids = self.token_ids.reshape(x.shape[:-1]).to(x.device)
        return super().forward(x) + self.proj(self.table(ids))


@use_experts_implementation
class RoutedExperts(nn.Module):
    """E SwiGLU experts stored as 3-D tensors (Mixtral's layout). The eager forward sorts the
    tokens by expert and runs one pair of matmuls per expert; `config._experts_implementation =
    "grouped_mm"` switches to transformers' grouped-GEMM kernel (the fast path on CUDA)."""

    def __init__(self, config):
        super().__init__()
        self.num_experts = config.num_local_experts
        self.hidden_dim = config.hidden_size
        self.intermediate_dim = config.intermediate_size
        self.gate_up_proj = nn.Parameter(torch.empty(self.num_experts, 2 * self.intermediate_dim, self.hidden_dim))
        self.down_proj = nn.Parameter(torch.empty(self.num_experts, self.hidden_dim, self.intermediate_dim))
        self.act_fn = ACT2FN[config.hidden_act]

    def forward(self, hidden_states, top_k_index, top_k_weights):
        T, k = top_k_index.shape
        flat = top_k_index.reshape(-1)
        order = torch.argsort(flat, stable=True)
        counts = torch.bincount(flat, minlength=self.num_experts).tolist()  # one host sync
        x = hidden_states[order // k]
        outs, start = [], 0
        for e, n in enumerate(counts):
            if n:
                gate, up = F.linear(x[start:start + n], self.gate_up_proj[e]).chunk(2, dim=-1)
                outs.append(F.linear(self.act_fn(gate) * up, self.down_proj[e]))
                start += n
        y = torch.cat(outs) * top_k_weights.reshape(-1)[order].unsqueeze(-1).to(outs[0].dtype)
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(order.numel(), device=order.device)
        return y[inverse].view(T, k, -1).sum(dim=1).to(hidden_states.dtype)


def make_router(config, layer_idx: int) -> R.Router:
    """The router of one routed block, from the config: dispatch by the router registry
    (`routers.ROUTER_CLASSES`, each class builds itself with `from_config`)."""
    if config.router not in R.ROUTER_CLASSES:
        raise ValueError(f"router={config.router!r} is not one of {list(R.routers())}")
    return R.ROUTER_CLASSES[config.router].from_config(config, layer_idx)


class RoutedSparseMoeBlock(nn.Module):
    """Router (`gate`) + experts; accumulates routing statistics (no gradient)."""

    def __init__(self, config, layer_idx: int):
        super().__init__()
        self.layer_idx = layer_idx
        self.num_experts = config.num_local_experts
        self.gate = make_router(config, layer_idx)
        self.experts = RoutedExperts(config)
        self.token_ids = None  # set by RoutedModel.forward for the hash router
        self._stats = None

    def forward(self, hidden_states):
        B, S, d = hidden_states.shape
        x = hidden_states.reshape(-1, d)
        route = self.gate(x, self.token_ids)
        y = self.experts(x, route.index.unsqueeze(1), route.gate.unsqueeze(1))
        self._record(route)
        return y.reshape(B, S, d)

    @torch.no_grad()
    def _record(self, route):
        idx = route.index
        if self._stats is None or self._stats["counts"].device != idx.device:
            self.reset_stats(idx.device)
        s = self._stats
        c = torch.bincount(idx, minlength=self.num_experts)
        s["counts"] += c
        s["forwards"] += 1
        s["batch_ratio"] += c.max().double() / (c.sum().double() / self.num_experts)
        if route.logits is not None:
            logp = torch.log_softmax(route.logits.float(), dim=-1)
            s["entropy"] += -(logp.exp() * logp).sum().double()

    def reset_stats(self, device=None):
        device = device or self.experts.gate_up_proj.device
        z = lambda dt: torch.zeros((), dtype=dt, device=device)  # noqa: E731
        self._stats = {"counts": torch.zeros(self.num_experts, dtype=torch.long, device=device),
                       "forwards": z(torch.long), "batch_ratio": z(torch.float64),
                       "entropy": z(torch.float64), "aux": z(torch.float64), "aux_calls": z(torch.long)}

    def stats(self) -> dict:
        """Statistics since the last reset (see the module docstring)."""
        if self._stats is None:
            self.reset_stats()
        s = {k: v.cpu() for k, v in self._stats.items()}
        counts = s["counts"].numpy().astype(int)
        tokens, fw = int(counts.sum()), int(s["forwards"])
        mean = tokens / self.num_experts
        return {"layer": self.layer_idx, "router": self.gate.kind, "experts": self.num_experts,
                "tokens": tokens, "counts": counts.tolist(),
                "load_max_over_mean": float(counts.max() / mean) if tokens else math.nan,
                "batch_load_max_over_mean": float(s["batch_ratio"]) / fw if fw else math.nan,
                "dropped_tokens": 0,
                "entropy": float(s["entropy"]) / tokens if (tokens and self.gate.learned) else 0.0,
                "aux_loss": float(s["aux"]) / int(s["aux_calls"]) if int(s["aux_calls"]) else math.nan}


class RoutedDecoderLayer(MX.MixtralDecoderLayer):
    """Mixtral's pre-norm block with a routed or a dense SwiGLU MLP (forward inherited)."""

    def __init__(self, config, layer_idx: int):
        GradientCheckpointingLayer.__init__(self)
        self.hidden_size = config.hidden_size
        self.self_attn = MX.MixtralAttention(config, layer_idx)
        routed = layer_idx in routed_layers(config)
        if not routed:
            self.mlp = DenseMLP(config)
        elif config.router in CONTROLS:
            self.mlp = VocabTableMLP(config)
        else:
            self.mlp = RoutedSparseMoeBlock(config, layer_idx)
        self.input_layernorm = MX.MixtralRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.post_attention_layernorm = MX.MixtralRMSNorm(config.hidden_size, eps=config.rms_norm_eps)


class _RoutedInit:
    """Config class and weight init shared by RoutedModel and RoutedForCausalLM."""

    config_class = RoutedConfig
    _no_split_modules = ["RoutedDecoderLayer"]
    _can_record_outputs = {"hidden_states": RoutedDecoderLayer, "attentions": MX.MixtralAttention}

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        std = self.config.initializer_range
        if isinstance(module, RoutedExperts):
            init.normal_(module.gate_up_proj, mean=0.0, std=std)
            init.normal_(module.down_proj, mean=0.0, std=std)
        elif isinstance(module, R.HashRouter):
            init.copy_(module.table, R.hash_table(module.vocab_size, module.num_experts, module.seed))
        elif isinstance(module, R.Router) and module.learned:  # W = lr_mult x weight starts N(0, std)
            init.normal_(module.weight, mean=0.0, std=std / module.lr_mult)


class RoutedModel(_RoutedInit, MX.MixtralModel):
    def __init__(self, config: RoutedConfig):
        MX.MixtralPreTrainedModel.__init__(self, config)
        self.padding_idx = config.pad_token_id
        self.vocab_size = config.vocab_size
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, self.padding_idx)
        self.layers = nn.ModuleList([RoutedDecoderLayer(config, i) for i in range(config.num_hidden_layers)])
        self.norm = MX.MixtralRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.rotary_emb = MX.MixtralRotaryEmbedding(config=config)
        self.gradient_checkpointing = False
        self.post_init()

    def routed_blocks(self) -> list[RoutedSparseMoeBlock]:
        return [layer.mlp for layer in self.layers if isinstance(layer.mlp, RoutedSparseMoeBlock)]

    def id_blocks(self) -> list[nn.Module]:
        """The blocks that read the input token ids (hash routers, the vocabulary control)."""
        return [layer.mlp for layer in self.layers if hasattr(layer.mlp, "token_ids")]

    def forward(self, input_ids=None, *args, **kwargs):
        blocks = self.id_blocks()
        for b in blocks:
            b.token_ids = input_ids
        try:
            return super().forward(input_ids, *args, **kwargs)
        finally:
            for b in blocks:
                b.token_ids = None


class RoutedForCausalLM(_RoutedInit, MX.MixtralForCausalLM):
    def __init__(self, config: RoutedConfig):
        MX.MixtralPreTrainedModel.__init__(self, config)
        self.model = RoutedModel(config)
        self.vocab_size = config.vocab_size
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.router_aux_loss_coef = config.router_aux_loss_coef
        self.num_experts = config.num_local_experts
        self.num_experts_per_tok = config.num_experts_per_tok
        self.post_init()

    def forward(self, *args, output_router_logits=False, **kwargs):
        if output_router_logits:
            raise ValueError("routed models report their routing through routing_stats() and their "
                             "auxiliary losses through auxiliary_loss(), not output_router_logits")
        return super().forward(*args, output_router_logits=False, **kwargs)

    def routed_blocks(self) -> list[RoutedSparseMoeBlock]:
        return self.model.routed_blocks()

    def auxiliary_loss(self, token_loss: torch.Tensor) -> torch.Tensor:
        """The trainer's hook (`training.train`): mean over routed blocks of each router's
        auxiliary loss for the last training forward, given its per-token loss (B, S)."""
        blocks = self.routed_blocks()
        flat = token_loss.detach().reshape(-1)
        terms = [b.gate.aux_loss(flat) for b in blocks]
        with torch.no_grad():
            for b, t in zip(blocks, terms):
                if b._stats is not None:
                    b._stats["aux"] += t.detach().double()
                    b._stats["aux_calls"] += 1
        return torch.stack(terms).mean() if terms else torch.zeros((), device=token_loss.device)

    def reset_routing_stats(self) -> None:
        for b in self.routed_blocks():
            b.reset_stats()

    def routing_stats(self) -> list[dict]:
        return [b.stats() for b in self.routed_blocks()]


AutoConfig.register(MODEL_TYPE, RoutedConfig, exist_ok=True)
AutoModelForCausalLM.register(RoutedConfig, RoutedForCausalLM, exist_ok=True)


# ---------------------------------------------------------------------------------------------
# building, counting


def routed_config(size, num_experts: int, router: str, routed_every: int = 2, hash_seed: int = 0,
                  vocab_size: int = M.VOCAB_SIZE, context: int | None = None, **router_options) -> RoutedConfig:
    """The RoutedConfig of dense size `size` with `num_experts` experts and router `router`;
    `router_options` set the options the routers declare (`routers.options()`: sinkhorn_tol,
    sinkhorn_max_iter, sbase_assignment, balance_coef, z_coef, rl_coef, router_lr_mult, gate_scale),
    checked by their declarations."""
    V.check_choice("router", router, kinds())
    V.check_int("num_experts", num_experts, minimum=1)
    V.check_int("routed_every", routed_every, minimum=1)
    V.check_int("hash_seed", hash_seed, minimum=0)
    R.check_options(router_options)  # names and values, each router's declared checks
    dense = M.model_config(size, vocab_size=vocab_size, context=context)
    keys = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads", "max_position_embeddings", "hidden_act", "rms_norm_eps",
            "tie_word_embeddings", "bos_token_id", "eos_token_id", "pad_token_id", "rope_parameters",
            "initializer_range", "use_cache")
    return RoutedConfig(**{k: getattr(dense, k) for k in keys}, head_dim=dense.hidden_size // dense.num_attention_heads,
                        num_local_experts=num_experts, num_experts_per_tok=1, router_jitter_noise=0.0,
                        output_router_logits=False, sliding_window=None, router=router,
                        routed_every=routed_every, hash_seed=hash_seed, dense_size=M.get_size(size).name,
                        **router_options)


# options added after the studies' first runs (`routers.Option.keyed` False: router_lr_mult 1.0,
# gate_scale "raw"), at the values that make them no-ops (the model and its training are bit for bit
# those of a config without them): left out of `routing_fields` at those values, so the unit keys of
# every run made before them stay the same (stored unit records resume, and a seed-0 replicate is the
# stored unit); any other value is part of the key
IDENTITY_OPTIONS = identity_options()


def routing_fields(config) -> dict:
    """The routing part of a RoutedConfig (everything but the dense size's architecture), without
    the identity options at their no-op values."""
    identity = identity_options()
    return {k: getattr(config, k) for k in routed_fields()
            if not (k in identity and getattr(config, k) == identity[k])}


def router_options_of(fields: dict) -> dict:
    """The router options of stored `routing_fields` (an identity option left out is its no-op value)."""
    identity = identity_options()
    return {k: fields.get(k, identity.get(k)) for k in router_options() if k in fields or k in identity}


def build_routed(size, num_experts: int, router: str, seed: int = 0, experts_implementation: str | None = None,
                 **config_kwargs) -> RoutedForCausalLM:
    """A freshly initialised routed model; the same arguments give bit-identical weights, and
    the global RNG is left untouched. `experts_implementation`: "eager" or "grouped_mm"
    (default: `default_experts_implementation()`)."""
    V.check_int("seed", seed, minimum=0)
    config = routed_config(size, num_experts, router, **config_kwargs)
    config._attn_implementation = "sdpa"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = RoutedForCausalLM(config)
    set_experts_implementation(model, experts_implementation or default_experts_implementation())
    return model


def default_experts_implementation(device=None) -> str:
    """grouped_mm on CUDA (one grouped GEMM per projection), eager elsewhere (faster on CPU at
    our sizes, see benchmarks in the routing study's notes)."""
    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return "grouped_mm" if dev.type == "cuda" else "eager"


def set_experts_implementation(model, impl: str) -> None:
    V.check_choice("experts_implementation", impl, EXPERTS_IMPLEMENTATIONS)
    model.set_experts_implementation(impl)


def load_routed(path, device: str = "cpu", dtype=torch.float32, experts_implementation: str | None = None):
    """`models.load_checkpoint` with the experts backend chosen for `device`."""
    model = CK.load_checkpoint(path, device=device, dtype=dtype)
    if isinstance(model, RoutedForCausalLM):
        set_experts_implementation(model, experts_implementation or default_experts_implementation(device))
    return model


def param_counts(config) -> dict:
    """{'N', 'non_embedding', 'active', 'total', 'embedding', 'router', 'routed_blocks'} from
    the formulas in the module docstring (no model built)."""
    dense = M.model_config(config.dense_size, vocab_size=config.vocab_size, context=config.max_position_embeddings)
    n = M.param_formula(dense)["non_embedding"]
    d, f, E = config.hidden_size, config.intermediate_size, config.num_local_experts
    r = len(routed_layers(config))
    if config.router in CONTROLS:  # the vocabulary control: table (V, k) + projection (d, k) per block
        k = vocab_rank(config)
        emb = config.vocab_size * d * (1 if config.tie_word_embeddings else 2)
        added = config.vocab_size * k + k * d
        return {"N": n, "non_embedding": n + r * added, "active": n + r * (k + k * d), "total": n + r * added + emb,
                "embedding": emb, "router": 0, "routed_blocks": r}
    router = d * E if R.ROUTER_CLASSES[config.router].learned else 0
    non_emb = n + r * ((E - 1) * 3 * d * f + router)
    emb = config.vocab_size * d * (1 if config.tie_word_embeddings else 2)
    return {"N": n, "non_embedding": non_emb, "active": n + r * router, "total": non_emb + emb,
            "embedding": emb, "router": r * router, "routed_blocks": r}


def flops_per_token(config, seq_len: int | None = None) -> float:
    """Training FLOPs per token: the dense model's (`models.flops_per_token`) plus the router
    matmul, 6 d E per routed block (learned routers); the expert FLOPs equal the dense MLP's."""
    dense = M.model_config(config.dense_size, vocab_size=config.vocab_size, context=config.max_position_embeddings)
    if config.router in CONTROLS:  # the table's projection (the lookup is free)
        router = 6.0 * config.hidden_size * vocab_rank(config)
    else:
        router = 6.0 * config.hidden_size * config.num_local_experts if R.ROUTER_CLASSES[config.router].learned else 0
    return M.flops_per_token(dense, seq_len) + len(routed_layers(config)) * router


@torch.no_grad()
def copy_dense_weights(routed: RoutedForCausalLM, dense) -> RoutedForCausalLM:
    """Copy a dense `LlamaForCausalLM` of the same size into `routed`: embeddings, attention,
    norms, unrouted MLPs, and the dense MLP into every expert (sparse upcycling). Routers keep
    their own weights. Returns `routed`."""
    sd = dense.state_dict()
    own = routed.state_dict()
    for name, t in sd.items():
        if ".mlp." in name:
            continue
        own[name].copy_(t)
    for i, layer in enumerate(routed.model.layers):
        pre = f"model.layers.{i}.mlp."
        g, u, dn = sd[pre + "gate_proj.weight"], sd[pre + "up_proj.weight"], sd[pre + "down_proj.weight"]
        if isinstance(layer.mlp, RoutedSparseMoeBlock):
            layer.mlp.experts.gate_up_proj.copy_(torch.cat([g, u], dim=0).expand_as(layer.mlp.experts.gate_up_proj))
            layer.mlp.experts.down_proj.copy_(dn.expand_as(layer.mlp.experts.down_proj))
        else:
            layer.mlp.gate_proj.weight.copy_(g)
            layer.mlp.up_proj.weight.copy_(u)
            layer.mlp.down_proj.weight.copy_(dn)
    return routed


def routed_table(sizes, experts, routers, **config_kwargs) -> pd.DataFrame:
    """One row per (size, E, router): parameter counts and FLOPs per token (no model built)."""
    rows = []
    for s in sizes:
        for E in experts:
            for r in routers:
                cfg = routed_config(s, E, r, **config_kwargs)
                rows.append({"size": s, "experts": E, "router": r, **param_counts(cfg),
                             "flops_per_token": flops_per_token(cfg)})
    return pd.DataFrame(rows)


__all__ = ["RoutedConfig", "RoutedForCausalLM", "RoutedModel", "build_routed", "routed_config", "param_counts",
           "flops_per_token", "copy_dense_weights", "load_routed", "routed_table"]
