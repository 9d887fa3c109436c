"""The run store: every run, its config, status, metrics and artifacts, in one database.

SQLite file by default (``runs/trainlab.db``); any SQLAlchemy URL (``postgresql://...``) moves
the same store to a shared server for many machines. On SQLite the database runs in WAL
mode with a busy timeout, so several processes (parallel runs, study workers) write at
once without losing rows.

Every run records its owner (``host:pid``) and a heartbeat while it runs, so a run whose
process died (kill -9, a lost machine) is told apart from one still training:
:meth:`Store.reap` marks those ``interrupted``. A lease per (group, config hash) —
:meth:`Store.lease`, one row under a primary key, taken in one transaction — lets several
processes share the runs of one comparison so that each runs once.

A store that cannot be used — a damaged file, an unreachable server, a read-only file, a
full disk, a missing driver — is one :class:`~trainlab.errors.ConfigError` naming the store
and the fix, raised where SQLAlchemy reports it. On a full disk a SQLite store falls back
to read-only access, so listing and showing runs still works.

Artifacts (checkpoints, fitted preprocessing, reports) live as files under
``artifact_root/<run_id>/``; the store records their paths. ``artifact_root`` is, in order: the
argument, ``$TRAINLAB_ARTIFACTS``, the SQLite file's folder, ``runs/`` (a server URL). ``":memory:"``
keeps the runs in memory (one database per process, shared by every ``Store(":memory:")`` in
it) and the run folders in a temporary folder removed at exit.

Example::

    store = Store("runs/trainlab.db")
    run_id = store.create_run("demo", {"seed": 0}, seed=0)
    store.log_metrics(run_id, [(0, "train_loss", 2.3), (0, "val_acc", 0.1)])
    store.finish_run(run_id, "completed", final={"val_acc": 0.1})
"""

from __future__ import annotations

import atexit
import functools
import json
import math
import os
import platform
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError

from trainlab._io import make_dirs
from trainlab.credentials import check_url, display_url, redact
from trainlab.errors import ConfigError

DEFAULT_STORE = "runs/trainlab.db"
MEMORY = "sqlite://"  # what ":memory:" resolves to
STATUSES = ("running", "completed", "diverged", "failed", "interrupted", "pruned")
HEARTBEAT_SECONDS = 30.0  # how often a process marks its running runs and held leases alive
STALE_AFTER = 300.0  # a run or lease of another host without a heartbeat this long is abandoned
MAX_ID_LENGTH = 64  # the width of runs.id

metadata = sa.MetaData()

runs_table = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("group", sa.String(200), index=True),  # a comparison or study the run belongs to
    sa.Column("config_hash", sa.String(64), index=True),
    sa.Column("config", sa.Text, nullable=False),  # JSON
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("seed", sa.Integer),
    sa.Column("created_at", sa.Float, nullable=False),  # unix seconds
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float),
    sa.Column("final", sa.Text),  # JSON: final metrics
    sa.Column("message", sa.Text),
    sa.Column("versions", sa.Text),  # JSON: python, torch, trainlab
    sa.Column("owner", sa.String(200)),  # host:pid of the process running it
    sa.Column("heartbeat_at", sa.Float),  # last sign of life of that process (unix seconds)
)

metrics_table = sa.Table(
    "metrics",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("value", sa.Float),
    sa.Index("ix_metrics_run_key_step", "run_id", "key", "step"),
)

artifacts_table = sa.Table(
    "artifacts",
    metadata,
    sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("kind", sa.String(100), primary_key=True),
    sa.Column("path", sa.Text, nullable=False),
)

# One row per run being made: the primary key lets exactly one process hold it. The config
# hash covers the seed (it is part of the config); ``seed`` is kept for reading the table.
leases_table = sa.Table(
    "run_leases",
    metadata,
    sa.Column("group", sa.String(200), primary_key=True),  # "" for runs outside a group
    sa.Column("config_hash", sa.String(64), primary_key=True),
    sa.Column("seed", sa.BigInteger),
    sa.Column("owner", sa.String(200), nullable=False),
    sa.Column("heartbeat_at", sa.Float, nullable=False),
    sa.Column("acquired_at", sa.Float, nullable=False),
)


