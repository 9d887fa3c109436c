"""Data-parallel training: one run on N processes (torch DistributedDataParallel).

Two ways in, one worker:

* ``trainlab run CONFIG --nproc N`` / ``run(config, nproc=N)`` / :func:`launch` start N local
  workers through torch's elastic launcher (what ``torchrun`` uses) and wait for them;
* ``torchrun --nnodes … --nproc-per-node … -m trainlab run CONFIG`` starts the workers itself;
  each one finds ``WORLD_SIZE`` in its environment and joins the group (:func:`run_worker`).

What a run on N processes computes (Goyal et al. 2017, §2-3; the notes' 000 §7.1):

* ``data.batch_size`` is the **global** batch B. Every rank draws the same global batch (the
  same data-order generator as the one-process run, the same augmentation generator) and keeps
  the ``rank``-th of N contiguous slices of it, so the N ranks together see exactly the batches
  of the one-process run, in its order.
* Rank r's loss is its slice's mean times ``n_r·N/B`` (1 when N divides B); DDP averages the
  gradients over the N ranks, so every rank steps with ∇ of the global batch's mean loss —
  the one-process gradient up to the order of floating-point sums. ``optim.scale_lr`` scales
  by B, the global batch, as in one process.
* ``model.sync_bn = true``: batch-norm statistics over the global batch (:class:`SyncBatchNorm`).
* Rank 0 alone writes the store (one run: metrics, checkpoints, final); the checkpoint holds
  every rank's RNG state, and a resumed run restores each rank's own, so ``--resume`` continues
  bit for bit as the uninterrupted N-process run would have.

Evaluation runs on every rank over the whole validation set with rank 0's buffers, so every
rank takes the same decisions (early stopping, divergence) without further messages.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import signal
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from trainlab.errors import ConfigError
from trainlab.store import resume_hint

T = TypeVar("T")

_CONTEXT: Context | None = None  # set in a worker while its run trains

NO_LOADERS = (
    "a DataLoader cannot be split over N processes in the one-process order: give its Dataset instead "
    "(each rank then loads its 1/N of every global batch), or train on one process"
)


def context() -> Context | None:
    """The data-parallel context of this process's run, or None in a one-process run."""
    return _CONTEXT


