"""Dropout narrows the train/validation gap on a small training set, and MC dropout is less certain off the data.

Source: 000 §7.7.4 (丢弃法, Srivastava et al. 2014: train ``m ⊙ x``, test ``p x``, keep rate
p = 0.5 best for hidden units; the Bayesian reading ``E_q[y] ≈ (1/M) Σ_m f(x, θ_m)``); 001
(Dropout 正则化效果); 002, 003. trainlab's dropout is torch's inverted form with the *drop*
probability (``[model] dropout = 0.5`` is the notes' keep rate p = 0.5): train
``m ⊙ x / p``, test ``x`` — the same network up to a rescaling of the next layer's weights
(docs/regularization.md). MC dropout (Gal & Ghahramani 2016): keep dropout on at test time
and average M = 50 passes, :func:`trainlab.nn.mc_predict`.

Set-up: the first 500 MNIST-1D training samples (a small set an MLP overfits), MLP 40 → 256
→ 256 → 10 (ReLU), dropout 0 or 0.5 after each hidden layer, Adam lr 1e-3, batch 50, 150
epochs (1500 steps).

Measured, per seed:

- gap = training accuracy (eval mode, on the 500 samples) − validation accuracy (400 samples);
- on the dropout net, the MC uncertainty of an input: the standard deviation over the M
  passes of the probability of the class the mean prediction picks, averaged over inputs —
  on the 1000 test samples (in distribution) and on 1000 out-of-distribution inputs: Gaussian
  noise with the training data's per-feature mean and standard deviation (the right scale,
  no digit).

Claims (95% CIs over seeds, margins fixed before running): dropout lowers the gap by more
than 5 points; the MC uncertainty on the noise inputs is more than 1.1 times the one on
test digits.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from trainlab.nn import mc_predict
from trainlab.reproduce import Context, Experiment, Outcome
from trainlab.reproduce._measure import accuracy, mean_std
from trainlab.reproduce.checks import all_hold, greater, less
from trainlab.train import run, setup

NAME = "dropout"
DROP = 0.5  # the notes' keep rate p = 0.5 for hidden units
MC_SAMPLES = 50
GAP_MARGIN = 0.05  # dropout narrows the gap by more than five points: chosen before running
OOD_MARGIN = 0.1  # OOD uncertainty more than 1.1 x the in-distribution one
ARMS = {"no dropout": 0.0, f"dropout {DROP:g}": DROP}


def config(drop: float, seed: int, quick: bool) -> dict[str, Any]:
    return {
        "name": f"{NAME}/drop={drop:g}",
        "seed": seed,
        "data": {"name": "mnist1d", "batch_size": 50, "subset": 200 if quick else 500},
        "model": {"name": "mlp", "hidden": [256, 256], "activation": "relu", "dropout": drop},
        "optim": {"name": "adam", "lr": 1e-3},
        "train": {"epochs": 40 if quick else 150, "threads": 1},  # one thread: tiny models on shared cores
    }


def noise_like(x: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` inputs of Gaussian noise with ``x``'s per-feature mean and standard deviation."""
    mean, std = x.mean(0), x.std(0)
    return mean + std * torch.randn((n, *x.shape[1:]), generator=generator, dtype=x.dtype)


def mc_uncertainty(model: torch.nn.Module, x: torch.Tensor, samples: int = MC_SAMPLES) -> np.ndarray:
    """Per input: the MC standard deviation of the probability of the mean prediction's class."""
    with torch.no_grad():
        mean, std = mc_predict(model, x, samples=samples)
    return std.gather(1, mean.argmax(1, keepdim=True)).squeeze(1).double().numpy()


