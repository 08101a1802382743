"""Merge + evaluate throughput per merged model: one model at a time vs stacked merges evaluated together.

    python benchmarks/bench_eval_many.py --threads 2                     # cpu, seconds
    python benchmarks/bench_eval_many.py --size d96l6 --device cuda --models 255 --experts 8 \\
        --eval-tokens 16384                                             # the gpu merging unit

A random base and M experts (base + N(0, noise^2)) of one ladder size; the first --models
non-empty subsets of the experts (bitmask order), merged with --method. Both paths score the SAME
merges on the SAME evaluation windows (an `evaluation.EvalSpec`: --eval-tokens tokens of uniform
windows of the model context per domain's test split, as the studies use):

    (a) one at a time  per subset: `merge.merge`, `load_state_dict` into one work model, the
                 model's own forward (`evaluate` with backend "forward", --batch-size windows each)
    (b) batched  `merge.linear_merges` for all subsets of a pass at once (linear methods; others:
                 `merge.merge` per subset, then stacked), `evaluation.evaluate_stacked` on the
                 stacked weights (--backend, --models-per-pass; the studies' "stacked" backend)

Printed: ms per merged model of each path (merge and evaluation apart), the ratio, the largest CE
difference between the paths, and the conditions. Setup (model and expert build, windows,
one warm-up call of each path) is timed apart and not in the per-model figures. fp32 on both paths
unless --bf16 (then (b) runs under bf16 autocast: not equal precision, the CE difference shows it).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from scalinglaws import data as D
from scalinglaws.evaluation import EvalSpec, domain_metrics, evaluate, evaluate_stacked, spec_windows, stack_states
from scalinglaws.merge import linear_coefficient, linear_merges, merge
from scalinglaws.models import build_model, count_params


def sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def subsets(M: int, n: int) -> list[tuple[int, ...]]:
    out = [tuple(i for i in range(M) if b >> i & 1) for b in range(1, 2 ** M)]
    return out[:n]


def ce_rows(nll, ev) -> list[list[float]]:
    w, dom = spec_windows(ev)
    df = domain_metrics(np.atleast_2d(nll), w, dom, list(ev.domains))
    return [df[df["model"] == j]["ce"].tolist() for j in range(len(np.atleast_2d(nll)))]


def path_current(work, base, experts, subs, method, ev, batch_size, device):
    rows, t_merge, t_eval = [], 0.0, 0.0
    for s in subs:
        t0 = time.perf_counter()
        merged = merge(base, [experts[i] for i in s], method)
        sync(device)
        t1 = time.perf_counter()
        work.load_state_dict(merged)
        spec = EvalSpec(ev.domains, ev.tokens_per_domain, ev.seq_len, backend="forward", batch=batch_size)
        rows += ce_rows(evaluate(work, spec).nll, ev)
        sync(device)
        t_merge, t_eval = t_merge + t1 - t0, t_eval + time.perf_counter() - t1
    return np.array(rows), t_merge, t_eval


def path_batched(work, base, experts, subs, method, ev, per_pass, backend, bf16, device):
    c = linear_coefficient(method)
    names = [n for n, _ in work.named_parameters()]
    rows, t_merge, t_eval = [], 0.0, 0.0
    for p0 in range(0, len(subs), per_pass):
        chunk = subs[p0:p0 + per_pass]
        t0 = time.perf_counter()
        if c is not None:
            C = torch.zeros(len(chunk), len(experts))
            for j, s in enumerate(chunk):
                C[j, list(s)] = c / len(s)
            params = linear_merges(base, experts, C, names)
        else:
            params = stack_states(work, [merge(base, [experts[i] for i in s], method) for s in chunk])
        sync(device)
        t1 = time.perf_counter()
        rows += ce_rows(evaluate_stacked(work, params, spec_windows(ev)[0], backend=backend, autocast=bf16), ev)
        sync(device)
        t_merge, t_eval = t_merge + t1 - t0, t_eval + time.perf_counter() - t1
    return np.array(rows), t_merge, t_eval


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="d32l2")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--experts", type=int, default=4, help="M experts; subsets are drawn from them")
    p.add_argument("--models", type=int, default=15, help="merged models (first non-empty subsets)")
    p.add_argument("--method", default="average")
    p.add_argument("--domains", nargs="*", default=list(D.DOMAINS[:4]))
    p.add_argument("--eval-tokens", type=int, default=512, help="evaluation tokens per domain")
    p.add_argument("--batch-size", type=int, default=64, help="(a): windows per forward")
    p.add_argument("--models-per-pass", type=int, default=16, help="(b): merged models per stacked pass")
    p.add_argument("--backend", default="grouped", choices=["grouped", "vmap"])
    p.add_argument("--bf16", action="store_true", help="(b) under bf16 autocast (default fp32 on both)")
    p.add_argument("--noise", type=float, default=0.01)
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 on both paths: equal precision

    t0 = time.perf_counter()
    base_model = build_model(a.size, 0).to(dev).eval()
    base = base_model.state_dict()
    g = torch.Generator().manual_seed(1)
    experts = [{k: (v + a.noise * torch.randn(v.shape, generator=g).to(dev)) if v.is_floating_point() else v
                for k, v in base.items()} for _ in range(a.experts)]
    for e in experts:  # keep the tie of the base (embed = lm_head)
        e["lm_head.weight"] = e["model.embed_tokens.weight"]
    work = build_model(a.size, 0).to(dev).eval()
    ev = EvalSpec(a.domains, a.eval_tokens, base_model.config.max_position_embeddings)
    subs = subsets(a.experts, a.models)
    # warm-up of both paths on one merge
    path_current(work, base, experts, subs[:1], a.method, ev, a.batch_size, dev)
    path_batched(work, base, experts, subs[:min(len(subs), a.models_per_pass)], a.method, ev,
                 a.models_per_pass, a.backend, a.bf16, dev)
    t_setup = time.perf_counter() - t0

    ce_a, ma, ea = path_current(work, base, experts, subs, a.method, ev, a.batch_size, dev)
    ce_b, mb, eb = path_batched(work, base, experts, subs, a.method, ev, a.models_per_pass, a.backend,
                                a.bf16, dev)
    n = len(subs)
    n_tok = int(spec_windows(ev)[0][:, 1:].numel())
    ms = lambda t: 1e3 * t / n  # noqa: E731
    print(f"size {a.size} (N = {count_params(base_model)['non_embedding']:,} non-embedding, context "
          f"{base_model.config.max_position_embeddings}), device {dev}"
          + (f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else "")
          + f", {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"{n} merged models ({a.method}, subsets of {a.experts} experts), {len(a.domains)} domains x "
          f"{a.eval_tokens} tokens of uniform windows = {n_tok:,} scored tokens per model")
    print(f"(b): backend {a.backend}, {a.models_per_pass} models per pass, "
          f"{'bf16 autocast' if a.bf16 else 'fp32'}; (a): fp32, batch {a.batch_size}")
    print(f"setup (models, experts, windows, warm-up of both paths): {t_setup:.2f} s, not counted below")
    print(f"(a) current : {ms(ma + ea):8.2f} ms / merged model  (merge {ms(ma):.2f}, eval {ms(ea):.2f})")
    print(f"(b) batched : {ms(mb + eb):8.2f} ms / merged model  (merge {ms(mb):.2f}, eval {ms(eb):.2f})")
    print(f"ratio (a)/(b): {(ma + ea) / (mb + eb):.1f}x  (eval only {ea / eb:.1f}x); "
          f"{n * n_tok / (eb):,.0f} vs {n * n_tok / ea:,.0f} scored tokens/s")
    print(f"max |CE(a) - CE(b)| over models x domains: {np.abs(ce_a - ce_b).max():.2e} nats "
          f"(max rel {np.abs(ce_a / ce_b - 1).max():.1e})")


if __name__ == "__main__":
    main()
