"""train.device, train.precision, train.accumulate, train.compile."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from trainlab._io import torch_load
from trainlab.errors import ConfigError
from trainlab.train import load_config, run
from trainlab.train.devices import resolve_device

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def test_auto_is_the_default_and_picks_cuda_then_mps_then_cpu(monkeypatch):
    assert load_config({}).train.device == "auto"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ("bogus", r"^invalid config: train\.device: 'bogus' is not a device; use auto, cpu, cuda, cuda:N or mps$"),
        ("meta", r"^invalid config: train\.device: 'meta' cannot train a model"),
    ],
)
def test_a_device_that_is_no_training_device_is_named_when_the_config_is_read(device, message):
    with pytest.raises(ConfigError, match=message):
        load_config({"train": {"device": device}})


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_one_line_and_exit_status_2(tmp_path):
    with pytest.raises(ConfigError, match=r"^train\.device = 'cuda' but .*; use train\.device=auto or cpu$"):
        resolve_device("cuda")
    proc = subprocess.run(
        [sys.executable, "-m", "trainlab", "run", "examples/quickstart.toml", "train.device=cuda", "--store", str(tmp_path / "r.db")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "train.device = 'cuda'" in lines[0] and "Traceback" not in proc.stderr


def test_precision_values():
    assert load_config({"train": {"precision": 32}}).train.precision == "32"
    assert load_config({"train": {"precision": "bf16"}}).train.precision == "bf16"
    with pytest.raises(ConfigError, match=r"train\.precision: Input should be '32', 'bf16' or '16-mixed'"):
        load_config({"train": {"precision": "fp8"}})


def _weights(store, result):
    return torch_load(store.artifacts(result.run_id)["checkpoint"])["model"]


def test_accumulate_equals_the_large_batch_step(store, tiny_config):
    """k micro-batches of b with accumulate = k take the same steps as batches of k·b: the
    micro-batches are consecutive slices of the same permutation, and their gradients, weighted
    n_i/Σn, add up to the gradient of the union's mean loss (the last, shorter group too)."""
    tiny_config["data"].update(subset=500, batch_size=96)  # 500 = 5·96 + 20: a short last group
    tiny_config["train"].update(epochs=2)
    tiny_config["model"]["dropout"] = 0.0
    big = run(tiny_config, store=store)
    tiny_config["data"]["batch_size"] = 32
    tiny_config["train"]["accumulate"] = 3
    small = run(tiny_config, store=store)
    assert small.final["step"] == big.final["step"] == 2 * 6
    wa, wb = _weights(store, big), _weights(store, small)
    for k in wa:
        torch.testing.assert_close(wb[k], wa[k], rtol=1e-5, atol=1e-6)
    for key in ("train_loss", "val_loss", "val_acc", "train_acc"):
        assert small.final[key] == pytest.approx(big.final[key], rel=1e-5, abs=1e-6)


def test_accumulate_one_is_the_plain_step(store, tiny_config):
    a = run(tiny_config, store=store)
    b = run({**tiny_config, "train": {**tiny_config["train"], "accumulate": 1}}, store=store)
    assert all(torch.equal(x, y) for x, y in zip(_weights(store, a).values(), _weights(store, b).values()))


def test_bf16_autocast_trains_on_cpu_close_to_float32(store, tiny_config):
    a = run(tiny_config, store=store)
    b = run({**tiny_config, "train": {**tiny_config["train"], "precision": "bf16"}}, store=store)
    assert b.status == "completed"
    assert _weights(store, b)["head.weight"].dtype == torch.float32  # master weights stay float32
    assert not torch.equal(
        _weights(store, a)["head.weight"], _weights(store, b)["head.weight"]
    )  # it did compute in bf16
    assert b.final["val_acc"] > 0.2 and abs(b.final["train_loss"] - a.final["train_loss"]) < 0.1


def test_16_mixed_uses_a_grad_scaler_and_keeps_its_state(store, tiny_config):
    tiny_config["train"].update(precision="16-mixed", clip_norm=1.0)
    result = run(tiny_config, store=store)
    assert result.status == "completed" and result.final["val_acc"] > 0.2
    state = torch_load(store.artifacts(result.run_id)["checkpoint"])
    assert state["scaler"]["scale"] > 0


@pytest.mark.slow
def test_compile_gives_the_same_run(store, tiny_config):
    tiny_config["train"]["max_steps"] = 6
    a = run(tiny_config, store=store)
    b = run({**tiny_config, "train": {**tiny_config["train"], "compile": True}}, store=store)
    assert b.status == "completed"
    for x, y in zip(_weights(store, a).values(), _weights(store, b).values()):
        torch.testing.assert_close(y, x, rtol=1e-4, atol=1e-5)


@CUDA
@pytest.mark.parametrize("precision", ["32", "bf16", "16-mixed"])
def test_cuda_runs_in_each_precision(store, tiny_config, precision):
    tiny_config["train"].update(device="cuda", precision=precision)
    result = run(tiny_config, store=store)
    assert result.status == "completed" and result.final["val_acc"] > 0.2


@CUDA
def test_cuda_checkpoints_keep_the_cuda_rng_states(store, tiny_config):
    tiny_config["train"]["device"] = "cuda"
    tiny_config["model"]["dropout"] = 0.2
    result = run(tiny_config, store=store)
    state = torch_load(store.artifacts(result.run_id)["checkpoint"])
    assert len(state["rng"]["cuda"]) == torch.cuda.device_count()


@pytest.mark.parametrize("train", [{"accumulate": 3}, {"precision": "16-mixed", "accumulate": 2}])
def test_interrupt_then_resume_is_bit_identical_with_accumulation_and_scaling(store, tiny_config, train):
    """Checkpoints fall between whole groups of micro-batches and hold the GradScaler's scale,
    so a resumed run takes exactly the steps of an uninterrupted one."""
    from trainlab.train import Callback

    class Interrupt(Callback):
        def on_step_end(self, trainer, step, logs):
            if step == 4:
                raise KeyboardInterrupt

    tiny_config["data"]["batch_size"] = 32
    tiny_config["model"]["dropout"] = 0.1
    tiny_config["train"].update(epochs=2, **train)
    full = run(tiny_config, store=store)
    cut = run(tiny_config, store=store, callbacks=[Interrupt()])
    assert cut.status == "interrupted"
    resumed = run(None, store=store, resume=cut.run_id)
    k = train["accumulate"]
    assert resumed.final["step"] == full.final["step"] == 2 * -(-16 // k)  # 512 / 32 = 16 micro-batches an epoch
    assert all(torch.equal(x, y) for x, y in zip(_weights(store, full).values(), _weights(store, resumed).values()))
