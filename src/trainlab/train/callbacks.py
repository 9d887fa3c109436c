"""The Trainer's own callbacks: early stopping and the best-value tracker.

The protocol (hooks, order, state) is :mod:`trainlab.callbacks`; ``Callback`` is re-exported here.
"""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING, Any

from trainlab.callbacks import Callback
from trainlab.errors import ConfigError
from trainlab.stats import is_better, resolve_mode

__all__ = ["BestTracker", "Callback", "EarlyStopping", "resolve_mode"]

if TYPE_CHECKING:
    from trainlab.train.trainer import RunResult, Trainer


class BestTracker:
    """Tracks the best value of a monitored metric; ``min_delta`` is the smallest change that
    counts as an improvement."""

    def __init__(self, monitor: str, mode: str = "auto", min_delta: float = 0.0):
        if min_delta < 0:
            raise ConfigError(f"min_delta must be >= 0, got {min_delta}")
        self.monitor, self.mode, self.min_delta = monitor, resolve_mode(monitor, mode), min_delta
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_step: int | None = None

    def update(self, step: int, metrics: dict[str, float]) -> bool:
        """Return True when ``metrics[monitor]`` improves on the best by more than min_delta."""
        if self.monitor not in metrics:
            raise ConfigError(
                f"monitor '{self.monitor}' is not an evaluation metric; choose one of: {', '.join(sorted(metrics))}"
            )
        value = metrics[self.monitor]
        better = is_better(value, self.best, self.mode, self.min_delta)
        if better:
            self.best, self.best_step = value, step
        return better

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_step": self.best_step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_step = state["best"], state["best_step"]


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience``
    evaluations; with ``restore_best`` the model ends with the weights of the best evaluation.

    The notes (000 §7.6, 002): stop where the validation error starts to rise — the U-shaped
    validation curve — since further training fits noise of the training set.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        mode: str = "auto",
        patience: int = 10,
        min_delta: float = 0.0,
        restore_best: bool = True,
    ):
        if patience < 1:
            raise ConfigError(f"patience must be >= 1, got {patience}")
        self.tracker = BestTracker(monitor, mode, min_delta)
        self.patience, self.restore_best = patience, restore_best
        self.wait = 0
        self.stopped_step: int | None = None
        self.best_state: dict[str, Any] | None = None

    @property
    def best_step(self) -> int | None:
        return self.tracker.best_step

    def on_eval(self, trainer: Trainer, step: int, metrics: dict[str, float]) -> None:
        if self.tracker.update(step, metrics):
            self.wait = 0
            if self.restore_best:
                self.best_state = copy.deepcopy(trainer.model.state_dict())
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_step = step
            trainer.request_stop(
                f"early stopping: {self.tracker.monitor} did not improve for {self.patience} evaluations"
            )

    def on_fit_end(self, trainer: Trainer, result: RunResult) -> None:
        if self.restore_best and self.best_state is not None:
            trainer.model.load_state_dict(self.best_state)
        result.final["early_stopping_best_step"] = self.best_step
        result.final["early_stopping_stopped_step"] = self.stopped_step

    def state_dict(self) -> dict[str, Any]:
        return {
            "tracker": self.tracker.state_dict(),
            "wait": self.wait,
            "stopped_step": self.stopped_step,
            "best_state": self.best_state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.tracker.load_state_dict(state["tracker"])
        self.wait, self.stopped_step, self.best_state = state["wait"], state["stopped_step"], state["best_state"]
