"""Layer-wise normalization (notes ``000_*.txt`` §7.5, ``001_*.txt``, ``004_*.txt``).

* :func:`make_norm` — batch / layer / group / instance norm by name for any model.
* :class:`WeightNorm` — ``W_i = g_i v_i / ||v_i||`` (§7.5.3; Salimans & Kingma 2016).
* :class:`WSConv2d` — weight standardization for use with GroupNorm (``001_*.txt``;
  Qiao et al. 2019).
* :class:`LocalResponseNorm` — the notes' LRN formula (§7.5.4; Krizhevsky et al. 2012),
  or torch's variant that divides alpha by the window size.

Batch norm (§7.5.1) in training mode normalizes with the mini-batch mean and *biased*
variance, ``(z - mu_B) / sqrt(sigma_B^2 + eps) * gamma + beta``, and updates running
averages ``r <- (1 - m) r + m * stat`` with the *unbiased* batch variance; eval mode uses the
running averages (``004_*.txt``: "方差使用移动平均无偏估计"). That is torch's
``nn.BatchNorm*d`` (momentum ``m = 0.1``; Keras writes ``momentum = 1 - m = 0.99``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from trainlab.errors import ConfigError, unknown_name

__all__ = ["NORMS", "LocalResponseNorm", "WSConv2d", "WeightNorm", "group_count", "make_norm"]

NORMS: tuple[str, ...] = ("none", "batch", "layer", "group", "instance", "weight")
"""Names accepted by :func:`make_norm` and ``[model] norm``."""


def group_count(num_channels: int, num_groups: int) -> int:
    """The largest divisor of ``num_channels`` not above ``num_groups``.

    GroupNorm needs ``G | C``; rather than fail on, say, 12 channels with 8 groups, use
    6 groups. With ``num_groups >= C`` this is ``C`` (instance-norm-like groups).
    """
    for groups in range(min(num_groups, num_channels), 0, -1):
        if num_channels % groups == 0:
            return groups
    return 1  # unreachable for num_channels >= 1; keeps type checkers happy


def make_norm(kind: str, num_features: int, spatial_dims: int = 0, num_groups: int = 8) -> nn.Module:
    """A normalization layer for ``num_features`` channels, by name (one of :data:`NORMS`).

    ``spatial_dims``: 0 for ``(N, C)`` features after a Linear layer, 1 for ``(N, C, L)``,
    2 for ``(N, C, H, W)``. Every layer has a per-channel affine ``gamma, beta``.

    * ``batch``: ``nn.BatchNorm1d`` / ``nn.BatchNorm2d`` — statistics per channel over the
      batch (and positions).
    * ``layer``: statistics per sample over all of its features (§7.5.2). On ``(N, C)``
      ``nn.LayerNorm(C)``; with spatial dims ``nn.GroupNorm(1, C)``, which normalizes
      over ``(C, *positions)`` without knowing the spatial size (Wu & He 2018 §3.1).
    * ``group``: ``nn.GroupNorm(G, C)``, ``G`` = :func:`group_count` (``C`` need not be
      divisible by ``num_groups``).
    * ``instance``: ``nn.InstanceNorm{1,2}d(C, affine=True)`` — per sample and channel over
      positions; refused on ``(N, C)`` where each statistic would see one number.
    * ``none`` and ``weight``: ``nn.Identity`` (weight norm wraps the layer instead: use
      :class:`WeightNorm`).
    """
    if kind not in NORMS:
        raise unknown_name("norm", kind, NORMS)
    if not (isinstance(num_features, int) and num_features >= 1):
        raise ConfigError(f"num_features must be an int >= 1, got {num_features!r}")
    if spatial_dims not in (0, 1, 2):
        raise ConfigError(f"spatial_dims must be 0 (N, C), 1 (N, C, L) or 2 (N, C, H, W), got {spatial_dims!r}")
    if not (isinstance(num_groups, int) and num_groups >= 1):
        raise ConfigError(f"num_groups must be an int >= 1, got {num_groups!r}")

    if kind in ("none", "weight"):
        return nn.Identity()
    if kind == "batch":
        return nn.BatchNorm2d(num_features) if spatial_dims == 2 else nn.BatchNorm1d(num_features)
    if kind == "layer":
        if spatial_dims == 0:
            return nn.LayerNorm(num_features)
        return nn.GroupNorm(1, num_features)
    if kind == "group":
        return nn.GroupNorm(group_count(num_features, num_groups), num_features)
    # instance
    if spatial_dims == 0:
        raise ConfigError(
            "norm 'instance' needs spatial positions (spatial_dims 1 or 2): on (N, C) features "
            "each sample-channel statistic would be computed from a single number, so the "
            "output would always be beta; use 'layer' or 'batch' for fully-connected layers"
        )
    cls = nn.InstanceNorm1d if spatial_dims == 1 else nn.InstanceNorm2d
    return cls(num_features, affine=True)


# ---------------------------------------------------------------------------------------
# Weight normalization (§7.5.3)
# ---------------------------------------------------------------------------------------


def _norm_except_dim(v: torch.Tensor, dim: int | None) -> torch.Tensor:
    """L2 norm of ``v`` over every dim but ``dim`` (keepdims); over all of it if None."""
    if dim is None:
        return torch.linalg.vector_norm(v)
    dims = [d for d in range(v.dim()) if d != dim]
    return torch.linalg.vector_norm(v, dim=dims, keepdim=True)


class WeightNorm(nn.Module):
    """Weight normalization of a Linear / Conv layer: ``W_i = g_i v_i / ||v_i||`` (§7.5.3).

    The layer's weight is split into a direction ``v`` (same shape) and a length ``g``,
    one per output unit (``dim=0``, the notes' rows ``W_{i,:}``), or one scalar for the
    whole tensor (``dim=None``). The wrapped layer's weight parameter is removed; ``v``
    starts as that weight and ``g`` as its norm, so the effective weight starts unchanged.
    Same math as ``torch.nn.utils.parametrizations.weight_norm`` (``original0 = g``,
    ``original1 = v``); this wrapper keeps the names of the paper.

    ``data_init=True``: Salimans & Kingma's data-dependent init (§3 of the paper). On the
    first forward in training mode, with ``t = v·x / ||v||`` per output unit, set
    ``g <- 1 / sigma[t]`` and ``b <- -mu[t] / sigma[t]`` (mean and std over the batch and
    positions), so that batch's pre-activations have mean 0 and variance 1 — like one
    step of batch norm that is then frozen into the parameters. The paper also draws
    ``v ~ N(0, 0.05^2)`` first; here ``v`` keeps the layer's init (use ``init_model``).
    """

    def __init__(self, module: nn.Module, dim: int | None = 0, data_init: bool = False) -> None:
        super().__init__()
        conv = isinstance(module, nn.modules.conv._ConvNd)
        if not isinstance(module, nn.Linear) and not (conv and not module.transposed):
            raise ValueError(f"WeightNorm wraps nn.Linear or nn.Conv1d/2d/3d, got {type(module).__name__}")
        weight = module.weight.detach()  # type: ignore[operator]  # Linear/conv: a Parameter
        if dim is not None and not -weight.dim() <= dim < weight.dim():
            raise ValueError(
                f"dim must be None or in [{-weight.dim()}, {weight.dim() - 1}] for a weight "
                f"of shape {tuple(weight.shape)}, got {dim!r}"
            )
        self.dim = None if dim is None else dim % weight.dim()
        if data_init and self.dim != 0:
            raise ValueError(f"data_init=True needs dim=0 (one g per output unit), got dim={dim!r}")
        self.data_init = bool(data_init)
        del module._parameters["weight"]
        self.module = module
        self.v = nn.Parameter(weight.clone())
        self.g = nn.Parameter(_norm_except_dim(weight, self.dim).clone())
        # A buffer, not a Python flag, so a checkpoint restored mid-training skips the init.
        self.register_buffer("initialized", torch.tensor(not self.data_init))

    @property
    def weight(self) -> torch.Tensor:
        """The effective weight ``g * v / ||v||``."""
        return self.g * self.v / _norm_except_dim(self.v, self.dim)

    @torch.no_grad()
    def reset_direction_(self, init_fn: Callable[[torch.Tensor], object]) -> None:
        """Re-initialize ``v`` with ``init_fn`` and set ``g = ||v||`` (used by ``init_model``)."""
        init_fn(self.v.data)
        self.g.copy_(_norm_except_dim(self.v, self.dim))

    def _apply_layer(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if isinstance(self.module, nn.Linear):
            return F.linear(x, weight, bias)
        return self.module._conv_forward(x, weight, bias)  # type: ignore[operator]

    @torch.no_grad()
    def _data_dependent_init(self, x: torch.Tensor) -> None:
        direction = self.v / _norm_except_dim(self.v, self.dim)
        t = self._apply_layer(x, direction, None)
        # Output units sit on the last dim for Linear, on dim 1 for conv.
        unit_dim = t.dim() - 1 if isinstance(self.module, nn.Linear) else 1
        reduce = [d for d in range(t.dim()) if d != unit_dim]
        mean = t.mean(dim=reduce)
        std = t.std(dim=reduce, unbiased=False).clamp_min(1e-6)
        self.g.copy_((1.0 / std).reshape(self.g.shape))
        if self.module.bias is not None:
            self.module.bias.copy_(-mean / std)  # type: ignore[operator]
        self.initialized.fill_(True)  # type: ignore[operator]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and not bool(self.initialized):
            self._data_dependent_init(x)
        return self._apply_layer(x, self.weight, self.module.bias)  # type: ignore[arg-type]

    def extra_repr(self) -> str:
        return f"dim={self.dim}, data_init={self.data_init}"


# ---------------------------------------------------------------------------------------
# Weight standardization (001_*.txt: "Group Normalization (+ weight standardization)")
# ---------------------------------------------------------------------------------------


class WSConv2d(nn.Conv2d):
    """Conv2d with standardized weights (Qiao et al. 2019, eq. 5), for use with GroupNorm.

    Each output filter is standardized over its ``in * kh * kw`` weights before the
    convolution: ``W_hat_i = (W_i - mean(W_i)) / sqrt(var(W_i) + eps)`` with the biased
    variance, as in the paper's equation. The authors' reference code divides by the
    unbiased std plus eps instead (``W / (std + 1e-5)``); the two differ by a factor
    ``sqrt(n / (n - 1))``. Same constructor as ``nn.Conv2d`` plus keyword ``eps``.
    """

    def __init__(self, *args, eps: float = 1e-5, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not eps >= 0:
            raise ValueError(f"eps must be >= 0, got {eps!r}")
        self.eps = eps

    def standardized_weight(self) -> torch.Tensor:
        w = self.weight
        flat = w.reshape(w.shape[0], -1)
        mean = flat.mean(dim=1, keepdim=True)
        var = flat.var(dim=1, unbiased=False, keepdim=True)
        return ((flat - mean) / torch.sqrt(var + self.eps)).reshape(w.shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.standardized_weight(), self.bias)


# ---------------------------------------------------------------------------------------
# Local response normalization (§7.5.4)
# ---------------------------------------------------------------------------------------


class LocalResponseNorm(nn.Module):
    """LRN across channels (§7.5.4; Krizhevsky et al. 2012 §3.3).

    ``style='notes'`` (the notes and AlexNet)::

        Y_hat^p = Y^p / (k + alpha * sum_{j = max(1, p - n/2)}^{min(P, p + n/2)} (Y^j)^2)^beta

    with ``n/2`` taken as ``floor(n/2)`` on both sides (``n + 1`` channels for even
    ``n``, exactly as the bounds read). ``style='torch'``: ``torch.nn.LocalResponseNorm``,
    which divides alpha by ``n`` (``k + alpha/n * sum``) and for even ``n`` uses the
    window ``[p - n/2, p + n/2 - 1]`` (as Caffe). For odd ``n`` the two agree when the
    torch alpha is ``n`` times the notes' alpha. Defaults are AlexNet's: ``n = 5``
    (pass it), ``k = 2``, ``alpha = 1e-4``, ``beta = 0.75`` (torch's default ``k`` is 1).
    Input ``(N, C, *)``; channels are dim 1.
    """

    def __init__(
        self,
        size: int,
        alpha: float = 1e-4,
        beta: float = 0.75,
        k: float = 2.0,
        style: str = "notes",
    ) -> None:
        super().__init__()
        if not (isinstance(size, int) and size >= 1):
            raise ValueError(f"size must be an int >= 1, got {size!r}")
        if style not in ("notes", "torch"):
            raise ValueError(f"style must be 'notes' or 'torch', got {style!r}")
        for name, value in (("alpha", alpha), ("beta", beta), ("k", k)):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if k == 0 and beta > 0:
            # With k = 0 an all-zero window divides 0 by 0.
            raise ValueError("k must be > 0 when beta > 0 (an all-zero window would give 0/0)")
        self.size, self.alpha, self.beta, self.k, self.style = size, alpha, beta, k, style

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 2:
            raise ValueError(f"LocalResponseNorm needs (N, C, *) input, got shape {tuple(x.shape)}")
        size, alpha = self.size, self.alpha
        if self.style == "notes":
            # The notes' window p - n//2 .. p + n//2 has 2*(n//2) + 1 channels (odd), where
            # torch's odd window is centred the same way; torch's alpha/size then needs
            # alpha*size to give the notes' k + alpha * sum. Reusing torch's kernel is ~20%
            # faster than summing an unfolded window here.
            size = 2 * (self.size // 2) + 1
            alpha = self.alpha * size
        # torch's functional needs at least one position dim.
        y = x[..., None] if x.dim() == 2 else x
        y = F.local_response_norm(y, size, alpha, self.beta, self.k)
        return y[..., 0] if x.dim() == 2 else y

    def extra_repr(self) -> str:
        return f"size={self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}, style={self.style!r}"
