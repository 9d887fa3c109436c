"""Adam and its variants AMSGrad, AdamW and Nadam (notes 000 §7.2.4, §7.7.2).

Adam is RMSprop's G (the second moment) combined with momentum's M (the first moment),
each bias-corrected: the unified rule Δθ = −α_t/√(G_t + ε) ⊙ M_t with both terms adaptive.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from trainlab.optim import _checks as check
from trainlab.optim._base import MultiTensorOptimizer, ParamBatch, root_with_eps

Params = Iterable[Tensor] | Iterable[dict[str, Any]]


class Adam(MultiTensorOptimizer):
    r"""Adam (Kingma & Ba, ICLR 2015); notes 000 §7.2.4 "Adam 算法"; AMSGrad (Reddi et al., 2018).

    The notes' rule:

        M_t = β₁ M_{t-1} + (1 − β₁) g_t              (first moment, momentum)
        G_t = β₂ G_{t-1} + (1 − β₂) g_t ⊙ g_t        (second moment, RMSprop)
        M̂_t = M_t / (1 − β₁ᵗ),   Ĝ_t = G_t / (1 − β₂ᵗ)   (bias correction: M_0 = G_0 = 0)
        Δθ_t = −α / √(Ĝ_t + ε) ⊙ M̂_t                  (eps_inside_sqrt=True)

    The paper's and torch's rule, the default: Δθ_t = −α M̂_t / (√Ĝ_t + ε). Keras (and TF)
    differ again: they fold the corrections into α_t = α √(1 − β₂ᵗ)/(1 − β₁ᵗ) and add ε to
    √G_t, *uncorrected* — the paper's "ε̂" form, equal to ε √(1 − β₂ᵗ) here, so early steps
    are damped more (Keras ε = 1e-7).

    ``amsgrad=True`` divides by the running maximum Ĝ^max_t = max(Ĝ^max_{t-1}, G_t), bias
    corrected as torch does; the AMSGrad paper itself has no bias correction.

    ``weight_decay`` λ is L2: λθ is added to g *before* the moments, so the decay of a weight
    is divided by √Ĝ like its gradient. That is not decoupled weight decay — see AdamW.

    Defaults equal ``torch.optim.Adam``'s (α = 1e-3, β = (0.9, 0.999), ε = 1e-8), the paper's
    recommended values. ``fused=None`` uses ``torch._fused_adam_`` when ``eps_inside_sqrt=False``.
    """

    _needs_step_values = True

    def __init__(
        self,
        params: Params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        eps_inside_sqrt: bool = False,
        maximize: bool = False,
        fused: bool | None = None,
    ) -> None:
        defaults = dict(
            lr=lr, betas=tuple(betas) if isinstance(betas, list) else betas, eps=eps, weight_decay=weight_decay,
            amsgrad=amsgrad, eps_inside_sqrt=eps_inside_sqrt, maximize=maximize, fused=fused,
        )  # fmt: skip
        super().__init__(params, defaults)

    def _check(self, group: dict[str, Any]) -> None:
        check.at_least("lr", group["lr"])
        check.betas(group["betas"])
        check.positive("eps", group["eps"])
        check.at_least("weight_decay", group["weight_decay"])
        check.flag("amsgrad", group["amsgrad"])
        check.flag("eps_inside_sqrt", group["eps_inside_sqrt"])
        check.flag("maximize", group["maximize"])
        self._check_fused(group)

    def _fused_matches(self, group: dict[str, Any]) -> bool:
        return not group["eps_inside_sqrt"]

    def _fused(self, group: dict[str, Any], batch: ParamBatch) -> bool:
        if not self._use_fused(group, batch):
            return False
        kernel = torch._fused_adamw_ if self._decoupled_decay(group) else torch._fused_adam_
        beta1, beta2 = group["betas"]
        kernel(
            batch.params, batch.grads, batch.buffer("exp_avg"), batch.buffer("exp_avg_sq"),
            batch.buffer("max_exp_avg_sq") if group["amsgrad"] else [], batch.step_tensors(),
            lr=group["lr"], beta1=beta1, beta2=beta2, weight_decay=group["weight_decay"], eps=group["eps"],
            amsgrad=group["amsgrad"], maximize=group["maximize"],
        )  # fmt: skip
        return True

    def _update(self, group: dict[str, Any], tile: ParamBatch) -> None:
        beta1, beta2 = group["betas"]
        exp_avg, exp_avg_sq = _update_moments(tile, beta1, beta2)
        if group["amsgrad"]:
            max_exp_avg_sq = tile.buffer("max_exp_avg_sq")
            torch._foreach_maximum_(max_exp_avg_sq, exp_avg_sq)
            exp_avg_sq = max_exp_avg_sq
        bias2 = [1 - beta2**t for t in tile.steps]
        denom = root_with_eps(exp_avg_sq, group["eps"], group["eps_inside_sqrt"], bias2)
        torch._foreach_addcdiv_(tile.params, exp_avg, denom, [-group["lr"] / (1 - beta1**t) for t in tile.steps])


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter, ICLR 2019); notes 000 §7.7.2.

    The notes' weight decay θ_t = (1 − β) θ_{t-1} − α g_t shrinks θ directly instead of adding
    λθ to the gradient. For SGD the two are the same; for Adam they are not (notes: "在 Adam
    等较复杂优化中，则不等价"): L2's λθ is divided by √Ĝ with the gradient, so weights with large
    gradients are barely decayed. AdamW applies, before Adam's step,

        θ ← (1 − αλ) θ

    as torch and Keras do: β = αλ, the decay follows the learning rate and its schedule. The
    paper writes θ_t = θ_{t-1} − η_t(α M̂_t/(√Ĝ_t + ε) + λ θ_{t-1}), with η_t the schedule
    multiplier alone, so its λ is α times torch's. Default λ = 0.01 (torch; Keras 0.004).
    ``fused=None`` uses ``torch._fused_adamw_`` when ``eps_inside_sqrt=False``.
    """

    def __init__(
        self,
        params: Params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        eps_inside_sqrt: bool = False,
        maximize: bool = False,
        fused: bool | None = None,
    ) -> None:
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            eps_inside_sqrt=eps_inside_sqrt,
            maximize=maximize,
            fused=fused,
        )

    def _decoupled_decay(self, group: dict[str, Any]) -> bool:
        return True


