"""Batched augmentation: exact identities, a NumPy bilinear reference, seeded reproducibility."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from trainlab.data.augment import (
    AUGMENTATIONS,
    Flip,
    affine_images,
    affine_signals,
    build_augment,
)
from trainlab.errors import ConfigError


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _full(n: int, value: float) -> torch.Tensor:
    return torch.full((n,), float(value), dtype=torch.float64)


# ---------------------------------------------------------------- NumPy references


def _bilinear_np(img: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Sample img (C, H, W) at fractional (rows, cols) with zeros outside the pixel grid."""
    c, h, w = img.shape
    r0, c0 = np.floor(rows).astype(int), np.floor(cols).astype(int)
    out = np.zeros((c, *rows.shape))
    for dr in (0, 1):
        for dc in (0, 1):
            rr, cc = r0 + dr, c0 + dc
            weight = (1 - np.abs(rows - rr)) * (1 - np.abs(cols - cc))
            inside = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
            vals = img[:, np.clip(rr, 0, h - 1), np.clip(cc, 0, w - 1)]
            out += np.where(inside, weight, 0.0) * vals
    return out


def _affine_np(img: np.ndarray, angle_deg: float, scale: float, tx: float, ty: float) -> np.ndarray:
    """Output pixel p reads the input at (s R(θ))^{-1} (p − t), pixel units about the centre,
    x right, y down, R(θ) counter-clockwise as displayed."""
    _, h, w = img.shape
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    px, py = cols - (w - 1) / 2 - tx, rows - (h - 1) / 2 - ty
    th = math.radians(angle_deg)
    # R(θ) = [[cos, sin], [−sin, cos]]; its inverse is [[cos, −sin], [sin, cos]]
    sx = (math.cos(th) * px - math.sin(th) * py) / scale
    sy = (math.sin(th) * px + math.cos(th) * py) / scale
    return _bilinear_np(img, sy + (h - 1) / 2, sx + (w - 1) / 2)


# ---------------------------------------------------------------- pure transforms


def test_flips_are_exact_involutions():
    x = torch.randn(6, 3, 5, 7)
    for dim in (-1, -2):
        flip = Flip(dim=dim, p=1.0)
        once = flip(x, _gen())
        assert torch.equal(once, x.flip(dim))
        assert torch.equal(flip(once, _gen()), x)
    assert torch.equal(Flip(dim=-1, p=0.0)(x, _gen()), x)


def test_random_flip_flips_whole_samples_with_probability_p():
    x = torch.randn(4000, 1, 2, 3)
    out = Flip(dim=-1, p=0.3)(x, _gen(1))
    flipped = (out == x.flip(-1)).flatten(1).all(1)
    unchanged = (out == x).flatten(1).all(1)
    assert (flipped | unchanged).all()  # every sample is either mirrored exactly or untouched
    assert abs(flipped.double().mean().item() - 0.3) < 6 * math.sqrt(0.3 * 0.7 / 4000)


def test_shift_moves_image_content_by_the_stated_pixels():
    x = torch.rand(2, 3, 9, 11)
    expected = torch.zeros_like(x)
    expected[..., : 9 - 3, 2:] = x[..., 3:, : 11 - 2]  # right by 2, up by 3
    ones, zeros = torch.ones(2), torch.zeros(2)
    exact = affine_images(x, zeros, ones, 2 * ones, -3 * ones, mode="nearest")
    assert torch.equal(exact, expected)
    smooth = affine_images(x, zeros, ones, 2 * ones, -3 * ones)
    torch.testing.assert_close(smooth, expected, atol=1e-5, rtol=0)  # bilinear: float32 rounding only


def test_rotation_by_zero_is_the_identity_and_by_90_is_rot90():
    x = torch.rand(3, 2, 8, 8, dtype=torch.float64)
    ident = affine_images(x, _full(3, 0), _full(3, 1), _full(3, 0), _full(3, 0))
    torch.testing.assert_close(ident, x, atol=1e-12, rtol=0)
    quarter = affine_images(x, _full(3, 90), _full(3, 1), _full(3, 0), _full(3, 0))
    torch.testing.assert_close(quarter, torch.rot90(x, 1, dims=(-2, -1)), atol=1e-12, rtol=0)


