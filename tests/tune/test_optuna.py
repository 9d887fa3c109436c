"""Optuna interop: trainlab's GP and pruners inside Optuna studies, Optuna's samplers inside trainlab's."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

optuna = pytest.importorskip("optuna", reason="the optuna extra is not installed")
optuna.logging.set_verbosity(optuna.logging.WARNING)

from trainlab.errors import ConfigError  # noqa: E402
from trainlab.tune import ASHA, Categorical, Float, Int, Study, TrialPruned, create_sampler, minimize  # noqa: E402
from trainlab.tune.optuna import ASHAPruner, GPSampler, HyperbandPruner, from_distribution, to_distribution  # noqa: E402

BRANIN_MIN = 0.397887357729738


def branin(x1: float, x2: float) -> float:
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


def branin_objective(trial) -> float:
    return branin(trial.suggest_float("x1", -5, 10), trial.suggest_float("x2", 0, 15))


def regret(sampler, n_trials: int) -> float:
    study = optuna.create_study(sampler=sampler)
    study.optimize(branin_objective, n_trials=n_trials)
    return study.best_value - BRANIN_MIN


@pytest.mark.slow
def test_gp_sampler_beats_optunas_tpe_and_random_on_branin():
    """Median best-so-far regret after 20 trials over 3 seeds, against Optuna's own samplers
    (benchmarks/bo.py has the 20-seed version with Optuna's GPSampler)."""
    seeds = range(3)
    ours = [regret(GPSampler(seed=s, n_startup=8), 20) for s in seeds]
    tpe = [regret(optuna.samplers.TPESampler(seed=s), 20) for s in seeds]
    rand = [regret(optuna.samplers.RandomSampler(seed=s), 20) for s in seeds]
    assert np.median(ours) < 0.5 * np.median(tpe), (ours, tpe)
    assert np.median(ours) < 0.5 * np.median(rand), (ours, rand)
    assert max(ours) < 0.5  # every seed near one of Branin's three minima


def test_gp_sampler_honours_optunas_lifecycle():
    calls = []

    class Recording(optuna.samplers.RandomSampler):
        def before_trial(self, study, trial):
            calls.append(("before", trial.number))

        def after_trial(self, study, trial, state, values):
            calls.append(("after", trial.number, state.name))

        def reseed_rng(self):
            calls.append(("reseed",))
            super().reseed_rng()

    sampler = GPSampler(seed=1, n_startup=3, n_candidates=128, independent_sampler=Recording(seed=1))
    study = optuna.create_study(sampler=sampler)

    def objective(trial):
        x = trial.suggest_float("x", -2, 2)
        if trial.number >= 4:  # a dynamic parameter, outside the intersection space: the independent sampler's
            trial.suggest_int("extra", 0, 3)
        return (x - 0.5) ** 2

    study.optimize(objective, n_trials=7)
    assert [c for c in calls if c[0] == "before"] == [("before", i) for i in range(7)]
    assert [c for c in calls if c[0] == "after"] == [("after", i, "COMPLETE") for i in range(7)]
    sampler.reseed_rng()
    assert calls[-1] == ("reseed",)
    # trials 3..6 come from the GP (x in the relative space); "extra" from the independent sampler
    assert study.trials[6].params.keys() == {"x", "extra"}
    assert abs(study.best_params["x"] - 0.5) < 0.3
    with pytest.raises(ValueError, match="multi-objective"):
        optuna.create_study(directions=["minimize", "minimize"], sampler=GPSampler(seed=0, n_startup=1)).optimize(
            lambda t: (t.suggest_float("x", 0, 1), 1.0), n_trials=3
        )


def _curves(number: int) -> list[float]:
    """Trial k's loss curve over 9 steps: a level set by k, falling with the step."""
    level = [0.9, 0.2, 0.6, 0.4, 0.1, 0.8, 0.3, 0.7, 0.5, 0.35, 0.65, 0.15][number % 12]
    return [level + 1.0 / step for step in range(1, 10)]


def test_asha_pruner_decides_in_optuna_as_in_trainlab():
    """The same trials, reported in the same order: Optuna with trainlab's ASHA prunes exactly
    the trials trainlab's own study prunes."""
    optuna_study = optuna.create_study(pruner=ASHAPruner(min_resource=1, eta=3, max_resource=9))

    def objective(trial):
        trial.suggest_float("x", 0, 1)
        for step, value in enumerate(_curves(trial.number), start=1):
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return value

    optuna_study.optimize(objective, n_trials=12)
    ours = Study(
        "asha",
        {"x": Float(0, 1)},
        pruner=ASHA(min_resource=1, eta=3, max_resource=9),
        storage=":memory:",
        sampler=create_sampler("random"),
    )
    for _ in range(12):
        trial = ours.ask()
        try:
            for step, value in enumerate(_curves(trial.number), start=1):
                trial.report(step, value)
                if trial.should_prune():
                    raise TrialPruned()
            ours.tell(trial, value)
        except TrialPruned:
            ours.tell(trial, state="pruned")
    pruned_optuna = [t.number for t in optuna_study.trials if t.state.name == "PRUNED"]
    pruned_ours = [t.number for t in ours.trials if t.state == "pruned"]
    assert pruned_optuna == pruned_ours and len(pruned_ours) >= 4
    assert [t.last_step for t in ours.trials] == [max(t.intermediate_values) for t in optuna_study.trials]


def test_hyperband_pruner_in_optuna_stops_trials_in_proportion():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0), pruner=HyperbandPruner(max_resource=27))

    def objective(trial):
        x = trial.suggest_float("x", 0, 1)
        for step in range(1, 28):
            trial.report(x + 1.0 / step, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return x

    study.optimize(objective, n_trials=30)
    states = [t.state.name for t in study.trials]
    assert states.count("PRUNED") >= 10 and states.count("COMPLETE") >= 5
    pruned_x = [t.params["x"] for t in study.trials if t.state.name == "PRUNED"]
    done_x = [t.params["x"] for t in study.trials if t.state.name == "COMPLETE"]
    assert np.median(pruned_x) > np.median(done_x)  # the worse (higher) x are the ones stopped
    assert repr(HyperbandPruner(max_resource=27)).startswith("HyperbandPruner(Hyperband(")


def test_distributions_round_trip():
    for param in (
        Float(1e-4, 1.0, log=True),
        Float(-1, 1),
        Int(1, 64, log=True),
        Int(0, 5),
        Categorical(["a", "b", 3]),
    ):
        assert from_distribution(to_distribution(param)) == param
    hidden = to_distribution(Categorical([[64], [128, 128]]))
    assert hidden.choices == ("[64]", "[128, 128]")  # lists travel as JSON text
    assert from_distribution(optuna.distributions.FloatDistribution(0, 1, step=0.25)) == Categorical(
        [0, 0.25, 0.5, 0.75, 1.0]
    )


def test_optuna_tpe_inside_a_trainlab_study_is_seeded_and_finds_the_minimum():
    space = {"x": Float(-3, 3), "kind": Categorical(["a", "b"]), "k": Int(1, 4, when={"kind": "b"})}

    def fn(p):
        return (p["x"] - 1) ** 2 + (0.5 if p["kind"] == "a" else 0.1 * p["k"])

    a = minimize(fn, space, sampler=create_sampler("optuna:tpe"), n_trials=40, seed=3)
    b = minimize(fn, space, sampler=create_sampler("optuna:tpe"), n_trials=40, seed=3)
    assert [t.params for t in a.trials] == [t.params for t in b.trials]
    assert a.best_value < 0.3
    assert all(("k" in t.params) == (t.params["kind"] == "b") for t in a.trials)  # conditions kept
    assert a.sampler.spec() == {"name": "optuna:tpe"}


def test_optuna_cmaes_inside_a_trainlab_study():
    pytest.importorskip("cmaes", reason="the cmaes package (trainlab[optuna]) is not installed")
    study = minimize(lambda p: (p["x"] - 0.3) ** 2 + (p["y"] + 0.2) ** 2, {"x": Float(-1, 1), "y": Float(-1, 1)},
                     sampler=create_sampler("optuna:cmaes"), n_trials=40, seed=0)  # fmt: skip
    assert study.best_value < 0.01


def test_unknown_optuna_sampler_and_missing_extra(monkeypatch):
    with pytest.raises(ConfigError, match="unknown Optuna sampler 'optuna:tpee'.*did you mean 'optuna:tpe'"):
        create_sampler("optuna:tpee")
    monkeypatch.setitem(sys.modules, "optuna", None)  # as if Optuna were not installed
    with pytest.raises(ConfigError, match=r"^sampler 'optuna:tpe' needs Optuna: pip install 'trainlab\[optuna\]'$"):
        create_sampler("optuna:tpe")
