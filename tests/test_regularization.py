"""trainlab.regularization against NumPy references written from the notes' formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trainlab.nn.norm import WeightNorm
from trainlab.regularization import (
    distillation_loss,
    l1_proximal_step_,
    label_smoothing_targets,
    max_norm_,
    penalty,
    project_lp_ball,
    project_lp_ball_,
    regularized_parameters,
    smoothed_cross_entropy,
    soft_threshold,
)


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.LayerNorm(4), nn.Linear(4, 2))
    with torch.no_grad():  # non-trivial norm parameters, so leaving them out is visible
        for p in net.parameters():
            p.add_(0.3)
    return net


# ---------------------------------------------------------------- penalty


def test_penalty_value_is_elastic_net_of_weights_only():
    net = _net()
    w1, w2 = net[0].weight.detach().numpy(), net[4].weight.detach().numpy()
    l1, l2 = 0.03, 0.2
    expected = l1 * (np.abs(w1).sum() + np.abs(w2).sum()) + 0.5 * l2 * ((w1**2).sum() + (w2**2).sum())
    assert penalty(net, l1=l1, l2=l2).item() == pytest.approx(expected, rel=1e-6)
    every = np.concatenate([p.detach().numpy().ravel() for p in net.parameters()])
    assert penalty(net, l1=l1, l2=l2, include_bias_and_norm=True).item() == pytest.approx(
        l1 * np.abs(every).sum() + 0.5 * l2 * (every**2).sum(), rel=1e-6
    )


def test_penalty_gradient_is_l1_sign_plus_l2_w_and_zero_on_bias_and_norm():
    net = _net()
    l1, l2 = 0.05, 0.1
    penalty(net, l1=l1, l2=l2).backward()
    for name, p in net.named_parameters():
        w = p.detach().numpy()
        if name in ("0.weight", "4.weight"):
            np.testing.assert_allclose(p.grad.numpy(), l1 * np.sign(w) + l2 * w, rtol=1e-6)
        else:
            assert p.grad is None, name


def test_penalty_zero_and_bad_arguments():
    net = _net()
    assert penalty(net).item() == 0.0
    with pytest.raises(ValueError, match=r"l1 must be >= 0, got -0.1"):
        penalty(net, l1=-0.1)
    with pytest.raises(ValueError, match=r"l2 must be >= 0, got nan"):
        penalty(net, l2=float("nan"))


@pytest.mark.filterwarnings("ignore:.*torch.nn.utils.weight_norm.*:FutureWarning")
def test_regularized_parameters_rule():
    lstm_net = nn.ModuleDict(
        {
            "lstm": nn.LSTM(3, 4),
            "wn": nn.utils.parametrizations.weight_norm(nn.Linear(3, 5)),
            "old_wn": torch.nn.utils.weight_norm(nn.Linear(3, 5)),
            "gn": nn.GroupNorm(2, 4),
            "ln3d": nn.LayerNorm((2, 3, 3)),  # a norm gain with more than one dimension
            "emb": nn.Embedding(7, 3),
            "tl_wn": WeightNorm(nn.Linear(3, 5)),  # trainlab's: gain g is (5, 1), not 1-D
        }
    )
    names = {n for n, _ in regularized_parameters(lstm_net)}
    assert names == {
        "lstm.weight_ih_l0",
        "lstm.weight_hh_l0",
        "wn.parametrizations.weight.original1",  # the direction v, not the gain g
        "old_wn.weight_v",
        "emb.weight",
        "tl_wn.v",
    }
    assert len(regularized_parameters(lstm_net, include_bias_and_norm=True)) == len(list(lstm_net.parameters()))


def test_tied_weights_are_penalized_once():
    a = nn.Linear(2, 2, bias=False)
    net = nn.Sequential(a, a)
    assert penalty(net, l2=2.0).item() == pytest.approx((a.weight.detach() ** 2).sum().item(), rel=1e-6)


def _coupled_run(how: str, opt_cls: type, steps: int = 5, **kw) -> torch.Tensor:
    """Train with L2 as ``penalty`` in the loss, as the optimizer's ``weight_decay``, or ``none``."""
    torch.manual_seed(1)
    model = nn.Linear(4, 3, bias=False)
    x, y = torch.randn(16, 4), torch.randn(16, 3)
    lam = 0.1
    opt = opt_cls(model.parameters(), lr=0.05, weight_decay=lam if how == "decay" else 0.0, **kw)
    for _ in range(steps):
        opt.zero_grad()
        loss = F.mse_loss(model(x), y) + (penalty(model, l2=lam) if how == "penalty" else 0.0)
        loss.backward()
        opt.step()
    return model.weight.detach()


