"""The shipped corpora: text domains x 4 splits, checksummed on every load.

Domain groups:
  DOMAINS       the original 8 distinct domains (.jsonl.gz); the studies' default, unchanged
  EXTRA_REAL    more real text, distinct domains (.jsonl.xz): bible_web, commentary, perldoc,
                manpages, glossary, fortunes, code_tests
  RELATED_MATH  five generated mathematics subfields (.jsonl.xz), a family of related domains
  REAL_TEXT     every domain of real (not generated) text
  ALL_DOMAINS   all of them, in that order

Layout (all under `data/`): `corpora/<domain>/<split>.jsonl.gz|.xz` (one {"text": ...} per line),
`tokenizer/` (see `scalinglaws.data.tokenizer`), `manifest.json` (per file: domain, split, path,
sources with versions, licence, n_documents, bytes = raw UTF-8 bytes of the texts, tokens =
tokens with our tokenizer, sha256 of the compressed file) and `LICENSES.md`.

Every load checks the file's sha256 against the manifest (once per process and file state),
so a corrupted or edited corpus fails loudly, naming the file. `test` is never read by
training code; `val` is for model selection and excerpts.

    python -m scalinglaws data build    # fetch sources, rebuild corpora + tokenizer + manifest
    python -m scalinglaws data verify   # check every checksum, print the domain table
"""
from __future__ import annotations

import gzip
import json
import lzma
import os
import random
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from scalinglaws.core import paths
from scalinglaws.core.results import sha256_file
from scalinglaws.core.validation import ParameterError, check_choice, check_int, check_subset
from scalinglaws.data import tokenizer as tk

DOMAINS: tuple[str, ...] = ("code", "dictionary", "lexicon", "scripture", "legal", "techdocs", "speeches", "math")
EXTRA_REAL: tuple[str, ...] = ("bible_web", "commentary", "perldoc", "manpages", "glossary", "fortunes", "code_tests")
RELATED_MATH: tuple[str, ...] = ("arithmetic", "algebra", "number_theory", "geometry", "probability")
REAL_TEXT: tuple[str, ...] = tuple(d for d in DOMAINS if d != "math") + EXTRA_REAL
ALL_DOMAINS: tuple[str, ...] = DOMAINS + EXTRA_REAL + RELATED_MATH
GROUPS: dict[str, tuple[str, ...]] = {"original": DOMAINS, "extra_real": EXTRA_REAL, "related_math": RELATED_MATH,
                                      "real_text": REAL_TEXT, "all": ALL_DOMAINS}
SPLITS: tuple[str, ...] = ("pretrain", "finetune", "val", "test")
SIZE_LIMIT_BYTES = 45 * 2**20  # everything shipped under data/ (results excluded) stays below this


def suffix(domain: str) -> str:
    """File suffix of a domain's splits: the original 8 are gzip, the newer ones xz."""
    return ".jsonl.gz" if domain in DOMAINS else ".jsonl.xz"


def open_text(path: Path):
    """Open a .jsonl.gz or .jsonl.xz file for reading text, by suffix."""
    path = Path(path)
    if path.name.endswith(".xz"):
        return lzma.open(path, "rt", encoding="utf-8")
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    raise ValueError(f"{path}: expected a .jsonl.gz or .jsonl.xz file")


class ChecksumError(ParameterError):
    """A shipped file does not match its manifest entry (or the entry is unreadable). A
    ParameterError: entry points report it in one line and exit 2 before any compute."""


# ----------------------------------------------------------------------------- locations

def _root(data_dir: Path | None = None) -> Path:
    """The data folder: `paths.DATA_DIR` (read at call time, so tests can monkeypatch it)."""
    return Path(data_dir) if data_dir is not None else Path(paths.DATA_DIR)


def manifest_path(root: Path | None = None) -> Path:
    return _root(root) / "manifest.json"


def load_manifest(root: Path | None = None) -> dict:
    path = manifest_path(root)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; run `python -m scalinglaws data build`")
    try:
        manifest = json.loads(path.read_text())
        files = manifest["files"]
        for e in files:
            for key in ("domain", "split", "path", "sha256", "bytes", "tokens", "n_documents"):
                e[key]  # noqa: B018 -- presence check
    except (ValueError, KeyError, TypeError) as err:
        raise ChecksumError(f"{path} is malformed ({type(err).__name__}: {err})") from None
    return manifest


def _entry(manifest: dict, domain: str, split: str) -> dict:
    for e in manifest["files"]:
        if e["domain"] == domain and e["split"] == split:
            return e
    raise ChecksumError(f"manifest has no entry for domain={domain!r} split={split!r}")


