"""Optimizer step time: trainlab.optim vs torch.optim's fastest implementation of the same rule.

25M float32 parameters laid out two ways (100 tensors of 250k, 2000 tensors of 12.5k), random
gradients. For each rule: ms per step of torch's for-loop, foreach and fused implementations
(where torch has them) and of trainlab's, the minimum over interleaved repeats, and the ratio
trainlab / fastest torch. Goal: ratio <= 1.10.

With ``--threads 1`` the clock is the calling thread's CPU time, which other processes on a
shared machine do not inflate; with more threads it is wall time (all threads' work overlaps).

    python benchmarks/optim_step.py [--threads 1] [--repeats 7] [--total 25000000] [--only adam,sgd]
"""

from __future__ import annotations

import argparse
import time

import torch

import trainlab.optim as O

# (label, trainlab name, torch class, options)
RULES = [
    ("sgd (momentum)", "sgd", torch.optim.SGD, dict(lr=0.01, momentum=0.9)),
    ("adagrad", "adagrad", torch.optim.Adagrad, dict(lr=0.01)),
    ("rmsprop", "rmsprop", torch.optim.RMSprop, dict(lr=0.01)),
    ("rmsprop (centered, momentum)", "rmsprop", torch.optim.RMSprop, dict(lr=0.01, centered=True, momentum=0.9)),
    ("adadelta", "adadelta", torch.optim.Adadelta, dict()),
    ("adam", "adam", torch.optim.Adam, dict(lr=1e-3)),
    ("adam (amsgrad)", "adam", torch.optim.Adam, dict(lr=1e-3, amsgrad=True)),
    ("adamw", "adamw", torch.optim.AdamW, dict(lr=1e-3)),
    ("nadam", "nadam", torch.optim.NAdam, dict(lr=2e-3)),
]
# trainlab-only forms of the notes, timed against the torch rule they modify
NOTES_FORMS = [
    ("adam, eps inside sqrt", "adam", torch.optim.Adam, dict(lr=1e-3), dict(eps_inside_sqrt=True)),
    ("rmsprop, eps inside sqrt", "rmsprop", torch.optim.RMSprop, dict(lr=0.01), dict(eps_inside_sqrt=True)),
]


def make_params(total: int, count: int) -> list[torch.Tensor]:
    size = total // count
    params = [torch.randn(size).requires_grad_() for _ in range(count)]
    for p in params:
        p.grad = torch.randn(size) * 1e-3
    return params


def torch_variants(cls, params, options) -> dict[str, torch.optim.Optimizer]:
    out = {"loop": cls(params, **options, foreach=False), "foreach": cls(params, **options, foreach=True)}
    try:
        out["fused"] = cls(params, **options, fused=True)
    except (RuntimeError, TypeError, ValueError):
        pass  # torch has no fused kernel for this rule
    return out


def time_steps(optimizers: dict[str, torch.optim.Optimizer], repeats: int) -> dict[str, float]:
    """Minimum ms per step of each optimizer, interleaved so that load hits all alike."""
    clock = time.thread_time if torch.get_num_threads() == 1 else time.perf_counter
    for opt in optimizers.values():  # warm-up: state allocation, first-touch page faults
        opt.step()
        opt.step()
    best = {k: float("inf") for k in optimizers}
    for _ in range(repeats):
        for name, opt in optimizers.items():
            start = clock()
            opt.step()
            best[name] = min(best[name], (clock() - start) * 1e3)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--total", type=int, default=25_000_000)
    parser.add_argument("--only", default="", help="comma-separated trainlab names")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    clock = "thread CPU time" if torch.get_num_threads() == 1 else "wall time"
    only = set(filter(None, args.only.split(",")))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.total / 1e6:g}M float32 parameters, "
          f"min of {args.repeats} interleaved steps, {clock}\n")  # fmt: skip
    header = (
        f"{'rule':30s} {'layout':>12s} {'loop':>8s} {'foreach':>8s} {'fused':>8s} {'trainlab':>9s}  {'ratio':>5s}  vs"
    )
    print(header)
    print("-" * len(header))
    cases = [(label, name, cls, opts, {}) for label, name, cls, opts in RULES] + NOTES_FORMS
    for count in (100, 2000):
        params = make_params(args.total, count)
        layout = f"{count}x{args.total // count / 1e3:g}k"
        for label, name, cls, options, extra in cases:
            if only and name not in only:
                continue
            optimizers = torch_variants(cls, params, options)
            optimizers["trainlab"] = O.create(name, params, **options, **extra)
            ms = time_steps(optimizers, args.repeats)
            fastest = min((k for k in ms if k != "trainlab"), key=ms.get)
            cells = " ".join(f"{ms[k]:8.1f}" if k in ms else f"{'-':>8s}" for k in ("loop", "foreach", "fused"))
            print(
                f"{label:30s} {layout:>12s} {cells} {ms['trainlab']:9.1f}  {ms['trainlab'] / ms[fastest]:5.2f}  {fastest}",
                flush=True,
            )
            del optimizers
        del params


if __name__ == "__main__":
    main()
