"""Batch iteration over in-memory tensors: trainlab's BatchIterator vs torch's DataLoader.

Both shuffle every epoch and yield the same batch sizes over MNIST-1D-sized and larger
tensors. DataLoader is measured with its best settings for in-memory data (no workers,
TensorDataset, and also a BatchSampler fetching whole batches at once).

    python benchmarks/loader.py
"""

from __future__ import annotations

import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset

from _timing import best_time, print_ratios
from trainlab.data import BatchIterator


def epoch(iterable) -> None:
    for xb, yb in iterable:
        pass


def main() -> None:
    torch.set_num_threads(1)
    for n, d, bs in [(3600, 40, 128), (50_000, 3 * 32 * 32, 256)]:
        x, y = torch.randn(n, d), torch.randint(0, 10, (n,))
        ds = TensorDataset(x, y)
        g = torch.Generator().manual_seed(0)
        per_sample = DataLoader(ds, batch_size=bs, shuffle=True, generator=g)
        batched = DataLoader(
            ds, sampler=BatchSampler(RandomSampler(ds, generator=g), bs, drop_last=False), batch_size=None
        )
        ours = BatchIterator(x, y, bs, seed=0)
        reps = 5 if n < 10_000 else 2
        rows = {
            "trainlab BatchIterator": best_time(lambda: epoch(ours), reps),
            "DataLoader (batch sampler)": best_time(lambda: epoch(batched), reps),
            "DataLoader (default)": best_time(lambda: epoch(per_sample), reps),
        }
        print_ratios(f"one epoch, {n} samples x {d} features, batch {bs}", rows)


if __name__ == "__main__":
    main()
