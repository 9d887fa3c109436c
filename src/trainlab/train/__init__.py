"""The training loop, its typed config, callbacks and checkpoints."""

from trainlab.train.callbacks import Callback, EarlyStopping
from trainlab.train.config import RunConfig, load_config
from trainlab.train.fit import fit
from trainlab.train.population import Population, run_population
from trainlab.train.trainer import RunResult, Setup, Trainer, run, setup

__all__ = [
    "Callback", "EarlyStopping", "Population", "RunConfig", "RunResult", "Setup", "Trainer", "fit", "load_config", "run",
    "run_population", "setup",
]  # fmt: skip
