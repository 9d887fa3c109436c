"""``trainlab.fit``: train your own model on your own data, recorded like a config run.

The keyword arguments become a :class:`~trainlab.train.config.RunConfig` — validated with the
same did-you-mean errors, hashed, stored — and the Python objects (model, data, loss, metrics,
optimizer) travel beside it to the same :class:`~trainlab.train.trainer.Trainer` that
``trainlab run`` uses. So schedules, init schemes, clipping, penalties, early stopping,
layer statistics, the store, ``runs`` / ``show`` / ``report`` all apply.

Example::

    result = trainlab.fit(lambda seed: Net(), (X, y), val=(Xv, yv), optimizer="sgd", lr=0.1,
                          momentum=0.9, epochs=5, **{"regularize.l2": 1e-4})
    result.final["val_acc"], result.run_id

Inside :func:`trainlab.compare` and :meth:`trainlab.tune.Study.optimize`, ``fit`` takes
its store, group, name and seed from the surrounding variant or trial (see :func:`context`)
and reports to the trial, so a pruner can stop it.
"""

from __future__ import annotations

import contextvars
import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from trainlab.errors import ConfigError, did_you_mean

_CONTEXT: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("trainlab_fit_context", default=None)

FIT_KEYWORDS = (
    "val", "test", "loss", "metrics", "optimizer", "lr", "schedule", "epochs", "steps", "batch_size", "seed",
    "callbacks", "store", "name", "device", "log_to", "nproc", "resume",
)  # fmt: skip


@contextmanager
def context(**defaults: Any) -> Iterator[None]:
    """Defaults for every ``fit`` call inside: ``store``, ``group``, ``name``, ``seed``, ``trial``."""
    token = _CONTEXT.set({**(_CONTEXT.get() or {}), **defaults})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def fit(
    model: Any,
    train: Any,
    val: Any = None,
    test: Any = None,
    *,
    loss: Callable[[Any, Any], Any] | None = None,
    metrics: Mapping[str, Callable[[Any, Any], Any]] | None = None,
    optimizer: str | Any = "sgd",
    lr: float | None = None,
    schedule: str | Mapping[str, Any] | None = None,
    epochs: int | None = None,
    steps: int | None = None,
    batch_size: int = 128,
    seed: int | None = None,
    callbacks: Sequence[Any] = (),
    store: Any = None,
    name: str | None = None,
    device: str = "auto",
    log_to: Sequence[str] | None = None,
    nproc: int = 1,
    resume: str | None = None,
    **options: Any,
):
    """Train ``model`` on ``train`` and return the :class:`~trainlab.train.RunResult`.

    Args:
        model: an ``nn.Module``, or a callable ``seed -> nn.Module`` (for multi-seed work).
        train, val, test: each an ``(X, y)`` pair of tensors or arrays, a torch ``Dataset``
            or a ``DataLoader``; ``train`` may also be a trainlab ``Dataset`` (its own splits).
            ``val=None``: ``data.val_fraction`` of ``train``. ``test=None``: no test metrics.
        loss: ``(outputs, targets) -> scalar``; default cross-entropy for integer targets,
            MSE for float ones.
        metrics: ``{name: (outputs, targets) -> float}``, averaged over the evaluation set,
            stored as ``val_<name>`` (and ``test_<name>``).
        optimizer: a name of ``trainlab.optim`` (its options as keywords: ``momentum=0.9``),
            a ``torch.optim.Optimizer``, or a callable ``params -> Optimizer``.
        schedule: a schedule name or ``{"name": "cosine", ...}`` (as ``[schedule]``).
        epochs / steps: the run's length (``train.epochs`` / ``train.max_steps``).
        nproc: train data-parallel on N local processes (DDP; ``batch_size`` is the global
            batch; the objects must pickle). Under ``torchrun`` the run joins its group by itself.
        resume: the id of an interrupted ``fit`` run to continue from its last checkpoint,
            given the same model, data and arguments (their config hash must match the run's);
            bit-identical to a run that was never interrupted.
        **options: config keys in dotted form (``**{"regularize.l2": 1e-4}``) and the
            optimizer's options.
    """
    import torch
    from torch import nn

    from trainlab.data.sources import describe, is_pair
    from trainlab.store import Store
    from trainlab.targets import object_record
    from trainlab.train.build import Parts
    from trainlab.train.config import OptimConfig, load_config
    from trainlab.train.trainer import Trainer

    ctx = _CONTEXT.get() or {}
    seed = ctx.get("seed", 0) if seed is None else seed
    if not (isinstance(model, nn.Module) or callable(model)):
        raise ConfigError(
            f"fit: model must be an nn.Module or a callable seed -> nn.Module, got {type(model).__name__}"
        )
    if metrics is not None and not (isinstance(metrics, Mapping) and all(callable(f) for f in metrics.values())):
        raise ConfigError("fit: metrics must be a dict of callables (outputs, targets) -> float")
    if loss is not None and not callable(loss):
        raise ConfigError(f"fit: loss must be a callable (outputs, targets) -> scalar, got {type(loss).__name__}")
    described = type(model) if isinstance(model, nn.Module) else model
    config: dict[str, Any] = {"name": name or ctx.get("name") or getattr(described, "__name__", "fit"), "seed": seed}
    sources = {"model": {"python": _label(described), **_without_target(object_record(described))}}
    config["model"] = {"python": _label(described)}
    config["data"] = {
        "python": "; ".join(
            f"{k} {describe(v)}{_fingerprint(v) if is_pair(v) else ''}"
            for k, v in (("train", train), ("val", val), ("test", test))
            if v is not None
        ),
        "batch_size": batch_size,
    }
    if loss is not None:
        config["loss"] = {"python": _label(loss)}
        sources["loss"] = {"python": _label(loss), **_without_target(object_record(loss))}
    config["sources"] = sources
    optim: dict[str, Any] = {}
    if isinstance(optimizer, str):
        optim["name"] = optimizer
        if lr is not None:
            optim["lr"] = lr
    elif not (isinstance(optimizer, torch.optim.Optimizer) or callable(optimizer)):
        raise ConfigError(
            f"fit: optimizer must be a name, a torch.optim.Optimizer or a callable params -> Optimizer, got {type(optimizer).__name__}"
        )
    else:
        optim["name"] = "sgd"  # recorded; the given optimizer is what steps
        if lr is not None:
            raise ConfigError("fit: lr= goes with an optimizer name; a given optimizer has its own lr")
    config["optim"] = optim
    train_cfg: dict[str, Any] = {"device": device}
    if epochs is not None:
        train_cfg["epochs"] = epochs
    if steps is not None:
        train_cfg["max_steps"] = steps
        train_cfg.setdefault("epochs", 10**6)  # steps decides
    config["train"] = train_cfg
    if schedule is not None:
        if isinstance(schedule, str):
            config["schedule"] = {"name": schedule}
        elif isinstance(schedule, Mapping):
            config["schedule"] = dict(schedule)
        else:
            raise ConfigError(
                f"fit: schedule must be a name or a dict like {{'name': 'cosine'}}, got {type(schedule).__name__}"
            )
    if log_to:
        config["log"] = {"to": list(log_to)}
    from trainlab.optim import options as optimizer_options

    accepted = optimizer_options(optim.get("name", "sgd")) if isinstance(optimizer, str) else ()
    dotted = {}
    for key, value in options.items():
        if "." in key:
            dotted[key] = value
        elif key in accepted:
            optim[key] = value
        else:
            choices = [*FIT_KEYWORDS, *accepted]
            raise ConfigError(
                f"fit: unknown argument '{key}'{did_you_mean(key, choices)}; config keys go in dotted form, e.g. **{{'regularize.l2': 1e-4}}"
            )
    cfg = load_config(config, dotted)
    if not isinstance(optimizer, str) and cfg.optim.options() != OptimConfig.model_validate({"name": "sgd"}).options():
        raise ConfigError("fit: optimizer options go with an optimizer name, not with a given optimizer")
    st = store if store is not None else ctx.get("store")
    st = st if isinstance(st, Store) else Store(st)
    parts = Parts(
        model=model,
        train=train,
        val=val,
        test=test,
        loss=loss,
        metrics=dict(metrics) if metrics else None,
        optimizer=None if isinstance(optimizer, str) else optimizer,
    )
    trial = ctx.get("trial")
    if resume is not None:
        resume, group = _resumable(st, resume, cfg)
        ctx = {**ctx, "group": group}
    from trainlab.train import distributed

    if nproc != 1 or distributed.launched_by_torchrun():  # data-parallel (docs/distributed.md)
        if trial is not None or callbacks:
            raise ConfigError("fit on several processes takes no callbacks and runs outside a study trial")
        if nproc != 1:
            return distributed.launch(cfg, nproc=nproc, store=st, resume=resume, group=ctx.get("group"), parts=parts)
        return distributed.run_worker(cfg, store=st, resume=resume, group=ctx.get("group"), parts=parts)
    trainer = Trainer(cfg, store=st, callbacks=list(callbacks), trial=trial, group=ctx.get("group"), parts=parts)
    result = trainer.fit(resume=resume)
    if trial is not None:
        trial.run_id = result.run_id
    return result


