"""Input preprocessing and gradient descent: steps to a target loss on raw, standardized and
whitened features.

Source: 000 §7.4 (数据预处理): features of different scales make the training harder —
"梯度下降方向不指向最优解" — and the remedies: standardization x̂ = (x − μ)/σ (constant
features dropped, "标准差为0则说明该维特征没有区分性，可直接删掉") and whitening by PCA
("降低输入数据之间的冗余性，并使所有特征具有相同方差"). The classical reason (LeCun et al.
1998, "Efficient BackProp" §4.3; Nesterov 2004 Thm. 2.1.15): for a model linear in its inputs
the loss curvature is governed by the second-moment matrix A = E[x̃ x̃ᵀ] of the inputs with a
bias column, x̃ = (x, 1), and gradient descent needs ~κ(A) = λmax/λmin steps.

Set-up: the 8×8 digits (pixels in [0, 1]; border pixels constant or nearly so), a softmax
regression (``model.name = "linear"``, 64 → 10) trained by full-batch gradient descent
(``batch_size`` above the training-set size, no momentum), preprocessing fitted on the
training split: none, ``standardize``, ``pca`` and ``zca`` whitening. Each arm's step size
is the one theory prescribes rather than a tuned one: the softmax cross-entropy Hessian is
at most ½·A (λmax(diag p − ppᵀ) ≤ ½), so L = ½ λmax(A) bounds its curvature and
lr = 1/L = 2/λmax(A), computed on the preprocessed training inputs. Budget 3000 steps
(quick: 300 training samples, 300 steps); the seeds vary the initial weights. The arms × seeds
run as one sweep (:mod:`trainlab.reproduce.sweep`: resumable, ``--jobs``, each arm's seeds one
population), and each step's own training loss is recovered from the window means the runs
log every step (:func:`trainlab.reproduce._loss_curve.step_losses`).

Claim (95% bootstrap CIs over seeds; margins fixed before running), with T = the first step
whose training loss is ≤ 0.2 nats (a run that never gets there counts as the budget, which
can only understate the raw features' disadvantage):
  log2 T(raw) − log2 T(standardized) > 1 (standardizing at least halves the steps);
  log2 T(standardized) − log2 T(PCA-whitened) > 1 (whitening halves them again).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from trainlab.reproduce import Context, Experiment, Outcome, Protocol
from trainlab.reproduce._loss_curve import first_step_at_or_below, step_losses
from trainlab.reproduce._measure import mean_std
from trainlab.reproduce.checks import Check, all_hold, greater
from trainlab.reproduce.sweep import sweep
from trainlab.train import setup

NAME = "preprocessing"
ARMS: dict[str, str] = {"raw": "none", "standardized": "standardize", "PCA-whitened": "pca", "ZCA-whitened": "zca"}
TARGET_LOSS = 0.2  # nats: about 95% of the training digits classified with confidence
MARGIN = 1.0  # log2 steps: "at least twice as many"


def config(preprocess: str, quick: bool, lr: float = 1.0) -> dict[str, Any]:
    """One arm's run config (without seed and name). Its window is logged every step
    (``log_every = 1``) so that :func:`step_losses` recovers each step's own loss."""
    steps = 300 if quick else 3000
    return {
        "data": {"name": "digits", "batch_size": 4096, "preprocess": preprocess, **({"subset": 300} if quick else {})},
        "model": {"name": "linear"},
        "optim": {"name": "sgd", "lr": lr},
        "train": {"max_steps": steps, "log_every": 1, "eval_every": steps // 10, "threads": 1},
    }


def second_moment_spectrum(x: np.ndarray) -> np.ndarray:
    """Eigenvalues (ascending) of A = E[x̃ x̃ᵀ], x̃ = (x, 1): the curvature of a linear model's loss."""
    x = x.reshape(len(x), -1).astype(np.float64)
    x1 = np.hstack([x, np.ones((len(x), 1))])
    return np.linalg.eigvalsh(x1.T @ x1 / len(x1))


def condition_number(eigenvalues: np.ndarray, rtol: float = 1e-10) -> float:
    """λmax/λmin over the eigenvalues above ``rtol``·λmax: exactly-constant pixels span no
    direction the data moves in, so they do not slow gradient descent down."""
    top = float(eigenvalues[-1])
    return top / float(eigenvalues[eigenvalues > rtol * top].min())


def _inputs(preprocess: str, quick: bool) -> np.ndarray:
    with warnings.catch_warnings():  # the Standardizer reports the constant pixels it drops
        warnings.simplefilter("ignore", UserWarning)
        return setup({**config(preprocess, quick), "seed": 0}).data.x_train.numpy()


def _run(ctx: Context) -> Outcome:
    budget = config("none", ctx.quick)["train"]["max_steps"]
    spectra = {arm: second_moment_spectrum(_inputs(p, ctx.quick)) for arm, p in ARMS.items()}
    lrs = {arm: 2.0 / float(ev[-1]) for arm, ev in spectra.items()}
    kappa = {arm: condition_number(ev) for arm, ev in spectra.items()}
    with warnings.catch_warnings():  # the Standardizer reports the constant pixels it drops
        warnings.simplefilter("ignore", UserWarning)
        runs = sweep(ctx, NAME, {arm: config(p, ctx.quick, lrs[arm]) for arm, p in ARMS.items()})
    steps: dict[str, list[int]] = {arm: [] for arm in ARMS}
    reached: dict[str, list[bool]] = {arm: [] for arm in ARMS}
    final_loss: dict[str, list[float]] = {arm: [] for arm in ARMS}
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for arm in ARMS:
        for i, record in enumerate(runs.records[arm]):
            s, loss = step_losses(ctx.store, record.id)
            hit = first_step_at_or_below(s, loss, TARGET_LOSS)
            steps[arm].append(hit if hit is not None else budget)
            reached[arm].append(hit is not None)
            final_loss[arm].append(float(loss[-1]))
            if i == 0:
                curves[arm] = (s, loss)
    val_acc = {arm: runs.final(arm, "val_acc") for arm in ARMS}
    log2 = {arm: [float(np.log2(v)) for v in steps[arm]] for arm in ARMS}
    checks: dict[str, Check] = {
        "standardize": greater(
            log2["raw"], log2["standardized"], margin=MARGIN, what="log2 T(raw) − log2 T(standardized)"
        ),
        "whiten": greater(
            log2["standardized"],
            log2["PCA-whitened"],
            margin=MARGIN,
            what="log2 T(standardized) − log2 T(PCA-whitened)",
        ),
    }
    rows = [
        [
            arm,
            f"{kappa[arm]:.3g}",
            f"{lrs[arm]:.3g}",
            f"{np.mean(steps[arm]):.0f}"
            + (
                ""
                if all(reached[arm])
                else f" ({sum(reached[arm])}/{len(reached[arm])} reached; others count {budget})"
            ),
            mean_std(final_loss[arm], 4),
            mean_std(val_acc[arm]),
        ]
        for arm in ARMS
    ]
    holds, statement = all_hold(*checks.values())
    return Outcome(
        holds=holds,
        statement=statement,
        figures={
            "target_loss": TARGET_LOSS,
            "budget": budget,
            "condition_number": kappa,
            "lambda_max": {arm: float(ev[-1]) for arm, ev in spectra.items()},
            "lr": lrs,
            "steps_to_target": steps,
            "reached": reached,
            "final_train_loss": final_loss,
            "val_acc": val_acc,
            "checks": {k: c.as_dict() for k, c in checks.items()},
        },
        tables=[
            (
                f"Full-batch gradient descent with lr = 2/λmax(E[x̃x̃ᵀ]): steps to a training loss ≤ {TARGET_LOSS} nats (mean over seeds)",
                ["inputs", "κ(E[x̃x̃ᵀ])", "lr", "steps to target", "final train loss", "final val acc"],
                rows,
            )
        ],
        plots=_plots(curves, spectra),
    )


def _plots(curves: dict[str, tuple[np.ndarray, np.ndarray]], spectra: dict[str, np.ndarray]) -> list[tuple[str, str]]:
    from trainlab.report.plots import COLORS, figure_to_svg, new_figure

    fig, ax = new_figure(5.6, 3.6)
    for i, (arm, (s, loss)) in enumerate(curves.items()):
        ax.plot(s, loss, color=COLORS[i], linewidth=1.4, linestyle="--" if arm == "ZCA-whitened" else "-", label=arm)
    ax.axhline(TARGET_LOSS, color="#7f7f7f", linestyle=":", linewidth=1, label=f"target {TARGET_LOSS}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("gradient descent step")
    ax.set_ylabel("training loss (nats)")
    ax.set_title("Softmax regression on 8×8 digits, full batch, lr = 2/λmax", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    spec, ax2 = new_figure(5.6, 3.2)
    for i, (arm, ev) in enumerate(spectra.items()):
        ev = ev[::-1]
        ax2.plot(
            np.arange(1, len(ev) + 1),
            np.maximum(ev, 1e-12),
            color=COLORS[i],
            marker="o",
            markersize=2,
            linewidth=1,
            linestyle="--" if arm == "ZCA-whitened" else "-",
            label=arm,
        )
    ax2.set_yscale("log")
    ax2.set_xlabel("eigenvalue rank")
    ax2.set_ylabel("eigenvalue of E[x̃x̃ᵀ]")
    ax2.set_title("Curvature spectrum of the inputs (bias column included)", fontsize=10)
    ax2.grid(True, alpha=0.3)
    ax2.legend(fontsize=7)
    return [
        ("Training loss per step (seed 0); the whitened inputs reach the target first", figure_to_svg(fig)),
        (
            "Eigenvalues of the inputs' second-moment matrix: their spread (κ) sets how many steps gradient descent needs",
            figure_to_svg(spec),
        ),
    ]


EXPERIMENT = Experiment(
    name=NAME,
    claim="Gradient descent reaches a target loss in fewer steps on standardized than on raw features, and in fewer still on whitened ones.",
    source="000 §7.4 数据预处理; LeCun et al. 1998 (Efficient BackProp §4.3)",
    run=_run,
    quote=(
        '000 §7.4 数据预处理: "标准化 … x̂ = (x − μ)/σ"; "白化（Whitening）：降低输入数据之间的冗余性，并使所有特征具有相同方差。主要实现方式：主成分分析". LeCun et al. (1998), Efficient BackProp §4.3 (paraphrased): inputs whose mean is near zero, with equal variances and decorrelated, speed up gradient descent.'
    ),
    protocol=(
        Protocol(
            "model",
            "softmax regression on the 8×8 digits, full-batch GD at lr = 2/λmax(A)",
            "a linear unit / quadratic bowl (LeCun §4.3)",
            "the theory's own model",
        ),
        Protocol("metric", "log2 steps to a training loss of 0.2 nats", "convergence speed (condition number)"),
        Protocol("runs", "3 seeds (the initial weights)", "—"),
    ),
)
