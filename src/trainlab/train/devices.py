"""Where a run trains and in which precision: ``train.device`` and ``train.precision``.

``device = "auto"`` (the default) picks CUDA, then Apple's MPS, then the CPU. A device that
is not there — ``"cuda"`` without CUDA, ``"cuda:3"`` on a one-GPU machine, ``"mps"`` off a
Mac, a misspelt or non-training type (``"bogus"``, ``"meta"``) — is one ``ConfigError``
naming the key (exit status 2), raised when the run starts: a stored config that names a GPU
can still be shown and reported on a machine without one.

``precision``:
  ``"32"``        float32 everywhere (the default).
  ``"bf16"``      autocast to bfloat16 (Micikevicius et al. 2018's mixed precision with
                  bfloat16's 8-bit exponent: no loss scaling needed). CUDA (Ampere+) and CPU.
  ``"16-mixed"``  autocast to float16 with dynamic loss scaling (``torch.amp.GradScaler``):
                  the loss is multiplied by S before backward, gradients divided by S before
                  clipping and the step; a step whose gradients overflow is skipped and S
                  halved, S doubles after 2000 good steps. The scaler reads one flag from the
                  device per step (its skip decision).

Parameters and optimizer state stay float32 in every mode ("master weights").
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch

from trainlab.errors import ConfigError

DEVICE_TYPES = ("cpu", "cuda", "mps")
PRECISIONS = ("32", "bf16", "16-mixed")
_DTYPES = {"bf16": torch.bfloat16, "16-mixed": torch.float16}


def check_device_name(name: str) -> str:
    """The syntax check done when a config is read: ``auto`` or a device torch can parse
    whose type trains (cpu, cuda, mps); availability is checked by :func:`resolve_device`."""
    if name == "auto":
        return name
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ValueError(f"train.device: '{name}' is not a device; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type not in DEVICE_TYPES:
        raise ValueError(f"train.device: '{name}' cannot train a model; use auto, cpu, cuda, cuda:N or mps")
    return name


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(name: str) -> torch.device:
    """The ``torch.device`` for ``train.device``: ``auto`` is cuda, then mps, then cpu; a device
    this machine lacks is a ConfigError."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if _mps_available() else "cpu")
    try:
        check_device_name(name)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch is built without CUDA" if torch.version.cuda is None else "no CUDA device is visible"
            raise ConfigError(f"train.device = '{name}' but {why}; use train.device=auto or cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"train.device = '{name}' but this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    if device.type == "mps" and not _mps_available():
        raise ConfigError(f"train.device = '{name}' but MPS is not available here; use train.device=auto or cpu")
    return device


def autocast(device: torch.device, precision: str) -> AbstractContextManager:
    """The forward pass's context: ``torch.autocast`` for bf16 / 16-mixed, nothing for 32."""
    if precision == "32":
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=_DTYPES[precision])


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler | None:
    """A ``GradScaler`` for float16 (``16-mixed``); None otherwise (bf16 needs no scaling)."""
    if precision != "16-mixed":
        return None
    return torch.amp.GradScaler(device.type)


def check_precision(device: torch.device, precision: str) -> None:
    """bf16 needs a device that computes in it (CUDA with compute capability ≥ 8, or the CPU)."""
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(
            f"train.precision = 'bf16' but {torch.cuda.get_device_name(device)} has no bfloat16; use '16-mixed'"
        )
