"""Draw a learning-rate schedule over a run's steps, so a schedule is seen before it is used."""

from __future__ import annotations

import io
import os
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

from trainlab._io import atomic_write_bytes

MAX_POINTS = 10_000  # a longer run is drawn at this many evenly spaced steps (10**12 steps would never finish)


def plot_schedule(
    schedule: Callable[[int], float],
    total_steps: int,
    path: str | os.PathLike,
    title: str | None = None,
) -> Path:
    """Write an SVG of ``schedule(t)`` for t = 0 .. total_steps − 1 to ``path``; returns the path.
    Beyond :data:`MAX_POINTS` steps the curve is drawn through that many evenly spaced steps.

    The title defaults to the schedule's ``repr`` (its name and arguments). The figure is
    built without pyplot on an Agg canvas, so no global matplotlib state changes, and the
    SVG is byte-for-byte reproducible (fixed hash salt, no date) for files kept in git.
    """
    if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps <= 0:
        raise ValueError(f"total_steps must be a positive integer, got {total_steps!r}")
    import matplotlib  # deferred: matplotlib is slow to import and only plots need it

    with matplotlib.rc_context({"svg.hashsalt": "trainlab", "svg.fonttype": "none"}):
        fig = schedule_figure(schedule, total_steps, title)
        buf = io.BytesIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return atomic_write_bytes(path, buf.getvalue())


def schedule_figure(schedule: Callable[[int], float], total_steps: int, title: str | None = None):
    """The ``matplotlib.figure.Figure`` that :func:`plot_schedule` saves (on an Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    steps: Sequence[int] = range(total_steps)
    if total_steps > MAX_POINTS:
        steps = sorted({round(i * (total_steps - 1) / (MAX_POINTS - 1)) for i in range(MAX_POINTS)})
    fig = Figure(figsize=(6.4, 3.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(steps, [schedule(t) for t in steps], color="#1f77b4", linewidth=1.5)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("learning rate")
    ax.set_xlim(0, max(total_steps - 1, 1))
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.set_title(title if title is not None else _wrap(repr(schedule)), fontsize=8)
    return fig


def _wrap(text: str, width: int = 80, max_lines: int = 3) -> str:
    """Nested schedule reprs get long; wrap them to fit the figure's width."""
    return textwrap.fill(text, width, max_lines=max_lines, placeholder=" …")