def launched_by_torchrun() -> bool:
    """True in a worker that ``torchrun`` (or another elastic launch) started with several ranks
    and that has not joined its group yet."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ and _CONTEXT is None


@dataclass
class Context:
    """This rank's place in the group and the few collectives the trainer needs."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    run_id: str | None = None  # chosen by the launcher, so that it can name the run if a worker dies
    _n_global: int = field(default=0, repr=False)
    _n_local: int = field(default=0, repr=False)
    _presharded: Any = field(default=None, repr=False)  # a user's Dataset's batches, sharded where they load

    # -- the batch ---------------------------------------------------------------------
    def prepare(self, data: Any, batches: Any, batch_size: int, drop_last: bool) -> None:
        """Check that every global batch reaches every rank; a user's map-style Dataset is
        sharded where it loads (each rank reads only its slice of each global batch); a
        DataLoader is refused: its batches are made before a rank could pick its part."""
        from trainlab.data import Dataset

        if isinstance(data, Dataset):
            n = len(data.x_train)
        else:
            from trainlab.data.sources import IndexBatches

            if not isinstance(batches, IndexBatches):
                raise ConfigError(NO_LOADERS)
            n = len(batches.dataset)
            batches.shard(self.rank, self.world_size)
            self._presharded = batches
        self.check_batches(n, batch_size, drop_last)

    def check_batches(self, n_samples: int, batch_size: int, drop_last: bool) -> None:
        """Every global batch must leave each rank at least one sample."""
        n = self.world_size
        if batch_size < n:
            raise ConfigError(
                f"data.batch_size = {batch_size} is the global batch: it must be at least the {n} processes"
            )
        last = n_samples % batch_size
        if not drop_last and 0 < last < n:
            raise ConfigError(
                f"data.batch_size = {batch_size}: the last batch of an epoch holds {last} samples, fewer than the {n} "
                "processes; set data.drop_last = true or choose another batch size"
            )

    def shard(self, xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's slice of the global batch: the ``rank``-th of N contiguous parts."""
        if self._presharded is not None:  # a user's Dataset: already this rank's slice
            self._n_global, self._n_local = self._presharded.global_size, len(xb)
            return xb, yb
        self._n_global = len(xb)
        xs, ys = torch.tensor_split(xb, self.world_size)[self.rank], torch.tensor_split(yb, self.world_size)[self.rank]
        self._n_local = len(xs)
        return xs, ys

    @property
    def batch_size(self) -> int:
        """The global batch size of the last :meth:`shard`."""
        return self._n_global

    def reduce_step(
        self, loss: torch.Tensor, out: torch.Tensor, yb: torch.Tensor, classify: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Weigh the local mean loss so that DDP's gradient average is the global batch's:
        ℓ_r · n_r·N/B (Σ_r over N ranks of ℓ_r·n_r/B = the global mean). Returns the weighted
        loss, the global batch's mean loss (the same value on every rank: the NaN check and the
        logs agree) and the global count of correct predictions — one all-reduce, read from the
        device only when the trainer reads its other numbers."""
        weight = self._n_local * self.world_size / self._n_global
        if weight != 1.0:
            loss = loss * weight
        classify = classify and isinstance(out, torch.Tensor)
        zero = torch.zeros((), dtype=torch.long, device=loss.device)
        correct = (out.detach().argmax(-1) == yb).sum() if classify else zero
        both = torch.stack([loss.detach().double(), correct.double()])
        dist.all_reduce(both)
        return loss, (both[0] / self.world_size).to(loss.dtype), both[1].round().long()

    # -- agreement -----------------------------------------------------------------------
    def from_rank0(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on rank 0 and give every rank its value; its error is raised on every rank."""
        box: list[Any] = [None]
        if self.rank == 0:
            try:
                box[0] = (True, fn())
            except Exception as err:  # raised on every rank below
                box[0] = (False, err)
        dist.broadcast_object_list(box, src=0)
        ok, value = box[0]
        if not ok:
            raise value
        return value

    def agree(self, flag: bool) -> bool:
        """Rank 0's ``flag`` on every rank (a decision that reads the clock)."""
        return bool(self.from_rank0(lambda: flag))

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order, on every rank."""
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def sync_buffers(self, model: nn.Module) -> None:
        """Rank 0's buffers (batch-norm running statistics) on every rank, as DDP does before a forward."""
        for buf in model.buffers():
            dist.broadcast(buf, src=0)

    def seed(self, seed: int) -> None:
        """Rank r > 0 draws its own dropout masks: its global generators get a seed of their own.
        Rank 0 keeps the one-process run's."""
        if self.rank:
            from trainlab.train.checkpoint import seed_everything

            seed_everything(seed + 1_000_003 * self.rank)

    def wrap(self, model: nn.Module, sync_bn: bool) -> nn.Module:
        """DDP around ``model`` (after its batch norms became :class:`SyncBatchNorm` when asked)."""
        from torch.nn.parallel import DistributedDataParallel

        if sync_bn:
            convert_sync_batchnorm(model)
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)


# -- synchronized batch normalization ------------------------------------------------------


class _AllReduceSum(torch.autograd.Function):
    """Σ over ranks with autograd: each rank's loss depends on every rank's contribution, so the
    gradient of the sum is the sum of the ranks' gradients (an all-reduce again)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        out = x.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        out = grad.clone()
        dist.all_reduce(out)
        return out


def all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    return _AllReduceSum.apply(x)


class SyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch normalization with the statistics of the global batch (Ioffe & Szegedy 2015, Alg. 1,
    over the union of the N ranks' slices):

        μ = Σ_r Σ_i x_ri / n,    σ² = Σ_r Σ_i (x_ri − μ)² / n,    n = Σ_r n_r,
        y = γ (x − μ) / √(σ² + ε) + β;  running_var uses σ² · n/(n − 1).

    Two all-reduces with autograd (:func:`all_reduce_sum`), so the
    gradient flows through the statistics to every rank's inputs as in one process. Unlike
    ``torch.nn.SyncBatchNorm`` (CUDA only) it runs on any backend, gloo on CPU included. Its
    state dict is a batch norm's: a checkpoint loads into the one-process model."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(x)
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        count = torch.tensor([x.numel() / x.size(1)], dtype=x.dtype, device=x.device)
        sums = all_reduce_sum(torch.cat([x.sum(dims), count]))
        n = sums[-1]
        mean = sums[:-1] / n
        var = all_reduce_sum((x - mean.view(shape)).pow(2).sum(dims)) / n
        tracked = self.num_batches_tracked
        if (
            self.track_running_stats
            and self.running_mean is not None
            and self.running_var is not None
            and tracked is not None
        ):
            with torch.no_grad():
                tracked.add_(1)
                m = 1.0 / float(tracked) if self.momentum is None else self.momentum
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * n / (n - 1).clamp(min=1), alpha=m)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def convert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every batch norm under ``module`` by a :class:`SyncBatchNorm` holding the same
    parameters (the optimizer's) and buffers."""
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(child, SyncBatchNorm):
            new = SyncBatchNorm(child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats)
            if child.affine:
                new.weight, new.bias = child.weight, child.bias
            for buf in ("running_mean", "running_var", "num_batches_tracked"):
                setattr(new, buf, getattr(child, buf))
            new.train(child.training)
            setattr(module, name, new)
        else:
            convert_sync_batchnorm(child)
    return module