@pytest.mark.parametrize(
    ("opt_cls", "kw"),
    [
        (torch.optim.SGD, {"momentum": 0.9}),
        (torch.optim.SGD, {"momentum": 0.9, "nesterov": True}),
        (torch.optim.Adam, {}),
    ],
)
def test_l2_penalty_equals_torch_coupled_weight_decay(opt_cls, kw):
    """torch's SGD/Adam weight_decay adds λw to the gradient: the same as penalty(l2=λ)."""
    with_penalty, with_decay = _coupled_run("penalty", opt_cls, **kw), _coupled_run("decay", opt_cls, **kw)
    torch.testing.assert_close(with_penalty, with_decay, rtol=1e-6, atol=1e-7)
    assert (with_penalty - _coupled_run("none", opt_cls, **kw)).abs().max() > 1e-3  # L2 did act


def test_notes_decoupled_weight_decay_equals_l2_for_plain_sgd_but_not_for_adam():
    """Notes 000 §7.7.2: θ ← (1 − β)θ − α g equals L2 for SGD with β = lr·λ; not for Adam."""
    torch.manual_seed(2)
    x, y = torch.randn(32, 5), torch.randn(32, 1)
    w0 = torch.randn(1, 5)
    lr, lam = 0.1, 0.3

    def data_grad(w: np.ndarray) -> np.ndarray:  # d/dw mean((x w^T - y)^2)
        xn, yn = x.numpy().astype(np.float64), y.numpy().astype(np.float64)
        return (2 / len(xn)) * ((xn @ w.T - yn).T @ xn)

    w_notes = w0.numpy().astype(np.float64)
    for _ in range(3):
        w_notes = (1 - lr * lam) * w_notes - lr * data_grad(w_notes)

    def trained(opt_cls, **kw) -> np.ndarray:
        model = nn.Linear(5, 1, bias=False)
        with torch.no_grad():
            model.weight.copy_(w0)
        opt = opt_cls(model.parameters(), lr=lr, **kw)
        for _ in range(3):
            opt.zero_grad()
            (F.mse_loss(model(x), y) + penalty(model, l2=lam)).backward()
            opt.step()
        return model.weight.detach().numpy()

    np.testing.assert_allclose(trained(torch.optim.SGD), w_notes, rtol=1e-5)
    adam_l2 = trained(torch.optim.Adam)
    adamw = nn.Linear(5, 1, bias=False)
    with torch.no_grad():
        adamw.weight.copy_(w0)
    opt = torch.optim.AdamW(adamw.parameters(), lr=lr, weight_decay=lam)
    for _ in range(3):
        opt.zero_grad()
        F.mse_loss(adamw(x), y).backward()
        opt.step()
    assert np.abs(adam_l2 - adamw.weight.detach().numpy()).max() > 1e-3


