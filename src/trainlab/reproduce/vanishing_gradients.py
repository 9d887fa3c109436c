"""Vanishing gradients: per-layer gradient norms of a deep sigmoid net vs a ReLU net, and SELU
with LeCun-normal init keeping its activations normalized.

Source: 003 (梯度消失和梯度爆炸: "隐藏层数过多/采用了不合适的激活函数 → 换用 ReLU"), 004 (梯度消失:
"激活函数导数太小(<1),压缩误差"; Selu: "两个连续层之间保留输入均值、方差", with lecun_normal);
Glorot & Bengio 2010 §4 (the per-layer picture); Klambauer et al. 2017 (arXiv:1706.02515)
Theorem 1: for weights with Σw = 0 and Σw² = 1 (lecun_normal in expectation) the SELU map
(mean, var) → (mean, var) has the attracting fixed point (0, 1).

Backpropagation multiplies the error by Wᵀ and f'(z) at each layer, δ^(l−1) = f'(z^(l−1)) ⊙
(W^(l))ᵀ δ^(l) (000 §7.3.3): the logistic function's slope is at most ¼, so with weights of
the notes' Xavier scale for sigmoid (gain 4: var(w) = 16 · 2/(M+M)) the error still shrinks by
about 4 · E[σ'(z)] < 1 per layer; ReLU's slope is 1 on half the units, which He init's factor
2 compensates.

Set-up: MNIST-1D standardized, MLP 40 → 20 × [100] → 10, zero biases, three arms: sigmoid +
``xavier_normal`` (the notes' gain 4), ReLU + ``he_normal``, SELU + ``lecun_normal``. At init, on
the first 512 training samples: the gradient norm of each layer's parameters and the mean/std
of each layer's output (LayerStats). Then each trains with SGD (lr 0.01, momentum 0.9, batch
128) for 10 epochs (quick: 1000 samples, 3 epochs) with LayerStats every 10 steps, to show the
gradient picture during training and who learns — not part of the claim. The training runs are
one sweep (:mod:`trainlab.reproduce.sweep`: resumable by config hash, parallel with ``--jobs``),
each run alone rather than in a population, since ``diagnose.stats_every`` hooks a model per
run; the measurement at init is made on each run's own config and seed, so on the weights that
run started from.

Claim (95% bootstrap CIs over seeds; margins fixed before running), with
g = log10(‖∂L/∂θ_1‖ / ‖∂L/∂θ_20‖):
  in the sigmoid net the gradient vanishes towards the input: g < −2 (over 100× smaller);
  in the ReLU + He net it does not: |g| < 1 (within 10×);
  SELU + lecun_normal keeps the last hidden layer normalized: |mean| < 0.2 and |std − 1| < 0.2.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from trainlab.diagnose.stats import PREFIX
from trainlab.reproduce import Context, Experiment, Outcome, Protocol
from trainlab.reproduce._measure import mean_std
from trainlab.reproduce._profile import init_profile, log10_ratio, per_layer_figure
from trainlab.reproduce.checks import Check, all_hold, less
from trainlab.reproduce.sweep import sweep

NAME = "vanishing-gradients"
DEPTH = 20
WIDTH = 100
STATS_EVERY = 10
# arm -> (activation, init scheme)
ARMS: dict[str, tuple[str, str]] = {
    "sigmoid + Xavier": ("sigmoid", "xavier_normal"),
    "ReLU + He": ("relu", "he_normal"),
    "SELU + LeCun": ("selu", "lecun_normal"),
}
HEATMAPS = ("sigmoid + Xavier", "ReLU + He")  # the arms whose gradients during training are shown
VANISH = 2.0  # g below −2: "vanishes"
KEEP = 1.0  # |g| below 1: "does not vanish (or explode)"
SELU_BAND = 0.2  # |mean| and |std − 1| of the last layer: "normalized"


def config(arm: str, quick: bool) -> dict[str, Any]:
    """The training run of one arm (without seed and name: :func:`~trainlab.reproduce.sweep.sweep` adds them)."""
    activation, scheme = ARMS[arm]
    return {
        "data": {
            "name": "mnist1d",
            "batch_size": 128,
            "preprocess": "standardize",
            **({"subset": 1000} if quick else {}),
        },
        "model": {"name": "mlp", "hidden": [WIDTH] * DEPTH, "activation": activation, "init": scheme},
        "optim": {"name": "sgd", "lr": 0.01, "momentum": 0.9},
        "train": {"epochs": 3 if quick else 10, "threads": 1},
        "diagnose": {"stats_every": STATS_EVERY},
    }


def grad_norm_history(store, run_id: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, matrix layers × steps) of each hidden layer's gradient norm recorded during a run."""
    keys = [f"{PREFIX}blocks.{i}.layer/grad_norm" for i in range(DEPTH)]
    metrics = store.metrics(run_id, keys)
    steps = metrics[keys[0]][0]
    return steps, np.stack([metrics[k][1] for k in keys])


