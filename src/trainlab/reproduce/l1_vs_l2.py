"""L1 regularization makes weights sparse; L2 shrinks them all without zeroing any.

Source: 001 (L1 与 L2 正则的区别: "L1范数可以导致稀疏解，L2范数导致稠密解"; L2 makes every weight
"无限接近于 0 但又不像 L1 那样等于 0"); 003 (参数范数惩罚: with a diagonal Hessian H, L2 scales the
component along eigenvector i by ``λ_i / (λ_i + α)`` while L1 gives
``w_i = sign(w*_i) max(|w*_i| − α/H_ii, 0)``, exactly 0 when ``|w*_i| ≤ α/H_ii``); 000 §7.7.1.
Penalties (``[regularize] l1 / l2``, :func:`trainlab.regularization.penalty`, weights only):
``l1 · Σ|w|`` (gradient ``l1 · sign(w)``) and ``(l2 / 2) · Σ w²`` (gradient ``l2 · w``), added
to the batch-mean cross-entropy.

Set-up: MNIST-1D, MLP 40 → 100 → 100 → 10 (ReLU), SGD lr 0.05 with momentum 0.9, batch 100,
60 epochs, cosine decay of the lr to 0 — the penalty's subgradient makes a weight that should
be 0 oscillate around it by about ``lr · l1 / (1 − momentum)``, and the decay lets that
oscillation die out (a proximal step would give exact zeros; the notes' gradient form is
what is trained here). Arms: no penalty, L1 with λ = 1e-3, L2 with λ = 1e-3.

Measured on the final weights: the *near-zero share* — the fraction of weights with
``|w| < 0.01 · RMS`` of their layer's weights. The threshold is relative, so shrinking every
weight by one factor (what L2 does) leaves the share unchanged — about 0.6% for uniformly
and 0.8% for normally distributed weights — while a spike of weights at 0 (what L1 does)
raises it. Shrinkage: ``1 − RMS(L2 weights) / RMS(unregularized weights)``, same seed.

The arms × seeds run as one sweep (:mod:`trainlab.reproduce.sweep`: resumable, ``--jobs``; the
unregularized arm's seeds train as one population — the penalties are not batched, so the L1
and L2 runs train one by one); the weights are read from each run's final checkpoint.

Claims (95% CIs over seeds, margins fixed before running): L1's near-zero share exceeds
L2's by more than 10 points; L2 shrinks the weights' RMS by more than 10%; and L2's
near-zero share is less than 2 points above the unregularized net's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from trainlab.regularization import regularized_parameters
from trainlab.reproduce import Context, Experiment, Outcome, Protocol
from trainlab.reproduce._measure import mean_std
from trainlab.reproduce.checks import all_hold, greater, less
from trainlab.reproduce.sweep import sweep

NAME = "l1-vs-l2"
LAMBDA = 1e-3
RELATIVE_ZERO = 0.01  # |w| below 1% of its layer's RMS counts as zero
SPARSITY_MARGIN = 0.10  # L1 - L2 near-zero share: ten points, chosen before running
SHRINK_MARGIN = 0.10  # L2 shrinks the weights' RMS by more than 10%
DENSE_MARGIN = 0.02  # L2's near-zero share at most two points above no penalty
ARMS = {"none": {}, "L1": {"l1": LAMBDA}, "L2": {"l2": LAMBDA}}


def config(arm: str, quick: bool) -> dict[str, Any]:
    """One arm's run config (without seed and name)."""
    return {
        "data": {"name": "mnist1d", "batch_size": 100},
        "model": {"name": "mlp", "hidden": [100, 100], "activation": "relu"},
        "optim": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
        "schedule": {"name": "cosine"},
        "regularize": ARMS[arm],
        # quick: half the epochs on the same data — 15 epochs on 1000 samples (150 steps) shrank the
        # L2 weights by only 3%, so the quick verdict differed from the full one
        "train": {"epochs": 30 if quick else 60, "threads": 1},  # one thread: tiny models on shared cores
    }


def near_zero_share(layers: list[np.ndarray], relative: float = RELATIVE_ZERO) -> float:
    """Share of all weights with ``|w| < relative · RMS(its layer)``, pooled over the layers."""
    if not 0 < relative < 1:
        raise ValueError(f"relative must be in (0, 1), got {relative!r}")
    small = sum(int(np.sum(np.abs(w) < relative * np.sqrt(np.mean(w**2)))) for w in layers)
    return small / sum(w.size for w in layers)


def rms(layers: list[np.ndarray]) -> float:
    """Root mean square of all weights, pooled over the layers."""
    return float(np.sqrt(np.mean(np.concatenate([w.ravel() for w in layers]) ** 2)))


def _layers(model: torch.nn.Module) -> list[np.ndarray]:
    return [p.detach().double().numpy() for _, p in regularized_parameters(model)]


