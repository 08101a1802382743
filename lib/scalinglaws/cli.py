"""`python -m scalinglaws ...`: what a user does outside notebooks.

Each command group lives beside the code it drives: a module listed in COMMAND_MODULES, or a study's
`cli.py` (found by `scalinglaws.studies.study_cli_modules`), defines `register(subparsers)`, which
adds its sub-command(s) and sets `func` (args -> exit code).
Errors a user can fix (ParameterError, FileNotFoundError, ValueError from validation) print one
line and exit non-zero; nothing is written before validation passes.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from scalinglaws.core.validation import ParameterError

COMMAND_MODULES = (
    "scalinglaws.data.cli",      # data build | verify
    "scalinglaws.fitting.cli",   # fit LAW FILE.csv
    "scalinglaws.studies.cli",   # reproduce STUDY PROFILE
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m scalinglaws", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    from scalinglaws.studies import study_cli_modules

    for name in (*COMMAND_MODULES, *study_cli_modules()):
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
