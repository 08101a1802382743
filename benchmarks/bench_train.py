"""Training throughput per ladder size: tokens/s (and, on CUDA, MFU vs the device's bf16 peak).

    python benchmarks/bench_train.py --profile cpu --threads 2 --steps 6
    python benchmarks/bench_train.py --profile gpu --device cuda --compile

MFU = flops_per_token(config, seq_len) * tokens/s / peak, with flops_per_token the
6N + attention estimate of `scalinglaws.models.flops_per_token`. Throughput excludes the first
(warm-up / compile) steps. `tokens_per_cpu_s` divides by the process's CPU time instead of wall
time, which stays meaningful when other jobs share the cores. The peak is looked up from the device name (dense bf16, no sparsity)
or given with --peak-tflops.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch

from scalinglaws.models import build_model, count_params, flops_per_token, ladder
from scalinglaws.training import train

PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L4": 121.0, "A10": 125.0}


def device_peak(name: str) -> float | None:
    for key, value in PEAK_BF16_TFLOPS.items():
        if key in name:
            return value * 1e12
    return None


def bench_size(size, *, device, steps, warmup_steps, batch_tokens, compile, seed=0):
    model = build_model(size, seed)
    ctx = model.config.max_position_embeddings
    stream = np.random.default_rng(seed).integers(0, model.config.vocab_size, 200_000, dtype=np.uint16)
    kw = dict(batch_tokens=batch_tokens, seq_len=ctx, lr=1e-3, seed=seed, device=device,
              compile=compile, progress=False, log_every=1)
    train(model, stream, tokens=warmup_steps * batch_tokens, **kw)  # warm-up (and compile)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    cpu0 = time.process_time()
    res = train(model, stream, tokens=steps * batch_tokens, **kw)
    cpu_s = time.process_time() - cpu0
    tps = res.tokens / res.wall_s
    return {"size": size, **count_params(model), "batch_tokens": batch_tokens, "seq_len": ctx,
            "steps": res.steps, "tokens_per_s": tps,
            # tokens per second of this process's CPU time: robust to other processes sharing
            # the cores (with 1 thread it is the uncontested single-core throughput)
            "tokens_per_cpu_s": res.tokens / cpu_s,
            "achieved_tflops": flops_per_token(model.config, ctx) * tps / 1e12}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="cpu", choices=["smoke", "cpu", "gpu"])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup-steps", type=int, default=1)
    p.add_argument("--batch-tokens", type=int, default=None,
                   help="tokens per step (default 4096 on CPU, 65536 on CUDA)")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--peak-tflops", type=float, default=None)
    p.add_argument("--sizes", nargs="*", default=None)
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    cuda = a.device.startswith("cuda")
    batch_tokens = a.batch_tokens or (65536 if cuda else 4096)
    rows = []
    for size in a.sizes or ladder(a.profile):
        rows.append(bench_size(size, device=a.device, steps=a.steps, warmup_steps=a.warmup_steps,
                               batch_tokens=batch_tokens, compile=a.compile))
        print(f"{size}: {rows[-1]['tokens_per_s']:,.0f} tok/s", flush=True)
    df = pd.DataFrame(rows)
    if cuda:
        name = torch.cuda.get_device_name()
        peak = a.peak_tflops * 1e12 if a.peak_tflops else device_peak(name)
        print(f"device: {name}; peak bf16 {peak / 1e12 if peak else float('nan'):.0f} TFLOP/s")
        if peak:
            df["mfu"] = df["achieved_tflops"] * 1e12 / peak
    else:
        print(f"device: cpu, {torch.get_num_threads()} threads")
    print(df.to_string(index=False, float_format=lambda x: f"{x:,.4g}"))


if __name__ == "__main__":
    main()
