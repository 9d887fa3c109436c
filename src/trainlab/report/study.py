"""The study part of a report: best so far, intermediate values with the rungs, parameter
importances, slices, parallel coordinates, and the trials table folded.

Parameter importance is scikit-learn's permutation importance (Breiman 2001, §10) of a random
forest fitted to the complete trials (parameters -> objective): for each parameter, the mean
drop of the forest's R² on those trials when that parameter's column is shuffled, over 20
shuffles. Log-scaled parameters enter as log10, categoricals as category codes, inactive
conditional parameters as −1. It measures what the forest relies on, on the trials the study
ran — a sampler that concentrated on a small region shows what matters there.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from trainlab.report import html as H
from trainlab.report import plots as P


def _is_log_param(study: Any, name: str) -> bool:
    space = getattr(study, "space", None)
    try:
        param = space[name] if space is not None else None
    except (KeyError, TypeError):
        return False
    return bool(getattr(param, "log", False))


def study_rungs(study: Any) -> list[float]:
    """The resources at which the study's pruner decides (every bracket's, for Hyperband); [] if none."""
    from trainlab.tune.pruners import Hyperband, _Halving, rungs

    pruner = getattr(study, "pruner", None)
    if isinstance(pruner, Hyperband):
        return sorted({r for _, start in pruner.brackets() for r in rungs(start, pruner.eta, pruner.max_resource)})
    if isinstance(pruner, _Halving):
        top = pruner.max_resource
        if top is None:  # unbounded: the rungs up to the longest trial
            top = max((t.intermediate[-1][0] for t in study.trials if getattr(t, "intermediate", None)), default=0) + 1
        return rungs(pruner.min_resource, pruner.eta, top)
    return []


def encode_params(
    study: Any, trials: list[Any], names: list[str]
) -> tuple[np.ndarray, dict[str, tuple[list[float], list[str]]]]:
    """A trials × parameters matrix (log10 for log parameters, codes for categoricals, −1 for
    inactive) and, per categorical, its codes and labels."""
    columns, ticks = [], {}
    for name in names:
        raw = [t.params.get(name) for t in trials]
        present = [v for v in raw if v is not None]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present)
        if numeric:
            log = _is_log_param(study, name)
            col: list[float] = [
                math.log10(v) if log and v is not None and v > 0 else (np.nan if v is None else float(v)) for v in raw
            ]
        else:
            categories = sorted({json.dumps(v) if isinstance(v, (list, dict)) else str(v) for v in present})
            code = {c: i for i, c in enumerate(categories)}
            col = [
                np.nan if v is None else float(code[json.dumps(v) if isinstance(v, (list, dict)) else str(v)])
                for v in raw
            ]
            ticks[name] = (categories, col)
        columns.append(col)
    matrix = np.asarray(columns, dtype=np.float64).T if columns else np.empty((len(trials), 0))
    labels: dict[str, tuple[list[float], list[str]]] = {}
    for k, name in enumerate(names):
        if name in ticks:
            cats = ticks[name][0]
            encoded = matrix[:, k]
            finite = np.isfinite(encoded).any()
            lo, hi = (np.nanmin(encoded), np.nanmax(encoded)) if finite else (0, 0)
            span = hi - lo or 1.0
            labels[name] = ([(i - lo) / span for i in range(len(cats))], cats)
    return matrix, labels


def parameter_importances(
    study: Any, trials: list[Any], names: list[str], seed: int = 0
) -> dict[str, tuple[float, float]]:
    """``{parameter: (mean, std)}`` permutation importance over the complete trials (see the module docstring)."""
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.inspection import permutation_importance

    x, _ = encode_params(study, trials, names)
    x = np.where(np.isfinite(x), x, -1.0)
    y = np.asarray([t.value for t in trials], dtype=np.float64)
    forest = RandomForestRegressor(n_estimators=100, min_samples_leaf=2, random_state=seed).fit(x, y)
    result = permutation_importance(forest, x, y, n_repeats=20, random_state=seed)
    return {n: (float(m), float(s)) for n, m, s in zip(names, result.importances_mean, result.importances_std)}


def study_section(study: Any) -> str:
    trials = sorted(study.trials, key=lambda t: t.number)
    finished = [t for t in trials if t.value is not None and t.state in ("complete", "pruned")]
    complete = [t for t in finished if t.state == "complete"]
    best = study.best_trial
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.state] = counts.get(t.state, 0) + 1
    metric = getattr(study, "metric", None) or "objective"
    summary = [
        ["direction", study.direction],
        ["metric", metric],
        ["trials", ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))],
        ["best value", None if best is None else best.value],
        ["best trial", None if best is None else best.number],
        ["best params", "–" if best is None else json.dumps(best.params, default=str)],
    ]
    parts: list[str] = [H.table(summary, ["", "value"])]
    names = sorted({k for t in trials for k in t.params})
    figs = []
    if finished:
        numbers, values, states = [t.number for t in finished], [t.value for t in finished], [t.state for t in finished]
        title = f"{study.name}: best so far"
        fig = P.best_so_far_figure(numbers, values, study.direction, title=title, ylabel=metric, states=states)
        n_pruned = sum(t.state == "pruned" for t in finished)
        caption = "each complete trial's value; the line: the best complete value so far"
        caption += f"; {n_pruned} pruned trials as crosses at their last reported value" if n_pruned else ""
        figs.append(H.figure(P.figure_to_svg(fig), caption))
    inter = {t.number: list(getattr(t, "intermediate", None) or []) for t in trials}  # a duck-typed study may have none
    curves = {
        t.number: ([s for s, _ in inter[t.number]], [v for _, v in inter[t.number]], t.state)
        for t in trials
        if inter[t.number] and t.state in ("complete", "pruned")
    }
    if curves:
        rung_list = [r for r in study_rungs(study) if r <= max(s[-1] for s, _, _ in curves.values())]
        fig = P.intermediate_figure(curves, rung_list, title=f"{study.name}: intermediate values", ylabel=metric)
        caption = "each trial's reported values against the step; grey, ending in a cross: pruned"
        caption += "; dashed: the pruner's rungs (where it decides)" if rung_list else ""
        figs.append(H.figure(P.figure_to_svg(fig), caption))
    if len(names) >= 2 and len(complete) >= 5:
        imp = parameter_importances(study, complete, names)
        fig = P.importance_figure(imp, title=f"{study.name}: parameter importance")
        figs.append(
            H.figure(
                P.figure_to_svg(fig),
                f"permutation importance of a random forest fitted to the {len(complete)} complete trials "
                "(mean ± std over 20 shuffles)",
            )
        )
    if names and complete:
        params = {n: [t.params.get(n) for t in complete] for n in names}
        log = [n for n in names if _is_log_param(study, n)]
        fig = P.params_figure(
            params,
            [t.value for t in complete],
            title=f"{study.name}: slices, each parameter against {metric}",
            log_params=log,
            ylabel=metric,
        )
        figs.append(
            H.figure(
                P.figure_to_svg(fig),
                f"one dot per complete trial: a parameter's value against its {metric} "
                "(log axis where the parameter is log-scaled)",
            )
        )
    if len(names) >= 2 and len(complete) >= 2:
        matrix, ticks = encode_params(study, complete, names)
        axes_values = {n: matrix[:, k] for k, n in enumerate(names)}
        fig = P.parallel_coordinates_figure(
            axes_values,
            ticks,
            [t.value for t in complete],
            title=f"{study.name}: parallel coordinates",
            ylabel=metric,
            direction=study.direction,
        )
        figs.append(
            H.figure(
                P.figure_to_svg(fig),
                f"one line per complete trial through every parameter's axis "
                f"(each scaled to its range; log10 where log-scaled) and {metric}; the best drawn on top",
            )
        )
    if figs:
        parts.append(H.Markup(f'<div class="grid">{"".join(figs)}</div>'))
    rows = [
        [
            t.number,
            t.state,
            t.value,
            *(t.params.get(n) for n in names),
            inter[t.number][-1][0] if inter[t.number] else None,
            t.run_id or "",
        ]
        for t in trials
    ]
    parts.append(
        H.details(f"all {len(trials)} trials", H.table(rows, ["trial", "state", "value", *names, "last step", "run"]))
    )
    return H.section(f"Study {study.name}", *parts, anchor=f"study-{study.name}")
