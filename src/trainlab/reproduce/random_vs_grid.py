"""Random search beats grid search when few hyperparameters matter; BO beats both; Hyperband saves compute.

Source: 000 §7.6 (超参数优化): grid search tries every combination (§7.6.1); random search
draws combinations at random because "some hyperparameters matter little" (§7.6.2);
Bayesian optimization predicts the most promising next combination from the trials so
far (§7.6.3); dynamic resource allocation stops bad configurations early (§7.6.4).
Bergstra & Bengio (JMLR 2012): with a low effective dimensionality, a grid of N points
tries only N^(1/D) distinct values of each important parameter, random search N.
Snoek et al. (2012) for GP-based BO; Li et al. (JMLR 2018) for Hyperband.

Part 1 — samplers at equal budget (cheap, as Bergstra & Bengio argue): per seed, an
objective on [0, 1]³

    f(x) = Σ_i w_i (x_i − c_i)²,   w = (1, 1, 0.01),   c ~ U(0, 1)³ drawn per seed,

two important parameters and one that barely matters; min f = 0, so the best value found
is the regret. Budget 27 trials: the 3×3×3 grid at the cell centres {1/6, 1/2, 5/6} (the
best-placed grid), uniform random points, and GP-EI (``trainlab.tune.GP``, 10 Sobol
start-up points). Claims, on log10 regret (95% CI across seeds, margin 0.1 = at least
a 1.26× smaller regret): random < grid, BO < random, BO < grid.

Part 2 — Hyperband on MNIST-1D: an MLP (40 → 100 → 100 → 10), Adam, batch 100, at most 9
epochs, evaluated every epoch; the space is the learning rate (log-uniform in [1e-5, 1])
and the dropout rate ([0, 0.9]). Both arms draw the same random configurations (same
study seed); one trains each fully, the other prunes with ``Hyperband(max_resource = 9
epochs, η = 3, min_resource = 1 epoch)``. Each arm runs trials until one evaluation
reaches validation accuracy 0.55 (at most 30 trials). Compute = optimizer steps spent
until then. Claim: log10 compute with Hyperband < without, margin 0.1 (95% CI).

How it runs. Part 1 trains nothing (its trials are evaluations of f). Part 2's arms are
studies (:class:`trainlab.tune.Study`), not sweeps over ``compare``'s planner
(:mod:`trainlab.reproduce.sweep`): the Hyperband arm's runs report validation accuracy to their
trial after each evaluation and are stopped by the pruner on their peers' reports
(``run(trial=…)``), and ``compare`` trains fixed configs to their budget with no such channel;
both arms run trials one at a time until one reaches the target, so how many runs an arm
makes is known only as they finish, where a sweep plans a fixed set; and the no-pruning arm
— the part made of plain runs — is the Hyperband arm's control, the same draws and trial
seeds in the same order, with a seed of its own per trial, where a sweep's configurations
share one list of seeds (each trial would be a sweep of one run: no population, no
``--jobs``). Each study is kept in the run store, named ``<group>/<arm>/seed<s>/<digest of
the base config and the pruner>``: a rerun reads the trials already run (their evaluations
from their runs) and goes on from there — after a finished run it trains nothing. A trial
cut off mid-run is run again with its parameters and seed under a new trial number (the
study's re-queue), which shifts the arm's later draws and, with Hyperband, the trial's
bracket: a rerun after such an interruption goes on with other trials than an uninterrupted
run would, so its figures can differ.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from trainlab.reproduce import Context, Experiment, Outcome, Protocol
from trainlab.reproduce.checks import Check, all_hold, less
from trainlab.store import Store
from trainlab.train import load_config, run, setup
from trainlab.train.config import config_digest
from trainlab.tune import GP, Float, Grid, Hyperband, NoPruner, Random, Sampler, Study, TrialPruned, minimize
from trainlab.tune.trial import FINISHED, FrozenTrial

NAME = "random-vs-grid"
MARGIN = 0.1  # log10 units: at least 1.26x better; chosen before running
WEIGHTS = np.array([1.0, 1.0, 0.01])  # two important parameters, one that barely matters
BUDGET = 27  # = 3^3, a full grid with 3 values per parameter
TARGET_ACC = 0.55
MAX_TRIALS = 30


# -- part 1: samplers on a synthetic objective -------------------------------------------


def optimum(seed: int) -> np.ndarray:
    """The objective's minimizer c for one seed (uniform in the unit cube)."""
    return np.random.default_rng([20120201, seed]).uniform(0.0, 1.0, len(WEIGHTS))


def objective(params: dict[str, float], c: np.ndarray) -> float:
    """f(x) = Σ_i w_i (x_i − c_i)² — its minimum is 0, so a value found is its regret."""
    x = np.array([params[f"x{i}"] for i in range(len(WEIGHTS))])
    return float(np.sum(WEIGHTS * (x - c) ** 2))


