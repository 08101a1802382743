"""Toy networks of the resource model (Song, Liu, Tegmark, Gore 2024): neurons as resources.

A one-hidden-layer network f(x) = sum_j a_j s(w_j . x + b_j) + c regresses 1-D targets on
[-1, 1]. Many independent networks (regulariser strengths x seeds) are trained at once as one
*batched* network: every weight tensor has a leading batch axis and the forward pass is a
batched matmul, so a whole (task, width) cell of the sweep costs one training loop.

Sparsity regulariser (our choice; the paper does not state its form): the group lasso
    R(theta) = lambda * sum_j ||theta_j||_2,   theta_j = (w_j, b_j, a_j)  (all weights of neuron j),
applied as a proximal step after each Adam step (group soft-thresholding with step lr_t * lambda):
    theta_j <- theta_j * max(0, 1 - lr_t * lambda / ||theta_j||).
It sets whole neurons exactly to zero, so lambda controls how many stay in use. A second phase
("refit") then trains the surviving neurons without the penalty (mask fixed): the loss at a given
allocation is then not inflated by the shrinkage of the lasso (the "relaxed lasso").

Allocation (what counts as a used neuron):
- by weight: neuron magnitude m_j = sqrt(||(w_j, b_j)||_2 * ||a_j||_2) (geometric mean of its in- and
  out-weight norms: invariant to the ReLU rescaling w -> t w, a -> a / t), allocated if m_j > threshold;
- by ablation: remove neuron j (a_j = 0) and measure the loss change; allocated if
  Delta L_j > tol * L. In closed form, with residual r = f - y and contribution c_j = a_j s(.):
  Delta L_j = mean(c_j^2 - 2 r c_j).

Composite tasks:
- parallel: input (x1, x2), two outputs (f1(x1), f2(x2)) from one shared hidden layer; neurons are
  attributed to subtasks by ablation: neuron j's share of subtask i is
  max(Delta l_i(j), 0) / sum_k max(Delta l_k(j), 0) (each l_i a variance-normalised MSE), and
  N_i = sum over allocated neurons of those shares;
- series: y = f2(f1(x)) by two stacked one-hidden-layer blocks, x -> u_hat ~ f1(x) -> y_hat ~ f2(f1(x)),
  both outputs supervised; one group-lasso pool over the neurons of both blocks; a neuron is attributed
  to the subtask of its block (structural attribution).
All losses are MSE divided by the target's variance (on the test grid), so tasks compare.
"""
from __future__ import annotations

import math

import numpy as np
import torch

# name -> (function, description). Difficulty grows with curvature / oscillation.
TARGETS = {
    "square": (lambda x: x ** 2, "y = x^2 (the paper's task; constant curvature)"),
    "sine": (lambda x: torch.sin(2 * math.pi * x), "y = sin(2 pi x) (one full period)"),
    "bump": (lambda x: torch.exp(-25 * x ** 2), "y = exp(-25 x^2) (a narrow Gaussian bump)"),
}
ACTIVATIONS = {"relu": torch.relu, "silu": torch.nn.functional.silu, "tanh": torch.tanh}
COMPOSITIONS = ("parallel", "series")


# ----------------------------------------------------------------------------- batched layers

def init_block(B: int, d_in: int, width: int, d_out: int, gen: torch.Generator) -> list[torch.Tensor]:
    """[W1 (B,d_in,W), b1 (B,1,W), W2 (B,W,d_out), b2 (B,1,d_out)]: kinks -b/w spread over the
    domain (b ~ U(-1,1), w ~ N(0,1)), output weights ~ N(0, 1/W)."""
    W1 = torch.randn(B, d_in, width, generator=gen)
    b1 = torch.rand(B, 1, width, generator=gen) * 2 - 1
    W2 = torch.randn(B, width, d_out, generator=gen) / math.sqrt(width)
    b2 = torch.zeros(B, 1, d_out)
    return [p.requires_grad_() for p in (W1, b1, W2, b2)]


def hidden(block, x, act):
    W1, b1, _, _ = block
    return act(torch.baddbmm(b1, x, W1))


def forward_block(block, x, act):
    return torch.baddbmm(block[3], hidden(block, x, act), block[2])


def neuron_norms(block) -> tuple[torch.Tensor, torch.Tensor]:
    """(||(w_j, b_j)||, ||a_j||) per neuron, each (B, W)."""
    W1, b1, W2, _ = block
    return torch.sqrt(W1.pow(2).sum(1) + b1.pow(2).sum(1)), W2.pow(2).sum(2).sqrt()


