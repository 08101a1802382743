"""`python -m scalinglaws ...`: what a user does outside notebooks.

Each command group lives beside the code it drives: a module listed in COMMAND_MODULES, or a study's
`cli.py` (found by `scalinglaws.studies.study_cli_modules`), defines `register(subparsers)`, which
adds its sub-command(s) and sets `func` (args -> exit code).
Errors a user can fix (ParameterError, FileNotFoundError, ValueError from validation) print one
line and exit non-zero; nothing is written before validation passes.

Exit codes (README): 0 done; 1 a fitted law is not ok (`fit`, `plan`); 2 bad input (nothing
written); 3 another process holds the study (or one it depends on); 4 a run failed (a unit raised,
a checkpoint no longer matches its record, a disk error: one `error:` line, a failure record under
the work root); 130 interrupted (Ctrl-C or SIGTERM: finished units are kept, rerun to resume).
"""
from __future__ import annotations

import argparse
import importlib
import signal
import sys

from scalinglaws.core.validation import ParameterError

COMMAND_MODULES = (
    "scalinglaws.data.cli",      # data build | verify
    "scalinglaws.fitting.cli",   # fit LAW FILE.csv
    "scalinglaws.studies.cli",   # reproduce STUDY PROFILE
    "scalinglaws.studies.replicates",  # seeds STUDY --profile P: training-seed replicates
)
LATE_MODULES = ("scalinglaws.studies.lease_cli",)  # plan gpu: joins the `plan` group the studies create


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m scalinglaws", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    from scalinglaws.studies import study_cli_modules

    for name in (*COMMAND_MODULES, *study_cli_modules(), *LATE_MODULES):
        importlib.import_module(name).register(sub)
    return parser


EXIT_OK, EXIT_NOT_OK, EXIT_BAD_INPUT, EXIT_BUSY, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130
INTERRUPTED = "interrupted; finished units are kept, rerun to resume"
_ONE_LINE = {"ParameterError": EXIT_BAD_INPUT, "ChecksumError": EXIT_BAD_INPUT, "FileNotFoundError": EXIT_BAD_INPUT,
             "SweepBusy": EXIT_BUSY, "UnitFailed": EXIT_FAILED, "RunFailed": EXIT_FAILED,
             "CorruptCheckpoint": EXIT_FAILED}


def _sigterm(signum, frame):
    raise KeyboardInterrupt  # unwinds like Ctrl-C: locks released, temporary files removed


def _error(text) -> None:
    print(f"error: {' '.join(str(text).split())}", file=sys.stderr)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _sigterm)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ParameterError, FileNotFoundError) as e:  # ChecksumError is a ParameterError
        _error(e)
        return EXIT_BAD_INPUT
    except Exception as e:
        name = type(e).__name__
        if name in _ONE_LINE:  # SweepBusy, UnitFailed, RunFailed, CorruptCheckpoint (by name: no import cycle)
            _error(e)
            return _ONE_LINE[name]
        if isinstance(e, OSError):  # a disk error outside a study's run (e.g. a claims table write)
            _error(f"{type(e).__name__}: {e}")
            return EXIT_FAILED
        # a notebook run by papermill failed with one of our one-line errors, or was interrupted
        if name == "PapermillExecutionError":
            ename = getattr(e, "ename", "")
            if ename == "KeyboardInterrupt":
                print(INTERRUPTED, file=sys.stderr)
                return EXIT_INTERRUPTED
            if ename in _ONE_LINE:
                _error(e.evalue)
                return _ONE_LINE[ename]
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
