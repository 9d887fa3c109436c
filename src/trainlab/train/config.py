"""The run config: one typed object, read from TOML, validated at the boundary.

Sections ``[data] [model] [optim] [schedule] [train] [regularize] [distill] [diagnose] [log]`` and
top-level ``name`` and ``seed``; ``[search]`` and ``[compare]`` are kept as plain tables for
``trainlab.tune`` and ``trainlab compare``. Unknown keys and wrong types raise
:class:`~trainlab.errors.ConfigError` naming the key and suggesting the close match
(``optim.lrr`` -> ``optim.lr``). Command-line overrides are ``key.sub=value`` with the value
read as TOML (``optim.lr=0.1``, ``model.hidden=[64,64]``, ``optim.name=adam``); ``~key.sub``
removes a key (``optim.name=adam ~optim.momentum`` on a config written for SGD).

Example::

    cfg = load_config("examples/quickstart.toml", ["optim.lr=0.05"])
    cfg.optim.lr          # 0.05
    cfg.override({"train.epochs": 3}).train.epochs   # 3, a validated copy
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import math
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveInt,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from trainlab.errors import ConfigError, did_you_mean

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class Section(BaseModel):
    """Strict types (``optim.lr = true`` is not 1.0; ``model.hidden = [1e9]`` is not an int)
    and finite floats only (TOML's ``inf`` and ``nan`` are refused where a number is read)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, strict=True, allow_inf_nan=False)


class DataConfig(Section):
    name: str = "mnist1d"
    target: str | None = Field(
        None, description='your data: "module:function" or "path/file.py:function" returning (train, val, test)'
    )
    args: dict[str, Any] = Field(
        default_factory=dict, description="keyword arguments of data.target (or a registered data set)"
    )
    python: str | None = Field(None, description="set by trainlab.fit: the Python data it was given (never imported)")
    batch_size: PositiveInt = 128
    eval_batch_size: PositiveInt = 1000
    drop_last: bool = False
    val_fraction: float = Field(0.1, ge=0, lt=1)
    test_fraction: float = Field(0.2, gt=0, lt=1)
    split_seed: int = Field(0, ge=0, lt=2**32)
    subset: PositiveInt | None = Field(None, description="keep only the first N training samples")
    preprocess: str = Field("none", description="none | minmax | standardize | pca | zca (fit on train only)")
    augment: list[str] = Field(default_factory=list, description='e.g. ["shift:2", "noise:0.1"], train batches only')
    # options of particular data sets / file loaders (None = the loader's default)
    path: str | None = None
    labels: str | None = None
    label_column: str | None = None
    x_key: str | None = None
    y_key: str | None = None
    n_samples: PositiveInt | None = None
    seq_len: PositiveInt | None = None
    classes: PositiveInt | None = None
    noise: float | None = Field(None, ge=0)
    data_seed: int | None = Field(None, ge=0, lt=2**32)

    def loader_options(self) -> dict[str, Any]:
        keys = (
            "path",
            "labels",
            "label_column",
            "x_key",
            "y_key",
            "n_samples",
            "seq_len",
            "classes",
            "noise",
            "data_seed",
        )
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None}


