import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tune_objectives

from trainlab.errors import ConfigError
from trainlab.tune import GP, Float, Int, Random, Study, list_studies, minimize
from trainlab.tune.storage import StudyStorage

HERE = Path(__file__).parent
SPACE = {"x": Float(0.0, 1.0)}


def test_ask_tell_and_best_trial():
    study = Study("s", {"x": Float(0, 1), "k": Int(1, 3)}, sampler=Random(), direction="maximize", storage=":memory:")
    values = []
    for _ in range(5):
        trial = study.ask()
        values.append(trial.params["x"] * trial.params["k"])
        study.tell(trial, values[-1])
    assert study.best_value == max(values)
    assert study.best_trial.number == values.index(max(values))
    assert [t.state for t in study.trials] == ["complete"] * 5
    assert len({t.seed for t in study.trials}) == 5


def test_tell_states_and_errors():
    study = Study("s", SPACE, sampler=Random(), storage=":memory:")
    t = study.ask()
    assert study.tell(t, float("nan")).state == "failed"
    with pytest.raises(ConfigError, match="trial 0 .* is failed, not running"):
        study.tell(t, 1.0)
    t = study.ask()
    t.report(1, 0.7)
    t.report(2, 0.6)
    pruned = study.tell(t, state="pruned")
    assert pruned.value == 0.6 and pruned.intermediate == [(1, 0.7), (2, 0.6)]
    with pytest.raises(ConfigError, match="state must be one of"):
        study.tell(study.ask(), 1.0, state="done")


def test_objective_errors_fail_the_trial_and_the_study_goes_on():
    def flaky(trial):
        if trial.number == 1:
            raise RuntimeError("boom")
        return trial.params["x"]

    study = Study("s", SPACE, sampler=Random(), storage=":memory:").optimize(flaky, 3)
    assert [t.state for t in study.trials] == ["complete", "failed", "complete"]
    assert study.trials[1].message == "RuntimeError: boom"


def test_same_seed_same_trials():
    for sampler in (Random(), Random(qmc=True), GP(n_startup=4)):
        a = minimize(tune_objectives.quadratic, SPACE, sampler=sampler, n_trials=7, seed=3)
        b = minimize(tune_objectives.quadratic, SPACE, sampler=sampler, n_trials=7, seed=3)
        c = minimize(tune_objectives.quadratic, SPACE, sampler=sampler, n_trials=7, seed=4)
        assert [t.params for t in a.trials] == [t.params for t in b.trials]
        assert [t.seed for t in a.trials] == [t.seed for t in b.trials]
        assert [t.params for t in a.trials] != [t.params for t in c.trials]


def test_reopen_load_and_list(tmp_path):
    db = str(tmp_path / "s.db")
    minimize(tune_objectives.quadratic, SPACE, sampler=Random(), n_trials=4, storage=db, name="one")
    study = Study.load("one", storage=db)
    assert len(study.trials) == 4 and study.sampler.spec() == Random().spec()
    study.optimize(lambda t: tune_objectives.quadratic(t.params), 2)
    assert [t.number for t in Study.load("one", storage=db).trials] == list(range(6))
    with pytest.raises(ConfigError, match="no study 'oen'.*did you mean 'one'"):
        Study.load("oen", storage=db)
    with pytest.raises(ConfigError, match="already exists .* different space"):
        Study("one", {"y": Float(0, 1)}, storage=db)
    [summary] = list_studies(db)
    assert summary["name"] == "one" and summary["n_trials"] == 6 and summary["counts"] == {"complete": 6}
    assert summary["best_value"] == pytest.approx(Study.load("one", storage=db).best_value)


def test_enqueue_runs_first_and_is_validated():
    study = Study("s", SPACE, sampler=Random(), storage=":memory:")
    study.enqueue({"x": 0.25})
    assert study.ask().params == {"x": 0.25}
    with pytest.raises(ConfigError, match="'x'.*outside"):
        study.enqueue({"x": 2.0})


