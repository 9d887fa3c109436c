"""Statistics the lab shares: which way a metric improves, bootstrap and Welch intervals.

One home for rules that were written out in several places (the Trainer's best values, early
stopping, the comparison table, the tuner's direction, the report's answer sentence), below
``train`` so that every layer can use them.

* :func:`mode_for` — accuracies are maximized, everything else (losses, errors) minimized.
* :func:`is_better` / :func:`best_of` — the improvement rule with a ``min_delta`` margin.
* :func:`bootstrap_ci` — percentile bootstrap CI of a mean (Efron & Tibshirani 1993).
* :func:`welch_interval` — Welch's t interval of a difference of means (Welch 1947)::

      d = x̄₁ − x̄₂,  se = √(s₁²/n₁ + s₂²/n₂)
      ν = se⁴ / ((s₁²/n₁)² / (n₁ − 1) + (s₂²/n₂)² / (n₂ − 1)),  d ± t_{(1+level)/2, ν} · se
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from trainlab.errors import ConfigError

Mode = Literal["min", "max"]


def mode_for(metric: str) -> Mode:
    """``"max"`` for an accuracy (any name containing ``acc``), ``"min"`` for anything else."""
    return "max" if "acc" in metric else "min"


def resolve_mode(metric: str, mode: str) -> Mode:
    """``auto`` becomes :func:`mode_for` ``(metric)``; ``min`` / ``max`` stay as given."""
    if mode in ("min", "max"):
        return mode  # type: ignore[return-value]
    if mode != "auto":
        raise ConfigError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    return mode_for(metric)


def is_better(value: float, best: float, mode: str, min_delta: float = 0.0) -> bool:
    """True when ``value`` improves on ``best`` by more than ``min_delta`` (NaN never does)."""
    if not math.isfinite(value):
        return False
    return value < best - min_delta if mode == "min" else value > best + min_delta


def best_of(values: Iterable[float], mode: str) -> float | None:
    """The best finite value (min or max), None when there is none."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return None
    return min(finite) if mode == "min" else max(finite)


def bootstrap_ci(
    values: np.ndarray | list[float], confidence: float = 0.95, n_resamples: int = 10_000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean (Efron & Tibshirani 1993).

    Resample the values with replacement ``n_resamples`` times, take each resample's mean,
    and return the (1-c)/2 and (1+c)/2 quantiles of those means. One value gives (v, v).
    """
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if x.size == 0:
        return (math.nan, math.nan)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_resamples, x.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(lo), float(hi)


@dataclass(frozen=True)
class Difference:
    estimate: float
    low: float
    high: float
    df: float

    @property
    def significant(self) -> bool:
        return self.low > 0 or self.high < 0


def welch_interval(
    mean1: float, sd1: float, n1: int, mean2: float, sd2: float, n2: int, level: float = 0.95
) -> Difference | None:
    """Welch's t interval of ``mean1 − mean2`` from summary statistics (``sd`` with ddof = 1);
    None when a group has fewer than two values."""
    from scipy import stats

    if n1 < 2 or n2 < 2:
        return None
    v1, v2 = sd1**2 / n1, sd2**2 / n2
    se = math.sqrt(v1 + v2)
    d = mean1 - mean2
    if se == 0:
        return Difference(d, d, d, math.inf)
    df = (v1 + v2) ** 2 / (v1**2 / (n1 - 1) + v2**2 / (n2 - 1))
    half = stats.t.ppf((1 + level) / 2, df) * se
    return Difference(d, d - half, d + half, df)