def _check(domain: str, split: str) -> None:
    check_choice("domain", domain, ALL_DOMAINS)
    check_choice("split", split, SPLITS)


# ----------------------------------------------------------------------------- verification

_VERIFIED: dict[str, tuple] = {}  # path -> (expected sha, size, mtime_ns) that hashed correctly


def _verify_entry(root: Path, entry: dict, force: bool = False) -> str:
    """Hash one file unless this process already checked it in this state. Raises
    FileNotFoundError / ChecksumError naming the file. Returns its path."""
    path = root / entry["path"]
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing (listed in {manifest_path(root)})")
    st = path.stat()
    key, state = str(path), (entry["sha256"], st.st_size, st.st_mtime_ns)
    if force or _VERIFIED.get(key) != state:
        actual = sha256_file(path)
        if actual != entry["sha256"]:
            _VERIFIED.pop(key, None)
            raise ChecksumError(f"checksum mismatch for {path}: manifest has {entry['sha256'][:12]}..., "
                                f"file has {actual[:12]}... (restore it or rerun `python -m scalinglaws data build`)")
        _VERIFIED[key] = state
    return str(path)


def verify(all: bool = True, data_dir: Path | None = None) -> pd.DataFrame:  # noqa: A002 -- API name
    """Check shipped files against the manifest: every corpus file and the tokenizer files.
    all=True re-hashes everything; all=False skips files this process already verified.
    Raises ChecksumError / FileNotFoundError naming the first bad file; else returns one row
    per file (path, sha256, ok)."""
    root = _root(data_dir)
    manifest = load_manifest(root)
    entries = list(manifest["files"]) + list(manifest.get("tokenizer", {}).get("files", []))
    listed = {e["domain"] for e in manifest["files"]}
    missing = sorted({(d, s) for d in set(DOMAINS) | listed for s in SPLITS}
                     - {(e["domain"], e["split"]) for e in manifest["files"]})
    if missing:
        raise ChecksumError(f"{manifest_path(root)} lacks entries for {missing}")
    rows = []
    for e in entries:
        rows.append({"path": _verify_entry(root, e, force=all), "sha256": e["sha256"], "ok": True})
    return pd.DataFrame(rows)


def verify_files(pairs, data_dir: Path | None = None) -> list[str]:
    """Check the files a run will read, before it starts: the corpus file of every
    (domain, split) in `pairs` and the tokenizer files. Raises ChecksumError /
    FileNotFoundError naming the first bad file (cached per process and file state)."""
    root = _root(data_dir)
    manifest = load_manifest(root)
    out = []
    for domain, split in dict.fromkeys((d, s) for d, s in pairs):
        _check(domain, split)
        out.append(_verify_entry(root, _entry(manifest, domain, split)))
    for e in manifest.get("tokenizer", {}).get("files", []):
        out.append(_verify_entry(root, e))
    return out


# ----------------------------------------------------------------------------- loading

def checksums(domains, split: str, data_dir: Path | None = None) -> dict[str, str]:
    """{domain: sha256} of the shipped files of `split`, for unit configs: a model trained on
    other data gets another config hash."""
    manifest = load_manifest(data_dir)
    out = {}
    for d in check_subset("domains", list(domains), ALL_DOMAINS):
        _check(d, split)
        out[d] = _entry(manifest, d, split)["sha256"]
    return out


def corpus_path(domain: str, split: str, data_dir: Path | None = None) -> Path:
    """Path of a split's .jsonl.gz / .jsonl.xz file (validated names; not checksummed: see `load_texts`)."""
    _check(domain, split)
    return _root(data_dir) / "corpora" / domain / f"{split}{suffix(domain)}"


def load_texts(domain: str, split: str, data_dir: Path | None = None) -> list[str]:
    """The documents of one domain and split, after checking the file's sha256."""
    _check(domain, split)
    root = _root(data_dir)
    path = Path(_verify_entry(root, _entry(load_manifest(root), domain, split)))
    with open_text(path) as f:
        return [json.loads(line)["text"] for line in f]


