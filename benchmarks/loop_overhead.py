"""Overhead of trainlab over hand-written PyTorch doing the same work. Two ratios:

1. **loop**: the Trainer's training loop against a hand-written loop in the same process —
   same model (the quickstart MLP), data, optimizer (trainlab's SGD, as ``setup`` builds it),
   batch order and per-epoch evaluation. Measured for the in-memory batches (``trainlab
   run``) and for a user's ``DataLoader`` (``trainlab.fit``). Goal: ≤ 1.03 against both
   hand loops below.

   What each side does:

   - *ours*: the Trainer as a run uses it — per step the forward, loss, backward and
     optimizer step, the gradients cleared by assignment (``p.grad = None``: what
     ``zero_grad(set_to_none=True)`` does, without its profiler range, ~10 µs a step here),
     the schedule's lr, the loss kept on the device; the step's training
     accuracy counted (per log window, in one go); every ``log_every`` = 10 steps the losses
     read, checked finite (the NaN/inf check) and logged to a batched SQLite buffer; every
     epoch the validation loss and accuracy, the best-value tracker, callbacks and the
     store's rows; checkpoints at most every ``train.checkpoint_seconds`` (none in this
     short run); one callback (the pairing clock below), which has no per-step hook.
   - *hand, same reports*: the least a hand-written loop does to print what the Trainer
     reports each epoch: the epoch's mean training loss (``loss.detach()`` summed on the
     device) and training accuracy (``(out.argmax(-1) == y).sum()`` summed on the device),
     both read once an epoch, and the validation loss and accuracy. No logging, no NaN
     check, no store, no checkpoints.
   - *hand, bare*: steps only (``opt.zero_grad(set_to_none=True)`` as users write it), and
     the validation loss each epoch (``.item()``): the hand loop the goal was set against. The
     Trainer computes more than this loop (the training loss and accuracy that "same
     reports" adds cost that loop 1–6% of its time on a 2-core CPU).
2. **process**: a whole ``trainlab run`` of the quickstart (10 epochs) against a plain-torch
   script reading the same cached data file and doing the same work (10 epochs, per-epoch
   validation, a final test evaluation, the weights saved), each a fresh process.
   Goal: ≤ 1.15.

Timings on a shared machine are noisy, and interleaving whole runs was not enough (a burst
of load elsewhere lasts about as long as a run). So the loop sides are paired epoch by epoch:
a callback runs one epoch of each hand loop (own model, optimizer and batches; alternating
order) at each of the Trainer's evaluations, and each side's epoch is timed on its own — the
Trainer's from the end of the hand epochs before it to its evaluation (so what it does after
an evaluation counts in its next epoch). Each run's first epoch is left out. The table gives
the median epoch of each side, the median of the per-epoch ratios (the figure to read) and
the ratio of the summed times, in wall and CPU time (one torch thread, so CPU time is the
process's own work). The process ratio interleaves whole processes. On a loaded machine run
it several times and report the spread of the medians.

    python benchmarks/loop_overhead.py [--repeats 5] [--skip-process]
"""

from __future__ import annotations

import argparse
import functools
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
SAME, BARE, OURS = "hand, same reports", "hand, bare", "ours"


def _clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(start: tuple[float, float]) -> tuple[float, float]:
    wall, cpu = _clocks()
    return wall - start[0], cpu - start[1]


def _hand_epoch(model, opt, batches, data, same_reports: bool) -> None:
    """One epoch of the hand-written loop. ``same_reports``: it also computes what the Trainer
    reports each epoch — the epoch's mean training loss and accuracy (summed on the device,
    read once an epoch) and the validation accuracy beside the validation loss — the least a
    user's loop does to print those numbers. Without it, the bare loop: steps and the
    validation loss."""
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
            loss_sum.item() / len(batches), correct.item() / len(data.x_train)


def _dataloader(s):
    from torch.utils.data import DataLoader, TensorDataset

    g = torch.Generator().manual_seed(0)
    return DataLoader(TensorDataset(s.data.x_train, s.data.y_train), batch_size=128, shuffle=True, generator=g)


def _hand_sides(user_loader: bool) -> dict[str, Callable[[], None]]:
    """Each hand loop with its own model, optimizer and batches (as ``setup`` builds them for
    the Trainer), as a function that runs its next epoch."""
    sides = {}
    for name, same_reports in ((SAME, True), (BARE, False)):
        s = setup(load_config(CONFIG))
        batches = _dataloader(s) if user_loader else s.batches
        sides[name] = functools.partial(_hand_epoch, s.model, s.optimizer, batches, s.data, same_reports)
    return sides


