"""Populations: 16 members vs 1 member vs 16 sequential runs, per training step (issue 20).

For each model — the quickstart MLP, the mnist1d CNN and GRU of the gallery's table, the tanh
RNN of the adding problem, a 32-layer deep linear net — one training step (forward, loss,
backward, optimizer step, the loss read back) is timed:

- ``seq``:   one run's step, as the Trainer does it (``setup`` then the model and optimizer);
             16 sequential runs cost 16 of these.
- ``pop1``:  a population of 1 member (the batched kernels' own overhead).
- ``pop16``: a population of 16 members with different seeds and learning rates.

Printed ratios, the issue's two goals:

- ``pop16 / 16 seq`` — where arithmetic dominates (MLP, CNN) the goal is <= 0.4;
- ``pop16 / pop1``   — where overhead dominates (RNN, GRU, deep linear) the goal is <= 2;

and the achieved GFLOP/s (forward + backward ≈ 3 × the forward's multiply-adds counted by
``trainlab.diagnose.flops``) beside a plain float32 matmul's on this machine. Each time is the
best of several rounds in which the three variants take turns (interleaved, so load from other
processes hits them alike); on a shared machine the figures are still noisy: rerun before
reading a difference of 10%.

    python benchmarks/population.py                # 1 and 2 threads, every model
    python benchmarks/population.py --threads 1 --models mlp gru
    python benchmarks/population.py --compare      # also: trainlab compare of 8 seeds, auto vs off
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import torch
import torch.nn.functional as F

from trainlab.store import Store
from trainlab.train import Population, load_config, setup

MODELS = {
    "mlp": {  # examples/quickstart.toml
        "data": {"name": "mnist1d", "batch_size": 128},
        "model": {"name": "mlp", "hidden": [256, 256]},
        "optim": {"name": "sgd", "lr": 0.1, "momentum": 0.9},
    },
    "cnn": {  # the gallery's mnist1d table (reproduce/mnist1d_table.py)
        "data": {"name": "mnist1d", "batch_size": 100},
        "model": {"name": "cnn", "channels": [25, 25, 25], "kernel_size": 5, "stride": 2},
        "optim": {"name": "adam", "lr": 1e-2},
    },
    "gru": {
        "data": {"name": "mnist1d", "batch_size": 100},
        "model": {"name": "gru", "hidden": [6]},
        "optim": {"name": "adam", "lr": 1e-2},
    },
    "rnn": {  # the adding problem of reproduce/gradient_clipping_rnn.py
        "data": {"name": "adding", "seq_len": 30, "n_samples": 2000, "batch_size": 64},
        "model": {"name": "rnn", "hidden": [64]},
        "optim": {"name": "sgd", "lr": 0.3},
        "train": {"clip_norm": 1.0},
    },
    "deep_linear": {  # 32 layers of width 40 (reproduce/orthogonal_deep_linear.py's deepest)
        "data": {"name": "mnist1d", "subset": 1000, "batch_size": 256},
        "model": {"name": "deep_linear", "hidden": [40] * 31, "bias": False},
        "optim": {"name": "sgd", "lr": 0.01},
    },
}


def configs(name: str, k: int) -> list:
    base = load_config(
        {"name": f"bench-{name}", **MODELS[name], "train": {"epochs": 1, **MODELS[name].get("train", {})}}
    )
    return [base.override({"seed": s, "optim.lr": base.optim.lr * (1 + 0.05 * s)}) for s in range(k)]


def sequential_step(name: str):
    cfg = configs(name, 1)[0]
    s = setup(cfg)
    xb, yb = next(iter(s.batches))
    model, opt = s.model, s.optimizer
    model.train()

    def step() -> None:
        out = model(xb)
        loss = F.cross_entropy(out, yb) if s.data.num_classes else F.mse_loss(out.squeeze(-1), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.train.clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.clip_norm)
        opt.step()
        float(loss)

    return step, s


def population_step(name: str, k: int):
    pop = Population(configs(name, k), store=Store(":memory:"))
    pop._build()
    pop.windows = [defaultdict(float) for _ in range(k)]
    pop.correct = torch.zeros(k, dtype=torch.long)
    pop.seen, pop.step, pop.results = 0, 0, {}
    xb, yb = pop._next_batches({i: iter(pop.setups[i].batches) for i in pop.alive})

    def step() -> None:
        pop._train_step(xb, yb)

    return step


def flops_per_step(s) -> float:
    from trainlab.diagnose.flops import count_flops

    xb, _ = next(iter(s.batches))
    forward = count_flops(s.model, xb[:1]).total_flops * len(xb)
    return 3.0 * forward  # forward + backward (two products per weight) ≈ 3 × forward


def timed(fn, min_seconds: float = 0.15) -> float:
    """Seconds per call: as many calls as fill ``min_seconds`` (at least 3)."""
    n, start = 0, time.perf_counter()
    while n < 3 or time.perf_counter() - start < min_seconds:
        fn()
        n += 1
    return (time.perf_counter() - start) / n


def matmul_gflops() -> float:
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    t = min(timed(lambda: torch.mm(a, b), 0.1) for _ in range(5))
    return 2 * 1024**3 / t / 1e9


def bench_model(name: str, rounds: int) -> dict[str, float]:
    seq, s = sequential_step(name)
    steps = {"seq": seq, "pop1": population_step(name, 1), "pop16": population_step(name, 16)}
    for fn in steps.values():  # warm up
        for _ in range(3):
            fn()
    best = {key: float("inf") for key in steps}
    for _ in range(rounds):  # interleaved: each round times every variant once
        for key, fn in steps.items():
            best[key] = min(best[key], timed(fn))
    best["flops"] = flops_per_step(s)
    return best


def compare_wall_time(seeds: int = 8) -> tuple[float, float]:
    """Wall time of ``trainlab compare`` of ``seeds`` seeds of the quickstart (2 epochs), auto vs off."""
    from pathlib import Path

    from trainlab.compare import run_comparison

    quickstart = Path(__file__).resolve().parents[1] / "examples" / "quickstart.toml"
    cfg = load_config(quickstart, ["train.epochs=2", "train.threads=1"]).override(
        {"compare": {"seeds": seeds, "optim.lr": [0.1]}}
    )
    import tempfile

    out = []
    for mode in ("auto", "off"):
        with tempfile.TemporaryDirectory() as folder:  # a store each (":memory:" is one per process)
            start = time.perf_counter()
            run_comparison(cfg, store=Store(f"{folder}/runs.db"), quiet=True, vectorize=mode)
            out.append(time.perf_counter() - start)
    return out[0], out[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--compare", action="store_true", help="also time trainlab compare of 8 seeds, auto vs off")
    args = parser.parse_args()
    for threads in args.threads:
        torch.set_num_threads(threads)
        mm = matmul_gflops()
        print(f"\n{threads} thread(s); plain 1024² float32 matmul: {mm:.1f} GFLOP/s")
        print(
            f"{'model':12s} {'seq ms':>8s} {'pop1 ms':>8s} {'pop16 ms':>9s} {'pop16/16seq':>12s} {'pop16/pop1':>11s} {'pop16/seq':>10s} {'GFLOP/s seq':>12s} {'GFLOP/s pop16':>14s}"
        )
        for name in args.models:
            r = bench_model(name, args.rounds)
            gf_seq, gf_pop = r["flops"] / r["seq"] / 1e9, 16 * r["flops"] / r["pop16"] / 1e9
            print(
                f"{name:12s} {r['seq'] * 1e3:8.2f} {r['pop1'] * 1e3:8.2f} {r['pop16'] * 1e3:9.2f} "
                f"{r['pop16'] / (16 * r['seq']):12.2f} {r['pop16'] / r['pop1']:11.2f} {r['pop16'] / r['seq']:10.2f} "
                f"{gf_seq:12.2f} {gf_pop:14.2f}"
            )
    if args.compare:
        torch.set_num_threads(1)
        auto, off = compare_wall_time()
        print(
            f"\ntrainlab compare, 8 seeds of the quickstart, 2 epochs: auto {auto:.1f} s, off {off:.1f} s, ratio {auto / off:.2f}"
        )


if __name__ == "__main__":
    main()
