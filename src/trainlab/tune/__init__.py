"""Hyperparameter and architecture search: spaces, samplers, pruners, persistent studies.

NNDL ``000_*.txt`` §7.6 — grid search, random search, Bayesian optimization, dynamic
resource allocation (early stopping, successive halving, Hyperband) and neural
architecture search with a reinforcement-learning controller. See docs/tune.md.

Names resolve lazily (as in :mod:`trainlab.report`), so the CLI, which only needs
:mod:`trainlab.tune.commands`, starts without importing torch and SciPy.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "ArchitectureSpace": "nas",
    "Reinforce": "nas",
    "ASHA": "pruners",
    "Hyperband": "pruners",
    "Median": "pruners",
    "NoPruner": "pruners",
    "Pruner": "pruners",
    "SuccessiveHalving": "pruners",
    "create_pruner": "pruners",
    "GP": "samplers",
    "Grid": "samplers",
    "Random": "samplers",
    "Sampler": "samplers",
    "create_sampler": "samplers",
    "Categorical": "space",
    "Float": "space",
    "Int": "space",
    "Space": "space",
    "Study": "study",
    "Trial": "study",
    "list_studies": "study",
    "minimize": "study",
    "FrozenTrial": "trial",
    "TrialPruned": "trial",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'trainlab.tune' has no attribute '{name}'") from None
    return getattr(importlib.import_module(f"trainlab.tune.{module}"), name)


def __dir__():
    return __all__
