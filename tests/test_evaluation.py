"""The fast evaluator against lm-eval's own rolling-window code and its `hf` model end to end."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from lm_eval import utils as lm_utils

from _toy import toy_texts, toy_tokenizer, write_jsonl_gz
from scalinglaws import evaluation as E
from scalinglaws.evaluation import encode_texts, evaluate_texts, rolling_windows
from scalinglaws.models import build_model, save_checkpoint

CTX = 32


@pytest.fixture(scope="module")
def tok():
    return toy_tokenizer()


@pytest.fixture(scope="module")
def model(tok):
    return build_model("d16l1", 0, vocab_size=len(tok), context=CTX)


@pytest.fixture(scope="module")
def texts():
    # short docs, docs of several windows (~3-15 x the context), a one-byte and a non-ASCII doc
    return (toy_texts(6, seed=1) + toy_texts(3, seed=2, min_words=40, max_words=200)
            + ["x", "é — “ü”", ""])


@pytest.mark.parametrize("max_len", [1, 2, 5, 32])
def test_windows_match_lm_eval(max_len):
    for n in range(0, 3 * max_len + 3):
        toks = list(range(100, 100 + n))
        full = [0] + toks
        ref = [lm_utils.make_disjoint_window(w) for w in
               lm_utils.get_rolling_token_windows(toks, prefix_token=0, max_seq_len=max_len, context_len=1)]
        ours = rolling_windows(n, max_len)
        assert len(ours) == len(ref)
        for (start, length, scored), (ctx, cont) in zip(ours, ref):
            # lm-eval feeds (ctx + cont)[-(max_len + 1):][:-1] and scores the last len(cont)
            assert full[start:start + length] == (ctx + cont)[-(max_len + 1):]
            assert scored == len(cont)
        assert sum(s for _, _, s in ours) == n  # every token scored once


def test_matches_direct_forward_when_docs_fit(model, tok):
    texts = toy_texts(4, seed=7, max_words=8)
    docs = encode_texts(tok, texts)
    assert max(map(len, docs)) <= CTX
    ref = 0.0
    with torch.no_grad():
        for d in docs:  # one window: [EOT] + t, standard next-token loss
            x = torch.tensor([[tok.eos_token_id] + d])
            ref += torch.nn.functional.cross_entropy(model(input_ids=x[:, :-1]).logits[0], x[0, 1:],
                                                     reduction="sum").item()
    r = evaluate_texts(model, tok, texts)
    assert r["nll_sum"] == pytest.approx(ref, rel=1e-5)
    assert r["tokens"] == sum(map(len, docs))
    assert r["bytes"] == sum(len(t.encode()) for t in texts)
    assert r["bits_per_byte"] == pytest.approx(r["nll_sum"] / (r["bytes"] * math.log(2)))


def test_batch_size_does_not_matter(model, tok, texts):
    a = evaluate_texts(model, tok, texts, batch_size=1, return_docs=True)
    b = evaluate_texts(model, tok, texts, batch_size=64, return_docs=True)
    assert a["doc_nll"] == pytest.approx(b["doc_nll"], rel=1e-5)
    assert a["doc_nll"][-1] == 0.0  # the empty document contributes nothing


def test_agrees_with_lm_eval(model, tok, texts, tmp_path):
    from scalinglaws.lmeval import run_lmeval

    docs = encode_texts(tok, texts)
    assert max(map(len, docs)) > 5 * CTX  # rolling windows are exercised
    ckpt = tmp_path / "ckpt"
    save_checkpoint(model, ckpt, {"test": True}, tokenizer=tok)
    data = write_jsonl_gz(tmp_path / "toy.jsonl.gz", texts)
    ref = run_lmeval(ckpt, ["toy"], data_files={"toy": data}, batch_size=4).iloc[0]
    ours = evaluate_texts(model, tok, texts)
    assert ref["docs"] == len(texts) and ref["bytes"] == ours["bytes"]
    assert ours["nll_sum"] == pytest.approx(ref["nll_sum"], rel=1e-4)
    assert ours["bits_per_byte"] == pytest.approx(ref["bits_per_byte"], rel=1e-4)
    assert math.log(ref["byte_perplexity"]) == pytest.approx(ours["nll_sum"] / ours["bytes"], rel=1e-4)


def test_token_bytes_count_utf8_bytes_of_whole_documents():
    from scalinglaws import data as D
    from scalinglaws.data.tokenizer import load_tokenizer
    ids = D.token_ids("math", "test").astype(np.int64)
    eos = np.flatnonzero(ids == 0)
    docs = np.split(ids, eos)[:5]
    docs = [docs[0]] + [d[1:] for d in docs[1:]]  # documents in file order, EOS separators dropped
    texts = D.load_texts("math", "test")
    nb = E.token_bytes()
    tok = load_tokenizer()
    for doc, text in zip(docs, texts):  # whole documents: exact UTF-8 byte counts
        assert tok.decode(doc.tolist()) == text
        assert nb[doc].sum() == len(text.encode("utf-8"))
