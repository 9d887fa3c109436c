"""batch-size-sharpness: the loss along the line between two minima against NumPy, and the quick
run's figures against the store and the saved models."""

import numpy as np
import pytest
import torch

from trainlab._io import torch_load
from trainlab.reproduce import run_experiment
from trainlab.reproduce.batch_size_sharpness import (
    ALPHAS,
    GAP_MARGIN,
    SHARPNESS_MARGIN,
    batch_sizes,
    config,
    gap_at_equal_loss,
    interpolation_losses,
)
from trainlab.store import Store
from trainlab.train import setup


def cross_entropy_np(logits, y):
    z = logits - logits.max(1, keepdims=True)
    return float(np.mean(np.log(np.exp(z).sum(1)) - z[np.arange(len(y)), y]))


def test_interpolation_matches_numpy():
    torch.manual_seed(0)
    a, b = torch.nn.Linear(5, 3).double(), torch.nn.Linear(5, 3).double()
    x, y = torch.randn(40, 5, dtype=torch.float64), torch.randint(0, 3, (40,))
    alphas = np.array([-0.5, 0.0, 0.3, 1.0, 1.5])
    got = interpolation_losses(a, b, alphas, x, y)
    wa, ba = a.weight.detach().numpy(), a.bias.detach().numpy()
    wb, bb = b.weight.detach().numpy(), b.bias.detach().numpy()
    for alpha, loss in zip(alphas, got):
        w, bias = alpha * wb + (1 - alpha) * wa, alpha * bb + (1 - alpha) * ba  # θ(α) = α θ_b + (1 − α) θ_a
        assert loss == pytest.approx(cross_entropy_np(x.numpy() @ w.T + bias, y.numpy()), rel=1e-12)
    # the models themselves are left as they were
    assert torch.equal(a.weight, torch.from_numpy(wa)) and torch.equal(b.bias, torch.from_numpy(bb))


def test_alphas_hold_both_minima():
    assert np.isclose(ALPHAS, 0.0, atol=1e-12).sum() == 1 and np.isclose(ALPHAS, 1.0, atol=1e-12).sum() == 1


def test_configs_differ_only_in_the_batch():
    small, large = (config(k, False) for k in batch_sizes(False).values())
    assert small["data"]["batch_size"] == 32 and large["data"]["batch_size"] == 900
    assert small["optim"] == large["optim"] == {"name": "adam", "lr": 1e-3}
    assert small["train"] == large["train"]


def test_gap_at_equal_loss_reads_the_small_batch_where_its_loss_first_reaches_the_large_batchs_last():
    def h(steps, loss, acc, val):
        return {
            "train_loss": (np.array(steps), np.array(loss)),
            "train_acc": (np.array(steps), np.array(acc)),
            "val_acc": (np.array(steps), np.array(val)),
        }

    large = h([10, 20], [0.9, 0.5], [0.7, 0.8], [0.6, 0.65])
    small = h([10, 20, 30], [0.8, 0.45, 0.1], [0.75, 0.85, 0.99], [0.7, 0.72, 0.74])
    small_gap, large_gap, step = gap_at_equal_loss(small, large)
    assert step == 20 and small_gap == pytest.approx(0.85 - 0.72) and large_gap == pytest.approx(0.8 - 0.65)
    never = h([10], [0.6], [0.7], [0.6])
    assert np.isnan(gap_at_equal_loss(never, large)[0]) and gap_at_equal_loss(never, large)[2] is None


@pytest.mark.slow
def test_quick_run_figures_match_the_store(tmp_path):
    store = Store(tmp_path / "r.db")
    _, outcome, seeds = run_experiment("batch-size-sharpness", quick=True, store=store, log=lambda _: None)
    f = outcome.figures
    sizes = batch_sizes(True)
    data = setup({**config(32, True), "seed": 0}).data
    runs = store.list_runs(group="reproduce/batch-size-sharpness/quick")
    assert len(runs) == 2 * seeds
    for arm, k in sizes.items():
        mine = sorted((r for r in runs if r.config["data"]["batch_size"] == k), key=lambda r: r.seed)
        assert [r.final["test_acc"] for r in mine] == pytest.approx(f[arm]["test_acc"])
        for r, train_acc, loss in zip(mine, f[arm]["train_acc"], f[arm]["loss"]):
            # the saved final model, rebuilt from its config: accuracy and loss on the training set in NumPy
            model = setup(r.config).model
            model.load_state_dict(torch_load(store.artifacts(r.id)["checkpoint"])["model"])
            with torch.no_grad():
                logits = model.eval()(data.x_train).double().numpy()
            y = data.y_train.numpy()
            assert train_acc == pytest.approx(np.mean(logits.argmax(1) == y))
            assert loss == pytest.approx(cross_entropy_np(logits, y), rel=1e-4)
        assert f[arm]["gap"] == pytest.approx(np.subtract(f[arm]["train_acc"], f[arm]["test_acc"]).tolist())
        assert all(v > 0 for v in f[arm]["hessian_top"]) and all(v >= 0 for v in f[arm]["epsilon_sharpness"])
    line = f["interpolation"]
    i0, i1 = int(np.argmin(np.abs(ALPHAS))), int(np.argmin(np.abs(ALPHAS - 1)))
    assert line["train_loss"][i0] == pytest.approx(f["small"]["loss"][0], rel=1e-4)
    assert line["train_loss"][i1] == pytest.approx(f["large"]["loss"][0], rel=1e-4)
    checks = f["checks"]
    assert checks["gap"]["diff"] == pytest.approx(np.mean(f["small"]["test_acc"]) - np.mean(f["large"]["test_acc"]))
    eq = f["gap_at_equal_training_loss"]
    assert len(eq["large"]) == seeds and f["diagnostic"]["diff"] == pytest.approx(
        np.nanmean(eq["large"]) - np.nanmean(eq["small"])
    )
    assert checks["gap"]["holds"] == (checks["gap"]["ci"][0] > GAP_MARGIN)
    for key in ("hessian_top", "epsilon_sharpness"):
        assert checks[key]["diff"] == pytest.approx(
            np.mean(np.log10(f["large"][key])) - np.mean(np.log10(f["small"][key]))
        )
        assert checks[key]["holds"] == (checks[key]["ci"][0] > SHARPNESS_MARGIN)
    assert outcome.holds == all(c["holds"] for c in checks.values())
    assert len(outcome.plots) == 4 and all(svg.startswith("<svg") for _, svg in outcome.plots)
