"""Checkpoints: everything a run needs to continue bit for bit, written atomically.

A checkpoint holds the model, optimizer and schedule states, the step and epoch, the
batch iterator's position (generator state at the epoch start + batches served), the
training history, the callbacks' states and every random number generator state
(Python, NumPy, torch, every CUDA device's when CUDA is in use, the augmentation
generator). It is written to a temporary file,
fsynced and renamed into place, so a crash leaves the last good checkpoint.

The last two are kept: ``checkpoint.pt`` and, renamed from it before each write,
``checkpoint.prev.pt``. :func:`load_latest` reads the newest one that loads and passes the
caller's check, and says why it skipped a newer one (damaged, truncated, empty, missing, or
another run's), so a resume falls back to the previous checkpoint instead of failing.
Loading uses ``torch.load(weights_only=True)``: only tensors and plain containers, never
arbitrary pickled objects.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator
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
        # every CUDA device's generator, once CUDA is in use (dropout masks on the GPU come from it)
        **(
            {"cuda": torch.cuda.get_rng_state_all()}
            if torch.cuda.is_available() and torch.cuda.is_initialized()
            else {}
        ),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    version, mt, gauss = state["python"]
    random.setstate((version, tuple(mt), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        states = state["cuda"][: torch.cuda.device_count()]
        torch.cuda.set_rng_state_all(states)


KEYS = (
    "model",
    "optimizer",
    "step",
    "epoch",
    "batches",
    "aug_gen",
    "history",
    "window",
    "best",
    "callbacks",
    "rng",
)  # what a resume reads


def previous_path(path: str | Path) -> Path:
    """Where the checkpoint before ``path`` is kept: ``checkpoint.pt`` -> ``checkpoint.prev.pt``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def save_checkpoint(path: str | Path, state: dict[str, Any], *, keep_previous: bool = True) -> Path:
    """Write ``state`` (plus the global RNG states) atomically; the checkpoint it replaces is
    kept as :func:`previous_path`. The old file is hard-linked there (no copy), so ``path``
    never goes missing: a reader, or a kill at any instant, sees the old or the new file."""
    path = Path(path)
    if keep_previous and path.is_file():
        _set_aside(path, previous_path(path))
    return atomic_torch_save(path, {**state, "rng": rng_state()})


def _set_aside(path: Path, previous: Path) -> None:
    """Make ``previous`` the file now at ``path`` while ``path`` stays in place: a hard link
    renamed over ``previous`` (both steps atomic); a rename where links are not supported."""
    link = previous.with_name(previous.name + ".link")
    try:
        link.unlink(missing_ok=True)
        os.link(path, link)
    except OSError:
        os.replace(path, previous)
        return
    os.replace(link, previous)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    return torch_load(path)


def _problem(
    path: Path, check: Callable[[dict[str, Any]], str | None] | None
) -> tuple[dict[str, Any] | None, str | None]:
    """(state, None) for a usable checkpoint, else (None, why not: a phrase after "is")."""
    if not path.is_file():
        return None, "missing"
    if path.stat().st_size == 0:
        return None, "empty (0 bytes)"
    try:
        state = torch_load(path)
    except Exception as err:  # damaged, truncated, not a torch file, or Python objects refused
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        return None, f"damaged or truncated ({reason[:160]})"
    if not isinstance(state, dict) or any(k not in state for k in KEYS):
        return None, "not a trainlab checkpoint"
    why = check(state) if check is not None else None
    return (None, why) if why else (state, None)


def load_latest(
    path: str | Path, check: Callable[[dict[str, Any]], str | None] | None = None
) -> Iterator[tuple[Path, dict[str, Any], list[str]]]:
    """The usable checkpoints at ``path`` and before it, newest first, each as
    ``(file, state, why the newer ones were skipped)``; ``check(state)`` returns why a loaded
    state does not fit (a phrase after "is": "another run's checkpoint …") or None. Nothing
    usable: nothing yielded."""
    skipped: list[str] = []
    for candidate in (Path(path), previous_path(path)):
        state, why = _problem(candidate, check)
        if state is None:
            skipped.append(f"{candidate.name} is {why}")
            continue
        yield candidate, state, list(skipped)
