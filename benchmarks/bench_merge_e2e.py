"""One merge + evaluation end to end: our in-process pipeline next to mergekit's and lm-eval's CLIs.

    python benchmarks/bench_merge_e2e.py --quick            # < 2 minutes on 2 CPU cores
    python benchmarks/bench_merge_e2e.py --profile cpu --experts 2 --docs 8
    python benchmarks/bench_merge_e2e.py --base CKPT --expert-paths E1 E2   # real checkpoints

Per ladder size, from checkpoints on disk (random base + experts = base plus small noise, saved
with `scalinglaws.models.save_checkpoint`, unless real ones are given):

    ours     load base and experts (`load_checkpoint`), `scalinglaws.merge.merge`, load the
             merged state into a model, `scalinglaws.evaluation.evaluate_texts` on the texts
    theirs   `mergekit-yaml config.yml OUT` (config from `scalinglaws.merge.to_mergekit_yaml`),
             then `lm_eval --model hf --model_args pretrained=OUT,... --tasks scalinglaws_ce_<d>
             --include_path TASKS` (task files from `scalinglaws.lmeval.write_tasks`), offline

Both score the same documents (the first --docs of each domain's test split, written to a JSONL
file) with lm-eval's rolling-window log-likelihood; the two bits/byte are printed side by side as
a check that the pipelines compute the same thing. Also: merges/second (merge only, states in
memory) and evaluation tokens/second of our evaluator. Process start-up (Python, torch, the
CLIs' imports) is part of the CLI times: it is what a user of those tools pays per merge.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from scalinglaws import data as D
from scalinglaws import lmeval
from scalinglaws.evaluation import evaluate_texts
from scalinglaws.merge import merge, to_mergekit_yaml
from scalinglaws.models import build_model, count_params, ladder, load_checkpoint, save_checkpoint
from scalinglaws.core.paths import TOKENIZER_DIR
from scalinglaws.data.tokenizer import load_tokenizer

BIN = Path(sys.executable).parent
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}


def make_checkpoints(size: str, n_experts: int, root: Path, noise: float = 0.01, seed: int = 0):
    """A random base and n_experts = base + N(0, noise^2) perturbations, saved with the tokenizer."""
    tok = load_tokenizer()
    base = build_model(size, seed=seed)
    paths = [save_checkpoint(base, root / "base", tokenizer=tok)]
    g = torch.Generator().manual_seed(seed + 1)
    for i in range(n_experts):
        e = build_model(size, seed=seed)
        with torch.no_grad():
            for p in e.parameters():
                p.add_(noise * torch.randn(p.shape, generator=g))
        paths.append(save_checkpoint(e, root / f"expert{i}", tokenizer=tok))
    return paths[0], paths[1:]


def test_texts(domains, n_docs: int, out: Path) -> dict[str, list[str]]:
    """First n_docs test documents per domain; also written as out/<domain>.jsonl for lm-eval."""
    texts = {}
    out.mkdir(parents=True, exist_ok=True)
    for d in domains:
        texts[d] = D.load_texts(d, "test")[:n_docs]
        with open(out / f"{d}.jsonl", "w") as f:
            for t in texts[d]:
                f.write(json.dumps({"text": t}) + "\n")
    return texts


def ours(base_path, expert_paths, method, texts, batch_size):
    t0 = time.perf_counter()
    model = load_checkpoint(base_path)
    base = model.state_dict()
    experts = [load_checkpoint(p).state_dict() for p in expert_paths]
    t_load = time.perf_counter()
    merged = merge(base, experts, method)
    t_merge = time.perf_counter()
    model.load_state_dict(merged)
    tok = load_tokenizer()
    res = {d: evaluate_texts(model, tok, t, batch_size=batch_size) for d, t in texts.items()}
    t1 = time.perf_counter()
    tokens = sum(r["tokens"] for r in res.values())
    return {"ours_s": t1 - t0, "ours_load_s": t_load - t0, "ours_merge_s": t_merge - t_load,
            "ours_eval_s": t1 - t_merge, "eval_tokens": tokens, "eval_tokens_per_s": tokens / (t1 - t_merge),
            "bpb_ours": {d: r["bits_per_byte"] for d, r in res.items()}}


def theirs(base_path, expert_paths, method, domains, text_dir: Path, work: Path, batch_size: int):
    env = {**os.environ, **OFFLINE}
    cfg = work / "mergekit.yml"
    cfg.write_text(to_mergekit_yaml(method, str(base_path), [str(p) for p in expert_paths]))
    out = work / "merged"
    t0 = time.perf_counter()
    subprocess.run([str(BIN / "mergekit-yaml"), str(cfg), str(out), "--copy-tokenizer"], check=True,
                   env=env, capture_output=True, text=True)
    t_merge = time.perf_counter()
    tasks = work / "tasks"
    names = lmeval.write_tasks(domains, tasks, data_files={d: text_dir / f"{d}.jsonl" for d in domains})
    res_dir = work / "lmeval_out"
    subprocess.run([str(BIN / "lm_eval"), "run", "--model", "hf", "--model_args",
                    f"pretrained={out},tokenizer={TOKENIZER_DIR},dtype=float32", "--tasks", ",".join(names),
                    "--include_path", str(tasks), "--device", "cpu", "--batch_size", str(batch_size),
                    "--output_path", str(res_dir)], check=True, env=env, capture_output=True, text=True)
    t1 = time.perf_counter()
    found = sorted(res_dir.rglob("results*.json"))
    results = json.loads(found[-1].read_text())["results"] if found else {}
    bpb = {d: results.get(n, {}).get("bits_per_byte,none") for d, n in zip(domains, names)}
    return {"cli_s": t1 - t0, "mergekit_s": t_merge - t0, "lmeval_s": t1 - t_merge, "bpb_lmeval": bpb}


def merges_per_second(base_path, expert_paths, method, repeats: int) -> float:
    base = load_checkpoint(base_path).state_dict()
    experts = [load_checkpoint(p).state_dict() for p in expert_paths]
    merge(base, experts, method)  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeats):
        merge(base, experts, method)
    return repeats / (time.perf_counter() - t0)


def bench_size(size, args, root: Path, texts, text_dir: Path) -> dict:
    work = root / size
    if args.base:
        base_path, expert_paths = Path(args.base), [Path(p) for p in args.expert_paths]
    else:
        base_path, expert_paths = make_checkpoints(size, args.experts, work / "ckpt")
    n = count_params(load_checkpoint(base_path))
    row = {"size": size, "N": n["non_embedding"], "N_total": n["total"], "k": len(expert_paths),
           "method": args.method}
    row.update(ours(base_path, expert_paths, args.method, texts, args.batch_size))
    row["merges_per_s"] = merges_per_second(base_path, expert_paths, args.method, args.repeats)
    if not args.skip_cli:
        row.update(theirs(base_path, expert_paths, args.method, list(texts), text_dir, work, args.batch_size))
        row["speedup"] = row["cli_s"] / row["ours_s"]
        row["max_bpb_rel_diff"] = max(abs(row["bpb_ours"][d] - row["bpb_lmeval"][d]) / row["bpb_lmeval"][d]
                                      for d in texts if row["bpb_lmeval"][d] is not None)
    return row


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="cpu", choices=["smoke", "cpu", "gpu"])
    p.add_argument("--sizes", nargs="*", default=None, help="ladder sizes (default: the profile's ladder)")
    p.add_argument("--method", default="average")
    p.add_argument("--experts", type=int, default=2, help="experts per merge (random checkpoints)")
    p.add_argument("--domains", nargs="*", default=list(D.DOMAINS))
    p.add_argument("--docs", type=int, default=4, help="test documents per domain")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--repeats", type=int, default=5, help="merges timed for merges/second")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--base", default=None, help="real base checkpoint (with --expert-paths)")
    p.add_argument("--expert-paths", nargs="*", default=[])
    p.add_argument("--skip-cli", action="store_true", help="time only our pipeline")
    p.add_argument("--keep", action="store_true", help="keep the scratch folder")
    p.add_argument("--quick", action="store_true",
                   help="one small size, 2 domains, 2 docs each (< 2 minutes on 2 cores)")
    a = p.parse_args(argv)
    if a.base and len(a.expert_paths) < 1:
        p.error("--base needs --expert-paths")
    if a.quick:
        a.sizes, a.domains, a.docs, a.repeats = [ladder(a.profile)[0]], a.domains[:2], 2, 3
    if a.threads:
        torch.set_num_threads(a.threads)
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()
    for k, v in OFFLINE.items():
        os.environ.setdefault(k, v)
    sizes = [a.sizes[0] if a.sizes else "real"] if a.base else (a.sizes or ladder(a.profile))
    root = Path(tempfile.mkdtemp(prefix="bench_merge_e2e_"))
    try:
        text_dir = root / "texts"
        texts = test_texts(a.domains, a.docs, text_dir)
        rows = []
        for size in sizes:
            r = bench_size(size, a, root, texts, text_dir)
            rows.append(r)
            line = (f"{size}: ours {r['ours_s']:.2f} s (load {r['ours_load_s']:.2f}, merge {r['ours_merge_s']:.3f}, "
                    f"eval {r['ours_eval_s']:.2f}); {r['merges_per_s']:.1f} merges/s; "
                    f"{r['eval_tokens_per_s']:,.0f} eval tokens/s")
            if "cli_s" in r:
                line += (f"; mergekit + lm-eval CLIs {r['cli_s']:.2f} s (mergekit {r['mergekit_s']:.2f}, "
                         f"lm-eval {r['lmeval_s']:.2f}); ratio {r['speedup']:.1f}x; "
                         f"bits/byte max rel. diff {r['max_bpb_rel_diff']:.1e}")
            print(line, flush=True)
        df = pd.DataFrame(rows).drop(columns=["bpb_ours", "bpb_lmeval"], errors="ignore")
        print(f"device: cpu, {torch.get_num_threads()} threads; {a.experts if not a.base else len(a.expert_paths)} "
              f"experts, method {a.method}, {len(a.domains)} domains x {a.docs} docs")
        print(df.to_string(index=False, float_format=lambda x: f"{x:,.4g}"))
    finally:
        if a.keep:
            print(f"scratch kept at {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
