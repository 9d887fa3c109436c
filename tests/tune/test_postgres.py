"""A study shared through a real PostgreSQL server (``postgres`` in tests/conftest.py: initdb
into a temp dir, a free loopback port).

Needs the server binaries (Debian: ``apt-get install -y postgresql``; ``.ci/run`` installs
them when ``pg_ctl`` is absent) and the ``psycopg`` driver (the dev extra).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from trainlab.tune import Float, Random, Study, minimize

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def pg_url(postgres):
    """The shared server's superuser URL (no password: trust on loopback; tests/postgres_server.py)."""
    return postgres.url()


def test_two_workers_share_a_postgres_study(pg_url, tmp_path):
    study = Study("pg-race", {"x": Float(0.0, 1.0)}, sampler=Random(), storage=pg_url)
    for i in range(20):
        study.enqueue({"x": i / 20})
    log = tmp_path / "log.txt"
    script = (
        f"import sys; sys.path.insert(0, {str(HERE)!r})\n"
        "import tune_objectives\n"
        "from trainlab.tune import Study\n"
        f"Study.load('pg-race', storage={pg_url!r}).optimize(tune_objectives.log_number, 15)\n"
    )
    env = {**os.environ, "TUNE_LOG": str(log)}
    procs = [subprocess.Popen([sys.executable, "-c", script], env=env) for _ in range(2)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    numbers = [int(line.split()[0]) for line in log.read_text().splitlines()]
    assert len(numbers) == 30 and len(set(numbers)) == 30
    trials = Study.load("pg-race", storage=pg_url).trials
    assert len(trials) == 30 and all(t.state == "complete" for t in trials)


def test_parallel_jobs_on_postgres(pg_url):
    import tune_objectives

    study = minimize(
        tune_objectives.quadratic,
        {"x": Float(0.0, 1.0)},
        sampler=Random(),
        n_trials=6,
        storage=pg_url,
        name="pg-jobs",
        jobs=2,
    )
    assert len(study.trials) == 6 and all(t.state == "complete" for t in study.trials)
    assert len({t.worker for t in study.trials}) == 2


@pytest.mark.slow
def test_two_compares_at_once_on_postgres_make_each_run_once(pg_url, tmp_path):
    """Leases are a primary-key row: on PostgreSQL too, two comparisons of one config make each run once."""
    from collections import Counter

    from trainlab.store import Store

    cfg = tmp_path / "c.toml"
    cfg.write_text(
        'name = "pgc"\n[data]\nname = "spirals"\nn_samples = 200\nbatch_size = 32\n[model]\nhidden = [8]\n'
        '[train]\nmax_steps = 20\nthreads = 1\n[compare]\nseeds = 2\n"optim.lr" = [0.05, 0.1]\n'
    )
    store = Store(pg_url, artifact_root=tmp_path / "artifacts")
    env = {**os.environ, "TRAINLAB_ARTIFACTS": str(tmp_path / "artifacts")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "trainlab.cli", "compare", str(cfg), "--store", pg_url, "-q"],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    assert [p.wait(timeout=600) for p in procs] == [0, 0], [p.stderr.read() for p in procs]
    records = store.list_runs(group="pgc")
    made = Counter((r.name, r.seed) for r in records)
    assert len(made) == 4 and set(made.values()) == {1} and all(r.status == "completed" for r in records)
