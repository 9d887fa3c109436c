"""Hyperparameter and architecture search: spaces, samplers, pruners, persistent studies.

NNDL ``000_*.txt`` §7.6 — grid search, random search, Bayesian optimization, dynamic
resource allocation (early stopping, successive halving, Hyperband) and neural
architecture search with a reinforcement-learning controller. See docs/tune.md.
"""

from trainlab.tune.nas import ArchitectureSpace, Reinforce
from trainlab.tune.pruners import ASHA, Hyperband, Median, NoPruner, Pruner, SuccessiveHalving, create_pruner
from trainlab.tune.samplers import GP, Grid, Random, Sampler, create_sampler
from trainlab.tune.space import Categorical, Float, Int, Space
from trainlab.tune.study import Study, Trial, list_studies, minimize
from trainlab.tune.trial import FrozenTrial, TrialPruned

__all__ = [
    "ASHA",
    "GP",
    "ArchitectureSpace",
    "Categorical",
    "Float",
    "FrozenTrial",
    "Grid",
    "Hyperband",
    "Int",
    "Median",
    "NoPruner",
    "Pruner",
    "Random",
    "Reinforce",
    "Sampler",
    "Space",
    "Study",
    "SuccessiveHalving",
    "Trial",
    "TrialPruned",
    "create_pruner",
    "create_sampler",
    "list_studies",
    "minimize",
]
