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
File formats (every array is checked as it loads, see ``trainlab.data.validate``):
    idx             MNIST's IDX format (plain or .gz): ``path`` (images), ``labels``.
    cifar10-binary  CIFAR-10's binary batches: ``path`` to a ``.bin`` file or a folder of them.
    npz             arrays ``x`` and ``y`` (keys ``x_key`` / ``y_key``), optional ``x_test``/``y_test``.
    csv             numeric columns with a header; ``label_column`` names the class column.
                    UTF-8 (a byte-order mark is fine); the labels may be words.
"""

from __future__ import annotations

import copy
import csv
import gzip
import hashlib
import json
import math
import os
import stat
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainlab._io import atomic_write_bytes
from trainlab.data.validate import check_dataset
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
# built-in data sets: each returns (x, y, x_test | None, y_test | None, num_classes), where
# num_classes is None when the labels decide it (see trainlab.data.validate.check_dataset)

Raw = tuple[np.ndarray, np.ndarray, "np.ndarray | None", "np.ndarray | None", "int | None"]


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


def _require_file(path: str | None, key: str = "path", *, folder_ok: bool = False) -> Path:
    """The file named by ``data.<key>``: it must exist and be a regular file (a device such as
    /dev/zero or a pipe would be read without end), or a folder where ``folder_ok``."""
    if not path:
        raise ConfigError(f"data.{key} is required for this data set")
    p = Path(path).expanduser()
    try:
        mode = p.stat().st_mode
    except FileNotFoundError:
        raise ConfigError(f"data.{key}: file not found: {p}") from None
    except OSError as err:
        raise ConfigError(f"data.{key}: cannot read {p} ({err.strerror})") from err
    if stat.S_ISDIR(mode) and not folder_ok:
        raise ConfigError(f"data.{key}: {p} is a folder; give the data file itself")
    if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        raise ConfigError(f"data.{key}: {p} is not a regular file (a device, pipe or socket); give a data file")
    if not os.access(p, os.R_OK):
        raise ConfigError(f"data.{key}: cannot read {p} (permission denied)")
    return p


def _read_maybe_gz(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            head = f.read(2)
        opener = gzip.open if head == b"\x1f\x8b" else open
        with opener(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as err:
        raise ConfigError(f"{path}: cannot read ({err})") from err


_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Parse an IDX file: magic = 0x00 0x00 <dtype code> <ndim>, ndim big-endian uint32 sizes, data."""
    path = Path(path)
    raw = _read_maybe_gz(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ConfigError(f"{path}: bad magic number {raw[:4].hex() or '(empty file)'}; not an IDX file")
    ndim = raw[3]
    if ndim == 0:
        raise ConfigError(f"{path}: the header gives no dimensions; an IDX file holds an array of shape (N, ...)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ConfigError(f"{path}: truncated header ({len(raw)} bytes, need {header})")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])  # type: ignore[call-overload]
    expected = header + math.prod(shape) * dtype.itemsize
    if len(raw) != expected:
        raise ConfigError(f"{path}: wrong length: {len(raw)} bytes, header {shape} says {expected}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def _idx(path: str | None = None, labels: str | None = None) -> Raw:
    from trainlab.data.validate import class_count, is_class_labels

    x = read_idx(_require_file(path))
    y = read_idx(_require_file(labels, "labels"))
    if x.ndim < 2:
        raise ConfigError(
            f"{path}: images of shape {x.shape[1:]} (the file holds {x.shape}); "
            "expected (N, rows, cols) or (N, features)"
        )
    if y.ndim != 1:
        raise ConfigError(f"{labels}: labels of shape {y.shape}; expected one label per image, shape (N,)")
    if len(x) != len(y):
        raise ConfigError(f"{path}: {len(x)} images but {labels} has {len(y)} labels")
    if len(x) == 0 or x[0].size == 0:
        raise ConfigError(f"{path}: no images (the file holds an array of shape {x.shape})")
    if not is_class_labels(y):
        raise ConfigError(
            f"{labels}: the labels are fractional numbers (dtype {y.dtype}); IDX labels are whole class numbers 0..K-1"
        )
    num_classes = class_count(y, source=str(labels), name="this file")
    x = x.astype(np.float32)
    if x.max(initial=0) > 1.0:
        x = x / 255.0
    if x.ndim == 3:
        x = x[:, None]  # (N, 1, H, W)
    return x, y.astype(np.int64), None, None, num_classes


_CIFAR_RECORD = 1 + 3 * 32 * 32


def read_cifar10_binary(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 binary batch: records of 1 label byte + 3072 pixel bytes (R, G, B planes)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read ({err.strerror})") from err
    if len(raw) == 0 or len(raw) % _CIFAR_RECORD:
        raise ConfigError(
            f"{path}: wrong length: {len(raw)} bytes is not a multiple of the {_CIFAR_RECORD}-byte CIFAR-10 record"
        )
    arr = np.frombuffer(raw, dtype=np.uint8).reshape(-1, _CIFAR_RECORD)
    y = arr[:, 0].astype(np.int64)
    if y.max() > 9:
        raise ConfigError(f"{path}: label {int(y.max())} out of range 0..9; not a CIFAR-10 binary file")
    x = arr[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 255.0
    return x, y


def _cifar10_binary(path: str | None = None) -> Raw:
    p = _require_file(path, folder_ok=True)
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


_NPZ_ERRORS = (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError)


def _npz(path: str | None = None, x_key: str = "x", y_key: str = "y") -> Raw:
    """Arrays ``x_key`` and ``y_key`` (and ``<key>_test``), as stored: ``load`` checks and converts them."""
    p = _require_file(path)
    try:
        z = np.load(p, allow_pickle=False)
    except _NPZ_ERRORS as err:
        raise ConfigError(f"{p}: not a readable .npz file ({err or type(err).__name__})") from err
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise ConfigError(
            f"{p}: a single .npy array, not an .npz archive of named arrays; "
            f"save with np.savez(path, {x_key}=..., {y_key}=...)"
        )
    with z:
        for key in (x_key, y_key):
            if key not in z.files:
                raise ConfigError(f"{p}: missing array '{key}' (arrays: {', '.join(z.files) or 'none'})")
        arrays = {}
        for key in (x_key, y_key, f"{x_key}_test", f"{y_key}_test"):
            if key in z.files:
                try:
                    arrays[key] = z[key]
                except _NPZ_ERRORS as err:
                    if "allow_pickle" in str(err):
                        raise ConfigError(
                            f"{p}: array '{key}' holds Python objects, which are never unpickled; save it as numbers"
                        ) from err
                    raise ConfigError(f"{p}: cannot read array '{key}' ({err})") from err
    return arrays[x_key], arrays[y_key], arrays.get(f"{x_key}_test"), arrays.get(f"{y_key}_test"), None


def _csv(path: str | None = None, label_column: str | None = None) -> Raw:
    p = _require_file(path)
    if not label_column:
        raise ConfigError("data.label_column is required for csv: name the column holding the class")
    try:
        with p.open(newline="", encoding="utf-8-sig") as f:  # -sig: a byte-order mark is not part of the first name
            header, xs, ys = _read_csv(p, csv.reader(f), label_column)
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{p}: not UTF-8 text (byte 0x{err.object[err.start]:02x} at offset {err.start}); save it as UTF-8, "
            f"e.g. iconv -f latin1 -t utf-8 {p.name} > utf8-{p.name}"
        ) from None
    except OSError as err:
        raise ConfigError(f"{p}: cannot read ({err.strerror})") from err
    except csv.Error as err:
        raise ConfigError(f"{p}: not a readable CSV file ({err})") from err
    classes = sorted(set(ys), key=lambda v: (not _is_int(v), int(v) if _is_int(v) else 0, v))
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[v] for v in ys], dtype=np.int64)
    return np.array(xs, dtype=np.float32).reshape(len(xs), len(header) - 1), y, None, None, len(classes)


def _read_csv(p: Path, reader, label_column: str) -> tuple[list[str], list[list[float]], list[str]]:
    header = next(reader, None)
    if not header:
        raise ConfigError(f"{p}: empty file, expected a header row")
    header = [h.strip() for h in header]
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise ConfigError(f"{p}: the header names column '{repeated[0]}' more than once; give each column its own name")
    if label_column not in header:
        raise ConfigError(f"{p}: missing column '{label_column}' (columns: {', '.join(header)})")
    li = header.index(label_column)
    xs, ys = [], []
    for lineno, row in enumerate(reader, start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise ConfigError(f"{p}: line {lineno} has {len(row)} fields, header has {len(header)}")
        values = []
        for i, v in enumerate(row):
            if i == li:
                continue
            try:
                number = float(v)
            except ValueError:
                raise ConfigError(f"{p}: line {lineno}: column '{header[i]}' holds {v!r}, not a number") from None
            if not math.isfinite(number):
                raise ConfigError(
                    f"{p}: line {lineno}: column '{header[i]}' holds {v!r}; drop or fill that row before training"
                )
            values.append(number)
        xs.append(values)
        ys.append(row[li].strip())
    if not xs:
        raise ConfigError(f"{p}: no data rows")
    return header, xs, ys


def _is_int(v: str) -> bool:
    try:
        int(v)
        return True
    except ValueError:
        return False


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
    source = str(options["path"]) if options.get("path") else f"data set '{name}'"
    xk, yk = (options.get("x_key", "x"), options.get("y_key", "y")) if name == "npz" else ("x", "y")
    names = (xk, yk, f"{xk}_test", f"{yk}_test")
    x, y, x_test, y_test, num_classes = check_dataset(*spec.fn(**options), source=source, names=names)
    label_dtype = np.int64 if num_classes else np.float32
    x = torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32))  # type: ignore[assignment]
    y = torch.as_tensor(np.ascontiguousarray(y, dtype=label_dtype))  # type: ignore[assignment]
    g = torch.Generator().manual_seed(split_seed)
    perm = torch.randperm(len(x), generator=g)
    x, y = x[perm], y[perm]
    if x_test is None:
        n_test = max(1, round(test_fraction * len(x)))
        x_test_t, y_test_t, x, y = x[:n_test], y[:n_test], x[n_test:], y[n_test:]
    else:
        x_test_t = torch.as_tensor(np.ascontiguousarray(x_test, dtype=np.float32))
        y_test_t = torch.as_tensor(np.ascontiguousarray(y_test, dtype=label_dtype))
    n_val = round(val_fraction * len(x))
    x_val, y_val, x, y = x[:n_val], y[:n_val], x[n_val:], y[n_val:]
    if len(x) == 0:
        raise ConfigError(
            f"{source}: only {len(perm)} row{'s' if len(perm) != 1 else ''}: "
            "no training rows are left after the test and validation splits "
            f"(data.test_fraction = {test_fraction}, data.val_fraction = {val_fraction})"
        )
    if subset is not None:
        if subset < 1:
            raise ConfigError(f"data.subset must be >= 1, got {subset}")
        x, y = x[:subset], y[:subset]
    return Dataset(name, x, y, x_val, y_val, x_test_t, y_test_t, num_classes)
