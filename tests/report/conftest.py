"""A store filled with synthetic runs (no training): fast, and every number is known."""

from __future__ import annotations

import numpy as np
import pytest

from trainlab.store import Store


def base_config(name: str, seed: int, lr: float, optim: str = "sgd") -> dict:
    return {
        "name": name,
        "seed": seed,
        "data": {"name": "mnist1d", "batch_size": 64},
        "model": {"name": "mlp", "hidden": [32, 32]},
        "optim": {"name": optim, "lr": lr},
        "train": {"epochs": 2},
    }


def add_run(
    store: Store,
    name: str,
    seed: int,
    *,
    lr: float = 0.1,
    optim: str = "sgd",
    group: str | None = None,
    layers: bool = False,
    sharpness: bool = False,
    steps: int = 50,
) -> str:
    rng = np.random.default_rng(seed)
    run_id = store.create_run(name, base_config(name, seed, lr, optim), seed=seed, group=group)
    rows = []
    speed = 1.0 if optim == "sgd" else 2.0
    for step in range(1, steps + 1):
        rows.append((step, "train_loss", 2.3 * np.exp(-speed * step / steps) + 0.05 * rng.random()))
        rows.append((step, "train_lr", lr * (1 - step / (steps + 1))))
        if step % 10 == 0:
            rows.append((step, "val_loss", 2.3 * np.exp(-speed * step / steps) + 0.1))
            rows.append((step, "val_acc", 1 - np.exp(-speed * step / steps) + 0.01 * seed))
        if layers and step % 5 == 0:
            for i, layer in enumerate(["blocks.0.layer", "blocks.0.act", "blocks.1.layer", "head"]):
                rows.append((step, f"layer/{layer}/act_std", 1.0 / (i + 1) + 0.01 * step))
                if "act" not in layer:
                    rows.append((step, f"layer/{layer}/grad_norm", 10.0 ** (-i) * (1 + step / steps)))
    if sharpness:
        rows += [
            (steps, "sharpness/hessian_top", 10.0 * speed + seed),
            (steps, "sharpness/hessian_trace", 50.0 * speed),
            (steps, "sharpness/hessian_trace_stderr", 1.0),
            (steps, "sharpness/epsilon_sharpness", 3.0 * speed),
            (steps, "sharpness/epsilon", 1e-3),
            (steps, "sharpness/loss", 0.2),
        ]
    store.log_metrics(run_id, rows)
    final = {
        "step": steps,
        "val_loss": 0.3,
        "val_acc": 0.8 + 0.01 * seed,
        "best_val_acc": 0.82 + 0.01 * seed,
        "best_val_loss": 0.28,
        "seconds": 1.5,
    }
    store.finish_run(run_id, "completed", final=final)
    return run_id


def add_lr_find(store: Store, name: str) -> str:
    from trainlab.diagnose.lr_finder import exponential_lrs, smooth_losses

    lrs = exponential_lrs(1e-5, 10.0, 60)
    t = np.log10(lrs)
    losses = 2 - np.tanh(t + 2.5) + np.where(t > 0, 5 * t**2, 0)
    smoothed = smooth_losses(losses, 0.9)
    run_id = store.create_run(f"{name}/lr-find", base_config(name, 0, 0.1), seed=0)
    store.log_metrics(
        run_id,
        [
            (i, k, v)
            for i in range(60)
            for k, v in (("lr_find/lr", lrs[i]), ("lr_find/loss", losses[i]), ("lr_find/smoothed", smoothed[i]))
        ],
    )
    store.finish_run(run_id, "completed", final={"suggested_lr": 3e-3, "min_loss_lr": 0.5})
    return run_id


@pytest.fixture
def filled_store(tmp_path):
    """A comparison 'cmp' of two variants × 3 seeds, one lone run with layer stats and sharpness, and an LR-finder run."""
    store = Store(tmp_path / "runs" / "trainlab.db")
    ids = {}
    for variant, optim in (("sgd", "sgd"), ("adam", "adam")):
        for seed in range(3):
            ids[(variant, seed)] = add_run(
                store, f"cmp/{variant}", seed, optim=optim, group="cmp", layers=True, sharpness=True
            )
    ids["lone"] = add_run(store, "lone", 0, lr=0.05, layers=True, sharpness=True)
    ids["lr_find"] = add_lr_find(store, "lone")
    store.ids = ids
    return store
