"""A user's data in any of the forms ``trainlab.fit`` and ``data.target`` accept, made into
what the training loop reads.

Forms of each split (train, val, test):

- ``(X, y)``: tensors or NumPy arrays. All splits in this form (or None) become a
  :class:`~trainlab.data.Dataset` — checked by :func:`trainlab.data.validate.check_dataset`,
  batched by the in-memory :class:`~trainlab.data.BatchIterator`, preprocessed if asked.
- a ``torch.utils.data.Dataset`` (map-style): batched by :class:`IndexBatches` with the run's
  own generator, so its order is seeded and a resumed run sees the same batches.
- a ``DataLoader`` (or any re-iterable of ``(x, y)`` batches): used as it is; see
  :class:`LoaderBatches` for how a resumed run finds its place.
- a trainlab :class:`~trainlab.data.Dataset` as ``train``: its own splits.

``val=None`` takes ``val_fraction`` of the training samples (seeded by ``split_seed``);
``test=None`` means no test metrics. Targets: integers are class labels (cross-entropy,
accuracy), floats a regression (MSE).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from trainlab.data.datasets import Dataset
from trainlab.data.validate import check_dataset, check_features, check_targets, class_count
from trainlab.errors import ConfigError

SPLITS = ("train", "val", "test")


def is_pair(obj: Any) -> bool:
    return isinstance(obj, (tuple, list)) and len(obj) == 2 and all(hasattr(a, "shape") for a in obj)


def _is_loader(obj: Any) -> bool:
    from torch.utils.data import DataLoader

    return isinstance(obj, DataLoader) or (
        not hasattr(obj, "__getitem__") and hasattr(obj, "__iter__") and not is_pair(obj)
    )


def _is_map_dataset(obj: Any) -> bool:
    return (
        hasattr(obj, "__getitem__")
        and hasattr(obj, "__len__")
        and not is_pair(obj)
        and not isinstance(obj, (str, bytes, Mapping))
    )


def describe(obj: Any) -> str:
    """A short name of a data form, for the run's config (``data.python``)."""
    if obj is None:
        return "none"
    if is_pair(obj):
        x, y = obj
        return f"{type(x).__name__}{tuple(x.shape)},{type(y).__name__}{tuple(y.shape)}"
    return f"{type(obj).__module__}:{type(obj).__qualname__}"


def unpack(value: Any, key: str) -> tuple[Any, Any, Any]:
    """``(train, val, test)`` from what a data target returned: a tuple of 1–3 splits or a dict."""
    if isinstance(value, Dataset):
        return value, None, None
    if isinstance(value, Mapping):
        unknown = [k for k in value if k not in SPLITS]
        if unknown or "train" not in value:
            raise ConfigError(
                f"{key} returned a dict with keys {sorted(value)}; give 'train' and optionally 'val', 'test'"
            )
        return value["train"], value.get("val"), value.get("test")
    if isinstance(value, (tuple, list)) and not is_pair(value) and 1 <= len(value) <= 3:
        splits = list(value) + [None] * (3 - len(value))
        return splits[0], splits[1], splits[2]
    if is_pair(value) or _is_map_dataset(value) or _is_loader(value):
        return value, None, None
    raise ConfigError(
        f"{key} returned {type(value).__name__}; return (train, val, test) or {{'train': ..., 'val': ..., 'test': ...}}"
    )


def _target_dtype(y: np.ndarray) -> int | None:
    """0 (regression) for float targets; None (infer the class count) for integers."""
    return 0 if y.dtype.kind == "f" else None


