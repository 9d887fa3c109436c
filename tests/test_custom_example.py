"""examples/custom (a model file, a data file, a config) through every command of the
``trainlab`` executable; kill -9 and ``--resume`` of a target model; ``model.init_from`` and
``model.forget_bias``."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from trainlab._io import torch_load
from trainlab.errors import ConfigError
from trainlab.store import Store
from trainlab.train import load_config, run, setup

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def custom(tmp_path):
    """A copy of examples/custom in a folder of its own (the commands run from elsewhere)."""
    folder = tmp_path / "custom"
    shutil.copytree(ROOT / "examples" / "custom", folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder / "custom.toml"


def trainlab(*args, cwd):
    out = subprocess.run(
        [sys.executable, "-m", "trainlab", *args], capture_output=True, text=True, timeout=600, cwd=cwd
    )
    assert out.returncode == 0, f"trainlab {' '.join(args)}: {out.stderr[-3000:]}"
    return out


@pytest.mark.slow  # eight processes of the trainlab executable: 1–4 minutes on a loaded machine
def test_every_command_on_the_custom_example_through_the_executable(custom, tmp_path):
    work = tmp_path / "elsewhere"
    work.mkdir()
    db = str(tmp_path / "runs.db")
    run_id = trainlab("run", str(custom), "--store", db, "-q", cwd=work).stdout.split()[-1]
    shown = json.loads(trainlab("show", run_id, "--store", db, "--json", cwd=work).stdout)
    assert shown["status"] == "completed" and shown["final"]["val_acc"] > 0.9  # three rings, 8 epochs
    assert shown["config"]["sources"]["model"]["file"] == str(custom.parent / "gated_mlp.py")

    trainlab("compare", str(custom), "--store", db, "--seeds", "1", "train.epochs=2", "-q", "-o", "cmp.html", cwd=work)
    rows = {r.name: r for r in Store(db).list_runs(group="custom")}
    assert set(rows) == {"custom/8", "custom/32"} and all(r.status == "completed" for r in rows.values())
    assert (work / "cmp.html").stat().st_size > 1000

    out = trainlab(
        "tune", str(custom), "--store", db, "--trials", "2", "train.epochs=1", "--name", "custom-lr", cwd=work
    )
    assert "custom-lr" in out.stdout + out.stderr
    out = trainlab("lr-find", str(custom), "--store", db, "--steps", "8", cwd=work)
    lr_run = Store(db).get_run(out.stdout.split()[-1])
    assert lr_run.final["steps"] == 8 and 1e-7 <= lr_run.final["suggested_lr"] <= 10

    out = trainlab("diagnose", run_id, "--store", db, "--flops", "--gradcheck", "--samples", "64", cwd=work)
    report = json.loads(Path(out.stdout.split()[-1]).read_text())
    assert report["gradcheck"]["ok"]
    # GatedMLP(width=32, depth=2) on 2-D points, 3 classes: Linear(2→64), GLU, Linear(32→64), GLU,
    # Linear(32→3); a Linear(I→O) is O·I mults + O·I adds (bias included), a GLU none counted
    assert report["flops"]["per_sample"] == 2 * (2 * 64 + 32 * 64 + 32 * 3)
    trainlab("report", run_id, "--store", db, "-o", "run.html", cwd=work)
    assert (work / "run.html").stat().st_size > 1000


@pytest.mark.slow  # a subprocess trained, killed and resumed: ~30 s on a loaded machine
def test_kill_9_and_resume_of_a_target_model_is_bit_identical(custom, tmp_path):
    db = tmp_path / "kill.db"
    overrides = ["train.epochs=60", "train.checkpoint_every=10", "train.threads=1"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "trainlab", "run", str(custom), *overrides, "--store", str(db), "-q"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path,
    )  # fmt: skip
    store = Store(db)
    deadline, run_id = time.time() + 300, None
    while time.time() < deadline:  # the first checkpoint, then kill without warning
        runs = store.list_runs() if db.exists() else []
        if runs and "checkpoint" in store.artifacts(runs[0].id):
            run_id = runs[0].id
            break
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    assert run_id is not None, proc.stderr.read().decode() if proc.poll() is not None else "no checkpoint within 300 s"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert store.get_run(run_id).status == "running", "the run finished before it was killed; make it longer"
    killed_at = torch_load(store.artifacts(run_id)["checkpoint"])["step"]
    total = 60 * 15  # 900 training rows, batches of 64
    assert 0 < killed_at < total

    out = subprocess.run(
        [sys.executable, "-m", "trainlab", "run", "--resume", run_id, "--store", str(db), "-q"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    full = run(load_config(custom, overrides), store=store)
    resumed = store.get_run(run_id)
    assert resumed.status == "completed" and resumed.final["step"] == full.final["step"] == total
    wa = torch_load(store.artifacts(full.run_id)["checkpoint"])["model"]
    wb = torch_load(store.artifacts(run_id)["checkpoint"])["model"]
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert resumed.final["val_loss"] == full.final["val_loss"]


def test_init_copies_the_examples_code_beside_its_config(tmp_path):
    from trainlab import _examples

    path = _examples.write("custom/custom", tmp_path)
    assert path == tmp_path / "custom.toml"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["custom.toml", "gated_mlp.py", "rings.py"]
    assert (tmp_path / "gated_mlp.py").read_bytes() == (ROOT / "examples" / "custom" / "gated_mlp.py").read_bytes()
    with pytest.raises(ConfigError, match="gated_mlp.py exists; pass --force"):
        (tmp_path / "custom.toml").unlink()
        _examples.write("custom/custom", tmp_path)
    assert "custom/custom" in _examples.available()


def test_init_from_a_run_id_and_a_file(custom, store, tmp_path):
    base = run(load_config(custom, ["train.epochs=2"]), store=store)
    # lr = 0: the run starts from the given weights and keeps them
    frozen = run(
        load_config(custom, [f"model.init_from='{base.run_id}'", "optim.name=sgd", "optim.lr=0.0", "train.epochs=1"]),
        store=store,
    )
    for (k, a), b in zip(base.model.state_dict().items(), frozen.model.state_dict().values()):
        assert torch.equal(a, b), k
    assert frozen.final["val_loss"] == pytest.approx(base.final["val_loss"], rel=1e-6)
    path = tmp_path / "weights.pt"
    torch.save(base.model.state_dict(), path)
    s = setup(load_config(custom, [f"model.init_from='{path}'"]), store)
    assert all(torch.equal(a, b) for a, b in zip(base.model.state_dict().values(), s.model.state_dict().values()))
    with pytest.raises(
        ConfigError,
        match=r"model.init_from = .*: the weights do not fit the model: shape of body.1.weight \(64, 2\) vs the model's \(16, 2\)",
    ):
        setup(load_config(custom, [f"model.init_from='{path}'", "model.args.width=8"]), store)
    with pytest.raises(ConfigError, match="neither a file nor a run id"):
        setup(load_config(custom, ["model.init_from='no-such-run'"]), store)


def test_forget_bias_for_builtin_and_target_lstms(tmp_path):
    cfg = {
        "data": {"name": "adding", "n_samples": 64, "seq_len": 6},
        "model": {"name": "lstm", "hidden": [8], "forget_bias": 2.0},
    }
    lstm = next(m for m in setup(cfg).model.modules() if isinstance(m, torch.nn.LSTM))
    np.testing.assert_array_equal(lstm.bias_ih_l0.detach()[8:16].numpy(), np.full(8, 2.0))
    np.testing.assert_array_equal(lstm.bias_hh_l0.detach()[8:16].numpy(), np.zeros(8))
    (tmp_path / "seq.py").write_text(
        "import torch\n"
        "class Net(torch.nn.Module):\n"
        "    def __init__(self, input_shape):\n"
        "        super().__init__()\n"
        "        self.lstm = torch.nn.LSTM(input_shape[-1], 5, batch_first=True)\n"
        "        self.head = torch.nn.Linear(5, 1)\n"
        "    def forward(self, x):\n"
        "        return self.head(self.lstm(x)[0][:, -1])\n"
    )
    cfg = {
        "config_dir": str(tmp_path),
        "data": {"name": "adding", "n_samples": 64, "seq_len": 6},
        "model": {"target": "seq:Net", "forget_bias": 1.0},
    }
    net = setup(cfg).model
    np.testing.assert_array_equal(net.lstm.bias_ih_l0.detach()[5:10].numpy(), np.ones(5))
    with pytest.raises(ConfigError, match="model.forget_bias: lstm_forget_bias_ needs an nn.LSTM"):
        setup({"data": {"name": "spirals"}, "model": {"name": "mlp", "forget_bias": 1.0}})
