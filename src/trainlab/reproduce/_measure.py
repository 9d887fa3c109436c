"""Small measurements and figures shared by the regularization experiments of the gallery."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from trainlab.regularization import regularized_parameters


@torch.no_grad()
def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Share of ``x`` classified as ``y`` in eval mode (dropout off), the model's mode restored."""
    was_training = model.training
    model.eval()
    try:
        return float((model(x).argmax(-1) == y).double().mean())
    finally:
        model.train(was_training)


def mean_std(values: Sequence[float], digits: int = 3) -> str:
    """``mean ± sample std`` over seeds (std 0 for a single seed)."""
    v = np.asarray(values, dtype=np.float64)
    sd = float(v.std(ddof=1)) if v.size > 1 else 0.0
    return f"{v.mean():.{digits}f} ± {sd:.{digits}f}"


def regularized_weights(model: torch.nn.Module) -> np.ndarray:
    """Every weight the penalties act on (biases and norm gains left out), as one float64 vector."""
    return np.concatenate([p.detach().double().flatten().numpy() for _, p in regularized_parameters(model)])


def errorbars(ax, xs: Sequence[float], series: Mapping[str, Sequence[Sequence[float]]]) -> None:
    """One line per label on ``ax``: at each ``xs[i]`` the mean of ``series[label][i]`` (the
    seeds' values there) with ±1 sample-std error bars (0 for a single seed)."""
    from trainlab.report.plots import COLORS, mpl_text

    for i, (label, per_x) in enumerate(series.items()):
        values = [np.asarray(v, dtype=np.float64) for v in per_x]
        ax.errorbar(
            xs,
            [v.mean() for v in values],
            yerr=[v.std(ddof=1) if v.size > 1 else 0.0 for v in values],
            marker="o",
            markersize=4,
            capsize=3,
            color=COLORS[i % len(COLORS)],
            label=mpl_text(label),
        )
