"""Shared fixtures. Tests run on CPU, with a private run store per test."""

from __future__ import annotations

import contextlib
import io
import os

import pytest
import torch
from hypothesis import HealthCheck, settings

# Property-based tests: a fixed, bounded set of examples in `make test` (the same every run),
# a fresh and larger exploration in `make test-all` (HYPOTHESIS_PROFILE=thorough).
_QUIET_CHECKS = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large]
settings.register_profile("fast", max_examples=20, deadline=None, derandomize=True, suppress_health_check=_QUIET_CHECKS)
settings.register_profile("thorough", max_examples=200, deadline=None, suppress_health_check=_QUIET_CHECKS)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast"))

torch.set_num_threads(1)  # two xdist workers on two cores: one thread each is fastest and deterministic


@pytest.fixture(scope="session")
def postgres():
    """One throwaway PostgreSQL server per test process (tests/postgres_server.py): ``postgres``
    logs in without a password, roles made with ``create_role`` with theirs."""
    from postgres_server import postgres_server

    with postgres_server() as server:
        yield server


@pytest.fixture
def store(tmp_path):
    from trainlab.store import Store

    return Store(tmp_path / "runs" / "trainlab.db")


@pytest.fixture
def tiny_config():
    """A run that takes a fraction of a second: a small MLP on a subset of mnist1d."""
    return {
        "name": "tiny",
        "seed": 0,
        "data": {"name": "mnist1d", "batch_size": 64, "subset": 512},
        "model": {"name": "mlp", "hidden": [32]},
        "optim": {"name": "sgd", "lr": 0.1, "momentum": 0.9},
        "train": {"epochs": 2, "threads": 1},
    }


@pytest.fixture(autouse=True)
def _isolated_store_env(tmp_path, monkeypatch):
    """Never write to the user's runs/ folder from a test."""
    monkeypatch.setenv("TRAINLAB_STORE", str(tmp_path / "default-store" / "trainlab.db"))
    yield
    os.environ.pop("TRAINLAB_TEST_DUMMY", None)


def run_cli(*args: str) -> tuple[int, str, str]:
    """``trainlab ARGS`` in this process, through ``trainlab.cli.main``: (exit status, stdout, stderr)."""
    from trainlab.cli import main

    out, err = io.StringIO(), io.StringIO()
    code: int = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def cli():
    return run_cli
