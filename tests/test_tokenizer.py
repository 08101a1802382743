"""The shipped byte-level BPE tokenizer: exact round trips, offline AutoTokenizer, statistics."""
from __future__ import annotations

import pytest

from scalinglaws import data
from scalinglaws.core import paths
from scalinglaws.data import tokenizer
from scalinglaws.core.validation import ParameterError

UNICODE = "Zoë's café — naïve “quotes”, 日本語, Ελληνικά, emoji 🎉🧪, tabs\tand  double  spaces\n\n  indented"


def test_round_trip_every_domain_and_unicode():
    tok = tokenizer.load_tokenizer()
    samples = [UNICODE, " leading space", "trailing space ", "\n", "<|endoftext|> inside text"]
    for d in data.DOMAINS:
        texts = data.load_texts(d, "val")
        samples += texts[:3] + [data.sample(d, 300, seed=1)]
    for s in samples:
        ids = tok.encode(s, add_special_tokens=False)
        assert tok.decode(ids) == s, s[:80]
    # the fast batched path agrees with the HF wrapper
    assert tokenizer.encode_batch(samples[:10]) == [tok.encode(s, add_special_tokens=False) for s in samples[:10]]


def test_autotokenizer_loads_offline():
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(paths.TOKENIZER_DIR), local_files_only=True)
    assert len(tok) == tokenizer.VOCAB_SIZE == 4096
    assert tok.eos_token == tok.bos_token == tok.pad_token == "<|endoftext|>"
    assert tok.eos_token_id == tokenizer.eos_id() == 0
    assert tok.convert_ids_to_tokens(0) == "<|endoftext|>"
    assert tok.decode(tok.encode(UNICODE, add_special_tokens=False)) == UNICODE
    assert tokenizer.load_tokenizer() is tokenizer.load_tokenizer()  # cached


def test_stats_match_an_independent_count():
    stats = data.tokenizer_stats("val")
    assert list(stats["domain"]) == list(data.ALL_DOMAINS)
    assert stats["bytes_per_token"].between(1.5, 8).all()
    tok = tokenizer.load_tokenizer()
    row = stats[stats["domain"] == "lexicon"].iloc[0]
    texts = data.load_texts("lexicon", "val")
    n = sum(len(tok.encode(t, add_special_tokens=False)) for t in texts)
    assert row["tokens"] == n
    assert row["tokens_per_document"] == pytest.approx(n / len(texts))
    # the mixture gave every domain a usable compression (no domain worse than 2x another)
    assert stats["bytes_per_token"].max() < 2 * stats["bytes_per_token"].min()


def test_train_small_tokenizer(tmp_path):
    texts = {"a": ["alpha beta gamma " * 40, "délta ε " * 30], "b": ["def f(x):\n    return x\n" * 40]}
    fast = tokenizer.train_tokenizer(texts, vocab_size=300, out_dir=tmp_path / "tok")
    assert 257 < len(fast) <= 300
    loaded = tokenizer.load_tokenizer(tmp_path / "tok")
    for s in ["alpha beta", "délta ε", "def f(x):\n    return x", UNICODE]:
        assert loaded.decode(loaded.encode(s, add_special_tokens=False)) == s
    # the merges were learnt: a frequent word takes fewer tokens than it has bytes
    assert len(loaded.encode("alpha beta gamma", add_special_tokens=False)) < len("alpha beta gamma") // 2
    with pytest.raises(ParameterError):
        tokenizer.train_tokenizer(texts, vocab_size=70000, out_dir=tmp_path / "bad")
    with pytest.raises(ParameterError):
        data.tokenizer_stats("train")