def domain_table(data_dir: Path | None = None, domains=None) -> pd.DataFrame:
    """One row per (domain, split) from the manifest: documents, raw bytes, tokens, source
    packages and licence. `domains` (default: every domain in the manifest) restricts it, e.g.
    to `DOMAINS` for a study that trains on the original 8."""
    manifest = load_manifest(data_dir)
    keep = None if domains is None else set(check_subset("domains", list(domains), ALL_DOMAINS))
    rows = [{"domain": e["domain"], "split": e["split"], "documents": e["n_documents"], "bytes": e["bytes"],
             "tokens": e["tokens"], "source": "; ".join(e.get("sources", [])), "licence": e.get("licence", "")}
            for e in manifest["files"] if keep is None or e["domain"] in keep]
    t = pd.DataFrame(rows)
    known = ALL_DOMAINS + tuple(sorted(set(t["domain"]) - set(ALL_DOMAINS)))
    order = {d: i for i, d in enumerate(known)}, {s: i for i, s in enumerate(SPLITS)}
    t = t.sort_values(["domain", "split"], key=lambda c: c.map(order[0] if c.name == "domain" else order[1]))
    return t.reset_index(drop=True)


def token_ids(domain: str, split: str, data_dir: Path | None = None) -> np.ndarray:
    """All documents of a split tokenised, each followed by the EOS id, concatenated (uint16).

    Cached as `.npy` under `paths.work_root()/tokens/`, keyed by the corpus file's sha256 and
    the tokenizer's, so it is computed once and recomputed when either changes."""

    _check(domain, split)
    root = _root(data_dir)
    manifest = load_manifest(root)
    entry = _entry(manifest, domain, split)
    tok_dir = tk.tokenizer_dir(None if data_dir is None else root)
    tok_sha = sha256_file(tok_dir / "tokenizer.json") if (tok_dir / "tokenizer.json").exists() else "none"
    cache = paths.work_root() / "tokens" / f"{domain}-{split}-{entry['sha256'][:16]}-{tok_sha[:8]}.npy"
    if cache.exists():
        try:
            arr = np.load(cache, allow_pickle=False)
            if arr.dtype == np.uint16 and arr.ndim == 1:  # np.load refuses a truncated array body
                return arr
            raise ValueError(f"holds {arr.dtype} x {arr.shape}")
        except (OSError, ValueError, EOFError) as err:  # truncated or corrupted: a miss, rebuilt below
            warnings.warn(f"token cache {cache} is unreadable ({type(err).__name__}: {err}); rebuilding it",
                          RuntimeWarning, stacklevel=2)
            cache.unlink(missing_ok=True)
    texts = load_texts(domain, split, data_dir)
    eos = tk.eos_id(tok_dir)
    ids = []
    for doc in tk.encode_batch(texts, tok_dir):
        ids.extend(doc)
        ids.append(eos)
    arr = np.asarray(ids, dtype=np.uint16)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp.npy")
    try:
        np.save(tmp, arr)
        os.replace(tmp, cache)
    except BaseException:  # a full disk (or an interrupt) must not leave a partial cache behind
        tmp.unlink(missing_ok=True)
        raise
    return arr


def sample(domain: str, n_chars: int = 300, seed: int = 0, split: str = "val",
           data_dir: Path | None = None) -> str:
    """An excerpt of about `n_chars` characters from a random document (validation split by
    default), starting at a line start and ending at a word boundary: for the book."""
    _check(domain, split)
    check_int("n_chars", n_chars, minimum=1)
    check_int("seed", seed)
    texts = load_texts(domain, split, data_dir)
    rng = random.Random(f"{seed}-{domain}-{split}")
    long_enough = [t for t in texts if len(t) >= n_chars] or texts
    text = rng.choice(long_enough)
    # start at the beginning of a non-empty line, early enough to leave n_chars when possible
    limit = max(1, len(text) - n_chars)
    starts = [0] + [i + 1 for i, c in enumerate(text[:limit]) if c == "\n" and text[i + 1:i + 2] not in ("\n", "")]
    start = rng.choice(starts)
    excerpt = text[start:start + n_chars]
    if start + n_chars < len(text) and " " in excerpt[n_chars // 2:]:
        excerpt = excerpt[: excerpt.rfind(" ")]
    return excerpt.rstrip()


def tokenizer_stats(split: str = "val", data_dir: Path | None = None, domains=None) -> pd.DataFrame:
    """Per domain, on one split: documents, bytes, tokens, bytes per token (compression) and
    tokens per document, from the token counts recorded in the manifest."""
    check_choice("split", split, SPLITS)
    table = domain_table(data_dir=data_dir, domains=domains)
    t = table[table["split"] == split][["domain", "documents", "bytes", "tokens"]].reset_index(drop=True)
    t["bytes_per_token"] = t["bytes"] / t["tokens"]
    t["tokens_per_document"] = t["tokens"] / t["documents"]
    return t
