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
    for d in data.ALL_DOMAINS:
        (root / "corpora" / d).mkdir(parents=True)
        for s in data.SPLITS:
            name = f"{s}{data.suffix(d)}"
            (root / "corpora" / d / name).symlink_to(paths.CORPORA_DIR / d / name)
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


def test_domain_groups_and_all_files_present(manifest):
    assert data.DOMAINS == ("code", "dictionary", "lexicon", "scripture", "legal", "techdocs", "speeches", "math")
    assert data.RELATED_MATH == ("arithmetic", "algebra", "number_theory", "geometry", "probability")
    assert data.ALL_DOMAINS == data.DOMAINS + data.EXTRA_REAL + data.RELATED_MATH
    assert len(set(data.ALL_DOMAINS)) == len(data.ALL_DOMAINS) and "math" not in data.REAL_TEXT
    assert data.SPLITS == ("pretrain", "finetune", "val", "test")
    assert corpora.DOMAINS == data.DOMAINS and set(corpora.BUILDERS) == set(data.ALL_DOMAINS)
    pairs = {(e["domain"], e["split"]) for e in manifest["files"]}
    assert pairs == {(d, s) for d in data.ALL_DOMAINS for s in data.SPLITS}
    for e in manifest["files"]:
        path = paths.DATA_DIR / e["path"]
        assert path.exists(), path
        # sha256 and sizes recomputed independently of the package
        assert hashlib.sha256(path.read_bytes()).hexdigest() == e["sha256"]
        assert path.name.endswith(data.suffix(e["domain"]))
        with data.open_text(path) as f:
            texts = [json.loads(line)["text"] for line in f]
        assert len(texts) == e["n_documents"] > 0
        assert sum(len(t.encode()) for t in texts) == e["bytes"]
        assert e["sources"] and e["licence"]


def test_sizes_and_shipped_total(manifest):
    table = data.domain_table()
    assert list(table.columns) == ["domain", "split", "documents", "bytes", "tokens", "source", "licence"]
    n = len(data.ALL_DOMAINS)
    assert len(table) == 4 * n and table["domain"].nunique() == n
    assert list(table["domain"].unique()) == list(data.ALL_DOMAINS)
    for d in data.ALL_DOMAINS:
        for s, target in corpora.targets_for(d).items():
            b = table[(table["split"] == s) & (table["domain"] == d)]["bytes"].item()
            low = 0.9 * target if target < 10**8 else 1_000_000  # EXTRA pretrain: everything left over
            assert low <= b <= target, (d, s, b)
    pre = table[table["split"] == "pretrain"].set_index("domain")["tokens"]
    assert pre[list(data.REAL_TEXT)].sum() >= 25_000_000
    assert (pre[list(data.RELATED_MATH)] >= 1_500_000).all()
    shipped = sum(p.stat().st_size for p in paths.DATA_DIR.rglob("*")
                  if p.is_file() and "results" not in p.parts and "raw" not in p.parts)
    assert shipped < data.SIZE_LIMIT_BYTES <= 45 * 2**20
    assert (paths.DATA_DIR / "LICENSES.md").read_text().count("|") > n * 4


def test_splits_disjoint_and_deduplicated():
    for d in data.ALL_DOMAINS:
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
    assert all(re.search(rf"^\s*{d}\s+pretrain", out, re.M) for d in data.ALL_DOMAINS)
    assert f"{len(data.ALL_DOMAINS)} domains" in out

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


def test_write_jsonl_xz_is_deterministic_and_loads(tmp_path, manifest):
    texts = data.load_texts("fortunes", "test")
    raw = corpora.write_jsonl_xz(tmp_path / "a.jsonl.xz", texts)
    entry = next(e for e in manifest["files"] if (e["domain"], e["split"]) == ("fortunes", "test"))
    assert hashlib.sha256(raw).hexdigest() == entry["sha256"]
    with data.open_text(tmp_path / "a.jsonl.xz") as f:
        assert [json.loads(line)["text"] for line in f] == texts
    assert data.corpus_path("algebra", "val").name == "val.jsonl.xz"
    assert data.corpus_path("code", "val").name == "val.jsonl.gz"


def test_original_domains_and_tokenizer_unchanged(manifest):
    """The studies' stored results depend on these by checksum: adding domains must not touch them."""
    pinned = {("code", "pretrain"): "411298367d10b6d677366270c5da35fb822cf7c547333bfed48ac38604a54908", ("math", "test"): "2754abdaf3eae875a4404c42cef59accf5d33f8ec22732d1ba5c6db9dd8ad700"}
    for (d, s), sha in pinned.items():
        entry = next(e for e in manifest["files"] if (e["domain"], e["split"]) == (d, s))
        assert entry["sha256"] == sha and entry["path"].endswith(".jsonl.gz")
    tok = {f["path"]: f["sha256"] for f in manifest["tokenizer"]["files"]}
    assert tok["tokenizer/tokenizer.json"] == "5974eb62ece1433e2df782de26e4a26f2057b164d6097cb4db584280eaba866d"
    assert manifest["tokenizer"]["trained_on"] == list(data.DOMAINS)


