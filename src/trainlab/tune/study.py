"""A study: ask/tell over a persistent store, and ``optimize`` / ``minimize`` built on it.

The loop a user writes by hand, and the one ``optimize`` runs::

    study = Study("lr-search", Space({"lr": Float(1e-4, 1.0, log=True)}), sampler=GP(), storage="runs/trainlab.db")
    for _ in range(20):
        trial = study.ask()                    # claims a queued trial or samples a new one
        loss = train(lr=trial.params["lr"], seed=trial.seed)
        study.tell(trial, loss)
    study.best_trial.params

Every state change is a committed row, so killing the process loses nothing but the
trial in flight; reopening the study marks that trial ``failed`` and queues its
parameters again (:meth:`StudyStorage.reap`). Several processes — ``optimize(jobs=N)``,
two terminals, machines sharing a PostgreSQL server — work on one study at once.
"""

from __future__ import annotations

import math
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from trainlab.credentials import display_url
from trainlab.errors import ConfigError
from trainlab.tune.pruners import PRUNE, WAIT, NoPruner, Pruner, as_pruner, pruner_from_spec
from trainlab.tune.samplers import GP, Sampler, as_sampler, sampler_from_spec
from trainlab.tune.space import Param, Space
from trainlab.tune.storage import StudyStorage, worker_id
from trainlab.tune.trial import COMPLETE, FAILED, PRUNED, RUNNING, FrozenTrial, TrialPruned

DIRECTIONS = ("minimize", "maximize")


class Trial:
    """A running trial: its parameters and seed, and the channel for intermediate values.

    ``metric`` names the value the Trainer reports (``metrics[trial.metric]``) when a run
    trains inside a study.
    """

    def __init__(self, study: Study, number: int, params: dict[str, Any], seed: int):
        self.study, self.number, self.params, self.seed = study, number, params, seed
        self.intermediate: list[tuple[int, float]] = []
        self._run_id: str | None = None

    @property
    def metric(self) -> str:
        return self.study.metric or "value"

    @property
    def run_id(self) -> str | None:
        return self._run_id

    @run_id.setter
    def run_id(self, run_id: str | None) -> None:
        self._run_id = run_id
        self.study._storage.update_trial(self.study._id, self.number, run_id=run_id)

    def report(self, step: int, value: float) -> None:
        """Record the objective's value after ``step`` units of resource (training steps)."""
        step, value = int(step), float(value)
        self.intermediate = [(s, v) for s, v in self.intermediate if s != step] + [(step, value)]
        self.study._storage.report(self.study._id, self.number, step, None if math.isnan(value) else value)

    def should_prune(self) -> bool:
        """Ask the study's pruner; a synchronous pruner may make this wait for peer trials."""
        deadline = time.monotonic() + getattr(self.study.pruner, "max_wait", 0.0)
        while True:
            decision = self.study.pruner.decide(self._frozen(), self.study.trials, self.study.direction)
            if decision != WAIT or time.monotonic() > deadline:
                return decision == PRUNE
            time.sleep(0.2)

    def _frozen(self) -> FrozenTrial:
        return FrozenTrial(self.number, RUNNING, self.params, seed=self.seed, intermediate=sorted(self.intermediate))

    def __repr__(self) -> str:
        return f"Trial(number={self.number}, params={self.params})"


