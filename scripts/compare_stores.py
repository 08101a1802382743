"""Compare a study's committed tables with a rerun's, e.g. one part remade from a fresh clone.

    # retrain resource part `pilot` from nothing (an empty results root: no unit record is reused)
    SCALINGLAWS_RESULTS=/tmp/fresh/results SCALINGLAWS_WORK=/tmp/fresh/work \\
        python -m scalinglaws reproduce resource --profile cpu --no-notebook --param part=pilot
    python scripts/compare_stores.py resource cpu /tmp/fresh/results            # bit for bit
    python scripts/compare_stores.py resource cpu /tmp/fresh/results --atol 1e-6 --tables lm_parts

Every table both stores hold (or --tables) is compared by `scalinglaws.core.compare`: rows matched
on their unit (or their non-float columns), float columns within --atol (default 0), run-describing
columns (wall times, node, date) skipped and listed. One line per table; exit 0 when every table is
the same, 1 when one differs, 2 on a bad argument (nothing compared)."""
import argparse
import sys
from pathlib import Path


def main(argv=None) -> int:
    from scalinglaws.core.compare import compare_stores
    from scalinglaws.core.profiles import PROFILES
    from scalinglaws.core.results import ResultStore
    from scalinglaws.core.validation import ParameterError, check_choice
    from scalinglaws.studies import study_names

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("study")
    ap.add_argument("profile")
    ap.add_argument("rerun_root", help="the results root of the rerun (its SCALINGLAWS_RESULTS)")
    ap.add_argument("--reference-root", default=None, help="default: this checkout's data/results")
    ap.add_argument("--tables", default=None, help="comma-separated table names (default: every common table)")
    ap.add_argument("--atol", default="0", help="absolute tolerance on float values (default 0)")
    a = ap.parse_args(argv)
    try:
        study = check_choice("study", a.study, study_names())
        profile = check_choice("profile", a.profile, list(PROFILES))
        try:
            atol = float(a.atol)
        except ValueError:
            atol = float("nan")  # refused just below, in the same words
        if not atol >= 0:
            raise ParameterError(f"--atol must be a number >= 0, got {a.atol!r}")
        ref = ResultStore(study, profile, Path(a.reference_root) if a.reference_root else None)
        new = ResultStore(study, profile, Path(a.rerun_root))
        for name, store in (("reference", ref), ("rerun", new)):
            if not store.dir.is_dir() or not store.tables():
                raise ParameterError(f"{name} store {store.dir} holds no table of {study} at {profile}")
        tables = None
        if a.tables is not None:
            tables = [t.strip() for t in a.tables.split(",") if t.strip()]
            common = sorted(set(ref.tables()) & set(new.tables()))
            for t in tables:
                check_choice("--tables", t, common)
            if not tables:
                raise ParameterError(f"--tables names no table; allowed: {', '.join(common)}")
    except ParameterError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    diffs = compare_stores(ref, new, tables, atol)
    if not diffs:
        print(f"no table is held by both {ref.dir} and {new.dir}", file=sys.stderr)
        return 1
    print(f"{study} @ {profile}: {new.dir} against {ref.dir}, float tolerance {atol:g}")
    for d in diffs:
        print("  " + d.line())
    return 0 if all(d.same for d in diffs) else 1


if __name__ == "__main__":
    sys.exit(main())
