"""Resume never fails for want of a good checkpoint: the last two are kept, a damaged, empty,
truncated, missing or foreign latest one falls back to the previous with a warning, and a
run without any starts again from step 0 — each ending bit for bit where an uninterrupted
run ends. And the end of a run is inside its failure handling: a run is never left running."""

import os
import re
import shutil
import subprocess
import sys

import pytest
import torch

from interrupt import Interrupt
from trainlab._io import torch_load
from trainlab.train import Callback, Trainer, run
from trainlab.train.checkpoint import previous_path, save_checkpoint
from trainlab.train.trainer import CheckpointWarning


class PoisonWeights(Callback):
    """Sets every weight to NaN after step ``at``: the next step's loss is NaN."""

    def __init__(self, at):
        self.at = at

    def on_step_end(self, trainer, step, logs):
        if step == self.at:
            with torch.no_grad():
                for p in trainer.model.parameters():
                    p.fill_(float("nan"))


def _weights(store, run_id):
    return torch_load(store.artifacts(run_id)["checkpoint"])["model"]


def _same_weights(store, a, b):
    wa, wb = _weights(store, a), _weights(store, b)
    return set(wa) == set(wb) and all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.fixture
def cut(store, tiny_config):
    """(config, the uninterrupted run, a run interrupted at step 13 with checkpoints at 10 and 13)."""
    tiny_config["model"]["dropout"] = 0.1  # the global generator's state must be restored too
    tiny_config["train"].update(epochs=3, checkpoint_every=5)
    full = run(tiny_config, store=store)
    cut = run(tiny_config, store=store, callbacks=[Interrupt(13)])
    assert cut.status == "interrupted"
    return tiny_config, full, cut


def test_the_last_two_checkpoints_are_kept(store, cut):
    _, _, interrupted = cut
    latest = store.artifacts(interrupted.run_id)["checkpoint"]
    assert torch_load(latest)["step"] == 13 and torch_load(previous_path(latest))["step"] == 10
    assert previous_path(latest).name == "checkpoint.prev.pt"


def test_the_latest_checkpoint_never_goes_missing_while_the_next_is_written(tmp_path, monkeypatch):
    """A reader (or a kill) at any instant of a write finds checkpoint.pt, old or new."""
    path = tmp_path / "checkpoint.pt"
    state = {"step": 1, "model": {"w": torch.zeros(2)}}
    save_checkpoint(path, state)
    seen = []
    replace = os.replace

    def watched(src, dst, *args, **kwargs):
        seen.append(path.is_file())
        return replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", watched)
    save_checkpoint(path, {**state, "step": 2})
    save_checkpoint(path, {**state, "step": 3})
    assert seen and all(seen)
    assert torch_load(path)["step"] == 3 and torch_load(previous_path(path))["step"] == 2


