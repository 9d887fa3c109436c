"""Data, model and loss of a run, from its config or from the Python objects ``trainlab.fit``
was given: built-in names, registered names and entry points, or ``target`` code.

The checks that make a user's code fail in one line before a run exists live here too:
the model's output for a probe batch must fit the task (K outputs for K classes, one value
per sample for a regression), class labels must be below the model's output count, and
``model.init_from`` weights must match the model's parameter names and shapes exactly.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from trainlab import targets
from trainlab.data import Dataset
from trainlab.errors import ConfigError
from trainlab.train.config import RunConfig

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class Parts:
    """What ``trainlab.fit`` passes instead of config names: a model (or ``seed -> model``),
    the three splits, a loss and metrics. None: built from the config."""

    model: Any = None
    train: Any = None
    val: Any = None
    test: Any = None
    loss: LossFn | None = None
    metrics: dict[str, Callable[[torch.Tensor, torch.Tensor], Any]] | None = None
    optimizer: Any = None  # an Optimizer or a params -> Optimizer callable


def data(cfg: RunConfig, parts: Parts | None = None) -> Any:
    """The run's data: a :class:`~trainlab.data.Dataset` (in memory) or a
    :class:`~trainlab.data.sources.LoaderData`; None for a built-in data set (the trainer
    loads it as before)."""
    d = cfg.data
    if parts is not None and parts.train is not None:
        splits, source = (parts.train, parts.val, parts.test), "trainlab.fit data"
    elif d.target or (d.name not in _builtin_datasets() and not d.python):
        key = "data.target" if d.target else "data.name"
        fn, label = _callable("data", cfg)
        from trainlab.data.sources import unpack

        splits, source = unpack(targets.call(fn, d.args, {}, key=key, target=label), key), f"{key} '{label}'"
    else:
        return None
    from trainlab.data.sources import from_forms

    return from_forms(
        *splits, source=source, batch_size=d.batch_size, eval_batch_size=d.eval_batch_size, drop_last=d.drop_last,
        seed=cfg.seed, val_fraction=d.val_fraction, split_seed=d.split_seed,
    )  # fmt: skip


def _builtin_datasets():
    from trainlab.data.datasets import DATASETS

    return DATASETS


def _callable(kind: str, cfg: RunConfig) -> tuple[Callable[..., Any], str]:
    """The callable a section names (target, registered name or entry point) and its label."""
    section = getattr(cfg, kind)
    if section.target:
        return targets.load(section.target, cfg.config_dir, f"{kind}.target"), section.target
    found = targets.lookup(kind, section.name)
    if found is None:  # the config validator lists the names; reached only if it changed since
        raise ConfigError(f"{kind}.name: unknown value '{section.name}'")
    if isinstance(found, str):
        return targets.load(found, None, f"{kind}.name = '{section.name}' (entry point {found})"), section.name
    return found, section.name


def is_user_model(cfg: RunConfig) -> bool:
    from trainlab.models import MODELS

    return bool(cfg.model.target or cfg.model.python or cfg.model.name not in MODELS)


def model(cfg: RunConfig, data: Any, *, store: Any = None, parts: Parts | None = None) -> nn.Module:
    """Build the run's model (seeded by the caller), apply ``init``, ``forget_bias`` and
    ``init_from``, and check a user model's output against the task on a probe batch."""
    from trainlab.models import build_model

    m = cfg.model
    input_shape = tuple(data.input_shape)
    num_classes = data.num_classes
    if parts is not None and parts.model is not None:
        net = parts.model if isinstance(parts.model, nn.Module) else _from_factory(parts.model, cfg.seed)
        label, key = cfg.model.python or "model", "model"
    elif is_user_model(cfg):
        fn, label = _callable("model", cfg)
        key = "model.target" if m.target else "model.name"
        if num_classes is None and _takes(fn, "num_classes"):  # class labels in a Dataset / DataLoader
            num_classes = data.num_classes = _scan_classes(data)
        extra = {
            "input_shape": input_shape,
            "num_classes": num_classes if num_classes else (1 if num_classes == 0 else None),
        }
        net = targets.call(fn, m.args, {k: v for k, v in extra.items() if v is not None}, key=key, target=label)
    else:
        if num_classes is None:
            num_classes = _scan_classes(data)
            data.num_classes = num_classes
        return _finish(build_model(m, input_shape, num_classes), cfg, store)
    if not isinstance(net, nn.Module):
        raise ConfigError(f"{key} = '{label}' returned {type(net).__name__}, not a torch.nn.Module")
    probe(
        net,
        data,
        label=f"{key} = '{label}'",
        custom_loss=cfg.loss.target is not None or (parts is not None and parts.loss is not None),
    )
    if m.init != "default":
        from trainlab.init import init_model

        options = {
            k: v for k, v in (("std", m.init_std), ("gain", m.init_gain), ("bias", m.init_bias)) if v is not None
        }
        init_model(net, m.init, nonlinearity=m.activation, **options)
    return _finish(net, cfg, store)


