"""Study parameters are validated before any compute, and nothing is written on bad input."""
import pytest

from scalinglaws.cli import main
from scalinglaws.studies import get_study, resolve_params, study_names
from scalinglaws.core.validation import ParameterError


@pytest.mark.parametrize("overrides, match", [
    ({"sizes": ["d99l9"]}, "sizes"),
    ({"domains": ["poetry"]}, "domains"),
    ({"lr": -1.0}, "lr"),
    ({"batch_tokens": 16}, "batch_tokens"),
    ({"eval_tokens": 0}, "eval_tokens"),
    ({"lr": {"d16l1": 0.01}}, "lr table"),
    ({"learning_rate": 1e-3}, "unknown parameter"),
    ({"step_check": {"sizes": ["d99l9"], "batch_tokens": 512}}, "step_check sizes"),
    ({"step_check": {"sizes": ["d16l1"], "batch_tokens": 1024}}, "step_check batch_tokens"),  # not smaller
    ({"step_check": {"sizes": ["d16l1"], "batch_tokens": 32}}, "step_check batch_tokens"),
    ({"step_check": {"sizes": ["d16l1"]}}, "step_check"),
    ({"lr_bracket": -1}, "lr_bracket"),
    ({"lr_bracket": 1.5}, "lr_bracket"),
    ({"lr_bracket": 9}, "lr_bracket"),
])
def test_testbed_rejects_bad_parameters(scratch_roots, overrides, match):
    res, work = scratch_roots
    with pytest.raises(ParameterError, match=match):
        get_study("testbed").run("smoke", **overrides)
    assert not res.exists() and not work.exists()


def test_every_profile_of_every_study_validates():
    for name in study_names():
        mod = get_study(name)
        for profile in ("smoke", "cpu", "gpu"):
            resolve_params(mod, profile, {})


@pytest.mark.parametrize("argv", [
    ["reproduce", "nosuchstudy", "--profile", "smoke"],
    ["reproduce", "testbed", "--profile", "tpu"],
    ["reproduce", "testbed", "--profile", "smoke", "--backend", "slurm"],
])
def test_reproduce_cli_rejects_bad_arguments(scratch_roots, capsys, argv):
    res, work = scratch_roots
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and len(err.strip().splitlines()) == 1
    assert not res.exists() and not work.exists()


def test_reproduce_cli_validates_overrides_before_running(scratch_roots, capsys):
    res, work = scratch_roots
    assert main(["reproduce", "testbed", "--profile", "smoke", "-p", 'sizes=["d99l9"]']) == 2
    assert "sizes" in capsys.readouterr().err
    assert main(["reproduce", "testbed", "--profile", "smoke", "-p", "nonsense"]) == 2
    assert main(["reproduce", "all", "--profile", "smoke", "-p", "seed=1"]) == 2
    assert not res.exists() and not work.exists()
