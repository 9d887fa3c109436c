"""Argument checks shared by the optimizers: each error names the argument, the value and the range.

A hyperparameter may also be a 1-D tensor of per-member values (a population's ``[K]``
values, :mod:`trainlab.train.population`): each element is checked, named ``lr[k]``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any


def _per_member(check: Callable[[str, Any], None]) -> Callable[[str, Any], None]:
    """Apply ``check`` to each element of a 1-D tensor value, naming the element."""

    @functools.wraps(check)
    def wrapper(name: str, value: Any, *args: Any) -> None:
        if hasattr(value, "dim") and hasattr(value, "tolist"):
            if value.dim() != 1:
                raise ValueError(
                    f"{name} as a tensor holds one value per member (shape [K]), got shape {tuple(value.shape)}"
                )
            for k, v in enumerate(value.tolist()):
                check(f"{name}[{k}]", v, *args)
            return
        check(name, value, *args)

    return wrapper


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


@_per_member
def at_least(name: str, value: Any, low: float = 0.0) -> None:
    """``low <= value``: learning rates, weight decay, accumulator start values."""
    if _number(name, value) < low:
        raise ValueError(f"{name} must be >= {low:g}, got {value!r}")


@_per_member
def positive(name: str, value: Any) -> None:
    """``0 < value``: eps, which keeps a division finite."""
    if _number(name, value) <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")


@_per_member
def decay_rate(name: str, value: Any) -> None:
    """``0 <= value < 1``: a moving-average decay (beta, rho, alpha, momentum). 1 would never forget."""
    if not 0.0 <= _number(name, value) < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")


@_per_member
def unit_interval(name: str, value: Any) -> None:
    """``0 <= value <= 1``: dampening."""
    if not 0.0 <= _number(name, value) <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")


def betas(value: Any) -> None:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), each in [0, 1), got {value!r}")
    decay_rate("betas[0]", value[0])
    decay_rate("betas[1]", value[1])


def flag(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
