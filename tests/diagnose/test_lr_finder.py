"""The LR range test: the sweep and smoothing follow the formulas, everything is restored."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from trainlab.diagnose.lr_finder import exponential_lrs, lr_find, smooth_losses, suggest_lr


def _problem(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(256, 10, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(10, 16), nn.Tanh(), nn.Dropout(0.1), nn.Linear(16, 2))
    batches = [(x[i : i + 32], y[i : i + 32]) for i in range(0, 256, 32)]
    return model, batches


def test_restores_model_optimizer_grads_mode_and_rng_exactly():
    model, batches = _problem()
    opt = torch.optim.Adam(model.parameters(), lr=3e-4)
    nn.functional.cross_entropy(model(batches[0][0]), batches[0][1]).backward()
    opt.step()  # the optimizer has state (moments) to restore
    nn.functional.cross_entropy(model(batches[1][0]), batches[1][1]).backward()  # and grads are present
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    grads = [p.grad.clone() for p in model.parameters()]
    moments = [opt.state[p]["exp_avg"].clone() for p in model.parameters()]
    rng = torch.get_rng_state()

    result = lr_find(model, batches, opt, 1e-5, 1.0, 30)

    assert len(result.lrs) > 5
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    for p, g, m in zip(model.parameters(), grads, moments):
        assert torch.equal(p.grad, g)
        assert torch.equal(opt.state[p]["exp_avg"], m)
    assert opt.param_groups[0]["lr"] == 3e-4
    assert not model.training
    assert torch.equal(torch.get_rng_state(), rng)


def test_sweep_and_smoothing_follow_the_formulas():
    lrs = exponential_lrs(1e-4, 1.0, 5)
    np.testing.assert_allclose(lrs, [1e-4, 1e-3, 1e-2, 1e-1, 1.0], rtol=1e-12)
    losses = np.array([2.0, 1.5, np.nan, 1.0, 3.0])
    beta = 0.9
    # independent reference: the EMA with bias correction over the finite losses only
    m, n, ref = 0.0, 0, []
    for loss in losses:
        if np.isnan(loss):
            ref.append(np.nan)
            continue
        n += 1
        m = beta * m + (1 - beta) * loss
        ref.append(m / (1 - beta**n))
    np.testing.assert_allclose(smooth_losses(losses, beta), ref, rtol=1e-12)
    assert smooth_losses(np.array([5.0]), 0.98)[0] == pytest.approx(5.0)  # bias correction: no pull to 0


def test_suggestion_is_the_steepest_descent_before_the_minimum():
    lrs = np.logspace(-6, 0, 121)
    t = np.log10(lrs)
    loss = 2 - np.tanh(2 * (t + 3)) + np.where(t > -1, 50 * (t + 1) ** 2, 0)  # steepest at 1e-3, blows up after 0.1
    suggested, min_lr = suggest_lr(lrs, loss)
    assert suggested == pytest.approx(1e-3, rel=0.13)  # one grid step is a factor 10^0.05
    assert 1e-2 < min_lr < 1.5e-1


def test_result_on_a_real_model_is_finite_and_stops_on_divergence():
    model, batches = _problem(1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    result = lr_find(model, batches, opt, 1e-6, 1e4, 200)
    assert result.stopped_early  # lr = 1e4 diverges long before the end
    assert len(result.lrs) == len(result.losses) == len(result.smoothed) < 200
    assert math.isfinite(result.suggested_lr) and 1e-6 <= result.suggested_lr <= 1e4
    # the lr where training works fastest is far above the start: the loss really went down
    assert result.suggested_lr > 1e-4
    assert np.nanmin(result.smoothed) < result.smoothed[0]


def test_nan_loss_still_gives_a_suggestion():
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    x, y = torch.ones(4, 1), torch.ones(4)

    def loss_fn(out, target):  # NaN once the weight has run far past the optimum w = 1
        mse = (out.squeeze(-1) - target).pow(2).mean()
        return torch.where(model.weight.abs().sum() > 3, torch.tensor(float("nan")), mse)

    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    result = lr_find(model, (x, y), opt, 1e-3, 1e2, 60, loss_fn=loss_fn, diverge_factor=1e12)
    assert result.stopped_early and math.isnan(result.losses[-1])
    assert np.isfinite(result.losses[:-1]).all()
    assert math.isfinite(result.suggested_lr) and math.isfinite(result.min_loss_lr)
    assert float(model.weight.detach()) == 0.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start_lr": 0.0}, "start_lr must be a positive number, got 0.0"),
        ({"end_lr": 1e-9}, "end_lr must be a number > start_lr"),
        ({"steps": 1}, "steps must be an integer >= 2, got 1"),
        ({"beta": 1.0}, "beta must be in \\[0, 1\\), got 1.0"),
        ({"diverge_factor": 1.0}, "diverge_factor must be > 1, got 1.0"),
    ],
)
def test_bad_arguments(kwargs, message):
    model, batches = _problem()
    with pytest.raises(ValueError, match=message):
        lr_find(model, batches, torch.optim.SGD(model.parameters(), lr=0.1), **kwargs)
