"""Parameter initialization (notes ``000_*.txt`` §7.3, ``002_*.txt`` §6, ``004_*.txt``).

The notes name three families (§7.3): pre-trained, random and fixed-value initialization.
Random initialization breaks the *symmetric weights* problem of ``002_*.txt``: units of a
layer that start equal receive equal gradients and stay equal forever. This module gives the
random initializers of §7.3.1-§7.3.3 as in-place functions on one tensor and
:func:`init_model`, which applies a scheme to every weight of a model.

Fans (the ``M_{l-1}``, ``M_l`` of the notes). For a weight of shape ``(out, in, *kernel)``
``fan_in = in * prod(kernel)`` and ``fan_out = out * prod(kernel)``: a conv unit sees
``in`` channels times its receptive field, the same convention as torch and Keras.

=================  ===============================  ==================================
scheme             variance of each weight          source
=================  ===============================  ==================================
normal             ``std**2`` (fixed)               §7.3.1; ``002_*.txt`` (std 0.01)
uniform            ``r**2 / 3`` on ``[-r, r]``      §7.3.1, ``r = sqrt(3 sigma^2)``
xavier_normal      ``gain^2 * 2 / (fan_in+fan_out)``  §7.3.2; Glorot & Bengio 2010
xavier_uniform     ``r = gain*sqrt(6/(fan_in+fan_out))``  §7.3.2
he_normal          ``2 / ((1 + a^2) fan_in)``       §7.3.2; He et al. 2015
he_uniform         ``r = sqrt(6 / ((1 + a^2) fan_in))``  §7.3.2
lecun_normal       ``1 / fan_in``                   ``004_*.txt`` (SELU); LeCun et al. 1998
lecun_uniform      ``r = sqrt(3 / fan_in)``
orthogonal         ``W^T W = gain^2 I``              §7.3.3; Saxe et al. 2014
=================  ===============================  ==================================

Differences from torch / Keras: Keras draws its ``*_normal`` initializers from a normal
truncated at two standard deviations (rescaled so the variance is still the formula's);
here, as in torch, they are plain normals. The notes' "×16 variance for the logistic
function" (§7.3.2) is Xavier with ``gain=4``; torch's ``calculate_gain('sigmoid')`` is 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from trainlab.errors import ConfigError, unknown_name

__all__ = [
    "SCHEMES",
    "compute_fans",
    "constant_",
    "default_gain",
    "he_normal_",
    "he_uniform_",
    "init_model",
    "lecun_normal_",
    "lecun_uniform_",
    "lstm_forget_bias_",
    "normal_",
    "orthogonal_",
    "uniform_",
    "uniform_from_variance_",
    "xavier_normal_",
    "xavier_uniform_",
]

# ---------------------------------------------------------------------------------------
# Fans and argument checks
# ---------------------------------------------------------------------------------------


def compute_fans(t: torch.Tensor) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of shape ``(out, in, *kernel)``.

    A 1-D tensor has no fan-in/fan-out distinction; it is rejected, as in torch.
    """
    if t.dim() < 2:
        raise ValueError(
            f"fan-in/fan-out need a weight with at least 2 dimensions (out, in, *kernel); got shape {tuple(t.shape)}"
        )
    receptive_field = math.prod(t.shape[2:])
    return t.shape[1] * receptive_field, t.shape[0] * receptive_field


