"""Mean ± t-interval across seeds, against scipy's own t interval."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from trainlab.report.bands import align, mean_ci


def test_align_interpolates_inside_each_run_and_leaves_nan_outside():
    grid, m = align([(np.array([0, 10, 20]), np.array([1.0, 2.0, 3.0])), (np.array([5, 10]), np.array([4.0, 6.0]))])
    np.testing.assert_array_equal(grid, [0, 5, 10, 20])
    np.testing.assert_allclose(m[0], [1.0, 1.5, 2.0, 3.0])
    np.testing.assert_allclose(m[1], [np.nan, 4.0, 6.0, np.nan])


def test_align_drops_non_finite_points():
    grid, m = align([(np.array([0, 1, 2]), np.array([1.0, np.nan, 3.0]))])
    np.testing.assert_array_equal(grid, [0, 2])
    np.testing.assert_allclose(m[0], [1.0, 3.0])


def test_mean_ci_matches_scipy_t_interval_per_column():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(5, 7))
    m[0, 3] = np.nan  # one run missing at one step: n = 4 there
    m[1:, 6] = np.nan  # only one run at the last step: no band
    mean, low, high = mean_ci(m, 0.95)
    for j in range(6):
        col = m[:, j][np.isfinite(m[:, j])]
        ref = stats.t.interval(0.95, len(col) - 1, loc=col.mean(), scale=stats.sem(col))
        assert mean[j] == pytest.approx(col.mean())
        assert (low[j], high[j]) == pytest.approx(ref)
    assert mean[6] == m[0, 6] and np.isnan(low[6]) and np.isnan(high[6])


def test_mean_ci_rejects_a_bad_level():
    with pytest.raises(ValueError, match="level must be in \\(0, 1\\), got 95"):
        mean_ci(np.ones((2, 2)), 95)
