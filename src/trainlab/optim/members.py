"""Per-member hyperparameters: every trainlab optimizer on stacked parameters ``[K, ...]``.

A population (:mod:`trainlab.train.population`) trains K copies of one architecture at once,
each parameter stacked along a leading member axis. Its hyperparameters may differ per member:
give any of them as a 1-D tensor of K values (``lr=torch.tensor([0.1, 0.05, ...])``,
``betas=(torch.tensor([...]), 0.999)``) and the optimizer applies, to member k's slice, the
same rule as its single-model form with member k's values — the formulas of ``sgd.py``,
``adam.py`` and ``adaptive.py`` (notes 000 §7.2), written here with broadcasting tensor ops
instead of ``torch._foreach_*`` scalars. A group with a tensor hyperparameter takes this path
(never a fused kernel); python numbers in it apply to every member.

Example::

    w = torch.zeros(4, 10, 3, requires_grad=True)           # 4 members of a (10, 3) weight
    opt = trainlab.optim.SGD([w], lr=torch.tensor([0.1, 0.2, 0.3, 0.4]), momentum=0.9)

The step counter t is shared (members step together), as are the flags (nesterov, amsgrad,
centered, eps_inside_sqrt, maximize): a flag changes the rule, not a scalar in it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

Group = dict[str, Any]


def per_member(value: Any, like: Tensor) -> Any:
    """A [K] tensor shaped to broadcast over ``like`` ([K, ...]); a number is returned as is."""
    if isinstance(value, Tensor):
        return value.to(like.dtype).reshape(-1, *([1] * (like.dim() - 1)))
    return value


def _nonzero(value: Any) -> bool:
    return bool((value != 0).any()) if isinstance(value, Tensor) else value != 0


def _root_with_eps(stat: Tensor, eps: Any, inside: bool, divisor: Any = None) -> Tensor:
    """√(G/d) + ε, or √(G/d + ε) with ε inside (``trainlab.optim._base.root_with_eps``); a new tensor."""
    if inside:
        out = stat.div(divisor) if divisor is not None else stat.clone()
        return out.add_(eps).sqrt_()
    root = stat.sqrt()
    if divisor is not None:
        root.div_(divisor**0.5)
    return root.add_(eps)


def _descend(p: Tensor, lr: Any, direction: Tensor) -> None:
    """θ ← θ − α d, with α a number or member k's α_k (one fused pass, no temporary)."""
    if isinstance(lr, Tensor):
        p.addcmul_(per_member(lr, p), direction, value=-1.0)
    else:
        p.add_(direction, alpha=-lr)


def _add_scaled(buf: Tensor, scale: Any, g: Tensor, other: Tensor | None = None) -> None:
    """buf ← buf + scale · g (· other), scale a number or a per-member tensor."""
    if isinstance(scale, Tensor):
        buf.addcmul_(per_member(scale, buf), g if other is None else g * other)
    elif other is None:
        buf.add_(g, alpha=scale)
    else:
        buf.addcmul_(g, other, value=scale)


def prepare_grad(group: Group, p: Tensor, g: Tensor, decoupled: bool) -> Tensor:
    """g negated for ``maximize``; weight decay λ as L2 (g + λθ) or decoupled (θ ← (1 − αλ)θ)."""
    if group["maximize"]:
        g = -g
    decay = group.get("weight_decay", 0.0)
    if _nonzero(decay):
        decay = per_member(decay, p)
        if decoupled:
            p.mul_(1.0 - per_member(group["lr"], p) * decay)
        else:
            g = g + decay * p
    return g


def _buffer(state: dict[str, Any], name: str, p: Tensor, fill: Any = 0.0) -> Tensor:
    buf = state.get(name)
    if buf is None:
        buf = state[name] = (
            torch.zeros_like(p) + per_member(fill, p) if isinstance(fill, Tensor) else torch.full_like(p, fill)
        )
    return buf


def sgd(group: Group, p: Tensor, g: Tensor, state: dict[str, Any], t: float) -> None:
    """b_t = ρ b_{t−1} + (1 − dampening) g_t (b_1 = g_1); θ ← θ − α b_t, or − α (g_t + ρ b_t) (Nesterov)."""
    momentum = group["momentum"]
    if _nonzero(momentum):
        rho = per_member(momentum, p)
        buf = state.get("momentum_buffer")
        if buf is None:
            buf = state["momentum_buffer"] = g.clone()
        else:
            buf.mul_(rho)
            _add_scaled(buf, 1.0 - group["dampening"], g)
        g = g + rho * buf if group["nesterov"] else buf
    _descend(p, group["lr"], g)


def _moments(p: Tensor, g: Tensor, state: dict[str, Any], beta1: Any, beta2: Any) -> tuple[Tensor, Tensor]:
    """M ← β₁ M + (1 − β₁) g, G ← β₂ G + (1 − β₂) g ⊙ g, in place (β per member: [K] tensors)."""
    exp_avg, exp_avg_sq = _buffer(state, "exp_avg", p), _buffer(state, "exp_avg_sq", p)
    exp_avg.lerp_(g, 1.0 - beta1)
    exp_avg_sq.mul_(beta2)
    _add_scaled(exp_avg_sq, 1.0 - beta2, g, g)
    return exp_avg, exp_avg_sq


