"""The learning-rate range test (Smith 2017, "Cyclical Learning Rates for Training Neural Networks", §3.3).

Train for ``steps`` mini-batches while the learning rate grows exponentially,

    lr_i = start_lr · (end_lr / start_lr)^(i / (steps − 1)),   i = 0 … steps − 1

record the loss of each batch, smooth it with a bias-corrected exponential moving average
(the form fastai uses; Adam's bias correction, ``000_*.txt`` §7.2.4)

    m_i = β m_{i−1} + (1 − β) L_i,  m_{−1} = 0,   L̂_i = m_i / (1 − β^{i+1})

and stop once L̂_i > ``diverge_factor`` · min_{j≤i} L̂_j or the loss is not finite. The
suggested learning rate is where L̂ falls fastest against log lr (the steepest negative slope,
``np.gradient`` of L̂ over log10 lr, before the minimum of L̂); ``min_loss_lr`` is the lr of
the smallest smoothed loss — the common rule "one tenth of it" is ``min_loss_lr / 10``.
Smith's original test grows the lr *linearly* over an epoch; the exponential sweep (Howard &
Gugger, fastai) covers many decades in few steps. Keras has no built-in range test.

The model, its gradients, the optimizer (state and learning rates), the model's train/eval
mode and the global torch RNG are restored afterwards: the test leaves no trace (tested bit for bit).
A suggestion is always returned, never None, and NaN losses do not break it (Lightning
#10557, #21141): if fewer than three finite points exist, it falls back to ``min_loss_lr / 10``.

Example::

    result = lr_find(model, loader, torch.optim.SGD(model.parameters(), lr=0.1))
    result.suggested_lr
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class LRFindResult:
    """The range test's record. ``losses`` are per batch; ``smoothed`` the bias-corrected EMA."""

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    suggested_lr: float
    min_loss_lr: float
    stopped_early: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "lrs": self.lrs.tolist(),
            "losses": self.losses.tolist(),
            "smoothed": self.smoothed.tolist(),
            "suggested_lr": self.suggested_lr,
            "min_loss_lr": self.min_loss_lr,
            "stopped_early": self.stopped_early,
        }


def exponential_lrs(start_lr: float, end_lr: float, steps: int) -> np.ndarray:
    """``start_lr · (end_lr/start_lr)^(i/(steps−1))`` for i = 0 … steps − 1."""
    return start_lr * (end_lr / start_lr) ** (np.arange(steps) / max(steps - 1, 1))


def smooth_losses(losses: np.ndarray, beta: float) -> np.ndarray:
    """Bias-corrected EMA ``m_i / (1 − β^{i+1})``; a non-finite loss leaves the average as it was
    (its smoothed value is NaN) so one spike of NaN does not poison the rest."""
    out = np.full(len(losses), np.nan)
    m, n = 0.0, 0
    for i, loss in enumerate(losses):
        if not math.isfinite(loss):
            continue
        n += 1
        m = beta * m + (1 - beta) * loss
        out[i] = m / (1 - beta**n)
    return out


def suggest_lr(lrs: np.ndarray, smoothed: np.ndarray) -> tuple[float, float]:
    """(steepest-descent lr, min-loss lr) of a range test; always finite numbers."""
    finite = np.isfinite(smoothed)
    if not finite.any():
        return float(lrs[0]), float(lrs[0])
    lr_f, loss_f = lrs[finite], smoothed[finite]
    i_min = int(np.argmin(loss_f))
    min_loss_lr = float(lr_f[i_min])
    if i_min < 2:  # too few points before the minimum for a slope
        return min_loss_lr / 10, min_loss_lr
    slope = np.gradient(loss_f[: i_min + 1], np.log10(lr_f[: i_min + 1]))
    return float(lr_f[int(np.argmin(slope))]), min_loss_lr


def _batches(data: Any) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless batches: a ``(x, y)`` pair of tensors is one full batch; any other iterable of
    batches is re-iterated when exhausted."""
    if isinstance(data, tuple) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        while True:
            yield data
    if not isinstance(data, Iterable):
        raise ValueError(
            f"data must be a (x, y) pair of tensors or an iterable of (x, y) batches, got {type(data).__name__}"
        )
    while True:
        empty = True
        for batch in data:
            empty = False
            yield batch[0], batch[1]
        if empty:
            raise ValueError("data yielded no batches")


def lr_find(
    model: nn.Module,
    data: Any,
    optimizer: torch.optim.Optimizer,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    steps: int = 100,
    *,
    loss_fn: LossFn = nn.functional.cross_entropy,
    beta: float = 0.98,
    diverge_factor: float = 4.0,
) -> LRFindResult:
    """Run the exponential learning-rate range test and restore everything afterwards.

    Args:
        model, optimizer: trained for ``steps`` batches, then restored exactly.
        data: a ``(x, y)`` pair of tensors (one full batch per step) or an iterable of
            ``(x, y)`` batches (a DataLoader, ``trainlab.data.BatchIterator``), cycled.
        start_lr, end_lr: the sweep's ends, 0 < start_lr < end_lr.
        steps: number of batches (>= 2).
        loss_fn: ``(outputs, targets) -> scalar``.
        beta: EMA factor in [0, 1); 0 = no smoothing.
        diverge_factor: stop once the smoothed loss exceeds this multiple of its minimum (> 1).
    """
    if not (math.isfinite(start_lr) and start_lr > 0):
        raise ValueError(f"start_lr must be a positive number, got {start_lr!r}")
    if not (math.isfinite(end_lr) and end_lr > start_lr):
        raise ValueError(f"end_lr must be a number > start_lr = {start_lr}, got {end_lr!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise ValueError(f"steps must be an integer >= 2, got {steps!r}")
    if not 0 <= beta < 1:
        raise ValueError(f"beta must be in [0, 1), got {beta!r}")
    if not diverge_factor > 1:
        raise ValueError(f"diverge_factor must be > 1, got {diverge_factor!r}")

    lrs = exponential_lrs(start_lr, end_lr, steps)
    model_state = copy.deepcopy(model.state_dict())
    optim_state = copy.deepcopy(optimizer.state_dict())
    rng_state = torch.get_rng_state()
    was_training = model.training
    params = list(model.parameters())
    grads = [None if p.grad is None else p.grad.detach().clone() for p in params]
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    losses: list[float] = []
    stopped_early = False
    try:
        model.train()
        best, m = math.inf, 0.0
        batches = _batches(data)
        for i, lr in enumerate(lrs):
            for group in optimizer.param_groups:
                group["lr"] = float(lr)
            x, y = next(batches)
            loss = loss_fn(model(x.to(device)), y.to(device))
            value = float(loss.detach())
            losses.append(value)
            if not math.isfinite(value):
                stopped_early = True
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            m = beta * m + (1 - beta) * value
            smoothed = m / (1 - beta ** (i + 1))
            best = min(best, smoothed)
            if smoothed > diverge_factor * best and i < steps - 1:
                stopped_early = True
                break
    finally:
        model.load_state_dict(model_state)
        optimizer.load_state_dict(optim_state)
        torch.set_rng_state(rng_state)
        model.train(was_training)
        for p, g in zip(params, grads):
            p.grad = g

    tried = lrs[: len(losses)]
    raw = np.asarray(losses, dtype=np.float64)
    smoothed_all = smooth_losses(raw, beta)
    suggested, min_loss_lr = suggest_lr(tried, smoothed_all)
    return LRFindResult(tried, raw, smoothed_all, suggested, min_loss_lr, stopped_early)
