"""Data sets: built-in generated/shipped ones and loaders for real file formats.

``load(name, **options)`` returns a :class:`Dataset` with train / validation / test tensors,
split deterministically by ``split_seed`` (the same split for every run seed, so seeds vary
initialization and data order, not the data).

Built in (no download ever):
    mnist1d   Greydanus (2020), generated offline by the ``mnist1d`` package with its default
              arguments (4000 train + 1000 test, 40 features, 10 classes), cached as ``.npz``.
    digits    scikit-learn's 8x8 handwritten digits (1797 images, pixel values / 16).
    spirals   K interleaved spiral arms in 2-D with Gaussian noise.
    adding    the adding problem (Hochreiter & Schmidhuber 1997): a sequence of (value, marker)
              pairs; the target is the sum of the two marked values. A regression task.
File formats:
    idx             MNIST's IDX format (plain or .gz): ``path`` (images), ``labels``.
    cifar10-binary  CIFAR-10's binary batches: ``path`` to a ``.bin`` file or a folder of them.
    npz             arrays ``x`` and ``y`` (keys ``x_key`` / ``y_key``), optional ``x_test``/``y_test``.
    csv             numeric columns with a header; ``label_column`` names the class column.
"""

from __future__ import annotations

import copy
import csv
import gzip
import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainlab._io import atomic_write_bytes
from trainlab.errors import ConfigError, unknown_name


@dataclass
class Dataset:
    """Tensors of one data set, already split. ``num_classes == 0`` marks a regression task."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def task(self) -> str:
        return "classification" if self.num_classes > 0 else "regression"

    def map_x(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> Dataset:
        """A copy with ``fn`` applied to every split's inputs (e.g. a fitted preprocessor)."""
        return replace(self, x_train=fn(self.x_train), x_val=fn(self.x_val), x_test=fn(self.x_test))

    def summary(self) -> str:
        return (
            f"{self.name}: train {len(self.x_train)}, val {len(self.x_val)}, test {len(self.x_test)}, "
            f"input {self.input_shape}, " + (f"{self.num_classes} classes" if self.num_classes else "regression")
        )


# ----------------------------------------------------------------------------------------
# built-in data sets: each returns (x, y, x_test | None, y_test | None, num_classes)

Raw = tuple[np.ndarray, np.ndarray, "np.ndarray | None", "np.ndarray | None", int]


def _cache_dir() -> Path:
    import os

    import platformdirs

    return Path(os.environ.get("TRAINLAB_CACHE") or platformdirs.user_cache_dir("trainlab"))


# mnist1d's get_dataset_args() defaults, written out so the cache key needs no import of the
# package (it pulls in scipy and matplotlib: ~1.6 s); the key is the one the defaults gave.
MNIST1D_ARGS: dict[str, Any] = {
    "num_samples": 5000, "train_split": 0.8, "template_len": 12, "padding": [36, 60], "scale_coeff": 0.4,
    "max_translation": 48, "corr_noise_scale": 0.25, "iid_noise_scale": 0.02, "shear_scale": 0.75,
    "shuffle_seq": False, "final_seq_length": 40, "seed": 42,
    "url": "https://github.com/greydanus/mnist1d/raw/master/mnist1d_data.pkl",
}  # fmt: skip


