"""Gaussian-process regression: the surrogate model of Bayesian optimization.

Kernel — Matérn ν = 5/2 with one length scale per input dimension (ARD),
Rasmussen & Williams, *GPML* (2006) eq. 4.17; Snoek, Larochelle & Adams (2012) §3.2 use it
for BO because the squared exponential is "unrealistically smooth"::

    r² = Σ_d (x_d - x'_d)² / ℓ_d²
    k(x, x') = σ² (1 + √5 r + 5 r² / 3) exp(-√5 r)

Posterior (GPML eqs. 2.25–2.26, with K = k(X, X) + σ_n² I = L Lᵀ, α = K⁻¹ y)::

    μ(x*)  = k*ᵀ α
    var(x*) = k(x*, x*) - ‖L⁻¹ k*‖²          (the latent f, without observation noise)

Hyperparameters θ = (ℓ_1..ℓ_D, σ², σ_n²) maximize the log marginal likelihood (GPML eq. 2.30)::

    log p(y | X, θ) = -½ yᵀ K⁻¹ y - Σ log L_ii - (n/2) log 2π

plus weak log-priors (a MAP estimate, as BoTorch does) that keep a fit on 5 points from
collapsing to absurd length scales: ℓ ~ Gamma(3, 6) (mean 0.5 of the unit cube),
σ² ~ Gamma(2, 0.15), σ_n² ~ Gamma(1.1, 3) (between BoTorch's rate 0.05, which lets
noise creep into fits of deterministic functions, and Optuna's 30, which makes noisy data
be explained by tiny length scales; tests check both cases). Targets are standardized first (zero mean,
unit variance), so these scales need no tuning per problem. The optimizer is L-BFGS-B
on log θ with the exact gradient in closed form (GPML eq. 5.9, :func:`neg_log_posterior_and_grad`,
float64; ``test_analytic_gradient_matches_autograd`` checks it against autograd).

The NNDL notes (``000_*.txt`` §7.6.3) name the method — Bayesian optimization / SMBO,
"predict from the configurations tried so far which one brings the largest gain" — without
formulas; the formulas above are the standard ones of the cited sources.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.optimize
import threadpoolctl
import torch

_SQRT5 = math.sqrt(5.0)
# Bounds on log θ, inputs in the unit cube and targets standardized.
_LOG_LS = (math.log(1e-3), math.log(30.0))
_LOG_SCALE = (math.log(1e-2), math.log(50.0))
_LOG_NOISE = (math.log(1e-9), math.log(2.0))
_JITTER = 1e-10
PRIORS = {"lengthscale": (3.0, 6.0), "scale": (2.0, 0.15), "noise": (1.1, 3.0)}  # Gamma(shape, rate)


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Run torch and BLAS (used by scipy's L-BFGS-B) on one thread inside the block.

    The GP's matrices are tiny (n <= a few hundred); with several threads each op pays a
    synchronization cost that, on a busy machine, makes a 50x50 op 50x slower.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpoolctl.threadpool_limits(1):
            yield
    finally:
        torch.set_num_threads(before)


def scaled_sq_dist(x1: torch.Tensor, x2: torch.Tensor, lengthscale: torch.Tensor) -> torch.Tensor:
    """r²_ab = Σ_d (x1_ad − x2_bd)² / ℓ_d², as ‖u_a‖² + ‖v_b‖² − 2 u_a·v_b with u = x1/ℓ, v = x2/ℓ:
    one matrix product instead of an (n, m, d) difference tensor (30x faster on the CPU at
    n = m = 200). Rounding can leave −1e-16 where points coincide: clamped to 0, and the
    diagonal of r²(x, x) is set to exactly 0."""
    u, v = x1 / lengthscale, x2 / lengthscale
    r2 = ((u * u).sum(1)[:, None] + (v * v).sum(1)[None, :] - 2.0 * (u @ v.T)).clamp_min(0.0)
    if x1 is x2:
        r2 = r2 * (1.0 - torch.eye(len(x1), dtype=r2.dtype))  # not in place: autograd may need r2
    return r2


def matern52(x1: torch.Tensor, x2: torch.Tensor, lengthscale: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Matérn-5/2 ARD kernel matrix between the rows of ``x1`` (n, d) and ``x2`` (m, d)."""
    r2 = scaled_sq_dist(x1, x2, lengthscale)
    # sqrt has an infinite derivative at 0; the clamp keeps gradients finite on the diagonal
    # (where the kernel's own derivative in r is 0 anyway).
    r = torch.sqrt(r2.clamp_min(1e-30))
    return scale * (1.0 + _SQRT5 * r + (5.0 / 3.0) * r2) * torch.exp(-_SQRT5 * r)


