"""Objectives for the multi-process tests: importable by name in spawned workers."""

import os
import time


def quadratic(params):
    return (params["x"] - 0.3) ** 2


def hang_on_trial_3(trial):
    if trial.number == 3:
        time.sleep(600)  # killed here by the test
    return (trial.params["x"] - 0.3) ** 2


def log_number(trial):
    """Append this trial's number and our pid to $TUNE_LOG (O_APPEND: whole lines, no interleaving)."""
    fd = os.open(os.environ["TUNE_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, f"{trial.number} {os.getpid()}\n".encode())
    finally:
        os.close(fd)
    time.sleep(0.01)
    return trial.params["x"]


def quadratic_trial(trial):
    return quadratic(trial.params)
