import pytest

from trainlab.errors import ConfigError
from trainlab.store import Store
from trainlab.train import load_config
from trainlab.tune import Hyperband
from trainlab.tune.runs import RunObjective, parse_search, study_from_config

PARAMS = {
    "optim.lr": {"type": "float", "low": 0.01, "high": 0.5, "log": True},
    "model.dropout": {"low": 0.0, "high": 0.3},
}


def with_search(tiny_config, **search):
    return {**tiny_config, "search": {"params": PARAMS, **search}}


@pytest.mark.parametrize(
    "search, message",
    [
        ({"params": PARAMS, "samplr": "gp"}, "search.samplr: unknown key.*did you mean 'sampler'"),
        ({"params": PARAMS, "sampler": "tpe"}, "unknown search.sampler 'tpe'"),
        ({"params": PARAMS, "pruner": "hyperbnd"}, "unknown search.pruner 'hyperbnd'.*did you mean 'hyperband'"),
        ({"params": PARAMS, "metric": "train_acc"}, "search.metric: 'train_acc' is not evaluated"),
        ({"params": PARAMS, "trials": 0}, "search.trials: must be an integer >= 1, got 0"),
        ({"params": PARAMS, "direction": "up"}, "search.direction: must be 'minimize' or 'maximize'"),
        ({}, "search.params: give at least one config key"),
        (
            {"params": {"optim.lr": {"type": "float", "low": 1.0, "high": 0.1}}},
            "parameter 'optim.lr': low must be < high",
        ),
    ],
)
def test_search_section_errors_name_the_key(tiny_config, search, message):
    with pytest.raises(ConfigError, match=message):
        parse_search(search, load_config(tiny_config))


def test_search_defaults_follow_the_metric(tiny_config):
    spec = parse_search({"params": PARAMS, "metric": "val_acc"}, load_config(tiny_config))
    assert spec.direction == "maximize" and spec.sampler == "gp" and spec.pruner == "none" and spec.seed == 0


def test_unknown_config_keys_in_the_space_are_caught_before_any_trial(tiny_config, tmp_path):
    config = {**tiny_config, "search": {"params": {"optim.lrr": {"low": 0.01, "high": 0.1}}}}
    with pytest.raises(ConfigError, match="optim.lrr"):
        study_from_config(config, store=str(tmp_path / "s.db"))


@pytest.mark.slow
def test_a_run_config_becomes_a_study_of_runs(tiny_config, tmp_path):
    db = str(tmp_path / "s.db")
    config = with_search(tiny_config, name="tiny-study", sampler="random", pruner="hyperband", trials=3)
    study, spec = study_from_config(config, store=db)
    # rungs in training steps: from one evaluation (an epoch here) to the whole run
    assert isinstance(study.pruner, Hyperband)
    assert study.pruner.max_resource == 2 * study.pruner.min_resource
    objective = RunObjective(study.objective["config"], study.storage_url)
    study.optimize(objective, spec.trials)
    trials = study.trials
    assert len(trials) == 3 and all(t.state in ("complete", "pruned") for t in trials)
    store = Store(db)
    for t in trials:
        record = store.get_run(t.run_id)
        assert record.group == "tiny-study" and record.seed == t.seed
        assert record.config["optim"]["lr"] == pytest.approx(t.params["optim.lr"])
        assert t.intermediate and t.intermediate[-1][1] == pytest.approx(record.final["val_loss"])
    with pytest.raises(ConfigError, match="already exists.*--resume tiny-study"):
        study_from_config(config, store=db)
    again, _ = study_from_config(config, store=db, resume="tiny-study")
    assert again.name == "tiny-study" and len(again.trials) == 3
