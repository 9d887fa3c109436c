"""The notes' learning-rate schedules at an equal budget: does annealing beat a constant rate?

Source: 000 §7.2.3 (学习率调整): decay (分段常数/阶梯衰减, 逆时衰减 α0/(1 + βt), 指数衰减
α0 β^t, 自然指数衰减 α0 exp(−βt), 余弦衰减 ½α0(1 + cos(tπ/T))), gradual warm-up (逐渐预热,
Goyal et al. 2017 §2.2), triangular cyclic lr (Smith 2017 §3.1) and SGDR (Loshchilov &
Hutter 2017, eq. 5). Every schedule is :mod:`trainlab.schedules` through the run config's
``[schedule]`` section; ``docs/schedules.md`` has each formula and its test.

Set-up: an MLP 40 → 100 → 100 → 10 (ReLU) on MNIST-1D, SGD with momentum 0.9, batch 64,
40 epochs (T = 2280 steps) for every schedule. α0 = 0.03 is the best *constant* rate of
{0.01, 0.03, 0.1, 0.3} (final validation accuracy, one seed, chosen before any schedule ran),
so the baseline is at its best and every schedule starts from (or peaks at) the same α0.
Each decay is set to end at α0/100: step decay ×0.1 every ⌈T/3⌉ steps, inverse time
β = 99/T, exponential β = 0.01^(1/T), natural exponential β = ln(100)/T (the same curve as
the exponential one: α0 β^t = α0 exp(−t ln(1/β)), so the two arms differ only by rounding),
cosine to 0; warm-up: 5% of T from 0, then cosine; cyclic: triangular between α0/100 and α0,
4 cycles (step size ⌈T/8⌉); SGDR: periods T0, 2T0, 4T0 with T0 = ⌈T/7⌉, down to 0.

Claim (95% bootstrap CI over seeds, margin fixed before running): each annealing schedule
ends with a higher test accuracy than the constant rate, by more than 0.5 points. The claim
holds when every schedule's check holds; the table gives each one's verdict.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from trainlab.reproduce import Context, Experiment, Outcome, Protocol
from trainlab.reproduce._measure import mean_std
from trainlab.reproduce.checks import Check, all_hold, greater
from trainlab.train import run, setup

NAME = "lr-schedules"
BASE_LR = 0.03  # best constant lr of {0.01, 0.03, 0.1, 0.3} (validation, one seed)
MARGIN = 0.005  # half an accuracy point: "better"; chosen before running
FINAL_FRACTION = 0.01  # each decay ends at α0/100


def schedule_table(total_steps: int) -> dict[str, dict[str, Any]]:
    """Each arm's ``[schedule]`` section for a run of ``total_steps`` optimizer steps."""
    t = total_steps
    return {
        "constant": {"name": "constant"},
        "step": {"name": "step", "step_size": math.ceil(t / 3), "gamma": 0.1},
        "inverse time": {"name": "inverse_time", "decay_rate": 1 / FINAL_FRACTION - 1, "decay_steps": t},
        "exponential": {"name": "exponential", "decay_rate": FINAL_FRACTION, "decay_steps": t},
        "natural exponential": {
            "name": "natural_exponential",
            "decay_rate": math.log(1 / FINAL_FRACTION),
            "decay_steps": t,
        },
        "cosine": {"name": "cosine"},
        "warm-up + cosine": {"name": "cosine", "warmup_steps": max(1, t // 20)},
        "cyclic triangular": {
            "name": "cyclic_triangular",
            "min_lr": BASE_LR * FINAL_FRACTION,
            "step_size": math.ceil(t / 8),
        },
        "SGDR": {"name": "sgdr", "first_period": math.ceil(t / 7), "period_mult": 2},
    }


def config(schedule: dict[str, Any], seed: int, quick: bool) -> dict[str, Any]:
    return {
        "name": f"{NAME}/{schedule['name']}" + ("+warmup" if "warmup_steps" in schedule else ""),
        "seed": seed,
        "data": {"name": "mnist1d", "batch_size": 64, **({"subset": 1000} if quick else {})},
        "model": {"name": "mlp", "hidden": [100, 100], "activation": "relu"},
        "optim": {"name": "sgd", "lr": BASE_LR, "momentum": 0.9},
        "schedule": schedule,
        "train": {"epochs": 10 if quick else 40, "threads": 1},
    }


def _run(ctx: Context) -> Outcome:
    total_steps = setup(config({"name": "constant"}, 0, ctx.quick)).total_steps
    table = schedule_table(total_steps)
    test_acc: dict[str, list[float]] = {arm: [] for arm in table}
    val_loss: dict[str, list[float]] = {arm: [] for arm in table}
    curves: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {arm: [] for arm in table}
    for seed in range(ctx.seeds):
        for arm, schedule in table.items():
            ctx.log(f"{NAME}: {arm}, seed {seed}")
            result = run(config(schedule, seed, ctx.quick), store=ctx.store, group=ctx.group(NAME))
            test_acc[arm].append(result.final["test_acc"])
            val_loss[arm].append(result.final["val_loss"])
            curves[arm].append(ctx.store.metrics(result.run_id, ["val_acc"])["val_acc"])
    checks: dict[str, Check] = {
        arm: greater(test_acc[arm], test_acc["constant"], margin=MARGIN, what=f"test acc ({arm}) − (constant)")
        for arm in table
        if arm != "constant"
    }
    holds = all_hold(*checks.values())[0]
    rows = [
        [arm, mean_std(test_acc[arm]), mean_std(val_loss[arm])]
        + (
            ["—", "baseline"]
            if arm == "constant"
            else [
                f"{checks[arm].diff:+.4f} [{checks[arm].ci[0]:+.4f}, {checks[arm].ci[1]:+.4f}]",
                "better" if checks[arm].holds else "not shown better",
            ]
        )
        for arm in table
    ]
    better = sum(c.holds for c in checks.values())
    lowest = min((a for a in table if a != "constant"), key=lambda a: np.mean(val_loss[a]))
    notes = (
        f"Accuracy is the measure fixed before running. The validation loss tells a different story: the constant rate ends at "
        f"{np.mean(val_loss['constant']):.3f} nats, {lowest} at {np.mean(val_loss[lowest]):.3f} — annealing leaves the net less "
        "overconfident on data it has not seen, whether or not the argmax changes."
    )
    return Outcome(
        holds=holds,
        statement=f"{better} of {len(checks)} schedules beat the constant lr by > {MARGIN:g} (95% CI): "
        + "; ".join(c.statement for c in checks.values()),
        figures={
            "base_lr": BASE_LR,
            "total_steps": total_steps,
            "schedules": table,
            "test_acc": test_acc,
            "val_loss": val_loss,
            "checks": {arm: c.as_dict() for arm, c in checks.items()},
        },
        tables=[
            (
                f"Final accuracy at an equal budget of {total_steps} steps (mean ± std over seeds; Δ vs constant with 95% CI)",
                ["schedule", "test acc", "final val loss", "Δ test acc vs constant", "verdict"],
                rows,
            )
        ],
        plots=_plots(table, total_steps, test_acc, curves),
        notes=notes,
    )


def _plots(
    table: dict[str, dict[str, Any]],
    total_steps: int,
    test_acc: dict[str, list[float]],
    curves: dict[str, list[tuple[np.ndarray, np.ndarray]]],
) -> list[tuple[str, str]]:
    from trainlab.report.plots import COLORS, band_figure, figure_to_svg, new_figure, points_figure
    from trainlab.schedules import from_config

    fig, axes = new_figure(5.2, 6.0, nrows=2, sharex=True)
    steps = np.arange(total_steps)
    groups = (
        ("constant", "step", "inverse time", "exponential", "natural exponential", "cosine"),
        ("constant", "warm-up + cosine", "cyclic triangular", "SGDR"),
    )
    for ax, names in zip(axes, groups):
        for name in names:
            options = {k: v for k, v in table[name].items() if k != "name"}
            f = from_config(table[name]["name"], options, base_lr=BASE_LR, total_steps=total_steps)
            style = "--" if name == "natural exponential" else "-"
            ax.plot(
                steps,
                [f(int(t)) for t in steps],
                style,
                color=COLORS[list(table).index(name) % len(COLORS)],
                label=name,
                linewidth=1.3,
            )
        ax.set_ylabel("learning rate")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    axes[1].set_xlabel("step")
    axes[0].set_title("Decays (each ends at α0/100 or 0)", fontsize=10)
    axes[1].set_title("Warm-up and cyclic schedules", fontsize=10)
    acc = points_figure(test_acc, title="Final test accuracy per seed", ylabel="test accuracy")
    val = band_figure(
        {arm: curves[arm] for arm in ("constant", "step", "cosine", "cyclic triangular", "SGDR")},
        title="Validation accuracy during training",
        ylabel="val accuracy",
    )
    return [
        (
            "The learning rate each arm follows (natural exponential dashed: it coincides with the exponential decay)",
            figure_to_svg(fig),
        ),
        ("Test accuracy after the same number of steps (bar: mean)", figure_to_svg(acc)),
        ("Validation accuracy over steps for five of the schedules (mean, 95% band)", figure_to_svg(val)),
    ]


EXPERIMENT = Experiment(
    name=NAME,
    claim="At an equal budget, annealing the learning rate (the notes' decays, warm-up + cosine, triangular cyclic, SGDR) ends with a higher accuracy than the best constant learning rate.",
    source="000 §7.2.3 学习率调整; Goyal et al. 2017 §2.2; Smith 2017 §3.1; Loshchilov & Hutter 2017 eq. 5",
    run=_run,
    default_seeds=5,
    quote=(
        '000 §7.2.3 lists the schedules (阶梯衰减, 逆时衰减 α0/(1+βt), 指数衰减 α0β^t, 自然指数衰减 α0 exp(−βt), 余弦衰减 ½α0(1 + cos(tπ/T)), 逐渐预热, 三角循环学习率, SGDR "重启之后再余弦衰减") without claiming that one beats a constant rate. The papers\' claims (paraphrased): Smith (2017) §4: cyclical rates reach the accuracy of a tuned fixed rate in fewer iterations; Loshchilov & Hutter (2017) §4: SGDR reaches good anytime performance 2–4× faster on CIFAR; Goyal et al. (2017): warm-up for large batches.'
    ),
    protocol=(
        Protocol(
            "claim",
            "every schedule ends above the best constant rate by 0.5 points",
            "schedules reach a tuned constant rate's accuracy sooner (Smith, Loshchilov & Hutter)",
            "our claim is stronger and different from the sources' (a final-accuracy race, not time-to-accuracy); left as it was run, the page says so",
        ),
        Protocol("model", "MLP 40 → 100 → 100 → 10", "ResNets, Wide ResNets on CIFAR-10/100", "CPU scale"),
        Protocol(
            "optimizer",
            "SGD momentum 0.9, batch 64, α0 = 0.03 (the best constant of 4)",
            "SGD momentum 0.9, their own α ranges",
        ),
        Protocol(
            "budget", "40 epochs for every schedule", "up to 200 epochs (SGDR), 70k iterations (CLR)", "CPU budget"
        ),
        Protocol("metric", "final test accuracy", "test error over epochs (anytime performance)", "see the claim row"),
        Protocol("runs", "5 seeds", "1–5 runs"),
    ),
)