def _damage(kind, latest, other_checkpoint):
    if kind == "random bytes":
        latest.write_bytes(os.urandom(4096))
    elif kind == "truncated":
        data = latest.read_bytes()
        latest.write_bytes(data[: len(data) // 2])
    elif kind == "empty":
        latest.write_bytes(b"")
    elif kind == "missing":
        latest.unlink()
    elif kind == "foreign":
        shutil.copyfile(other_checkpoint, latest)  # same model, another run's


@pytest.mark.parametrize(
    "kind,reason",
    [
        ("random bytes", "checkpoint.pt is damaged or truncated"),
        ("truncated", "checkpoint.pt is damaged or truncated"),
        ("empty", "checkpoint.pt is empty (0 bytes)"),
        ("missing", "checkpoint.pt is missing"),
        ("foreign", "checkpoint.pt is run "),
    ],
)
def test_a_bad_latest_checkpoint_falls_back_to_the_previous_one(store, cut, kind, reason):
    _, full, interrupted = cut
    latest = store.artifacts(interrupted.run_id)["checkpoint"]
    _damage(kind, latest, store.artifacts(full.run_id)["checkpoint"])
    with pytest.warns(CheckpointWarning, match=f"{re.escape(reason)}.*resuming from checkpoint.prev.pt \\(step 10\\)"):
        resumed = run(None, store=store, resume=interrupted.run_id)
    assert resumed.status == "completed" and resumed.final["step"] == full.final["step"] == 24
    assert _same_weights(store, full.run_id, interrupted.run_id)
    assert resumed.final["val_loss"] == full.final["val_loss"]
    steps = store.metrics(interrupted.run_id)["val_loss"][0]
    assert list(steps) == [8, 16, 24]  # rows after step 10 were logged once, by the resume


def test_another_models_checkpoint_is_refused_by_its_weights(store, cut, tiny_config):
    _, full, interrupted = cut
    other = run(
        {**tiny_config, "model": {"name": "mlp", "hidden": [7]}, "train": {"max_steps": 2, "threads": 1}}, store=store
    )
    latest = store.artifacts(interrupted.run_id)["checkpoint"]
    state = torch_load(store.artifacts(other.run_id)["checkpoint"])
    state.pop("run_id")  # a checkpoint of an older trainlab: only its weights tell
    torch.save(state, latest)
    with pytest.warns(CheckpointWarning, match="another model's checkpoint"):
        run(None, store=store, resume=interrupted.run_id)
    assert _same_weights(store, full.run_id, interrupted.run_id)


@pytest.mark.parametrize("both", ["missing", "damaged"])
def test_without_a_usable_checkpoint_a_resume_starts_again_from_step_0(store, cut, both):
    _, full, interrupted = cut
    latest = store.artifacts(interrupted.run_id)["checkpoint"]
    for path in (latest, previous_path(latest)):
        if both == "missing":
            path.unlink()
        else:
            path.write_bytes(b"\x80\x02garbage")
    with pytest.warns(CheckpointWarning, match="no usable checkpoint; starting it again from step 0"):
        resumed = run(None, store=store, resume=interrupted.run_id)
    assert resumed.status == "completed" and resumed.run_id == interrupted.run_id
    assert _same_weights(store, full.run_id, interrupted.run_id)
    assert resumed.final["val_loss"] == full.final["val_loss"]
    for key, (steps, values) in store.metrics(full.run_id).items():  # every row once, as the uninterrupted run has it
        again_steps, again_values = store.metrics(interrupted.run_id)[key]
        assert list(again_steps) == list(steps) and list(again_values) == list(values), key


def test_a_run_killed_before_its_first_checkpoint_resumes_from_step_0(store, tiny_config):
    """The run row exists, no checkpoint row, no file: what kill -9 before the first
    checkpoint leaves (the fault-injection test kills real processes there too)."""
    tiny_config["train"]["checkpoint_seconds"] = 1e6
    full = run(tiny_config, store=store)
    run_id = store.create_run("tiny", load_cfg(tiny_config).to_dict(), seed=0)
    store.set_status(run_id, "interrupted")
    with pytest.warns(CheckpointWarning, match="starting it again from step 0"):
        resumed = run(None, store=store, resume=run_id)
    assert resumed.final["step"] == full.final["step"] and resumed.final["val_loss"] == full.final["val_loss"]
    assert _same_weights(store, full.run_id, run_id)


def load_cfg(config):
    from trainlab.train import load_config

    return load_config(config)


def test_resume_warning_is_one_line_in_the_cli(store, cut):
    _, _, interrupted = cut
    store.artifacts(interrupted.run_id)["checkpoint"].write_bytes(b"")  # was "Aborted." (exit 1)
    argv = [sys.executable, "-m", "trainlab.cli", "run", "--resume", interrupted.run_id, "-q", "--store", store.url]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    code, err = proc.returncode, proc.stderr
    assert code == 0, err
    assert err.startswith(
        f"warning: run {interrupted.run_id}: checkpoint.pt is empty (0 bytes); resuming from checkpoint.prev.pt (step 10)\n"
    )
    assert "Traceback" not in err and "warnings.warn" not in err


def test_a_divergence_says_whether_a_checkpoint_exists(store, tiny_config):
    tiny_config["train"].update(checkpoint_seconds=1e6)
    result = run(tiny_config, store=store, callbacks=[PoisonWeights(3)])
    assert result.status == "diverged"
    assert result.message == "loss became non-finite at step 4; no checkpoint was written before it"
    assert "checkpoint" not in store.artifacts(result.run_id)
    tiny_config["train"].update(checkpoint_every=2)
    result = run(tiny_config, store=store, callbacks=[PoisonWeights(5)])
    assert result.message == "loss became non-finite at step 6; the last good checkpoint (step 4) is kept"
    assert torch_load(store.artifacts(result.run_id)["checkpoint"])["step"] == 4


def test_a_failing_test_evaluation_fails_the_run_and_keeps_the_training(store, tiny_config, monkeypatch):
    """An npz whose test split did not fit the model trained to the end, then raised outside
    the run's try: the run stayed `running` and the training was lost."""
    evaluate = Trainer.evaluate

    def broken_on_test(self, x, y):
        if x is self.setup.data.x_test:
            raise RuntimeError("mat1 and mat2 shapes cannot be multiplied (200x7 and 4x32)")
        return evaluate(self, x, y)

    monkeypatch.setattr(Trainer, "evaluate", broken_on_test)
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        run(tiny_config, store=store)
    (record,) = store.list_runs()
    assert record.status == "failed" and "shapes cannot be multiplied" in record.message
    assert torch_load(store.artifacts(record.id)["checkpoint"])["step"] == 16  # the trained model is kept
