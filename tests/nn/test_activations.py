"""Every activation of notes 004 against its closed form (NumPy) and its derivative."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import erf, erfc
from torch import nn

from trainlab import init as ti
from trainlab.errors import ConfigError
from trainlab.nn.activations import ACTIVATIONS, HardSigmoid, ThresholdedReLU, get_activation

# Step 0.2 from -4.05: no point on a kink (0, ±2.5, ±3, θ = 1), so derivatives exist.
X = np.linspace(-4.05, 3.95, 41)

# Klambauer et al. 2017, eq. (14): the SELU constants for the fixed point (0, 1).
_E = math.e
SELU_ALPHA = -math.sqrt(2 / math.pi) / (erfc(1 / math.sqrt(2)) * math.exp(0.5) - 1)
SELU_SCALE = (
    (1 - erfc(1 / math.sqrt(2)) * math.sqrt(_E))
    * math.sqrt(2 * math.pi)
    * (
        2 * erfc(math.sqrt(2)) * _E**2
        + math.pi * erfc(1 / math.sqrt(2)) ** 2 * _E
        - 2 * (2 + math.pi) * erfc(1 / math.sqrt(2)) * math.sqrt(_E)
        + math.pi
        + 2
    )
    ** -0.5
)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _phi_cdf(x):
    return 0.5 * (1 + erf(x / math.sqrt(2)))


_C = math.sqrt(2 / math.pi)

# name, options, f(x), f'(x) — written from the formulas, not from torch.
CLOSED_FORMS = {
    "sigmoid": ({}, _sigmoid, lambda x: _sigmoid(x) * (1 - _sigmoid(x))),
    "hard_sigmoid": ({}, lambda x: np.clip(0.2 * x + 0.5, 0, 1), lambda x: 0.2 * (np.abs(x) < 2.5)),
    "hard_sigmoid_torch": (
        {"style": "torch"},
        lambda x: np.minimum(np.maximum(x + 3, 0), 6) / 6,
        lambda x: (np.abs(x) < 3) / 6,
    ),
    "softplus": ({}, lambda x: np.log1p(np.exp(x)), _sigmoid),
    "tanh": ({}, np.tanh, lambda x: 1 - np.tanh(x) ** 2),
    "softsign": ({}, lambda x: x / (1 + np.abs(x)), lambda x: 1 / (1 + np.abs(x)) ** 2),
    "relu": ({}, lambda x: np.maximum(x, 0), lambda x: (x > 0) * 1.0),
    "leaky_relu": ({}, lambda x: np.where(x > 0, x, 0.01 * x), lambda x: np.where(x > 0, 1, 0.01)),
    "prelu": ({}, lambda x: np.where(x > 0, x, 0.25 * x), lambda x: np.where(x > 0, 1, 0.25)),
    "thresholded_relu": ({}, lambda x: np.where(x > 1, x, 0), lambda x: (x > 1) * 1.0),
    "linear": ({}, lambda x: x, lambda x: np.ones_like(x)),
    "elu": ({}, lambda x: np.where(x > 0, x, np.exp(x) - 1), lambda x: np.where(x > 0, 1, np.exp(x))),
    "gelu": (
        {},
        lambda x: x * _phi_cdf(x),
        lambda x: _phi_cdf(x) + x * np.exp(-(x**2) / 2) / math.sqrt(2 * math.pi),
    ),
    "gelu_tanh": (
        {},
        lambda x: 0.5 * x * (1 + np.tanh(_C * (x + 0.044715 * x**3))),
        lambda x: (
            0.5 * (1 + np.tanh(_C * (x + 0.044715 * x**3)))
            + 0.5 * x * (1 - np.tanh(_C * (x + 0.044715 * x**3)) ** 2) * _C * (1 + 3 * 0.044715 * x**2)
        ),
    ),
    "selu": (
        {},
        lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * (np.exp(x) - 1)),
        lambda x: SELU_SCALE * np.where(x > 0, 1, SELU_ALPHA * np.exp(x)),
    ),
}


def _name(key: str) -> str:
    return key.removesuffix("_torch")


def test_every_registered_activation_has_a_closed_form_test():
    assert set(ACTIVATIONS) - {"softmax"} == {_name(k) for k in CLOSED_FORMS}


@pytest.mark.parametrize("key", sorted(CLOSED_FORMS))
def test_value_and_gradient_match_closed_form(key):
    options, f, df = CLOSED_FORMS[key]
    act = get_activation(_name(key), **options).double()
    x = torch.tensor(X, requires_grad=True)
    y = act(x)
    np.testing.assert_allclose(y.detach().numpy(), f(X), rtol=1e-12, atol=1e-12)
    (grad,) = torch.autograd.grad(y.sum(), x)
    np.testing.assert_allclose(grad.numpy(), df(X), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("key", sorted(CLOSED_FORMS))
def test_closed_form_derivative_matches_finite_differences(key):
    # Checks the derivative formulas themselves (and the module through the test above).
    _, f, df = CLOSED_FORMS[key]
    h = 1e-6
    np.testing.assert_allclose((f(X + h) - f(X - h)) / (2 * h), df(X), rtol=1e-6, atol=1e-8)


def test_tanh_derivative_is_one_minus_tanh_squared_not_the_notes_form():
    # Notes 004 write tanh'(z) = (1 - tanh z)^2; that is wrong except at z = 0.
    x = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(get_activation("tanh")(x).sum(), x)
    t = np.tanh(x.detach().numpy())
    np.testing.assert_allclose(grad.numpy(), 1 - t**2, rtol=1e-12)
    assert not np.allclose(grad.numpy(), (1 - t) ** 2, rtol=1e-2)


def test_softmax_value_and_jacobian():
    z = np.array([[0.3, -1.2, 2.0, 0.0]])
    e = np.exp(z - z.max())
    p = e / e.sum()
    act = get_activation("softmax")
    x = torch.tensor(z, requires_grad=True)
    np.testing.assert_allclose(act(x).detach().numpy(), p, rtol=1e-12)
    jac = torch.autograd.functional.jacobian(act, x)[0, :, 0, :].numpy()
    np.testing.assert_allclose(jac, np.diag(p[0]) - np.outer(p[0], p[0]), atol=1e-12)


def test_softmax_over_channels_of_feature_maps():
    x = torch.randn(2, 3, 5, dtype=torch.float64)
    np.testing.assert_allclose(get_activation("softmax")(x).sum(dim=1).numpy(), np.ones((2, 5)))


def test_gradcheck_against_finite_differences_on_random_input():
    torch.manual_seed(0)
    x = (torch.randn(20, dtype=torch.float64) * 2).requires_grad_()
    for name in ACTIVATIONS:
        if name in ("relu", "leaky_relu", "prelu", "thresholded_relu", "hard_sigmoid"):
            x_safe = x.detach().clone()
            x_safe[(x_safe.abs() < 1e-3) | ((x_safe - 1).abs() < 1e-3)] += 0.01
            x_safe.requires_grad_()
        else:
            x_safe = x
        act = get_activation(name).double()
        assert torch.autograd.gradcheck(act, (x_safe.view(4, 5),)), name


def test_prelu_one_learned_slope_per_channel():
    act = get_activation("prelu", num_features=3)
    assert act.weight.shape == (3,)
    assert torch.all(act.weight == 0.25)
    with torch.no_grad():
        act.weight.copy_(torch.tensor([0.1, 0.2, 0.3]))
    x = -torch.ones(2, 3, 4)
    expected = -torch.tensor([0.1, 0.2, 0.3])[None, :, None].expand(2, 3, 4)
    torch.testing.assert_close(act(x), expected)
    assert get_activation("prelu").weight.shape == (1,)  # width unknown: one shared slope


def test_num_features_is_accepted_by_every_activation():
    for name in ACTIVATIONS:
        assert isinstance(get_activation(name, num_features=8), nn.Module)


def test_hard_sigmoid_styles_differ_in_slope_and_torch_style_is_torchs():
    x = torch.linspace(-5, 5, 101)
    torch.testing.assert_close(HardSigmoid("torch")(x), nn.Hardsigmoid()(x))
    assert HardSigmoid("keras")(torch.tensor(1.0)).item() == pytest.approx(0.7)
    assert HardSigmoid("torch")(torch.tensor(1.0)).item() == pytest.approx(4 / 6)


def test_thresholded_relu_equals_torch_threshold():
    x = torch.linspace(-3, 3, 61)
    torch.testing.assert_close(ThresholdedReLU(0.5)(x), nn.Threshold(0.5, 0.0)(x))


def test_selu_constants_are_klambauers():
    act = get_activation("selu")
    x = torch.tensor([-1e3, 1.0], dtype=torch.float64)
    y = act(x)
    assert y[0].item() == pytest.approx(-SELU_SCALE * SELU_ALPHA, rel=1e-6)
    assert y[1].item() == pytest.approx(SELU_SCALE, rel=1e-6)


def test_selu_with_lecun_normal_keeps_mean_zero_and_variance_one():
    # 004: SELU is self-normalizing only with lecun_normal weights. 16 layers deep the
    # activations stay near mean 0 / var 1; with He weights the variance drifts away.
    def run(scheme: str) -> torch.Tensor:
        torch.manual_seed(0)
        layers = [m for _ in range(16) for m in (nn.Linear(256, 256), get_activation("selu"))]
        net = ti.init_model(nn.Sequential(*layers), scheme)
        with torch.no_grad():
            return net(torch.randn(2048, 256))

    out = run("lecun_normal")
    assert abs(out.mean().item()) < 0.1
    assert abs(out.var().item() - 1) < 0.15
    assert run("he_normal").var().item() > 1.5


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: get_activation("rellu"), r"unknown activation 'rellu'.*did you mean 'relu'"),
        (
            lambda: get_activation("relu", negative_slope=0.1),
            r"'relu' does not take option\(s\) negative_slope",
        ),
        (lambda: get_activation("gelu", approximate="fast"), r"approximate .*'fast'"),
        (lambda: get_activation("hard_sigmoid", style="tf"), r"style .*'tf'"),
        (lambda: get_activation("softplus", beta=0), r"beta must be > 0"),
        (lambda: get_activation("prelu", num_features=0), r"num_features .*0"),
    ],
)
def test_bad_names_and_options_raise_value_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
    if "unknown" in match or "does not take" in match:
        with pytest.raises(ConfigError):
            call()
