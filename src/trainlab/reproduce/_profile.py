"""Per-layer signal at initialization, shared by the depth experiments of the gallery
(init-depth, vanishing-gradients): one forward and backward of a config's freshly built MLP,
measured with :class:`trainlab.diagnose.stats.LayerStats`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from trainlab.diagnose.stats import PREFIX, LayerStats
from trainlab.train import setup

# float32's smallest positive (subnormal) number: a std or norm that underflowed to exactly 0
# is counted as this, so that its log stays finite and a collapse still reads as a collapse.
FLOAT32_TINY = 1.401298464324817e-45


def init_profile(config: dict[str, Any], samples: int = 512) -> dict[str, list[float]]:
    """Mean and std of every hidden block's output and the gradient norm of every hidden
    block's linear layer (weight and bias), on the first ``samples`` training samples, for
    the model ``config`` builds (seeded by ``config["seed"]``), before any training step."""
    s = setup(config)
    n = len(s.model.blocks)  # type: ignore[arg-type]
    acts = [f"blocks.{i}.act" for i in range(n)]
    linears = [f"blocks.{i}.layer" for i in range(n)]
    stats = LayerStats(s.model, layers=acts + linears).attach()
    try:
        x, y = s.data.x_train[:samples], s.data.y_train[:samples]
        s.loss_fn(s.model(x), y).backward()
        values = stats.collect()
    finally:
        stats.detach()
    return {
        "act_mean": [values[f"{PREFIX}{a}/act_mean"] for a in acts],
        "act_std": [values[f"{PREFIX}{a}/act_std"] for a in acts],
        "grad_norm": [values[f"{PREFIX}{w}/grad_norm"] for w in linears],
    }


def log10_ratio(last: float, first: float) -> float:
    """log10(last / first), with exact zeros (float32 underflow) counted as :data:`FLOAT32_TINY`."""
    return math.log10(max(last, FLOAT32_TINY)) - math.log10(max(first, FLOAT32_TINY))


def geometric_mean(per_seed: Sequence[Sequence[float]]) -> np.ndarray:
    """Per-layer geometric mean over seeds (zeros counted as :data:`FLOAT32_TINY`): the right
    average for quantities that grow or shrink by a factor per layer."""
    v = np.maximum(np.asarray(per_seed, dtype=np.float64), FLOAT32_TINY)
    return np.exp(np.log(v).mean(axis=0))


def per_layer_figure(
    series: Mapping[str, Sequence[Sequence[float]]],
    *,
    title: str,
    ylabel: str,
    theory: dict[str, np.ndarray] | None = None,
):
    """One line per label: the geometric mean over seeds of a per-layer quantity (log y),
    each seed faint behind it; ``theory`` lines dashed in the same colour."""
    from trainlab.report.plots import COLORS, mpl_text, new_figure

    fig, ax = new_figure(5.6, 3.6)
    for i, (label, per_seed) in enumerate(series.items()):
        color = COLORS[i % len(COLORS)]
        layers = np.arange(1, len(per_seed[0]) + 1)
        for seed_values in per_seed:
            ax.plot(layers, np.maximum(seed_values, FLOAT32_TINY), color=color, alpha=0.25, linewidth=0.8)
        ax.plot(
            layers,
            geometric_mean(per_seed),
            color=color,
            linewidth=1.6,
            marker="o",
            markersize=2.5,
            label=mpl_text(label),
        )
        if theory and label in theory:
            ax.plot(
                layers,
                np.maximum(theory[label], FLOAT32_TINY),
                color=color,
                linestyle="--",
                linewidth=1,
                label=mpl_text(f"{label}: theory"),
            )
    ax.set_yscale("log")
    ax.set_xlabel("hidden layer")
    ax.set_ylabel(mpl_text(ylabel))
    ax.set_title(mpl_text(title), fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    return fig