class Study:
    """A named search over ``space``, stored at ``storage`` (a SQLAlchemy URL or SQLite path;
    None -> ``$TRAINLAB_STORE`` or ``runs/trainlab.db``; ``":memory:"`` for a throwaway one).

    ``sampler`` and ``pruner`` are objects or names (``sampler="gp"``, ``pruner="median"``).
    Opening an existing name continues that study: its space must match, and a sampler or
    pruner left as None is rebuilt from the stored one. ``stale_after`` (seconds) is how long
    a trial on *another* host may go without a heartbeat before it counts as interrupted
    (on this host a dead worker pid is detected at once).
    """

    def __init__(
        self,
        name: str,
        space: Space | Mapping[str, Param] | None = None,
        *,
        sampler: Sampler | str | None = None,
        pruner: Pruner | str | None = None,
        direction: str = "minimize",
        storage: str | None = None,
        seed: int = 0,
        metric: str | None = None,
        objective: dict[str, Any] | None = None,
        stale_after: float = 120.0,
    ):
        if direction not in DIRECTIONS:
            raise ConfigError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        if not isinstance(seed, int) or seed < 0:
            raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
        if not name or not isinstance(name, str):
            raise ConfigError(f"a study needs a non-empty name, got {name!r}")
        sampler, pruner = as_sampler(sampler), as_pruner(pruner)
        self._storage = StudyStorage(storage)
        self.stale_after = float(stale_after)
        row = self._storage.get_study(name)
        if row is None:
            if space is None:
                where = display_url(self._storage.url)
                raise ConfigError(f"study '{name}' does not exist in {where}; give a space to create it")
            space = space if isinstance(space, Space) else Space(space)
            row = self._storage.create_study(
                name=name,
                direction=direction,
                space=space.to_dict(),
                sampler=(sampler or GP()).spec(),
                pruner=(pruner or NoPruner()).spec(),
                seed=seed,
                metric=metric,
                objective=objective,
            )
        self._load(row, space, sampler, pruner)
        self.reap()  # reopening a study after a crash fails and re-queues its orphaned trials

    def _load(self, row: dict[str, Any], space, sampler, pruner) -> None:
        self._id, self.name, self.direction = row["id"], row["name"], row["direction"]
        self.seed, self.metric, self.objective = row["seed"], row["metric"], row["objective"]
        self.space = Space.from_dict(row["space"])
        if space is not None:
            given = space if isinstance(space, Space) else Space(space)
            if given != self.space:
                raise ConfigError(
                    f"study '{self.name}' already exists in {display_url(self._storage.url)} with a different space; "
                    "use a new name or the same space"
                )
        self.sampler = sampler or sampler_from_spec(row["sampler"])
        self.pruner = pruner or pruner_from_spec(row["pruner"])
        if sampler is not None or pruner is not None:  # a resumed study remembers the latest choice
            self._storage.update_study(self._id, sampler=self.sampler.spec(), pruner=self.pruner.spec())

    @classmethod
    def load(cls, name: str, storage: str | None = None, **kwargs: Any) -> Study:
        """Open an existing study (error listing the stored ones if ``name`` is not there)."""
        store = StudyStorage(storage)
        if store.get_study(name) is None:
            names = [s["name"] for s in store.list_studies()]
            from trainlab.errors import did_you_mean

            known = ", ".join(names) if names else "none"
            where = display_url(store.url)
            raise ConfigError(f"no study '{name}' in {where}{did_you_mean(name, names)}; studies there: {known}")
        return cls(name, storage=storage, **kwargs)

    @property
    def storage_url(self) -> str:
        return self._storage.url

    # -- ask / tell ---------------------------------------------------------------------
    def ask(self) -> Trial | None:
        """The next trial to run: a queued one if any, else a new point from the sampler.
        None when the sampler is exhausted (a finished grid)."""
        self.reap()
        number = self._storage.claim_waiting(self._id)
        if number is not None:
            t = self.trial(number)
            return Trial(self, number, t.params, t.seed)
        # Reserve the number first: the sampler's draw depends on it, and parallel workers
        # see the reservation as pending.
        number = self._storage.new_trial(self._row(), state=RUNNING, params={})
        others = [t for t in self.trials if t.number != number]
        try:
            params = self.sampler.sample(self.space, others, number=number, seed=self.seed, direction=self.direction)
        except BaseException:
            self._storage.delete_trial(self._id, number)
            raise
        if params is None:
            self._storage.delete_trial(self._id, number)
            return None
        self._storage.update_trial(self._id, number, params=params)
        t = self.trial(number)
        return Trial(self, number, t.params, t.seed)

    def enqueue(self, params: Mapping[str, Any]) -> int:
        """Queue a point to evaluate before the sampler's (e.g. a known good default)."""
        from trainlab.tune.trial import WAITING

        return self._storage.new_trial(self._row(), state=WAITING, params=self.space.validate(params))

    def tell(
        self, trial: Trial | int, value: float | None = None, state: str = COMPLETE, message: str | None = None
    ) -> FrozenTrial:
        """Finish a trial: ``complete`` with its value, ``pruned`` (value defaults to the last
        intermediate one) or ``failed``. A non-finite value makes a complete trial failed."""
        number = trial.number if isinstance(trial, Trial) else int(trial)
        if state not in (COMPLETE, PRUNED, FAILED):
            raise ConfigError(f"state must be one of {(COMPLETE, PRUNED, FAILED)}, got {state!r}")
        if state == PRUNED and value is None:
            inter = self.trial(number).intermediate
            value = inter[-1][1] if inter else None
        if state == COMPLETE and (value is None or not math.isfinite(float(value))):
            state, message, value = FAILED, message or f"objective returned {value!r}", None
        value = None if value is None or not math.isfinite(float(value)) else float(value)
        if not self._storage.finish_trial(self._id, number, state, value, message):
            current = self.trial(number)
            raise ConfigError(
                f"trial {number} of study '{self.name}' is {current.state}, not running; cannot tell it {state}"
            )
        return self.trial(number)

    def reap(self) -> list[int]:
        """Mark trials of dead workers failed and queue their parameters again."""
        return self._storage.reap(self._row(), self.stale_after)

    # -- reading ------------------------------------------------------------------------
    @property
    def trials(self) -> list[FrozenTrial]:
        return self._storage.trials(self._id)

    def trial(self, number: int) -> FrozenTrial:
        """Trial ``number`` (one query, or none for a finished trial already read)."""
        t = self._storage.trial(self._id, number)
        if t is not None:
            return t
        raise ConfigError(f"no trial {number} in study '{self.name}'")

    @property
    def best_trial(self) -> FrozenTrial | None:
        """The complete trial with the best value (the earliest on ties); None if none yet."""
        done = [t for t in self.trials if t.state == COMPLETE and t.value is not None]
        if not done:
            return None
        sign = 1.0 if self.direction == "minimize" else -1.0
        return min(done, key=lambda t: (sign * t.value, t.number))  # type: ignore[operator]  # value is not None

    @property
    def best_value(self) -> float | None:
        best = self.best_trial
        return None if best is None else best.value

    @property
    def best_params(self) -> dict[str, Any] | None:
        best = self.best_trial
        return None if best is None else best.params

    def summary(self) -> dict[str, Any]:
        trials = self.trials
        counts: dict[str, int] = {}
        for t in trials:
            counts[t.state] = counts.get(t.state, 0) + 1
        best = self.best_trial
        return {
            "name": self.name,
            "direction": self.direction,
            "metric": self.metric,
            "sampler": self.sampler.spec(),
            "pruner": self.pruner.spec(),
            "seed": self.seed,
            "space": self.space.to_dict(),
            "n_trials": len(trials),
            "counts": counts,
            "best": None if best is None else best.to_dict(),
        }

    def trials_dataframe(self):
        """The trials as a pandas DataFrame, one row per trial: ``number, state, value,
        params_<name>..., seed, run_id, started_at, finished_at, duration, last_step, message``
        (Optuna's ``params_`` naming). Needs pandas: ``pip install 'trainlab[pandas]'``."""
        try:
            import pandas as pd
        except ImportError:
            raise ConfigError("Study.trials_dataframe needs pandas: pip install 'trainlab[pandas]'") from None
        from trainlab.export import trial_rows

        return pd.DataFrame(trial_rows(self))

    def _row(self) -> dict[str, Any]:
        return {"id": self._id, "name": self.name, "seed": self.seed}

    # -- running ------------------------------------------------------------------------
    def run_trial(self, trial: Trial, objective: Callable[[Trial], float]) -> FrozenTrial:
        """Run ``objective(trial)`` here and tell the outcome; exceptions fail the trial
        (with the error as its message), ``TrialPruned`` prunes it, Ctrl-C re-queues it."""
        self._storage.update_trial(self._id, trial.number, worker=worker_id(), heartbeat_at=time.time())
        stop = threading.Event()
        beat = None
        if not self._storage.in_memory:
            beat = threading.Thread(target=self._heartbeat, args=(trial.number, stop), daemon=True)
            beat.start()
        try:
            from trainlab.train.fit import context

            # trainlab.fit inside the objective: this study's store, group and seed, reporting to the trial
            with context(
                trial=trial if self.metric else None,
                group=self.name,
                name=f"{self.name}-t{trial.number}",
                seed=trial.seed,
                store=self.storage_url,
            ):
                value = _objective_value(objective(trial), trial)
        except TrialPruned:
            return self.tell(trial, None, PRUNED)
        except KeyboardInterrupt:
            self._storage.requeue(self._row(), trial.number, "interrupted (KeyboardInterrupt); parameters re-queued")
            raise
        except Exception as err:  # the study goes on; the message keeps the cause
            last = traceback.format_exception_only(type(err), err)[-1].strip()
            return self.tell(trial, None, FAILED, message=last)
        finally:
            stop.set()
            if beat is not None:
                beat.join()
        return self.tell(trial, value)

    def _heartbeat(self, number: int, stop: threading.Event) -> None:
        interval = max(min(self.stale_after / 4, 30.0), 0.5)
        while not stop.wait(interval):
            try:
                self._storage.update_trial(self._id, number, heartbeat_at=time.time())
            except Exception:  # a missed beat is harmless; the next one retries
                pass

    def optimize(
        self,
        objective: Callable[[Trial], float],
        n_trials: int,
        *,
        jobs: int = 1,
        executor: str = "local",
        callback: Callable[[Study, FrozenTrial], None] | None = None,
        **fit_kwargs: Any,
    ) -> Study:
        """Run ``n_trials`` more trials, ``jobs`` at a time (``executor``: ``local``
        processes or ``ray`` tasks). ``objective(trial) -> float`` must be picklable when
        ``jobs > 1`` or ``executor="ray"``. ``callback(study, trial)`` after each trial.

        With ``trainlab.fit``: ``objective`` may return ``fit(...)``'s result (its
        ``final[metric]`` is the value; ``fit`` reports to the trial, so pruners work), or, given
        ``fit``'s arguments here (``train=(X, y), epochs=5, ...``), be a model factory
        ``trial -> nn.Module`` (or ``-> seed -> nn.Module``): each trial is then
        ``fit(factory(trial), **fit_kwargs)`` with the trial's parameters named like ``fit``'s
        keywords (``lr``, ``batch_size``), the optimizer's options (``momentum``) or config keys
        (``"regularize.l2"``) passed to it."""
        from trainlab.tune.executors import run_parallel

        if fit_kwargs:
            objective = _FitObjective(objective, fit_kwargs)

        if not isinstance(n_trials, int) or n_trials < 0:
            raise ConfigError(f"n_trials must be a non-negative integer, got {n_trials!r}")
        if not isinstance(jobs, int) or jobs < 1:
            raise ConfigError(f"jobs must be an integer >= 1, got {jobs!r}")
        if jobs == 1 and executor == "local":
            for _ in range(n_trials):
                trial = self.ask()
                if trial is None:
                    break
                done = self.run_trial(trial, objective)
                if callback is not None:
                    callback(self, done)
            return self
        if self._storage.in_memory:
            raise ConfigError(
                "jobs > 1 or executor='ray' need a storage other processes can open (a file or server URL)"
            )
        run_parallel(self, objective, n_trials, jobs=jobs, executor=executor, callback=callback)
        return self

    def __repr__(self) -> str:
        return (
            f"Study(name={self.name!r}, direction={self.direction!r}, sampler={self.sampler!r}, pruner={self.pruner!r})"
        )


