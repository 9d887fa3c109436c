"""Dropout variants: DropConnect, AlphaDropout, and Monte-Carlo dropout prediction.

Standard dropout is ``torch.nn.Dropout`` — *inverted* dropout: at training time
``y = m ⊙ x / q`` with ``m_i ~ Bernoulli(q)``, ``q = 1 − drop``, and at test time ``y = x``.
The notes (000 §7.7.4, 002 "Dropout—训练和测试时实现", 004 固定概率丢弃) write the original
form of Srivastava et al. (2014): train ``m ⊙ x``, test ``p x`` with ``p`` the **keep**
probability. Both give the next layer the same expected input up to the constant 1/p, which
the next layer's weights absorb: a net trained with the notes' form and weights ``W`` computes
exactly what the inverted net with weights ``p W`` computes, at training and at test time
(``tests/nn/test_dropout.py::test_inverted_dropout_equals_notes_scale_at_test``).
torch's and trainlab's ``p``/``drop`` arguments are **drop** probabilities (``drop = 1 − p``).

RNN dropouts (naive and variational / ``LockedDropout``) live in :mod:`trainlab.nn.recurrent`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["AlphaDropout", "DropConnectLinear", "is_dropout", "mc_predict"]

_INFERENCE = ("mean", "gaussian")


def _check_drop(name: str, value: float) -> None:
    if not 0 <= value < 1:
        raise ValueError(f"{name} is a drop probability and must be in [0, 1), got {value!r}")


class DropConnectLinear(nn.Linear):
    r"""A linear layer whose *weights* are dropped (Wan et al. 2013; notes 002 "DropConnect").

    Training: ``r = a((M ⊙ W) x + b)`` with ``M_ij ~ Bernoulli(q)``, ``q = 1 − drop`` — each input
    weight of each unit is kept with probability q (002: "以 1−p 的概率变成0" with p the keep
    probability). Activations are never zeroed: a unit loses some inputs, not its output. The
    bias is not masked. ``per_sample=True`` draws one mask per sample as in the paper (memory
    ``batch × out × in``); ``False`` one mask per batch (cheaper, more correlated gradients).

    Inference, as in the paper (§3), is not rescaled during training, so the test layer uses
    the mask's moments:

    - ``inference="mean"``: ``r = a(q W x + b)`` — the weight-scaling rule.
    - ``inference="gaussian"``: moment matching, ``u ~ N(q W x + b, q (1 − q) (W ⊙ W)(x ⊙ x))`` per
      unit, ``r = E[a(u)]``. The paper estimates ``E[a(u)]`` by sampling; here ``samples`` is the
      number of Gauss–Hermite nodes, which computes the same expectation deterministically
      (exact for polynomial ``a`` of degree < 2·samples), so eval mode stays deterministic.
      Without an ``activation`` ``E[u]`` is the mean, and "gaussian" equals "mean".

    ``activation`` (optional, applied in every mode) exists for the Gaussian rule, which
    needs the nonlinearity inside the expectation.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        drop: float = 0.5,
        bias: bool = True,
        inference: str = "mean",
        samples: int = 16,
        *,
        activation: Callable[[Tensor], Tensor] | None = None,
        per_sample: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        _check_drop("drop", drop)
        if inference not in _INFERENCE:
            raise ValueError(f"inference must be one of {_INFERENCE}, got {inference!r}")
        if not (isinstance(samples, int) and samples >= 1):
            raise ValueError(f"samples must be an integer >= 1, got {samples!r}")
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self.drop, self.inference, self.samples = drop, inference, samples
        self.activation, self.per_sample = activation, per_sample

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, drop={self.drop}, inference={self.inference!r}, per_sample={self.per_sample}"

    def _act(self, u: Tensor) -> Tensor:
        return u if self.activation is None else self.activation(u)

    def forward(self, x: Tensor) -> Tensor:
        keep = 1.0 - self.drop
        if self.drop == 0:
            return self._act(F.linear(x, self.weight, self.bias))
        if self.training:
            return self._act(self._masked_linear(x, keep))
        mean = F.linear(x, keep * self.weight, self.bias)
        if self.inference == "mean" or self.activation is None:
            return self._act(mean)
        var = keep * (1.0 - keep) * F.linear(x * x, self.weight * self.weight)
        return _gauss_hermite_expectation(self.activation, mean, var.sqrt(), self.samples)

    def _masked_linear(self, x: Tensor, keep: float) -> Tensor:
        if not self.per_sample:
            mask = torch.empty_like(self.weight).bernoulli_(keep)
            return F.linear(x, self.weight * mask, self.bias)
        flat = x.reshape(-1, self.in_features)
        mask = torch.empty((flat.shape[0], *self.weight.shape), device=x.device, dtype=x.dtype).bernoulli_(keep)
        out = torch.einsum("bi,boi->bo", flat, mask * self.weight)
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*x.shape[:-1], self.out_features)


