"""trainlab.init against the formulas of notes 000 §7.3 / 002 / 004, written out here in NumPy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from trainlab import init as ti
from trainlab.errors import ConfigError

LINEAR_SHAPE = (1000, 1000)
CONV_SHAPE = (256, 128, 3, 3)  # fan_in = 128*9 = 1152, fan_out = 256*9 = 2304


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """Independent of compute_fans: receptive field x channels (notes' M_{l-1}, M_l)."""
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


# name, initializer, expected variance from the notes' formula, uniform?
CASES = [
    ("normal", lambda t: ti.normal_(t, 0.01), lambda fi, fo: 0.01**2, False),
    ("uniform", lambda t: ti.uniform_(t, 0.05), lambda fi, fo: 0.05**2 / 3, True),
    ("uniform_var", lambda t: ti.uniform_from_variance_(t, 4e-4), lambda fi, fo: 4e-4, True),
    ("xavier_normal", ti.xavier_normal_, lambda fi, fo: 2 / (fi + fo), False),
    ("xavier_uniform", ti.xavier_uniform_, lambda fi, fo: 2 / (fi + fo), True),
    # Notes §7.3.2: 16x the variance for the logistic function.
    ("xavier_sigmoid", lambda t: ti.xavier_normal_(t, gain=4.0), lambda fi, fo: 16 * 2 / (fi + fo), False),
    ("he_normal", ti.he_normal_, lambda fi, fo: 2 / fi, False),
    ("he_uniform", ti.he_uniform_, lambda fi, fo: 2 / fi, True),
    ("he_leaky", lambda t: ti.he_normal_(t, 0.25), lambda fi, fo: 2 / ((1 + 0.25**2) * fi), False),
    ("he_fan_out", lambda t: ti.he_normal_(t, mode="fan_out"), lambda fi, fo: 2 / fo, False),
    ("lecun_normal", ti.lecun_normal_, lambda fi, fo: 1 / fi, False),
    ("lecun_uniform", ti.lecun_uniform_, lambda fi, fo: 1 / fi, True),
]


@pytest.mark.parametrize("shape", [LINEAR_SHAPE, CONV_SHAPE], ids=["linear", "conv"])
@pytest.mark.parametrize("name,fn,variance,is_uniform", CASES, ids=[c[0] for c in CASES])
def test_variance_and_bounds_match_formula(name, fn, variance, is_uniform, shape):
    torch.manual_seed(0)
    w = torch.empty(shape)
    fn(w)
    fan_in, fan_out = fans(shape)
    expected = variance(fan_in, fan_out)
    sample = w.double().numpy()
    assert abs(sample.var() / expected - 1) < 0.03
    assert abs(sample.mean()) < 0.03 * math.sqrt(expected)
    if is_uniform:
        r = math.sqrt(3 * expected)  # notes §7.3.1: r = sqrt(3 sigma^2)
        assert np.abs(sample).max() <= r * (1 + 1e-6)
        assert np.abs(sample).max() > 0.999 * r
    else:
        # A Gaussian has ~0.27% of its mass beyond 3 std; a uniform of that variance none.
        beyond = (np.abs(sample) > 3 * math.sqrt(expected)).mean()
        assert 0.0015 < beyond < 0.004


@pytest.mark.parametrize(
    "ours,theirs",
    [
        (
            lambda t, g: ti.xavier_uniform_(t, 1.5, generator=g),
            lambda t, g: nn.init.xavier_uniform_(t, 1.5, generator=g),
        ),
        (lambda t, g: ti.xavier_normal_(t, 0.7, generator=g), lambda t, g: nn.init.xavier_normal_(t, 0.7, generator=g)),
        (
            lambda t, g: ti.he_normal_(t, 0.1, "fan_out", generator=g),
            lambda t, g: nn.init.kaiming_normal_(t, 0.1, "fan_out", "leaky_relu", generator=g),
        ),
        (
            lambda t, g: ti.he_uniform_(t, generator=g),
            lambda t, g: nn.init.kaiming_uniform_(t, 0.0, "fan_in", "relu", generator=g),
        ),
    ],
    ids=["xavier_uniform", "xavier_normal", "he_normal", "he_uniform"],
)
def test_same_numbers_as_torch_given_the_same_generator(ours, theirs):
    a, b = torch.empty(CONV_SHAPE), torch.empty(CONV_SHAPE)
    ours(a, torch.Generator().manual_seed(3))
    theirs(b, torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b, rtol=1e-6, atol=0)


def test_compute_fans_conv_is_receptive_field_times_channels():
    assert ti.compute_fans(torch.empty(CONV_SHAPE)) == (128 * 9, 256 * 9)
    assert ti.compute_fans(torch.empty(7, 5)) == (5, 7)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        ti.compute_fans(torch.empty(3))


@pytest.mark.parametrize("method", ["svd", "qr"])
@pytest.mark.parametrize("shape", [(200, 200), (300, 100), (100, 300), (64, 16, 3, 3)], ids=str)
@pytest.mark.parametrize("gain", [1.0, math.sqrt(2.0)])
def test_orthogonal_is_orthogonal_times_gain(shape, method, gain):
    w = ti.orthogonal_(torch.empty(shape), gain, method, generator=torch.Generator().manual_seed(1))
    m = w.double().reshape(shape[0], -1).numpy()
    rows, cols = m.shape
    gram = m.T @ m if rows >= cols else m @ m.T  # the smaller Gram matrix is gain^2 I
    np.testing.assert_allclose(gram, gain**2 * np.eye(min(rows, cols)), atol=1e-5)


def test_orthogonal_preserves_norm_of_backpropagated_error():
    # Notes §7.3.3: ||W^T delta|| = ||delta|| for orthogonal W.
    w = ti.orthogonal_(torch.empty(128, 128)).double()
    delta = torch.randn(128, dtype=torch.float64)
    assert torch.linalg.norm(w.T @ delta).item() == pytest.approx(torch.linalg.norm(delta).item(), rel=1e-6)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: ti.normal_(torch.empty(3, 3), -1.0), r"std .*-1\.0"),
        (lambda: ti.uniform_(torch.empty(3, 3), float("nan")), r"r must"),
        (lambda: ti.xavier_normal_(torch.empty(3, 3), gain=-2), r"gain .*-2"),
        (lambda: ti.he_normal_(torch.empty(3, 3), mode="fan_avg"), r"mode .*fan_avg"),
        (lambda: ti.orthogonal_(torch.empty(3, 3), method="lu"), r"method .*lu"),
        (lambda: ti.orthogonal_(torch.empty(3)), r"at least 2"),
    ],
)
def test_bad_arguments_name_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_lstm_forget_bias_follows_torch_gate_order():
    lstm = nn.LSTM(3, 5, num_layers=2, bidirectional=True)
    ti.lstm_forget_bias_(lstm, 2.0)
    for name, p in lstm.named_parameters():
        if name.startswith("bias_ih"):
            assert torch.all(p[5:10] == 2.0)
        if name.startswith("bias_hh"):
            assert torch.all(p[5:10] == 0.0)

    # The gate that keeps c is the forget gate: zero weights and other biases, x = 0,
    # c0 = 1 -> c1 = sigmoid(value) * 1 + sigmoid(0) * tanh(0) = sigmoid(value).
    cell = nn.LSTMCell(2, 4)
    for p in cell.parameters():
        nn.init.zeros_(p)
    ti.lstm_forget_bias_(cell, 1.0)
    _, c1 = cell(torch.zeros(1, 2), (torch.zeros(1, 4), torch.ones(1, 4)))
    torch.testing.assert_close(c1, torch.full((1, 4), 1 / (1 + math.exp(-1.0))))

    with pytest.raises(ValueError, match="nn.LSTM"):
        ti.lstm_forget_bias_(nn.GRU(2, 3))


