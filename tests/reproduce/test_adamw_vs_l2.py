"""adamw-vs-l2: the best-λ refinement, the coupling slope and its bootstrap against independent
NumPy computations; the quick run's figures tied to the store's records."""

import math

import numpy as np
import pytest

from trainlab.reproduce import run_experiment
from trainlab.reproduce.adamw_vs_l2 import (
    COUPLED_BELOW,
    DECOUPLED_WITHIN,
    QUICK_GRIDS,
    QUICK_LRS,
    best_log_lambda,
    config,
    coupling,
    interval_check,
    label,
    slope,
)
from trainlab.reproduce.checks import bootstrap
from trainlab.store import Store

GROUP = "reproduce/adamw-vs-l2/quick"


def test_best_log_lambda_finds_a_parabolas_vertex_between_grid_points_and_stops_at_the_edges():
    x = np.log10([1e-4, 1e-3, 1e-2, 1e-1])
    for vertex in (-2.8, -2.3, -2.0, -1.6):
        y = 0.7 - 0.05 * (x - vertex) ** 2  # a parabola in log λ: its vertex is recovered exactly
        assert best_log_lambda(y, x) == pytest.approx(vertex)
    assert best_log_lambda(np.array([0.9, 0.5, 0.4, 0.3]), x) == pytest.approx(-4.0)  # best at the low edge
    assert best_log_lambda(np.array([0.1, 0.5, 0.6, 0.7]), x) == pytest.approx(-1.0)  # and at the high edge
    assert best_log_lambda(np.array([0.5, 0.6, 0.6, 0.6]), x) == pytest.approx(-2.5)  # a tie: the first, half a step on
    assert best_log_lambda(np.array([0.6, 0.6, 0.6, 0.6]), x) == pytest.approx(-4.0)  # flat: the first, unmoved
    # one vertex per row of a stack: the refinement is vectorized over leading axes
    rows = np.stack([0.7 - 0.05 * (x - v) ** 2 for v in (-2.8, -1.6)])
    out = best_log_lambda(rows[None], x)
    assert out.shape == (1, 2) and out[0] == pytest.approx([-2.8, -1.6])


def test_slope_is_the_least_squares_fit_and_coupling_reads_the_diagonal():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=5), rng.normal(size=(3, 5))
    assert slope(x, y) == pytest.approx([np.polyfit(x, row, 1)[0] for row in y])
    lrs, grid = (1e-4, 1e-3, 1e-2), tuple(10.0**k for k in range(-6, 1))
    lx, gx = np.log10(lrs), np.log10(grid)
    # accuracy that depends on the product αλ only (a diagonal ridge at αλ = 1e-6): slope −1;
    # on λ only (a ridge at λ = 1e-3 whatever α): slope 0
    diagonal = np.array([[-((a + g + 6.0) ** 2) for g in gx] for a in lx])
    separable = np.array([[-((g + 3.0) ** 2) for g in gx] for a in lx])
    assert coupling(diagonal, lrs, grid) == pytest.approx(-1.0)
    assert coupling(separable, lrs, grid) == pytest.approx(0.0)


def test_bootstrap_resamples_whole_seeds_as_an_independent_loop_does():
    rng = np.random.default_rng(1)
    values = rng.normal(size=(5, 3, 4))
    stat = lambda m: m[:, 0, :].sum(-1) - m[:, 2, 1]  # noqa: E731  any statistic of the mean grid
    value, (lo, hi) = bootstrap(values, stat, n_resamples=500, seed=3)
    draws = np.random.default_rng(3).integers(0, 5, (500, 5))
    loop = [values[list(d)].mean(0)[0].sum() - values[list(d)].mean(0)[2, 1] for d in draws]
    assert value == pytest.approx(values.mean(0)[0].sum() - values.mean(0)[2, 1])
    assert (lo, hi) == pytest.approx(tuple(np.quantile(loop, [0.025, 0.975])))
    one = bootstrap(values[:1], stat)  # one seed: nothing to resample
    assert one[1] == pytest.approx((one[0], one[0]))


def test_interval_check_needs_the_whole_interval_inside():
    assert interval_check(-0.9, (-1.2, -0.6), -math.inf, -0.5, "s").holds
    assert not interval_check(-0.9, (-1.2, -0.4), -math.inf, -0.5, "s").holds
    assert interval_check(0.1, (-0.3, 0.4), -0.5, 0.5, "s").holds
    assert not interval_check(0.1, (-0.6, 0.4), -0.5, 0.5, "s").holds
    assert not interval_check(math.nan, (math.nan, math.nan), -0.5, 0.5, "s").holds
    assert "not inside (-0.5, 0.5)" in interval_check(0.1, (-0.6, 0.4), -0.5, 0.5, "s").statement