class _FitObjective:
    """``fit(factory(trial), **fit_kwargs, **the trial's fit parameters)`` (see ``Study.optimize``)."""

    def __init__(self, factory: Callable[[Trial], Any], fit_kwargs: dict[str, Any]):
        if "train" not in fit_kwargs:
            raise ConfigError(
                f"optimize: unknown argument '{next(iter(fit_kwargs))}'; a model factory needs fit's train= (and its other arguments)"
            )
        self.factory, self.fit_kwargs = factory, fit_kwargs

    def __call__(self, trial: Trial) -> Any:
        from trainlab.optim import options
        from trainlab.train.fit import FIT_KEYWORDS, fit

        optimizer = self.fit_kwargs.get("optimizer", "sgd")
        accepted = set(options(optimizer)) if isinstance(optimizer, str) else set()
        params = {k: v for k, v in trial.params.items() if k in FIT_KEYWORDS or k in accepted or "." in k}
        return fit(self.factory(trial), **{**self.fit_kwargs, **params})


def _objective_value(value: Any, trial: Trial) -> float:
    """An objective's float, or the metric of the ``trainlab.fit`` result it returned."""
    if hasattr(value, "final") and hasattr(value, "status") and hasattr(value, "run_id"):
        if value.status == "pruned":
            raise TrialPruned()
        if value.status != "completed":
            raise RuntimeError(f"run {value.run_id} {value.status}: {value.message}")
        metric = trial.study.metric or "val_loss"
        if metric not in value.final:
            raise ConfigError(
                f"the run's final metrics have no '{metric}' (they have: {', '.join(sorted(value.final))})"
            )
        return float(value.final[metric])
    return value


