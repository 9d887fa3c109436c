"""Throughput of trainlab's batched augmentation vs a per-sample Python loop doing the same.

The loop is what torchvision-style transforms do inside a Dataset: draw the parameters of
one sample, build its 2x3 affine matrix, resample it alone, add noise. Both sides use the
same torch ops (``affine_grid`` / ``grid_sample``), so the ratio measures batching alone.

    python benchmarks/augment.py            # prints a table; ratio = time / best time
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F

from trainlab.data.augment import build_augment

IMAGE_SPECS = ["flip", "rotate:15", "zoom:0.1", "shift:2", "noise:0.1"]
SIGNAL_SPECS = ["shift:3", "scale:0.1", "noise:0.1"]


def per_sample_images(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """The same draws as IMAGE_SPECS, one image at a time."""
    out = torch.empty_like(x)
    _, _, h, w = x.shape
    for i in range(x.shape[0]):
        img = x[i : i + 1]
        if torch.rand((), generator=g) < 0.5:
            img = img.flip(-1)
        angle = math.radians(float(torch.empty(()).uniform_(-15, 15, generator=g)))
        scale = float(torch.empty(()).uniform_(0.9, 1.1, generator=g))
        tx, ty = (int(torch.randint(-2, 3, (), generator=g)) for _ in range(2))
        c, s = math.cos(angle) / scale, math.sin(angle) / scale
        a = torch.tensor([[c, -s * h / w], [s * w / h, c]])
        t = torch.tensor([2 * tx / w, 2 * ty / h])
        theta = torch.cat([a, -(a @ t)[:, None]], 1)[None]
        grid = F.affine_grid(theta, [1, 1, h, w], align_corners=False)
        img = F.grid_sample(img, grid, align_corners=False)
        out[i] = img[0] + 0.1 * torch.randn(img.shape[1:], generator=g)
    return out


def per_sample_signals(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """The same draws as SIGNAL_SPECS, one signal at a time (linear interpolation, zeros outside)."""
    out = torch.empty_like(x)
    length = x.shape[-1]
    j = torch.arange(length, dtype=x.dtype)
    for i in range(x.shape[0]):
        shift = int(torch.randint(-3, 4, (), generator=g))
        scale = float(torch.empty(()).uniform_(0.9, 1.1, generator=g))
        src = (j - (length - 1) / 2 - shift) / scale + (length - 1) / 2
        lo = src.floor().long()
        frac = src - lo
        padded = torch.cat([x.new_zeros(1), x[i], x.new_zeros(1)])  # index -1 and L read 0
        left = padded[(lo + 1).clamp(0, length + 1)]
        right = padded[(lo + 2).clamp(0, length + 1)]
        out[i] = (1 - frac) * left + frac * right + 0.1 * torch.randn(length, generator=g)
    return out


def best_times(fns: dict[str, object], repeats: int = 15) -> dict[str, float]:
    """Minimum wall time of each function; calls interleaved so a burst of load hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for name, fn in fns.items():
        fn()  # warm-up: first-touch allocations
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: min(ts) for name, ts in times.items()}


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)  # one core each: stable on a shared machine, and a fair loop baseline
    cases = [
        ("image 3x32x32", torch.rand(256, 3, 32, 32), IMAGE_SPECS, per_sample_images),
        ("image 1x28x28", torch.rand(256, 1, 28, 28), IMAGE_SPECS, per_sample_images),
        ("signal 40", torch.randn(512, 40), SIGNAL_SPECS, per_sample_signals),
    ]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread, CPU")
    print(f"{'input':<16}{'batch':>6}  {'method':<18}{'samples/s':>12}{'ratio':>8}")
    for name, x, specs, loop in cases:
        batched = build_augment(specs, tuple(x.shape[1:]))
        g = torch.Generator().manual_seed(0)
        results = best_times({"batched": lambda: batched(x, g), "per-sample loop": lambda: loop(x, g)})
        best = min(results.values())
        for method, t in results.items():
            print(f"{name:<16}{x.shape[0]:>6}  {method:<18}{x.shape[0] / t:>12,.0f}{t / best:>8.1f}")


if __name__ == "__main__":
    main()
