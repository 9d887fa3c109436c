"""Sharpness measures against exact NumPy linear algebra on problems whose Hessian is known."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from trainlab.diagnose.sharpness import epsilon_sharpness, hessian_trace, measure_sharpness, top_hessian_eigenvalue


def _quadratic(a: np.ndarray, center: np.ndarray, start: np.ndarray):
    """f(w) = ½ (w − c)ᵀ A (w − c): the Hessian is A everywhere."""
    w = nn.Parameter(torch.from_numpy(start.copy()))
    a_t, c_t = torch.from_numpy(a), torch.from_numpy(center)
    return w, (lambda: 0.5 * (w - c_t) @ a_t @ (w - c_t))


def _spd(d: int, eigenvalues, seed: int = 0) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return q @ np.diag(eigenvalues) @ q.T


def test_top_eigenvalue_of_a_quadratic():
    a = _spd(6, [5.0, 3.0, 2.5, 1.0, 0.5, 0.1])
    w, closure = _quadratic(a, np.zeros(6), np.ones(6))
    result = top_hessian_eigenvalue(closure, [w], iters=500, tol=1e-10)
    assert result.converged
    assert result.value == pytest.approx(np.linalg.eigvalsh(a).max(), rel=1e-6)
    v = torch.cat([t.reshape(-1) for t in result.vector]).numpy()
    np.testing.assert_allclose(a @ v, result.value * v, atol=1e-4)


def test_top_eigenvalue_of_an_indefinite_hessian_is_the_largest_magnitude_with_its_sign():
    a = _spd(5, [-4.0, 2.0, 1.0, 0.5, -0.2], seed=3)
    w, closure = _quadratic(a, np.zeros(5), np.ones(5))
    assert top_hessian_eigenvalue(closure, [w], iters=1000, tol=1e-10).value == pytest.approx(-4.0, rel=1e-5)


def _least_squares(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(300, 8)) * np.linspace(0.5, 2.0, 8)
    y = x @ rng.normal(size=8) + 0.1 * rng.normal(size=300)
    model = nn.Linear(8, 1).double()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    closure = lambda: ((model(xt).squeeze(-1) - yt) ** 2).mean()  # noqa: E731
    design = np.hstack([x, np.ones((300, 1))])
    hessian = 2 * design.T @ design / len(x)  # of mean((X w + b − y)²) in (w, b)
    return model, closure, hessian


def test_top_eigenvalue_and_trace_of_linear_least_squares():
    model, closure, hessian = _least_squares()
    params = list(model.parameters())
    eig = top_hessian_eigenvalue(closure, params, iters=1000, tol=1e-10)
    assert eig.value == pytest.approx(np.linalg.eigvalsh(hessian).max(), rel=1e-6)
    trace = hessian_trace(closure, params, samples=200, seed=0)
    assert trace.value == pytest.approx(np.trace(hessian), rel=0.05)
    assert abs(trace.value - np.trace(hessian)) < 4 * trace.std_error  # the error bar is honest


def test_top_eigenvalue_of_a_small_mlp_matches_the_full_hessian():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 3)).double()
    x, y = torch.randn(20, 3, dtype=torch.float64), torch.randint(0, 3, (20,))
    params = list(model.parameters())
    shapes = [p.shape for p in params]
    flat0 = torch.cat([p.detach().reshape(-1) for p in params])

    def loss_of_flat(flat):
        chunks, i = [], 0
        for s in shapes:
            n = int(np.prod(s))
            chunks.append(flat[i : i + n].reshape(s))
            i += n
        return nn.functional.cross_entropy(
            torch.func.functional_call(model, dict(zip([n for n, _ in model.named_parameters()], chunks)), (x,)), y
        )

    full = torch.autograd.functional.hessian(loss_of_flat, flat0).numpy()
    eigenvalues = np.linalg.eigvalsh(full)
    top = eigenvalues[np.argmax(np.abs(eigenvalues))]
    closure = lambda: nn.functional.cross_entropy(model(x), y)  # noqa: E731
    assert top_hessian_eigenvalue(closure, params, iters=2000, tol=1e-12).value == pytest.approx(top, rel=1e-5)
    assert hessian_trace(closure, params, samples=400).value == pytest.approx(np.trace(full), rel=0.1)


def test_epsilon_sharpness_finds_the_box_maximum_of_a_convex_quadratic():
    a = _spd(4, [3.0, 2.0, 1.5, 1.0], seed=1)
    center = np.array([0.3, -0.2, 0.1, 0.4])
    start = center + np.array([0.01, 0.0, -0.02, 0.0])
    w, closure = _quadratic(a, center, start)
    eps = 0.05
    result = epsilon_sharpness(closure, [w], epsilon=eps, max_iter=50, restarts=8, seed=0)
    # reference: a convex function's maximum over a box lies at one of its 2^d vertices
    radius = eps * (np.abs(start) + 1)
    f = lambda v: 0.5 * (v - center) @ a @ (v - center)  # noqa: E731
    best = max(f(start + np.array(signs) * radius) for signs in itertools.product((-1, 1), repeat=4))
    assert result.loss == pytest.approx(f(start))
    assert result.max_loss <= best + 1e-12
    assert result.max_loss >= 0.95 * best
    assert result.value == pytest.approx(100 * (result.max_loss - result.loss) / (1 + result.loss))
    assert torch.equal(w.detach(), torch.from_numpy(start))  # restored exactly


def test_measure_sharpness_on_a_model_restores_it():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3))
    x, y = torch.randn(64, 5), torch.randint(0, 3, (64,))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = measure_sharpness(model, nn.functional.cross_entropy, x, y, power_iters=50, trace_samples=20)
    assert model.training
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert out["hessian_top"] > 0 and out["hessian_trace"] > 0 and out["epsilon_sharpness"] > 0
    small = measure_sharpness(model, nn.functional.cross_entropy, x, y, epsilon=1e-5, power_iters=5, trace_samples=2)
    assert small["epsilon_sharpness"] < out["epsilon_sharpness"]  # a smaller box, a smaller rise


def test_bad_arguments():
    w, closure = _quadratic(np.eye(2), np.zeros(2), np.ones(2))
    with pytest.raises(ValueError, match="epsilon must be a positive number.*got -1"):
        epsilon_sharpness(closure, [w], epsilon=-1)
    with pytest.raises(ValueError, match="restarts must be an integer >= 1, got 0"):
        epsilon_sharpness(closure, [w], restarts=0)
    with pytest.raises(ValueError, match="iters must be an integer >= 1, got 0"):
        top_hessian_eigenvalue(closure, [w], iters=0)
    with pytest.raises(ValueError, match="samples must be an integer >= 1, got 0"):
        hessian_trace(closure, [w], samples=0)
    with pytest.raises(ValueError, match="params is empty"):
        top_hessian_eigenvalue(closure, [])
