"""Layers of the notes: activations, normalization, dropout variants, recurrent cells.

Names resolve lazily, so ``import trainlab.nn`` stays cheap and each submodule is
imported only when one of its names is used.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    # activations.py
    "get_activation": "activations",
    "ACTIVATIONS": "activations",
    "HardSigmoid": "activations",
    "ThresholdedReLU": "activations",
    # norm.py
    "make_norm": "norm",
    "NORMS": "norm",
    "group_count": "norm",
    "LocalResponseNorm": "norm",
    "WeightNorm": "norm",
    "WSConv2d": "norm",
    # dropout.py
    "DropConnectLinear": "dropout",
    "AlphaDropout": "dropout",
    "mc_predict": "dropout",
    "is_dropout": "dropout",
    # recurrent.py
    "LockedDropout": "recurrent",
    "LayerNormRNNCell": "recurrent",
    "GRUCell": "recurrent",
    "dropout_mask": "recurrent",
    "LayerNormLSTMCell": "recurrent",
    "LayerNormGRUCell": "recurrent",
    "LayerNormLSTM": "recurrent",
    "LayerNormGRU": "recurrent",
    "RecurrentNet": "recurrent",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'trainlab.nn' has no attribute '{name}'") from None
    return getattr(importlib.import_module(f"trainlab.nn.{module}"), name)


def __dir__():
    return __all__
