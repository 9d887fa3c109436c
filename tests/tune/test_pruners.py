import math
from collections import Counter

import numpy as np
import pytest

from trainlab.errors import ConfigError
from trainlab.tune import ASHA, Float, Hyperband, Median, Random, Study, SuccessiveHalving, TrialPruned, create_pruner
from trainlab.tune.pruners import CONTINUE, PRUNE, WAIT, rung_value, rungs, survivors
from trainlab.tune.trial import COMPLETE, RUNNING, FrozenTrial


def running(number, curve):
    return FrozenTrial(number, RUNNING, {"x": 0.0}, intermediate=list(curve))


def test_hyperband_brackets_of_li_et_al():
    assert Hyperband(81, eta=3).brackets() == [(81, 1), (34, 3), (15, 9), (8, 27), (5, 81)]
    # R = 27 resource units of 3: s_max = 2, n = ceil(3/(s+1) * 3^s)
    assert Hyperband(27, eta=3, min_resource=3).brackets() == [(9, 3), (5, 9), (3, 27)]
    assert Hyperband(16, eta=2).brackets() == [(16, 1), (10, 2), (7, 4), (5, 8), (5, 16)]


def test_hyperband_deals_trials_to_brackets_in_proportion():
    hb = Hyperband(81)
    counts = Counter(hb.bracket_of(i) for i in range(143))  # one full round = 81+34+15+8+5
    assert counts == {0: 81, 1: 34, 2: 15, 3: 8, 4: 5}
    first = Counter(hb.bracket_of(i) for i in range(30))
    assert all(first[b] >= 1 for b in range(5))  # a short study still hedges across brackets


def test_survivors_are_the_top_fraction():
    values = [0.9, 0.1, 0.5, 0.3, 0.7, 0.2, 0.8, 0.6, 0.4]
    assert survivors(values, 3) == [1, 3, 5]  # 0.1, 0.3, 0.2
    assert survivors(values, 3, "maximize") == [0, 4, 6]
    assert survivors([0.5, 0.4], 3) == [1]  # at least one
    assert survivors([math.nan, 1.0, 2.0], 2) == [1]  # NaN ranks last


def test_rungs_and_rung_values():
    assert rungs(1, 3, 81) == [1, 3, 9, 27]
    assert rung_value([(2, 0.5), (5, 0.4), (10, 0.3)], 3) == 0.4
    assert rung_value([(2, 0.5)], 3) is None


def test_sha_promotes_exactly_the_top_third_of_a_full_rung():
    values = [0.9, 0.1, 0.5, 0.3, 0.7, 0.2, 0.8, 0.6, 0.4]
    trials = [running(i, [(1, v)]) for i, v in enumerate(values)]
    sha = SuccessiveHalving(min_resource=1, eta=3, max_resource=27)
    decisions = [sha.decide(t, trials, "minimize") for t in trials]
    assert [i for i, d in enumerate(decisions) if d == CONTINUE] == [1, 3, 5]
    assert decisions.count(PRUNE) == 6


def test_sha_waits_for_running_peers_but_asha_does_not():
    ahead, behind = running(0, [(1, 0.5)]), running(1, [])
    assert SuccessiveHalving(1, 3, 27).decide(ahead, [ahead, behind], "minimize") == WAIT
    assert ASHA(1, 3, 27).decide(ahead, [ahead, behind], "minimize") == CONTINUE
    finished = FrozenTrial(1, COMPLETE, {"x": 0.0}, value=0.1, intermediate=[(1, 0.8), (27, 0.05)])
    assert SuccessiveHalving(1, 3, 27).decide(ahead, [ahead, finished], "minimize") == CONTINUE  # the best 1 of 2
    worse = running(0, [(1, 0.9)])
    assert SuccessiveHalving(1, 3, 27).decide(worse, [worse, finished], "minimize") == PRUNE


def test_asha_decides_against_the_trials_seen_so_far():
    asha = ASHA(min_resource=1, eta=3, max_resource=27)
    history: list[FrozenTrial] = []
    decisions = []
    for i, v in enumerate([0.5, 0.6, 0.4, 0.45, 0.7, 0.3]):
        t = running(i, [(1, v)])
        decisions.append(asha.decide(t, [*history, t], "minimize"))
        history.append(t)
    # m = 1..6 at the rung; keep max(1, m // 3) best: 0.5 keep; 0.6 no; 0.4 best of 3 keep;
    # 0.45 2nd of 4 with 1 kept -> no; 0.7 no; 0.3 best of 6 (2 kept) -> keep
    assert decisions == [CONTINUE, PRUNE, CONTINUE, PRUNE, PRUNE, CONTINUE]


