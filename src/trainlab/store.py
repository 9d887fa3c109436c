"""The run store: every run, its config, status, metrics and artifacts, in one database.

SQLite file by default (``runs/trainlab.db``); any SQLAlchemy URL (``postgresql://...``) moves
the same store to a shared server for many machines. On SQLite the database runs in WAL
mode with a busy timeout, so several processes (parallel runs, study workers) write at
once without losing rows.

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
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from trainlab._io import make_dirs
from trainlab.credentials import check_url, display_url, redact
from trainlab.errors import ConfigError

DEFAULT_STORE = "runs/trainlab.db"
MEMORY = "sqlite://"  # what ":memory:" resolves to
STATUSES = ("running", "completed", "diverged", "failed", "interrupted", "pruned")

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


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer, writers queue
    cur.execute("PRAGMA synchronous=NORMAL")  # safe with WAL; a crash loses no committed row
    cur.execute("PRAGMA busy_timeout=60000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_engine(url: str) -> sa.Engine:
    """An engine for ``url``; on SQLite: WAL, busy timeout, the file's folder created."""
    if url == MEMORY:
        return _memory_engine()
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            make_dirs(Path(path).parent)
        engine = sa.create_engine(url, connect_args={"timeout": 60})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(url, pool_pre_ping=True)


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
            if "locked" not in str(err).lower() and "busy" not in str(err).lower() or i == attempts - 1:
                raise
            time.sleep(min(0.05 * 2**i, 2.0))
    raise AssertionError("unreachable")


class Store:
    """The run store at ``url`` (a SQLAlchemy URL, a path to a SQLite file or ``":memory:"``);
    run folders under ``artifact_root`` (see :func:`resolve_artifact_root`)."""

    def __init__(self, url: str | os.PathLike | None = None, artifact_root: str | os.PathLike | None = None):
        self.url = resolve_url(url)
        try:
            self.engine = make_engine(self.url)
            retry_on_busy(metadata.create_all, self.engine)
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, OperationalError) as err:
            reason = redact(f"{err.__class__.__name__}: {err}", self.url)
            raise ConfigError(f"cannot open run store '{display_url(self.url)}': {reason}") from err
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
        run_id = run_id or uuid.uuid4().hex[:12]
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
        )
        self._execute(runs_table.insert().values(**row))
        return run_id

    def set_status(self, run_id: str, status: str, *, message: str | None = None) -> None:
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
        values: dict[str, Any] = dict(status=status, updated_at=time.time())
        if message is not None:
            values["message"] = message
        self._update(run_id, values)

    def finish_run(self, run_id: str, status: str, *, final: dict[str, Any], message: str | None = None) -> None:
        """Record the final metrics and the end status (completed, diverged, failed)."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
        now = time.time()
        self._update(run_id, dict(status=status, final=json.dumps(final), message=message, finished_at=now, updated_at=now))

    def get_run(self, run_id: str) -> RunRecord:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(runs_table).where(runs_table.c.id == run_id)).mappings().first()
            if row is None:  # allow a unique prefix, as git does
                rows = conn.execute(sa.select(runs_table).where(runs_table.c.id.startswith(run_id))).mappings().all()
                if len(rows) == 1:
                    row = rows[0]
        if row is None:
            raise ConfigError(f"no run '{run_id}' in store {display_url(self.url)} (list them with `trainlab runs`)")
        return _record(row)

    def list_runs(
        self, *, group: str | None = None, status: str | None = None, config_hash: str | None = None, limit: int | None = None
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
        query = sa.select(metrics_table.c.key, metrics_table.c.step, metrics_table.c.value).where(metrics_table.c.run_id == run_id)
        if keys is not None:
            query = query.where(metrics_table.c.key.in_(list(keys)))
        grouped: dict[str, list[tuple[int, float]]] = defaultdict(list)
        with self.engine.connect() as conn:
            for key, step, value in conn.execute(query.order_by(metrics_table.c.step, metrics_table.c.id)):
                grouped[key].append((step, np.nan if value is None else value))
        return {k: (np.array([s for s, _ in v], dtype=np.int64), np.array([x for _, x in v], dtype=np.float64)) for k, v in grouped.items()}

    # -- artifacts ----------------------------------------------------------------------
    def run_dir(self, run_id: str) -> Path:
        return make_dirs(self.artifact_root / run_id)

    def add_artifact(self, run_id: str, kind: str, path: str | os.PathLike) -> None:
        stmt = artifacts_table.delete().where(artifacts_table.c.run_id == run_id, artifacts_table.c.kind == kind)
        self._execute(stmt)
        self._execute(artifacts_table.insert().values(run_id=run_id, kind=kind, path=str(Path(path).absolute())))

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
            raise ConfigError(f"no run '{run_id}' in store {display_url(self.url)}")

    def _execute_many(self, sql: str, rows: list[tuple]) -> None:
        def go():
            with self.engine.begin() as conn:
                conn.exec_driver_sql(sql, rows)

        retry_on_busy(go)

    def _execute(self, stmt, params=None):
        def go():
            with self.engine.begin() as conn:
                return conn.execute(stmt, params) if params is not None else conn.execute(stmt)

        return retry_on_busy(go)


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
