"""Top-1 routers for routed MLPs (Clark et al. 2022): S-BASE, Hash, RL-R and Switch, one class each.

Every router maps the hidden states of T tokens, x of shape (T, d), to one expert per token and a
gate that scales that expert's output:

    route = router(x, token_ids)        -> Route(index (T,) int64, gate (T,) float32, logits (T, E) | None)
    router.aux_loss(token_loss)         -> scalar auxiliary loss of the last *training* forward

`token_ids` (T,) are the input token ids (only the hash router reads them); `token_loss` (T,) is
the detached per-token cross-entropy of that forward (only RL-R reads it: it is its reward).
Router logits are x W^T with W (E, d), computed in float32 outside autocast; W starts N(0, 0.02)
like the other weights. Two options for learned routers (issue 27: at cpu they barely left uniform):
`lr_mult` (the router's learning rate times m, as a reparameterisation: `Router`) and, for Switch and
S-BASE, `gate_scale="unit"` (the expert output unscaled, the router still trained: `scale_gate`). No router drops tokens: there is no capacity limit (every token is
processed by exactly one expert), so "dropped tokens" is 0 by construction.

Conventions, and where they come from:

S-BASE (`SBaseRouter`; Megatron-LM `megatron/core/transformer/moe/moe_utils.py::sinkhorn` and
`router.py::TopKRouter.sinkhorn_load_balancing`, GPT-NeoX the same; Clark et al. 2022 sec. 2):
    training:  P = sinkhorn(logits) (fp32, no grad): cost = exp(logits), alternately rescale rows
               and columns to the uniform marginals 1/T and 1/E until the rows are uniform to
               tol = 1e-4 (mean relative row-sum error; the columns are exact after each column
               step), at most max_iter = 1000 iterations (Megatron stops on the change of the
               column scalings instead, see `sinkhorn`). Then the expert of each token:
               assignment="balanced" (default): the capacity-constrained argmax of P, every
               expert getting floor(T/E) or ceil(T/E) tokens (`balanced_assignment`: BASE's
               constraint, which fairseq's `base_layer.py` meets exactly with an auction
               algorithm); assignment="argmax": argmax_e P[t, e] (Megatron). Why the default is
               not Megatron's: argmax P = argmax_e (logits[t, e] + log d1[e]) is the raw top-1 with
               one bias per expert, and when the logits vary across tokens by much less than the
               Sinkhorn temperature 1 (our routers: centred spread 0.1-0.2 over the first 40
               steps of d32l2, E = 8) P is nearly uniform after 2-3 iterations and its argmax
               leaves loads at 1.3-2.0x the mean (raw top-1: up to 7.8x), not balanced.
    inference: expert = argmax_e logits[t, e] (plain top-1).
    gate:      sigmoid(logits[t, expert]) (Megatron's top-1 Sinkhorn activation; fairseq's BASE
               mixes sigma expert(x) + (1 - sigma) x instead). No auxiliary loss.
    exp(logits - row max) replaces exp(logits): a row's constant factor is absorbed by the row
    scaling d0 and leaves P unchanged (up to the 1e-8 guard), and it cannot overflow.

Hash (`HashRouter`; Roller et al. 2021, ParlAI `projects/params_vs_compute/hash_ladder`): a fixed
    token-id -> expert table, no learned parameter, gate 1. ParlAI draws each id's bin i.i.d.
    (random.seed(42)); we draw a seeded random *balanced* table (a permutation of the vocabulary
    cut into E equal blocks, so every expert owns floor(V/E) or ceil(V/E) ids). The table is a
    persistent buffer, saved in the checkpoint.

RL-R (`RLRouter`; Clark et al. 2022, no public code): the router is a policy pi = softmax(logits).
    training:  expert ~ pi (sampled, Gumbel-max); inference: argmax.
    gate:      1: the expert output is *not* scaled by pi, so the router learns only from
    aux loss:  rl_coef * REINFORCE + balance_coef * Switch load balancing, with
               REINFORCE = -mean_t (r_t - b) log pi(expert_t | x_t),  r_t = -token_loss_t (detached),
               b = the mean reward of the batch (the tokens of this forward).

Switch (`SwitchRouter`; Fedus et al. 2021, transformers `modeling_switch_transformers.py`, Megatron
    `switch_load_balancing_loss_func` and `z_loss_func`): expert = argmax softmax(logits), gate =
    its softmax probability, aux loss = balance_coef * E sum_i f_i P_i + z_coef * mean_t
    logsumexp(logits_t)^2 with f_i = fraction of tokens routed to i, P_i = mean router probability
    of i; balance_coef = 1e-2 (Switch's alpha), z_coef = 1e-3 (ST-MoE's). E sum f_i P_i = 1 at
    perfect balance.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from scalinglaws.core import validation as V

SINKHORN_TOL = 1e-4
SINKHORN_MAX_ITER = 1000
BALANCE_COEF = 1e-2
Z_COEF = 1e-3
RL_COEF = 1.0
# regime options (issue 27: the learned routers barely left uniform at cpu)
LR_MULT = 1.0          # router learning-rate multiplier (a reparameterisation, see `Router`)
GATE_SCALES = ("raw", "unit")
GATE_SCALE = "raw"     # "unit": the gate's value is 1, its gradient that of log gate (see `scale_gate`)


SBASE_ASSIGNMENTS = ("argmax", "balanced")


@dataclass(frozen=True)
class Option:
    """One router option: a field of `RoutedConfig` (its name, type and default) and its check
    (`check(name, value)` raises ParameterError, one line, or returns the value). A router declares
    the options it reads in its `options`; `options()` is their union, and every one of them is
    accepted (and checked) whatever the router, as before the registry (a run's `router_options`
    apply to every router of its grid)."""
    name: str
    type: type
    default: object
    check: Callable
    # left out of a routed unit's key at its default (`routed.routing_fields`): an option added after
    # the studies' first runs must be, or every stored unit's key would change and nothing would
    # resume; the six options the first runs had are part of every key (keyed=True)
    keyed: bool = False


def _at_least(lo):
    return lambda name, v: V.check_float(name, v, lo)


SINKHORN_TOL_OPTION = Option("sinkhorn_tol", float, SINKHORN_TOL, _at_least(0.0), keyed=True)
SINKHORN_MAX_ITER_OPTION = Option("sinkhorn_max_iter", int, SINKHORN_MAX_ITER,
                                  lambda name, v: V.check_int(name, v, minimum=1), keyed=True)
SBASE_ASSIGNMENT_OPTION = Option("sbase_assignment", str, "balanced",
                                 lambda name, v: V.check_choice(name, v, SBASE_ASSIGNMENTS), keyed=True)
BALANCE_COEF_OPTION = Option("balance_coef", float, BALANCE_COEF, _at_least(0.0), keyed=True)
Z_COEF_OPTION = Option("z_coef", float, Z_COEF, _at_least(0.0), keyed=True)
RL_COEF_OPTION = Option("rl_coef", float, RL_COEF, _at_least(0.0), keyed=True)
# a multiplier > 0; 1e3 bounds a typo, not a design
LR_MULT_OPTION = Option("router_lr_mult", float, LR_MULT,
                        lambda name, v: V.check_float(name, v, 0.0, 1e3, open_interval=True))
GATE_SCALE_OPTION = Option("gate_scale", str, GATE_SCALE, lambda name, v: V.check_choice(name, v, GATE_SCALES))


class Route(NamedTuple):
    index: torch.Tensor          # (T,) int64 expert per token
    gate: torch.Tensor           # (T,) float32 scale of the expert output
    logits: torch.Tensor | None  # (T, E) float32 router logits (None: no learned router)


# ---------------------------------------------------------------------------------------------
# building blocks


@torch.no_grad()
def sinkhorn(logits: torch.Tensor, tol: float = SINKHORN_TOL, max_iter: int = SINKHORN_MAX_ITER,
             return_info: bool = False):
    """Balanced routing matrix P = diag(d0) C diag(d1), C = exp(logits), with rows summing to 1/T
    and columns to 1/E (Megatron-LM's `sinkhorn` iteration in float32, with a marginal-based
    stopping rule and an iteration cap).

    Iteration (Megatron): d0 = (1/T) / (C d1 + eps), d1 = (1/E) / (C^T d0 + eps), eps = 1e-8.
    After each column step the columns sum to 1/E exactly; stop when the rows are uniform to the
    tolerance, mean_t |T sum_e P[t, e] - 1| <= tol (computed for free: C d1 is the next row
    step's), or after max_iter iterations. Megatron stops when the mean change of d1 is <= 1e-4,
    which on peaked logits can stop with rows several percent off 1/T (and never stops when d1
    drifts in scale); on ordinary logits the two rules stop within a few iterations of each other.
    C uses the logits minus each row's maximum: a row's constant factor is absorbed by d0 (P is
    unchanged), nothing overflows, and the 1e-8 guard stays negligible (every row sum is >= 1).
    `return_info` adds {'iterations', 'error'} (error = the final mean row error).
    """
    x = logits.float()
    cost = torch.exp(x - x.max(dim=1, keepdim=True).values)
    T, E = cost.shape
    eps = 1e-8
    d1 = torch.ones(E, device=cost.device, dtype=cost.dtype)
    c_d1 = cost @ d1
    err, it = float("inf"), 0
    for it in range(1, max_iter + 1):
        d0 = (1.0 / T) / (c_d1 + eps)
        d1 = (1.0 / E) / (cost.t() @ d0 + eps)
        c_d1 = cost @ d1
        err = float((T * d0 * c_d1 - 1.0).abs().mean())
        if err <= tol:
            break
    P = d1 * cost * d0.unsqueeze(1)
    return (P, {"iterations": it, "error": err}) if return_info else P


@torch.no_grad()
def balanced_assignment(scores: torch.Tensor) -> torch.Tensor:
    """Top-1 assignment of T tokens to E experts with every expert getting floor(T/E) or
    ceil(T/E) tokens, greedy by score.

    Rounds: every unassigned token claims its best expert among those with room; an expert keeps
    its highest-scoring claimants up to its remaining room, the others claim again (that expert
    is now full). First every expert has room floor(T/E), then the T mod E leftover tokens get
    room for one more each. Each round fills an expert or settles every claim, so there are at
    most 2 (E + 1) rounds. Returns the expert of each token, (T,) int64.
    """
    T, E = scores.shape
    dev = scores.device
    index = torch.full((T,), -1, dtype=torch.long, device=dev)
    load = torch.zeros(E, dtype=torch.long, device=dev)
    s = scores.float()
    q = T // E
    for cap in (q, q + 1):
        for _ in range(E + 1):
            todo = (index < 0).nonzero().squeeze(1)
            room = cap - load
            if todo.numel() == 0 or not bool((room > 0).any()):
                break
            cand = s[todo].masked_fill((room <= 0).unsqueeze(0), float("-inf"))
            val, choice = cand.max(dim=1)
            # rank of each claimant within its expert, best score first
            order = torch.argsort(val, descending=True, stable=True)
            order = order[torch.argsort(choice[order], stable=True)]
            counts = torch.bincount(choice, minlength=E)
            starts = torch.cumsum(counts, 0) - counts
            rank = torch.empty_like(order)
            rank[order] = torch.arange(order.numel(), device=dev) - starts[choice[order]]
            ok = rank < room[choice]
            index[todo[ok]] = choice[ok]
            load += torch.bincount(choice[ok], minlength=E)
    return index


def load_balancing_loss(probs: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Switch Transformer's E sum_i f_i P_i: f_i = fraction of tokens routed to expert i (no
    gradient), P_i = mean router probability of expert i. Equals 1 at perfect balance."""
    E = probs.shape[-1]
    f = torch.bincount(index, minlength=E).to(probs.dtype) / index.numel()
    return E * torch.sum(f * probs.mean(dim=0))


def z_loss(logits: torch.Tensor) -> torch.Tensor:
    """ST-MoE's router z-loss: mean_t logsumexp(logits_t)^2."""
    return torch.logsumexp(logits, dim=-1).square().mean()


def hash_table(vocab_size: int, num_experts: int, seed: int) -> torch.Tensor:
    """Seeded balanced random token-id -> expert table: a random permutation of the ids, cut
    into E blocks (expert e owns the ids at permuted positions p with p mod E == e)."""
    perm = np.random.default_rng(seed).permutation(vocab_size)
    table = np.empty(vocab_size, dtype=np.int64)
    table[perm] = np.arange(vocab_size) % num_experts
    return torch.from_numpy(table)


# ---------------------------------------------------------------------------------------------
# routers


def scale_gate(gate: torch.Tensor, gate_scale: str) -> torch.Tensor:
    """The gate a learned router applies. "raw": as computed (Switch's softmax probability, ~1/E
    at initialisation; S-BASE's sigmoid, ~0.5), which scales the expert output down early;
    "unit": gate / stopgrad(gate), whose value is exactly 1 (the expert output unscaled, like the
    dense MLP's) while the router still receives the gradient of the loss through log gate."""
    if gate_scale == "raw":
        return gate
    if gate_scale == "unit":
        return gate / gate.detach()
    raise ValueError(f"gate_scale={gate_scale!r} is not one of {list(GATE_SCALES)}")


class Router(nn.Module):
    """Base class: a linear router W (E, d) (learned routers) and the aux-loss protocol.

    A router declares, as class attributes, everything the rest of the code knows about it (the
    registry `ROUTER_CLASSES` is the one source; `models.routed` and the studies derive from it):
    `kind` (its name in configs, unit keys and tables), `display` (its name in the book's figures,
    tables and claims), `learned` (has a weight W; counted in parameters and FLOPs, has a routing
    entropy), `gate_one` (its gate is the constant 1, so an upcycled model computes the dense
    function at E = 1: the composition study's upcycled arm needs it) and `options` (the
    `RoutedConfig` fields it reads, with their checks).

    `lr_mult` m: the router's effective learning rate is m times the model's. Implemented as a
    reparameterisation, W = m W' with W' the trained parameter (`weight`), initialised at
    N(0, 0.02) / m so that W starts as before: AdamW's update of W' is (to its eps) invariant to the
    gradient's scale, so W moves m times as far per step, and decoupled weight decay shrinks W' and
    W by the same fraction. No trainer change and no optimiser group; m = 1 is the plain router
    bit for bit. (Gradient clipping sees m times W's gradient: a global-norm clip then binds a bit
    sooner, on every parameter alike.)"""

    kind = ""
    display = ""
    learned = True
    gate_one = False
    options: tuple[Option, ...] = (LR_MULT_OPTION,)

    def __init__(self, hidden_size: int, num_experts: int, lr_mult: float = LR_MULT):
        super().__init__()
        self.hidden_size, self.num_experts = int(hidden_size), int(num_experts)
        self.lr_mult = float(lr_mult)
        if not self.lr_mult > 0:
            raise ValueError(f"lr_mult={lr_mult!r} must be > 0")
        if self.learned:
            self.weight = nn.Parameter(torch.empty(self.num_experts, self.hidden_size))
            nn.init.normal_(self.weight, std=0.02 / self.lr_mult)
        self._last: dict = {}

    def router_logits(self, x: torch.Tensor) -> torch.Tensor:
        """x W^T in float32 (W = lr_mult x weight), outside any autocast (routing decisions are
        precision-sensitive)."""
        with torch.autocast(x.device.type, enabled=False):
            w = self.weight.float()
            return F.linear(x.float(), w if self.lr_mult == 1.0 else w * self.lr_mult)

    def aux_loss(self, token_loss: torch.Tensor | None = None) -> torch.Tensor:
        """Auxiliary loss of the last training forward (0 when the router has none)."""
        self._last = {}
        return torch.zeros((), device=self._device())

    def _device(self):
        for t in list(self.parameters()) + list(self.buffers()):
            return t.device
        return torch.device("cpu")

    def extra_repr(self) -> str:
        return f"kind={self.kind}, hidden_size={self.hidden_size}, num_experts={self.num_experts}"


class SwitchRouter(Router):
    """Top-1 softmax router with Switch load balancing and z-loss (see the module docstring)."""

    kind = "switch"
    display = "Switch top-1"
    options = (BALANCE_COEF_OPTION, Z_COEF_OPTION, LR_MULT_OPTION, GATE_SCALE_OPTION)

    @classmethod
    def from_config(cls, config, layer_idx: int) -> "SwitchRouter":
        return cls(config.hidden_size, config.num_local_experts, balance_coef=config.balance_coef, z_coef=config.z_coef,
                   lr_mult=config.router_lr_mult, gate_scale=config.gate_scale)

    def __init__(self, hidden_size, num_experts, balance_coef: float = BALANCE_COEF, z_coef: float = Z_COEF,
                 lr_mult: float = LR_MULT, gate_scale: str = GATE_SCALE):
        super().__init__(hidden_size, num_experts, lr_mult)
        self.balance_coef, self.z_coef = float(balance_coef), float(z_coef)
        scale_gate(torch.ones(1), gate_scale)  # rejects an unknown scale at construction
        self.gate_scale = gate_scale

    def forward(self, x, token_ids=None) -> Route:
        logits = self.router_logits(x)
        probs = torch.softmax(logits, dim=-1)
        gate, index = probs.max(dim=-1)
        if self.training:
            self._last = {"logits": logits, "probs": probs, "index": index}
        return Route(index, scale_gate(gate, self.gate_scale), logits)

    def aux_loss(self, token_loss=None):
        last, self._last = self._last, {}
        if not last:
            return torch.zeros((), device=self._device())
        return (self.balance_coef * load_balancing_loss(last["probs"], last["index"])
                + self.z_coef * z_loss(last["logits"]))


class SBaseRouter(Router):
    """Sinkhorn-BASE: balanced assignment in training, top-1 at inference, sigmoid gate."""

    kind = "sbase"
    display = "S-BASE"
    options = (SINKHORN_TOL_OPTION, SINKHORN_MAX_ITER_OPTION, SBASE_ASSIGNMENT_OPTION, LR_MULT_OPTION,
               GATE_SCALE_OPTION)

    @classmethod
    def from_config(cls, config, layer_idx: int) -> "SBaseRouter":
        return cls(config.hidden_size, config.num_local_experts, tol=config.sinkhorn_tol,
                   max_iter=config.sinkhorn_max_iter, assignment=config.sbase_assignment,
                   lr_mult=config.router_lr_mult, gate_scale=config.gate_scale)

    def __init__(self, hidden_size, num_experts, tol: float = SINKHORN_TOL,
                 max_iter: int = SINKHORN_MAX_ITER, assignment: str = "balanced",
                 lr_mult: float = LR_MULT, gate_scale: str = GATE_SCALE):
        super().__init__(hidden_size, num_experts, lr_mult)
        scale_gate(torch.ones(1), gate_scale)
        self.gate_scale = gate_scale
        if assignment not in SBASE_ASSIGNMENTS:
            raise ValueError(f"assignment={assignment!r} is not one of {list(SBASE_ASSIGNMENTS)}")
        self.tol, self.max_iter, self.assignment = float(tol), int(max_iter), assignment
        self.last_sinkhorn: dict = {}

    def forward(self, x, token_ids=None) -> Route:
        logits = self.router_logits(x)
        if self.training:
            P, info = sinkhorn(logits.detach(), self.tol, self.max_iter, return_info=True)
            self.last_sinkhorn = info
            index = P.argmax(dim=-1) if self.assignment == "argmax" else balanced_assignment(P)
        else:
            index = logits.argmax(dim=-1)
        gate = torch.sigmoid(logits.gather(1, index.unsqueeze(1)).squeeze(1))
        return Route(index, scale_gate(gate, self.gate_scale), logits)


def block_seed(hash_seed: int, layer_idx: int) -> int:
    """The hash table seed of one routed block."""
    return int(hash_seed) * 1000 + int(layer_idx)


class HashRouter(Router):
    """Fixed seeded token-id -> expert table (a persistent buffer), gate 1."""

    kind = "hash"
    display = "Hash"
    learned = False
    gate_one = True
    options = ()

    @classmethod
    def from_config(cls, config, layer_idx: int) -> "HashRouter":
        """One table per routed block: seed hash_seed * 1000 + block index."""
        return cls(config.num_local_experts, config.vocab_size, seed=block_seed(config.hash_seed, layer_idx),
                   hidden_size=config.hidden_size)

    def __init__(self, num_experts: int, vocab_size: int, seed: int = 0, hidden_size: int = 0):
        super().__init__(hidden_size, num_experts)
        self.vocab_size, self.seed = int(vocab_size), int(seed)
        self.register_buffer("table", hash_table(self.vocab_size, self.num_experts, self.seed), persistent=True)

    def forward(self, x, token_ids=None) -> Route:
        if token_ids is None:
            raise ValueError("the hash router needs the input token ids: call the model with input_ids "
                             "(not inputs_embeds)")
        token_ids = token_ids.reshape(-1)
        if token_ids.numel() != x.shape[0]:
            raise ValueError(f"hash router got {token_ids.numel()} token ids for {x.shape[0]} hidden states")
        index = self.table[token_ids.to(self.table.device)].to(x.device)
        return Route(index, torch.ones(index.shape, dtype=torch.float32, device=x.device), None)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", vocab_size={self.vocab_size}, seed={self.seed}"


class RLRouter(Router):
    """RL-R: a softmax policy trained by REINFORCE on the per-token reward -loss (module docstring)."""

    kind = "rlr"
    display = "RL-R"
    gate_one = True
    options = (RL_COEF_OPTION, BALANCE_COEF_OPTION, LR_MULT_OPTION)

    @classmethod
    def from_config(cls, config, layer_idx: int) -> "RLRouter":
        return cls(config.hidden_size, config.num_local_experts, rl_coef=config.rl_coef, balance_coef=config.balance_coef,
                   lr_mult=config.router_lr_mult)

    def __init__(self, hidden_size, num_experts, rl_coef: float = RL_COEF, balance_coef: float = BALANCE_COEF,
                 lr_mult: float = LR_MULT):
        super().__init__(hidden_size, num_experts, lr_mult)
        self.rl_coef, self.balance_coef = float(rl_coef), float(balance_coef)

    def forward(self, x, token_ids=None) -> Route:
        logits = self.router_logits(x)
        if self.training:
            logp = torch.log_softmax(logits, dim=-1)
            u = torch.rand_like(logits).clamp_(1e-20, 1.0 - 1e-7)
            index = (logp.detach() - torch.log(-torch.log(u))).argmax(dim=-1)  # Gumbel-max: index ~ pi
            self._last = {"logp": logp.gather(1, index.unsqueeze(1)).squeeze(1), "probs": logp.exp(),
                          "index": index}
        else:
            index = logits.argmax(dim=-1)
        return Route(index, torch.ones(index.shape, dtype=torch.float32, device=x.device), logits)

    def aux_loss(self, token_loss=None):
        last, self._last = self._last, {}
        if not last:
            return torch.zeros((), device=self._device())
        if token_loss is None:
            raise ValueError("RL-R needs the per-token loss of the forward as its reward (token_loss)")
        reward = -token_loss.detach().reshape(-1).float().to(last["logp"].device)
        if reward.numel() != last["logp"].numel():
            raise ValueError(f"token_loss has {reward.numel()} entries for {last['logp'].numel()} routed tokens")
        advantage = reward - reward.mean()
        reinforce = -(advantage * last["logp"]).mean()
        return self.rl_coef * reinforce + self.balance_coef * load_balancing_loss(last["probs"], last["index"])


# The router registry: adding a router is one class above and one entry here (ARCHITECTURE.md).
# The order is the book's (figures, tables, claims) and the routing study's default grid.
ROUTER_CLASSES: dict[str, type[Router]] = {c.kind: c for c in (SBaseRouter, RLRouter, HashRouter, SwitchRouter)}


# Everything below is derived from ROUTER_CLASSES, as functions: a router registered later (a
# test's temporary one) is seen by every caller.
def routers() -> tuple[str, ...]:
    """Every registered router kind, in the registry's order."""
    return tuple(ROUTER_CLASSES)


def display_names() -> dict[str, str]:
    """{kind: display name} of every registered router."""
    return {k: c.display or k for k, c in ROUTER_CLASSES.items()}


def gate_one_routers() -> tuple[str, ...]:
    """The routers whose gate is the constant 1 (`Router.gate_one`)."""
    return tuple(k for k, c in ROUTER_CLASSES.items() if c.gate_one)


def learned_routers() -> tuple[str, ...]:
    """The routers with a learned weight (`Router.learned`)."""
    return tuple(k for k, c in ROUTER_CLASSES.items() if c.learned)


def options() -> dict[str, Option]:
    """{name: Option}: every option any registered router reads, in the registry's order."""
    out: dict[str, Option] = {}
    for c in ROUTER_CLASSES.values():
        for o in c.options:
            if out.setdefault(o.name, o) is not o:
                raise RuntimeError(f"router option {o.name!r} is declared twice, differently ({c.kind})")
    return out


def check_options(given: dict) -> dict:
    """Router options by name: an unknown name, or a value its `Option.check` refuses, is one
    ParameterError line. Returns `given`."""
    known = options()
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise V.ParameterError(f"unknown router option(s) {unknown}; allowed: {list(known)}")
    for name, value in given.items():
        known[name].check(name, value)
    return given


ROUTERS: tuple[str, ...] = routers()  # the shipped routers (import-time snapshot; call routers() for the live registry)
