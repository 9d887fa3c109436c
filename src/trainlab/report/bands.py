"""Mean and confidence band of a metric across seeds, step by step.

Runs of one variant (same config, different seeds) are put on one step grid — the union of
their logged steps, each run linearly interpolated inside its own range and missing (NaN)
outside it, so a run that diverged early stops contributing where it stopped. At each step
with n ≥ 2 runs the band is Student's t interval of the mean,

    x̄ ± t_{(1+level)/2, n−1} · s / √n,     s the sample standard deviation (ddof = 1),

which is exact for normal data and honest (wide) with 3 seeds; a percentile bootstrap of 3
values can never be wider than their range (the comparison table's bootstrap interval is
``trainlab.compare.bootstrap_ci``). With one run there is no band, only the line.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def align(curves: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """``(steps, values)`` per run -> ``(grid, matrix)`` with one row per run (NaN outside a run's range)."""
    curves = [(np.asarray(s, dtype=np.float64), np.asarray(v, dtype=np.float64)) for s, v in curves]
    curves = [(s[np.isfinite(v)], v[np.isfinite(v)]) for s, v in curves]
    nonempty = [c for c in curves if len(c[0])]
    if not nonempty:
        return np.array([]), np.empty((len(curves), 0))
    grid = np.unique(np.concatenate([s for s, _ in nonempty]))
    matrix = np.full((len(curves), len(grid)), np.nan)
    for i, (s, v) in enumerate(curves):
        if len(s):
            inside = (grid >= s[0]) & (grid <= s[-1])
            matrix[i, inside] = np.interp(grid[inside], s, v)
    return grid, matrix


def mean_ci(matrix: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Column-wise mean and t-interval bounds over the non-NaN rows; bounds are NaN where n < 2."""
    from scipy import stats

    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    matrix = np.asarray(matrix, dtype=np.float64)
    n = np.sum(np.isfinite(matrix), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, np.nansum(matrix, axis=0) / np.maximum(n, 1), np.nan)
        dev = np.where(np.isfinite(matrix), matrix - mean, 0.0)
        sd = np.sqrt(np.sum(dev**2, axis=0) / np.maximum(n - 1, 1))
        half = np.where(
            n >= 2, stats.t.ppf((1 + level) / 2, np.maximum(n - 1, 1)) * sd / np.sqrt(np.maximum(n, 1)), np.nan
        )
    return mean, mean - half, mean + half
