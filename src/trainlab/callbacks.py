"""The callback protocol: what observes a training run. A leaf module below ``train``, so the
modules that provide callbacks (``diagnose.stats``, ``loggers``, ``tune``) need not import the
Trainer, and the Trainer can use them without an import cycle.

Order (documented and tested): callbacks built from the config come first — per-layer
statistics (``[diagnose] stats_every``), then early stopping (``[train.early_stopping]``), then
the ``[log]`` loggers — then the user's callbacks in the order given. Every hook is called on
every callback in that order. A hook may return a dict of floats; the Trainer logs it as metrics.

Hooks (``trainer`` is the :class:`trainlab.train.Trainer`, ``result`` its ``RunResult``):
    on_fit_start(trainer)
    on_before_step(trainer, step)          gradients computed, before clipping and the step
    on_step_end(trainer, step, logs)       after the optimizer step and the schedule step
    on_eval(trainer, step, metrics)        after each evaluation
    on_fit_end(trainer, result)
    on_run_end(trainer, result)            after the store has the run's status and final metrics

``logs`` holds the step's numbers as the Trainer has them: ``loss`` is a 0-d tensor on the
run's device (reading it, ``float(logs["loss"])``, waits for the device), ``lr`` a float.

A callback that keeps state across a resume implements ``state_dict()`` / ``load_state_dict()``;
the Trainer stores it in every checkpoint.
"""

from __future__ import annotations

from typing import Any


class Callback:
    """Base class: override the hooks you need."""

    def on_fit_start(self, trainer: Any) -> None: ...

    def on_before_step(self, trainer: Any, step: int) -> None: ...

    def on_step_end(self, trainer: Any, step: int, logs: dict[str, Any]) -> dict[str, float] | None: ...

    def on_eval(self, trainer: Any, step: int, metrics: dict[str, float]) -> dict[str, float] | None: ...

    def on_fit_end(self, trainer: Any, result: Any) -> None: ...

    def on_run_end(self, trainer: Any, result: Any) -> None: ...
