"""Overhead of trainlab's Trainer over a hand-written PyTorch loop doing the same work.

Same model (the quickstart MLP), data, optimizer, batch order and per-epoch evaluation; the
Trainer adds the schedule step, NaN check, metric logging to the SQLite store (batched),
checkpoints at each evaluation and the callbacks. Goal: under 5%.

    python benchmarks/loop_overhead.py
"""

from __future__ import annotations

import tempfile
import time

import torch
import torch.nn.functional as F

from _timing import print_ratios
from trainlab.store import Store
from trainlab.train import load_config, run, setup

CONFIG = {
    "name": "bench",
    "data": {"name": "mnist1d", "batch_size": 128},
    "model": {"name": "mlp", "hidden": [256, 256]},
    "optim": {"name": "sgd", "lr": 0.1, "momentum": 0.9},
    "train": {"epochs": 10, "threads": 1},
}


def hand_written() -> float:
    s = setup(load_config(CONFIG))
    model, opt, data = s.model, s.optimizer, s.data
    start = time.perf_counter()
    for _ in range(CONFIG["train"]["epochs"]):
        model.train()
        for xb, yb in s.batches:
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            F.cross_entropy(model(data.x_val), data.y_val).item()
    return time.perf_counter() - start


def trainer() -> float:
    """The Trainer's loop time (``final["seconds"]``: the same region the hand loop times —
    set-up, the final test evaluation and the end-of-run checkpoint are outside both)."""
    with tempfile.TemporaryDirectory() as tmp:
        return run(CONFIG, store=Store(f"{tmp}/bench.db")).final["seconds"]


def main(repeats: int = 7) -> None:
    torch.set_num_threads(1)
    hand, ours = [], []
    for _ in range(repeats):  # interleaved, so a burst of load elsewhere hits both sides
        hand.append(hand_written())
        ours.append(trainer())
    print_ratios(f"10 epochs of the quickstart MLP on MNIST-1D (seconds; best of {repeats})", {"hand-written loop": min(hand), "trainlab Trainer": min(ours)}, unit="s", scale=1.0)


if __name__ == "__main__":
    main()
