"""The logger protocol: a callback that is also a sink of the run's metric buffer."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from trainlab.callbacks import Callback

if TYPE_CHECKING:
    from trainlab.train.trainer import RunResult, Trainer

Row = tuple[int, str, float]


class Logger(Callback):
    """Subclasses implement :meth:`open`, :meth:`write` and :meth:`close`.

    ``on_fit_start`` attaches the logger to ``trainer.metrics`` (the batched buffer in front of
    the store), so :meth:`write` receives each batch of ``(step, key, value)`` rows as the store
    does; ``on_run_end`` (after the store has the run's status and final metrics, test ones
    included) calls :meth:`close`.
    """

    name = "logger"

    def on_fit_start(self, trainer: Trainer) -> None:
        self._failed = False
        self.open(trainer)
        trainer.metrics.add_sink(self._safe_write)

    def on_run_end(self, trainer: Trainer, result: RunResult) -> None:
        if not self._failed:
            self._guard(self.close, trainer, result)

    def _safe_write(self, rows: Sequence[Row]) -> None:
        if not self._failed:
            self._guard(self.write, rows)

    def _guard(self, fn, *args: Any) -> None:
        try:
            fn(*args)
        except Exception as err:  # a mirror never stops a run: the store has every row
            self._failed = True
            warnings.warn(
                f"{self.name} logger stopped ({type(err).__name__}: {err}); the run store still has every metric",
                stacklevel=2,
            )

    # -- what a logger implements -----------------------------------------------------------
    def open(self, trainer: Trainer) -> None: ...

    def write(self, rows: Sequence[Row]) -> None: ...

    def close(self, trainer: Trainer, result: RunResult) -> None: ...


def flat_params(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config as ``{"optim.lr": 0.1, ...}``; lists and None as text (what TensorBoard
    hparams and MLflow params accept)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            out.update(flat_params(value, f"{prefix}{key}."))
        elif isinstance(value, (bool, int, float, str)):
            out[f"{prefix}{key}"] = value
        else:
            out[f"{prefix}{key}"] = str(value)
    return out


def final_numbers(final: Mapping[str, Any]) -> dict[str, float]:
    """The finite numbers among a run's final metrics."""
    import math

    return {
        k: float(v)
        for k, v in final.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    }
