"""Study storage: studies, trials and intermediate values in SQL tables beside the run store.

The tables live in the same database as :mod:`trainlab.store` (SQLite in WAL mode by
default, any SQLAlchemy URL such as ``postgresql+psycopg://host/db`` for many machines);
a trial that trains a model records its ``run_id`` there.

Concurrency without locks held across a trial:

- a trial number is taken by inserting ``max(number) + 1`` under a unique constraint
  ``(study_id, number)``; a worker that loses the race retries with the next number;
- a queued trial is claimed by ``UPDATE ... SET state='running' WHERE id=? AND
  state='waiting'``; only the worker whose update changed a row runs it;
- a running trial records its worker (``host:pid``) and a heartbeat. :meth:`StudyStorage.reap`
  marks a trial ``failed`` when its worker is gone — a dead pid on this host, or no
  heartbeat for ``stale_after`` seconds from another host — and, in the same
  transaction, queues its parameters again as a new ``waiting`` trial.
"""

from __future__ import annotations

import json
import os
import threading
import time
from bisect import bisect_left
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from trainlab.credentials import display_url, redact
from trainlab.errors import ConfigError
from trainlab.store import create_tables, make_engine, resolve_url, retry_on_busy, worker_gone
from trainlab.store import worker_id as worker_id  # re-exported: trainlab.tune.study uses it
from trainlab.tune.trial import COMPLETE, FAILED, FINISHED, RUNNING, WAITING, FrozenTrial, trial_seed

metadata = sa.MetaData()

studies_table = sa.Table(
    "tune_studies",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("direction", sa.String(10), nullable=False),
    sa.Column("space", sa.Text, nullable=False),  # JSON, Space.to_dict()
    sa.Column("sampler", sa.Text, nullable=False),  # JSON spec
    sa.Column("pruner", sa.Text, nullable=False),  # JSON spec
    sa.Column("seed", sa.Integer, nullable=False),
    sa.Column("metric", sa.String(200)),
    sa.Column("objective", sa.Text),  # JSON: what a worker needs to rebuild the objective (a run config)
    sa.Column("created_at", sa.Float, nullable=False),
)

trials_table = sa.Table(
    "tune_trials",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("study_id", sa.Integer, sa.ForeignKey("tune_studies.id"), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("state", sa.String(10), nullable=False),
    sa.Column("params", sa.Text, nullable=False),  # JSON
    sa.Column("value", sa.Float),
    sa.Column("seed", sa.Integer, nullable=False),
    sa.Column("run_id", sa.String(64)),
    sa.Column("worker", sa.String(200)),
    sa.Column("heartbeat_at", sa.Float),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("started_at", sa.Float),
    sa.Column("finished_at", sa.Float),
    sa.Column("message", sa.Text),
    sa.Column("requeued_from", sa.Integer),
    sa.UniqueConstraint("study_id", "number", name="uq_tune_trial_number"),
    sa.Index("ix_tune_trials_study_state", "study_id", "state"),
)

intermediate_table = sa.Table(
    "tune_intermediate",
    metadata,
    sa.Column("trial_id", sa.Integer, sa.ForeignKey("tune_trials.id"), primary_key=True),
    sa.Column("step", sa.Integer, primary_key=True),
    sa.Column("value", sa.Float),
)


_ENGINES: dict[str, sa.Engine] = {}


def _cannot_open(url: str, err: Exception) -> ConfigError:
    first = str(getattr(err, "orig", None) or err).strip().splitlines()[0]  # no SQL, no "Background" link
    reason = redact(f"{err.__class__.__name__}: {first}", url)
    return ConfigError(f"cannot open study storage '{display_url(url)}': {reason}")


def _create_all(engine: sa.Engine, url: str) -> sa.Engine:
    try:
        retry_on_busy(create_tables, metadata, engine)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, sa.exc.OperationalError) as err:
        raise _cannot_open(url, err) from err
    return engine


