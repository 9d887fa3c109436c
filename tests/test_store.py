import subprocess
import sys

import numpy as np
import pytest

from trainlab.errors import ConfigError
from trainlab.store import Store

WRITER = """
import sys
from trainlab.store import Store
store = Store(sys.argv[1])
run_id = store.create_run(sys.argv[2], {"writer": sys.argv[2]}, seed=0)
for batch in range(40):
    store.log_metrics(run_id, [(batch * 50 + i, "loss", float(i)) for i in range(50)])
store.finish_run(run_id, "completed", final={"rows": 2000})
print(run_id)
"""


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    db = tmp_path / "shared.db"
    Store(db)  # create the schema once so both writers race on rows, not on DDL
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(db), f"w{i}"], stdout=subprocess.PIPE, text=True)
        for i in range(2)
    ]
    ids = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    store = Store(db)
    for run_id in ids:
        steps, values = store.metrics(run_id)["loss"]
        assert len(steps) == 2000 and list(steps) == list(range(2000))
        assert store.get_run(run_id).status == "completed"


def test_metrics_round_trip_and_truncate(store):
    run_id = store.create_run("r", {"a": 1}, seed=3, group="g")
    store.log_metrics(run_id, [(0, "loss", 2.0), (1, "loss", float("nan")), (2, "loss", 1.0), (2, "acc", 0.5)])
    steps, values = store.metrics(run_id)["loss"]
    assert list(steps) == [0, 1, 2] and np.isnan(values[1]) and values[2] == 1.0
    store.truncate_metrics(run_id, after_step=1)
    assert list(store.metrics(run_id)["loss"][0]) == [0, 1] and "acc" not in store.metrics(run_id)
    assert store.list_runs(group="g")[0].id == run_id and store.list_runs(group="other") == []
    assert store.get_run(run_id[:6]).id == run_id  # a unique prefix is enough


def test_bad_store_url_and_missing_run(store):
    with pytest.raises(ConfigError, match="nosuchdialect.*unknown kind of database"):
        Store("nosuchdialect://x")
    with pytest.raises(ConfigError, match="no run 'zzz'"):
        store.get_run("zzz")
    with pytest.raises(ValueError, match="status must be one of"):
        store.set_status(store.create_run("r", {}), "exploded")


# -- one transaction per artifact row ------------------------------------------------------


