"""compare --vectorize (issue 20): runs that differ only in seed or vectorizable scalars train as
populations, and the comparison's rows are those of runs made one by one."""

import logging

import pytest

from trainlab.compare import _tasks, run_comparison, summarize_plan
from trainlab.errors import ConfigError
from trainlab.store import Store
from trainlab.train import load_config


def comparison(tiny_config, table):
    tiny_config["train"]["epochs"] = 2
    tiny_config["compare"] = table
    return load_config(tiny_config)


def test_auto_trains_populations_with_the_rows_of_off(tmp_path, tiny_config):
    cfg = comparison(tiny_config, {"seeds": 2, "optim.lr": [0.01, 0.02], "optim.name": ["sgd", "rmsprop"]})
    auto, off = Store(tmp_path / "auto.db"), Store(tmp_path / "off.db")
    run_comparison(cfg, store=auto, quiet=True)
    run_comparison(cfg, store=off, quiet=True, vectorize="off")
    runs_auto, runs_off = auto.list_runs(group="tiny"), off.list_runs(group="tiny")
    assert len(runs_auto) == len(runs_off) == 8
    # sgd's 4 runs (2 lr x 2 seeds) are one population, rmsprop's another
    populations = {r.final["population"].split(":")[0] for r in runs_auto}
    assert len(populations) == 2 and all(r.final["population"].endswith("/4") for r in runs_auto)
    assert all("population" not in r.final for r in runs_off)
    by_hash = {r.config_hash: r for r in runs_off}
    for r in runs_auto:
        ref = by_hash[r.config_hash]
        assert r.status == ref.status == "completed" and r.seed == ref.seed and r.name == ref.name
        assert abs(r.final["val_loss"] / ref.final["val_loss"] - 1) < 1e-3
    rows_auto, rows_off = summarize_plan(cfg, auto), summarize_plan(cfg, off)
    assert [r["variant"] for r in rows_auto] == [r["variant"] for r in rows_off]
    assert [r["n"] for r in rows_auto] == [r["n"] for r in rows_off] == [2, 2, 2, 2]
    # a rerun makes nothing again
    run_comparison(cfg, store=auto, quiet=True)
    assert len(auto.list_runs(group="tiny")) == 8


def test_a_run_a_population_cannot_hold_runs_alone_with_a_line(tiny_config, caplog):
    cfg = comparison(tiny_config, {"seeds": 2, "model.norm": ["none", "batch"]})
    configs = [c for _, c in __import__("trainlab.compare", fromlist=["plan"]).plan(cfg)]
    said = []
    tasks = _tasks(configs, "auto", 1, said.append)
    assert sorted(len(t) for t in tasks) == [1, 1, 2]
    assert said == ["2 runs one by one: model.norm = 'batch' has no batched kernels"]
    store = Store(":memory:")
    with caplog.at_level(logging.INFO, logger="trainlab.compare"):
        run_comparison(cfg, store=store, quiet=True)
    assert "model.norm = 'batch' has no batched kernels" in caplog.text
    runs = store.list_runs(group="tiny")
    assert len(runs) == 4 and sum("population" in r.final for r in runs) == 2


def test_jobs_split_a_population_so_each_worker_gets_one(tiny_config):
    cfg = comparison(tiny_config, {"seeds": 8, "optim.lr": [0.1]})
    configs = [c for _, c in __import__("trainlab.compare", fromlist=["plan"]).plan(cfg)]
    tasks = _tasks(configs, "auto", 2, lambda _: None)
    assert [len(t) for t in tasks] == [4, 4]
    assert sorted(c.seed for t in tasks for c in t) == list(range(8))
    assert [len(t) for t in _tasks(configs, "off", 2, lambda _: None)] == [1] * 8
    with pytest.raises(ConfigError, match="vectorize"):
        _tasks(configs, "sometimes", 1, lambda _: None)


def test_jobs_two_one_population_per_worker(tmp_path, tiny_config):
    cfg = comparison(tiny_config, {"seeds": 4, "optim.lr": [0.1]})
    store = Store(tmp_path / "s.db")
    run_comparison(cfg, store=store, jobs=2, quiet=True)
    runs = store.list_runs(group="tiny")
    assert len(runs) == 4 and all(r.status == "completed" for r in runs)
    assert len({r.final["population"].split(":")[0] for r in runs}) == 2
    assert len({r.config_hash for r in runs}) == 4


def test_cli_vectorize_option(tmp_path):
    from conftest import run_cli

    toml = tmp_path / "c.toml"
    toml.write_text(
        'name = "tiny"\n[data]\nname = "mnist1d"\nbatch_size = 64\nsubset = 256\n[model]\nhidden = [16]\n'
        '[optim]\nlr = 0.1\n[train]\nepochs = 1\nthreads = 1\n[compare]\nseeds = 2\n"optim.lr" = [0.1]\n'
    )
    code, _, err = run_cli("compare", str(toml), "--store", str(tmp_path / "s.db"), "--vectorize", "sometimes")
    assert code == 2 and "vectorize" in err
    code, _, err = run_cli("compare", str(toml), "--store", str(tmp_path / "s.db"), "--vectorize", "off", "-q")
    assert code == 0, err
    runs = Store(tmp_path / "s.db").list_runs()
    assert len(runs) == 2 and all("population" not in r.final for r in runs)
