"""Resolve git merge conflicts in stored results' provenance.json files with `core.results.merge_provenance`.

    git merge other-branch            # conflicts in data/results/<study>/<profile>/provenance.json
    python scripts/merge_provenance.py data/results/routing/cpu/provenance.json ...
    git commit

Reads both sides of each conflicted file from git's index (stage 2 = ours, 3 = theirs), writes the
merged provenance and `git add`s it. A path that is not in conflict is refused (nothing written).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from scalinglaws.core.results import atomic_write_json, merge_provenance


def side(stage: int, path: str) -> dict:
    return json.loads(subprocess.check_output(["git", "show", f":{stage}:{path}"]))


def main(paths: list[str]) -> int:
    if not paths:
        print("usage: python scripts/merge_provenance.py PROVENANCE_JSON ...", file=sys.stderr)
        return 2
    for path in paths:
        staged = subprocess.run(["git", "ls-files", "--unmerged", "--", path], capture_output=True, text=True)
        if Path(path).name != "provenance.json" or not staged.stdout.strip():
            print(f"path {path!r} is not a provenance.json in merge conflict", file=sys.stderr)
            return 2
    for path in paths:
        atomic_write_json(Path(path), merge_provenance(side(2, path), side(3, path)))
        subprocess.check_call(["git", "add", path])
        print("merged", path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
