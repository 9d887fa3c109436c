"""Per-parameter adaptive learning rates: AdaGrad, RMSprop, AdaDelta (notes 000 §7.2.3).

Each divides the gradient by the root of an accumulated square G_t; they differ in ψ,
how G_t forgets: never (AdaGrad), exponentially (RMSprop), and AdaDelta also replaces α
by the root of the accumulated squared steps.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from trainlab.optim import _checks as check
from trainlab.optim._base import MultiTensorOptimizer, ParamBatch, root_with_eps

Params = Iterable[Tensor] | Iterable[dict[str, Any]]


class AdaGrad(MultiTensorOptimizer):
    r"""AdaGrad (Duchi, Hazan & Singer, JMLR 2011); notes 000 §7.2.3 "AdaGrad 算法".

    The notes' rule:

        G_t = Σ_{τ=1..t} g_τ ⊙ g_τ
        Δθ_t = −α / √(G_t + ε) ⊙ g_t                          (eps_inside_sqrt=True)

    torch's and the paper's rule, the default here, puts ε outside the root and adds a
    learning-rate decay and a starting value for G:

        G_t = G_0 + Σ g_τ ⊙ g_τ,     G_0 = initial_accumulator_value
        α_t = α / (1 + (t − 1) · lr_decay)
        Δθ_t = −α_t g_t / (√G_t + ε)                          (eps_inside_sqrt=False)

    ``weight_decay`` λ adds λθ to g before it is squared (L2). Defaults equal
    ``torch.optim.Adagrad``'s (α = 0.01, ε = 1e-10, G_0 = 0). Keras differs: ε = 1e-7 *inside*
    the root and G_0 = 0.1, lr = 0.001. The notes' caveat holds: G only grows, so the effective
    step α/√G_t shrinks towards zero and training can stall before the optimum.

    ``fused=None`` uses ``torch._fused_adagrad_`` when ``eps_inside_sqrt=False``.
    """

    _needs_step_values = True

    def __init__(
        self,
        params: Params,
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        *,
        eps_inside_sqrt: bool = False,
        maximize: bool = False,
        fused: bool | None = None,
    ) -> None:
        defaults = dict(
            lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, initial_accumulator_value=initial_accumulator_value,
            eps=eps, eps_inside_sqrt=eps_inside_sqrt, maximize=maximize, fused=fused,
        )  # fmt: skip
        super().__init__(params, defaults)

    def _check(self, group: dict[str, Any]) -> None:
        check.at_least("lr", group["lr"])
        check.at_least("lr_decay", group["lr_decay"])
        check.at_least("weight_decay", group["weight_decay"])
        check.at_least("initial_accumulator_value", group["initial_accumulator_value"])
        check.positive("eps", group["eps"])
        check.flag("eps_inside_sqrt", group["eps_inside_sqrt"])
        check.flag("maximize", group["maximize"])
        self._check_fused(group)

    def _fused_matches(self, group: dict[str, Any]) -> bool:
        return not group["eps_inside_sqrt"]

    def _fused(self, group: dict[str, Any], batch: ParamBatch) -> bool:
        if not self._use_fused(group, batch):
            return False
        torch._fused_adagrad_(
            batch.params, batch.grads, batch.buffer("sum", group["initial_accumulator_value"]), batch.step_tensors(),
            lr=group["lr"], lr_decay=group["lr_decay"], weight_decay=group["weight_decay"], eps=group["eps"],
            maximize=group["maximize"],
        )  # fmt: skip
        return True

    def _update(self, group: dict[str, Any], tile: ParamBatch) -> None:
        grads = tile.grads
        sums = tile.buffer("sum", group["initial_accumulator_value"])
        torch._foreach_addcmul_(sums, grads, grads)
        std = root_with_eps(sums, group["eps"], group["eps_inside_sqrt"])
        lr, decay = group["lr"], group["lr_decay"]
        torch._foreach_addcdiv_(tile.params, grads, std, [-lr / (1 + (t - 1) * decay) for t in tile.steps])


class RMSprop(MultiTensorOptimizer):
    r"""RMSprop (Tieleman & Hinton, 2012, lecture 6e); notes 000 §7.2.3 "RMSprop 算法".

    The notes' rule, with β the decay (``alpha`` here, torch's name):

        G_t = β G_{t-1} + (1 − β) g_t ⊙ g_t
        Δθ_t = −α / √(G_t + ε) ⊙ g_t                          (eps_inside_sqrt=True)

    torch's rule, the default: Δθ_t = −α g_t / (√G_t + ε). Options from torch (Graves 2013):

    - ``centered``: divide by the root of the *variance* estimate G_t − ḡ_t², where
      ḡ_t = β ḡ_{t-1} + (1 − β) g_t; ε goes outside (default) or inside that root.
    - ``momentum`` μ > 0: b_t = μ b_{t-1} + g_t / (√G_t + ε), θ_t = θ_{t-1} − α b_t.

    Defaults equal ``torch.optim.RMSprop``'s (α = 0.01, β = 0.99, ε = 1e-8). Hinton's lecture
    and Keras use β = 0.9 (Keras: lr = 0.001, ε = 1e-7 *inside* the root, like the notes).
    """

    def __init__(
        self,
        params: Params,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        *,
        eps_inside_sqrt: bool = False,
        maximize: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum, centered=centered,
            eps_inside_sqrt=eps_inside_sqrt, maximize=maximize,
        )  # fmt: skip
        super().__init__(params, defaults)

    def _check(self, group: dict[str, Any]) -> None:
        check.at_least("lr", group["lr"])
        check.decay_rate("alpha", group["alpha"])
        check.positive("eps", group["eps"])
        check.at_least("weight_decay", group["weight_decay"])
        check.decay_rate("momentum", group["momentum"])
        check.flag("centered", group["centered"])
        check.flag("eps_inside_sqrt", group["eps_inside_sqrt"])
        check.flag("maximize", group["maximize"])

    def _update(self, group: dict[str, Any], tile: ParamBatch) -> None:
        grads, alpha = tile.grads, group["alpha"]
        square_avg = tile.buffer("square_avg")
        torch._foreach_mul_(square_avg, alpha)
        torch._foreach_addcmul_(square_avg, grads, grads, value=1.0 - alpha)
        if group["centered"]:
            grad_avg = tile.buffer("grad_avg")
            torch._foreach_lerp_(grad_avg, grads, 1.0 - alpha)
            variance = torch._foreach_addcmul(square_avg, grad_avg, grad_avg, value=-1.0)
            denom = root_with_eps(variance, group["eps"], group["eps_inside_sqrt"], in_place=True)
        else:
            denom = root_with_eps(square_avg, group["eps"], group["eps_inside_sqrt"])
        if group["momentum"] > 0:
            buffers = tile.buffer("momentum_buffer")
            torch._foreach_mul_(buffers, group["momentum"])
            torch._foreach_addcdiv_(buffers, grads, denom)
            torch._foreach_add_(tile.params, buffers, alpha=-group["lr"])
        else:
            torch._foreach_addcdiv_(tile.params, grads, denom, value=-group["lr"])


class AdaDelta(MultiTensorOptimizer):
    r"""AdaDelta (Zeiler, 2012); notes 000 §7.2.3 "AdaDelta 算法".

    The notes' rule (one decay ρ for both averages, as in the paper and torch):

        G_t = ρ G_{t-1} + (1 − ρ) g_t ⊙ g_t
        Δθ_t = −√(ΔX²_{t-1} + ε) / √(G_t + ε) ⊙ g_t
        ΔX²_t = ρ ΔX²_{t-1} + (1 − ρ) Δθ_t ⊙ Δθ_t

    and θ_t = θ_{t-1} + α Δθ_t. The paper has no α (α = 1, torch's default); with α ≠ 1,
    ΔX² accumulates the unscaled Δθ, as torch and Keras do.

    Here the notes, the paper, torch and Keras all put ε *inside* both roots, so
    ``eps_inside_sqrt`` defaults to True (the one rule where that is torch's default);
    False gives (√ΔX² + ε)/(√G + ε). Defaults equal ``torch.optim.Adadelta``'s (α = 1,
    ρ = 0.9, ε = 1e-6); the paper uses ρ = 0.95, ε = 1e-6; Keras lr = 0.001, ρ = 0.95, ε = 1e-7.
    """

    def __init__(
        self,
        params: Params,
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        *,
        eps_inside_sqrt: bool = True,
        maximize: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, eps_inside_sqrt=eps_inside_sqrt, maximize=maximize
        )
        super().__init__(params, defaults)

    def _check(self, group: dict[str, Any]) -> None:
        check.at_least("lr", group["lr"])
        check.decay_rate("rho", group["rho"])
        check.positive("eps", group["eps"])
        check.at_least("weight_decay", group["weight_decay"])
        check.flag("eps_inside_sqrt", group["eps_inside_sqrt"])
        check.flag("maximize", group["maximize"])

    def _update(self, group: dict[str, Any], tile: ParamBatch) -> None:
        grads, rho, eps, inside = tile.grads, group["rho"], group["eps"], group["eps_inside_sqrt"]
        square_avg, acc_delta = tile.buffer("square_avg"), tile.buffer("acc_delta")
        torch._foreach_mul_(square_avg, rho)
        torch._foreach_addcmul_(square_avg, grads, grads, value=1.0 - rho)
        std = root_with_eps(square_avg, eps, inside)
        deltas = root_with_eps(acc_delta, eps, inside)
        torch._foreach_div_(deltas, std)
        torch._foreach_mul_(deltas, grads)
        torch._foreach_mul_(acc_delta, rho)
        torch._foreach_addcmul_(acc_delta, deltas, deltas, value=1.0 - rho)
        torch._foreach_add_(tile.params, deltas, alpha=-group["lr"])
