"""Optimizers of the notes (000 §7.2), gradient clipping, and weight-decay parameter groups.

Every optimizer is a ``torch.optim.Optimizer`` (param groups, ``state_dict``, closures,
schedulers) built on one shared multi-tensor core (``_base.py``); torch's fused kernels are
used where they compute exactly the requested rule. In your own loop::

    opt = trainlab.optim.create("adamw", model, lr=1e-3)   # no decay on biases/norms
    loss.backward(); trainlab.optim.clip_grad_norm_(model.parameters(), 1.0)
    opt.step(); opt.zero_grad()
"""

from __future__ import annotations

import inspect
import typing
from typing import Any

import torch
from torch import nn

from trainlab.errors import ConfigError, unknown_name
from trainlab.optim.adam import Adam, AdamW, Nadam
from trainlab.optim.adaptive import AdaDelta, AdaGrad, RMSprop
from trainlab.optim.clip import clip_grad_norm_, clip_grad_value_
from trainlab.optim.groups import param_groups
from trainlab.optim.sgd import SGD

_REGISTRY: dict[str, type[torch.optim.Optimizer]] = {
    "sgd": SGD,
    "adagrad": AdaGrad,
    "rmsprop": RMSprop,
    "adadelta": AdaDelta,
    "adam": Adam,
    "adamw": AdamW,
    "nadam": Nadam,
}
OPTIMIZERS: tuple[str, ...] = tuple(_REGISTRY)

__all__ = [
    "OPTIMIZERS", "SGD", "AdaDelta", "AdaGrad", "Adam", "AdamW", "Nadam", "RMSprop",
    "clip_grad_norm_", "clip_grad_value_", "create", "option_types", "options", "param_groups",
]  # fmt: skip


def options(name: str) -> dict[str, Any]:
    """The keyword arguments optimizer ``name`` takes, with their defaults (in order)."""
    signature = inspect.signature(_lookup(name).__init__)
    return {k: p.default for k, p in signature.parameters.items() if k not in ("self", "params")}


def option_types(name: str) -> dict[str, Any]:
    """The type annotation of each keyword argument optimizer ``name`` takes (what the run
    config's ``[optim]`` section validates its keys against)."""
    cls = _lookup(name)
    hints = typing.get_type_hints(cls.__init__)
    return {k: hints.get(k, Any) for k in options(name)}


def create(
    name: str, params_or_model: nn.Module | Any, *, decay_norm_and_bias: bool = False, **kwargs: Any
) -> torch.optim.Optimizer:
    """Build optimizer ``name`` (one of ``OPTIMIZERS``, any case) with ``kwargs``.

    Given an ``nn.Module``, biases, normalization parameters and gains get no weight decay
    (:func:`param_groups`) unless ``decay_norm_and_bias=True``; given parameters or groups,
    they are passed on as they are. An option the optimizer does not take is an error that
    lists the ones it does: ``adam does not take 'momentum'; it takes: lr, betas, ...``.
    """
    cls, accepted = _lookup(name), options(name)
    for key in kwargs:
        if key not in accepted:
            raise ConfigError(f"{name.lower()} does not take '{key}'; it takes: {', '.join(accepted)}")
    if not isinstance(decay_norm_and_bias, bool):
        raise ConfigError(f"decay_norm_and_bias must be True or False, got {decay_norm_and_bias!r}")
    params = params_or_model
    if isinstance(params_or_model, nn.Module):
        if decay_norm_and_bias:
            params = params_or_model.parameters()
        else:
            params = param_groups(params_or_model, kwargs.get("weight_decay", accepted.get("weight_decay", 0.0)))
    return cls(params, **kwargs)  # type: ignore[arg-type]


def _lookup(name: str) -> type[torch.optim.Optimizer]:
    key = name.lower() if isinstance(name, str) else name
    if key not in _REGISTRY:
        raise unknown_name("optimizer", str(name), OPTIMIZERS)
    return _REGISTRY[key]
