"""Statistical checks for the gallery's claims: never one lucky run.

A claim such as "A is larger than B" holds when the 95% bootstrap confidence interval of
mean(A) - mean(B) lies entirely above ``margin`` (resampling each group's seeds
independently). With few seeds the interval is wide, so a claim only holds when the effect
is large compared with the spread across seeds — which is the point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Check:
    holds: bool
    diff: float  # mean(a) - mean(b)
    ci: tuple[float, float]
    statement: str

    def as_dict(self) -> dict:
        return {"holds": self.holds, "diff": self.diff, "ci": list(self.ci), "statement": self.statement}


def diff_ci(
    a, b, confidence: float = 0.95, n_resamples: int = 10_000, seed: int = 0
) -> tuple[float, tuple[float, float]]:
    """Mean difference and its percentile-bootstrap CI, each group resampled on its own."""
    a = np.asarray([v for v in a if v is not None and math.isfinite(v)], dtype=np.float64)
    b = np.asarray([v for v in b if v is not None and math.isfinite(v)], dtype=np.float64)
    if a.size == 0 or b.size == 0:
        return math.nan, (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    ma = a[rng.integers(0, a.size, (n_resamples, a.size))].mean(1)
    mb = b[rng.integers(0, b.size, (n_resamples, b.size))].mean(1)
    lo, hi = np.quantile(ma - mb, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(a.mean() - b.mean()), (float(lo), float(hi))


def greater(a, b, *, margin: float = 0.0, what: str = "A - B", confidence: float = 0.95) -> Check:
    """``mean(a) > mean(b) + margin`` with the CI of the difference above ``margin``."""
    diff, (lo, hi) = diff_ci(a, b, confidence)
    holds = bool(math.isfinite(lo) and lo > margin)
    statement = (
        f"{what} = {diff:.4g}, {int(confidence * 100)}% CI [{lo:.4g}, {hi:.4g}] {'>' if holds else 'not >'} {margin:g}"
    )
    return Check(holds, diff, (lo, hi), statement)


def less(a, b, *, margin: float = 0.0, what: str = "A - B", confidence: float = 0.95) -> Check:
    """``mean(a) < mean(b) - margin`` with the CI of the difference below ``-margin``."""
    diff, (lo, hi) = diff_ci(a, b, confidence)
    holds = bool(math.isfinite(hi) and hi < -margin)
    statement = (
        f"{what} = {diff:.4g}, {int(confidence * 100)}% CI [{lo:.4g}, {hi:.4g}] {'<' if holds else 'not <'} {-margin:g}"
    )
    return Check(holds, diff, (lo, hi), statement)


def all_hold(*checks: Check) -> tuple[bool, str]:
    return all(c.holds for c in checks), "; ".join(c.statement for c in checks)


def bootstrap(
    values, statistic, *, confidence: float = 0.95, n_resamples: int = 2_000, seed: int = 0
) -> tuple[float, tuple[float, float]]:
    """``statistic`` of the mean over seeds of ``values`` (``[seeds, ...]``, one row per seed)
    and its percentile-bootstrap CI: the seeds resampled with replacement, each seed's row kept
    whole (its runs of every cell of a grid stay together). ``statistic`` maps a stack of means
    ``[k, ...]`` to ``[k]``."""
    v = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, v.shape[0], (n_resamples, v.shape[0]))
    stats = np.asarray(statistic(v[idx].mean(1)), dtype=np.float64)
    lo, hi = np.quantile(stats, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(np.asarray(statistic(v.mean(0)[None]))[0]), (float(lo), float(hi))
