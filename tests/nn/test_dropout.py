"""Dropout variants: statistics with tolerances of several standard errors, exact identities
with NumPy references written from the notes and the papers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trainlab.nn.dropout import (
    AlphaDropout,
    DropConnectLinear,
    geometric_mean_predict,
    is_dropout,
    mc_predict,
    normalized_geometric_mean,
)

SIGMAS = 6  # a statistical check fails by luck with probability < 1e-8


# ---------------------------------------------------------------- standard (inverted) dropout


def test_standard_dropout_keeps_the_fraction_and_the_expectation():
    torch.manual_seed(0)
    n, drop = 200_000, 0.3
    keep = 1 - drop
    x = torch.rand(n) + 0.5
    y = nn.Dropout(drop).train()(x)
    kept = (y != 0).double().mean().item()
    assert abs(kept - keep) < SIGMAS * math.sqrt(keep * drop / n)
    # E[y] = x for each unit: the mean of y - x is 0 within its standard error
    diff = (y - x).double()
    assert abs(diff.mean().item()) < SIGMAS * diff.std().item() / math.sqrt(n)


def test_inverted_dropout_equals_notes_scale_at_test():
    """Notes 000 §7.7.4 / 002: train m⊙h, test p·h (p = keep). torch: train m⊙h/p, test h.
    The next layer absorbs 1/p: weights W (notes) and p·W (torch) give identical outputs."""
    torch.manual_seed(1)
    keep = 0.6
    h = torch.rand(5, 8, dtype=torch.float64) + 0.1
    w_notes = torch.randn(3, 8, dtype=torch.float64)
    w_torch = keep * w_notes

    y = F.dropout(h, p=1 - keep, training=True)
    mask = (y != 0).numpy()
    np.testing.assert_allclose(y.numpy(), mask * h.numpy() / keep, rtol=1e-12)  # inverted form

    def notes_layer(h_np: np.ndarray, m: np.ndarray | None) -> np.ndarray:
        dropped = m * h_np if m is not None else keep * h_np  # the notes' mask(x)
        return dropped @ w_notes.numpy().T

    np.testing.assert_allclose((y @ w_torch.T).numpy(), notes_layer(h.numpy(), mask), rtol=1e-12)
    test_out = F.dropout(h, p=1 - keep, training=False) @ w_torch.T
    np.testing.assert_allclose(test_out.numpy(), notes_layer(h.numpy(), None), rtol=1e-12)


# ---------------------------------------------------------------- DropConnect


def test_dropconnect_masks_weights_not_activations():
    torch.manual_seed(2)
    d_in, d_out, drop = 40, 30, 0.4
    layer = DropConnectLinear(d_in, d_out, drop=drop, per_sample=False).double().train()
    with torch.no_grad():
        layer.bias.fill_(5.0)  # activations never hit 0 unless a whole output were dropped
    eye = torch.eye(d_in, dtype=torch.float64)
    out = layer(eye)  # row j = b + column j of M ⊙ W
    masked_w = (out - layer.bias).T.detach()
    w = layer.weight.detach()
    kept = masked_w != 0
    torch.testing.assert_close(masked_w[kept], w[kept], rtol=0, atol=1e-12)  # kept weights unscaled
    n = w.numel()
    assert abs(kept.double().mean().item() - (1 - drop)) < SIGMAS * math.sqrt(drop * (1 - drop) / n)
    assert (out != 0).all()  # no activation is zeroed


def test_dropconnect_per_sample_masks_differ_and_per_batch_masks_do_not():
    torch.manual_seed(3)
    x = torch.ones(4, 10)
    per_sample = DropConnectLinear(10, 6, drop=0.5).train()
    per_batch = DropConnectLinear(10, 6, drop=0.5, per_sample=False).train()
    out_s, out_b = per_sample(x), per_batch(x)
    assert not torch.allclose(out_s[0], out_s[1])
    torch.testing.assert_close(out_b[0].expand_as(out_b), out_b)


def test_dropconnect_training_mean_equals_mean_inference():
    torch.manual_seed(4)
    layer = DropConnectLinear(20, 5, drop=0.3).double()
    x = torch.randn(1, 20, dtype=torch.float64).expand(20_000, 20)
    with torch.no_grad():
        train_out = layer.train()(x)
        mean_out = layer.eval()(x[:1])[0]
    q = 0.7
    var = q * (1 - q) * (x[0] ** 2 @ (layer.weight.detach().T ** 2))  # Var of the Bernoulli sum
    se = (var / x.shape[0]).sqrt()
    assert ((train_out.mean(0) - mean_out).abs() < SIGMAS * se).all()
    torch.testing.assert_close(mean_out, q * layer.weight.detach() @ x[0] + layer.bias.detach())


def _gaussian_expectation_np(f, mu: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """E[f(u)], u ~ N(mu, sd²), by a dense trapezoid over ±10 sd (independent of Gauss–Hermite)."""
    z = np.linspace(-10, 10, 20001)
    pdf = np.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)
    values = f(mu[..., None] + sd[..., None] * z) * pdf
    return np.trapezoid(values, z, axis=-1)


@pytest.mark.parametrize(
    ("activation", "np_activation", "nodes", "tol"),
    [(torch.tanh, np.tanh, 16, 1e-7), (torch.relu, lambda u: np.maximum(u, 0), 64, 5e-3)],
)
def test_dropconnect_gaussian_inference_is_the_moment_matched_expectation(activation, np_activation, nodes, tol):
    """Wan et al. 2013 §3: u ~ N(qWx + b, q(1−q)(W⊙W)(x⊙x)), r = E[a(u)]."""
    torch.manual_seed(5)
    q = 0.6
    layer = DropConnectLinear(12, 7, drop=1 - q, inference="gaussian", samples=nodes, activation=activation).double()
    x = torch.randn(9, 12, dtype=torch.float64)
    with torch.no_grad():
        got = layer.eval()(x).numpy()
        again = layer(x).numpy()
    w, b, xn = layer.weight.detach().numpy(), layer.bias.detach().numpy(), x.numpy()
    mu = q * xn @ w.T + b
    sd = np.sqrt(q * (1 - q) * (xn**2) @ (w.T**2))
    expected = _gaussian_expectation_np(np_activation, mu, sd)
    np.testing.assert_allclose(got, expected, atol=tol * np.abs(expected).max())
    np.testing.assert_array_equal(got, again)  # deterministic
    assert np.abs(got - np_activation(mu)).max() > 10 * tol  # differs from the mean rule


def test_dropconnect_gaussian_without_activation_is_the_mean_and_drop_zero_is_linear():
    torch.manual_seed(6)
    g = DropConnectLinear(6, 3, drop=0.5, inference="gaussian").eval()
    m = DropConnectLinear(6, 3, drop=0.5).eval()
    m.load_state_dict(g.state_dict())
    x = torch.randn(4, 6)
    torch.testing.assert_close(g(x), m(x))
    plain = DropConnectLinear(6, 3, drop=0.0).train()
    torch.testing.assert_close(plain(x), F.linear(x, plain.weight, plain.bias))


def test_dropconnect_bad_arguments():
    with pytest.raises(ValueError, match=r"drop is a drop probability and must be in \[0, 1\), got 1.0"):
        DropConnectLinear(2, 2, drop=1.0)
    with pytest.raises(ValueError, match=r"inference must be one of \('mean', 'gaussian'\), got 'median'"):
        DropConnectLinear(2, 2, inference="median")
    with pytest.raises(ValueError, match=r"samples must be an integer >= 1, got 0"):
        DropConnectLinear(2, 2, samples=0)


# ---------------------------------------------------------------- AlphaDropout


def test_alpha_dropout_matches_torch_under_the_same_seed():
    x = torch.randn(64, 32)
    torch.manual_seed(7)
    ours = AlphaDropout(0.2).train()(x)
    torch.manual_seed(7)
    theirs = nn.AlphaDropout(0.2).train()(x)
    torch.testing.assert_close(ours, theirs)


def test_alpha_dropout_keeps_mean_and_variance_of_selu_activations():
    torch.manual_seed(8)
    n, p = 1_000_000, 0.2
    x = F.selu(torch.randn(n, dtype=torch.float64))  # SELU's fixed point: mean ≈ 0, var ≈ 1
    y = AlphaDropout(p).train()(x)
    mean_x, var_x = x.mean().item(), x.var().item()
    assert abs(mean_x) < 0.01 and abs(var_x - 1) < 0.01
    # Klambauer et al. 2017 eq. (6)-(7) from the input's moments, in NumPy-free closed form
    q, alpha = 1 - p, -1.0507009873554805 * 1.6732632423543772
    a = (q + alpha**2 * q * (1 - q)) ** -0.5
    b = -a * (1 - q) * alpha
    exp_mean = a * (q * mean_x + (1 - q) * alpha) + b
    exp_var = a**2 * (q * (var_x + mean_x**2) + (1 - q) * alpha**2 - (q * mean_x + (1 - q) * alpha) ** 2)
    se_mean, se_var = math.sqrt(exp_var / n), exp_var * math.sqrt(3.0 / n)  # generous for var
    assert abs(y.mean().item() - exp_mean) < SIGMAS * se_mean
    assert abs(y.var().item() - exp_var) < SIGMAS * se_var
    assert abs(y.mean().item()) < 0.01 and abs(y.var().item() - 1) < 0.01
    # standard dropout does not: inverted scaling inflates the variance to about 1/q
    assert nn.Dropout(p).train()(x).var().item() > 1.2


def test_eval_modes_are_deterministic_identities_where_expected():
    torch.manual_seed(9)
    x = torch.randn(16, 8)
    alpha = AlphaDropout(0.3).eval()
    assert torch.equal(alpha(x), x)
    dc = DropConnectLinear(8, 4).eval()
    assert torch.equal(dc(x), dc(x))
    with pytest.raises(ValueError, match=r"p is a drop probability and must be in \[0, 1\), got -0.1"):
        AlphaDropout(-0.1)


# ---------------------------------------------------------------- Monte-Carlo dropout


class LockedDropout(nn.Module):
    """Stands in for trainlab.nn.recurrent.LockedDropout: recognised by its class name."""

    def forward(self, x):
        return x * 2 if self.training else x


def _net(drop: float) -> nn.Sequential:
    torch.manual_seed(10)
    return nn.Sequential(nn.Linear(5, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(drop), nn.Linear(16, 3))


def test_mc_predict_std_positive_with_dropout_and_zero_without():
    x = torch.randn(8, 5)
    mean, std = mc_predict(_net(0.5).eval(), x, samples=20)
    assert mean.shape == std.shape == (8, 3)
    torch.testing.assert_close(mean.sum(1), torch.ones(8))
    assert (std > 0).all()
    mean0, std0 = mc_predict(_net(0.0).eval(), x, samples=5)
    assert torch.equal(std0, torch.zeros_like(std0))
    torch.testing.assert_close(mean0, _net(0.0).eval()(x).softmax(-1))


def test_mc_predict_equals_the_average_of_dropout_passes_with_batchnorm_in_eval():
    net = _net(0.5)
    with torch.no_grad():  # non-trivial running statistics
        net[1].running_mean.uniform_(-1, 1)
        net[1].running_var.uniform_(0.5, 2)
    net.train()
    net[4].eval()  # a mixed state must come back as it was
    before = {name: m.training for name, m in net.named_modules()}
    stats = net[1].running_mean.clone()
    x = torch.randn(8, 5)
    torch.manual_seed(11)
    mean, std = mc_predict(net, x, samples=7)
    assert {name: m.training for name, m in net.named_modules()} == before
    assert torch.equal(net[1].running_mean, stats)  # BatchNorm was not in train mode

    # reference: the same passes by hand, BatchNorm in eval, dropout in train
    net.eval()
    net[3].train()
    torch.manual_seed(11)
    with torch.no_grad():
        probs = np.stack([net(x).softmax(-1).numpy() for _ in range(7)])
    np.testing.assert_allclose(mean.numpy(), probs.mean(0), rtol=1e-6)
    np.testing.assert_allclose(std.numpy(), probs.std(0), rtol=1e-5, atol=1e-7)  # divisor M


def test_is_dropout_recognises_the_variants():
    assert is_dropout(nn.Dropout(0.1)) and is_dropout(nn.Dropout2d()) and is_dropout(nn.AlphaDropout())
    assert is_dropout(AlphaDropout(0.1)) and is_dropout(DropConnectLinear(2, 2)) and is_dropout(LockedDropout())
    assert is_dropout(nn.LSTM(2, 2, num_layers=2, dropout=0.3))
    assert not is_dropout(nn.LSTM(2, 2)) and not is_dropout(nn.BatchNorm1d(2)) and not is_dropout(nn.Linear(2, 2))


def test_mc_predict_activates_dropconnect_and_restores_on_error():
    torch.manual_seed(12)
    net = nn.Sequential(DropConnectLinear(5, 4, drop=0.5), nn.Linear(4, 2)).eval()
    _, std = mc_predict(net, torch.randn(3, 5), samples=10)
    assert (std > 0).all()
    with pytest.raises(RuntimeError):
        mc_predict(net, torch.randn(3, 7))  # wrong width fails inside the forward
    assert not any(m.training for m in net.modules())
    with pytest.raises(ValueError, match=r"samples must be an integer >= 1, got 0"):
        mc_predict(net, torch.randn(3, 5), samples=0)


# ---------------------------------------------------------------- the geometric-mean ensemble (003)


def test_normalized_geometric_mean_matches_numpy():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(5), size=(7, 3))  # 7 subnetworks, 3 inputs, 5 classes
    tilde = np.prod(p, axis=0) ** (1 / 7)  # 003: p̃ = (Π_μ p(y|x, μ))^(1/2^d), over the 7 here
    expected = tilde / tilde.sum(-1, keepdims=True)
    got = normalized_geometric_mean(torch.from_numpy(np.log(p))).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_weight_scaling_is_the_exact_geometric_mean_for_softmax_regression():
    """Every one of the 2^d input masks, enumerated in NumPy: the renormalized geometric mean of the
    subnetworks' softmax equals the weight-scaled network (eval mode) for a softmax regression."""
    torch.manual_seed(0)
    d, k, keep = 6, 4, 0.5
    model = nn.Sequential(nn.Dropout(1 - keep), nn.Linear(d, k))
    x = torch.randn(5, d, dtype=torch.float64)
    model = model.double()
    w, b = model[1].weight.detach().numpy(), model[1].bias.detach().numpy()
    masks = np.array(np.meshgrid(*[[0, 1]] * d)).reshape(d, -1).T  # (2^d, d)
    logits = np.einsum("md,nd,kd->mnk", masks / keep, x.numpy(), w) + b  # torch's inverted dropout
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    tilde = np.exp(log_p.mean(0))
    ensemble = tilde / tilde.sum(-1, keepdims=True)
    model.eval()
    np.testing.assert_allclose(model(x).softmax(-1).detach().numpy(), ensemble, rtol=1e-10)


def test_geometric_mean_predict_is_the_mean_log_softmax_of_sampled_masks():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 4))
    model.eval()
    x = torch.randn(6, 3)
    torch.manual_seed(7)
    got = geometric_mean_predict(model, x, samples=20)
    torch.manual_seed(7)
    model.train()
    with torch.no_grad():
        passes = torch.stack([model(x).log_softmax(-1) for _ in range(20)]).double().numpy()
    tilde = np.exp(passes.mean(0))
    np.testing.assert_allclose(got.double().numpy(), tilde / tilde.sum(-1, keepdims=True), rtol=1e-5)
    model.eval()
    geometric_mean_predict(model, x, samples=2)
    assert not model.training and not model[2].training  # modes restored
    with pytest.raises(ValueError, match="samples must be an integer >= 1, got 0"):
        geometric_mean_predict(model, x, samples=0)
