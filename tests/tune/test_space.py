import math

import numpy as np
import pytest

from trainlab.errors import ConfigError
from trainlab.tune import Categorical, Float, Int, Space


def sgd_space() -> Space:
    return Space(
        {
            "optim.name": Categorical(["sgd", "adam"]),
            "optim.lr": Float(1e-4, 1.0, log=True),
            "optim.momentum": Float(0.0, 0.99, when={"optim.name": "sgd"}),
            "optim.nesterov": Categorical([False, True], when={"optim.momentum": 0.5}),
        }
    )


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: Space({"lr": Float(1.0, 1.0)}), ["'lr'", "low must be < high", "low=1.0"]),
        (lambda: Space({"lr": Float(0.0, 1.0, log=True)}), ["'lr'", "log=True needs low > 0", "low=0.0"]),
        (lambda: Space({"width": Int(64, 8)}), ["'width'", "low=64", "high=8"]),
        (lambda: Space({"width": Int(0, 8, log=True)}), ["'width'", "low > 0"]),
        (lambda: Space({"act": Categorical([])}), ["'act'", "empty"]),
        (lambda: Space({"act": Categorical(["a", "a"])}), ["'act'", "duplicates"]),
        (lambda: Space({"m": Float(0, 1, when={"opt": "sgd"})}), ["'m'", "'opt'", "not in the space"]),
        (
            lambda: Space({"m": Float(0, 1, when={"opt": "sgd"}), "opt": Categorical(["sgd"])}),
            ["'m'", "later in the space"],
        ),
        (lambda: Space({"x": Float(0, 1, steps=1)}), ["'x'", "steps must be an integer >= 2"]),
        (lambda: Space({"x": Float(0, math.inf)}), ["'x'", "finite"]),
    ],
)
def test_bad_spaces_name_the_parameter(make, words):
    with pytest.raises(ConfigError) as info:
        make()
    for w in words:
        assert w in str(info.value)


def test_from_dict_errors_name_parameter_and_key():
    with pytest.raises(ConfigError, match=r"parameter 'optim.lr': unknown key 'lwo'.*did you mean 'low'"):
        Space.from_dict({"optim.lr": {"type": "float", "lwo": 0.1, "high": 1}})
    with pytest.raises(ConfigError, match=r"parameter 'optim.lr': missing key 'high'"):
        Space.from_dict({"optim.lr": {"type": "float", "low": 0.1}})
    with pytest.raises(ConfigError, match=r"unknown type of parameter 'x' 'flaot'.*did you mean 'float'"):
        Space.from_dict({"x": {"type": "flaot", "low": 0, "high": 1}})


def test_conditional_parameters_absent_when_inactive():
    space = sgd_space()
    rng = np.random.default_rng(0)
    seen = {"sgd": 0, "adam": 0}
    for _ in range(200):
        p = space.sample(rng)
        seen[p["optim.name"]] += 1
        assert ("optim.momentum" in p) == (p["optim.name"] == "sgd")
        assert "optim.nesterov" not in p  # momentum is never exactly 0.5
    assert seen["sgd"] > 50 and seen["adam"] > 50
    assert space.active({"optim.name": "adam", "optim.lr": 0.1, "optim.momentum": 0.9}) == {
        "optim.name": "adam",
        "optim.lr": 0.1,
    }
    # a grandchild: active only through an active parent with the right value
    assert (
        space.active({"optim.name": "sgd", "optim.lr": 0.1, "optim.momentum": 0.5, "optim.nesterov": True})[
            "optim.nesterov"
        ]
        is True
    )
    assert "optim.nesterov" not in space.active(
        {"optim.name": "adam", "optim.lr": 0.1, "optim.momentum": 0.5, "optim.nesterov": True}
    )


def test_unit_encoding_warps_log_and_one_hot():
    space = sgd_space()
    x = space.to_unit({"optim.name": "adam", "optim.lr": 1e-2})
    # [sgd, adam] one-hot, lr at log-position (log 1e-2 - log 1e-4) / (log 1 - log 1e-4) = 0.5, momentum inactive = 0
    np.testing.assert_allclose(x, [0, 1, 0.5, 0, 0, 0])
    assert space.from_unit(x) == {"optim.name": "adam", "optim.lr": pytest.approx(1e-2)}


def test_int_cells_are_equal_and_log_int_is_log_uniform():
    p = Int(1, 4, name="k")
    counts = np.bincount([p.from_unit(u) for u in np.linspace(0, 1, 4001)], minlength=5)[1:]
    np.testing.assert_allclose(counts / counts.sum(), 0.25, atol=0.002)
    lp = Int(1, 1000, log=True, name="w")
    draws = np.array([lp.from_unit(u) for u in np.random.default_rng(0).random(20000)])
    # log-uniform on [0.5, 1000.5]: P(X <= 10) = log(10.5/0.5) / log(1000.5/0.5)
    expected = math.log(10.5 / 0.5) / math.log(1000.5 / 0.5)
    assert abs((draws <= 10).mean() - expected) < 0.01


def test_round_trip_and_json_form():
    space = sgd_space()
    again = Space.from_dict(space.to_dict())
    assert again == space
    short = Space.from_dict({"act": ["relu", "tanh"], "lr": {"low": 0.1, "high": 1}})
    assert isinstance(short["act"], Categorical) and isinstance(short["lr"], Float)


def test_validate_checks_ranges_and_types():
    space = sgd_space()
    assert space.validate({"optim.name": "adam", "optim.lr": 1e-3}) == {"optim.name": "adam", "optim.lr": 1e-3}
    with pytest.raises(ConfigError, match="'optim.lr'.*outside"):
        space.validate({"optim.name": "adam", "optim.lr": 2.0})
    with pytest.raises(ConfigError, match="'optim.momentum' is active but missing"):
        space.validate({"optim.name": "sgd", "optim.lr": 0.1})
    with pytest.raises(ConfigError, match="'optim.name'.*not one of"):
        space.validate({"optim.name": "rmsprop", "optim.lr": 0.1})
    assert Categorical([True, False], name="b").index(True) == 0
    with pytest.raises(ConfigError):
        Categorical([True, False], name="b").index(1)  # 1 == True in Python, but not a bool