# -- the workers ---------------------------------------------------------------------------


class RankStore:
    """The store as a rank other than 0 sees it: reads go to the real store (a teacher run, say),
    writes go nowhere — rank 0 writes the one run."""

    def __init__(self, url: str, artifact_root: str | None):
        self.url, self._root = url, artifact_root
        self._store: Any = None
        self._dir = Path(tempfile.mkdtemp(prefix="trainlab-rank-"))

    def _real(self):
        if self._store is None:
            from trainlab.store import Store

            self._store = Store(self.url, self._root)
        return self._store

    def get_run(self, run_id: str):
        return self._real().get_run(run_id)

    def artifacts(self, run_id: str) -> dict[str, Path]:
        return self._real().artifacts(run_id)

    def run_dir(self, run_id: str) -> Path:
        return self._dir

    def metrics(self, run_id: str, keys=None) -> dict:
        return {}

    def create_run(self, *args, **kwargs) -> str:  # pragma: no cover - the trainer asks rank 0
        raise AssertionError("only rank 0 creates the run")

    def _ignore(self, *args, **kwargs) -> None:
        return None

    set_status = finish_run = add_artifact = log_metrics = truncate_metrics = _ignore


def _device(local_rank: int, wanted: str) -> torch.device:
    if wanted in ("auto", "cuda") and torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    if wanted.startswith("cuda"):
        raise ConfigError(f"train.device = '{wanted}' but this machine has no CUDA device")
    return torch.device("cpu")


def run_worker(
    config,
    *,
    store: Any = None,
    artifacts: str | None = None,
    resume: str | None = None,
    quiet: bool = True,
    run_id: str | None = None,
    group: str | None = None,
    parts: Any = None,
):
    """Train this rank's part of the run (a process started by :func:`launch` or ``torchrun``):
    join the group (gloo on CPU, nccl on CUDA), train, leave. Returns this rank's RunResult
    (rank 0's has the metrics). ``parts``: ``trainlab.fit``'s Python objects."""
    global _CONTEXT
    from trainlab.store import Store
    from trainlab.train.config import load_config
    from trainlab.train.trainer import Trainer

    rank, world, local_rank = (
        int(os.environ["RANK"]),
        int(os.environ["WORLD_SIZE"]),
        int(os.environ.get("LOCAL_RANK", "0")),
    )
    url = store.url if isinstance(store, Store) else store
    if rank == 0:
        st: Any = store if isinstance(store, Store) else Store(url, artifacts)
        if st.in_memory:
            raise ConfigError(
                "a run on several processes needs a store they can share: give --store a file or database URL, not ':memory:'"
            )
    else:
        from trainlab.store import resolve_url

        st = RankStore(resolve_url(url), artifacts)
    if resume is not None and config is None:  # under torchrun: the stored config (--nproc passes it)
        record = Store(url, artifacts).get_run(resume) if rank else st.get_run(resume)
        config, group, run_id = record.config, record.group, record.id
        from trainlab.targets import check_stored

        check_stored(config, what=f"run {run_id}")  # a stored config may name code: trust rules
    cfg = load_config(config)
    device = _device(local_rank, cfg.train.device)
    if not cfg.train.threads and device.type == "cpu":
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(
        backend, timeout=datetime.timedelta(minutes=10), device_id=device if device.type == "cuda" else None
    )
    _CONTEXT = Context(rank, world, local_rank, device, run_id=run_id)
    try:
        trainer = Trainer(cfg, store=st, quiet=quiet or rank != 0, group=group, parts=parts)
        return trainer.fit(resume=resume)
    finally:
        _CONTEXT = None
        dist.destroy_process_group()


