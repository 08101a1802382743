"""Faults tried as a user's machine would fail, on real study runs at the smoke profile (issue 29):
a corrupted base checkpoint, plans from an untrusted law, a long run that must show its progress."""
import json
import os
import sys

import pandas as pd
import pytest

from scalinglaws.cli import main

# one size at one rate on two small domains: seconds, yet a real pretrain + eval through the CLI
TINY = ["-p", 'sizes=["d16l1"]', "lrs=[0.003]", 'domains=["geometry", "algebra"]', "pretrain_tokens=4096",
        "step_check=null", "eval_tokens=128", "eval_bootstrap=2"]


def _tables(res):
    d = res / "testbed" / "smoke"
    return {t: pd.read_parquet(d / f"{t}.parquet") for t in ("lr_sweep", "ce", "evals")}


def test_corrupted_base_checkpoint_is_refused_and_redone(scratch_roots, capsys, one_thread):
    res, work = scratch_roots
    assert main(["reproduce", "testbed", "--profile", "smoke", "--no-notebook", *TINY]) == 0
    err = capsys.readouterr().err
    assert "testbed@smoke pretrain: 1 units, 0 already done, 1 to run" in err  # --no-notebook shows progress
    assert "testbed@smoke pretrain: 1/1 units done" in err
    clean = _tables(res)
    unit = clean["lr_sweep"]["unit"].item()
    weights = next(work.glob(f"checkpoints/pretrain/*-{unit}")) / "model.safetensors"
    record = work / "units" / "testbed" / "smoke" / "pretrain" / f"{unit}.json"
    assert json.loads(record.read_text())["checkpoint"]["model.safetensors"]  # its sha256, with the unit
    data = bytearray(weights.read_bytes())
    data[-200:-136] = bytes(b ^ 0xFF for b in data[-200:-136])  # 64 bytes in the tensors, header intact
    weights.write_bytes(bytes(data))
    assert main(["reproduce", "testbed", "--profile", "smoke", "--no-notebook", *TINY]) == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: checkpoint file {weights} of unit pretrain/{unit}"), err
    assert not record.exists()  # so the rerun trains it again
    assert main(["reproduce", "testbed", "--profile", "smoke", "--no-notebook", *TINY]) == 0
    for name, df in _tables(res).items():
        pd.testing.assert_frame_equal(df, clean[name], obj=name)  # identical to the clean run


def test_plan_merging_refuses_the_untrusted_cpu_law_and_names_the_criterion(capsys, monkeypatch):
    monkeypatch.delenv("SCALINGLAWS_RESULTS", raising=False)  # the shipped cpu results, read only
    argv = ["plan", "merging", "--profile", "cpu", "--experts", "related", "--method", "average",
            "--size", "d64l4", "--target", "1.62"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "not ok by the trust rule" in out and "on a bound: L_star, gamma" in out
    assert "double the base" not in out  # no answer from the law
    assert "what the stored results support at d64l4" in out and "per-size tail fit" in out
    assert "no measured k reaches it" in out
    assert main(argv + ["--untrusted"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("WARNING: the merging law") and "on a bound: L_star, gamma" in out
    assert main(argv + ["--json"]) == 1
    d = json.loads(capsys.readouterr().out)
    assert d["trusted"] is False and d["why_not_ok"].startswith("on a bound: L_star, gamma") and d["refused"]


def test_plan_composition_warns_when_the_line_it_follows_is_not_ok():
    from scalinglaws.studies.composition import planning as P
    # three measured costs whose losses do not follow a line in log-log (R^2 far below the rule's 0.9)
    summary = pd.DataFrame({"pool": "p", "k": 2, "arm": "merge", "size": ["a", "b", "c"],
                            "total_flops": [1e12, 1e13, 1e14], "total_flops_amortised": [1e11, 1e12, 1e13],
                            "loss": [3.0, 2.0, 2.9], "se": 0.01, "hi": [3.02, 2.02, 2.92]})
    from scalinglaws.fitting.schema import fit_rows, fits_frame
    from scalinglaws.studies.composition import analysis as CA
    # the stored `fits` table's schema (the one fits schema); its ok is the planner's to recompute
    fits = fits_frame(fit_rows(CA.LINE_LAW, {"slope": -0.05, "intercept": 1.0288}, ok=True, why_not_ok="", n_points=3,
                               keys={"pool": "p", "k": 2, "arm": "merge"},
                               extra={"cost_min": 1e12, "cost_max": 1e14, "loss_min": 2.0, "loss_max": 3.0}),
                      CA.FIT_KEYS, CA.FIT_EXTRA)
    out = P.target_plan(summary, fits, "p", 2, 1.9)
    assert out["source"] == "fitted line (extrapolated)" and out["trusted"] is False
    assert "R^2" in out["why_not_ok"]
    assert "WARNING: the fitted line of merge is not ok by the trust rule" in P.render(out)


def test_reproduce_streams_the_notebook_and_silences_the_kernel_warning(tmp_path, monkeypatch, capfd):
    import nbformat
    from scalinglaws.studies import cli as scli
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python",
                                                           "display_name": "Python 3"}})
    nb.cells = [nbformat.v4.new_code_cell("profile = 'smoke'\noverrides = {}", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("import sys\nprint('notebook says hello', flush=True)\n"
                                          "print('toy@smoke toy: 1/2 units done', file=sys.stderr, flush=True)")]
    (tmp_path / "notebooks").mkdir()
    nbformat.write(nb, tmp_path / "notebooks" / "toy.ipynb")
    monkeypatch.setattr(scli, "REPO_ROOT", tmp_path)
    scli.run_notebook("toy", "smoke", overrides={})
    out, err = capfd.readouterr()
    assert "notebook says hello" in out and "toy@smoke toy: 1/2 units done" in err
    assert "without encryption" not in out + err


_NOTEBOOK_RUN = """
import argparse, sys
from pathlib import Path
import scalinglaws.cli as C
from scalinglaws.studies import cli as scli
scli.REPO_ROOT = Path(sys.argv[1])
def parser():  # main() around run_notebook alone: the study CLIs' imports would take most of the test
    p = argparse.ArgumentParser()
    p.add_subparsers(dest="command").add_parser("toy").set_defaults(func=lambda a: not scli.run_notebook("toy", "smoke"))
    return p
C.build_parser = parser
raise SystemExit(C.main(["toy"]))
"""


def test_interrupting_a_notebook_run_is_one_line(tmp_path):
    """Ctrl-C while `reproduce` executes a notebook: one line, exit 130, no kernel tracebacks."""
    import signal
    import subprocess
    import nbformat
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python",
                                                           "display_name": "Python 3"}})
    nb.cells = [nbformat.v4.new_code_cell("profile = 'smoke'", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("import time\nprint('unit 1 of 2 running', flush=True)\ntime.sleep(60)")]
    (tmp_path / "notebooks").mkdir()
    nbformat.write(nb, tmp_path / "notebooks" / "toy.ipynb")
    p = subprocess.Popen([sys.executable, "-c", _NOTEBOOK_RUN, str(tmp_path)], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        for line in p.stdout:
            if "unit 1 of 2 running" in line:  # streamed while the cell runs
                break
        p.send_signal(signal.SIGINT)
        rest = p.stdout.read()
        assert p.wait(timeout=60) == 130
    finally:
        p.kill()
    assert rest.strip() == "interrupted; finished units are kept, rerun to resume", rest