def search_space(grid: bool) -> dict[str, Float]:
    # the grid uses the cell centres of a 3x3x3 partition (never the cube's edges): its best layout
    return {f"x{i}": Float(1 / 6, 5 / 6, steps=3) if grid else Float(0.0, 1.0) for i in range(len(WEIGHTS))}


def _samplers(quick: bool) -> dict[str, tuple[Sampler, bool]]:
    gp = GP(n_candidates=256, n_restarts=2) if quick else GP()
    return {"grid": (Grid(), True), "random": (Random(), False), "BO (GP-EI)": (gp, False)}


def best_so_far(values: list[float]) -> np.ndarray:
    return np.minimum.accumulate(np.asarray(values, dtype=np.float64))


def _log10(x: float) -> float:
    return math.log10(max(x, 1e-12))


def _search(ctx: Context) -> tuple[dict[str, list[float]], dict[str, list[np.ndarray]], dict[str, Any]]:
    regrets: dict[str, list[float]] = {}
    traces: dict[str, list[np.ndarray]] = {}
    points: dict[str, Any] = {}
    for label, (sampler, grid) in _samplers(ctx.quick).items():
        regrets[label], traces[label] = [], []
        for seed in range(ctx.seeds):
            ctx.log(f"{NAME}: {label} search, seed {seed}")
            c = optimum(seed)
            study = minimize(
                lambda p, c=c: objective(p, c), search_space(grid), sampler=sampler, n_trials=BUDGET, seed=seed
            )
            values = [t.value for t in study.trials]
            regrets[label].append(float(min(values)))
            traces[label].append(best_so_far(values))
            if seed == 0:
                points[label] = [[t.params["x0"], t.params["x1"]] for t in study.trials]
    return regrets, traces, points


# -- part 2: Hyperband on mnist1d ----------------------------------------------------------


def base_config(quick: bool) -> dict[str, Any]:
    return {
        "name": f"{NAME}/hyperband",
        "data": {"name": "mnist1d", "batch_size": 100, **({"subset": 500} if quick else {})},
        "model": {"name": "mlp", "hidden": [100, 100], "activation": "relu"},
        "optim": {"name": "adam", "lr": 1e-3},
        "train": {"epochs": 3 if quick else 9, "threads": 1},  # one thread: a tiny model on shared cores
    }


def compute_to_target(trials: list[list[tuple[int, float]]], target: float) -> tuple[int, bool]:
    """Steps spent, trial after trial, until an evaluation first reaches ``target``.

    ``trials``: each trial's ``(step, val_acc)`` evaluations in order, the last at the step the
    run stopped (finished, pruned or diverged). Returns (steps, reached); not reached: every step.
    """
    spent = 0
    for evaluations in trials:
        for step, value in evaluations:
            if value >= target:
                return spent + step, True
        spent += evaluations[-1][0] if evaluations else 0
    return spent, False


def study_name(ctx: Context, arm: str, seed: int, base: dict[str, Any], pruner: Hyperband | NoPruner) -> str:
    """The study of one arm and seed, in the run store: ``<group>/<arm>/seed<seed>/<digest>``,
    the digest of the base config and the pruner, so a rerun of the same protocol continues
    the study and a changed protocol starts a new one."""
    return f"{ctx.group(NAME)}/{arm}/seed{seed}/{config_digest({'base': base, 'pruner': pruner.spec()}, length=8)}"


