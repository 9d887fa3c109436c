"""The training loop: config -> data -> model -> optimizer + schedule -> loop -> store.

``run(config)`` is the one function everything calls: the CLI, ``compare``, ``tune`` and the
reproduction gallery. ``setup(config)`` builds the pieces without training (for the LR finder,
sharpness, or a user's own loop).

Each optimizer step, in order (the notes' mini-batch gradient descent, 000 §7.1):
  1. draw the next mini-batch (own generator; augmentation on training batches only)
  2. forward, loss (+ label smoothing / distillation, + L1/L2 penalty)
  3. backward; callbacks' ``on_before_step``
  4. clip the gradients (norm or value; the pre-clip norm is logged)
  5. optimizer step, max-norm constraint, the schedule's lr for the next step
  6. every ``log_every`` steps, at evaluations and before a checkpoint: read the steps' losses
     from the device in one go (:meth:`Trainer._drain`) — a non-finite one ends the run as
     ``diverged`` at its step — and log (batched writes); every ``eval_every`` steps:
     evaluate, report to a study trial, early stopping, checkpoint.

Nothing on the step path waits for the device (no ``float(loss)`` per step) or imports a
module; ``benchmarks/loop_overhead.py`` measures what the loop costs over a hand-written one.
"""

from __future__ import annotations

import functools
import math
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from trainlab.data import BatchIterator, Dataset
from trainlab.data import load as load_data
from trainlab.errors import ConfigError
from trainlab.optim import clip_grad_norm_, clip_grad_value_
from trainlab.regularization import distillation_loss, max_norm_, penalty, project_lp_ball_, smoothed_cross_entropy
from trainlab.stats import best_of, mode_for
from trainlab.store import MetricBuffer, Store, resume_hint
from trainlab.train.callbacks import BestTracker, Callback, EarlyStopping
from trainlab.train.checkpoint import rng_state, save_checkpoint, seed_everything, set_rng_state
from trainlab.train.config import RunConfig, load_config
from trainlab.train.devices import autocast, check_precision, grad_scaler, resolve_device

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class CheckpointWarning(UserWarning):
    """A resume skipped a damaged or foreign checkpoint, or had none and started again."""


@dataclass
class Setup:
    """Everything built from a config, before training."""

    config: RunConfig
    data: Dataset  # or trainlab.data.sources.LoaderData: a user's Dataset / DataLoader
    model: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: Callable[[int], float]
    loss_fn: LossFn  # the task loss (cross-entropy or MSE): what evaluation reports
    batches: BatchIterator
    steps_per_epoch: int
    total_steps: int
    lr: float  # the optimizer's lr after the linear scaling rule
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None
    preprocessor: Any = None
    teacher: nn.Module | None = None
    metrics: dict[str, Callable[[torch.Tensor, torch.Tensor], Any]] | None = None  # trainlab.fit(metrics=...)


@dataclass
class RunResult:
    """What ``run`` / ``Trainer.fit`` return.

    ``history`` holds every metric row the run logged, as the store has it
    (:meth:`trainlab.store.Store.metrics`): ``{key: [(step, value), ...]}`` sorted by step —
    the training window's ``train_loss`` / ``train_lr`` / ``train_acc`` every
    ``train.log_every`` steps, each evaluation's ``val_*``, ``train_loss``, ``lr`` and ``epoch``
    (so ``train_loss`` has a row at an evaluation step from both), and what callbacks log
    (``layer/...``). ``final`` has the last and best values, test metrics included.
    """

    run_id: str
    status: str
    final: dict[str, Any]
    history: dict[str, list[tuple[int, float]]]
    config: RunConfig
    message: str | None = None
    model: nn.Module | None = field(default=None, repr=False)


