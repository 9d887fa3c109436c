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


def _recording_loss(record):
    """Cross-entropy that records each training step's outputs and targets (evaluation runs
    under no_grad and is not recorded): an independent view of what the steps predicted."""

    def loss(out, yb):
        if torch.is_grad_enabled():
            record.append((out.detach().clone().numpy(), yb.clone().numpy()))
        return torch.nn.functional.cross_entropy(out, yb)

    return loss


def _expected_train_acc(record, steps, eval_every):
    """train_acc at each logged step from the recorded outputs, in NumPy: the correct
    predictions (first index of the largest score) of the steps since the last evaluation."""
    hits = [int((np.argmax(out, axis=-1) == y).sum()) for out, y in record]
    sizes = [len(y) for _, y in record]
    expected = []
    for step in steps:
        start = ((step - 1) // eval_every) * eval_every  # the window restarts after each evaluation
        expected.append(sum(hits[start:step]) / sum(sizes[start:step]))
    return expected


@pytest.mark.parametrize("log_every", [1, 3, 10])
def test_train_acc_counts_each_steps_predictions_as_the_step_made_them(store, log_every):
    """The correct count is taken from the outputs kept over a log window (CPU); it equals the
    per-step count of argmax(out) == y over the window's steps, computed here with NumPy."""
    import trainlab

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 6)).astype(np.float32)
    y = (x[:, 0] + 0.5 * rng.normal(size=300) > 0).astype(np.int64) + 2 * (x[:, 1] > 0)
    record = []
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    result = trainlab.fit(
        model, (x[:240], y[:240]), (x[240:], y[240:]), loss=_recording_loss(record), lr=0.2,
        epochs=3, batch_size=32, store=store, **{"train.log_every": log_every},
    )  # fmt: skip
    assert len(record) == 3 * 8  # 240 / 32 = 7.5: 8 steps an epoch
    steps, values = store.metrics(result.run_id, ["train_acc"])["train_acc"]
    assert len(steps) >= 3
    assert values.tolist() == pytest.approx(_expected_train_acc(record, steps.tolist(), 8), abs=1e-12)


class _ParameterScores(torch.nn.Module):
    """Scores that are a view of a parameter (the same row for every sample): the optimizer
    step changes them in place after the step that predicted with them."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(2))

    def forward(self, x):
        return self.w.expand(x.shape[0], 2)


def test_train_acc_of_an_output_that_the_step_changes_in_place(store):
    """Batches alternate between all-0 and all-1 labels and a large lr flips the argmax of the
    shared scores at each step, so each step predicts the previous batch's label: counted from
    the outputs after the step, the accuracy would be ~1 instead of ~0."""
    from torch.utils.data import DataLoader, TensorDataset

    import trainlab

    x = torch.zeros(160, 3)
    y = torch.tensor([0] * 16 + [1] * 16).repeat(5)
    record = []
    result = trainlab.fit(
        _ParameterScores(), DataLoader(TensorDataset(x, y), batch_size=16), (x[:32], y[:32]),
        loss=_recording_loss(record), lr=2.0, epochs=1, store=store, **{"train.log_every": 5},
    )  # fmt: skip
    steps, values = store.metrics(result.run_id, ["train_acc"])["train_acc"]
    expected = _expected_train_acc(record, steps.tolist(), 10)
    assert values.tolist() == pytest.approx(expected, abs=1e-12)
    assert expected[-1] <= 0.1  # each step but the first predicts the wrong label


def test_gradients_are_cleared_as_zero_grad_would_and_a_users_zero_grad_is_called():
    """The loop clears gradients itself where the optimizer's ``zero_grad`` is torch's (every
    torch and trainlab optimizer); an optimizer with its own ``zero_grad`` gets that called."""
    from trainlab.optim import SGD
    from trainlab.train.trainer import _grad_clearer

    model = torch.nn.Linear(3, 2)
    extra = torch.nn.Parameter(torch.ones(2))
    for opt in (SGD(model.parameters(), lr=0.1), torch.optim.Adam(model.parameters())):
        clear = _grad_clearer(opt)
        opt.add_param_group({"params": [extra]})  # a group added after the clearer was made
        model(torch.ones(4, 3)).sum().add(extra.sum()).backward()
        assert all(p.grad is not None for g in opt.param_groups for p in g["params"])
        clear()
        assert all(p.grad is None for g in opt.param_groups for p in g["params"]), type(opt).__name__
        extra.grad = None

    calls = []

    class OwnZeroGrad(torch.optim.SGD):
        def zero_grad(self, set_to_none: bool = True) -> None:
            calls.append(set_to_none)
            super().zero_grad(set_to_none)

    opt = OwnZeroGrad(model.parameters(), lr=0.1)
    model(torch.ones(4, 3)).sum().backward()
    _grad_clearer(opt)()
    assert calls == [True] and model.weight.grad is None
