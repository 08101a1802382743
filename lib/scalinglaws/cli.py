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
LATE_MODULES = ("scalinglaws.studies.lease_cli",)  # plan gpu: joins the `plan` group the studies create


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m scalinglaws", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    from scalinglaws.studies import study_cli_modules

    for name in (*COMMAND_MODULES, *study_cli_modules(), *LATE_MODULES):
        importlib.import_module(name).register(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ParameterError, FileNotFoundError) as e:  # ChecksumError is a ParameterError
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except Exception as e:
        from scalinglaws.core.sweep import SweepBusy
        if isinstance(e, SweepBusy):
            print(f"error: {e}", file=sys.stderr)
            return 3
        # a notebook run by papermill failed with one of our one-line errors
        if type(e).__name__ == "PapermillExecutionError" and getattr(e, "ename", "") in (
                "ParameterError", "ChecksumError", "FileNotFoundError", "SweepBusy"):
            print(f"error: {' '.join(str(e.evalue).split())}", file=sys.stderr)
            return 2
        raise
