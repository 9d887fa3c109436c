"""Batched, seeded data augmentation on the batch's own device (notes 000 §7.7.5).

The notes list rotation, flip, zoom, shift and noise for images. Here each is a per-sample
random draw from a ``torch.Generator``, applied to the whole batch at once: rotation, zoom
and shift are composed into **one** affine matrix per sample and resampled in a single
``F.grid_sample`` call (bilinear, zeros outside; the grid is ``F.affine_grid``'s, computed
faster), so a batch costs one interpolation however many geometric specs are listed. Flips are exact index reversals
(no interpolation error), noise is added last.

Config (``[data] augment``, applied to training batches only)::

    augment = ["flip", "rotate:15", "zoom:0.1", "shift:2", "noise:0.1"]   # images (C, H, W)
    augment = ["shift:3", "scale:0.1", "noise:0.05"]                      # signals (L,) or (C, L)

Specs and their draws (one per sample):

============  ==========  ==========================================================
spec          input       per-sample draw
============  ==========  ==========================================================
flip[:P]      image       mirror left-right with probability P (default 0.5)
vflip[:P]     image       mirror top-bottom with probability P (default 0.5)
rotate:D      image       angle ~ U[−D, D] degrees, counter-clockwise as displayed
zoom:F        image       scale ~ U[1 − F, 1 + F] about the centre (> 1 enlarges content)
shift:S       both        integer offset ~ U{−S, …, S} per axis (right/down positive)
scale:F       signal      time scale ~ U[1 − F, 1 + F] about the centre
noise:STD     both        x + STD · N(0, 1), i.i.d. per element
============  ==========  ==========================================================

Shifts are whole pixels/samples, so a pure shift moves values without blurring them; when
shift is the only geometric spec the resample uses nearest-neighbour lookup, which is then
exact. Signals get no flip: reversing time (or sign) does not preserve the class of mnist1d
or of most signals, unlike the left-right symmetry of natural images.

Draws come from the generator passed to the callable; use one on the batch's device (a CPU
generator with a CUDA batch works, drawing on the CPU and copying the draws over).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from trainlab.errors import ConfigError, unknown_name

__all__ = [
    "AUGMENTATIONS",
    "Compose",
    "Flip",
    "GaussianNoise",
    "ImageAffine",
    "SignalAffine",
    "affine_images",
    "affine_signals",
    "build_augment",
    "input_kind",
]

Augment = Callable[[Tensor, torch.Generator], Tensor]

IMAGE_SPECS = ("flip", "vflip", "rotate", "zoom", "shift", "noise")
SIGNAL_SPECS = ("shift", "scale", "noise")
AUGMENTATIONS = tuple(sorted(set(IMAGE_SPECS) | set(SIGNAL_SPECS)))


def _draw(shape: tuple[int, ...], g: torch.Generator, like: Tensor, normal: bool = False) -> Tensor:
    """Uniform [0, 1) (or standard normal) draws from ``g``, returned on ``like``'s device and dtype."""
    sample = torch.randn if normal else torch.rand
    return sample(shape, generator=g, device=g.device, dtype=like.dtype).to(like.device)


def _uniform(n: int, low: float, high: float, g: torch.Generator, like: Tensor) -> Tensor:
    return low + (high - low) * _draw((n,), g, like)


def _integers(n: int, bound: int, g: torch.Generator, like: Tensor) -> Tensor:
    """Integers uniform on {−bound, …, bound}, as ``like``'s dtype."""
    return torch.floor(_draw((n,), g, like) * (2 * bound + 1)) - bound


# ---------------------------------------------------------------- pure geometric transforms


def affine_images(
    x: Tensor, angle: Tensor, scale: Tensor, shift_x: Tensor, shift_y: Tensor, mode: str = "bilinear"
) -> Tensor:
    r"""Rotate, zoom and shift each image of ``x`` (B, C, H, W) in one bilinear resample.

    Per sample i, in pixel coordinates about the image centre (x right, y down), the content
    moves by the forward map ``p' = s_i R(θ_i) p + t_i`` with ``R(θ) = [[cos θ, sin θ], [−sin θ,
    cos θ]]`` (counter-clockwise as displayed), ``s_i = scale[i]``, ``t_i = (shift_x[i],
    shift_y[i])`` in pixels. The output samples the input at the inverse map; points outside
    the image read 0. All four arguments are shape (B,); ``angle`` is in degrees.
    ``mode="nearest"`` is exact (and faster) for whole-pixel shifts, where bilinear weights
    would carry rounding errors of order 1e-7.
    """
    h, w = x.shape[-2:]
    rad = angle * (math.pi / 180.0)
    cos, sin = torch.cos(rad) / scale, torch.sin(rad) / scale
    # inverse of s R(θ) in pixel units is R(−θ)/s = [[cos, −sin], [sin, cos]] / s; grid_sample
    # works in [−1, 1] coordinates, x scaled by 2/W and y by 2/H, hence the aspect ratios below
    theta = torch.stack(
        [
            torch.stack([cos, -sin * (h / w)], 1),
            torch.stack([sin * (w / h), cos], 1),
        ],
        1,
    )
    t = torch.stack([shift_x * (2.0 / w), shift_y * (2.0 / h)], 1)
    offset = -(theta @ t.unsqueeze(-1))
    grid = _affine_grid(torch.cat([theta, offset], 2), h, w)
    return F.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=False)