def _gauss_hermite_expectation(f: Callable[[Tensor], Tensor], mean: Tensor, std: Tensor, nodes: int) -> Tensor:
    """``E[f(u)]`` for ``u ~ N(mean, std²)`` elementwise: ``Σ_k w_k/√π f(mean + √2 std t_k)``."""
    t, w = np.polynomial.hermite.hermgauss(nodes)
    out = torch.zeros_like(mean)
    for t_k, w_k in zip(t.tolist(), (w / math.sqrt(math.pi)).tolist()):
        out = out + w_k * f(mean + math.sqrt(2.0) * t_k * std)
    return out


# SELU's fixed point (Klambauer et al. 2017): α' = −λα is the value SELU saturates to.
_SELU_ALPHA_PRIME = 1.7580993408473766


class AlphaDropout(nn.Module):
    r"""Dropout for SELU networks that keeps zero mean and unit variance (Klambauer et al. 2017).

    Notes 004 (SELU: "输入数量足够大:AlphaDropout"). Dropped units are set to SELU's negative
    saturation ``α' = −λα ≈ −1.7581`` instead of 0, then an affine map restores the moments:
    ``y = a (x ⊙ d + α' (1 − d)) + b`` with ``d ~ Bernoulli(q)``, ``q = 1 − p``,
    ``a = (q + α'² q (1 − q))^{−1/2}``, ``b = −a (1 − q) α'``. For inputs of mean 0 and variance 1,
    ``E[y] = 0`` and ``Var[y] = 1``. ``p`` is the **drop** probability. Identity in eval mode.

    Same formula and the same random stream as ``torch.nn.AlphaDropout`` (one
    ``bernoulli_(1 − p)`` draw of the input's shape), so under one seed the two give identical
    outputs; written out here so the formula is in view.
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        _check_drop("p", p)
        self.p = p

    def extra_repr(self) -> str:
        return f"p={self.p}"

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0:
            return x
        q = 1.0 - self.p
        alpha = -_SELU_ALPHA_PRIME
        a = (q + alpha * alpha * q * (1.0 - q)) ** -0.5
        b = -a * (1.0 - q) * alpha
        d = torch.empty_like(x).bernoulli_(q)
        return a * (x * d + alpha * (1.0 - d)) + b


def is_dropout(module: nn.Module) -> bool:
    """Whether ``module``'s own training flag switches random dropping on.

    True for torch's dropouts (``Dropout``, ``Dropout1d/2d/3d``, ``AlphaDropout``,
    ``FeatureAlphaDropout``), trainlab's ``DropConnectLinear`` and ``AlphaDropout``, any class
    whose name contains ``Dropout`` or ``DropConnect`` (``LockedDropout``), and modules with a
    positive float ``dropout`` attribute that apply it only in training (``nn.LSTM``/``GRU``/``RNN``
    between layers, ``nn.MultiheadAttention``).
    """
    if isinstance(module, (nn.modules.dropout._DropoutNd, DropConnectLinear, AlphaDropout)):
        return True
    name = type(module).__name__
    if "Dropout" in name or "DropConnect" in name:
        return True
    rate = getattr(module, "dropout", None)
    return isinstance(module, (nn.RNNBase, nn.MultiheadAttention)) and isinstance(rate, float) and rate > 0


@torch.no_grad()
def mc_predict(model: nn.Module, x: Tensor, samples: int = 30, *, softmax: bool = True) -> tuple[Tensor, Tensor]:
    r"""Monte-Carlo dropout: the predictive mean and standard deviation over ``samples`` passes.

    The Bayesian reading of dropout (notes 000 §7.7.4, ``E_q[y] ≈ (1/M) Σ_m f(x, θ_m)``; Gal &
    Ghahramani 2016): every dropout module (see :func:`is_dropout`) is put in training mode,
    every other module — BatchNorm above all, whose batch statistics would otherwise leak in —
    in eval mode, and each module's original mode is restored afterwards, even on error.

    Returns ``(mean, std)`` of ``softmax(model(x), dim=-1)`` (of the raw outputs with
    ``softmax=False``, for regression), each of the output's shape. ``std`` is the population
    standard deviation over the samples (divisor M, as in Gal 2016 §3.3); it is exactly 0 when
    the model has no active dropout. Seed with ``torch.manual_seed`` for repeatable draws.
    """
    if not (isinstance(samples, int) and samples >= 1):
        raise ValueError(f"samples must be an integer >= 1, got {samples!r}")
    stacked = _dropout_passes(model, x, samples, (lambda out: out.softmax(dim=-1)) if softmax else (lambda out: out))
    return stacked.mean(0), stacked.std(0, correction=0)


def _dropout_passes(model: nn.Module, x: Tensor, samples: int, transform) -> Tensor:
    """``samples`` passes of ``model`` on ``x`` with only its dropout modules in training
    mode, each output through ``transform``, stacked on a new first axis; modes restored."""
    modes = [(m, m.training) for m in model.modules()]
    try:
        for m, _ in modes:
            m.training = is_dropout(m)  # set the flag directly: .train() would recurse
        return torch.stack([transform(model(x)) for _ in range(samples)])
    finally:
        for m, was_training in modes:
            m.training = was_training


def normalized_geometric_mean(log_probs: Tensor) -> Tensor:
    r"""The renormalized geometric mean of M predictive distributions, ``log_probs`` (M, …, K).

    Notes 003 §Dropout (Goodfellow et al. 2016 §7.12): the ensemble of the 2^d dropout
    subnetworks μ is ``p̃(y|x) = (Π_μ p(y|x, μ))^{1/2^d}``, renormalized
    ``p_ens(y|x) = p̃(y|x) / Σ_{y'} p̃(y'|x)``; over M sampled masks, ``softmax_y`` of the mean
    log-probability. (It needs every p(y|x, μ) > 0, which a softmax output always gives.)
    """
    return log_probs.mean(0).softmax(dim=-1)


@torch.no_grad()
def geometric_mean_predict(model: nn.Module, x: Tensor, samples: int = 30) -> Tensor:
    r"""The dropout ensemble's prediction as the notes define it: the renormalized geometric
    mean of ``samples`` sampled subnetworks' softmax outputs (:func:`normalized_geometric_mean`).

    The weight-scaling inference rule — the network with every weight scaled by its unit's
    keep probability, i.e. ``model.eval()`` for torch's inverted dropout — approximates it
    with one pass (003: "权重比例推断规则"); it is exact for a softmax regression on dropped
    inputs (Srivastava et al. 2014 §9.1; Goodfellow et al. 2016 §7.12), approximate once
    nonlinear hidden layers sit between the masks and the softmax. Seed with
    ``torch.manual_seed`` for repeatable masks; modes are handled as in :func:`mc_predict`.
    """
    if not (isinstance(samples, int) and samples >= 1):
        raise ValueError(f"samples must be an integer >= 1, got {samples!r}")
    return normalized_geometric_mean(_dropout_passes(model, x, samples, lambda out: out.log_softmax(dim=-1)))
