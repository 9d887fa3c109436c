"""What per-layer statistics cost: training steps with LayerStats off, every 100, 10 and 1 steps.

Two settings, each timed as the fastest of several round-robin repeats in this one process:
  * a bare loop (forward, backward, callback hooks, SGD step) of an MLP 40-256-256-10 on a
    batch of 128 — the hooks' own cost with nothing else around it;
  * the real Trainer on mnist1d (same model, evaluation, batched metric writes to a SQLite
    store) with ``[diagnose] stats_every`` = 0 / 100 / 10 / 1.
Times are CPU seconds of this process (``time.process_time``, one torch thread), so other
programs on the machine disturb them less than wall time. Ratios are against the fastest
variant of the same setting.

    .venv/bin/python benchmarks/stats_overhead.py
"""

from __future__ import annotations

import tempfile
import time

import torch
from torch import nn

from trainlab.diagnose.stats import LayerStats
from trainlab.train.callbacks import Callback

EVERY = (None, 100, 10, 1)


class _Loop:
    step = 0

    def __init__(self, model):
        self.model = model


def bare_loop(every: int | None, steps: int = 1000) -> float:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(40, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(128, 40), torch.randint(0, 10, (128,))
    cb = LayerStats(model, every=every) if every else None
    loop = _Loop(model)
    if cb:
        cb.on_fit_start(loop)
    start = time.process_time()
    for step in range(steps):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cb:
            cb.on_before_step(loop, step)
        opt.step()
        if cb:
            cb.on_step_end(loop, step + 1, {})
    return (time.process_time() - start) / steps


class _CpuClock(Callback):
    """CPU seconds of the training loop only (data loading and set-up excluded)."""

    def on_fit_start(self, trainer) -> None:
        self.start = time.process_time()

    def on_fit_end(self, trainer, result) -> None:
        self.seconds = time.process_time() - self.start


def trainer(every: int | None) -> float:
    from trainlab.store import Store
    from trainlab.train import run

    cfg = {
        "name": "bench",
        "data": {"name": "mnist1d", "batch_size": 128},
        "model": {"name": "mlp", "hidden": [256, 256]},
        "optim": {"name": "sgd", "lr": 0.01, "momentum": 0.9},
        "train": {"max_steps": 1000, "eval_every": 250, "threads": 1},
        "diagnose": {"stats_every": every or 0},
    }
    clock = _CpuClock()
    with tempfile.TemporaryDirectory() as tmp:
        result = run(cfg, store=Store(f"{tmp}/b.db"), callbacks=[clock])
    return clock.seconds / result.final["step"]


def main(repeats: int = 5) -> None:
    torch.set_num_threads(1)
    print(f"{'setting':<8} {'stats every':>11} {'CPU ms/step':>11} {'ratio':>7}")
    for name, fn in (("loop", bare_loop), ("trainer", trainer)):
        fn(None)  # warm-up: imports, allocator, data set cache
        samples: dict[int | None, list[float]] = {every: [] for every in EVERY}
        for _ in range(repeats):  # round-robin, so a burst of load from elsewhere hits every variant
            for every in EVERY:
                samples[every].append(fn(every))
        times = {every: min(ts) for every, ts in samples.items()}  # the least disturbed repeat
        best = min(times.values())
        for every, t in times.items():
            print(f"{name:<8} {('off' if every is None else every):>11} {1000 * t:>11.3f} {t / best:>7.3f}")


if __name__ == "__main__":
    main()
