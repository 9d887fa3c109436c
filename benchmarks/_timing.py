"""Shared timing helper for the benchmarks: best of several repeats, printed as ratios."""

from __future__ import annotations

import time
from collections.abc import Callable


def best_time(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """The fastest of ``repeats`` timed calls (seconds) after ``warmup`` untimed ones:
    the minimum is the least disturbed by other load on the machine."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def print_ratios(title: str, rows: dict[str, float], unit: str = "ms", scale: float = 1e3) -> None:
    """One table: each row's time and its ratio to the fastest row."""
    best = min(rows.values())
    print(f"\n{title}")
    print(f"{'':32s} {unit:>10s} {'ratio':>8s}")
    for name, t in rows.items():
        print(f"{name:32s} {t * scale:10.2f} {t / best:8.2f}")
