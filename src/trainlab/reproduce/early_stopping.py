"""The validation curve is U-shaped; early stopping stops near its bottom and keeps that model.

Source: 000 §7.7.3 (提前停止: "验证集错误不再下降则停止"); 002 (提前终止: stop when validation
accuracy falls / loss rises; "训练很长时间，保存在验证集上最优的模型"); 001 (提前终止). The
callback is :class:`trainlab.train.EarlyStopping` (``[train.early_stopping]``): stop after
``patience`` evaluations without a new minimum of the validation loss, then restore the
weights of the best evaluation.

Set-up: the first 1000 MNIST-1D training samples, MLP 40 → 256 → 256 → 10 (ReLU), Adam lr
1e-3, batch 50, evaluated every epoch (20 steps). Each seed trains twice from the same
initialization and data order: for 150 epochs (the full curve), and with early stopping on
the validation loss (patience 10 evaluations, restore best). Up to the stop both runs are
the same computation, so the early-stopped run shows where, on the full curve, the rule
stops. Both arms run as one sweep (:mod:`trainlab.reproduce.sweep`: resumable, ``--jobs``):
the full runs' seeds train as one population, the same computation in another order of
floating-point operations; early stopping ends runs at different steps, which a population
does not batch, so the early-stopped runs train one by one. The two curves of a seed start
equal to float rounding (~1e-7) and on some seeds drift apart — Adam's step is about
lr·sign(g) even for a gradient that is rounding noise — by at most 0.3% of the validation
loss before the stop in the full run; the full run's lowest step and the rule's best step
still coincide on every seed.

Measured: the U's depth — min(first − lowest, last − lowest) validation loss of the full
run (it must fall, then rise); and the test loss of the two final models (the early-stopped
one restored to its best evaluation).

Claims (95% CIs over seeds, margins fixed before running): the validation loss falls and
rises again by more than 0.1 nats; the early-stopped model's test loss is more than 0.05
nats below the fully trained one's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from trainlab.reproduce import Context, Experiment, Outcome, Protocol
from trainlab.reproduce._measure import mean_std
from trainlab.reproduce.checks import all_hold, greater, less
from trainlab.reproduce.sweep import sweep

NAME = "early-stopping"
PATIENCE = 10
U_MARGIN = 0.1  # nats: the fall and the rise are both plainly visible; chosen before running
TEST_MARGIN = 0.05  # nats of test loss gained by stopping early
ARMS = ("full", "early-stopped")


def config(early_stopping: bool, quick: bool) -> dict[str, Any]:
    """One arm's run config (without seed and name)."""
    train: dict[str, Any] = {"epochs": 40 if quick else 150, "threads": 1}  # one thread: tiny models on shared cores
    if early_stopping:
        train["early_stopping"] = {"monitor": "val_loss", "patience": PATIENCE, "restore_best": True}
    return {
        "data": {"name": "mnist1d", "batch_size": 50, "subset": 300 if quick else 1000},
        "model": {"name": "mlp", "hidden": [256, 256], "activation": "relu"},
        "optim": {"name": "adam", "lr": 1e-3},
        "train": train,
    }


