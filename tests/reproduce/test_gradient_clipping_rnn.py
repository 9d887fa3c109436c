"""gradient-clipping-rnn: the gradient-norm callback against the Trainer's own pre-clip norm and a
NumPy norm, the divergence and success rules (Pascanu et al.'s tolerance), the basic_tanh init, and
the quick run's figures against the store and a NumPy forward pass of each stored network."""

import math

import numpy as np
import pytest
import torch

from trainlab.reproduce import run_experiment
from trainlab.reproduce.gradient_clipping_rnn import (
    ARMS,
    DIVERGED_MSE,
    HIDDEN,
    INIT_STD,
    MEAN_PREDICTOR_MSE,
    SOLVED_MISS_RATE,
    TOLERANCE,
    GradNorm,
    _rescued,
    config,
    is_diverged,
    is_solved,
    label,
    learning_rates,
    miss_rate,
)
from trainlab.reproduce.sweep import trained_model
from trainlab.store import Store
from trainlab.train import Callback, run, setup


def test_mean_predictor_error_is_the_variance_of_the_sum():
    rng = np.random.default_rng(0)
    target = rng.uniform(size=(200_000, 2)).sum(1)  # the adding problem's target
    assert pytest.approx(np.mean((target - 1.0) ** 2), rel=1e-2) == MEAN_PREDICTOR_MSE


def test_divergence_rule():
    assert is_diverged("diverged", 0.1)
    assert is_diverged("completed", None) and is_diverged("completed", math.nan) and is_diverged("completed", math.inf)
    assert is_diverged("completed", DIVERGED_MSE + 1e-9)
    assert not is_diverged("completed", DIVERGED_MSE) and not is_diverged("completed", 0.17)


def test_miss_rate_is_pascanus_error_on_the_mean():
    """trainingRNNs/RNN.py counts a sequence as an error when ((t − y)²).sum() > .04 with the target
    t = (x1 + x2)/2; our target is x1 + x2, so the same sequences are those off by more than 0.4."""
    rng = np.random.default_rng(1)
    target = rng.uniform(size=(5000, 2)).sum(1)
    prediction = target + rng.normal(0.0, 0.3, target.shape)
    pascanu = float(np.mean((prediction / 2 - target / 2) ** 2 > 0.04))
    assert miss_rate(prediction, target) == pytest.approx(pascanu)
    assert 0.1 < pascanu < 0.25  # both sides of the tolerance are exercised (P(|N(0, .3)| > .4) ≈ 0.18)
    assert miss_rate(np.array([1.0, 1.0, 1.0]), np.array([1.0, 1.5, 0.5 - 1e-9])) == pytest.approx(2 / 3)
    assert miss_rate(np.array([1.0]), np.array([1.0 + TOLERANCE / 2])) == 0.0
    # predicting the mean sum misses the sequences whose sum is below 0.6 or above 1.4
    big = rng.uniform(size=(400_000, 2)).sum(1)
    assert miss_rate(np.ones_like(big), big) == pytest.approx(2 * 0.6**2 / 2, abs=5e-3)  # P(sum < .6) = .6²/2, twice


def test_success_rule():
    assert is_solved(False, 0.0) and is_solved(False, SOLVED_MISS_RATE - 1e-9)
    assert not is_solved(False, SOLVED_MISS_RATE) and not is_solved(True, 0.0)


def test_rescued_names_only_the_lrs_where_clipping_prevented_every_divergence():
    plain, clipped = ARMS
    diverged = {plain: {0.1: [False, False], 0.3: [True, True], 1.0: [True, True]}}
    diverged[clipped] = {0.1: [False, False], 0.3: [False, False], 1.0: [True, False]}
    misses = {plain: {0.1: [0.0, 0.02], 0.3: [math.nan] * 2, 1.0: [math.nan] * 2}}
    misses[clipped] = {0.1: [0.0, 0.0], 0.3: [0.03, 0.005], 1.0: [math.nan, 0.4]}
    text = _rescued((0.1, 0.3, 1.0), diverged, misses, 8000)
    assert "At lr 0.3 " in text and "lr 0.1 " not in text and "lr 1 " not in text
    assert "0.5%, 3.0% (1 below 1%" in text and "8,000 steps" in text