def _resumable(store: Any, run_id: str, cfg: Any) -> tuple[str, str | None]:
    """The full id and group of the ``fit`` run ``run_id`` that ``cfg`` may continue: one that
    is not completed and was started with the same config (model, data and arguments)."""
    from trainlab.train.config import flatten

    if not isinstance(run_id, str):
        raise ConfigError(f"fit: resume must be a run id (a string), got {type(run_id).__name__}")
    record = store.get_run(run_id)
    if record.status == "completed":
        raise ConfigError(f"fit: run {record.id} is already completed; nothing to resume")
    if record.config_hash != cfg.hash():
        old, new = flatten(record.config), flatten(cfg.to_dict())
        changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
        shown = ", ".join(changed[:4]) + (f" and {len(changed) - 4} more" if len(changed) > 4 else "")
        raise ConfigError(
            f"fit: resume={record.id!r} was started with other settings ({shown or 'the config'} differ); "
            "give the same model, data and arguments"
        )
    return record.id, record.group


def _label(obj: Any) -> str:
    return f"{getattr(obj, '__module__', None) or '?'}:{getattr(obj, '__qualname__', type(obj).__qualname__)}"


def _without_target(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "target"}


def _fingerprint(pair: Any) -> str:
    """A short digest of an in-memory split (its bytes), so the config hash tells data apart."""
    from trainlab.data.validate import as_array

    h = hashlib.sha256()
    for a in pair:
        arr = as_array(a)
        h.update(str((arr.shape, arr.dtype.str)).encode())
        h.update(memoryview(arr.reshape(-1)[: 1 << 22].copy()).cast("B"))  # the first 4M values
    return f" sha256:{h.hexdigest()[:12]}"