def u_depth(values: np.ndarray) -> float:
    """How far a curve falls to its lowest point *and* rises after it: min(first − lowest, last − lowest).

    0 for a curve that only falls (lowest at the end) or only rises (lowest at the start)."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size == 0 or not np.all(np.isfinite(v)):
        raise ValueError(f"values must be a non-empty 1-D finite curve, got shape {v.shape}")
    low = v.min()
    return float(min(v[0] - low, v[-1] - low))


def _run(ctx: Context) -> Outcome:
    runs = sweep(ctx, NAME, {arm: config(arm == "early-stopped", ctx.quick) for arm in ARMS})
    final: dict[str, dict[str, list[float]]] = {
        arm: {
            "test_loss": runs.final(arm, "test_loss"),
            "test_acc": runs.final(arm, "test_acc"),
            "steps": runs.final(arm, "step"),
        }
        for arm in ARMS
    }
    history = {key: runs.metric("full", key) for key in ("train_loss", "val_loss")}
    depth = [u_depth(val) for _, val in history["val_loss"]]
    lowest_step = [int(steps[np.argmin(val)]) for steps, val in history["val_loss"]]  # the full runs' argmin
    best_step = [int(s) for s in runs.final("early-stopped", "early_stopping_best_step")]  # early stopping's best
    curves = {"train loss": history["train_loss"], "val loss": history["val_loss"]}
    u_shape = greater(depth, [0.0], margin=U_MARGIN, what="U depth of the validation loss (nats)")
    better = less(
        final["early-stopped"]["test_loss"],
        final["full"]["test_loss"],
        margin=TEST_MARGIN,
        what="test loss, early-stopped - full",
    )
    holds, statement = all_hold(u_shape, better)
    rows = [
        [arm, mean_std(f["test_loss"]), mean_std(f["test_acc"]), mean_std(f["steps"], 0)] for arm, f in final.items()
    ]
    acc_diff = float(np.mean(final["early-stopped"]["test_acc"]) - np.mean(final["full"]["test_acc"]))
    notes = (
        f"Test accuracy, early-stopped − full: {acc_diff:+.3f} (not part of the claim). Past the bottom of the loss U the "
        "net grows more confident, and confident mistakes raise the loss while the accuracy can still move either way: "
        "monitor val_acc instead to stop on the error rate."
    )
    return Outcome(
        holds=holds,
        statement=statement,
        figures={
            "patience": PATIENCE,
            **final,
            "u_depth": depth,
            "full_lowest_val_loss_step": lowest_step,
            "early_stopping_best_step": best_step,
            "checks": {"u_shape": u_shape.as_dict(), "test_loss": better.as_dict()},
        },
        tables=[
            (
                "Final models (mean ± std over seeds); the early-stopped one restored to its best evaluation",
                ["run", "test loss", "test accuracy", "steps trained"],
                rows,
            ),
            (
                "Where it stops: the full run's lowest validation loss vs the early-stopped run's best and last step",
                [
                    "seed",
                    "full run: lowest val loss at step",
                    "early stopping: best step",
                    "early stopping: stopped at step",
                ],
                [
                    [seed, lowest_step[i], best_step[i], int(final["early-stopped"]["steps"][i])]
                    for i, seed in enumerate(runs.seeds)
                ],
            ),
        ],
        plots=_plots(curves, best_step, final["early-stopped"]["steps"]),
        notes=notes,
    )


def _plots(
    curves: dict[str, list[tuple[np.ndarray, np.ndarray]]], best_step: list[int], stopped: list[float]
) -> list[tuple[str, str]]:
    from trainlab.report.plots import band_figure, figure_to_svg

    fig = band_figure(
        curves,
        title="The full runs' losses; early stopping's best (dotted) and stop (dashed) per seed",
        ylabel="cross-entropy",
    )
    ax = fig.axes[0]
    for best, stop in zip(best_step, stopped):
        ax.axvline(best, color="#2ca02c", linestyle=":", linewidth=1)
        ax.axvline(stop, color="#d62728", linestyle="--", linewidth=1)
    caption = "Validation loss falls, then rises as the net fits the training set's noise; early stopping keeps the bottom of the U"
    return [(caption, figure_to_svg(fig))]


EXPERIMENT = Experiment(
    name=NAME,
    claim="The validation loss falls and then rises (a U); early stopping stops near its bottom and gives a lower test loss than training to the end.",
    source="000 §7.7.3 提前停止; 002 提前终止; 001 提前终止",
    run=_run,
    default_seeds=5,
    quote=(
        '000 §7.7.3: "提前停止（Early Stop）：验证集错误不再下降则停止". 002 提前终止 (paraphrased): stop when the validation error rises, keeping the model that was best on the validation set.'
    ),
    protocol=(
        Protocol(
            "model",
            "MLP 40 → 256 → 256 → 10 on the first 1000 MNIST-1D samples, Adam 1e-3, 150 epochs",
            "—",
            "a small set so the validation loss turns up",
        ),
        Protocol(
            "rule",
            "patience 10 evaluations on the validation loss, restore the best weights",
            "stop when the validation error stops falling",
        ),
        Protocol("metric", "U depth of the validation loss; test loss early − full", "—"),
        Protocol("runs", "5 seeds", "—"),
    ),
)
