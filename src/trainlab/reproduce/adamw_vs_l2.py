"""With Adam, L2 regularization is not weight decay: decoupled decay (AdamW) unties the best decay from the learning rate.

Source: Loshchilov & Hutter (2019), "Decoupled weight decay regularization" (ICLR), abstract,
§2–3, Algorithm 2 and Fig. 2; notes 000 §7.7.2 (权重衰减 ``θ_t ← (1 − β) θ_{t−1} − α g_t``:
"在 SGD 中，权重衰减与 l2 效果相同，在 Adam 等较复杂优化中，则不等价"); 001 (L2 / 权值衰减
``+ ½ λ ||w||²``). The two arms of the paper's Algorithm 2, both on weights only (biases
never decay, ``trainlab.optim.param_groups``), with the schedule multiplier η_t:

- Adam + L2 (``optim.name = "adam", weight_decay = λ``): ``g ← ∇L + λθ`` enters Adam's
  moments, so the step is ``η_t α m̂ / (√v̂ + ε)`` of the *penalized* gradient — the decay is
  scaled by α and divided by √v̂ like the gradient. The paper (§2, Fig. 2) reads this as λ
  coupled to α: the best λ should move as 1/α (a diagonal basin). (Where training converges,
  though, Adam + L2 settles near a minimum of L + ½λ||θ||², an objective α does not enter.)
- AdamW, the paper's form: ``θ ← θ − η_t (α m̂ / (√v̂ + ε) + λθ)`` — the decay per step is
  η_t λ whatever α is, so the paper expects the best λ not to move with α (an axis-aligned
  basin). (A weight whose decay balances Adam's steps of size ≈ α settles where λθ ≈ α m̂/√v̂,
  at a scale set by α/λ.) trainlab's (torch's) ``adamw`` applies ``θ ← (1 − η_t α λ') θ``,
  so the paper's λ is passed as ``weight_decay = λ / α`` (:func:`config`). The paper's claim
  is about *its* λ: in torch's λ' = λ/α every slope below is one less.

Set-up: MNIST-1D (3600 training, 400 validation, 1000 test samples), MLP 40 → 100 → 100 →
10 (ReLU), batch 100, 100 epochs (3600 steps) with cosine annealing of η_t from 1 to 0 (the
paper's schedule for Fig. 2, as we read §4.2), the grid of :data:`LRS` × each arm's λ grid
(log-spaced, half-decade steps, on each arm's own scale), every cell over the same seeds,
and no decay at all (λ = 0, plain Adam) at each α for reference. The whole grid trains as two
populations (one per optimizer; :mod:`trainlab.reproduce.sweep`), so it costs about as much
as the runs' arithmetic.

The coupling measure, per arm: for each α, the best λ by final validation accuracy averaged
over seeds — the grid's argmax refined to the vertex of the parabola through it and its two
neighbours in log λ (:func:`best_log_lambda`; at the grid's edge, the edge) — then the
least-squares slope of log best λ against log α (:func:`slope`). The paper's Fig. 2 expects
about −1 for Adam + L2 (λα fixed: the diagonal) and about 0 for AdamW (λ independent of α). Its 95% CI is a bootstrap over seeds (:func:`trainlab.reproduce.checks.bootstrap`: the
seeds resampled, each seed's whole grid kept together).

Claim (margins fixed in code before the full run): the best λ of Adam + L2 is coupled to the
learning rate — the CI of its slope lies below −½ (:data:`COUPLED_BELOW`) — and the best
decay of AdamW is not — the CI of its slope lies inside (−½, ½) (:data:`DECOUPLED_WITHIN`):
½ is halfway between the two expectations. Both must hold.

Also measured, outside the verdict: (a) the paper's secondary claim (Fig. 2–3; the claim this
experiment tested before): each arm's best cell over the whole grid by validation accuracy,
and the test accuracy of AdamW's minus Adam + L2's (bootstrap CI, margin 0); (b) a diagnostic
of the heat maps' shape that does not hang on one argmax: the *basin edge* of each α, the λ
where mean validation accuracy falls :data:`EDGE_DROP` below that α's best going up
(:func:`basin_edge`), and its slope against log α (−1: the edge moves as 1/α, 0: it stays,
+1: it moves as α, i.e. λ/α is what matters).

``--quick`` (2 α × 3 λ per arm, 10 epochs on 1000 samples) exercises the machinery in seconds;
it is far too small for the claim, and its verdict can differ from the full run's.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from trainlab.reproduce import Context, Experiment, Outcome, Protocol
from trainlab.reproduce._measure import mean_std
from trainlab.reproduce.checks import Check, all_hold, bootstrap, greater
from trainlab.reproduce.sweep import sweep

NAME = "adamw-vs-l2"
ARMS = {"Adam + L2": "adam", "AdamW": "adamw"}
LRS = (3e-4, 1e-3, 3e-3, 1e-2)  # Adam's α: 1.5 decades, half-decade steps
# each arm's λ on its own scale, 8 values in half-decade steps, wide enough for the best λ of every
# α to lie inside whether it moves as 1/α, stays, or moves as α; the low ends are as good as no
# decay, the high ends ruin training. Placed from two pilots on other seeds (100, 101) before the
# full run: on both, Adam + L2 collapses above λ ≈ 3e-2 and AdamW's good λ reach 1e-2 at α = 1e-2.
GRIDS = {
    "Adam + L2": tuple(10 ** (k / 2) for k in range(-9, -1)),  # 3.2e-5 … 1e-1 (L2 factor)
    "AdamW": tuple(10 ** (k / 2) for k in range(-10, -2)),  # 1e-5 … 3.2e-2 (the paper's decay per step)
}
QUICK_LRS = (1e-3, 1e-2)
QUICK_GRIDS = {"Adam + L2": (1e-4, 1e-3, 1e-2), "AdamW": (1e-5, 1e-4, 1e-3)}
EPOCHS, QUICK_EPOCHS = 100, 10
COUPLED_BELOW = -0.5  # Adam + L2's slope CI below −½: halfway between coupled (−1) and decoupled (0)
DECOUPLED_WITHIN = 0.5  # AdamW's slope CI inside (−½, ½)
EDGE_DROP = 0.05  # the diagnostic basin edge: accuracy 5 points below the row's best
CHANCE = 0.1  # the score of a run that diverged (no final accuracy): ten classes


def config(arm: str, lr: float, lam: float, quick: bool) -> dict[str, Any]:
    """One cell's run config (without seed and name): ``lam`` on the arm's own scale — the L2
    factor for Adam + L2, the paper's decay per step for AdamW (passed as λ/α, torch's form)."""
    optimizer = ARMS[arm]
    return {
        "data": {"name": "mnist1d", "batch_size": 100, **({"subset": 1000} if quick else {})},
        "model": {"name": "mlp", "hidden": [100, 100], "activation": "relu"},
        "optim": {"name": optimizer, "lr": lr, "weight_decay": lam / lr if optimizer == "adamw" else lam},
        "schedule": {"name": "cosine"},  # η_t from 1 to 0 over the run
        "train": {"epochs": QUICK_EPOCHS if quick else EPOCHS, "threads": 1},  # one thread: tiny models on shared cores
    }


def label(arm: str, lr: float, lam: float) -> str:
    return f"{arm} α={lr:g} λ={lam:g}"


def best_log_lambda(acc: np.ndarray, log_grid: np.ndarray) -> np.ndarray:
    """log10 of the best λ along the last axis of ``acc`` (accuracy over an evenly spaced
    ``log_grid``): the argmax (the first on ties) moved to the vertex of the parabola through
    it and its two neighbours, ``x_i + h (y_{i−1} − y_{i+1}) / (2 (y_{i−1} − 2 y_i + y_{i+1}))``,
    which lies within ±h/2 of x_i; at either end of the grid, the end itself."""
    acc = np.asarray(acc, dtype=np.float64)
    h = float(log_grid[1] - log_grid[0])
    i = acc.argmax(-1)
    inner = np.clip(i, 1, acc.shape[-1] - 2)
    take = lambda j: np.take_along_axis(acc, j[..., None], -1)[..., 0]  # noqa: E731
    lo, mid, hi = take(inner - 1), take(inner), take(inner + 1)
    curvature = lo - 2 * mid + hi
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(curvature < 0, h * (lo - hi) / (2 * curvature), 0.0)
    at_edge = (i == 0) | (i == acc.shape[-1] - 1)
    return np.asarray(log_grid)[i] + np.where(at_edge, 0.0, shift)


def slope(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares slope of ``y`` (last axis) against ``x``: Σ(x − x̄)(y − ȳ) / Σ(x − x̄)²."""
    x = np.asarray(x, dtype=np.float64)
    dx = x - x.mean()
    y = np.asarray(y, dtype=np.float64)
    return ((y - y.mean(-1, keepdims=True)) * dx).sum(-1) / (dx**2).sum()


