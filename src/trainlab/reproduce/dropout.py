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

Also shown, without a verdict: the ensemble of dropout subnetworks as notes 003 define it —
the renormalized geometric mean of the subnetworks' predictive distributions
(:func:`trainlab.nn.geometric_mean_predict`, over the same M sampled masks) — beside the
weight-scaling inference rule that approximates it in one pass (``model.eval()``): their
test accuracy, test cross-entropy, and the share of test inputs on which they pick the same
class. The rule is exact for a softmax regression (tests/nn/test_dropout.py enumerates every
mask); with two ReLU layers between the masks and the softmax it is an approximation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from trainlab.nn import geometric_mean_predict, mc_predict
from trainlab.reproduce import Context, Experiment, Outcome, Protocol
from trainlab.reproduce._measure import accuracy, mean_std
from trainlab.reproduce.checks import all_hold, greater, less
from trainlab.reproduce.sweep import sweep
from trainlab.train import setup

NAME = "dropout"
DROP = 0.5  # the notes' keep rate p = 0.5 for hidden units
MC_SAMPLES = 50
GAP_MARGIN = 0.05  # dropout narrows the gap by more than five points: chosen before running
OOD_MARGIN = 0.1  # OOD uncertainty more than 1.1 x the in-distribution one
ARMS = {"no dropout": 0.0, f"dropout {DROP:g}": DROP}


def config(drop: float, quick: bool) -> dict[str, Any]:
    return {
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


def ensemble_vs_weight_scaling(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, samples: int = MC_SAMPLES
) -> dict[str, float]:
    """Test accuracy and cross-entropy of the geometric-mean ensemble of ``samples`` dropout
    subnetworks and of the weight-scaling rule (eval mode), and how often they agree."""
    with torch.no_grad():
        ensemble = geometric_mean_predict(model, x, samples=samples).double()
        model.eval()
        scaled = model(x).softmax(-1).double()
    picks = {"geometric mean": ensemble.argmax(1), "weight scaling": scaled.argmax(1)}
    out = {f"{k} acc": float((v == y).double().mean()) for k, v in picks.items()}
    for k, p in (("geometric mean", ensemble), ("weight scaling", scaled)):
        out[f"{k} nll"] = float(-p.gather(1, y[:, None]).clamp_min(1e-300).log().mean())
    out["agreement"] = float((picks["geometric mean"] == picks["weight scaling"]).double().mean())
    return out


def _run(ctx: Context) -> Outcome:
    data = setup({**config(0.0, ctx.quick), "seed": 0}).data  # the split and subset are the same for every seed
    metrics: dict[str, dict[str, list[float]]] = {
        arm: {"train_acc": [], "val_acc": [], "test_acc": [], "gap": []} for arm in ARMS
    }
    curves: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {
        f"{arm}: {split}": [] for arm in ARMS for split in ("train loss", "val loss")
    }
    uncertainty: dict[str, list[np.ndarray]] = {"test digits": [], "noise inputs": []}
    ensemble: dict[str, list[float]] = {}
    runs = sweep(ctx, NAME, {arm: config(drop, ctx.quick) for arm, drop in ARMS.items()})
    for arm, drop in ARMS.items():
        m = metrics[arm]
        m["test_acc"] = runs.final(arm, "test_acc")
        for i in range(len(runs.seeds)):
            model = runs.model(arm, i)
            m["train_acc"].append(accuracy(model, data.x_train, data.y_train))
            m["val_acc"].append(accuracy(model, data.x_val, data.y_val))
            m["gap"].append(m["train_acc"][-1] - m["val_acc"][-1])
        curves[f"{arm}: train loss"] = runs.metric(arm, "train_loss")
        curves[f"{arm}: val loss"] = runs.metric(arm, "val_loss")
        if drop > 0:
            for i, seed in enumerate(runs.seeds):
                model = runs.model(arm, i)
                generator = torch.Generator().manual_seed(seed)
                torch.manual_seed(seed)  # the MC masks
                uncertainty["test digits"].append(mc_uncertainty(model, data.x_test))
                uncertainty["noise inputs"].append(
                    mc_uncertainty(model, noise_like(data.x_train, len(data.x_test), generator))
                )
                torch.manual_seed(seed)  # the same masks for the geometric mean
                for k, v in ensemble_vs_weight_scaling(model, data.x_test, data.y_test).items():
                    ensemble.setdefault(k, []).append(v)
    none, dropped = ARMS
    ratio = [float(o.mean() / i.mean()) for o, i in zip(uncertainty["noise inputs"], uncertainty["test digits"])]
    gap = less(
        metrics[dropped]["gap"],
        metrics[none]["gap"],
        margin=GAP_MARGIN,
        what="train - val accuracy gap, dropout - none",
    )
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
            "ensemble_vs_weight_scaling": ensemble,
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
            (
                f"The dropout net's ensemble (003): the renormalized geometric mean of {MC_SAMPLES} sampled subnetworks "
                "beside the weight-scaling rule (eval mode), on the 1000 test samples (mean ± std over seeds; no verdict)",
                ["inference", "test acc", "test cross-entropy"],
                [
                    [k, mean_std(ensemble[f"{k} acc"]), mean_std(ensemble[f"{k} nll"])]
                    for k in ("geometric mean", "weight scaling")
                ]
                + [["same class picked", mean_std(ensemble["agreement"]), "—"]],
            ),
        ],
        plots=_plots(curves, uncertainty),
    )


