"""`python -m scalinglaws ...`: what a user does outside notebooks.

Each command group lives beside the code it drives: a module listed in COMMAND_MODULES defines
`register(subparsers)`, which adds its sub-command(s) and sets `func` (args -> exit code).
Errors a user can fix (ParameterError, FileNotFoundError, ValueError from validation) print one
line and exit non-zero; nothing is written before validation passes.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from scalinglaws.validation import ParameterError

COMMAND_MODULES = (
    "scalinglaws.data",          # data build | verify
    "scalinglaws.fit_cli",       # fit LAW FILE.csv
    "scalinglaws.plan_cli",      # plan merging ...
    "scalinglaws.studies.cli",   # reproduce STUDY PROFILE
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m scalinglaws", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ParameterError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