def adam(group: Group, p: Tensor, g: Tensor, state: dict[str, Any], t: float) -> None:
    """Adam / AMSGrad: θ ← θ − α M̂ / (√Ĝ + ε), M̂ = M/(1 − β₁ᵗ), Ĝ = G/(1 − β₂ᵗ) (Kingma & Ba 2015)."""
    beta1, beta2 = (per_member(b, p) for b in group["betas"])
    exp_avg, exp_avg_sq = _moments(p, g, state, beta1, beta2)
    if group["amsgrad"]:
        max_sq = _buffer(state, "max_exp_avg_sq", p)
        torch.maximum(max_sq, exp_avg_sq, out=max_sq)
        exp_avg_sq = max_sq
    denom = _root_with_eps(exp_avg_sq, per_member(group["eps"], p), group["eps_inside_sqrt"], 1 - beta2**t)
    _descend(p, per_member(group["lr"], p) / (1 - beta1**t), torch.div(exp_avg, denom, out=denom))


def nadam(group: Group, p: Tensor, g: Tensor, state: dict[str, Any], t: float) -> None:
    """Nadam (Dozat 2016): μ_t = β₁(1 − ½·0.96^(tψ)), M̃ = μ_{t+1}M/(1 − Π_t μ_{t+1}) + (1 − μ_t) g/(1 − Π_t)."""
    beta1, beta2 = (per_member(b, p) for b in group["betas"])
    exp_avg, exp_avg_sq = _moments(p, g, state, beta1, beta2)
    denom = _root_with_eps(exp_avg_sq, per_member(group["eps"], p), group["eps_inside_sqrt"], 1 - beta2**t)
    psi = per_member(group["momentum_decay"], p)
    mu, mu_next = beta1 * (1 - 0.5 * 0.96 ** (t * psi)), beta1 * (1 - 0.5 * 0.96 ** ((t + 1) * psi))
    product = state["mu_product"] = state.get("mu_product", 1.0) * mu
    lr = per_member(group["lr"], p)
    p.sub_(lr * (1 - mu) / (1 - product) * g / denom)
    p.sub_(lr * mu_next / (1 - product * mu_next) * exp_avg / denom)


def adagrad(group: Group, p: Tensor, g: Tensor, state: dict[str, Any], t: float) -> None:
    """AdaGrad (Duchi et al. 2011): G ← G + g ⊙ g, θ ← θ − α/(1 + (t − 1)·lr_decay) · g/(√G + ε)."""
    sums = _buffer(state, "sum", p, group["initial_accumulator_value"])
    sums.add_(g * g)
    std = _root_with_eps(sums, per_member(group["eps"], p), group["eps_inside_sqrt"])
    lr = per_member(group["lr"], p) / (1 + (t - 1) * per_member(group["lr_decay"], p))
    p.sub_(lr * g / std)


def rmsprop(group: Group, p: Tensor, g: Tensor, state: dict[str, Any], t: float) -> None:
    """RMSprop (Tieleman & Hinton 2012): G ← βG + (1 − β) g ⊙ g, θ ← θ − α g/(√G + ε); centered, momentum."""
    alpha, eps, inside = per_member(group["alpha"], p), per_member(group["eps"], p), group["eps_inside_sqrt"]
    square_avg = _buffer(state, "square_avg", p)
    square_avg.mul_(alpha).add_((1.0 - alpha) * g * g)
    if group["centered"]:
        grad_avg = _buffer(state, "grad_avg", p)
        grad_avg.lerp_(g, 1.0 - alpha)
        denom = _root_with_eps(square_avg - grad_avg * grad_avg, eps, inside)
    else:
        denom = _root_with_eps(square_avg, eps, inside)
    lr = per_member(group["lr"], p)
    if _nonzero(group["momentum"]):
        buf = _buffer(state, "momentum_buffer", p)
        buf.mul_(per_member(group["momentum"], p)).add_(g / denom)
        p.sub_(lr * buf)
    else:
        p.sub_(lr * g / denom)


def adadelta(group: Group, p: Tensor, g: Tensor, state: dict[str, Any], t: float) -> None:
    """AdaDelta (Zeiler 2012): Δθ = −√(ΔX² + ε)/√(G + ε) ⊙ g, ΔX² ← ρΔX² + (1 − ρ)Δθ², θ ← θ + αΔθ."""
    rho, eps, inside = per_member(group["rho"], p), per_member(group["eps"], p), group["eps_inside_sqrt"]
    square_avg, acc_delta = _buffer(state, "square_avg", p), _buffer(state, "acc_delta", p)
    square_avg.mul_(rho).add_((1.0 - rho) * g * g)
    delta = _root_with_eps(acc_delta, eps, inside) / _root_with_eps(square_avg, eps, inside) * g
    acc_delta.mul_(rho).add_((1.0 - rho) * delta * delta)
    p.sub_(per_member(group["lr"], p) * delta)


RULES: dict[str, Callable[[Group, Tensor, Tensor, dict[str, Any], float], None]] = {
    "SGD": sgd, "Adam": adam, "AdamW": adam, "Nadam": nadam, "AdaGrad": adagrad, "RMSprop": rmsprop, "AdaDelta": adadelta,
}  # fmt: skip


def rule_for(optimizer: torch.optim.Optimizer) -> Callable[[Group, Tensor, Tensor, dict[str, Any], float], None]:
    for cls in type(optimizer).__mro__:
        if cls.__name__ in RULES and cls.__module__.startswith("trainlab.optim"):
            return RULES[cls.__name__]
    raise ValueError(f"{type(optimizer).__name__} has no per-member rule; give its hyperparameters as numbers")