def coupling(acc: np.ndarray, lrs, grid) -> np.ndarray:
    """The coupling slope of mean accuracy grids ``acc[..., α, λ]``: log10 best λ per α
    against log10 α."""
    return slope(np.log10(lrs), best_log_lambda(acc, np.log10(grid)))


def basin_edge(acc: np.ndarray, log_grid: np.ndarray, drop: float = EDGE_DROP) -> np.ndarray:
    """log10 of the λ where accuracy (last axis, over an evenly spaced ``log_grid``) first falls
    more than ``drop`` below its maximum, going up from the argmax — linear in log λ between the
    two grid points around the crossing; NaN where it never falls (the edge lies beyond the
    grid). The top edge of the heat map's good region: where decay becomes too strong."""
    acc = np.asarray(acc, dtype=np.float64)
    flat = acc.reshape(-1, acc.shape[-1])
    out = np.full(len(flat), np.nan)
    for r, row in enumerate(flat):
        i, level = int(row.argmax()), row.max() - drop
        below = np.nonzero(row[i:] < level)[0]
        if below.size:
            j = i + int(below[0])  # row[j − 1] ≥ level > row[j]
            t = (row[j - 1] - level) / (row[j - 1] - row[j])
            out[r] = log_grid[j - 1] + t * (log_grid[j] - log_grid[j - 1])
    return out.reshape(acc.shape[:-1])


