"""random-vs-grid: the synthetic objective, the grid's layout, compute accounting, the quick run and its resumption."""

import math

import numpy as np
import pytest

from trainlab.reproduce import run_experiment
from trainlab.reproduce.random_vs_grid import (
    MARGIN,
    attempted,
    best_so_far,
    compute_to_target,
    objective,
    optimum,
    search_space,
    trial_evaluations,
)
from trainlab.store import Store
from trainlab.tune import Grid, minimize
from trainlab.tune.storage import StudyStorage
from trainlab.tune.trial import FrozenTrial


def test_objective_is_the_weighted_squared_distance():
    c = np.array([0.2, 0.7, 0.5])
    x = {"x0": 0.5, "x1": 0.3, "x2": 1.0}
    # 1·0.3² + 1·0.4² + 0.01·0.5²
    assert objective(x, c) == pytest.approx(0.09 + 0.16 + 0.0025)
    assert objective({"x0": 0.2, "x1": 0.7, "x2": 0.5}, c) == 0.0


def test_optimum_is_fixed_per_seed_and_inside_the_cube():
    assert np.array_equal(optimum(3), optimum(3)) and not np.array_equal(optimum(3), optimum(4))
    assert all(0 <= v <= 1 for s in range(20) for v in optimum(s))


def test_grid_tries_the_27_cell_centres():
    study = minimize(lambda p: 0.0, search_space(grid=True), sampler=Grid(), n_trials=40)
    points = {tuple(round(t.params[f"x{i}"], 12) for i in range(3)) for t in study.trials}
    centres = [1 / 6, 1 / 2, 5 / 6]
    assert len(study.trials) == 27  # the grid is exhausted after 3^3 trials
    assert points == {(round(a, 12), round(b, 12), round(c, 12)) for a in centres for b in centres for c in centres}


def test_compute_to_target_counts_steps_until_the_first_hit():
    trials = [[(5, 0.1), (10, 0.2)], [(5, 0.1)], [(5, 0.3), (10, 0.6)]]
    assert compute_to_target(trials, 0.25) == (10 + 5 + 5, True)
    assert compute_to_target(trials, 0.9) == (10 + 5 + 10, False)
    assert compute_to_target([], 0.5) == (0, False)


def test_attempted_counts_a_requeued_trial_once_in_study_order():
    states = ["complete", "failed", "pruned", "waiting", "running", "complete", "failed"]
    trials = [FrozenTrial(n, state, {}) for n, state in enumerate(states)]
    trials[5] = FrozenTrial(5, "complete", {}, requeued_from=1)  # trial 1 was cut off; 5 ran its parameters
    assert [t.number for t in attempted(trials[::-1])] == [0, 2, 5, 6]


def test_trial_evaluations_end_where_the_run_stopped(tmp_path):
    store = Store(tmp_path / "r.db")
    stopped = store.create_run("pruned", {})
    store.log_metrics(stopped, [(10, "val_acc", 0.2), (20, "val_acc", 0.4), (20, "val_loss", 1.0)])
    store.finish_run(stopped, "completed", final={"step": 20})
    assert trial_evaluations(store, stopped) == [(10, 0.2), (20, 0.4)]
    blown = store.create_run("diverged", {})  # diverged at step 27, after its evaluation at 20
    store.log_metrics(blown, [(10, "val_acc", 0.3), (20, "val_acc", 0.1)])
    store.finish_run(blown, "diverged", final={"step": 27})
    assert trial_evaluations(store, blown) == [(10, 0.3), (20, 0.1), (27, 0.0)]
    early = store.create_run("diverged early", {})
    store.finish_run(early, "diverged", final={"step": 3})
    assert trial_evaluations(store, early) == [(3, 0.0)]


def test_best_so_far():
    assert best_so_far([3.0, 1.0, 2.0, 0.5]).tolist() == [3.0, 1.0, 1.0, 0.5]


def test_quick_run(tmp_path):
    store = Store(tmp_path / "r.db")
    _, outcome, seeds = run_experiment("random-vs-grid", quick=True, store=store, log=lambda _: None)
    f = outcome.figures
    assert set(f["regret"]) == {"grid", "random", "BO (GP-EI)"}
    # the grid's regret is bounded: each coordinate is at most 1/6 from a cell centre
    assert all(0 <= r <= (1 + 1 + 0.01) / 36 + 1e-12 for r in f["regret"]["grid"])
    log = {k: [math.log10(max(v, 1e-12)) for v in vs] for k, vs in f["regret"].items()}
    pairs = [("random", "grid"), ("BO (GP-EI)", "random"), ("BO (GP-EI)", "grid")]
    for check, (a, b) in zip(f["checks"], pairs):
        assert check["diff"] == pytest.approx(np.mean(log[a]) - np.mean(log[b]))
        assert check["holds"] == (check["ci"][1] < -MARGIN)
    # every trial of the Hyperband part is a run in the store; pruned runs stop early
    records = store.list_runs(group="reproduce/random-vs-grid/quick")
    assert len(records) == sum(f["trials"]["full"]) + sum(f["trials"]["hyperband"])
    full_steps = [r.final["step"] for r in records if r.status == "completed"]
    assert all(r.final["step"] < max(full_steps) for r in records if r.status == "pruned")
    steps = f["steps_to_target"]
    assert f["checks"][3]["diff"] == pytest.approx(
        np.mean(np.log10(steps["hyperband"])) - np.mean(np.log10(steps["full"]))
    )
    assert outcome.holds == all(c["holds"] for c in f["checks"])
    assert len(outcome.plots) == 3 and all(svg.startswith("<svg") for _, svg in outcome.plots)
    # the studies live in the run store, one per arm and seed, their trials' runs in the group
    studies = {s["name"]: s for s in StudyStorage(store.url).list_studies()}
    for arm in ("full", "hyperband"):
        mine = sorted(n for n in studies if n.startswith(f"reproduce/random-vs-grid/quick/{arm}/seed"))
        assert [n.split("/")[4] for n in mine] == [f"seed{s}" for s in range(seeds)]
        assert [sum(studies[n]["counts"].values()) for n in mine] == f["trials"][arm]
    # a rerun continues those studies: it trains nothing and reports the same figures
    _, again, _ = run_experiment("random-vs-grid", quick=True, store=store, log=lambda _: None)
    assert len(store.list_runs(group="reproduce/random-vs-grid/quick")) == len(records)
    assert again.figures == f