class _PairedEpochs(Callback):
    """Runs the hand loops' epochs between the Trainer's: at each of the Trainer's evaluations
    (one an epoch) one epoch of each hand loop, in alternating order, each timed on its own;
    the Trainer's epoch is timed from the end of the hand epochs before it to its evaluation.
    So every Trainer epoch has hand epochs run within a second of it: a burst of load
    elsewhere hits both, which interleaving whole runs did not achieve on a shared machine.
    (What the Trainer does after its evaluation falls into its next epoch's time.)"""

    def __init__(self, hands: dict[str, Callable[[], None]]):
        self.hands = hands
        self.times: dict[str, list[tuple[float, float]]] = {name: [] for name in (*hands, OURS)}

    def on_fit_start(self, trainer) -> None:
        self.start = _clocks()

    def on_eval(self, trainer, step, metrics) -> None:
        self.times[OURS].append(_since(self.start))
        order = list(self.hands) if len(self.times[OURS]) % 2 else list(reversed(self.hands))
        for name in order:
            start = _clocks()
            self.hands[name]()
            self.times[name].append(_since(start))
        self.start = _clocks()


def paired_trainer() -> dict[str, list[tuple[float, float]]]:
    """A ``trainlab run`` of the config (in-memory batches), epochs paired with the hand loop's."""
    clock = _PairedEpochs(_hand_sides(user_loader=False))
    with tempfile.TemporaryDirectory() as tmp:
        run(CONFIG, store=Store(f"{tmp}/bench.db"), callbacks=[clock])
    return clock.times


def paired_fit_dataloader() -> dict[str, list[tuple[float, float]]] | None:
    """``trainlab.fit`` of the same model on a user's DataLoader, epochs paired likewise."""
    import trainlab

    fit = getattr(trainlab, "fit", None)
    if fit is None:
        return None
    clock = _PairedEpochs(_hand_sides(user_loader=True))
    s = setup(load_config(CONFIG))
    with tempfile.TemporaryDirectory() as tmp:
        fit(
            s.model,
            _dataloader(s),
            (s.data.x_val, s.data.y_val),
            optimizer="sgd",
            lr=0.1,
            momentum=0.9,
            epochs=EPOCHS,
            store=Store(f"{tmp}/b.db"),
            callbacks=[clock],
        )
    return clock.times


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
    title: str, bases: dict[str, list[tuple[float, float]]], ours: list[tuple[float, float]], goal: float, unit: str
) -> None:
    """One table: for each baseline and clock, the median time of each side, the median of the
    per-pair ratios (ours / base) and the ratio of the totals. The goal (of the median CPU-time
    ratio) applies to every baseline."""
    print(f"\n{title}  (goal ≤ {goal:.2f}; {len(ours)} pairs of {unit})")
    print(f"{'':24s} {'base s':>9s} {'ours s':>9s} {'median ratio':>13s} {'ratio of sums':>14s}")
    for label, base in bases.items():
        for i, clock in enumerate(("wall", "cpu")):
            b, o = [t[i] for t in base], [t[i] for t in ours]
            median = statistics.median(x / y for x, y in zip(o, b))
            row = f"{statistics.median(b):9.4f} {statistics.median(o):9.4f} {median:13.3f} {sum(o) / sum(b):14.3f}"
            print(f"{label + ' ' + clock:24s} {row}")


def _pooled(runs: list[dict[str, list[tuple[float, float]]]]) -> dict[str, list[tuple[float, float]]]:
    """The epochs of every run, the first of each left out (first-epoch costs: the batch
    iterator's first permutation, allocator warm-up)."""
    return {name: [t for times in runs for t in times[name][1:]] for name in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each loop (each gives 9 paired epochs)")
    parser.add_argument("--skip-process", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    paired_trainer()  # warm-up: first-call costs belong to neither side
    mem = _pooled([paired_trainer() for _ in range(args.repeats)])
    title = f"loop, in-memory batches: {EPOCHS} epochs of the quickstart MLP on MNIST-1D"
    _report(title, {SAME: mem[SAME], BARE: mem[BARE]}, mem[OURS], 1.03, "epochs")
    first = paired_fit_dataloader()
    if first is None:
        print("\nloop, a user's DataLoader: skipped (this trainlab has no trainlab.fit)")
    else:
        dl = _pooled([paired_fit_dataloader() for _ in range(args.repeats)])  # type: ignore[misc]
        title = "loop, a user's DataLoader (trainlab.fit)"
        _report(title, {SAME: dl[SAME], BARE: dl[BARE]}, dl[OURS], 1.03, "epochs")
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
            "processes",
        )


if __name__ == "__main__":
    main()