def _worker(
    config: dict,
    store_url: str,
    artifacts: str | None,
    resume: str | None,
    run_id: str,
    quiet: bool,
    group: str | None,
    parts: Any = None,
) -> dict[str, Any] | None:
    """The function each process of :func:`launch` runs; rank 0 returns a summary."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    _name_process(f"trainlab-rank{os.environ['RANK']}")
    if parts is not None:  # torch sends tensors to spawned processes in shared memory: each rank needs its own
        import copy

        parts = copy.deepcopy(parts)
    try:
        result = run_worker(
            config,
            store=store_url,
            artifacts=artifacts,
            resume=resume,
            quiet=quiet,
            run_id=run_id,
            group=group,
            parts=parts,
        )
    except ConfigError as err:
        return {"config_error": str(err)}
    if int(os.environ["RANK"]) != 0:
        return None
    return {"run_id": result.run_id, "status": result.status, "message": result.message}


def _check_picklable(parts: Any) -> None:
    """``fit(..., nproc=N)`` sends its objects to N new processes; say which one cannot go."""
    import pickle

    from trainlab.data.sources import _is_loader

    if parts.train is not None and _is_loader(parts.train):
        raise ConfigError(f"fit(nproc=N): {NO_LOADERS}")
    for name in ("model", "train", "val", "test", "loss", "metrics", "optimizer"):
        try:
            pickle.dumps(getattr(parts, name))
        except Exception as err:
            raise ConfigError(
                f"fit(nproc=N): {name} cannot be sent to the worker processes ({type(err).__name__}: {err}); use "
                "module-level classes and functions (no lambdas or local objects), or run the script under torchrun"
            ) from None


def _name_process(name: str) -> None:
    """Show the rank in ``ps``/``top`` (Linux: the process name, at most 15 characters)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/comm").write_text(name[:15])


def _quiet_elastic_logs() -> None:
    for name in ("torch.distributed.elastic", "torch.distributed.launcher", "torch.distributed.run"):
        logging.getLogger(name).setLevel(logging.ERROR)


def launch(
    config: Any = None,
    *,
    nproc: int,
    store: Any = None,
    resume: str | None = None,
    quiet: bool = True,
    group: str | None = None,
    parts: Any = None,
):
    """Train ``config`` on ``nproc`` local processes (DDP) and return rank 0's RunResult.
    ``parts``: ``trainlab.fit``'s Python objects, sent to each worker (they must pickle).

    The workers start through torch's elastic launcher (``torch.distributed.launcher``), with no
    restarts: if one dies the others are stopped, the run is marked ``interrupted`` (killed by a
    signal) or ``failed`` (an error) with a message naming the worker, and ``resume=RUN_ID``
    with the same ``nproc`` continues it from its last checkpoint.

    Example::

        result = launch("examples/quickstart.toml", nproc=2, store="runs/trainlab.db")
    """
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    from trainlab.store import Store
    from trainlab.train.config import load_config
    from trainlab.train.trainer import RunResult

    if nproc < 1:
        raise ConfigError(f"nproc must be >= 1, got {nproc}")
    if _CONTEXT is not None or launched_by_torchrun():
        raise ConfigError("--nproc inside a torchrun worker: torchrun already started the processes; drop --nproc")
    st = store if isinstance(store, Store) else Store(store)
    if st.in_memory:
        raise ConfigError(
            "--nproc needs a store the worker processes can share: give --store a file or database URL, not ':memory:'"
        )
    if parts is not None:
        _check_picklable(parts)
    if resume is not None:
        record = st.get_run(resume)
        if record.status == "completed":
            raise ConfigError(f"run {record.id} is already completed; nothing to resume")
        from trainlab.targets import check_stored

        check_stored(record.config, what=f"run {record.id}")  # before any worker starts
        cfg, run_id, group = load_config(record.config), record.id, record.group
    else:
        cfg, run_id = load_config(config), uuid.uuid4().hex[:12]
    _quiet_elastic_logs()
    lc = LaunchConfig(
        min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=f"trainlab-{run_id}", rdzv_backend="c10d",
        rdzv_endpoint="127.0.0.1:0", max_restarts=0, monitor_interval=0.1, start_method="spawn",
    )  # fmt: skip
    artifacts = str(st.artifact_root)
    try:
        out = elastic_launch(lc, _worker)(cfg.to_dict(), st.url, artifacts, resume, run_id, quiet, group, parts)
    except ChildFailedError as err:
        status, message = _failure(err, run_id, nproc, cfg.to_dict())
        _mark(st, run_id, status, message)
        return _result(st, run_id, cfg, status, message)
    except (KeyboardInterrupt, SignalException) as err:  # Ctrl-C or a signal to the launcher: the workers are stopped
        sig = getattr(err, "sigval", None)
        why = f"the launcher got {sig.name}" if sig is not None else "interrupted"
        message = f"{why}; the workers were stopped; {resume_hint(run_id, cfg.to_dict(), nproc)}"
        _mark(st, run_id, "interrupted", message)
        return _result(st, run_id, cfg, "interrupted", message)
    errors = [o["config_error"] for o in out.values() if isinstance(o, dict) and "config_error" in o]
    if errors:
        raise ConfigError(errors[0])
    summary = out[0]
    result = _result(st, summary["run_id"], cfg, summary["status"], summary["message"], parts)
    assert isinstance(result, RunResult)
    return result