def task_loss(num_classes: int) -> LossFn:
    if num_classes > 0:
        return nn.functional.cross_entropy

    def mse(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(outputs.squeeze(-1), targets)

    return mse


def load_builtin_data(cfg: RunConfig) -> Dataset:
    """The built-in data set ``cfg.data`` names, split as it says (no preprocessing)."""
    d = cfg.data
    return load_data(
        d.name,
        split_seed=d.split_seed,
        val_fraction=d.val_fraction,
        test_fraction=d.test_fraction,
        subset=d.subset,
        **d.loader_options(),
    )


def _prepare_data(cfg: RunConfig) -> tuple[Dataset, Any]:
    d = cfg.data
    data = load_builtin_data(cfg)
    if len(data.x_val) == 0:
        raise ConfigError("data.val_fraction leaves no validation samples; evaluation needs some")
    preprocessor = None
    if d.preprocess != "none":
        from trainlab.data.preprocessing import make_preprocessor

        preprocessor = make_preprocessor(d.preprocess)
        preprocessor.fit(data.x_train)  # type: ignore[union-attr]  # training split only: no information from val/test leaks in
        data = data.map_x(preprocessor.transform)  # type: ignore[union-attr]
    return data, preprocessor


def _load_teacher(cfg: RunConfig, store: Store | None) -> nn.Module:
    from trainlab._io import torch_load

    store = store or Store()
    record = store.get_run(cfg.distill.teacher)  # type: ignore[arg-type]
    if record.status != "completed":
        raise ConfigError(f"distill.teacher: run {record.id} is {record.status}, not completed")
    from trainlab import targets
    from trainlab.train import build

    targets.check_stored(record.config, what=f"teacher run {record.id}")
    teacher_cfg = load_config(record.config)
    data = build.data(teacher_cfg)
    if data is None:
        data, _ = _prepare_data(teacher_cfg)
    teacher = build.model(
        teacher_cfg.model_copy(update={"model": teacher_cfg.model.model_copy(update={"init_from": None})}),
        data,
        store=store,
    )
    ckpt = store.artifacts(record.id).get("checkpoint")
    if ckpt is None or not ckpt.exists():
        raise ConfigError(f"distill.teacher: run {record.id} has no checkpoint file")
    teacher.load_state_dict(torch_load(ckpt)["model"])
    return teacher.eval().requires_grad_(False)


def setup(config: RunConfig | dict | str, store: Store | None = None, parts: Any = None) -> Setup:
    """Build data, model, optimizer and schedule from ``config`` (seeded), without training.
    ``parts`` (:class:`trainlab.train.build.Parts`): the Python objects ``trainlab.fit`` was given."""
    import trainlab.optim
    import trainlab.schedules
    from trainlab.train import build

    cfg = load_config(config)
    seed_everything(cfg.seed)
    data = build.data(cfg, parts)
    if data is None:
        data, preprocessor = _prepare_data(cfg)
    else:
        data, preprocessor = _preprocess_user_data(cfg, data)
    model = build.model(cfg, data, store=store, parts=parts)
    lr = cfg.optim.scaled_lr(cfg.data.batch_size * cfg.train.accumulate)  # the batch of one optimizer step
    options = {**cfg.optim.options(), "lr": lr}
    if cfg.optim.decay_norm_and_bias:
        options["decay_norm_and_bias"] = True
    try:
        if parts is not None and parts.optimizer is not None:
            given = parts.optimizer
            optimizer = given if isinstance(given, torch.optim.Optimizer) else given(model.parameters())
            if not isinstance(optimizer, torch.optim.Optimizer):
                raise ConfigError(
                    f"optimizer: the callable returned {type(optimizer).__name__}, not a torch.optim.Optimizer"
                )
            lr = optimizer.param_groups[0]["lr"]
        else:
            optimizer = trainlab.optim.create(cfg.optim.name, model, **options)
    except ConfigError:
        raise
    except ValueError as err:
        raise ConfigError(f"optim: {err}") from None
    if cfg.data.drop_last and isinstance(data, Dataset) and cfg.data.batch_size > len(data.x_train):
        raise ConfigError(
            f"data.batch_size = {cfg.data.batch_size} is larger than the {len(data.x_train)} training samples, and "
            "data.drop_last = true would drop the one batch; lower data.batch_size or set data.drop_last = false"
        )
    if isinstance(data, Dataset):
        batches = BatchIterator(
            data.x_train, data.y_train, cfg.data.batch_size, drop_last=cfg.data.drop_last, seed=cfg.seed
        )
    else:
        batches = data.batches
    steps_per_epoch = -(-len(batches) // cfg.train.accumulate)  # optimizer steps: groups of `accumulate` batches
    total_steps = cfg.train.max_steps or cfg.train.epochs * steps_per_epoch
    schedule_options = cfg.schedule.options()
    if (
        cfg.optim.scale_lr != "none"
        and schedule_options.get("warmup_steps")
        and "warmup_start_lr" not in schedule_options
    ):
        # Goyal et al. (2017): warm up from the small-batch lr to the scaled one, not from 0
        schedule_options["warmup_start_lr"] = cfg.optim.lr
    schedule = trainlab.schedules.from_config(cfg.schedule.name, schedule_options, base_lr=lr, total_steps=total_steps)
    augment = None
    if cfg.data.augment:
        from trainlab.data.augment import build_augment

        augment = build_augment(cfg.data.augment, data.input_shape)
    teacher = _load_teacher(cfg, store) if cfg.distill.teacher else None
    loss_fn = build.loss(cfg, data, parts)
    metrics = parts.metrics if parts is not None else None
    return Setup(
        cfg,
        data,
        model,
        optimizer,
        schedule,
        loss_fn,
        batches,
        steps_per_epoch,
        total_steps,
        lr,
        augment,
        preprocessor,
        teacher,
        metrics,
    )


def _preprocess_user_data(cfg: RunConfig, data: Any) -> tuple[Any, Any]:
    if cfg.data.preprocess == "none":
        return data, None
    if not isinstance(data, Dataset):
        raise ConfigError(
            f"data.preprocess = '{cfg.data.preprocess}' needs (X, y) arrays; a Dataset or DataLoader brings its own transforms"
        )
    from trainlab.data.preprocessing import make_preprocessor

    preprocessor = make_preprocessor(cfg.data.preprocess)
    preprocessor.fit(data.x_train)  # type: ignore[union-attr]
    return data.map_x(preprocessor.transform), preprocessor  # type: ignore[union-attr]


class Trainer:
    """Runs one training run of a config and records it in the store.

    Example::

        result = Trainer(load_config("examples/quickstart.toml")).fit()
        result.final["val_acc"]
    """

    def __init__(
        self,
        config: RunConfig | dict | str,
        *data: Any,  # nothing: a user's model and data go to trainlab.fit (a clear error below)
        store: Store | None = None,
        callbacks: Sequence[Callback] = (),
        trial: Any = None,
        quiet: bool = True,
        group: str | None = None,
        parts: Any = None,
    ):
        if isinstance(config, nn.Module) or data:  # what a new user tries first: point at the door for it
            raise ConfigError(
                "Trainer takes a run config; train your own model with trainlab.fit(model, train, val, ...) (docs/fit.md)"
            )
        self.config = load_config(config)
        self.parts = parts  # trainlab.fit's Python objects (trainlab.train.build.Parts)
        self.store = store or Store()
        self.user_callbacks = list(callbacks)
        self.trial, self.quiet, self.group = trial, quiet, group
        self.step = 0
        self._stop_reason: str | None = None

    # -- public API for callbacks ---------------------------------------------------------
    def request_stop(self, reason: str) -> None:
        """Finish the run after the current step (early stopping, a pruned trial)."""
        self._stop_reason = reason

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """Mean task loss (and accuracy for classification) over ``x, y`` in eval mode."""
        bs = self.config.data.eval_batch_size
        return self.evaluate_batches((x[i : i + bs], y[i : i + bs]) for i in range(0, len(x), bs))

    @torch.no_grad()
    def evaluate_batches(self, batches) -> dict[str, float]:
        """Mean task loss, accuracy (classification) and ``trainlab.fit``'s metrics over
        ``(x, y)`` batches in eval mode, each batch weighted by its size."""
        was_training = self.model.training
        dist = getattr(self, "dist", None)
        if dist is not None:  # rank 0's batch-norm statistics: every rank evaluates the same model
            dist.sync_buffers(self.model)
        self.model.eval()
        total_loss, correct, n = 0.0, 0, 0
        extra = dict.fromkeys(self.setup.metrics or {}, 0.0)
        precision = getattr(self, "_autocast", None) or nullcontext()
        device = self.device
        for xb, yb in batches:
            if getattr(xb, "device", None) != device:  # (.to() of a tensor already there returns it)
                xb = xb.to(device)
            if getattr(yb, "device", None) != device:
                yb = yb.to(device)
            with precision:
                out = self.model(xb)
                loss = self.setup.loss_fn(out, yb)
            total_loss += float(loss) * len(xb)
            if self.setup.data.num_classes and isinstance(out, torch.Tensor):
                correct += int((out.argmax(-1) == yb).sum())
            for name, fn in (self.setup.metrics or {}).items():
                extra[name] += float(fn(out, yb)) * len(xb)
            n += len(xb)
        self.model.train(was_training)
        metrics = {"loss": total_loss / max(n, 1)}
        if self.setup.data.num_classes:
            metrics["acc"] = correct / max(n, 1)
        metrics.update({k: v / max(n, 1) for k, v in extra.items()})
        return metrics

    def evaluate_split(self, split: str) -> dict[str, float] | None:
        """:meth:`evaluate_batches` of the ``"val"`` or ``"test"`` split; None if it has none."""
        data = self.setup.data
        if isinstance(data, Dataset):
            x, y = (data.x_val, data.y_val) if split == "val" else (data.x_test, data.y_test)
            return self.evaluate(x, y) if len(x) else None
        batches = data.val if split == "val" else data.test
        return None if batches is None else self.evaluate_batches(batches)

    # -- the run ------------------------------------------------------------------------
    def fit(self, resume: str | None = None) -> RunResult:
        cfg = self.config
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        from trainlab.train import distributed

        self.dist = distributed.context()  # None unless this is one rank of a data-parallel run
        self.device = self.dist.device if self.dist is not None else resolve_device(cfg.train.device)
        check_precision(self.device, cfg.train.precision)
        if self.dist is not None and cfg.train.accumulate > 1:
            raise ConfigError(
                "train.accumulate > 1 is not supported with --nproc; raise data.batch_size or the process count instead"
            )
        self.setup = setup(cfg, self.store, self.parts)
        s = self.setup
        self.model, self.optimizer = s.model.to(self.device), s.optimizer
        self._forward: nn.Module = self.model  # what a training step calls: DDP around the model on N ranks
        if (
            self.dist is not None
        ):  # (X, y) and built-in data are sliced per rank; a user's Dataset is sharded where it loads
            self.dist.prepare(s.data, s.batches, cfg.data.batch_size, cfg.data.drop_last)
            self._forward = self.dist.wrap(self.model, cfg.model.sync_bn)
            self.dist.seed(cfg.seed)
        if cfg.train.compile:
            self._forward = torch.compile(self._forward)  # type: ignore[assignment]
        self._autocast = autocast(self.device, cfg.train.precision)
        self.scaler = grad_scaler(self.device, cfg.train.precision)
        self.loss_fn = s.loss_fn
        self._train_loss = self._training_loss_fn()
        self._lr_ratios = _lr_ratios(self.optimizer)
        self._set_lr(0)
        self._step_plan()
        self.callbacks = self._config_callbacks() + self.user_callbacks
        self._before_step = self.callbacks  # narrowed to those with an on_before_step when the loop starts
        if not s.data.num_classes and "acc" in cfg.train.monitor:
            raise ConfigError(f"train.monitor = '{cfg.train.monitor}' needs a classification task; use 'val_loss'")
        self.best = BestTracker(cfg.train.monitor)
        self.aug_gen = torch.Generator(device=self.device).manual_seed(cfg.seed + 1)
        self.history: dict[str, list[tuple[int, float]]] = defaultdict(list)
        self._reset_window()
        self.epoch, self.step = 0, 0
        self._last_checkpoint = time.monotonic()
        self._checkpoint_step: int | None = None  # the step of the last checkpoint written or resumed from

        if resume is None:
            run_id = self.dist.run_id if self.dist is not None else None

            def create() -> str:
                return self.store.create_run(
                    cfg.name, cfg.to_dict(), seed=cfg.seed, group=self.group, config_hash=cfg.hash(), run_id=run_id
                )

            self.run_id = create() if self.dist is None else self.dist.from_rank0(create)  # rank 0 makes the one run
        else:
            self.run_id = resume
            self._restore(resume)
        self.run_dir = self.store.run_dir(self.run_id)
        self.ckpt_path = self.run_dir / "checkpoint.pt"
        self.metrics = MetricBuffer(self.store, self.run_id)
        if s.preprocessor is not None and self.step == 0:  # a new run, or one started again
            from trainlab._io import atomic_torch_save

            path = atomic_torch_save(self.run_dir / "preprocessing.pt", s.preprocessor.state_dict())
            self.store.add_artifact(self.run_id, "preprocessing", path)

        status, message = "completed", None
        start = time.perf_counter()
        try:  # the end of a run (callbacks, test evaluation) too: a failure there is a failed run, never one left running
            try:
                with self._progress() as progress:
                    status, message = self._loop(progress)
            except KeyboardInterrupt:
                bad = self._drain()
                if bad is not None:  # the interrupt came after a non-finite loss was computed
                    status, message = self._diverged(bad)
                else:
                    hint = resume_hint(self.run_id, cfg.to_dict())
                    status, message = "interrupted", f"interrupted at step {self.step}; {hint}"
                if bad is None and self.dist is None:  # N ranks cannot meet for a checkpoint now: the last one stays
                    self._save_checkpoint()
            return self._finish(status, message, time.perf_counter() - start)
        except Exception as err:
            self.metrics.flush()
            self.store.finish_run(
                self.run_id, "failed", final={"step": self.step}, message=f"{type(err).__name__}: {err}"
            )
            raise

    def _config_callbacks(self) -> list[Callback]:
        cfg = self.config
        out: list[Callback] = []
        if cfg.diagnose.stats_every:
            from trainlab.diagnose.stats import LayerStats

            out.append(LayerStats(self.model, every=cfg.diagnose.stats_every))
        es = cfg.train.early_stopping
        if es is not None:
            out.append(EarlyStopping(es.monitor, es.mode, es.patience, es.min_delta, es.restore_best))
        if cfg.log.to and (self.dist is None or self.dist.rank == 0):  # mirrors of the store: csv, TensorBoard, MLflow
            from trainlab.loggers import create_loggers

            out += create_loggers(cfg.log.to, **cfg.log.options())
        return out

    def _progress(self):
        if self.quiet:
            return nullcontext(None)
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        return Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"), console=Console(stderr=True), transient=False,
        )  # fmt: skip

    def _loop(self, progress) -> tuple[str, str | None]:
        cfg, s = self.config, self.setup
        task = progress.add_task(cfg.name, total=s.total_steps, completed=self.step, info="") if progress else None
        eval_every = cfg.train.eval_every or s.steps_per_epoch
        ckpt_every = cfg.train.checkpoint_every
        log_every = cfg.train.log_every
        k = cfg.train.accumulate
        device, augment, callbacks, dist = self.device, s.augment, self.callbacks, self.dist
        train_step, total_steps = self._train_step, s.total_steps

        def prepare(batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
            xb, yb = batch
            # (.to() returns the tensor itself when it is on the device already; the check is cheaper)
            if getattr(xb, "device", None) != device:
                xb = xb.to(device, non_blocking=True)
            if getattr(yb, "device", None) != device:
                yb = yb.to(device, non_blocking=True)
            if augment is not None:
                xb = augment(xb, self.aug_gen)
            if dist is not None:  # this rank's 1/N of the global batch
                xb, yb = dist.shard(xb, yb)
            return xb, yb

        for cb in callbacks:
            cb.on_fit_start(self)
        # the callbacks that do something on every step (calling Callback's no-op hook does nothing)
        step_end = _using(callbacks, "on_step_end")
        self._before_step = _using(callbacks, "on_before_step")
        self.model.train()
        while self.step < total_steps:
            for batch in s.batches if k == 1 else _groups(s.batches, k):
                logs = train_step((prepare(batch),) if k == 1 else [prepare(b) for b in batch])
                self.step = step = self.step + 1
                for cb in step_end:
                    extra = cb.on_step_end(self, step, logs)
                    if extra:
                        self.metrics.add(step, extra)
                end_of_run = step >= total_steps
                evaluate = end_of_run or step % eval_every == 0
                checkpoint = (
                    (ckpt_every or step % eval_every == 0)
                    and self._stop_reason is None
                    and not end_of_run
                    and self._checkpoint_due(ckpt_every, eval_every)
                )
                if evaluate or checkpoint or step % log_every == 0 or self._stop_reason is not None:
                    # the one place the step's numbers are read from the device
                    bad = self._drain()
                    if bad is not None:
                        return self._diverged(bad)
                    if step % log_every == 0:
                        self._log_window("train", reset=False)
                    if task is not None:
                        n = self._window.get("n", 0)
                        info = f"loss {self._window['loss'] / n:.4f} lr {logs['lr']:.3g}" if n else ""
                        progress.update(task, completed=step, info=info)
                if evaluate:
                    metrics = self._evaluate_and_report()
                    if task is not None:
                        info = " ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k.startswith("val_"))
                        progress.update(task, completed=step, info=info)
                if checkpoint and self._stop_reason is None:
                    self._save_checkpoint()
                if self._stop_reason is not None:
                    return ("pruned" if self._stop_reason.startswith("pruned") else "completed"), self._stop_reason
                if end_of_run:
                    break
            self.epoch += 1
        return "completed", None

    def _step_plan(self) -> None:
        """What every step does, decided once from the config (not looked up per step)."""
        cfg, reg = self.config, self.config.regularize
        self._precision = None if cfg.train.precision == "32" else self._autocast
        self._classify = bool(self.setup.data.num_classes)
        # the training loss is the task loss (no distillation or label smoothing): called directly
        self._task_loss = self.setup.teacher is None and not (self._classify and cfg.train.label_smoothing > 0)
        # on the CPU the correct count is taken per log window (see _keep_for_accuracy); on an
        # accelerator its operations are queued per step (an output of a CUDA graph, say, may be
        # overwritten by the next step, so it is not kept)
        self._batch_correct = self.device.type == "cpu"
        self._penalty = None
        if reg.l1 or reg.l2:
            l1, l2, include = reg.l1, reg.l2, reg.include_bias_and_norm
            self._penalty = lambda: penalty(self.model, l1=l1, l2=l2, include_bias_and_norm=include)
        self._clip = cfg.train.clip_norm is not None or cfg.train.clip_value is not None
        self._constrain = reg.max_norm is not None or reg.norm_bound is not None
        self._zero_grad = _grad_clearer(self.optimizer)
        # one process, 32-bit, no penalty, clipping or constraint: the lean step (most runs)
        self._lean = (
            self.dist is None and self.scaler is None and self._precision is None and self._penalty is None
            and not self._clip and not self._constrain
        )  # fmt: skip

    def _train_step(self, group: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, Any]:
        """One optimizer step on ``group``: one batch, or ``train.accumulate`` micro-batches
        whose gradients add up to the gradient of their union's mean loss (micro-batch i's loss
        weighted by n_i / Σn). Nothing here waits for the device (but float16's GradScaler):
        the loss and the gradient norm stay tensors until :meth:`_drain`, and the correct
        count is taken there too, from the steps' outputs (:meth:`_count_correct`)."""
        if self._lean and len(group) == 1:  # the same operations as below, without the branches
            xb, yb = group[0]
            self._zero_grad()
            out = self._forward(xb)
            loss = self.loss_fn(out, yb) if self._task_loss else self._train_loss(out, yb, xb)
            value = loss.detach()
            if value.dtype != torch.float32:
                value = value.float()
            counted = self._classify and isinstance(out, torch.Tensor)
            if counted:
                self._keep_for_accuracy(out, yb)
            loss.backward()
            for cb in self._before_step:
                cb.on_before_step(self, self.step)
            logs: dict[str, Any] = {"loss": value, "lr": self.optimizer.param_groups[0]["lr"]}
            self._pending["loss"].append(value)
            self.optimizer.step()
            self._set_lr(self.step + 1)
            if counted:
                self._seen += yb.shape[0]
            self._window["n"] += 1
            return logs
        scaler, dist, precision = self.scaler, self.dist, self._precision
        self._zero_grad()
        n_total = group[0][1].shape[0] if len(group) == 1 else sum(yb.shape[0] for _, yb in group)
        logged = correct = checked = None
        counted = False  # whether the step's predictions count towards train_acc
        for xb, yb in group:
            if precision is None:
                out = self._forward(xb)
                loss = self._train_loss(out, yb, xb)
            else:
                with precision:
                    out = self._forward(xb)
                    loss = self._train_loss(out, yb, xb)
            classify = self._classify and isinstance(out, torch.Tensor)  # a user's model may return more
            if dist is None:
                value = loss.detach()
                if value.dtype != torch.float32:
                    value = value.float()
                if classify:
                    self._keep_for_accuracy(out, yb)
                    counted = True
            else:  # the global batch's loss on every rank, and the weight that makes DDP's average its gradient
                loss, value, hits = dist.reduce_step(loss, out, yb, classify)
                if hits is not None:
                    correct, counted = (hits if correct is None else correct + hits), True
            total = loss if self._penalty is None else loss + self._penalty()
            if len(group) > 1:
                weight = yb.shape[0] / n_total
                total, value = total * weight, value * weight
            if logged is None:
                logged = value
                checked = None if total is loss else total.detach()
            else:  # the sums over the micro-batches
                logged = logged + value
                checked = None if checked is None else checked + total.detach()
            (scaler.scale(total) if scaler is not None else total).backward()
        if checked is not None:
            self._pending["total"].append(checked)
        for cb in self._before_step:
            cb.on_before_step(self, self.step)
        logs = {"loss": logged, "lr": self.optimizer.param_groups[0]["lr"]}
        self._pending["loss"].append(logged)  # type: ignore[arg-type]
        if self._clip:
            self._clip_gradients(logs)
        if scaler is not None:
            scaler.step(self.optimizer)  # skipped when the scaled gradients overflowed
            scaler.update()
        else:
            self.optimizer.step()
        if self._constrain:
            reg = self.config.regularize
            if reg.max_norm is not None:
                max_norm_(self.model, reg.max_norm, include_bias_and_norm=reg.include_bias_and_norm)
            if reg.norm_bound is not None:
                project_lp_ball_(
                    self.model, float(reg.norm_bound_p), reg.norm_bound, include_bias_and_norm=reg.include_bias_and_norm
                )
        self._set_lr(self.step + 1)
        if correct is not None:
            self._pending["correct"].append(correct)
        if counted:
            self._seen += n_total if dist is None else dist.batch_size
        self._window["n"] += 1
        return logs

    def _clip_gradients(self, logs: dict[str, Any]) -> None:
        cfg = self.config
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)  # clip the true gradients, not the scaled ones
        params = [p for p in self.model.parameters() if p.grad is not None]
        if cfg.train.clip_norm is not None:
            logs["grad_norm"] = clip_grad_norm_(params, cfg.train.clip_norm)
            self._pending["grad_norm"].append(logs["grad_norm"])
        if cfg.train.clip_value is not None:
            clip_grad_value_(params, cfg.train.clip_value)

    # the outputs kept for the correct count: at most this many elements at a time (then counted)
    _KEEP_ELEMENTS = 1 << 16

    def _keep_for_accuracy(self, out: torch.Tensor, yb: torch.Tensor) -> None:
        """The step's correct predictions, ``(argmax(-1) == y).sum()``. On the CPU the step's
        outputs and targets are kept instead, and :meth:`_count_correct` counts those of many
        steps in one go (three operations per log window, or per ``_KEEP_ELEMENTS`` kept
        scores, instead of three per step: on the quickstart MLP they were ~1.5% of a step).
        The count is the same integer either way. An output that is a view (of a parameter,
        say, which the optimizer step changes in place) is counted at once."""
        if not self._batch_correct or out._is_view() or out.dim() == 0 or out.shape[:-1] != yb.shape:
            out = out.detach()  # count it now
            self._pending["correct"].append((out.argmax(-1) == yb).sum())
            return
        out = out.detach()
        self._kept_out.append(out if out.dim() == 2 else out.reshape(-1, out.shape[-1]))
        self._kept_y.append(yb if yb.dim() == 1 else yb.reshape(-1))
        self._kept_elements += out.numel()
        if self._kept_elements >= self._KEEP_ELEMENTS:
            self._count_correct()

    def _count_correct(self) -> None:
        """The correct predictions of the kept outputs, as one device tensor in ``_pending``."""
        outs, ys = self._kept_out, self._kept_y
        if outs:
            out = outs[0] if len(outs) == 1 else torch.cat(outs)
            y = ys[0] if len(ys) == 1 else torch.cat(ys)
            self._pending["correct"].append((out.argmax(-1) == y).sum())
        self._kept_out.clear()
        self._kept_y.clear()
        self._kept_elements = 0

    def _set_lr(self, step: int) -> None:
        """The schedule's lr for the step after ``step`` optimizer steps (every group keeps its
        ratio to the first group's initial lr, as ``trainlab.schedules.to_torch`` does). The
        schedule is a pure function of the step, so a checkpoint needs only the step."""
        lr = self.setup.schedule(step)
        for group, ratio in zip(self.optimizer.param_groups, self._lr_ratios):
            group["lr"] = lr * ratio

    def _drain(self) -> int | None:
        """Read the numbers the steps since the last drain left on the device (one wait for
        it, at a log step, an evaluation, a checkpoint or a stop) and add them to the window.
        Returns the first step whose loss (or loss + penalty) was not finite, None if none was."""
        pending = self._pending
        if not pending["loss"]:
            return None
        first = self.step - len(pending["loss"]) + 1
        values = {k: torch.stack(v).tolist() for k, v in pending.items() if v and k != "correct"}
        for key in ("loss", "total"):
            if key in values and not all(map(math.isfinite, values[key])):
                return first + next(i for i, v in enumerate(values[key]) if not math.isfinite(v))
        window = self._window
        for key in ("loss", "grad_norm"):
            if key in values:
                total = window[key]
                for v in values[key]:  # in step order, as floats: the sums do not depend on when they are read
                    total += v
                window[key] = total
        self._count_correct()
        correct = pending["correct"]
        if correct:
            self._correct += int(correct[0] if len(correct) == 1 else torch.stack(correct).sum())
        for v in pending.values():
            v.clear()
        return None

    def _diverged(self, bad_step: int) -> tuple[str, str]:
        """The loss of ``bad_step`` was not finite: the run ends as diverged at the last good
        step; metrics a callback logged from ``bad_step`` on are removed."""
        self.step = bad_step - 1
        self.metrics.flush()
        self.store.truncate_metrics(self.run_id, self.step)
        kept = (
            "no checkpoint was written before it"
            if self._checkpoint_step is None
            else f"the last good checkpoint (step {self._checkpoint_step}) is kept"
        )
        return "diverged", f"loss became non-finite at step {bad_step}; {kept}"

    def _training_loss_fn(self) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
        """The training loss, chosen once: distillation, label smoothing, or the task loss."""
        cfg, s = self.config, self.setup
        if s.teacher is not None:
            teacher, temperature, alpha = s.teacher.to(self.device), cfg.distill.temperature, cfg.distill.alpha

            def distill(out: torch.Tensor, yb: torch.Tensor, xb: torch.Tensor) -> torch.Tensor:
                with torch.no_grad():
                    teacher_logits = teacher(xb)
                return distillation_loss(out, teacher_logits, yb, temperature, alpha)

            return distill
        if s.data.num_classes and cfg.train.label_smoothing > 0:
            eps, style = cfg.train.label_smoothing, cfg.train.label_smoothing_style
            return lambda out, yb, xb: smoothed_cross_entropy(out, yb, eps, style=style)
        loss_fn = s.loss_fn
        return lambda out, yb, xb: loss_fn(out, yb)

    def _log_window(self, prefix: str, reset: bool) -> dict[str, float]:
        n = self._window.get("n", 0)
        if not n:
            return {}
        means = {f"{prefix}_{k}": v / n for k, v in self._window.items() if k not in ("n", "lr")}
        means[f"{prefix}_lr"] = self.optimizer.param_groups[0]["lr"]
        if self._seen:
            means[f"{prefix}_acc"] = self._correct / self._seen
        if prefix == "train" and not reset:
            self.metrics.add(self.step, means)
        if reset:
            self._reset_window()
        return means

    def _reset_window(self) -> None:
        self._window: dict[str, float] = defaultdict(float)  # sums since the last evaluation
        self._correct, self._seen = 0, 0
        # each step's numbers as device tensors, until _drain reads them
        self._pending: dict[str, list[torch.Tensor]] = {"loss": [], "total": [], "grad_norm": [], "correct": []}
        # the outputs and targets of steps whose correct predictions are not counted yet
        self._kept_out: list[torch.Tensor] = []
        self._kept_y: list[torch.Tensor] = []
        self._kept_elements = 0

    def _evaluate_and_report(self) -> dict[str, float]:
        s = self.setup
        train = self._log_window("train", reset=True)
        val = self.evaluate_split("val") or {}
        metrics = {f"val_{k}": v for k, v in val.items()}
        metrics.update({k: v for k, v in train.items() if k in ("train_loss", "train_acc")})
        metrics["lr"] = self.optimizer.param_groups[0]["lr"]
        metrics["epoch"] = self.step / s.steps_per_epoch
        self.best.update(self.step, metrics)
        for cb in self.callbacks:
            extra = cb.on_eval(self, self.step, metrics)
            if extra:
                metrics.update(extra)
        for k, v in metrics.items():
            self.history[k].append((self.step, v))
        self.metrics.add(self.step, metrics)
        if self.trial is not None:
            self.trial.report(self.step, metrics[self.trial.metric])
            if self.trial.should_prune():
                self.request_stop(f"pruned by the study at step {self.step}")
        return metrics

    # -- checkpoints --------------------------------------------------------------------
    def _checkpoint_due(self, every: int, eval_every: int) -> bool:
        """Every ``every`` steps if set; otherwise at evaluations, at most once per
        ``checkpoint_seconds`` (a checkpoint per epoch of a tiny model would cost more than
        the epoch). The end of a run always writes one."""
        if every:
            return self.step % every == 0
        if self.step % eval_every:
            return False
        due = time.monotonic() - self._last_checkpoint >= self.config.train.checkpoint_seconds
        return due if self.dist is None else self.dist.agree(due)  # rank 0's clock decides for all

    def _save_checkpoint(self) -> None:
        self._last_checkpoint = time.monotonic()
        if self._drain() is not None:
            raise AssertionError("a checkpoint is written only after the steps it holds were checked finite")
        self.metrics.flush()  # a checkpoint never refers to metrics that were not written
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "batches": self.setup.batches.state_dict(),
            "aug_gen": self.aug_gen.get_state(),
            "history": {k: [list(p) for p in v] for k, v in self.history.items()},
            "window": {**self._window, "correct": self._correct, "seen": self._seen},
            "best": self.best.state_dict(),
            **({"scaler": self.scaler.state_dict()} if self.scaler is not None else {}),
            "callbacks": [cb.state_dict() if hasattr(cb, "state_dict") else None for cb in self.callbacks],
            "run_id": self.run_id,
        }
        if self.dist is not None:  # every rank's RNG state (dropout masks differ by rank); rank 0 writes
            state["rank_rng"] = self.dist.gather(rng_state())
            if self.dist.rank != 0:
                return
        save_checkpoint(self.ckpt_path, state)
        self.store.add_artifact(self.run_id, "checkpoint", self.ckpt_path)
        self._checkpoint_step = self.step

    def _foreign(self, state: dict[str, Any], run_id: str) -> str | None:
        """Why a loaded checkpoint is not run ``run_id``'s (a phrase after "is"), or None."""
        if state.get("run_id", run_id) != run_id:
            return f"run {str(state['run_id'])[:12]}'s checkpoint, not this run's"
        model = getattr(self, "model", None)
        mine = model.state_dict() if model is not None else None
        theirs = state["model"]
        if mine is not None and (
            not isinstance(theirs, dict)
            or set(theirs) != set(mine)
            or any(not isinstance(theirs[k], torch.Tensor) or theirs[k].shape != mine[k].shape for k in mine)
        ):
            return "another model's checkpoint (its weights do not fit this run's model)"
        return None

    def _read_checkpoint(self, run_id: str) -> tuple[dict[str, Any] | None, str, list[str]]:
        """The newest usable checkpoint of the run: (state, its file name, why newer ones were
        skipped); (None, "", []) when there is none."""
        from trainlab.train.checkpoint import load_latest

        def check(state: dict[str, Any]) -> str | None:
            saved_by = len(state.get("rank_rng", [None]))
            if saved_by != (self.dist.world_size if self.dist is not None else 1):
                raise ConfigError(
                    f"run {run_id} was checkpointed by {saved_by} process(es); resume it with --nproc {saved_by}"
                )
            return self._foreign(state, run_id)

        path = self.store.artifacts(run_id).get("checkpoint") or self.store.run_dir(run_id) / "checkpoint.pt"
        for used, state, skipped in load_latest(path, check):
            return state, used.name, skipped
        return None, "", []

    def _restore(self, run_id: str) -> None:
        """Continue from the newest usable checkpoint (warning when a newer one was damaged or
        another run's); with none, start again from step 0 (the config is in the store)."""
        import warnings

        # N ranks: rank 0 reads the file (it may be on rank 0's machine only) and sends it to all
        def read() -> tuple[dict[str, Any] | None, str, list[str]]:
            return self._read_checkpoint(run_id)

        state, used, skipped = read() if self.dist is None else self.dist.from_rank0(read)
        speaks = self.dist is None or self.dist.rank == 0
        if state is None:
            if speaks:
                warnings.warn(
                    f"run {run_id} has no usable checkpoint; starting it again from step 0 with its stored config",
                    CheckpointWarning,
                    stacklevel=2,
                )
            self.store.truncate_metrics(run_id, -1)
            self.store.set_status(run_id, "running")
            return
        try:
            self._apply_checkpoint(state)
        except Exception as err:  # it passed the checks (this run's, this model's) and still does not load
            raise ConfigError(
                f"run {run_id}: {used} does not load ({type(err).__name__}: {err}); start the run again as a new run"
            ) from None
        if skipped and speaks:
            warnings.warn(
                f"run {run_id}: {'; '.join(skipped)}; resuming from {used} (step {self.step})",
                CheckpointWarning,
                stacklevel=2,
            )
        self._checkpoint_step = self.step
        self.store.truncate_metrics(run_id, self.step)
        self.store.set_status(run_id, "running")

    def _apply_checkpoint(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.epoch = state["step"], state["epoch"]
        self._set_lr(self.step)
        self.setup.batches.load_state_dict(state["batches"])
        self.aug_gen.set_state(state["aug_gen"])
        self.history = defaultdict(list, {k: [tuple(p) for p in v] for k, v in state["history"].items()})
        window = dict(state["window"])
        self._correct = int(window.pop("correct"))
        self._seen = window.pop("seen")
        self._window = defaultdict(float, window)
        self.best.load_state_dict(state["best"])
        if self.scaler is not None and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])
        for cb, cb_state in zip(self.callbacks, state["callbacks"]):
            if cb_state is not None and hasattr(cb, "load_state_dict"):
                cb.load_state_dict(cb_state)
        set_rng_state(state["rng"] if self.dist is None else state["rank_rng"][self.dist.rank])

    def _finish(self, status: str, message: str | None, seconds: float) -> RunResult:
        s = self.setup
        last = {k: v[-1][1] for k, v in self.history.items() if v}
        final: dict[str, Any] = {
            "step": self.step,
            "epochs": self.step / s.steps_per_epoch,
            "train_loss": last.get("train_loss", math.nan),
            "val_loss": last.get("val_loss", math.nan),
            "best_step": self.best.best_step,  # the step where train.monitor was best
            "seconds": seconds,
        }
        for key in ("val_loss", "val_acc"):
            best = best_of((v for _, v in self.history.get(key, [])), mode_for(key))
            if best is not None:
                final[f"best_{key}"] = best
        for key in s.metrics or {}:
            final[f"val_{key}"] = last.get(f"val_{key}", math.nan)
        if s.data.num_classes:
            final["train_acc"] = last.get("train_acc", math.nan)
            final["val_acc"] = last.get("val_acc", math.nan)
        self.metrics.flush()
        logged = self.store.metrics(self.run_id)  # every logged row, not only the evaluations in self.history
        history = {k: list(zip(steps.tolist(), values.tolist())) for k, (steps, values) in logged.items()}
        result = RunResult(self.run_id, status, final, history, self.config, message, self.model)
        for cb in self.callbacks:
            cb.on_fit_end(self, result)
        if status in ("completed", "pruned"):
            self._save_checkpoint()  # before the test evaluation: should it fail, the training is kept
            test = self.evaluate_split("test") or {}  # after restore_best, if any
            final.update({f"test_{k}": v for k, v in test.items()})
        self.metrics.flush()
        if status != "interrupted":
            self.store.finish_run(self.run_id, status, final=_json_safe(final), message=message)
        else:
            self.store.set_status(self.run_id, status, message=message)
        for cb in self.callbacks:
            cb.on_run_end(self, result)
        return result


