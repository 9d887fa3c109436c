"""Zero initialization leaves the hidden units of a layer identical; random init breaks it.

Source: 002 (参数不能全部初始化为0: the symmetric-weights problem), 000 §7.3. With every
weight zero, the sigmoid hidden units all output sigmoid(0) = 1/2, receive the same
gradient, and so stay copies of each other however long the net trains — the layer acts
as one unit. Measured: the spread of the hidden units' incoming weight vectors,
max over units of ||w_j - mean_k w_k||, after training, relative to the weights' size, on
each run's final checkpoint. The runs are one sweep (:mod:`trainlab.reproduce.sweep`: resumable
by config hash, parallel with ``--jobs``) of runs trained each alone, not in populations: the
population trainer's batched kernels do not compute every unit of a layer by the same sequence
of floating-point operations, so the units of a zero-initialized layer drift apart by rounding
(a relative spread of 1e-6 after the full run's 10 epochs, measured), where the sequential
run's kernels keep them exactly equal — and "identical" is tested as a spread below 1e-6.
"""

from __future__ import annotations

import torch

from trainlab.reproduce import Context, Experiment, Outcome, Protocol
from trainlab.reproduce.checks import greater
from trainlab.reproduce.sweep import sweep

NAME = "zero-init-symmetry"
SCHEMES = ("zeros", "xavier_normal")


def unit_spread(weight: torch.Tensor) -> float:
    """max_j ||w_j - mean_k w_k|| / (mean_j ||w_j|| + 1e-12) over the rows (units) of ``weight``."""
    w = weight.detach().double()
    spread = (w - w.mean(0, keepdim=True)).norm(dim=1).max()
    return float(spread / (w.norm(dim=1).mean() + 1e-12))


def config(scheme: str, quick: bool) -> dict:
    """The training run of one init (without seed and name: :func:`~trainlab.reproduce.sweep.sweep` adds them)."""
    return {
        "data": {"name": "mnist1d", "batch_size": 128, **({"subset": 1000} if quick else {})},
        "model": {"name": "mlp", "hidden": [64, 64], "activation": "sigmoid", "init": scheme},
        "optim": {"name": "sgd", "lr": 0.5, "momentum": 0.9},
        "train": {"epochs": 2 if quick else 10},
    }


def _run(ctx: Context) -> Outcome:
    runs = sweep(ctx, NAME, {scheme: config(scheme, ctx.quick) for scheme in SCHEMES}, vectorize="off")
    spreads: dict[str, list[float]] = {s: [] for s in SCHEMES}
    moved: dict[str, list[float]] = {s: [] for s in SCHEMES}
    for scheme in SCHEMES:
        for i in range(len(runs.seeds)):  # each run's trained weights, from its final checkpoint
            layers = [b.layer.weight for b in runs.model(scheme, i).blocks]
            spreads[scheme].append(max(unit_spread(w) for w in layers))
            moved[scheme].append(min(float(w.detach().norm()) for w in layers))
    accs = {s: runs.final(s, "val_acc") for s in SCHEMES}
    # zero init: every layer's weights moved away from 0 (the units learn) yet stay identical.
    identical = max(spreads["zeros"]) < 1e-6 and min(moved["zeros"]) > 1e-3
    broken = greater(spreads["xavier_normal"], spreads["zeros"], margin=0.1, what="unit spread (xavier) - (zeros)")
    holds = identical and broken.holds
    statement = (
        f"zero init: max relative unit spread {max(spreads['zeros']):.2e} < 1e-6 with weights moved "
        f"(min norm {min(moved['zeros']):.3g} > 1e-3) in every seed; {broken.statement}"
    )
    return Outcome(
        holds=holds,
        statement=statement,
        figures={"unit_spread": spreads, "weight_norm": moved, "val_acc": accs, "check": broken.as_dict()},
        tables=[
            (
                "Hidden-unit spread after training (0 = all units of a layer identical)",
                ["init", "max spread over seeds", "min weight norm", "val_acc (mean)"],
                [
                    [s, f"{max(spreads[s]):.3g}", f"{min(moved[s]):.3g}", f"{sum(accs[s]) / len(accs[s]):.3f}"]
                    for s in SCHEMES
                ],
            )
        ],
    )


EXPERIMENT = Experiment(
    name=NAME,
    claim="Zero initialization leaves the hidden units of a layer identical through training; random initialization breaks the symmetry.",
    source="002 §参数初始化 (symmetric weights); 000 §7.3",
    run=_run,
    quote=(
        '004 常数(零值)初始化: "任意常数初始化方法性能都不好,甚至无法训练 … 反向传播算法更新参数时,各参数各维度导数一致、更新后权值一致 … 各神经元在演化过程中对称,无法学习不同特征,退化为单神经元". 002: "对称权重问题：前馈神经网络中同一层权重初始化为相同值 … 由于对称性，保持 a1 = a2 ⇒ 神经元输出没有区分性".'
    ),
    protocol=(
        Protocol(
            "source's evidence",
            "a trained sigmoid MLP, its hidden units' weight vectors compared",
            "an argument (the gradient of every unit of a layer is the same), no experiment",
            "the argument made measurable",
        ),
        Protocol(
            "metric",
            "spread of the hidden units' incoming weights after training (max distance to their mean), and that the weights moved",
            'units stay identical ("退化为单神经元")',
        ),
        Protocol("runs", "3 seeds", "—"),
    ),
)
