"""Configs that name the user's code: ``target`` for model, data and loss, the registries
and entry points, the source hash in the config hash, and the one-line errors."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import trainlab
import trainlab.train
from trainlab import targets
from trainlab.errors import ConfigError
from trainlab.train import load_config, run

MODEL = '''
import torch
from torch import nn

class Linear(nn.Module):
    """y = w.x + b, starting from the given weights (so a NumPy reference can follow it)."""
    def __init__(self, input_shape, w0=0.5, b0=0.0):
        super().__init__()
        self.lin = nn.Linear(input_shape[0], 1)
        with torch.no_grad():
            self.lin.weight.fill_(w0)
            self.lin.bias.fill_(b0)
    def forward(self, x):
        return self.lin(x)

class Wrong(nn.Module):
    def __init__(self, input_shape, num_classes):
        super().__init__()
        self.lin = nn.Linear(input_shape[0], num_classes + 1)
    def forward(self, x):
        return self.lin(x)

class Classifier(nn.Module):
    def __init__(self, input_shape, num_classes, width=16):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(input_shape[0], width), nn.ReLU(), nn.Linear(width, num_classes))
    def forward(self, x):
        return self.net(x)

def broken(width):
    raise RuntimeError(f"width {width} is not supported")

WIDTH = 3
'''

DATA = """
import numpy as np

