"""One trainer for pretraining and fine-tuning (nanoGPT style).

Data: random contiguous windows of seq_len + 1 tokens drawn from one token array, or from a
mixture of arrays (a domain is picked per row with the given weights), by a seeded numpy
generator, so the data order depends only on the seed.

Optimisation: AdamW (betas 0.9/0.95; weight decay on matrices only, not on norms), gradient
clipping by global norm, learning rate

    lr(s) = lr (s + 1) / W                                         for s < W (linear warmup)
    lr(s) = lr [m + (1 - m) (1 + cos(pi (s - W) / (S - W))) / 2]   for W <= s < S (cosine decay)

with S = tokens // batch_tokens steps, W = max(1, round(warmup_frac S)) and m = min_lr_frac.
CPU runs in fp32 and is bit-reproducible for a fixed seed and thread count; CUDA uses bf16
autocast, TF32, SDPA attention and torch.compile (by default). A non-finite loss raises
`TrainingDiverged` at once.
"""
from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from scalinglaws.core.profiles import FINETUNE_FRACTION, REGISTRY
from scalinglaws.core.sweep import credit_earlier_time
from scalinglaws.core.validation import ParameterError, check_float, check_int, check_profile


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite."""

    def __init__(self, step: int, loss: float):
        self.step, self.loss = step, loss
        super().__init__(f"training diverged at step {step}: loss = {loss} "
                         "(lower the learning rate or raise warmup)")


@dataclass
class TrainResult:
    curve: pd.DataFrame  # step, tokens, loss, lr, tokens_per_s (one row per log interval)
    wall_s: float
    final_loss: float    # mean training loss over the last min(10, steps) steps
    steps: int
    tokens: int


# ---------------------------------------------------------------------------------------------
# data


class WindowSampler:
    """Batches of `batch_size` random windows of `seq_len + 1` tokens.

    `arrays` is one 1-D token array or a sequence/mapping of them; `weights` (default:
    proportional to length, i.e. uniform over all tokens) gives the mixture probabilities.
    `sample()` returns an int64 tensor (batch_size, seq_len + 1): inputs [:, :-1], targets [:, 1:].
    """

    def __init__(self, arrays, seq_len: int, batch_size: int, seed: int = 0, weights=None):
        if isinstance(arrays, np.ndarray) or torch.is_tensor(arrays):
            arrays = [arrays]
        if isinstance(arrays, Mapping):
            names = list(arrays)
            arrays = list(arrays.values())
            if isinstance(weights, Mapping):
                weights = [weights[n] for n in names]
        self.arrays = [np.asarray(a) for a in arrays]
        self.seq_len = check_int("seq_len", seq_len, minimum=1)
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        for i, a in enumerate(self.arrays):
            if a.ndim != 1 or len(a) < seq_len + 1:
                raise ParameterError(f"token array {i} has shape {a.shape}; need 1-D with at least "
                                     f"seq_len + 1 = {seq_len + 1} tokens")
        if weights is None:
            weights = [len(a) for a in self.arrays]
        w = np.asarray(weights, dtype=float)
        if w.shape != (len(self.arrays),) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise ParameterError(f"weights={list(weights)} must be {len(self.arrays)} non-negative "
                                 "numbers with a positive sum")
        self.weights = w / w.sum()
        self.rng = np.random.default_rng(seed)

    def sample(self) -> torch.Tensor:
        n = self.seq_len + 1
        which = self.rng.choice(len(self.arrays), size=self.batch_size, p=self.weights)
        out = np.empty((self.batch_size, n), dtype=np.int64)
        for k in np.unique(which):
            rows = np.flatnonzero(which == k)
            a = self.arrays[k]
            starts = self.rng.integers(0, len(a) - n + 1, size=len(rows))
            out[rows] = a[starts[:, None] + np.arange(n)]
        return torch.from_numpy(out)


def default_device() -> str:
    """The device studies train and evaluate on: the GPU when there is one."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def check_schedule(params: dict, prefix: str = "", sizes=()) -> None:
    """Validate the optimiser/schedule entries of a study's parameters (`{prefix}lr`,
    `{prefix}warmup_frac`, `{prefix}min_lr_frac`, `{prefix}weight_decay`, `{prefix}grad_clip`,
    `{prefix}batch_tokens`) before any compute; a batch must hold one context of every size."""
    from scalinglaws.models import get_size

    check_float(f"{prefix}lr", params[f"{prefix}lr"], 0.0, 1.0, open_interval=True)
    check_float(f"{prefix}warmup_frac", params[f"{prefix}warmup_frac"], 0.0, 1.0)
    check_float(f"{prefix}min_lr_frac", params[f"{prefix}min_lr_frac"], 0.0, 1.0)
    check_float(f"{prefix}weight_decay", params[f"{prefix}weight_decay"], 0.0)
    check_float(f"{prefix}grad_clip", params[f"{prefix}grad_clip"], 0.0)
    bt = check_int(f"{prefix}batch_tokens", params[f"{prefix}batch_tokens"], minimum=64)
    for s in sizes:
        if get_size(s).context > bt:
            raise ParameterError(f"{prefix}batch_tokens={bt} is smaller than the context "
                                 f"{get_size(s).context} of size {s}")


