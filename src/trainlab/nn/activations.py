"""Activation functions of the notes (``004_*.txt`` "激活函数"), by name.

:func:`get_activation` builds any of :data:`ACTIVATIONS` as an ``nn.Module``; model configs
use the same names (``[model] activation = "relu"``). Formulas (``x`` the pre-activation):

==================  ==========================================  ==========================
name                f(x)                                        f'(x)
==================  ==========================================  ==========================
sigmoid             1 / (1 + e^{-x})                            f (1 - f)
hard_sigmoid        keras: clip(0.2 x + 0.5, 0, 1)              0.2 on (-2.5, 2.5), else 0
                    torch: relu6(x + 3) / 6                     1/6 on (-3, 3), else 0
softmax             e^{x_i} / sum_j e^{x_j}                     f_i (δ_ij - f_j)
softplus            log(1 + e^{x})  (torch: (1/β) log(1+e^{βx}))  sigmoid(x)
tanh                (e^x - e^{-x}) / (e^x + e^{-x})             1 - tanh^2  (notes: erratum)
softsign            x / (1 + |x|)                               1 / (1 + |x|)^2
relu                max(0, x)                                   1[x > 0]
leaky_relu          x if x > 0 else a x,  a = 0.01              1 or a
prelu               same with learned a (init 0.25)             1 or a
thresholded_relu    x if x > θ else 0,  θ = 1                   1[x > θ]
linear              x                                           1
elu                 x if x > 0 else α (e^x - 1),  α = 1         1 or f + α
gelu                x Φ(x)   (Φ: standard normal CDF)            Φ(x) + x φ(x)
gelu_tanh           0.5 x (1 + tanh(√(2/π) (x + 0.044715 x^3)))
selu                λ x if x > 0 else λ α (e^x - 1)             λ or λ α e^x
                    λ ≈ 1.0507, α ≈ 1.6733 (Klambauer et al. 2017)
==================  ==========================================  ==========================

Notes on sources: the list and the defaults (leaky 0.01, PReLU 0.25, θ = 1) follow
``004_*.txt``, which follows Keras. Keras 2's ``hard_sigmoid`` is ``clip(0.2x + 0.5)``;
Keras 3 and torch use ``relu6(x + 3) / 6`` — both are offered (``style``). SELU keeps mean
0 / variance 1 only with lecun_normal weights (``init = "lecun_normal"``) and
``AlphaDropout`` instead of dropout, as ``004_*.txt`` says.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from trainlab.errors import ConfigError, unknown_name

__all__ = ["ACTIVATIONS", "HardSigmoid", "ThresholdedReLU", "get_activation"]


class HardSigmoid(nn.Module):
    """Piecewise-linear sigmoid, cheaper than the logistic function (``004_*.txt``).

    ``style='keras'``: ``clip(0.2 x + 0.5, 0, 1)`` (Keras 2, the notes' Keras list);
    ``style='torch'``: ``relu6(x + 3) / 6`` = ``torch.nn.Hardsigmoid`` (and Keras 3).
    Slopes differ (0.2 vs 1/6) and so do the saturation points (±2.5 vs ±3).
    """

    def __init__(self, style: str = "keras") -> None:
        super().__init__()
        if style not in ("keras", "torch"):
            raise ValueError(f"hard_sigmoid style must be 'keras' or 'torch', got {style!r}")
        self.style = style

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.style == "keras":
            return torch.clamp(0.2 * x + 0.5, 0.0, 1.0)
        # Not F.hardsigmoid: its backward multiplies by a float32 1/6 even for float64
        # input (torch 2.13), off by 3e-8 relative; relu6 differentiates exactly.
        return F.relu6(x + 3.0) / 6.0

    def extra_repr(self) -> str:
        return f"style={self.style!r}"


class ThresholdedReLU(nn.Module):
    """``f(x) = x if x > θ else 0`` (Keras ``ThresholdedReLU``, θ = 1; ``004_*.txt``).

    Same as ``torch.nn.Threshold(θ, 0)``. The output jumps from 0 to θ at ``x = θ``.
    """

    def __init__(self, theta: float = 1.0) -> None:
        super().__init__()
        if not math.isfinite(theta):
            raise ValueError(f"thresholded_relu theta must be finite, got {theta!r}")
        self.theta = float(theta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.threshold(x, self.theta, 0.0)

    def extra_repr(self) -> str:
        return f"theta={self.theta}"


@dataclass(frozen=True)
class _Spec:
    build: Callable[..., nn.Module]
    defaults: dict[str, Any] = field(default_factory=dict)


def _softplus(beta: float, threshold: float) -> nn.Module:
    if not beta > 0:
        raise ValueError(f"softplus beta must be > 0, got {beta!r}")
    return nn.Softplus(beta=beta, threshold=threshold)


def _prelu(init: float, num_features: int | None) -> nn.Module:
    # One slope per channel when the layer width is known (He et al. 2015), else shared.
    num = 1 if num_features is None else num_features
    if not (isinstance(num, int) and num >= 1):
        raise ValueError(f"prelu num_features must be an int >= 1, got {num_features!r}")
    return nn.PReLU(num_parameters=num, init=init)


def _gelu(approximate: str) -> nn.Module:
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu approximate must be 'none' or 'tanh', got {approximate!r}")
    return nn.GELU(approximate=approximate)


def _elu(alpha: float) -> nn.Module:
    if not alpha > 0:
        raise ValueError(f"elu alpha must be > 0, got {alpha!r}")
    return nn.ELU(alpha=alpha)


_SPECS: dict[str, _Spec] = {
    "sigmoid": _Spec(nn.Sigmoid),
    "hard_sigmoid": _Spec(HardSigmoid, {"style": "keras"}),
    "softmax": _Spec(nn.Softmax, {"dim": 1}),
    "softplus": _Spec(_softplus, {"beta": 1.0, "threshold": 20.0}),
    "tanh": _Spec(nn.Tanh),
    "softsign": _Spec(nn.Softsign),
    "relu": _Spec(nn.ReLU),
    "leaky_relu": _Spec(nn.LeakyReLU, {"negative_slope": 0.01}),
    "prelu": _Spec(_prelu, {"init": 0.25, "num_features": None}),
    "thresholded_relu": _Spec(ThresholdedReLU, {"theta": 1.0}),
    "linear": _Spec(nn.Identity),
    "elu": _Spec(_elu, {"alpha": 1.0}),
    "gelu": _Spec(_gelu, {"approximate": "none"}),
    "gelu_tanh": _Spec(lambda: nn.GELU(approximate="tanh")),
    "selu": _Spec(nn.SELU),
}

ACTIVATIONS: tuple[str, ...] = tuple(_SPECS)
"""Names accepted by :func:`get_activation` and ``[model] activation``."""


def get_activation(name: str, **kw: Any) -> nn.Module:
    """Build the activation ``name`` (one of :data:`ACTIVATIONS`) with options ``kw``.

    ``num_features`` (the width of the layer the activation follows) is accepted by every
    activation so models can always pass it; only ``prelu`` uses it (one learned slope
    per channel, on dim 1). Other options: hard_sigmoid ``style``, softmax ``dim``
    (default 1, the feature/channel dim), softplus ``beta``/``threshold``, leaky_relu
    ``negative_slope``, prelu ``init``, thresholded_relu ``theta``, elu ``alpha``, gelu
    ``approximate``. Unknown names or options raise :class:`~trainlab.errors.ConfigError`.

    >>> get_activation("leaky_relu")
    LeakyReLU(negative_slope=0.01)
    """
    if name not in _SPECS:
        raise unknown_name("activation", name, ACTIVATIONS)
    spec = _SPECS[name]
    num_features = kw.pop("num_features", None)
    unexpected = sorted(set(kw) - set(spec.defaults))
    if unexpected:
        takes = ", ".join([*sorted(spec.defaults), "num_features"])
        raise ConfigError(f"activation '{name}' does not take option(s) {', '.join(unexpected)}; it takes: {takes}")
    options = {**spec.defaults, **kw}
    if "num_features" in spec.defaults:
        options["num_features"] = num_features
    return spec.build(**options)
