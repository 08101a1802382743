"""The data layer: shipped corpora (checksummed loading), their builders, the tokenizer.

    corpus.py     load and verify the shipped splits (`load_texts`, `token_ids`, `checksums`)
    tokenizer.py  the byte-level BPE tokenizer (train, load, encode)
    corpora.py    one builder per domain (Debian/PyPI sources, the math generators)
    mathgen.py    the five generated mathematics subfields (arithmetic ... probability)
    build.py      `data build`: corpora + tokenizer + manifest + licences
    cli.py        `python -m scalinglaws data build | verify`

`from scalinglaws import data` gives the loading API below.
"""
from scalinglaws.data.corpus import (ALL_DOMAINS, DOMAINS, EXTRA_REAL, GROUPS, REAL_TEXT, RELATED_MATH, SIZE_LIMIT_BYTES, SPLITS, ChecksumError, checksums, corpus_path,
                                     domain_table, load_manifest, load_texts, manifest_path, sample,
                                     sha256_file, token_ids, tokenizer_stats, verify)

__all__ = ["ALL_DOMAINS", "DOMAINS", "EXTRA_REAL", "GROUPS", "REAL_TEXT", "RELATED_MATH", "SIZE_LIMIT_BYTES", "SPLITS", "ChecksumError", "checksums", "corpus_path", "domain_table",
           "load_manifest", "load_texts", "manifest_path", "sample", "sha256_file", "token_ids",
           "tokenizer_stats", "verify"]