def _affine_grid(theta: Tensor, h: int, w: int) -> Tensor:
    """``F.affine_grid(theta, [B, 1, h, w], align_corners=False)`` by broadcasting.

    Same numbers; torch's version materializes a (B, h, w, 3) base grid and runs a bmm,
    which on CPU costs more than the ``grid_sample`` that follows (~5x this).
    """
    xs = (torch.arange(w, device=theta.device, dtype=theta.dtype) * 2 + 1) / w - 1  # pixel centres
    ys = ((torch.arange(h, device=theta.device, dtype=theta.dtype) * 2 + 1) / h - 1)[:, None]
    th = theta[:, :, :, None, None]
    gx = th[:, 0, 0] * xs + th[:, 0, 1] * ys + th[:, 0, 2]
    gy = th[:, 1, 0] * xs + th[:, 1, 1] * ys + th[:, 1, 2]
    return torch.stack([gx, gy], -1)


def affine_signals(x: Tensor, shift: Tensor, scale: Tensor, mode: str = "bilinear") -> Tensor:
    """Stretch each signal of ``x`` (B, C, L) by ``scale[i]`` about its centre, then move it by
    ``shift[i]`` samples (positive = later); one linear-interpolation resample, zeros outside.
    ``mode="nearest"`` is exact for whole-sample shifts."""
    length = x.shape[-1]
    zeros = torch.zeros_like(scale)
    theta = torch.stack(
        [
            torch.stack([1.0 / scale, zeros, -shift * (2.0 / length) / scale], 1),
            torch.stack([zeros, torch.ones_like(scale), zeros], 1),
        ],
        1,
    )
    grid = _affine_grid(theta, 1, length)
    out = F.grid_sample(x.unsqueeze(2), grid, mode=mode, padding_mode="zeros", align_corners=False)
    return out.squeeze(2)


# ---------------------------------------------------------------- random stages


@dataclass(frozen=True)
class Flip:
    """Reverse ``dim`` of each sample with probability ``p`` (exact; no interpolation)."""

    dim: int
    p: float = 0.5

    def __call__(self, x: Tensor, g: torch.Generator) -> Tensor:
        hit = _draw((x.shape[0],), g, x) < self.p
        return torch.where(hit.view(-1, *[1] * (x.dim() - 1)), x.flip(self.dim), x)


@dataclass(frozen=True)
class ImageAffine:
    """Random rotation (±degrees), zoom (1 ± zoom) and integer shift (±shift px), one resample."""

    degrees: float = 0.0
    zoom: float = 0.0
    shift: int = 0

    def __call__(self, x: Tensor, g: torch.Generator) -> Tensor:
        n = x.shape[0]
        angle = _uniform(n, -self.degrees, self.degrees, g, x)
        scale = _uniform(n, 1 - self.zoom, 1 + self.zoom, g, x)
        tx, ty = _integers(n, self.shift, g, x), _integers(n, self.shift, g, x)
        mode = "nearest" if self.degrees == 0 and self.zoom == 0 else "bilinear"  # exact shifts
        return affine_images(x, angle, scale, tx, ty, mode)


@dataclass(frozen=True)
class SignalAffine:
    """Random time scale (1 ± scale) and integer shift (±shift samples) of (B, C, L) signals."""

    shift: int = 0
    scale: float = 0.0

    def __call__(self, x: Tensor, g: torch.Generator) -> Tensor:
        n = x.shape[0]
        factor = _uniform(n, 1 - self.scale, 1 + self.scale, g, x)
        mode = "nearest" if self.scale == 0 else "bilinear"  # exact whole-sample shifts
        return affine_signals(x, _integers(n, self.shift, g, x), factor, mode)


@dataclass(frozen=True)
class GaussianNoise:
    """``x + std · ε``, ε ~ N(0, 1) i.i.d. per element."""

    std: float

    def __call__(self, x: Tensor, g: torch.Generator) -> Tensor:
        return x + self.std * _draw(tuple(x.shape), g, x, normal=True)


