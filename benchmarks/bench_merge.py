"""Throughput of scalinglaws.merge: merges/second per method and model size, bandwidth against
the machine's copy bandwidth, and our merge next to mergekit's run_merge on saved checkpoints.

    .venv/bin/python benchmarks/bench_merge.py                      # 1M, 5M, 20M params, k = 8
    .venv/bin/python benchmarks/bench_merge.py --sizes 1M --k 4 --methods ties,della

State dicts have the shapes of a LlamaForCausalLM (tied embeddings) built on the meta device;
values are random (base ~ N(0, 0.02^2), experts = base + N(0, 1e-3^2)).
Bytes moved by one merge = (k + 1) reads + 1 write of every float32 parameter. The floor is the
time a plain `dst.copy_(src)` needs to move those bytes at the measured copy bandwidth
(read + write), so `x floor` = merge time / that time (1.0 would be memory-bound optimal).
The mergekit comparison saves base + 2 experts as safetensors checkpoints and times
run_merge (in process, import excluded) against our load + merge + save of the same files, at
IDENTICAL options: for the methods with a rescale option (dare*, della*) both use the L1-norm match
per tensor (our rescale="l1" = mergekit's `rescale: true`), never our default "inverse" against
mergekit's "l1"; the options are printed beside each ratio.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from scalinglaws.merge import METHODS, merge, resolve_options, to_mergekit_yaml

# hidden, layers, intermediate (heads = hidden / 32); vocab from --vocab
SIZES = {"1M": (96, 4, 256), "5M": (256, 4, 688), "20M": (384, 10, 1024)}


def llama_config(size: str, vocab: int):
    from transformers import LlamaConfig
    hidden, layers, inter = SIZES[size]
    return LlamaConfig(hidden_size=hidden, num_hidden_layers=layers, intermediate_size=inter,
                       num_attention_heads=hidden // 32, num_key_value_heads=hidden // 32,
                       vocab_size=vocab, max_position_embeddings=256, tie_word_embeddings=True)


def random_states(cfg, k: int, device: str, seed: int = 0):
    """Base and k expert state dicts with LlamaForCausalLM names/shapes (lm_head tied)."""
    from transformers import LlamaForCausalLM
    with torch.device("meta"):
        shapes = {n: t.shape for n, t in LlamaForCausalLM(cfg).state_dict().items()}
    g = torch.Generator(device=device).manual_seed(seed)
    base = {n: 0.02 * torch.randn(s, generator=g, device=device) for n, s in shapes.items()
            if n != "lm_head.weight"}
    experts = [{n: t + 1e-3 * torch.randn(t.shape, generator=g, device=device)
                for n, t in base.items()} for _ in range(k)]
    for sd in [base, *experts]:
        sd["lm_head.weight"] = sd["model.embed_tokens.weight"]
    return base, experts


def n_params(sd) -> int:
    return sum(t.numel() for n, t in sd.items() if n != "lm_head.weight")


def timed(fn, repeats: int, device: str) -> float:
    best = float("inf")
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def copy_bandwidth(numel: int, device: str, repeats: int) -> float:
    """Bytes/s of dst.copy_(src) (read + write) of a float32 buffer of `numel` entries."""
    src = torch.randn(numel, device=device)
    dst = torch.empty_like(src)
    t = timed(lambda: dst.copy_(src), repeats + 2, device)
    return 2 * src.numel() * 4 / t


def bench_memory(args) -> list[dict]:
    rows = []
    for size in args.sizes:
        cfg = llama_config(size, args.vocab)
        base, experts = random_states(cfg, args.k, args.device)
        P = n_params(base)
        moved = (args.k + 2) * P * 4
        bw = copy_bandwidth(moved // 8, args.device, args.repeats)  # same bytes moved
        for method in args.methods:
            t = timed(lambda b=base, e=experts, m=method: merge(b, e, m), args.repeats, args.device)
            rows.append({"size": size, "params": P, "k": args.k, "method": method,
                         "seconds": t, "merges_per_s": 1 / t, "GB_per_s": moved / t / 1e9,
                         "copy_GB_per_s": bw / 1e9, "x_floor": t / (moved / bw)})
            print(f"  {size:>4} {method:<16} {t:8.3f} s", flush=True)
        del base, experts
    return rows


def bench_mergekit(args) -> list[dict]:
    """run_merge vs our load + merge + save on base + 2 experts saved as safetensors."""
    import yaml
    from mergekit.config import MergeConfiguration
    from mergekit.merge import run_merge
    from mergekit.options import MergeOptions
    from safetensors.torch import load_file, save_file
    from transformers import LlamaForCausalLM

    cfg = llama_config(args.mergekit_size, args.vocab)
    base, experts = random_states(cfg, 2, "cpu", seed=1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, sd in enumerate([base, *experts]):
            model = LlamaForCausalLM(cfg)
            model.load_state_dict(sd)
            paths.append(str(Path(tmp) / f"m{i}"))
            model.save_pretrained(paths[-1])
        del model

        def ours(method):
            sds = [load_file(f"{p}/model.safetensors") for p in paths]
            for sd in sds:  # saved tied: restore the alias as model.state_dict() has it
                sd.setdefault("lm_head.weight", sd["model.embed_tokens.weight"])
            out = merge(sds[0], sds[1:], method, **same_opts(method))
            out.pop("lm_head.weight")
            save_file(out, f"{tmp}/ours.safetensors")

        def same_opts(method):  # identical arithmetic on both sides
            return {"rescale": "l1"} if "rescale" in METHODS[method].defaults else {}

        for method in args.mergekit_methods:
            config = MergeConfiguration.model_validate(
                yaml.safe_load(to_mergekit_yaml(method, paths[0], paths[1:], **same_opts(method))))
            options = MergeOptions(copy_tokenizer=False, write_model_card=False, quiet=True,
                                   device=args.device, num_threads=args.threads)
            t_mk = timed(lambda: run_merge(config, f"{tmp}/mk_{method}", options),
                         args.repeats, "cpu")
            t_ours = timed(lambda: ours(method), args.repeats, "cpu")
            t_mem = timed(lambda: merge(base, experts, method, **same_opts(method)), args.repeats, "cpu")
            rows.append({"size": args.mergekit_size, "params": n_params(base), "method": method,
                         "ours_files_s": t_ours, "ours_memory_s": t_mem,
                         "mergekit_s": t_mk, "mergekit_over_ours": t_mk / t_ours})
            print(f"  mergekit {method:<16} {t_mk:.3f} s vs ours {t_ours:.3f} s -> {t_mk / t_ours:.2f}x  "
                  f"[conditions: same files (base + {len(paths) - 1} experts, {args.mergekit_size}), options "
                  f"{resolve_options(method, same_opts(method))} on both sides, {args.threads} threads, "
                  f"{args.device}]", flush=True)
    return rows


def table(rows: list[dict], cols: list[str]) -> str:
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)
    cells = [[fmt(r[c]) for c in cols] for r in rows]
    width = [max(len(c), *(len(x[i]) for x in cells)) for i, c in enumerate(cols)]
    line = lambda xs: "  ".join(x.rjust(w) for x, w in zip(xs, width))
    return "\n".join([line(cols), line(["-" * w for w in width]), *map(line, cells)])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1M,5M,20M", help=f"comma list of {list(SIZES)}")
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (shared machine)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--mergekit-size", default="5M", help="size for the run_merge comparison")
    ap.add_argument("--mergekit-methods", default="task_arithmetic,ties,della")
    ap.add_argument("--no-mergekit", action="store_true")
    ap.add_argument("--json", help="also write the rows to this JSON file")
    args = ap.parse_args(argv)
    args.sizes = args.sizes.split(",")
    args.methods = args.methods.split(",")
    args.mergekit_methods = args.mergekit_methods.split(",")
    bad = [s for s in args.sizes + [args.mergekit_size] if s not in SIZES]
    bad += [m for m in args.methods + args.mergekit_methods if m not in METHODS]
    if bad:
        ap.error(f"unknown size(s)/method(s) {bad}")
    torch.set_num_threads(args.threads)

    print(f"device={args.device} threads={args.threads} k={args.k} torch={torch.__version__}")
    rows = bench_memory(args)
    print("\nIn-memory merge (best of", args.repeats, "repeats):")
    print(table(rows, ["size", "params", "k", "method", "seconds", "merges_per_s", "GB_per_s",
                       "copy_GB_per_s", "x_floor"]))
    mk_rows = []
    if not args.no_mergekit:
        mk_rows = bench_mergekit(args)
        print("\nmergekit run_merge vs ours on base + 2 saved experts (files in, file out):")
        print(table(mk_rows, ["size", "params", "method", "ours_files_s", "ours_memory_s",
                              "mergekit_s", "mergekit_over_ours"]))
    if args.json:
        Path(args.json).write_text(json.dumps({"memory": rows, "mergekit": mk_rows}, indent=1))


if __name__ == "__main__":
    main()
