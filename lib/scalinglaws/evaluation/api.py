"""The one evaluation entry point: `EvalSpec`, `evaluate`, `evaluate_merges` (see the section
comment below and ARCHITECTURE.md)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from scalinglaws import data
from scalinglaws.core.validation import ParameterError, check_int
from scalinglaws.evaluation.documents import evaluate_domains
from scalinglaws.evaluation.stacked import evaluate_stacked, stack_models, stack_states, window_loss_sums
from scalinglaws.evaluation.stats import bootstrap_domain_ce, domain_metrics
from scalinglaws.evaluation.windows import domain_windows

# ---------------------------------------------------------------------------------------------
# the one entry point: an EvalSpec says what a model is scored on and how; `evaluate` scores
# models (or state dicts in one model's architecture) on it, `evaluate_merges` merges first.
#
# Studies build an EvalSpec from their unit configs (the configs, and hence the unit keys, are
# unchanged) and read the per-domain frame or the per-window NLL sums from the `Evaluation`.
# Both backends are kept because each study's stored numbers were computed with one of them and
# the two agree only to float rounding: "stacked" (`evaluate_stacked`: many models of one shape
# per pass, every domain's windows together) and "forward" (the model's own forward through
# `window_loss_sums`, one domain at a time: any model, routed ones included).

PROTOCOLS = ("uniform", "documents")
EVAL_BACKENDS = ("stacked", "forward")


@dataclass(frozen=True)
class EvalSpec:
    """What to score and how. protocol "uniform": ceil(tokens_per_domain / seq_len) windows of
    seq_len + 1 tokens per domain, starts uniform over the `split` (`uniform_windows`, seeded per
    (seed, domain)); seq_len None = the model's context. protocol "documents": the first
    `max_docs` whole documents of each domain scored by lm-eval's rolling windows
    (`evaluate_domains`; `lmeval.run_lmeval_spec` runs lm-eval itself on the same spec).
    backend and batch: "stacked" scores `batch` models per `evaluate_stacked` call (None: all
    at once); "forward" runs `batch` windows per forward (None: 64). Validated on construction."""
    domains: tuple
    tokens_per_domain: int | None = None
    seq_len: int | None = None
    seed: int = 0
    split: str = "test"
    protocol: str = "uniform"
    max_docs: int | None = None
    backend: str = "stacked"
    batch: int | None = None

    def __post_init__(self):
        from scalinglaws.core.validation import check_choice, check_list
        domains = check_list("domains", self.domains, "domain names")
        if not domains or not all(isinstance(d, str) for d in domains) or len(set(domains)) != len(domains):
            raise ParameterError(f"domains must be a non-empty list of distinct domain names, got {domains!r}")
        object.__setattr__(self, "domains", tuple(domains))
        check_choice("split", self.split, data.SPLITS)
        check_choice("protocol", self.protocol, PROTOCOLS)
        check_choice("backend", self.backend, EVAL_BACKENDS)
        check_int("seed", self.seed, minimum=0)
        for name in ("seq_len", "batch", "max_docs"):
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name), minimum=1)
        if self.protocol == "uniform":
            check_int("tokens_per_domain", self.tokens_per_domain, minimum=1)
            if self.max_docs is not None:
                raise ParameterError("max_docs belongs to protocol='documents'")
        elif self.tokens_per_domain is not None:
            raise ParameterError("tokens_per_domain belongs to protocol='uniform'")



def spec_windows(spec: EvalSpec, seq_len: int | None = None) -> tuple[torch.Tensor, np.ndarray]:
    """(windows (n, T + 1), domain index (n,)) of a uniform spec: equal to `uniform_windows(
    spec.domains, ...)`; `seq_len` is used when the spec leaves it to the model."""
    T = spec.seq_len or seq_len
    if spec.protocol != "uniform" or T is None:
        raise ParameterError("spec_windows needs protocol='uniform' and a seq_len")
    per = [domain_windows(d, spec.tokens_per_domain, T, spec.seed, spec.split) for d in spec.domains]
    return torch.cat(per), np.concatenate([np.full(len(w), i) for i, w in enumerate(per)])


@dataclass
class Evaluation:
    """The scores of B models on one spec. nll: (B, n) per-window NLL sums (nats) over `windows`
    ((n, T + 1), domain index `domain`); `frame()` the per-domain table, `bootstrap()` with
    sampling errors, `window_sums(b, domain)` one model's windows of one domain. A documents
    evaluation has no windows: `frame()` is `evaluate_domains`' table (column `model`)."""
    spec: EvalSpec
    nll: np.ndarray | None
    windows: torch.Tensor | None
    domain: np.ndarray | None
    documents: pd.DataFrame | None = None

    def frame(self, model: int | None = None) -> pd.DataFrame:
        """`domain_metrics` rows: every model with column `model`, or model `model` without it."""
        if self.documents is not None:
            return (self.documents if model is None else
                    self.documents[self.documents["model"] == model].drop(columns="model").reset_index(drop=True))
        nll = self.nll if model is None else self.nll[model]
        return domain_metrics(nll, self.windows, self.domain, list(self.spec.domains))

    def bootstrap(self, n_boot: int, seed: int, model: int | None = None, rows=None) -> pd.DataFrame:
        """`bootstrap_domain_ce` of every model (or of model `model`, without column `model`), or
        of `rows` ((R, n) NLL sums built from `nll`, e.g. paired differences)."""
        nll = rows if rows is not None else (self.nll if model is None else self.nll[model])
        return bootstrap_domain_ce(nll, self.windows, self.domain, list(self.spec.domains), n_boot=n_boot, seed=seed)

    def window_sums(self, model: int, domain: str) -> np.ndarray:
        return self.nll[model, self.domain == self.spec.domains.index(domain)]


