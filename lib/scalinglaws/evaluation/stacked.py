"""Per-window NLL sums: one model's own forward (`window_loss_sums`) and many models of one
shape in one pass on stacked weights (`evaluate_stacked`)."""
from __future__ import annotations

import numpy as np
import torch

from scalinglaws.core.validation import ParameterError, check_int


@torch.no_grad()
def window_loss_sums(logits_fn, windows: torch.Tensor, chunk: int = 64) -> np.ndarray:
    """Per-window sum of next-token cross-entropy (nats), float64; `logits_fn(inputs) -> logits`
    (a model, or a functional call with other parameters)."""
    out = []
    for s in range(0, len(windows), chunk):
        w = windows[s:s + chunk]
        z = logits_fn(w[:, :-1])
        z = (z.logits if hasattr(z, "logits") else z).float()
        ce = torch.nn.functional.cross_entropy(z.transpose(1, 2), w[:, 1:], reduction="none")
        out.append(ce.double().sum(1))
    return torch.cat(out).cpu().numpy()



# ---------------------------------------------------------------------------------------------
# many models of one shape in one pass: stacked weights, fixed windows
#
# Merging and ensembles evaluate hundreds of models of one shape on one window set. One eager HF
# forward per model and batch is launch-bound on a GPU (tens of small kernels per layer, Python
# between them), so the weights of `models_per_pass` models are stacked along a leading model
# dimension and every layer runs once for all of them:
#
#   backend "grouped"  our own Llama forward on stacked weights (bmm per projection, q|k|v and
#                      gate|up fused, SDPA over model x window batches): LlamaForCausalLM only;
#   backend "vmap"     torch.func.vmap of functional_call over the model dimension: any HF causal
#                      LM; attention is switched to "eager" inside (SDPA has no batching rule for
#                      its CPU kernel and falls back to a per-model loop).
#
# Scores are per model and per window: the NLL sum (nats) of the window's scored targets, which
# are its last `n_scored` targets (default: all seq_len of a window of seq_len + 1 tokens).

BACKENDS = ("grouped", "vmap")


def _param_names(model) -> list[str]:
    """Parameter names of `model`, tied weights once (functional_call re-ties the aliases)."""
    return [n for n, _ in model.named_parameters()]


def stack_states(model, states) -> dict[str, torch.Tensor]:
    """{parameter name: (len(states), *shape) tensor} from state dicts shaped like `model`'s
    parameters (tied aliases once), on the model's device and dtype. ParameterError when a state
    misses a parameter or has another shape."""
    if isinstance(states, dict) or not isinstance(states, (list, tuple)) or not states:
        raise ParameterError("states must be a non-empty list of state dicts")
    params = dict(model.named_parameters())
    out = {}
    for name, p in params.items():
        rows = []
        for i, s in enumerate(states):
            if not isinstance(s, dict) or name not in s:
                raise ParameterError(f"states[{i}] has no tensor {name!r}")
            t = s[name]
            if tuple(t.shape) != tuple(p.shape):
                raise ParameterError(f"states[{i}] tensor {name!r} has shape {tuple(t.shape)}, "
                                     f"the model has {tuple(p.shape)}")
            rows.append(t.detach().to(p.device, p.dtype))
        out[name] = torch.stack(rows)
    return out


def stack_models(models) -> dict[str, torch.Tensor]:
    """Stacked parameters of models of one shape (see `stack_states`); ParameterError when the
    models differ in shape."""
    models = list(models)
    if not models:
        raise ParameterError("models must be a non-empty list")
    ref = models[0]
    for i, m in enumerate(models[1:], 1):
        if type(m) is not type(ref):
            raise ParameterError(f"models[{i}] is a {type(m).__name__}, models[0] a {type(ref).__name__}")
    return stack_states(ref, [dict(m.named_parameters()) for m in models])


def _check_grouped(model):
    cfg = model.config
    bad = []
    if type(model).__name__ != "LlamaForCausalLM":
        bad.append(f"model class {type(model).__name__}")
    for attr in ("attention_bias", "mlp_bias"):
        if getattr(cfg, attr, False):
            bad.append(f"{attr}=True")
    if getattr(cfg, "hidden_act", "silu") != "silu":
        bad.append(f"hidden_act={cfg.hidden_act!r}")
    if getattr(cfg, "pretraining_tp", 1) not in (None, 1):
        bad.append("pretraining_tp > 1")
    if bad:
        raise ParameterError(f"backend='grouped' supports bias-free SiLU LlamaForCausalLM only ({', '.join(bad)}); "
                             f"use backend='vmap'")