# ----------------------------------------------------------------------------- new builders' helpers

def test_parse_imp_and_clean_sword():
    imp = "$$$[ Module Heading ]\n\n$$$Genesis 1:0\n\n$$$Genesis 1:1\nIn the beginning   God created.  \n$$$II Kings 2:3\n* Elisha * went.\n"
    assert corpora.parse_imp(imp) == [("Genesis", 1, 1, "In the beginning   God created."),
                                      ("II Kings", 2, 3, "* Elisha * went.")]
    assert corpora.clean_sword("In the beginning   God created.") == "In the beginning\n\nGod created."
    assert corpora.clean_sword("* Elisha * went  on.") == "Elisha went on."


def test_pod_to_text():
    pod = "=head1 NAME\n\nperlfoo - B<bold> and C<code> see L<perlre|perlre/x> or L<perlop>\n\n=over 4\n\n=item * one\n\nE<lt>tagE<gt>\n\n=back\n\n=cut\n"
    text = corpora.pod_to_text(pod)
    assert "=" not in text and "B<" not in text and "C<" not in text
    assert "NAME" in text and "perlfoo - bold and code see perlre or perlop" in text
    assert "* one" in text and "<tag>" in text


def test_groff_to_text():
    src = ('.\\" a comment\n.TH LS 1 2023 GNU\n.SH NAME\nls \\- list directory contents\n.SH SYNOPSIS\n'
           '.B ls\n[\\fIOPTION\\fR]... [\\fIFILE\\fR]...\n.PP\n.BR stat (2)\nsays \\(lqhi\\(rq \\(em ok\n.nf\n.fi\n')
    text = corpora.groff_to_text(src)
    assert "comment" not in text and "\\f" not in text and ".B" not in text
    assert "LS 1" in text and "NAME" in text and "ls - list directory contents" in text
    assert "[OPTION]... [FILE]..." in text and "stat(2)" in text and '"hi" — ok' in text


# ----------------------------------------------------------------------------- generated mathematics

from scalinglaws.data import mathgen  # noqa: E402