def _failure(err: Any, run_id: str, nproc: int, config: dict[str, Any]) -> tuple[str, str]:
    """The status and one-line message of a job whose worker failed: a worker killed by a signal
    (kill -9, out of memory) makes the run ``interrupted``, an error in a worker ``failed``."""
    failures = err.failures
    killed = [(r, f) for r, f in failures.items() if f.exitcode < 0]
    rank, failure = min(killed, key=lambda rf: rf[0]) if killed else err.get_first_failure()
    resume = resume_hint(run_id, config, nproc)
    if failure.exitcode < 0:
        try:
            name = signal.Signals(-failure.exitcode).name
        except ValueError:
            name = f"signal {-failure.exitcode}"
        return (
            "interrupted",
            f"worker rank {rank} (pid {failure.pid}) was killed by {name}; the other workers were stopped; {resume}",
        )
    msg = failure.message if isinstance(failure.message, str) else str(failure.message)
    last = " ".join(msg.strip().splitlines()[-1:]) or f"exit code {failure.exitcode}"
    return "failed", f"worker rank {rank} failed: {last}; the other workers were stopped; {resume}"


def _mark(store: Any, run_id: str, status: str, message: str) -> None:
    try:
        record = store.get_run(run_id)
    except ConfigError:  # failed before rank 0 made the run
        return
    if record.status in ("running", "failed", "interrupted"):
        store.set_status(run_id, status, message=message)


def _result(store: Any, run_id: str, cfg: Any, status: str, message: str | None, parts: Any = None):
    """Rank 0's RunResult, read back from the store (the model from the run's last checkpoint)."""
    from trainlab.train.trainer import RunResult

    try:
        record = store.get_run(run_id)
    except ConfigError:
        return RunResult(run_id, status, {}, {}, cfg, message, None)
    logged = store.metrics(run_id)
    history = {k: list(zip(steps.tolist(), values.tolist())) for k, (steps, values) in logged.items()}
    return RunResult(
        run_id,
        record.status if record.status != "running" else status,
        dict(record.final or {}),
        history,
        cfg,
        record.message or message,
        _model(store, run_id, cfg, parts),
    )


def _model(store: Any, run_id: str, cfg: Any, parts: Any = None) -> nn.Module | None:
    ckpt = store.artifacts(run_id).get("checkpoint")
    if ckpt is None or not Path(ckpt).exists():
        return None
    from trainlab._io import torch_load
    from trainlab.train import build
    from trainlab.train.trainer import _prepare_data

    data = build.data(cfg, parts)
    if data is None:
        data, _ = _prepare_data(cfg)
    no_init_from = cfg.model_copy(update={"model": cfg.model.model_copy(update={"init_from": None})})
    model = build.model(no_init_from, data, store=store, parts=parts)  # fit's own model object, if given
    model.load_state_dict(torch_load(ckpt)["model"])
    return model