class _ParamsObjective:
    """Adapts ``fn(params) -> float`` to ``objective(trial)`` (picklable when ``fn`` is)."""

    def __init__(self, fn: Callable[[dict[str, Any]], float]):
        self.fn = fn

    def __call__(self, trial: Trial) -> float:
        return self.fn(trial.params)


def minimize(
    fn: Callable[[dict[str, Any]], float],
    space: Space | Mapping[str, Param],
    *,
    sampler: Sampler | str | None = None,
    n_trials: int = 50,
    seed: int = 0,
    direction: str = "minimize",
    pruner: Pruner | str | None = None,
    storage: str | None = ":memory:",
    name: str | None = None,
    jobs: int = 1,
) -> Study:
    """Minimize (or maximize) ``fn(params) -> float`` over ``space``; returns the study.

    ``sampler`` / ``pruner``: objects or names (``sampler="gp"``; default GP, no pruning).
    In memory by default; give ``storage`` (and ``name``) to keep it, resume it, or run
    ``jobs > 1`` worker processes.

    >>> from trainlab.tune import Float
    >>> study = minimize(lambda p: (p["x"] - 0.3) ** 2, {"x": Float(0, 1)}, n_trials=15)
    >>> round(study.best_params["x"], 1)
    0.3
    """
    name = name or f"minimize-{uuid.uuid4().hex[:8]}"
    study = Study(name, space, sampler=sampler, pruner=pruner, direction=direction, storage=storage, seed=seed)
    return study.optimize(_ParamsObjective(fn), n_trials, jobs=jobs)


def list_studies(storage: str | None = None) -> list[dict[str, Any]]:
    """Summaries of every study in ``storage``: name, direction, metric, sampler, pruner,
    trial counts per state, best value, creation time."""
    out = []
    for s in StudyStorage(storage).list_studies():
        out.append(
            {
                "name": s["name"],
                "direction": s["direction"],
                "metric": s["metric"],
                "sampler": s["sampler"]["name"],
                "pruner": s["pruner"]["name"],
                "n_trials": sum(s["counts"].values()),
                "counts": s["counts"],
                "best_value": s["best_value"],
                "created_at": s["created_at"],
            }
        )
    return out
