"""`python -m scalinglaws reproduce STUDY --profile P`: rerun a study's experiment notebook.
`python -m scalinglaws claims STUDY --profile P`: recompute a study's claims table from its stored tables.

The notebook `notebooks/<study>.ipynb` is executed with papermill (parameters injected), its
executed copy saved under `_build/reproduce/`; its tables land in `data/results/<study>/<profile>/`.
`STUDY=all` runs every study in order (the testbed first: the others reuse its checkpoints).

A long run is watchable: the notebook's own output (its prints and the sweeps' progress lines,
`<study>@<profile> <what>: done/total units, elapsed, ~time left`) streams to the terminal as it
comes, the kernel's own start-up log (its transport warning) is silenced, and `--no-notebook` and
the Ray backend print the same progress lines.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from scalinglaws.core.paths import REPO_ROOT
from scalinglaws.studies import get_study, study_names, validate_run
from scalinglaws.core import profiles as PR
from scalinglaws.core.validation import ParameterError, check_backend, check_choice


def plan_group(subparsers):
    """The `plan` command's subcommand group, made by whichever module registers a plan first (a
    study's `plan LAW`, or `plan gpu`), so every planner joins one `python -m scalinglaws plan`:
    `plan_group(subparsers).add_parser(NAME, ...)`. The group is kept on the `plan` parser it made
    (`plan_commands`), so nothing reaches into argparse's internals; a `plan` made any other way
    is refused."""
    p = subparsers.choices.get("plan")
    if p is None:
        p = subparsers.add_parser("plan", help="plan with a fitted scaling law",
                                  description="Plan with a fitted scaling law, or a study's lease parts "
                                              "(see `plan NAME -h`).")
        p.plan_commands = p.add_subparsers(dest="plan_law", required=True)
    if not hasattr(p, "plan_commands"):
        raise RuntimeError("the `plan` command was registered without studies.cli.plan_group: register plans through it")
    return p.plan_commands


def register(sub) -> None:
    p = sub.add_parser("reproduce", help="rerun a study's experiments at a profile (papermill)")
    p.add_argument("study", help=f"one of {list(study_names())} or 'all'")
    p.add_argument("--profile", default=PR.default(), help=f"one of {list(PR.names())} (default {PR.default()})")
    p.add_argument("--backend", default="local", help="sweep backend: local or ray")
    p.add_argument("-p", "--param", nargs="+", default=[], metavar="NAME=VALUE",
                   help="override a profile parameter; VALUE is JSON (e.g. sizes='[\"d32l2\"]' lr=1e-3)")
    p.add_argument("--no-notebook", action="store_true",
                   help="call the study's run() directly instead of executing its notebook")
    p.set_defaults(func=_reproduce)
    c = sub.add_parser("claims", help="recompute a study's claims table from its stored tables (no rerun)")
    c.add_argument("study", help=f"a study with a claims module: {list(claims_studies())}")
    c.add_argument("--profile", default=PR.default(), help=f"one of {list(PR.names())} (default {PR.default()})")
    c.set_defaults(func=_claims)


def claims_studies() -> list[str]:
    """Studies with a `claims.py` (`claims(tables, profile) -> DataFrame`)."""
    import importlib.util
    return [n for n in study_names() if importlib.util.find_spec(f"scalinglaws.studies.{n}.claims") is not None]


def derive_claims(study: str, profile: str, root=None):
    """Recompute `claims` from the stored tables of a complete run of `study` at `profile` (nothing
    is rerun), write it atomically and record it in provenance.json under `derived.claims` (the
    commit and date that computed it). Every stored table is passed to the study's `claims`, its
    training-seed replicates `seeds` included. A study whose claims module has
    `derived_tables(tables, config)` first recomputes those tables from stored ones under the
    current rules (e.g. fits re-judged by the trust rule; no retraining), writes them and records
    each under `derived.<table>`. Returns the store."""
    import datetime as dt
    import importlib

    from scalinglaws.core import claims as CL
    from scalinglaws.core.results import ResultStore, git_commit

    check_choice("study", study, claims_studies())
    check_choice("profile", profile, PR.names())
    store = ResultStore(study, profile, root)
    prov = store.provenance()
    if not prov:
        raise ParameterError(f"no complete run of {study!r} at profile {profile!r} under {store.dir} "
                             f"(no provenance.json); run `make reproduce STUDY={study} PROFILE={profile}`")
    tables = {t: store.read(t) for t in store.tables() if t != "claims"}
    module = importlib.import_module(f"scalinglaws.studies.{study}.claims")
    stamp = {"commit": git_commit(), "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
             "command": f"python -m scalinglaws claims {study} --profile {profile}"}
    refreshed = module.derived_tables(tables, prov.get("config", {})) if hasattr(module, "derived_tables") else {}
    for name, table in refreshed.items():
        store.write(name, table)
        prov.setdefault("derived", {})[name] = {**stamp, "from": sorted(tables)}
    tables.update(refreshed)
    df = CL.check_claims(module.claims(tables, profile))
    store.write("claims", df)
    prov.setdefault("derived", {})["claims"] = {**stamp, "from": sorted(tables)}
    store.write_provenance(prov)
    return store


def _claims(args) -> int:
    store = derive_claims(args.study, args.profile)
    df = store.read("claims")
    counts = df["verdict"].value_counts()
    from scalinglaws.core.claims import VERDICTS
    print(f"{store.path('claims')}: {len(df)} claims; " + ", ".join(f"{v} {counts.get(v, 0)}" for v in VERDICTS))
    return 0


def _reproduce(args) -> int:
    names = list(study_names()) if args.study == "all" else [check_choice("study", args.study, study_names())]
    check_choice("profile", args.profile, PR.names())
    check_backend(args.backend)
    overrides = parse_overrides(args.param)
    if overrides and len(names) > 1:
        raise ParameterError("--param applies to one study; name it instead of 'all'")
    for name in names:  # validate everything before running anything
        if not (REPO_ROOT / "notebooks" / f"{name}.ipynb").exists():
            raise ParameterError(f"study {name!r} has no notebook notebooks/{name}.ipynb")
        validate_run(get_study(name), args.profile, args.backend, overrides)  # data checksums included
    for i, name in enumerate(names, 1):
        t0 = time.perf_counter()
        how = "run() directly" if args.no_notebook else f"notebooks/{name}.ipynb"
        print(f"{name} @ {args.profile} (study {i} of {len(names)}): starting ({how}, backend {args.backend}); "
              "progress lines follow", flush=True)
        if args.no_notebook:
            get_study(name).run(args.profile, backend=args.backend, **overrides)
        else:
            run_notebook(name, args.profile, backend=args.backend, overrides=overrides)
        print(f"{name} @ {args.profile}: done in {time.perf_counter() - t0:.0f} s", flush=True)
    return 0


def parse_overrides(pairs) -> dict:
    """NAME=VALUE pairs; VALUE is read as JSON, or kept as a string when it is not JSON."""
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ParameterError(f"--param {pair!r} is not NAME=VALUE")
        try:
            out[name] = json.loads(value)
        except json.JSONDecodeError:
            out[name] = value
    return out


KERNEL_QUIET = ["--IPKernelApp.log_level=ERROR"]  # the kernel's start-up log: its TCP transport warning


def _quiet_kernel_manager():
    """A kernel manager whose kernel process writes its own log (the TCP transport warning, the
    tracebacks of a kernel stopped by an interrupt) nowhere: the notebook's output reaches us
    through the kernel's messages, not its file descriptors."""
    import subprocess

    from jupyter_client.manager import AsyncKernelManager

    class QuietKernelManager(AsyncKernelManager):
        async def start_kernel(self, **kw):
            kw.setdefault("stderr", subprocess.DEVNULL)
            return await super().start_kernel(**kw)

    return QuietKernelManager


def run_notebook(study: str, profile: str, stream: bool = True, **params) -> Path:
    """Execute `notebooks/<study>.ipynb` with papermill; with `stream` its stdout and stderr (prints,
    progress lines, warnings) reach ours as they come instead of only the executed copy. The kernel's
    own log and the execution machinery's (a cell that fails raises, and is reported as one line or a
    traceback by the CLI; an interrupt ends in one line) are silenced."""
    import logging
    import sys

    import papermill as pm
    out = REPO_ROOT / "_build" / "reproduce" / f"{study}-{profile}.ipynb"
    out.parent.mkdir(parents=True, exist_ok=True)
    for name in ("papermill", "traitlets", "asyncio"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    pm.execute_notebook(str(REPO_ROOT / "notebooks" / f"{study}.ipynb"), str(out),
                        parameters={"profile": profile, **params}, cwd=str(REPO_ROOT), progress_bar=False,
                        stdout_file=sys.stdout if stream else None, stderr_file=sys.stderr if stream else None,
                        extra_arguments=KERNEL_QUIET, kernel_manager_class=_quiet_kernel_manager())
    return out
