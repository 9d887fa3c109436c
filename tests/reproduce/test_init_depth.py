"""init-depth: the notes' variance recursion, the per-layer measurement against a NumPy forward and
backward, and the quick run's figures against the store and the recursion."""

import math

import numpy as np
import pytest
import torch

from trainlab.reproduce import Context, run_experiment
from trainlab.reproduce._profile import FLOAT32_TINY, init_profile, log10_ratio
from trainlab.reproduce.init_depth import (
    COLLAPSE,
    DEPTH,
    HE_BAND,
    SCHEMES,
    SMALL_STD,
    TRAIN_MARGIN,
    WIDTH,
    XAVIER_SHRINK,
    config,
    theory_std,
)
from trainlab.reproduce.sweep import sweep
from trainlab.store import Store
from trainlab.train import setup


def test_std_factor_per_layer_is_the_notes_recursion():
    # 000 §7.3.2: var(z_l) = ½ M var(w) var(z_{l−1}) for ReLU units
    var_w = {"normal": SMALL_STD**2, "xavier_normal": 2 / (WIDTH + WIDTH), "he_normal": 2 / WIDTH}
    for scheme, (_, factor) in SCHEMES.items():
        assert factor == pytest.approx(math.sqrt(0.5 * WIDTH * var_w[scheme]), rel=1e-12)
    assert SCHEMES["he_normal"][1] == pytest.approx(1.0)
    np.testing.assert_allclose(theory_std(2.0, 0.5, depth=4), [2.0, 1.0, 0.5, 0.25])


def test_log10_ratio_counts_underflow_as_the_smallest_float32():
    assert log10_ratio(1e-3, 1e-1) == pytest.approx(-2.0)
    assert log10_ratio(0.0, 1.0) == pytest.approx(math.log10(FLOAT32_TINY))


def _numpy_profile(model, x, y):
    """Forward and backward of a ReLU MLP with cross-entropy, by hand (the notes' chain rule)."""
    layers = [(b.layer.weight.detach().double().numpy(), b.layer.bias.detach().double().numpy()) for b in model.blocks]
    head_w, head_b = model.head.weight.detach().double().numpy(), model.head.bias.detach().double().numpy()
    a, acts, inputs, zs = x, [], [], []
    for w, b in layers:
        inputs.append(a)
        z = a @ w.T + b
        zs.append(z)
        a = np.maximum(z, 0)
        acts.append(a)
    logits = a @ head_w.T + head_b
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    delta = (p - np.eye(p.shape[1])[y]) / len(y) @ head_w  # ∂L/∂a of the last hidden layer
    grads = []
    for (w, _), z, a_in in zip(reversed(layers), reversed(zs), reversed(inputs)):
        dz = delta * (z > 0)
        grads.append(math.sqrt(np.sum((dz.T @ a_in) ** 2) + np.sum(dz.sum(0) ** 2)))
        delta = dz @ w
    return [float(a.std()) for a in acts], [float(a.mean()) for a in acts], grads[::-1]


def test_init_profile_matches_numpy_forward_and_backward():
    cfg = {
        "seed": 3,
        "data": {"name": "mnist1d", "preprocess": "standardize"},
        "model": {"name": "mlp", "hidden": [16, 12, 8], "activation": "relu", "init": "he_normal", "init_bias": 0.1},
    }
    profile = init_profile(cfg, samples=64)
    s = setup(cfg)  # same seed: the same weights init_profile measured
    stds, means, grads = _numpy_profile(s.model, s.data.x_train[:64].double().numpy(), s.data.y_train[:64].numpy())
    np.testing.assert_allclose(profile["act_std"], stds, rtol=1e-5)
    np.testing.assert_allclose(profile["act_mean"], means, rtol=1e-5)
    np.testing.assert_allclose(profile["grad_norm"], grads, rtol=1e-4)