def interval_check(value: float, ci: tuple[float, float], lo: float, hi: float, what: str) -> Check:
    """Holds when the whole CI lies inside (``lo``, ``hi``) (either may be ±inf)."""
    holds = bool(math.isfinite(ci[0]) and math.isfinite(ci[1]) and ci[0] > lo and ci[1] < hi)
    where = f"< {hi:g}" if lo == -math.inf else f"inside ({lo:g}, {hi:g})"
    statement = f"{what} = {value:.3g}, 95% CI [{ci[0]:.3g}, {ci[1]:.3g}] {'' if holds else 'not '}{where}"
    return Check(holds, value, ci, statement)


def _run(ctx: Context) -> Outcome:
    lrs = QUICK_LRS if ctx.quick else LRS
    grids = QUICK_GRIDS if ctx.quick else GRIDS
    configs = {label("no decay", lr, 0.0): config("Adam + L2", lr, 0.0, ctx.quick) for lr in lrs}
    for arm, grid in grids.items():
        configs.update({label(arm, lr, lam): config(arm, lr, lam, ctx.quick) for lr in lrs for lam in grid})
    runs = sweep(ctx, NAME, configs)

    def scores(lab: str, key: str) -> np.ndarray:  # per seed; a diverged run scores chance
        return np.nan_to_num(np.asarray(runs.final(lab, key)), nan=CHANCE)

    # acc[arm][key]: [seeds, α, λ]
    acc = {
        arm: {
            key: np.array([[scores(label(arm, lr, lam), key) for lam in grid] for lr in lrs]).transpose(2, 0, 1)
            for key in ("val_acc", "test_acc")
        }
        for arm, grid in grids.items()
    }
    plain = {
        key: np.stack([scores(label("no decay", lr, 0.0), key) for lr in lrs], -1) for key in ("val_acc", "test_acc")
    }
    measured = {arm: bootstrap(acc[arm]["val_acc"], lambda m, g=grids[arm]: coupling(m, lrs, g)) for arm in grids}
    l2, adamw = ARMS
    coupled = interval_check(*measured[l2], -math.inf, COUPLED_BELOW, "Adam + L2: slope of log best λ against log α")
    decoupled = interval_check(
        *measured[adamw], -DECOUPLED_WITHIN, DECOUPLED_WITHIN, "AdamW: slope of log best λ against log α"
    )
    holds, statement = all_hold(coupled, decoupled)
    best_lambda = {
        arm: [float(v) for v in 10 ** best_log_lambda(acc[arm]["val_acc"].mean(0), np.log10(grids[arm]))]
        for arm in grids
    }
    edge = {arm: [int(i) in (0, len(grids[arm]) - 1) for i in acc[arm]["val_acc"].mean(0).argmax(-1)] for arm in grids}
    # the diagnostic (no verdict): where each α's good region ends as λ grows, and its slope
    edges = {arm: basin_edge(acc[arm]["val_acc"].mean(0), np.log10(grids[arm])) for arm in grids}
    edge_slope = {
        arm: float(np.polyfit(np.log10(lrs)[np.isfinite(e)], e[np.isfinite(e)], 1)[0])
        if np.isfinite(e).sum() >= 2
        else math.nan
        for arm, e in edges.items()
    }
    # the secondary claim: each arm's best cell over the grid (validation), compared on test
    cells = {
        arm: np.unravel_index(int(acc[arm]["val_acc"].mean(0).argmax()), acc[arm]["val_acc"].shape[1:]) for arm in grids
    }
    best_test = {arm: acc[arm]["test_acc"][:, i, j] for arm, (i, j) in cells.items()}
    secondary = greater(
        best_test[adamw],
        best_test[l2],
        what=(
            f"test acc, AdamW's best cell (α={lrs[cells[adamw][0]]:g}, λ={grids[adamw][cells[adamw][1]]:g}) − "
            f"Adam + L2's (α={lrs[cells[l2][0]]:g}, λ={grids[l2][cells[l2][1]]:g}), cells chosen on validation"
        ),
    )
    figures = {
        "lrs": list(lrs),
        "grids": {arm: list(g) for arm, g in grids.items()},
        "slope": {arm: {"value": v, "ci": list(ci)} for arm, (v, ci) in measured.items()},
        "slope_torch_lambda": {arm: measured[arm][0] - (1.0 if arm == adamw else 0.0) for arm in grids},
        "best_lambda": best_lambda,
        "best_at_grid_edge": edge,
        "basin_edge": {arm: [float(10**v) if np.isfinite(v) else None for v in e] for arm, e in edges.items()},
        "basin_edge_slope": edge_slope,
        **{
            arm: {
                key: {
                    f"{lr:g}": {f"{lam:g}": list(map(float, a[:, i, j])) for j, lam in enumerate(grids[arm])}
                    for i, lr in enumerate(lrs)
                }
                for key, a in m.items()
            }
            for arm, m in acc.items()
        },
        "no decay": {
            key: {f"{lr:g}": list(map(float, a[:, i])) for i, lr in enumerate(lrs)} for key, a in plain.items()
        },
        "checks": {"coupled": coupled.as_dict(), "decoupled": decoupled.as_dict()},
        "secondary": secondary.as_dict(),
    }
    rows: list[list[Any]] = []
    for arm in grids:
        at = acc[arm]["val_acc"].mean(0).argmax(-1)  # the best grid cell at each α
        for i, lr in enumerate(lrs):
            rows.append(
                [
                    arm,
                    f"{lr:g}",
                    f"{best_lambda[arm][i]:.2g}" + (" (grid edge)" if edge[arm][i] else ""),
                    mean_std(acc[arm]["val_acc"][:, i, at[i]].tolist()),
                    mean_std(acc[arm]["test_acc"][:, i, at[i]].tolist()),
                    mean_std(plain["val_acc"][:, i].tolist()),
                    f"{10 ** edges[arm][i]:.2g}" if np.isfinite(edges[arm][i]) else "beyond the grid",
                ]
            )
    notes = (
        f"Secondary, not in the verdict (Fig. 2–3: AdamW's best result is better): {secondary.statement}. "
        f"Diagnostic, not in the verdict: the basin edge — the λ at which mean validation accuracy falls "
        f"{EDGE_DROP:g} below the best of its α, going up — has slope {edge_slope[l2]:.3g} against log α for "
        f"Adam + L2 and {edge_slope[adamw]:.3g} for AdamW (−1: coupled as αλ, 0: independent of α, +1: as λ/α). "
        f"In torch's parametrization of AdamW (λ' = λ/α) the slope is {measured[adamw][0] - 1:.3g}: "
        "whether a decay is 'independent of the learning rate' depends on which λ is held fixed; the paper's claim is about its own. "
        "How to read a slope near +1 for AdamW and near 0 for Adam + L2 (the reverse of the paper's Fig. 2): a weight decayed "
        "by λ per step against Adam's steps of size ≈ α settles at a scale set by α/λ, so λ/α is what matters; Adam + L2 "
        "heads for a minimum of L + ½λ||θ||², which α does not enter. The paper's ResNet has batch norm, where a weight's "
        "scale changes only its effective learning rate — a different mechanism, not tested here."
    )
    return Outcome(
        holds=holds,
        statement=statement,
        figures=figures,
        tables=[
            (
                "Best λ per learning rate (validation accuracy, mean over seeds; refined between grid points) and the "
                "accuracy of the best grid cell (mean ± std over seeds); no decay: λ = 0 at the same α; basin edge: "
                f"the λ where accuracy falls {EDGE_DROP:g} below that α's best (diagnostic)",
                ["arm", "α", "best λ", "val acc at best", "test acc at best", "val acc, no decay", "basin edge λ"],
                rows,
            )
        ],
        plots=_plots(lrs, grids, acc, best_lambda, measured),
        notes=notes,
    )


