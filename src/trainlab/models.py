"""Models of the lab: MLP, CNN (1-D and 2-D), RNN classifiers, logistic regression and deep
linear nets, built by name from the ``[model]`` config section.

Every model takes inputs of the data set's sample shape and returns logits (or, for a
regression task, one value per sample). Normalization, activation, dropout and the
initialization scheme come from config by name, so a comparison changes one key.
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from trainlab.errors import ConfigError, unknown_name

if TYPE_CHECKING:
    from trainlab.train.config import ModelConfig

MODELS = ("mlp", "linear", "deep_linear", "cnn", "rnn", "gru", "lstm")


def _dropout(kind: str, p: float) -> nn.Module:
    if p == 0.0:
        return nn.Identity()
    if kind == "alpha":
        from trainlab.nn import AlphaDropout

        return AlphaDropout(p)
    return nn.Dropout(p)


def _linear(cfg: ModelConfig, fan_in: int, fan_out: int) -> nn.Module:
    if cfg.dropout_type == "dropconnect" and cfg.dropout > 0:
        from trainlab.nn import DropConnectLinear

        layer: nn.Module = DropConnectLinear(fan_in, fan_out, drop=cfg.dropout)
    else:
        layer = nn.Linear(fan_in, fan_out)
    if cfg.norm == "weight":
        from trainlab.nn import WeightNorm

        layer = WeightNorm(layer)
    return layer


class Block(nn.Module):
    """One hidden layer: linear (or conv) -> normalization -> activation -> dropout,
    with an optional identity skip connection when input and output widths agree."""

    def __init__(self, layer: nn.Module, norm: nn.Module, act: nn.Module, drop: nn.Module, residual: bool):
        super().__init__()
        self.layer, self.norm, self.act, self.drop = layer, norm, act, drop
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.drop(self.act(self.norm(self.layer(x))))
        return x + out if self.residual and out.shape == x.shape else out


class MLP(nn.Module):
    """Flatten, hidden blocks, linear output. ``hidden=[]`` is logistic regression."""

    def __init__(self, cfg: ModelConfig, input_shape: tuple[int, ...], out_features: int):
        super().__init__()
        from trainlab.nn import get_activation, make_norm

        width = math.prod(input_shape)
        blocks = []
        for h in cfg.hidden:
            drop = cfg.dropout if cfg.dropout_type != "dropconnect" else 0.0
            blocks.append(
                Block(
                    _linear(cfg, width, h),
                    make_norm(cfg.norm, h, 0, num_groups=cfg.num_groups),
                    get_activation(cfg.activation, num_features=h),  # PReLU: one slope per unit
                    _dropout(cfg.dropout_type, drop),
                    cfg.residual,
                )
            )
            width = h
        self.flatten = nn.Flatten()
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(width, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.flatten(x)))


class DeepLinear(nn.Module):
    """A product of linear maps with no nonlinearity (Saxe et al. 2014): the loss is non-convex
    in the weights although the function is linear, so depth alone shapes the dynamics."""

    def __init__(self, cfg: ModelConfig, input_shape: tuple[int, ...], out_features: int):
        super().__init__()
        widths = [math.prod(input_shape), *cfg.hidden, out_features]
        self.flatten = nn.Flatten()
        self.layers = nn.Sequential(*(nn.Linear(a, b, bias=cfg.bias) for a, b in itertools.pairwise(widths)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(self.flatten(x))


def _per_layer(key: str, value: int | list[int], layers: int) -> list[int]:
    """One value per conv layer: a single number repeated, or a list with one per layer."""
    if isinstance(value, int):
        return [value] * layers
    if len(value) != layers:
        raise ConfigError(
            f"model.{key} lists {len(value)} values for {layers} conv layers (model.channels); give one per layer or a single number"
        )
    return list(value)


class CNN(nn.Module):
    """Conv blocks (kernel ``kernel_size``, stride ``stride``, zero padding ``padding``) then a linear head.

    ``kernel_size`` and ``padding`` are one number for every layer or a list with one per
    layer (``channels``); ``padding`` defaults to ``kernel_size // 2`` per layer. Greydanus's
    MNIST-1D CNN, for instance, is ``channels = [25, 25, 25]``, ``kernel_size = [5, 3, 3]``,
    ``padding = 1``, ``stride = 2`` (greydanus/mnist1d ``notebooks/models.py``, ``ConvBase``).
    A 1-D signal of shape (L,) is treated as (1, L); (C, L) uses Conv1d, (C, H, W) Conv2d.
    """

    def __init__(self, cfg: ModelConfig, input_shape: tuple[int, ...], out_features: int):
        super().__init__()
        from trainlab.nn import WeightNorm, get_activation, make_norm

        shape = (1, *input_shape) if len(input_shape) == 1 else input_shape
        if len(shape) not in (2, 3):
            raise ConfigError(f"model.name = 'cnn' needs inputs of shape (L,), (C, L) or (C, H, W); got {input_shape}")
        self.sample_shape = shape
        dims = len(shape) - 1
        length = min(shape[1:])
        widest = max(cfg.kernel_size, default=0) if isinstance(cfg.kernel_size, list) else cfg.kernel_size
        if widest > length:  # a kernel wider than the signal only sees padding (and crashed torch natively)
            raise ConfigError(
                f"model.kernel_size = {cfg.kernel_size} is larger than the input ({'x'.join(map(str, shape[1:]))}); "
                f"use at most {length}"
            )
        conv_cls = nn.Conv1d if dims == 1 else nn.Conv2d
        blocks, channels = [], shape[0]
        kernels = _per_layer("kernel_size", cfg.kernel_size, len(cfg.channels))
        paddings = (
            [k // 2 for k in kernels] if cfg.padding is None else _per_layer("padding", cfg.padding, len(cfg.channels))
        )
        for c, k, pad in zip(cfg.channels, kernels, paddings):
            conv: nn.Module = conv_cls(channels, c, k, stride=cfg.stride, padding=pad)
            if cfg.norm == "weight":
                conv = WeightNorm(conv)
            blocks.append(
                Block(
                    conv,
                    make_norm(cfg.norm, c, dims, num_groups=cfg.num_groups),
                    get_activation(cfg.activation, num_features=c),
                    _dropout(cfg.dropout_type, cfg.dropout),
                    False,
                )
            )
            channels = c
        self.features = nn.Sequential(*blocks)
        with torch.no_grad():
            self.features.eval()
            n_flat = self.features(torch.zeros(1, *shape)).numel()
            self.features.train()
        self.flatten = nn.Flatten()
        self.head = nn.Linear(n_flat, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(len(x), *self.sample_shape)
        return self.head(self.flatten(self.features(x)))


class RNNClassifier(nn.Module):
    """A recurrent net over the sequence, then a linear head on its outputs.

    ``readout = "last"`` feeds the head the final state of each direction (the last step's
    output; with ``bidirectional`` also the backward direction's output at step 1, which has
    read the whole sequence); ``readout = "all"`` feeds it every step's outputs flattened,
    T · H features (2 · T · H bidirectional), as Greydanus's MNIST-1D GRU does
    (greydanus/mnist1d ``notebooks/models.py``, ``GRUBase``: hidden 6, bidirectional, a linear
    layer on all 40 steps).
    Inputs (T, F) are sequences of T steps; a 1-D signal (L,) is a sequence of L scalars.
    ``norm = "layer"`` uses layer-normalized cells (Ba et al. 2016); ``dropout_type`` is
    "naive" (Zaremba et al. 2014) or "variational" (Gal & Ghahramani 2016).
    """

    def __init__(self, cfg: ModelConfig, input_shape: tuple[int, ...], out_features: int):
        super().__init__()
        from trainlab.nn import RecurrentNet

        if len(set(cfg.hidden)) != 1:
            raise ConfigError(
                f"model.hidden for an RNN lists one width per layer and they must be equal, got {cfg.hidden}"
            )
        if cfg.norm not in ("none", "layer"):
            raise ConfigError(
                f"model.norm = '{cfg.norm}' is not available for RNNs; use 'none' or 'layer' (batch norm does not fit recurrences)"
            )
        self.seq_shape = (input_shape[0], 1) if len(input_shape) == 1 else input_shape
        if len(self.seq_shape) != 2:
            raise ConfigError(f"model.name = '{cfg.name}' needs inputs of shape (T,) or (T, F); got {input_shape}")
        mode = cfg.dropout_type if cfg.dropout_type in ("naive", "variational") else "naive"
        features = self.seq_shape[1]
        # Layer norm of W·x for a scalar x keeps only sign(x); an affine embedding first
        # (with a bias) gives the normalized pre-activation the input's magnitude back.
        self.embed: nn.Module = nn.Identity()
        if cfg.norm == "layer" and features == 1:
            features = 8
            self.embed = nn.Linear(1, features)
        self.rnn = RecurrentNet(
            cfg.name,
            features,
            cfg.hidden[0],
            num_layers=len(cfg.hidden),
            layer_norm=cfg.norm == "layer",
            dropout=cfg.dropout,
            dropout_mode=mode,
            bidirectional=cfg.bidirectional,
        )
        self.readout = cfg.readout
        width = self.rnn.output_size
        self.head = nn.Linear(width * self.seq_shape[0] if cfg.readout == "all" else width, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.rnn(self.embed(x.reshape(len(x), *self.seq_shape)))
        if self.readout == "all":
            return self.head(out.flatten(1))
        if self.rnn.bidirectional:  # each direction's final state
            hidden = self.rnn.hidden_size
            return self.head(torch.cat([out[:, -1, :hidden], out[:, 0, hidden:]], dim=-1))
        return self.head(out[:, -1])


_BUILDERS = {
    "mlp": MLP,
    "linear": MLP,
    "deep_linear": DeepLinear,
    "cnn": CNN,
    "rnn": RNNClassifier,
    "gru": RNNClassifier,
    "lstm": RNNClassifier,
}


def build_model(cfg: ModelConfig, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Build the model named by ``cfg.name`` for samples of ``input_shape``; ``num_classes == 0``
    means regression (one output). Applies ``cfg.init`` unless it is "default"."""
    if cfg.name not in _BUILDERS:
        raise unknown_name("model", cfg.name, MODELS)
    if cfg.name == "linear" and cfg.hidden:
        cfg = cfg.model_copy(update={"hidden": []})
    out = num_classes if num_classes > 0 else 1
    model = _BUILDERS[cfg.name](cfg, tuple(input_shape), out)
    if cfg.init != "default":
        from trainlab.init import init_model

        options = {
            k: v for k, v in (("std", cfg.init_std), ("gain", cfg.init_gain), ("bias", cfg.init_bias)) if v is not None
        }
        nonlinearity = "linear" if cfg.name == "deep_linear" else cfg.activation
        init_model(model, cfg.init, nonlinearity=nonlinearity, **options)
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
