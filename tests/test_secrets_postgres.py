"""A password in a PostgreSQL store URL reaches no output, report, stored row or command line.

A real server (tests/postgres_server.py, ``postgres`` in tests/conftest.py) with password
authentication (scram-sha-256) and a role ``alice`` whose password is in the URL. The slow test
drives the ``trainlab`` executable through run, runs, show, compare (with a report), tune,
studies, show-study, report and two errors, and reads every child's /proc/PID/cmdline while
``compare --jobs 2`` and ``tune --jobs 2`` run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest

PASSWORD = "Pw9/sek:ret-Q7"  # '/' and ':' are percent-encoded in the URL: look for both forms
FORMS = (PASSWORD, quote(PASSWORD, safe=""))


def leaks(text: str | bytes) -> list[str]:
    """The forms of the password found in ``text``."""
    if isinstance(text, bytes):
        return [f for f in FORMS if f.encode() in text]
    return [f for f in FORMS if f in text]


def all_rows(admin_url: str) -> dict[str, list[tuple]]:
    """Every row of every table in the database's public schema, read as the superuser."""
    import sqlalchemy as sa

    engine = sa.create_engine(admin_url)
    try:
        with engine.connect() as conn:
            names = sa.inspect(conn).get_table_names()
            return {name: [tuple(r) for r in conn.execute(sa.text(f'SELECT * FROM "{name}"'))] for name in names}
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def alice(postgres):
    """(URL with alice's password, the superuser's URL of the same database, the server)."""
    url = postgres.create_role("alice", PASSWORD, "lab")
    return url, postgres.url("postgres", None, "lab"), postgres


def test_store_study_and_report_with_a_password_in_the_url(alice, tmp_path, monkeypatch):
    from trainlab.errors import ConfigError
    from trainlab.report.build import build_report
    from trainlab.store import Store
    from trainlab.tune import Float, Random, Study

    url, admin, server = alice
    monkeypatch.setenv("TRAINLAB_ARTIFACTS", str(tmp_path / "artifacts"))
    store = Store(url)
    run_id = store.create_run("pw-run", {"seed": 0, "name": "pw-run"}, seed=0, group="pw")
    store.log_metrics(run_id, [(1, "val_loss", 0.5)])
    store.finish_run(run_id, "failed", final={"val_loss": 0.5}, message=f"lost the connection to {url}")
    study = Study("pw-study", {"x": Float(0, 1)}, sampler=Random(), storage=url, objective={"config": {"seed": 0}})
    trial = study.ask()
    trial.report(1, 0.25)
    study.tell(trial, 0.25)
    html = build_report([run_id, "pw-study"], store)
    assert "postgresql+psycopg://alice:***@127.0.0.1" in html and not leaks(html)
    assert store.get_run(run_id).message == f"lost the connection to {url.replace(quote(PASSWORD, safe=''), '***')}"
    rows = all_rows(admin)
    assert {"runs", "metrics", "tune_studies", "tune_trials", "tune_intermediate"} <= {t for t, r in rows.items() if r}
    assert not leaks(repr(rows))

    wrong = server.url("alice", "not-the-password", "lab")
    with pytest.raises(ConfigError) as err:
        Store(wrong)
    assert "password authentication failed" in str(err.value) and "not-the-password" not in str(err.value)


def test_libpq_finds_the_password_in_pgpassword_or_pgpass(alice, tmp_path, monkeypatch):
    from trainlab.errors import ConfigError
    from trainlab.store import Store

    _, _, server = alice
    bare = server.url("alice", None, "lab")  # no password in the URL at all
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "none"))
    with pytest.raises(ConfigError, match="no password supplied"):
        Store(bare)
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    assert Store(bare).list_runs() is not None
    monkeypatch.delenv("PGPASSWORD")
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"127.0.0.1:{server.port}:lab:alice:{PASSWORD.replace(':', chr(92) + ':')}\n")
    pgpass.chmod(0o600)  # libpq ignores a password file others can read
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    assert Store(bare).list_runs() is not None
    services = tmp_path / "pg_service.conf"  # host, port, database and user under one name
    services.write_text(f"[lab]\nhost=127.0.0.1\nport={server.port}\ndbname=lab\nuser=alice\n")
    monkeypatch.setenv("PGSERVICEFILE", str(services))
    assert Store("postgresql+psycopg:///?service=lab").list_runs() is not None


# -- through the executable ------------------------------------------------------------------

CONFIG = """
name = "{name}"
seed = 0
[data]
name = "mnist1d"
batch_size = 64
subset = 256
[model]
name = "mlp"
hidden = [16]
[optim]
name = "sgd"
lr = 0.1
[train]
epochs = 1
threads = 1
"""
COMPARE = '[compare]\nseeds = 1\n"optim.lr" = [0.05, 0.1]\n'
SEARCH = """
[search]
name = "pw-tune"
sampler = "random"
metric = "val_loss"
[search.params]
"optim.lr" = { type = "float", low = 0.01, high = 0.5, log = true }
"""