def attempted(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """The trials a study has run, in order: finished ones, less those whose parameters were
    re-queued after an interruption (the re-queued trial is the one that ran)."""
    requeued = {t.requeued_from for t in trials if t.requeued_from is not None}
    return sorted((t for t in trials if t.state in FINISHED and t.number not in requeued), key=lambda t: t.number)


def trial_evaluations(store: Store, run_id: str) -> list[tuple[int, float]]:
    """One trial's ``(step, val_acc)`` evaluations from its run, ending at the step the run
    stopped (finished, pruned or diverged): a run that diverged between evaluations gets 0 there."""
    history = store.metrics(run_id, ["val_acc"]).get("val_acc")
    evaluations = [] if history is None else [(int(s), float(v)) for s, v in zip(*history)]
    stop = int(store.get_run(run_id).final["step"])
    if not evaluations or evaluations[-1][0] != stop:
        evaluations.append((stop, 0.0))
    return evaluations


def _hyperband_arm(ctx: Context, seed: int, pruned: bool) -> list[list[tuple[int, float]]]:
    """Run trials of one arm until one reaches the target; each trial's evaluations. The study
    lives in the run store, so a rerun reads the trials already run and goes on from there."""
    base = base_config(ctx.quick)
    s = setup(base)
    pruner = Hyperband(max_resource=s.total_steps, eta=3, min_resource=s.steps_per_epoch) if pruned else NoPruner()
    space = {"optim.lr": Float(1e-5, 1.0, log=True), "model.dropout": Float(0.0, 0.9)}
    arm = "hyperband" if pruned else "full"
    study = Study(
        study_name(ctx, arm, seed, base, pruner),
        space,
        sampler=Random(),
        pruner=pruner,
        direction="maximize",
        storage=ctx.store.url,
        seed=seed,
        metric="val_acc",
    )

    def train(trial) -> float:
        cfg = load_config(base, {**trial.params, "seed": trial.seed, "name": f"{NAME}/{arm}"})
        result = run(cfg, store=ctx.store, group=ctx.group(NAME), trial=trial)
        trial.run_id = result.run_id
        if result.status == "pruned":
            raise TrialPruned()
        return result.final["val_acc"] if result.status == "completed" else math.nan

    known: dict[int, list[tuple[int, float]]] = {}  # evaluations of the trials read so far, by number
    while True:
        tried = attempted(study.trials)
        for t in tried:
            if t.number not in known and t.run_id is not None:  # a trial that failed before its run has none
                known[t.number] = trial_evaluations(ctx.store, t.run_id)
        evaluations = [known[t.number] for t in tried if t.number in known]
        if len(tried) >= (3 if ctx.quick else MAX_TRIALS) or compute_to_target(evaluations, _target(ctx))[1]:
            return evaluations
        study.run_trial(study.ask(), train)


def _target(ctx: Context) -> float:
    return 0.25 if ctx.quick else TARGET_ACC  # the quick version's 15-step runs cannot reach 0.55


def _hyperband(ctx: Context) -> dict[str, dict[str, list]]:
    out: dict[str, dict[str, list]] = {
        arm: {"steps": [], "reached": [], "trials": [], "evaluations": []} for arm in ("full", "hyperband")
    }
    for seed in range(ctx.seeds):
        for arm in out:
            ctx.log(f"{NAME}: random search, {'Hyperband' if arm == 'hyperband' else 'no pruning'}, seed {seed}")
            evaluations = _hyperband_arm(ctx, seed, pruned=arm == "hyperband")
            steps, reached = compute_to_target(evaluations, _target(ctx))
            for key, value in (
                ("steps", steps),
                ("reached", reached),
                ("trials", len(evaluations)),
                ("evaluations", evaluations),
            ):
                out[arm][key].append(value)
    return out


# -- the experiment ----------------------------------------------------------------------


def _run(ctx: Context) -> Outcome:
    regrets, traces, points = _search(ctx)
    hb = _hyperband(ctx)
    log_regret = {k: [_log10(v) for v in vs] for k, vs in regrets.items()}
    log_steps = {arm: [_log10(v) for v in d["steps"]] for arm, d in hb.items()}
    checks: list[Check] = [
        less(log_regret["random"], log_regret["grid"], margin=MARGIN, what="log10 regret random - grid"),
        less(log_regret["BO (GP-EI)"], log_regret["random"], margin=MARGIN, what="log10 regret BO - random"),
        less(log_regret["BO (GP-EI)"], log_regret["grid"], margin=MARGIN, what="log10 regret BO - grid"),
        less(
            log_steps["hyperband"],
            log_steps["full"],
            margin=MARGIN,
            what=f"log10 steps to val_acc {_target(ctx)}, Hyperband - no pruning",
        ),
    ]
    holds, statement = all_hold(*checks)
    figures = {
        "budget": BUDGET,
        "weights": WEIGHTS.tolist(),
        "regret": regrets,
        "target_val_acc": _target(ctx),
        "steps_to_target": {arm: d["steps"] for arm, d in hb.items()},
        "reached": {arm: d["reached"] for arm, d in hb.items()},
        "trials": {arm: d["trials"] for arm, d in hb.items()},
        "checks": [c.as_dict() for c in checks],
    }
    tables = [
        (
            f"Regret after {BUDGET} trials (log10, mean ± std over seeds)",
            ["sampler", "mean log10 regret", "median regret"],
            [
                [
                    k,
                    f"{np.mean(v):.2f} ± {np.std(v, ddof=1) if len(v) > 1 else 0.0:.2f}",
                    f"{np.median(regrets[k]):.2e}",
                ]
                for k, v in log_regret.items()
            ],
        ),
        (
            f"Random search on MNIST-1D: optimizer steps until val_acc ≥ {_target(ctx)}",
            ["seed", "no pruning: steps (trials)", "Hyperband: steps (trials)"],
            [[s, _spent(hb["full"], s), _spent(hb["hyperband"], s)] for s in range(ctx.seeds)],
        ),
    ]
    plots = [_projection_plot(points), _regret_plot(traces), _compute_plot(hb)]
    return Outcome(holds=holds, statement=statement, figures=figures, tables=tables, plots=plots)  # type: ignore[arg-type]


def _spent(arm: dict[str, list], seed: int) -> str:
    return f"{arm['steps'][seed]} ({arm['trials'][seed]}){'' if arm['reached'][seed] else ', not reached'}"


def _projection_plot(points: dict[str, Any]) -> tuple[str, str]:
    """Bergstra & Bengio's figure 1: the 27 trials seen on the two important parameters."""
    from trainlab.report.plots import COLORS, figure_to_svg, new_figure

    fig, axes = new_figure(9.0, 3.2, ncols=len(points))
    c = optimum(0)
    grid = np.linspace(0, 1, 101)
    xx, yy = np.meshgrid(grid, grid)
    for i, (ax, (label, pts)) in enumerate(zip(axes, points.items())):
        ax.contour(
            xx,
            yy,
            WEIGHTS[0] * (xx - c[0]) ** 2 + WEIGHTS[1] * (yy - c[1]) ** 2,
            levels=8,
            colors="#bbbbbb",
            linewidths=0.6,
        )
        p = np.asarray(pts)
        ax.scatter(p[:, 0], p[:, 1], s=12, color=COLORS[i])
        ax.scatter([c[0]], [c[1]], marker="*", s=80, color="black")
        ax.set_title(f"{label}: {len({tuple(q) for q in p.round(9).tolist()})} distinct (x0, x1)", fontsize=9)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("x0 (important)")
    axes[0].set_ylabel("x1 (important)")
    return ("27 trials projected on the two important parameters (seed 0; star: the optimum)", figure_to_svg(fig))


def _regret_plot(traces: dict[str, list[np.ndarray]]) -> tuple[str, str]:
    from trainlab.report.plots import band_figure, figure_to_svg

    series = {k: [(np.arange(1, len(t) + 1), np.log10(np.maximum(t, 1e-12))) for t in ts] for k, ts in traces.items()}
    fig = band_figure(series, title="Best value so far (synthetic objective)", ylabel="log10 regret", xlabel="trial")
    return ("log10 of the best regret so far (mean and 95% band over seeds)", figure_to_svg(fig))


def _compute_plot(hb: dict[str, dict[str, list]]) -> tuple[str, str]:
    from trainlab.report.plots import band_figure, figure_to_svg

    series: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for arm, d in hb.items():
        curves = []
        for trials in d["evaluations"]:
            spent, xs, ys, best = 0, [], [], 0.0
            for evaluations in trials:
                for step, value in evaluations:
                    best = max(best, value)
                    xs.append(spent + step)
                    ys.append(best)
                spent += evaluations[-1][0] if evaluations else 0
            curves.append((np.asarray(xs), np.asarray(ys)))
        series["Hyperband" if arm == "hyperband" else "no pruning"] = curves
    fig = band_figure(
        series, title="Random search on MNIST-1D", ylabel="best val accuracy so far", xlabel="optimizer steps spent"
    )
    return ("Best validation accuracy against compute spent, until the target is reached", figure_to_svg(fig))


EXPERIMENT = Experiment(
    name=NAME,
    claim=(
        "With few important hyperparameters, random search finds better configurations than grid search at equal budget; "
        "Bayesian optimization beats both; Hyperband reaches a given accuracy with less compute."
    ),
    source="000 §7.6.1–7.6.4; Bergstra & Bengio 2012; Snoek et al. 2012; Li et al. 2018 (Hyperband)",
    run=_run,
    default_seeds=5,
    quote=(
        '000 §7.6.2: "随机搜索（Random Search）：有些参数影响较小，用网格搜成本高，所以对超参数进行随机组合"; §7.6.3 贝叶斯优化: "根据已实验的超参组合，预测下一个可能最大收益的组合"; §7.6.4 动态资源分配: "较早估计出一组配置的效果会比较差，就可以中止这组配置的评估". Bergstra & Bengio (2012) §2 (paraphrased): with low effective dimensionality random search finds better configurations than grid search with the same number of trials.'
    ),
    protocol=(
        Protocol(
            "objective",
            "a 3-D quadratic, two important parameters and one that barely matters; 27 trials",
            "neural nets on MNIST variants (Bergstra & Bengio §4)",
            "cheap, exact regret",
        ),
        Protocol("grid", "3 × 3 × 3 at the cell centres", "grids from earlier studies"),
        Protocol(
            "Hyperband",
            "MLP on MNIST-1D, η = 3, 1–9 epochs, until val acc 0.55",
            "Li et al. (2018): CIFAR-10, SVHN, … , η = 3",
            "CPU scale",
        ),
        Protocol("runs", "5 seeds", "many repetitions (Bergstra & Bengio box plots)"),
    ),
)