def _run(ctx: Context) -> Outcome:
    data = setup(config(0.0, 0, ctx.quick)).data  # the split and subset are the same for every seed
    metrics: dict[str, dict[str, list[float]]] = {arm: {"train_acc": [], "val_acc": [], "test_acc": [], "gap": []} for arm in ARMS}
    curves: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {f"{arm}: {split}": [] for arm in ARMS for split in ("train loss", "val loss")}
    uncertainty: dict[str, list[np.ndarray]] = {"test digits": [], "noise inputs": []}
    for seed in range(ctx.seeds):
        for arm, drop in ARMS.items():
            ctx.log(f"{NAME}: {arm}, seed {seed}")
            result = run(config(drop, seed, ctx.quick), store=ctx.store, group=ctx.group(NAME))
            m = metrics[arm]
            m["train_acc"].append(accuracy(result.model, data.x_train, data.y_train))
            m["val_acc"].append(accuracy(result.model, data.x_val, data.y_val))
            m["test_acc"].append(result.final["test_acc"])
            m["gap"].append(m["train_acc"][-1] - m["val_acc"][-1])
            history = ctx.store.metrics(result.run_id, ["train_loss", "val_loss"])
            curves[f"{arm}: train loss"].append(history["train_loss"])
            curves[f"{arm}: val loss"].append(history["val_loss"])
            if drop > 0:
                generator = torch.Generator().manual_seed(seed)
                torch.manual_seed(seed)  # the MC masks
                uncertainty["test digits"].append(mc_uncertainty(result.model, data.x_test))
                uncertainty["noise inputs"].append(mc_uncertainty(result.model, noise_like(data.x_train, len(data.x_test), generator)))
    none, dropped = ARMS
    ratio = [float(o.mean() / i.mean()) for o, i in zip(uncertainty["noise inputs"], uncertainty["test digits"])]
    gap = less(metrics[dropped]["gap"], metrics[none]["gap"], margin=GAP_MARGIN, what="train - val accuracy gap, dropout - none")
    ood = greater(ratio, [1.0], margin=OOD_MARGIN, what="MC uncertainty ratio (noise / test digits) - 1")
    holds, statement = all_hold(gap, ood)
    rows = [[arm] + [mean_std(m[k]) for k in ("train_acc", "val_acc", "gap", "test_acc")] for arm, m in metrics.items()]
    mean_uncertainty = {k: [float(v.mean()) for v in vs] for k, vs in uncertainty.items()}
    return Outcome(
        holds=holds,
        statement=statement,
        figures={
            "drop": DROP,
            "mc_samples": MC_SAMPLES,
            **metrics,
            "mc_uncertainty": mean_uncertainty,
            "uncertainty_ratio": ratio,
            "checks": {"gap": gap.as_dict(), "ood": ood.as_dict()},
        },
        tables=[
            (
                "Accuracy on the 500 training samples (eval mode), validation and test (mean ± std over seeds)",
                ["model", "train acc", "val acc", "gap", "test acc"],
                rows,
            ),
            (
                f"MC-dropout uncertainty (std of the predicted class's probability over {MC_SAMPLES} passes; "
                "mean over inputs, mean ± std over seeds)",
                ["inputs", "uncertainty"],
                [[k, mean_std(v, 4)] for k, v in mean_uncertainty.items()],
            ),
        ],
        plots=_plots(curves, uncertainty),
    )


def _plots(curves: dict[str, list[tuple[np.ndarray, np.ndarray]]], uncertainty: dict[str, list[np.ndarray]]) -> list[tuple[str, str]]:
    from trainlab.report.plots import COLORS, band_figure, figure_to_svg, new_figure

    losses = band_figure(curves, title="Training and validation loss", ylabel="cross-entropy", log_y=True)
    fig, ax = new_figure(5.2, 3.4)
    bins = np.linspace(0.0, max(float(np.concatenate(v).max()) for v in uncertainty.values()), 40)
    for i, (label, values) in enumerate(uncertainty.items()):
        ax.hist(np.concatenate(values), bins=bins, histtype="step", density=True, linewidth=1.4, color=COLORS[i], label=label)
    ax.set_xlabel("MC std of the predicted class's probability")
    ax.set_ylabel("density")
    ax.set_title("MC-dropout uncertainty per input, all seeds", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    return [
        (
            "Without dropout the validation loss turns up while the training loss keeps falling (train loss: dropout on, as trained)",
            figure_to_svg(losses),
        ),
        ("Noise inputs get more spread across the dropout masks than test digits", figure_to_svg(fig)),
    ]


EXPERIMENT = Experiment(
    name=NAME,
    claim="On a small training set, dropout narrows the gap between training and validation accuracy; MC dropout is more uncertain on out-of-distribution inputs.",
    source="000 §7.7.4 丢弃法 (Srivastava et al. 2014; Bayesian reading, Gal & Ghahramani 2016); 001 Dropout; 002; 003",
    run=_run,
    default_seeds=5,
)
