"""Gradient clipping (Pascanu, Mikolov & Bengio, ICML 2013); notes 000 §7.2.4 "梯度截断".

Both work in place on ``p.grad`` and skip parameters whose grad is None. Clip the *unscaled*
gradients: under AMP call ``scaler.unscale_(optimizer)`` first (pytorch/examples #1196).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import Tensor

Params = Tensor | Iterable[Tensor]


def clip_grad_value_(params: Params, clip_value: float) -> None:
    """Clip by value: g ← max(min(g, b), a) element-wise, with b = clip_value, a = −b.

    The notes allow any interval [a, b]; a symmetric one is what torch and Keras offer.
    Equals ``torch.nn.utils.clip_grad_value_``.
    """
    if isinstance(clip_value, bool) or not isinstance(clip_value, (int, float)) or not 0 < clip_value < math.inf:
        raise ValueError(f"clip_value must be a finite number > 0, got {clip_value!r}")
    for grads in _grads_by_device_and_dtype(params):
        torch._foreach_clamp_min_(grads, -clip_value)
        torch._foreach_clamp_max_(grads, clip_value)


def clip_grad_norm_(
    params: Params, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False
) -> Tensor:
    """Clip by norm: if ‖g‖ > b, g ← (b / ‖g‖) g; returns ‖g‖ *before* clipping.

    ‖g‖ is the global p-norm of all gradients together, as if concatenated into one vector
    (``norm_type=inf``: the largest |g|). The scale is min(1, b / (‖g‖ + 1e-6)) as in torch:
    the 1e-6, absent from the notes, keeps a zero gradient finite and leaves the clipped norm a
    hair under b. Equals ``torch.nn.utils.clip_grad_norm_`` (result and clipped gradients).

    ``error_if_nonfinite=True`` raises RuntimeError if the norm is nan or inf; otherwise a
    nonfinite norm makes the gradients nan, and the caller can see it in the returned norm.
    """
    if isinstance(max_norm, bool) or not isinstance(max_norm, (int, float)) or not 0 < max_norm < math.inf:
        raise ValueError(f"max_norm must be a finite number > 0, got {max_norm!r}")
    norm_type = float(norm_type)
    if not norm_type > 0:
        raise ValueError(f"norm_type must be > 0 (2.0 for the Euclidean norm, inf for max |g|), got {norm_type!r}")
    batches = _grads_by_device_and_dtype(params)
    if not batches:
        return torch.tensor(0.0)
    device = batches[0][0].device
    norms = [n.to(device) for grads in batches for n in torch._foreach_norm(grads, norm_type)]
    total = torch.linalg.vector_norm(torch.stack(norms), norm_type)
    if error_if_nonfinite and not torch.isfinite(total):
        raise RuntimeError(
            f"the total norm of order {norm_type} of the gradients is {total.item()}, so they cannot be clipped; "
            "set error_if_nonfinite=False to clip anyway (the gradients become nan)"
        )
    scale = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for grads in batches:
        # multiplying by a scale of 1 costs a pass but no device sync to test it
        torch._foreach_mul_(grads, scale.to(grads[0].device))
    return total


def _grads_by_device_and_dtype(params: Params) -> list[list[Tensor]]:
    """The existing gradients, in lists that one foreach op can take."""
    if isinstance(params, Tensor):
        params = [params]
    batches: dict[tuple[torch.device, torch.dtype], list[Tensor]] = {}
    for p in params:
        if p.grad is not None:
            batches.setdefault((p.grad.device, p.grad.dtype), []).append(p.grad)
    return list(batches.values())