class Compose:
    """Apply stages in order; checks the batch's sample shape and restores it for 1-D ``(L,)`` data."""

    def __init__(self, stages: Sequence[Augment], input_shape: tuple[int, ...]):
        self.stages = list(stages)
        self.input_shape = tuple(input_shape)

    def __repr__(self) -> str:
        return f"Compose({self.stages!r}, input_shape={self.input_shape})"

    def __call__(self, x: Tensor, g: torch.Generator) -> Tensor:
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"augment expects batches of shape (B, {self.input_shape}), got {tuple(x.shape)}")
        out = x.unsqueeze(1) if len(self.input_shape) == 1 else x  # (B, L) -> (B, 1, L)
        for stage in self.stages:
            out = stage(out, g)
        return out.reshape(x.shape)


# ---------------------------------------------------------------- config front end


def input_kind(input_shape: tuple[int, ...]) -> str:
    """``"signal"`` for ``(L,)`` or ``(C, L)``, ``"image"`` for ``(C, H, W)``."""
    if len(input_shape) in (1, 2):
        return "signal"
    if len(input_shape) == 3:
        return "image"
    raise ConfigError(f"augment: input_shape must be (L,), (C, L) or (C, H, W), got {tuple(input_shape)}")


def _parse(spec: str) -> tuple[str, str | None]:
    name, sep, value = spec.strip().partition(":")
    return name.strip().lower(), (value.strip() if sep else None)


def _number(
    spec: str, value: str | None, low: float, high: float, *, integer: bool = False, default: float | None = None
) -> float:
    """Parse the value of ``spec`` (or take ``default``) and check ``low < value <= high``."""
    if value is None:
        if default is None:
            raise ConfigError(f"augment spec '{spec}' needs a value, e.g. '{spec}:{high if integer else 0.1}'")
        return default
    try:
        number = int(value) if integer else float(value)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"augment spec '{spec}': value must be {kind}, got '{value}'") from None
    if not low < number <= high:
        raise ConfigError(f"augment spec '{spec}': value must be in ({low}, {high}], got {number}")
    return number


def build_augment(specs: list[str], input_shape: tuple[int, ...]) -> Augment | None:
    """Build the batch augmentation for ``[data] augment`` specs, or ``None`` when there are none.

    ``input_shape`` is one sample's shape without the batch dimension. The returned callable
    takes ``(batch, generator)`` and returns a new batch of the same shape; geometric specs
    are merged into one resample applied first, noise is added last, whatever the list order.
    Unknown specs, specs that do not fit the input kind, bad values and repeated names raise
    :class:`~trainlab.errors.ConfigError`.

    Example::

        augment = build_augment(["flip", "shift:2", "noise:0.1"], (1, 28, 28))
        g = torch.Generator().manual_seed(0)
        xb = augment(xb, g)
    """
    if not specs:
        return None
    kind = input_kind(tuple(input_shape))
    valid = IMAGE_SPECS if kind == "image" else SIGNAL_SPECS
    size = min(input_shape[-2:]) if kind == "image" else input_shape[-1]
    values: dict[str, float] = {}
    for spec in specs:
        name, value = _parse(spec)
        if name not in valid:
            if name in AUGMENTATIONS:
                raise ConfigError(
                    f"augment spec '{spec}' does not apply to {kind} inputs {tuple(input_shape)}; "
                    f"choose from: {', '.join(valid)}"
                )
            raise unknown_name("augment spec", spec, valid)
        if name in values:
            raise ConfigError(f"augment spec '{name}' is given twice in {specs}")
        if name in ("flip", "vflip"):
            values[name] = _number(spec, value, 0.0, 1.0, default=0.5)
        elif name == "rotate":
            values[name] = _number(spec, value, 0.0, 180.0)
        elif name in ("zoom", "scale"):
            values[name] = _number(spec, value, 0.0, 0.99)
        elif name == "shift":
            values[name] = _number(spec, value, 0, size - 1, integer=True)
        else:  # noise
            values[name] = _number(spec, value, 0.0, math.inf)

    stages: list[Augment] = []
    if kind == "image":
        if "flip" in values:
            stages.append(Flip(dim=-1, p=values["flip"]))
        if "vflip" in values:
            stages.append(Flip(dim=-2, p=values["vflip"]))
        if values.keys() & {"rotate", "zoom", "shift"}:
            stages.append(ImageAffine(values.get("rotate", 0.0), values.get("zoom", 0.0), int(values.get("shift", 0))))
    elif values.keys() & {"shift", "scale"}:
        stages.append(SignalAffine(int(values.get("shift", 0)), values.get("scale", 0.0)))
    if "noise" in values:
        stages.append(GaussianNoise(values["noise"]))
    return Compose(stages, tuple(input_shape))