def test_config_passes_the_papers_decay_per_step_to_torchs_adamw_as_lambda_over_alpha():
    l2, adamw = config("Adam + L2", 3e-3, 1e-4, quick=False), config("AdamW", 3e-3, 1e-4, quick=False)
    assert l2["optim"] == {"name": "adam", "lr": 3e-3, "weight_decay": 1e-4}
    assert adamw["optim"]["name"] == "adamw" and adamw["optim"]["weight_decay"] == pytest.approx(1e-4 / 3e-3)
    # torch's AdamW shrinks θ by lr·weight_decay = the paper's λ per step (times η_t)
    assert adamw["optim"]["lr"] * adamw["optim"]["weight_decay"] == pytest.approx(1e-4)
    assert l2["schedule"] == {"name": "cosine"} and l2["train"]["epochs"] == 100 and "subset" not in l2["data"]
    assert COUPLED_BELOW == -0.5 and DECOUPLED_WITHIN == 0.5  # halfway between −1 (coupled) and 0


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("adamw") / "r.db")
    _, outcome, seeds = run_experiment("adamw-vs-l2", quick=True, store=store, log=lambda _: None)
    return store, outcome, seeds


def test_quick_run_figures_match_the_store(quick):
    store, outcome, seeds = quick
    f = outcome.figures
    records = store.list_runs(group=GROUP)
    assert len(records) == seeds * len(QUICK_LRS) * (1 + sum(len(g) for g in QUICK_GRIDS.values()))
    by_name = {}
    for r in records:
        by_name.setdefault(r.name, []).append(r)
    for arm, grid in QUICK_GRIDS.items():
        for lr in QUICK_LRS:
            for lam in grid:
                runs = sorted(by_name[f"{GROUP}/{label(arm, lr, lam)}"], key=lambda r: r.seed)
                assert [r.seed for r in runs] == list(range(seeds))
                optim = runs[0].config["optim"]
                decay = optim["lr"] * optim["weight_decay"] if arm == "AdamW" else optim["weight_decay"]
                assert decay == pytest.approx(lam)
                for key in ("val_acc", "test_acc"):
                    assert f[arm][key][f"{lr:g}"][f"{lam:g}"] == pytest.approx([r.final[key] for r in runs])
        plain = sorted(by_name[f"{GROUP}/{label('no decay', lr, 0.0)}"], key=lambda r: r.seed)
        assert [r.config["optim"]["weight_decay"] for r in plain] == [0.0] * seeds


def test_quick_run_slopes_and_verdict_from_the_figures(quick):
    _, outcome, _ = quick
    f = outcome.figures
    x = np.log10(QUICK_LRS)
    for arm, grid in QUICK_GRIDS.items():
        g = np.log10(grid)
        mean = np.array([[np.mean(f[arm]["val_acc"][f"{lr:g}"][f"{lam:g}"]) for lam in grid] for lr in QUICK_LRS])
        best = []
        for row in mean:  # the refinement, written out: argmax, then the parabola's vertex inside the grid
            i = int(np.argmax(row))
            if 0 < i < len(row) - 1 and row[i - 1] - 2 * row[i] + row[i + 1] < 0:
                a, b, _ = np.polyfit(g[i - 1 : i + 2], row[i - 1 : i + 2], 2)
                best.append(-b / (2 * a))
            else:
                best.append(g[i])
        assert np.log10(f["best_lambda"][arm]) == pytest.approx(best)
        assert f["slope"][arm]["value"] == pytest.approx(np.polyfit(x, best, 1)[0])
        lo, hi = f["slope"][arm]["ci"]
        assert lo <= hi
    checks = f["checks"]
    assert checks["coupled"]["holds"] == (checks["coupled"]["ci"][1] < COUPLED_BELOW)
    c = checks["decoupled"]["ci"]
    assert checks["decoupled"]["holds"] == (c[0] > -DECOUPLED_WITHIN and c[1] < DECOUPLED_WITHIN)
    assert outcome.holds == (checks["coupled"]["holds"] and checks["decoupled"]["holds"])
    assert f["slope_torch_lambda"]["AdamW"] == pytest.approx(f["slope"]["AdamW"]["value"] - 1)
    assert len(outcome.plots) == 2 and all(svg.startswith("<svg") for _, svg in outcome.plots)
