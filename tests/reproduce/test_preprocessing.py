"""preprocessing: the inputs' curvature spectrum against NumPy standardization and PCA whitening written
from the notes' formulas, the per-step loss the claim counts (against gradient descent in NumPy), and the
quick run against the store."""

import math

import numpy as np
import pytest

from trainlab.data import load
from trainlab.reproduce import run_experiment
from trainlab.reproduce._loss_curve import first_step_at_or_below, step_losses
from trainlab.reproduce.preprocessing import (
    ARMS,
    MARGIN,
    TARGET_LOSS,
    _inputs,
    condition_number,
    config,
    second_moment_spectrum,
)
from trainlab.store import Store
from trainlab.train import run, setup


def _raw_digits(quick=False):
    d = load("digits", subset=300 if quick else None)
    return d.x_train.reshape(len(d.x_train), -1).double().numpy()


def test_spectrum_is_that_of_the_second_moment_with_a_bias_column():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3)) * [1.0, 10.0, 0.1] + [5.0, 0.0, 0.0]
    a = np.c_[x, np.ones(50)]
    np.testing.assert_allclose(second_moment_spectrum(x), np.linalg.eigvalsh(a.T @ a / 50), rtol=1e-12)
    assert condition_number(np.array([0.0, 1e-14, 0.5, 2.0])) == pytest.approx(4.0)  # exact zeros left out


def test_standardized_and_whitened_inputs_follow_the_notes_formulas():
    x = _raw_digits()
    mu, sigma = x.mean(0), x.std(0)
    keep = sigma > 0  # 000 §7.4: a feature with σ = 0 has no information and is dropped
    standardized = (x[:, keep] - mu[keep]) / sigma[keep]
    np.testing.assert_allclose(_inputs("standardize", False).reshape(len(x), -1), standardized, atol=1e-4)
    np.testing.assert_allclose(
        second_moment_spectrum(_inputs("standardize", False)),
        second_moment_spectrum(standardized),
        rtol=1e-4,
        atol=1e-6,
    )
    # PCA whitening: rotate onto the covariance's eigenvectors and divide by sqrt(λ + 1e-5)
    lam, vecs = np.linalg.eigh(np.cov(x.T))
    white = (x - mu) @ vecs / np.sqrt(np.maximum(lam, 0) + 1e-5)
    ev = second_moment_spectrum(_inputs("pca", False))
    np.testing.assert_allclose(ev, second_moment_spectrum(white), rtol=1e-3, atol=1e-6)
    assert ev[-1] == pytest.approx(1.0, abs=1e-6)  # unit variance in every direction (and the bias)
    assert condition_number(ev) < 10 < 1e3 < condition_number(second_moment_spectrum(x))


def _gd_losses(x, y, w, b, lr, steps):
    """Full-batch gradient descent on the mean softmax cross-entropy of ``x @ w.T + b``, in
    float64 NumPy: the loss at the weights before each of ``steps`` updates."""
    onehot = np.eye(w.shape[0])[y]
    out = []
    for _ in range(steps):
        z = x @ w.T + b
        z -= z.max(1, keepdims=True)
        p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
        out.append(float(-np.mean(np.log(p[np.arange(len(y)), y]))))
        g = (p - onehot) / len(y)
        w, b = w - lr * g.T @ x, b - lr * g.sum(0)
    return np.array(out)


@pytest.mark.filterwarnings("ignore:Standardizer dropped")
def test_step_losses_are_the_losses_before_each_update(tmp_path):
    store = Store(tmp_path / "r.db")
    cfg = {**config("standardize", True, lr=0.5), "seed": 0}
    cfg["train"].update(max_steps=7, eval_every=3)  # windows of 3, 3 and 1 steps: the means are undone per window
    s = setup(cfg)
    x, y = s.data.x_train.double().numpy(), s.data.y_train.numpy()
    w, b = (p.detach().double().numpy() for p in s.model.parameters())
    result = run(cfg, store=store, quiet=True)
    steps, losses = step_losses(store, result.run_id)
    assert steps.tolist() == list(range(1, 8))
    np.testing.assert_allclose(losses, _gd_losses(x, y, w, b, 0.5, 7), rtol=1e-5)
    assert first_step_at_or_below(steps, losses, losses[1]) == 2 and first_step_at_or_below(steps, losses, 0.0) is None
    cfg["train"]["log_every"] = 2
    sparse = run(cfg, store=store, quiet=True)
    with pytest.raises(ValueError, match=r"did not log train_loss every step \(train.log_every = 1\)"):
        step_losses(store, sparse.run_id)


def test_quick_run_figures_match_the_store(tmp_path):
    store = Store(tmp_path / "r.db")
    _, outcome, seeds = run_experiment("preprocessing", quick=True, store=store, log=lambda _: None)
    f = outcome.figures
    runs = store.list_runs(group="reproduce/preprocessing/quick")
    assert len(runs) == len(ARMS) * seeds
    for arm, preprocess in ARMS.items():
        assert f["lr"][arm] == pytest.approx(2 / second_moment_spectrum(_inputs(preprocess, True))[-1])
        mine = sorted((r for r in runs if r.name == f"reproduce/preprocessing/quick/{arm}"), key=lambda r: r.seed)
        assert [r.config["data"]["preprocess"] for r in mine] == [preprocess] * seeds
        for run_record, t, hit in zip(mine, f["steps_to_target"][arm], f["reached"][arm]):
            assert run_record.config["optim"]["lr"] == pytest.approx(f["lr"][arm])
            steps, losses = step_losses(store, run_record.id)
            below = np.flatnonzero(losses <= TARGET_LOSS)
            assert hit == bool(below.size) and t == (steps[below[0]] if below.size else f["budget"])
        assert f["final_train_loss"][arm] == pytest.approx([step_losses(store, r.id)[1][-1] for r in mine])
        assert f["val_acc"][arm] == pytest.approx([r.final["val_acc"] for r in mine])
    c = f["checks"]
    log2 = {arm: np.log2(f["steps_to_target"][arm]) for arm in ARMS}
    assert c["standardize"]["diff"] == pytest.approx(np.mean(log2["raw"]) - np.mean(log2["standardized"]))
    assert c["whiten"]["diff"] == pytest.approx(np.mean(log2["standardized"]) - np.mean(log2["PCA-whitened"]))
    assert c["whiten"]["holds"] == (c["whiten"]["ci"][0] > MARGIN)
    assert outcome.holds == all(v["holds"] for v in c.values())
    assert outcome.holds, outcome.statement  # robust: the quick version reaches the full version's verdict
    assert math.isclose(f["lambda_max"]["PCA-whitened"], 1.0, abs_tol=1e-6)
    assert len(outcome.plots) == 2 and all(svg.startswith("<svg") for _, svg in outcome.plots)
