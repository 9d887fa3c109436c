"""Strict config types: a value of the wrong kind is an error naming the key, not a silent
conversion (``optim.lr = true`` was 1.0, ``model.hidden = [1e9]`` a 160 GB layer), and
floats are finite; NumPy scalars and paths from Python code are still taken as they mean."""

from pathlib import Path

import numpy as np
import pytest

from trainlab.errors import ConfigError
from trainlab.train import load_config


@pytest.mark.parametrize(
    "overrides,needle",
    [
        ({"optim.lr": True}, "optim.lr: Input should be a valid number, got True"),
        ({"model.hidden": [1e9]}, "model.hidden.0: Input should be a valid integer, got 1000000000.0"),
        ({"train.epochs": 2.0}, "train.epochs: Input should be a valid integer"),
        ({"data.drop_last": "yes"}, "data.drop_last: Input should be a valid boolean"),
        ({"model.init_std": float("inf")}, "model.init_std: Input should be a finite number"),
        ({"train.clip_norm": float("nan")}, "train.clip_norm: Input should be a finite number"),
        ({"seed": 2**32 + 1}, "seed: must be in 0 .. 2**32-1"),
        ({"data.split_seed": -1}, "data.split_seed: Input should be greater than or equal to 0"),
        ({"name": 3}, "name: Input should be a valid string"),
    ],
)
def test_wrong_kinds_of_values_are_refused(overrides, needle):
    with pytest.raises(ConfigError, match="invalid config") as err:
        load_config({}, overrides)
    assert needle in str(err.value)


def test_numpy_scalars_paths_and_lists_mean_what_they_say(tmp_path):
    cfg = load_config(
        {"seed": np.int64(7), "optim": {"name": "adam", "lr": np.float32(0.5), "betas": [0.8, 0.9]}},
        {"model.hidden": [np.int64(16)], "data.path": tmp_path / "d.npz", "data.drop_last": np.bool_(True)},
    )
    assert cfg.seed == 7 and type(cfg.seed) is int and cfg.model.hidden == [16]
    assert cfg.optim.lr == 0.5 and cfg.optim.betas == (0.8, 0.9) and cfg.data.drop_last is True
    assert cfg.data.path == str(Path(tmp_path / "d.npz"))
    assert load_config(cfg.to_dict()) == cfg  # the stored form validates back to the same config
    assert load_config({"optim": {"lr": 1}}).optim.lr == 1.0  # an integer is a number


@pytest.mark.parametrize(
    "overrides,needle",
    [
        ({"optim.momentum": True}, "optim.momentum: should be a number, not true/false"),
        ({"optim.momentum": float("inf")}, "optim.momentum: should be a finite number"),
        ({"optim.name": "adam", "optim.betas": [0.9, float("nan")]}, "optim.betas: should be a finite number"),
    ],
)
def test_optimizer_options_follow_the_same_rules(overrides, needle):
    with pytest.raises(ConfigError) as err:
        load_config({}, overrides)
    assert needle in str(err.value)
