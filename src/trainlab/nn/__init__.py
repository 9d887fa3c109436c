"""Layers of the notes: activations, normalization, dropout variants, recurrent cells.

Names resolve lazily, so ``import trainlab.nn`` stays cheap and each submodule is
imported only when one of its names is used.
"""

from __future__ import annotations

from trainlab._lazy import lazy_exports

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
    "geometric_mean_predict": "dropout",
    "normalized_geometric_mean": "dropout",
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

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
