"""tune --population N (issue 20): a batch of N suggestions (the GP's constant-liar batch) is
trained as one population; each trial gets its run's final metric, as when run alone."""

import pytest

from trainlab.errors import ConfigError
from trainlab.store import Store
from trainlab.train import load_config, run
from trainlab.tune.runs import RunObjective, optimize_in_populations, study_from_config

PARAMS = {
    "optim.lr": {"type": "float", "low": 0.01, "high": 0.5, "log": True},
    "model.dropout": {"low": 0.0, "high": 0.3},
}


def test_a_batch_of_suggestions_trains_as_one_population(tiny_config, tmp_path):
    db = str(tmp_path / "s.db")
    config = {**tiny_config, "search": {"params": PARAMS, "name": "pop-study", "sampler": "gp", "trials": 4}}
    study, _ = study_from_config(config, store=db)
    objective = RunObjective(study.objective["config"], study.storage_url)
    seen = []
    optimize_in_populations(study, objective, 4, 2, callback=lambda s, t: seen.append(t.number))
    trials = study.trials
    assert len(trials) == 4 and all(t.state == "complete" for t in trials) and sorted(seen) == [0, 1, 2, 3]
    store = Store(db)
    populations = [store.get_run(t.run_id).final["population"] for t in trials]
    assert len({p.split(":")[0] for p in populations}) == 2 and all(p.endswith("/2") for p in populations)
    # the trial's value is its run's final val_loss, and that run is its sequential run
    t = trials[3]
    record = store.get_run(t.run_id)
    assert t.value == record.final["val_loss"]
    alone = run(load_config(record.config), store=Store(":memory:"))
    assert abs(t.value / alone.final["val_loss"] - 1) < 1e-3
    assert trials[0].params != trials[1].params  # the batch's second ask saw the first as pending
    with pytest.raises(ConfigError, match="--population must be an integer >= 1"):
        optimize_in_populations(study, objective, 1, 0)
