"""Shared by the optimizer tests: random problems and trajectories under a fixed gradient sequence."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

SHAPES = [(7,), (4, 5), (2, 3, 4)]


def random_problem(seed: int, steps: int = 100, shapes: Sequence[tuple[int, ...]] = SHAPES):
    """Initial parameters and a gradient per step per parameter, float64 NumPy."""
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s) for s in shapes]
    grads = [[rng.standard_normal(s) for s in shapes] for _ in range(steps)]
    return params, grads


def trajectory(
    make_optimizer: Callable[[list[torch.Tensor]], torch.optim.Optimizer],
    params0: list[np.ndarray],
    grads: list[list[np.ndarray]],
    dtype: torch.dtype = torch.float64,
    lrs: Sequence[float] | None = None,
) -> list[list[np.ndarray]]:
    """The parameters after each step of a torch-style optimizer fed ``grads``.

    ``lrs`` (one per step) sets every group's lr before the step, as a schedule would.
    """
    params = [torch.tensor(p, dtype=dtype, requires_grad=True) for p in params0]
    opt = make_optimizer(params)
    out = []
    for t, step_grads in enumerate(grads):
        if lrs is not None:
            for group in opt.param_groups:
                group["lr"] = lrs[t]
        for p, g in zip(params, step_grads):
            p.grad = torch.tensor(g, dtype=dtype)
        opt.step()
        out.append([p.detach().to(torch.float64).numpy().copy() for p in params])
    return out


def assert_same_trajectory(actual, expected, rtol: float = 1e-6, atol: float = 1e-12) -> None:
    for t, (a_step, e_step) in enumerate(zip(actual, expected, strict=True)):
        for a, e in zip(a_step, e_step, strict=True):
            np.testing.assert_allclose(a, e, rtol=rtol, atol=atol, err_msg=f"step {t + 1}")
