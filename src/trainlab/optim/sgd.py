"""Stochastic gradient descent with momentum and Nesterov momentum (notes 000 §7.2.1, §7.2.4)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from trainlab.optim import _checks as check
from trainlab.optim._base import MultiTensorOptimizer, ParamBatch, Tensors


class SGD(MultiTensorOptimizer):
    r"""Mini-batch SGD, optionally with momentum or Nesterov momentum.

    The notes' rules (000 §7.2.1 and §7.2.4), with g_t(θ) the mini-batch gradient at θ:

    - plain:    θ_t = θ_{t-1} − α g_t
    - momentum: Δθ_t = ρ Δθ_{t-1} − α g_t(θ_{t-1}),                 θ_t = θ_{t-1} + Δθ_t
    - Nesterov: Δθ_t = ρ Δθ_{t-1} − α g_t(θ_{t-1} + ρ Δθ_{t-1}),    θ_t = θ_{t-1} + Δθ_t

    (Polyak 1964; Nesterov 1983; Sutskever et al., ICML 2013.) The notes recommend ρ = 0.9.

    What is computed is torch's form, which keeps the gradient sum b rather than the step Δθ:

        b_t = ρ b_{t-1} + (1 − dampening) g_t     (b_1 = g_1)
        θ_t = θ_{t-1} − α b_t                     (momentum)
        θ_t = θ_{t-1} − α (g_t + ρ b_t)           (Nesterov, g_t taken at the stored θ)

    With a constant α and dampening = 0 both are the same trajectory: Δθ_t = −α b_t. For
    Nesterov the stored parameter is the look-ahead point φ_t = θ_t + ρ Δθ_t, at which the
    gradient is evaluated anyway (Bengio et al. 2013;
    tests/optim/test_optimizer_api.py::test_nesterov_of_the_notes_is_torchs_nesterov checks it
    step by step). The two conventions differ when α changes during training: the notes (and Keras,
    whose velocity is ``v = ρ v − α g``) fold each gradient in with the α of its own step, torch
    and trainlab multiply the whole sum by the current α, so a schedule's change of α also
    rescales the remembered velocity at once.

    ``weight_decay`` λ adds λθ to the gradient (L2, notes 003 §L2): for SGD this equals the
    notes' decoupled θ_t = (1 − β)θ_{t-1} − α g_t with β = αλ (000 §7.7.2).

    Defaults equal ``torch.optim.SGD``'s. ``fused=None`` uses ``torch._fused_sgd_`` (one pass
    per tensor) except for float16/bfloat16 on CPU, where torch 2.12-2.13's kernel leaves most
    elements un-updated (pytorch#191763); ``fused=False`` forces trainlab's multi-tensor path.
    """

    _counts_steps = False

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        fused: bool | None = None,
    ) -> None:
        defaults = dict(
            lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
            nesterov=nesterov, maximize=maximize, fused=fused,
        )  # fmt: skip
        super().__init__(params, defaults)

    def _check(self, group: dict[str, Any]) -> None:
        check.at_least("lr", group["lr"])
        check.decay_rate("momentum", group["momentum"])
        check.unit_interval("dampening", group["dampening"])
        check.at_least("weight_decay", group["weight_decay"])
        check.flag("nesterov", group["nesterov"])
        check.flag("maximize", group["maximize"])
        momentum, dampening = torch.as_tensor(group["momentum"]), torch.as_tensor(group["dampening"])
        if group["nesterov"] and (bool((momentum <= 0).any()) or bool((dampening != 0).any())):
            raise ValueError(
                "nesterov=True needs momentum in (0, 1) and dampening = 0, "
                f"got momentum={group['momentum']!r}, dampening={group['dampening']!r}"
            )
        self._check_fused(group)

    def _fused_matches(self, group: dict[str, Any]) -> bool:
        return True  # torch's kernel implements every option of this rule

    def _use_fused(self, group: dict[str, Any], batch: ParamBatch) -> bool:
        # torch 2.12-2.13's CPU kernel skips the vectorized part of float16/bfloat16 updates
        # (pytorch#191763, fixed by pytorch#192545): the multi-tensor path is right there.
        p = batch.params[0]
        low_precision_cpu = p.device.type == "cpu" and p.dtype in (torch.float16, torch.bfloat16)
        return not low_precision_cpu and super()._use_fused(group, batch)

    def _fused(self, group: dict[str, Any], batch: ParamBatch) -> bool:
        if not self._use_fused(group, batch):
            return False
        if group["momentum"] == 0:
            self._fused_call(group, batch, [], first=False)
            return True
        # The kernel starts buffers (b_1 = g_1) only for a whole list at once, so parameters
        # without a buffer yet (new ones, or ones that had no grad before) go in their own call.
        fresh = [i for i, s in enumerate(batch.states) if "momentum_buffer" not in s]
        if len(fresh) in (0, len(batch.params)):
            parts = [(batch, bool(fresh))]
        else:
            old = sorted(set(range(len(batch.params))) - set(fresh))
            parts = [(_select(batch, old), False), (_select(batch, fresh), True)]
        for part, first in parts:
            if first:
                for p, state in zip(part.params, part.states):
                    state["momentum_buffer"] = torch.empty_like(p, memory_format=torch.preserve_format)
            self._fused_call(group, part, [s["momentum_buffer"] for s in part.states], first)
        return True

    @staticmethod
    def _fused_call(group: dict[str, Any], batch: ParamBatch, buffers: list[Tensor], first: bool) -> None:
        torch._fused_sgd_(
            batch.params, batch.grads, buffers,
            weight_decay=group["weight_decay"], momentum=group["momentum"], lr=group["lr"],
            dampening=group["dampening"], nesterov=group["nesterov"], maximize=group["maximize"],
            is_first_step=first,
        )  # fmt: skip

    def _update(self, group: dict[str, Any], tile: ParamBatch) -> None:
        grads: Tensors = tile.grads
        momentum = group["momentum"]
        if momentum != 0:
            buffers = _momentum_buffers(tile.states, grads, momentum, group["dampening"])
            grads = torch._foreach_add(grads, buffers, alpha=momentum) if group["nesterov"] else buffers
        torch._foreach_add_(tile.params, grads, alpha=-group["lr"])


def _momentum_buffers(states: list[dict[str, Any]], grads: Tensors, momentum: float, dampening: float) -> list[Tensor]:
    """b_t = ρ b_{t-1} + (1 − dampening) g_t, with b_1 = g_1 (torch's start: no dampening)."""
    old = [(s["momentum_buffer"], g) for s, g in zip(states, grads) if "momentum_buffer" in s]
    if old:
        buffers, old_grads = map(list, zip(*old))
        torch._foreach_mul_(buffers, momentum)
        torch._foreach_add_(buffers, old_grads, alpha=1.0 - dampening)
    for state, g in zip(states, grads):
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = g.clone(memory_format=torch.preserve_format)
    return [s["momentum_buffer"] for s in states]


def _select(batch: ParamBatch, index: list[int]) -> ParamBatch:
    return ParamBatch(
        [batch.params[i] for i in index], [batch.grads[i] for i in index], [batch.states[i] for i in index], []
    )