def _mlp_and_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv1d(4, 32, 5),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(32 * 60, 400),
        nn.ReLU(),
        nn.Linear(400, 10),
    )


@pytest.mark.parametrize(
    "scheme,nonlinearity,options,variance",
    [
        ("he", "relu", {}, lambda fi, fo: 2 / fi),
        ("he_normal", "leaky_relu", {}, lambda fi, fo: 2 / ((1 + 0.01**2) * fi)),
        ("xavier", "sigmoid", {}, lambda fi, fo: 16 * 2 / (fi + fo)),
        ("xavier_uniform", "tanh", {}, lambda fi, fo: 2 / (fi + fo)),
        ("xavier_normal", "sigmoid", {"gain": 1.0}, lambda fi, fo: 2 / (fi + fo)),
        ("lecun", "selu", {}, lambda fi, fo: 1 / fi),
        ("normal", None, {"std": 0.02}, lambda fi, fo: 0.02**2),
        ("uniform", None, {}, lambda fi, fo: 0.01**2),
    ],
)
def test_init_model_sets_every_layer_to_the_formula(scheme, nonlinearity, options, variance):
    torch.manual_seed(0)
    model = ti.init_model(_mlp_and_cnn(), scheme, nonlinearity, **options)
    for layer in (model[0], model[3]):
        w = layer.weight.detach().double().numpy()
        expected = variance(*fans(w.shape))
        assert abs(w.var() / expected - 1) < 0.05, type(layer).__name__
        assert torch.all(layer.bias == 0)


