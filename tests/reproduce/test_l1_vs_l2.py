"""l1-vs-l2: the near-zero share against NumPy by hand, and the quick run tied to the saved weights."""

import numpy as np
import pytest
from scipy import special

from trainlab._io import torch_load
from trainlab.reproduce import run_experiment
from trainlab.reproduce.l1_vs_l2 import (
    DENSE_MARGIN,
    LAMBDA,
    SHRINK_MARGIN,
    SPARSITY_MARGIN,
    config,
    near_zero_share,
    rms,
)
from trainlab.store import Store

GROUP = "reproduce/l1-vs-l2/quick"


def test_near_zero_share_by_hand():
    # layer 1: RMS = sqrt(3/4), threshold 0.00866: one of four; layer 2: RMS = 5, threshold 0.05: 0.04 and -0.01
    layers = [np.array([[0.0, 1.0], [1.0, -1.0]]), np.array([0.04, -0.01, 10.0, 0.0, 0.06, -3.0, 1.0, 2.0])]
    rms2 = np.sqrt(np.mean(layers[1] ** 2))
    expected_small_2 = int(np.sum(np.abs(layers[1]) < 0.01 * rms2))
    assert near_zero_share(layers) == pytest.approx((1 + expected_small_2) / 12)
    assert near_zero_share(layers, relative=0.5) == pytest.approx((1 + np.sum(np.abs(layers[1]) < 0.5 * rms2)) / 12)


def test_near_zero_share_ignores_scale_and_matches_the_normal_law():
    w = np.random.default_rng(0).normal(size=(400, 500))
    share = near_zero_share([w])
    assert near_zero_share([1e-3 * w]) == share  # L2-like uniform shrinkage changes nothing
    # P(|z| < 0.01) = erf(0.01 / √2) ≈ 0.00798 for z ~ N(0, 1); 2e5 draws: SE ≈ 2e-4
    assert share == pytest.approx(special.erf(0.01 / np.sqrt(2)), abs=1e-3)


def test_rms_pools_the_layers():
    assert rms([np.array([3.0, 4.0]), np.array([[0.0]])]) == pytest.approx(np.sqrt(25 / 3))


def test_bad_relative_threshold_names_itself():
    with pytest.raises(ValueError, match=r"relative must be in \(0, 1\), got 1.5"):
        near_zero_share([np.ones(3)], relative=1.5)


def test_config_penalties():
    assert config("L1", quick=False)["regularize"] == {"l1": LAMBDA}
    assert config("L2", quick=False)["regularize"] == {"l2": LAMBDA}
    assert config("none", quick=False)["regularize"] == {}
    assert config("L1", quick=False)["schedule"] == {"name": "cosine"}


def test_quick_run_figures_match_the_saved_weights(tmp_path):
    store = Store(tmp_path / "r.db")
    _, outcome, seeds = run_experiment("l1-vs-l2", quick=True, store=store, log=lambda _: None)
    f = outcome.figures
    records = store.list_runs(group=GROUP)
    assert len(records) == 3 * seeds
    for arm in ("none", "L1", "L2"):
        runs = sorted((r for r in records if r.name == f"{GROUP}/{arm}"), key=lambda r: r.seed)
        penalties = {"l1": LAMBDA if arm == "L1" else 0.0, "l2": LAMBDA if arm == "L2" else 0.0}
        assert [{k: r.config["regularize"][k] for k in ("l1", "l2")} for r in runs] == [penalties] * seeds
        shares, norms = [], []
        for r in runs:
            state = torch_load(store.artifacts(r.id)["checkpoint"])["model"]
            weights = [t.double().numpy() for t in state.values() if t.ndim >= 2]
            shares.append(
                sum(int(np.sum(np.abs(w) < 0.01 * np.sqrt(np.mean(w**2)))) for w in weights)
                / sum(w.size for w in weights)
            )
            norms.append(np.sqrt(np.mean(np.concatenate([w.ravel() for w in weights]) ** 2)))
        assert f[arm]["near_zero"] == pytest.approx(shares)
        assert f[arm]["rms"] == pytest.approx(norms, rel=1e-9)
        assert f[arm]["test_acc"] == pytest.approx([r.final["test_acc"] for r in runs])
    # torch's default init is uniform: about 0.6% of weights below 1% of the RMS before training moves them
    assert all(s < 0.02 for s in f["none"]["near_zero"])
    assert f["l2_shrinkage"] == pytest.approx([1 - a / b for a, b in zip(f["L2"]["rms"], f["none"]["rms"])])
    c = f["checks"]
    assert c["sparsity"]["diff"] == pytest.approx(np.mean(f["L1"]["near_zero"]) - np.mean(f["L2"]["near_zero"]))
    assert c["shrinkage"]["diff"] == pytest.approx(np.mean(f["l2_shrinkage"]))
    assert c["dense"]["diff"] == pytest.approx(np.mean(f["L2"]["near_zero"]) - np.mean(f["none"]["near_zero"]))
    assert c["sparsity"]["holds"] == (c["sparsity"]["ci"][0] > SPARSITY_MARGIN)
    assert c["shrinkage"]["holds"] == (c["shrinkage"]["ci"][0] > SHRINK_MARGIN)
    assert c["dense"]["holds"] == (c["dense"]["ci"][1] < DENSE_MARGIN)
    assert outcome.holds == all(v["holds"] for v in c.values())
    assert outcome.holds, outcome.statement  # robust: the quick version reaches the full version's verdict
    assert len(outcome.plots) == 2 and all(svg.startswith("<svg") for _, svg in outcome.plots)
