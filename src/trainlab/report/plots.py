"""Figures for reports: matplotlib on an Agg canvas (no pyplot, no global state), out as SVG text.

Every figure function returns a ``matplotlib.figure.Figure``; :func:`figure_to_svg` turns it
into an ``<svg>`` element to inline in HTML. Text stays text (``svg.fonttype = none``), so
figures are small, searchable, and escaped by matplotlib's SVG writer; user strings are also
passed through :func:`mpl_text` so a ``$`` in a run name is not read as mathtext.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from trainlab.report.bands import align, mean_ci

COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def mpl_text(text: Any) -> str:
    """A user string as literal matplotlib text: ``$`` would start mathtext."""
    return str(text).replace("$", r"\$")


def new_figure(width: float = 6.4, height: float = 3.4, **subplots: Any):
    """A Figure on its own Agg canvas (constrained layout), and its axes (``fig.subplots(**subplots)``)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(**subplots)


# matplotlib names its groups figure_1, axes_1, ...: the same ids in every inline SVG of a page
_GROUP_IDS = re.compile(
    r'\sid="(?:figure|axes|patch|line2d|text|legend|matplotlib\.axis|xtick|ytick|PolyCollection|QuadMesh|PathCollection|LineCollection|image|BarContainer|Rectangle)_\d+"'
)