def _grouped_weights(model, P: dict) -> dict:
    """Stacked weights rearranged for the grouped forward: per layer fused (q|k|v) and (gate|up),
    transposed to (B, in, out) for bmm."""
    cfg = model.config
    out = {"embed": P["model.embed_tokens.weight"], "norm": P["model.norm.weight"],
           "head": P.get("lm_head.weight", P["model.embed_tokens.weight"]), "layers": []}
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        a, m = p + "self_attn.", p + "mlp."
        out["layers"].append({
            "ln1": P[p + "input_layernorm.weight"], "ln2": P[p + "post_attention_layernorm.weight"],
            "qkv": torch.cat([P[a + "q_proj.weight"], P[a + "k_proj.weight"], P[a + "v_proj.weight"]], 1)
            .transpose(1, 2).contiguous(),
            "o": P[a + "o_proj.weight"].transpose(1, 2).contiguous(),
            "gu": torch.cat([P[m + "gate_proj.weight"], P[m + "up_proj.weight"]], 1).transpose(1, 2).contiguous(),
            "down": P[m + "down_proj.weight"].transpose(1, 2).contiguous()})
    return out


def _rms(h, w, eps):
    dt = h.dtype
    h = h.float()
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    return w[:, None, :] * h.to(dt)


def _grouped_logits(model, W: dict, x: torch.Tensor) -> torch.Tensor:
    """(B, n, T, V) logits of B stacked Llama models (weights W from `_grouped_weights`) on the
    same (n, T) inputs: HF's LlamaForCausalLM forward, layer by layer, for all models at once."""
    cfg = model.config
    B = W["embed"].shape[0]
    n, T = x.shape
    H, Hkv = cfg.num_attention_heads, cfg.num_key_value_heads
    hd = getattr(cfg, "head_dim", None) or cfg.hidden_size // H
    eps = cfg.rms_norm_eps
    h = W["embed"][:, x.reshape(-1)]                                     # (B, nT, d)
    pos = torch.arange(T, device=x.device)[None]
    cos, sin = model.model.rotary_emb(h[:1, :T], pos)                    # (1, T, hd)
    cos, sin = cos[:, None], sin[:, None]

    def rope(t):
        t1, t2 = t[..., : hd // 2], t[..., hd // 2:]
        return t * cos + torch.cat((-t2, t1), -1) * sin

    for L in W["layers"]:
        a = _rms(h, L["ln1"], eps)
        qkv = torch.bmm(a, L["qkv"]).view(B * n, T, H + 2 * Hkv, hd).transpose(1, 2)
        q, k, v = qkv.split([H, Hkv, Hkv], dim=1)
        o = torch.nn.functional.scaled_dot_product_attention(rope(q), rope(k), v, is_causal=True,
                                                             enable_gqa=Hkv != H)
        h = h + torch.bmm(o.transpose(1, 2).reshape(B, n * T, H * hd), L["o"])
        a = _rms(h, L["ln2"], eps)
        g, u = torch.bmm(a, L["gu"]).chunk(2, dim=-1)
        h = h + torch.bmm(torch.nn.functional.silu(g) * u, L["down"])
    h = _rms(h, W["norm"], eps)
    return torch.bmm(h, W["head"].transpose(1, 2)).view(B, n, T, -1)


def _vmap_logits(model, P: dict, x: torch.Tensor) -> torch.Tensor:
    from torch.func import functional_call, vmap

    def one(p, inp):
        return functional_call(model, p, (inp,), kwargs={"use_cache": False}).logits

    return vmap(one, in_dims=(0, None))(P, x)


class _attention:
    """Context manager: the model's attention implementation switched to `impl` meanwhile."""

    def __init__(self, model, impl):
        self.model, self.impl = model, impl
        self.old = getattr(getattr(model, "config", None), "_attn_implementation", None)

    def __enter__(self):
        if self.impl and self.old not in (None, self.impl):
            self.model.set_attn_implementation(self.impl)

    def __exit__(self, *exc):
        if self.impl and self.old not in (None, self.impl):
            self.model.set_attn_implementation(self.old)


def _auto_chunks(B, n, T, V, models_per_pass, windows_per_pass, max_logit_elems):
    mb = min(B, models_per_pass or B)
    if windows_per_pass:
        return mb, min(n, windows_per_pass)
    wb = max(1, min(n, max_logit_elems // max(1, mb * T * V)))
    if wb == 1 and mb * T * V > max_logit_elems and not models_per_pass:
        mb = max(1, max_logit_elems // (T * V))
    return mb, wb


@torch.inference_mode()
def evaluate_stacked(model, params: dict, windows: torch.Tensor, n_scored=None, *,
                     backend: str = "grouped", models_per_pass: int | None = None,
                     windows_per_pass: int | None = None, autocast: bool | None = None,
                     max_logit_elems: int = 2 ** 26) -> np.ndarray:
    """(B, n_windows) float64 NLL sums (nats) of B stacked models (`stack_states`/`stack_models`,
    leading dim B) on `windows` ((n, T + 1) token ids; each window's first token is context only).
    `n_scored` (int or per-window array, default T) scores only the last n_scored targets; a
    boolean (n, T) array scores the targets it marks.
    `model` gives the architecture (its own weights are not used). Chunks: `models_per_pass` models
    and `windows_per_pass` windows per forward (default: as many as keep B x n x T x V logits under
    `max_logit_elems`). `autocast`: bf16 autocast (default: on CUDA only; fp32 otherwise)."""
    from scalinglaws.core.validation import check_choice
    check_choice("backend", backend, BACKENDS)
    if models_per_pass is not None:
        check_int("models_per_pass", models_per_pass, minimum=1)
    if windows_per_pass is not None:
        check_int("windows_per_pass", windows_per_pass, minimum=1)
    names = _param_names(model)
    missing = [k for k in names if k not in params]
    if missing:
        raise ParameterError(f"params has no stacked tensor {missing[0]!r} ({len(missing)} missing)")
    B = int(params[names[0]].shape[0])
    for k in names:
        if params[k].shape[0] != B:
            raise ParameterError(f"params[{k!r}] stacks {params[k].shape[0]} models, {names[0]!r} {B}")
    windows = torch.as_tensor(windows)
    if windows.dim() != 2 or windows.shape[1] < 2:
        raise ParameterError(f"windows must be (n, T + 1) token ids with T >= 1, got {tuple(windows.shape)}")
    n, T = windows.shape[0], windows.shape[1] - 1
    if n_scored is not None and np.asarray(n_scored).dtype == bool:
        score = np.asarray(n_scored)
        if score.shape != (n, T):
            raise ParameterError(f"a boolean n_scored mask must be (n, T) = {(n, T)}, got {score.shape}")
    else:
        ns = np.full(n, T, dtype=np.int64) if n_scored is None else np.broadcast_to(np.asarray(n_scored), (n,))
        if ns.min() < 0 or ns.max() > T:
            raise ParameterError(f"n_scored must lie in [0, {T}]")
        score = np.arange(T)[None, :] >= (T - ns[:, None])
    if backend == "grouped":
        _check_grouped(model)
    device = params[names[0]].device
    V = int(model.config.get_text_config().vocab_size if hasattr(model.config, "get_text_config")
            else model.config.vocab_size)
    mb, wb = _auto_chunks(B, n, T, V, models_per_pass, windows_per_pass, max_logit_elems)
    use_autocast = (device.type == "cuda") if autocast is None else bool(autocast)
    win = windows.to(device)
    mask = torch.from_numpy(np.ascontiguousarray(score)).to(device)
    out = torch.empty(B, n, dtype=torch.float64, device=device)
    was_training = model.training
    model.eval()
    try:
        with _attention(model, "eager" if backend == "vmap" else None):
            for m0 in range(0, B, mb):
                P = {k: params[k][m0:m0 + mb] for k in names}
                W = _grouped_weights(model, P) if backend == "grouped" else P
                for w0 in range(0, n, wb):
                    w = win[w0:w0 + wb]
                    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_autocast):
                        z = (_grouped_logits(model, W, w[:, :-1]) if backend == "grouped"
                             else _vmap_logits(model, W, w[:, :-1]))
                    b = z.shape[0]
                    y = w[:, 1:].expand(b, -1, -1)
                    ce = torch.nn.functional.cross_entropy(z.float().reshape(-1, z.shape[-1]), y.reshape(-1),
                                                           reduction="none").view(b, len(w), T)
                    out[m0:m0 + b, w0:w0 + len(w)] = (ce * mask[w0:w0 + len(w)]).double().sum(-1)
    finally:
        model.train(was_training)
    return out.cpu().numpy()
