"""A trial's record, its states, and the per-trial seed.

States: ``waiting`` (parameters queued, not yet claimed — an enqueued point or the
re-queued parameters of an interrupted trial), ``running``, ``complete``, ``pruned``,
``failed``. A worker that dies leaves its trial ``running``; the study marks it
``failed`` and queues its parameters again (see :mod:`trainlab.tune.storage`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

WAITING, RUNNING, COMPLETE, PRUNED, FAILED = "waiting", "running", "complete", "pruned", "failed"
STATES = (WAITING, RUNNING, COMPLETE, PRUNED, FAILED)
FINISHED = (COMPLETE, PRUNED, FAILED)


class TrialPruned(Exception):
    """Raised inside an objective when ``trial.should_prune()`` says stop; the study records
    the trial as ``pruned`` with its last intermediate value."""


@dataclass(frozen=True)
class FrozenTrial:
    """A read-only view of one trial, as stored."""

    number: int
    state: str
    params: dict[str, Any]
    value: float | None = None
    seed: int = 0
    run_id: str | None = None
    intermediate: list[tuple[int, float]] = field(default_factory=list)
    message: str | None = None
    worker: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    requeued_from: int | None = None

    @property
    def last_step(self) -> int | None:
        return self.intermediate[-1][0] if self.intermediate else None

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "state": self.state,
            "params": self.params,
            "value": self.value,
            "seed": self.seed,
            "run_id": self.run_id,
            "intermediate": [list(p) for p in self.intermediate],
            "message": self.message,
            "duration": self.duration,
        }


def trial_seed(study_seed: int, number: int) -> int:
    """The seed of trial ``number``: a function of the study seed and the number only, so a
    rerun with the same study seed gives every trial the same seed whatever the worker order."""
    return int(np.random.SeedSequence([int(study_seed), int(number)]).generate_state(1)[0] & 0x7FFFFFFF)
