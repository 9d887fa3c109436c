"""The step loop waits for the device only when it logs, evaluates or checkpoints, and still
names the step whose loss became non-finite."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainlab._io import torch_load
from trainlab.train import Callback, run


class PoisonAfter(Callback):
    """Sets the first weight to NaN after step ``at``, so the loss of step ``at + 1`` is NaN."""

    def __init__(self, at: int):
        self.at = at

    def on_step_end(self, trainer, step, logs):
        if step == self.at:
            with torch.no_grad():
                next(trainer.model.parameters()).view(-1)[0] = float("nan")
        return {"seen_step": float(step)} if step % 2 else None  # a per-step metric of a callback


@pytest.mark.parametrize("at", [6, 9, 13])
def test_divergence_is_reported_at_its_step_and_nothing_after_it_is_kept(store, tiny_config, at):
    tiny_config["train"].update(epochs=3, log_every=4, checkpoint_every=5, checkpoint_seconds=0)
    result = run(tiny_config, store=store, callbacks=[PoisonAfter(at)])
    bad = at + 1
    assert result.status == "diverged"
    assert result.message.startswith(f"loss became non-finite at step {bad};")
    assert result.final["step"] == at
    metrics = store.metrics(result.run_id)
    for key, (steps, values) in metrics.items():
        assert steps.max() <= at, key  # no row of the diverged steps, the callback's included
        assert np.isfinite(values).all(), key
    ckpt = torch_load(store.artifacts(result.run_id)["checkpoint"])
    assert ckpt["step"] == (at // 5) * 5 and ckpt["step"] < bad
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values())


def test_logged_train_loss_is_the_mean_of_the_step_losses(store, tiny_config):
    """The window's mean is the plain mean of the steps' losses (read from the device in
    batches, summed in step order)."""
    losses = []

    class Record(Callback):
        def on_step_end(self, trainer, step, logs):
            losses.append(float(logs["loss"]))

    tiny_config["train"].update(epochs=1, log_every=3)
    result = run(tiny_config, store=store, callbacks=[Record()])
    steps, values = store.metrics(result.run_id, ["train_loss"])["train_loss"]
    first_eval = 8  # 512 / 64 steps per epoch; the window restarts after each evaluation
    for step, value in zip(steps.tolist(), values.tolist()):
        assert value == pytest.approx(np.mean(losses[: min(step, first_eval)]), rel=1e-6)


def test_steps_read_the_device_only_when_logging(store, tiny_config, monkeypatch):
    """Count the tensor -> Python conversions (each one a host-device sync on a GPU) during the
    training loop: about one per log step, not one per step."""
    calls = {"n": 0}
    for name in ("item", "tolist", "__float__", "__int__", "__bool__"):
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _original=original, **kwargs):
            calls["n"] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    counts = {}

    class Mark(Callback):
        def on_fit_start(self, trainer):
            calls["n"] = 0

        def on_fit_end(self, trainer, result):
            counts["loop"] = calls["n"]

    tiny_config["train"].update(max_steps=40, epochs=50, log_every=20, eval_every=40)
    tiny_config["data"]["subset"] = 4096
    run(tiny_config, store=store, callbacks=[Mark()])
    # 2 drains (stack().tolist() of the losses, one sum of the correct counts each) and one
    # evaluation over the validation set (a few reads per evaluation batch) — not 40.
    assert 2 <= counts["loop"] < 20, counts


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_no_host_sync_per_step_on_cuda(store, tiny_config):
    """torch's sync debug mode errors on any synchronizing call; steps between logs make none."""

    class Strict(Callback):
        def on_step_end(self, trainer, step, logs):
            # the next step runs in "error" mode unless this one is a log step (it drains next)
            torch.cuda.set_sync_debug_mode("default" if step % 10 == 0 else "error")

        def on_fit_end(self, trainer, result):
            torch.cuda.set_sync_debug_mode("default")

    tiny_config["train"].update(
        device="cuda", log_every=10, eval_every=10, max_steps=30, epochs=50, checkpoint_seconds=1e9
    )
    assert run(tiny_config, store=store, callbacks=[Strict()]).status == "completed"