@dataclass
class RunRecord:
    """One row of the ``runs`` table, decoded."""

    id: str
    name: str
    status: str
    config: dict[str, Any]
    seed: int | None
    created_at: float
    updated_at: float
    finished_at: float | None = None
    final: dict[str, Any] = field(default_factory=dict)
    message: str | None = None
    group: str | None = None
    config_hash: str | None = None
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def wall_time(self) -> float | None:
        return None if self.finished_at is None else self.finished_at - self.created_at

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "seed": self.seed,
            "group": self.group,
            "config": self.config,
            "final": self.final,
            "message": self.message,
            "created_at": _iso(self.created_at),
            "finished_at": _iso(self.finished_at),
            "versions": self.versions,
        }


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")


def versions() -> dict[str, str]:
    import torch

    import trainlab

    return {"python": platform.python_version(), "torch": torch.__version__, "trainlab": trainlab.__version__}


def resolve_url(url: str | os.PathLike | None = None) -> str:
    """``None`` -> ``$TRAINLAB_STORE`` or ``runs/trainlab.db``; a plain path -> a SQLite URL;
    ``":memory:"`` -> ``sqlite://`` (in memory)."""
    url = os.fspath(url) if url is not None else os.environ.get("TRAINLAB_STORE") or DEFAULT_STORE
    if url in (":memory:", MEMORY, "sqlite:///:memory:"):
        return MEMORY
    if "://" in url:
        return check_url(url)
    return f"sqlite:///{Path(url).expanduser().absolute()}"


def shown_url(url: str) -> str:
    """The store as messages name it: a SQLite store by its file path, a server by its URL
    without the password (:func:`trainlab.credentials.display_url`)."""
    if url.startswith("sqlite"):
        try:
            return sa.engine.make_url(url).database or ":memory:"
        except sa.exc.ArgumentError:
            pass
    return display_url(url)


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else f"{text[: limit // 2]}… ({len(text)} characters)"


# -- who runs what: owners and heartbeats ---------------------------------------------------


