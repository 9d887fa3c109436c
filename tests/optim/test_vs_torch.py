"""Where torch has the same algorithm, trainlab's trajectory equals torch.optim's.

float64, 100 steps, random parameters and gradients; every option torch shares (momentum,
dampening, Nesterov, weight decay, centered, AMSGrad, lr_decay, maximize, decoupled decay),
through both of trainlab's paths (torch's fused kernel where one applies, and the tiled
multi-tensor path), against torch's default (for-loop) implementation.
"""

from __future__ import annotations

import pytest
import torch
from optim_harness import assert_same_trajectory, random_problem, trajectory

import trainlab.optim as O

# (trainlab class, torch class, shared kwargs)
CASES = [
    (O.SGD, torch.optim.SGD, dict(lr=0.1)),
    (O.SGD, torch.optim.SGD, dict(lr=0.01, momentum=0.9, weight_decay=0.01)),
    (O.SGD, torch.optim.SGD, dict(lr=0.01, momentum=0.9, dampening=0.5)),
    (O.SGD, torch.optim.SGD, dict(lr=0.01, momentum=0.9, nesterov=True, weight_decay=0.1)),
    (O.SGD, torch.optim.SGD, dict(lr=0.01, momentum=0.7, nesterov=True, maximize=True)),
    (O.AdaGrad, torch.optim.Adagrad, dict(lr=0.1)),
    (O.AdaGrad, torch.optim.Adagrad, dict(lr=0.1, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.2, eps=1e-6)),
    (O.AdaGrad, torch.optim.Adagrad, dict(lr=0.03, maximize=True)),
    (O.RMSprop, torch.optim.RMSprop, dict(lr=0.01)),
    (O.RMSprop, torch.optim.RMSprop, dict(lr=0.01, alpha=0.9, centered=True, weight_decay=0.1)),
    (O.RMSprop, torch.optim.RMSprop, dict(lr=0.001, momentum=0.9, centered=True, eps=1e-4)),
    (O.RMSprop, torch.optim.RMSprop, dict(lr=0.003, momentum=0.5, maximize=True)),
    (O.AdaDelta, torch.optim.Adadelta, dict()),
    (O.AdaDelta, torch.optim.Adadelta, dict(lr=0.5, rho=0.95, eps=1e-5, weight_decay=0.1)),
    (O.AdaDelta, torch.optim.Adadelta, dict(lr=2.0, maximize=True)),
    (O.Adam, torch.optim.Adam, dict(lr=1e-3)),
    (O.Adam, torch.optim.Adam, dict(lr=0.01, betas=(0.8, 0.99), eps=1e-4, weight_decay=0.1)),
    (O.Adam, torch.optim.Adam, dict(lr=0.01, amsgrad=True, weight_decay=0.01)),
    (O.Adam, torch.optim.Adam, dict(lr=0.003, amsgrad=True, maximize=True)),
    (O.AdamW, torch.optim.AdamW, dict(lr=1e-3)),
    (O.AdamW, torch.optim.AdamW, dict(lr=0.01, weight_decay=0.3, amsgrad=True)),
    (O.AdamW, torch.optim.AdamW, dict(lr=0.01, weight_decay=0.1, maximize=True)),
    (O.Nadam, torch.optim.NAdam, dict()),
    (O.Nadam, torch.optim.NAdam, dict(lr=0.01, betas=(0.8, 0.99), eps=1e-4, weight_decay=0.1, momentum_decay=0.01)),
    (O.Nadam, torch.optim.NAdam, dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    (O.Nadam, torch.optim.NAdam, dict(lr=0.003, maximize=True)),
]  # fmt: skip

RUNS = [(c, None) for c in CASES] + [(c, False) for c in CASES if "fused" in O.options(c[0].__name__)]


def _id(case, fused):
    ours, _, kwargs = case
    path = "auto" if fused is None else "multi_tensor"
    return f"{ours.__name__}-{path}-" + ",".join(f"{k}={v}" for k, v in kwargs.items())


@pytest.mark.parametrize(("case", "fused"), RUNS, ids=[_id(c, f) for c, f in RUNS])
def test_trajectory_equals_torch(case, fused):
    ours, theirs, kwargs = case
    extra = {} if fused is None else {"fused": fused}
    params0, grads = random_problem(seed=7, steps=100)
    expected = trajectory(lambda ps: theirs(ps, **kwargs, foreach=False), params0, grads)
    actual = trajectory(lambda ps: ours(ps, **kwargs, **extra), params0, grads)
    assert_same_trajectory(actual, expected, rtol=1e-6)


@pytest.mark.parametrize("name", O.OPTIMIZERS)
def test_defaults_equal_torch(name):
    """Every default that torch's class also has is the same value."""
    theirs = {"adagrad": "Adagrad", "adadelta": "Adadelta", "nadam": "NAdam"}.get(
        name, O.create(name, [torch.zeros(1)]).__class__.__name__
    )
    torch_defaults = getattr(torch.optim, theirs)([torch.zeros(1, requires_grad=True)]).defaults
    ours = O.create(name, [torch.zeros(1, requires_grad=True)]).defaults
    shared = set(ours) & set(torch_defaults) - {"fused"}
    assert shared >= {"lr", "weight_decay", "maximize"}
    assert {k: ours[k] for k in shared} == {k: torch_defaults[k] for k in shared}


def test_float32_follows_torch_closely():
    """float32 runs through the same kernels; differences are rounding only."""
    params0, grads = random_problem(seed=3, steps=100)
    for ours, theirs, kwargs in CASES[::3]:
        expected = trajectory(lambda ps: theirs(ps, **kwargs, foreach=False), params0, grads, dtype=torch.float32)
        actual = trajectory(lambda ps: ours(ps, **kwargs), params0, grads, dtype=torch.float32)
        assert_same_trajectory(actual, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["sgd", "adam", "rmsprop"])
def test_params_joining_mid_run_follow_torch(name):
    """A parameter whose grad was None until step 20 starts its state then, in a batch whose
    others already have state (SGD's fused path splits that batch); a group added at step 30
    starts fresh too."""
    theirs = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "rmsprop": torch.optim.RMSprop}[name]
    kwargs = dict(lr=0.01, momentum=0.9) if name != "adam" else dict(lr=0.01)
    params0, grads = random_problem(seed=5, steps=40, shapes=[(3,), (4, 5), (6,), (2, 2)])

    def run(make):
        ps = [torch.tensor(p, requires_grad=True) for p in params0]
        opt = make(ps[:3])
        for t, step_grads in enumerate(grads):
            if t == 30:
                opt.add_param_group({"params": ps[3:], "lr": 0.05})
            for i, (p, g) in enumerate(zip(ps, step_grads)):
                p.grad = None if (i == 2 and t < 20) else torch.tensor(g)
            opt.step()
        return [p.detach().clone() for p in ps]

    expected = run(lambda ps: theirs(ps, **kwargs, foreach=False))
    for a, b in zip(run(lambda ps: O.create(name, ps, **kwargs)), expected):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
