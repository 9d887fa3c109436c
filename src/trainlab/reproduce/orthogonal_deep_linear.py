"""Deep linear nets: training time vs depth under orthogonal and scaled Gaussian initialization.

Source: 000 §7.3.3 (正交初始化): in a deep linear net y = W^(L) ⋯ W^(1) x the error propagates as
δ^(l−1) = (W^(l))ᵀ δ^(l), and orthogonal W keep ‖δ‖ unchanged ("范数保持性"); Saxe, McClelland &
Ganguli 2014 (arXiv:1312.6120): with orthogonal initial weights a deep linear net learns in a
time that does not grow with depth, while scaled random Gaussian weights (variance 1/N), whose
product has singular values spreading further apart with every layer, learn more slowly the
deeper the net.

Set-up: the first 1000 MNIST-1D training samples, standardized; ``model.name = "deep_linear"``
with N_l weight matrices 40 → 40 → ⋯ → 40 → 10, no biases, N_l ∈ {1, 2, 4, 8, 16, 32}
(quick: {1, 4, 16}); init ``orthogonal`` (gain 1: the net is linear) or ``lecun_normal``
(w ~ N(0, 1/fan_in), Saxe's scaled Gaussian). Full-batch gradient descent on the
cross-entropy (Saxe et al. use the squared error) for 600 steps (quick: 200), with
lr = 2 / (λmax(E[xxᵀ]) · N_l): 2/λmax is 1/L for the shallow softmax regression (its Hessian is
at most ½·E[xxᵀ]), and the 1/N_l because each of the N_l layers adds its own gradient term to
the change of the end-to-end map (Saxe et al. find the best learning rate falling as 1/N_l).
Time T = the first step whose training loss is at most halfway from ln 10 (a uniform
prediction) to L* = 1.622 nats, the lowest loss of a linear map on these samples (softmax
regression without intercept fitted to convergence, scikit-learn L-BFGS); a run that never
gets there counts as the budget, which can only understate a slow arm. The runs are one sweep
(:mod:`trainlab.reproduce.sweep`: resumable by config hash, parallel with ``--jobs``, each init
and depth's seeds one population); each step's own loss is recovered from the loss window the
runs log every step (:func:`~trainlab.reproduce._loss_curve.step_losses`).

Claim (95% bootstrap CIs over seeds; margins fixed before running), with D the deepest net:
  orthogonal init learns in about the same time at every depth: |log2 T_orth(D) − log2 T_orth(1)| < 1;
  scaled Gaussian init slows down with depth: log2 T_gauss(D) − log2 T_gauss(1) > 1;
  and at depth D it is slower than orthogonal: log2 T_gauss(D) − log2 T_orth(D) > 1.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from trainlab.reproduce import Context, Experiment, Outcome, Protocol
from trainlab.reproduce._loss_curve import first_step_at_or_below, step_losses
from trainlab.reproduce._measure import errorbars
from trainlab.reproduce.checks import Check, all_hold, greater, less
from trainlab.reproduce.sweep import sweep
from trainlab.train import setup

NAME = "orthogonal-deep-linear"
WIDTH = 40
SAMPLES = 1000
L_STAR = 1.622  # nats: softmax regression (no intercept) fitted to convergence on the 1000 samples
TARGET_LOSS = (math.log(10) + L_STAR) / 2
INITS = {"orthogonal": "orthogonal", "scaled Gaussian": "lecun_normal"}
MARGIN = 1.0  # log2 steps: a factor of 2


def depths(quick: bool) -> tuple[int, ...]:
    return (1, 4, 16) if quick else (1, 2, 4, 8, 16, 32)


def config(scheme: str, depth: int, quick: bool, lr: float = 0.1) -> dict[str, Any]:
    """The run of one init and depth (without seed and name: :func:`~trainlab.reproduce.sweep.sweep` adds them)."""
    budget = 200 if quick else 600
    return {
        "data": {"name": "mnist1d", "subset": SAMPLES, "batch_size": 4096, "preprocess": "standardize"},
        "model": {"name": "deep_linear", "hidden": [WIDTH] * (depth - 1), "bias": False, "init": scheme},
        "optim": {"name": "sgd", "lr": lr},
        # the loss window logged every step: step_losses recovers each step's own loss from it
        "train": {"max_steps": budget, "log_every": 1, "eval_every": budget // 4, "threads": 1},
    }


def label(arm: str, depth: int) -> str:
    return f"{arm}, depth {depth}"


def base_lr(quick: bool) -> float:
    """2/λmax(E[xxᵀ]) on the (standardized) training inputs: 1/L of the shallow softmax regression."""
    x = setup({**config("orthogonal", 1, quick), "seed": 0}).data.x_train.numpy().astype(np.float64)
    return 2.0 / float(np.linalg.eigvalsh(x.T @ x / len(x))[-1])


def _run(ctx: Context) -> Outcome:
    ds = depths(ctx.quick)
    lr0 = base_lr(ctx.quick)
    budget = config("orthogonal", 1, ctx.quick)["train"]["max_steps"]
    runs = sweep(
        ctx,
        NAME,
        {label(arm, d): config(scheme, d, ctx.quick, lr0 / d) for arm, scheme in INITS.items() for d in ds},
    )
    # arm -> depth -> per-seed log2 steps to target
    log2_t: dict[str, dict[int, list[float]]] = {arm: {d: [] for d in ds} for arm in INITS}
    reached: dict[str, dict[int, int]] = {arm: {d: 0 for d in ds} for arm in INITS}
    curves: dict[str, dict[int, tuple[np.ndarray, np.ndarray]]] = {arm: {} for arm in INITS}
    for arm in INITS:
        for d in ds:
            for i, record in enumerate(runs.records[label(arm, d)]):
                steps, loss = step_losses(ctx.store, record.id)
                hit = first_step_at_or_below(steps, loss, TARGET_LOSS) if record.status == "completed" else None
                log2_t[arm][d].append(math.log2(hit if hit is not None else budget))
                reached[arm][d] += hit is not None
                if i == 0:  # the first seed's curve is plotted
                    curves[arm][d] = (steps, loss)
    shallow, deep = ds[0], ds[-1]
    orth, gauss = log2_t["orthogonal"], log2_t["scaled Gaussian"]
    checks: dict[str, Check] = {
        "orthogonal_flat": less(
            [abs(a - b) for a, b in zip(orth[deep], orth[shallow])],
            [0.0],
            margin=-MARGIN,
            what=f"|log2 T_orth({deep}) − log2 T_orth({shallow})|",
        ),
        "gaussian_slows": greater(
            gauss[deep], gauss[shallow], margin=MARGIN, what=f"log2 T_gauss({deep}) − log2 T_gauss({shallow})"
        ),
        "gaussian_slower": greater(
            gauss[deep], orth[deep], margin=MARGIN, what=f"log2 T_gauss({deep}) − log2 T_orth({deep})"
        ),
    }
    rows = [
        [str(d), f"{lr0 / d:.4g}"]
        + [
            f"{np.mean(np.exp2(log2_t[arm][d])):.0f}"
            + ("" if reached[arm][d] == ctx.seeds else f" ({reached[arm][d]}/{ctx.seeds} reached)")
            for arm in INITS
        ]
        for d in ds
    ]
    holds, statement = all_hold(*checks.values())
    return Outcome(
        holds=holds,
        statement=statement,
        figures={
            "depths": list(ds),
            "target_loss": TARGET_LOSS,
            "budget": budget,
            "lr0": lr0,
            "log2_steps_to_target": {arm: {str(d): v for d, v in per.items()} for arm, per in log2_t.items()},
            "reached": {arm: {str(d): v for d, v in per.items()} for arm, per in reached.items()},
            "checks": {k: c.as_dict() for k, c in checks.items()},
        },
        tables=[
            (
                f"Steps of full-batch gradient descent to a training loss ≤ {TARGET_LOSS:.3f} nats (mean over seeds; budget {budget})",
                ["depth N_l", "lr", *INITS],
                rows,
            )
        ],
        plots=_plots(ds, log2_t, curves, budget),
    )


def _plots(ds, log2_t, curves, budget) -> list[tuple[str, str]]:
    from trainlab.report.plots import COLORS, figure_to_svg, new_figure

    fig, ax = new_figure(5.2, 3.4)
    errorbars(ax, ds, {arm: [np.exp2(np.asarray(log2_t[arm][d])) for d in ds] for arm in INITS})
    ax.axhline(budget, color="#7f7f7f", linestyle=":", linewidth=1, label="budget")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(ds, [str(d) for d in ds])
    ax.set_xlabel("depth (number of weight matrices)")
    ax.set_ylabel("steps to target loss")
    ax.set_title("Deep linear nets: training time vs depth", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    loss_fig, axes = new_figure(8.0, 3.2, ncols=2, sharey=True)
    for ax2, arm in zip(axes, INITS):
        for j, d in enumerate(ds):
            steps, loss = curves[arm][d]
            ax2.plot(steps, loss, color=COLORS[j % len(COLORS)], linewidth=1.2, label=f"depth {d}")
        ax2.axhline(TARGET_LOSS, color="#7f7f7f", linestyle=":", linewidth=1)
        ax2.set_xscale("log")
        ax2.set_xlabel("step")
        ax2.set_title(f"{arm} init", fontsize=10)
        ax2.grid(True, alpha=0.3)
    axes[0].set_ylabel("training loss (nats)")
    axes[1].legend(fontsize=7)
    return [
        (
            "Steps to the target loss by depth (mean ± std over seeds; a run that does not reach it counts as the budget)",
            figure_to_svg(fig),
        ),
        ("Training loss per step, seed 0 (dotted: the target)", figure_to_svg(loss_fig)),
    ]


EXPERIMENT = Experiment(
    name=NAME,
    claim="Deep linear nets initialized with orthogonal matrices learn in about the same number of steps at every depth, while scaled Gaussian initialization learns more slowly the deeper the net.",
    source="000 §7.3.3 正交初始化; Saxe, McClelland & Ganguli 2014",
    run=_run,
    quote=(
        '000 §7.3.3: "为避免梯度消失或梯度爆炸，希望在误差项反向传播中具有范数保持性 … 可以将 W^(l) 初始化为正交矩阵，即正交初始化". Saxe, McClelland & Ganguli (2014), abstract and the MNIST deep-linear experiments (paraphrased): random orthogonal initial conditions give depth-independent learning times, while scaled random Gaussian initializations learn more slowly as depth grows.'
    ),
    protocol=(
        Protocol(
            "model",
            "deep linear net 40 → 40 → … → 10, no biases, 1–32 weight matrices",
            "deep linear nets on MNIST",
            "CPU scale",
        ),
        Protocol(
            "loss",
            "softmax cross-entropy",
            "squared error",
            "the lab's classification loss; the dynamics argument does not depend on it qualitatively",
        ),
        Protocol(
            "optimizer",
            "full-batch GD, lr = 2/(λmax(E[xxᵀ]) · depth)",
            "GD with a learning rate chosen per depth (as we read §3)",
            "a rule fixed before running instead of a tuned lr per depth",
        ),
        Protocol(
            "inits",
            "orthogonal (gain 1), LeCun normal (variance 1/fan_in)",
            "random orthogonal, scaled Gaussian (variance 1/N)",
        ),
        Protocol(
            "metric",
            "T = steps until the training loss is halfway from ln 10 to the best linear map's loss",
            "time (epochs) to a training-error criterion",
        ),
        Protocol(
            "test",
            "orthogonal: |log2 T(32) − log2 T(1)| < 1; Gaussian: log2 T(32) − log2 T(1) > 1 (at least twice as slow)",
            "qualitative: flat vs growing with depth",
            "our margins (a factor 2) are fixed in code, stronger than the source's qualitative statement; not relaxed after the run",
        ),
        Protocol("runs", "3 seeds", "single curves"),
    ),
)
