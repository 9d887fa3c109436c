"""What logging every step costs: the store plus each mirror (csv, TensorBoard, MLflow), per step.

A training step of the quickstart model (MLP 256-256 on MNIST-1D, batch 128) is timed from a
real run without per-step rows; then the logging path alone — ``MetricBuffer.add`` of the rows
a step with ``train.log_every = 1`` produces (train_loss, train_lr, train_acc), the batched
writes to the SQLite store and to each mirror — is timed over the same number of steps. The
table prints microseconds per step and the share of the step time (goal: < 1%).

    python benchmarks/logging_overhead.py [--steps 2000]

TensorBoard and MLflow rows appear when their extras are installed.
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace


def step_time(steps: int) -> float:
    """Seconds per optimizer step of the quickstart model, per-step logging off."""
    import torch

    from trainlab.store import Store
    from trainlab.train import Trainer, load_config

    torch.set_num_threads(1)
    cfg = load_config(
        "examples/quickstart.toml",
        [f"train.max_steps={steps}", f"train.eval_every={steps}", f"train.log_every={10**9}"],
    )
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, store=Store(Path(tmp) / "t.db"))
        result = trainer.fit()
    return result.final["seconds"] / steps


def logging_time(steps: int, names: list[str], tmp: Path) -> tuple[float, float]:
    """Seconds per step spent logging 3 rows per step into the store and the mirrors ``names``:
    in the training loop's thread, and until every row is written (mirrors' own threads included)."""
    from trainlab.loggers import create_loggers
    from trainlab.store import MetricBuffer, Store
    from trainlab.train import load_config

    store = Store(tmp / f"{'-'.join(names) or 'store'}.db")
    config = load_config("examples/quickstart.toml")
    run_id = store.create_run("bench", config.to_dict(), seed=0)
    buffer = MetricBuffer(store, run_id)
    trainer = SimpleNamespace(
        store=store, run_id=run_id, run_dir=store.run_dir(run_id), step=0, config=config, group=None, metrics=buffer
    )
    loggers = create_loggers(names, mlflow_uri=f"sqlite:///{tmp / 'mlflow.db'}")
    for logger in loggers:
        logger.on_fit_start(trainer)
    start = time.perf_counter()
    for step in range(1, steps + 1):
        buffer.add(step, {"train_loss": 2.3 / step, "train_lr": 0.1, "train_acc": step / steps})
    buffer.flush()
    in_loop = time.perf_counter() - start
    for logger in loggers:  # closing writes what the mirror still buffers (TensorBoard's file writer)
        getattr(logger, "writer", None) and logger.writer.flush()
        getattr(logger, "wait", None) and logger.wait()
    return in_loop / steps, (time.perf_counter() - start) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000)
    args = ap.parse_args()
    step = step_time(args.steps)
    setups = [[], ["csv"]]
    if importlib.util.find_spec("tensorboard"):
        setups.append(["csv", "tensorboard"])
    if importlib.util.find_spec("mlflow"):
        setups.append(["csv", "tensorboard", "mlflow"] if ["csv", "tensorboard"] in setups else ["csv", "mlflow"])
    print(f"\nstep of the quickstart model: {step * 1e6:.0f} us (1 thread)")
    head = f"{'in the loop: us/step':>21s} {'% of step':>10s} {'until written: us/step':>23s} {'% of step':>10s}"
    print(f"{'logging every step into':36s} {head}")
    for names in setups:
        costs = []
        for _ in range(3):  # best of three: the least disturbed by other load
            with tempfile.TemporaryDirectory() as tmp:
                costs.append(logging_time(args.steps, names, Path(tmp)))
        loop, total = min(c[0] for c in costs), min(c[1] for c in costs)
        label = "store + " + ", ".join(names) if names else "store only"
        print(
            f"{label:36s} {loop * 1e6:21.1f} {100 * loop / step:9.2f}% {total * 1e6:23.1f} {100 * total / step:9.2f}%"
        )


if __name__ == "__main__":
    main()
