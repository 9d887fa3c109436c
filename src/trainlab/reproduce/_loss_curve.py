"""The loss of every optimizer step, for experiments that measure steps to a target loss.

The Trainer's logged ``train_loss`` is the mean over the steps since the last evaluation (a
smoothed curve, right for monitoring); counting steps to a target needs each step's own loss:
:func:`step_losses` recovers it from a run that logs its window every step
(``train.log_every = 1``) — which a sweep's runs can do, sequential or in a population.
"""

from __future__ import annotations

import numpy as np

from trainlab.compare import steps_to_target
from trainlab.store import Store


def step_losses(store: Store, run_id: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, losses): each step's own training loss — the batch loss at the weights before
    step s's update (the Trainer's ``logs["loss"]``) — of a run trained with ``train.log_every = 1``.

    Its logged ``train_loss`` at step s is the mean m_s of the n_s steps' losses since the last
    evaluation (the window; an evaluation step has two equal rows), so
    ℓ_s = n_s·m_s − (n_s − 1)·m_{s−1}, and ℓ_s = m_s at a window's first step. The evaluations
    are the steps with an ``epoch`` row. The window sums are float64, so ℓ_s is exact to ~1e-13.
    """
    logged = store.metrics(run_id, ["train_loss", "epoch"])
    rows, values = logged.get("train_loss", (np.zeros(0, dtype=np.int64), np.zeros(0)))
    steps, first = np.unique(rows, return_index=True)
    if len(steps) == 0 or not np.array_equal(steps, np.arange(1, len(steps) + 1)):
        raise ValueError(f"run {run_id} did not log train_loss every step (train.log_every = 1)")
    means = values[first]
    evaluations = logged["epoch"][0] if "epoch" in logged else np.zeros(0, dtype=np.int64)
    last_evaluation = np.concatenate([[0], evaluations])[np.searchsorted(evaluations, steps, side="left")]
    n = steps - last_evaluation
    previous = np.concatenate([[0.0], means[:-1]])
    return steps, np.where(n > 1, n * means - (n - 1) * previous, means)


def first_step_at_or_below(steps: np.ndarray, losses: np.ndarray, target: float) -> int | None:
    """The first step whose loss is ≤ ``target`` (the update count that got there is one less), or None."""
    return steps_to_target(steps, losses, target, "min")
