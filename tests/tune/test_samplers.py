import itertools
import math

import mpmath
import numpy as np
import pytest
import scipy.stats
import torch

from trainlab.errors import ConfigError
from trainlab.tune import GP, Categorical, Float, Grid, Int, Random, Space, minimize
from trainlab.tune.acquisition import log_expected_improvement, log_h, log_probability_of_improvement
from trainlab.tune.gp import GaussianProcess, GPParams, fit_hyperparameters, neg_log_posterior
from trainlab.tune.samplers import grid_points
from trainlab.tune.trial import COMPLETE, RUNNING, FrozenTrial


def branin(p):
    x1, x2 = p["x1"], p["x2"]
    b, c, t = 5.1 / (4 * np.pi**2), 5 / np.pi, 1 / (8 * np.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * np.cos(x1) + 10


BRANIN = {"x1": Float(-5, 10), "x2": Float(0, 15)}
BRANIN_MIN = 0.397887357729738


# -- grid ---------------------------------------------------------------------------------


def test_grid_enumerates_exactly_the_product():
    space = Space({"a": Categorical(["x", "y", "z"]), "b": Int(1, 4), "c": Float(1e-3, 1e-1, log=True, steps=3)})
    points = grid_points(space)
    expected = list(itertools.product(["x", "y", "z"], [1, 2, 3, 4], [1e-3, 1e-2, 1e-1]))
    assert [(p["a"], p["b"], round(p["c"], 12)) for p in points] == [(a, b, round(c, 12)) for a, b, c in expected]
    study = minimize(lambda p: p["b"], space, sampler=Grid(), n_trials=1000)
    assert len(study.trials) == 36  # stops when the grid is exhausted
    assert sorted((t.params["a"], t.params["b"], round(t.params["c"], 12)) for t in study.trials) == sorted(
        (a, b, round(c, 12)) for a, b, c in expected
    )


def test_grid_with_conditions_is_the_product_per_branch():
    space = Space(
        {
            "opt": Categorical(["sgd", "adam"]),
            "mom": Categorical([0.0, 0.9], when={"opt": "sgd"}),
            "lr": Float(0.1, 0.3, steps=3),
        }
    )
    points = grid_points(space)
    assert len(points) == 2 * 3 + 1 * 3
    assert all(("mom" in p) == (p["opt"] == "sgd") for p in points)


def test_grid_refuses_continuous_range_without_steps():
    space = Space({"lr": Float(0.0, 1.0)})
    with pytest.raises(ConfigError, match="parameter 'lr'.*cannot be enumerated.*steps"):
        Grid().sample(space, [], number=0, seed=0)
    assert [p["lr"] for p in grid_points(space, steps=5)] == pytest.approx([0, 0.25, 0.5, 0.75, 1.0])


# -- random -------------------------------------------------------------------------------


def test_random_is_uniform_and_seeded():
    space = Space({"u": Float(2.0, 5.0), "lu": Float(1e-4, 1.0, log=True), "c": Categorical(list("abcd"))})
    draws = [Random().sample(space, [], number=n, seed=7) for n in range(4000)]
    u = np.array([d["u"] for d in draws])
    lu = np.log10([d["lu"] for d in draws])
    assert scipy.stats.kstest(u, scipy.stats.uniform(2.0, 3.0).cdf).pvalue > 1e-3
    assert scipy.stats.kstest(lu, scipy.stats.uniform(-4.0, 4.0).cdf).pvalue > 1e-3
    counts = np.unique([d["c"] for d in draws], return_counts=True)[1]
    assert scipy.stats.chisquare(counts).pvalue > 1e-3
    # a non-uniform sample fails the same test (the test can fail)
    assert scipy.stats.kstest(u**1.1 / 5**0.1, scipy.stats.uniform(2.0, 3.0).cdf).pvalue < 1e-3
    again = [Random().sample(space, [], number=n, seed=7) for n in range(50)]
    other = [Random().sample(space, [], number=n, seed=8) for n in range(50)]
    assert again == draws[:50] and other != draws[:50]


def test_sobol_covers_more_evenly_than_iid():
    space = Space({"a": Float(0, 1), "b": Float(0, 1)})

    def discrepancy(sampler):
        pts = np.array([[p["a"], p["b"]] for p in (sampler.sample(space, [], number=n, seed=3) for n in range(128))])
        return scipy.stats.qmc.discrepancy(pts)

    assert discrepancy(Random(qmc=True)) < 0.3 * discrepancy(Random())


# -- the Gaussian process -----------------------------------------------------------------


def numpy_matern52(a, b, ls, scale):
    r = np.sqrt((((a[:, None, :] - b[None, :, :]) / ls) ** 2).sum(-1))
    return scale * (1 + np.sqrt(5) * r + 5 * r**2 / 3) * np.exp(-np.sqrt(5) * r)


def test_gp_posterior_matches_numpy_reference():
    rng = np.random.default_rng(0)
    x, xs = rng.random((12, 3)), rng.random((30, 3))
    y = np.sin(6 * x[:, 0]) + x[:, 1] ** 2 - x[:, 2]
    params = GPParams(np.array([0.3, 0.5, 0.8]), 1.7, 1e-3)
    mean, var = GaussianProcess(x, y, params).predict(xs)
    # GPML eqs. 2.25-2.26 on standardized targets, written independently.
    m, s = y.mean(), y.std()
    k = numpy_matern52(x, x, params.lengthscale, params.scale) + (params.noise + 1e-10) * np.eye(12)
    ks = numpy_matern52(xs, x, params.lengthscale, params.scale)
    ref_mean = ks @ np.linalg.solve(k, (y - m) / s) * s + m
    ref_var = (params.scale - np.einsum("ij,ji->i", ks, np.linalg.solve(k, ks.T))) * s**2
    np.testing.assert_allclose(mean.numpy(), ref_mean, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(var.numpy(), ref_var, rtol=1e-7, atol=1e-9)


def test_marginal_likelihood_matches_scipy():
    rng = np.random.default_rng(1)
    x, y = rng.random((10, 2)), rng.standard_normal(10)

    def reference(ls, scale, noise):  # -log N(y; 0, K) - log Gamma priors (up to constants)
        k = numpy_matern52(x, x, np.array(ls), scale) + (noise + 1e-10) * np.eye(10)
        lp = scipy.stats.multivariate_normal(np.zeros(10), k).logpdf(y)
        lp += sum(scipy.stats.gamma(3, scale=1 / 6).logpdf(length) for length in ls)
        lp += scipy.stats.gamma(2, scale=1 / 0.15).logpdf(scale) + scipy.stats.gamma(1.1, scale=1 / 3).logpdf(noise)
        return -lp

    def ours(ls, scale, noise):
        raw = torch.log(torch.tensor([*ls, scale, noise], dtype=torch.float64))
        return float(neg_log_posterior(raw, torch.as_tensor(x), torch.as_tensor(y)))

    a, b = ([0.2, 0.7], 1.3, 1e-2), ([0.9, 0.1], 0.6, 0.3)
    assert ours(*a) - ours(*b) == pytest.approx(reference(*a) - reference(*b), rel=1e-9)


def test_gp_interpolates_noise_free_data_and_ei_is_zero_there():
    rng = np.random.default_rng(2)
    x = rng.random((15, 2))
    y = np.array([branin({"x1": -5 + 15 * a, "x2": 15 * b}) for a, b in x])
    gp = GaussianProcess.fit(x, y, noise=1e-10)
    mean, var = gp.predict(x)
    np.testing.assert_allclose(mean.numpy(), y, rtol=1e-5, atol=1e-5 * y.std())
    assert float(var.max()) < 1e-8 * y.var()
    std = var.clamp_min(1e-20).sqrt()
    ei = torch.exp(log_expected_improvement(mean, std, float(y.min())))
    assert float(ei.max()) < 1e-5 * y.std()
    # ... while between the observations EI is clearly positive somewhere
    grid = torch.as_tensor(rng.random((500, 2)))
    m2, v2 = gp.predict(grid)
    assert (
        float(torch.exp(log_expected_improvement(m2, v2.clamp_min(1e-20).sqrt(), float(y.min()))).max())
        > 1e-3 * y.std()
    )


def test_fitted_noise_stays_small_on_smooth_data_and_grows_on_noisy():
    rng = np.random.default_rng(3)
    x = rng.random((30, 1))
    smooth = np.sin(4 * x[:, 0])
    noisy = smooth + 0.5 * rng.standard_normal(30)
    standardize = lambda v: (v - v.mean()) / v.std()  # noqa: E731
    assert fit_hyperparameters(x, standardize(smooth)).noise < 1e-6
    # the added noise is ~40% of the variance; the fit must attribute most of it to noise
    assert 0.2 < fit_hyperparameters(x, standardize(noisy)).noise < 0.7


# -- acquisitions -------------------------------------------------------------------------


def test_log_ei_and_log_pi_match_the_closed_form():
    rng = np.random.default_rng(4)
    mean, std, best = rng.normal(size=200), rng.uniform(0.1, 2, size=200), 0.3
    z = (best - mean) / std
    ei = (best - mean) * scipy.stats.norm.cdf(z) + std * scipy.stats.norm.pdf(z)  # Jones et al. 1998, eq. 15
    ours = log_expected_improvement(torch.as_tensor(mean), torch.as_tensor(std), best).numpy()
    np.testing.assert_allclose(np.exp(ours), ei, rtol=1e-10)
    pi = log_probability_of_improvement(torch.as_tensor(mean), torch.as_tensor(std), best).numpy()
    np.testing.assert_allclose(pi, scipy.stats.norm.logcdf(z), rtol=1e-10)


@pytest.mark.parametrize("z", [-1e6, -1e3, -100.0, -40.0, -12.0, -3.0, -1.0, -0.5, 0.0, 2.0, 30.0])
def test_log_h_is_accurate_in_the_tails(z):
    mpmath.mp.dps = 50
    zz = mpmath.mpf(z)
    exact = mpmath.log(zz * mpmath.ncdf(zz) + mpmath.npdf(zz))
    assert float(log_h(torch.tensor([z], dtype=torch.float64))[0]) == pytest.approx(float(exact), rel=1e-9)


def test_log_ei_gradient_is_finite_far_from_improvement():
    mean = torch.tensor([50.0, 5.0], dtype=torch.float64, requires_grad=True)
    value = log_expected_improvement(mean, torch.tensor([1.0, 1.0], dtype=torch.float64), 0.0).sum()
    (grad,) = torch.autograd.grad(value, mean)
    assert torch.isfinite(grad).all() and (grad < 0).all()  # plain EI underflows to 0 at z = -50


# -- the GP sampler -----------------------------------------------------------------------


def regret(sampler, seed, n=24):
    study = minimize(branin, BRANIN, sampler=sampler, n_trials=n, seed=seed)
    return study.best_value - BRANIN_MIN


def test_gp_beats_random_on_branin():
    gp = [regret(GP(n_startup=6), s) for s in range(3)]
    rnd = [regret(Random(), s) for s in range(3)]
    assert np.median(gp) < 0.1 and np.median(gp) < 0.1 * np.median(rnd)


@pytest.mark.parametrize("acquisition", ["pi", "ucb"])
def test_other_acquisitions_also_make_progress(acquisition):
    assert regret(GP(acquisition, n_startup=6), 0) < 0.5


def test_constant_liar_keeps_parallel_asks_apart():
    space = Space(BRANIN)
    rng = np.random.default_rng(5)
    done = [FrozenTrial(n, COMPLETE, p, branin(p)) for n, p in enumerate(space.sample(rng) for _ in range(12))]
    sampler = GP()
    first = sampler.sample(space, done, number=12, seed=0)
    same = sampler.sample(space, done, number=12, seed=0)
    assert first == same  # deterministic given the history
    second = sampler.sample(space, [*done, FrozenTrial(12, RUNNING, first)], number=13, seed=0)
    gap = np.abs(space.to_unit(first) - space.to_unit(second)).max()
    assert gap > 0.02, (first, second)


def test_gp_handles_categorical_and_conditional_parameters():
    space = {
        "kind": Categorical(["flat", "bowl"]),
        "x": Float(-1, 1),
        "depth": Int(1, 5, when={"kind": "bowl"}),
    }

    def f(p):
        return 1.0 + p["x"] ** 2 if p["kind"] == "flat" else (p["x"] - 0.5) ** 2 + 0.1 * abs(p["depth"] - 3)

    study = minimize(f, space, sampler=GP(n_startup=5), n_trials=20, seed=0)
    best = study.best_params
    assert best["kind"] == "bowl" and best["depth"] == 3 and abs(best["x"] - 0.5) < 0.15
    assert all(("depth" in t.params) == (t.params["kind"] == "bowl") for t in study.trials)


def test_sampler_arguments_are_checked():
    with pytest.raises(ConfigError, match="unknown acquisition 'eii'.*did you mean 'ei'"):
        GP("eii")
    with pytest.raises(ConfigError, match="n_startup must be an integer >= 1, got 0"):
        GP(n_startup=0)
    with pytest.raises(ConfigError, match="Grid: steps must be an integer >= 2"):
        Grid(steps=1)
    assert math.isfinite(regret(GP(noise=1e-6, n_startup=3), 0, n=5))


def test_gp_counts_pruned_trials_and_does_not_propose_them_again():
    space = Space(BRANIN)
    rng = np.random.default_rng(6)
    done = [FrozenTrial(n, COMPLETE, p, branin(p)) for n, p in enumerate(space.sample(rng) for _ in range(12))]
    first = GP().sample(space, done, number=12, seed=0)
    worst = max(t.value for t in done)
    pruned = FrozenTrial(12, "pruned", first, value=worst, intermediate=[(1, worst)])
    second = GP().sample(space, [*done, pruned], number=13, seed=0)
    assert np.abs(space.to_unit(first) - space.to_unit(second)).max() > 0.02


@pytest.mark.parametrize("fixed_noise", [None, 1e-6])
def test_analytic_gradient_matches_autograd(fixed_noise):
    from trainlab.tune.gp import neg_log_posterior_and_grad

    rng = np.random.default_rng(7)
    x, y = torch.as_tensor(rng.random((25, 3))), torch.as_tensor(rng.standard_normal(25))
    for raw0 in ([-1.0, 0.3, -2.0, 0.2, -3.0], [-0.2, -0.7, 0.5, -0.5, -8.0]):
        raw = torch.tensor(raw0, dtype=torch.float64, requires_grad=True)
        value = neg_log_posterior(raw, x, y, fixed_noise)
        (expected,) = torch.autograd.grad(value, raw)
        got_value, got = neg_log_posterior_and_grad(raw.detach(), x, y, fixed_noise)
        assert float(got_value) == pytest.approx(float(value.detach()), rel=1e-12)
        np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-7, atol=1e-9)
