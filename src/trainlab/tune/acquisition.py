"""Acquisition functions of Bayesian optimization, for *minimization*, in log space where it matters.

With the GP posterior mean μ(x), standard deviation s(x) and the best value so far
f* = min y, write z = (f* - μ) / s. Then (φ, Φ: standard normal pdf and cdf):

- Expected improvement (Močkus 1975; Jones, Schonlau & Welch 1998, eq. 15; Snoek et al. 2012 eq. 2)::

      EI(x) = E[max(f* - f(x), 0)] = s (z Φ(z) + φ(z)) = s · h(z)

  computed as ``log EI = log s + log h(z)`` with the numerically stable ``log h`` of
  Ament et al., "Unexpected Improvements to Expected Improvement" (NeurIPS 2023, eq. 9):
  for z ≤ -1, ``h(z) = φ(z) (1 - |z| √(π/2) erfcx(-z/√2))`` so
  ``log h = -z²/2 - log √(2π) + log1mexp(log(|z| erfcx(-z/√2)) + log √(π/2))``,
  and ``-z²/2 - log √(2π) - 2 log |z|`` beyond z < -1/√ε where even that underflows.
  Plain EI is exactly 0 in floating point for z below about -38, so an optimizer started
  there sees no gradient; log EI stays finite and informative.
- Probability of improvement (Kushner 1964): ``PI(x) = Φ(z)``, used as ``log Φ(z)``.
- Confidence bound (Srinivas et al. 2010, GP-UCB; for minimization the lower bound)::

      LCB(x) = μ(x) - √β s(x)   — maximize -LCB.

All take tensors and are differentiable, so the sampler refines candidates with L-BFGS-B.
The notes (``000_*.txt`` §7.6.3) name these three; torch has none of them, BoTorch's
``LogExpectedImprovement`` is the same log-EI (for maximization: z = (μ - f*)/s there).
"""

from __future__ import annotations

import math

import torch

_C1 = 0.5 * math.log(2 * math.pi)
_C2 = 0.5 * math.log(math.pi / 2)
_INV_SQRT_EPS = 1.0 / math.sqrt(torch.finfo(torch.float64).eps)


def _log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(x)) for x < 0 (Mächler 2012: switch at -log 2)."""
    return torch.where(x > -math.log(2.0), torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def log_h(z: torch.Tensor) -> torch.Tensor:
    """log(z Φ(z) + φ(z)), stable for all z (Ament et al. 2023, eq. 9)."""
    # Each branch is evaluated on inputs clamped into its own domain so the branches not
    # taken produce no inf/NaN that torch.where would leak into the gradient.
    z_hi = z.clamp_min(-1.0)
    direct = torch.log(z_hi * torch.special.ndtr(z_hi) + torch.exp(-0.5 * z_hi**2 - _C1))
    z_mid = z.clamp(-_INV_SQRT_EPS, -1.0)
    mid = -0.5 * z_mid**2 - _C1 + _log1mexp(torch.log(torch.special.erfcx(-z_mid / math.sqrt(2)) * z_mid.abs()) + _C2)
    z_lo = z.clamp_max(-_INV_SQRT_EPS)
    tail = -0.5 * z_lo**2 - _C1 - 2 * torch.log(z_lo.abs())
    return torch.where(z > -1.0, direct, torch.where(z > -_INV_SQRT_EPS, mid, tail))


def _z(mean: torch.Tensor, std: torch.Tensor, best: float) -> torch.Tensor:
    return (best - mean) / std


def log_expected_improvement(mean: torch.Tensor, std: torch.Tensor, best: float) -> torch.Tensor:
    """log EI(x) for minimization; ``std`` > 0 (callers clamp it)."""
    return torch.log(std) + log_h(_z(mean, std, best))


def log_probability_of_improvement(mean: torch.Tensor, std: torch.Tensor, best: float) -> torch.Tensor:
    """log PI(x) = log Φ((f* - μ) / s) for minimization."""
    return torch.special.log_ndtr(_z(mean, std, best))


def negative_lower_confidence_bound(
    mean: torch.Tensor, std: torch.Tensor, best: float, beta: float = 4.0
) -> torch.Tensor:
    """-(μ - √β s): larger is better; ``best`` is unused (kept for a uniform signature)."""
    return -(mean - math.sqrt(beta) * std)


ACQUISITIONS = {
    "ei": log_expected_improvement,
    "pi": log_probability_of_improvement,
    "ucb": negative_lower_confidence_bound,
}
