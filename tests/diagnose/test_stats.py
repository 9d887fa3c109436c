"""LayerStats against numbers computed by hand (NumPy chain rule) on a tiny net."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from trainlab.diagnose.stats import LayerStats, activation_stats, layer_names

W1 = np.array([[0.5, -1.0, 0.25], [-0.75, 0.5, 1.0]])
B1 = np.array([0.1, -3.0])  # unit 1 is dead on every sample of X
W2 = np.array([[1.5, -0.5]])
B2 = np.array([0.05])
X = np.array([[1.0, 2.0, -1.0], [0.5, -0.5, 2.0], [-1.0, 0.0, 1.0], [2.0, 1.0, 0.0]])
Y = np.array([1.0, -1.0, 0.5, 2.0])
LR = 0.1


def tiny_net() -> nn.Sequential:
    net = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1)).double()
    with torch.no_grad():
        for layer, w, b in ((net[0], W1, B1), (net[2], W2, B2)):
            layer.weight.copy_(torch.from_numpy(w))
            layer.bias.copy_(torch.from_numpy(b))
    return net


def numpy_reference() -> dict[str, float]:
    """Forward, backward (chain rule of the notes' BP derivation) and one SGD step in NumPy,
    for the loss L = mean((ŷ − y)²)."""
    z1 = X @ W1.T + B1
    a1 = np.maximum(z1, 0)
    out = a1 @ W2.T + B2
    d_out = 2 * (out[:, 0] - Y)[:, None] / len(Y)  # ∂L/∂ŷ
    g_w2, g_b2 = d_out.T @ a1, d_out.sum(0)
    d_a1 = d_out @ W2
    d_z1 = d_a1 * (z1 > 0)
    g_w1, g_b1 = d_z1.T @ X, d_z1.sum(0)

    def norm(*arrays):
        return math.sqrt(sum(float((a**2).sum()) for a in arrays))

    new_w1, new_b1 = W1 - LR * g_w1, B1 - LR * g_b1
    new_w2, new_b2 = W2 - LR * g_w2, B2 - LR * g_b2
    dead = float(np.mean(np.all(a1 == 0, axis=0)))
    return {
        "layer/0/act_mean": z1.mean(), "layer/0/act_std": z1.std(),
        "layer/1/act_mean": a1.mean(), "layer/1/act_std": a1.std(), "layer/1/act_dead": dead,
        "layer/2/act_mean": out.mean(), "layer/2/act_std": out.std(),
        "layer/0/grad_norm": norm(g_w1, g_b1), "layer/2/grad_norm": norm(g_w2, g_b2),
        "layer/0/weight_norm": norm(new_w1, new_b1), "layer/2/weight_norm": norm(new_w2, new_b2),
        "layer/0/update_ratio": LR * norm(g_w1, g_b1) / norm(W1, B1),
        "layer/2/update_ratio": LR * norm(g_w2, g_b2) / norm(W2, B2),
    }  # fmt: skip


def test_by_hand_matches_numpy_chain_rule():
    net = tiny_net()
    opt = torch.optim.SGD(net.parameters(), lr=LR)
    stats = LayerStats(net).attach()
    x, y = torch.from_numpy(X), torch.from_numpy(Y)
    loss = ((net(x).squeeze(-1) - y) ** 2).mean()
    loss.backward()
    stats.snapshot()
    opt.step()
    got = stats.collect()
    stats.detach()
    expected = numpy_reference()
    assert expected["layer/1/act_dead"] == 0.5  # the case the bias was chosen for
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key


def test_dead_relu_fraction_is_one_with_very_negative_bias():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    with torch.no_grad():
        net[0].bias.fill_(-100.0)
    stats = LayerStats(net).attach()
    net(torch.randn(32, 8)).sum().backward()
    got = stats.collect()
    assert got["layer/1/act_dead"] == 1.0
    assert got["layer/0/grad_norm"] == 0.0  # a dead layer passes no gradient to its weights


def test_dead_counts_units_dead_on_every_sample_only():
    y = torch.tensor([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 2.0], [0.0, 3.0, 0.0, 0.0]])
    # units 0 and 2 are zero for all samples; 1 and 3 fire at least once
    assert float(activation_stats(y, "dying")["act_dead"]) == 0.5


def test_saturation_fraction_of_tanh_and_sigmoid():
    rng = np.random.default_rng(1)
    z = rng.normal(scale=4.0, size=(64, 10))
    t, s = np.tanh(z), 1 / (1 + np.exp(-z))
    got_t = activation_stats(torch.from_numpy(t), "identity", 0.99)["act_saturated"]
    got_s = activation_stats(torch.from_numpy(s), "affine", 0.99)["act_saturated"]
    assert float(got_t) == pytest.approx(np.mean(np.abs(t) > 0.99))
    assert float(got_s) == pytest.approx(np.mean((s < 0.005) | (s > 0.995)))
    assert 0 < float(got_t) < 1


def test_module_kinds_pick_saturation_or_dead():
    net = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 4), nn.Sigmoid(), nn.GELU())
    stats = LayerStats(net).attach()
    net(torch.randn(5, 4)).sum().backward()
    keys = set(stats.collect())
    assert "layer/1/act_saturated" in keys and "layer/3/act_saturated" in keys
    assert not any(k.endswith("act_dead") for k in keys)
    assert "layer/4/act_std" in keys  # GELU: an activation, so mean and std, neither saturated nor dead
    assert sorted(layer_names(keys, "act_saturated")) == ["1", "3"]


def test_no_grad_forward_is_not_recorded():
    net = tiny_net()
    stats = LayerStats(net).attach()
    x = torch.from_numpy(X)
    net(x).sum().backward()
    with torch.no_grad():
        net(100 * x)  # an evaluation between steps
    got = stats.collect()
    z1 = X @ W1.T + B1
    assert got["layer/0/act_mean"] == pytest.approx(z1.mean())


class _FakeTrainer:
    def __init__(self, model):
        self.model, self.step = model, 0


def test_callback_records_every_n_steps_only():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    cb = LayerStats(net, every=3)
    trainer = _FakeTrainer(net)
    cb.on_fit_start(trainer)
    recorded = {}
    calls = {"n": 0}
    counter = net[0].register_forward_hook(lambda *a: calls.__setitem__("n", calls["n"] + 1))
    for step in range(7):  # the Trainer's order: forward, backward, on_before_step, step, on_step_end
        loss = nn.functional.cross_entropy(net(torch.randn(16, 4)), torch.randint(0, 2, (16,)))
        opt.zero_grad()
        loss.backward()
        cb.on_before_step(trainer, step)
        opt.step()
        trainer.step = step + 1
        out = cb.on_step_end(trainer, step + 1, {})
        if out:
            recorded[step + 1] = out
        with torch.no_grad():
            net(torch.randn(16, 4))  # evaluation
    counter.remove()
    assert sorted(recorded) == [3, 6]
    assert all("layer/0/update_ratio" in m and "layer/1/act_dead" in m for m in recorded.values())
    cb.on_fit_end(trainer, None)
    assert not cb._handles


def test_bad_arguments_name_the_argument():
    net = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="every must be an integer >= 1.*got 0"):
        LayerStats(net, every=0)
    with pytest.raises(ValueError, match="saturation must be in \\(0, 1\\), got 1.5"):
        LayerStats(net, saturation=1.5)
    with pytest.raises(ValueError, match="layers: no module named 'nope'"):
        LayerStats(nn.Sequential(nn.Linear(2, 2)), layers=["nope"])


def test_trainer_records_layer_stats_from_config(store, tiny_config):
    from trainlab.train import run

    cfg = {**tiny_config, "diagnose": {"stats_every": 3}, "train": {**tiny_config["train"], "epochs": 1}}
    result = run(cfg, store=store)
    metrics = store.metrics(result.run_id)
    steps, values = metrics["layer/blocks.0.layer/grad_norm"]
    assert list(steps) == list(range(3, result.final["step"] + 1, 3))
    assert (values > 0).all()
    stats = {k.rsplit("/", 1)[1] for k in metrics if k.startswith("layer/")}
    assert stats == {"act_mean", "act_std", "act_dead", "grad_norm", "weight_norm", "update_ratio"}
    assert layer_names(metrics, "act_dead") == ["blocks.0.act"]
