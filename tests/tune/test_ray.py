"""``--executor ray``: trials as Ray tasks on a local Ray instance (optional extra ``trainlab[ray]``)."""

from pathlib import Path

import pytest

from trainlab.tune import Float, Random, Study

pytestmark = pytest.mark.slow
HERE = Path(__file__).parent


def test_ray_executor_runs_trials_as_tasks(tmp_path):
    ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'trainlab[ray]'")
    import tune_objectives

    ray.init(num_cpus=2, include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": str(HERE)}})
    try:
        study = Study("ray", {"x": Float(0.0, 1.0)}, sampler=Random(), storage=str(tmp_path / "s.db"))
        study.optimize(tune_objectives.quadratic_trial, 6, jobs=2, executor="ray")
    finally:
        ray.shutdown()
    trials = study.trials
    assert len(trials) == 6 and all(t.state == "complete" for t in trials)
    for t in trials:
        assert t.value == pytest.approx((t.params["x"] - 0.3) ** 2)
    assert len({t.worker for t in trials}) >= 2  # ran in Ray worker processes, not the driver
