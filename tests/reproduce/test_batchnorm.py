"""batchnorm: the normalization layers in the built nets against the notes' BN formula and Wu & He's GN
in NumPy, the arms' configs, the smoothing and the steps-to-target measure against plain loops, and the
quick run's figures recomputed from the store."""

import math

import numpy as np
import pytest
import torch

from trainlab.nn import group_count
from trainlab.reproduce import run_experiment
from trainlab.reproduce.batchnorm import (
    CHANCE,
    HIGH_LR,
    LARGE,
    LRS,
    SMALL,
    SMALL_BATCH,
    SMOOTH,
    SPEEDUP,
    batch_config,
    batch_label,
    batch_sizes,
    lr_config,
    lr_label,
    speed,
    trailing_mean,
)
from trainlab.store import Store
from trainlab.train import setup


def _first_norm_io(cfg, n=16):
    s = setup({**cfg, "seed": 0})
    block = s.model.blocks[0]
    x = s.data.x_train[:n]
    with torch.no_grad():
        z = block.layer(x)
        out = block.norm(z)
    return z.double().numpy(), out.double().numpy(), block.norm


def test_batch_norm_is_the_notes_formula_with_batch_statistics():
    z, out, norm = _first_norm_io(lr_config("batch", 0.1, quick=True))
    assert norm.training
    mu = z.mean(0)  # 000 §7.5.1: μ_B = (1/K) Σ z_k, σ²_B = (1/K) Σ (z_k − μ_B)²  (biased)
    var = ((z - mu) ** 2).mean(0)
    expected = (z - mu) / np.sqrt(var + norm.eps) * norm.weight.detach().numpy() + norm.bias.detach().numpy()
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_group_norm_normalizes_each_sample_over_its_groups():
    z, out, norm = _first_norm_io(batch_config("group", 4, quick=True), n=4)
    g = group_count(100, 8)
    assert norm.num_groups == g
    grouped = z.reshape(len(z), g, -1)  # Wu & He 2018 eq. 1: statistics per sample and group
    mu, var = grouped.mean(2, keepdims=True), grouped.var(2, keepdims=True)
    expected = ((grouped - mu) / np.sqrt(var + norm.eps)).reshape(z.shape)
    np.testing.assert_allclose(out, expected * norm.weight.detach().numpy() + norm.bias.detach().numpy(), atol=1e-5)


def test_arms_differ_only_where_they_should():
    a, b = lr_config("none", 0.01, False), lr_config("batch", 1.0, False)
    assert a["model"] == {**b["model"], "norm": "none"} and a["data"] == b["data"] and a["train"] == b["train"]
    assert a["train"]["epochs"] == 40 and a["train"]["eval_every"] == 20 and a["data"]["batch_size"] == 64
    assert batch_sizes(False) == (4, 8, 16, 32, 64) and batch_sizes(True) == (SMALL, LARGE)
    for size in batch_sizes(False):
        cfg = batch_config("group", size, False)
        assert cfg["optim"]["lr"] == pytest.approx(0.1 * size / 64) and cfg["data"]["batch_size"] == size
        assert cfg["train"]["epochs"] == 6 and "eval_every" not in cfg["train"]


def _trailing_loop(v, k):
    return np.array([np.mean(v[max(0, i - k + 1) : i + 1]) for i in range(len(v))])


def test_trailing_mean_uses_only_the_last_evaluations():
    v = np.random.default_rng(0).uniform(size=23)
    np.testing.assert_allclose(trailing_mean(v), _trailing_loop(v, SMOOTH), rtol=1e-12)
    np.testing.assert_allclose(trailing_mean(v, 1), v)
    assert trailing_mean(v[:3]).tolist() == pytest.approx([v[0], v[:2].mean(), v[:3].mean()])


def test_speed_is_the_first_step_at_the_baselines_best_smoothed_accuracy():
    steps = np.arange(20, 220, 20.0)
    none = np.array([0.25, 0.25, 0.5, 0.5, 0.75, 0.75, 0.75, 0.75, 0.75, 0.75])  # smoothed: 0.75 first at the 9th
    bn = np.array([0.5, 0.75, 0.75, 0.75, 0.75, 0.75, 1.0, 1.0, 1.0, 1.0])
    target, t_none, t_bn = speed((steps, none), (steps, bn))
    assert target == 0.75 and t_none == 180
    assert t_bn == 120  # smoothed bn: 0.5, 0.625, 0.667, 0.6875, 0.7, 0.75 (the 6th evaluation)
    assert speed((steps, none), (steps, bn * 0.5))[2] is None
    assert speed((steps, none), (np.zeros(0), np.zeros(0)))[2] is None  # diverged before its first evaluation