def engine_for(url: str) -> sa.Engine:
    """One engine per URL per process (a pool, not a connection per Study object); a new
    private database for each in-memory storage."""
    if url == "sqlite://":
        # One shared connection, or every thread would see its own empty database.
        engine = sa.create_engine(url, poolclass=sa.pool.StaticPool, connect_args={"check_same_thread": False})
        return _create_all(engine, url)
    if url not in _ENGINES:
        try:
            _ENGINES[url] = make_engine(url)
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as err:
            raise _cannot_open(url, err) from err
        try:
            _create_all(_ENGINES[url], url)
        except ConfigError:
            del _ENGINES[url]
            raise
    return _ENGINES[url]


class StudyStorage:
    """SQL access for studies and trials at ``url`` (None -> the run store's default)."""

    def __init__(self, url: str | os.PathLike | None = None):
        self.url = "sqlite://" if url in (":memory:", "sqlite://", "sqlite:///:memory:") else resolve_url(url)
        self.engine = engine_for(self.url)
        self._caches: dict[int, _TrialCache] = {}
        self._lock = threading.Lock()

    @property
    def in_memory(self) -> bool:
        return self.url == "sqlite://"

    # -- plumbing -------------------------------------------------------------------------
    def _write(self, fn):
        """Run ``fn(conn)`` in one transaction, retried while the database is busy."""

        def go():
            with self.engine.begin() as conn:
                return fn(conn)

        return retry_on_busy(go)

    def _read(self, fn):
        def go():
            with self.engine.connect() as conn:
                return fn(conn)

        return retry_on_busy(go)

    # -- studies --------------------------------------------------------------------------
    def get_study(self, name: str) -> dict[str, Any] | None:
        row = self._read(
            lambda c: c.execute(sa.select(studies_table).where(studies_table.c.name == name)).mappings().first()
        )
        return None if row is None else _study_dict(row)

    def create_study(self, **fields: Any) -> dict[str, Any]:
        """Insert a study (JSON-encoding ``space``, ``sampler``, ``pruner``, ``objective``);
        if another process created it first, return that one."""
        row = {
            k: json.dumps(v) if k in ("space", "sampler", "pruner", "objective") and v is not None else v
            for k, v in fields.items()
        }
        try:
            self._write(lambda c: c.execute(studies_table.insert().values(**row, created_at=time.time())))
        except IntegrityError:
            pass
        study = self.get_study(fields["name"])
        assert study is not None  # inserted above, or by another process
        return study

    def update_study(self, study_id: int, **fields: Any) -> None:
        row = {k: json.dumps(v) if k in ("sampler", "pruner", "objective") else v for k, v in fields.items()}
        self._write(lambda c: c.execute(studies_table.update().where(studies_table.c.id == study_id).values(**row)))

    def list_studies(self) -> list[dict[str, Any]]:
        """Every study with ``counts`` (trials per state) and ``best_value`` added."""

        def go(c):
            studies = [
                _study_dict(r)
                for r in c.execute(sa.select(studies_table).order_by(studies_table.c.created_at)).mappings()
            ]
            counts: dict[int, dict[str, int]] = defaultdict(dict)
            q = sa.select(trials_table.c.study_id, trials_table.c.state, sa.func.count()).group_by(
                trials_table.c.study_id, trials_table.c.state
            )
            for sid, state, n in c.execute(q):
                counts[sid][state] = n
            q = (
                sa.select(trials_table.c.study_id, sa.func.min(trials_table.c.value), sa.func.max(trials_table.c.value))
                .where(trials_table.c.state == COMPLETE)
                .group_by(trials_table.c.study_id)
            )
            extremes = {sid: (lo, hi) for sid, lo, hi in c.execute(q)}
            return studies, counts, extremes

        studies, counts, extremes = self._read(go)
        for s in studies:
            s["counts"] = counts.get(s["id"], {})
            lo, hi = extremes.get(s["id"], (None, None))
            s["best_value"] = lo if s["direction"] == "minimize" else hi
        return studies

    # -- trials ---------------------------------------------------------------------------
    def new_trial(
        self,
        study: dict[str, Any],
        *,
        state: str,
        params: dict[str, Any],
        requeued_from: int | None = None,
        seed: int | None = None,
        conn=None,
    ) -> int:
        """Insert a trial with the next free number; returns the number. Its seed is
        :func:`trial_seed` of the number, unless ``seed`` is given (a re-queued trial keeps its own)."""

        def go(c):
            top = c.execute(
                sa.select(sa.func.max(trials_table.c.number)).where(trials_table.c.study_id == study["id"])
            ).scalar()
            number = 0 if top is None else top + 1
            now = time.time()
            running = state == RUNNING
            c.execute(
                trials_table.insert().values(
                    study_id=study["id"],
                    number=number,
                    state=state,
                    params=json.dumps(params),
                    seed=trial_seed(study["seed"], number) if seed is None else seed,
                    created_at=now,
                    started_at=now if running else None,
                    heartbeat_at=now if running else None,
                    worker=worker_id() if running else None,
                    requeued_from=requeued_from,
                )
            )
            return number

        if conn is not None:
            return go(conn)
        for _ in range(100):  # another worker took the number: try the next one
            try:
                return self._write(go)
            except IntegrityError:
                time.sleep(0.01)
        raise RuntimeError(f"could not allocate a trial number in study {study['name']!r}")

    def claim_waiting(self, study_id: int) -> int | None:
        """Claim the oldest queued trial for this worker; None if there is none."""
        waiting = self._read(
            lambda c: c.execute(
                sa.select(trials_table.c.id, trials_table.c.number)
                .where(trials_table.c.study_id == study_id, trials_table.c.state == WAITING)
                .order_by(trials_table.c.number)
            ).all()
        )
        for trial_id, number in waiting:
            now = time.time()
            stmt = (
                trials_table.update()
                .where(trials_table.c.id == trial_id, trials_table.c.state == WAITING)
                .values(state=RUNNING, worker=worker_id(), started_at=now, heartbeat_at=now)
            )
            if self._write(lambda c, stmt=stmt: c.execute(stmt).rowcount) == 1:
                return number
        return None

    def _trial_id(self, study_id: int, number: int) -> int:
        tid = self._read(
            lambda c: c.execute(
                sa.select(trials_table.c.id).where(trials_table.c.study_id == study_id, trials_table.c.number == number)
            ).scalar()
        )
        if tid is None:
            raise ConfigError(f"no trial {number} in study {study_id}")
        return tid

    def update_trial(self, study_id: int, number: int, *, only_if_running: bool = False, **values: Any) -> bool:
        """Set columns of one trial (``params`` JSON-encoded); False if nothing changed."""
        if "params" in values:
            values["params"] = json.dumps(values["params"])
        if values.get("message"):  # an error's text may quote the store URL: never store its password
            values["message"] = redact(values["message"], self.url)
        cond = [trials_table.c.study_id == study_id, trials_table.c.number == number]
        if only_if_running:
            cond.append(trials_table.c.state == RUNNING)
        return self._write(lambda c: c.execute(trials_table.update().where(*cond).values(**values)).rowcount) == 1

    def finish_trial(
        self, study_id: int, number: int, state: str, value: float | None, message: str | None = None
    ) -> bool:
        """running -> ``state``; False when the trial was no longer running (reaped meanwhile)."""
        if state not in FINISHED:
            raise ValueError(f"state must be one of {FINISHED}, got {state!r}")
        return self.update_trial(
            study_id, number, only_if_running=True, state=state, value=value, message=message, finished_at=time.time()
        )

    def report(self, study_id: int, number: int, step: int, value: float | None) -> None:
        tid = self._trial_id(study_id, number)

        def go(c):
            c.execute(
                intermediate_table.delete().where(
                    intermediate_table.c.trial_id == tid, intermediate_table.c.step == step
                )
            )
            c.execute(intermediate_table.insert().values(trial_id=tid, step=step, value=value))
            c.execute(trials_table.update().where(trials_table.c.id == tid).values(heartbeat_at=time.time()))

        self._write(go)

    def trials(self, study_id: int) -> list[FrozenTrial]:
        """Every trial of the study, by number. Finished trials come from this object's cache
        (they never change); one query reads the trials that are new or were unfinished at the
        last call, with their intermediate values (see :class:`_TrialCache`)."""
        return self._cache(study_id).refresh(self)

    def trial(self, study_id: int, number: int) -> FrozenTrial | None:
        """One trial by number: from the cache if finished, else one row and its intermediate values."""
        cache = self._cache(study_id)
        hit = cache.finished.get(number)
        if hit is not None:
            return hit

        def go(c):
            row = (
                c.execute(
                    sa.select(trials_table).where(trials_table.c.study_id == study_id, trials_table.c.number == number)
                )
                .mappings()
                .first()
            )
            return row, (_intermediate(c, [row["id"]]) if row is not None else {})

        row, inter = self._read(go)
        if row is None:
            return None
        trial = _frozen(row, inter.get(row["id"], []))
        if trial.state in FINISHED:
            cache.add_finished(row["id"], trial)
        return trial

    def _cache(self, study_id: int) -> _TrialCache:
        with self._lock:
            if study_id not in self._caches:
                self._caches[study_id] = _TrialCache(study_id)
            return self._caches[study_id]

    def reap(self, study: dict[str, Any], stale_after: float) -> list[int]:
        """Fail the running trials whose worker is gone and queue their parameters again.

        Returns the numbers of the trials reaped. Safe when several workers reap at once:
        the conditional update lets only one of them re-queue a given trial.
        """
        now = time.time()
        running = self._read(
            lambda c: c.execute(
                sa.select(trials_table.c.number, trials_table.c.worker, trials_table.c.heartbeat_at).where(
                    trials_table.c.study_id == study["id"], trials_table.c.state == RUNNING
                )
            ).all()
        )
        return [
            number
            for number, worker, beat in running
            if worker_gone(worker, beat, stale_after, now)
            and self.requeue(study, number, f"interrupted: worker {worker} is gone; parameters re-queued")
        ]

    def requeue(self, study: dict[str, Any], number: int, message: str) -> bool:
        """running -> failed, and a new ``waiting`` trial with the same parameters and seed, in one
        transaction (a crash between the two cannot lose the parameters). False if the
        trial was no longer running."""

        def go(c):
            row = c.execute(
                sa.select(trials_table.c.id, trials_table.c.params, trials_table.c.seed).where(
                    trials_table.c.study_id == study["id"], trials_table.c.number == number
                )
            ).first()
            changed = c.execute(
                trials_table.update()
                .where(trials_table.c.id == row.id, trials_table.c.state == RUNNING)
                .values(state=FAILED, finished_at=time.time(), message=message)
            ).rowcount
            if changed and json.loads(row.params):
                # the same parameters and seed: the trial that finishes is the one that was killed
                self.new_trial(
                    study, state=WAITING, params=json.loads(row.params), requeued_from=number, seed=row.seed, conn=c
                )
            return changed == 1

        for _ in range(100):
            try:
                return self._write(go)
            except IntegrityError:  # the re-queued trial's number was taken; try the next
                time.sleep(0.01)
        raise RuntimeError(f"could not re-queue trial {number} of study {study['name']!r}")

    def delete_trial(self, study_id: int, number: int) -> None:
        """Remove a trial that never ran (a reservation given back)."""
        tid = self._trial_id(study_id, number)
        self._write(lambda c: c.execute(trials_table.delete().where(trials_table.c.id == tid)))


