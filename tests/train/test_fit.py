"""``trainlab.fit``: a user's model on tensors, arrays, a Dataset and a DataLoader, recorded
like a config run; its options, metrics and errors; compare and Study.optimize around it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import trainlab
from interrupt import Interrupt
from trainlab.errors import ConfigError


def blobs(n=240, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    centers = torch.tensor([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
    x = centers[y] + 0.4 * torch.randn(n, 2, generator=g)
    return x, y


def net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3))


def test_full_batch_gradient_descent_matches_numpy(store):
    """Softmax regression, full batch, plain SGD: W <- W - lr * X^T (softmax(XW^T + b) - Y) / N."""
    x, y = blobs(90)
    model = nn.Linear(2, 3)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.1, -0.2], [0.0, 0.3], [-0.1, 0.1]]))
        model.bias.zero_()
    result = trainlab.fit(model, (x, y), val=(x, y), lr=0.5, steps=4, batch_size=90, store=store)
    assert result.status == "completed"

    X, Y = x.double().numpy(), np.eye(3)[y.numpy()]
    W, b = np.array([[0.1, -0.2], [0.0, 0.3], [-0.1, 0.1]]), np.zeros(3)
    for _ in range(4):
        z = X @ W.T + b
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        W, b = W - 0.5 * (p - Y).T @ X / 90, b - 0.5 * (p - Y).mean(0)
    np.testing.assert_allclose(result.model.weight.detach().double().numpy(), W, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(result.model.bias.detach().double().numpy(), b, rtol=1e-4, atol=1e-6)
    z = X @ W.T + b
    ce = float(np.mean(np.log(np.exp(z).sum(1)) - z[np.arange(90), y.numpy()]))
    assert result.final["val_loss"] == pytest.approx(ce, rel=1e-4)
    record = store.get_run(result.run_id)  # recorded like a config run: runs / show / report see it
    assert record.status == "completed" and record.config["model"]["python"].endswith(":Linear")
    assert record.config["data"]["python"].startswith("train Tensor(90, 2)")


def test_tensors_and_a_dataset_give_the_same_run(store):
    """A map-style Dataset is batched with the run's own generator, in the same order as the
    in-memory iterator: the two runs end with equal weights."""
    x, y = blobs()
    xv, yv = blobs(60, seed=1)
    a = trainlab.fit(
        net, (x, y), val=(xv, yv), optimizer="sgd", lr=0.1, momentum=0.9, epochs=2, batch_size=32, seed=3, store=store
    )
    b = trainlab.fit(
        net,
        TensorDataset(x, y),
        val=TensorDataset(xv, yv),
        optimizer="sgd",
        lr=0.1,
        momentum=0.9,
        epochs=2,
        batch_size=32,
        seed=3,
        store=store,
    )
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    assert a.final["val_acc"] == b.final["val_acc"] > 0.9


def test_a_users_dataloader_numpy_arrays_metrics_and_test_split(store):
    x, y = blobs()
    xv, yv = blobs(60, seed=1)
    loader = DataLoader(TensorDataset(x, y), batch_size=40, shuffle=True)

    def error_rate(out, target):
        return (out.argmax(-1) != target).float().mean()

    result = trainlab.fit(
        net(0),
        loader,
        val=(xv.numpy(), yv.numpy()),
        test=TensorDataset(xv, yv),
        optimizer="adam",
        lr=0.02,
        epochs=5,
        metrics={"err": error_rate},
        store=store,
    )
    assert result.final["val_err"] == pytest.approx(1 - result.final["val_acc"], abs=1e-9)
    with torch.no_grad():
        expected = float((result.model(xv).argmax(-1) != yv).float().mean())
    assert result.final["val_err"] == pytest.approx(expected, abs=1e-7)
    assert result.final["test_acc"] == pytest.approx(result.final["val_acc"], abs=1e-9)  # the same samples
    assert result.final["val_acc"] > 0.9
    assert [s for s, _ in result.history["val_err"]] == [6 * e for e in range(1, 6)]  # 240/40 steps per epoch


def test_regression_arrays_val_split_and_custom_loss(store):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5]) + 0.3).astype(np.float32)  # floats: a regression
    lin = nn.Linear(3, 1)
    result = trainlab.fit(lin, (x, y), optimizer="adam", lr=0.05, epochs=40, batch_size=50, store=store)
    assert result.final["val_loss"] < 1e-3 and "val_acc" not in result.final
    np.testing.assert_allclose(lin.weight.detach().numpy().ravel(), [1.0, -2.0, 0.5], atol=0.02)

    def mae(out, target):
        return (out.squeeze(-1) - target).abs().mean()

    result = trainlab.fit(
        nn.Linear(3, 1), (x, y), loss=mae, optimizer="adam", lr=0.05, epochs=40, batch_size=50, store=store
    )
    assert result.final["val_loss"] < 0.05
    assert (
        store.get_run(result.run_id)
        .config["loss"]["python"]
        .endswith(":test_regression_arrays_val_split_and_custom_loss.<locals>.mae")
    )


def test_options_in_dotted_form_and_did_you_mean(store):
    x, y = blobs()
    result = trainlab.fit(
        net, (x, y), lr=0.1, momentum=0.9, epochs=1, store=store, **{"regularize.l2": 1e-3, "train.clip_norm": 1.0}
    )
    cfg = result.config
    assert cfg.regularize.l2 == 1e-3 and cfg.train.clip_norm == 1.0 and cfg.optim.momentum == 0.9
    with pytest.raises(ConfigError, match=r"fit: unknown argument 'momentun' \(did you mean 'momentum'\?\)"):
        trainlab.fit(net, (x, y), momentun=0.9, store=store)
    with pytest.raises(ConfigError, match=r"regularize.l3: unknown key \(did you mean 'regularize.l2'\?\)"):
        trainlab.fit(net, (x, y), store=store, **{"regularize.l3": 1.0})
    with pytest.raises(ConfigError, match="model must be an nn.Module or a callable"):
        trainlab.fit(3, (x, y), store=store)


def test_optimizer_instance_and_factory(store):
    x, y = blobs()
    model = net(0)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    a = trainlab.fit(model, (x, y), optimizer=opt, epochs=1, store=store)
    assert a.history["lr"][-1][1] == 0.05 and all(p.grad is not None for p in model.parameters())
    b = trainlab.fit(net, (x, y), optimizer=lambda params: torch.optim.Adam(params, lr=0.01), epochs=15, store=store)
    assert b.history["lr"][-1][1] == 0.01 and b.final["val_acc"] > 0.8


def test_model_factory_is_seeded(store):
    x, y = blobs()

    def factory(seed):
        return nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 3))  # trainlab seeds before calling

    r = [trainlab.fit(factory, (x, y), epochs=1, seed=s, store=store) for s in (0, 0, 1)]
    assert torch.equal(r[0].model[0].weight, r[1].model[0].weight)
    assert not torch.equal(r[0].model[0].weight, r[2].model[0].weight)


def test_log_to_csv_mirrors_the_store(store):
    x, y = blobs()
    result = trainlab.fit(net, (x, y), epochs=1, store=store, log_to=["csv"])
    path = store.artifacts(result.run_id)["metrics_csv"]
    text = path.read_text()
    assert text.startswith("step,key,value") and "val_loss" in text


def test_compare_model_factories_and_fit_objectives(store):
    x, y = blobs()
    xv, yv = blobs(60, seed=1)

    def narrow(seed):
        return nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 3))

    def wide_objective(seed):
        return trainlab.fit(net, (x, y), val=(xv, yv), optimizer="adam", lr=0.02, epochs=3)

    rows = trainlab.compare(
        {"narrow": narrow, "wide": net},
        train=(x, y),
        val=(xv, yv),
        optimizer="adam",
        lr=0.02,
        epochs=3,
        seeds=2,
        store=store,
        name="widths",
    )
    assert {r["variant"] for r in rows} == {"narrow", "wide"} and all(r["n"] == 2 for r in rows)
    runs = store.list_runs(group="widths")
    assert sorted((r.name, r.seed) for r in runs) == [
        ("widths/narrow", 0),
        ("widths/narrow", 1),
        ("widths/wide", 0),
        ("widths/wide", 1),
    ]
    wide = [r.final["val_acc"] for r in runs if r.name == "widths/wide"]
    assert next(r for r in rows if r["variant"] == "wide")["final_mean"] == pytest.approx(np.mean(wide))
    rows = trainlab.compare({"wide-fit": wide_objective}, seeds=[5], store=store, name="objective")
    assert rows[0]["n"] == 1 and store.list_runs(group="objective")[0].seed == 5
    trainlab.compare({"wide-fit": wide_objective}, seeds=[5], store=store, name="objective")
    assert len(store.list_runs(group="objective")) == 1  # a run with a result is not repeated


def test_study_optimize_takes_a_fit_objective(store, tmp_path):
    from trainlab.tune import Float, Study

    x, y = blobs()
    url = str(tmp_path / "study.db")
    study = Study("fit-study", {"lr": Float(1e-3, 0.3, log=True)}, sampler="random", storage=url, metric="val_loss")

    def objective(trial):
        return trainlab.fit(net, (x, y), optimizer="sgd", lr=trial.params["lr"], epochs=2)

    study.optimize(objective, 3)
    trials = study.trials
    assert len(trials) == 3 and all(t.state == "complete" for t in trials)
    from trainlab.store import Store

    runs = {r.id: r for r in Store(url).list_runs(group="fit-study")}
    for t in trials:
        assert t.value == pytest.approx(runs[t.run_id].final["val_loss"])
        assert t.intermediate  # fit reported to the trial after each evaluation


def test_study_optimize_takes_a_model_factory_and_fits_arguments(tmp_path):
    from trainlab.store import Store
    from trainlab.tune import Categorical, Float, Study

    x, y = blobs()
    url = str(tmp_path / "study.db")
    space = {
        "width": Categorical([2, 16]),
        "lr": Float(0.01, 0.3, log=True),
        "regularize.l2": Float(1e-5, 1e-3, log=True),
    }
    study = Study("factory", space, sampler="random", storage=url, metric="val_acc", direction="maximize")
    study.optimize(
        lambda trial: nn.Sequential(
            nn.Linear(2, trial.params["width"]), nn.ReLU(), nn.Linear(trial.params["width"], 3)
        ),
        3,
        train=(x, y),
        optimizer="adam",
        epochs=3,
    )
    runs = {r.id: r for r in Store(url).list_runs(group="factory")}
    for t in study.trials:
        assert t.state == "complete"
        cfg = runs[t.run_id].config
        assert cfg["optim"]["lr"] == t.params["lr"] and cfg["regularize"]["l2"] == t.params["regularize.l2"]
        assert t.value == runs[t.run_id].final["val_acc"]


def test_a_new_users_first_tries_point_at_fit_and_target():
    from trainlab.train import Trainer, load_config

    with pytest.raises(ConfigError, match=r"Trainer takes a run config; train your own model with trainlab.fit"):
        Trainer(net(0), DataLoader(TensorDataset(*blobs())))
    with pytest.raises(
        ConfigError, match=r"model.name: unknown value 'MyNet'.*or name your own with model.target = \"module:MyNet\""
    ):
        load_config({"model": {"name": "MyNet"}})


def dropout_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))


def test_an_interrupted_fit_resumes_bit_identical(store):
    """Ctrl-C in a fit run, then fit(..., resume=ID) with the same objects: the same weights and
    history as a run never interrupted (a shuffling DataLoader and dropout draw random numbers)."""
    x, y = blobs()
    xv, yv = blobs(60, seed=1)

    def go(**kw):
        torch.manual_seed(123)  # the DataLoader shuffles with torch's global generator
        loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)
        return trainlab.fit(dropout_net, loader, (xv, yv), lr=0.1, momentum=0.9, epochs=3, seed=5, store=store, **kw)

    whole = go()
    cut = go(callbacks=[Interrupt(at=11)])  # mid-epoch 2 (8 batches an epoch)
    assert cut.status == "interrupted"
    assert f"trainlab.fit(..., resume={cut.run_id!r})" in cut.message  # not the CLI, which cannot rebuild objects
    resumed = go(resume=cut.run_id[:8])  # a unique prefix, as everywhere
    assert resumed.status == "completed" and resumed.run_id == cut.run_id
    for p, q in zip(whole.model.parameters(), resumed.model.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    assert whole.history == resumed.history
    assert store.metrics(whole.run_id)["train_loss"][1].tolist() == store.metrics(cut.run_id)["train_loss"][1].tolist()

    with pytest.raises(ConfigError, match="already completed"):
        go(resume=cut.run_id)
    cut = go(callbacks=[Interrupt(at=3)])
    with pytest.raises(ConfigError, match=r"other settings \(optim.lr differ\)"):
        trainlab.fit(dropout_net, DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True), (xv, yv),
                     lr=0.2, momentum=0.9, epochs=3, seed=5, store=store, resume=cut.run_id)  # fmt: skip
    with pytest.raises(ConfigError, match="no run 'nope'"):
        go(resume="nope")
    with pytest.raises(ConfigError, match="resume must be a run id"):
        go(resume=3)
