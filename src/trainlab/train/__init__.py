"""The training loop, its typed config, callbacks and checkpoints."""

from trainlab.train.callbacks import Callback, EarlyStopping
from trainlab.train.config import RunConfig, load_config
from trainlab.train.trainer import RunResult, Setup, Trainer, run, setup

__all__ = ["Callback", "EarlyStopping", "RunConfig", "RunResult", "Setup", "Trainer", "load_config", "run", "setup"]
