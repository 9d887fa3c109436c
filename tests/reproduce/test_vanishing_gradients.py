"""vanishing-gradients: the sigmoid backward pass by hand, the notes' ¼ bound, and the quick run's
figures against the store."""

import math

import numpy as np
import pytest

from trainlab.reproduce import run_experiment
from trainlab.reproduce._profile import init_profile, log10_ratio
from trainlab.reproduce.vanishing_gradients import (
    ARMS,
    DEPTH,
    KEEP,
    SELU_BAND,
    STATS_EVERY,
    VANISH,
    config,
    grad_norm_history,
)
from trainlab.store import Store
from trainlab.train import setup


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def test_sigmoid_profile_matches_numpy_backprop_and_shrinks_by_the_slope():
    cfg = {
        "seed": 1,
        "data": {"name": "mnist1d", "preprocess": "standardize"},
        "model": {"name": "mlp", "hidden": [32] * 6, "activation": "sigmoid", "init": "xavier_normal"},
    }
    profile = init_profile(cfg, samples=128)
    s = setup(cfg)
    x, y = s.data.x_train[:128].double().numpy(), s.data.y_train[:128].numpy()
    layers = [
        (b.layer.weight.detach().double().numpy(), b.layer.bias.detach().double().numpy()) for b in s.model.blocks
    ]
    a, inputs, outs = x, [], []
    for w, b in layers:
        inputs.append(a)
        a = _sigmoid(a @ w.T + b)
        outs.append(a)
    logits = a @ s.model.head.weight.detach().double().numpy().T + s.model.head.bias.detach().double().numpy()
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    delta = (p - np.eye(10)[y]) / len(y) @ s.model.head.weight.detach().double().numpy()
    grads = []
    for (w, _), out, a_in in zip(reversed(layers), reversed(outs), reversed(inputs)):
        dz = delta * out * (1 - out)  # σ'(z) = σ(z)(1 − σ(z)) ≤ ¼
        grads.append(math.sqrt(np.sum((dz.T @ a_in) ** 2) + np.sum(dz.sum(0) ** 2)))
        delta = dz @ w
    np.testing.assert_allclose(profile["grad_norm"], grads[::-1], rtol=1e-4)
    np.testing.assert_allclose(profile["act_std"], [o.std() for o in outs], rtol=1e-5)
    slopes = np.concatenate([(o * (1 - o)).ravel() for o in outs])
    assert slopes.max() <= 0.25  # the notes' bound on the logistic slope


def test_arms_differ_only_in_activation_and_init():
    a, b = config("sigmoid + Xavier", False), config("SELU + LeCun", False)
    assert {k: v for k, v in a.items() if k != "model"} == {k: v for k, v in b.items() if k != "model"}
    assert (a["model"]["activation"], a["model"]["init"]) == ("sigmoid", "xavier_normal")
    assert (b["model"]["activation"], b["model"]["init"]) == ("selu", "lecun_normal")
    assert a["model"]["hidden"] == [100] * DEPTH


def test_quick_run_figures_match_the_store(tmp_path):
    store = Store(tmp_path / "r.db")
    _, outcome, seeds = run_experiment("vanishing-gradients", quick=True, store=store, log=lambda _: None)
    f = outcome.figures
    for arm in ARMS:
        for grads, g in zip(f["grad_norm"][arm], f["log10_grad_ratio"][arm]):
            assert len(grads) == DEPTH and g == pytest.approx(log10_ratio(grads[0], grads[-1]))
    runs = store.list_runs(group="reproduce/vanishing-gradients/quick")
    assert len(runs) == len(ARMS) * seeds
    for arm in ARMS:
        mine = sorted((r for r in runs if r.name == f"reproduce/vanishing-gradients/quick/{arm}"), key=lambda r: r.seed)
        assert [r.seed for r in mine] == list(range(seeds))
        assert f["val_acc"][arm] == pytest.approx(
            [r.final["val_acc"] if r.status == "completed" else 0.1 for r in mine]
        )
        # the profile at init was measured on each run's own initial weights (its config and seed)
        for r, grads in zip(mine, f["grad_norm"][arm]):
            assert init_profile(r.config)["grad_norm"] == pytest.approx(grads)
    first = next(r for r in runs if r.name.endswith("/sigmoid + Xavier") and r.seed == 0)
    steps, matrix = grad_norm_history(store, first.id)
    assert matrix.shape == (DEPTH, len(steps)) and np.all(steps % STATS_EVERY == 0)
    assert np.all(np.isfinite(matrix)) and np.all(matrix > 0)
    selu = f["act_std"]["SELU + LeCun"]
    c = f["checks"]
    assert c["sigmoid_vanishes"]["diff"] == pytest.approx(np.mean(f["log10_grad_ratio"]["sigmoid + Xavier"]))
    assert c["relu_keeps"]["diff"] == pytest.approx(np.mean(np.abs(f["log10_grad_ratio"]["ReLU + He"])))
    assert c["selu_std"]["diff"] == pytest.approx(np.mean([abs(p[-1] - 1) for p in selu]))
    assert c["selu_mean"]["diff"] == pytest.approx(np.mean([abs(p[-1]) for p in f["act_mean"]["SELU + LeCun"]]))
    assert c["sigmoid_vanishes"]["holds"] == (c["sigmoid_vanishes"]["ci"][1] < -VANISH)
    assert c["relu_keeps"]["holds"] == (c["relu_keeps"]["ci"][1] < KEEP)
    assert c["selu_std"]["holds"] == (c["selu_std"]["ci"][1] < SELU_BAND) and c["selu_mean"]["holds"] == (
        c["selu_mean"]["ci"][1] < SELU_BAND
    )
    assert outcome.holds == all(v["holds"] for v in c.values())
    assert outcome.holds, outcome.statement  # robust: the quick version reaches the full version's verdict
    assert len(outcome.plots) == 5 and all(svg.startswith("<svg") for _, svg in outcome.plots)
