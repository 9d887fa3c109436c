"""Overhead of trainlab over hand-written PyTorch doing the same work. Two ratios:

1. **loop**: the Trainer's training loop against a hand-written loop in the same process —
   same model (the quickstart MLP), data, optimizer (trainlab's SGD, the very object
   ``setup`` builds), batch order and per-epoch evaluation, timed from the first step to the
   end of the last evaluation (set-up, the final test evaluation and the end-of-run
   checkpoint are outside both). Measured for the in-memory batches and for a user's
   ``DataLoader`` through ``trainlab.fit``. Goal: ≤ 1.03 against the first baseline.

   What each side does:

   - *ours*: the Trainer as a run uses it — per step the forward, loss, backward and
     optimizer step, the schedule's lr, the loss kept on the device; the step's training
     accuracy counted (per log window, in one go); every ``log_every`` = 10 steps the losses
     read, checked finite (the NaN/inf check) and logged to a batched SQLite buffer; every
     epoch the validation loss and accuracy, the best-value tracker, callbacks and the
     store's rows; checkpoints at most every ``train.checkpoint_seconds`` (none in this
     short run); one callback (the clock) that uses no per-step hook.
   - *hand, same reports*: the least a hand-written loop does to print what the Trainer
     reports each epoch: the epoch's mean training loss (``loss.detach()`` summed on the
     device) and training accuracy (``(out.argmax(-1) == y).sum()`` summed on the device),
     both read once an epoch, and the validation loss and accuracy. No logging, no NaN
     check, no store, no checkpoints.
   - *hand, bare*: steps only, and the validation loss each epoch (``.item()``): printed for
     reference; the Trainer computes more than this loop (the training accuracy costs
     about 1.5% of a quickstart step on the CPU).
2. **process**: a whole ``trainlab run`` of the quickstart (10 epochs) against a plain-torch
   script reading the same cached data file and doing the same work (10 epochs, per-epoch
   validation, a final test evaluation, the weights saved), each a fresh process.
   Goal: ≤ 1.15.

Timings on a shared machine are noisy: the sides are interleaved (each repeat runs every
side once, in alternating order, so a burst of load elsewhere or a drift hits all of them),
and each ratio is printed as the median of the per-repeat ratios and as the ratio of the
minima; CPU time (one torch thread, so it is the process's own work) is printed beside wall
time. On a loaded machine run it several times and look at the medians.

    python benchmarks/loop_overhead.py [--repeats 11] [--skip-process]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from trainlab.store import Store
from trainlab.train import Callback, load_config, run, setup

EPOCHS = 10
CONFIG = {
    "name": "bench",
    "data": {"name": "mnist1d", "batch_size": 128},
    "model": {"name": "mlp", "hidden": [256, 256]},
    "optim": {"name": "sgd", "lr": 0.1, "momentum": 0.9},
    "train": {"epochs": EPOCHS, "threads": 1},
}
ROOT = Path(__file__).resolve().parents[1]


def _clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(start: tuple[float, float]) -> tuple[float, float]:
    wall, cpu = _clocks()
    return wall - start[0], cpu - start[1]


def _hand_loop(model, opt, batches, data, same_reports: bool) -> tuple[float, float]:
    """The hand-written loop. ``same_reports``: it also reports what the Trainer reports each
    epoch — the epoch's mean training loss and accuracy (summed on the device, read once an
    epoch) and the validation accuracy beside the validation loss — the least a user's loop
    does to print those numbers. Without it, the bare loop: steps and the validation loss."""
    steps, n_train = len(batches), len(data.x_train)
    start = _clocks()
    for _ in range(EPOCHS):
        model.train()
        if same_reports:
            loss_sum, correct = torch.zeros(()), torch.zeros((), dtype=torch.long)
        for xb, yb in batches:
            out = model(xb)
            loss = F.cross_entropy(out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if same_reports:
                loss_sum += loss.detach()
                correct += (out.argmax(-1) == yb).sum()
        model.eval()
        with torch.no_grad():
            out = model(data.x_val)
            F.cross_entropy(out, data.y_val).item()
            if same_reports:
                (out.argmax(-1) == data.y_val).float().mean().item()
                loss_sum.item() / steps, correct.item() / n_train
    return _since(start)


def hand_written(same_reports: bool = True) -> tuple[float, float]:
    s = setup(load_config(CONFIG))
    return _hand_loop(s.model, s.optimizer, s.batches, s.data, same_reports)


class _LoopClock(Callback):
    """Times the same region the hand loop times: from the first step to the end of the last
    evaluation (set-up, reading the history back, the final test evaluation and the end-of-run
    checkpoint are outside both)."""

    def on_fit_start(self, trainer) -> None:
        self.start = _clocks()

    def on_eval(self, trainer, step, metrics) -> None:
        self.elapsed = _since(self.start)  # the last evaluation's is kept


def trainer() -> tuple[float, float]:
    clock = _LoopClock()
    with tempfile.TemporaryDirectory() as tmp:
        run(CONFIG, store=Store(f"{tmp}/bench.db"), callbacks=[clock])
    return clock.elapsed


def _dataloader():
    from torch.utils.data import DataLoader, TensorDataset

    s = setup(load_config(CONFIG))
    g = torch.Generator().manual_seed(0)
    return s, DataLoader(TensorDataset(s.data.x_train, s.data.y_train), batch_size=128, shuffle=True, generator=g)


def hand_written_dataloader(same_reports: bool = True) -> tuple[float, float]:
    s, loader = _dataloader()
    return _hand_loop(s.model, s.optimizer, loader, s.data, same_reports)


def fit_dataloader() -> tuple[float, float] | None:
    import trainlab

    fit = getattr(trainlab, "fit", None)
    if fit is None:
        return None
    s, loader = _dataloader()
    clock = _LoopClock()
    val = (s.data.x_val, s.data.y_val)
    with tempfile.TemporaryDirectory() as tmp:
        fit(
            s.model,
            loader,
            val,
            optimizer="sgd",
            lr=0.1,
            momentum=0.9,
            epochs=EPOCHS,
            store=Store(f"{tmp}/b.db"),
            callbacks=[clock],
        )
    return clock.elapsed


PLAIN = textwrap.dedent(
    """
    import sys, numpy as np, torch, torch.nn as nn, torch.nn.functional as F
    torch.set_num_threads(1); torch.manual_seed(0)
    with np.load(sys.argv[1]) as z:
        x, y = torch.tensor(z["x"], dtype=torch.float32), torch.tensor(z["y"], dtype=torch.long)
        x_test, y_test = torch.tensor(z["x_test"], dtype=torch.float32), torch.tensor(z["y_test"], dtype=torch.long)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    n_val = len(x) // 10
    x_val, y_val, x_tr, y_tr = x[perm[:n_val]], y[perm[:n_val]], x[perm[n_val:]], y[perm[n_val:]]
    model = nn.Sequential(nn.Linear(40, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    for epoch in range(int(sys.argv[3])):
        model.train()
        for idx in torch.randperm(len(x_tr), generator=g).split(128):
            loss = F.cross_entropy(model(x_tr[idx]), y_tr[idx])
            opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
        model.eval()
        with torch.no_grad():
            print(epoch, F.cross_entropy(model(x_val), y_val).item(), (model(x_val).argmax(-1) == y_val).float().mean().item())
    with torch.no_grad():
        print("test", (model(x_test).argmax(-1) == y_test).float().mean().item())
    torch.save(model.state_dict(), sys.argv[2])
    """
)


def _process(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    start = time.perf_counter()
    before = os.times()
    subprocess.run(argv, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    after = os.times()
    return time.perf_counter() - start, (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )


def whole_processes(tmp: Path) -> tuple[tuple[float, float], tuple[float, float]]:
    from trainlab.data.datasets import _mnist1d, _mnist1d_cache

    _mnist1d()  # make sure the cache exists: neither side generates the data
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    (tmp / "plain.py").write_text(PLAIN)
    plain = _process(
        [sys.executable, str(tmp / "plain.py"), str(_mnist1d_cache()), str(tmp / "w.pt"), str(EPOCHS)], env
    )
    ours = _process(
        [sys.executable, "-m", "trainlab", "run", "examples/quickstart.toml", f"train.epochs={EPOCHS}", "train.threads=1",
         "--quiet", "--store", str(tmp / f"runs-{time.monotonic_ns()}.db")],
        env,
    )  # fmt: skip
    return plain, ours


def _report(
    title: str, bases: dict[str, list[tuple[float, float]]], ours: list[tuple[float, float]], goal: float
) -> None:
    """One table: for each baseline and clock, the fastest of each side, the median of the
    per-pair ratios (ours / base) and the ratio of the minima. The goal applies to the first."""
    print(f"\n{title}  (goal ≤ {goal:.2f} for the first; {len(ours)} interleaved repeats)")
    print(f"{'':24s} {'base s':>9s} {'ours s':>9s} {'median ratio':>13s} {'ratio of minima':>16s}")
    for label, base in bases.items():
        for i, clock in enumerate(("wall", "cpu")):
            b, o = [t[i] for t in base], [t[i] for t in ours]
            median = statistics.median(x / y for x, y in zip(o, b))
            print(f"{label + ' ' + clock:24s} {min(b):9.3f} {min(o):9.3f} {median:13.3f} {min(o) / min(b):16.3f}")


def _interleaved(sides: dict[str, Callable[[], tuple[float, float] | None]], repeats: int) -> dict[str, list]:
    """Each side once per repeat, in an order that alternates (a burst of load elsewhere, or a
    drift, hits every side alike)."""
    times: dict[str, list] = {name: [] for name in sides}
    order = list(sides)
    for r in range(repeats):
        for name in order if r % 2 == 0 else reversed(order):
            times[name].append(sides[name]())
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--skip-process", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    hand_written(), trainer()  # warm-up: first-call costs belong to neither side
    same, bare = "hand, same reports", "hand, bare"
    mem = _interleaved(
        {same: hand_written, bare: lambda: hand_written(same_reports=False), "ours": trainer}, args.repeats
    )
    _report(
        f"loop, in-memory batches: {EPOCHS} epochs of the quickstart MLP on MNIST-1D",
        {same: mem[same], bare: mem[bare]},
        mem["ours"],
        1.03,
    )
    if fit_dataloader() is None:
        print("\nloop, a user's DataLoader: skipped (this trainlab has no trainlab.fit)")
    else:
        dl = _interleaved(
            {
                same: hand_written_dataloader,
                bare: lambda: hand_written_dataloader(same_reports=False),
                "ours": fit_dataloader,  # type: ignore[dict-item]
            },
            args.repeats,
        )
        _report("loop, a user's DataLoader (trainlab.fit)", {same: dl[same], bare: dl[bare]}, dl["ours"], 1.03)
    if not args.skip_process:
        plain, whole = [], []
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(max(3, args.repeats // 2)):
                p, w = whole_processes(Path(tmp))
                plain.append(p)
                whole.append(w)
        _report(
            f"whole process: `trainlab run` of the quickstart ({EPOCHS} epochs) vs a plain-torch script",
            {"plain torch": plain},
            whole,
            1.15,
        )


if __name__ == "__main__":
    main()