def test_affine_matches_numpy_bilinear_reference_per_sample():
    torch.manual_seed(0)
    x = torch.rand(4, 2, 7, 10, dtype=torch.float64)
    params = [(17.0, 1.2, 1.0, -2.0), (-40.0, 0.8, 0.0, 0.5), (5.0, 1.0, -3.0, 0.0), (180.0, 1.5, 0.3, 0.3)]
    angle, scale, tx, ty = (torch.tensor(col, dtype=torch.float64) for col in zip(*params))
    out = affine_images(x, angle, scale, tx, ty).numpy()
    for i, p in enumerate(params):
        np.testing.assert_allclose(out[i], _affine_np(x[i].numpy(), *p), atol=1e-10)


def test_signal_shift_is_exact_and_scale_matches_linear_interpolation():
    x = torch.rand(3, 2, 40)
    shifts = torch.tensor([3.0, -2.0, 0.0])
    for mode in ("nearest", "bilinear"):
        shifted = affine_signals(x, shifts, torch.ones(3), mode)
        expected = torch.zeros_like(x)
        expected[0, :, 3:], expected[1, :, :-2], expected[2] = x[0, :, :-3], x[1, :, 2:], x[2]
        if mode == "nearest":
            assert torch.equal(shifted, expected)  # exact, bit for bit
        else:
            torch.testing.assert_close(shifted, expected, atol=1e-5, rtol=0)  # float32 rounding
    x = x.double()

    s, t = 1.3, 1.5
    stretched = affine_signals(x, _full(3, t), _full(3, s)).numpy()
    j = np.arange(40)
    src = (j - 19.5 - t) / s + 19.5  # output sample j reads the input here
    for i in range(3):
        ref = _bilinear_np(x[i].numpy()[:, None, :], np.zeros_like(src), src)  # (C, L)
        np.testing.assert_allclose(stretched[i], ref, atol=1e-12)


# ---------------------------------------------------------------- random pipelines


def _blob(n: int, size: int, offset: tuple[float, float]) -> torch.Tensor:
    """n copies of a narrow Gaussian spot at (dx, dy) pixels from the centre."""
    c = (size - 1) / 2
    r, q = torch.meshgrid(
        torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64), indexing="ij"
    )
    spot = torch.exp(-((q - c - offset[0]) ** 2 + (r - c - offset[1]) ** 2) / 2.0)
    return spot.expand(n, 1, size, size).clone()