def test_l2_minimum_is_the_notes_ridge_solution():
    """Notes 003: w̃ = (H + αI)^{-1} H w* for J = ½ (w − w*)ᵀ H (w − w*) + α ½||w||²."""
    rng = np.random.default_rng(0)
    n, d, alpha = 50, 6, 0.7
    x = rng.normal(size=(n, d)) * rng.uniform(0.2, 2.0, size=d)
    y = x @ rng.normal(size=d) + 0.1 * rng.normal(size=n)
    h = x.T @ x / n
    w_star = np.linalg.solve(h, x.T @ y / n)
    eigval, q = np.linalg.eigh(h)
    w_ridge = q @ np.diag(eigval / (eigval + alpha)) @ q.T @ w_star  # the notes' eigen form
    np.testing.assert_allclose(w_ridge, np.linalg.solve(h + alpha * np.eye(d), x.T @ y / n), rtol=1e-8)

    model = nn.Linear(d, 1, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(torch.from_numpy(w_ridge)[None])
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    loss = 0.5 * ((model(xt).squeeze(1) - yt) ** 2).mean() + penalty(model, l2=alpha)
    loss.backward()
    assert model.weight.grad.abs().max().item() < 1e-10  # w_ridge is the stationary point


def test_ridge_closed_form_of_003_needs_half_alpha():
    """003: L = (Xw − y)ᵀ(Xw − y) + ½α wᵀw, "w = (XᵀX + αI)⁻¹Xᵀy". Setting ∇L = 2Xᵀ(Xw − y) + αw
    to 0 gives (XᵀX + ½αI)⁻¹Xᵀy; trainlab's penalty(l2=α) is the ½α wᵀw term."""
    rng = np.random.default_rng(3)
    x, y, alpha = rng.normal(size=(30, 4)), rng.normal(size=30), 2.0
    correct = np.linalg.solve(x.T @ x + 0.5 * alpha * np.eye(4), x.T @ y)
    as_written = np.linalg.solve(x.T @ x + alpha * np.eye(4), x.T @ y)
    model = nn.Linear(4, 1, bias=False).double()
    grads = {}
    for name, w in (("correct", correct), ("as written", as_written)):
        with torch.no_grad():
            model.weight.copy_(torch.from_numpy(w)[None])
        model.zero_grad()
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        (((model(xt).squeeze(1) - yt) ** 2).sum() + penalty(model, l2=alpha)).backward()
        grads[name] = model.weight.grad.abs().max().item()
    assert grads["correct"] < 1e-10 < 1e-3 < grads["as written"]


def test_soft_threshold_formula():
    w = torch.tensor([-3.0, -0.5, 0.0, 0.2, 1.0, 2.5])
    np.testing.assert_allclose(soft_threshold(w, 1.0).numpy(), [-2.0, 0.0, 0.0, 0.0, 0.0, 1.5])


def _orthogonal_design(n: int, d: int, seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, d)))
    return q * np.sqrt(n)  # xᵀx / n = I, so the Hessian of ½ mean((xw − y)²) is I


def test_proximal_l1_reaches_the_notes_soft_threshold_solution():
    """Notes 003: with diagonal H, the L1 optimum is sign(w*) max(|w*| − α/H_ii, 0)."""
    n, d, alpha = 64, 8, 0.4
    x = _orthogonal_design(n, d, 0)
    w_true = np.array([2.0, -1.5, 0.3, -0.2, 0.0, 0.0, 1.0, 0.1])
    y = x @ w_true + 0.05 * np.random.default_rng(1).normal(size=n)
    w_star = x.T @ y / n
    expected = np.sign(w_star) * np.maximum(np.abs(w_star) - alpha, 0.0)

    model = nn.Linear(d, 1, bias=False).double()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    lr = 0.5
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for _ in range(100):
        opt.zero_grad()
        (0.5 * ((model(xt).squeeze(1) - yt) ** 2).mean()).backward()
        opt.step()
        l1_proximal_step_(model, lr * alpha)
    got = model.weight.detach().numpy()[0]
    np.testing.assert_allclose(got, expected, atol=1e-9)
    assert (got[expected == 0] == 0).all() and (expected == 0).sum() >= 3  # exact zeros


