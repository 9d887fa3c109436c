"""Zero initialization leaves the hidden units of a layer identical; random init breaks it.

Source: 002 (参数不能全部初始化为0: the symmetric-weights problem), 000 §7.3. With every
weight zero, the sigmoid hidden units all output sigmoid(0) = 1/2, receive the same
gradient, and so stay copies of each other however long the net trains — the layer acts
as one unit. Measured: the spread of the hidden units' incoming weight vectors,
max over units of ||w_j - mean_k w_k||, after training, relative to the weights' size.
"""

from __future__ import annotations

import torch

from trainlab.reproduce import Context, Experiment, Outcome, Protocol
from trainlab.reproduce.checks import greater
from trainlab.train import run

SCHEMES = ("zeros", "xavier_normal")


def unit_spread(weight: torch.Tensor) -> float:
    """max_j ||w_j - mean_k w_k|| / (mean_j ||w_j|| + 1e-12) over the rows (units) of ``weight``."""
    w = weight.detach().double()
    spread = (w - w.mean(0, keepdim=True)).norm(dim=1).max()
    return float(spread / (w.norm(dim=1).mean() + 1e-12))


def _config(scheme: str, seed: int, quick: bool) -> dict:
    return {
        "name": f"zero-init-symmetry/{scheme}",
        "seed": seed,
        "data": {"name": "mnist1d", "batch_size": 128, **({"subset": 1000} if quick else {})},
        "model": {"name": "mlp", "hidden": [64, 64], "activation": "sigmoid", "init": scheme},
        "optim": {"name": "sgd", "lr": 0.5, "momentum": 0.9},
        "train": {"epochs": 2 if quick else 10},
    }


def _run(ctx: Context) -> Outcome:
    spreads: dict[str, list[float]] = {s: [] for s in SCHEMES}
    moved: dict[str, list[float]] = {s: [] for s in SCHEMES}
    accs: dict[str, list[float]] = {s: [] for s in SCHEMES}
    for scheme in SCHEMES:
        for seed in range(ctx.seeds):
            ctx.log(f"zero-init-symmetry: {scheme}, seed {seed}")
            result = run(_config(scheme, seed, ctx.quick), store=ctx.store, group=ctx.group("zero-init-symmetry"))
            layers = [b.layer.weight for b in result.model.blocks]  # type: ignore[union-attr]
            spreads[scheme].append(max(unit_spread(w) for w in layers))
            moved[scheme].append(min(float(w.detach().norm()) for w in layers))
            accs[scheme].append(result.final["val_acc"])
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
    name="zero-init-symmetry",
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
