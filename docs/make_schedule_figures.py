"""Redraw docs/img/schedules/*.svg, one picture per schedule in docs/schedules.md.

Run from the repository root: ``.venv/bin/python docs/make_schedule_figures.py``.
The SVGs are reproducible byte for byte, so a re-run only changes files whose schedule changed.
"""

from __future__ import annotations

from pathlib import Path

from trainlab import schedules as S
from trainlab.report.lr_plot import plot_schedule

OUT = Path(__file__).parent / "img" / "schedules"
STEPS = 1000

FIGURES = {
    "constant": S.constant(0.1),
    "step": S.step(0.1, step_size=250, gamma=0.5),
    "piecewise_constant": S.piecewise_constant([300, 600, 850], [0.1, 0.05, 0.01, 0.002]),
    "inverse_time": S.inverse_time(0.1, decay_rate=0.01),
    "inverse_time_staircase": S.inverse_time(0.1, decay_rate=1.0, decay_steps=100, staircase=True),
    "exponential": S.exponential(0.1, decay_rate=0.995),
    "exponential_staircase": S.exponential(0.1, decay_rate=0.5, decay_steps=200, staircase=True),
    "natural_exponential": S.natural_exponential(0.1, decay_rate=0.005),
    "polynomial": S.polynomial(0.1, total_steps=STEPS, end_lr=0.001, power=2.0),
    "linear": S.linear(0.1, total_steps=STEPS),
    "cosine": S.cosine(0.1, total_steps=STEPS, min_lr=0.001),
    "warmup_cosine": S.warmup(S.cosine(0.1, total_steps=STEPS), warmup_steps=100),
    "cyclic_triangular": S.cyclic_triangular(0.01, 0.1, step_size=125),
    "cyclic_triangular2": S.cyclic_triangular(0.01, 0.1, step_size=125, mode="triangular2"),
    "cyclic_exp_range": S.cyclic_triangular(0.01, 0.1, step_size=125, mode="exp_range", gamma=0.998),
    "sgdr": S.sgdr(0.1, first_period=100, period_mult=2, min_lr=0.001),
    "join": S.join([S.constant(0.1), S.linear(0.1, 300, end_lr=0.01), S.constant(0.01)], [400, 700]),
}


def main() -> None:
    for name, schedule in FIGURES.items():
        path = plot_schedule(schedule, STEPS, OUT / f"{name}.svg")
        print(path)


if __name__ == "__main__":
    main()