def neuron_magnitude(block) -> torch.Tensor:
    """m_j = sqrt(||(w_j, b_j)|| * ||a_j||), (B, W): the scale of neuron j's weights."""
    n_in, n_out = neuron_norms(block)
    return torch.sqrt(n_in * n_out)


@torch.no_grad()
def prox_group_lasso(block, step: torch.Tensor, mask: torch.Tensor | None = None) -> None:
    """Group soft-thresholding of each neuron's weights by `step` (B, 1); `mask` (B, W) keeps
    pruned neurons at exactly zero."""
    W1, b1, W2, _ = block
    n_in, n_out = neuron_norms(block)
    norm = torch.sqrt(n_in ** 2 + n_out ** 2)
    shrink = torch.clamp(1 - step / norm.clamp_min(1e-30), min=0.0)
    if mask is not None:
        shrink = shrink * mask
    W1.mul_(shrink[:, None, :])
    b1.mul_(shrink[:, None, :])
    W2.mul_(shrink[:, :, None])


def count_allocated(magnitude: torch.Tensor, threshold: float) -> torch.Tensor:
    """Number of neurons with magnitude > threshold, per network: (B, W) -> (B,)."""
    return (magnitude > threshold).sum(-1)


def ablation_deltas(h: torch.Tensor, W2: torch.Tensor, resid: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Loss increase per output when each neuron is removed: (B, W, d_out).

    h (B, n, W) hidden activations, W2 (B, W, d_out), resid = f - y (B, n, d_out),
    scale (d_out,) the target variances. Removing j changes f by -c_j, c_j = h_j a_j, so
    Delta l = mean((r - c_j)^2) - mean(r^2) = mean(c_j^2 - 2 r c_j)."""
    # mean_n c^2 = a^2 mean_n h^2 ; mean_n r c = a * mean_n h r
    h2 = h.pow(2).mean(1)                                   # (B, W)
    hr = torch.einsum("bnw,bno->bwo", h, resid) / h.shape[1]  # (B, W, d_out)
    return (W2.pow(2) * h2[:, :, None] - 2 * W2 * hr) / scale


def count_by_ablation(delta: torch.Tensor, loss: torch.Tensor, tol: float) -> torch.Tensor:
    """Neurons whose removal raises the loss by more than tol * loss: (B, W), (B,) -> (B,)."""
    return (delta > tol * loss[:, None]).sum(-1)


# ----------------------------------------------------------------------------- data

def target(name: str, x: torch.Tensor) -> torch.Tensor:
    return TARGETS[name][0](x)


def grid(n: int, B: int, d: int = 1) -> torch.Tensor:
    """A regular test grid on [-1, 1] (midpoints), shape (B, n, d); d = 2 uses an independent
    shuffled copy per coordinate so the two inputs are uncorrelated."""
    x = (torch.arange(n, dtype=torch.float32) + 0.5) / n * 2 - 1
    cols = [x] + [x[torch.randperm(n, generator=torch.Generator().manual_seed(k))] for k in range(1, d)]
    return torch.stack(cols, -1)[None].expand(B, n, d).contiguous()


def sample(n: int, seeds, d: int, gen_offset: int = 0) -> torch.Tensor:
    """Training inputs ~ U(-1, 1): one independent sample per network (its seed), (B, n, d)."""
    out = [torch.rand(n, d, generator=torch.Generator().manual_seed(10_000 * gen_offset + s)) * 2 - 1
           for s in seeds]
    return torch.stack(out)


# ----------------------------------------------------------------------------- training

def _cosine(lr0: float, t: int, steps: int) -> float:
    return lr0 * 0.5 * (1 + math.cos(math.pi * t / steps))


def _train(blocks, loss_fn, lam: torch.Tensor, steps: int, lr: float, masks=None) -> None:
    """Adam on loss_fn() (a (B,) vector, summed: networks are independent), then a proximal
    group-lasso step of size lr_t * lam on every block; cosine learning-rate decay to 0."""
    params = [p for b in blocks for p in b]
    opt = torch.optim.Adam(params, lr=lr)
    for t in range(steps):
        lr_t = _cosine(lr, t, steps)
        for g in opt.param_groups:
            g["lr"] = lr_t
        loss = loss_fn().sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        for k, b in enumerate(blocks):
            prox_group_lasso(b, lr_t * lam, None if masks is None else masks[k])


def _two_phase(blocks, loss_fn, lam, steps, refit_steps, lr):
    """Sparse phase (prox group lasso), then refit the survivors with lambda = 0 (mask fixed)."""
    _train(blocks, loss_fn, lam, steps, lr)
    with torch.no_grad():
        masks = [(neuron_norms(b)[0] * neuron_norms(b)[1] > 0).float() for b in blocks]
    if refit_steps:
        _train(blocks, loss_fn, torch.zeros_like(lam), refit_steps, lr / 10, masks)
    return masks


def _mse(pred, y, scale):
    """Variance-normalised MSE per network and output: (B, d_out)."""
    return (pred - y).pow(2).mean(1) / scale


def train_single(task: str, width: int, regs, seeds, *, activation="relu", steps=3000, refit_steps=1000,
                 lr=1e-2, n_train=256, n_test=2048, thresholds=(1e-4, 1e-3, 1e-2), ablation_tol=0.01) -> list[dict]:
    """Train len(regs) * len(seeds) networks of one width on one target at once; one row each with
    the test loss and the allocated-neuron counts (by each weight threshold and by ablation)."""
    act = ACTIVATIONS[activation]
    cells = [(r, s) for r in regs for s in seeds]
    B = len(cells)
    lam = torch.tensor([float(r) for r, _ in cells]).view(B, 1)
    x = sample(n_train, [s for _, s in cells], 1)
    y = target(task, x)
    xt = grid(n_test, B)
    yt = target(task, xt)
    scale = yt[0].var(0, unbiased=False)
    # each network's init comes from its own seed: independent of which networks share the batch
    blocks = [_init_per_seed([s for _, s in cells], 1, width, 1, salt=width)]
    _two_phase(blocks, lambda: _mse(forward_block(blocks[0], x, act), y, scale)[:, 0], lam, steps, refit_steps, lr)
    with torch.no_grad():
        blk = blocks[0]
        h = hidden(blk, xt, act)
        pred = torch.baddbmm(blk[3], h, blk[2])
        loss = _mse(pred, yt, scale)[:, 0]
        train_loss = _mse(forward_block(blk, x, act), y, scale)[:, 0]
        mag = neuron_magnitude(blk)
        delta = ablation_deltas(h, blk[2], pred - yt, scale)[:, :, 0]
        n_abl = count_by_ablation(delta, loss, ablation_tol)
    rows = []
    for i, (r, s) in enumerate(cells):
        row = {"reg": float(r), "seed": int(s), "loss": float(loss[i]), "train_loss": float(train_loss[i]),
               "neurons_ablation": int(n_abl[i])}
        for th in thresholds:
            row[f"neurons_w{th:g}"] = int(count_allocated(mag[i:i + 1], th)[0])
        rows.append(row)
    return rows


def _init_per_seed(seeds, d_in, width, d_out, salt: int) -> list[torch.Tensor]:
    """init_block for each network from generator seed (seed, salt): a network's init does not
    depend on which other networks share its batch."""
    parts = [init_block(1, d_in, width, d_out, torch.Generator().manual_seed(int(s) * 7919 + salt))
             for s in seeds]
    return [torch.cat([p[k].detach() for p in parts]).requires_grad_() for k in range(4)]


def train_composite(kind: str, tasks: tuple[str, str], width: int, regs, seeds, *, activation="relu",
                    steps=3000, refit_steps=1000, lr=1e-2, n_train=256, n_test=2048, threshold=1e-3,
                    ablation_tol=0.01) -> list[dict]:
    """Composite task (parallel or series, see module doc) for len(regs) * len(seeds) networks of
    hidden width `width` (per block for series); rows with total and per-subtask losses and the
    allocated neurons N, N_1, N_2 (attribution documented in the module docstring)."""
    act = ACTIVATIONS[activation]
    t1, t2 = tasks
    cells = [(r, s) for r in regs for s in seeds]
    B = len(cells)
    seeds_ = [s for _, s in cells]
    lam = torch.tensor([float(r) for r, _ in cells]).view(B, 1)
    if kind == "parallel":
        x = sample(n_train, seeds_, 2)
        xt = grid(n_test, B, 2)
        Y = lambda z: torch.cat([target(t1, z[..., :1]), target(t2, z[..., 1:])], -1)  # noqa: E731
        y, yt = Y(x), Y(xt)
        scale = yt[0].var(0, unbiased=False)
        blocks = [_init_per_seed(seeds_, 2, width, 2, salt=width)]
        _two_phase(blocks, lambda: _mse(forward_block(blocks[0], x, act), y, scale).sum(-1), lam, steps,
                   refit_steps, lr)
        with torch.no_grad():
            blk = blocks[0]
            h = hidden(blk, xt, act)
            pred = torch.baddbmm(blk[3], h, blk[2])
            l_i = _mse(pred, yt, scale)                                  # (B, 2)
            alloc = neuron_magnitude(blk) > threshold                    # (B, W)
            delta = ablation_deltas(h, blk[2], pred - yt, scale).clamp_min(0)  # (B, W, 2)
            tot = delta.sum(-1, keepdim=True)
            share = torch.where(tot > 0, delta / tot.clamp_min(1e-30), torch.full_like(delta, 0.5))
            N_i = (share * alloc[:, :, None]).sum(1)                     # (B, 2)
            N = alloc.sum(-1).float()
            n_abl = count_by_ablation(delta.sum(-1), l_i.sum(-1), ablation_tol)
    elif kind == "series":
        x = sample(n_train, seeds_, 1)
        xt = grid(n_test, B)
        u, ut = target(t1, x), target(t1, xt)
        y, yt = target(t2, u), target(t2, ut)
        s1, s2 = ut[0].var(0, unbiased=False), yt[0].var(0, unbiased=False)
        blocks = [_init_per_seed(seeds_, 1, width, 1, salt=width),
                  _init_per_seed(seeds_, 1, width, 1, salt=width + 104_729)]

        def losses(xx, uu, yy):
            uh = forward_block(blocks[0], xx, act)
            yh = forward_block(blocks[1], uh, act)
            return torch.cat([_mse(uh, uu, s1), _mse(yh, yy, s2)], -1)   # (B, 2)

        _two_phase(blocks, lambda: losses(x, u, y).sum(-1), lam, steps, refit_steps, lr)
        with torch.no_grad():
            l_i = losses(xt, ut, yt)
            a1 = neuron_magnitude(blocks[0]) > threshold
            a2 = neuron_magnitude(blocks[1]) > threshold
            N_i = torch.stack([a1.sum(-1), a2.sum(-1)], -1).float()
            N = N_i.sum(-1)
            n_abl = torch.full((B,), -1)  # not defined for the structural attribution
    else:
        raise ValueError(f"composition {kind!r} is not one of {COMPOSITIONS}")
    rows = []
    for i, (r, s) in enumerate(cells):
        rows.append({"reg": float(r), "seed": int(s), "loss": float(l_i[i].sum()),
                     "loss_1": float(l_i[i, 0]), "loss_2": float(l_i[i, 1]),
                     "neurons": float(N[i]), "neurons_1": float(N_i[i, 0]), "neurons_2": float(N_i[i, 1]),
                     "neurons_ablation": int(n_abl[i])})
    return rows


# ----------------------------------------------------------------------------- statistics

def share_trend(df, share_col: str = "share_1", n_col: str = "neurons", boot: int = 1000, seed: int = 0) -> dict:
    """Does the share N_1/N stay constant as N grows? OLS slope of the share against log2 N
    (change of share per doubling of allocated neurons) with a percentile-bootstrap 95% interval
    (rows resampled), plus the mean share with its bootstrap interval and the line's R^2. Constant <=>
    slope ~ 0.

    Not `fitting.fit`: the share is fitted on its own scale with additive errors (least squares on a
    line whose slope may be 0 or negative); the fitter fits laws to log y. The additive form of the
    subtask losses, a law, is (`laws.additive`, `laws.additive_inverse`; `study.composite_fit_tables`)."""
    s = np.asarray(df[share_col], float)
    z = np.log2(np.asarray(df[n_col], float))
    rng = np.random.default_rng(seed)

    def slope(idx):
        zz, ss = z[idx], s[idx]
        v = np.var(zz)
        return np.nan if v == 0 else np.cov(zz, ss, bias=True)[0, 1] / v

    idx = np.arange(len(s))
    bs = np.array([slope(rng.integers(0, len(s), len(s))) for _ in range(boot)])
    bm = np.array([s[rng.integers(0, len(s), len(s))].mean() for _ in range(boot)])
    lo, hi = np.nanpercentile(bs, [2.5, 97.5])
    mlo, mhi = np.percentile(bm, [2.5, 97.5])
    b = slope(idx)
    resid = s - s.mean() - (0.0 if np.isnan(b) else b) * (z - z.mean())
    ss = float(np.sum((s - s.mean()) ** 2))
    return {"slope": float(b), "slope_lo": float(lo), "slope_hi": float(hi),
            "r2": 1.0 - float(np.sum(resid ** 2)) / ss if ss > 0 else float("nan"),
            "mean": float(s.mean()), "mean_lo": float(mlo), "mean_hi": float(mhi), "n": int(len(s)),
            "log2_range": float(z.max() - z.min()) if len(z) else 0.0}
