"""Evaluation speed: our rolling-window evaluator vs lm-eval's `hf` model, same model and texts.

    python benchmarks/bench_eval.py --size d32l2 --docs 200 --threads 2

Uses the project tokenizer and a domain's test split when they exist (data/), else the toy
tokenizer and corpus of the test suite. Prints tokens/s of both, the speed ratio, and the relative
difference of the two bits-per-byte values (they must agree to ~1e-6).
"""
from __future__ import annotations

import argparse
import gzip
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from scalinglaws.evaluation import evaluate_texts
from scalinglaws.lmeval import run_lmeval
from scalinglaws.models import build_model, save_checkpoint


def corpus(domain, n_docs):
    try:
        from scalinglaws import data
        from scalinglaws.data.tokenizer import load_tokenizer
        return load_tokenizer(), data.load_texts(domain, "test")[:n_docs], f"{domain}/test"
    except Exception as e:  # no prepared data yet: the test suite's toy corpus
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from _toy import toy_texts, toy_tokenizer
        print(f"(real data unavailable: {type(e).__name__}: {e}; using the toy corpus)")
        return toy_tokenizer(), toy_texts(n_docs, seed=0, max_words=400), "toy"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="d32l2")
    p.add_argument("--domain", default="legal")
    p.add_argument("--docs", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    tok, texts, source = corpus(a.domain, a.docs)
    model = build_model(a.size, 0, vocab_size=max(len(tok), 4096)).to(a.device).eval()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        save_checkpoint(model, tmp / "ckpt", {"bench": True}, tokenizer=tok)
        with gzip.open(tmp / "docs.jsonl.gz", "wt", encoding="utf-8") as f:
            for t in texts:
                f.write(json.dumps({"text": t}) + "\n")
        evaluate_texts(model, tok, texts[:4], batch_size=a.batch_size)  # warm-up
        t0 = time.perf_counter()
        ours = evaluate_texts(model, tok, texts, batch_size=a.batch_size)
        t_ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        ref = run_lmeval(tmp / "ckpt", ["bench"], data_files={"bench": tmp / "docs.jsonl.gz"},
                         batch_size=a.batch_size, device=a.device).iloc[0]
        t_ref = time.perf_counter() - t0  # includes lm-eval's setup (model load, data set build)
    n = ours["tokens"]
    print(f"{source}: {len(texts)} docs, {n:,} tokens, model {a.size} (context "
          f"{model.config.max_position_embeddings}), {a.device}, {torch.get_num_threads()} threads")
    print(f"ours   : {t_ours:7.2f} s  {n / t_ours:12,.0f} tok/s")
    print(f"lm-eval: {t_ref:7.2f} s  {n / t_ref:12,.0f} tok/s (incl. its model load and data set build)")
    print(f"speed ratio (ours / lm-eval): {t_ref / t_ours:.1f}x")
    print(f"bits/byte ours {ours['bits_per_byte']:.6f} lm-eval {ref['bits_per_byte']:.6f} "
          f"(rel diff {abs(ours['bits_per_byte'] / ref['bits_per_byte'] - 1):.1e})")


if __name__ == "__main__":
    main()
