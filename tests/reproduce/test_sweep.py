"""The gallery's sweep helper: one comparison over compare's planner, records by label and seed,
resumable by config hash."""

from pathlib import Path

import pytest
import torch

from trainlab.reproduce import Context
from trainlab.reproduce.sweep import comparison, sweep
from trainlab.store import Store
from trainlab.train import run


def _cfg(lr: float) -> dict:
    return {
        "data": {"name": "mnist1d", "subset": 200, "batch_size": 50},
        "model": {"name": "linear"},
        "optim": {"name": "sgd", "lr": lr},
        "train": {"max_steps": 8, "threads": 1},
    }


CONFIGS = {"slow lr": _cfg(0.01), "fast lr": _cfg(0.5)}


def _ctx(store: Store, seeds: int = 2) -> Context:
    return Context(seeds=seeds, quick=True, store=store, out_dir=Path("."), log=lambda _: None)


def test_comparison_is_one_named_variant_per_config_and_the_contexts_seeds(tmp_path):
    cfg = comparison(_ctx(Store(tmp_path / "r.db")), "demo", CONFIGS)
    assert cfg.name == "reproduce/demo/quick" and cfg.compare["seeds"] == [0, 1]
    assert set(cfg.compare["variants"]) == {"slow lr", "fast lr"}
    assert cfg.compare["variants"]["fast lr"]["optim.lr"] == 0.5


def test_sweep_records_by_label_and_seed_match_plain_runs_and_resume_by_hash(tmp_path):
    store = Store(tmp_path / "r.db")
    runs = sweep(_ctx(store), "demo", CONFIGS)
    assert runs.seeds == [0, 1]
    for label, cfg in CONFIGS.items():
        assert [r.seed for r in runs.records[label]] == [0, 1]
        assert [r.config["optim"]["lr"] for r in runs.records[label]] == [cfg["optim"]["lr"]] * 2
        # the same config and seed run on its own gives the same result
        alone = run({**cfg, "seed": 1}, store=Store(tmp_path / "alone.db"), quiet=True)
        assert runs.final(label, "val_loss")[1] == pytest.approx(alone.final["val_loss"], rel=1e-6)
        assert len(runs.metric(label, "val_loss")) == 2
    # the trained model is rebuilt from its final checkpoint
    model = runs.model("fast lr", 1)
    data_cfg = {**CONFIGS["fast lr"], "seed": 1}
    alone = run(data_cfg, store=Store(tmp_path / "alone2.db"), quiet=True)
    for a, b in zip(model.parameters(), alone.model.parameters()):
        torch.testing.assert_close(a, b)
    ids = {r.id for rs in runs.records.values() for r in rs}
    again = sweep(_ctx(store), "demo", CONFIGS)  # everything has a result: nothing runs again
    assert {r.id for rs in again.records.values() for r in rs} == ids
    assert len(store.list_runs(group="reproduce/demo/quick")) == 4
    more = sweep(_ctx(store, seeds=3), "demo", CONFIGS)  # one more seed: only the two new runs
    assert len(store.list_runs(group="reproduce/demo/quick")) == 6 and more.seeds == [0, 1, 2]
    assert {r.id for r in more.records["slow lr"][:2]} == {r.id for r in runs.records["slow lr"]}


def test_sweep_trains_populations_unless_vectorize_is_off(tmp_path):
    store = Store(tmp_path / "r.db")
    together = sweep(_ctx(store), "together", CONFIGS)
    alone = sweep(_ctx(store), "alone", CONFIGS, vectorize="off")
    for label in CONFIGS:
        assert all(r.final.get("population") for r in together.records[label])
        assert not any(r.final.get("population") for r in alone.records[label])
        assert alone.final(label, "val_loss") == pytest.approx(together.final(label, "val_loss"), rel=1e-5)