class ModelConfig(Section):
    name: str = "mlp"
    target: str | None = Field(
        None, description='your model: "module:Class" or "path/file.py:Class" (model.name is then unused)'
    )
    args: dict[str, Any] = Field(
        default_factory=dict, description="keyword arguments of model.target (or a registered model)"
    )
    python: str | None = Field(None, description="set by trainlab.fit: the Python model it was given (never imported)")
    init_from: str | None = Field(
        None, description="start from these weights: a run id of this store, or a state_dict / checkpoint file"
    )
    forget_bias: float | None = Field(None, description="LSTM forget-gate bias at initialization (the notes: 1 or 2)")
    hidden: list[PositiveInt] = Field(default_factory=lambda: [256, 256])
    activation: str = "relu"
    norm: str = "none"
    num_groups: PositiveInt = 8
    dropout: float = Field(
        0.0, ge=0, lt=1, description="DROP probability (torch's convention; the notes' p is a keep probability)"
    )
    dropout_type: Literal["standard", "alpha", "dropconnect", "naive", "variational"] = "standard"
    residual: bool = False
    bias: bool = True
    channels: list[PositiveInt] = Field(default_factory=lambda: [32, 32])
    kernel_size: PositiveInt | list[PositiveInt] = Field(5, description="CNN: one kernel size, or one per conv layer")
    padding: NonNegativeInt | list[NonNegativeInt] | None = Field(
        None, description="CNN zero padding, one or per layer; default kernel_size // 2"
    )
    stride: PositiveInt = 2
    bidirectional: bool = Field(False, description="RNN: also read the sequence backwards")
    readout: Literal["last", "all"] = Field(
        "last", description="RNN: the head reads the final state(s) or every step's outputs"
    )
    init: str = "default"
    init_std: float | None = Field(None, gt=0)
    init_gain: float | None = Field(None, gt=0)
    init_bias: float | None = None
    sync_bn: bool = Field(
        False, description="on N processes: batch-norm statistics over the global batch (SyncBatchNorm)"
    )


class LossConfig(Section):
    """``[loss]``: the task loss; by default cross-entropy for classes, MSE for regression."""

    target: str | None = Field(
        None, description='your loss: "module:function" -> (outputs, targets) -> scalar, or a class made with args'
    )
    args: dict[str, Any] = Field(
        default_factory=dict,
        description="keyword arguments: a loss class is built with them, a function gets them on each call",
    )
    python: str | None = Field(None, description="set by trainlab.fit: the Python loss it was given (never imported)")


class OptimConfig(Section):
    """``[optim]``: ``name``, ``lr``, the lab's own keys below, and any keyword argument the
    optimizer's constructor takes (``momentum``, ``betas``, ``momentum_decay``, ``fused``, ...).

    The optimizers' keys are not copied here: they are read from the signatures in
    :mod:`trainlab.optim` (``trainlab.optim.options``), typed by their annotations, when a
    config is validated — so every option an optimizer has can be set from a config, and a
    key no optimizer takes is an error with a did-you-mean (``optim.momentun``).
    """

    model_config = ConfigDict(extra="allow", validate_assignment=True)
    name: str = "sgd"
    lr: float = Field(0.01, ge=0)
    decay_norm_and_bias: bool = Field(False, description="apply weight_decay to biases and norm parameters too")
    scale_lr: Literal["none", "linear", "sqrt"] = Field(
        "none", description="lr *= batch/base (linear rule, Goyal et al. 2017)"
    )
    base_batch_size: PositiveInt = 256

    @model_validator(mode="after")
    def _check_options(self) -> OptimConfig:
        """Each extra key must be an option of some optimizer; its value is validated against
        the annotation of that option (the named optimizer's, when it has it)."""
        from trainlab.optim import OPTIMIZERS, option_types

        extra = self.__pydantic_extra__ or {}
        if not extra:
            return self
        name = self.name.lower()
        known = {k: t for n in OPTIMIZERS for k, t in option_types(n).items() if k != "lr"}
        own = option_types(name) if name in OPTIMIZERS else {}
        for key, value in list(extra.items()):
            if key not in known:
                choices = [f"optim.{k}" for k in [*type(self).model_fields, *known]]
                raise ValueError(f"optim.{key}: unknown key{did_you_mean(f'optim.{key}', choices)}")
            if value is None:
                continue
            try:
                extra[key] = _option_adapter(own.get(key, known[key])).validate_python(value)
            except ValidationError as err:
                msg = err.errors()[0]["msg"]
                raise ValueError(f"optim.{key}: {msg}, got {value!r}") from None
            slip = _kind_changed(value, extra[key])
            if slip:
                raise ValueError(f"optim.{key}: {slip}, got {value!r}")
        return self

    def __getattr__(self, key: str) -> Any:
        """An optimizer option the config does not set reads as None (``cfg.optim.momentum``)."""
        try:
            return super().__getattr__(key)  # type: ignore[misc]
        except AttributeError:
            if not key.startswith("_") and f"optim.{key}" in _optimizer_keys():
                return None
            raise

    def options(self) -> dict[str, Any]:
        """The keyword arguments for ``trainlab.optim.create``: lr plus the keys the user set."""
        opts = {k: v for k, v in (self.__pydantic_extra__ or {}).items() if v is not None}
        return {"lr": self.lr, **opts}

    def scaled_lr(self, batch_size: int) -> float:
        """The linear scaling rule of the notes (000 §7.1): lr grows with the batch size."""
        ratio = batch_size / self.base_batch_size
        return self.lr * {"none": 1.0, "linear": ratio, "sqrt": ratio**0.5}[self.scale_lr]


