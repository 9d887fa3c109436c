"""Sharp and flat minima, measured: ε-sharpness, the Hessian's top eigenvalue and its trace.

The notes (``000_*.txt`` §7.1 平坦最小值和尖锐最小值, §7.2.2 批量大小选择) say flat minima are
robust to perturbation and that large batches tend to end in sharp minima [Keskar et al.].
Three numbers make "sharp" concrete, all of the loss L(θ) on a fixed batch:

ε-sharpness (Keskar, Mudigere, Nocedal, Smelyanskiy & Tang, ICLR 2017, "On Large-Batch
Training for Deep Learning: Generalization Gap and Sharp Minima", Eq. 3–4, with A = I):

    C_ε = { z : |z_i| ≤ ε (|θ_i| + 1) }
    φ(θ, ε) = 100 · ( max_{z ∈ C_ε} L(θ + z) − L(θ) ) / ( 1 + L(θ) )

The inner maximum is found as Keskar et al. do, with L-BFGS-B (scipy) limited to ``max_iter``
iterations (they use 10) on the box C_ε. Unlike the paper we start from a random point of the
box, not from z = 0: at a minimum the gradient vanishes and L-BFGS-B would not move. The paper
also offers a random-subspace variant (A ∈ R^{n×p}); it is not implemented here.

Top Hessian eigenvalue by power iteration on Hessian-vector products (Pearlmutter 1994:
Hv = ∇_θ (∇_θ L · v), one extra backward, the Hessian is never formed):

    v ← Hv / ||Hv||,   λ ← vᵀ H v   until |λ_k − λ_{k−1}| ≤ tol · |λ_k|

Power iteration converges to the eigenvalue of largest *magnitude*; at a minimum H is positive
semi-definite and that is λ_max; at a saddle it may be a negative one, returned with its sign.

Hessian trace by Hutchinson's estimator (Hutchinson 1990) with Rademacher vectors v
(entries ±1, so E[v vᵀ] = I):

    tr(H) ≈ (1/m) Σ_k v_kᵀ H v_k,    standard error = std(v_kᵀ H v_k) / √m

Example::

    closure = batch_closure(model, nn.functional.cross_entropy, x, y)
    params = [p for p in model.parameters() if p.requires_grad]
    top_hessian_eigenvalue(closure, params).value
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

Closure = Callable[[], torch.Tensor]


@dataclass
class EigenResult:
    value: float
    vector: list[torch.Tensor]
    iterations: int
    converged: bool


@dataclass
class TraceResult:
    value: float
    std_error: float
    samples: int


@dataclass
class SharpnessResult:
    value: float  # φ(θ, ε), in percent as Keskar et al. report it
    loss: float  # L(θ)
    max_loss: float  # max over the box found by L-BFGS-B
    epsilon: float


def batch_closure(
    model: nn.Module, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor
) -> Closure:
    """``lambda: loss_fn(model(x), y)`` — the loss whose curvature the functions below measure."""
    return lambda: loss_fn(model(x), y)


class HessianVectorProduct:
    """v ↦ Hv at the current parameters: one forward and gradient (with its graph) up front,
    then one backward per product (Pearlmutter's trick)."""

    def __init__(self, closure: Closure, params: Sequence[torch.Tensor]):
        self.params = list(params)
        if not self.params:
            raise ValueError("params is empty: pass the parameters whose Hessian you want (requires_grad=True)")
        loss = closure()
        self.grads = torch.autograd.grad(loss, self.params, create_graph=True)

    def __call__(self, vectors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        # (∂g/∂θ)ᵀ v = Hᵀ v = H v: the Hessian is symmetric.
        out = torch.autograd.grad(
            self.grads, self.params, grad_outputs=list(vectors), retain_graph=True, allow_unused=True
        )
        return [torch.zeros_like(p) if h is None else h.detach() for h, p in zip(out, self.params)]


def _dot(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> float:
    return float(sum((x.double() * y.double()).sum() for x, y in zip(a, b)))


def _check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def top_hessian_eigenvalue(
    closure: Closure, params: Sequence[torch.Tensor], *, iters: int = 100, tol: float = 1e-5, seed: int = 0
) -> EigenResult:
    """The Hessian's eigenvalue of largest magnitude and its unit eigenvector, by power iteration."""
    _check_positive_int("iters", iters)
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol!r}")
    hvp = HessianVectorProduct(closure, params)
    gen = torch.Generator().manual_seed(seed)
    v = [torch.randn(p.shape, generator=gen, dtype=p.dtype).to(p.device) for p in hvp.params]
    norm = math.sqrt(_dot(v, v))
    v = [t / norm for t in v]
    value = math.nan
    for k in range(1, iters + 1):
        hv = hvp(v)
        new = _dot(v, hv)
        norm = math.sqrt(_dot(hv, hv))
        if norm == 0:  # v is in the null space: H v = 0, the top magnitude found so far is 0
            return EigenResult(0.0, v, k, True)
        v = [t / norm for t in hv]
        if math.isfinite(value) and abs(new - value) <= tol * abs(new):
            return EigenResult(new, v, k, True)
        value = new
    return EigenResult(value, v, iters, False)


def hessian_trace(
    closure: Closure, params: Sequence[torch.Tensor], *, samples: int = 100, seed: int = 0
) -> TraceResult:
    """Hutchinson's estimate of tr(H) with ``samples`` Rademacher vectors, and its standard error."""
    _check_positive_int("samples", samples)
    hvp = HessianVectorProduct(closure, params)
    gen = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(samples):
        v = [
            (torch.randint(0, 2, p.shape, generator=gen) * 2 - 1).to(dtype=p.dtype, device=p.device) for p in hvp.params
        ]
        values.append(_dot(v, hvp(v)))
    arr = np.asarray(values)
    stderr = float(arr.std(ddof=1) / math.sqrt(samples)) if samples > 1 else math.nan
    return TraceResult(float(arr.mean()), stderr, samples)


def epsilon_sharpness(
    closure: Closure,
    params: Sequence[torch.Tensor],
    *,
    epsilon: float = 1e-3,
    max_iter: int = 10,
    restarts: int = 1,
    seed: int = 0,
) -> SharpnessResult:
    """Keskar et al.'s φ(θ, ε) (A = I); the parameters are restored exactly afterwards.

    The maximum of a non-concave loss over a box has many local maxima (a convex quadratic has
    one at many vertices); ``restarts`` runs L-BFGS-B from that many random starts and keeps
    the highest loss seen. Keskar et al. use one run, so the default is 1.
    """
    from scipy.optimize import minimize

    if not (math.isfinite(epsilon) and epsilon > 0):
        raise ValueError(f"epsilon must be a positive number (Keskar et al. use 1e-3 and 5e-4), got {epsilon!r}")
    _check_positive_int("max_iter", max_iter)
    _check_positive_int("restarts", restarts)
    params = list(params)
    if not params:
        raise ValueError("params is empty: pass the parameters to perturb (requires_grad=True)")
    originals = [p.detach().clone() for p in params]
    theta = torch.cat([p.reshape(-1) for p in originals]).double().cpu().numpy()
    radius = epsilon * (np.abs(theta) + 1.0)
    with torch.no_grad():
        base = float(closure())

    def set_params(z: np.ndarray) -> None:
        with torch.no_grad():
            offset = 0
            for p, p0 in zip(params, originals):
                n = p.numel()
                dz = torch.from_numpy(z[offset : offset + n]).reshape(p.shape).to(dtype=p.dtype, device=p.device)
                p.copy_(p0 + dz)
                offset += n

    best = [base]

    def negative_loss(z: np.ndarray) -> tuple[float, np.ndarray]:
        set_params(z)
        loss = closure()
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        value = float(loss.detach())
        if math.isfinite(value):
            best[0] = max(best[0], value)
        flat = torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(grads, params)])
        return -value, -flat.double().cpu().numpy()

    rng = np.random.default_rng(seed)
    bounds = list(zip(-radius, radius))
    try:
        for _ in range(restarts):
            z0 = rng.uniform(-radius, radius)
            minimize(negative_loss, z0, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": max_iter})
    finally:
        set_params(np.zeros_like(theta))
    value = 100.0 * (best[0] - base) / (1.0 + base)
    return SharpnessResult(value, base, best[0], epsilon)


def measure_sharpness(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epsilon: float = 1e-3,
    max_iter: int = 10,
    restarts: int = 1,
    power_iters: int = 100,
    trace_samples: int = 100,
    seed: int = 0,
) -> dict[str, float]:
    """All three measures on the batch ``(x, y)`` with the model in eval mode (no dropout
    noise, batch norm on its running statistics); the model's mode is restored.

    Returns ``{"loss", "hessian_top", "hessian_top_converged", "hessian_trace",
    "hessian_trace_stderr", "epsilon_sharpness", "epsilon"}``.
    """
    was_training = model.training
    model.eval()
    try:
        params = [p for p in model.parameters() if p.requires_grad]
        closure = batch_closure(model, loss_fn, x, y)
        eig = top_hessian_eigenvalue(closure, params, iters=power_iters, seed=seed)
        trace = hessian_trace(closure, params, samples=trace_samples, seed=seed)
        sharp = epsilon_sharpness(closure, params, epsilon=epsilon, max_iter=max_iter, restarts=restarts, seed=seed)
    finally:
        model.train(was_training)
    return {
        "loss": sharp.loss,
        "hessian_top": eig.value,
        "hessian_top_converged": float(eig.converged),
        "hessian_trace": trace.value,
        "hessian_trace_stderr": trace.std_error,
        "epsilon_sharpness": sharp.value,
        "epsilon": epsilon,
    }
