"""Sanity, not tuning: every optimizer trains the quickstart MLP on mnist1d above chance."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import trainlab.optim as O

# Learning rates in each rule's usual range (torch's defaults, a larger one for SGD).
LR = {"sgd": 0.05, "adagrad": 0.01, "rmsprop": 1e-3, "adadelta": 1.0, "adam": 1e-3, "adamw": 1e-3, "nadam": 2e-3}
EXTRA = {"sgd": {"momentum": 0.9, "nesterov": True}}


@pytest.fixture(scope="module")
def mnist1d():
    from mnist1d.data import get_dataset_args, make_dataset

    data = make_dataset(get_dataset_args())  # 4000 train / 1000 test, 40-d signals, 10 classes
    as_tensor = lambda k, dtype: torch.as_tensor(data[k], dtype=dtype)  # noqa: E731
    return (
        as_tensor("x", torch.float32),
        as_tensor("y", torch.long),
        as_tensor("x_test", torch.float32),
        as_tensor("y_test", torch.long),
    )


@pytest.mark.parametrize("name", O.OPTIMIZERS)
def test_trains_the_quickstart_mlp_above_chance(name, mnist1d):
    x, y, x_test, y_test = mnist1d
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(40, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
    opt = O.create(name, model, lr=LR[name], **EXTRA.get(name, {}))
    loss_fn = nn.CrossEntropyLoss()
    order = torch.Generator().manual_seed(0)
    for _epoch in range(3):
        for idx in torch.randperm(len(x), generator=order).split(100):
            opt.zero_grad()
            loss_fn(model(x[idx]), y[idx]).backward()
            O.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
    with torch.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    assert accuracy > 0.3, f"{name}: test accuracy {accuracy:.3f} after 3 epochs (chance 0.10)"
