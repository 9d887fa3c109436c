"""Normalization layers against NumPy written from notes 000 §7.5, 001 and 004."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trainlab import init as ti
from trainlab.errors import ConfigError
from trainlab.nn.norm import NORMS, LocalResponseNorm, WeightNorm, WSConv2d, group_count, make_norm

EPS = 1e-5  # torch's default eps of every norm layer


def standardize(x: np.ndarray, axes: tuple[int, ...], eps: float = EPS) -> np.ndarray:
    """(x - mean) / sqrt(biased var + eps) over ``axes`` — the notes' BN / LN formula."""
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# --------------------------------------------------------------------------- batch norm


def test_batch_norm_train_mode_uses_batch_statistics_and_updates_running_averages(rng):
    x = rng.normal(3.0, 2.0, size=(16, 5))
    bn = make_norm("batch", 5).double().train()
    y = bn(torch.tensor(x)).detach().numpy()
    np.testing.assert_allclose(y, standardize(x, (0,)), atol=1e-10)
    # Running averages with momentum 0.1; the variance is the unbiased one (004).
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.1 * x.mean(0), atol=1e-12)
    np.testing.assert_allclose(bn.running_var.numpy(), 0.9 + 0.1 * x.var(0, ddof=1), atol=1e-12)


def test_batch_norm_eval_mode_uses_running_averages(rng):
    bn = make_norm("batch", 3, spatial_dims=2).double().train()
    for _ in range(5):
        bn(torch.tensor(rng.normal(1.0, 3.0, size=(8, 3, 4, 4))))
    bn.eval()
    x = rng.normal(size=(2, 3, 4, 4))
    y = bn(torch.tensor(x)).detach().numpy()
    mean = bn.running_mean.numpy()[None, :, None, None]
    var = bn.running_var.numpy()[None, :, None, None]
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + EPS), atol=1e-10)


def test_batch_norm_over_feature_maps_pools_batch_and_positions(rng):
    x = rng.normal(size=(4, 3, 5, 6))
    y = make_norm("batch", 3, spatial_dims=2).double()(torch.tensor(x)).detach().numpy()
    np.testing.assert_allclose(y, standardize(x, (0, 2, 3)), atol=1e-10)


# ------------------------------------------------------- layer / group / instance norm


@pytest.mark.parametrize(
    "kind,spatial_dims,shape,axes",
    [
        ("layer", 0, (4, 10), (1,)),  # notes §7.5.2: all neurons of the layer, per sample
        ("layer", 1, (4, 6, 9), (1, 2)),
        ("layer", 2, (4, 6, 3, 3), (1, 2, 3)),
        ("instance", 1, (4, 6, 9), (2,)),
        ("instance", 2, (4, 6, 3, 3), (2, 3)),
    ],
)
def test_per_sample_norms_match_numpy(rng, kind, spatial_dims, shape, axes):
    x = rng.normal(2.0, 3.0, size=shape)
    norm = make_norm(kind, shape[1], spatial_dims).double()
    y = norm(torch.tensor(x)).detach().numpy()
    np.testing.assert_allclose(y, standardize(x, axes), atol=1e-9)
    # Independent of the other samples: the batch of one gives the same numbers.
    y0 = norm(torch.tensor(x[:1])).detach().numpy()
    np.testing.assert_allclose(y0, y[:1], atol=1e-12)


def test_group_norm_matches_numpy_per_group(rng):
    x = rng.normal(size=(3, 12, 5))
    norm = make_norm("group", 12, spatial_dims=1, num_groups=8).double()
    assert norm.num_groups == 6  # 8 does not divide 12; the largest divisor below 8 is 6
    grouped = x.reshape(3, 6, 2 * 5)
    expected = standardize(grouped, (2,)).reshape(x.shape)
    np.testing.assert_allclose(norm(torch.tensor(x)).detach().numpy(), expected, atol=1e-9)


@pytest.mark.parametrize(
    "channels,wanted,expected", [(16, 8, 8), (12, 8, 6), (7, 8, 7), (9, 4, 3), (13, 8, 1), (4, 32, 4)]
)
def test_group_count_is_largest_divisor_not_above_wanted(channels, wanted, expected):
    assert group_count(channels, wanted) == expected