def test_l1_drives_irrelevant_weights_to_near_zero_while_l2_only_shrinks():
    rng = np.random.default_rng(3)
    n, d = 60, 20
    x = rng.normal(size=(n, d))
    w_true = np.zeros(d)
    w_true[:3] = [3.0, -2.0, 1.5]
    y = x @ w_true + 0.5 * rng.normal(size=n)
    xt, yt = torch.from_numpy(x).float(), torch.from_numpy(y).float()

    def fit(l1: float, l2: float) -> np.ndarray:
        torch.manual_seed(0)
        model = nn.Linear(d, 1, bias=False)
        opt = torch.optim.SGD(model.parameters(), lr=0.02)
        for step in range(3000):
            for group in opt.param_groups:  # a decaying step lets the subgradient settle
                group["lr"] = 0.02 / (1 + step / 100)
            opt.zero_grad()
            (0.5 * ((model(xt).squeeze(1) - yt) ** 2).mean() + penalty(model, l1=l1, l2=l2)).backward()
            opt.step()
        return model.weight.detach().numpy()[0]

    w_l1, w_l2 = fit(0.3, 0.0), fit(0.0, 0.3)
    irrelevant_l1, irrelevant_l2 = np.abs(w_l1[3:]), np.abs(w_l2[3:])
    assert irrelevant_l1.max() < 0.01  # L1: zero up to the subgradient's oscillation
    assert irrelevant_l2.min() > 1e-3 and np.median(irrelevant_l2) > 0.03  # L2: small, not zero
    assert np.abs(w_l1[:3]).min() > 1.0 and np.abs(w_l2[:3]).min() > 1.0  # the signal survives


# ---------------------------------------------------------------- max-norm


def _row_norms(w: np.ndarray) -> np.ndarray:
    return np.sqrt((w.reshape(w.shape[0], -1) ** 2).sum(1))


def test_max_norm_rescales_only_rows_above_the_bound():
    lin = nn.Linear(3, 3)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[3.0, 4.0, 0.0], [0.1, 0.2, 0.2], [0.0, 0.0, -10.0]]))
        lin.bias.fill_(7.0)
    max_norm_(lin, 2.0)
    w = np.array([[3.0, 4.0, 0.0], [0.1, 0.2, 0.2], [0.0, 0.0, -10.0]])
    expected = w * np.minimum(1.0, 2.0 / _row_norms(w))[:, None]
    np.testing.assert_allclose(lin.weight.detach().numpy(), expected, rtol=1e-6)
    assert (lin.bias == 7.0).all()  # biases are left alone by default


def test_max_norm_with_bias_counts_bias_in_the_row_and_conv_transpose_uses_dim_1():
    lin = nn.Linear(2, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[3.0, 0.0], [0.0, 0.5]]))
        lin.bias.copy_(torch.tensor([4.0, 0.5]))
    max_norm_(lin, 1.0, include_bias_and_norm=True)
    np.testing.assert_allclose(lin.weight.detach().numpy(), [[0.6, 0.0], [0.0, 0.5]], rtol=1e-6)
    np.testing.assert_allclose(lin.bias.detach().numpy(), [0.8, 0.5], rtol=1e-6)

    torch.manual_seed(0)
    deconv = nn.ConvTranspose2d(4, 3, 2)
    with torch.no_grad():
        deconv.weight.mul_(20)
    w = deconv.weight.detach().numpy().copy()  # (in, out, kh, kw)
    max_norm_(deconv, 0.5)
    out_rows = np.moveaxis(deconv.weight.detach().numpy(), 1, 0)
    np.testing.assert_allclose(_row_norms(out_rows), np.minimum(0.5, _row_norms(np.moveaxis(w, 1, 0))), rtol=1e-5)


def test_max_norm_rejects_nonpositive():
    with pytest.raises(ValueError, match=r"max_norm must be > 0, got 0"):
        max_norm_(nn.Linear(2, 2), 0)


# ---------------------------------------------------------------- label smoothing