class Nadam(MultiTensorOptimizer):
    r"""Nadam: Adam with Nesterov momentum (Dozat, ICLR 2016 workshop); notes 000 §7.2.4.

    The notes name it ("用 Nesterov 加速梯度改进Adam") without a formula; this is Dozat's, as in
    torch and Keras, with a warming momentum schedule μ_t = β₁ (1 − ½ · 0.96^(t ψ)),
    ψ = ``momentum_decay``:

        M_t = β₁ M_{t-1} + (1 − β₁) g_t,    G_t = β₂ G_{t-1} + (1 − β₂) g_t ⊙ g_t
        Ĝ_t = G_t / (1 − β₂ᵗ),              Π_t = μ_1 ⋯ μ_t
        M̃_t = μ_{t+1} M_t / (1 − Π_t μ_{t+1}) + (1 − μ_t) g_t / (1 − Π_t)
        Δθ_t = −α M̃_t / (√Ĝ_t + ε)          (torch; −α/√(Ĝ_t + ε) ⊙ M̃_t if eps_inside_sqrt)

    The look-ahead is in M̃: the first moment one step ahead (μ_{t+1} M_t) replaces M_t, as
    Nesterov evaluates the gradient one momentum step ahead. ``weight_decay`` is L2 unless
    ``decoupled_weight_decay=True`` (NAdamW: θ ← (1 − αλ) θ first). Defaults equal
    ``torch.optim.NAdam``'s (α = 2e-3, ψ = 4e-3); Keras: α = 1e-3, ε = 1e-7.

    State ``mu_product`` Π_t is kept as a Python float (torch keeps a tensor, which
    ``load_state_dict`` would cast to the parameter's dtype — bfloat16 would ruin it).
    """

    _needs_step_values = True

    def __init__(
        self,
        params: Params,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum_decay: float = 4e-3,
        *,
        decoupled_weight_decay: bool = False,
        eps_inside_sqrt: bool = False,
        maximize: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr, betas=tuple(betas) if isinstance(betas, list) else betas, eps=eps, weight_decay=weight_decay,
            momentum_decay=momentum_decay, decoupled_weight_decay=decoupled_weight_decay,
            eps_inside_sqrt=eps_inside_sqrt, maximize=maximize,
        )  # fmt: skip
        super().__init__(params, defaults)

    def _check(self, group: dict[str, Any]) -> None:
        check.at_least("lr", group["lr"])
        check.betas(group["betas"])
        check.positive("eps", group["eps"])
        check.at_least("weight_decay", group["weight_decay"])
        check.at_least("momentum_decay", group["momentum_decay"])
        check.flag("decoupled_weight_decay", group["decoupled_weight_decay"])
        check.flag("eps_inside_sqrt", group["eps_inside_sqrt"])
        check.flag("maximize", group["maximize"])

    def _decoupled_decay(self, group: dict[str, Any]) -> bool:
        return group["decoupled_weight_decay"]

    def _update(self, group: dict[str, Any], tile: ParamBatch) -> None:
        beta1, beta2 = group["betas"]
        exp_avg, exp_avg_sq = _update_moments(tile, beta1, beta2)
        denom = root_with_eps(exp_avg_sq, group["eps"], group["eps_inside_sqrt"], [1 - beta2**t for t in tile.steps])
        lr, psi = group["lr"], group["momentum_decay"]
        grad_scales, avg_scales = [], []
        for state, t in zip(tile.states, tile.steps):
            mu, mu_next = beta1 * (1 - 0.5 * 0.96 ** (t * psi)), beta1 * (1 - 0.5 * 0.96 ** ((t + 1) * psi))
            product = state["mu_product"] = float(state.get("mu_product", 1.0)) * mu
            grad_scales.append(-lr * (1 - mu) / (1 - product))
            avg_scales.append(-lr * mu_next / (1 - product * mu_next))
        torch._foreach_addcdiv_(tile.params, tile.grads, denom, grad_scales)
        torch._foreach_addcdiv_(tile.params, exp_avg, denom, avg_scales)


def _update_moments(tile: ParamBatch, beta1: float, beta2: float) -> tuple[list[Tensor], list[Tensor]]:
    """M ← β₁ M + (1 − β₁) g and G ← β₂ G + (1 − β₂) g ⊙ g, in place; returns (M, G)."""
    exp_avg, exp_avg_sq = tile.buffer("exp_avg"), tile.buffer("exp_avg_sq")
    torch._foreach_lerp_(exp_avg, tile.grads, 1.0 - beta1)
    torch._foreach_mul_(exp_avg_sq, beta2)
    torch._foreach_addcmul_(exp_avg_sq, tile.grads, tile.grads, value=1.0 - beta2)
    return exp_avg, exp_avg_sq