def _as_models(models) -> list:
    models = list(models) if isinstance(models, (list, tuple)) else [models]
    if not models:
        raise ParameterError("models must be a model or a non-empty list of models")
    return models


def evaluate(models, spec: EvalSpec, *, states=None) -> Evaluation:
    """Score `models` (one model or a list of models of one shape) on `spec`; with `states` (a
    list of state dicts, or callables returning one, for merges built only when their batch is
    scored) score those in the architecture of the single model `models` instead."""
    if not isinstance(spec, EvalSpec):
        raise ParameterError(f"spec must be an EvalSpec, got {type(spec).__name__}")
    models = _as_models(models)
    if states is not None:
        if len(models) != 1:
            raise ParameterError("states are scored in the architecture of one model, got several")
        if isinstance(states, dict) or not isinstance(states, (list, tuple)) or not states:
            raise ParameterError("states must be a non-empty list of state dicts")
    if spec.protocol == "documents":
        return _evaluate_documents(models, spec, states)
    arch = models[0]
    win, dom = spec_windows(spec, int(arch.config.max_position_embeddings))
    if spec.backend == "stacked":
        nll = _stacked(models, states, win, spec.batch)
    else:
        nll = _forward(models, states, spec, win.shape[1] - 1)
    return Evaluation(spec, nll, win, dom)


def _state(s):
    return s() if callable(s) else s


def _stacked(models, states, win, batch) -> np.ndarray:
    """(B, n) NLL sums, `batch` models per `evaluate_stacked` call (their states stacked per call)."""
    arch = models[0]
    items = list(states) if states is not None else models
    step = batch or len(items)
    out = []
    for i in range(0, len(items), step):
        chunk = items[i:i + step]
        params = (stack_states(arch, [_state(s) for s in chunk]) if states is not None else stack_models(chunk))
        out.append(evaluate_stacked(arch, params, win))
    return np.concatenate(out)


def _forward(models, states, spec: EvalSpec, T: int) -> np.ndarray:
    """(B, n) NLL sums, each model's own forward (`window_loss_sums`), one domain at a time."""
    import copy

    def scored():
        if states is None:
            yield from models
            return
        work = copy.deepcopy(models[0])
        for s in states:
            work.load_state_dict(_state(s))
            yield work

    rows = []
    for model in scored():
        model.eval()
        per = [window_loss_sums(model, domain_windows(d, spec.tokens_per_domain, T, spec.seed, spec.split)
                                .to(model.device), chunk=spec.batch or 64) for d in spec.domains]
        rows.append(np.concatenate(per))
    return np.stack(rows)


def _evaluate_documents(models, spec: EvalSpec, states) -> Evaluation:
    import copy

    from scalinglaws.data.tokenizer import load_tokenizer
    tok = load_tokenizer()
    scored = models
    if states is not None:
        scored = []
        for s in states:
            work = copy.deepcopy(models[0])
            work.load_state_dict(_state(s))
            scored.append(work)
    frames = [evaluate_domains(m, tok, list(spec.domains), split=spec.split, max_docs=spec.max_docs,
                               batch_size=spec.batch or 32).assign(model=j) for j, m in enumerate(scored)]
    return Evaluation(spec, None, None, None, pd.concat(frames, ignore_index=True))


@dataclass(frozen=True)
class Merge:
    """One merge of `evaluate_merges`: the experts (indices into its expert states) merged with
    the registered `method` (`merge.METHODS`) and its options, random draws seeded by `seed`."""
    experts: tuple
    method: str
    seed: int = 0
    options: dict = field(default_factory=dict)


def evaluate_merges(base_model, expert_states, merges, spec: EvalSpec) -> Evaluation:
    """Merge-then-evaluate, the loop every study runs: each `Merge` of `merges` applied to the
    base's state dict and `expert_states` (`merge.merge`), scored on `spec` in the base's
    architecture (model b of the result is merges[b]). Every merge is validated before any is
    computed; a merge is built only when its batch of `spec.batch` models is scored, so memory
    holds one batch of merged states."""
    from scalinglaws.merge import check_merge, merge
    merges = list(merges)
    if not merges:
        raise ParameterError("merges must be a non-empty list of Merge")
    for i, m in enumerate(merges):
        if not isinstance(m, Merge):
            raise ParameterError(f"merges[{i}] must be a Merge, got {type(m).__name__}")
        bad = [e for e in m.experts if not (isinstance(e, int) and 0 <= e < len(expert_states))]
        if bad or not m.experts:
            raise ParameterError(f"merges[{i}].experts must be indices in [0, {len(expert_states)}), got {m.experts}")
        check_merge(m.method, len(m.experts), m.seed, m.options)
    base = base_model.state_dict()

    def build(m):
        return lambda: merge(base, [expert_states[e] for e in m.experts], m.method, seed=m.seed, **m.options)

    return evaluate(base_model, spec, states=[build(m) for m in merges])