def _study_dict(row) -> dict[str, Any]:
    d = dict(row)
    for k in ("space", "sampler", "pruner", "objective"):
        d[k] = json.loads(d[k]) if d[k] else None
    return d


def _frozen(row, intermediate: list[tuple[int, float]]) -> FrozenTrial:
    return FrozenTrial(
        number=row["number"],
        state=row["state"],
        params=json.loads(row["params"]),
        value=row["value"],
        seed=row["seed"],
        run_id=row["run_id"],
        intermediate=intermediate,
        message=row["message"],
        worker=row["worker"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        requeued_from=row["requeued_from"],
    )


def _intermediate(c, trial_ids: list[int]) -> dict[int, list[tuple[int, float]]]:
    """``{trial id: [(step, value), ...]}`` sorted by step, for the given trials only."""
    inter: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for chunk in range(0, len(trial_ids), 500):  # under every database's limit on bound parameters
        ids = trial_ids[chunk : chunk + 500]
        q = (
            sa.select(intermediate_table.c.trial_id, intermediate_table.c.step, intermediate_table.c.value)
            .where(intermediate_table.c.trial_id.in_(ids))
            .order_by(intermediate_table.c.trial_id, intermediate_table.c.step)
        )
        for tid, step, value in c.execute(q):
            inter[tid].append((step, float("nan") if value is None else value))
    return inter


class _TrialCache:
    """Finished trials of one study, read once (Optuna's ``_CachedStorage`` is the model).

    A finished trial (complete, pruned, failed) never changes again, so it is kept here; each
    refresh reads only the rows with an id above the highest finished id seen so far and the
    rows that were unfinished at the last refresh (waiting or running: they may have changed,
    finished or, for a reservation given back, vanished). Ids come from the database's
    autoincrement, so a trial created by another process after the last refresh has a larger id.
    Several processes writing one study stay correct: nothing is cached that can still change.
    """

    def __init__(self, study_id: int):
        self.study_id = study_id
        self.finished: dict[int, FrozenTrial] = {}  # number -> trial
        self._numbers: list[int] = []  # sorted numbers of the finished trials
        self._sorted: list[FrozenTrial] = []  # finished trials in the order of _numbers
        self.last_finished_id = -1
        self.unfinished_ids: set[int] = set()
        self._lock = threading.Lock()

    def add_finished(self, trial_id: int, trial: FrozenTrial) -> None:
        with self._lock:
            self._add(trial_id, trial)

    def _add(self, trial_id: int, trial: FrozenTrial) -> None:
        if trial.number in self.finished:
            return
        self.finished[trial.number] = trial
        i = bisect_left(self._numbers, trial.number)
        self._numbers.insert(i, trial.number)
        self._sorted.insert(i, trial)
        self.unfinished_ids.discard(trial_id)
        # trial() may cache a finished trial out of order: only refresh() moves the mark,
        # after it has seen every row up to it.

    def refresh(self, storage: StudyStorage) -> list[FrozenTrial]:
        t = trials_table
        with self._lock:
            last, pending = self.last_finished_id, sorted(self.unfinished_ids)

        def go(c):
            cond = t.c.id > last
            if pending:
                # a long list of unfinished ids (a big queue) becomes one range instead
                cond = sa.or_(cond, t.c.id.in_(pending) if len(pending) <= 500 else t.c.id >= pending[0])
            rows = c.execute(sa.select(t).where(t.c.study_id == self.study_id, cond)).mappings().all()
            return rows, _intermediate(c, [r["id"] for r in rows])

        rows, inter = storage._read(go)
        with self._lock:
            unfinished: list[FrozenTrial] = []
            seen_unfinished: set[int] = set()
            for row in rows:
                if row["number"] in self.finished:  # cached meanwhile by trial()
                    self.last_finished_id = max(self.last_finished_id, row["id"])
                    continue
                trial = _frozen(row, inter.get(row["id"], []))
                if trial.state in FINISHED:
                    self._add(row["id"], trial)
                    self.last_finished_id = max(self.last_finished_id, row["id"])
                elif trial.number not in self.finished:
                    seen_unfinished.add(row["id"])
                    unfinished.append(trial)
            # every previously unfinished id was queried: one not returned was deleted (a
            # reservation given back), one returned finished is cached now
            self.unfinished_ids = seen_unfinished
            out = list(self._sorted)
            for k, trial in enumerate(sorted(unfinished, key=lambda x: x.number)):
                out.insert(bisect_left(self._numbers, trial.number) + k, trial)  # k earlier insertions shift it
            return out
