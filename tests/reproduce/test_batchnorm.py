"""batchnorm: the normalization layers in the built nets against the notes' BN formula and Wu & He's GN
in NumPy, the arms' configs, and the quick run's scores against the store."""

import numpy as np
import pytest
import torch

from trainlab.nn import group_count
from trainlab.reproduce import run_experiment
from trainlab.reproduce.batchnorm import BATCHES, CHANCE, FASTER, HIGH_LR, LRS, SMALL_BATCH, batch_config, lr_config
from trainlab.store import Store
from trainlab.train import setup


def _first_norm_io(cfg, n=16):
    s = setup(cfg)
    block = s.model.blocks[0]
    x = s.data.x_train[:n]
    with torch.no_grad():
        z = block.layer(x)
        out = block.norm(z)
    return z.double().numpy(), out.double().numpy(), block.norm


def test_batch_norm_is_the_notes_formula_with_batch_statistics():
    z, out, norm = _first_norm_io(lr_config("batch", 0.1, 0, quick=True))
    assert norm.training
    mu = z.mean(0)  # 000 §7.5.1: μ_B = (1/K) Σ z_k, σ²_B = (1/K) Σ (z_k − μ_B)²  (biased)
    var = ((z - mu) ** 2).mean(0)
    expected = (z - mu) / np.sqrt(var + norm.eps) * norm.weight.detach().numpy() + norm.bias.detach().numpy()
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_group_norm_normalizes_each_sample_over_its_groups():
    z, out, norm = _first_norm_io(batch_config("group", 4, 0, quick=True), n=4)
    g = group_count(100, 8)
    assert norm.num_groups == g
    grouped = z.reshape(len(z), g, -1)  # Wu & He 2018 eq. 1: statistics per sample and group
    mu, var = grouped.mean(2, keepdims=True), grouped.var(2, keepdims=True)
    expected = ((grouped - mu) / np.sqrt(var + norm.eps)).reshape(z.shape)
    np.testing.assert_allclose(out, expected * norm.weight.detach().numpy() + norm.bias.detach().numpy(), atol=1e-5)


def test_arms_differ_only_where_they_should():
    a, b = lr_config("none", 0.01, 2, False), lr_config("batch", 1.0, 2, False)
    assert a["model"] == {**b["model"], "norm": "none"} and a["data"] == b["data"] and a["train"] == b["train"]
    for size in BATCHES:
        cfg = batch_config("group", size, 0, False)
        assert cfg["optim"]["lr"] == pytest.approx(0.1 * size / 64) and cfg["data"]["batch_size"] == size


def test_quick_run_scores_match_the_store(tmp_path):
    store = Store(tmp_path / "r.db")
    _, outcome, seeds = run_experiment("batchnorm", quick=True, store=store, log=lambda _: None)
    f = outcome.figures
    runs = store.list_runs(group="reproduce/batchnorm/quick")
    assert len(runs) == (2 * len(LRS) + 2 * len(BATCHES)) * seeds

    def scores(name):
        mine = sorted((r for r in runs if r.name == name), key=lambda r: r.seed)
        assert len(mine) == seeds
        return [r.final["val_acc"] if r.status == "completed" else CHANCE for r in mine]

    for norm in ("none", "batch"):
        for lr in LRS:
            assert f["val_acc_by_lr"][norm][f"{lr:g}"] == pytest.approx(scores(f"batchnorm/lr/{norm}/lr={lr:g}/B=64"))
    for norm in ("batch", "group"):
        for b in BATCHES:
            assert f["val_acc_by_batch"][norm][str(b)] == pytest.approx(
                scores(f"batchnorm/batch/{norm}/lr={0.1 * b / 64:g}/B={b}")
            )
    c, acc = f["checks"], f["val_acc_by_batch"]
    assert c["faster"]["diff"] == pytest.approx(
        np.mean(f["val_acc_by_lr"]["batch"]["0.01"]) - np.mean(f["val_acc_by_lr"]["none"]["0.01"])
    )
    assert c["high_lr"]["holds"] == (c["high_lr"]["ci"][0] > HIGH_LR) and c["faster"]["holds"] == (
        c["faster"]["ci"][0] > FASTER
    )
    assert c["small_batch"]["diff"] == pytest.approx(np.mean(acc["group"]["4"]) - np.mean(acc["batch"]["4"]))
    drop = {n: np.mean(acc[n]["64"]) - np.mean(acc[n]["4"]) for n in ("batch", "group")}
    assert c["bn_degrades"]["diff"] == pytest.approx(drop["batch"] - drop["group"])
    assert c["bn_degrades"]["holds"] == (c["bn_degrades"]["ci"][0] > SMALL_BATCH)
    assert outcome.holds == all(v["holds"] for v in c.values())
    assert len(outcome.plots) == 2 and all(svg.startswith("<svg") for _, svg in outcome.plots)
