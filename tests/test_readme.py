"""The README's command lines run as written, with the exit codes the README documents."""
import re
import shlex
import subprocess
import sys

import pytest

from scalinglaws.core.paths import REPO_ROOT

# exit code documented in the README for each command (0 unless the README says otherwise)
DOCUMENTED = {"fit merging": 1, "plan merging": 1}
SKIP = ("reproduce", "data build", "claims", "clark")  # long (a whole study), needs root and the network, or
# rewrites the shipped results (claims: tested on a scratch store in tests/test_claims.py; clark: its validation
# in tests/test_clark_reference.py, its tables by the fit tests there)


def readme_commands():
    text = (REPO_ROOT / "README.md").read_text()
    cmds = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        block = block.replace("\\\n", " ")
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("python -m scalinglaws"):
                cmds.append(line)
    return cmds


COMMANDS = readme_commands()


def test_readme_has_commands():
    assert len(COMMANDS) >= 5


@pytest.mark.parametrize("cmd", [c for c in COMMANDS if not any(f"scalinglaws {s}" in c for s in SKIP)])
def test_readme_command(cmd, tmp_path):
    import os
    argv = shlex.split(cmd)
    expected = next((rc for k, rc in DOCUMENTED.items() if f"scalinglaws {k}" in cmd), 0)
    if "fit" in argv:
        argv += ["--bootstrap", "20"]  # the point estimate and exit code do not depend on it; keeps it fast
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "lib"), "SCALINGLAWS_WORK": str(tmp_path / "work")}
    env.pop("SCALINGLAWS_RESULTS", None)  # the README's commands read the shipped results (read-only)
    p = subprocess.run([sys.executable, *argv[1:]], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == expected, (cmd, p.returncode, p.stdout[-2000:], p.stderr[-2000:])
    if expected == 1:
        assert "ok = False" in p.stdout  # and it says why


def test_readme_budgets_match_the_profile_registry():
    """The budgets and learning-rate grids the README quotes are the registry's (no drift)."""
    from scalinglaws.core.profiles import REGISTRY
    text = (REPO_ROOT / "README.md").read_text()
    quoted = {"smoke": "41K", "cpu": "2.1M", "gpu": "33.6M"}
    for name, q in quoted.items():
        t = REGISTRY[name].pretrain_tokens
        assert f"{name} {q}" in text
        assert q == (f"{t / 1e3:.0f}K" if t < 1e6 else f"{t / 1e6:.1f}M")
    for name in ("cpu", "gpu"):
        assert f"{name} " + "/".join(f"{x:g}" for x in REGISTRY[name].lr_grid) in text