def _mnist1d_cache() -> Path:
    key = hashlib.sha256(json.dumps(MNIST1D_ARGS, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return _cache_dir() / f"mnist1d-{key}.npz"


def _mnist1d() -> Raw:
    """Generate (once, then cache as .npz — never pickle) mnist1d with the package defaults;
    the ``mnist1d`` package is imported only to generate, never when the cache exists."""
    path = _mnist1d_cache()
    if not path.exists():
        from mnist1d.data import get_dataset_args, make_dataset

        args = get_dataset_args()
        args.__dict__.update(copy.deepcopy(MNIST1D_ARGS))  # ours, should a release change its defaults
        d = make_dataset(args)
        import io

        buf = io.BytesIO()
        np.savez_compressed(buf, x=d["x"], y=d["y"], x_test=d["x_test"], y_test=d["y_test"])
        atomic_write_bytes(path, buf.getvalue())
    with np.load(path, allow_pickle=False) as z:
        return z["x"], z["y"], z["x_test"], z["y_test"], 10


def _digits() -> Raw:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None, :, :]  # (N, 1, 8, 8)
    return x, d.target, None, None, 10


def _spirals(n_samples: int = 1500, classes: int = 3, noise: float = 0.2, data_seed: int = 0) -> Raw:
    """K spiral arms: arm k at angle t + 2πk/K, radius t, t ~ U(0, 1), plus N(0, noise²)."""
    if classes < 2:
        raise ConfigError(f"data.classes must be >= 2 for spirals, got {classes}")
    rng = np.random.default_rng(data_seed)
    y = np.arange(n_samples) % classes
    t = rng.uniform(0.05, 1.0, n_samples)
    angle = 3.0 * np.pi * t + 2.0 * np.pi * y / classes
    x = np.stack([t * np.cos(angle), t * np.sin(angle)], axis=1)
    x += rng.normal(0.0, noise * 0.1, x.shape)
    return x.astype(np.float32), y, None, None, classes


def _adding(n_samples: int = 10000, seq_len: int = 50, data_seed: int = 0) -> Raw:
    """The adding problem: values U(0,1), two markers (one in each half); target = sum of marked."""
    if seq_len < 2:
        raise ConfigError(f"data.seq_len must be >= 2 for the adding problem, got {seq_len}")
    rng = np.random.default_rng(data_seed)
    values = rng.uniform(0.0, 1.0, (n_samples, seq_len))
    markers = np.zeros((n_samples, seq_len))
    half = seq_len // 2
    first = rng.integers(0, half, n_samples)
    second = rng.integers(half, seq_len, n_samples)
    rows = np.arange(n_samples)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = np.stack([values, markers], axis=2).astype(np.float32)  # (N, T, 2)
    y = (values[rows, first] + values[rows, second]).astype(np.float32)
    return x, y, None, None, 0


# ----------------------------------------------------------------------------------------
# file formats


def _require_file(path: str | None, key: str = "path") -> Path:
    if not path:
        raise ConfigError(f"data.{key} is required for this data set")
    p = Path(path).expanduser()
    if not p.exists():
        raise ConfigError(f"data.{key}: file not found: {p}")
    return p


def _read_maybe_gz(path: Path) -> bytes:
    with path.open("rb") as f:
        head = f.read(2)
    opener = gzip.open if head == b"\x1f\x8b" else open
    try:
        with opener(path, "rb") as f:
            return f.read()
    except (OSError, EOFError) as err:
        raise ConfigError(f"{path}: cannot read ({err})") from err


_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Parse an IDX file: magic = 0x00 0x00 <dtype code> <ndim>, ndim big-endian uint32 sizes, data."""
    path = Path(path)
    raw = _read_maybe_gz(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ConfigError(f"{path}: bad magic number {raw[:4].hex() or '(empty file)'}; not an IDX file")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ConfigError(f"{path}: truncated header ({len(raw)} bytes, need {header})")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = header + math.prod(shape) * dtype.itemsize
    if len(raw) != expected:
        raise ConfigError(f"{path}: wrong length: {len(raw)} bytes, header {shape} says {expected}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def _idx(path: str | None = None, labels: str | None = None) -> Raw:
    x = read_idx(_require_file(path)).astype(np.float32)
    y = read_idx(_require_file(labels, "labels")).astype(np.int64)
    if len(x) != len(y):
        raise ConfigError(f"{path}: {len(x)} images but {labels} has {len(y)} labels")
    if x.max(initial=0) > 1.0:
        x = x / 255.0
    if x.ndim == 3:
        x = x[:, None]  # (N, 1, H, W)
    return x, y, None, None, int(y.max()) + 1


_CIFAR_RECORD = 1 + 3 * 32 * 32


def read_cifar10_binary(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 binary batch: records of 1 label byte + 3072 pixel bytes (R, G, B planes)."""
    path = Path(path)
    raw = path.read_bytes()
    if len(raw) == 0 or len(raw) % _CIFAR_RECORD:
        raise ConfigError(f"{path}: wrong length: {len(raw)} bytes is not a multiple of the {_CIFAR_RECORD}-byte CIFAR-10 record")
    arr = np.frombuffer(raw, dtype=np.uint8).reshape(-1, _CIFAR_RECORD)
    y = arr[:, 0].astype(np.int64)
    if y.max() > 9:
        raise ConfigError(f"{path}: label {int(y.max())} out of range 0..9; not a CIFAR-10 binary file")
    x = arr[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 255.0
    return x, y


def _cifar10_binary(path: str | None = None) -> Raw:
    p = _require_file(path)
    if p.is_dir():
        train_files = sorted(p.glob("data_batch_*.bin"))
        if not train_files:
            raise ConfigError(f"{p}: no data_batch_*.bin files in this folder")
        parts = [read_cifar10_binary(f) for f in train_files]
        x, y = np.concatenate([a for a, _ in parts]), np.concatenate([b for _, b in parts])
        test = p / "test_batch.bin"
        xt, yt = read_cifar10_binary(test) if test.exists() else (None, None)
        return x, y, xt, yt, 10
    x, y = read_cifar10_binary(p)
    return x, y, None, None, 10


def _npz(path: str | None = None, x_key: str = "x", y_key: str = "y") -> Raw:
    p = _require_file(path)
    try:
        z = np.load(p, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise ConfigError(f"{p}: not a readable .npz file ({err})") from err
    with z:
        for key in (x_key, y_key):
            if key not in z.files:
                raise ConfigError(f"{p}: missing array '{key}' (arrays: {', '.join(z.files)})")
        try:
            x, y = z[x_key].astype(np.float32), z[y_key]
            xt = z[f"{x_key}_test"].astype(np.float32) if f"{x_key}_test" in z.files else None
            yt = z[f"{y_key}_test"] if f"{y_key}_test" in z.files else None
        except ValueError as err:  # object arrays are refused (unpickling could run code), text does not convert
            raise ConfigError(f"{p}: {err}; save plain numeric arrays (np.savez with numbers, not objects)") from err
    if len(x) != len(y):
        raise ConfigError(f"{p}: '{x_key}' has {len(x)} rows but '{y_key}' has {len(y)}")
    return x, y, xt, yt, _num_classes(y, yt)


def _csv(path: str | None = None, label_column: str | None = None) -> Raw:
    p = _require_file(path)
    if not label_column:
        raise ConfigError("data.label_column is required for csv: name the column holding the class")
    with p.open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if not header:
            raise ConfigError(f"{p}: empty file, expected a header row")
        if label_column not in header:
            raise ConfigError(f"{p}: missing column '{label_column}' (columns: {', '.join(header)})")
        li = header.index(label_column)
        xs, ys = [], []
        for lineno, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise ConfigError(f"{p}: line {lineno} has {len(row)} fields, header has {len(header)}")
            try:
                xs.append([float(v) for i, v in enumerate(row) if i != li])
            except ValueError as err:
                raise ConfigError(f"{p}: line {lineno}: non-numeric feature ({err})") from err
            ys.append(row[li])
    if not xs:
        raise ConfigError(f"{p}: no data rows")
    classes = sorted(set(ys), key=lambda v: (not _is_int(v), int(v) if _is_int(v) else 0, v))
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[v] for v in ys], dtype=np.int64)
    return np.array(xs, dtype=np.float32), y, None, None, len(classes)


def _is_int(v: str) -> bool:
    try:
        int(v)
        return True
    except ValueError:
        return False


def _num_classes(y: np.ndarray, y_test: np.ndarray | None) -> int:
    if np.issubdtype(y.dtype, np.floating) and not np.all(np.mod(y, 1) == 0):
        return 0
    top = max(int(y.max()), int(y_test.max()) if y_test is not None else 0)
    return top + 1


@dataclass(frozen=True)
class _Spec:
    fn: Callable[..., Raw]
    options: tuple[str, ...]
    description: str


DATASETS: dict[str, _Spec] = {
    "mnist1d": _Spec(_mnist1d, (), "MNIST-1D (Greydanus 2020), 40-d signals, 10 classes, generated offline"),
    "digits": _Spec(_digits, (), "scikit-learn 8x8 digits, 1797 images, 10 classes"),
    "spirals": _Spec(_spirals, ("n_samples", "classes", "noise", "data_seed"), "K-arm 2-D spirals with noise"),
    "adding": _Spec(_adding, ("n_samples", "seq_len", "data_seed"), "the adding problem for RNNs (regression)"),
    "idx": _Spec(_idx, ("path", "labels"), "MNIST-format IDX files (plain or .gz)"),
    "cifar10-binary": _Spec(_cifar10_binary, ("path",), "CIFAR-10 binary batches (.bin file or folder)"),
    "npz": _Spec(_npz, ("path", "x_key", "y_key"), "NumPy .npz with arrays x, y (and x_test, y_test)"),
    "csv": _Spec(_csv, ("path", "label_column"), "CSV with a header; label_column names the class"),
}


def load(
    name: str,
    *,
    split_seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    subset: int | None = None,
    **options: Any,
) -> Dataset:
    """Load data set ``name`` and split it: test (its own test split if it has one, else
    ``test_fraction``), then ``val_fraction`` of the rest for validation; ``subset`` keeps only
    the first N training samples (after shuffling), for small-data experiments.
    """
    spec = DATASETS.get(name)
    if spec is None:
        raise unknown_name("data set", name, DATASETS)
    for key in options:
        if key not in spec.options:
            takes = ", ".join(spec.options) or "no options"
            raise ConfigError(f"data.{key} is not an option of data set '{name}' (it takes: {takes})")
    if not 0.0 <= val_fraction < 1.0:
        raise ConfigError(f"data.val_fraction must be in [0, 1), got {val_fraction}")
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"data.test_fraction must be in (0, 1), got {test_fraction}")
    x, y, x_test, y_test, num_classes = spec.fn(**options)
    x = torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32)
    y = torch.as_tensor(np.ascontiguousarray(y), dtype=torch.long if num_classes else torch.float32)
    g = torch.Generator().manual_seed(split_seed)
    perm = torch.randperm(len(x), generator=g)
    x, y = x[perm], y[perm]
    if x_test is None:
        n_test = max(1, int(round(test_fraction * len(x))))
        x_test_t, y_test_t, x, y = x[:n_test], y[:n_test], x[n_test:], y[n_test:]
    else:
        x_test_t = torch.as_tensor(np.ascontiguousarray(x_test), dtype=torch.float32)
        y_test_t = torch.as_tensor(np.ascontiguousarray(y_test), dtype=y.dtype)
    n_val = int(round(val_fraction * len(x)))
    x_val, y_val, x, y = x[:n_val], y[:n_val], x[n_val:], y[n_val:]
    if subset is not None:
        if subset < 1:
            raise ConfigError(f"data.subset must be >= 1, got {subset}")
        x, y = x[:subset], y[:subset]
    return Dataset(name, x, y, x_val, y_val, x_test_t, y_test_t, num_classes)