def test_decisions_only_when_a_rung_is_crossed():
    asha = ASHA(min_resource=2, eta=2, max_resource=16)
    best = FrozenTrial(0, COMPLETE, {}, value=0.0, intermediate=[(2, 0.1), (4, 0.05)])
    # between rungs (step 3 after step 2) nothing is decided, even for a bad value
    t = running(1, [(2, 0.05), (3, 9.0)])
    assert asha.decide(t, [best, t], "minimize") == CONTINUE
    # one report that jumps past rungs 4 and 8 is judged at both
    t = running(1, [(2, 0.05), (9, 9.0)])
    assert asha.decide(t, [best, t], "minimize") == PRUNE


def test_median_rule_matches_a_hand_computation():
    rng = np.random.default_rng(0)
    curves = [np.cumsum(rng.uniform(-0.2, 0.0, 10)) + 1 + rng.uniform(0, 0.5) for _ in range(6)]
    done = [FrozenTrial(i, COMPLETE, {}, value=c[-1], intermediate=list(enumerate(c))) for i, c in enumerate(curves)]
    step = 4
    median = np.median([np.mean(c[: step + 1]) for c in curves])  # running averages up to step 4
    for own_best, expected in ((median - 1e-6, CONTINUE), (median + 1e-6, PRUNE)):
        t = running(99, [(0, own_best + 1), (step, own_best)])
        assert Median(n_startup_trials=5).decide(t, [*done, t], "minimize") == expected
    t = running(99, [(0, 100.0), (step, 100.0)])
    assert Median(n_startup_trials=7).decide(t, [*done, t], "minimize") == CONTINUE  # too few trials yet
    assert Median(n_startup_trials=5, n_warmup_steps=5).decide(t, [*done, t], "minimize") == CONTINUE


def curve_objective(trial):
    """A learning curve whose final value is x; bad x look bad early."""
    x = trial.params["x"]
    for step in range(1, 28):
        value = x + 1.0 / step
        trial.report(step, value)
        if trial.should_prune():
            raise TrialPruned()
    return value


@pytest.mark.parametrize("pruner", [Hyperband(27, eta=3), ASHA(1, 3, 27), SuccessiveHalving(1, 3, 27), Median(3)])
def test_pruners_stop_bad_trials_in_a_study(pruner):
    study = Study("prune", {"x": Float(0, 1)}, sampler=Random(), pruner=pruner, storage=":memory:")
    study.optimize(curve_objective, 30)
    states = Counter(t.state for t in study.trials)
    assert states["pruned"] >= 8 and states["complete"] >= 3
    best_complete = study.best_trial.params["x"]
    all_x = sorted(t.params["x"] for t in study.trials)
    assert best_complete <= all_x[2]  # the best configurations survive to the end
    for t in study.trials:
        if t.state == "pruned":
            assert t.value == t.intermediate[-1][1] and t.intermediate[-1][0] < 27


def test_pruner_arguments_are_checked():
    with pytest.raises(ConfigError, match="eta must be > 1, got 1"):
        ASHA(eta=1)
    with pytest.raises(ConfigError, match=r"max_resource \(2\) must be >= min_resource \(5\)"):
        SuccessiveHalving(min_resource=5, max_resource=2)
    with pytest.raises(ConfigError, match="min_resource must be a positive number, got 0"):
        Hyperband(81, min_resource=0)
    with pytest.raises(ConfigError, match="unknown pruner 'hyperbnad'.*did you mean 'hyperband'"):
        create_pruner("hyperbnad")
    with pytest.raises(ConfigError, match="n_startup_trials must be an integer >= 1"):
        Median(0)


def _reach_full_budget(values, eta=3, max_resource=9):
    """Run trials one after another (one worker) with a constant curve each; how many reach R."""
    study = Study("order", {"x": Float(0, 1)}, sampler=Random(), storage=":memory:",
                  pruner=SuccessiveHalving(min_resource=1, eta=eta, max_resource=max_resource))  # fmt: skip
    reached = []

    def objective(trial):
        step = 1
        while step <= max_resource:
            trial.report(step, values[trial.number])
            if trial.should_prune():
                raise TrialPruned()
            step *= eta
        reached.append(trial.number)
        return values[trial.number]

    study.optimize(objective, len(values))
    return reached


def test_one_worker_sha_promotes_as_many_as_the_arrival_order_allows():
    """docs/tune.md: with one worker, a trial continues past a rung if it ranks among the best
    max(1, ⌊m/η⌋) of the m trials that reached the rung so far. Li et al.'s SHA over the same 9
    configurations (rungs 1, 3, 9) carries exactly one to R; here that number depends on the order."""
    assert _reach_full_budget([0.1 * k for k in range(1, 10)]) == [0]  # each worse than all before
    assert _reach_full_budget([1.0 - 0.1 * k for k in range(9)]) == list(range(9))  # each the best so far
    # By hand: #0 is alone at both rungs; #2 is the best of 3 at rung 1 and of 2 at rung 3; #5 is
    # among the best 2 of 6 at rung 1 but not the best of 3 at rung 3; the rest stop at rung 1.
    assert _reach_full_budget([0.5, 0.9, 0.1, 0.8, 0.7, 0.2, 0.6, 0.4, 0.3]) == [0, 2]
