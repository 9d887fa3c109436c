import math

import pytest
import torch

from interrupt import Interrupt
from trainlab._io import torch_load
from trainlab.errors import ConfigError
from trainlab.train import Callback, EarlyStopping, Trainer, load_config, run


def _weights(store, run_id):
    return torch_load(store.artifacts(run_id)["checkpoint"])["model"]


def test_run_records_metrics_and_final(store, tiny_config):
    result = run(tiny_config, store=store)
    assert result.status == "completed"
    rec = store.get_run(result.run_id)
    assert rec.status == "completed" and rec.seed == 0 and rec.config["model"]["hidden"] == [32]
    for key in ("val_loss", "val_acc", "train_loss", "step", "best_val_loss", "best_val_acc", "test_acc"):
        assert key in rec.final
    assert rec.final["step"] == 2 * math.ceil(512 / 64)
    m = store.metrics(result.run_id)
    assert list(m["val_acc"][0]) == [8, 16]  # evaluated at the end of each epoch
    assert rec.final["val_acc"] == pytest.approx(m["val_acc"][1][-1])
    assert rec.final["val_acc"] > 0.2  # above chance (0.1) after 2 epochs


def test_same_config_and_seed_give_identical_weights(store, tiny_config):
    tiny_config["model"]["dropout"] = 0.2  # dropout draws from the seeded global generator
    a, b = run(tiny_config, store=store), run(tiny_config, store=store)
    wa, wb = _weights(store, a.run_id), _weights(store, b.run_id)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert a.final["val_loss"] == b.final["val_loss"]
    c = run({**tiny_config, "seed": 1}, store=store)
    assert not torch.equal(_weights(store, c.run_id)["head.weight"], wa["head.weight"])


def test_divergence_stops_with_status_and_keeps_last_good_checkpoint(store, tiny_config):
    tiny_config["optim"] = {"name": "sgd", "lr": 1e6}
    tiny_config["train"]["epochs"] = 5
    result = run(tiny_config, store=store)
    assert result.status == "diverged" and "non-finite" in result.message
    rec = store.get_run(result.run_id)
    assert rec.status == "diverged"
    ckpt = store.artifacts(result.run_id).get("checkpoint")
    if ckpt is not None:  # only if an evaluation came before the blow-up
        assert all(torch.isfinite(v).all() for v in torch_load(ckpt)["model"].values())


def test_early_stopping_stops_at_patience_and_restores_best(store, tiny_config):
    tiny_config["train"] = {
        "epochs": 30,
        "eval_every": 2,
        "threads": 1,
        "early_stopping": {"monitor": "val_loss", "patience": 3},
    }
    tiny_config["optim"] = {"name": "sgd", "lr": 0.5, "momentum": 0.9}  # overfits a 512-sample subset fast
    trainer = Trainer(tiny_config, store=store)
    result = trainer.fit()
    es = next(cb for cb in trainer.callbacks if isinstance(cb, EarlyStopping))
    val = result.history["val_loss"]
    best_step, best = min(val, key=lambda p: p[1])
    assert es.best_step == best_step == result.final["early_stopping_best_step"]
    # stopped exactly `patience` evaluations after the best one
    assert (
        es.stopped_step == val[-1][0]
        and [s for s, _ in val].index(es.stopped_step) - [s for s, _ in val].index(best_step) == 3
    )
    assert result.final["step"] < 30 * 8
    # restored weights reproduce the best validation loss
    d = trainer.setup.data
    assert trainer.evaluate(d.x_val, d.y_val)["loss"] == pytest.approx(best, rel=1e-6)


class Recorder(Callback):
    def __init__(self, name, log):
        self.name, self.log = name, log

    def on_fit_start(self, trainer):
        self.log.append((self.name, "start"))

    def on_eval(self, trainer, step, metrics):
        self.log.append((self.name, "eval", step))
        return {f"{self.name}_seen": float(step)}

    def on_fit_end(self, trainer, result):
        self.log.append((self.name, "end"))


def test_callbacks_run_in_the_given_order_and_their_metrics_are_logged(store, tiny_config):
    log = []
    result = run(tiny_config, store=store, callbacks=[Recorder("a", log), Recorder("b", log)])
    assert log == [
        ("a", "start"),
        ("b", "start"),
        ("a", "eval", 8),
        ("b", "eval", 8),
        ("a", "eval", 16),
        ("b", "eval", 16),
        ("a", "end"),
        ("b", "end"),
    ]
    assert list(store.metrics(result.run_id)["b_seen"][1]) == [8.0, 16.0]


def test_interrupt_then_resume_equals_uninterrupted_run(store, tiny_config):
    tiny_config["model"]["dropout"] = 0.1
    tiny_config["train"].update(epochs=3, checkpoint_every=5)
    full = run(tiny_config, store=store)
    cut = run(tiny_config, store=store, callbacks=[Interrupt(13)])
    assert cut.status == "interrupted" and store.get_run(cut.run_id).status == "interrupted"
    resumed = run(None, store=store, resume=cut.run_id)
    assert resumed.status == "completed" and resumed.final["step"] == full.final["step"]
    wa, wb = _weights(store, full.run_id), _weights(store, resumed.run_id)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    # metrics are not duplicated by the resume
    steps = store.metrics(resumed.run_id)["val_loss"][0]
    assert list(steps) == sorted(set(steps))
    with pytest.raises(ConfigError, match="already completed"):
        run(None, store=store, resume=resumed.run_id)


def test_regression_task_and_clipping_log_grad_norm(store):
    cfg = {
        "data": {"name": "adding", "n_samples": 256, "seq_len": 8, "batch_size": 32},
        "model": {"name": "mlp", "hidden": [16]},
        "optim": {"name": "sgd", "lr": 0.05},
        "train": {"epochs": 1, "clip_norm": 1.0, "log_every": 1, "threads": 1},
    }
    result = run(cfg, store=store)
    assert result.status == "completed" and "val_acc" not in result.final
    norms = store.metrics(result.run_id)["train_grad_norm"][1]
    assert len(norms) > 0 and (norms > 0).all()


def test_monitoring_accuracy_on_regression_is_rejected(store):
    cfg = {"data": {"name": "adding", "n_samples": 64, "seq_len": 4}, "train": {"monitor": "val_acc"}}
    with pytest.raises(ConfigError, match="train.monitor = 'val_acc' needs a classification task"):
        run(cfg, store=store)


def test_setup_builds_components_without_training(tiny_config):
    from trainlab.train import setup

    s = setup(load_config(tiny_config))
    assert s.steps_per_epoch == 8 and s.total_steps == 16 and s.data.num_classes == 10
    out = s.model(s.data.x_val[:4])
    assert out.shape == (4, 10)
    assert s.loss_fn(out, s.data.y_val[:4]).ndim == 0


def test_linear_scaling_warms_up_from_the_unscaled_lr():
    from trainlab.train import setup

    cfg = load_config(
        {
            "data": {"name": "mnist1d", "batch_size": 512},
            "optim": {"name": "sgd", "lr": 0.1, "scale_lr": "linear", "base_batch_size": 128},
            "schedule": {"name": "constant", "warmup_steps": 4},
            "train": {"epochs": 2},
        }
    )
    s = setup(cfg)
    assert s.lr == pytest.approx(0.4)
    # Goyal et al. (2017): from the small-batch lr to k times it, linearly
    assert [s.schedule(t) for t in range(6)] == pytest.approx([0.1, 0.175, 0.25, 0.325, 0.4, 0.4])