def test_init_model_bias_and_forget_bias_options():
    model = nn.Sequential(nn.Linear(3, 4), nn.LSTM(4, 6, batch_first=True))
    ti.init_model(model, "orthogonal", "tanh", bias=0.01, lstm_forget_bias=1.0)
    assert torch.all(model[0].bias == 0.01)
    lstm = model[1]
    assert torch.all(lstm.bias_ih_l0[6:12] == 1.0) and torch.all(lstm.bias_hh_l0[6:12] == 0.0)
    assert torch.all(lstm.bias_ih_l0[:6] == 0.01)
    # Gate by gate: each recurrent block U_gate is orthogonal, scaled by tanh's gain 5/3.
    for block in lstm.weight_hh_l0.detach().double().chunk(4):
        np.testing.assert_allclose(block.T @ block, (5 / 3) ** 2 * np.eye(6), atol=1e-5)


def test_init_model_default_leaves_torch_init_untouched():
    torch.manual_seed(0)
    model = _mlp_and_cnn()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ti.init_model(model, "default")
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_init_model_rejects_unknown_scheme_and_options():
    model = nn.Linear(2, 2)
    with pytest.raises(ConfigError, match=r"unknown init scheme 'xaviar'.*did you mean 'xavier'"):
        ti.init_model(model, "xaviar")
    with pytest.raises(ConfigError, match=r"'he_normal' does not take option\(s\) gain"):
        ti.init_model(model, "he", gain=2.0)
    with pytest.raises(ConfigError, match=r"unknown activation 'rleu'"):
        ti.init_model(model, "he", "rleu")
    assert set(ti.SCHEMES) >= {"xavier", "he", "lecun", "zeros", "default", "orthogonal"}


def _train_sigmoid_mlp(scheme: str, steps: int = 50) -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 5), nn.Sigmoid(), nn.Linear(5, 1), nn.Sigmoid())
    ti.init_model(model, scheme, "sigmoid")
    x = torch.randn(64, 2)
    y = (x[:, :1] > 0).float()  # learnable: the label is the sign of the first input
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    for _ in range(steps):
        opt.zero_grad()
        ((model(x) - y) ** 2).mean().backward()
        opt.step()
    return model


def test_zero_init_keeps_hidden_units_identical():
    # 002 §6: with equal initial weights every hidden unit gets the same gradient, forever.
    model = _train_sigmoid_mlp("zeros")
    w1, b1, w2 = model[0].weight, model[0].bias, model[2].weight
    assert w1.abs().max() > 1e-2, "training must have moved the hidden weights"
    assert torch.allclose(w1, w1[:1].expand_as(w1), atol=1e-7)
    assert torch.allclose(b1, b1[:1].expand_as(b1), atol=1e-7)
    assert torch.allclose(w2, w2[:, :1].expand_as(w2), atol=1e-7)
    hidden = model[1](model[0](torch.randn(8, 2)))
    assert torch.allclose(hidden, hidden[:, :1].expand_as(hidden), atol=1e-6)


@pytest.mark.parametrize("scheme", ["xavier", "he"])
def test_random_init_breaks_symmetry(scheme):
    model = _train_sigmoid_mlp(scheme)
    w1 = model[0].weight
    # Every pair of hidden units differs.
    gaps = torch.cdist(w1, w1) + torch.eye(len(w1)) * 1e9
    assert gaps.min() > 1e-2