def worker_id() -> str:
    """This process as ``host:pid``: the owner recorded on the runs and leases it holds."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def resume_hint(run_id: str, config: Mapping[str, Any] | None = None, nproc: int = 1) -> str:
    """How to continue an interrupted run, for its message: ``trainlab run --resume`` for a
    config run; ``trainlab.fit(..., resume=...)`` for one made by ``fit`` from Python objects
    (its config records them as ``python`` labels), which the command line cannot rebuild."""
    by_fit = any(isinstance(section, Mapping) and section.get("python") for section in (config or {}).values())
    if by_fit:
        return f"resume with trainlab.fit(..., resume={run_id!r}) and the same model, data and arguments"
    return f"resume with `trainlab run --resume {run_id}{f' --nproc {nproc}' if nproc != 1 else ''}`"


def worker_gone(worker: str | None, heartbeat_at: float | None, stale_after: float, now: float) -> bool:
    """True when the process ``worker`` (``host:pid``) can no longer finish what it holds: on
    this host its pid is dead; on another host (or unknown) it sent no heartbeat for ``stale_after`` s."""
    host, _, pid = (worker or "").rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        return not _pid_alive(int(pid))
    return heartbeat_at is None or now - heartbeat_at > stale_after


_HELD: set[tuple[str, str, str]] = set()  # (store url, group, config hash) of the leases this process holds
_HELD_LOCK = threading.Lock()


class _Heartbeat:
    """One daemon thread per process and store: every ``HEARTBEAT_SECONDS`` it marks this
    process's running runs and held leases alive, so that another host can tell them from
    abandoned ones. It stops by itself when nothing is left to watch."""

    def __init__(self, url: str, engine: sa.Engine):
        self.url, self.engine = url, engine
        self.runs: set[str] = set()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def watch(self, run_id: str | None = None) -> None:
        with self.lock:
            if run_id is not None:
                self.runs.add(run_id)
            if self.thread is None:
                self.thread = threading.Thread(target=self._loop, name="trainlab-heartbeat", daemon=True)
                self.thread.start()

    def _loop(self) -> None:
        while True:
            time.sleep(HEARTBEAT_SECONDS)
            with _HELD_LOCK:
                holds_lease = any(held[0] == self.url for held in _HELD)
            with self.lock:
                if not self.runs and not holds_lease:
                    self.thread = None
                    return
            try:
                self.beat()
            except Exception:  # a missed beat is harmless: the next one retries
                pass

    def beat(self) -> None:
        me, now = worker_id(), time.time()
        with self.lock:
            runs = list(self.runs)
        with self.engine.begin() as conn:
            for run_id in runs:
                alive = runs_table.c.id == run_id, runs_table.c.status == "running", runs_table.c.owner == me
                if conn.execute(runs_table.update().where(*alive).values(heartbeat_at=now)).rowcount == 0:
                    with self.lock:  # finished, or resumed by another process: no longer ours to mark
                        self.runs.discard(run_id)
            conn.execute(leases_table.update().where(leases_table.c.owner == me).values(heartbeat_at=now))


_HEARTBEATS: dict[str, _Heartbeat] = {}
_HEARTBEATS_LOCK = threading.Lock()


def _heartbeat(store: Store) -> _Heartbeat:
    with _HEARTBEATS_LOCK:
        if store.url not in _HEARTBEATS:
            _HEARTBEATS[store.url] = _Heartbeat(store.url, store.engine)
        return _HEARTBEATS[store.url]


def _unwatch(store: Store, run_id: str) -> None:
    beat = _HEARTBEATS.get(store.url)
    if beat is not None:
        with beat.lock:
            beat.runs.discard(run_id)


# -- engines and the errors of a store that cannot be used -------------------------------------


class StoreUnusable(ConfigError):
    """The run store cannot be used as it is; ``kind`` is one of corrupt, readonly, full, io,
    open, unreachable."""

    def __init__(self, message: str, kind: str):
        super().__init__(message)
        self.kind = kind

    def __reduce__(self):  # a worker process's error reaches its driver whole
        return type(self), (str(self), self.kind)


# (words of SQLite's message, kind, what is wrong, the fix)
_SQLITE_FAULTS = (
    (("not a database", "malformed", "encrypted"), "corrupt", "the file is damaged or is not a SQLite database",
     "move it aside (a new store is then created in its place) or give another --store"),
    (("readonly", "read-only"), "readonly", "the database is read-only",
     "make the file and its folder writable, or give another --store"),
    (("disk is full",), "full", "the disk is full", "free some space and rerun (the runs finished so far are kept)"),
    (("disk i/o error",), "io", "disk I/O error (a full disk or a failing device)",
     "free some space or check the disk"),
    (("unable to open database file",), "open", "cannot open the database file",
     "check that the path is a file in an existing folder you may write to"),
)  # fmt: skip

_URL_HINT = "give a SQLite path or a URL such as postgresql+psycopg://user@host/db"
_DRIVER_PACKAGES = {"MySQLdb": "mysqlclient", "psycopg": "'psycopg[binary]'", "psycopg2": "psycopg2-binary"}


def store_error(
    orig: BaseException, shown: str, *, sqlite: bool, connecting: bool = False, read_only_because: str | None = None
) -> StoreUnusable | None:
    """The one-line error for a database error that says the store itself cannot be used (a
    damaged file, a read-only or full disk, an unreachable server); None for any other error
    (a busy database is retried, a constraint violation is the caller's to handle)."""
    text = redact(str(orig)).strip()  # a driver's message may quote a connection string
    msg = text.splitlines()[0].strip() if text else type(orig).__name__
    low = msg.lower()
    if "locked" in low or "busy" in low:
        return None
    if sqlite:
        if read_only_because is not None and "readonly" in low:
            return StoreUnusable(
                f"run store {shown} cannot be written: {read_only_because} "
                "(it is open read-only, so reading commands still work)",
                "readonly",
            )
        for needles, kind, problem, fix in _SQLITE_FAULTS:
            if any(n in low for n in needles):
                return StoreUnusable(f"run store {shown}: {problem} ({msg}); {fix}", kind)
        return None
    if connecting:
        return StoreUnusable(
            f"cannot connect to the run store {shown}: {msg}; "
            "check that the server is running and the URL, user and password",
            "unreachable",
        )
    return None


def _raise_store_error(context, *, shown: str, read_only_because: str | None) -> None:
    """SQLAlchemy's ``handle_error`` hook: a store that cannot be used becomes one line."""
    if context.is_pre_ping:
        return  # the pool reconnects by itself
    err = store_error(
        context.original_exception,
        shown,
        sqlite=context.dialect.name == "sqlite",
        connecting=context.connection is None or context.is_disconnect,
        read_only_because=read_only_because,
    )
    if err is not None:
        raise err from context.original_exception


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer, writers queue
    cur.execute("PRAGMA synchronous=NORMAL")  # safe with WAL; a crash loses no committed row
    cur.execute("PRAGMA busy_timeout=60000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _make_folder(folder: Path, shown: str) -> None:
    try:
        make_dirs(folder)
    except (FileExistsError, NotADirectoryError) as err:
        raise ConfigError(
            f"run store {shown}: cannot create the folder {folder}: part of that path is a file; "
            "give a --store path in a folder"
        ) from err
    except OSError as err:
        raise ConfigError(
            f"run store {shown}: cannot create the folder {folder} ({err.strerror}); "
            "give a --store path in a writable folder"
        ) from err


def make_engine(url: str, *, read_only_because: str | None = None) -> sa.Engine:
    """An engine for ``url``; on SQLite: WAL, busy timeout, the file's folder created.

    A store that cannot be used — a bad URL, a missing driver, a folder that cannot be made,
    and later any :func:`store_error` — raises one :class:`ConfigError`. ``read_only_because``
    opens an existing SQLite file read-only (no WAL index to create: works on a full disk);
    a write then fails with that reason.
    """
    if url == MEMORY:
        return _memory_engine()
    shown = shown_url(url)
    try:
        if url.startswith("sqlite"):
            path = sa.engine.make_url(url).database
            if read_only_because is not None:
                from urllib.parse import quote

                engine = sa.create_engine(f"sqlite:///file:{quote(str(path))}?mode=ro&immutable=1&uri=true")
            else:
                if path and path != ":memory:":
                    if Path(path).is_dir():
                        example = Path(path) / "trainlab.db"
                        raise ConfigError(f"run store {shown} is a folder; give a file path such as {example}")
                    _make_folder(Path(path).parent, shown)
                engine = sa.create_engine(url, connect_args={"timeout": 60})
                sa.event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = sa.create_engine(url, pool_pre_ping=True)
    except sa.exc.NoSuchModuleError as err:
        raise ConfigError(f"run store '{shown}': unknown kind of database ({err}); {_URL_HINT}") from err
    except sa.exc.ArgumentError as err:
        raise ConfigError(f"run store '{shown}' is not a valid URL ({err}); {_URL_HINT}") from err
    except ImportError as err:
        package = _DRIVER_PACKAGES.get(err.name or "", err.name)
        raise ConfigError(
            f"run store '{shown}': its database driver is not installed (no module '{err.name}'); pip install {package}"
        ) from err
    hook = functools.partial(_raise_store_error, shown=shown, read_only_because=read_only_because)
    sa.event.listen(engine, "handle_error", hook)
    return engine


def create_tables(tables: sa.MetaData, engine: sa.Engine, attempts: int = 5) -> None:
    """``tables.create_all(engine)``, safe when another process creates the same tables at the
    same moment (its CREATE TABLE wins between our check and our own CREATE)."""
    for attempt in range(attempts):
        try:
            tables.create_all(engine)
            return
        except sa.exc.DBAPIError as err:
            text = str(err.orig if err.orig is not None else err).lower()
            if ("already exists" not in text and "duplicate key" not in text) or attempt == attempts - 1:
                raise


def create_schema(engine: sa.Engine) -> None:
    """Create the tables, and add the columns a store made by an older trainlab lacks."""
    create_tables(metadata, engine)
    have = {c["name"] for c in sa.inspect(engine).get_columns("runs")}
    for column in runs_table.columns:
        if column.name in have:
            continue
        try:
            with engine.begin() as conn:
                kind = column.type.compile(engine.dialect)
                conn.execute(sa.text(f"ALTER TABLE runs ADD COLUMN {column.name} {kind}"))
        except sa.exc.DBAPIError:
            if column.name not in {c["name"] for c in sa.inspect(engine).get_columns("runs")}:
                raise  # not another process adding it at the same moment


@functools.cache
def _memory_engine() -> sa.Engine:
    """This process's in-memory database: one connection, shared by every thread (each new
    connection to ``sqlite://`` would be a new, empty database)."""
    engine = sa.create_engine(MEMORY, poolclass=sa.pool.StaticPool, connect_args={"check_same_thread": False})
    sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


@functools.cache
def _memory_artifacts() -> Path:
    path = Path(tempfile.mkdtemp(prefix="trainlab-memory-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def resolve_artifact_root(url: str, root: str | os.PathLike | None = None) -> Path:
    """Where run folders go: ``root``, else ``$TRAINLAB_ARTIFACTS``, else beside the SQLite file
    (a temporary folder for ``:memory:``, ``runs/`` for a server URL)."""
    root = root or os.environ.get("TRAINLAB_ARTIFACTS")
    if root:
        return Path(root).expanduser()
    if url == MEMORY:
        return _memory_artifacts()
    db = sa.engine.make_url(url).database if url.startswith("sqlite") else None
    return Path(db).parent if db else Path("runs")


def retry_on_busy(fn, *args, attempts: int = 20, **kwargs):
    """Run ``fn`` again when the database reports it is locked (another process writing)."""
    for i in range(attempts):
        try:
            return fn(*args, **kwargs)
        except OperationalError as err:
            if ("locked" not in str(err).lower() and "busy" not in str(err).lower()) or i == attempts - 1:
                raise
            time.sleep(min(0.05 * 2**i, 2.0))
    raise AssertionError("unreachable")


class Store:
    """The run store at ``url`` (a SQLAlchemy URL, a path to a SQLite file or ``":memory:"``);
    run folders under ``artifact_root`` (see :func:`resolve_artifact_root`)."""

    def __init__(self, url: str | os.PathLike | None = None, artifact_root: str | os.PathLike | None = None):
        self.url = resolve_url(url)
        self.shown = shown_url(self.url)  # what messages print: no password
        self.read_only_because: str | None = None
        self.engine = make_engine(self.url)
        try:
            retry_on_busy(create_schema, self.engine)
        except StoreUnusable as err:
            db = sa.engine.make_url(self.url).database if self.url.startswith("sqlite") else None
            if err.kind not in ("full", "io", "readonly", "open") or not db or not Path(db).is_file():
                raise
            # A full disk or a read-only file: open it read-only, so that listing and showing
            # runs still works; a write then says why it cannot be done.
            self.engine.dispose()
            full = err.kind in ("full", "io")
            self.read_only_because = "the disk is full" if full else "the file or its folder is read-only"
            self.engine = make_engine(self.url, read_only_because=self.read_only_because)
        self.artifact_root = resolve_artifact_root(self.url, artifact_root)

    @property
    def in_memory(self) -> bool:
        """True for ``":memory:"``: other processes cannot open this store."""
        return self.url == MEMORY

    # -- runs -------------------------------------------------------------------------
    def create_run(
        self,
        name: str,
        config: dict[str, Any],
        *,
        seed: int | None = None,
        group: str | None = None,
        config_hash: str | None = None,
        run_id: str | None = None,
    ) -> str:
        """Insert a ``running`` run owned by this process (its heartbeat starts); returns its id."""
        run_id = run_id or uuid.uuid4().hex[:12]
        if len(run_id) > MAX_ID_LENGTH:
            raise ConfigError(f"run id '{_short(run_id)}' is too long: at most {MAX_ID_LENGTH} characters")
        now = time.time()
        row = dict(
            id=run_id,
            name=name,
            group=group,
            config_hash=config_hash,
            config=json.dumps(config, sort_keys=True),
            status="running",
            seed=seed,
            created_at=now,
            updated_at=now,
            versions=json.dumps(versions()),
            owner=worker_id(),
            heartbeat_at=now,
        )
        self._execute(runs_table.insert().values(**row))
        _heartbeat(self).watch(run_id)
        return run_id

    def set_status(self, run_id: str, status: str, *, message: str | None = None) -> None:
        """Change a run's status; ``running`` (a resumed run) makes this process its owner."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
        now = time.time()
        values: dict[str, Any] = dict(status=status, updated_at=now)
        if message is not None:
            values["message"] = message
        if status == "running":
            values.update(owner=worker_id(), heartbeat_at=now)
        self._update(run_id, values)
        if status == "running":
            _heartbeat(self).watch(run_id)
        else:
            _unwatch(self, run_id)

    def finish_run(self, run_id: str, status: str, *, final: dict[str, Any], message: str | None = None) -> None:
        """Record the final metrics and the end status (completed, diverged, failed)."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
        now = time.time()
        self._update(
            run_id, dict(status=status, final=json.dumps(final), message=message, finished_at=now, updated_at=now)
        )
        _unwatch(self, run_id)

    def get_run(self, run_id: str) -> RunRecord:
        """The run ``run_id``, or the one run whose id starts with it (as git does)."""
        if not run_id or len(run_id) > MAX_ID_LENGTH:
            raise ConfigError(
                f"no run '{_short(run_id)}' in store {self.shown}: a run id has 1 to {MAX_ID_LENGTH} characters "
                "(list them with `trainlab runs`)"
            )
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(runs_table).where(runs_table.c.id == run_id)).mappings().first()
            if row is None:
                prefix = runs_table.c.id.startswith(run_id, autoescape=True)  # % and _ are characters here
                rows = conn.execute(sa.select(runs_table).where(prefix)).mappings().all()
                if len(rows) == 1:
                    row = rows[0]
        if row is None:
            raise ConfigError(f"no run '{run_id}' in store {self.shown} (list them with `trainlab runs`)")
        return _record(row)

    def list_runs(
        self,
        *,
        group: str | None = None,
        status: str | None = None,
        config_hash: str | None = None,
        limit: int | None = None,
    ) -> list[RunRecord]:
        query = sa.select(runs_table).order_by(runs_table.c.created_at)
        if group is not None:
            query = query.where(runs_table.c.group == group)
        if status is not None:
            query = query.where(runs_table.c.status == status)
        if config_hash is not None:
            query = query.where(runs_table.c.config_hash == config_hash)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [_record(r) for r in conn.execute(query).mappings()]

    def reap(self, *, group: str | None = None, stale_after: float = STALE_AFTER) -> list[str]:
        """Mark ``running`` runs whose process is gone ``interrupted``; returns their ids.

        Gone: on this host, the owner's pid is dead; from another host (or a run recorded
        without an owner), no heartbeat for ``stale_after`` seconds. Safe while other
        processes reap or resume: each update is conditional on the owner it saw.
        """
        c = runs_table.c
        query = sa.select(c.id, c.owner, c.heartbeat_at, c.updated_at, c.config).where(c.status == "running")
        if group is not None:
            query = query.where(c.group == group)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        now, reaped = time.time(), []
        for run_id, owner, beat, updated, config in rows:
            if not worker_gone(owner, beat if beat is not None else updated, stale_after, now):
                continue
            hint = resume_hint(run_id, json.loads(config) if config else None)
            message = f"interrupted: the process that ran it ({owner or 'unknown'}) is gone; {hint}"
            same_owner = c.owner.is_(None) if owner is None else c.owner == owner
            stmt = runs_table.update().where(c.id == run_id, c.status == "running", same_owner)
            if self._execute(stmt.values(status="interrupted", message=message, updated_at=now)).rowcount:
                reaped.append(run_id)
        return reaped

    def delete_run(self, run_id: str) -> None:
        """Remove a run, its metrics, its artifact rows and its folder (a stub that is made again)."""

        def go(conn):
            conn.execute(metrics_table.delete().where(metrics_table.c.run_id == run_id))
            conn.execute(artifacts_table.delete().where(artifacts_table.c.run_id == run_id))
            conn.execute(runs_table.delete().where(runs_table.c.id == run_id))

        self._transaction(go)
        import shutil

        shutil.rmtree(self.artifact_root / run_id, ignore_errors=True)

    # -- leases: each run of a comparison made once ------------------------------------------
    def claim(
        self, group: str | None, config_hash: str, *, seed: int | None = None, stale_after: float = STALE_AFTER
    ) -> bool:
        """Take the lease on making the run ``(group, config_hash)``; True if this process now holds it.

        One row under a primary key, inserted in one transaction: of several processes
        claiming at once exactly one succeeds. A lease whose holder is gone (see
        :func:`worker_gone`) is taken over by a conditional update, so a killed comparison
        never blocks the next one.
        """
        key = (self.url, group or "", config_hash)
        with _HELD_LOCK:  # one claim per key in this process: another thread's is refused here
            if key in _HELD:
                return False
            _HELD.add(key)
        held = False
        try:
            held = self._claim_row(group or "", config_hash, seed, stale_after)
        finally:
            if not held:
                with _HELD_LOCK:
                    _HELD.discard(key)
        if held:
            _heartbeat(self).watch()
        return held

    def _claim_row(self, group: str, config_hash: str, seed: int | None, stale_after: float) -> bool:
        lc = leases_table.c
        where = (lc.group == group, lc.config_hash == config_hash)
        me = worker_id()
        for _ in range(5):
            now = time.time()
            try:
                row = dict(group=group, config_hash=config_hash, seed=seed, owner=me, heartbeat_at=now, acquired_at=now)
                self._execute(leases_table.insert().values(**row))
                return True
            except IntegrityError:
                pass
            with self.engine.connect() as conn:
                held = conn.execute(sa.select(lc.owner, lc.heartbeat_at, lc.acquired_at).where(*where)).first()
            if held is None:
                continue  # released in between: claim it again
            # Not held by this process (see claim), so an own row is a lease a failed release left behind.
            if held.owner != me and not worker_gone(held.owner, held.heartbeat_at, stale_after, now):
                return False
            take = leases_table.update().where(*where, lc.owner == held.owner, lc.acquired_at == held.acquired_at)
            return self._execute(take.values(owner=me, heartbeat_at=now, acquired_at=now)).rowcount == 1
        return False

    def release(self, group: str | None, config_hash: str) -> None:
        """Give back a lease this process holds."""
        lc = leases_table.c
        with _HELD_LOCK:
            _HELD.discard((self.url, group or "", config_hash))
        mine = (lc.group == (group or ""), lc.config_hash == config_hash, lc.owner == worker_id())
        self._execute(leases_table.delete().where(*mine))

    @contextmanager
    def lease(
        self, group: str | None, config_hash: str, *, seed: int | None = None, stale_after: float = STALE_AFTER
    ) -> Iterator[bool]:
        """``with store.lease(group, hash) as held:`` — :meth:`claim`, released on leaving."""
        held = self.claim(group, config_hash, seed=seed, stale_after=stale_after)
        try:
            yield held
        finally:
            if held:
                self.release(group, config_hash)

    # -- metrics ------------------------------------------------------------------------
    def log_metrics(self, run_id: str, rows: Iterable[tuple[int, str, float]]) -> None:
        """Insert many ``(step, key, value)`` rows in one transaction."""
        values = [(run_id, int(s), k, None if v is None or not math.isfinite(v) else float(v)) for s, k, v in rows]
        if values:
            # The driver's executemany with positional rows: 5x faster than a Core insert of
            # dicts, which processes every row's parameters in Python (logging every step < 1%).
            self._execute_many(self._insert_metrics_sql, values)

    @property
    def _insert_metrics_sql(self) -> str:
        dialect = self.engine.dialect
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        cols = ", ".join(dialect.identifier_preparer.quote(c) for c in ("run_id", "step", "key", "value"))
        return f"INSERT INTO metrics ({cols}) VALUES ({mark}, {mark}, {mark}, {mark})"

    def truncate_metrics(self, run_id: str, after_step: int) -> None:
        """Delete rows logged after ``after_step``: a resumed run logs them again."""
        self._execute(metrics_table.delete().where(metrics_table.c.run_id == run_id, metrics_table.c.step > after_step))

    def metrics(self, run_id: str, keys: Sequence[str] | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Every row the run logged, as ``{key: (steps, values)}`` NumPy arrays sorted by step
        (rows of one step in the order they were logged); a non-finite value is stored as NULL
        and returned as NaN.

        What a training run logs: every ``train.log_every`` steps the training window's means
        (``train_loss``, ``train_lr``, ``train_acc``); at each evaluation ``val_loss``,
        ``val_acc``, ``train_loss``, ``train_acc``, ``lr``, ``epoch`` (so ``train_loss`` can
        have two rows at an evaluation step); and what callbacks return (per-layer statistics
        ``layer/<name>/<stat>``, ``lr_find/*``, ``sharpness/*``). ``keys`` keeps only those keys.
        """
        query = sa.select(metrics_table.c.key, metrics_table.c.step, metrics_table.c.value).where(
            metrics_table.c.run_id == run_id
        )
        if keys is not None:
            query = query.where(metrics_table.c.key.in_(list(keys)))
        grouped: dict[str, list[tuple[int, float]]] = defaultdict(list)
        with self.engine.connect() as conn:
            for key, step, value in conn.execute(query.order_by(metrics_table.c.step, metrics_table.c.id)):
                grouped[key].append((step, np.nan if value is None else value))
        return {
            k: (np.array([s for s, _ in v], dtype=np.int64), np.array([x for _, x in v], dtype=np.float64))
            for k, v in grouped.items()
        }

    # -- artifacts ----------------------------------------------------------------------
    def run_dir(self, run_id: str) -> Path:
        return make_dirs(self.artifact_root / run_id)

    def add_artifact(self, run_id: str, kind: str, path: str | os.PathLike) -> None:
        """Record (or replace) the run's artifact of ``kind``, in one transaction: a crash
        never leaves the run without the row."""
        row = dict(run_id=run_id, kind=kind, path=str(Path(path).absolute()))

        def go(conn):
            ac = artifacts_table.c
            conn.execute(artifacts_table.delete().where(ac.run_id == run_id, ac.kind == kind))
            conn.execute(artifacts_table.insert().values(**row))

        self._transaction(go)

    def artifacts(self, run_id: str) -> dict[str, Path]:
        query = sa.select(artifacts_table.c.kind, artifacts_table.c.path).where(artifacts_table.c.run_id == run_id)
        with self.engine.connect() as conn:
            return {k: Path(p) for k, p in conn.execute(query)}

    # -- plumbing -----------------------------------------------------------------------
    def _update(self, run_id: str, values: dict[str, Any]) -> None:
        if values.get("message"):  # an error's text may quote the store URL: never store its password
            values["message"] = redact(values["message"], self.url)
        result = self._execute(runs_table.update().where(runs_table.c.id == run_id).values(**values))
        if result.rowcount == 0:
            raise ConfigError(f"no run '{_short(run_id)}' in store {self.shown}")

    def _execute_many(self, sql: str, rows: list[tuple]) -> None:
        self._transaction(lambda conn: conn.exec_driver_sql(sql, rows))

    def _transaction(self, fn):
        """Run ``fn(conn)`` in one transaction, again while another process holds the lock."""

        def go():
            with self.engine.begin() as conn:
                return fn(conn)

        return retry_on_busy(go)

    def _execute(self, stmt, params=None):
        return self._transaction(lambda conn: conn.execute(stmt, params) if params is not None else conn.execute(stmt))


def _record(row) -> RunRecord:
    return RunRecord(
        id=row["id"],
        name=row["name"],
        status=row["status"],
        config=json.loads(row["config"]),
        seed=row["seed"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        finished_at=row["finished_at"],
        final=json.loads(row["final"]) if row["final"] else {},
        message=row["message"],
        group=row["group"],
        config_hash=row["config_hash"],
        versions=json.loads(row["versions"]) if row["versions"] else {},
    )


class MetricBuffer:
    """Collects metric rows and writes them in batches, so logging costs < 1% of a step.

    Rows are flushed when ``max_rows`` are pending or ``max_seconds`` have passed, and on
    :meth:`flush` (the Trainer flushes before every checkpoint, so a checkpoint never
    refers to metrics that were not written). Sinks (:meth:`add_sink`, the loggers of
    :mod:`trainlab.loggers`) receive each batch after the store has it.
    """

    def __init__(self, store: Store, run_id: str, max_rows: int = 2000, max_seconds: float = 5.0):
        self.store, self.run_id = store, run_id
        self.max_rows, self.max_seconds = max_rows, max_seconds
        self._rows: list[tuple[int, str, float]] = []
        self._sinks: list[Callable[[list[tuple[int, str, float]]], None]] = []
        self._last = time.monotonic()

    def add_sink(self, sink: Callable[[list[tuple[int, str, float]]], None]) -> None:
        """Call ``sink(rows)`` with every batch written to the store (a mirror: csv, TensorBoard, MLflow)."""
        self._sinks.append(sink)

    def add(self, step: int, values: dict[str, float]) -> None:
        self._rows.extend((step, k, float(v)) for k, v in values.items())
        if len(self._rows) >= self.max_rows or time.monotonic() - self._last > self.max_seconds:
            self.flush()

    def flush(self) -> None:
        if self._rows:
            self.store.log_metrics(self.run_id, self._rows)
            for sink in self._sinks:
                sink(self._rows)
            self._rows = []
        self._last = time.monotonic()