@dataclass(frozen=True)
class GPParams:
    """Fitted hyperparameters (in natural units)."""

    lengthscale: np.ndarray
    scale: float
    noise: float


def _unpack(raw: torch.Tensor, d: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return raw[:d].exp(), raw[d].exp(), raw[d + 1].exp()


def _log_gamma_prior(x: torch.Tensor, shape: float, rate: float) -> torch.Tensor:
    # Up to a constant; density of x itself (we optimize log x, the Jacobian adds log x).
    return ((shape - 1.0) * torch.log(x) - rate * x).sum()


def neg_log_posterior(
    raw: torch.Tensor, x: torch.Tensor, y: torch.Tensor, fixed_noise: float | None = None
) -> torch.Tensor:
    """-(log marginal likelihood + log prior) for ``raw = log θ``; ``y`` standardized."""
    d = x.shape[1]
    ls, scale, noise = _unpack(raw, d)
    if fixed_noise is not None:
        noise = torch.as_tensor(fixed_noise, dtype=x.dtype)
    k = matern52(x, x, ls, scale) + (noise + _JITTER) * torch.eye(len(x), dtype=x.dtype)
    chol = torch.linalg.cholesky(k)
    alpha = torch.cholesky_solve(y[:, None], chol)[:, 0]
    n = len(y)
    mll = -0.5 * (y @ alpha) - torch.log(torch.diagonal(chol)).sum() - 0.5 * n * math.log(2 * math.pi)
    prior = _log_gamma_prior(ls, *PRIORS["lengthscale"]) + _log_gamma_prior(scale, *PRIORS["scale"])
    if fixed_noise is None:
        prior = prior + _log_gamma_prior(noise, *PRIORS["noise"])
    return -(mll + prior)


def neg_log_posterior_and_grad(
    raw: torch.Tensor, x: torch.Tensor, y: torch.Tensor, fixed_noise: float | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`neg_log_posterior` and its gradient in ``raw = log θ``, in closed form.

    GPML eq. 5.9: ∂ log p(y | X, θ) / ∂θ_j = ½ tr((α αᵀ − K⁻¹) ∂K/∂θ_j). With W = α αᵀ − K⁻¹,
    Δ_d = x_d − x'_d and G = (5/3) σ² (1 + √5 r) exp(−√5 r) (so that ∂k/∂ log ℓ_d = G Δ_d²/ℓ_d²)::

        ∂/∂ log ℓ_d  = ½ Σ_ab W_ab G_ab Δ_abd² / ℓ_d²
        ∂/∂ log σ²   = ½ Σ_ab W_ab k_ab
        ∂/∂ log σ_n² = ½ σ_n² tr W

    and Σ_ab M_ab Δ_abd² = 2 Σ_a x_ad² (M 1)_a − 2 x_dᵀ M x_d for a symmetric M, so no n × n × d
    tensor is built. Several times faster than autograd through the Cholesky factor (the
    fit's cost at a few hundred trials); ``test_analytic_gradient_matches_autograd``.
    """
    d, n = x.shape[1], len(y)
    ls, scale, noise = _unpack(raw, d)
    if fixed_noise is not None:
        noise = torch.as_tensor(fixed_noise, dtype=x.dtype)
    r2 = scaled_sq_dist(x, x, ls)
    r = torch.sqrt(r2.clamp_min(1e-30))
    decay = torch.exp(-_SQRT5 * r)
    k = scale * (1.0 + _SQRT5 * r + (5.0 / 3.0) * r2) * decay
    chol = torch.linalg.cholesky(k + (noise + _JITTER) * torch.eye(n, dtype=x.dtype))
    alpha = torch.cholesky_solve(y[:, None], chol)[:, 0]
    w = torch.outer(alpha, alpha) - torch.cholesky_inverse(chol)
    wg = w * ((5.0 / 3.0) * scale * (1.0 + _SQRT5 * r) * decay)
    g_ls = (x * x * wg.sum(1, keepdim=True)).sum(0) - (x * (wg @ x)).sum(0)  # = ½ Σ WG Δ² per dimension
    grad = torch.cat([g_ls / ls**2, (0.5 * (w * k).sum())[None], (0.5 * noise * torch.trace(w))[None]])
    mll = -0.5 * (y @ alpha) - torch.log(torch.diagonal(chol)).sum() - 0.5 * n * math.log(2 * math.pi)
    # Gamma(a, b) log-priors (a − 1) log v − b v have derivative (a − 1) − b v in log v.
    (a_ls, b_ls), (a_s, b_s), (a_n, b_n) = PRIORS["lengthscale"], PRIORS["scale"], PRIORS["noise"]
    prior = _log_gamma_prior(ls, a_ls, b_ls) + _log_gamma_prior(scale, a_s, b_s)
    grad[:d] += (a_ls - 1.0) - b_ls * ls
    grad[d] += (a_s - 1.0) - b_s * scale
    if fixed_noise is None:
        prior = prior + _log_gamma_prior(noise, a_n, b_n)
        grad[d + 1] += (a_n - 1.0) - b_n * noise
    else:
        grad[d + 1] = 0.0
    return -(mll + prior), -grad


def fit_hyperparameters(
    x: np.ndarray, y: np.ndarray, *, noise: float | None = None, maxiter: int = 200, warm_start: GPParams | None = None
) -> GPParams:
    """MAP hyperparameters of a Matérn-5/2 ARD GP on standardized ``y`` (L-BFGS-B on log θ).

    ``noise`` fixes σ_n² (e.g. 1e-10 for a deterministic function) instead of fitting it.
    Two starts and the better one wins: the prior's typical values, and either short length
    scales or ``warm_start`` — the previous fit, which one more observation moves little, so
    its L-BFGS-B run takes a few iterations (BO refits after every trial).
    """
    xt = torch.as_tensor(x, dtype=torch.float64)
    yt = torch.as_tensor(y, dtype=torch.float64)
    d = x.shape[1]
    bounds = [_LOG_LS] * d + [_LOG_SCALE, _LOG_NOISE]

    def fun(raw_np: np.ndarray) -> tuple[float, np.ndarray]:
        try:
            loss, grad = neg_log_posterior_and_grad(torch.as_tensor(raw_np, dtype=torch.float64), xt, yt, noise)
        except torch.linalg.LinAlgError:  # an ill-conditioned corner; steer away from it
            return 1e10, np.zeros_like(raw_np)
        return loss.item(), grad.numpy()

    starts = [np.array([math.log(0.5)] * d + [0.0, math.log(1e-3)])]
    if warm_start is not None and len(warm_start.lengthscale) == d:
        raw0 = np.log([*warm_start.lengthscale, warm_start.scale, warm_start.noise if noise is None else 1e-3])
        starts.append(np.clip(raw0, [b[0] for b in bounds], [b[1] for b in bounds]))
    else:
        starts.append(np.array([math.log(0.15)] * d + [0.0, math.log(1e-6)]))
    best = None
    for start in starts:
        res = scipy.optimize.minimize(
            fun, start, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": maxiter, "ftol": 1e-7}
        )
        if best is None or res.fun < best.fun:
            best = res
    assert best is not None  # starts is never empty
    raw = best.x
    return GPParams(np.exp(raw[:d]), float(np.exp(raw[d])), noise if noise is not None else float(np.exp(raw[d + 1])))


class GaussianProcess:
    """The posterior of a zero-mean GP on standardized targets, given fixed hyperparameters.

    ``y`` is standardized internally; :meth:`predict` returns mean and variance in the
    original units. Rows of ``x`` are points in the unit cube.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, params: GPParams):
        self.params = params
        self.y_mean = float(np.mean(y))
        self.y_std = float(np.std(y)) or 1.0
        self.x = torch.as_tensor(x, dtype=torch.float64)
        ys = torch.as_tensor((np.asarray(y) - self.y_mean) / self.y_std, dtype=torch.float64)
        self._ls = torch.as_tensor(params.lengthscale, dtype=torch.float64)
        self._scale = torch.as_tensor(params.scale, dtype=torch.float64)
        k = matern52(self.x, self.x, self._ls, self._scale)
        k = k + (params.noise + _JITTER) * torch.eye(len(self.x), dtype=torch.float64)
        self._chol = torch.linalg.cholesky(k)
        self._alpha = torch.cholesky_solve(ys[:, None], self._chol)[:, 0]

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, *, noise: float | None = None) -> GaussianProcess:
        """Standardize ``y``, fit hyperparameters by MAP, and condition on ``(x, y)``."""
        y = np.asarray(y, dtype=float)
        ys = (y - y.mean()) / (y.std() or 1.0)
        return cls(x, y, fit_hyperparameters(np.asarray(x, dtype=float), ys, noise=noise))

    def predict(self, xs: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and latent variance at the rows of ``xs``; differentiable in ``xs``."""
        xs = torch.as_tensor(xs, dtype=torch.float64)
        ks = matern52(xs, self.x, self._ls, self._scale)
        mean = ks @ self._alpha
        v = torch.linalg.solve_triangular(self._chol, ks.T, upper=False)
        var = (self._scale - (v * v).sum(0)).clamp_min(0.0)
        return mean * self.y_std + self.y_mean, var * self.y_std**2