def test_make_norm_kinds_and_errors():
    assert set(NORMS) == {"none", "batch", "layer", "group", "instance", "weight"}
    assert isinstance(make_norm("none", 4), nn.Identity)
    assert isinstance(make_norm("weight", 4), nn.Identity)
    with pytest.raises(ConfigError, match=r"unknown norm 'bacth'.*did you mean 'batch'"):
        make_norm("bacth", 4)
    with pytest.raises(ConfigError, match=r"'instance' needs spatial positions"):
        make_norm("instance", 4, spatial_dims=0)
    with pytest.raises(ConfigError, match=r"spatial_dims .*3"):
        make_norm("batch", 4, spatial_dims=3)
    with pytest.raises(ConfigError, match=r"num_features .*0"):
        make_norm("batch", 0)
    with pytest.raises(ConfigError, match=r"num_groups .*0"):
        make_norm("group", 4, num_groups=0)


# ------------------------------------------------------------------------- weight norm


@pytest.mark.parametrize(
    "layer", [nn.Linear(6, 4), nn.Conv2d(3, 5, 3), nn.Conv1d(2, 3, 4)], ids=["linear", "conv2d", "conv1d"]
)
def test_weight_norm_effective_weight_is_g_v_over_norm_v(layer):
    torch.manual_seed(0)
    original = layer.weight.detach().clone()
    wn = WeightNorm(layer).double()
    torch.testing.assert_close(wn.weight.float(), original)  # starts as the layer's weight
    with torch.no_grad():
        wn.g.uniform_(0.5, 2.0)
        wn.v.normal_()
    v = wn.v.detach().numpy()
    g = wn.g.detach().numpy().reshape(-1)
    rows = v.reshape(len(v), -1)
    expected = (g[:, None] * rows / np.linalg.norm(rows, axis=1, keepdims=True)).reshape(v.shape)
    np.testing.assert_allclose(wn.weight.detach().numpy(), expected, rtol=1e-12)
    # Each row's norm is its g: length and direction are decoupled (§7.5.3).
    np.testing.assert_allclose(np.linalg.norm(expected.reshape(len(v), -1), axis=1), g, rtol=1e-12)


def test_weight_norm_forward_and_gradients_match_torch_parametrization():
    torch.manual_seed(0)
    ours = WeightNorm(nn.Conv2d(3, 4, 3, padding=1)).double()
    reference = nn.utils.parametrizations.weight_norm(nn.Conv2d(3, 4, 3, padding=1).double())
    with torch.no_grad():
        reference.parametrizations.weight.original0.copy_(ours.g)
        reference.parametrizations.weight.original1.copy_(ours.v)
        reference.bias.copy_(ours.module.bias)
    x = torch.randn(2, 3, 5, 5, dtype=torch.float64)
    y_ours, y_ref = ours(x), reference(x)
    torch.testing.assert_close(y_ours, y_ref)
    y_ours.square().sum().backward()
    y_ref.square().sum().backward()
    torch.testing.assert_close(ours.g.grad, reference.parametrizations.weight.original0.grad)
    torch.testing.assert_close(ours.v.grad, reference.parametrizations.weight.original1.grad)


def test_weight_norm_scalar_g_with_dim_none():
    wn = WeightNorm(nn.Linear(3, 2), dim=None).double()
    assert wn.g.shape == ()
    assert torch.linalg.norm(wn.weight).item() == pytest.approx(wn.g.item(), rel=1e-12)


def test_weight_norm_data_dependent_init_standardizes_first_batch():
    torch.manual_seed(0)
    wn = WeightNorm(nn.Conv1d(3, 4, 3), data_init=True).double()
    x = torch.randn(32, 3, 10, dtype=torch.float64) * 5 + 2
    y = wn(x).detach().numpy()
    np.testing.assert_allclose(y.mean(axis=(0, 2)), 0, atol=1e-10)
    np.testing.assert_allclose(y.std(axis=(0, 2)), 1, atol=1e-8)
    g_after = wn.g.detach().clone()
    wn(torch.randn(32, 3, 10, dtype=torch.float64))  # the init runs once
    torch.testing.assert_close(wn.g.detach(), g_after)
    assert "initialized" in wn.state_dict()


