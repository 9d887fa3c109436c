"""Loggers: mirrors of the run store for the tools people already use — CSV, TensorBoard, MLflow.

The store stays the source of truth; a logger receives exactly the rows the store receives,
under the same keys, in the same batches (it is a sink of the Trainer's
:class:`~trainlab.store.MetricBuffer`, so mirroring adds no per-step work), plus the config
when the run starts and the final metrics when it ends. A mirror that fails (a full disk, an
unreachable tracking server) warns once and is dropped; the run goes on.

From a config::

    [log]
    to = ["csv", "tensorboard", "mlflow"]

From Python: ``create_loggers(["csv", "tensorboard"])`` returns callbacks for ``Trainer`` /
``run(config, callbacks=...)``. ``csv`` needs nothing; ``tensorboard`` and ``mlflow`` are
optional extras (``pip install 'trainlab[tensorboard]'``, ``'trainlab[mlflow]'``); a missing one
is a :class:`~trainlab.errors.ConfigError` naming the extra.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Sequence
from typing import Any

from trainlab.errors import ConfigError, unknown_name
from trainlab.loggers._base import Logger

# name -> (module, class, the package it needs, the extra that installs it)
LOGGERS: dict[str, tuple[str, str, str | None, str | None]] = {
    "csv": ("trainlab.loggers.csv", "CSVLogger", None, None),
    "tensorboard": ("trainlab.loggers.tensorboard", "TensorBoardLogger", "tensorboard", "tensorboard"),
    "mlflow": ("trainlab.loggers.mlflow", "MLflowLogger", "mlflow", "mlflow"),
}


def require(package: str, extra: str, what: str) -> None:
    """A one-line ConfigError when ``package`` is not installed, naming the extra to install."""
    if importlib.util.find_spec(package) is None:
        raise ConfigError(f"{what} needs the '{package}' package: pip install 'trainlab[{extra}]'")


def create_loggers(
    names: Sequence[str],
    *,
    dir: str | os.PathLike | None = None,
    mlflow_uri: str | None = None,
    mlflow_experiment: str | None = None,
) -> list[Logger]:
    """One logger callback per name (``csv``, ``tensorboard``, ``mlflow``), in the order given.

    ``dir``: TensorBoard's root folder, one subfolder per run (default: each run's own folder,
    ``<artifact root>/<run id>/tensorboard``). ``mlflow_uri``: the tracking URI (default
    MLflow's own: ``$MLFLOW_TRACKING_URI`` or ``./mlruns``); ``mlflow_experiment``: default the
    run's group, else its name.
    """
    if isinstance(names, str):
        names = [names]
    out: list[Logger] = []
    for name in names:
        if name not in LOGGERS:
            raise unknown_name("logger", name, LOGGERS)
        module, cls, package, extra = LOGGERS[name]
        if package is not None and extra is not None:
            require(package, extra, f"logger '{name}'")
        options: dict[str, Any] = {}
        if name == "tensorboard":
            options = {"root": dir}
        elif name == "mlflow":
            options = {"tracking_uri": mlflow_uri, "experiment": mlflow_experiment}
        out.append(getattr(importlib.import_module(module), cls)(**options))
    if len({type(x) for x in out}) != len(out):
        raise ConfigError(f"log.to names a logger twice: {list(names)}")
    return out


__all__ = ["LOGGERS", "Logger", "create_loggers", "require"]
