"""`python -m scalinglaws fit`: JSON output, column mapping, D from FLOPs, dropping rows, exit codes.

The CLI is driven through `scalinglaws.cli.main` with only the fit command registered, so these
tests do not depend on the other command modules."""
import json

import numpy as np
import pandas as pd
import pytest

from scalinglaws import cli
from scalinglaws.laws import get_law


@pytest.fixture(autouse=True)
def only_fit_command(monkeypatch):
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("scalinglaws.fitting.cli",))


@pytest.fixture
def power_csv(tmp_path):
    rng = np.random.default_rng(0)
    x = np.logspace(1, 4, 12)
    y = 3.0 * x ** -1.0 * np.exp(0.003 * rng.standard_normal(12))
    y[-1] = 50.0  # an outlier with the highest loss
    path = tmp_path / "power.csv"
    pd.DataFrame({"neurons": x, "test loss": y}).to_csv(path, index=False)
    return path


def run(argv, capsys):
    code = cli.main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_json_output_with_column_mapping_and_dropping(power_csv, capsys):
    code, out, err = run(["fit", "power", str(power_csv), "--columns", "x=neurons", "--y", "test loss",
                          "--drop-highest-loss", "1", "--bootstrap", "30", "--json"], capsys)
    assert code == 0, err
    d = json.loads(out)
    assert set(d["params"]) == {"A", "alpha"}
    assert d["params"]["alpha"] == pytest.approx(1.0, rel=0.01)  # the outlier was dropped
    assert d["n"] == 11 and d["converged"] is True
    assert set(d["ci"]) == {"A", "alpha"} and d["ci"]["alpha"][0] <= d["params"]["alpha"] <= d["ci"]["alpha"][1]
    assert 0.99 < d["r2"] <= 1.0


def test_plain_output_prints_intervals_and_wall_time(power_csv, capsys):
    code, out, _ = run(["fit", "power", str(power_csv), "--columns", "x=neurons", "--y", "test loss",
                        "--drop-highest", "1", "--bootstrap", "20"], capsys)
    assert code == 0
    assert "alpha" in out and "95% CI" in out and "wall time" in out


def test_flops_column_and_derive_give_the_same_chinchilla_fit(tmp_path, capsys):
    true = {"E": 1.7, "A": 400.0, "B": 1000.0, "alpha": 0.34, "beta": 0.30}
    N, D = (m.ravel() for m in np.meshgrid(np.logspace(6, 9, 5), np.logspace(8, 11, 5)))
    loss = get_law("chinchilla").predict(true, {"N": N, "D": D})
    path = tmp_path / "chin.csv"
    pd.DataFrame({"Model Size": N, "Training FLOP": 6 * N * D, "loss": loss}).to_csv(path, index=False)
    code, out, err = run(["fit", "chinchilla", str(path), "--columns", "N=Model Size",
                          "--flops-column", "Training FLOP", "--bootstrap", "0", "--json"], capsys)
    assert code == 0, err
    a = json.loads(out)
    for k, v in true.items():
        assert a["params"][k] == pytest.approx(v, rel=1e-3)
    code, out, _ = run(["fit", "chinchilla", str(path), "--columns", "N=Model Size",
                        "--derive", "D=`Training FLOP` / (6 * `Model Size`)", "--bootstrap", "0", "--json"], capsys)
    assert code == 0
    assert json.loads(out)["params"] == pytest.approx(a["params"], rel=1e-9)


@pytest.mark.parametrize("argv, needle", [
    (["fit", "powr", "{csv}"], "unknown law"),
    (["fit", "power", "{csv}", "--columns", "x=neuron", "--y", "test loss"], "'neuron'"),
    (["fit", "power", "{csv}", "--columns", "x=neurons"], "'loss'"),
    (["fit", "power", "{csv}", "--columns", "xneurons"], "NAME=VALUE"),
    (["fit", "power", "{csv}", "--flops-column", "F"], "inputs N and D"),
    (["fit", "power", "{csv}", "--columns", "x=neurons", "--y", "test loss", "--drop-highest-loss", "12"], "drop all"),
    (["fit", "power", "{csv}", "--columns", "x=neurons", "--y", "test loss", "--bootstrap", "-3"], "bootstrap"),
    (["fit", "power", "missing.csv"], "No such file"),
])
def test_bad_input_is_one_line_and_exit_2(power_csv, capsys, argv, needle):
    code, out, err = run([a.replace("{csv}", str(power_csv)) for a in argv], capsys)
    assert code == 2
    assert needle in err and err.count("\n") == 1 and out == ""


def test_fit_at_a_bound_exits_1(tmp_path, capsys):
    x = np.logspace(0, 3, 12)
    path = tmp_path / "up.csv"
    pd.DataFrame({"x": x, "loss": 1.0 + 0.1 * x ** 0.3}).to_csv(path, index=False)
    code, out, _ = run(["fit", "power_offset", str(path), "--bootstrap", "0", "--json"], capsys)
    assert code == 1
    d = json.loads(out)
    assert d["ok"] is False and "alpha" in d["on_bound"]


def test_parquet_table_with_where_filter(tmp_path, capsys):
    # a stored-results-like table: two groups, only one of which follows the law
    rng = np.random.default_rng(1)
    x = np.logspace(1, 4, 12)
    good = pd.DataFrame({"group": "a", "x": x, "loss": 2.0 * x ** -0.5 * np.exp(0.002 * rng.standard_normal(12))})
    bad = pd.DataFrame({"group": "b", "x": x, "loss": rng.uniform(1, 2, 12)})
    path = tmp_path / "table.parquet"
    pd.concat([good, bad]).to_parquet(path)
    code, out, err = run(["fit", "power", str(path), "--where", "group == 'a'", "--bootstrap", "20", "--json"], capsys)
    assert code == 0, err
    d = json.loads(out)
    assert d["n"] == 12 and d["params"]["alpha"] == pytest.approx(0.5, rel=0.02)
    assert "samples" in d and len(d["samples"]) == 20  # bootstrap draws, for `plan --fit`
    code, out, err = run(["fit", "power", str(path), "--where", "group == 'zzz'"], capsys)
    assert code == 2 and "selects no rows" in err