def _takes(fn: Callable[..., Any], name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _from_factory(factory: Callable[..., Any], seed: int) -> Any:
    params: Any
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = {}
    try:
        return factory(seed) if params else factory()
    except ConfigError:
        raise
    except Exception as err:
        raise ConfigError(
            f"model factory {getattr(factory, '__qualname__', factory)!r} raised {type(err).__name__}: {err}"
        ) from err


def _finish(net: nn.Module, cfg: RunConfig, store: Any) -> nn.Module:
    if cfg.model.forget_bias is not None:
        from trainlab.init import lstm_forget_bias_

        try:
            with torch.no_grad():
                lstm_forget_bias_(net, cfg.model.forget_bias)
        except ValueError as err:
            raise ConfigError(f"model.forget_bias: {err}") from None
        _layer_norm_forget_bias(net, cfg.model.forget_bias)
    if cfg.model.init_from:
        load_weights(net, cfg.model.init_from, store)
    return net


def _layer_norm_forget_bias(net: nn.Module, value: float) -> None:
    """trainlab's layer-normalized LSTM cells keep their gates' bias in ``bias`` (i, f, g, o)."""
    from trainlab.nn.recurrent import LayerNormLSTMCell

    for module in net.modules():
        if isinstance(module, LayerNormLSTMCell):
            bias = getattr(module, "bias", None)
            if isinstance(bias, torch.Tensor) and bias.numel() % 4 == 0:
                h = bias.numel() // 4
                with torch.no_grad():
                    bias[h : 2 * h] = value


def _scan_classes(data: Any) -> int:
    """Class count of loader data by reading every training label once (a Dataset with
    ``classes`` or ``targets`` skips this)."""
    from trainlab.data.sources import _plain
    from trainlab.data.validate import class_count

    labels = torch.cat([yb.reshape(-1).cpu() for _, yb in _plain(data.batches)])
    return class_count(labels.numpy(), source="the training data", name="targets")


@torch.no_grad()
def probe(net: nn.Module, data: Any, *, label: str, custom_loss: bool) -> None:
    """Run the model on two training samples (eval mode) and check its output fits the task;
    with loader data whose class count is unknown, the output width sets it."""
    x, y = _probe_batch(data)
    param = next(net.parameters(), None)
    if param is not None and isinstance(x, torch.Tensor):
        x = x.to(param.device)  # a user's model may already sit on an accelerator
    was = net.training
    net.eval()
    try:
        out = net(x)
    except Exception as err:
        raise ConfigError(
            f"{label}: the model's forward raised {type(err).__name__} on inputs of shape {tuple(x.shape)}: {err}"
        ) from err
    finally:
        net.train(was)
    if custom_loss:
        if data.num_classes is None and isinstance(out, torch.Tensor) and out.ndim == 2:
            data.num_classes = int(out.shape[-1])
        return
    if not isinstance(out, torch.Tensor):
        raise ConfigError(
            f"{label}: the model returned {type(out).__name__}; it must return a tensor of outputs (or give a loss that reads it)"
        )
    k = data.num_classes
    if k == 0:
        if not (out.shape == (len(x),) or out.shape == (len(x), 1)):
            raise ConfigError(
                f"{label}: outputs of shape {tuple(out.shape)} for {len(x)} samples; a regression needs one value per sample, shape ({len(x)}, 1)"
            )
        return
    if out.ndim != 2 or out.shape[0] != len(x):
        raise ConfigError(
            f"{label}: outputs of shape {tuple(out.shape)} for {len(x)} samples; a classifier returns ({len(x)}, number of classes)"
        )
    if k is None:
        data.num_classes = int(out.shape[1])
        check_labels(y, data.num_classes, label)
    elif out.shape[1] != k:
        raise ConfigError(
            f"{label}: {out.shape[1]} outputs per sample, but the data has {k} classes (labels 0..{k - 1}); make its last layer {k} wide"
        )


def check_labels(y: torch.Tensor, k: int, label: str) -> None:
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= k):
        bad = int(y.max()) if int(y.max()) >= k else int(y.min())
        raise ConfigError(
            f"{label}: targets out of range: label {bad}, but the model has {k} outputs (classes 0..{k - 1})"
        )


