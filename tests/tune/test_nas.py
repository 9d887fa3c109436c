import numpy as np
import pytest
import torch

from trainlab.errors import ConfigError
from trainlab.tune import ArchitectureSpace, Categorical, Random, Reinforce, Space, minimize


def test_architecture_space_conditions_and_overrides():
    arch = ArchitectureSpace(depth=(1, 3), widths=(16, 64))
    space = arch.space()
    assert list(space) == ["depth", "width_1", "width_2", "width_3", "activation", "norm", "dropout", "skip"]
    rng = np.random.default_rng(0)
    for _ in range(50):
        p = space.sample(rng)
        assert [f"width_{i}" in p for i in (1, 2, 3)] == [True, p["depth"] >= 2, p["depth"] >= 3]
        o = ArchitectureSpace.to_overrides(p)
        assert len(o["model.hidden"]) == p["depth"] and set(o["model.hidden"]) <= {16, 64}
        assert o["model.residual"] == p["skip"] and o["model.norm"] == p["norm"]


def test_architecture_space_errors_name_the_key():
    with pytest.raises(ConfigError, match="architecture.depth: every choice must be an integer >= 1"):
        ArchitectureSpace(depth=(0, 1))
    with pytest.raises(ConfigError, match=r"architecture.dropouts: drop probabilities must lie in \[0, 1\)"):
        ArchitectureSpace(dropouts=(0.5, 1.0))
    with pytest.raises(ConfigError, match="architecture.widths: give a non-empty list"):
        ArchitectureSpace(widths=())
    with pytest.raises(ConfigError, match="unknown key 'width'.*did you mean 'widths'"):
        ArchitectureSpace.from_dict({"width": [8]})


def toy_reward(p):
    """Best: depth 2, width 128 in each layer, gelu, layer norm."""
    widths = sum(p[f"width_{i}"] == 128 for i in range(1, p["depth"] + 1))
    return -0.1 * abs(p["depth"] - 2) + 0.05 * widths + 0.1 * (p["activation"] == "gelu") + 0.1 * (p["norm"] == "layer")


def test_reinforce_controller_learns_and_beats_random_search():
    space = ArchitectureSpace().space()
    late = {}
    for name, sampler in (("reinforce", Reinforce(lr=0.1)), ("random", Random())):
        study = minimize(toy_reward, space, sampler=sampler, n_trials=50, direction="maximize", seed=0)
        late[name] = np.mean([t.value for t in study.trials[-15:]])
    assert late["reinforce"] > late["random"] + 0.08


def test_policy_gradient_moves_probability_toward_the_better_choice():
    space = Space({"op": Categorical(["a", "b", "c"])})
    from trainlab.tune.trial import FrozenTrial

    trials = [FrozenTrial(0, "complete", {"op": "a"}, 0.0), FrozenTrial(1, "complete", {"op": "b"}, 1.0)]
    sampler = Reinforce(lr=0.05)

    def probs(history):
        policy, values = sampler.policy(space, history, seed=0, direction="maximize")
        with torch.no_grad():
            return [float(torch.exp(policy.run(space, values, {"op": v}, None)[1])) for v in "abc"]

    before, after = probs([]), probs(trials)
    assert sum(before) == pytest.approx(1.0) and sum(after) == pytest.approx(1.0)
    # trial 0 sets the baseline (advantage 0: no change); trial 1 has advantage +1 for "b"
    assert after[1] > before[1] + 0.01 and after[0] < before[0] and after[2] < before[2]


def test_reinforce_is_reproducible_and_rejects_continuous_ranges():
    space = ArchitectureSpace(depth=(1, 2)).space()
    a = minimize(toy_reward, space, sampler=Reinforce(), n_trials=6, direction="maximize", seed=1)
    b = minimize(toy_reward, space, sampler=Reinforce(), n_trials=6, direction="maximize", seed=1)
    assert [t.params for t in a.trials] == [t.params for t in b.trials]
    from trainlab.tune import Float

    with pytest.raises(ConfigError, match="parameter 'lr' is a continuous range"):
        Reinforce().sample(Space({"lr": Float(0, 1)}), [], number=0, seed=0)
    with pytest.raises(ConfigError, match="baseline_decay must lie in"):
        Reinforce(baseline_decay=1.0)