def _using(callbacks: Sequence[Callback], hook: str) -> list[Callback]:
    """The callbacks, in order, whose ``hook`` is not :class:`Callback`'s own no-op."""
    base = getattr(Callback, hook)
    return [cb for cb in callbacks if getattr(getattr(cb, hook, None), "__func__", None) is not base]


def _grad_clearer(optimizer: torch.optim.Optimizer) -> Callable[[], None]:
    """What clears the gradients before a step: ``optimizer.zero_grad(set_to_none=True)``, or,
    where that is torch's own method (every torch and trainlab optimizer), the same assignments
    ``p.grad = None`` without its profiler range and bookkeeping (~10 µs a call, 0.8% of a
    quickstart step). The groups are read at each call: a group added later, or the list that
    ``load_state_dict`` (a resume) puts in place, is cleared too."""
    if getattr(type(optimizer).zero_grad, "__wrapped__", type(optimizer).zero_grad) is not getattr(
        torch.optim.Optimizer.zero_grad, "__wrapped__", torch.optim.Optimizer.zero_grad
    ):
        return functools.partial(optimizer.zero_grad, set_to_none=True)  # a zero_grad of the user's own

    def clear() -> None:
        for group in optimizer.param_groups:
            for p in group["params"]:
                p.grad = None

    return clear


