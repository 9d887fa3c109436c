"""Bayesian optimization quality and speed: trainlab's GP and Random vs Optuna's samplers.

Best-so-far regret (f(best) - f*) on Branin, Hartmann-3, Hartmann-6, Rosenbrock-4 and
Levy-5 after 10 / 25 / 50 trials, median and interquartile range over seeds, with the
ratio of each median to the best median of that row; then the mean seconds per
suggestion around trial 50 and trial 200 (Hartmann-6).

    python benchmarks/bo.py                       # 50 trials, 20 seeds (long: about an hour on 2 cores)
    python benchmarks/bo.py --seeds 5 --jobs 2    # quicker

Optuna is a benchmark-only dependency (the ``dev`` extra).
"""

from __future__ import annotations

import argparse
import math
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

# -- test functions (minimization; domains and minima from Surjanovic & Bingham's library) --


def branin(x):
    x1, x2 = x
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


_H3_A = np.array([[3.0, 10, 30], [0.1, 10, 35], [3.0, 10, 30], [0.1, 10, 35]])
_H3_P = 1e-4 * np.array([[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547], [381, 5743, 8828]])
_H6_A = np.array(
    [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
)
_H6_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)
_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def hartmann(a, p):
    return lambda x: float(-(_ALPHA * np.exp(-(a * (np.asarray(x) - p) ** 2).sum(1))).sum())


def rosenbrock(x):
    x = np.asarray(x)
    return float((100 * (x[1:] - x[:-1] ** 2) ** 2 + (x[:-1] - 1) ** 2).sum())


def levy(x):
    w = 1 + (np.asarray(x) - 1) / 4
    return float(
        math.sin(math.pi * w[0]) ** 2
        + ((w[:-1] - 1) ** 2 * (1 + 10 * np.sin(math.pi * w[:-1] + 1) ** 2)).sum()
        + (w[-1] - 1) ** 2 * (1 + math.sin(2 * math.pi * w[-1]) ** 2)
    )


FUNCTIONS = {
    "branin": (branin, [(-5, 10), (0, 15)], 0.397887357729738),
    "hartmann3": (hartmann(_H3_A, _H3_P), [(0, 1)] * 3, -3.86278214782076),
    "hartmann6": (hartmann(_H6_A, _H6_P), [(0, 1)] * 6, -3.32236801141551),
    "rosenbrock4": (rosenbrock, [(-5, 10)] * 4, 0.0),
    "levy5": (levy, [(-10, 10)] * 5, 0.0),
}
METHODS = ("trainlab-gp", "trainlab-random", "optuna-gp", "optuna-tpe", "optuna-random")


# -- one optimization run: returns the objective values in order and the seconds per ask ---


def run_trainlab(method, fn, bounds, n, seed):
    from trainlab.tune import GP, Float, Random, Study

    space = {f"x{i}": Float(lo, hi) for i, (lo, hi) in enumerate(bounds)}
    study = Study("bench", space, sampler=GP() if method == "trainlab-gp" else Random(), storage=":memory:", seed=seed)
    values, times = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        trial = study.ask()
        times.append(time.perf_counter() - t0)
        values.append(fn([trial.params[f"x{i}"] for i in range(len(bounds))]))
        study.tell(trial, values[-1])
    return values, times


def run_optuna(method, fn, bounds, n, seed):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = {
        "optuna-gp": lambda: optuna.samplers.GPSampler(seed=seed),
        "optuna-tpe": lambda: optuna.samplers.TPESampler(seed=seed),
        "optuna-random": lambda: optuna.samplers.RandomSampler(seed=seed),
    }[method]()
    study = optuna.create_study(sampler=sampler)
    dists = {f"x{i}": optuna.distributions.FloatDistribution(lo, hi) for i, (lo, hi) in enumerate(bounds)}
    values, times = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        trial = study.ask(dists)
        times.append(time.perf_counter() - t0)
        values.append(fn([trial.params[f"x{i}"] for i in range(len(bounds))]))
        study.tell(trial, values[-1])
    return values, times


def one_run(args):
    import torch

    torch.set_num_threads(1)
    method, fname, n, seed = args
    fn, bounds, _ = FUNCTIONS[fname]
    runner = run_trainlab if method.startswith("trainlab") else run_optuna
    return (method, fname, seed, *runner(method, fn, bounds, n, seed))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--timing-trials", type=int, default=200, help="trials of the speed runs (0 = skip)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--functions", default=",".join(FUNCTIONS))
    ap.add_argument("--methods", default=",".join(METHODS))
    args = ap.parse_args()
    fnames, methods = args.functions.split(","), args.methods.split(",")
    checkpoints = [c for c in (10, 25, 50) if c <= args.trials]
    tasks = [(m, f, args.trials, s) for f in fnames for m in methods for s in range(args.seeds)]
    regrets: dict[tuple[str, str], list[np.ndarray]] = {}
    with ProcessPoolExecutor(args.jobs) as pool:
        for method, fname, _seed, values, _times in pool.map(one_run, tasks):
            best = np.minimum.accumulate(values) - FUNCTIONS[fname][2]
            regrets.setdefault((fname, method), []).append(best)

    print(f"best-so-far regret: median [IQR] over {args.seeds} seeds; (x) = median / best median of the row")
    header = f"{'function':12s} {'trial':>5s} " + " ".join(f"{m:>28s}" for m in methods)
    print(header)
    print("-" * len(header))
    for fname in fnames:
        for c in checkpoints:
            stats = {m: np.percentile([r[c - 1] for r in regrets[(fname, m)]], [25, 50, 75]) for m in methods}
            best = min(s[1] for s in stats.values())
            cells = []
            for m in methods:
                q1, med, q3 = stats[m]
                ratio = med / best if best > 0 else (1.0 if med == best else math.inf)
                cells.append(f"{med:9.3g} [{q1:.2g},{q3:.2g}] ({ratio:4.1f}x)".rjust(28))
            print(f"{fname:12s} {c:5d} " + " ".join(cells))

    if args.timing_trials:
        n = args.timing_trials
        with ProcessPoolExecutor(args.jobs) as pool:
            timed = list(pool.map(one_run, [(m, "hartmann6", n, 0) for m in methods]))
        print(f"\nseconds per suggestion (hartmann6, mean over trials 46-55 and {n - 9}-{n}); (x) = / fastest")
        windows = {"@50": slice(45, 55), f"@{n}": slice(n - 10, n)}
        means = {m: {w: float(np.mean(t[sl])) for w, sl in windows.items()} for m, _, _, _, t in timed}
        for w in windows:
            fastest = min(v[w] for v in means.values())
            print(f"{w:>5s} " + " ".join(f"{m}={means[m][w]:.4f}s ({means[m][w] / fastest:.0f}x)" for m in methods))


if __name__ == "__main__":
    main()