@pytest.mark.parametrize("style", ["notes", "uniform"])
def test_label_smoothing_targets_match_formula_and_sum_to_one(style):
    y = torch.tensor([0, 3, 1, 3])
    k, eps = 4, 0.2
    got = label_smoothing_targets(y, k, eps, style).numpy()
    expected = np.empty((4, k))
    for i, c in enumerate(y.tolist()):
        if style == "notes":  # 000 §7.7.6: 1 − ε and ε/(K − 1)
            expected[i] = eps / (k - 1)
            expected[i, c] = 1 - eps
        else:  # Szegedy et al.: (1 − ε) one-hot + ε/K
            expected[i] = eps / k
            expected[i, c] = 1 - eps + eps / k
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    np.testing.assert_allclose(got.sum(1), 1.0, rtol=1e-6)


def test_uniform_smoothing_equals_torch_cross_entropy():
    torch.manual_seed(0)
    logits, y = torch.randn(16, 7) * 3, torch.randint(0, 7, (16,))
    for eps in (0.0, 0.1, 0.5):
        torch.testing.assert_close(
            smoothed_cross_entropy(logits, y, eps, style="uniform"), F.cross_entropy(logits, y, label_smoothing=eps)
        )


def test_notes_smoothing_loss_and_style_equivalence():
    torch.manual_seed(1)
    logits, y = torch.randn(8, 5), torch.randint(0, 5, (8,))
    eps, k = 0.3, 5
    z = logits.double().numpy()
    log_p = z - z.max(1, keepdims=True) - np.log(np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True))
    target = np.full((8, k), eps / (k - 1))
    target[np.arange(8), y.numpy()] = 1 - eps
    assert smoothed_cross_entropy(logits, y, eps).item() == pytest.approx(-(target * log_p).sum(1).mean(), rel=1e-5)
    torch.testing.assert_close(
        label_smoothing_targets(y, k, eps, "notes"), label_smoothing_targets(y, k, eps * k / (k - 1), "uniform")
    )


@pytest.mark.parametrize("style", ["notes", "uniform"])
def test_label_smoothing_targets_are_made_in_the_inputs_dtype(style):
    """float64 logits get float64 targets computed in float64, not float32 targets cast up."""
    y, k, eps = torch.tensor([2, 0, 1]), 3, 0.1
    off = eps / (k - 1) if style == "notes" else eps / k  # Python floats: float64 arithmetic
    on = 1 - eps if style == "notes" else 1 - eps + eps / k
    expected = np.full((3, k), off)
    expected[np.arange(3), y.numpy()] = on
    got = label_smoothing_targets(y, k, eps, style, dtype=torch.float64)
    assert got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-15, atol=0)
    assert label_smoothing_targets(y, k, eps, style).dtype == torch.get_default_dtype()
    logits = torch.randn(3, k, dtype=torch.float64)
    log_p = torch.log_softmax(logits, 1).numpy()
    loss = smoothed_cross_entropy(logits, y, eps, style)
    assert loss.dtype == torch.float64 and loss.item() == pytest.approx(-(expected * log_p).sum(1).mean(), rel=1e-14)


def test_cross_entropy_carries_the_minus_sign_that_notes_003_drop():
    """003 writes L = Σ y log ŷ + (1 − y) log(1 − ŷ) (≤ 0, maximized by a *wrong* model); the loss
    is its negative. With ε = 0 the smoothed loss is the plain cross-entropy, the Trainer's loss."""
    torch.manual_seed(2)
    logits, y = torch.randn(12, 2, dtype=torch.float64), torch.randint(0, 2, (12,))
    y_hat = torch.softmax(logits, 1)[:, 1].numpy()  # P(class 1)
    t = y.numpy()
    binary = -(t * np.log(y_hat) + (1 - t) * np.log(1 - y_hat)).mean()  # the corrected 003 form
    loss = smoothed_cross_entropy(logits, y, 0.0)
    assert loss.item() == pytest.approx(binary, rel=1e-12) and loss.item() > 0
    assert loss.item() == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-12)


