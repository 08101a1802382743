import math

import pytest

from scalinglaws.core.validation import (ParameterError, check_choice, check_float, check_fraction, check_int,
                                    check_profile, check_subset)


def test_checks_accept_good_values():
    assert check_profile("cpu") == "cpu"
    assert check_int("n", 3, minimum=1) == 3
    assert check_float("x", 2, 0, 5) == 2.0
    assert check_fraction("p", 0.2) == 0.2
    assert check_subset("d", ["a"], ["a", "b"]) == ["a"]


@pytest.mark.parametrize("call, match", [
    (lambda: check_profile("tpu"), "profile='tpu'"),
    (lambda: check_int("n", 1.5), "integer"),
    (lambda: check_int("n", True), "integer"),
    (lambda: check_int("n", 0, minimum=1), ">= 1"),
    (lambda: check_float("x", math.nan), "finite"),
    (lambda: check_float("x", "1"), "number"),
    (lambda: check_fraction("p", 1.0), r"\(0.0, 1.0\)"),
    (lambda: check_fraction("p", 0), r"\(0.0, 1.0\)"),
    (lambda: check_subset("d", [], ["a"]), "empty"),
    (lambda: check_subset("d", ["z"], ["a"]), "unknown"),
    (lambda: check_subset("d", ["a", "a"], ["a"]), "duplicates"),
    (lambda: check_choice("m", "x", ["y"]), "m='x'"),
])
def test_checks_reject_bad_values(call, match):
    with pytest.raises(ParameterError, match=match):
        call()