def _probe_batch(data: Any) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(data, Dataset):
        return data.x_train[:2], data.y_train[:2]
    from trainlab.data.sources import first_batch

    xb, yb = first_batch(data.batches, "the training data")
    return xb[:2], yb


def load_weights(net: nn.Module, source: str, store: Any = None) -> None:
    """``model.init_from``: a run id of the store (its checkpoint) or a file holding a
    ``state_dict`` or a trainlab checkpoint; loaded with ``weights_only=True`` and a strict
    name-and-shape check (the notes' pre-trained initialization, 000 §7.3)."""
    from pathlib import Path

    from trainlab._io import torch_load

    path = Path(source).expanduser()
    if not path.is_file():
        from trainlab.store import Store

        st = store if store is not None else Store()
        try:
            record = st.get_run(source)
        except ConfigError:
            raise ConfigError(f"model.init_from = '{source}': neither a file nor a run id of the store") from None
        ckpt = st.artifacts(record.id).get("checkpoint")
        if ckpt is None or not Path(ckpt).exists():
            raise ConfigError(f"model.init_from: run {record.id} has no checkpoint file")
        path = Path(ckpt)
    try:
        state = torch_load(path)
    except ConfigError:
        raise
    except Exception as err:
        raise ConfigError(
            f"model.init_from = '{source}': cannot read {path} as weights ({type(err).__name__}: {str(err)[:200]})"
        ) from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]  # a trainlab checkpoint
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"model.init_from = '{source}': {path} holds no state_dict (a dict of tensors)")
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k} {tuple(state[k].shape)} vs the model's {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:3])}{' …' if len(missing) > 3 else ''}")
        if unexpected:
            parts.append(f"unexpected {', '.join(unexpected[:3])}{' …' if len(unexpected) > 3 else ''}")
        if shapes:
            parts.append(f"shape of {'; '.join(shapes[:3])}")
        raise ConfigError(f"model.init_from = '{source}': the weights do not fit the model: {'; '.join(parts)}")
    net.load_state_dict(state, strict=True)


def loss(cfg: RunConfig, data: Any, parts: Parts | None = None) -> LossFn:
    """The task loss: the user's, the config's ``loss.target``, or cross-entropy / MSE."""
    if parts is not None and parts.loss is not None:
        return parts.loss
    if cfg.loss.target:
        fn = targets.load(cfg.loss.target, cfg.config_dir, "loss.target")
        if inspect.isclass(fn):
            return targets.call(fn, cfg.loss.args, {}, key="loss.target", target=cfg.loss.target)
        return functools.partial(fn, **cfg.loss.args) if cfg.loss.args else fn
    from trainlab.train.trainer import task_loss

    return task_loss(0 if data.num_classes == 0 else 1)