def regression(n=64, d=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = (x @ np.arange(1, d + 1) + 0.5).astype(np.float32)
    return (x, y), (x[:16], y[:16]), (x[:16], y[:16])

def blobs(n=300, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = (rng.normal(size=(n, 2)) * 0.3 + np.stack([np.cos(y * 2.1), np.sin(y * 2.1)], 1)).astype(np.float32)
    return {"train": (x[:200], y[:200]), "val": (x[200:], y[200:])}

def labels_too_big(n=40):
    x = np.random.default_rng(0).normal(size=(n, 2)).astype(np.float32)
    return (x, np.arange(n) % 5), (x, np.arange(n) % 5)
"""


@pytest.fixture
def project(tmp_path):
    (tmp_path / "mynets.py").write_text(textwrap.dedent(MODEL))
    (tmp_path / "mydata.py").write_text(textwrap.dedent(DATA))
    return tmp_path


def write_config(folder, body: str):
    path = folder / "cfg.toml"
    path.write_text(textwrap.dedent(body))
    return path


def test_target_model_and_data_follow_a_numpy_reference(project, store):
    """Full-batch gradient descent on MSE with a target model and target data: the final
    weights equal the NumPy reference w <- w - lr * 2/N X^T (Xw + b - y)."""
    path = write_config(
        project,
        """
        name = "lin"
        [model]
        target = "mynets:Linear"
        args = { w0 = 0.5, b0 = 0.0 }
        [data]
        target = "mydata.py:regression"
        batch_size = 64
        [optim]
        name = "sgd"
        lr = 0.05
        [train]
        max_steps = 5
    """,
    )
    cfg = load_config(path)
    assert cfg.config_dir == str(project.resolve())
    assert cfg.sources["model"]["sha256"] == hashlib.sha256((project / "mynets.py").read_bytes()).hexdigest()
    result = run(cfg, store=store)
    assert result.status == "completed"

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype(np.float64)
    y = x @ np.arange(1, 4) + 0.5
    # trainlab shuffles the batch, but a full batch's mean gradient does not depend on order
    w, b = np.full(3, 0.5), 0.0
    for _ in range(5):
        r = x @ w + b - y
        w, b = w - 0.05 * 2 * x.T @ r / 64, b - 0.05 * 2 * r.mean()
    lin = result.model.lin
    np.testing.assert_allclose(lin.weight.detach().numpy().ravel(), w, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(float(lin.bias.detach()), b, rtol=1e-4, atol=1e-5)
    stored = store.get_run(result.run_id).config
    assert stored["model"]["target"] == "mynets:Linear" and stored["sources"]["data"]["file"] == str(
        project / "mydata.py"
    )


def test_editing_the_model_file_changes_the_config_hash(project):
    path = write_config(project, '[model]\ntarget = "mynets:Classifier"\n[data]\ntarget = "mydata:blobs"\n')
    before = load_config(path).hash()
    assert load_config(path).hash() == before
    with open(project / "mynets.py", "a") as f:
        f.write("\n# edited\n")
    assert load_config(path).hash() != before
    # where the code lies is not part of the hash: the same files elsewhere hash the same
    other = project / "copy"
    other.mkdir()
    for name in ("mynets.py", "mydata.py", "cfg.toml"):
        (other / name).write_bytes((project / name).read_bytes())
    assert load_config(other / "cfg.toml").hash() == load_config(path).hash()


def test_a_target_classifier_learns_and_compare_never_pools_an_edited_model(project, store):
    path = write_config(
        project,
        """
        name = "cls"
        [model]
        target = "mynets:Classifier"
        [data]
        target = "mydata:blobs"
        batch_size = 32
        [optim]
        name = "adam"
        lr = 0.02
        [train]
        epochs = 6
        [compare]
        seeds = 2
        "model.args.width" = [4, 16]
    """,
    )
    rows = trainlab.compare(path, store=store)
    assert {r["variant"] for r in rows} == {"4", "16"} and all(r["n"] == 2 for r in rows)
    assert min(r["final_mean"] for r in rows) > 0.8  # three well separated blobs
    with open(project / "mynets.py", "a") as f:
        f.write("\n# edited\n")
    trainlab.compare(path, store=store, seeds=1)
    from trainlab.compare import summarize

    variants = {r["variant"] for r in summarize(store, "cls")}
    assert len(variants) == 4  # old and edited code never pooled: names get the config's key


def test_loss_target_function_with_args(project, store):
    """loss.target = f(outputs, targets, **args): the evaluated loss is the NumPy value of
    scale * mean |out - y| for the final model."""
    (project / "losses.py").write_text(
        "def scaled_mae(outputs, targets, scale=1.0):\n    return scale * (outputs.squeeze(-1) - targets).abs().mean()\n"
    )
    path = write_config(
        project,
        """
        [model]
        target = "mynets:Linear"
        [data]
        target = "mydata:regression"
        [loss]
        target = "losses:scaled_mae"
        args = { scale = 3.0 }
        [optim]
        name = "sgd"
        lr = 0.01
        [train]
        max_steps = 3
    """,
    )
    result = run(load_config(path), store=store)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    y = x @ np.arange(1, 4) + 0.5
    w = result.model.lin.weight.detach().numpy().ravel()
    b = float(result.model.lin.bias.detach())
    expected = 3.0 * np.abs(x[:16] @ w + b - y[:16]).mean()
    assert result.final["val_loss"] == pytest.approx(expected, rel=1e-5)
    assert load_config(path).sources["loss"]["file"] == str(project / "losses.py")


def test_registered_model_and_dataset_by_name(store):
    @trainlab.register_model("tiny-test")
    def tiny(input_shape, num_classes, width=8):
        return torch.nn.Sequential(
            torch.nn.Linear(input_shape[0], width), torch.nn.Tanh(), torch.nn.Linear(width, num_classes)
        )

    @trainlab.register_dataset("two-points")
    def two_points(n=64):
        x = np.tile(np.array([[1.0, 0.0], [0.0, 1.0]], np.float32), (n // 2, 1))
        y = np.tile(np.array([0, 1]), n // 2)
        return (x, y), (x[:8], y[:8]), (x[:8], y[:8])

    result = run(
        {
            "model": {"name": "tiny-test", "args": {"width": 4}},
            "data": {"name": "two-points"},
            "optim": {"name": "sgd", "lr": 0.5},
            "train": {"epochs": 20},
        },
        store=store,
    )
    assert result.final["val_acc"] == 1.0 and result.final["test_acc"] == 1.0
    with pytest.raises(ConfigError, match=r"model.name: unknown value 'tiny-tst' \(did you mean 'tiny-test'\?\)"):
        load_config({"model": {"name": "tiny-tst"}})


def test_entry_points_make_names(project, monkeypatch, store):
    monkeypatch.syspath_prepend(str(project))
    monkeypatch.setattr(
        targets,
        "entry_points",
        lambda kind: {"model": {"ep-net": "mynets:Classifier"}, "data": {"ep-blobs": "mydata:blobs"}}[kind],
    )
    result = run(
        {
            "model": {"name": "ep-net", "args": {"width": 8}},
            "data": {"name": "ep-blobs"},
            "optim": {"name": "adam", "lr": 0.02},
            "train": {"epochs": 3},
        },
        store=store,
    )
    assert result.status == "completed" and result.final["val_acc"] > 0.6
    assert "mynets" in targets.allowed_modules()


@pytest.mark.parametrize(
    ("model", "data", "message"),
    [
        (
            "nomodule:Net",
            "mydata:blobs",
            r"model.target = 'nomodule:Net': cannot import module 'nomodule': no nomodule.py in .* and sys.path",
        ),
        (
            "mynets:Clasifier",
            "mydata:blobs",
            r"model.target = 'mynets:Clasifier': mynets has no 'Clasifier' \(did you mean 'Classifier'\?\)",
        ),
        ("mynets:WIDTH", "mydata:blobs", r"model.target = 'mynets:WIDTH' is int 3, not a class or function"),
        (
            "mynets:broken",
            "mydata:blobs",
            r"model.target = 'mynets:broken' with args \{'width': 3\} raised RuntimeError: width 3 is not supported",
        ),
        (
            "mynets:Wrong",
            "mydata:blobs",
            r"4 outputs per sample, but the data has 3 classes \(labels 0..2\); make its last layer 3 wide",
        ),
        ("mynets:Linear", "mydata:blobs", r"1 outputs per sample, but the data has 3 classes"),
        (
            "mynets:Wrong",
            "mydata:regression",
            r"outputs of shape \(2, 2\) for 2 samples; a regression needs one value per sample",
        ),
        ("mynets", "mydata:blobs", r"model.target = 'mynets': write it as \"module:Name\""),
    ],
)
def test_errors_name_the_key(project, store, model, data, message):
    args = {"width": 3} if model == "mynets:broken" else ({"width": 16} if model == "mynets:Classifier" else {})
    cfg = {
        "config_dir": str(project),
        "model": {"target": model, "args": args},
        "data": {"target": data},
        "train": {"epochs": 1},
    }
    with pytest.raises(ConfigError, match=message):
        run(cfg, store=store)
    assert store.list_runs() == []  # nothing recorded: the error comes before the run exists


def test_targets_out_of_range_for_loader_data(project, store):
    """Labels 0..4 for a model with 3 outputs, from a Dataset (the count comes from the model)."""
    from torch.utils.data import TensorDataset

    x = torch.randn(40, 2)
    y = torch.arange(40) % 5
    net = torch.nn.Linear(2, 3)
    with pytest.raises(ConfigError, match=r"targets out of range: label 4, but the model has 3 outputs"):
        trainlab.fit(net, TensorDataset(x, y), TensorDataset(x, y), store=store, epochs=1)


def test_the_cli_error_is_one_line_exit_2_and_debug_shows_the_users_traceback(project):
    path = write_config(
        project, '[model]\ntarget = "mynets:broken"\nargs = { width = 7 }\n[data]\ntarget = "mydata:blobs"\n'
    )
    cmd = [sys.executable, "-m", "trainlab", "run", str(path), "--store", ":memory:"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "model.target = 'mynets:broken'" in lines[0] and "width 7 is not supported" in lines[0]
    debug = subprocess.run(
        [sys.executable, "-m", "trainlab", "--debug", *cmd[3:]], capture_output=True, text=True, timeout=300
    )
    assert "mynets.py" in debug.stderr and "RuntimeError: width 7 is not supported" in debug.stderr


def test_a_module_of_the_same_name_elsewhere_does_not_shadow_the_configs(project, tmp_path_factory, store):
    other = tmp_path_factory.mktemp("other")
    (other / "mynets.py").write_text("raise ImportError('the wrong mynets')\n")
    sys.path.insert(0, str(other))
    try:
        cfg = load_config(
            write_config(
                project, '[model]\ntarget = "mynets:Classifier"\n[data]\ntarget = "mydata:blobs"\n[train]\nepochs = 1\n'
            )
        )
        assert run(cfg, store=store).status == "completed"
    finally:
        sys.path.remove(str(other))


LOADERS = """
import torch
from torch.utils.data import DataLoader, TensorDataset

def _blobs(n=200):
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 3
    x = torch.randn(n, 2, generator=g) * 0.5 + torch.stack([torch.cos(y * 2.1), torch.sin(y * 2.1)], 1)
    return x, y

def datasets():
    x, y = _blobs()
    return TensorDataset(x[:160], y[:160]), TensorDataset(x[160:], y[160:])

def loaders():
    x, y = _blobs()
    return DataLoader(TensorDataset(x[:160], y[:160]), batch_size=32, shuffle=True), TensorDataset(x[160:], y[160:])
"""


class _CtrlC(trainlab.train.Callback):
    def on_step_end(self, trainer, step, logs):
        if step == 7:  # mid-epoch (5 batches an epoch)
            raise KeyboardInterrupt


@pytest.mark.parametrize("data", ["loaders:datasets", "loaders:loaders"])
def test_a_dataset_or_dataloader_target_resumes_bit_identically(project, store, data):
    """Interrupted mid-epoch and resumed: the same weights as an uninterrupted run, for a
    Dataset (seeded index batches) and for a user's shuffling DataLoader (epoch-start replay)."""
    (project / "loaders.py").write_text(textwrap.dedent(LOADERS))
    cfg = {"config_dir": str(project), "model": {"target": "mynets:Classifier", "args": {"width": 8}, "dropout": 0.0},
           "data": {"target": data, "batch_size": 32}, "optim": {"name": "sgd", "lr": 0.1, "momentum": 0.9},
           "train": {"epochs": 4, "checkpoint_every": 3}}  # fmt: skip
    cut = run(cfg, store=store, callbacks=[_CtrlC()])
    assert cut.status == "interrupted"
    resumed = run(None, store=store, resume=cut.run_id)
    full = run(cfg, store=store)
    assert resumed.final["step"] == full.final["step"] == 20
    for (k, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k
    assert resumed.final["val_loss"] == full.final["val_loss"]
