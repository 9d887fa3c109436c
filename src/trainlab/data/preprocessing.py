"""Input preprocessing: min-max, z-score, PCA and ZCA whitening (notes ``000_*.txt`` §7.4).

Scale-sensitive models train faster when every feature has the same scale and the
features are decorrelated (§7.4). Each scaler follows scikit-learn's protocol:
``fit(x_train)`` learns statistics (attributes ending in ``_``), ``transform(x)`` applies
them, ``inverse_transform(y)`` undoes them, ``fit_transform(x)`` does both. Fit on the
training split only, then transform every split with the same statistics.

Inputs are NumPy arrays or torch tensors of shape ``(N, d1, d2, ...)``; they are
flattened to ``(N, features)``, processed in float64, and returned as the same type
(same dtype if floating, same device) and, when the feature count is unchanged, the same
shape. Every scaler has ``n_features_out_`` — the feature count ``transform`` returns —
and ``state_dict()`` / ``load_state_dict()`` with tensors and plain Python values only,
so the statistics save with the run and load with ``torch.load(weights_only=True)``.

========================  ====================================================  =======
scaler                    transform                                             notes
========================  ====================================================  =======
MinMaxScaler              (x - min) / (max - min) * (b - a) + a                 §7.4 (1)
Standardizer              (x - mu) / sigma, constant features dropped           §7.4 (2)
PCAWhitening              ((x - mu) V_k) / sqrt(lambda_k + eps)                  §7.4 (3)
ZCAWhitening              (x - mu) V diag(1 / sqrt(lambda + eps)) V^T           §7.4 (3)
========================  ====================================================  =======

``sigma`` is the population standard deviation (ddof 0, as scikit-learn's
StandardScaler); ``lambda``, ``V`` are the eigenvalues and eigenvectors of the sample
covariance with ddof 1 (as scikit-learn's ``PCA(whiten=True)``), so the whitened training
data has sample covariance ``I`` up to ``lambda / (lambda + eps)``.
"""

from __future__ import annotations

import inspect
import math
import warnings
from typing import Any

import numpy as np
import torch

from trainlab.errors import ConfigError, unknown_name

__all__ = [
    "PREPROCESSORS",
    "MinMaxScaler",
    "NotFittedError",
    "PCAWhitening",
    "Standardizer",
    "ZCAWhitening",
    "make_preprocessor",
]


class NotFittedError(ValueError):
    """``transform`` / ``inverse_transform`` / ``state_dict`` called before ``fit``."""


ArrayLike = Any  # np.ndarray | torch.Tensor (anything np.asarray accepts is returned as NumPy)


def _to_float64_2d(x: ArrayLike, who: str) -> np.ndarray:
    """Flatten ``x`` to a float64 ``(N, features)`` array, rejecting empty or non-finite data."""
    if isinstance(x, torch.Tensor):
        data = x.detach().cpu().to(torch.float64).numpy()
    else:
        data = np.asarray(x, dtype=np.float64)
    if data.ndim < 2:
        raise ValueError(
            f"{who} expects (n_samples, n_features, ...) data, got shape {data.shape}; "
            f"reshape a single feature with x.reshape(-1, 1)"
        )
    data = data.reshape(data.shape[0], math.prod(data.shape[1:]))
    if data.size == 0:
        raise ValueError(f"{who} got empty data of shape {data.shape}")
    bad = ~np.isfinite(data)
    if bad.any():
        raise ValueError(
            f"{who} got {int(bad.sum())} NaN/inf value(s) (first at sample "
            f"{int(np.argwhere(bad)[0][0])}); clean or impute the data first"
        )
    return data