def _groups(batches, k: int):
    """The batches in lists of ``k`` (the last of an epoch may be shorter): one list per
    optimizer step."""
    if k == 1:
        for batch in batches:
            yield (batch,)
        return
    group = []
    for batch in batches:
        group.append(batch)
        if len(group) == k:
            yield group
            group = []
    if group:
        yield group


def _lr_ratios(optimizer: torch.optim.Optimizer) -> list[float]:
    base = [float(g["lr"]) for g in optimizer.param_groups]
    if base[0] == 0:
        if any(b != 0 for b in base):
            raise ConfigError(
                "optimizer.param_groups[0]['lr'] is 0, so the other groups' lr ratios to it are undefined"
            )
        return [1.0] * len(base)
    return [b / base[0] for b in base]


def _json_safe(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


def run(
    config: RunConfig | dict | str | None,
    *,
    store: Store | str | None = None,
    group: str | None = None,
    trial: Any = None,
    callbacks: Sequence[Callback] = (),
    quiet: bool = True,
    resume: str | None = None,
    nproc: int = 1,
    allow_targets: Sequence[str] = (),
) -> RunResult:
    """Train one run of ``config`` (a RunConfig, dict or TOML path) and record it in ``store``.

    ``resume=RUN_ID`` continues an interrupted run from its last checkpoint with the config it
    was started with (``config`` may then be None). ``nproc=N`` trains it data-parallel on N
    local processes (:mod:`trainlab.train.distributed`); in a process that ``torchrun`` started,
    the run joins torchrun's group by itself. A stored config that names code imports it only
    under the rules of :func:`trainlab.targets.check_stored`; ``allow_targets`` adds modules or
    files the caller trusts (those of the user's own config file).
    """
    from trainlab.train import distributed

    if nproc != 1 or distributed.launched_by_torchrun():
        if trial is not None or callbacks:
            raise ConfigError(
                "a run on several processes takes no trial or callbacks objects (they cannot cross to the workers)"
            )
        if nproc != 1:
            return distributed.launch(config, nproc=nproc, store=store, resume=resume, quiet=quiet, group=group)
        return distributed.run_worker(config, store=store, resume=resume, quiet=quiet, group=group)
    store = store if isinstance(store, Store) else Store(store)
    if resume is not None:
        record = store.get_run(resume)
        if record.status == "completed":
            raise ConfigError(f"run {record.id} is already completed; nothing to resume")
        from trainlab import targets

        if any(isinstance(record.config.get(s), dict) and record.config[s].get("python") for s in targets.TARGET_KEYS):
            raise ConfigError(
                f"run {record.id} was made by trainlab.fit from Python objects; the command line cannot rebuild them"
            )
        targets.check_stored(
            record.config, what=f"run {record.id}", allow=allow_targets
        )  # a stored config may name code: trust rules
        if "population" in store.artifacts(record.id):  # a member of a population: resume them all
            from trainlab.train.population import resume_population

            return next(r for r in resume_population(record.id, store) if r.run_id == record.id)
        trainer = Trainer(record.config, store=store, callbacks=callbacks, trial=trial, quiet=quiet, group=record.group)
        return trainer.fit(resume=record.id)
    return Trainer(config, store=store, callbacks=callbacks, trial=trial, quiet=quiet, group=group).fit()  # type: ignore[arg-type]