def in_memory(train: Any, val: Any, test: Any, *, source: str, val_fraction: float, split_seed: int) -> Dataset:
    """A :class:`Dataset` from ``(X, y)`` pairs, checked like a built-in data set."""
    from trainlab.data.validate import as_array

    x, y = (as_array(a) for a in train)
    x_test, y_test = (as_array(a) for a in test) if test is not None else (None, None)
    num_classes = _target_dtype(as_array(y))
    x, y, x_test, y_test, k = check_dataset(
        x, y, x_test, y_test, num_classes, source=source, names=("train X", "train y", "test X", "test y")
    )
    if val is not None:
        xv, yv = (as_array(a) for a in val)
        xv = check_features(xv, source=source, name="val X")
        if xv.shape[1:] != x.shape[1:]:
            raise ConfigError(
                f"{source}: val X has rows of shape {xv.shape[1:]} but train X has {x.shape[1:]}; they need the same features"
            )
        yv = check_targets(yv, len(xv), source=source, name="val y", rows_of="val X")
        if k:
            from trainlab.data.validate import check_test_labels

            check_test_labels(yv, k, source=source, name="val y", train_name="train y")
    label = np.int64 if k else np.float32
    xt = torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32))
    yt = torch.as_tensor(np.ascontiguousarray(y, dtype=label))
    if val is None:
        n_val = round(val_fraction * len(xt))
        if n_val < 1 or n_val >= len(xt):
            raise ConfigError(
                f"{source}: give val data, or enough training rows to take a validation split from ({len(xt)} rows, val_fraction {val_fraction})"
            )
        perm = torch.randperm(len(xt), generator=torch.Generator().manual_seed(split_seed))
        xt, yt = xt[perm], yt[perm]
        x_val, y_val, xt, yt = xt[:n_val], yt[:n_val], xt[n_val:], yt[n_val:]
    else:
        x_val = torch.as_tensor(np.ascontiguousarray(xv, dtype=np.float32))
        y_val = torch.as_tensor(np.ascontiguousarray(yv, dtype=label))
    if x_test is not None:
        x_te = torch.as_tensor(np.ascontiguousarray(x_test, dtype=np.float32))
        y_te = torch.as_tensor(np.ascontiguousarray(y_test, dtype=label))
    else:
        x_te, y_te = xt[:0], yt[:0]
    return Dataset("user", xt, yt, x_val, y_val, x_te, y_te, k, meta={"source": source})


# ----------------------------------------------------------------------------------------
# torch Datasets and DataLoaders


class IndexBatches:
    """Seeded batches of a map-style Dataset: a permutation per epoch from the run's own
    generator, cut into batches of indices, each loaded through a DataLoader (default collate).
    Its state is the generator at the epoch's start plus the batches served, like
    :class:`~trainlab.data.BatchIterator`; restoring skips indices, not data."""

    def __init__(self, dataset: Any, batch_size: int, *, drop_last: bool = False, seed: int = 0, shuffle: bool = True):
        self.dataset, self.batch_size, self.drop_last, self.shuffle = dataset, batch_size, drop_last, shuffle
        self.generator = torch.Generator().manual_seed(seed)
        self._epoch_start = self.generator.get_state()
        self._served = 0
        self._perm: torch.Tensor | None = None
        self._shard: tuple[int, int] | None = None  # (rank, N): load only this rank's slice of each batch
        self.global_size = 0  # the size of the last global batch (before a rank's slice)

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def shard(self, rank: int, world_size: int) -> None:
        """On N processes: the same global batches (same generator), of which this rank loads
        only the ``rank``-th of N contiguous slices (trainlab.train.distributed)."""
        self._shard = (rank, world_size)

    def _batches(self) -> Iterator[list[int]]:
        if self._perm is None or self._served >= len(self):
            self._epoch_start = self.generator.get_state()
            n = len(self.dataset)
            self._perm = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
            self._served = 0
        while self._served < len(self):
            start = self._served * self.batch_size
            self._served += 1
            idx = self._perm[start : start + self.batch_size]
            self.global_size = len(idx)
            if self._shard is not None:
                idx = torch.tensor_split(idx, self._shard[1])[self._shard[0]]
            yield idx.tolist()
        self._perm = None

    def __iter__(self) -> Iterator[Any]:
        from torch.utils.data import DataLoader

        return iter(DataLoader(self.dataset, batch_sampler=_Sampler(self._batches)))

    def state_dict(self) -> dict[str, Any]:
        return {"epoch_start_state": self._epoch_start.clone(), "served": self._served}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["epoch_start_state"])
        self._epoch_start = self.generator.get_state()
        n = len(self.dataset)
        self._perm = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        self._served = int(state["served"])


