"""Evaluation: held-out cross-entropy of models on token windows or whole documents.

One entry point (`api`): an `EvalSpec` (domains, tokens per domain, window length, seed, split,
protocol, backend, batch) and `evaluate(models | states, spec) -> Evaluation` (per-domain frame,
bootstrap, per-window NLL sums), `evaluate_merges(base, experts, [Merge], spec)` for
merge-then-evaluate. Below it, in one file each:

    windows    uniform windows over a domain's split (+ the one window cache), sampled windows,
               the UTF-8 bytes of every token
    stacked    per-window NLL sums: a model's own forward, or many models on stacked weights
    stats      per-domain CE / bits-per-byte of per-window sums, their bootstrap over windows
    documents  lm-eval's rolling-window protocol on whole documents (what `lmeval` cross-checks)
"""
from scalinglaws.evaluation.api import (EVAL_BACKENDS, PROTOCOLS, EvalSpec, Evaluation, Merge, evaluate,
                                        evaluate_merges, spec_windows)
from scalinglaws.evaluation.documents import (encode_texts, evaluate_domains, evaluate_texts, evaluate_token_lists,
                                              model_context, prefix_token_id, rolling_windows)
from scalinglaws.evaluation.stacked import (BACKENDS, evaluate_stacked, stack_models, stack_states,
                                            window_loss_sums)
from scalinglaws.evaluation.stats import bootstrap_domain_ce, domain_mean_se, domain_metrics
from scalinglaws.evaluation.windows import (domain_rng, domain_windows, sample_windows, token_bytes,
                                            uniform_windows)

__all__ = ["BACKENDS", "EVAL_BACKENDS", "PROTOCOLS", "EvalSpec", "Evaluation", "Merge", "bootstrap_domain_ce",
           "domain_mean_se", "domain_metrics", "domain_rng", "domain_windows", "encode_texts", "evaluate",
           "evaluate_domains", "evaluate_merges", "evaluate_stacked", "evaluate_texts", "evaluate_token_lists",
           "model_context", "prefix_token_id", "rolling_windows", "sample_windows", "spec_windows", "stack_models",
           "stack_states", "token_bytes", "uniform_windows", "window_loss_sums"]