def test_label_smoothing_bad_arguments():
    y = torch.tensor([0, 1])
    with pytest.raises(ValueError, match=r"eps must be in \[0, 1\], got 1.5"):
        label_smoothing_targets(y, 3, 1.5)
    with pytest.raises(ValueError, match=r"style must be one of .*'gauss'"):
        label_smoothing_targets(y, 3, 0.1, style="gauss")
    with pytest.raises(ValueError, match=r"y must lie in \[0, 2\], got values in \[0, 3\]"):
        label_smoothing_targets(torch.tensor([0, 3]), 3, 0.1)
    with pytest.raises(ValueError, match=r"num_classes must be >= 2, got 1"):
        label_smoothing_targets(torch.tensor([0]), 1, 0.1)


# ---------------------------------------------------------------- distillation


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_distillation_loss_equals_formula_and_gradient():
    torch.manual_seed(0)
    s, t, y = (
        torch.randn(6, 4, dtype=torch.float64),
        torch.randn(6, 4, dtype=torch.float64) * 2,
        torch.randint(0, 4, (6,)),
    )
    temp, alpha = 3.0, 0.7
    sn, tn, yn = s.numpy(), t.numpy(), y.numpy()
    p, q = _softmax(tn / temp), _softmax(sn / temp)
    soft = (p * (np.log(p) - np.log(q))).sum(1).mean() * temp**2
    hard = -np.log(_softmax(sn)[np.arange(6), yn]).mean()
    s.requires_grad_(True)
    t.requires_grad_(True)
    loss = distillation_loss(s, t, y, temp, alpha)
    assert loss.item() == pytest.approx(alpha * soft + (1 - alpha) * hard, rel=1e-10)
    loss.backward()
    onehot = np.eye(4)[yn]
    grad = (alpha * temp * (q - p) + (1 - alpha) * (_softmax(sn) - onehot)) / 6
    np.testing.assert_allclose(s.grad.numpy(), grad, rtol=1e-9)
    assert t.grad is None  # the teacher is a fixed target


def test_distillation_t_squared_keeps_the_soft_gradient_scale():
    """Hinton eq. 3: for large T and zero-mean logits, ∂/∂z_i (T² KL) → (z_i − v_i)/K."""
    torch.manual_seed(3)
    k = 10
    z = torch.randn(4, k, dtype=torch.float64)
    v = torch.randn(4, k, dtype=torch.float64)
    z, v = z - z.mean(1, keepdim=True), v - v.mean(1, keepdim=True)
    norms = {}
    limit = (z - v) / (k * 4)  # batch mean over 4 rows
    for temp in (20.0, 40.0):
        zz = z.clone().requires_grad_(True)
        distillation_loss(zz, v, None, temp, 1.0).backward()
        norms[temp] = zz.grad.norm().item()
        rel_error = ((zz.grad - limit).norm() / limit.norm()).item()
        assert rel_error < 1.0 / temp  # the approximation error is O(logit / T)
        zz = z.clone().requires_grad_(True)
        (distillation_loss(zz, v, None, temp, 1.0) / temp**2).backward()  # without T²
        norms[("raw", temp)] = zz.grad.norm().item()
    assert norms[20.0] / norms[40.0] == pytest.approx(1.0, abs=0.01)
    assert norms[("raw", 20.0)] / norms[("raw", 40.0)] == pytest.approx(4.0, rel=0.01)


def test_distillation_is_zero_when_student_matches_teacher_and_checks_arguments():
    z = torch.randn(3, 5)
    assert distillation_loss(z, z.clone(), None, 2.0, 1.0).item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match=r"targets are required when alpha < 1 \(alpha=0.5\)"):
        distillation_loss(z, z, None, 2.0, 0.5)
    with pytest.raises(ValueError, match=r"temperature must be > 0, got 0"):
        distillation_loss(z, z, None, 0, 1.0)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\], got 1.2"):
        distillation_loss(z, z, None, 2.0, 1.2)
    with pytest.raises(ValueError, match=r"must both be \(batch, classes\)"):
        distillation_loss(z, z[:, :4], None, 2.0, 1.0)


# ---- the constrained form ℓp(θ) ≤ c (000 §7.7.1) as a projection after each step ----