def _run(ctx: Context) -> Outcome:
    metrics: dict[str, dict[str, list[float]]] = {
        arm: {"near_zero": [], "rms": [], "val_acc": [], "test_acc": []} for arm in ARMS
    }
    first_layer: dict[str, list[np.ndarray]] = {arm: [] for arm in ARMS}
    runs = sweep(ctx, NAME, {arm: config(arm, ctx.quick) for arm in ARMS})
    for arm, m in metrics.items():
        for i in range(len(runs.seeds)):
            layers = _layers(runs.model(arm, i))
            m["near_zero"].append(near_zero_share(layers))
            m["rms"].append(rms(layers))
            first_layer[arm].append(np.abs(layers[0]).ravel())
        m["val_acc"], m["test_acc"] = runs.final(arm, "val_acc"), runs.final(arm, "test_acc")
    shrink = [1.0 - a / b for a, b in zip(metrics["L2"]["rms"], metrics["none"]["rms"])]
    sparse = greater(
        metrics["L1"]["near_zero"], metrics["L2"]["near_zero"], margin=SPARSITY_MARGIN, what="near-zero share, L1 - L2"
    )
    shrinks = greater(shrink, [0.0], margin=SHRINK_MARGIN, what="L2 shrinkage 1 - RMS(L2)/RMS(none)")
    dense = less(
        metrics["L2"]["near_zero"],
        metrics["none"]["near_zero"],
        margin=-DENSE_MARGIN,
        what="near-zero share, L2 - none",
    )
    holds, statement = all_hold(sparse, shrinks, dense)
    rows = [
        [arm, mean_std(m["near_zero"]), mean_std(m["rms"], 4), mean_std(m["val_acc"]), mean_std(m["test_acc"])]
        for arm, m in metrics.items()
    ]
    return Outcome(
        holds=holds,
        statement=statement,
        figures={
            "lambda": LAMBDA,
            "relative_zero": RELATIVE_ZERO,
            **metrics,
            "l2_shrinkage": shrink,
            "checks": {"sparsity": sparse.as_dict(), "shrinkage": shrinks.as_dict(), "dense": dense.as_dict()},
        },
        tables=[
            (
                f"Final weights (λ = {LAMBDA:g}; mean ± std over seeds): share with |w| < {RELATIVE_ZERO:g} · layer RMS, RMS, accuracy",
                ["penalty", "near-zero share", "RMS of weights", "val accuracy", "test accuracy"],
                rows,
            )
        ],
        plots=_plots(first_layer, metrics),
    )


def _plots(
    first_layer: dict[str, list[np.ndarray]], metrics: dict[str, dict[str, list[float]]]
) -> list[tuple[str, str]]:
    from trainlab.report.plots import COLORS, figure_to_svg, new_figure, points_figure

    fig, ax = new_figure(5.6, 3.4)
    pooled = {arm: np.concatenate(w) for arm, w in first_layer.items()}
    low = max(min(float(v[v > 0].min()) for v in pooled.values()), 1e-12)
    bins = np.logspace(np.log10(low), np.log10(max(float(v.max()) for v in pooled.values())), 60)
    for i, (arm, v) in enumerate(pooled.items()):
        ax.hist(np.clip(v, low, None), bins=bins, histtype="step", linewidth=1.4, color=COLORS[i], label=arm)
    ax.set_xscale("log")
    ax.set_xlabel("|w| (first layer, all seeds)")
    ax.set_ylabel("count")
    ax.set_title("Magnitudes of the first layer's weights", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    shares = {arm: m["near_zero"] for arm, m in metrics.items()}
    share = points_figure(shares, title="Near-zero share per seed", ylabel=f"share |w| < {RELATIVE_ZERO:g}·RMS")
    return [
        (
            "L1 piles weights up near 0 (left tail); L2 moves the whole distribution left without a pile at 0",
            figure_to_svg(fig),
        ),
        ("Share of near-zero weights per seed (bar: mean)", figure_to_svg(share)),
    ]


EXPERIMENT = Experiment(
    name=NAME,
    claim="L1 regularization drives many weights to zero (a sparse solution); L2 shrinks all weights but leaves them non-zero (a dense one).",
    source="001 L1 正则与 L2 正则的区别; 003 参数范数惩罚 (L2 λ_i/(λ_i+α), L1 soft threshold); 000 §7.7.1",
    run=_run,
    default_seeds=5,
    quote=(
        '001 L1 正则与 L2 正则的区别: "所以有如下结论，L1范数可以导致稀疏解，L2范数导致稠密解". 003: "L1正则化会产生更稀疏的解，即一些参数为0，只要有足够大的α".'
    ),
    protocol=(
        Protocol(
            "source's evidence",
            "an MLP trained with each penalty; share of near-zero weights",
            "a geometric argument (the L1 ball's corners) and the diagonal-Hessian solution (003)",
            "the argument made measurable",
        ),
        Protocol("model", "MLP 40 → 100 → 100 → 10, SGD momentum 0.9, cosine to 0, 60 epochs", "—"),
        Protocol("strengths", "λ = 1e-3 for both", '"只要有足够大的α"', "one strength for both, fixed before running"),
        Protocol("runs", "5 seeds", "—"),
    ),
)
