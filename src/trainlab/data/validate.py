"""Checks on data as it loads, before a run exists: each a small named function that raises
one :class:`~trainlab.errors.ConfigError` naming the source (a file or data set), the array
and the fix.

``trainlab.data.load`` runs :func:`check_dataset` on every built-in set and file; code that
brings its own arrays (``trainlab.fit``, a registered data set) calls the same checks.
Arrays may be NumPy arrays or CPU tensors. What is checked, and why:

- features are numbers, one row per sample with at least one feature, at least one row, and
  finite (a NaN or inf input makes the first loss NaN: the run "diverges" at step 1);
- targets are numbers, one per row (``(N,)``; ``(N, 1)`` is flattened), and finite;
- class labels are whole numbers ``0 .. K-1``: not negative, and dense enough that ``K``
  outputs make sense (labels up to 2e9 would build a 2e9-way output layer);
- a test split has the training data's feature shape, comes with its targets, and has no
  class the training labels lack (it would silently add outputs no sample trains).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from trainlab.errors import ConfigError

NUMERIC_KINDS = "biuf"  # bool, signed, unsigned, float: what can become a float32 tensor
_KIND_NAMES = {
    "U": "text",
    "S": "bytes",
    "O": "Python objects",
    "c": "complex numbers",
    "M": "dates",
    "m": "time spans",
    "V": "records",
}


def as_array(a: Any) -> np.ndarray:
    """A NumPy view of an array-like (a CPU tensor shares its memory)."""
    if hasattr(a, "detach") and hasattr(a, "cpu"):  # a torch tensor, without importing torch here
        return a.detach().cpu().numpy()
    return np.asarray(a)


def check_numeric(a: np.ndarray, *, source: str, name: str) -> None:
    """``a`` holds numbers (not text, objects, complex numbers or dates)."""
    if a.dtype.kind not in NUMERIC_KINDS:
        what = _KIND_NAMES.get(a.dtype.kind, f"dtype {a.dtype}")
        raise ConfigError(f"{source}: {name} holds {what} (dtype {a.dtype}); it must hold numbers")


def check_finite(a: np.ndarray, *, source: str, name: str) -> None:
    """No NaN or infinity in a float array (integer arrays are finite by construction)."""
    if a.dtype.kind != "f":
        return
    bad = ~np.isfinite(a)
    if bad.any():
        rows = bad.reshape(len(a), -1).any(axis=1) if a.ndim > 1 else bad
        first = int(np.flatnonzero(rows)[0])
        raise ConfigError(
            f"{source}: {name} has {int(bad.sum())} NaN or infinite value(s), in {int(rows.sum())} row(s) "
            f"(the first is row {first}); "
            "drop or fill those rows before training"
        )


def check_features(x: Any, *, source: str, name: str = "x") -> np.ndarray:
    """Numbers, shape ``(N, ...)`` with N >= 1 rows and at least one feature per row, finite."""
    x = as_array(x)
    check_numeric(x, source=source, name=name)
    if x.ndim < 2:
        raise ConfigError(
            f"{source}: {name} has shape {x.shape}; it needs one row per sample and at least one feature column, "
            f"e.g. shape (N, 1) (x.reshape(-1, 1))"
        )
    if len(x) == 0:
        raise ConfigError(f"{source}: {name} has no rows")
    if int(np.prod(x.shape[1:])) == 0:
        raise ConfigError(f"{source}: {name} has shape {x.shape}: no features; each row needs at least one")
    check_finite(x, source=source, name=name)
    return x


def check_targets(y: Any, n_rows: int, *, source: str, name: str = "y", rows_of: str = "x") -> np.ndarray:
    """Numbers, one per row of the features (``(N,)``; ``(N, 1)`` is flattened), finite."""
    y = as_array(y)
    check_numeric(y, source=source, name=name)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ConfigError(
            f"{source}: {name} has shape {y.shape}; give one label per row, a 1-D array of length {n_rows}"
        )
    if len(y) != n_rows:
        raise ConfigError(f"{source}: {rows_of} has {n_rows} rows but {name} has {len(y)} labels; they must match")
    check_finite(y, source=source, name=name)
    return y


def is_class_labels(y: np.ndarray) -> bool:
    """Integer labels, or floats that are all whole numbers: a classification task."""
    return y.dtype.kind in "biu" or bool(np.all(np.mod(y, 1) == 0))


def class_count(y: np.ndarray, *, source: str, name: str = "y") -> int:
    """The number of classes K of labels that must be ``0 .. K-1``.

    Refused: fractional or negative labels, and labels too sparse to be class indices —
    K > 2 × (distinct labels) + 10 — which would make an output per unused index.
    """
    if not is_class_labels(y):
        raise ConfigError(
            f"{source}: fractional labels in {name} (e.g. {_first(y[np.mod(y, 1) != 0])}); "
            "class labels are whole numbers 0..K-1"
        )
    if y.size == 0:
        raise ConfigError(f"{source}: no labels in {name}")
    if y.dtype.kind == "b":
        y = y.astype(np.int64)
    low, high = y.min(), y.max()
    if low < 0:
        raise ConfigError(
            f"{source}: negative labels in {name} (the smallest is {_first([low])}); "
            "class labels are 0..K-1: remap them with np.unique(y, return_inverse=True)"
        )
    distinct = len(np.unique(y))
    classes = int(high) + 1
    if classes > 2 * distinct + 10:
        raise ConfigError(
            f"{source}: {distinct} distinct labels in {name} go up to {_first([high])}, "
            f"which would make {classes} outputs; "
            f"class labels are 0..K-1: remap them to 0..{distinct - 1} with np.unique(y, return_inverse=True)"
        )
    return classes


def check_test_labels(
    y_test: np.ndarray, num_classes: int, *, source: str, name: str = "y_test", train_name: str = "y"
) -> None:
    """Test labels within the training classes ``0 .. num_classes-1``."""
    if not is_class_labels(y_test):
        raise ConfigError(
            f"{source}: fractional labels in {name} (e.g. {_first(y_test[np.mod(y_test, 1) != 0])}); "
            "class labels are whole numbers"
        )
    if y_test.size and (y_test.min() < 0 or y_test.max() >= num_classes):
        bad = y_test[(y_test < 0) | (y_test >= num_classes)]
        raise ConfigError(
            f"{source}: {name} has label {_first(bad)}, "
            f"outside the training labels 0..{num_classes - 1} of {train_name}; "
            "the model would have no output for it: drop those rows or add training samples of that class"
        )


def check_dataset(
    x: Any,
    y: Any,
    x_test: Any = None,
    y_test: Any = None,
    num_classes: int | None = None,
    *,
    source: str,
    names: tuple[str, str, str, str] = ("x", "y", "x_test", "y_test"),
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None, int]:
    """Every check on one data set; returns the arrays (targets flattened) and the class count.

    ``num_classes``: K for a classification set that declares it, 0 for regression, None to
    infer it from the training targets (whole numbers: K classes; fractions: regression).
    """
    xn, yn, xtn, ytn = names
    x = check_features(x, source=source, name=xn)
    y = check_targets(y, len(x), source=source, name=yn, rows_of=xn)
    if (x_test is None) != (y_test is None):
        have, missing = (xtn, ytn) if y_test is None else (ytn, xtn)
        raise ConfigError(f"{source}: {have} is given without {missing}; a test split needs both")
    if x_test is not None:
        x_test = check_features(x_test, source=source, name=xtn)
        if x_test.shape[1:] != x.shape[1:]:
            raise ConfigError(
                f"{source}: {xtn} has rows of shape {x_test.shape[1:]} but {xn} has {x.shape[1:]}; "
                "the test split needs the same features"
            )
        y_test = check_targets(y_test, len(x_test), source=source, name=ytn, rows_of=xtn)
    if num_classes is None:
        num_classes = class_count(y, source=source, name=yn) if is_class_labels(y) else 0
    elif num_classes > 0:
        top = class_count(y, source=source, name=yn)
        if top > num_classes:
            raise ConfigError(
                f"{source}: {yn} has label {top - 1}, "
                f"but this data set has {num_classes} classes (0..{num_classes - 1})"
            )
    if num_classes > 0 and y_test is not None:
        check_test_labels(y_test, num_classes, source=source, name=ytn, train_name=yn)
    return x, y, x_test, y_test, num_classes


def _first(values) -> str:
    v = np.asarray(values).ravel()[0]
    return f"{int(v)}" if float(v).is_integer() else f"{float(v):g}"
