"""Gradient check: autograd's gradients against finite differences, parameter by parameter.

The notes' backpropagation exercises (``002_*.txt``, 反向传播算法 and 作业习题 (1)) derive
∂L/∂w by the chain rule by hand; the standard way to check such a derivation — or a custom
``torch.autograd.Function`` — is the central difference (error O(h²))

    g̃_i = ( L(θ + h e_i) − L(θ − h e_i) ) / (2h)

compared with the analytic g_i by the relative error

    rel_i = |g_i − g̃_i| / max(|g_i|, |g̃_i|)        (0 when both are below ``atol``)

and a coordinate passes when |g_i − g̃_i| ≤ atol + rtol · max(|g_i|, |g̃_i|) (the form of
``torch.allclose``): ``atol`` absorbs the rounding error of the difference quotient, about
1e-16 · L / h ≈ 1e-10, which would otherwise fail tiny but correct gradients.

The check runs on a float64 copy of the model (the user's model is not touched): in float32
the rounding error of L (~1e-7 · L) divided by 2h swamps the comparison. With h = 1e-6 in
float64 a correct gradient gives abs errors ~1e-10; a wrong backward gives rel ~1. Kinks
(ReLU at 0, max-pooling ties) can flag a correct gradient when θ ± h crosses one.
``torch.autograd.gradcheck`` does the same on a function's *inputs* with a full Jacobian;
this works on a model's *parameters* and samples ``max_per_param`` coordinates of each.

Example::

    result = gradcheck(model, nn.functional.cross_entropy, (x, y))
    print(result.table()); assert result.ok
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class ParamCheck:
    name: str
    shape: tuple[int, ...]
    checked: int
    max_abs_error: float
    max_rel_error: float
    ok: bool


@dataclass
class GradCheckResult:
    rows: list[ParamCheck] = field(default_factory=list)
    rtol: float = 1e-5

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    @property
    def failed(self) -> list[str]:
        return [r.name for r in self.rows if not r.ok]

    def table(self) -> str:
        """A plain-text table: one row per parameter."""
        headers = ("parameter", "shape", "checked", "max abs err", "max rel err", "ok")
        body = [
            (
                r.name,
                "x".join(map(str, r.shape)) or "scalar",
                str(r.checked),
                f"{r.max_abs_error:.2e}",
                f"{r.max_rel_error:.2e}",
                "yes" if r.ok else "NO",
            )
            for r in self.rows
        ]
        widths = [max(len(h), *(len(row[i]) for row in body)) if body else len(h) for i, h in enumerate(headers)]
        lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths))]
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in body]
        return "\n".join(lines)


def relative_error(analytic: torch.Tensor, numeric: torch.Tensor, atol: float) -> torch.Tensor:
    """|a − n| / max(|a|, |n|), and 0 where both magnitudes are below ``atol``."""
    scale = torch.maximum(analytic.abs(), numeric.abs())
    rel = (analytic - numeric).abs() / scale.clamp_min(torch.finfo(scale.dtype).tiny)
    return torch.where(scale < atol, torch.zeros_like(rel), rel)


def gradcheck(
    model: nn.Module,
    loss_fn: LossFn,
    batch: tuple[torch.Tensor, torch.Tensor],
    *,
    h: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-8,
    max_per_param: int | None = 20,
    seed: int = 0,
) -> GradCheckResult:
    """Compare autograd with central differences for every parameter of ``model``.

    Args:
        batch: ``(x, y)``; the loss is ``loss_fn(model(x), y)``, computed in eval mode so that
            dropout draws no new mask between the evaluations.
        h: finite-difference step (float64).
        rtol, atol: a parameter passes when every checked coordinate has
            |g − g̃| <= atol + rtol · max(|g|, |g̃|).
        max_per_param: coordinates sampled per parameter (None = all of them).
    """
    if not h > 0:
        raise ValueError(f"h must be > 0 (a finite-difference step such as 1e-6), got {h!r}")
    if not rtol > 0:
        raise ValueError(f"rtol must be > 0, got {rtol!r}")
    if max_per_param is not None and (
        isinstance(max_per_param, bool) or not isinstance(max_per_param, int) or max_per_param < 1
    ):
        raise ValueError(f"max_per_param must be an integer >= 1 or None, got {max_per_param!r}")
    x, y = batch
    net = copy.deepcopy(model).double().eval()
    x = x.double() if x.is_floating_point() else x
    y = y.double() if y.is_floating_point() else y

    def loss() -> torch.Tensor:
        return loss_fn(net(x), y)

    named = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss(), [p for _, p in named], allow_unused=True)
    gen = torch.Generator().manual_seed(seed)
    result = GradCheckResult(rtol=rtol)
    for (name, p), g in zip(named, grads):
        analytic = torch.zeros_like(p) if g is None else g.detach()
        n = p.numel()
        idx = (
            torch.arange(n)
            if max_per_param is None or n <= max_per_param
            else torch.randperm(n, generator=gen)[:max_per_param]
        )
        numeric = torch.empty(len(idx), dtype=torch.float64)
        flat = p.data.view(-1)
        with torch.no_grad():
            for k, i in enumerate(idx.tolist()):
                old = flat[i].item()
                flat[i] = old + h
                up = float(loss())
                flat[i] = old - h
                down = float(loss())
                flat[i] = old
                numeric[k] = (up - down) / (2 * h)
        a = analytic.reshape(-1)[idx]
        err = (a - numeric).abs()
        ok = bool((err <= atol + rtol * torch.maximum(a.abs(), numeric.abs())).all())
        result.rows.append(
            ParamCheck(
                name, tuple(p.shape), len(idx), float(err.max()), float(relative_error(a, numeric, atol).max()), ok
            )
        )
    return result
