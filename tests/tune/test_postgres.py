"""A study shared through a real PostgreSQL server (initdb into a temp dir, a free loopback port).

Needs the server binaries (Debian: ``apt-get install -y postgresql``; ``.ci/run`` installs
them when ``pg_ctl`` is absent) and the ``psycopg`` driver (the dev extra).
"""

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from trainlab.tune import Float, Random, Study, minimize

HERE = Path(__file__).parent



def _pg_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pg_url():
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries (pg_ctl) on this machine; apt-get install -y postgresql")
    pytest.importorskip("psycopg", reason="the psycopg driver is not installed (pip install 'psycopg[binary]')")
    # initdb refuses to run as root: run the server as 'nobody' in a directory it owns.
    as_user = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
    root = Path(tempfile.mkdtemp(prefix="trainlab-pg-"))
    if as_user:
        shutil.chown(root, "nobody")
    data, port = root / "data", _free_port()
    run = lambda *cmd: subprocess.run([*as_user, *cmd], check=True, capture_output=True, cwd=root)  # noqa: E731
    try:
        run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-o", f"-p {port} -k {root} -h 127.0.0.1", "start")
    except subprocess.CalledProcessError as err:
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"could not start PostgreSQL: {err.stderr.decode(errors='replace')}")
    yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
    shutil.rmtree(root, ignore_errors=True)


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

    study = minimize(tune_objectives.quadratic, {"x": Float(0.0, 1.0)}, sampler=Random(), n_trials=6, storage=pg_url, name="pg-jobs", jobs=2)
    assert len(study.trials) == 6 and all(t.state == "complete" for t in study.trials)
    assert len({t.worker for t in study.trials}) == 2
