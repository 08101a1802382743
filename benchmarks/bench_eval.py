"""Evaluation speed: our rolling-window evaluator vs lm-eval's `hf` model, same model and texts.

    python benchmarks/bench_eval.py --size d32l2 --docs 200 --threads 2

Uses the project tokenizer and a domain's test split when they exist (data/), else the toy
tokenizer and corpus of the test suite. Prints tokens/s of both, the speed ratios, and the relative
difference of the two bits-per-byte values (they must agree to ~1e-6).

Equal work: both evaluators are warm. lm-eval's per-call setup (model load, data set build) and its
first-call warm-up are measured separately (a warm-up call on 1 document, then a call on the same
1 document = setup of a warm call) and reported beside its compute (full call minus setup). A
`--docs` larger than the split is clamped with a warning (the output says how many were used).
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
        texts = data.load_texts(domain, "test")
        if n_docs > len(texts):
            print(f"WARNING: --docs {n_docs} > the {len(texts)} documents of {domain}/test; using {len(texts)}",
                  file=sys.stderr)
        return load_tokenizer(), texts[:n_docs], f"{domain}/test"
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
        with gzip.open(tmp / "one.jsonl.gz", "wt", encoding="utf-8") as f:
            f.write(json.dumps({"text": texts[0]}) + "\n")

        def lm(name):
            t0 = time.perf_counter()
            out = run_lmeval(tmp / "ckpt", ["bench"], data_files={"bench": tmp / name},
                             batch_size=a.batch_size, device=a.device).iloc[0]
            return out, time.perf_counter() - t0

        _, t_first = lm("one.jsonl.gz")   # first call: imports, task registry, warm-up
        _, t_setup = lm("one.jsonl.gz")   # a warm call on 1 document: its per-call setup
        ref, t_ref = lm("docs.jsonl.gz")  # the measured call
        t_compute = max(t_ref - t_setup, 1e-9)
    n = ours["tokens"]
    print(f"{source}: {len(texts)} docs, {n:,} tokens, model {a.size} (context "
          f"{model.config.max_position_embeddings}), {a.device}, {torch.get_num_threads()} threads")
    print(f"ours   : {t_ours:7.2f} s  {n / t_ours:12,.0f} tok/s")
    print(f"lm-eval: first call {t_first:.2f} s (warm-up, 1 doc); per-call setup {t_setup:.2f} s (warm, 1 doc); "
          f"measured call {t_ref:.2f} s -> compute {t_compute:7.2f} s  {n / t_compute:12,.0f} tok/s")
    cond = (f"[conditions: {len(texts)} docs of {source}, {n:,} tokens, model {a.size}, batch {a.batch_size}, "
            f"{a.device}, {torch.get_num_threads()} torch threads; both warm]")
    print(f"speed ratio, compute only (lm-eval compute / ours): {t_compute / t_ours:.2f}x  {cond}")
    print(f"speed ratio, per call incl. lm-eval's setup (not equal work): {t_ref / t_ours:.2f}x  {cond}")
    print(f"bits/byte ours {ours['bits_per_byte']:.6f} lm-eval {ref['bits_per_byte']:.6f} "
          f"(rel diff {abs(ours['bits_per_byte'] / ref['bits_per_byte'] - 1):.1e})")


if __name__ == "__main__":
    main()