def _run(ctx: Context) -> Outcome:
    runs = sweep(ctx, NAME, {arm: config(arm, ctx.quick) for arm in ARMS})
    # the measurement at init: each run's own config (its seed), so the weights it started from
    profiles = {a: [init_profile(r.config) for r in runs.records[a]] for a in ARMS}
    g = {a: [log10_ratio(p["grad_norm"][0], p["grad_norm"][-1]) for p in profiles[a]] for a in ARMS}
    val_acc = {a: runs.completed(a, "val_acc", otherwise=0.1) for a in ARMS}  # a diverged run: chance
    curves = {a: runs.metric(a, "val_acc") for a in ARMS}
    histories = {a: grad_norm_history(ctx.store, runs.records[a][0].id) for a in HEATMAPS}  # the first seed's
    selu_mean = [abs(p["act_mean"][-1]) for p in profiles["SELU + LeCun"]]
    selu_std_dev = [abs(p["act_std"][-1] - 1) for p in profiles["SELU + LeCun"]]
    checks: dict[str, Check] = {
        "sigmoid_vanishes": less(g["sigmoid + Xavier"], [0.0], margin=VANISH, what="g(sigmoid)"),
        "relu_keeps": less([abs(v) for v in g["ReLU + He"]], [0.0], margin=-KEEP, what="|g(ReLU)|"),
        "selu_mean": less(selu_mean, [0.0], margin=-SELU_BAND, what="|mean₂₀(SELU)|"),
        "selu_std": less(selu_std_dev, [0.0], margin=-SELU_BAND, what="|std₂₀(SELU) − 1|"),
    }
    rows = [
        [
            arm,
            mean_std(g[arm], 2),
            mean_std([p["act_mean"][-1] for p in profiles[arm]]),
            mean_std([p["act_std"][-1] for p in profiles[arm]]),
            mean_std(val_acc[arm]),
        ]
        for arm in ARMS
    ]
    holds, statement = all_hold(*checks.values())
    return Outcome(
        holds=holds,
        statement=statement,
        figures={
            "depth": DEPTH,
            "width": WIDTH,
            "grad_norm": {a: [p["grad_norm"] for p in profiles[a]] for a in ARMS},
            "act_mean": {a: [p["act_mean"] for p in profiles[a]] for a in ARMS},
            "act_std": {a: [p["act_std"] for p in profiles[a]] for a in ARMS},
            "log10_grad_ratio": g,
            "val_acc": val_acc,
            "checks": {k: c.as_dict() for k, c in checks.items()},
        },
        tables=[
            (
                f"At init (g = log10 ‖∂L/∂θ₁‖/‖∂L/∂θ₂₀‖; mean/std of layer {DEPTH}'s output), and after training; mean ± std over seeds",
                ["arm", "g", f"act mean, layer {DEPTH}", f"act std, layer {DEPTH}", "final val acc"],
                rows,
            )
        ],
        plots=_plots(profiles, curves, histories),
    )


def _plots(profiles, curves, histories) -> list[tuple[str, str]]:
    from trainlab.report.plots import band_figure, figure_to_svg, heatmap_figure

    grads = per_layer_figure(
        {a: [p["grad_norm"] for p in profiles[a]] for a in ARMS},
        title="Gradient norm of each layer at init",
        ylabel="‖∂L/∂θ_l‖",
    )
    stds = per_layer_figure(
        {a: [p["act_std"] for p in profiles[a]] for a in ARMS},
        title="Std of each layer's output at init",
        ylabel="activation std",
    )
    plots = [
        ("Gradient norm per layer at init (solid: geometric mean over seeds, faint: each seed)", figure_to_svg(grads)),
        ("Activation std per layer at init: SELU + LeCun stays near 1", figure_to_svg(stds)),
    ]
    for arm in HEATMAPS:
        steps, matrix = histories[arm]
        fig = heatmap_figure(
            steps,
            [f"layer {i + 1}" for i in range(DEPTH)],
            matrix,
            title=f"{arm}: gradient norm per layer during training (log colour)",
            log=True,
        )
        plots.append((f"{arm}, seed 0: ‖∂L/∂θ_l‖ every {STATS_EVERY} steps", figure_to_svg(fig)))
    acc = band_figure({a: curves[a] for a in ARMS}, title=f"{DEPTH}-layer MLPs on MNIST-1D", ylabel="val accuracy")
    plots.append(("Validation accuracy while training (mean, 95% band) — not part of the claim", figure_to_svg(acc)))
    return plots


EXPERIMENT = Experiment(
    name=NAME,
    claim="In a 20-layer sigmoid MLP the gradient vanishes towards the input (over 100× smaller at layer 1 than at layer 20) while a ReLU + He net keeps it within 10×; SELU with LeCun-normal init keeps the activations near mean 0, std 1.",
    source="003 梯度消失和梯度爆炸; 004 梯度消失, Selu; Glorot & Bengio 2010; Klambauer et al. 2017 Thm. 1",
    run=_run,
    quote=(
        '003 梯度消失和梯度爆炸: "梯度消失 原因：隐藏层数过多/采用了不合适的激活函数 - 换用Relu激活函数 - BatchNormalization - 残差结构". Glorot & Bengio (2010) §4 (paraphrased): with the standard init, back-propagated gradients of sigmoid/tanh nets shrink towards the input layers. Klambauer et al. (2017) Theorem 1: SELU with normalized weights maps (mean, variance) towards the fixed point (0, 1).'
    ),
    protocol=(
        Protocol(
            "model",
            "MLP 40 → 20 × [100] → 10: sigmoid + Xavier (gain 4), ReLU + He, SELU + LeCun normal",
            "Glorot: 5-layer nets of 1000 units; Klambauer: SNNs up to 32 layers",
            "deeper than Glorot's nets so the effect is large on a log scale",
        ),
        Protocol(
            "data",
            "MNIST-1D, standardized, 512 samples at init",
            "Shapeset-3×2 and others (Glorot); UCI, Tox21, HTRU2 (Klambauer)",
            "CPU scale",
        ),
        Protocol(
            "metric",
            "g = log10 ‖∂L/∂θ₁‖/‖∂L/∂θ₂₀‖ at init; SELU: mean and std of the last hidden layer",
            "per-layer histograms of back-propagated gradients (Glorot Fig. 7); the fixed point (Klambauer)",
        ),
        Protocol("runs", "3 seeds", "single nets"),
    ),
)