def figure_to_svg(fig) -> str:
    """The figure as an ``<svg>`` element (no XML prolog), deterministic (fixed hash salt, no date)."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": "trainlab", "svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]
    return _GROUP_IDS.sub("", svg)


def _integer_steps(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def band_figure(
    series: Mapping[str, Sequence[tuple[np.ndarray, np.ndarray]]],
    *,
    title: str,
    ylabel: str,
    xlabel: str = "step",
    log_y: bool = False,
    level: float = 0.95,
):
    """One line per label — the mean over its runs — with a shaded ``level`` t-interval band
    where two or more runs overlap (see :mod:`trainlab.report.bands`)."""
    fig, ax = new_figure()
    for i, (label, curves) in enumerate(series.items()):
        grid, matrix = align(curves)
        if not len(grid):
            continue
        mean, low, high = mean_ci(matrix, level)
        color = COLORS[i % len(COLORS)]
        n = len(curves)
        ax.plot(grid, mean, color=color, linewidth=1.4, label=mpl_text(f"{label} (n={n})" if n > 1 else label))
        if n > 1:
            ax.fill_between(grid, low, high, color=color, alpha=0.2, linewidth=0)
    ax.set_title(mpl_text(title), fontsize=10)
    ax.set_xlabel(mpl_text(xlabel))
    ax.set_ylabel(mpl_text(ylabel))
    _integer_steps(ax)
    if log_y:
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    if series:
        legend_outside(ax)
    return fig


def legend_outside(ax) -> None:
    """The legend right of the axes, never over a curve (constrained layout makes room)."""
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, frameon=False)


def small_multiples_figure(
    series: Mapping[str, Sequence[tuple[np.ndarray, np.ndarray]]],
    *,
    best: str,
    title: str,
    ylabel: str,
    log_y: bool = False,
    level: float = 0.95,
    cols: int = 3,
):
    """One panel per label (mean over its runs, t-interval band where n >= 2), each with the
    ``best`` label's mean drawn faintly in grey for reference; shared axes."""
    labels = list(series)
    rows = -(-len(labels) // cols)
    fig, axes = new_figure(
        3.0 * cols, 2.1 * rows + 0.4, nrows=rows, ncols=cols, squeeze=False, sharex=True, sharey=True
    )
    stats: dict[str, tuple | None] = {}
    for label, curves in series.items():
        grid, matrix = align(curves)
        stats[label] = (grid, *mean_ci(matrix, level), len(curves)) if len(grid) else None
    for k, ax in enumerate(axes.flat):
        if k >= len(labels):
            ax.set_visible(False)
            continue
        label = labels[k]
        reference = stats.get(best)
        if reference is not None and label != best:
            grid, mean, *_ = reference
            ax.plot(grid, mean, color="#999999", linewidth=1.0, alpha=0.6)
        own = stats[label]
        if own is not None:
            grid, mean, low, high, n = own
            color = COLORS[k % len(COLORS)]
            ax.plot(grid, mean, color=color, linewidth=1.4)
            if n > 1:
                ax.fill_between(grid, low, high, color=color, alpha=0.2, linewidth=0)
        ax.set_title(mpl_text(label + (" (best)" if label == best else "")), fontsize=8)
        ax.grid(True, alpha=0.3)
        ax.tick_params(labelsize=7)
        if log_y:
            ax.set_yscale("log")
    fig.supxlabel("step", fontsize=8)
    fig.supylabel(mpl_text(ylabel), fontsize=8)
    fig.suptitle(mpl_text(title), fontsize=10)
    return fig


def heatmap_figure(steps: np.ndarray, layers: Sequence[str], matrix: np.ndarray, *, title: str, log: bool = False):
    """Layers (rows, input at the top) × recorded steps (columns); ``log`` colours by log10."""
    from matplotlib.colors import LogNorm

    height = 1.2 + 0.22 * len(layers)
    fig, ax = new_figure(6.4, max(2.2, height))
    data = np.ma.masked_invalid(np.asarray(matrix, dtype=np.float64))
    positive = data.compressed()[data.compressed() > 0] if log else None
    norm = LogNorm(vmin=positive.min(), vmax=positive.max()) if log and positive is not None and positive.size else None
    if log:
        data = np.ma.masked_where(~(data > 0), data)
    x = np.asarray(steps, dtype=np.float64)
    if len(x) > 1:  # cell edges halfway between recorded steps; the end cells as wide as their neighbours
        mid = (x[1:] + x[:-1]) / 2
        edges = np.concatenate([[2 * x[0] - mid[0]], mid, [2 * x[-1] - mid[-1]]])
    else:
        edges = np.array([x[0] - 0.5, x[0] + 0.5])
    mesh = ax.pcolormesh(
        edges,
        np.arange(len(layers) + 1),
        data,
        norm=norm,
        cmap="viridis",
        shading="flat",
        edgecolors="face",
        linewidth=0.3,
    )  # no seams between cells in SVG
    ax.set_yticks(np.arange(len(layers)) + 0.5, [mpl_text(name) for name in layers], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("step")
    _integer_steps(ax)
    ax.set_title(mpl_text(title), fontsize=10)
    fig.colorbar(mesh, ax=ax, shrink=0.9)
    return fig


def lr_find_figure(
    lrs: np.ndarray, losses: np.ndarray, smoothed: np.ndarray, suggested: float, *, title: str = "LR range test"
):
    """Loss against learning rate (log x): raw losses faint, smoothed loss, the suggestion marked."""
    fig, ax = new_figure()
    ax.plot(lrs, losses, color="#999999", linewidth=0.8, alpha=0.6, label="loss per batch")
    ax.plot(lrs, smoothed, color=COLORS[0], linewidth=1.6, label="smoothed")
    ax.axvline(suggested, color=COLORS[3], linestyle="--", linewidth=1, label=f"suggested {suggested:.3g}")
    ax.set_xscale("log")
    finite = np.asarray(smoothed)[np.isfinite(smoothed)]
    if finite.size:  # the divergent tail would squash the interesting part
        low, high = finite.min(), finite[0]
        ax.set_ylim(low - 0.1 * abs(high - low + 1e-12), max(high, low) + 0.5 * abs(high - low + 1e-12))
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.set_title(mpl_text(title), fontsize=10)
    ax.grid(True, alpha=0.3)
    legend_outside(ax)
    return fig


def points_figure(values: Mapping[str, Sequence[float | None]], *, title: str, ylabel: str):
    """One column per label: every run's value as a dot, the mean as a bar outline."""
    labels = list(values)
    fig, ax = new_figure(max(4.0, 1.0 + 0.9 * len(labels)), 3.2)
    for i, label in enumerate(labels):
        v = np.asarray([x for x in values[label] if x is not None and np.isfinite(x)], dtype=np.float64)
        color = COLORS[i % len(COLORS)]
        if v.size:
            ax.bar(i, v.mean(), color=color, alpha=0.25, edgecolor=color)
            ax.scatter(np.full(v.size, i, dtype=float), v, color=color, s=14, zorder=3)
    ax.set_xticks(range(len(labels)), [mpl_text(x) for x in labels], rotation=20, ha="right", fontsize=7)
    ax.set_ylabel(mpl_text(ylabel))
    ax.set_title(mpl_text(title), fontsize=10)
    ax.grid(True, axis="y", alpha=0.3)
    return fig


def best_so_far_figure(
    numbers: Sequence[int],
    values: Sequence[float | None],
    direction: str,
    *,
    title: str,
    ylabel: str = "objective",
    states: Sequence[str] | None = None,
):
    """Each finished trial's value (dots; pruned trials as grey crosses at their last reported
    value) and the best value so far over the complete trials (a step line)."""
    fig, ax = new_figure()
    x = np.asarray(numbers, dtype=float)
    y = np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)
    pruned = np.asarray([s == "pruned" for s in states]) if states is not None else np.zeros(len(x), dtype=bool)
    ax.scatter(x[~pruned], y[~pruned], s=12, color=COLORS[0], alpha=0.8, label="complete trial")
    if pruned.any():
        ax.scatter(x[pruned], y[pruned], s=16, color="#888888", marker="x", linewidths=1.0, label="pruned (last value)")
    filled = np.where(np.isfinite(y) & ~pruned, y, np.inf if direction == "minimize" else -np.inf)
    best = np.minimum.accumulate(filled) if direction == "minimize" else np.maximum.accumulate(filled)
    best = np.where(np.isfinite(best), best, np.nan)
    ax.step(x, best, where="post", color=COLORS[3], linewidth=1.5, label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(mpl_text(ylabel))
    ax.set_title(mpl_text(title), fontsize=10)
    ax.grid(True, alpha=0.3)
    legend_outside(ax)
    return fig


def intermediate_figure(
    curves: Mapping[int, tuple[Sequence[int], Sequence[float], str]], rungs: Sequence[float], *, title: str, ylabel: str
):
    """Every trial's intermediate values against the step (complete trials in colour, pruned
    ones grey and ending in a cross), with the pruner's rungs as dashed vertical lines."""
    from matplotlib.lines import Line2D

    fig, ax = new_figure()
    for number, (steps, values, state) in curves.items():
        if state == "pruned":
            ax.plot(steps, values, color="#999999", linewidth=0.8, alpha=0.7)
            ax.scatter(steps[-1:], values[-1:], color="#888888", marker="x", s=14, linewidths=1.0)
        else:
            ax.plot(steps, values, color=COLORS[number % len(COLORS)], linewidth=1.0, alpha=0.9)
    for i, r in enumerate(rungs):
        ax.axvline(r, color=COLORS[3], linestyle="--", linewidth=0.8, alpha=0.7, label="rung" if i == 0 else None)
    handles = [
        Line2D([], [], color=COLORS[0], label="complete"),
        Line2D([], [], color="#999999", marker="x", label="pruned"),
    ]
    if rungs:
        handles.append(Line2D([], [], color=COLORS[3], linestyle="--", label="rung"))
    ax.legend(
        handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, frameon=False
    )
    ax.set_xlabel("step (resource)")
    ax.set_ylabel(mpl_text(ylabel))
    ax.set_title(mpl_text(title), fontsize=10)
    ax.grid(True, alpha=0.3)
    return fig


def importance_figure(importances: Mapping[str, tuple[float, float]], *, title: str):
    """Horizontal bars: each parameter's importance (mean ± std over the permutation repeats)."""
    names = sorted(importances, key=lambda n: importances[n][0])
    fig, ax = new_figure(6.4, 1.0 + 0.35 * len(names))
    means = [importances[n][0] for n in names]
    errs = [importances[n][1] for n in names]
    ax.barh(range(len(names)), means, xerr=errs, color=COLORS[0], alpha=0.8, error_kw={"linewidth": 0.8})
    ax.set_yticks(range(len(names)), [mpl_text(n) for n in names], fontsize=8)
    ax.set_xlabel("importance (drop in R² when the parameter is shuffled)")
    ax.set_title(mpl_text(title), fontsize=10)
    ax.grid(True, axis="x", alpha=0.3)
    return fig


def parallel_coordinates_figure(
    axes_values: Mapping[str, Sequence[float] | np.ndarray],
    ticks: Mapping[str, tuple[Sequence[float], Sequence[str]]],
    values: Sequence[float],
    *,
    title: str,
    ylabel: str,
    direction: str,
):
    """One line per trial through one vertical axis per parameter (each scaled to [0, 1]) and a
    last axis for the objective, coloured by the objective (the best end of the colour map is
    drawn last, on top)."""
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    names = list(axes_values)
    y = np.asarray(values, dtype=np.float64)
    columns = [np.asarray(axes_values[n], dtype=np.float64) for n in names] + [y]
    scaled = []
    for col in columns:
        lo, hi = np.nanmin(col), np.nanmax(col)
        scaled.append((col - lo) / (hi - lo) if hi > lo else np.full_like(col, 0.5))
    data = np.stack(scaled, axis=1)
    fig, ax = new_figure(max(6.4, 1.3 * (len(names) + 1)), 3.4)
    norm = Normalize(np.nanmin(y), np.nanmax(y))
    cmap = colormaps["viridis_r" if direction == "minimize" else "viridis"]
    order = np.argsort(-y if direction == "minimize" else y)  # the best last, on top
    xs = np.arange(len(columns))
    for i in order:
        ax.plot(xs, data[i], color=cmap(norm(y[i])), linewidth=1.0, alpha=0.8)
    for k, name in enumerate(names):
        ax.axvline(k, color="#444444", linewidth=0.8)
        tick_pos, tick_labels = ticks.get(name, ((), ()))
        for pos, lab in zip(tick_pos, tick_labels):
            ax.text(k + 0.03, pos, mpl_text(lab), fontsize=6, va="center", color="#444444")
    ax.axvline(len(names), color="#444444", linewidth=0.8)
    ax.set_xticks(xs, [mpl_text(n) for n in names] + [mpl_text(ylabel)], fontsize=8, rotation=15)
    ax.set_yticks([])
    ax.set_xlim(-0.1, len(names) + 0.3)
    ax.set_title(mpl_text(title), fontsize=10)
    from matplotlib.cm import ScalarMappable

    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, shrink=0.9, label=mpl_text(ylabel))
    return fig


def params_figure(
    params: Mapping[str, Sequence[Any]],
    values: Sequence[float | None],
    *,
    title: str,
    log_params: Sequence[str] = (),
    ylabel: str = "objective",
):
    """One panel per parameter: the trials' parameter values against their objective values.
    Categorical (non-numeric) parameters are placed at their category index."""
    names = list(params)
    cols = min(3, max(1, len(names)))
    rows = -(-len(names) // cols)
    fig, axes = new_figure(3.2 * cols, 2.6 * rows, nrows=rows, ncols=cols, squeeze=False)
    y = np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)
    for k, ax in enumerate(axes.flat):
        if k >= len(names):
            ax.set_visible(False)
            continue
        name = names[k]
        raw = list(params[name])
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in raw if v is not None)
        if numeric:
            x = np.asarray([np.nan if v is None else v for v in raw], dtype=np.float64)
        else:
            categories = sorted({str(v) for v in raw})
            x = np.asarray([categories.index(str(v)) for v in raw], dtype=np.float64)
            ax.set_xticks(range(len(categories)), [mpl_text(c) for c in categories], fontsize=7, rotation=20)
        ax.scatter(x, y, s=12, color=COLORS[k % len(COLORS)])
        if numeric and name in log_params:
            ax.set_xscale("log")
        ax.set_xlabel(mpl_text(name), fontsize=8)
        ax.set_ylabel(mpl_text(ylabel), fontsize=8)
        ax.grid(True, alpha=0.3)
    fig.suptitle(mpl_text(title), fontsize=10)
    return fig