def _plots(lrs, grids, acc, best_lambda, measured) -> list[tuple[str, str]]:
    from trainlab.report.plots import figure_to_svg, new_figure

    plots = []
    for key, title, caption in (
        (
            "val_acc",
            "validation accuracy",
            "Mean validation accuracy over the lr × λ grid (the test's basis); dots: the best λ at each α, "
            "line: the fitted slope",
        ),
        ("test_acc", "test error", "Mean test error over the lr × λ grid, as the paper's Fig. 2 plots it"),
    ):
        fig, axes = new_figure(8.4, 3.4, ncols=2)
        for ax, (arm, grid) in zip(axes, grids.items()):
            mean = acc[arm][key].mean(0).T  # [λ, α]
            z = 1 - mean if key == "test_acc" else mean
            x, y = np.log10(lrs), np.log10(grid)
            hx, hy = (x[1] - x[0]) / 2, (y[1] - y[0]) / 2
            mesh = ax.pcolormesh(
                np.r_[x - hx, x[-1] + hx],
                np.r_[y - hy, y[-1] + hy],
                z,
                cmap="viridis_r" if key == "test_acc" else "viridis",
                shading="flat",
                edgecolors="face",
                linewidth=0.3,
            )
            for i in range(len(lrs)):
                for j in range(len(grid)):
                    bright = mesh.norm(z[j, i]) > 0.6 if key == "val_acc" else mesh.norm(z[j, i]) < 0.4
                    color = "black" if bright else "white"
                    ax.text(x[i], y[j], f"{z[j, i]:.2f}", ha="center", va="center", fontsize=5, color=color)
            if key == "val_acc":
                best = np.log10(best_lambda[arm])
                ax.plot(x, best, "o", color="#d62728", markersize=4)
                b = measured[arm][0]
                ax.plot(x, best.mean() + b * (x - x.mean()), "-", color="#d62728", linewidth=1, label=f"slope {b:.2f}")
                ax.legend(fontsize=7, loc="upper left")
            ax.set_xticks(x, [f"{v:g}" for v in lrs], fontsize=7)
            ax.set_yticks(y[::2], [f"{v:.0e}" for v in grid[::2]], fontsize=7)
            ax.set_xlabel("learning rate α")
            ax.set_ylabel("L2 factor λ" if arm == "Adam + L2" else "decay per step λ (paper's)")
            ax.set_title(f"{arm}: {title}", fontsize=10)
            fig.colorbar(mesh, ax=ax, shrink=0.9)
        plots.append((caption, figure_to_svg(fig)))
    return plots


