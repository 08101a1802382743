"""The shipped corpora: checksums, splits, API validation, the `data` CLI, the builders' helpers."""
from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from scalinglaws import cli
from scalinglaws.data import corpus as data
from scalinglaws.data import corpora
from scalinglaws.core import paths
from scalinglaws.core.validation import ParameterError


@pytest.fixture(scope="module")
def manifest():
    return json.loads(paths.MANIFEST_PATH.read_text())


def _copy_data(tmp_path: Path) -> Path:
    """A private data folder: manifest and tokenizer copied, corpora symlinked (cheap; a test
    that corrupts a file replaces its link with a real file)."""
    root = tmp_path / "data"
    root.mkdir()
    shutil.copy(paths.MANIFEST_PATH, root / "manifest.json")
    shutil.copytree(paths.TOKENIZER_DIR, root / "tokenizer")
    for d in data.DOMAINS:
        (root / "corpora" / d).mkdir(parents=True)
        for s in data.SPLITS:
            (root / "corpora" / d / f"{s}.jsonl.gz").symlink_to(paths.CORPORA_DIR / d / f"{s}.jsonl.gz")
    return root


def _corrupt(path: Path) -> None:
    """Replace `path` by a valid gzip file whose first document has one character changed."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        lines = f.readlines()
    doc = json.loads(lines[0])
    doc["text"] = ("X" if doc["text"][0] != "X" else "Y") + doc["text"][1:]
    lines[0] = json.dumps(doc, ensure_ascii=False) + "\n"
    path.unlink()
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.writelines(lines)


def test_eight_domains_and_all_files_present(manifest):
    assert data.DOMAINS == ("code", "dictionary", "lexicon", "scripture", "legal", "techdocs", "speeches", "math")
    assert data.SPLITS == ("pretrain", "finetune", "val", "test")
    assert corpora.DOMAINS == data.DOMAINS
    pairs = {(e["domain"], e["split"]) for e in manifest["files"]}
    assert pairs == {(d, s) for d in data.DOMAINS for s in data.SPLITS}
    for e in manifest["files"]:
        path = paths.DATA_DIR / e["path"]
        assert path.exists(), path
        # sha256 and sizes recomputed independently of the package
        assert hashlib.sha256(path.read_bytes()).hexdigest() == e["sha256"]
        with gzip.open(path, "rt", encoding="utf-8") as f:
            texts = [json.loads(line)["text"] for line in f]
        assert len(texts) == e["n_documents"] > 0
        assert sum(len(t.encode()) for t in texts) == e["bytes"]
        assert e["sources"] and e["licence"]


def test_sizes_and_shipped_total(manifest):
    table = data.domain_table()
    assert list(table.columns) == ["domain", "split", "documents", "bytes", "tokens", "source", "licence"]
    assert len(table) == 32 and table["domain"].nunique() == 8
    for s, target in corpora.TARGET_BYTES.items():
        b = table[table["split"] == s]["bytes"]
        assert (b <= target).all() and (b >= 0.9 * target).all(), (s, b.tolist())
    shipped = sum(p.stat().st_size for p in paths.DATA_DIR.rglob("*")
                  if p.is_file() and "results" not in p.parts and "raw" not in p.parts)
    assert shipped < 30 * 2**20
    assert (paths.DATA_DIR / "LICENSES.md").read_text().count("|") > 8 * 4


def test_splits_disjoint_and_deduplicated():
    for d in data.DOMAINS:
        seen: dict[str, str] = {}
        for s in data.SPLITS:
            texts = data.load_texts(d, s)
            for t in texts:
                h = hashlib.sha256(t.encode()).hexdigest()
                assert h not in seen, f"{d}: a document of {s} is also in {seen.get(h)}"
                seen[h] = s
                assert t == t.strip("\n") and "\r" not in t and "\n\n\n" not in t


def test_verify_ok_and_cached(monkeypatch):
    df = data.verify()
    assert len(df) >= 32 and df["ok"].all()
    calls = []
    real = data.sha256_file
    monkeypatch.setattr(data, "sha256_file", lambda p: calls.append(p) or real(p))
    data.load_texts("math", "val")
    data.load_texts("math", "val")
    assert calls == []  # verified once per process already
    data.verify(all=True)
    assert len(calls) == len(df)  # all=True re-hashes everything


def test_corrupted_copy_names_the_file(tmp_path, monkeypatch):
    root = _copy_data(tmp_path)
    bad = root / "corpora" / "speeches" / "val.jsonl.gz"
    _corrupt(bad)
    with pytest.raises(data.ChecksumError, match=re.escape(str(bad))):
        data.load_texts("speeches", "val", data_dir=root)
    assert data.load_texts("speeches", "test", data_dir=root)  # other files still load
    with pytest.raises(data.ChecksumError, match="speeches/val.jsonl.gz"):
        data.verify(data_dir=root)
    # the same through a monkeypatched data folder
    monkeypatch.setattr(paths, "DATA_DIR", root)
    with pytest.raises(data.ChecksumError, match="speeches/val.jsonl.gz"):
        data.load_texts("speeches", "val")
    (root / "corpora" / "math" / "test.jsonl.gz").unlink()
    with pytest.raises(FileNotFoundError, match="math/test.jsonl.gz"):
        data.load_texts("math", "test")


@pytest.mark.parametrize("call", [
    lambda: data.load_texts("poetry", "val"),
    lambda: data.load_texts("code", "train"),
    lambda: data.token_ids("code", "validation"),
    lambda: data.sample("Code"),
    lambda: data.sample("code", n_chars=0),
    lambda: data.corpus_path("math", "dev"),
])
def test_bad_names_raise_parameter_error(call):
    with pytest.raises(ParameterError):
        call()


def test_token_ids_match_autotokenizer_and_cache(tmp_path, monkeypatch, manifest):
    from transformers import AutoTokenizer

    monkeypatch.setenv("SCALINGLAWS_WORK", str(tmp_path))
    ids = data.token_ids("math", "val")
    assert ids.dtype == np.uint16
    tok = AutoTokenizer.from_pretrained(str(paths.TOKENIZER_DIR), local_files_only=True)
    expected = []
    for t in data.load_texts("math", "val"):
        expected += tok.encode(t, add_special_tokens=False) + [tok.eos_token_id]
    assert ids.tolist() == expected
    entry = next(e for e in manifest["files"] if (e["domain"], e["split"]) == ("math", "val"))
    assert len(ids) == entry["tokens"] + entry["n_documents"]
    cached = list((tmp_path / "tokens").glob("math-val-*.npy"))
    assert len(cached) == 1 and entry["sha256"][:16] in cached[0].name
    np.save(cached[0], np.array([7, 7, 7], dtype=np.uint16))  # proves the second call reads the cache
    assert data.token_ids("math", "val").tolist() == [7, 7, 7]


def test_sample_is_an_excerpt():
    texts = data.load_texts("scripture", "val")
    a = data.sample("scripture", n_chars=200, seed=3)
    assert a == data.sample("scripture", n_chars=200, seed=3)
    assert 0 < len(a) <= 200 and any(a in t for t in texts)
    assert {data.sample("scripture", 200, seed=s) for s in range(5)} != {a}


def test_cli_verify(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("scalinglaws.data.cli",))  # other commands may be absent
    assert cli.main(["data", "verify"]) == 0
    out = capsys.readouterr().out
    assert all(re.search(rf"^\s*{d}\s+pretrain", out, re.M) for d in data.DOMAINS)
    assert "8 domains" in out

    root = _copy_data(tmp_path)
    m = json.loads((root / "manifest.json").read_text())
    entry = next(e for e in m["files"] if (e["domain"], e["split"]) == ("legal", "finetune"))
    entry["sha256"] = "0" * 64
    (root / "manifest.json").write_text(json.dumps(m))
    assert cli.main(["data", "verify", "--data-dir", str(root)]) == 2
    assert "legal/finetune.jsonl.gz" in capsys.readouterr().err

    del m["files"][0]["sha256"]
    (root / "manifest.json").write_text(json.dumps(m))
    assert cli.main(["data", "verify", "--data-dir", str(root)]) == 2
    assert "manifest.json" in capsys.readouterr().err


# ----------------------------------------------------------------------------- builder helpers

def test_normalise_and_chunk():
    assert corpora.normalise("a  \r\n\r\n\r\n\n  b\t\x0c\n") == "a\n\n  b"
    text = "\n\n".join(f"para {i} " + "word " * (i * 37 % 900) for i in range(120))
    pieces = corpora.chunk(text)
    assert len(pieces) > 1
    assert all(len(p.encode()) <= corpora.MAX_DOC_BYTES for p in pieces)
    assert "".join("".join(pieces).split()) == "".join(text.split())  # nothing lost or added
    assert corpora.chunk("short") == ["short"]
    long_line = "x" * 20000
    assert "".join(corpora.chunk(long_line)) == long_line


def test_prepare_dedups_and_assign_keeps_groups_whole():
    groups = [[f"doc {i} " * 50, f"tail {i} " * 30] for i in range(200)] + [["doc 3 " * 50]]
    prepared = corpora.prepare(groups)
    flat = [d for g in prepared for d in g]
    assert len(flat) == len(set(flat)) == 400  # the repeated 'doc 3' is gone
    targets = {"pretrain": 30_000, "finetune": 10_000, "val": 2_000, "test": 2_000}
    splits = corpora.assign_splits(prepared, "toy", targets)
    assert splits == corpora.assign_splits(prepared, "toy", targets)  # seeded
    where = {d: s for s, docs in splits.items() for d in docs}
    for g in prepared:
        assert len({where.get(d) for d in g}) == 1  # a group never straddles two splits
    for s, t in targets.items():
        assert 0.8 * t <= sum(len(d.encode()) for d in splits[s]) <= t


def test_write_jsonl_gz_is_deterministic(tmp_path, manifest):
    texts = data.load_texts("code", "test")
    raw = corpora.write_jsonl_gz(tmp_path / "a.jsonl.gz", texts)
    entry = next(e for e in manifest["files"] if (e["domain"], e["split"]) == ("code", "test"))
    assert hashlib.sha256(raw).hexdigest() == entry["sha256"]


def _check_problem(q: str, a: str) -> bool:
    """Independent check of a generated answer, for the kinds that are easy to parse."""
    if m := re.fullmatch(r"Compute (\d+) ([+\-×]) (\d+)\.", q):
        x, op, y = int(m[1]), m[2], int(m[3])
        return int(a) == {"+": x + y, "-": x - y, "×": x * y}[op]
    if m := re.fullmatch(r"Compute (\d+)/(\d+) ([+-]) (\d+)/(\d+)\.", q):
        x, y = Fraction(int(m[1]), int(m[2])), Fraction(int(m[4]), int(m[5]))
        return Fraction(a) == (x + y if m[3] == "+" else x - y)
    if m := re.fullmatch(r"Solve (-?\d+)x ([+-]) (\d+) = (-?\d+)\.", q):
        x = int(a.split("= ")[1])
        return int(m[1]) * x + (1 if m[2] == "+" else -1) * int(m[3]) == int(m[4])
    if m := re.fullmatch(r"Divide (\d+) by (\d+)\.", q):
        qq, rr = map(int, re.findall(r"\d+", a))
        return divmod(int(m[1]), int(m[2])) == (qq, rr)
    if m := re.fullmatch(r"Write (\d+) as a product of primes\.", q):
        prod = 1
        for f in a.split(" × "):
            b, _, e = f.partition("^")
            prod *= int(b) ** int(e or 1)
        return prod == int(m[1])
    return None


def test_math_generator_is_deterministic_and_correct():
    assert corpora.math_document(5) == corpora.math_document(5) != corpora.math_document(6)
    checked = 0
    for i in range(300):
        doc = corpora.math_document(i)
        for q, a in re.findall(r"Problem \d+\. (.*)\nSolution\. .*\nAnswer: (.*)", doc):
            ok = _check_problem(q, a)
            if ok is not None:
                assert ok, (q, a)
                checked += 1
    assert checked > 500
