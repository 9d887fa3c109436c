"""label-smoothing: the ECE against a NumPy reference of Guo et al.'s formula, and the quick run."""

import numpy as np
import pytest

from trainlab.reproduce import run_experiment
from trainlab.reproduce.label_smoothing import MARGIN, config, expected_calibration_error, reliability
from trainlab.store import Store


def ece_reference(probs, labels, n_bins):
    """Guo et al. (2017) eq. 3, bin by bin: Σ_b |B_b|/n · |acc(B_b) − conf(B_b)|, B_b = (b/M, (b+1)/M]."""
    confidence, predicted = probs.max(1), probs.argmax(1)
    total = 0.0
    for b in range(n_bins):
        inside = (confidence > b / n_bins) & (confidence <= (b + 1) / n_bins)
        if inside.any():
            accuracy = np.mean(predicted[inside] == labels[inside])
            total += inside.mean() * abs(accuracy - confidence[inside].mean())
    return total


@pytest.mark.parametrize("n_bins", [1, 10, 15])
def test_ece_matches_the_reference_on_random_predictions(n_bins):
    rng = np.random.default_rng(n_bins)
    logits = rng.normal(scale=3.0, size=(500, 10))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = rng.integers(0, 10, 500)
    assert expected_calibration_error(probs, labels, n_bins) == pytest.approx(
        ece_reference(probs, labels, n_bins), abs=1e-12
    )


def test_ece_by_hand():
    # confidences 0.9 (right), 0.9 (wrong), 0.6 (right), 0.7 (right) in 10 bins:
    # 2/4·|0.5 − 0.9| + 1/4·|1 − 0.6| + 1/4·|1 − 0.7| = 0.2 + 0.1 + 0.075
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.3, 0.7]])
    assert expected_calibration_error(probs, np.array([0, 1, 0, 1]), 10) == pytest.approx(0.375)
    # perfectly confident and right: no gap
    assert expected_calibration_error(np.eye(3), np.arange(3), 15) == 0.0


def test_bins_are_closed_on_the_right():
    probs = np.array([[0.5, 0.5], [1.0, 0.0]])  # confidence 0.5 -> (0, 0.5]; 1.0 -> (0.5, 1]
    counts, correct, confidence = reliability(probs, np.array([1, 0]), 2)
    assert counts.tolist() == [1.0, 1.0]
    assert correct.tolist() == [0.0, 1.0] and confidence.tolist() == [0.5, 1.0]


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="n_bins must be an integer >= 1, got 0"):
        expected_calibration_error(np.eye(2), np.arange(2), 0)
    with pytest.raises(ValueError, match="probs must be"):
        expected_calibration_error(np.eye(2), np.arange(3))


def test_config_uses_the_notes_smoothing():
    cfg = config(0.1, quick=False)
    assert cfg["train"]["label_smoothing"] == 0.1 and cfg["train"]["label_smoothing_style"] == "notes"
    assert "subset" not in cfg["data"]


def test_quick_run_figures_match_the_store(tmp_path):
    store = Store(tmp_path / "r.db")
    _, outcome, seeds = run_experiment("label-smoothing", quick=True, store=store, log=lambda _: None)
    f = outcome.figures
    arms = ["one-hot", "smoothed ε=0.1"]
    records = store.list_runs(group="reproduce/label-smoothing/quick")
    assert len(records) == 2 * seeds
    for arm, eps in zip(arms, (0.0, 0.1)):
        runs = [r for r in records if r.config["train"]["label_smoothing"] == eps]
        # accuracy from the experiment's own predictions = the Trainer's test evaluation
        assert sorted(f[arm]["test_acc"]) == pytest.approx(sorted(r.final["test_acc"] for r in runs))
        assert all(0 <= e <= 1 for e in f[arm]["ece"]) and all(0.1 <= c <= 1 for c in f[arm]["confidence"])
    check = f["check"]
    assert check["diff"] == pytest.approx(np.mean(f["one-hot"]["ece"]) - np.mean(f["smoothed ε=0.1"]["ece"]))
    assert outcome.holds == check["holds"] == (check["ci"][0] > MARGIN)
    assert len(outcome.plots) == 2 and all(svg.startswith("<svg") for _, svg in outcome.plots)