def _like(values: np.ndarray, ref: ArrayLike, shape: tuple[int, ...]) -> ArrayLike:
    """``values`` reshaped to ``shape`` as the type of ``ref`` (float dtype kept, device kept)."""
    values = values.reshape(shape)
    if isinstance(ref, torch.Tensor):
        dtype = ref.dtype if ref.is_floating_point() else torch.get_default_dtype()
        return torch.from_numpy(values).to(device=ref.device, dtype=dtype)
    ref_dtype = getattr(ref, "dtype", None)
    if ref_dtype is not None and np.issubdtype(ref_dtype, np.floating):
        return values.astype(ref_dtype, copy=False)
    return values


def _tensor(a: np.ndarray) -> torch.Tensor:
    dtype = np.int64 if np.issubdtype(a.dtype, np.integer) else np.float64
    return torch.from_numpy(np.ascontiguousarray(a, dtype=dtype))


class _Preprocessor:
    """Shared fit/transform plumbing; subclasses implement ``_fit``, ``_forward``, ``_backward``.

    Subclasses list their hyperparameters in ``_params`` and their learned arrays in
    ``_fitted_arrays`` so ``state_dict`` / ``load_state_dict`` need no per-class code.
    """

    name: str = ""
    _params: tuple[str, ...] = ()
    _fitted_arrays: tuple[str, ...] = ()

    # ----- public API ------------------------------------------------------------------

    def fit(self, x: ArrayLike) -> _Preprocessor:
        """Learn the statistics of ``x`` (the training split); returns ``self``."""
        data = _to_float64_2d(x, f"{type(self).__name__}.fit")
        self._fit(data)
        self.n_features_in_ = data.shape[1]
        self.input_shape_ = tuple(int(s) for s in np.shape(x)[1:])
        return self

    def transform(self, x: ArrayLike) -> ArrayLike:
        """Apply the fitted statistics; same type as ``x``."""
        self._check_fitted("transform")
        data = self._checked_input(x, "transform", self.n_features_in_)
        out = self._forward(data)
        return _like(out, x, self._output_shape(len(out)))

    def fit_transform(self, x: ArrayLike) -> ArrayLike:
        return self.fit(x).transform(x)

    def inverse_transform(self, y: ArrayLike) -> ArrayLike:
        """Map transformed data back to the input space (shape ``(N, *input_shape_)``)."""
        self._check_fitted("inverse_transform")
        data = self._checked_input(y, "inverse_transform", self.n_features_out_)
        out = self._backward(data)
        return _like(out, y, (len(out), *self.input_shape_))

    def state_dict(self) -> dict[str, Any]:
        """Hyperparameters and fitted statistics (float64 tensors); ``weights_only``-loadable."""
        self._check_fitted("state_dict")
        state: dict[str, Any] = {"name": self.name}
        state.update({p: getattr(self, p) for p in self._params})
        state.update({a: _tensor(getattr(self, a)) for a in self._fitted_arrays})
        state["n_features_in_"] = self.n_features_in_
        state["input_shape_"] = list(self.input_shape_)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> _Preprocessor:
        """Restore a :meth:`state_dict`; returns ``self``."""
        if state.get("name") != self.name:
            raise ValueError(f"state is for preprocessor {state.get('name')!r}, not {self.name!r}")
        for p in self._params:
            value = state[p]
            setattr(self, p, tuple(value) if isinstance(value, list) else value)
        for a in self._fitted_arrays:
            value = state[a]
            array = value.numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
            integer = np.issubdtype(array.dtype, np.integer)
            setattr(self, a, array.astype(np.int64 if integer else np.float64))
        self.n_features_in_ = int(state["n_features_in_"])
        self.input_shape_ = tuple(int(s) for s in state["input_shape_"])
        self._after_load()
        return self

    @property
    def n_features_out_(self) -> int:
        """Feature count of ``transform``'s output (fewer than the input's after dropping)."""
        self._check_fitted("n_features_out_")
        return self._n_out()

    def __repr__(self) -> str:
        args = ", ".join(f"{p}={getattr(self, p)!r}" for p in self._params)
        return f"{type(self).__name__}({args})"

    # ----- helpers ---------------------------------------------------------------------

    def _check_fitted(self, what: str) -> None:
        if not hasattr(self, "n_features_in_"):
            raise NotFittedError(f"{type(self).__name__}.{what} called before fit: call fit(x_train) first")

    def _checked_input(self, x: ArrayLike, what: str, n_features: int) -> np.ndarray:
        data = _to_float64_2d(x, f"{type(self).__name__}.{what}")
        if data.shape[1] != n_features:
            raise ValueError(
                f"{type(self).__name__}.{what} got {data.shape[1]} features, expected "
                f"{n_features} (shape {tuple(np.shape(x))})"
            )
        return data

    def _output_shape(self, n: int) -> tuple[int, ...]:
        if self._n_out() == self.n_features_in_:
            return (n, *self.input_shape_)
        return (n, self._n_out())

    def _n_out(self) -> int:
        return self.n_features_in_

    def _after_load(self) -> None:
        """Recompute derived arrays after load_state_dict (none by default)."""

    def _fit(self, data: np.ndarray) -> None:
        raise NotImplementedError

    def _forward(self, data: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _backward(self, data: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def _constant_features(data: np.ndarray) -> np.ndarray:
    """Indices of features whose values are all equal on ``data``."""
    return np.flatnonzero(np.ptp(data, axis=0) == 0)


def _require_some_variation(data: np.ndarray, who: str) -> None:
    if len(_constant_features(data)) == data.shape[1]:
        raise ValueError(
            f"{who}: every feature is constant over the {data.shape[0]} sample(s); "
            f"there is no scale to learn (need >= 2 distinct samples)"
        )


class MinMaxScaler(_Preprocessor):
    """Min-max normalization (§7.4 (1)) to ``feature_range = (a, b)``.

    ``x' = (x - min) / (max - min) * (b - a) + a``, per feature, min/max over the training
    samples. A feature that is constant in training has no range; as in scikit-learn it
    maps to ``a`` (its range is taken as 1). Input where every feature is constant raises.
    """

    name = "minmax"
    _params = ("feature_range",)
    _fitted_arrays = ("data_min_", "data_max_")

    def __init__(self, feature_range: tuple[float, float] = (0.0, 1.0)) -> None:
        try:
            low, high = (float(v) for v in feature_range)
        except (TypeError, ValueError):
            raise ValueError(f"feature_range must be a pair (min, max), got {feature_range!r}") from None
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f"feature_range must be finite with min < max, got {feature_range!r}")
        self.feature_range = (low, high)

    def _fit(self, data: np.ndarray) -> None:
        _require_some_variation(data, "MinMaxScaler.fit")
        self.data_min_ = data.min(axis=0)
        self.data_max_ = data.max(axis=0)

    def _range(self) -> np.ndarray:
        span = self.data_max_ - self.data_min_
        return np.where(span == 0, 1.0, span)

    def _forward(self, data: np.ndarray) -> np.ndarray:
        low, high = self.feature_range
        return (data - self.data_min_) / self._range() * (high - low) + low

    def _backward(self, data: np.ndarray) -> np.ndarray:
        low, high = self.feature_range
        return (data - low) / (high - low) * self._range() + self.data_min_


class Standardizer(_Preprocessor):
    """Z-score standardization (§7.4 (2)): ``x' = (x - mu) / sigma`` per feature.

    The notes: a feature with standard deviation 0 carries no information and can be
    deleted. With ``drop_constant=True`` such features (constant over the training data)
    are dropped: their indices are in ``dropped_features_`` (a warning names them),
    ``transform`` returns ``(N, n_features_out_)`` with the remaining features in their
    original order, and ``inverse_transform`` restores the dropped ones at their constant
    value. With ``drop_constant=False`` a constant feature raises. ``sigma`` is the
    population std (ddof 0), as scikit-learn's ``StandardScaler``.
    """

    name = "standardize"
    _params = ("drop_constant",)
    _fitted_arrays = ("mean_", "scale_", "dropped_features_")

    def __init__(self, drop_constant: bool = True) -> None:
        if not isinstance(drop_constant, bool):
            raise ValueError(f"drop_constant must be True or False, got {drop_constant!r}")
        self.drop_constant = drop_constant

    def _fit(self, data: np.ndarray) -> None:
        _require_some_variation(data, "Standardizer.fit")
        constant = _constant_features(data)
        if len(constant) and not self.drop_constant:
            raise ValueError(
                f"Standardizer.fit: feature(s) {constant.tolist()[:20]} are constant "
                f"(std 0) so z-scores are undefined; use Standardizer(drop_constant=True)"
            )
        if len(constant):
            warnings.warn(
                f"Standardizer dropped {len(constant)} constant feature(s): "
                f"{constant.tolist()[:20]}{' ...' if len(constant) > 20 else ''}",
                stacklevel=3,
            )
        self.mean_ = data.mean(axis=0)
        self.scale_ = data.std(axis=0)
        self.dropped_features_ = constant.astype(np.int64)
        self._after_load()

    def _after_load(self) -> None:
        keep = np.ones(len(self.mean_), dtype=bool)
        keep[self.dropped_features_] = False
        self._keep = keep

    def _n_out(self) -> int:
        return int(self._keep.sum())

    def _forward(self, data: np.ndarray) -> np.ndarray:
        keep = self._keep
        return (data[:, keep] - self.mean_[keep]) / self.scale_[keep]

    def _backward(self, data: np.ndarray) -> np.ndarray:
        out = np.tile(self.mean_, (len(data), 1))
        out[:, self._keep] = data * self.scale_[self._keep] + self.mean_[self._keep]
        return out


class _Whitening(_Preprocessor):
    """Eigendecomposition of the training covariance, shared by PCA and ZCA whitening."""

    _fitted_arrays = ("mean_", "components_", "explained_variance_")

    def __init__(self, eps: float) -> None:
        if not (isinstance(eps, (int, float)) and math.isfinite(eps) and eps >= 0):
            raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")
        self.eps = float(eps)

    def _fit_components(self, data: np.ndarray, k: int) -> None:
        who = f"{type(self).__name__}.fit"
        if len(data) < 2:
            raise ValueError(f"{who} needs at least 2 samples to estimate a covariance")
        _require_some_variation(data, who)
        self.mean_ = data.mean(axis=0)
        # Eigenvectors of the covariance = right singular vectors of the centered data.
        # SVD of the data (via its small R factor, so memory stays O(d^2)) keeps small
        # variances accurate relative to their own size; eigh of X^T X would square the
        # condition number and lose them.
        centered = data - self.mean_
        n, d = data.shape
        if n > d:
            _, singular, vt = np.linalg.svd(np.linalg.qr(centered, mode="r"))
        else:  # fewer samples than features: full V, so every direction gets a component
            _, singular, vt = np.linalg.svd(centered, full_matrices=True)
        # Below numpy.linalg.matrix_rank's tolerance a singular value is round-off: zero it.
        singular = np.where(singular > singular[0] * max(n, d) * np.finfo(float).eps, singular, 0.0)
        variances = np.zeros(d)
        variances[: len(singular)] = singular**2 / (n - 1)
        variances, components = variances[:k], vt[:k].copy()
        # An eigenvector's sign is arbitrary: make each one's largest |entry| positive
        # (scikit-learn's convention), so results are reproducible across LAPACKs.
        biggest = components[np.arange(k), np.abs(components).argmax(axis=1)]
        components *= np.sign(biggest)[:, None]
        if self.eps == 0 and (variances <= 0).any():
            raise ValueError(
                f"{who}: {int((variances <= 0).sum())} of the {k} kept components have zero "
                f"variance (the data has rank {int((variances > 0).sum())}); whitening them "
                f"divides by 0 — set eps > 0 or keep fewer components"
            )
        self.components_ = components
        self.explained_variance_ = variances

    def _inv_std(self) -> np.ndarray:
        return 1.0 / np.sqrt(self.explained_variance_ + self.eps)


class PCAWhitening(_Whitening):
    """PCA whitening (§7.4 (3)): rotate onto the principal axes, scale each to unit variance.

    ``y = (x - mu) V_k / sqrt(lambda_k + eps)`` with ``V_k`` the top ``n_components``
    eigenvectors of the training covariance (``components_``, one per row) and
    ``lambda_k`` their eigenvalues (``explained_variance_``). ``eps`` keeps near-zero
    variance directions from blowing up (scikit-learn's ``PCA(whiten=True)`` is
    ``eps = 0``). With ``n_components=k`` the output is ``(N, k)`` and
    ``inverse_transform`` returns the projection onto those ``k`` axes.
    """

    name = "pca"
    _params = ("n_components", "eps")

    def __init__(self, n_components: int | None = None, eps: float = 1e-5) -> None:
        super().__init__(eps)
        if n_components is not None and not (isinstance(n_components, int) and n_components >= 1):
            raise ValueError(f"n_components must be None or an int >= 1, got {n_components!r}")
        self.n_components = n_components

    def _fit(self, data: np.ndarray) -> None:
        d = data.shape[1]
        k = d if self.n_components is None else self.n_components
        if k > d:
            raise ValueError(f"n_components={k} exceeds the number of features ({d})")
        self._fit_components(data, k)

    def _n_out(self) -> int:
        return len(self.components_)

    def _forward(self, data: np.ndarray) -> np.ndarray:
        return (data - self.mean_) @ self.components_.T * self._inv_std()

    def _backward(self, data: np.ndarray) -> np.ndarray:
        return (data / self._inv_std()) @ self.components_ + self.mean_


class ZCAWhitening(_Whitening):
    """ZCA (Mahalanobis) whitening: ``y = (x - mu) V diag(1 / sqrt(lambda + eps)) V^T``.

    PCA whitening rotated back to the input axes (Bell & Sejnowski 1997). Of all
    whitening transforms it changes the data the least (minimal ``E||y - (x - mu)||^2``,
    Kessy et al. 2018), so whitened images still look like images. Output shape equals
    input shape.
    """

    name = "zca"
    _params = ("eps",)

    def __init__(self, eps: float = 1e-5) -> None:
        super().__init__(eps)

    def _fit(self, data: np.ndarray) -> None:
        self._fit_components(data, data.shape[1])

    def _forward(self, data: np.ndarray) -> np.ndarray:
        return ((data - self.mean_) @ self.components_.T * self._inv_std()) @ self.components_

    def _backward(self, data: np.ndarray) -> np.ndarray:
        return (data @ self.components_.T / self._inv_std()) @ self.components_ + self.mean_


_CLASSES: dict[str, type[_Preprocessor]] = {
    cls.name: cls for cls in (MinMaxScaler, Standardizer, PCAWhitening, ZCAWhitening)
}

PREPROCESSORS: tuple[str, ...] = ("none", *_CLASSES)
"""Names accepted by :func:`make_preprocessor` and ``[data] preprocess``."""


def make_preprocessor(name: str, **options: Any) -> _Preprocessor | None:
    """The (unfitted) preprocessor ``name`` with constructor ``options``; None for ``"none"``."""
    if name not in PREPROCESSORS:
        raise unknown_name("preprocessor", name, PREPROCESSORS)
    allowed = () if name == "none" else tuple(inspect.signature(_CLASSES[name]).parameters)
    unexpected = sorted(set(options) - set(allowed))
    if unexpected:
        raise ConfigError(
            f"preprocessor '{name}' does not take option(s) {', '.join(unexpected)}; "
            f"it takes: {', '.join(allowed) or 'no options'}"
        )
    return None if name == "none" else _CLASSES[name](**options)
