"""``--executor ray``: trials as Ray tasks on a local Ray instance (optional extra ``trainlab[ray]``)."""

import contextlib
import json
import os
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


# -- end to end: `trainlab tune --executor ray` on a `ray start --head` instance, PostgreSQL store --

TUNE_CONFIG = """\
name = "ray-e2e"
seed = 0
[data]
name = "mnist1d"
batch_size = 64
[model]
name = "mlp"
hidden = [256, 256]
[optim]
name = "sgd"
lr = 0.1
[train]
epochs = 60
threads = 1
[search]
name = "ray-e2e"
metric = "val_loss"
sampler = "random"
trials = 6
[search.params]
"optim.lr" = { type = "float", low = 0.01, high = 0.5, log = true }
"""
TIMEOUT = 600  # seconds: Ray and its workers start slowly on a loaded 2-core machine


@pytest.fixture
def ray_head():
    """A local Ray instance as a cluster's head node (`ray start --head --block`) in its own
    session; its address, then every process of that session killed."""
    pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'trainlab[ray]'")
    import signal
    import socket
    import subprocess
    import sys
    import tempfile
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Ray's socket paths must stay short
    ray_cli = str(Path(sys.executable).parent / "ray")
    log = open(Path(temp) / "head.log", "w")
    head = subprocess.Popen(
        [ray_cli, "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
         "--disable-usage-stats", f"--temp-dir={temp}", "--block"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.time() + TIMEOUT
        while time.time() < deadline:
            ok = subprocess.run([ray_cli, "status", f"--address={address}"], capture_output=True).returncode == 0
            if ok:
                break
            assert head.poll() is None, (Path(temp) / "head.log").read_text()[-3000:]
            time.sleep(2)
        else:
            pytest.fail("ray start --head did not come up")
        yield address
    finally:
        subprocess.run([ray_cli, "stop", "--force"], capture_output=True, env={**os.environ, "RAY_TMPDIR": temp})
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)
        head.wait()
        log.close()


def test_ray_study_on_postgres_killed_mid_study_loses_nothing(ray_head, postgres, tmp_path):
    """`trainlab tune --executor ray --jobs 2` on a Ray head with a PostgreSQL store; the driver is
    killed with SIGKILL after two trials; `--resume` finishes the study: the finished trials are
    kept as they were, the interrupted ones run again with their parameters, none twice."""
    import signal
    import subprocess
    import sys
    import time

    from trainlab.store import Store, _pid_alive
    from trainlab.tune import Study

    url = postgres.url()
    cfg = tmp_path / "tune.toml"
    cfg.write_text(TUNE_CONFIG)
    env = {**os.environ, "RAY_ADDRESS": ray_head, "TRAINLAB_STORE": url, "TRAINLAB_ARTIFACTS": str(tmp_path / "runs")}
    tune = [sys.executable, "-m", "trainlab", "tune", str(cfg), "--executor", "ray", "--jobs", "2"]
    driver = subprocess.Popen(tune, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + TIMEOUT
    done: dict[int, tuple[float, dict]] = {}
    while time.time() < deadline and driver.poll() is None and len(done) < 2:
        time.sleep(0.1)
        with contextlib.suppress(Exception):  # the study may not exist yet
            study = Study.load("ray-e2e", storage=url)
            done = {t.number: (t.value, t.params) for t in study.trials if t.state == "complete"}
    assert len(done) >= 2, driver.communicate()[1].decode()[-3000:]
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    study = Study.load("ray-e2e", storage=url)
    before = {t.number: t for t in study.trials}
    done = {n: (t.value, t.params) for n, t in before.items() if t.state == "complete"}
    assert len(done) < 6, "the study finished before it could be killed; make its trials longer"
    # Ray stops the dead driver's tasks; their trials are left running until the study is reopened
    cut = [t for t in before.values() if t.state == "running"]
    deadline = time.time() + 120
    while time.time() < deadline and any(_pid_alive(int(t.worker.rpartition(":")[2])) for t in cut if t.worker):
        time.sleep(1)

    resume = [*tune, "--resume", "ray-e2e", "--trials", str(6 - len(done))]
    finished = subprocess.run(resume, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert finished.returncode == 0, finished.stderr[-3000:]
    after = Study.load("ray-e2e", storage=url).trials
    complete = [t for t in after if t.state == "complete"]
    assert len(complete) == 6
    for number, (value, params) in done.items():  # nothing finished was lost or redone
        t = next(t for t in after if t.number == number)
        assert (t.state, t.value, t.params) == ("complete", value, params)
    for t in cut:  # an interrupted trial: failed, its parameters run again to completion
        t_after = next(a for a in after if a.number == t.number)
        assert t_after.state == "failed" and "re-queued" in t_after.message
        assert any(c.params == t.params for c in complete)
    params = [json.dumps(c.params, sort_keys=True) for c in complete]
    assert len(set(params)) == 6  # no trial ran twice
    runs = Store(url).list_runs(group="ray-e2e")
    assert sum(r.status == "completed" for r in runs) == 6 and not any(r.status == "running" for r in runs)
    assert len({t.worker.rpartition(":")[2] for t in complete}) >= 2  # Ray worker processes, not the driver