def _numpy_project(v: np.ndarray, p: float, c: float) -> np.ndarray:
    """The projection onto {||u||_p <= c} by other means: L1 by bisection on the threshold τ
    of sign(v) max(|v| − τ, 0) (the projection's KKT form), L2 by rescaling, L∞ by clipping."""
    if p == np.inf:
        return np.clip(v, -c, c)
    if np.linalg.norm(v, ord=p) <= c:
        return v
    if p == 2:
        return v * c / np.linalg.norm(v)
    lo, hi = 0.0, float(np.abs(v).max())
    for _ in range(200):
        tau = (lo + hi) / 2
        lo, hi = (tau, hi) if np.maximum(np.abs(v) - tau, 0).sum() > c else (lo, tau)
    return np.sign(v) * np.maximum(np.abs(v) - (lo + hi) / 2, 0)


@pytest.mark.parametrize("p", [1.0, 2.0, float("inf")])
@pytest.mark.parametrize("c", [0.1, 1.0, 3.0, 100.0])
def test_project_lp_ball_matches_numpy(p, c):
    v = np.random.default_rng(int(c * 10) + int(p if p < 3 else 3)).normal(size=57)
    got = project_lp_ball(torch.from_numpy(v), p, c).numpy()
    np.testing.assert_allclose(got, _numpy_project(v, p, c), rtol=1e-9, atol=1e-12)
    assert np.linalg.norm(got, ord=p) <= c * (1 + 1e-9)


def test_project_lp_ball_l1_is_the_closest_point_and_sparse():
    v = np.random.default_rng(5).normal(size=40)
    u = project_lp_ball(torch.from_numpy(v), 1.0, 2.0).numpy()
    assert np.abs(u).sum() == pytest.approx(2.0) and (u == 0).sum() > 20  # on the surface, most weights exactly 0
    rng = np.random.default_rng(6)
    for _ in range(200):  # no other point of the ball is closer to v
        w = rng.normal(size=40)
        w *= 2.0 / np.abs(w).sum() * rng.uniform(0, 1)
        assert np.linalg.norm(w - v) >= np.linalg.norm(u - v) - 1e-12


def test_project_lp_ball_rejects_unsupported_p_and_radius():
    with pytest.raises(ValueError, match="p must be one of 1, 2, inf"):
        project_lp_ball(torch.ones(3), 3.0, 1.0)
    with pytest.raises(ValueError, match="radius must be > 0, got 0"):
        project_lp_ball(torch.ones(3), 2.0, 0)


def test_project_lp_ball_model_projects_all_weights_together_and_leaves_biases():
    net = _net()
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    weights = [n for n, _ in regularized_parameters(net)]
    flat = np.concatenate([before[n].double().numpy().ravel() for n in weights])
    project_lp_ball_(net, 1.0, 0.5)
    expected = _numpy_project(flat, 1.0, 0.5)
    got = np.concatenate([dict(net.named_parameters())[n].detach().double().numpy().ravel() for n in weights])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    for n, p in net.named_parameters():
        if n not in weights:  # biases and norm gains untouched
            assert torch.equal(p, before[n])


def test_trainer_norm_bound_keeps_the_weights_in_the_ball(tmp_path):
    from trainlab.store import Store
    from trainlab.train import run

    cfg = {
        "seed": 0, "data": {"name": "mnist1d", "subset": 300, "batch_size": 50},
        "model": {"name": "mlp", "hidden": [16]}, "optim": {"name": "sgd", "lr": 0.5},
        "regularize": {"norm_bound": 2.0, "norm_bound_p": 1}, "train": {"max_steps": 20},
    }  # fmt: skip
    result = run(cfg, store=Store(tmp_path / "r.db"), quiet=True)
    w = np.concatenate([p.detach().double().numpy().ravel() for _, p in regularized_parameters(result.model)])
    assert np.abs(w).sum() <= 2.0 * (1 + 1e-5) and (w == 0).mean() > 0.5
