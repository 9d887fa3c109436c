"""create(): the registry by name, option checking, and the decay / no-decay split."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import trainlab.optim as O
from trainlab.errors import ConfigError


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.fc = nn.Linear(4, 8)
        self.bn = nn.BatchNorm1d(8)
        self.ln = nn.LayerNorm((2, 4))  # 2-D scale: caught by the module type, not by ndim
        self.head = nn.Linear(8, 3, bias=False)
        self.gain = nn.Module()
        self.gain.g = nn.Parameter(torch.ones(3, 1))  # a weight-norm gain
        self.pos = nn.Parameter(torch.zeros(5, 4))
        self.shared = self.head  # shared module: its weight must be listed once

    def no_weight_decay(self):
        return ["pos"]


def _names(model, params):
    ids = {id(p) for p in params}
    return {n for n, p in model.named_parameters() if id(p) in ids}


def test_param_groups_split():
    model = Net()
    decay, no_decay = O.param_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert _names(model, decay["params"]) == {"embed.weight", "fc.weight", "head.weight"}
    assert _names(model, no_decay["params"]) == {
        "fc.bias",
        "bn.weight",
        "bn.bias",
        "ln.weight",
        "ln.bias",
        "gain.g",
        "pos",
    }
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_param_groups_leaves_out_an_empty_group_and_checks_weight_decay():
    groups = O.param_groups(nn.Linear(3, 2, bias=False), 0.1)
    assert len(groups) == 1 and groups[0]["weight_decay"] == 0.1
    with pytest.raises(ValueError, match=r"weight_decay must be a number >= 0, got -1"):
        O.param_groups(Net(), -1)


@pytest.mark.parametrize("name", [*O.OPTIMIZERS, "AdamW", "SGD"])
def test_create_builds_every_name_case_insensitively(name):
    model = Net()
    opt = O.create(name, model, lr=0.01)
    assert type(opt).__name__.lower() == name.lower() and isinstance(opt, torch.optim.Optimizer)
    assert opt.param_groups[0]["lr"] == 0.01
    assert [g["weight_decay"] for g in opt.param_groups] == [O.options(name)["weight_decay"], 0.0]


def test_create_with_a_model_splits_unless_asked_not_to():
    model = Net()
    opt = O.create("adamw", model, weight_decay=0.2)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.2, 0.0]
    everything = O.create("adamw", model, weight_decay=0.2, decay_norm_and_bias=True)
    assert len(everything.param_groups) == 1 and everything.param_groups[0]["weight_decay"] == 0.2
    plain = O.create("sgd", list(model.parameters()), lr=0.1, weight_decay=0.2)  # params: no split
    assert len(plain.param_groups) == 1


def test_create_rejects_unknown_names_and_options():
    with pytest.raises(
        ConfigError, match=r"unknown optimizer 'adm' \(did you mean 'adam'\?\); choose one of: adadelta, adagrad, adam"
    ):
        O.create("adm", Net())
    with pytest.raises(
        ConfigError, match=r"adam does not take 'momentum'; it takes: lr, betas, eps, weight_decay, amsgrad"
    ):
        O.create("adam", Net(), momentum=0.9)
    with pytest.raises(ConfigError, match=r"sgd does not take 'eps_inside_sqrt'"):
        O.create("SGD", Net(), eps_inside_sqrt=True)
    with pytest.raises(ValueError, match=r"lr must be >= 0, got -0.1"):
        O.create("rmsprop", Net(), lr=-0.1)


def test_every_run_config_key_reaches_an_optimizer():
    """Each key of the run config's [optim] section is taken by at least one optimizer, under
    that name, so `[optim] name = "..."` plus its options reaches the constructor."""
    from trainlab.train.config import OptimConfig, _optimizer_keys

    config_keys = set(OptimConfig(name="sgd").options()) | {k[len("optim.") :] for k in _optimizer_keys()}
    assert config_keys == set().union(*(O.options(n) for n in O.OPTIMIZERS))
    for name in O.OPTIMIZERS:
        cfg = OptimConfig(name=name, lr=0.05, weight_decay=0.01)
        opt = O.create(cfg.name, Net(), **cfg.options())
        assert opt.param_groups[0]["lr"] == 0.05 and opt.param_groups[0]["weight_decay"] == 0.01
