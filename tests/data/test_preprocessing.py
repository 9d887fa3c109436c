"""Preprocessing (notes 000 §7.4) against scikit-learn and NumPy-written formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from sklearn.preprocessing import MinMaxScaler as SkMinMax
from sklearn.preprocessing import StandardScaler

from trainlab._io import atomic_torch_save, torch_load
from trainlab.data.preprocessing import (
    PREPROCESSORS,
    MinMaxScaler,
    NotFittedError,
    PCAWhitening,
    Standardizer,
    ZCAWhitening,
    make_preprocessor,
)
from trainlab.errors import ConfigError


@pytest.fixture
def split():
    """Correlated features on very different scales; train and test from one distribution."""
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(6, 6)) * np.array([0.01, 0.1, 1, 10, 100, 1000])
    x = rng.normal(size=(700, 6)) @ mixing + rng.normal(size=6) * 50
    return x[:500], x[500:]


def _all_scalers():
    return [MinMaxScaler(), Standardizer(), PCAWhitening(), ZCAWhitening()]


@pytest.mark.parametrize("feature_range", [(0.0, 1.0), (-1.0, 2.0)])
def test_minmax_equals_sklearn(split, feature_range):
    train, test = split
    ours = MinMaxScaler(feature_range).fit(train)
    theirs = SkMinMax(feature_range=feature_range).fit(train)
    np.testing.assert_allclose(ours.transform(test), theirs.transform(test), atol=1e-6, rtol=0)
    # Notes' formula, written out: (x - min) / (max - min), then onto [a, b].
    lo, hi = train.min(0), train.max(0)
    a, b = feature_range
    np.testing.assert_allclose(ours.transform(test), (test - lo) / (hi - lo) * (b - a) + a, rtol=1e-12)


def test_standardizer_equals_sklearn(split):
    train, test = split
    ours = Standardizer().fit(train)
    theirs = StandardScaler().fit(train)
    np.testing.assert_allclose(ours.transform(test), theirs.transform(test), atol=1e-6, rtol=0)
    np.testing.assert_allclose(ours.transform(train).std(0), 1, atol=1e-12)


def _align_signs(ours: np.ndarray, theirs: np.ndarray) -> np.ndarray:
    """Flip each output column of ``ours`` to the sign of ``theirs`` (eigenvectors have no sign)."""
    return ours * np.sign((ours * theirs).sum(0))


def test_standardizing_sets_mean_and_variance_but_keeps_the_distributions_shape():
    """001 says standardization turns data into a standard normal distribution; it is an affine
    map per feature: mean 0 and variance 1, the shape (here the skewness 2 of an exponential) kept."""
    x = np.random.default_rng(1).exponential(size=(20_000, 2))
    z = Standardizer().fit_transform(x)
    np.testing.assert_allclose(z.mean(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.std(0), 1.0, rtol=1e-12)
    skew = lambda a: (((a - a.mean(0)) / a.std(0)) ** 3).mean(0)  # noqa: E731
    np.testing.assert_allclose(skew(z), skew(x), rtol=1e-9)
    assert np.all(skew(z) > 1.8)  # a normal distribution has skewness 0


@pytest.mark.parametrize("n_components", [None, 3])
def test_pca_whitening_equals_sklearn(split, n_components):
    train, test = split
    ours = PCAWhitening(n_components=n_components, eps=0.0).fit(train)
    theirs = PCA(n_components=n_components, whiten=True, svd_solver="full").fit(train)
    ours_out, theirs_out = ours.transform(test), theirs.transform(test)
    assert ours_out.shape == theirs_out.shape
    np.testing.assert_allclose(_align_signs(ours_out, theirs_out), theirs_out, atol=1e-6, rtol=0)
    np.testing.assert_allclose(ours.explained_variance_, theirs.explained_variance_, rtol=1e-9)


def test_pca_components_have_a_fixed_sign_convention(split):
    components = PCAWhitening().fit(split[0]).components_
    biggest = components[np.arange(len(components)), np.abs(components).argmax(1)]
    assert np.all(biggest > 0)


@pytest.mark.parametrize("cls", [PCAWhitening, ZCAWhitening])
def test_whitened_training_data_has_identity_covariance(split, cls):
    # Variances span 1e-4 .. 5e5 here: eps = 0 whitens them all exactly.
    y = cls(eps=0.0).fit_transform(split[0])
    np.testing.assert_allclose(np.cov(y, rowvar=False), np.eye(6), atol=1e-4)
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-10)


@pytest.mark.parametrize("cls", [PCAWhitening, ZCAWhitening])
def test_eps_shrinks_each_variance_to_lambda_over_lambda_plus_eps(split, cls):
    train, _ = split
    eps = 1e-3
    scaler = cls(eps=eps).fit(train)
    eigvals = np.linalg.eigvalsh(np.cov(train, rowvar=False))[::-1]
    shrink = eigvals / (eigvals + eps)
    y = scaler.transform(train)
    cov = np.cov(y, rowvar=False)
    if cls is PCAWhitening:
        np.testing.assert_allclose(cov, np.diag(shrink), atol=1e-6)
    else:
        np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(cov))[::-1], shrink, atol=1e-6)
    # With variances >= 0.1 the default eps = 1e-5 keeps the covariance I to 1e-4.
    well_scaled = np.random.default_rng(4).normal(size=(500, 6)) @ np.diag([1, 2, 3, 4, 5, 0.4])
    y = cls().fit_transform(well_scaled)
    np.testing.assert_allclose(np.cov(y, rowvar=False), np.eye(6), atol=1e-4)


def test_zca_is_the_whitening_closest_to_the_input(split):
    train, _ = split
    centered = train - train.mean(0)
    zca = ZCAWhitening(eps=0.0).fit_transform(train)
    pca = PCAWhitening(eps=0.0).fit_transform(train)
    zca_distance = np.linalg.norm(zca - centered)
    # Any rotation of a whitened set is white; ZCA must beat PCA and random rotations of it.
    rng = np.random.default_rng(1)
    others = [pca] + [pca @ np.linalg.qr(rng.normal(size=(6, 6)))[0] for _ in range(20)]
    for other in others:
        np.testing.assert_allclose(np.cov(other, rowvar=False), np.eye(6), atol=1e-4)
        assert zca_distance < np.linalg.norm(other - centered)


def test_zca_matrix_is_symmetric_inverse_square_root_of_covariance(split):
    train, _ = split
    zca = ZCAWhitening(eps=0.0).fit(train)
    # Transforming mean + e_i gives row i of W; W must equal Sigma^{-1/2} (symmetric).
    w = zca.transform(zca.mean_ + np.eye(6))
    eigvals, eigvecs = np.linalg.eigh(np.cov(train, rowvar=False))
    np.testing.assert_allclose(w, eigvecs @ np.diag(eigvals**-0.5) @ eigvecs.T, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("scaler", _all_scalers(), ids=lambda s: type(s).__name__)
@pytest.mark.parametrize("as_torch", [False, True], ids=["numpy", "torch"])
def test_inverse_transform_round_trips_and_types_are_kept(scaler, as_torch):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(50, 3, 4)) * np.arange(1, 13).reshape(3, 4)
    if as_torch:
        x = torch.tensor(x, dtype=torch.float32)
    y = scaler.fit_transform(x)
    assert type(y) is type(x) and y.dtype == x.dtype and y.shape == x.shape
    back = scaler.inverse_transform(y)
    assert type(back) is type(x) and back.shape == x.shape
    tol = 1e-5 if as_torch else 1e-10
    np.testing.assert_allclose(np.asarray(back), np.asarray(x), rtol=tol, atol=tol)


def test_integer_input_gives_float_output():
    x = np.arange(12).reshape(6, 2) ** 2
    assert MinMaxScaler().fit_transform(x).dtype == np.float64
    t = torch.tensor(x)
    assert Standardizer().fit_transform(t).dtype == torch.get_default_dtype()


def test_pca_with_fewer_components_flattens_and_projects(split):
    train, _ = split
    images = train.reshape(500, 2, 3)
    pca = PCAWhitening(n_components=2).fit(images)
    y = pca.transform(images)
    assert y.shape == (500, 2) and pca.n_features_out_ == 2
    back = pca.inverse_transform(y)
    assert back.shape == (500, 2, 3)
    # The reconstruction is the projection onto the top-2 principal axes.
    v = pca.components_
    flat = train - train.mean(0)
    np.testing.assert_allclose(back.reshape(500, 6) - train.mean(0), flat @ v.T @ v, atol=1e-8)


def test_standardizer_drops_and_reports_constant_features():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 5))
    x[:, 1] = 7.0
    x[:, 3] = -2.0
    scaler = Standardizer()
    with pytest.warns(UserWarning, match=r"dropped 2 constant feature\(s\): \[1, 3\]"):
        y = scaler.fit_transform(x)
    assert scaler.dropped_features_.tolist() == [1, 3]
    assert scaler.n_features_out_ == 3 and y.shape == (40, 3)
    np.testing.assert_allclose(y, (x[:, [0, 2, 4]] - x[:, [0, 2, 4]].mean(0)) / x[:, [0, 2, 4]].std(0))
    np.testing.assert_allclose(scaler.inverse_transform(y), x, atol=1e-12)
    with pytest.raises(ValueError, match=r"feature\(s\) \[1, 3\] are constant.*drop_constant=True"):
        Standardizer(drop_constant=False).fit(x)


def test_minmax_maps_a_constant_feature_to_the_low_end():
    x = np.array([[1.0, 5.0], [3.0, 5.0], [2.0, 5.0]])
    np.testing.assert_allclose(MinMaxScaler().fit_transform(x), [[0, 0], [1, 0], [0.5, 0]])


@pytest.mark.parametrize("scaler", _all_scalers(), ids=lambda s: type(s).__name__)
def test_bad_input_raises_clear_errors(scaler):
    with pytest.raises(NotFittedError, match=r"before fit: call fit\(x_train\) first"):
        scaler.transform(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"1 NaN/inf value\(s\)"):
        scaler.fit(np.array([[1.0, np.nan], [2.0, 3.0]]))
    with pytest.raises(ValueError, match="empty data"):
        scaler.fit(np.empty((0, 3)))
    with pytest.raises(ValueError, match="every feature is constant"):
        scaler.fit(np.full((10, 3), 4.0))
    with pytest.raises(ValueError, match=r"\(n_samples, n_features"):
        scaler.fit(np.arange(5.0))
    scaler.fit(np.random.default_rng(0).normal(size=(20, 3)))
    with pytest.raises(ValueError, match="got 4 features, expected 3"):
        scaler.transform(np.ones((2, 4)))


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: MinMaxScaler((1, 0)), r"feature_range .*\(1, 0\)"),
        (lambda: MinMaxScaler(3), r"feature_range must be a pair"),
        (lambda: Standardizer(drop_constant="yes"), r"drop_constant .*'yes'"),
        (lambda: PCAWhitening(n_components=0), r"n_components .*0"),
        (lambda: ZCAWhitening(eps=-1), r"eps .*-1"),
        (lambda: PCAWhitening(n_components=7).fit(np.random.rand(20, 6)), r"n_components=7 exceeds"),
        (
            lambda: PCAWhitening(eps=0).fit(np.random.rand(20, 2) @ np.random.rand(2, 3)),
            r"1 of the 3 kept components have zero variance.*rank 2",
        ),
    ],
)
def test_bad_arguments_name_the_argument(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("name", [n for n in PREPROCESSORS if n != "none"])
def test_state_dict_saves_and_loads_with_weights_only(tmp_path, split, name):
    train, test = split
    scaler = make_preprocessor(name).fit(train)
    atomic_torch_save(tmp_path / "prep.pt", scaler.state_dict())
    restored = make_preprocessor(name).load_state_dict(torch_load(tmp_path / "prep.pt"))
    np.testing.assert_array_equal(restored.transform(test), scaler.transform(test))
    np.testing.assert_array_equal(
        restored.inverse_transform(scaler.transform(test)), scaler.inverse_transform(scaler.transform(test))
    )


def test_standardizer_state_keeps_dropped_features(tmp_path):
    x = np.random.default_rng(0).normal(size=(20, 3))
    x[:, 0] = 1.0
    with pytest.warns(UserWarning):
        scaler = Standardizer().fit(x)
    restored = Standardizer().load_state_dict(scaler.state_dict())
    assert restored.dropped_features_.tolist() == [0] and restored.n_features_out_ == 2


def test_make_preprocessor_registry():
    assert PREPROCESSORS == ("none", "minmax", "standardize", "pca", "zca")
    assert make_preprocessor("none") is None
    assert isinstance(make_preprocessor("pca", n_components=2), PCAWhitening)
    assert make_preprocessor("minmax", feature_range=(-1, 1)).feature_range == (-1.0, 1.0)
    with pytest.raises(ConfigError, match=r"unknown preprocessor 'standardise'.*did you mean 'standardize'"):
        make_preprocessor("standardise")
    with pytest.raises(ConfigError, match=r"'zca' does not take option\(s\) n_components; it takes: eps"):
        make_preprocessor("zca", n_components=3)
    with pytest.raises(ValueError, match="wrong preprocessor|not 'zca'"):
        ZCAWhitening().load_state_dict(MinMaxScaler().fit(np.random.rand(5, 2)).state_dict())
