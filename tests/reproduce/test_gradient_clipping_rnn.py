"""gradient-clipping-rnn: the gradient-norm callback against the Trainer's own pre-clip norm and a
NumPy norm, the divergence rule, and the quick run's figures against the store."""

import math

import numpy as np
import pytest
import torch

from trainlab.reproduce import run_experiment
from trainlab.reproduce.gradient_clipping_rnn import (
    ARMS,
    DIVERGED_MSE,
    MEAN_PREDICTOR_MSE,
    GradNorm,
    config,
    is_diverged,
    learning_rates,
)
from trainlab.store import Store
from trainlab.train import Callback, run


def test_mean_predictor_error_is_the_variance_of_the_sum():
    rng = np.random.default_rng(0)
    target = rng.uniform(size=(200_000, 2)).sum(1)  # the adding problem's target
    assert pytest.approx(np.mean((target - 1.0) ** 2), rel=1e-2) == MEAN_PREDICTOR_MSE


def test_divergence_rule():
    assert is_diverged("diverged", 0.1)
    assert is_diverged("completed", None) and is_diverged("completed", math.nan) and is_diverged("completed", math.inf)
    assert is_diverged("completed", DIVERGED_MSE + 1e-9)
    assert not is_diverged("completed", DIVERGED_MSE) and not is_diverged("completed", 0.17)


class NumpyNorm(Callback):
    """The pre-clip gradient norm computed in NumPy, for comparison."""

    def __init__(self):
        self.norms = []

    def on_before_step(self, trainer, step):
        grads = np.concatenate(
            [p.grad.detach().double().numpy().ravel() for p in trainer.model.parameters() if p.grad is not None]
        )
        self.norms.append(float(np.sqrt(np.sum(grads**2))))


def test_callback_logs_the_norm_before_clipping(tmp_path):
    store = Store(tmp_path / "r.db")
    cfg = config(3.0, 1.0, seed=0, quick=True)
    cfg["train"].update(max_steps=12, eval_every=12, log_every=1)
    reference = NumpyNorm()
    result = run(cfg, store=store, callbacks=[GradNorm(), reference])
    logged = store.metrics(result.run_id, ["total_grad_norm", "train_grad_norm"])
    steps, ours = logged["total_grad_norm"]
    assert steps.tolist() == list(range(1, 13))
    np.testing.assert_allclose(ours, reference.norms, rtol=1e-5)
    # the Trainer logs clip_grad_norm_'s return value (the norm before clipping), averaged over
    # the steps since the last evaluation (none before step 12 here)
    np.testing.assert_allclose(np.cumsum(ours) / np.arange(1, 13), logged["train_grad_norm"][1], rtol=1e-5)
    assert max(ours) > 1.0  # clipping was active, so "before clipping" is tested


def test_config_clips_only_in_the_clipped_arm():
    assert "clip_norm" not in config(0.3, None, 0, False)["train"]
    assert config(0.3, 1.0, 0, False)["train"]["clip_norm"] == 1.0
    assert config(0.3, None, 0, False)["optim"] == {"name": "sgd", "lr": 0.3}


@pytest.mark.slow
def test_quick_run_figures_match_the_store(tmp_path):
    store = Store(tmp_path / "r.db")
    _, outcome, seeds = run_experiment("gradient-clipping-rnn", quick=True, store=store, log=lambda _: None)
    f = outcome.figures
    lrs = learning_rates(quick=True)
    runs = store.list_runs(group="reproduce/gradient-clipping-rnn/quick")
    assert len(runs) == len(ARMS) * len(lrs) * seeds
    for arm, clip in ARMS.items():
        for lr in lrs:
            mine = [r for r in runs if r.config["optim"]["lr"] == lr and r.config["train"].get("clip_norm") == clip]
            mine.sort(key=lambda r: r.seed)
            expected = [
                r.status == "diverged" or not (r.final.get("val_loss") or math.inf) <= DIVERGED_MSE for r in mine
            ]
            assert f["diverged"][arm][str(lr)] == expected
            for r, bad, err in zip(mine, expected, f["test_mse"][arm][str(lr)]):
                assert err == pytest.approx(MEAN_PREDICTOR_MSE if bad else r.final["test_loss"])
    for arm in ARMS:
        rate = [np.mean([f["diverged"][arm][str(lr)][s] for lr in lrs]) for s in range(seeds)]
        assert f["divergence_rate"][arm] == pytest.approx(rate)
    plain, clipped = ARMS
    check = f["checks"]["divergence"]
    assert check["diff"] == pytest.approx(np.mean(f["divergence_rate"][plain]) - np.mean(f["divergence_rate"][clipped]))
    assert outcome.holds == (check["ci"][0] > 0 and f["checks"]["error"]["ci"][1] < 0)
    assert len(outcome.plots) == 2 and all(svg.startswith("<svg") for _, svg in outcome.plots)


def test_grad_norm_of_a_known_gradient():
    """The callback's norm is the 2-norm over all parameters together (Pascanu et al.'s ‖g‖)."""

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(1))
            self.a.grad, self.b.grad = torch.tensor([3.0, 0.0]), torch.tensor([4.0])

    class Trainer:
        model = Model()

    cb = GradNorm()
    cb.on_before_step(Trainer(), 0)
    assert cb.on_step_end(Trainer(), 1, {}) == {"total_grad_norm": 5.0}
