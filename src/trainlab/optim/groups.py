"""Parameter groups: weight decay on weights, none on biases, normalization and gains.

Decaying a bias or a normalization scale does not reduce the capacity the penalty is meant to
limit (notes 003 §L2: "通常只对权重做惩罚而不对偏置做惩罚"), and pulling a LayerNorm/BatchNorm
gain towards 0 fights the normalization. torch has no helper for this (pytorch #1402).
"""

from __future__ import annotations

from typing import Any

from torch import nn

# Every parameter of these modules is a scale or a shift of a normalization.
NORM_MODULES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._NormBase,  # BatchNorm*d, InstanceNorm*d, SyncBatchNorm
    nn.LayerNorm,
    nn.GroupNorm,
    nn.RMSNorm,
    nn.LocalResponseNorm,
)
# Gains of weight normalization (Salimans & Kingma 2016): trainlab.nn.WeightNorm's `g`,
# torch's old weight_norm `weight_g`. They are 2-D (out, 1), so the 1-D rule misses them.
GAIN_NAMES = ("g", "weight_g")


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two optimizer groups: ``[{"params": decayed, "weight_decay": weight_decay},
    {"params": not_decayed, "weight_decay": 0.0}]``; an empty group is left out.

    Not decayed: 1-D and scalar parameters (biases, norm scales and shifts), every parameter
    of a normalization module (``NORM_MODULES``), weight-norm gains (``GAIN_NAMES``), and the
    names or module prefixes that ``model.no_weight_decay()`` returns (timm's convention).
    Parameters shared between modules are listed once.

    Example::

        opt = trainlab.optim.AdamW(param_groups(model, 0.05), lr=1e-3)
    """
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)) or not weight_decay >= 0:
        raise ValueError(f"weight_decay must be a number >= 0, got {weight_decay!r}")
    skip = set(model.no_weight_decay()) if hasattr(model, "no_weight_decay") else set()  # type: ignore[operator]
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    seen: set[int] = set()
    for module_name, module in model.named_modules():
        for leaf, p in module.named_parameters(recurse=False):
            if id(p) in seen:
                continue
            seen.add(id(p))
            name = f"{module_name}.{leaf}" if module_name else leaf
            exempt = (
                p.ndim <= 1
                or isinstance(module, NORM_MODULES)
                or leaf in GAIN_NAMES
                or any(name == s or name.startswith(f"{s}.") for s in skip)
            )
            (no_decay if exempt else decay).append(p)
    groups = [{"params": decay, "weight_decay": float(weight_decay)}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]