def trainlab_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("trainlab")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "trainlab.cli"]


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found += children.get(pid, [])
        todo += children.get(pid, [])
    return found


def run_watched(args: list[str], env: dict, cwd: Path) -> tuple[subprocess.CompletedProcess, dict[int, str]]:
    """Run ``args``; meanwhile read the command line of the process and of all its descendants."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)
    out: dict[str, str] = {}
    reader = threading.Thread(target=lambda: out.update(zip(("stdout", "stderr"), proc.communicate(timeout=900))))
    reader.start()
    seen: dict[int, str] = {}
    while reader.is_alive():
        for pid in [proc.pid, *descendants(proc.pid)]:
            try:
                line = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:  # gone meanwhile
                continue
            if line:  # a zombie's is empty: keep what the live process showed
                seen[pid] = line
        time.sleep(0.05)
    reader.join()
    return subprocess.CompletedProcess(args, proc.returncode, out["stdout"], out["stderr"]), seen


@pytest.mark.slow
def test_the_password_appears_nowhere_through_the_executable(alice, tmp_path):
    url, admin, server = alice
    env = {**os.environ, "TRAINLAB_ARTIFACTS": str(tmp_path / "artifacts")}
    env.pop("TRAINLAB_STORE", None)
    texts: list[str] = []

    def trainlab(*args: str, status: int = 0) -> subprocess.CompletedProcess:
        r = subprocess.run(
            [*trainlab_cmd(), *args], check=False, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900
        )
        assert r.returncode == status, (args, r.stderr[-3000:])
        texts.extend([r.stdout, r.stderr])
        return r

    (tmp_path / "run.toml").write_text(CONFIG.format(name="pw-cli"))
    run_id = trainlab("run", "run.toml", "--store", url).stdout.strip().splitlines()[-1]  # with its progress output
    assert run_id in trainlab("runs", "--store", url).stdout
    shown = json.loads(trainlab("show", run_id, "--json", "--store", url).stdout)
    assert shown["id"] == run_id and shown["status"] == "completed"

    # Workers: the URL comes in through TRAINLAB_STORE (the environment), the workers get it
    # through the pool's pipe; no process of the tree may carry it on its command line.
    (tmp_path / "cmp.toml").write_text(CONFIG.format(name="pw-cmp") + COMPARE)
    (tmp_path / "tune.toml").write_text(CONFIG.format(name="pw-tune") + SEARCH)
    cmdlines: dict[int, str] = {}
    compare = ["compare", "cmp.toml", "--jobs", "2", "-o", "report.html"]
    for args in (compare, ["tune", "tune.toml", "--jobs", "2", "--trials", "2"]):
        r, seen = run_watched([*trainlab_cmd(), *args], {**env, "TRAINLAB_STORE": url}, tmp_path)
        assert r.returncode == 0, (args, r.stderr[-3000:])
        texts.extend([r.stdout, r.stderr])
        workers = [c for c in seen.values() if "multiprocessing" in c and "spawn_main" in c]
        assert len(workers) >= 2, seen  # the watch saw the workers it is about
        cmdlines.update(seen)
    assert not [c for c in cmdlines.values() if leaks(c)]

    trainlab("studies", "--store", url)
    study = json.loads(trainlab("show-study", "pw-tune", "--json", "--store", url).stdout)
    assert study["n_trials"] == 2 and study["counts"] == {"complete": 2}
    trainlab("report", "pw-tune", run_id, "--store", url, "-o", "study.html")
    # A password in the query string instead of the authority is masked the same way.
    in_query = server.url("alice", None, "lab") + "?password=" + quote(PASSWORD, safe="")
    assert run_id in trainlab("runs", "--store", in_query).stdout

    # Errors: a wrong password and an unreachable server; exit 2, no traceback, masked.
    wrong = server.url("alice", "Wr0ng-Pa55word", "lab")
    unreachable = type(server)(port=1).url("alice", PASSWORD, "lab")
    for bad, reason in ((wrong, "password authentication failed"), (unreachable, "refused")):
        r = trainlab("runs", "--store", bad, status=2)
        assert reason in r.stderr and "alice:***@127.0.0.1" in r.stderr and "Traceback" not in r.stderr
        assert "Wr0ng-Pa55word" not in r.stderr

    for report in ("report.html", "study.html"):
        html = (tmp_path / report).read_text()
        assert "store postgresql+psycopg://alice:***@127.0.0.1" in html, report
    assert not [t for t in texts if leaks(t)]
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".pt" for p in files)  # checkpoints were written and are scanned too
    assert not [p for p in files if leaks(p.read_bytes())]
    rows = all_rows(admin)
    assert len(rows["runs"]) >= 5 and rows["tune_trials"] and rows["tune_studies"]
    assert not leaks(repr(rows))
