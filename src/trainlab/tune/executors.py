"""Run a study's trials in parallel: local worker processes or Ray tasks.

The driver (the process that called ``optimize``) asks the study for trials and keeps
``jobs`` of them in flight; each runs in a worker — a process of a spawn-started pool, or
a Ray task on any node of a cluster — which opens the study from its storage URL, runs
the objective (reporting intermediate values and consulting the pruner through the
store) and tells the result itself. Asking in one place keeps the trial budget exact and
lets the GP sampler see every in-flight trial as pending (constant liar).

With Ray, the storage must be reachable from every node: a SQLite file works on one
machine (``ray.init()`` locally), a PostgreSQL URL across machines. Ray is optional
(``pip install 'trainlab[ray]'``) and imported only here, only when asked for.

The storage URL may carry a password: it travels as a pickled argument — through the local
pool's pipe, or Ray's task channel — never on a worker's command line. On a Ray cluster, keep
the password out of the URL altogether (``~/.pgpass`` or ``PGPASSWORD`` on each node; SECURITY.md).
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable
from typing import Any

from trainlab.errors import ConfigError, unknown_name
from trainlab.tune.trial import RUNNING

EXECUTORS = ("local", "ray")

_OPEN: dict[tuple[str, str], Any] = {}


def run_trial(storage_url: str, study_name: str, number: int, objective: Callable) -> str:
    """Worker side: run trial ``number`` (already claimed by the driver) and tell its outcome."""
    from trainlab.tune.study import Study, Trial

    key = (storage_url, study_name)
    if key not in _OPEN:  # a pool process runs many trials; open the study once
        _OPEN[key] = Study.load(study_name, storage=storage_url)
    study = _OPEN[key]
    t = study.trial(number)
    return study.run_trial(Trial(study, number, t.params, t.seed), objective).state


class _LocalPool:
    def __init__(self, jobs: int):
        from trainlab._workers import process_pool

        self.pool = process_pool(jobs)  # spawn-started workers that exit when the driver dies

    def submit(self, *args: Any) -> cf.Future:
        return self.pool.submit(run_trial, *args)

    def wait_any(self, handles: list) -> list:
        done, _ = cf.wait(handles, return_when=cf.FIRST_COMPLETED)
        return list(done)

    @staticmethod
    def error(handle: cf.Future) -> BaseException | None:
        return handle.exception()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class _RayPool:
    def __init__(self, jobs: int):
        try:
            import ray
        except ImportError:
            raise ConfigError("executor 'ray' needs Ray: pip install 'trainlab[ray]'") from None
        self.ray = ray
        if not ray.is_initialized():
            ray.init(ignore_reinit_error=True, log_to_driver=False)
        self.task = ray.remote(num_cpus=1)(run_trial)

    def submit(self, *args: Any):
        return self.task.remote(*args)

    def wait_any(self, handles: list) -> list:
        done, _ = self.ray.wait(handles, num_returns=1)
        return done

    def error(self, handle) -> BaseException | None:
        try:
            self.ray.get(handle)
        except Exception as err:
            return err
        return None

    def close(self) -> None:
        pass


def run_parallel(
    study, objective: Callable, n_trials: int, *, jobs: int, executor: str = "local", callback=None
) -> None:
    """Keep ``jobs`` trials of ``study`` running until ``n_trials`` have been started here."""
    if executor not in EXECUTORS:
        raise unknown_name("executor", executor, EXECUTORS)
    pool = _LocalPool(jobs) if executor == "local" else _RayPool(jobs)
    in_flight: dict[Any, int] = {}
    started, exhausted = 0, False
    try:
        while True:
            while not exhausted and len(in_flight) < jobs and started < n_trials:
                trial = study.ask()
                if trial is None:
                    exhausted = True
                    break
                in_flight[pool.submit(study.storage_url, study.name, trial.number, objective)] = trial.number
                started += 1
            if not in_flight:
                return
            for handle in pool.wait_any(list(in_flight)):
                number = in_flight.pop(handle)
                err = pool.error(handle)
                if err is not None and study.trial(number).state == RUNNING:
                    # The worker died before telling (killed, out of memory, unpicklable objective).
                    study.tell(number, None, "failed", message=f"worker failed: {type(err).__name__}: {err}")
                if callback is not None:
                    callback(study, study.trial(number))
    finally:
        pool.close()
