"""adamw-vs-l2: λ selection, the quick run's figures tied to the store and to the saved weights."""

import numpy as np
import pytest

from trainlab._io import torch_load
from trainlab.reproduce import run_experiment
from trainlab.reproduce.adamw_vs_l2 import MARGIN, QUICK_GRID, config, select
from trainlab.store import Store

GROUP = "reproduce/adamw-vs-l2/quick"


def saved_weight_norm(store, run_id):
    """||w||₂ over the final checkpoint's weight matrices (biases, 1-D, left out), in NumPy."""
    state = torch_load(store.artifacts(run_id)["checkpoint"])["model"]
    return float(np.sqrt(sum(np.sum(t.double().numpy() ** 2) for t in state.values() if t.ndim >= 2)))


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("adamw") / "r.db")
    _, outcome, seeds = run_experiment("adamw-vs-l2", quick=True, store=store, log=lambda _: None)
    return store, outcome, seeds


def test_select_takes_the_best_mean_validation_accuracy_and_the_smaller_lambda_on_ties():
    assert select({0.0: [0.5, 0.7], 0.1: [0.6, 0.62], 1.0: [0.9, 0.1]}) == 0.1  # means 0.6, 0.61, 0.5
    assert select({1.0: [0.5], 0.01: [0.5], 0.1: [0.4]}) == 0.01


def test_config_sets_the_coupled_and_the_decoupled_decay():
    adam, adamw = config("adam", 0.1, 2, quick=False), config("adamw", 0.1, 2, quick=False)
    assert adam["optim"] == {"name": "adam", "lr": 1e-3, "weight_decay": 0.1}
    assert adamw["optim"] == {"name": "adamw", "lr": 1e-3, "weight_decay": 0.1}
    assert "subset" not in adam["data"] and adam["train"]["epochs"] == 100 and adam["seed"] == 2


def test_quick_run_figures_match_the_store_and_the_saved_weights(quick):
    store, outcome, seeds = quick
    f = outcome.figures
    records = store.list_runs(group=GROUP)
    assert len(records) == seeds * (1 + 2 * len(QUICK_GRID))  # λ = 0 runs once, shared by both arms
    for arm, optimizer in (("Adam + L2", "adam"), ("AdamW", "adamw")):
        for lam in QUICK_GRID:
            runs = [
                r
                for r in records
                if r.config["optim"]["name"] == optimizer and r.config["optim"]["weight_decay"] == lam
            ]
            runs.sort(key=lambda r: r.seed)
            assert [r.final["test_acc"] for r in runs] == pytest.approx(f[arm]["test_acc"][f"{lam:g}"])
            assert [r.final["val_acc"] for r in runs] == pytest.approx(f[arm]["val_acc"][f"{lam:g}"])
            assert [saved_weight_norm(store, r.id) for r in runs] == pytest.approx(
                f[arm]["weight_norm"][f"{lam:g}"], rel=1e-6
            )
    plain = sorted((r for r in records if r.config["optim"]["weight_decay"] == 0.0), key=lambda r: r.seed)
    assert [r.config["optim"]["name"] for r in plain] == ["adam"] * seeds
    assert (
        f["Adam + L2"]["test_acc"]["0"]
        == f["AdamW"]["test_acc"]["0"]
        == pytest.approx([r.final["test_acc"] for r in plain])
    )


def test_decay_reaches_the_optimizer(quick):
    _, outcome, seeds = quick
    w = outcome.figures["AdamW"]["weight_norm"]
    # AdamW with λ = 1 shrinks by (1 − 1e-3) a step: smaller weights than without decay, every seed
    assert all(a < b for a, b in zip(w["1"], w["0"]))
    assert len(w["1"]) == seeds


def test_the_check_compares_the_chosen_lambdas_on_test(quick):
    _, outcome, _ = quick
    f = outcome.figures
    chosen = {}
    for arm in ("Adam + L2", "AdamW"):
        val = f[arm]["val_acc"]
        best = max(np.mean(v) for v in val.values())
        chosen[arm] = min(float(k) for k, v in val.items() if np.mean(v) == best)
    assert f["chosen_lambda"] == chosen
    check = f["check"]
    expected = np.mean(f["AdamW"]["test_acc"][f"{chosen['AdamW']:g}"]) - np.mean(
        f["Adam + L2"]["test_acc"][f"{chosen['Adam + L2']:g}"]
    )
    assert check["diff"] == pytest.approx(expected)
    assert outcome.holds == check["holds"] == (check["ci"][0] > MARGIN)
    assert len(outcome.plots) == 2 and all(svg.startswith("<svg") for _, svg in outcome.plots)