def test_init_is_pascanus_basic_tanh():
    model = setup({**config(0.1, None, False), "seed": 3}).model
    weights = {n: p.detach().numpy() for n, p in model.named_parameters()}
    assert weights["rnn.rnn.weight_hh_l0"].shape == (HIDDEN, HIDDEN)
    every = np.concatenate([w.ravel() for n, w in weights.items() if "weight" in n])
    assert every.size == HIDDEN * HIDDEN + 2 * HIDDEN + HIDDEN
    assert every.std() == pytest.approx(INIT_STD, rel=0.05) and abs(every.mean()) < 0.01
    assert all(not w.any() for n, w in weights.items() if "bias" in n)


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
    cfg = {**config(3.0, 1.0, quick=True), "seed": 0}
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
    assert "clip_norm" not in config(0.3, None, False)["train"]
    assert config(0.3, 1.0, False)["train"]["clip_norm"] == 1.0
    assert config(0.3, None, False)["optim"] == {"name": "sgd", "lr": 0.3}
    assert "seed" not in config(0.3, None, False)  # the sweep sets it
    assert label(0.3, None) != label(0.3, 1.0)


def _numpy_rnn(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    """h_t = tanh(W_ih x_t + b_ih + W_hh h_{t−1} + b_hh), h_0 = 0; ŷ = w·h_T + b, in float64."""
    p = {n: v.detach().double().numpy() for n, v in model.named_parameters()}
    h = np.zeros((x.shape[0], p["rnn.rnn.weight_hh_l0"].shape[0]))
    for t in range(x.shape[1]):
        h = np.tanh(
            x[:, t] @ p["rnn.rnn.weight_ih_l0"].T
            + p["rnn.rnn.bias_ih_l0"]
            + h @ p["rnn.rnn.weight_hh_l0"].T
            + p["rnn.rnn.bias_hh_l0"]
        )
    return (h @ p["head.weight"].T + p["head.bias"]).ravel()


@pytest.mark.slow
def test_quick_run_figures_match_the_store(tmp_path):
    store = Store(tmp_path / "r.db")
    _, outcome, seeds = run_experiment("gradient-clipping-rnn", quick=True, store=store, log=lambda _: None)
    f = outcome.figures
    lrs = learning_rates(quick=True)
    runs = store.list_runs(group="reproduce/gradient-clipping-rnn/quick")
    assert len(runs) == len(ARMS) * len(lrs) * seeds
    data = setup({**config(lrs[0], None, True), "seed": 0}).data
    x, y = data.x_test.double().numpy(), data.y_test.double().numpy()
    for arm, clip in ARMS.items():
        for lr in lrs:
            mine = [r for r in runs if r.config["optim"]["lr"] == lr and r.config["train"].get("clip_norm") == clip]
            mine.sort(key=lambda r: r.seed)
            assert [r.seed for r in mine] == list(range(seeds))
            expected = [
                r.status == "diverged" or not (r.final.get("val_loss") or math.inf) <= DIVERGED_MSE for r in mine
            ]
            assert f["diverged"][arm][str(lr)] == expected
            for r, bad, misses, solved in zip(mine, expected, f["miss_rate"][arm][str(lr)], f["solved"][arm][str(lr)]):
                if bad:
                    assert misses is None or math.isnan(misses)
                    assert not solved
                    continue
                prediction = _numpy_rnn(trained_model(store, r), x)
                assert np.mean((prediction - y) ** 2) == pytest.approx(r.final["test_loss"], rel=1e-4)
                assert misses == pytest.approx(np.mean(np.abs(prediction - y) > 0.4))
                assert solved == (misses < 0.01)
    for arm in ARMS:
        rate = [np.mean([f["diverged"][arm][str(lr)][s] for lr in lrs]) for s in range(seeds)]
        assert f["divergence_rate"][arm] == pytest.approx(rate)
        share = [np.mean([f["solved"][arm][str(lr)][s] for lr in lrs]) for s in range(seeds)]
        assert f["success_rate"][arm] == pytest.approx(share)
    plain, clipped = ARMS
    div, ok = f["checks"]["divergence"], f["checks"]["success"]
    assert div["diff"] == pytest.approx(np.mean(f["divergence_rate"][plain]) - np.mean(f["divergence_rate"][clipped]))
    assert ok["diff"] == pytest.approx(np.mean(f["success_rate"][clipped]) - np.mean(f["success_rate"][plain]))
    assert outcome.holds == (div["ci"][0] > 0 and ok["ci"][0] > 0)
    # the robust part at this scale: at lr 0.3 every unclipped run blows up and no clipped run does
    assert f["diverged"][plain]["0.3"] == [True] * seeds and f["diverged"][clipped]["0.3"] == [False] * seeds
    assert len(outcome.plots) == 2 and all(svg.startswith("<svg") for _, svg in outcome.plots)
    trace = store.list_runs(group="reproduce/gradient-clipping-rnn/quick/grad-norm")
    assert len(trace) == len(ARMS) and {r.seed for r in trace} == {0}


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