def _recompute(f: dict):
    """Each problem's answer recomputed from its inputs, independently of the generator's working."""
    k = f["kind"]
    F = Fraction
    if k == "add":
        return sum(f["xs"])
    if k == "sub":
        return f["a"] - f["b"]
    if k == "mul":
        return f["a"] * f["b"]
    if k == "div":
        return divmod(f["n"], f["d"])
    if k == "order":
        return eval(f["expr"].replace("×", "*").replace("÷", "//").replace("^", "**"))  # integers only
    if k in ("fraction", "decimal"):
        x, y = (f["x"], f["y"]) if k == "fraction" else (f["a"], f["b"])
        return {"+": x + y, "-": x - y, "×": x * y, "÷": x / y if y else None}[f["op"]]
    if k == "percent_of":
        return F(f["p"] * f["n"], 100)
    if k == "percent_up":
        return F(f["n"] * (100 + f["p"]), 100)
    if k == "percent_what":
        return F(f["part"]) * 100 / f["n"]
    if k == "change":
        return f["paid"] - f["k"] * f["price"]
    if k == "ratio":
        u = f["total"] // (f["a"] + f["b"])
        return (f["a"] * u, f["b"] * u)
    if k == "round":
        return round(f["n"] / f["place"] + 1e-9) * f["place"]
    if k == "units":
        return f["check"]
    if k == "linear":
        m = re.search(r"(-?\d+)x ([+-]) (\d+) (?:=|equal to) (?:(-?\d+)x ([+-]) (\d+)|(-?\d+))[.?]$", f["q"])
        a, b = int(m[1]), int(m[3]) * (1 if m[2] == "+" else -1)
        c, d = (int(m[4]), int(m[6]) * (1 if m[5] == "+" else -1)) if m[4] else (0, int(m[7]))
        return F(d - b, a - c)
    if k == "system":
        a1, b1, c1, a2, b2, c2 = f["coef"]
        det = a1 * b2 - a2 * b1
        return (F(c1 * b2 - b1 * c2, det), F(a1 * c2 - c1 * a2, det))
    if k == "quadratic":
        c0, c1, c2 = f["coeffs"]
        return sorted(x for x in range(-40, 41) if c2 * x * x + c1 * x + c0 == 0)
    if k == "expand":
        (a, b), (c, d) = f["ab"], f["cd"]
        return [b * d, a * d + b * c, a * c]
    if k == "inequality":
        a, bound = f["a"], F(f["c"] - f["b"], f["a"])
        flip = {"<": ">", ">": "<", "≤": "≥", "≥": "≤"}
        return (flip[f["sym"]] if a < 0 else f["sym"], bound)
    if k == "compose":
        (a, b, c), (m, n) = f["f"], f["g"]
        g = m * f["x0"] + n
        return a * g * g + b * g + c
    if k == "arith_seq":
        terms = [f["a1"] + i * f["d"] for i in range(f["n"])]
        return (terms[-1], sum(terms))
    if k == "geom_seq":
        terms = [f["a1"] * f["r"] ** i for i in range(f["n"])]
        return (terms[-1], sum(terms))
    if k == "ages":
        y = (f["sum"] - 2 * f["t"]) // (f["k"] + 1)
        return (f["k"] * y, y)
    if k == "consecutive":
        first = (f["total"] - f["step"] * f["n"] * (f["n"] - 1) // 2) // f["n"]
        return [first + f["step"] * i for i in range(f["n"])]
    if k == "line":
        (x1, y1), (x2, y2) = f["p1"], f["p2"]
        m = F(y2 - y1, x2 - x1)
        return (m, y1 - m * x1)
    if k == "gcd":
        import math
        return (math.gcd(f["a"], f["b"]), math.lcm(f["a"], f["b"]))
    if k == "factor":
        out, n, p = [], f["n"], 2
        while n > 1:
            while n % p == 0:
                out.append(p)
                n //= p
            p += 1
        return out
    if k == "divisors":
        ds = [d for d in range(1, f["n"] + 1) if f["n"] % d == 0]
        return (len(ds), sum(ds))
    if k == "powmod":
        return pow(f["a"], f["k"], f["m"])
    if k == "congruence":
        return next(x for x in range(f["m"]) if (f["a"] * x - f["b"]) % f["m"] == 0)
    if k == "base":
        return np.base_repr(f["n"], f["base"])
    if k == "phi":
        import math
        return sum(1 for j in range(1, f["n"] + 1) if math.gcd(j, f["n"]) == 1)
    if k == "crt":
        (m1, m2), (a1, a2) = f["m"], f["a"]
        return next(x for x in range(m1 * m2) if x % m1 == a1 and x % m2 == a2)
    if k == "isprime":
        return f["n"] > 1 and all(f["n"] % p for p in range(2, int(f["n"] ** 0.5) + 1))
    if k == "divisible":
        return f["n"] % f["d"] == 0
    if k == "rectangle":
        return (f["w"] * f["h"], 2 * (f["w"] + f["h"]))
    if k == "pythagoras":
        return f["a"] ** 2 + f["b"] ** 2
    if k == "circle":
        return (2 * f["r"], f["r"] ** 2)
    if k == "polygon":
        return ((f["n"] - 2) * 180, F((f["n"] - 2) * 180, f["n"]))
    if k == "distance":
        x1, y1, x2, y2 = f["pts"]
        return ((x2 - x1) ** 2 + (y2 - y1) ** 2, (F(x1 + x2, 2), F(y1 + y2, 2)))
    if k == "tri_area":
        (x1, y1), (x2, y2), (x3, y3) = f["pts"]
        return F(abs((x2 - x1) * (y3 - y1) - (x3 - x1) * (y2 - y1)), 2)
    if k == "box":
        a, b, c = f["dims"]
        return (a * b * c, 2 * (a * b + b * c + a * c))
    if k == "cylinder":
        return (f["r"] ** 2 * f["h"], 2 * f["r"] ** 2 + 2 * f["r"] * f["h"])
    if k == "similar":
        s, kk = f["sides"], f["k"]
        return (s[1] * kk, s[2] * kk, kk * kk)
    if k == "angles":
        return (180 - f["a"] - f["b"], f["a"] + f["b"])
    if k == "isosceles":
        return F(180 - f["apex"], 2)
    if k == "trapezoid":
        return F((f["a"] + f["b"]) * f["h"], 2)
    if k == "dice":
        import itertools
        outs = list(itertools.product(range(1, f["sides"] + 1), repeat=f["n"]))
        ok = {"=": lambda t: t == f["target"], "≥": lambda t: t >= f["target"], "≤": lambda t: t <= f["target"]}[f["rel"]]
        return F(sum(1 for o in outs if ok(sum(o))), len(outs))
    if k == "hypergeom":
        import itertools
        balls = ["A"] * f["a"] + ["B"] * f["b"]
        hands = list(itertools.combinations(range(len(balls)), f["n"]))
        return F(sum(1 for h in hands if sum(balls[i] == "A" for i in h) == f["k"]), len(hands))
    if k == "geometric":
        return (1 - f["p"]) ** (f["k"] - 1) * f["p"]
    if k == "table":
        c, i, j = f["c"], f["i"], f["j"]
        return F(c[i][j], c[0][j] + c[1][j])
    if k == "variance":
        mean = sum(v * p for v, p in zip(f["vals"], f["probs"]))
        return (mean, sum((v - mean) ** 2 * p for v, p in zip(f["vals"], f["probs"])))
    if k == "sector":
        return (F(2 * f["r"] * f["theta"], 360), F(f["r"] ** 2 * f["theta"], 360))
    if k == "sphere":
        return (F(4, 3) * f["r"] ** 3, 4 * f["r"] ** 2)
    if k == "cone":
        return F(f["r"] ** 2 * f["h"], 3)
    if k == "circle_eq":
        (a, b), rad = f["c"], f["r"]
        # x^2 + y^2 + Dx + Ey + F vanishes at the four extreme points of the circle
        D, E, F0 = f["answer"]
        assert all(x * x + y * y + D * x + E * y + F0 == 0 for x, y in
                   [(a + rad, b), (a - rad, b), (a, b + rad), (a, b - rad)])
        return f["answer"]
    if k == "garden":
        return ((f["L"] + 2 * f["p"]) * (f["W"] + 2 * f["p"]) - f["L"] * f["W"], 2 * (f["L"] + f["W"] + 4 * f["p"]))
    if k == "binomial":
        import math
        return math.comb(f["n"], f["k"]) * f["p"] ** f["k"] * (1 - f["p"]) ** (f["n"] - f["k"])
    if k == "urn":
        a, b = f["a"], f["b"]
        return F(a, a + b) ** 2 if f["repl"] else F(a * (a - 1), (a + b) * (a + b - 1))
    if k == "expected":
        return sum(v * p for v, p in zip(f["vals"], f["probs"]))
    if k in ("comb", "perm"):
        import math
        return (math.comb if k == "comb" else math.perm)(f["n"], f["k"])
    if k == "atleast":
        return 1 - (1 - f["p"]) ** f["n"]
    if k == "bayes":
        return f["prior"] * f["sens"] / (f["prior"] * f["sens"] + (1 - f["prior"]) * f["fpr"])
    if k == "cards":
        return [F(1, 4), F(3, 13), F(4, 13), F(1, 221)][f["case"]]
    if k == "independent":
        return (f["pa"] * f["pb"], f["pa"] + f["pb"] - f["pa"] * f["pb"])
    raise AssertionError(f"no independent check for kind {k!r}")


@pytest.mark.parametrize("subfield", mathgen.SUBFIELDS)
def test_math_subfield_answers_are_correct(subfield):
    import random
    r = random.Random(f"test-{subfield}")
    kinds = set()
    for _ in range(600):
        p = mathgen.problem(subfield, r)
        f = p.facts
        kinds.add(f["kind"])
        expected = _recompute(f)
        got = f["answer"]
        if isinstance(expected, list) and f["kind"] == "quadratic":
            got = sorted(set(got))
        assert got == expected, (subfield, p.question, p.answer, expected)
        assert p.question and len(p.solution) >= 10 and p.answer and p.answer in p.answer
    assert len(kinds) >= 8  # many problem kinds per subfield


def test_math_documents_deterministic_per_seed():
    for sf in mathgen.SUBFIELDS:
        a = mathgen.document(sf, 7)
        assert a == mathgen.document(sf, 7) != mathgen.document(sf, 8)
        assert mathgen.document(sf, 7, seed=99) != a
        assert mathgen.documents(sf, 2, start=7)[0] == a
    # the shipped subfield corpora are exactly the generator's output for the manifest's seed
    first = data.load_texts("geometry", "pretrain")[:50]
    assert set(first) <= set(mathgen.documents("geometry", 9000, seed=corpora.SEED))


def test_richness_measures():
    r = mathgen.richness("the cat sat on the mat " * 2000)
    assert r["xz_ratio"] > 50 and r["distinct_8gram"] < 0.01
    import random
    rng = random.Random(0)
    noise = " ".join("".join(rng.choice("abcdefgh") for _ in range(6)) for _ in range(5000))
    r2 = mathgen.richness(noise)
    assert r2["xz_ratio"] < 3 and r2["distinct_8gram"] > 0.99
