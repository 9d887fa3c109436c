"""A large batch with a linearly scaled learning rate fails early without warm-up and follows
the small-batch curve with it.

Source: 000 §7.2.2 (线性缩放规则: "Batch Size 和学习率同比率增大"), §7.2.3 (逐渐预热,
α'_t = t/T' · α0), exercise 7-1; Goyal, Dollár, Girshick, Noordhuis, Wesolowski, Kyrola,
Tulloch, Jia & He, "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour" (2017),
§2.1 (linear scaling rule: multiply the batch by k, multiply η by k), §2.2 (gradual warm-up
from η to kη over the first epochs), Fig. 2 (training curves of kn = 8k vs 256).

Set-up: an MLP 40 → 100 → 100 → 10 (ReLU) on MNIST-1D, SGD with momentum 0.9, a constant
lr, 40 epochs for every arm (equal epochs = equal samples seen, as in Goyal et al.), every
mini-batch of full size (``drop_last``). The small batch K = 32 uses η = 0.03 — the best
final validation accuracy of η ∈ {0.003, 0.01, 0.03, 0.1} at K = 32, fixed once, before any
large-batch run. The large batch K = 512 (k = 16) uses kη = 0.48 through the config's linear
rule (``optim.scale_lr = "linear"``, ``base_batch_size = 32``), with no warm-up and with
Goyal's gradual warm-up from η to kη over the first 5 epochs (``schedule.warmup_steps``).
Seeds vary the initialization and data order; each seed runs all three arms (one sweep,
:mod:`trainlab.reproduce.sweep`: each arm's seeds train as one population).

Measured: the validation loss after every epoch. A run whose loss became non-finite
("diverged") counts as a chance-level predictor, ln 10 nats, from then on.

Claims (95% bootstrap CIs over seeds, margins fixed before running):
  - fails early: the mean validation loss over epochs 1–5 of the large batch without warm-up
    exceeds the small batch's by more than 0.1 nats;
  - matches with warm-up: the final test accuracy of the warmed-up large batch differs from
    the small batch's by less than 2 points (the CI of the difference inside ±0.02).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from trainlab.reproduce import Context, Experiment, Outcome, Protocol
from trainlab.reproduce._measure import mean_std
from trainlab.reproduce.checks import Check, all_hold, diff_ci, greater
from trainlab.reproduce.sweep import Runs, sweep

NAME = "linear-scaling-warmup"
SMALL_BATCH = 32
SMALL_LR = 0.03  # best of {0.003, 0.01, 0.03, 0.1} at K = 32 (validation accuracy, one seed)
EARLY_MARGIN = 0.1  # nats: "fails early" is a plainly higher loss; chosen before running
MATCH_TOLERANCE = 0.02  # two points of test accuracy: "matches"
CHANCE_LOSS = math.log(10.0)  # cross-entropy of a uniform guess over MNIST-1D's 10 classes
ARMS = ("small batch", "large, no warm-up", "large + warm-up")


def sizes(quick: bool) -> dict[str, int]:
    """Large batch, epochs and warm-up epochs."""
    return (
        {"large_batch": 256, "epochs": 10, "warmup_epochs": 2}
        if quick
        else {"large_batch": 512, "epochs": 40, "warmup_epochs": 5}
    )


def config(arm: str, quick: bool) -> dict[str, Any]:
    """One arm's run config (the sweep adds seed and name)."""
    s = sizes(quick)
    large = arm != "small batch"
    batch = s["large_batch"] if large else SMALL_BATCH
    schedule: dict[str, Any] = {"name": "constant"}
    if arm == "large + warm-up":
        train_size = 1000 if quick else 3600
        # the Trainer ramps from the unscaled η to kη when the lr is linearly scaled (Goyal et al. §2.2)
        schedule["warmup_steps"] = s["warmup_epochs"] * (train_size // batch)
    return {
        "data": {"name": "mnist1d", "batch_size": batch, "drop_last": True, **({"subset": 1000} if quick else {})},
        "model": {"name": "mlp", "hidden": [100, 100], "activation": "relu"},
        "optim": {"name": "sgd", "lr": SMALL_LR, "momentum": 0.9, "scale_lr": "linear", "base_batch_size": SMALL_BATCH},
        "schedule": schedule,
        "train": {"epochs": s["epochs"], "threads": 1},
    }


def per_epoch(epoch: np.ndarray, values: np.ndarray, epochs: int) -> np.ndarray:
    """The value at the end of each epoch 1..epochs (``epoch`` holds the epoch count at each
    evaluation); epochs after a divergence (no value, or a non-finite one) get ln 10."""
    out = np.full(epochs, CHANCE_LOSS)
    for e, value in zip(epoch, values):
        if float(e).is_integer() and 1 <= e <= epochs and math.isfinite(value):
            out[int(e) - 1] = value
    return out


def val_loss_per_epoch(runs: Runs, arm: str, epochs: int) -> list[np.ndarray]:
    """Each seed's validation loss at the end of epochs 1..epochs (:func:`per_epoch`; a run
    that diverged before its first evaluation logged nothing: chance throughout)."""
    out = []
    for record in runs.records[arm]:
        history = runs.store.metrics(record.id, ["val_loss", "epoch"])
        if history:  # evaluations are logged together, so both keys share their steps
            out.append(per_epoch(history["epoch"][1], history["val_loss"][1], epochs))
        else:
            out.append(np.full(epochs, CHANCE_LOSS))
    return out


def within(a, b, tolerance: float, what: str) -> Check:
    """Equivalence: the 95% bootstrap CI of mean(a) − mean(b) lies inside ±tolerance."""
    diff, (lo, hi) = diff_ci(a, b)
    holds = bool(math.isfinite(lo) and -tolerance < lo and hi < tolerance)
    return Check(
        holds,
        diff,
        (lo, hi),
        f"{what} = {diff:.4g}, 95% CI [{lo:.4g}, {hi:.4g}] {'inside' if holds else 'not inside'} ±{tolerance:g}",
    )


def _run(ctx: Context) -> Outcome:
    s = sizes(ctx.quick)
    configs = {arm: config(arm, ctx.quick) for arm in ARMS}
    runs = sweep(ctx, NAME, configs)
    curves = {arm: val_loss_per_epoch(runs, arm, s["epochs"]) for arm in ARMS}
    status = {arm: runs.status(arm) for arm in ARMS}
    # a diverged run scores chance; a completed one its final test accuracy
    test_acc = {
        arm: [acc if st == "completed" else 1.0 / 10 for acc, st in zip(runs.final(arm, "test_acc"), status[arm])]
        for arm in ARMS
    }
    lrs = {arm: SMALL_LR * cfg["data"]["batch_size"] / SMALL_BATCH for arm, cfg in configs.items()}
    early = {arm: [float(c[: s["warmup_epochs"]].mean()) for c in curves[arm]] for arm in ARMS}
    small, cold, warm = ARMS
    fails = greater(
        early[cold],
        early[small],
        margin=EARLY_MARGIN,
        what=f"mean val loss over epochs 1–{s['warmup_epochs']} (large, no warm-up) − (small batch)",
    )
    matches = within(
        test_acc[warm], test_acc[small], MATCH_TOLERANCE, what="final test accuracy (large + warm-up) − (small batch)"
    )
    k = s["large_batch"] // SMALL_BATCH
    notes = ""
    if not any(x == "diverged" for x in status[cold]):
        notes = (
            f"No run without warm-up diverged: at k = {k} the large batch is slower over the first epochs "
            f"(test accuracy at the end {np.mean(test_acc[cold]):.3f} vs {np.mean(test_acc[small]):.3f} for the small batch), "
            "not unstable; the warm-up, which starts from the small-batch rate, is slower still over the same epochs."
        )
    rows = [
        [
            arm,
            SMALL_BATCH if arm == small else s["large_batch"],
            f"{lrs[arm]:g}",
            mean_std(early[arm]),
            mean_std([c[-1] for c in curves[arm]]),
            mean_std(test_acc[arm]),
            sum(x == "diverged" for x in status[arm]),
        ]
        for arm in ARMS
    ]
    holds, statement = all_hold(fails, matches)
    return Outcome(
        holds=holds,
        statement=statement,
        figures={
            "k": k,
            "lr": lrs,
            "epochs": s["epochs"],
            "warmup_epochs": s["warmup_epochs"],
            "val_loss_per_epoch": {arm: [c.tolist() for c in curves[arm]] for arm in ARMS},
            "early_val_loss": early,
            "test_acc": test_acc,
            "status": status,
            "checks": {"fails_early": fails.as_dict(), "matches": matches.as_dict()},
        },
        tables=[
            (
                f"Small batch vs k = {k} times larger (mean ± std over seeds; diverged runs count as chance, ln 10)",
                [
                    "arm",
                    "batch",
                    "lr",
                    f"val loss, epochs 1–{s['warmup_epochs']}",
                    "final val loss",
                    "test acc",
                    "diverged",
                ],
                rows,
            )
        ],
        notes=notes,
        plots=[
            (
                "Validation loss per epoch: mean over seeds, 95% band (Goyal et al. Fig. 2)",
                _curve_svg(curves, s["warmup_epochs"]),
            )
        ],
    )


def _curve_svg(curves: dict[str, list[np.ndarray]], warmup_epochs: int) -> str:
    from trainlab.report.plots import band_figure, figure_to_svg

    series = {arm: [(np.arange(1, len(c) + 1), c) for c in runs] for arm, runs in curves.items()}
    fig = band_figure(
        series,
        title="Linear scaling rule with and without warm-up",
        ylabel="validation loss",
        xlabel="epoch",
        log_y=True,
    )
    ax = fig.axes[0]
    ax.axvspan(0, warmup_epochs, color="#bbbbbb", alpha=0.25, label="warm-up")
    ax.legend(fontsize=7)
    return figure_to_svg(fig)


EXPERIMENT = Experiment(
    name=NAME,
    claim="With the learning rate scaled linearly with the batch size, a large batch fails early without warm-up and matches the small-batch result with gradual warm-up.",
    source="000 §7.2.2 线性缩放规则, §7.2.3 逐渐预热, 习题 7-1; Goyal et al. 2017 §2.1–2.2, Fig. 2",
    run=_run,
    default_seeds=5,
    quote=(
        '000 §7.2.2: "Batch Size 较小时候可以采用线性缩放规则（Linear Scaling Rule）：Batch Size 和学习率同比率增大 [Goyal et al., 2017]"; §7.2.3: "逐渐预热（Gradual Warmup）… α\'_t = t/T\' α0". Goyal et al. (2017) §2.1: "Linear Scaling Rule: When the minibatch size is multiplied by k, multiply the learning rate by k." §2.2 and Fig. 2 (paraphrased): without warm-up the large batch\'s early training error is much higher; with gradual warm-up its training curve closely matches the small batch\'s after a few epochs, and the final error matches.'
    ),
    protocol=(
        Protocol("model", "MLP 40 → 100 → 100 → 10, ReLU", "ResNet-50", "CPU scale"),
        Protocol("data", "MNIST-1D", "ImageNet", "CPU scale"),
        Protocol("batches", "32 vs 512 (k = 16)", "256 vs 8192 (k = 32)", "the training set has 3600 samples"),
        Protocol(
            "optimizer",
            "SGD momentum 0.9, η = 0.03 (best of 4 at batch 32), kη = 0.48, constant",
            "SGD momentum 0.9, η = 0.1 · kn/256, step decay",
            "no decay, so the warm-up's effect is not mixed with the schedule's",
        ),
        Protocol("warm-up", "linear from η to kη over 5 epochs", "linear from η to kη over 5 epochs"),
        Protocol("budget", "40 epochs for every arm", "90 epochs", "CPU budget; equal epochs as theirs"),
        Protocol(
            "metric",
            "early: validation loss over epochs 1–5; final: test accuracy within ±2 points",
            "training error curves (Fig. 2) and final validation error (Table 1)",
        ),
        Protocol("runs", "5 seeds", "repeated runs, mean ± std (Table 1)"),
    ),
)