def test_add_artifact_is_one_transaction(store, tmp_path):
    """A failure between the delete and the insert (a kill) must not leave the run without its row."""
    import sqlalchemy as sa

    run_id = store.create_run("r", {})
    store.add_artifact(run_id, "checkpoint", tmp_path / "old.pt")

    def fail_on_insert(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("INSERT INTO ARTIFACTS"):
            raise KeyboardInterrupt  # what a kill between the two statements looks like to the transaction

    sa.event.listen(store.engine, "before_cursor_execute", fail_on_insert)
    with pytest.raises(KeyboardInterrupt):
        store.add_artifact(run_id, "checkpoint", tmp_path / "new.pt")
    sa.event.remove(store.engine, "before_cursor_execute", fail_on_insert)
    assert store.artifacts(run_id) == {"checkpoint": (tmp_path / "old.pt").absolute()}
    store.add_artifact(run_id, "checkpoint", tmp_path / "new.pt")
    assert store.artifacts(run_id) == {"checkpoint": (tmp_path / "new.pt").absolute()}


# -- a store that cannot be used is one line naming it ----------------------------------------


def _sqlite_file_with_a_run(path) -> str:
    s = Store(path)
    run_id = s.create_run("r", {"a": 1}, seed=0)
    s.finish_run(run_id, "completed", final={"val_acc": 0.5})
    s.engine.dispose()
    return run_id


@pytest.mark.parametrize("damage", ["random", "truncated", "foreign"])
def test_a_damaged_store_file_is_one_line_naming_it(tmp_path, damage):
    db = tmp_path / "s.db"
    if damage == "random":
        db.write_bytes(np.random.default_rng(0).bytes(8192))
    elif damage == "truncated":
        _sqlite_file_with_a_run(db)
        for extra in tmp_path.glob("s.db-*"):
            extra.unlink()
        data = db.read_bytes()
        db.write_bytes(data[:100] + b"\0" * (len(data) - 100))  # header kept, pages gone
    else:
        db.write_text("name = 'a TOML file given as --store'\n")
    with pytest.raises(ConfigError) as err:
        Store(db).list_runs()
    msg = str(err.value)
    assert str(db) in msg and "damaged or is not a SQLite database" in msg and "move it aside" in msg
    assert "\n" not in msg and "Background on this error" not in msg


def test_an_empty_store_file_is_a_new_store(tmp_path):
    (tmp_path / "s.db").write_bytes(b"")
    assert Store(tmp_path / "s.db").list_runs() == []


def test_store_paths_that_cannot_be_made(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match=r"cannot create the folder .*file/sub: part of that path is a file"):
        Store(tmp_path / "file" / "sub" / "s.db")
    with pytest.raises(ConfigError, match=r"is a folder; give a file path such as .*/trainlab\.db"):
        Store(tmp_path)
    with pytest.raises(
        ConfigError,
        match=r"run store 'mysql://u:\*\*\*@localhost/x': its database driver is not installed .*pip install mysql",
    ):
        Store("mysql://u:secret@localhost/x")


def test_an_unreachable_server_is_one_line_without_the_password():
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pytest.importorskip("psycopg")
    with pytest.raises(ConfigError) as err:
        Store(f"postgresql+psycopg://me:secret@127.0.0.1:{port}/db")
    msg = str(err.value)
    assert msg.startswith(f"cannot connect to the run store postgresql+psycopg://me:***@127.0.0.1:{port}/db:")
    assert "secret" not in msg and "\n" not in msg and "Background on this error" not in msg


def test_a_long_or_odd_run_id_is_one_line(store):
    run_id = store.create_run("r", {})
    with pytest.raises(ConfigError, match=r"no run 'aaaa.*… \(100000 characters\)'.*1 to 64 characters") as err:
        store.get_run("a" * 100_000)
    assert len(str(err.value)) < 300
    assert store.get_run(run_id[:3]).id == run_id
    with pytest.raises(ConfigError, match="no run '%'"):
        store.get_run("%")  # a LIKE wildcard is a character, not a pattern
    with pytest.raises(ConfigError, match="too long"):
        store.create_run("r", {}, run_id="x" * 65)


def test_a_disk_full_during_a_write_is_one_line(store):
    """SQLite's page limit gives the very error a full disk gives (SQLITE_FULL)."""
    run_id = store.create_run("r", {})
    with store.engine.connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar()

    def cap(dbapi_conn, _record):
        dbapi_conn.execute(f"PRAGMA max_page_count={pages}")

    import sqlalchemy as sa

    store.engine.dispose()
    sa.event.listen(store.engine, "connect", cap)
    with pytest.raises(
        ConfigError, match=r"run store .*trainlab\.db: the disk is full \(database or disk is full\); free some space"
    ):
        store.log_metrics(run_id, [(i, "loss", float(i)) for i in range(20000)])
    assert store.get_run(run_id).status == "running"


def test_an_older_store_gains_the_new_columns(tmp_path):
    import sqlite3

    db = tmp_path / "old.db"
    con = sqlite3.connect(db)  # the runs table as the first trainlab release made it
    con.execute(
        'CREATE TABLE runs (id VARCHAR(64) PRIMARY KEY, name VARCHAR(200) NOT NULL, "group" VARCHAR(200), '
        "config_hash VARCHAR(64), config TEXT NOT NULL, status VARCHAR(20) NOT NULL, seed INTEGER, "
        "created_at FLOAT NOT NULL, updated_at FLOAT NOT NULL, "
        "finished_at FLOAT, final TEXT, message TEXT, versions TEXT)"
    )
    con.execute(
        "INSERT INTO runs (id, name, config, status, created_at, updated_at) "
        "VALUES ('old1', 'r', '{}', 'completed', 1, 1)"
    )
    con.commit()
    con.close()
    store = Store(db)
    assert store.get_run("old1").status == "completed"
    assert store.get_run(store.create_run("new", {})).status == "running"


# -- owners, heartbeats and reaping -------------------------------------------------------------


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_reap_marks_runs_whose_process_is_gone(store):
    import socket
    import time

    import sqlalchemy as sa

    from trainlab.store import runs_table

    host, now = socket.gethostname(), time.time()
    ids = {
        name: store.create_run(name, {}, group="g")
        for name in ("mine", "dead", "far-fresh", "far-stale", "legacy", "done")
    }
    owners = {
        "dead": (f"{host}:{_dead_pid()}", now),
        "far-fresh": ("elsewhere:1", now),
        "far-stale": ("elsewhere:1", now - 1000),
        "legacy": (None, None),
    }
    with store.engine.begin() as conn:
        for name, (owner, beat) in owners.items():
            conn.execute(
                runs_table.update()
                .where(runs_table.c.id == ids[name])
                .values(owner=owner, heartbeat_at=beat, updated_at=now - 1000 if owner is None else now)
            )
    store.finish_run(ids["done"], "completed", final={})
    assert sorted(store.reap(group="other")) == []
    reaped = store.reap(group="g", stale_after=300)
    assert sorted(reaped) == sorted(ids[n] for n in ("dead", "far-stale", "legacy"))
    statuses = {name: store.get_run(i).status for name, i in ids.items()}
    assert statuses == {
        "mine": "running",
        "dead": "interrupted",
        "far-fresh": "running",
        "far-stale": "interrupted",
        "legacy": "interrupted",
        "done": "completed",
    }
    assert "is gone; resume with `trainlab run --resume" in store.get_run(ids["dead"]).message
    assert store.reap() == []  # nothing left to reap: idempotent
    with store.engine.connect() as conn:  # a resumed run belongs to the process that resumed it
        store.set_status(ids["dead"], "running")
        owner = conn.execute(sa.select(runs_table.c.owner).where(runs_table.c.id == ids["dead"])).scalar()
    assert owner == f"{host}:{__import__('os').getpid()}"


def test_the_heartbeat_marks_running_runs_alive_and_lets_finished_ones_go(store):
    import sqlalchemy as sa

    from trainlab.store import _heartbeat, runs_table

    running, done = store.create_run("a", {}), store.create_run("b", {})
    with store.engine.begin() as conn:
        conn.execute(runs_table.update().values(heartbeat_at=1.0))
    store.finish_run(done, "completed", final={})
    beat = _heartbeat(store)
    beat.beat()
    with store.engine.connect() as conn:
        beats = dict(conn.execute(sa.select(runs_table.c.id, runs_table.c.heartbeat_at)).all())
    assert beats[running] > 1e9 and beats[done] == 1.0
    assert running in beat.runs and done not in beat.runs


# -- leases: each run made once ----------------------------------------------------------------


def test_a_lease_is_held_once_and_taken_over_from_a_dead_holder(store):
    import socket
    import time

    from trainlab.store import leases_table

    assert store.claim("g", "h1", seed=1) is True
    assert store.claim("g", "h1") is False  # held (by this process)
    other = Store(store.url)
    assert other.claim("g", "h1") is False
    store.release("g", "h1")
    assert other.claim("g", "h1") is True
    other.release("g", "h1")

    def held_by(owner: str, beat: float) -> None:
        with store.engine.begin() as conn:
            conn.execute(leases_table.delete())
            conn.execute(
                leases_table.insert().values(
                    group="g", config_hash="h2", seed=2, owner=owner, heartbeat_at=beat, acquired_at=beat
                )
            )

    now = time.time()
    held_by("elsewhere:7", now)
    assert store.claim("g", "h2") is False  # another host, beating
    held_by("elsewhere:7", now - 1000)
    assert store.claim("g", "h2", stale_after=300) is True  # another host, silent: abandoned
    store.release("g", "h2")
    held_by(f"{socket.gethostname()}:{_dead_pid()}", now)
    with store.lease("g", "h2") as held:  # this host, dead pid: taken over at once
        assert held is True
    with store.engine.connect() as conn:
        assert conn.execute(leases_table.select()).all() == []  # released on leaving


def test_resume_hint_names_fit_for_runs_of_python_objects(store):
    """A run that ``trainlab.fit`` made from Python objects cannot be rebuilt by the command
    line: its interrupted message (also when reaped) names ``fit(..., resume=...)``."""
    import socket
    import time

    from trainlab.store import resume_hint, runs_table

    assert resume_hint("abc") == "resume with `trainlab run --resume abc`"
    assert (
        resume_hint("abc", {"model": {"name": "mlp"}}, nproc=2) == "resume with `trainlab run --resume abc --nproc 2`"
    )
    by_fit = {"model": {"name": "mlp", "python": "mod:Net"}, "seed": 0}
    assert resume_hint("abc", by_fit).startswith("resume with trainlab.fit(..., resume='abc')")
    run_id = store.create_run("fit-run", by_fit, seed=0)
    with store.engine.begin() as conn:  # its process is gone: dead pid on this host
        conn.execute(
            runs_table.update()
            .where(runs_table.c.id == run_id)
            .values(owner=f"{socket.gethostname()}:{_dead_pid()}", heartbeat_at=time.time())
        )
    assert store.reap() == [run_id]
    assert "is gone; resume with trainlab.fit(..., resume=" in store.get_run(run_id).message