def _centroid(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    size = x.shape[-1]
    c = (size - 1) / 2
    grid = torch.arange(size, dtype=x.dtype) - c
    mass = x.sum((-2, -1))
    return (x.sum(-2) * grid).sum(-1)[:, 0] / mass[:, 0], (x.sum(-1) * grid).sum(-1)[:, 0] / mass[:, 0]


def test_rotate_draws_one_angle_per_sample_within_the_range():
    x = _blob(256, 41, (12.0, 0.0))
    out = build_augment(["rotate:30"], (1, 41, 41))(x, _gen(3))
    cx, cy = _centroid(out)
    angle = torch.rad2deg(torch.atan2(-cy, cx))  # counter-clockwise as displayed (y points down)
    radius = torch.hypot(cx, cy)
    assert angle.abs().max() <= 30.5 and angle.min() < -25 and angle.max() > 25
    torch.testing.assert_close(radius, torch.full_like(radius, 12.0), atol=0.05, rtol=0)


def test_zoom_and_shift_draws_stay_in_range():
    x = _blob(256, 41, (8.0, 0.0))
    cx, cy = _centroid(build_augment(["zoom:0.2"], (1, 41, 41))(x, _gen(4)))
    assert cx.min() >= 8 * 0.8 - 0.05 and cx.max() <= 8 * 1.2 + 0.05 and cx.max() - cx.min() > 2.5
    cx, cy = _centroid(build_augment(["shift:2"], (1, 41, 41))(x, _gen(5)))
    dx, dy = (cx - 8).round(), cy.round()
    torch.testing.assert_close(cx - 8, dx, atol=1e-6, rtol=0)  # whole pixels only
    assert set(dx.tolist()) == set(dy.tolist()) == {-2.0, -1.0, 0.0, 1.0, 2.0}


def test_signal_pipeline_shapes_and_shift_values():
    x = torch.zeros(300, 40)
    x[:, 20] = 1.0
    out = build_augment(["shift:3"], (40,))(x, _gen(6))
    assert out.shape == x.shape
    assert set((out.argmax(1) - 20).tolist()) == set(range(-3, 4))
    assert torch.equal(out.sum(1), torch.ones(300))  # whole-sample shifts: nothing smeared
    two_channel = build_augment(["scale:0.1", "shift:2", "noise:0.1"], (2, 40))
    assert two_channel(torch.randn(5, 2, 40), _gen()).shape == (5, 2, 40)


def test_noise_has_the_stated_std():
    x = torch.randn(500, 3, 8, 8)
    out = build_augment(["noise:0.25"], (3, 8, 8))(x, _gen(7))
    noise = (out - x).double()
    n = noise.numel()
    assert abs(noise.mean().item()) < 6 * 0.25 / math.sqrt(n)
    assert abs(noise.std().item() - 0.25) < 6 * 0.25 / math.sqrt(2 * n)


def test_pipelines_are_reproducible_from_the_seed():
    x = torch.rand(16, 3, 12, 12)
    aug = build_augment(["flip", "vflip", "rotate:20", "zoom:0.1", "shift:2", "noise:0.1"], (3, 12, 12))
    a, b, c = aug(x, _gen(11)), aug(x, _gen(11)), aug(x, _gen(12))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(x, x.clone())  # the input is not modified in place
    sig = build_augment(["shift:2", "scale:0.1", "noise:0.1"], (40,))
    s = torch.randn(8, 40)
    assert torch.equal(sig(s, _gen(1)), sig(s, _gen(1)))


# ---------------------------------------------------------------- config errors


def test_build_augment_empty_and_errors():
    assert build_augment([], (40,)) is None
    assert set(AUGMENTATIONS) == {"flip", "vflip", "rotate", "zoom", "shift", "scale", "noise"}
    with pytest.raises(
        ConfigError, match=r"unknown augment spec 'rotat:10'.*did you mean 'rotate'.*flip, noise, rotate"
    ):
        build_augment(["rotat:10"], (1, 8, 8))
    with pytest.raises(
        ConfigError, match=r"'flip' does not apply to signal inputs \(40,\); choose from: shift, scale, noise"
    ):
        build_augment(["flip"], (40,))
    with pytest.raises(ConfigError, match=r"'rotate' needs a value"):
        build_augment(["rotate"], (1, 8, 8))
    with pytest.raises(ConfigError, match=r"'shift:x': value must be an integer, got 'x'"):
        build_augment(["shift:x"], (40,))
    with pytest.raises(ConfigError, match=r"'shift:40': value must be in \(0, 39\], got 40"):
        build_augment(["shift:40"], (40,))
    with pytest.raises(ConfigError, match=r"'noise:-1': value must be in \(0.0, inf\], got -1.0"):
        build_augment(["noise:-1"], (40,))
    with pytest.raises(ConfigError, match=r"'shift' is given twice"):
        build_augment(["shift:1", "shift:2"], (40,))
    with pytest.raises(ConfigError, match=r"input_shape must be \(L,\), \(C, L\) or \(C, H, W\), got \(1, 2, 3, 4\)"):
        build_augment(["noise:0.1"], (1, 2, 3, 4))
    with pytest.raises(ValueError, match=r"augment expects batches of shape \(B, \(40,\)\), got \(4, 41\)"):
        build_augment(["noise:0.1"], (40,))(torch.zeros(4, 41), _gen())


def test_grid_equals_torch_affine_grid():
    from trainlab.data.augment import _affine_grid

    theta = torch.randn(5, 2, 3, dtype=torch.float64)
    for h, w in ((7, 10), (1, 40)):
        torch.testing.assert_close(_affine_grid(theta, h, w), F.affine_grid(theta, [5, 1, h, w], align_corners=False))