def _poll(storage, name, predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = storage.get_study(name)
        if row is not None:
            trials = storage.trials(row["id"])
            if predicate(trials):
                return trials
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting on study {name}")


def test_sigkill_mid_trial_loses_no_completed_trial_and_requeues(tmp_path):
    db = str(tmp_path / "s.db")
    script = (
        f"import sys; sys.path.insert(0, {str(HERE)!r})\n"
        "import tune_objectives\n"
        "from trainlab.tune import Study, Float, Random\n"
        f"Study('crash', {{'x': Float(0.0, 1.0)}}, sampler=Random(), storage={db!r}).optimize(tune_objectives.hang_on_trial_3, 10)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        _poll(StudyStorage(db), "crash", lambda ts: len(ts) == 4 and ts[3].state == "running" and ts[3].params)
    finally:
        proc.kill()
        proc.wait()
    study = Study.load("crash", storage=db)  # reopening reaps the dead worker's trial
    trials = study.trials
    assert [t.state for t in trials[:3]] == ["complete"] * 3
    for t in trials[:3]:
        assert t.value == pytest.approx((t.params["x"] - 0.3) ** 2)
    assert trials[3].state == "failed" and "interrupted" in trials[3].message
    assert trials[4].state == "waiting" and trials[4].params == trials[3].params and trials[4].requeued_from == 3
    study.optimize(tune_objectives.hang_on_trial_3, 1)  # the re-queued parameters run first
    assert study.trial(4).state == "complete" and study.trial(4).params == trials[3].params


def test_two_processes_on_one_sqlite_study_never_run_the_same_trial(tmp_path):
    db, log = str(tmp_path / "s.db"), tmp_path / "log.txt"
    study = Study("race", SPACE, sampler=Random(), storage=db)
    for i in range(30):
        study.enqueue({"x": i / 30})
    script = (
        f"import sys; sys.path.insert(0, {str(HERE)!r})\n"
        "import tune_objectives\n"
        "from trainlab.tune import Study\n"
        f"Study.load('race', storage={db!r}).optimize(tune_objectives.log_number, 20)\n"
    )
    env = {**os.environ, "TUNE_LOG": str(log)}
    procs = [subprocess.Popen([sys.executable, "-c", script], env=env) for _ in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    lines = [line.split() for line in log.read_text().splitlines()]
    numbers = [int(n) for n, _ in lines]
    assert len(numbers) == 40 and len(set(numbers)) == 40  # every trial ran exactly once
    assert len({pid for _, pid in lines}) == 2
    trials = Study.load("race", storage=db).trials
    assert len(trials) == 40 and all(t.state == "complete" for t in trials)
    assert sorted(t.params["x"] for t in trials[:30]) == pytest.approx([i / 30 for i in range(30)])


def test_parallel_jobs_share_the_store(tmp_path):
    db = str(tmp_path / "s.db")
    study = minimize(
        tune_objectives.quadratic, SPACE, sampler=GP(n_startup=3), n_trials=6, storage=db, name="par", jobs=2
    )
    trials = study.trials
    assert len(trials) == 6 and all(t.state == "complete" for t in trials)
    assert len({t.worker for t in trials}) == 2
    assert len({json.dumps(t.params) for t in trials}) == 6


def test_in_memory_study_refuses_parallel_jobs():
    with pytest.raises(ConfigError, match="jobs > 1 .* need a storage"):
        minimize(tune_objectives.quadratic, SPACE, n_trials=2, jobs=2)


def _uncached(db, name):
    """The trials as a fresh storage reads them (no cache)."""
    storage = StudyStorage(db)
    return storage.trials(storage.get_study(name)["id"])


def test_cache_sees_what_another_process_writes(tmp_path):
    db = str(tmp_path / "s.db")
    study = Study("shared", SPACE, sampler=Random(), storage=db)
    study.tell(study.ask(), 0.25)
    running = study.ask()  # unfinished in this process's cache
    running.report(3, 0.9)
    assert [t.state for t in study.trials] == ["complete", "running"]  # the cache is warm now
    script = (
        "from trainlab.tune import Study\n"
        f"s = Study.load('shared', storage={db!r})\n"
        f"s.tell({running.number}, 0.125)\n"  # another process finishes our running trial
        "t = s.ask(); t.report(1, 2.0); t.report(2, 1.5); s.tell(t, state='pruned')\n"
        "s.tell(s.ask(), 0.5)\n"
        "s.enqueue({'x': 0.75})\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)
    seen = study.trials
    assert seen == _uncached(db, "shared")
    assert [(t.number, t.state, t.value) for t in seen] == [
        (0, "complete", 0.25),
        (1, "complete", 0.125),
        (2, "pruned", 1.5),
        (3, "complete", 0.5),
        (4, "waiting", None),
    ]
    assert seen[1].intermediate == [(3, 0.9)] and seen[2].intermediate == [(1, 2.0), (2, 1.5)]
    assert study.trial(4).params == {"x": 0.75} and study.best_value == 0.125


def test_finished_trials_are_read_once(tmp_path, monkeypatch):
    import trainlab.tune.storage as storage_module

    db = str(tmp_path / "s.db")
    study = Study("once", SPACE, sampler=Random(), storage=db)
    for _ in range(20):
        study.tell(study.ask(), 1.0)
    assert len(study.trials) == 20  # warms the cache
    decoded = []
    real = storage_module._frozen
    monkeypatch.setattr(storage_module, "_frozen", lambda row, inter: decoded.append(row["number"]) or real(row, inter))
    assert len(study.trials) == 20 and decoded == []  # nothing new: no row decoded
    trial = study.ask()
    study.tell(trial, 0.5)
    decoded.clear()
    assert len(study.trials) == 21 and decoded == []  # tell's read of trial 20 cached it already
    # a reservation given back disappears from the list
    reserved = study._storage.new_trial(study._row(), state="running", params={})
    assert [t.number for t in study.trials][-1] == reserved
    study._storage.delete_trial(study._id, reserved)
    assert [t.number for t in study.trials] == list(range(21))


def test_sampler_and_pruner_by_name_give_the_same_study_as_the_objects(tmp_path):
    """sampler="gp" (the README's example) and pruner="median" are the objects GP() and Median()."""
    from trainlab.tune import Median

    by_name = minimize(tune_objectives.quadratic, SPACE, sampler="gp", pruner="median", n_trials=6, seed=1)
    by_object = minimize(tune_objectives.quadratic, SPACE, sampler=GP(), pruner=Median(), n_trials=6, seed=1)
    assert [t.params for t in by_name.trials] == [t.params for t in by_object.trials]
    assert by_name.summary()["sampler"] == GP().spec() and by_name.summary()["pruner"] == Median().spec()
    spec = Study("spec", SPACE, sampler={"name": "random", "qmc": True}, storage=":memory:")
    assert spec.sampler.spec() == {"name": "random", "qmc": True}
    db = str(tmp_path / "s.db")
    Study("named", SPACE, sampler="random", storage=db)
    reopened = Study.load("named", storage=db, sampler="grid", pruner="none")
    assert reopened.sampler.name == "grid" and reopened.pruner.name == "none"


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"sampler": "gpp"}, "unknown sampler 'gpp' (did you mean 'gp'?)"),
        ({"pruner": "hyperbnd"}, "unknown pruner 'hyperbnd'"),
        ({"sampler": 3}, "sampler must be a Sampler, a name"),
        ({"pruner": "hyperband"}, "pruner 'hyperband'"),  # it needs max_resource
    ],
)
def test_bad_sampler_or_pruner_names_are_config_errors(kwargs, needle):
    with pytest.raises(ConfigError) as err:
        minimize(tune_objectives.quadratic, SPACE, n_trials=1, **kwargs)
    assert needle in str(err.value)