def _plots(
    curves: dict[str, list[tuple[np.ndarray, np.ndarray]]], uncertainty: dict[str, list[np.ndarray]]
) -> list[tuple[str, str]]:
    from trainlab.report.plots import COLORS, band_figure, figure_to_svg, new_figure

    losses = band_figure(curves, title="Training and validation loss", ylabel="cross-entropy", log_y=True)
    fig, ax = new_figure(5.2, 3.4)
    bins = np.linspace(0.0, max(float(np.concatenate(v).max()) for v in uncertainty.values()), 40)
    for i, (label, values) in enumerate(uncertainty.items()):
        ax.hist(
            np.concatenate(values),
            bins=bins,
            histtype="step",
            density=True,
            linewidth=1.4,
            color=COLORS[i],
            label=label,
        )
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
    quote=(
        '000 §7.7.4: "丢弃法（Dropout Method）[Srivastava et al., 2014]：训练时随机丢弃一部分神经元" — train m ⊙ x, test p x; '
        '"对于隐藏层神经单元，保留率 p 取 0.5 效果最好". 003 §Dropout: the ensemble is the renormalized geometric mean '
        'p_ensemble(y|x) ∝ (Π_μ p(y|x,μ))^(1/2^d), approximated by "权重比例推断规则"; "在训练样本极少时，Dropout不会很有效". '
        "Srivastava et al. (2014) §6–7: dropout reduces overfitting (test error) on small and large data sets. "
        "Gal & Ghahramani (2016) §5: MC dropout's predictive variance expresses model uncertainty (paraphrased)."
    ),
    protocol=(
        Protocol(
            "data",
            "the first 500 MNIST-1D training samples",
            "Srivastava: MNIST, SVHN, CIFAR, TIMIT, … (full sets and, §7.3 Fig. 10, MNIST subsets of 100 to 50k samples)",
            "CPU scale; note that Srivastava et al. §7.3 report no gain from dropout on their smallest sets (100, 500 samples), "
            'and 003 says "在训练样本极少时，Dropout不会很有效": 500 samples is the regime where the source expects little',
        ),
        Protocol(
            "model",
            "MLP 40-256-256-10, ReLU, drop 0.5 after each hidden layer",
            "MLPs of 2–4 layers of 1024–8192 units, drop 0.5 hidden, 0.2 input, max-norm",
            "CPU scale; no input dropout and no max-norm (one knob at a time)",
        ),
        Protocol(
            "optimizer",
            "Adam lr 1e-3, batch 50, 150 epochs",
            "SGD with momentum, large decaying lr, max-norm c ∈ [3, 4]",
            "Adam needs no lr schedule to tune at this scale",
        ),
        Protocol(
            "metric",
            "train − validation accuracy gap; MC std ratio noise / test digits",
            "test error (Srivastava); predictive variance off the data (Gal & Ghahramani)",
            "the notes' claim is about overfitting, i.e. the gap",
        ),
        Protocol("runs", "5 seeds, 95% bootstrap CIs", "single runs / mean of several", ""),
    ),
)
