"""Overhead of trainlab over hand-written PyTorch doing the same work. Two ratios:

1. **loop**: the Trainer's training loop against a hand-written loop in the same process —
   same model (the quickstart MLP), data, optimizer, batch order and per-epoch evaluation; the
   Trainer adds the schedule step, the NaN/inf check, batched metric logging to a SQLite store,
   checkpoints (at most every ``train.checkpoint_seconds``) and its callbacks. Measured for the
   in-memory batches and, where ``trainlab.fit`` exists, for a user's ``DataLoader``.
   Goal: ≤ 1.03.
2. **process**: a whole ``trainlab run`` of the quickstart (10 epochs) against a plain-torch
   script reading the same cached data file and doing the same work (10 epochs, per-epoch
   validation, a final test evaluation, the weights saved), each a fresh process.
   Goal: ≤ 1.15.

Timings on a shared machine are noisy: the sides are interleaved (a burst of load elsewhere
hits both), and each ratio is printed as the median of the per-pair ratios and as the ratio of
the minima; CPU time (one torch thread, so it is the process's own work) is printed beside
wall time.

    python benchmarks/loop_overhead.py [--repeats 7] [--skip-process]
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


def hand_written() -> tuple[float, float]:
    s = setup(load_config(CONFIG))
    model, opt, data = s.model, s.optimizer, s.data
    start = _clocks()
    for _ in range(EPOCHS):
        model.train()
        for xb, yb in s.batches:
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            F.cross_entropy(model(data.x_val), data.y_val).item()
    return _since(start)


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


def hand_written_dataloader() -> tuple[float, float]:
    s, loader = _dataloader()
    model, opt, data = s.model, s.optimizer, s.data
    start = _clocks()
    for _ in range(EPOCHS):
        model.train()
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            F.cross_entropy(model(data.x_val), data.y_val).item()
    return _since(start)


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


def _report(title: str, base: list[tuple[float, float]], ours: list[tuple[float, float]], goal: float) -> None:
    print(f"\n{title}  (goal ≤ {goal:.2f}; {len(base)} interleaved pairs)")
    print(f"{'':10s} {'base s':>9s} {'ours s':>9s} {'median ratio':>13s} {'ratio of minima':>16s}")
    for i, clock in enumerate(("wall", "cpu")):
        b, o = [t[i] for t in base], [t[i] for t in ours]
        median = statistics.median(x / y for x, y in zip(o, b))
        print(f"{clock:10s} {min(b):9.3f} {min(o):9.3f} {median:13.3f} {min(o) / min(b):16.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--skip-process", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    hand_written(), trainer()  # warm-up: first-call costs belong to neither side
    hand, ours, hand_dl, fit_dl = [], [], [], []
    for _ in range(args.repeats):  # interleaved, so a burst of load elsewhere hits both sides
        hand.append(hand_written())
        ours.append(trainer())
        t = fit_dataloader()
        if t is not None:
            hand_dl.append(hand_written_dataloader())
            fit_dl.append(t)
    _report(f"loop, in-memory batches: {EPOCHS} epochs of the quickstart MLP on MNIST-1D", hand, ours, 1.03)
    if fit_dl:
        _report("loop, a user's DataLoader (trainlab.fit)", hand_dl, fit_dl, 1.03)
    else:
        print("\nloop, a user's DataLoader: skipped (this trainlab has no trainlab.fit)")
    if not args.skip_process:
        plain, whole = [], []
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(max(3, args.repeats // 2)):
                p, w = whole_processes(Path(tmp))
                plain.append(p)
                whole.append(w)
        _report(
            f"whole process: `trainlab run` of the quickstart ({EPOCHS} epochs) vs a plain-torch script",
            plain,
            whole,
            1.15,
        )


if __name__ == "__main__":
    main()