def test_weight_norm_rejects_other_layers_and_bad_dims():
    with pytest.raises(ValueError, match="WeightNorm wraps nn.Linear"):
        WeightNorm(nn.BatchNorm1d(3))
    with pytest.raises(ValueError, match=r"dim must be .*got 2"):
        WeightNorm(nn.Linear(3, 2), dim=2)
    with pytest.raises(ValueError, match="data_init=True needs dim=0"):
        WeightNorm(nn.Linear(3, 2), dim=None, data_init=True)


def test_init_model_reaches_through_weight_norm():
    torch.manual_seed(0)
    model = nn.Sequential(WeightNorm(nn.Linear(1000, 500)), nn.ReLU())
    ti.init_model(model, "he")
    w = model[0].weight.detach().double().numpy()
    assert abs(w.var() / (2 / 1000) - 1) < 0.03
    torch.testing.assert_close(model[0].weight, model[0].v)  # g = ||v|| so W = v
    assert torch.all(model[0].module.bias == 0)


# ----------------------------------------------------------------- weight standardization


def test_ws_conv_standardizes_each_filter(rng):
    conv = WSConv2d(3, 4, 3, padding=1).double()
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(rng.normal(0.5, 2.0, size=(4, 3, 3, 3))))
    w = conv.weight.detach().numpy().reshape(4, -1)
    mean = w.mean(axis=1, keepdims=True)
    expected = (w - mean) / np.sqrt(((w - mean) ** 2).mean(axis=1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(conv.standardized_weight().detach().numpy(), expected.reshape(4, 3, 3, 3), rtol=1e-12)
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    expected_y = F.conv2d(x, torch.tensor(expected.reshape(4, 3, 3, 3)), conv.bias, padding=1)
    torch.testing.assert_close(conv(x), expected_y)


def test_ws_conv_output_ignores_scale_and_shift_of_a_filter():
    torch.manual_seed(0)
    conv = WSConv2d(2, 3, 3, eps=0.0).double()
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64)
    y = conv(x)
    with torch.no_grad():
        conv.weight.mul_(7.0).add_(3.0)
    torch.testing.assert_close(conv(x), y)


# ------------------------------------------------------------------------------- LRN


def lrn_notes_loop(y: np.ndarray, n: int, k: float, alpha: float, beta: float) -> np.ndarray:
    """Notes §7.5.4, 1-based channels p = 1..P, window max(1, p - n/2) .. min(P, p + n/2)."""
    out = np.empty_like(y)
    channels = y.shape[1]
    for p in range(1, channels + 1):
        lo, hi = max(1, p - n // 2), min(channels, p + n // 2)
        total = sum(y[:, j - 1] ** 2 for j in range(lo, hi + 1))
        out[:, p - 1] = y[:, p - 1] / (k + alpha * total) ** beta
    return out


@pytest.mark.parametrize("n", [5, 4, 1])
@pytest.mark.parametrize("shape", [(2, 7, 3, 3), (3, 6), (2, 9, 4)], ids=str)
def test_lrn_matches_the_notes_formula(rng, n, shape):
    y = rng.normal(scale=3.0, size=shape)
    # A large alpha so the normalization visibly changes the output.
    lrn = LocalResponseNorm(n, alpha=0.1, beta=0.75, k=2.0)
    out = lrn(torch.tensor(y)).numpy()
    np.testing.assert_allclose(out, lrn_notes_loop(y, n, 2.0, 0.1, 0.75), rtol=1e-12)
    assert not np.allclose(out, y / 2.0**0.75)


def test_lrn_torch_style_divides_alpha_by_n(rng):
    y = torch.tensor(rng.normal(size=(2, 8, 3, 3)))
    ours = LocalResponseNorm(5, alpha=0.2, beta=0.75, k=1.0, style="torch")(y)
    torch.testing.assert_close(ours, nn.LocalResponseNorm(5, alpha=0.2, beta=0.75, k=1.0)(y))
    # For odd n the two styles agree when torch's alpha is n times the notes' alpha.
    notes = LocalResponseNorm(5, alpha=0.2 / 5, beta=0.75, k=1.0, style="notes")(y)
    torch.testing.assert_close(ours, notes)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"size": 0}, r"size .*0"),
        ({"size": 5, "style": "caffe"}, r"style .*caffe"),
        ({"size": 5, "beta": -1.0}, r"beta .*-1"),
        ({"size": 5, "k": 0.0}, r"k must be > 0"),
    ],
)
def test_lrn_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LocalResponseNorm(**kwargs)