def _check_nonnegative(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def _check_mode(mode: str) -> None:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")


# ---------------------------------------------------------------------------------------
# Fixed-variance initializers (§7.3.1)
# ---------------------------------------------------------------------------------------


@torch.no_grad()
def constant_(t: torch.Tensor, value: float) -> torch.Tensor:
    """Fill ``t`` with ``value`` (fixed-value init, §7.3: biases 0, ReLU biases 0.01)."""
    return t.fill_(value)


@torch.no_grad()
def normal_(
    t: torch.Tensor, std: float, mean: float = 0.0, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Gaussian init ``w ~ N(mean, std^2)`` (§7.3.1; ``002_*.txt``: ``W = sigma * randn``)."""
    _check_nonnegative("std", std)
    return t.normal_(mean, std, generator=generator)


@torch.no_grad()
def uniform_(t: torch.Tensor, r: float, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Uniform init on ``[-r, r]``; its variance is ``(2r)^2 / 12 = r^2 / 3`` (§7.3.1)."""
    _check_nonnegative("r", r)
    return t.uniform_(-r, r, generator=generator)


def uniform_from_variance_(
    t: torch.Tensor, variance: float, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Uniform init with a given variance: ``r = sqrt(3 sigma^2)`` (§7.3.1)."""
    _check_nonnegative("variance", variance)
    return uniform_(t, math.sqrt(3.0 * variance), generator=generator)


def _normal_with_variance(t: torch.Tensor, variance: float, generator: torch.Generator | None) -> torch.Tensor:
    return normal_(t, math.sqrt(variance), generator=generator)


# ---------------------------------------------------------------------------------------
# Variance-scaling initializers (§7.3.2)
# ---------------------------------------------------------------------------------------


def _xavier_variance(t: torch.Tensor, gain: float) -> float:
    _check_nonnegative("gain", gain)
    fan_in, fan_out = compute_fans(t)
    return gain**2 * 2.0 / (fan_in + fan_out)


def xavier_normal_(t: torch.Tensor, gain: float = 1.0, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Xavier/Glorot normal: ``var(w) = gain^2 * 2 / (M_{l-1} + M_l)`` (§7.3.2).

    The notes' compromise between forward (``1/M_{l-1}``) and backward (``1/M_l``)
    variance. For the logistic function they use ``16x`` the variance (its slope at 0 is
    1/4), i.e. ``gain=4``; torch and Keras use gain 1 for sigmoid.
    """
    return _normal_with_variance(t, _xavier_variance(t, gain), generator)


def xavier_uniform_(t: torch.Tensor, gain: float = 1.0, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Xavier/Glorot uniform on ``[-r, r]``, ``r = gain * sqrt(6 / (M_{l-1} + M_l))`` (§7.3.2)."""
    return uniform_from_variance_(t, _xavier_variance(t, gain), generator=generator)


def _he_variance(t: torch.Tensor, negative_slope: float, mode: str) -> float:
    _check_mode(mode)
    if not math.isfinite(negative_slope):
        raise ValueError(f"negative_slope must be a finite number, got {negative_slope!r}")
    fan_in, fan_out = compute_fans(t)
    fan = fan_in if mode == "fan_in" else fan_out
    return 2.0 / ((1.0 + negative_slope**2) * fan)


def he_normal_(
    t: torch.Tensor,
    negative_slope: float = 0.0,
    mode: str = "fan_in",
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """He/Kaiming normal: ``var(w) = 2 / ((1 + a^2) M_{l-1})`` (§7.3.2; He et al. 2015).

    ReLU zeroes half of its inputs, halving the output variance, hence the 2 (the notes
    derive ``var(w) = 2 / M_{l-1}``). ``a`` is the negative slope of a leaky ReLU / PReLU
    (He et al. eq. 15); ``a = 0`` is ReLU. ``mode='fan_out'`` preserves the backward
    variance instead. Same as ``torch.nn.init.kaiming_normal_(t, a, mode, 'leaky_relu')``.
    """
    return _normal_with_variance(t, _he_variance(t, negative_slope, mode), generator)


def he_uniform_(
    t: torch.Tensor,
    negative_slope: float = 0.0,
    mode: str = "fan_in",
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """He/Kaiming uniform on ``[-r, r]``, ``r = sqrt(6 / ((1 + a^2) M_{l-1}))``."""
    return uniform_from_variance_(t, _he_variance(t, negative_slope, mode), generator=generator)


def lecun_normal_(t: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """LeCun normal: ``var(w) = 1 / M_{l-1}`` — the init SELU needs (``004_*.txt``).

    Klambauer et al. 2017 derive SELU's fixed point (mean 0, variance 1) for weights with
    ``sum_i w_i = 0`` and ``sum_i w_i^2 = 1``, i.e. variance ``1 / fan_in``. Keras draws
    from a normal truncated at 2 std (rescaled to the same variance); this is a plain
    normal, as torch's SELU documentation recommends.
    """
    fan_in, _ = compute_fans(t)
    return _normal_with_variance(t, 1.0 / fan_in, generator)


def lecun_uniform_(t: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """LeCun uniform on ``[-r, r]``, ``r = sqrt(3 / M_{l-1})``."""
    fan_in, _ = compute_fans(t)
    return uniform_from_variance_(t, 1.0 / fan_in, generator=generator)


# ---------------------------------------------------------------------------------------
# Orthogonal initialization (§7.3.3)
# ---------------------------------------------------------------------------------------


@torch.no_grad()
def orthogonal_(
    t: torch.Tensor,
    gain: float = 1.0,
    method: str = "svd",
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Orthogonal init (§7.3.3; Saxe et al. 2014): ``W^T W = gain^2 I`` or ``W W^T = gain^2 I``.

    The notes' recipe: draw a matrix from ``N(0, 1)``, take one orthogonal factor of its
    SVD (``method='svd'``). ``method='qr'`` uses the QR factor with the signs of
    ``diag(R)`` folded in (Mezzadri 2007), which is what torch does and is cheaper; both
    give a uniformly (Haar) distributed orthogonal matrix. A tensor of shape
    ``(out, *rest)`` is flattened to ``(out, prod(rest))``: the rows are orthonormal if
    ``out <= prod(rest)``, else the columns are. ``gain`` scales the matrix, as the notes
    ask for non-linear networks (torch's gains: ReLU sqrt(2), tanh 5/3).
    Factorization runs in float64 so the result is orthogonal to float32 precision.
    """
    _check_nonnegative("gain", gain)
    if method not in ("svd", "qr"):
        raise ValueError(f"method must be 'svd' or 'qr', got {method!r}")
    if t.dim() < 2:
        raise ValueError(f"orthogonal_ needs at least 2 dimensions, got shape {tuple(t.shape)}")
    rows = t.shape[0]
    cols = t.numel() // rows
    gaussian = torch.randn(rows, cols, dtype=torch.float64, generator=generator, device=t.device)
    if method == "svd":
        u, _, vh = torch.linalg.svd(gaussian, full_matrices=False)
        # u is (rows, k), vh is (k, cols) with k = min(rows, cols): pick the one of full shape.
        q = u if rows >= cols else vh
    else:
        tall = gaussian if rows >= cols else gaussian.T
        q, r = torch.linalg.qr(tall)
        q = q * torch.sign(torch.diagonal(r)).where(torch.diagonal(r) != 0, 1.0)
        q = q if rows >= cols else q.T
    return t.copy_((gain * q).reshape(t.shape))


# ---------------------------------------------------------------------------------------
# Fixed biases (§7.3)
# ---------------------------------------------------------------------------------------


@torch.no_grad()
def lstm_forget_bias_(lstm: nn.Module, value: float = 1.0) -> nn.Module:
    """Set the forget-gate bias of every ``nn.LSTM`` / ``nn.LSTMCell`` in ``lstm`` to ``value``.

    §7.3: initializing the forget gate to 1 or 2 keeps the cell state — and the gradient
    through time — from decaying early in training (Jozefowicz et al. 2015). torch stacks
    gates as ``(i, f, g, o)``, so the forget slice is rows ``[H, 2H)``. torch has two biases
    (``b_ih + b_hh``); ``b_ih`` gets ``value`` and ``b_hh`` gets 0 so their sum is ``value``,
    the single bias of Keras' ``unit_forget_bias``.
    """
    if not math.isfinite(value):
        raise ValueError(f"value must be a finite number, got {value!r}")
    found = False
    for module in lstm.modules():
        if not isinstance(module, (nn.LSTM, nn.LSTMCell)):
            continue
        found = True
        hidden = module.hidden_size
        for name, param in module.named_parameters(recurse=False):
            if name.startswith("bias_ih"):
                param[hidden : 2 * hidden] = value
            elif name.startswith("bias_hh"):
                param[hidden : 2 * hidden] = 0.0
    if not found:
        raise ValueError(
            f"lstm_forget_bias_ needs an nn.LSTM / nn.LSTMCell (or a model containing one); got {type(lstm).__name__}"
        )
    return lstm


# ---------------------------------------------------------------------------------------
# init_model: a scheme for every weight of a model
# ---------------------------------------------------------------------------------------

_ALIASES = {"xavier": "xavier_normal", "he": "he_normal", "lecun": "lecun_normal"}

# Options every scheme takes; scheme-specific ones are listed in _SCHEME_OPTIONS.
_COMMON_OPTIONS = ("bias", "lstm_forget_bias")
_SCHEME_OPTIONS: dict[str, tuple[str, ...]] = {
    "default": (),
    "zeros": (),
    "normal": ("std",),
    "uniform": ("std",),
    "xavier_uniform": ("gain",),
    "xavier_normal": ("gain",),
    "he_uniform": ("negative_slope", "mode"),
    "he_normal": ("negative_slope", "mode"),
    "lecun_uniform": (),
    "lecun_normal": (),
    "orthogonal": ("gain", "method"),
}

SCHEMES: tuple[str, ...] = tuple(_SCHEME_OPTIONS) + tuple(_ALIASES)
"""Names usable as ``[model] init = ...`` (aliases: xavier, he, lecun)."""

# Slope of the negative part of each leaky activation, for He's (1 + a^2).
_NEGATIVE_SLOPE = {"leaky_relu": 0.01, "prelu": 0.25}

# Orthogonal gains that keep the forward variance, as torch.nn.init.calculate_gain.
_ORTHOGONAL_GAIN = {"relu": math.sqrt(2.0), "tanh": 5.0 / 3.0, "selu": 3.0 / 4.0}


def default_gain(scheme: str, nonlinearity: str | None) -> float:
    """The gain :func:`init_model` uses for ``scheme`` when no ``gain`` option is given.

    * xavier: 4 for ``sigmoid`` (the notes' ×16 variance, §7.3.2), else 1 (Glorot's
      derivation assumes the linear regime of tanh; Keras uses 1 everywhere).
    * orthogonal: torch's ``calculate_gain`` — sqrt(2) for relu, sqrt(2/(1+a^2)) for
      leaky_relu/prelu, 5/3 for tanh, 3/4 for selu, 1 otherwise.
    """
    if scheme.startswith("xavier"):
        return 4.0 if nonlinearity == "sigmoid" else 1.0
    if scheme == "orthogonal":
        if nonlinearity in _NEGATIVE_SLOPE:
            return math.sqrt(2.0 / (1.0 + _NEGATIVE_SLOPE[nonlinearity] ** 2))
        return _ORTHOGONAL_GAIN.get(nonlinearity or "linear", 1.0)
    return 1.0


def _weight_initializer(
    scheme: str, nonlinearity: str | None, options: dict[str, Any]
) -> Callable[[torch.Tensor], Any] | None:
    """The in-place function for weights of ``scheme``; None leaves them untouched."""
    if scheme == "default":
        return None
    if scheme == "zeros":
        return lambda w: constant_(w, 0.0)
    if scheme in ("normal", "uniform"):
        std = options.get("std", 0.01)
        _check_nonnegative("std", std)
        if scheme == "normal":
            return lambda w: normal_(w, std)
        return lambda w: uniform_from_variance_(w, std**2)
    if scheme.startswith("xavier") or scheme == "orthogonal":
        gain = options.get("gain", default_gain(scheme, nonlinearity))
        _check_nonnegative("gain", gain)
        if scheme == "orthogonal":
            method = options.get("method", "svd")
            return lambda w: orthogonal_(w, gain, method)
        xavier = xavier_normal_ if scheme == "xavier_normal" else xavier_uniform_
        return lambda w: xavier(w, gain)
    if scheme.startswith("he"):
        slope = options.get("negative_slope", _NEGATIVE_SLOPE.get(nonlinearity or "", 0.0))
        mode = options.get("mode", "fan_in")
        _check_mode(mode)
        he = he_normal_ if scheme == "he_normal" else he_uniform_
        return lambda w: he(w, slope, mode)
    return lecun_normal_ if scheme == "lecun_normal" else lecun_uniform_


def _recurrent_gates(module: nn.Module) -> int | None:
    """Gate count of a torch-style recurrent module (``weight_hh*`` of shape (gates*H, H))."""
    w_hh = getattr(module, "weight_hh_l0", getattr(module, "weight_hh", None))
    hidden = getattr(module, "hidden_size", None)
    if not isinstance(w_hh, torch.Tensor) or w_hh.dim() != 2 or not hidden:
        return None
    return w_hh.shape[0] // hidden


def _init_recurrent(
    module: nn.Module,
    gates: int,
    init_weight: Callable[[torch.Tensor], Any] | None,
    bias: float | None,
) -> None:
    # Each gate has its own input and recurrent matrix (stacked along dim 0 by torch):
    # initializing them one by one gives each its own fans and, for orthogonal, makes every
    # recurrent matrix U_gate orthogonal — the norm preservation §7.3.3 asks for.
    for name, param in module.named_parameters(recurse=False):
        if name.startswith("weight") and init_weight is not None:
            for block in param.data.chunk(gates, dim=0):
                init_weight(block)
        elif name.startswith("bias") and bias is not None:
            constant_(param, bias)


def init_model(model: nn.Module, scheme: str, nonlinearity: str | None = None, **options: Any) -> nn.Module:
    """Apply ``scheme`` to every Linear / Conv / RNN / LSTM / GRU weight of ``model``; returns it.

    Args:
        scheme: one of :data:`SCHEMES`. ``"default"`` leaves torch's own init untouched.
        nonlinearity: the model's activation name (as in ``trainlab.nn.get_activation``);
            sets the gain (see :func:`default_gain`) and He's negative slope (0.01 for
            leaky_relu, 0.25 for prelu).
        options: ``bias`` (value for every bias, default 0; the notes' 0.01 for ReLU
            units), ``lstm_forget_bias`` (see :func:`lstm_forget_bias_`, applied after the
            biases), and per scheme: ``std`` (normal, uniform; default 0.01),
            ``gain`` (xavier, orthogonal), ``negative_slope`` and ``mode`` (he),
            ``method`` (orthogonal).

    Modules handled: ``nn.Linear``, ``nn.Conv1d/2d/3d`` and subclasses such as
    ``WSConv2d`` (transposed convolutions are left alone: their fans are swapped);
    ``trainlab.nn.WeightNorm`` (the direction ``v`` gets the scheme and the length ``g`` is
    set to ``||v||``, so the effective weight starts equal to the scheme's); recurrent
    modules with torch's parameter names (``nn.RNN/LSTM/GRU``, their cells, trainlab's
    layer-norm cells), initialized gate by gate. Norm layers (and the layer-norm cells'
    LN gains and biases) are left alone. With ``"default"`` biases are only touched when
    ``bias`` is given.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module, got {type(model).__name__}")
    if scheme not in SCHEMES:
        raise unknown_name("init scheme", scheme, SCHEMES)
    scheme = _ALIASES.get(scheme, scheme)
    allowed = _COMMON_OPTIONS + _SCHEME_OPTIONS[scheme]
    unexpected = sorted(set(options) - set(allowed))
    if unexpected:
        raise ConfigError(
            f"init scheme '{scheme}' does not take option(s) {', '.join(unexpected)}; it takes: {', '.join(allowed)}"
        )
    if nonlinearity is not None:
        from trainlab.nn.activations import ACTIVATIONS

        if nonlinearity not in ACTIVATIONS:
            raise unknown_name("activation", nonlinearity, ACTIVATIONS)

    init_weight = _weight_initializer(scheme, nonlinearity, options)
    bias = options.get("bias", None if scheme == "default" else 0.0)
    if bias is not None and not (isinstance(bias, (int, float)) and math.isfinite(bias)):
        raise ConfigError(f"init option bias must be a finite number, got {bias!r}")

    from trainlab.nn.norm import WeightNorm

    for module in model.modules():
        if isinstance(module, WeightNorm):
            if init_weight is not None:
                module.reset_direction_(init_weight)
            continue
        gates = _recurrent_gates(module)
        if gates is not None:
            _init_recurrent(module, gates, init_weight, bias)
            continue
        is_conv = isinstance(module, nn.modules.conv._ConvNd) and not module.transposed
        if isinstance(module, nn.Linear) or is_conv:
            weight = getattr(module, "weight", None)
            if isinstance(weight, nn.Parameter) and init_weight is not None:
                init_weight(weight.data)
            if module.bias is not None and bias is not None:
                constant_(module.bias, bias)  # type: ignore[arg-type]

    forget = options.get("lstm_forget_bias")
    if forget is not None:
        lstm_forget_bias_(model, forget)
    return model