def test_quick_run_figures_match_the_store(tmp_path):
    store = Store(tmp_path / "r.db")
    _, outcome, seeds = run_experiment("batchnorm", quick=True, store=store, log=lambda _: None)
    f = outcome.figures
    group = "reproduce/batchnorm/quick"
    runs = store.list_runs(group=group)
    sizes = batch_sizes(True)
    assert len(runs) == (2 * len(LRS) + 2 * len(sizes)) * seeds

    def mine(label):
        rs = sorted((r for r in runs if r.name == f"{group}/{label}"), key=lambda r: r.seed)
        assert [r.seed for r in rs] == list(range(seeds))
        return rs

    def scores(label):
        return [r.final["val_acc"] if r.status == "completed" else CHANCE for r in mine(label)]

    def curve(r):
        s, v = store.metrics(r.id, ["val_acc"])["val_acc"]
        return np.asarray(s), np.asarray(v)

    for norm in ("none", "batch"):
        for lr in LRS:
            assert f["val_acc_by_lr"][norm][f"{lr:g}"] == pytest.approx(scores(lr_label(norm, lr)))
    for norm in ("batch", "group"):
        for b in sizes:
            assert f["val_acc_by_batch"][norm][str(b)] == pytest.approx(scores(batch_label(norm, b)))

    # α₀ and the step counts, recomputed with plain loops from the stored curves
    best = {}
    for lr in LRS:
        per_seed = []
        for r in mine(lr_label("none", lr)):
            per_seed.append(_trailing_loop(curve(r)[1], SMOOTH).max() if r.status == "completed" else CHANCE)
        best[lr] = np.mean(per_seed)
    lr0 = max(LRS, key=lambda lr: (best[lr], -lr))
    assert f["baseline_lr"] == lr0
    ratios = []
    for r_none, r_bn in zip(mine(lr_label("none", lr0)), mine(lr_label("batch", lr0))):
        (s0, v0), (s1, v1) = curve(r_none), curve(r_bn)
        sm0, sm1 = _trailing_loop(v0, SMOOTH), _trailing_loop(v1, SMOOTH)
        t_none = next(s for s, a in zip(s0, sm0) if a >= sm0.max() - 1e-9)
        t_bn = next((s for s, a in zip(s1, sm1) if a >= sm0.max() - 1e-9), None)
        assert t_bn is not None  # at this scale BN reaches the baseline's best
        ratios.append(math.log2(t_none / t_bn))
    assert f["log2_speedup"] == pytest.approx(ratios)
    c = f["checks"]
    assert c["faster"]["diff"] == pytest.approx(np.mean(ratios))
    assert c["faster"]["holds"] == (c["faster"]["ci"][0] > SPEEDUP)

    acc = f["val_acc_by_batch"]
    assert c["high_lr"]["diff"] == pytest.approx(
        np.mean(f["val_acc_by_lr"]["batch"]["1"]) - np.mean(f["val_acc_by_lr"]["none"]["1"])
    )
    assert c["high_lr"]["holds"] == (c["high_lr"]["ci"][0] > HIGH_LR)
    assert c["small_batch"]["diff"] == pytest.approx(np.mean(acc["group"]["4"]) - np.mean(acc["batch"]["4"]))
    drop = {n: np.mean(acc[n]["64"]) - np.mean(acc[n]["4"]) for n in ("batch", "group")}
    assert c["bn_degrades"]["diff"] == pytest.approx(drop["batch"] - drop["group"])
    assert c["bn_degrades"]["holds"] == (c["bn_degrades"]["ci"][0] > SMALL_BATCH)
    assert outcome.holds == all(v["holds"] for v in c.values())
    # the quick version: the unnormalized net diverges at lr 1 and BN trains there
    assert f["diverged_by_lr"]["none"]["1"] == seeds and c["high_lr"]["holds"]
    assert len(outcome.plots) == 2 and all(svg.startswith("<svg") for _, svg in outcome.plots)
