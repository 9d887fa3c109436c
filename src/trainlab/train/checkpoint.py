"""Checkpoints: everything a run needs to continue bit for bit, written atomically.

A checkpoint holds the model, optimizer and schedule states, the step and epoch, the
batch iterator's position (generator state at the epoch start + batches served), the
training history, the callbacks' states and every random number generator state
(Python, NumPy, torch, the augmentation generator). It is written to a temporary file,
fsynced and renamed over the previous one, so a crash leaves the last good checkpoint.
Loading uses ``torch.load(weights_only=True)``: only tensors and plain containers, never
arbitrary pickled objects.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainlab._io import atomic_torch_save, torch_load


def seed_everything(seed: int) -> None:
    """One seed for Python, NumPy and torch (the data order has its own generator)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    version, mt, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    return {
        "python": [version, list(mt), gauss],
        "numpy": [name, torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    version, mt, gauss = state["python"]
    random.setstate((version, tuple(mt), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (plus the global RNG states) atomically."""
    return atomic_torch_save(path, {**state, "rng": rng_state()})


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    return torch_load(path)
