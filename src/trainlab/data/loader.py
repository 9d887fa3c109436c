"""Mini-batches from in-memory tensors, shuffled by a generator of their own.

For data that fits in memory a ``DataLoader`` with workers only adds overhead: this iterator
draws one permutation per epoch with its own ``torch.Generator`` and slices the tensors
(``index_select``). Its position is a small state — the generator state at the start of the
epoch plus the number of batches already served — so a checkpoint taken mid-epoch resumes
with exactly the batches an uninterrupted run would have seen.

The notes (000 §7.1, 002) call this mini-batch gradient descent: each epoch the training
set is shuffled and cut into batches of K samples; ``drop_last`` drops the final short batch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch


class BatchIterator:
    """Iterate over ``(x[idx], y[idx])`` batches; each ``iter()`` is one epoch.

    Example::

        batches = BatchIterator(x, y, batch_size=128, seed=0)
        for epoch in range(3):
            for xb, yb in batches:
                ...
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int = 0,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} samples but y has {len(y)}")
        if drop_last and batch_size > len(x):
            raise ValueError(f"batch_size {batch_size} exceeds the {len(x)} samples and drop_last=True leaves no batch")
        self.x, self.y = x, y
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.generator = torch.Generator().manual_seed(seed)
        self._epoch_start_state = self.generator.get_state()
        self._served = 0  # batches served in the current epoch
        self._perm: torch.Tensor | None = None

    def __len__(self) -> int:
        n = len(self.x)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _new_epoch(self) -> None:
        self._epoch_start_state = self.generator.get_state()
        self._perm = torch.randperm(len(self.x), generator=self.generator) if self.shuffle else None
        self._served = 0

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if (self._perm is None and self.shuffle) or self._served >= len(self):
            self._new_epoch()
        while self._served < len(self):
            start = self._served * self.batch_size
            stop = min(start + self.batch_size, len(self.x))
            self._served += 1
            if self._perm is None:
                yield self.x[start:stop], self.y[start:stop]
            else:
                idx = self._perm[start:stop]
                yield self.x.index_select(0, idx), self.y.index_select(0, idx)
        # the next iter() starts a new epoch
        self._perm = None if self.shuffle else self._perm

    @property
    def position(self) -> int:
        """Batches already served in the current epoch."""
        return self._served

    def state_dict(self) -> dict[str, Any]:
        return {"epoch_start_state": self._epoch_start_state.clone(), "served": self._served}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Rewind to the saved epoch start, redraw its permutation, skip the served batches."""
        self.generator.set_state(state["epoch_start_state"])
        self._new_epoch()
        self._served = int(state["served"])
