"""optimizer-paths: the test functions against NumPy, the batched trajectories against torch.optim
run one start and one lr at a time, the saddle's mini-batch gradients and SGD on them against NumPy,
the step count, and the quick run's figures."""

import math

import numpy as np
import pytest
import torch

from trainlab.reproduce import run_experiment
from trainlab.reproduce.optimizer_paths import (
    ESCAPED,
    FUNCTIONS,
    MINIBATCH,
    OPTIMIZERS,
    RIDGE_Y0,
    SADDLE_BATCH,
    SADDLE_SAMPLES,
    SPEEDUP,
    TUNING_SEED,
    f_values,
    minibatch_escape,
    minibatch_noise,
    race,
    ridge_table,
    saddle_samples,
    starts,
    steps_to_target,
    trajectories,
)
from trainlab.store import Store


def rosenbrock_np(x, y):
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


def rosenbrock_grad_np(x, y):
    return np.array([-2 * (1 - x) - 400 * x * (y - x**2), 200 * (y - x**2)])


NUMPY = {
    "Rosenbrock": rosenbrock_np,
    "Beale": lambda x, y: (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2,
    "saddle": lambda x, y: x**2 + y**4 / 4 - y**2 / 2,
}
MINIMA = {"Rosenbrock": [(1.0, 1.0)], "Beale": [(3.0, 0.5)], "saddle": [(0.0, 1.0), (0.0, -1.0)]}


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_functions_match_numpy_and_have_their_minima(name):
    fn = FUNCTIONS[name]
    pts = np.random.default_rng(0).uniform(-2, 2, (50, 2))
    np.testing.assert_allclose(f_values(fn.f, pts), NUMPY[name](pts[:, 0], pts[:, 1]), rtol=1e-12)
    for xy in MINIMA[name]:
        p = torch.tensor(xy, dtype=torch.float64, requires_grad=True)
        value = fn.f(p)
        value.backward()
        assert float(value.detach()) == pytest.approx(fn.f_min, abs=1e-12)
        assert p.grad.abs().max() < 1e-12


def test_saddle_point_is_a_saddle():
    p = torch.zeros(2, dtype=torch.float64)
    hessian = torch.autograd.functional.hessian(FUNCTIONS["saddle"].f, p)
    assert torch.allclose(hessian, torch.tensor([[2.0, 0.0], [0.0, -1.0]], dtype=torch.float64))


def test_plain_gradient_descent_follows_the_numpy_rule():
    start = np.array([[-1.2, 1.0], [0.5, 0.5]])
    path = trajectories(FUNCTIONS["Rosenbrock"].f, start, "SGD", [1e-3], 50)[0]
    for s in range(2):
        theta = start[s].copy()
        for t in range(1, 51):
            theta = theta - 1e-3 * rosenbrock_grad_np(*theta)  # θ_t = θ_{t−1} − α g_t (000 §7.2.1)
            np.testing.assert_allclose(path[s, t], theta, rtol=1e-12, atol=1e-14)


TORCH = {
    "SGD": lambda p, lr: torch.optim.SGD([p], lr=lr),
    "momentum": lambda p, lr: torch.optim.SGD([p], lr=lr, momentum=0.9),
    "Nesterov": lambda p, lr: torch.optim.SGD([p], lr=lr, momentum=0.9, nesterov=True),
    "AdaGrad": lambda p, lr: torch.optim.Adagrad([p], lr=lr),
    "RMSprop": lambda p, lr: torch.optim.RMSprop([p], lr=lr),
    "AdaDelta": lambda p, lr: torch.optim.Adadelta([p], lr=lr),
    "Adam": lambda p, lr: torch.optim.Adam([p], lr=lr),
    "Nadam": lambda p, lr: torch.optim.NAdam([p], lr=lr),
}


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_batched_runs_equal_separate_torch_runs(optimizer):
    """All starts × lrs in one loop = each (start, lr) alone with torch.optim's same algorithm."""
    fn, lrs = FUNCTIONS["saddle"], [1e-2, 1e-1]
    start = np.array([[1.0, 1e-3], [-0.5, 0.7], [0.3, -1.2]])
    paths = trajectories(fn.f, start, optimizer, lrs, 30)
    # torch keeps NAdam's momentum product μ_1···μ_t in float32 even for float64 parameters
    rtol = 1e-6 if optimizer == "Nadam" else 1e-10
    for i, lr in enumerate(lrs):
        for s in range(len(start)):
            p = torch.tensor(start[s], dtype=torch.float64, requires_grad=True)
            opt = TORCH[optimizer](p, lr)
            for t in range(1, 31):
                opt.zero_grad()
                fn.f(p).backward()
                opt.step()
                np.testing.assert_allclose(paths[i, s, t], p.detach().numpy(), rtol=rtol, atol=1e-12)


def test_a_diverged_run_turns_nan_and_leaves_the_others_alone():
    start = np.array([[-1.2, 1.0]])
    paths = trajectories(FUNCTIONS["Rosenbrock"].f, start, "SGD", [1.0, 1e-3], 20)
    assert np.isnan(paths[0, 0, -1]).all()  # lr 1 on a curvature of ~1000 blows up
    alone = trajectories(FUNCTIONS["Rosenbrock"].f, start, "SGD", [1e-3], 20)
    np.testing.assert_array_equal(paths[1], alone[0])


def saddle_grad_np(x, y):
    return np.array([2 * x, y**3 - y])


def test_the_saddles_empirical_risk_has_the_saddle_as_its_full_batch():
    uv = saddle_samples()
    assert uv.shape == (SADDLE_SAMPLES, 2) and np.abs(uv.sum(0)).max() < 1e-12
    assert 0.7 < uv.std() < 1.3  # N(0, 1) draws
    x, y = 0.3, -0.2
    per_sample = [saddle_grad_np(x, y) + uv[i] for i in range(SADDLE_SAMPLES)]  # ∇[saddle + u_i x + v_i y]
    np.testing.assert_allclose(np.mean(per_sample, 0), saddle_grad_np(x, y), atol=1e-12)


def test_minibatch_noise_is_the_mean_of_each_steps_batch_and_epochs_cover_every_sample():
    uv, per_epoch = saddle_samples(), SADDLE_SAMPLES // SADDLE_BATCH
    noise = minibatch_noise([0, 3], 2 * per_epoch + 5)
    assert noise.shape == (2, 2 * per_epoch + 5, 2)
    for row in noise:
        for e in range(2):  # an epoch's batches partition the samples, whose terms sum to zero
            np.testing.assert_allclose(row[e * per_epoch : (e + 1) * per_epoch].sum(0), 0.0, atol=1e-12)
    np.testing.assert_array_equal(minibatch_noise([3], 7)[0], noise[1, :7])  # a seed's batch order is its own
    assert not np.allclose(noise[0], noise[1])
    # each step's noise is the mean of K distinct samples' terms: with the seed's permutation, exactly
    order = np.random.default_rng([0, 1]).permutation(SADDLE_SAMPLES)
    np.testing.assert_allclose(noise[0, 0], uv[order[:SADDLE_BATCH]].mean(0), rtol=1e-12)
    np.testing.assert_allclose(noise[0, 1], uv[order[SADDLE_BATCH : 2 * SADDLE_BATCH]].mean(0), rtol=1e-12)


def test_minibatch_sgd_follows_the_numpy_rule():
    start, lr, steps = starts("saddle", [0, 1]), 0.3, 40
    paths = minibatch_escape(lr, start, [0, 1], steps)
    noise = minibatch_noise([0, 1], steps)
    for s in range(2):
        theta = start[s].copy()
        for t in range(1, steps + 1):
            theta = theta - lr * (saddle_grad_np(*theta) + noise[s, t - 1])  # θ_t = θ_{t−1} − α g_B
            np.testing.assert_allclose(paths[s, t], theta, rtol=1e-12, atol=1e-14)


def _gd_escape_steps_np(y0, lr, steps):
    theta = np.array([1.0, y0])
    for t in range(steps + 1):
        if NUMPY["saddle"](*theta) - (-0.25) <= ESCAPED:
            return t
        theta = theta - lr * saddle_grad_np(*theta)
    return steps + 1


def test_ridge_table_gradient_descent_stalls_in_proportion_to_log_y0_and_never_leaves_the_ridge():
    lr, steps = 0.3, 400
    table = ridge_table(lr, [0, 1], steps)
    assert table["SGD"] == [_gd_escape_steps_np(y0, lr, steps) for y0 in RIDGE_Y0]
    assert table["SGD"][-1] == steps + 1  # y0 = 0: the gradient has no y component, ever
    # y grows by (1 + α) per step: each factor 1000 closer to the ridge costs log(1000)/log(1.3) ≈ 26 steps
    gaps = np.diff(table["SGD"][:-1])
    assert np.all(np.abs(gaps - np.log(1000) / np.log(1 + lr)) <= 2)
    assert max(table[MINIBATCH]) < table["SGD"][1]  # the noise escapes whatever y0 is


def test_steps_to_target():
    values = np.array(
        [
            [5.0, 1.0, 1e-4, 2.0],  # first at step 2 (a later rise does not matter)
            [5.0, 4.0, 3.0, 2.0],  # never: steps + 1 = 4
            [5.0, np.nan, np.nan, np.nan],  # diverged: never
            [-0.2495, 0.0, 0.0, 0.0],  # f* = −0.25: within 1e-3 at step 0
        ]
    )
    f_min = np.array([[0.0], [0.0], [0.0], [-0.25]])
    assert steps_to_target(values, f_min).tolist() == [2, 4, 4, 0]
    assert steps_to_target(values[3:], -0.25, ESCAPED).tolist() == [0]


def test_race_picks_the_lr_on_the_tuning_start_only():
    grid = [1e-3, 1e-2, 1e-1]
    lr, paths = race("saddle", "Adam", grid, [0, 1], 200)
    fn = FUNCTIONS["saddle"]
    tuning = f_values(fn.f, trajectories(fn.f, starts("saddle", [TUNING_SEED]), "Adam", grid, 200)[:, 0])
    hits = steps_to_target(tuning, fn.f_min, fn.target)
    assert lr == grid[int(np.argmin(hits))] and hits.min() <= 200
    np.testing.assert_allclose(
        paths, trajectories(fn.f, starts("saddle", [0, 1]), "Adam", [lr], 200)[0], rtol=1e-12, atol=1e-15
    )


def test_starts_move_a_little_and_repeat_per_seed():
    a, b = starts("Rosenbrock", [0, 1]), starts("Rosenbrock", [0, 1])
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - np.array([-1.2, 1.0])).max() < 0.3 and not np.allclose(a[0], a[1])
    y0 = starts("saddle", list(range(20)))[:, 1]
    assert ((y0 >= 1e-7) & (y0 <= 1e-5)).all()