def test_sweep_runs_start_from_the_weights_init_profile_measures(tmp_path):
    # lr 0: a run's final checkpoint holds its initial weights, here trained as one population per init
    configs = {s: {**config(s, quick=True), "optim": {"name": "sgd", "lr": 0.0}} for s in SCHEMES}
    for cfg in configs.values():
        cfg["train"] = {"max_steps": 1, "threads": 1}
    ctx = Context(seeds=2, quick=True, store=Store(tmp_path / "r.db"), out_dir=tmp_path, log=lambda _: None)
    runs = sweep(ctx, "init-depth", configs)
    for scheme in SCHEMES:
        assert all(r.final.get("population") for r in runs.records[scheme])  # vectorized over seeds
        for i, r in enumerate(runs.records[scheme]):
            trained = runs.model(scheme, i).state_dict()
            built = setup(r.config).model.state_dict()  # what init_profile(r.config) measures
            assert trained.keys() == built.keys()
            for key in built:
                torch.testing.assert_close(trained[key], built[key], rtol=0, atol=0)
        first = [runs.model(scheme, i).blocks[0].layer.weight for i in range(2)]
        assert not torch.equal(*first)  # and the seeds differ


def test_quick_run_follows_the_recursion_and_matches_the_store(tmp_path):
    store = Store(tmp_path / "r.db")
    _, outcome, seeds = run_experiment("init-depth", quick=True, store=store, log=lambda _: None)
    f = outcome.figures
    for scheme, (_, factor) in SCHEMES.items():
        assert len(f["act_std"][scheme]) == seeds and all(len(p) == DEPTH for p in f["act_std"][scheme])
        for stds, r in zip(f["act_std"][scheme], f["log10_std_ratio"][scheme]):
            assert r == pytest.approx(log10_ratio(stds[-1], stds[0]))
    # the measured shrinkage follows the notes' recursion (29 layers × log10 factor) within a decade
    for scheme in ("xavier_normal", "he_normal"):
        expected = (DEPTH - 1) * math.log10(SCHEMES[scheme][1])
        assert abs(np.mean(f["log10_std_ratio"][scheme]) - expected) < 1.0, scheme
    assert max(p[-1] for p in f["act_std"]["normal"]) < 1e-30  # the small Gaussian's signal is gone
    runs = store.list_runs(group="reproduce/init-depth/quick")
    assert len(runs) == len(SCHEMES) * seeds
    for scheme in SCHEMES:
        mine = sorted((r for r in runs if r.name == f"reproduce/init-depth/quick/{scheme}"), key=lambda r: r.seed)
        assert [r.seed for r in mine] == list(range(seeds))
        # the profile at init was measured on each run's own initial weights (its config and seed)
        for r, stds in zip(mine, f["act_std"][scheme]):
            assert init_profile(r.config)["act_std"] == pytest.approx(stds)
        assert f["val_acc"][scheme] == pytest.approx(
            [r.final["val_acc"] if r.status == "completed" else 0.1 for r in mine]
        )
    c = f["checks"]
    assert c["he_constant"]["diff"] == pytest.approx(np.mean(np.abs(f["log10_std_ratio"]["he_normal"])))
    assert c["xavier_shrinks"]["diff"] == pytest.approx(np.mean(f["log10_std_ratio"]["xavier_normal"]))
    assert c["small_collapses"]["diff"] == pytest.approx(np.mean(f["log10_std_ratio"]["normal"]))
    assert c["he_trains"]["diff"] == pytest.approx(np.mean(f["val_acc"]["he_normal"]) - np.mean(f["val_acc"]["normal"]))
    assert c["he_trains"]["holds"] == (c["he_trains"]["ci"][0] > TRAIN_MARGIN)
    assert c["he_constant"]["holds"] == (c["he_constant"]["ci"][1] < HE_BAND)
    assert c["xavier_shrinks"]["holds"] == (c["xavier_shrinks"]["ci"][1] < -XAVIER_SHRINK)
    assert c["small_collapses"]["holds"] == (c["small_collapses"]["ci"][1] < -COLLAPSE)
    assert outcome.holds == all(v["holds"] for v in c.values())
    # the phenomenon is robust: the quick version reaches the full version's verdict
    assert outcome.holds, outcome.statement
    assert len(outcome.plots) == 3 and all(svg.startswith("<svg") for _, svg in outcome.plots)