class ScheduleConfig(BaseModel):
    """``name`` plus the schedule's own keys, validated by ``trainlab.schedules.from_config``."""

    model_config = ConfigDict(extra="allow")
    name: str = "constant"

    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class EarlyStoppingConfig(Section):
    monitor: str = "val_loss"
    mode: Literal["auto", "min", "max"] = "auto"
    patience: PositiveInt = 10
    min_delta: float = Field(0.0, ge=0)
    restore_best: bool = True


class TrainConfig(Section):
    epochs: PositiveInt = 10
    max_steps: PositiveInt | None = Field(None, description="stop after this many optimizer steps")
    eval_every: int = Field(0, ge=0, description="evaluate every N steps; 0 = at the end of every epoch")
    checkpoint_every: int = Field(
        0, ge=0, description="checkpoint every N steps; 0 = at evaluations, at most every checkpoint_seconds"
    )
    checkpoint_seconds: float = Field(
        30.0, ge=0, description="with checkpoint_every = 0: the least time between two checkpoints"
    )
    log_every: PositiveInt = 10
    clip_norm: float | None = Field(None, gt=0)
    clip_value: float | None = Field(None, gt=0)
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    label_smoothing_style: Literal["notes", "uniform"] = "notes"
    early_stopping: EarlyStoppingConfig | None = None
    monitor: str = Field("val_loss", description="metric that defines the best step")
    device: str = Field("auto", description="auto (cuda, then mps, then cpu) | cpu | cuda | cuda:N | mps")
    precision: Literal["32", "bf16", "16-mixed"] = Field(
        "32", description="32 | bf16 (autocast) | 16-mixed (autocast + GradScaler)"
    )
    accumulate: PositiveInt = Field(
        1, description="micro-batches of data.batch_size per optimizer step (gradient accumulation)"
    )
    compile: bool = Field(False, description="torch.compile the model's forward")
    threads: PositiveInt | None = None

    @field_validator("device")
    @classmethod
    def _device_name(cls, v: str) -> str:
        from trainlab.train.devices import check_device_name

        return check_device_name(v)

    @field_validator("precision", mode="before")
    @classmethod
    def _precision_text(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v  # precision = 32 as a number


class RegularizeConfig(Section):
    l1: float = Field(0.0, ge=0)
    l2: float = Field(0.0, ge=0)
    include_bias_and_norm: bool = False
    max_norm: float | None = Field(None, gt=0)
    norm_bound: float | None = Field(
        None, gt=0, description="project the weights onto l_p(θ) <= norm_bound after each step (notes 000 §7.7.1)"
    )
    norm_bound_p: Literal[1, 2, "inf"] = Field(2, description='the p of norm_bound: 1, 2 or "inf"')


class DistillConfig(Section):
    teacher: str | None = Field(None, description="run id of a finished teacher run in the same store")
    temperature: float = Field(4.0, gt=0)
    alpha: float = Field(0.9, ge=0, le=1)


class DiagnoseConfig(Section):
    stats_every: int = Field(0, ge=0, description="record per-layer statistics every N steps; 0 = off")


class LogConfig(Section):
    """``[log]``: mirrors of the run store (:mod:`trainlab.loggers`); not part of the config hash."""

    to: list[Literal["csv", "tensorboard", "mlflow"]] = Field(
        default_factory=list, description='e.g. ["csv", "tensorboard"]'
    )
    dir: str | None = Field(
        None, description="tensorboard: root folder, one subfolder per run (default: the run's folder)"
    )
    mlflow_uri: str | None = Field(None, description="mlflow: tracking URI (default $MLFLOW_TRACKING_URI or ./mlruns)")
    mlflow_experiment: str | None = Field(None, description="mlflow: experiment (default: the run's group or name)")

    @field_validator("mlflow_uri")
    @classmethod
    def _no_credentials(cls, v: str | None) -> str | None:
        """The config is stored with the run and shown in reports: a password written here would
        travel with them. MLflow reads credentials from its own environment variables."""
        from trainlab.credentials import url_secrets

        if v is not None and url_secrets(v):
            raise ValueError(
                "holds a password or token, which would be stored with the run; write the URI without it "
                "and set MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN)"
            )
        return v

    def options(self) -> dict[str, Any]:
        return {"dir": self.dir, "mlflow_uri": self.mlflow_uri, "mlflow_experiment": self.mlflow_experiment}


SEED_LIMIT = 2**32  # NumPy's seeds are 32-bit: a larger seed would alias a smaller one


class RunConfig(Section):
    name: str = "run"
    seed: int = Field(0, description="0 .. 2**32-1")
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    regularize: RegularizeConfig = Field(default_factory=RegularizeConfig)
    distill: DistillConfig = Field(default_factory=DistillConfig)
    diagnose: DiagnoseConfig = Field(default_factory=DiagnoseConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    search: dict[str, Any] | None = None
    config_dir: str | None = Field(
        None, description="set when read: the config file's folder, where targets are imported from first"
    )
    sources: dict[str, Any] | None = Field(
        None, description="set when read: each target's file and SHA-256 (see trainlab.targets)"
    )
    compare: dict[str, Any] | None = None

    @field_validator("name")
    @classmethod
    def _name_not_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v

    @field_validator("seed")
    @classmethod
    def _seed_in_range(cls, v: int) -> int:
        if not 0 <= v < SEED_LIMIT:
            raise ValueError(
                f"must be in 0 .. 2**32-1 (NumPy's seed range: a larger seed would repeat a smaller one's run), got {v}"
            )
        return v

    @model_validator(mode="after")
    def _check_names(self) -> RunConfig:
        _check_registry_names(self)
        if self.distill.teacher and self.train.label_smoothing > 0:
            raise ValueError(
                "train.label_smoothing cannot be combined with distill.teacher: the teacher's soft targets already replace the hard labels"
            )
        return self

    # -- helpers ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = self.model_dump(mode="json")
        out["schedule"] = {"name": self.schedule.name, **self.schedule.options()}
        out = {k: v for k, v in out.items() if v is not None}
        for section in ("model", "data", "loss"):  # a config without user code reads (and hashes) as before
            for key in ("target", "python", "init_from", "forget_bias"):
                if out.get(section, {}).get(key, 0) is None:
                    del out[section][key]
            if out.get(section, {}).get("args") == {}:
                del out[section]["args"]
        if out.get("loss") == {}:
            del out["loss"]
        return out

    def override(self, overrides: Mapping[str, Any] | Sequence[str]) -> RunConfig:
        """A validated copy with dotted-key overrides applied."""
        return _validate(apply_overrides(self.to_dict(), overrides))

    def hash(self, exclude: Sequence[str] = ("name", "compare", "search", "log")) -> str:
        """A stable digest of what a run computes: equal configs, equal hashes. ``name``, the
        ``[compare]`` / ``[search]`` tables (read by the orchestrators, not by training) and
        ``[log]`` (where metrics are mirrored) are left out."""
        return config_digest(self.to_dict(), exclude)


def _kind_changed(given: Any, read: Any) -> str | None:
    """The strict types' rule for values read through an optimizer's (lax) annotation: no
    true/false as a number, no fractional-looking float as an int, finite floats only."""
    if isinstance(given, (list, tuple)) and isinstance(read, (list, tuple)):
        return next((why for g, r in zip(given, read) if (why := _kind_changed(g, r))), None)
    if isinstance(given, bool) and not isinstance(read, bool):
        return "should be a number, not true/false"
    if isinstance(given, float) and isinstance(read, int) and not isinstance(read, bool):
        return "should be a whole number, written without a decimal point or exponent"
    if isinstance(read, float) and not math.isfinite(read):
        return "should be a finite number (TOML's inf and nan are not accepted here)"
    return None


@functools.cache
def _option_adapter(annotation: Any) -> TypeAdapter:
    return TypeAdapter(annotation)


def config_digest(config: Mapping[str, Any], exclude: Sequence[str] = (), length: int = 16) -> str:
    """A stable hex digest of a config dict without the top-level keys in ``exclude``."""
    d = {k: v for k, v in config.items() if k not in exclude and k != "config_dir"}
    if isinstance(d.get("sources"), Mapping):  # the code's hash, not where it lies
        d["sources"] = {k: (v.get("sha256") if isinstance(v, Mapping) else v) for k, v in d["sources"].items()}
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:length]


def _check_registry_names(cfg: RunConfig) -> None:
    """Names that select an implementation are checked here, at the boundary, not mid-run."""
    from trainlab import targets
    from trainlab.data.datasets import DATASETS
    from trainlab.models import MODELS

    checks = []
    if not (cfg.data.target or cfg.data.python or cfg.data.name in DATASETS):
        checks.append(("data.name", cfg.data.name, [*DATASETS, *targets.names("data")]))
    if not (cfg.model.target or cfg.model.python or cfg.model.name in MODELS):
        checks.append(("model.name", cfg.model.name, [*MODELS, *targets.names("model")]))
    for section in ("data", "model", "loss"):
        target = getattr(cfg, section).target
        if target is not None:
            targets.split(target, f"{section}.target")
    lazy = [
        ("optim.name", cfg.optim.name, "trainlab.optim", "OPTIMIZERS"),
        ("schedule.name", cfg.schedule.name, "trainlab.schedules", "SCHEDULES"),
        ("model.activation", cfg.model.activation, "trainlab.nn.activations", "ACTIVATIONS"),
        ("model.norm", cfg.model.norm, "trainlab.nn.norm", "NORMS"),
        ("model.init", cfg.model.init, "trainlab.init", "SCHEMES"),
        ("data.preprocess", cfg.data.preprocess, "trainlab.data.preprocessing", "PREPROCESSORS"),
    ]
    import importlib

    for key, value, module, attr in lazy:
        names = getattr(importlib.import_module(module), attr)
        checks.append((key, value.lower() if key == "optim.name" else value, names))
    for key, value, names in checks:
        if value not in names:
            own = (
                f', or name your own with {key.split(".")[0]}.target = "module:{value}"'
                if key in ("model.name", "data.name")
                else ""
            )
            raise ValueError(
                f"{key}: unknown value '{value}'{did_you_mean(value, names)}; choose one of: {', '.join(sorted(names))}{own}"
            )
    from trainlab.optim import options as optimizer_options

    accepted = optimizer_options(cfg.optim.name)
    for key in cfg.optim.options():
        if key not in accepted:
            raise ValueError(
                f"optim.{key}: {cfg.optim.name.lower()} does not take '{key}' (it takes: {', '.join(accepted)}); "
                f"remove it from the file or with the override ~optim.{key}"
            )


# ----------------------------------------------------------------------------------------
# loading, overrides and error messages


def flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config as dotted keys: ``{"optim": {"lr": 0.1}}`` -> ``{"optim.lr": 0.1}``
    (the form of overrides, a comparison's variants and config diffs)."""
    out: dict[str, Any] = {}
    for k, v in table.items():
        if isinstance(v, Mapping):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def parse_value(text: str) -> Any:
    """Read a command-line value as TOML (numbers, booleans, lists, quoted strings); a bare
    word that is not TOML is taken as a string, so ``optim.name=adam`` works unquoted."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text
    except RecursionError:
        raise ConfigError(f"override value '{text[:40]}…' is nested too deeply") from None


def apply_overrides(config: dict[str, Any], overrides: Mapping[str, Any] | Sequence[str] | None) -> dict[str, Any]:
    """Apply ``{"a.b": v}`` or ``["a.b=v", "~a.c", ...]`` to a nested dict (returns a new dict);
    ``~a.c`` removes the key ``a.c``."""
    out = copy.deepcopy(config)
    if not overrides:
        return out
    if isinstance(overrides, Mapping):
        items = list(overrides.items())
    else:
        items = []
        for item in overrides:
            if item.startswith("~") and "=" not in item:
                items.append((item[1:].strip(), _REMOVE))
                continue
            if "=" not in item:
                raise ConfigError(
                    f"override '{item}' must look like key.sub=value (e.g. optim.lr=0.1), or ~key.sub to remove a key"
                )
            key, _, value = item.partition("=")
            items.append((key.strip(), parse_value(value.strip())))
    for key, value in items:
        parts = key.split(".")
        node = out
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:  # a section not given (or an optional one unset: train.early_stopping) starts here
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override '{key}': '{'.'.join(parts[: i + 1])}' is a value, not a section")
            node = child
        if value is _REMOVE:
            if parts[-1] not in node:
                raise ConfigError(f"override '~{key}': the config has no key '{key}' to remove")
            del node[parts[-1]]
        else:
            node[parts[-1]] = value
    return out


_REMOVE = object()  # the value of a ``~key`` override: delete the key


def _known_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        keys.append(prefix + name)
        ann = field.annotation
        for sub in getattr(ann, "__args__", (ann,)):
            if isinstance(sub, type) and issubclass(sub, BaseModel):
                keys.extend(_known_keys(sub, f"{prefix}{name}."))
    return keys


@functools.lru_cache(maxsize=1)
def _optimizer_keys() -> list[str]:
    from trainlab.optim import OPTIMIZERS, options

    return sorted({f"optim.{k}" for name in OPTIMIZERS for k in options(name)})


_TYPE_HINTS = {  # (pydantic error type, input type): the fix, for the strict types' usual slips
    ("int_type", "float"): " (a whole number, written without a decimal point or exponent)",
    ("float_type", "bool"): " (a number, not true/false)",
    ("int_type", "bool"): " (a number, not true/false)",
    ("finite_number", "float"): " (TOML's inf and nan are not accepted here)",
}


def _format_error(err: ValidationError) -> str:
    known = _known_keys(RunConfig) + _optimizer_keys()
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        if e["type"] == "extra_forbidden":
            lines.append(f"{loc}: unknown key{did_you_mean(loc, known)}")
        elif e["type"] == "value_error":
            text = str(e["ctx"]["error"]) if "ctx" in e else e["msg"]
            lines.append(text if not loc or text.startswith((f"{loc}.", f"{loc}:")) else f"{loc}: {text}")
        else:
            got = e.get("input")
            if isinstance(got, str) and "://" in got:
                from trainlab.credentials import display_url

                got = display_url(got)  # a URL's password never reaches an error message
            shown = "" if isinstance(got, (dict, list)) and len(str(got)) > 60 else f", got {got!r}"
            hint = _TYPE_HINTS.get((e["type"], type(got).__name__), "")
            lines.append(f"{loc}: {e['msg']}{shown}{hint}")
    return "; ".join(lines)


def _with_sources(data: dict[str, Any]) -> dict[str, Any]:
    """Record each target's file and SHA-256 under ``sources`` (kept where already recorded
    for the same target): the config hash then changes when the code does."""
    from trainlab import targets

    named = targets.config_targets(data)
    recorded = data.get("sources") if isinstance(data.get("sources"), Mapping) else {}
    sources = {}
    for section, target in named.items():
        old = recorded.get(section)  # type: ignore[union-attr]
        if isinstance(old, Mapping) and old.get("target") == target:
            sources[section] = dict(old)
        else:
            sources[section] = targets.source_record(target, data.get("config_dir"), f"{section}.target")
    out = {k: v for k, v in data.items() if k != "sources"}
    if sources:
        out["sources"] = sources
    elif recorded and any(isinstance(v, Mapping) and "python" in v for v in recorded.values()):
        out["sources"] = dict(recorded)  # trainlab.fit's record of the Python objects it trained
    return out


def _plain(value: Any) -> Any:
    """Python values for the strict validation: NumPy scalars (a sampler's, a user's) as
    their Python number, paths as strings, tuples as lists; nested tables and lists walked."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):  # a tuple from Python code is a TOML list
        return [_plain(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0:  # a scalar, not an array
        return value.item()
    return value


def _validate(data: dict[str, Any]) -> RunConfig:
    if isinstance(data, dict) and (
        data.get("sources")
        or any(isinstance(data.get(s), Mapping) and data[s].get("target") for s in ("model", "data", "loss"))
    ):
        data = _with_sources(data)
    try:
        return RunConfig.model_validate(_plain(data))
    except RecursionError:
        raise ConfigError("invalid config: values nested too deeply to be a config") from None
    except ValidationError as err:
        raise ConfigError(f"invalid config: {_format_error(err)}") from None


def read_toml(path: str | Path) -> dict[str, Any]:
    """The TOML file at ``path`` as a dict; anything that is not a readable UTF-8 TOML file
    (missing, a folder, a device, unreadable, binary, nested too deeply) is one ConfigError."""
    path = Path(path)
    shown = str(path) if len(str(path)) <= 120 else f"{str(path)[:60]}…{str(path)[-40:]}"
    try:
        if not path.is_file():
            if not path.exists():
                from trainlab._examples import hint

                raise ConfigError(f"config file not found: {shown}{hint(path)}")
            kind = "a folder" if path.is_dir() else "not a regular file"
            raise ConfigError(f"config {shown} is {kind}; give a .toml file")
        data = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"cannot read config {shown}: {err.strerror or err}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        byte = f"byte 0x{data[err.start]:02x} at offset {err.start}"
        raise ConfigError(f"{shown}: not a UTF-8 text file ({byte}); a config is TOML text") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{shown}: not valid TOML: {err}") from None
    except RecursionError:
        raise ConfigError(f"{shown}: values nested too deeply to be a config") from None


def load_config(
    source: str | Path | Mapping[str, Any] | RunConfig, overrides: Mapping[str, Any] | Sequence[str] | None = None
) -> RunConfig:
    """A :class:`RunConfig` from a TOML path, a dict or a config, with overrides applied."""
    if isinstance(source, RunConfig):
        data = source.to_dict()
    elif isinstance(source, Mapping):
        data = dict(source)
    else:
        data = read_toml(source)
        data = apply_overrides(data, overrides)
        from trainlab.targets import config_targets

        if config_targets(data):  # targets are imported from the config file's folder first
            data["config_dir"] = str(Path(source).resolve().parent)
        return _validate(data)
    return _validate(apply_overrides(data, overrides))
