"""Data-parallel scaling on this machine: 2 processes × 1 thread (DDP, gloo) against
1 process × 2 threads, and the share of a DDP step spent communicating.

The model is one where compute dominates: an MLP (40 → 1024 → 1024 → 10, 1.1 M parameters)
on a global batch of 2048, so a step's arithmetic (~6·B·P ≈ 14 GFLOP) dwarfs the 4.4 MB of
gradients all-reduced. Each setting times full optimizer steps (forward, backward, all-reduce,
SGD step) — the fastest of several steps, after warm-up — on the same global batch.

The communication share is measured two ways in the 2-process run:
* exposed: (DDP step − the same step under ``no_sync()``, which skips the all-reduce) / DDP step —
  what communication adds to a step after DDP overlaps it with the backward pass;
* raw: one all-reduce of a buffer the size of all gradients / DDP step.

Run: ``python benchmarks/ddp_scaling.py``. The machine is shared and noisy (other jobs use the
same cores), so the figures move from run to run; read the ratios, not the milliseconds.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

GLOBAL_BATCH, STEPS, WARMUP = 2048, 12, 3


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(40, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10))


def _data(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 40, generator=g), torch.randint(0, 10, (n,), generator=g)


def _best_step(
    model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, sync=None, steps: int = 0
) -> float:
    """The fastest of ``steps`` (default STEPS) optimizer steps (seconds), after WARMUP untimed
    ones unless ``steps`` is given."""
    warmup = 0 if steps else WARMUP
    steps = steps or STEPS
    times = []
    for i in range(warmup + steps):
        if sync is not None:
            sync()
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        if sync is not None:
            sync()
        if i >= warmup:
            times.append(time.perf_counter() - t)
    return min(times)


def one_process(threads: int) -> float:
    torch.set_num_threads(threads)
    model = _model()
    x, y = _data(GLOBAL_BATCH)
    return _best_step(model, torch.optim.SGD(model.parameters(), lr=0.01), x, y)


def _rank(rank: int, world: int, init: str, out: str) -> None:
    from torch.nn.parallel import DistributedDataParallel

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    model = DistributedDataParallel(_model())
    x, y = _data(GLOBAL_BATCH)
    x, y = torch.tensor_split(x, world)[rank], torch.tensor_split(y, world)[rank]
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    barrier = dist.barrier
    # DDP steps and the same steps under no_sync() (no all-reduce: each rank keeps its own
    # gradient), interleaved so that both see the same load from the rest of the machine
    ddp_times, local_times = [], []
    for i in range(WARMUP + STEPS):
        ddp_t = _best_step(model, opt, x, y, sync=barrier, steps=1)
        with model.no_sync():
            local_t = _best_step(model, opt, x, y, sync=barrier, steps=1)
        if i >= WARMUP:
            ddp_times.append(ddp_t)
            local_times.append(local_t)
    ddp, local = min(ddp_times), min(local_times)
    flat = torch.zeros(sum(p.numel() for p in model.parameters()))
    times = []
    for i in range(WARMUP + STEPS):
        barrier()
        t = time.perf_counter()
        dist.all_reduce(flat)
        if i >= WARMUP:
            times.append(time.perf_counter() - t)
    if rank == 0:
        Path(out).write_text(f"{ddp} {local} {min(times)}")
    dist.destroy_process_group()


def two_processes() -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "times")
        mp.spawn(_rank, args=(2, f"file://{tmp}/rdzv", out), nprocs=2)
        ddp, local, allreduce = map(float, Path(out).read_text().split())
    return ddp, local, allreduce


def main(rounds: int = 3) -> None:
    params = sum(p.numel() for p in _model().parameters())
    print(f"DDP scaling: MLP 40-1024-1024-10 ({params / 1e6:.2f} M parameters), global batch {GLOBAL_BATCH}, SGD")
    print(
        f"cores: {os.cpu_count()}; per setting the fastest of {STEPS} steps after {WARMUP} warm-up, the median over "
        f"{rounds} rounds; a shared, noisy machine: read the ratios, and expect them to move"
    )
    results = []
    for _ in range(rounds):
        results.append((one_process(1), one_process(2), *two_processes()))
    one_1, one_2, ddp, local, allreduce = (statistics.median(col) for col in zip(*results))
    print(f"\n{'setting':44s} {'ms/step':>9s} {'speed-up vs 1×1':>16s}")
    for name, t in (
        ("1 process × 1 thread", one_1),
        ("1 process × 2 threads", one_2),
        ("2 processes × 1 thread (DDP, gloo)", ddp),
    ):
        print(f"{name:44s} {t * 1e3:9.1f} {one_1 / t:16.2f}")
    print(f"\n2 processes × 1 thread vs 1 process × 2 threads: {one_2 / ddp:.2f}× the speed")
    exposed = (ddp - local) / ddp
    below = " (negative: smaller than the machine's noise)" if exposed < 0 else ""
    print(
        f"communication, exposed: (DDP step {ddp * 1e3:.1f} ms − step without all-reduce {local * 1e3:.1f} ms) / DDP step = {exposed:+.1%}{below}"
    )
    print(
        f"communication, raw: one all-reduce of {params * 4 / 1e6:.1f} MB of gradients {allreduce * 1e3:.1f} ms = {allreduce / ddp:.1%} of a DDP step"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
