"""Toy corpus, tokenizer and model shared by the model/training/evaluation tests (no real data)."""
from __future__ import annotations

import numpy as np

WORDS = ("the cat sat on a mat and dog ran to café über naïve 12 + 7 = 19 def f(x): return x * 2 "
         "lorem ipsum dolor sit amet — “quoted” text").split()


def toy_texts(n_docs: int, seed: int = 0, min_words: int = 3, max_words: int = 60) -> list[str]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_docs):
        k = int(rng.integers(min_words, max_words + 1))
        words = rng.choice(WORDS, size=k)
        lines = [" ".join(words[i:i + 9]) for i in range(0, k, 9)]
        out.append("\n".join(lines))
    return out


def toy_tokenizer(vocab_size: int = 300, texts=None):
    """A small byte-level BPE with `<|endoftext|>` (id 0) as eos = bos = pad, like the project's."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(texts or toy_texts(200, seed=123), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>",
                                   bos_token="<|endoftext|>", pad_token="<|endoftext|>")


def write_jsonl_gz(path, texts):
    """One {"text": ...} per line, gzip: the shipped corpora's format (lm-eval reads it as a task)."""
    import gzip
    import json
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps({"text": t}) + "\n")
    return path