class _Sampler:
    def __init__(self, make):
        self.make = make

    def __iter__(self):
        return self.make()


class LoaderBatches:
    """A user's DataLoader (or any re-iterable of batches), used as it is.

    A resumed run goes back to the epoch's start and skips the batches already served. The
    loader's shuffling draws from torch's global generator when its iterator starts (unless
    it has a ``generator=`` of its own): that state is kept at each epoch's start and set
    again for the replay, so a resumed run sees the same batches as an uninterrupted one."""

    def __init__(self, loader: Iterable[Any]):
        self.loader = loader
        self._served = 0
        self._epoch_rng: torch.Tensor | None = None
        self._pending: Iterator[Any] | None = None  # a resumed epoch's iterator, positioned

    def __len__(self) -> int:
        try:
            return len(self.loader)  # type: ignore[arg-type]
        except TypeError:
            raise ConfigError(
                "the training DataLoader has no length (an IterableDataset?); set steps= / train.max_steps and give it a __len__"
            ) from None

    def __iter__(self) -> Iterator[Any]:
        if self._pending is not None:
            it, self._pending = self._pending, None
        else:
            self._epoch_rng = torch.get_rng_state()
            self._served = 0
            it = iter(self.loader)
        for batch in it:
            self._served += 1
            yield batch
        self._served = 0

    def state_dict(self) -> dict[str, Any]:
        return {"epoch_rng": self._epoch_rng, "served": self._served}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Replay the epoch's start with its global-generator state and skip the served batches
        (the trainer sets the checkpoint's generator state afterwards)."""
        self._served = int(state["served"])
        self._epoch_rng = state.get("epoch_rng")
        if self._served == 0:
            return
        if self._epoch_rng is not None:
            torch.set_rng_state(self._epoch_rng)
        it = iter(self.loader)
        for _ in range(self._served):
            next(it)
        self._pending = it


@dataclass
class LoaderData:
    """Data that lives in Datasets / DataLoaders: what the loop needs of it."""

    name: str
    batches: Any  # IndexBatches | LoaderBatches
    val: Iterable[Any] | None
    test: Iterable[Any] | None
    num_classes: int | None  # None: class labels whose count the model's output decides
    input_shape: tuple[int, ...]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def task(self) -> str:
        return "classification" if self.num_classes != 0 else "regression"

    def head(self, n: int, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``n`` samples of a split as tensors (for diagnostics)."""
        source = self.val if split == "val" else (iter(_plain(self.batches)) if split == "train" else self.test)
        xs, ys, have = [], [], 0
        for xb, yb in source or ():
            xs.append(xb)
            ys.append(yb)
            have += len(xb)
            if have >= n:
                break
        if not xs:
            raise ConfigError(f"the {split} data yielded no batches")
        return torch.cat(xs)[:n], torch.cat(ys)[:n]

    def summary(self) -> str:
        kind = "regression" if self.num_classes == 0 else f"{self.num_classes or '?'} classes"
        return f"{self.name}: {len(self.batches)} training batches, input {self.input_shape}, {kind}"


def _plain(batches: Any) -> Iterable[Any]:
    if isinstance(batches, IndexBatches):
        from torch.utils.data import DataLoader

        return DataLoader(batches.dataset, batch_size=batches.batch_size)
    if isinstance(batches, LoaderBatches):
        return batches.loader
    return batches


def _eval_iterable(split: Any, batch_size: int) -> Iterable[Any] | None:
    from torch.utils.data import DataLoader, TensorDataset

    if split is None:
        return None
    if is_pair(split):
        x, y = (torch.as_tensor(np.asarray(a)) if not isinstance(a, torch.Tensor) else a for a in split)
        if len(x) != len(y):
            return DataLoader(TensorDataset(x, y), batch_size=batch_size)  # TensorDataset names the mismatch
        # slices (views) of the tensors: no per-sample indexing and collation at every evaluation
        return [(x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    if _is_loader(split):
        return split
    if _is_map_dataset(split):
        return DataLoader(split, batch_size=batch_size, shuffle=False)
    raise ConfigError(f"unsupported data form {type(split).__name__}: give (X, y), a torch Dataset or a DataLoader")


def first_batch(batches: Iterable[Any], source: str) -> tuple[torch.Tensor, torch.Tensor]:
    for batch in _plain(batches):
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise ConfigError(f"{source}: a batch is {type(batch).__name__}; each must be an (inputs, targets) pair")
        return batch[0], batch[1]
    raise ConfigError(f"{source}: the training data yielded no batches")


def _label_count(dataset: Any) -> int | None:
    classes = getattr(dataset, "classes", None)
    if isinstance(classes, (list, tuple)) and classes:
        return len(classes)
    targets = getattr(dataset, "targets", None)
    if targets is not None and hasattr(targets, "__len__") and len(targets):
        y = np.asarray(targets.cpu() if isinstance(targets, torch.Tensor) else targets)
        if y.dtype.kind in "biu":
            return class_count(y, source="the training Dataset", name="targets")
    return None


def from_forms(
    train: Any,
    val: Any,
    test: Any,
    *,
    source: str,
    batch_size: int,
    eval_batch_size: int,
    drop_last: bool,
    seed: int,
    val_fraction: float,
    split_seed: int,
) -> Dataset | LoaderData:
    """The data of a run from the user's splits (see the module docstring)."""
    if isinstance(train, Dataset):
        return train
    if train is None:
        raise ConfigError(f"{source}: no training data (train is None)")
    splits = (train, val, test)
    if all(s is None or is_pair(s) for s in splits):
        return in_memory(train, val, test, source=source, val_fraction=val_fraction, split_seed=split_seed)
    for name, split in zip(SPLITS, splits):
        if split is not None and not (is_pair(split) or _is_loader(split) or _is_map_dataset(split)):
            raise ConfigError(
                f"{source}: {name} is {type(split).__name__}; give (X, y), a torch Dataset or a DataLoader"
            )
    if is_pair(train):
        from torch.utils.data import TensorDataset

        train = TensorDataset(
            *(torch.as_tensor(np.asarray(a)) if not isinstance(a, torch.Tensor) else a for a in train)
        )
    if val is None:
        if _is_loader(train):
            raise ConfigError(f"{source}: give val data when train is a DataLoader (it cannot be split)")
        from torch.utils.data import Subset

        n = len(train)
        n_val = round(val_fraction * n)
        if n_val < 1 or n_val >= n:
            raise ConfigError(f"{source}: give val data, or enough training samples to take a validation split from")
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(split_seed)).tolist()
        train, val = Subset(train, perm[n_val:]), Subset(train, perm[:n_val])
    batches: Any = (
        LoaderBatches(train) if _is_loader(train) else IndexBatches(train, batch_size, drop_last=drop_last, seed=seed)
    )
    xb, yb = first_batch(batches, source)
    x0, y0 = (
        check_features(xb, source=source, name="a training batch's inputs"),
        check_targets(yb, len(xb), source=source, name="a training batch's targets", rows_of="inputs"),
    )
    num_classes: int | None = 0 if y0.dtype.kind == "f" else None
    if num_classes is None:
        class_count(y0, source=source, name="a training batch's targets")  # whole, non-negative
        num_classes = _label_count(getattr(train, "dataset", train))
    return LoaderData(
        "user", batches, _eval_iterable(val, eval_batch_size), _eval_iterable(test, eval_batch_size),
        num_classes, tuple(x0.shape[1:]), meta={"source": source},
    )  # fmt: skip