# ---------------------------------------------------------------------------------------------
# budgets

def token_budget(size: str, profile: str) -> int:
    """Pretraining tokens of a size at a profile: the profile's one budget, the same for every size
    (Clark et al.'s protocol; see `core.profiles`). Sizes therefore differ in tokens per parameter,
    which the ladder table reports. `size` is validated so a typo fails here."""
    from scalinglaws.models import get_size

    check_profile(profile)
    get_size(size)
    return REGISTRY[profile].pretrain_tokens


def finetune_budget(size: str, profile: str) -> int:
    """Fine-tuning tokens per expert: 5% of the pretraining budget, capped per profile
    (an expert specialises a base; it must not retrain it). Multiple of 1024."""
    d = min(FINETUNE_FRACTION * token_budget(size, profile), REGISTRY[check_profile(profile)].finetune_cap)
    return max(1024, int(d // 1024 * 1024))


# ---------------------------------------------------------------------------------------------
# the trainer


def lr_at(step: int, steps: int, lr: float, warmup: int, min_lr_frac: float) -> float:
    if step < warmup:
        return lr * (step + 1) / warmup
    if steps <= warmup:
        return lr
    progress = (step - warmup) / max(1, steps - warmup)
    return lr * (min_lr_frac + (1 - min_lr_frac) * 0.5 * (1 + math.cos(math.pi * progress)))


def _optimizer(model, lr, weight_decay, device):
    params = [p for p in model.parameters() if p.requires_grad]
    seen, decay, no_decay = set(), [], []
    for p in params:
        if id(p) in seen:  # tied embeddings appear once
            continue
        seen.add(id(p))
        (decay if p.ndim >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    fused = device.type == "cuda"
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95), eps=1e-8, fused=fused)


def train(model, data, *, tokens: int, batch_tokens: int = 4096, seq_len: int | None = None,
          lr: float = 3e-3, warmup_frac: float = 0.05, min_lr_frac: float = 0.1,
          weight_decay: float = 0.1, grad_clip: float = 1.0, seed: int = 0, device="cpu",
          compile: bool | None = None, log_every: int = 10, progress: bool = True,
          weights=None, micro_batch: int | None = None, resume=None,
          resume_every_s: float = 600.0) -> TrainResult:
    """Train `model` in place on `tokens` tokens and return its loss curve.

    data: a token array, a list/dict of token arrays (mixture with `weights`), or a
    `WindowSampler`-like object with `.sample() -> (B, seq_len + 1)` tensor.
    batch_tokens = batch_size * seq_len tokens per optimiser step (seq_len defaults to the
    model context); `micro_batch` rows per forward pass (gradient accumulation) bound memory.
    compile: None (default) compiles the forward with torch.compile on CUDA only; False never does.

    Auxiliary losses (a generic model hook): if the model has a method `auxiliary_loss(token_loss)`,
    it is called after every training forward with that forward's per-token cross-entropy
    (detached, shape (rows, seq_len)), and the scalar it returns is added to the loss that is
    backpropagated, not to the reported loss (routed models: load balancing, z-loss, REINFORCE).

    resume: a folder for the run's state (`scalinglaws.resume`): saved every `resume_every_s` seconds
    of training, restored at the start when present (same settings), removed at the end, so a run
    killed midway continues to the same weights, bit for bit. Only with the trainer's own sampler
    (token arrays as `data`) and a model whose state is its state_dict (no Python-side counters).
    """
    seq_len = seq_len or model.config.max_position_embeddings
    check_int("seq_len", seq_len, minimum=1, maximum=model.config.max_position_embeddings)
    check_int("batch_tokens", batch_tokens, minimum=seq_len)
    check_int("tokens", tokens, minimum=batch_tokens)
    check_float("lr", lr, 0.0, open_interval=False)
    check_float("warmup_frac", warmup_frac, 0.0, 1.0)
    check_float("min_lr_frac", min_lr_frac, 0.0, 1.0)
    check_float("weight_decay", weight_decay, 0.0)
    check_float("grad_clip", grad_clip, 0.0)
    check_int("seed", seed, minimum=0)
    check_int("log_every", log_every, minimum=1)
    device = torch.device(device)
    batch_size = batch_tokens // seq_len
    micro = check_int("micro_batch", micro_batch or batch_size, minimum=1, maximum=batch_size)
    if batch_size % micro:
        raise ParameterError(f"micro_batch={micro} must divide the batch size {batch_size}")
    steps = tokens // (batch_size * seq_len)
    warmup = max(1, round(warmup_frac * steps))

    if resume is not None and hasattr(data, "sample"):
        raise ParameterError("resume needs token arrays as data (the trainer's own sampler, whose state it saves)")
    check_float("resume_every_s", resume_every_s, 0.0)
    sampler = data if hasattr(data, "sample") else WindowSampler(data, seq_len, batch_size, seed, weights)
    torch.manual_seed(seed)  # anything stochastic inside the model (e.g. sampled routing) is seeded too
    model.to(device).train()
    cuda = device.type == "cuda"
    if cuda:  # TF32 matmuls for the fp32 parts (bf16 autocast covers the rest); CPU runs stay exact fp32
        torch.set_float32_matmul_precision("high")
    # compile=None: compile on CUDA (2x tokens/s measured on an H100, GPU-NOTES), never on CPU (slower to
    # warm up than our small CPU runs last, and eager keeps CPU runs bit-reproducible)
    fwd = torch.compile(model) if (cuda and compile is not False) else model
    aux_fn = getattr(model, "auxiliary_loss", None)  # optional hook, see the docstring
    opt = _optimizer(model, lr, weight_decay, device)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else torch.autocast("cpu", enabled=False)

    from tqdm import tqdm  # not tqdm.auto: in a notebook it warns without ipywidgets, and the warning lands in the book
    bar = tqdm(total=steps * batch_size * seq_len, unit="tok", unit_scale=True, disable=not progress,
               desc="train", smoothing=0.1)
    rows, losses, window_loss, window_steps = [], [], 0.0, 0
    start, spent = 0, 0.0  # a resumed run: the step it stopped after and the seconds it had trained
    signature = {"steps": steps, "batch_size": batch_size, "seq_len": seq_len, "lr": lr, "warmup": warmup,
                 "min_lr_frac": min_lr_frac, "weight_decay": weight_decay, "grad_clip": grad_clip, "seed": seed,
                 "micro_batch": micro, "n_params": sum(p.numel() for p in model.parameters())}
    if resume is not None:
        from scalinglaws import resume as RS
        meta = RS.load(resume, model=model, opt=opt, sampler=sampler, signature=signature)
        if meta is not None:
            start, spent = meta["step"], meta["spent_s"]
            credit_earlier_time(spent)  # the unit's record counts the killed processes' time too
            rows, losses, window_loss, window_steps = meta["rows"], meta["losses"], meta["window_loss"], meta["window_steps"]
            bar.update(start * batch_size * seq_len)
    t0 = t_log = t_save = time.perf_counter()
    for step in range(start, steps):
        cur_lr = lr_at(step, steps, lr, warmup, min_lr_frac)
        for g in opt.param_groups:
            g["lr"] = cur_lr
        batch = sampler.sample().to(device, non_blocking=True)
        loss_sum = torch.zeros((), device=device)
        for chunk in batch.split(micro):
            with amp:
                logits = fwd(input_ids=chunk[:, :-1]).logits
            if aux_fn is None:
                loss = torch.nn.functional.cross_entropy(
                    logits.float().reshape(-1, logits.size(-1)), chunk[:, 1:].reshape(-1))
                objective = loss
            else:
                token_loss = torch.nn.functional.cross_entropy(
                    logits.float().reshape(-1, logits.size(-1)), chunk[:, 1:].reshape(-1),
                    reduction="none").view(len(chunk), -1)
                loss = token_loss.mean()
                objective = loss + aux_fn(token_loss.detach())
            (objective * (len(chunk) / batch_size)).backward()
            loss_sum += loss.detach() * (len(chunk) / batch_size)
        loss_val = loss_sum.item()
        if not math.isfinite(loss_val):
            bar.close()
            if resume is not None:  # a diverged run is a result (it would diverge again): nothing to resume
                RS.clear(resume)
            raise TrainingDiverged(step, loss_val)
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)

        losses.append(loss_val)
        window_loss += loss_val
        window_steps += 1
        n_tok = batch_size * seq_len
        bar.update(n_tok)
        if (step + 1) % log_every == 0 or step + 1 == steps:
            now = time.perf_counter()
            tps = (window_steps * n_tok) / max(now - t_log, 1e-9)
            rows.append({"step": step + 1, "tokens": (step + 1) * n_tok, "loss": window_loss / window_steps,
                         "lr": cur_lr, "tokens_per_s": tps})
            bar.set_postfix(loss=f"{window_loss / window_steps:.3f}", tok_s=f"{tps:,.0f}")
            t_log, window_loss, window_steps = now, 0.0, 0
        if resume is not None and step + 1 < steps and time.perf_counter() - t_save >= resume_every_s:
            RS.save(resume, model=model, opt=opt, sampler=sampler, step=step + 1, signature=signature,
                    extra={"spent_s": spent + time.perf_counter() - t0, "rows": rows, "losses": losses,
                           "window_loss": window_loss, "window_steps": window_steps})
            t_save = time.perf_counter()
    bar.close()
    if cuda:
        torch.cuda.synchronize()
    wall = spent + time.perf_counter() - t0
    if resume is not None:
        RS.clear(resume)
    model.eval()
    tail = losses[-min(10, len(losses)):]
    return TrainResult(curve=pd.DataFrame(rows, columns=["step", "tokens", "loss", "lr", "tokens_per_s"]),
                       wall_s=wall, final_loss=float(np.mean(tail)), steps=steps,
                       tokens=steps * batch_size * seq_len)
