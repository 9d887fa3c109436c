"""mnist1d-table: the paper's models and settings, and the quick run's figures against the store."""

import numpy as np
import pytest
import torch

from trainlab.reproduce import run_experiment
from trainlab.reproduce.mnist1d_table import MARGIN, config
from trainlab.store import Store
from trainlab.train import setup

# greydanus/mnist1d README, MNIST-1D row (test accuracy), written out here independently
README = {"logistic regression": 0.32, "MLP": 0.68, "CNN": 0.94, "GRU": 0.91}


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("mnist1d-table") / "r.db")
    exp, outcome, seeds = run_experiment("mnist1d-table", quick=True, store=store, log=lambda _: None)
    return store, outcome, seeds


def test_full_config_uses_the_papers_optimizer_and_budget():
    for model in README:
        cfg = config(model, quick=False)
        assert cfg["optim"] == {"name": "adam", "lr": 1e-2}
        assert (
            cfg["data"]["batch_size"] == 100 and cfg["train"]["max_steps"] == 8000 and cfg["train"]["eval_every"] == 250
        )


def test_mlp_is_the_papers_residual_mlp():
    """MLPBase of notebooks/models.py: h = relu(W1 x); h = h + relu(W2 h); out = W3 h."""
    model = setup({**config("MLP", quick=True), "seed": 0}).model
    (w1, b1), (w2, b2) = [(b.layer.weight.detach().numpy(), b.layer.bias.detach().numpy()) for b in model.blocks]
    w3, b3 = model.head.weight.detach().numpy(), model.head.bias.detach().numpy()
    x = np.random.default_rng(0).normal(size=(7, 40)).astype(np.float32)
    h = np.maximum(x @ w1.T + b1, 0)
    h = h + np.maximum(h @ w2.T + b2, 0)
    expected = h @ w3.T + b3
    assert w1.shape == (100, 40) and w2.shape == (100, 100) and w3.shape == (10, 100)
    np.testing.assert_allclose(model(torch.from_numpy(x)).detach().numpy(), expected, rtol=1e-5, atol=1e-5)


def test_cnn_is_the_papers_convbase():
    """ConvBase: Conv1d(1, 25, 5, stride 2, padding 1), then two Conv1d(25, 25, 3, stride 2, padding 1)."""
    model = setup({**config("CNN", quick=True), "seed": 0}).model
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv1d)]
    shapes = [(c.in_channels, c.out_channels, c.kernel_size[0], c.stride[0], c.padding[0]) for c in convs]
    assert shapes == [(1, 25, 5, 2, 1), (25, 25, 3, 2, 1), (25, 25, 3, 2, 1)]
    assert model.head.in_features == 125  # the paper's linear_in
    assert sum(p.numel() for p in model.parameters()) == 5210  # (5·25+25) + 2·(3·25·25+25) + (125·10+10)


def test_gru_is_the_papers_grubase():
    """GRUBase: GRU(1, 6, bidirectional), a linear layer on all 40 steps (2·6·40 = 480 features)."""
    model = setup({**config("GRU", quick=True), "seed": 0}).model
    grus = [m for m in model.modules() if isinstance(m, torch.nn.GRU)]
    assert len(grus) == 1 and grus[0].bidirectional and grus[0].hidden_size == 6
    assert model.head.in_features == 480


def test_logistic_regression_is_one_linear_layer():
    model = setup({**config("logistic regression", quick=True), "seed": 0}).model
    assert [tuple(p.shape) for p in model.parameters()] == [(10, 40), (10,)]


def test_quick_figures_match_the_store_and_the_checks(quick):
    store, outcome, seeds = quick
    f = outcome.figures
    records = [r for r in store.list_runs(group="reproduce/mnist1d-table/quick") if r.status == "completed"]
    assert len(records) == 4 * seeds
    for model, values in f["test_acc"].items():
        from_store = sorted(r.final["test_acc"] for r in records if r.name == f"reproduce/mnist1d-table/quick/{model}")
        assert sorted(values) == pytest.approx(from_store) and len(values) == seeds
        assert f["test_acc_mean"][model] == pytest.approx(np.mean(values))
        assert f["paper_test_acc"][model] == README[model]
        assert f["difference_from_paper"][model] == pytest.approx(np.mean(values) - README[model])
    pairs = [("MLP", "logistic regression"), ("CNN", "MLP"), ("GRU", "MLP")]
    for check, (a, b) in zip(f["checks"], pairs):
        assert check["diff"] == pytest.approx(np.mean(f["test_acc"][a]) - np.mean(f["test_acc"][b]))
        assert check["holds"] == (check["ci"][0] > MARGIN)
    assert outcome.holds == all(c["holds"] for c in f["checks"])


def test_quick_table_and_plots(quick):
    _, outcome, _ = quick
    caption, headers, rows = outcome.tables[0]
    assert "paper" in headers
    assert [r[0] for r in rows] == list(README) and [r[3] for r in rows] == [f"{v:.2f}" for v in README.values()]
    assert len(outcome.plots) == 2 and all(svg.startswith("<svg") for _, svg in outcome.plots)