EXPERIMENT = Experiment(
    name=NAME,
    claim=(
        "With Adam, L2 regularization is not weight decay: Adam + L2's best regularization factor moves with the "
        "learning rate (λ and α coupled), while with decoupled weight decay (AdamW) the best decay factor is "
        "largely independent of the learning rate."
    ),
    source="Loshchilov & Hutter 2019 (ICLR), abstract, §2–3, Alg. 2, Fig. 2; 000 §7.7.2 权重衰减; 001 权值衰减",
    run=_run,
    default_seeds=5,
    quote=(
        'Loshchilov & Hutter (2019), abstract: "L2 regularization and weight decay regularization are equivalent for '
        "standard stochastic gradient descent (when rescaled by the learning rate), but as we demonstrate this is not "
        "the case for adaptive gradient algorithms, such as Adam. […] We provide empirical evidence that our proposed "
        "modification (i) decouples the optimal choice of weight decay factor from the setting of the learning rate "
        "for both standard SGD and Adam, and (ii) substantially improves Adam's generalization performance\". "
        "Fig. 2 (paraphrased): heat maps of test error over initial learning rate × weight decay after 100 epochs; "
        "Adam with L2's basin of good settings lies along a diagonal (the two must be changed together), AdamW's is "
        'aligned with the axes, "a more separable hyperparameter space". 000 §7.7.2: "权重衰减（Weight Decay）：'
        'θ_t ← (1 − β) θ_{t−1} − α g_t … 在 SGD 中，权重衰减与 l2 效果相同，在 Adam 等较复杂优化中，则不等价".'
    ),
    protocol=(
        Protocol(
            "claim tested",
            "(i) best λ vs α: the slope of log best λ against log α, Adam + L2 below −½, AdamW inside (−½, ½); "
            "(ii) best cell, reported outside the verdict",
            "(i) Fig. 2's basins: diagonal for Adam + L2, axis-aligned for AdamW, read off the heat maps; (ii) Fig. 2–3",
            "a heat map's shape becomes a number with a CI: the slope, −1 on a diagonal, 0 when separable",
        ),
        Protocol(
            "model",
            "MLP 40 → 100 → 100 → 10 (ReLU)",
            "26 2×64d ResNet with shake-shake regularization",
            "CPU scale: the grid is 4 × 8 cells × 2 arms × 5 seeds",
        ),
        Protocol(
            "data",
            "MNIST-1D: 3600 train, 400 validation, 1000 test",
            "CIFAR-10 with standard augmentation",
            "CPU scale",
        ),
        Protocol(
            "budget",
            "100 epochs (3600 steps)",
            "100 epochs (≈ 39 000 steps of CIFAR-10's 50 000 images)",
            "the paper's epochs; fewer steps because MNIST-1D is small",
        ),
        Protocol("batch", "100", "128", "MNIST-1D's usual batch (the gallery's other MNIST-1D runs)"),
        Protocol(
            "optimizer",
            "Adam / AdamW (paper's Alg. 2: decay η_t λ, not α η_t λ), β = (0.9, 0.999), cosine annealing of η_t to 0",
            "Adam / AdamW (Alg. 2), cosine annealing (as we read §4.2)",
            "",
        ),
        Protocol(
            "grid",
            "α ∈ {3e-4, 1e-3, 3e-3, 1e-2}; λ: 8 log-spaced values per arm, half-decade steps, on each arm's own scale "
            "(L2 3.2e-5 … 0.1; decay per step 1e-5 … 3.2e-2); plus λ = 0",
            "a grid of initial learning rates × normalized weight decay λ_norm (λ = λ_norm √(b/(BT)))",
            "we give λ per step; λ_norm = 60 λ here (b = 100, B = 3600, T = 100), a constant factor that moves no slope",
        ),
        Protocol(
            "metric",
            "final validation accuracy for the best λ (test accuracy shown beside it)",
            "final test error",
            "choosing on the test set would select on the number reported; the heat maps of test error are shown too",
        ),
        Protocol(
            "runs",
            "5 seeds per cell, bootstrap CIs over seeds",
            "one run per cell (as we read Fig. 2)",
            "seeds give the slope a confidence interval",
        ),
    ),
)