@pytest.mark.slow
def test_quick_run_figures(tmp_path):
    store = Store(tmp_path / "r.db")
    _, outcome, seeds = run_experiment("optimizer-paths", quick=True, store=store, log=lambda _: None)
    f = outcome.figures
    for fname in FUNCTIONS:
        for opt in OPTIMIZERS:
            assert f["lr"][fname][opt] in f["lr_grid"]
            assert len(f["steps_to_target"][fname][opt]) == seeds
            assert all(0 <= h <= f["steps"] + 1 for h in f["steps_to_target"][fname][opt])
    # the checks use mean log10 step counts, recomputed here from the figures
    log = lambda fname, opt: np.log10(f["steps_to_target"][fname][opt])  # noqa: E731
    c = f["checks"]["Rosenbrock momentum"]
    assert c["diff"] == pytest.approx(np.mean(log("Rosenbrock", "momentum")) - np.mean(log("Rosenbrock", "SGD")))
    c = f["checks"]["saddle mini-batch SGD"]
    assert c["diff"] == pytest.approx(np.mean(log("saddle", MINIBATCH)) - np.mean(log("saddle", "SGD")))
    assert c["holds"] == (c["ci"][1] < -SPEEDUP)
    # the mini-batch arm at gradient descent's lr, its step counts from a NumPy loop of its own
    lr = f["lr"]["saddle"]["SGD"]
    assert f["lr"]["saddle"][MINIBATCH] == lr
    noise, expected = minibatch_noise(list(range(seeds)), f["steps"]), []
    for s, theta in enumerate(starts("saddle", list(range(seeds)))):
        values = [NUMPY["saddle"](*theta)]
        for t in range(f["steps"]):
            theta = theta - lr * (saddle_grad_np(*theta) + noise[s, t])
            values.append(NUMPY["saddle"](*theta))
        expected.append(next((t for t, v in enumerate(values) if v + 0.25 <= ESCAPED), f["steps"] + 1))
    assert f["steps_to_target"]["saddle"][MINIBATCH] == expected
    # the quick version reaches the full verdict on the saddle: mini-batch SGD escapes sooner
    assert c["holds"]
    assert outcome.holds == all(c["holds"] for c in f["checks"].values())
    runs = store.list_runs(group="reproduce/optimizer-paths/quick")
    assert len(runs) == len(OPTIMIZERS) * seeds
    for opt in OPTIMIZERS:
        stored = sorted(r.final["test_acc"] for r in runs if r.name.endswith(f"/{opt}"))
        assert stored == pytest.approx(sorted(f["mnist1d_test_acc"][opt]))
    assert len(outcome.plots) == 5 and all(svg.startswith("<svg") for _, svg in outcome.plots)
    assert not math.isnan(sum(sum(v) for per in f["final_gap"].values() for v in per.values()))
