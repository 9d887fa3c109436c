"""orthogonal-deep-linear: L* and the step size against independent fits, the notes' norm preservation
of the orthogonal product vs the spread of the Gaussian one, and the quick run against the store."""

import math

import numpy as np
import pytest

from trainlab.reproduce import run_experiment
from trainlab.reproduce._loss_curve import step_losses
from trainlab.reproduce.orthogonal_deep_linear import INITS, L_STAR, MARGIN, TARGET_LOSS, WIDTH, base_lr, config, depths
from trainlab.store import Store
from trainlab.train import setup


def _inputs():
    s = setup({**config("orthogonal", 1, quick=False), "seed": 0})
    return s.data.x_train.double().numpy(), s.data.y_train.numpy()


def test_l_star_is_the_lowest_loss_of_a_linear_map():
    from sklearn.linear_model import LogisticRegression

    x, y = _inputs()
    fit = LogisticRegression(C=1e8, fit_intercept=False, max_iter=20000, tol=1e-10).fit(x, y)
    p = fit.predict_proba(x)
    assert -np.log(p[np.arange(len(y)), y]).mean() == pytest.approx(L_STAR, abs=1e-3)
    assert pytest.approx((math.log(10) + L_STAR) / 2) == TARGET_LOSS


def test_base_lr_is_two_over_the_top_eigenvalue():
    x, _ = _inputs()
    assert base_lr(False) == pytest.approx(2 / np.linalg.eigvalsh(x.T @ x / len(x)).max(), rel=1e-5)


def _product(scheme, depth, seed=0):
    model = setup({**config(scheme, depth, quick=False), "seed": seed}).model
    weights = [layer.weight.detach().double().numpy() for layer in model.layers]
    assert [w.shape for w in weights] == [(WIDTH, 40)] * (depth - 1) + [(10, WIDTH)]
    out = np.eye(40)
    for w in weights:
        out = w @ out
    return np.linalg.svd(out, compute_uv=False)


def test_orthogonal_product_preserves_norms_and_the_gaussian_one_spreads():
    # 000 §7.3.3: ‖Wᵀδ‖ = ‖δ‖ for orthogonal W, so the 10 × 40 end-to-end map has singular values 1 at any depth
    np.testing.assert_allclose(_product("orthogonal", 32), np.ones(10), atol=1e-5)
    sv = _product("lecun_normal", 32)
    assert sv.max() / sv.min() > 10  # Saxe et al.: the scaled Gaussian product's spectrum spreads with depth
    shallow = _product("lecun_normal", 1)
    assert sv.max() / sv.min() > 2 * shallow.max() / shallow.min()


def _gradient_descent_losses(run_config, steps):
    """Each step's cross-entropy before its update, of full-batch GD on W (10 × 40) from the run's initial weights."""
    s = setup(run_config)
    (layer,) = s.model.layers
    w = layer.weight.detach().double().numpy()
    x, y = s.data.x_train.double().numpy(), s.data.y_train.numpy()
    lr, onehot, out = run_config["optim"]["lr"], np.eye(10)[y], []
    for _ in range(steps):
        logits = x @ w.T
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        out.append(-np.log(p[np.arange(len(y)), y]).mean())
        w = w - lr * (p - onehot).T @ x / len(y)
    return np.array(out)


def test_quick_run_figures_match_the_store(tmp_path):
    store = Store(tmp_path / "r.db")
    _, outcome, seeds = run_experiment("orthogonal-deep-linear", quick=True, store=store, log=lambda _: None)
    f = outcome.figures
    ds = depths(True)
    assert f["depths"] == list(ds) and f["lr0"] == pytest.approx(base_lr(True))
    runs = store.list_runs(group="reproduce/orthogonal-deep-linear/quick")
    assert len(runs) == len(INITS) * len(ds) * seeds
    for arm, scheme in INITS.items():
        for d in ds:
            mine = sorted(
                (r for r in runs if r.name == f"reproduce/orthogonal-deep-linear/quick/{arm}, depth {d}"),
                key=lambda r: r.seed,
            )
            assert [r.seed for r in mine] == list(range(seeds))
            assert [r.config["model"]["init"] for r in mine] == [scheme] * seeds
            assert [r.config["optim"]["lr"] for r in mine] == pytest.approx([f["lr0"] / d] * seeds)
            for r, log2_t in zip(mine, f["log2_steps_to_target"][arm][str(d)]):
                steps, losses = step_losses(store, r.id)
                below = np.flatnonzero(losses <= TARGET_LOSS)
                assert 2**log2_t == pytest.approx(steps[below[0]] if below.size else f["budget"])
    orth, gauss = f["log2_steps_to_target"]["orthogonal"], f["log2_steps_to_target"]["scaled Gaussian"]
    deep, shallow = str(ds[-1]), str(ds[0])
    c = f["checks"]
    assert c["orthogonal_flat"]["diff"] == pytest.approx(np.mean(np.abs(np.subtract(orth[deep], orth[shallow]))))
    assert c["orthogonal_flat"]["holds"] == (c["orthogonal_flat"]["ci"][1] < MARGIN)
    assert c["gaussian_slows"]["diff"] == pytest.approx(np.mean(gauss[deep]) - np.mean(gauss[shallow]))
    assert c["gaussian_slower"]["diff"] == pytest.approx(np.mean(gauss[deep]) - np.mean(orth[deep]))
    assert c["gaussian_slower"]["holds"] == (c["gaussian_slower"]["ci"][0] > MARGIN)
    assert outcome.holds == all(v["holds"] for v in c.values())
    # each step's loss of the depth-1 net (a softmax regression) is full-batch gradient descent's, by hand
    shallow_run = next(r for r in runs if r.name.endswith(f"orthogonal, depth {ds[0]}") and r.seed == 0)
    steps, losses = step_losses(store, shallow_run.id)
    np.testing.assert_allclose(losses, _gradient_descent_losses(shallow_run.config, len(steps)), rtol=1e-4)
    assert len(outcome.plots) == 2 and all(svg.startswith("<svg") for _, svg in outcome.plots)
