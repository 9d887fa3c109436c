"""Hyperparameter and architecture search: spaces, samplers, pruners, persistent studies.

NNDL ``000_*.txt`` §7.6 — grid search, random search, Bayesian optimization, dynamic
resource allocation (early stopping, successive halving, Hyperband) and neural
architecture search with a reinforcement-learning controller. See docs/tune.md.

Names resolve lazily (as in :mod:`trainlab.report`), so the CLI, which only needs
:mod:`trainlab.tune.commands`, starts without importing torch and SciPy.
"""

from __future__ import annotations

from trainlab._lazy import lazy_exports

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

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
