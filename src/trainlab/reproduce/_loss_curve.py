"""The loss of every optimizer step, for experiments that measure steps to a target loss.

The Trainer's logged ``train_loss`` is the mean over the steps since the last evaluation (a
smoothed curve, right for monitoring); counting steps to a target needs each step's own loss.
"""

from __future__ import annotations

import numpy as np

from trainlab.compare import steps_to_target
from trainlab.store import Store
from trainlab.train import Callback

KEY = "step_loss"


class StepLoss(Callback):
    """Logs each step's training loss as the metric ``step_loss``: the loss of the batch at the
    weights *before* step s's update (the Trainer's ``logs["loss"]``)."""

    def on_step_end(self, trainer, step: int, logs: dict[str, float]) -> dict[str, float]:
        return {KEY: logs["loss"]}


def loss_curve(store: Store, run_id: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, losses) recorded by :class:`StepLoss`."""
    return store.metrics(run_id, [KEY])[KEY]


def first_step_at_or_below(steps: np.ndarray, losses: np.ndarray, target: float) -> int | None:
    """The first step whose loss is ≤ ``target`` (the update count that got there is one less), or None."""
    return steps_to_target(steps, losses, target, "min")
