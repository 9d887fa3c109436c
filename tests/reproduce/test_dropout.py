"""dropout: the OOD inputs and the MC uncertainty against a direct re-computation, and the quick run."""

import numpy as np
import pytest
import torch
from torch import nn

from trainlab.reproduce import run_experiment
from trainlab.reproduce.dropout import DROP, GAP_MARGIN, OOD_MARGIN, config, mc_uncertainty, noise_like
from trainlab.store import Store

GROUP = "reproduce/dropout/quick"


def test_noise_has_the_datas_per_feature_mean_and_std():
    scale, shift = (
        torch.tensor([1.0, 3.0, 0.5], dtype=torch.float64),
        torch.tensor([0.0, -2.0, 7.0], dtype=torch.float64),
    )
    x = torch.randn(5000, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * scale + shift
    noise = noise_like(x, 20_000, torch.Generator().manual_seed(0))
    assert noise.shape == (20_000, 3) and noise.dtype == x.dtype
    # 2e4 draws: SE of a mean = std / 141, of a std ≈ std / 200; tolerance ≈ 6 SE
    np.testing.assert_allclose(noise.mean(0).numpy(), x.mean(0).numpy(), atol=6 * 3.0 / 141)
    np.testing.assert_allclose(noise.std(0).numpy(), x.std(0).numpy(), rtol=6 / 200)


def test_mc_uncertainty_is_the_std_of_the_predicted_class_probability():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3)).eval()
    x = torch.randn(10, 4)
    torch.manual_seed(1)
    got = mc_uncertainty(model, x, samples=200)
    # the same 200 masks, drawn by hand in training mode, then NumPy
    torch.manual_seed(1)
    model.train()
    with torch.no_grad():
        probs = np.stack([torch.softmax(model(x), 1).double().numpy() for _ in range(200)])  # (M, n, K)
    model.eval()
    predicted = probs.mean(0).argmax(1)
    expected = probs[:, np.arange(10), predicted].std(0)  # population std, divisor M
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
    assert not model.training  # the model's mode is restored
    # no dropout: every pass is the same, so no uncertainty at all
    assert np.all(mc_uncertainty(nn.Sequential(nn.Linear(4, 3)), x) == 0.0)


def test_config_drop_probability():
    cfg = config(DROP, quick=False)
    assert cfg["model"]["dropout"] == 0.5 and cfg["data"]["subset"] == 500 and cfg["train"]["epochs"] == 150


def test_quick_run_figures_match_the_store(tmp_path):
    store = Store(tmp_path / "r.db")
    _, outcome, seeds = run_experiment("dropout", quick=True, store=store, log=lambda _: None)
    f = outcome.figures
    records = store.list_runs(group=GROUP)
    assert len(records) == 2 * seeds
    for arm, drop in (("no dropout", 0.0), (f"dropout {DROP:g}", DROP)):
        runs = sorted((r for r in records if r.config["model"]["dropout"] == drop), key=lambda r: r.seed)
        # validation accuracy measured by the experiment in eval mode = the Trainer's last evaluation
        assert f[arm]["val_acc"] == pytest.approx([r.final["val_acc"] for r in runs])
        assert f[arm]["test_acc"] == pytest.approx([r.final["test_acc"] for r in runs])
        assert f[arm]["gap"] == pytest.approx([t - v for t, v in zip(f[arm]["train_acc"], f[arm]["val_acc"])])
    u = f["mc_uncertainty"]
    assert len(u["test digits"]) == len(u["noise inputs"]) == seeds
    assert all(0 < v < 0.5 for v in u["test digits"] + u["noise inputs"])  # std of a probability is at most 1/2
    assert f["uncertainty_ratio"] == pytest.approx([o / i for o, i in zip(u["noise inputs"], u["test digits"])])
    c = f["checks"]
    assert c["gap"]["diff"] == pytest.approx(np.mean(f[f"dropout {DROP:g}"]["gap"]) - np.mean(f["no dropout"]["gap"]))
    assert c["ood"]["diff"] == pytest.approx(np.mean(f["uncertainty_ratio"]) - 1)
    assert c["gap"]["holds"] == (c["gap"]["ci"][1] < -GAP_MARGIN) and c["ood"]["holds"] == (
        c["ood"]["ci"][0] > OOD_MARGIN
    )
    assert outcome.holds == (c["gap"]["holds"] and c["ood"]["holds"])
    assert len(outcome.plots) == 2 and all(svg.startswith("<svg") for _, svg in outcome.plots)
    e = f["ensemble_vs_weight_scaling"]
    # the weight-scaling rule is eval mode: its test accuracy is the run's own final test accuracy
    assert e["weight scaling acc"] == pytest.approx(f[f"dropout {DROP:g}"]["test_acc"])
    assert all(0.5 < a <= 1 for a in e["agreement"]) and all(
        v > 0 for v in e["geometric mean nll"] + e["weight scaling nll"]
    )
    assert any("geometric mean" in caption for caption, _, _ in outcome.tables)
